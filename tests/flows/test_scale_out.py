"""Many hosts, one studio, for real on this machine: PostgreSQL-backed Prefect server with API auth, moto S3,
two worker "hosts", each with its own STUDIO_HOME, device slot id and — where the machine allows — its own
network namespace (support/hosts.py; else the server and S3 listen on 127.0.0.2): a host reaches the server and
the store only at their configured address.

Wave 1: two shorts, one per worker. Wave 2: two shorts that reuse a shot the other host made; the one on host
A is killed mid-short (kill -9 of its flow-run process), the worker marks it Crashed, host A goes away,
`prefect flow-run retry` sends it to host B, which completes it without recomputing any finished artifact
(counted from the store's sidecars) and by reading A's artifacts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.env import free_port
from support.hosts import Hosts, make_hosts
from support.postgres import postgres_bin, start_postgres
from support.s3 import start_moto

from studio.resources.runtime.residency import overlapping_actives, read_residency_log

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL not installed (scripts/setup.sh)")]

STUDIO = [sys.executable, "-m", "studio.cli"]
REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "tests" / "data" / "plan_bunny.json"
BUCKET = "studio"
AUTH = "studio:" + os.urandom(8).hex()
SIDECAR = re.compile(r"/[0-9a-f]{64}\.json$")  # data files are <key>-<sha12>.<suffix>


def _plan(tag: str, reuse: dict | None = None) -> dict:
    """Two storyboard shots with lines unique to `tag` (so their artifacts are new); `reuse` replaces shot 2."""
    base = json.loads(PLAN.read_text())
    one, three = base["shots"][0], base["shots"][2]
    s1 = {**one, "id": 1, "dialogue": {**one["dialogue"], "line": f"What a morning, take {tag}."}}
    s2 = reuse or {**three, "id": 2, "effects": [], "dialogue": {**three["dialogue"], "line": f"Nice ears, {tag}!"}}
    return {**base, "title": f"Scale {tag}", "shots": [s1, s2]}


class Studio:
    """The server, the store and the two hosts of one test."""

    def __init__(self, root: Path, moto, pg, hosts: Hosts):
        self.root, self.moto, self.port, self.hosts = root, moto, free_port(), hosts
        self.api = f"http://{hosts.service_addr}:{self.port}/api"
        base = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        self.base = {**base, **moto.env(f"s3://{BUCKET}/scale"), "STUDIO_FILES__ENABLED": "false",
                     "COLUMNS": "200", "PREFECT_WORKER_QUERY_SECONDS": "1", "STUDIO_STORE__RETRY_S": "30"}
        self.server_env = {**self.base, "STUDIO_HOME": str(root / "server"), "STUDIO_PREFECT__PORT": str(self.port),
                           "STUDIO_PREFECT__HOST": hosts.service_addr,
                           "STUDIO_PREFECT__DATABASE_URL": pg.url, "PREFECT_SERVER_API_AUTH_STRING": AUTH}
        self.workers: dict[str, subprocess.Popen] = {}

    def host_env(self, name: str) -> dict[str, str]:
        return {**self.base, "STUDIO_HOME": str(self.root / name), "STUDIO_PREFECT__API_URL": self.api,
                "PREFECT_API_AUTH_STRING": AUTH, "STUDIO_LLM__PORT": str(free_port()), "STUDIO_GPU__DEVICE": "cpu",
                "STUDIO_GPU__SLOT_ID": f"{name}-gpu0"}

    def studio(self, *args: str, env: dict, timeout: float = 600, host: str | None = None) -> str:
        r = subprocess.run([*self.hosts.prefix(host or ""), *STUDIO, *args], env=env, cwd=REPO, capture_output=True,
                           text=True, timeout=timeout)
        assert r.returncode == 0, f"studio {' '.join(args)}: {r.stdout[-3000:]}{r.stderr[-3000:]}"
        return r.stdout

    def start_worker(self, name: str) -> None:
        log = open(self.root / f"worker-{name}.log", "w")
        self.workers[name] = subprocess.Popen([*self.hosts.prefix(name), *STUDIO, "worker", "start", "--queue",
                                               "interactive", "--limit", "1"],
                                              env=self.host_env(name), cwd=REPO, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True)

    def stop_worker(self, name: str) -> None:
        proc = self.workers.pop(name)
        with _suppress():
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)

    def flow_run_processes(self, name: str) -> dict[str, int]:
        """flow-run id → pid of the processes worker `name` runs right now."""
        import psutil

        found = {}
        with _suppress():
            for child in psutil.Process(self.workers[name].pid).children(recursive=True):
                with _suppress():
                    run_id = child.environ().get("PREFECT__FLOW_RUN_ID")
                    if run_id and "prefect" in " ".join(child.cmdline()):
                        found.setdefault(run_id, child.pid)
        return found

    def sidecars(self) -> dict[str, dict]:
        s3 = self.moto.client()
        keys = [k for k in self.moto.keys(BUCKET, "scale/") if SIDECAR.search(k)]
        return {k: json.loads(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()) for k in keys}


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], Exception)


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _run(name: str, request: str, plan: dict) -> str:
    from prefect.deployments import run_deployment

    fr = run_deployment(name, parameters={"request": request, "plan": plan}, timeout=0)
    return str(fr.id)


def _wait_final(ids: list[str], st: Studio, timeout: float, watch: dict[str, dict[str, int]]) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        for name in list(st.workers):
            for run_id, pid in st.flow_run_processes(name).items():
                watch[name].setdefault(run_id, pid)
        with _client() as c:
            states = {i: c.read_flow_run(i).state.type.value for i in ids}
        if all(s in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for s in states.values()):
            return states
        time.sleep(0.5)
    raise AssertionError(f"runs not final after {timeout}s: {states}")


def _why(states: dict[str, str], st: Studio) -> str:
    """The logs of the runs that did not complete and the workers' last output, for the assertion message."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    out = [str(states)]
    with _client() as c:
        for run_id, state in states.items():
            if state != "COMPLETED":
                logs = c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=60)
                out += [f"--- {run_id} {state}: {c.read_flow_run(run_id).state.message}"]
                out += [f"{log.level} {log.message[:600]}" for log in logs[-40:]]
    for log in sorted(st.root.glob("worker-*.log")):
        out += [f"--- {log.name}", log.read_text()[-2500:]]
    return "\n".join(out)


def _host_of(run_id: str, watch: dict[str, dict[str, int]]) -> str:
    return next(h for h, runs in watch.items() if run_id in runs)


def test_two_hosts_one_studio(tmp_path):
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    hosts = make_hosts(["host-a", "host-b"])
    pg = start_postgres()
    moto = start_moto(BUCKET, host=hosts.service_addr)
    st = Studio(tmp_path, moto, pg, hosts)
    try:
        st.studio("server", "start", env=st.server_env, timeout=300)
        # The API refuses clients without the auth string.
        req = urllib.request.Request(f"{st.api}/flows/filter", method="POST", data=b"{}",
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=30)
        assert refused.value.code == 401
        if hosts.kind == "netns":  # a host has its own loopback: the server is reachable only at its address
            probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{st.port}/api/health', timeout=3)"
            r = subprocess.run([*hosts.prefix("host-a"), sys.executable, "-c", probe], capture_output=True, timeout=60)
            assert r.returncode != 0, "host A reached the server over a loopback it should not share"
        st.studio("deploy", env=st.host_env("host-a"), timeout=600, host="host-a")
        st.start_worker("host-a")
        st.start_worker("host-b")
        watch: dict[str, dict[str, int]] = {"host-a": {}, "host-b": {}}
        with temporary_settings(updates={PREFECT_API_URL: st.api, PREFECT_API_AUTH_STRING: AUTH}):
            _scenario(st, watch, tmp_path)
    finally:
        for name in list(st.workers):
            st.stop_worker(name)
        with _suppress():
            st.studio("server", "stop", env=st.server_env, timeout=120)
        moto.stop()
        pg.stop()
        hosts.close()


def _scenario(st: Studio, watch: dict[str, dict[str, int]], tmp_path: Path) -> None:
    name = "create-short/create-short"
    # Wave 1: one short per worker (each worker takes one run at a time).
    wave1 = {_run(name, f"scale wave one {t}", _plan(t)): t for t in ("w1a", "w1b")}
    states = _wait_final(list(wave1), st, 600, watch)
    assert set(states.values()) == {"COMPLETED"}, _why(states, st)
    hosts1 = {_host_of(i, watch): i for i in wave1}
    assert set(hosts1) == {"host-a", "host-b"}, f"runs did not spread over both workers: {watch}"
    b_shot = _plan(wave1[hosts1["host-b"]])["shots"][1]

    # Wave 2: both reuse B's shot 2; the run that lands on host A is killed mid-short.
    wave2 = [_run(name, f"scale wave two {t}", _plan(t, reuse=b_shot)) for t in ("w2a", "w2b")]
    victim, victim_pid, seen = None, None, {}
    deadline = time.monotonic() + 400
    while victim_pid is None or sum(1 for m in seen.values() if m.get("pid") == victim_pid) < 2:
        assert time.monotonic() < deadline, f"host A never got far into a wave-2 short: {watch}"
        for run_id, pid in st.flow_run_processes("host-a").items():
            watch["host-a"].setdefault(run_id, pid)
            if run_id in wave2:
                victim, victim_pid = run_id, pid
        for run_id, pid in st.flow_run_processes("host-b").items():
            watch["host-b"].setdefault(run_id, pid)
        seen = st.sidecars()
        time.sleep(0.3)
    before = st.sidecars()
    os.kill(victim_pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    with _client() as c:
        while c.read_flow_run(victim).state.type.value != "CRASHED":
            assert time.monotonic() < deadline, c.read_flow_run(victim).state
            time.sleep(0.2)
    st.stop_worker("host-a")  # host A is gone: the retry can only run on host B
    r = subprocess.run([*st.hosts.prefix("host-b"), sys.executable, "-m", "prefect", "flow-run", "retry", victim],
                       env={**st.host_env("host-b"), "PREFECT_API_URL": st.api},
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    watch["host-a"].pop(victim)
    states = _wait_final(wave2, st, 600, watch)
    assert set(states.values()) == {"COMPLETED"}, _why(states, st)
    assert _host_of(victim, watch) == "host-b"

    after = st.sidecars()
    redone = [k for k, m in before.items() if (after[k]["created"], after[k]["pid"]) != (m["created"], m["pid"])]
    assert redone == [], f"finished artifacts were recomputed: {redone}"
    # Each host read artifacts the other made (fetched into its own content cache).
    pids = {h: set(runs.values()) | ({victim_pid} if h == "host-a" else set()) for h, runs in watch.items()}
    made_by = {h: {m["sha256"] for m in after.values() if m["pid"] in pids[h]} for h in pids}
    cached = {h: {p.stem for p in (tmp_path / h / "cache" / "blobs").glob("*") if p.is_file()} for h in pids}
    assert cached["host-a"] & made_by["host-b"], "host A read nothing host B made"
    assert cached["host-b"] & made_by["host-a"], "host B read nothing host A made"
    # One heavy model at a time per device, on each host.
    for h in pids:
        assert overlapping_actives(read_residency_log(tmp_path / h / "residency.jsonl")) == []
