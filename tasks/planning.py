"""Prefect tasks for planning: a plan is a recipe-addressed JSON artifact like any other.

The recipe names the LLM (backend + model id), the request, shot count, seed, the registry fingerprint and
the prompt version, so the same request is planned once and a registry or prompt change plans again. The
task carries `gpu-heavy` only when the LLM is a local GPU server that is really going to run.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from studio.configs.vocabulary import Plan
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe
from studio.tasks.caching import generation_task_options, heavy_tags


def _endpoint(profile: str | None) -> Any:
    from studio.resources.llm.servers import llm_endpoint

    return llm_endpoint(profile)


def plan_recipe(request: str, shots: int | None = None, seed: int = 0, profile: str | None = None,
                knowledge: bool = True) -> Recipe:
    from studio.agents.context import load_director_config
    from studio.agents.director import PROMPT_VERSION
    from studio.agents.registry import PlanRegistry

    ep = _endpoint(profile)
    return Recipe(stage="plan", backend=ep.entry.backend, model=ep.model_id,
                  params={"request": " ".join(request.split()), "shots": shots, "seed": seed,
                          "registry": PlanRegistry.from_configs().fingerprint(), "prompt": PROMPT_VERSION,
                          "director": load_director_config().model_dump(),
                          **({} if knowledge else {"knowledge": False})})


@task(name="plan_short", task_run_name="plan-short-seed{seed}", **generation_task_options(heavy=False))
def plan_short_task(recipe: Recipe, request: str, shots: int | None = None, seed: int = 0,
                    profile: str | None = None, knowledge: bool = True) -> ArtifactRef:
    """Plan with the director and store {plan, report}; nothing is stored when planning fails. `knowledge`
    off: plan without retrieval."""
    from studio.agents.director import plan_short

    def build() -> dict[str, Any]:
        plan, report = plan_short(request, shots, seed, profile=profile, search="default" if knowledge else None)
        return {"plan": plan.model_dump(mode="json"), "report": report}

    return ArtifactStore.from_settings().lookup_or_make_json(recipe, build)


@task(name="revise_plan", task_run_name="revise-plan-it{iteration}", **generation_task_options(heavy=False))
def revise_plan_task(recipe: Recipe, plan_ref: ArtifactRef, scores: list[dict[str, Any]], threshold: float | None,
                     iteration: int = 0, profile: str | None = None) -> ArtifactRef:
    from studio.agents.director import revise_failing_shots

    stored = ArtifactStore.from_settings().read_json(plan_ref)
    request = ((stored.get("report") or {}).get("intent") or {}).get("request", "")

    def build() -> dict[str, Any]:
        plan, report = revise_failing_shots(load_plan(plan_ref), scores, threshold, iteration=iteration,
                                            request=request, profile=profile)
        return {"plan": plan.model_dump(mode="json"), "report": report}

    return ArtifactStore.from_settings().lookup_or_make_json(recipe, build)


def load_plan(ref: ArtifactRef) -> Plan:
    from studio.agents.schema import validate_plan

    return validate_plan(ArtifactStore.from_settings().read_json(ref)["plan"])


def plan_short_in_flow(request: str, shots: int | None = None, seed: int = 0, profile: str | None = None,
                       knowledge: bool = True) -> ArtifactRef:
    """Run the planning task with the right tags (call inside a flow)."""
    recipe = plan_recipe(request, shots, seed, profile, knowledge)
    tags = heavy_tags(recipe, bool(getattr(_endpoint(profile), "heavy", False)))
    return plan_short_task.with_options(tags=sorted(tags))(recipe, request, shots, seed, profile, knowledge)


def revise_plan_in_flow(plan_ref: ArtifactRef, scores: list[dict[str, Any]], threshold: float | None = None,
                        iteration: int = 0, profile: str | None = None) -> ArtifactRef:
    ep = _endpoint(profile)
    recipe = Recipe(stage="plan_revision", backend=ep.entry.backend, model=ep.model_id, inputs=[plan_ref.sha256],
                    params={"scores": scores, "threshold": threshold, "iteration": iteration})
    tags = heavy_tags(recipe, bool(getattr(ep, "heavy", False)))
    return revise_plan_task.with_options(tags=sorted(tags))(recipe, plan_ref, scores, threshold, iteration, profile)
