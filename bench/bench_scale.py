"""Scale-out benchmarks: the S3 store's per-artifact overhead vs the local store, Prefect API latency on
PostgreSQL vs SQLite under two polling workers, and N preview shorts on 1 vs 2 workers.

    .venv/bin/python bench/bench_scale.py [--repeats 30] [--shorts 8] [--skip-shorts]

Starts everything it uses (moto S3, PostgreSQL in a temp folder, Prefect servers, workers) on 127.0.0.1 in temp
homes and stops it. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.env import free_port  # noqa: E402
from support.postgres import start_postgres  # noqa: E402
from support.s3 import start_moto  # noqa: E402

STUDIO = [sys.executable, "-m", "studio.cli"]
PLAN = REPO / "tests" / "data" / "plan_bunny.json"


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


# ---------------------------------------------------------------------------------------------- store overhead
def store_overhead(repeats: int) -> list[tuple[str, float, float]]:
    from studio.resources.runtime.artifacts import ArtifactStore, Recipe

    moto = start_moto("bench")
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    blob = tmp / "a.bin"
    blob.write_bytes(os.urandom(64 * 1024))
    rows = []
    try:
        stores = {"local": lambda i: ArtifactStore(str(tmp / "local"), cache_dir=tmp / f"lc{i}"),
                  "s3 (moto)": lambda i: ArtifactStore("s3://bench/s", moto.options(), cache_dir=tmp / f"sc{i}")}
        timings: dict[str, dict[str, list[float]]] = {k: {"put": [], "read": []} for k in stores}
        for i in range(repeats):
            for name, make in stores.items():  # interleaved: both stores see the same machine load
                store = make(i)
                r = Recipe(stage="bench", backend="b", params={"i": i, "n": name})
                t0 = time.perf_counter()
                ref = store.put_file(r, blob, "application/octet-stream")
                t1 = time.perf_counter()
                fresh = make(i)  # another process on another host: nothing verified or cached yet
                got = fresh.lookup(r)
                fresh.local_path(got)
                t2 = time.perf_counter()
                assert got == ref
                timings[name]["put"].append(t1 - t0)
                timings[name]["read"].append(t2 - t1)
        for name, t in timings.items():
            rows.append((name, _median_ms(t["put"]), _median_ms(t["read"])))
    finally:
        moto.stop()
    return rows


# ---------------------------------------------------------------------------------------------- API latency
def _server(home: Path, db_url: str | None) -> tuple[dict, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update({"STUDIO_HOME": str(home), "STUDIO_PREFECT__PORT": str(port), "STUDIO_FILES__ENABLED": "false",
                "PREFECT_WORKER_QUERY_SECONDS": "1"})
    if db_url:
        env["STUDIO_PREFECT__DATABASE_URL"] = db_url
    subprocess.run([*STUDIO, "server", "start"], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-m", "studio.deployments.bootstrap"], env=env, check=True,
                   capture_output=True, timeout=300, cwd=REPO)
    return env, f"http://127.0.0.1:{port}/api"


def _workers(env: dict, n: int, home: Path) -> list[subprocess.Popen]:
    return [subprocess.Popen([*STUDIO, "worker", "start", "--queue", "interactive", "--limit", "1"],
                             env={**env, "STUDIO_HOME": str(home / f"w{i}")}, cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for i in range(n)]


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


def api_latency(repeats: int) -> list[tuple[str, float, float, float]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Completed, Running

    pg = start_postgres()
    rows = []
    try:
        for name, db in (("SQLite", None), ("PostgreSQL 15", pg.url)):
            home = Path(tempfile.mkdtemp(prefix="bench-api-"))
            env, api = _server(home, db)
            workers = _workers(env, 2, home)
            try:
                time.sleep(5)  # both workers polling
                with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as c:
                    from prefect import flow

                    @flow(name="bench-api")
                    def noop() -> None:
                        return None

                    flow_id = c.create_flow(noop)
                    create, state, read = [], [], []
                    for _ in range(repeats):
                        t0 = time.perf_counter()
                        fr = c.create_flow_run(noop)
                        t1 = time.perf_counter()
                        c.set_flow_run_state(fr.id, Running())
                        c.set_flow_run_state(fr.id, Completed())
                        t2 = time.perf_counter()
                        c.read_flow_runs(flow_filter=FlowFilter(id=FlowFilterId(any_=[flow_id])), limit=50)
                        t3 = time.perf_counter()
                        create.append(t1 - t0)
                        state.append((t2 - t1) / 2)
                        read.append(t3 - t2)
                rows.append((name, _median_ms(create), _median_ms(state), _median_ms(read)))
            finally:
                _stop(workers)
                subprocess.run([*STUDIO, "server", "stop"], env=env, capture_output=True, timeout=120)
    finally:
        pg.stop()
    return rows


# ---------------------------------------------------------------------------------------------- throughput
def _plan(i: int) -> dict:
    base = json.loads(PLAN.read_text())
    one, three = base["shots"][0], base["shots"][2]
    return {**base, "title": f"Bench {i}", "shots": [
        {**one, "id": 1, "dialogue": {**one["dialogue"], "line": f"What a morning, bench {i}."}},
        {**three, "id": 2, "effects": [], "dialogue": {**three["dialogue"], "line": f"Nice ears, bench {i}!"}}]}


def throughput(n_shorts: int, n_workers: int, tag: str) -> float:
    """Seconds from submitting `n_shorts` preview shorts (2 shots each) to all completed, on `n_workers`."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    env, api = _server(home, None)
    subprocess.run([*STUDIO, "deploy"], env=env, check=True, capture_output=True, timeout=600, cwd=REPO)
    workers = _workers({**env, "STUDIO_PREFECT__API_URL": api, "STUDIO_STORE__URI": str(home / "store")},
                       n_workers, home)
    try:
        # Warm each worker's home (knowledge index, voices) outside the timed window: one tiny run each.
        with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as c:
            def run_all(plans: list[dict], label: str) -> float:
                t0 = time.perf_counter()
                ids = [run_deployment("create-short/create-short", timeout=0,
                                      parameters={"request": f"bench {label} {i}", "plan": p}).id
                       for i, p in enumerate(plans)]
                while True:
                    states = [c.read_flow_run(i).state for i in ids]
                    if all(s.is_final() for s in states):
                        assert all(s.is_completed() for s in states), states
                        return time.perf_counter() - t0
                    time.sleep(1)

            run_all([_plan(1000 + w) for w in range(n_workers)], f"{tag}-warm")
            return run_all([_plan(i) for i in range(n_shorts)], tag)
    finally:
        _stop(workers)
        subprocess.run([*STUDIO, "server", "stop"], env=env, capture_output=True, timeout=120)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--shorts", type=int, default=8)
    ap.add_argument("--skip-shorts", action="store_true")
    ap.add_argument("--skip-store", action="store_true")
    ap.add_argument("--skip-api", action="store_true")
    a = ap.parse_args()
    if not a.skip_store:
        print(f"### Store: one 64 KiB artifact, median of {a.repeats}\n")
        print("| store | put (ms) | lookup + fetch on a fresh host (ms) |\n|---|---:|---:|")
        for name, put, read in store_overhead(a.repeats):
            print(f"| {name} | {put} | {read} |")
    if not a.skip_api:
        print(f"\n### Prefect API latency with two workers polling (1 s), median of {a.repeats}\n")
        print("| database | create flow run (ms) | set state (ms) | read 50 flow runs (ms) |\n|---|---:|---:|---:|")
        for name, create, state, read in api_latency(a.repeats):
            print(f"| {name} | {create} | {state} | {read} |")
    if not a.skip_shorts:
        one = throughput(a.shorts, 1, "one")
        two = throughput(a.shorts, 2, "two")
        print(f"\n### {a.shorts} preview shorts (2 shots each), warm workers\n")
        print("| workers | wall (s) | shorts/min |\n|---|---:|---:|")
        for n, t in ((1, one), (2, two)):
            print(f"| {n} | {t:.0f} | {a.shorts / t * 60:.2f} |")
        print(f"\nthroughput ratio 2 vs 1 workers: {one / two:.2f}×")


if __name__ == "__main__":
    main()
