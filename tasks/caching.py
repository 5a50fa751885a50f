"""Prefect caching keyed on artifact recipes.

`RecipeCachePolicy` keys a task run on its `recipe` argument (stage, backend + model revision, parameters,
upstream hashes) plus the task's source. When the recipe's artifact is missing or fails its hash check, a
cached result can never be handed back: the policy returns no key if it cannot drop the stale result record,
and otherwise drops it, so Prefect runs the task again instead of returning a path to a file that is gone.

Why drop-and-keep-the-key rather than always `None`: Prefect computes the key *before* the task runs, when a
first run's artifact does not exist yet; a `None` there would mean no run ever records a cache entry.

Why not Prefect's default: it includes RUN_ID (nothing reused across runs), and INPUTS alone collides across
different tasks with equal inputs (FACTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.cache_policies import TASK_SOURCE, CachePolicy
from prefect.context import TaskRunContext

from studio.configs.settings import GPU_HEAVY_TAG
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe


def _as_recipe(value: Any) -> Recipe | None:
    if isinstance(value, Recipe):
        return value
    if isinstance(value, dict) and "stage" in value and "backend" in value:
        return Recipe.model_validate(value)
    return None


@dataclass
class RecipeCachePolicy(CachePolicy):
    recipe_arg: str = "recipe"

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> str | None:
        recipe = _as_recipe(inputs.get(self.recipe_arg))
        if recipe is None:
            return None
        source = TASK_SOURCE.compute_key(task_ctx, inputs, flow_parameters, **kwargs) or ""
        key = f"{recipe.stage}-{recipe.key()[:40]}-{source[:12]}"
        current = ArtifactStore.from_settings().lookup(recipe)
        store = getattr(task_ctx, "result_store", None)
        if store is None or not store.exists(key):
            return key  # nothing recorded yet: the run records under this key
        try:
            recorded = store.read(key).result
        except Exception:  # noqa: BLE001 - an unreadable record is a stale record
            recorded = None
        recorded_sha = (recorded.sha256 if isinstance(recorded, ArtifactRef)
                        else recorded.get("sha256") if isinstance(recorded, dict) else None)
        if current is not None and recorded_sha == current.sha256:
            return key  # record and artifact agree: cache hit
        # The artifact is missing, corrupt, or was re-made with other bytes: the record is stale.
        return key if _drop_record(store, key) else None




def _drop_record(result_store: Any, key: str) -> bool:
    """Delete a result record from local or fsspec-backed result storage. True when it is gone."""
    from prefect.filesystems import LocalFileSystem, RemoteFileSystem

    storage = result_store.metadata_storage or result_store.result_storage
    resolve = getattr(storage, "_resolve_path", None)
    path = str(resolve(key)) if resolve else key
    try:
        if isinstance(storage, LocalFileSystem):
            Path(path).unlink(missing_ok=True)
        elif isinstance(storage, RemoteFileSystem):
            if storage.filesystem.exists(path):
                storage.filesystem.rm(path)
        else:
            return False
    except OSError:
        return False
    return not result_store.exists(key)


def heavy_tags(recipe: Recipe | None, heavy: bool, tag: str = GPU_HEAVY_TAG) -> set[str]:
    """Tags for a generation task run: `gpu-heavy` only when a heavy model will really be loaded.

    Prefect takes the tag slot BEFORE the cache lookup (FACTS.md), so a cached heavy task would still queue
    behind another process's GPU work. When the artifact is already in the store we drop the tag.
    """
    if not heavy:
        return set()
    if recipe is not None and ArtifactStore.from_settings().lookup(recipe) is not None:
        return set()
    return {tag}


def generation_task_options(heavy: bool = False) -> dict[str, Any]:
    """Common `@task` options for tasks that produce one recipe-addressed artifact and return its ref."""
    opts: dict[str, Any] = {
        "cache_policy": RecipeCachePolicy(),
        "persist_result": True,
        "result_serializer": "json",
        "retries": 0,
    }
    if heavy:
        opts["tags"] = [GPU_HEAVY_TAG]
    return opts
