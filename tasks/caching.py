"""Task options for recipe-addressed artifact tasks: the artifact store is the cache, Prefect persists nothing.

Why not Prefect's result records: they would live on shared storage (the S3 bucket every host uses), and
Prefect's `ResultRecord.deserialize` uses the serializer named in the record's *own* metadata — a record that
says `pickle` is unpickled even when the task asked for JSON, so anyone who can write the bucket would run code
on every worker. So artifact tasks set `persist_result=False` and `NO_CACHE`: every run of a task calls its
body, whose `ArtifactStore.lookup_or_make` returns the stored artifact when its (validated) sidecar and content
hash check out — the same reuse across runs, processes and hosts, and a missing or corrupt artifact is simply
made again. Nothing read from the store is ever unpickled.

Transient store errors are retried inside the store (backoff) and then once more by Prefect (a task retry),
never treated as "absent".
"""

from __future__ import annotations

from typing import Any

from prefect.cache_policies import NO_CACHE

from studio.configs.settings import GPU_HEAVY_TAG
from studio.resources.runtime.artifacts import ArtifactStore, Recipe, StoreUnavailableError


def retry_on_store_outage(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry a task only when the store did not answer (not on bad input or bugs)."""
    try:
        state.result()
    except StoreUnavailableError:
        return True
    except Exception:  # noqa: BLE001 - any other failure is not retried
        return False
    return False


def heavy_tags(recipe: Recipe | None, heavy: bool, tag: str = GPU_HEAVY_TAG) -> set[str]:
    """Tags for a generation task run: `gpu-heavy` + `gpu-heavy:<device>` only when a heavy model will really be
    loaded. Prefect takes all of a task's tag slots at once or none, so a task waiting for its device never
    holds a global slot meanwhile.

    Prefect takes the tag slot before the task body runs, so a task whose artifact is already stored would
    still queue behind another process's GPU work. When the artifact is already in the store we drop the tag.
    """
    if not heavy:
        return set()
    if recipe is not None and ArtifactStore.from_settings().lookup(recipe) is not None:
        return set()
    from studio.resources.runtime.residency import device_tag

    return {tag, device_tag()}  # the global count and this device's own slot (limit 1), taken together


def generation_task_options(heavy: bool = False) -> dict[str, Any]:
    """Common `@task` options for tasks that produce one recipe-addressed artifact and return its ref."""
    opts: dict[str, Any] = {
        "cache_policy": NO_CACHE,
        "persist_result": False,
        "retries": 1,
        "retry_delay_seconds": 5,
        "retry_condition_fn": retry_on_store_outage,
    }
    if heavy:
        opts["tags"] = [GPU_HEAVY_TAG]
    return opts

