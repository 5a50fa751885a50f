"""The local server commands and the gpu-heavy limit: created idempotently, verified, refused when unverifiable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support.env import free_port

from studio.configs.settings import get_settings

STUDIO = [sys.executable, "-m", "studio.cli"]


def test_server_status_reports_ui_url(prefect_server):
    r = subprocess.run([*STUDIO, "server", "status"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "healthy" in r.stdout and prefect_server.removesuffix("/api") in r.stdout


def test_server_status_when_down_says_how_to_start(tmp_path):
    env = {**os.environ, "STUDIO_HOME": str(tmp_path), "STUDIO_PREFECT__PORT": str(free_port()), "COLUMNS": "200"}
    env.pop("PREFECT_API_URL")
    r = subprocess.run([*STUDIO, "server", "status"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 1 and "down" in r.stdout and "studio server start" in r.stdout


def test_a_server_beyond_loopback_is_refused_without_api_auth(tmp_path):
    """`--host 0.0.0.0` without PREFECT_SERVER_API_AUTH_STRING: a clear error, exit 2, nothing started."""
    env = {**os.environ, "STUDIO_HOME": str(tmp_path), "STUDIO_PREFECT__PORT": str(free_port()), "COLUMNS": "200",
           "STUDIO_PREFECT__HOST": "0.0.0.0"}
    for k in ("PREFECT_API_URL", "PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_AUTH_STRING"):
        env.pop(k, None)
    r = subprocess.run([*STUDIO, "server", "start"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "PREFECT_SERVER_API_AUTH_STRING" in r.stderr + r.stdout, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "run" / "prefect-server.pid").exists()


def test_limit_is_created_when_missing_and_verified(prefect_server):
    from prefect.client.orchestration import get_client

    from studio.resources.runtime.gpu_limit import ensure_gpu_limit, limit_name

    with get_client(sync_client=True) as c:
        c.delete_global_concurrency_limit_by_name(limit_name())
    assert ensure_gpu_limit() == 1
    assert ensure_gpu_limit() == 1  # idempotent
    with get_client(sync_client=True) as c:
        got = c.read_global_concurrency_limit_by_name(limit_name())
        assert got.limit == 1 and got.active
        # Someone widened it: the next start-up puts it back to 1.
        from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

        c.update_global_concurrency_limit(limit_name(), GlobalConcurrencyLimitUpdate(limit=4))
    assert ensure_gpu_limit() == 1


def test_heavy_work_refuses_to_start_without_a_verified_limit(monkeypatch, tmp_path):
    from studio.configs.errors import StudioError
    from studio.resources.runtime.gpu_limit import prepare_flow_run

    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    get_settings.cache_clear()
    with pytest.raises(StudioError, match="studio server start"):
        prepare_flow_run(heavy=True)


def test_heavy_tag_is_dropped_for_artifacts_already_made(isolated_store):
    from studio.resources.runtime.artifacts import ArtifactStore, Recipe
    from studio.resources.runtime.residency import device_tag
    from studio.tasks.caching import heavy_tags

    r = Recipe(stage="unit", backend="t", params={"x": 1})
    assert heavy_tags(r, heavy=True) == {"gpu-heavy", device_tag()}
    assert heavy_tags(r, heavy=False) == set()
    ArtifactStore.from_settings().put_bytes(r, b"done", "text/plain", ".txt")
    assert heavy_tags(r, heavy=True) == set()


def test_gpu_status_reports_residency_lock_and_slots(prefect_server, tmp_path):
    import json

    r = subprocess.run([*STUDIO, "demo", "--label", "status", "--tasks", "1", "--no-start-server"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([*STUDIO, "gpu", "status", "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert any(m["model"].startswith("demo-mlp") and m["state"] == "parked" for m in report["resident"])
    assert report["gpu_lock_holder"] is None and report["slots"]["limit"] == 1
    assert report["slots"]["active_slots"] == 0 and report["vram"] == []
    assert report["overlaps"] == []
    # a record where two processes had a model active on one device at once: the status says so
    from studio.configs.settings import get_settings
    from studio.resources.runtime.residency import read_residency_log

    t = max(r["t"] for r in read_residency_log()) + 10
    forged = [{"t": t, "event": "activate", "model": "a", "device": "cuda:0", "pid": 1},
              {"t": t + 1, "event": "activate", "model": "b", "device": "cuda:0", "pid": 2},
              {"t": t + 2, "event": "park", "model": "a", "device": "cuda:0", "pid": 1},
              {"t": t + 3, "event": "park", "model": "b", "device": "cuda:0", "pid": 2}]
    with get_settings().residency_log.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in forged))
    r = subprocess.run([*STUDIO, "gpu", "status"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "BROKEN" in r.stdout and "a (pid 1) and b (pid 2) on cuda:0" in r.stdout, r.stdout


def test_each_device_has_its_own_slot_of_one(prefect_server, monkeypatch):
    """A tag per GPU with limit 1 (next to the global count): a task waits for its own device's slot only."""
    from prefect.client.orchestration import get_client

    from studio.resources.runtime.gpu_limit import ensure_gpu_limit
    from studio.resources.runtime.residency import device_tag

    tags = set()
    for slot in ("host-a-cuda-0", "host-b-cuda-0"):
        monkeypatch.setenv("STUDIO_GPU__SLOT_ID", slot)
        get_settings.cache_clear()
        ensure_gpu_limit()
        tags.add(device_tag())
        with get_client(sync_client=True) as c:
            got = c.read_global_concurrency_limit_by_name(f"tag:{device_tag()}")
        assert got.limit == 1 and got.active
    assert tags == {"gpu-heavy:host-a-cuda-0", "gpu-heavy:host-b-cuda-0"}
    get_settings.cache_clear()


def test_knowledge_writes_are_one_at_a_time_across_processes(prefect_server, tmp_path):
    """The knowledge-base write slot (a Prefect global limit of 1) serialises writers in different processes:
    two processes that each hold it for 2 s never overlap."""
    code = ("import sys, time; from studio.resources.runtime.gpu_limit import knowledge_writes\n"
            "with knowledge_writes():\n"
            "    t0 = time.time(); time.sleep(2.0); t1 = time.time()\n"
            "open(sys.argv[1], 'w').write(f'{t0} {t1}')\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / f"{i}.txt")]) for i in range(2)]
    assert [p.wait(120) for p in procs] == [0, 0]
    (a0, a1), (b0, b1) = sorted(tuple(map(float, (tmp_path / f"{i}.txt").read_text().split())) for i in range(2))
    assert b0 >= a1 - 0.05, f"both held the knowledge write slot: {a0:.2f}-{a1:.2f} and {b0:.2f}-{b1:.2f}"
