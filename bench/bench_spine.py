"""Spine benchmarks: gpu-heavy hand-off between two processes, Prefect overhead per task, cached rerun.

    .venv/bin/python bench/bench_spine.py [--repeats 5]

Starts its own Prefect server (temp STUDIO_HOME, 127.0.0.1) and stops it. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HOME = tempfile.mkdtemp(prefix="studio-bench-")
os.environ["STUDIO_HOME"] = HOME
with socket.socket() as _s:
    _s.bind(("127.0.0.1", 0))
    os.environ["STUDIO_PREFECT__PORT"] = str(_s.getsockname()[1])

from studio.resources.runtime.prefect_server import configure_prefect_env, start_server, stop_server  # noqa: E402

configure_prefect_env()

STUDIO = [sys.executable, "-m", "studio.cli"]


def handoff_once(tag: str, hold_s: float = 15.0) -> float:
    """Process A holds the gpu-heavy slot (and the model) for `hold_s`; process B is started while A holds
    it, so B's task is waiting on the slot when A releases. Hand-off = A's park → B's model active."""
    from studio.resources.runtime.residency import read_residency_log

    n0 = len(read_residency_log())

    def demo(label: str, hold: float) -> subprocess.Popen:
        return subprocess.Popen([*STUDIO, "demo", "--label", label, "--tasks", "1", "--hold-s", str(hold),
                                 "--no-start-server"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    a = demo(f"{tag}-a", hold_s)
    while not any(r["event"] == "load" for r in read_residency_log()[n0:]):
        time.sleep(0.1)
    b = demo(f"{tag}-b", 0.0)
    for p in (a, b):
        assert p.wait(300) == 0
    rows = read_residency_log()[n0:]
    park_a = next(r for r in rows if r["event"] == "park")
    load_b = [r for r in rows if r["event"] == "load"][1]
    # The slot itself: A's task run ends (slot released) → B's task run starts (slot acquired).
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as c:
        runs = {}
        for side in ("a", "b"):
            names = FlowRunFilterName(any_=[f"heavy-demo-{tag}-{side}"])
            frs = c.read_flow_runs(flow_run_filter=FlowRunFilter(name=names))
            runs[side] = c.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [f.id for f in frs]}))[0]
    slot = (runs["b"].start_time - runs["a"].end_time).total_seconds()
    model = load_b["t"] - load_b.get("seconds", 0) - park_a["t"]
    return slot, model


def overhead_per_task(n: int = 20) -> float:
    from prefect import flow, task

    def work(i: int) -> int:
        return i * i

    t_work = task(work, persist_result=False, cache_policy=None)

    @flow(persist_result=False)
    def many() -> int:
        return sum(t_work(i) for i in range(n))

    many()  # warm-up (flow registration)
    t0 = time.perf_counter()
    many()
    with_prefect = time.perf_counter() - t0
    t0 = time.perf_counter()
    sum(work(i) for i in range(n))
    plain = time.perf_counter() - t0
    return (with_prefect - plain) / n * 1000


def cached_rerun(n: int = 20) -> tuple[float, float]:
    cmd = [*STUDIO, "demo", "--label", f"rerun-{time.time_ns()}", "--tasks", str(n), "--no-start-server"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return first, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    start_server()
    from studio.resources.runtime.gpu_limit import ensure_gpu_limit

    ensure_gpu_limit()
    try:
        pairs = [handoff_once(f"h{i}") for i in range(args.repeats)]
        handoffs = [p[0] for p in pairs]
        model_switch = [p[1] for p in pairs]
        overheads = [overhead_per_task() for _ in range(args.repeats)]
        reruns = [cached_rerun() for _ in range(max(2, args.repeats // 2))]
    finally:
        stop_server()
    first = statistics.median(r[0] for r in reruns)
    again = statistics.median(r[1] for r in reruns)
    print("| metric | median | all runs |")
    print("|---|---|---|")
    print(f"| gpu-heavy slot hand-off between 2 processes (A's task ends → waiting B's task starts) | "
          f"{statistics.median(handoffs):.2f} s | " + ", ".join(f"{h:.2f}" for h in handoffs) + " |")
    print(f"| device hand-off incl. B's task start-up (A parks → B's model active) | "
          f"{statistics.median(model_switch):.2f} s | " + ", ".join(f"{h:.2f}" for h in model_switch) + " |")
    print(f"| Prefect overhead per task (20-task flow, in-process) | {statistics.median(overheads):.1f} ms | "
          + ", ".join(f"{o:.1f}" for o in overheads) + " |")
    print(f"| 20-task heavy flow: first run / cached rerun (wall, incl. CLI start) | {first:.1f} s / {again:.1f} s "
          f"= {first / again:.2f}× | " + ", ".join(f"{a:.1f}/{b:.1f}" for a, b in reruns) + " |")


if __name__ == "__main__":
    main()
