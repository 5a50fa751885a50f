"""Deployments: the pool/queues/limit bootstrap is idempotent, `studio deploy` registers every deployment of
prefect.yaml, and a `studio worker` runs a deployment triggered from the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

STUDIO = [sys.executable, "-m", "studio.cli"]
REPO = str(Path(__file__).resolve().parents[2])


def test_bootstrap_is_idempotent(prefect_server):
    from prefect.client.orchestration import get_client

    from studio.deployments.bootstrap import POOL, QUEUES, bootstrap

    first = bootstrap()
    second = bootstrap()
    assert second["pool_created"] is False and set(second["queues"].values()) == {"updated"}
    assert first["gpu_heavy_limit"] == second["gpu_heavy_limit"] == 1
    with get_client(sync_client=True) as c:
        assert c.read_work_pool(POOL).type == "process"
        for q in QUEUES:
            got = c.read_work_queue_by_name(q.name, work_pool_name=POOL)
            assert (got.priority, got.concurrency_limit) == (q.priority, q.concurrency_limit)


@pytest.fixture(scope="module")
def deployed(prefect_server):
    r = subprocess.run([*STUDIO, "deploy"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def test_deploy_registers_every_deployment(deployed):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as c:
        deps = {f"{c.read_flow(d.flow_id).name}/{d.name}": d for d in c.read_deployments()}
    assert {"create-short/create-short", "generate-images/batch-generate", "generate-images/generate-images",
            "index-knowledge/index-knowledge", "analyze-film/analyze-film"} <= set(deps)
    assert deps["create-short/create-short"].work_queue_name == "interactive"
    batch = deps["generate-images/batch-generate"]
    assert batch.work_queue_name == "batch" and batch.schedules and "0 2 * * *" in str(batch.schedules[0].schedule)


def test_worker_runs_a_cli_triggered_deployment(deployed, tmp_path):
    worker = subprocess.Popen([*STUDIO, "worker", "start", "--queue", "batch"], stdout=open(tmp_path / "w.log", "w"),
                              stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
    try:
        r = subprocess.run([sys.executable, "-m", "prefect", "deployment", "run", "index-knowledge/index-knowledge"],
                           capture_output=True, text=True, timeout=120, cwd=REPO)
        assert r.returncode == 0, r.stdout + r.stderr
        run_id = next(line.split()[-1] for line in r.stdout.splitlines() if "UUID" in line)
        from prefect.client.orchestration import get_client

        deadline = time.monotonic() + 400
        state = None
        with get_client(sync_client=True) as c:
            while time.monotonic() < deadline:
                state = c.read_flow_run(run_id).state
                if state and state.is_final():
                    break
                time.sleep(2)
        assert state is not None and state.is_completed(), (state, (tmp_path / "w.log").read_text()[-3000:])
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
