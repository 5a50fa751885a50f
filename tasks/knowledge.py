"""Prefect tasks for the knowledge base. Indexing is incremental by content hash inside the knowledge base
itself, so these tasks are not result-cached: rerunning one costs reading and hashing, not embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from studio.resources.runtime.gpu_limit import knowledge_writes


@task(name="index_knowledge_pack", cache_policy=NO_CACHE, persist_result=False)
def index_knowledge_pack(pack_dir: str | None = None) -> dict[str, dict[str, Any]]:
    from studio.configs.settings import get_settings
    from studio.resources.knowledge.pack import index_pack
    from studio.resources.knowledge.store import KnowledgeBase

    pack = Path(pack_dir) if pack_dir else get_settings().knowledge_path
    with knowledge_writes():  # one writer at a time across hosts: the knowledge base may be shared (S3)
        stats = index_pack(KnowledgeBase.from_settings(), pack)
    return {c: s.as_dict() for c, s in stats.items()}


@task(name="ensure_knowledge_indexes", cache_policy=NO_CACHE, persist_result=False)
def ensure_knowledge_indexes(min_rows: int = 20_000) -> list[str]:
    """Build the ANN index of every collection that has grown past `min_rows` (bench/RESULTS.md: exact search
    wins at 10k chunks, the index at 100k). Collections that have one already, or are small, are skipped."""
    from studio.resources.knowledge.store import COLLECTIONS, KnowledgeBase

    kb = KnowledgeBase.from_settings()
    with knowledge_writes():
        return [c for c in COLLECTIONS if kb.ensure_index(c, min_rows=min_rows)]


@task(name="index_past_generation", cache_policy=NO_CACHE, persist_result=False)
def index_past_generation_task(manifest_path: str) -> dict[str, Any]:
    from studio.resources.knowledge.pack import index_past_generation

    with knowledge_writes():
        return index_past_generation(manifest_path).as_dict()
