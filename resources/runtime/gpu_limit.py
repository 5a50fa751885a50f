"""The `gpu-heavy` tag limit: created idempotently at start-up and verified.

A missing tag limit silently means *no* limit (FACTS.md), so heavy work refuses to start when the limit
cannot be verified.
"""

from __future__ import annotations

from studio.configs.errors import StudioError
from studio.configs.settings import GPU_HEAVY_TAG, get_settings


class GpuLimitError(StudioError):
    pass


def limit_name() -> str:
    return f"tag:{GPU_HEAVY_TAG}"


def ensure_gpu_limit() -> int:
    """Create/repair `tag:gpu-heavy` = N (idempotent) and read it back. Returns the verified limit."""
    from prefect.client.orchestration import get_client

    from studio.resources.runtime.prefect_server import require_server

    require_server()
    s = get_settings()
    name = limit_name()
    try:
        with get_client(sync_client=True) as client:
            client.upsert_global_concurrency_limit_by_name(name, limit=s.gpu.limit)
            got = client.read_global_concurrency_limit_by_name(name)
    except Exception as e:  # noqa: BLE001 - any client failure means "not verified"
        raise GpuLimitError(f"could not create or verify the concurrency limit '{name}': {e}. Heavy work "
                            "refuses to start without it (a missing tag limit means no limit). "
                            "Check `studio server status`.") from e
    if got is None or got.limit != s.gpu.limit or not got.active:
        raise GpuLimitError(f"concurrency limit '{name}' reads back as {got!r}, expected limit={s.gpu.limit}, "
                            "active. Fix it with `prefect gcl update` or `studio gpu reset`.")
    return got.limit
