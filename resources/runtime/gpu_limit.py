"""The `gpu-heavy` tag limit, created idempotently and verified, the checks every flow makes at start, and the
one-writer-at-a-time lock of the knowledge base every host shares.

A missing tag limit silently means *no* limit: Prefect runs tagged tasks unbounded and says nothing. So heavy
work refuses to start when the limit cannot be verified.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from studio.configs.errors import StudioError
from studio.configs.settings import GPU_HEAVY_TAG, get_settings
from studio.resources.runtime.prefect_server import ensure_result_storage, require_server


class GpuLimitError(StudioError):
    pass


def limit_name() -> str:
    return f"tag:{GPU_HEAVY_TAG}"


def ensure_gpu_limit() -> int:
    """Create/repair `tag:gpu-heavy` = N and this host's device slot `tag:gpu-heavy:<device>` = 1 (idempotent)
    and read both back. Returns the verified global limit."""
    from studio.resources.runtime.residency import device_tag

    require_server()
    got = _ensure_limit(limit_name(), get_settings().gpu.limit)
    _ensure_limit(f"tag:{device_tag()}", 1)
    return got


def _ensure_limit(name: str, limit: int) -> int:
    from prefect.client.orchestration import get_client

    for attempt in range(3):  # two processes creating it at once: one create loses the race, then it exists
        try:
            with get_client(sync_client=True) as client:
                client.upsert_global_concurrency_limit_by_name(name, limit=limit)
                got = client.read_global_concurrency_limit_by_name(name)
            break
        except Exception as e:  # noqa: BLE001 - any client failure means "not verified"
            if attempt == 2:
                raise GpuLimitError(f"could not create or verify the concurrency limit '{name}': "
                                    f"{type(e).__name__} {e}. The work it guards refuses to start without it (a "
                                    "missing limit means no limit). Check `studio server status`.") from e
            time.sleep(0.5 * (attempt + 1))
    if got is None or got.limit != limit or not got.active:
        raise GpuLimitError(f"concurrency limit '{name}' reads back as {got!r}, expected limit={limit}, "
                            "active. Fix it with `prefect gcl update` or `studio gpu reset`.")
    return got.limit


def prepare_flow_run(heavy: bool = True) -> None:
    """Start-of-flow checks: server reachable, gpu-heavy limit verified (heavy flows), result storage saved."""
    require_server()
    if heavy:
        ensure_gpu_limit()
    ensure_result_storage()


KNOWLEDGE_WRITES = "studio-knowledge-writes"


@contextlib.contextmanager
def knowledge_writes(timeout_s: float = 900.0) -> Iterator[None]:
    """Hold the studio-wide knowledge-base write slot: a Prefect global concurrency limit of 1 (created on first
    use), so two hosts (or two workers of one home) never write the same LanceDB tables at once — with an S3
    store the knowledge base is one shared dataset, and two concurrent first-time indexings conflict. The lease
    is renewed while held and expires a minute after a killed holder dies."""
    from prefect.concurrency.sync import concurrency

    _ensure_limit(KNOWLEDGE_WRITES, 1)
    with concurrency(KNOWLEDGE_WRITES, occupy=1, timeout_seconds=timeout_s, lease_duration=60, strict=True):
        yield
