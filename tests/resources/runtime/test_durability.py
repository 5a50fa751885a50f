"""Durability of the spine against a real Prefect server on 127.0.0.1:

1. two flow processes with heavy tasks never overlap on the GPU (Prefect timestamps + residency record);
2. kill -9 mid-flow, rerun: finished tasks are not executed again, the leaked slot is freed by
   `studio gpu reset` at once (and by the server's lease expiry otherwise);
3. a deleted or corrupted artifact is recomputed, intact ones are reused.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.resources.runtime.residency import active_intervals, overlapping_actives, read_residency_log

STUDIO = [sys.executable, "-m", "studio.cli"]


def _demo(label: str, n: int, exec_log: Path, hold_s: float = 0.0, extra_env: dict | None = None
          ) -> subprocess.Popen:
    env = {**os.environ, "STUDIO_DEMO_EXEC_LOG": str(exec_log), **(extra_env or {})}
    return subprocess.Popen([*STUDIO, "demo", "--label", label, "--tasks", str(n), "--hold-s", str(hold_s),
                             "--no-start-server"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _executions(exec_log: Path) -> list[int]:
    if not exec_log.exists():
        return []
    return [int(line.split("step=")[1].split()[0]) for line in exec_log.read_text().splitlines()]


def _heavy_task_runs(flow_names: list[str]):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        TaskRunFilter,
        TaskRunFilterTags,
    )

    with get_client(sync_client=True) as c:
        frs = c.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=flow_names)))
        runs = c.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [f.id for f in frs]}),
                                task_run_filter=TaskRunFilter(tags=TaskRunFilterTags(all_=["gpu-heavy"])))
    return runs


def _wait(proc: subprocess.Popen, timeout: float) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def test_two_processes_never_overlap_on_the_gpu(prefect_server, tmp_path):
    log_before = len(read_residency_log())
    p1 = _demo("overlap-a", 3, tmp_path / "a.log", hold_s=0.4)
    p2 = _demo("overlap-b", 3, tmp_path / "b.log", hold_s=0.4)
    _wait(p1, 300)
    _wait(p2, 300)
    assert _executions(tmp_path / "a.log") == [1, 2, 3] and _executions(tmp_path / "b.log") == [1, 2, 3]

    runs = _heavy_task_runs(["heavy-demo-overlap-a", "heavy-demo-overlap-b"])
    assert len(runs) == 6
    spans = sorted((r.start_time, r.end_time) for r in runs)
    for (s1, e1), (s2, _e2) in zip(spans, spans[1:], strict=False):
        assert e1 <= s2, f"heavy task runs overlap: {s1}-{e1} and {s2}"

    rows = read_residency_log()[log_before:]
    assert len({r["pid"] for r in rows}) == 2
    ivs = active_intervals(rows)
    assert len(ivs) == 6 and all(iv.end is not None for iv in ivs)
    assert overlapping_actives(rows) == []


def _slot_holders() -> list:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as c:
        return c.read_concurrency_limit_by_tag("gpu-heavy").active_slots


def _kill_at_step(label: str, exec_log: Path, step: int, n: int = 5) -> None:
    proc = _demo(label, n, exec_log, extra_env={"STUDIO_DEMO_HOLD": f"{step}:120"})
    deadline = time.monotonic() + 180
    while step not in _executions(exec_log):
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "flow never reached the step to kill"
        time.sleep(0.2)
    time.sleep(1.0)  # inside the task, holding the slot and the model
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_kill_9_then_rerun_resumes_and_gpu_reset_frees_the_slot(prefect_server, tmp_path):
    exec_log = tmp_path / "exec.log"
    _kill_at_step("kill9", exec_log, step=3)
    assert _executions(exec_log) == [1, 2, 3]
    assert len(_slot_holders()) == 1, "the killed task should still hold its lease"

    r = subprocess.run([*STUDIO, "gpu", "reset"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "freed 1" in r.stdout, r.stdout + r.stderr
    assert _slot_holders() == []

    _wait(_demo("kill9", 5, exec_log), 300)
    # Steps 1–2 finished before the kill: never executed again. 3 re-ran; 4–5 ran once.
    assert _executions(exec_log) == [1, 2, 3, 3, 4, 5]


def test_leaked_slot_comes_back_within_the_lease_window(prefect_server, tmp_path):
    exec_log = tmp_path / "exec.log"
    _kill_at_step("lease", exec_log, step=2, n=3)
    t0 = time.monotonic()
    _wait(_demo("lease", 3, exec_log), 240)  # blocks on the leaked slot until the server expires the lease
    waited = time.monotonic() - t0
    assert _executions(exec_log) == [1, 2, 2, 3]
    assert waited < 150, f"slot came back after {waited:.0f}s, beyond the lease window"


def test_corrupt_or_deleted_artifact_is_recomputed_intact_reused(prefect_server, tmp_path):
    from studio.resources.runtime.artifacts import ArtifactStore

    exec_log = tmp_path / "exec.log"
    _wait(_demo("corrupt", 3, exec_log), 300)
    store = ArtifactStore.from_settings()
    demo_files = sorted(p for p in Path(store.root, "demo").rglob("*.npy"))
    side = {p: p for p in demo_files}
    assert side
    # Rerun untouched: nothing executes.
    _wait(_demo("corrupt", 3, exec_log), 300)
    assert _executions(exec_log) == [1, 2, 3]

    # Corrupt step 2's bytes, delete step 1's file: exactly those re-run; step 3 (same upstream bytes) is reused.
    import json

    by_step = {}
    for j in Path(store.root, "demo").rglob("*.json"):
        meta = json.loads(j.read_text())
        if meta["recipe"]["params"].get("label") == "corrupt":
            by_step[meta["recipe"]["params"]["step"]] = Path(meta["uri"])
    raw = bytearray(by_step[2].read_bytes())
    raw[-1] ^= 0xFF
    by_step[2].write_bytes(bytes(raw))
    by_step[1].unlink()
    _wait(_demo("corrupt", 3, exec_log), 300)
    assert sorted(_executions(exec_log)) == [1, 1, 2, 2, 3]


@pytest.mark.parametrize("n", [3])
def test_residency_parks_between_tasks_and_reloads_nothing(prefect_server, tmp_path, n):
    before = len(read_residency_log())
    _wait(_demo("park", n, tmp_path / "p.log"), 300)
    rows = [r for r in read_residency_log()[before:]]
    events = [(r["event"], r["model"]) for r in rows]
    # Alternating two models in one process: each loads once; the third task re-activates a parked model.
    assert events == [("load", "demo-mlp-a@1"), ("park", "demo-mlp-a@1"), ("load", "demo-mlp-b@1"),
                      ("park", "demo-mlp-b@1"), ("activate", "demo-mlp-a@1"), ("park", "demo-mlp-a@1")]
