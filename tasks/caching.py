"""Prefect caching keyed on artifact recipes.

`RecipeCachePolicy` keys a task run on its `recipe` argument (stage, backend + model revision, parameters,
upstream hashes) plus the task's source. It returns **no key** when the recipe's artifact is missing or fails
its hash check, so Prefect runs the task again instead of handing back a path to a file that is gone.

Why not Prefect's default: it includes RUN_ID (nothing reused across runs), and INPUTS alone collides across
different tasks with equal inputs (FACTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect.cache_policies import TASK_SOURCE, CachePolicy
from prefect.context import TaskRunContext

from studio.resources.artifacts import ArtifactStore, Recipe


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
        if ArtifactStore.from_settings().lookup(recipe) is None:
            return None  # missing or corrupt: run again
        source = TASK_SOURCE.compute_key(task_ctx, inputs, flow_parameters, **kwargs) or ""
        return f"{recipe.stage}-{recipe.key()[:40]}-{source[:12]}"


GPU_HEAVY_TAG = "gpu-heavy"


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
