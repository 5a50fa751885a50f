"""Flow `index-knowledge`: the knowledge pack and finished shorts into the knowledge base.

Markdown/YAML/JSON → chunks → embeddings → LanceDB, incremental by content hash: an unchanged pack embeds
nothing, an edited section re-embeds one chunk, a removed file's chunks are deleted. Each finished short's
manifest becomes searchable in `past_generations`.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from studio.resources.runtime.gpu_limit import prepare_flow_run
from studio.tasks.knowledge import ensure_knowledge_indexes, index_knowledge_pack, index_past_generation_task


@flow(name="index-knowledge", flow_run_name="index-knowledge")
def index_knowledge(pack_dir: str | None = None, manifests: list[str] | None = None,
                    manifests_dir: str | None = None) -> dict:
    """pack_dir: the knowledge pack (default STUDIO_KNOWLEDGE_DIR or the shipped one); manifests: finished
    shorts' manifest files; manifests_dir: a folder searched for `manifest.json` files."""
    prepare_flow_run(heavy=False)
    logger = get_run_logger()
    pack = index_knowledge_pack(pack_dir)
    paths = list(manifests or [])
    if manifests_dir:
        paths += sorted(str(p) for p in Path(manifests_dir).rglob("manifest.json"))
    past = {p: index_past_generation_task(p) for p in dict.fromkeys(paths)}
    indexed = ensure_knowledge_indexes()
    rows = "\n".join(f"| {c} | {s['embedded']} | {s['unchanged']} | {s['deleted']} |" for c, s in pack.items())
    create_markdown_artifact(key="knowledge-index", description="knowledge pack indexing",
                             markdown="| collection | embedded | unchanged | deleted |\n|---|---|---|---|\n" + rows
                             + f"\n\n{len(past)} past generation(s) indexed.")
    logger.info("knowledge pack: %s; past generations: %d", pack, len(past))
    return {"pack": pack, "past_generations": past, "ann_indexes_built": indexed}


if __name__ == "__main__":
    index_knowledge()
