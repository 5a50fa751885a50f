"""Idempotent set-up of what deployments need on a Prefect server: the `process` work pool, its work queues
(`interactive` high priority, `batch` low priority and one at a time) and the `gpu-heavy` limit.

Run through `studio deploy` (which then runs `prefect deploy --all` from the repo root) or directly:
`python -m studio.deployments.bootstrap`. Safe to run any number of times, on one host or many.
"""

from __future__ import annotations

from dataclasses import dataclass

POOL = "studio-process"


@dataclass(frozen=True)
class QueueSpec:
    name: str
    priority: int
    concurrency_limit: int | None
    description: str


QUEUES = (
    QueueSpec("interactive", 1, None, "on-demand shorts from the UI/CLI: served first"),
    QueueSpec("batch", 10, 1, "scheduled batch generation, indexing, film analysis: one at a time"),
)


def bootstrap(pool: str = POOL) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    from studio.resources.runtime.gpu_limit import ensure_gpu_limit
    from studio.resources.runtime.prefect_server import ensure_result_storage, require_server

    require_server()
    report: dict = {"pool": pool, "queues": {}}
    with get_client(sync_client=True) as c:
        try:
            c.read_work_pool(pool)
            report["pool_created"] = False
        except ObjectNotFound:
            c.create_work_pool(WorkPoolCreate(name=pool, type="process",
                                              description="Animation studio: one worker per GPU host"))
            report["pool_created"] = True
        for q in QUEUES:
            try:
                existing = c.read_work_queue_by_name(q.name, work_pool_name=pool)
                c.update_work_queue(existing.id, priority=q.priority, concurrency_limit=q.concurrency_limit,
                                    description=q.description)
                report["queues"][q.name] = "updated"
            except ObjectNotFound:
                c.create_work_queue(name=q.name, priority=q.priority, concurrency_limit=q.concurrency_limit,
                                    description=q.description, work_pool_name=pool)
                report["queues"][q.name] = "created"
    report["gpu_heavy_limit"] = ensure_gpu_limit()
    report["result_storage"] = ensure_result_storage() or "local"
    return report


if __name__ == "__main__":
    from studio.resources.runtime.prefect_server import configure_prefect_env

    configure_prefect_env()
    print(bootstrap())
