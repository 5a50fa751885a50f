"""Who holds the `gpu-heavy` slots (the global count and this host's device slot), and freeing slots leaked by
dead holders (`studio gpu reset`).

Prefect reports the holders of a tag limit as task-run ids. A holder is dead when its task run or flow run is
in a final state, or when the process that ran it (recorded by the residency manager under
`run/holders/`) no longer exists on this host. Live holders are never touched unless forced.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from uuid import UUID

from studio.configs.settings import GPU_HEAVY_TAG, get_settings
from studio.resources.runtime.residency import device_tag, holders_dir, note_holder  # noqa: F401 (re-export)

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def gpu_tags() -> list[str]:
    """The global count and this host's device slot."""
    return [GPU_HEAVY_TAG, device_tag()]


def _recorded_process_alive(task_run_id: str) -> bool | None:
    """True/False when we know the holder's process on this host, None when unknown."""
    path = holders_dir() / f"{task_run_id}.json"
    try:
        rec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if rec.get("host") != socket.gethostname():
        return None
    try:
        os.kill(int(rec["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder_info(client, task_run_id: UUID) -> dict:
    info = {"task_run_id": str(task_run_id), "task_run_name": "?", "state": "UNKNOWN", "alive": True,
            "why": ""}
    try:
        tr = client.read_task_run(task_run_id)
    except Exception:  # noqa: BLE001 - a vanished task run cannot be holding anything legitimately
        info.update(alive=False, why="task run not found")
        return info
    info["task_run_name"] = tr.name
    info["state"] = tr.state.type.value if tr.state else "UNKNOWN"
    if info["state"] in FINAL:
        info.update(alive=False, why=f"task run is {info['state']}")
        return info
    if tr.flow_run_id:
        with contextlib.suppress(Exception):
            fr = client.read_flow_run(tr.flow_run_id)
            if fr.state and fr.state.type.value in FINAL:
                info.update(alive=False, why=f"flow run is {fr.state.type.value}")
                return info
    proc = _recorded_process_alive(str(task_run_id))
    if proc is False:
        info.update(alive=False, why="its process is gone")
    elif proc is None:
        info["why"] = "process unknown"
    return info


def slot_report() -> dict:
    from prefect.client.orchestration import get_client

    from studio.resources.runtime.prefect_server import is_healthy

    s = get_settings()
    if not is_healthy(os.environ.get("PREFECT_API_URL", s.prefect.url())):
        return {"error": "server down"}
    with get_client(sync_client=True) as client:
        try:
            lim = client.read_concurrency_limit_by_tag(GPU_HEAVY_TAG)
        except Exception:  # noqa: BLE001
            return {"error": f"no limit tag:{GPU_HEAVY_TAG} (run `studio server start`)"}
        holders = [_holder_info(client, tr_id) for tr_id in lim.active_slots]
        device = {"tag": device_tag(), "limit": None, "active_slots": 0}
        try:
            dev = client.read_concurrency_limit_by_tag(device["tag"])
            device.update(limit=dev.concurrency_limit, active_slots=len(dev.active_slots))
        except Exception:  # noqa: BLE001 - created by the first heavy flow on this host
            pass
    return {"limit": lim.concurrency_limit, "active_slots": len(lim.active_slots), "holders": holders,
            "device": device}


def free_dead_slots(force: bool = False) -> tuple[int, int]:
    """Release the leases of dead holders on the global count and on this host's device slot.
    Returns (freed, kept-alive), counted in task runs."""
    from prefect.client.orchestration import get_client

    from studio.resources.runtime.prefect_server import require_server

    require_server()
    held: dict[UUID, list[str]] = {}
    with get_client(sync_client=True) as client:
        for tag in gpu_tags():
            try:
                lim = client.read_concurrency_limit_by_tag(tag)
            except Exception:  # noqa: BLE001 - a device limit not created yet holds nothing
                continue
            for tr_id in lim.active_slots:
                held.setdefault(tr_id, []).append(tag)
        freed = kept = 0
        for tr_id, tags in held.items():
            info = _holder_info(client, tr_id)
            if info["alive"] and not force:
                kept += 1
                continue
            client.decrement_v1_concurrency_slots(names=tags, task_run_id=tr_id, occupancy_seconds=0.0)
            (holders_dir() / f"{tr_id}.json").unlink(missing_ok=True)
            freed += 1
    return freed, kept
