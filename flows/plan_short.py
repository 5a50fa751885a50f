"""plan-short: a creative request → a validated plan, as a Prefect flow run of its own (what `studio plan` runs).

The planning task is the one create_short uses (recipe-addressed: the same request, seed, model, registry and
prompt version are planned once and then read from the store), so a plan made here is the plan a later
`studio make` of the same request starts from. The run's page shows the plan as a table; its logs say which
plan was chosen.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed
from pydantic import Field

from studio.configs.errors import StudioError
from studio.configs.vocabulary import MAX_REQUEST_CHARS, MAX_SHOTS, Plan
from studio.resources.runtime.artifacts import ArtifactStore
from studio.resources.runtime.gpu_limit import prepare_flow_run
from studio.resources.runtime.outputs import folder_name
from studio.tasks.planning import load_plan, plan_short_in_flow
from studio.tasks.shorts import log_plan


def _run_name() -> str:
    from prefect.runtime import flow_run

    return f"plan-{folder_name(str(flow_run.parameters.get('request', '')))}"


def plan_table(plan: Plan) -> str:
    """The plan as the markdown table the run's Artifacts tab shows."""

    def cell(text: str) -> str:
        return " ".join(text.split()).replace("|", "\\|")

    rows = [f"| {s.id} | {s.source} | {s.camera} | {s.duration:.1f} | {cell(s.action)} | "
            + (cell(f"{s.dialogue.character}: {s.dialogue.line}") if s.dialogue else "") + " |" for s in plan.shots]
    return (f"## {cell(plan.title)}\n\n{len(plan.shots)} shots, {plan.total_duration:.1f} s\n\n"
            "| # | source | camera | s | action | line |\n|---|---|---|---|---|---|\n" + "\n".join(rows))


@flow(name="plan-short", flow_run_name=_run_name, validate_parameters=True)
def plan_short(
    request: Annotated[str, Field(min_length=1, max_length=MAX_REQUEST_CHARS)],
    shots: Annotated[int | None, Field(ge=1, le=MAX_SHOTS)] = None,
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0,
    profile: str | None = None,
    knowledge: bool = True,
) -> dict[str, Any]:
    """Plan a short with the director and return {plan, report}.

    Args:
        request: What the short is about.
        shots: How many shots; empty: the director decides.
        seed: Sampling seed (same request and seed: the same plan).
        profile: preview | gpu | auto; empty: STUDIO_PROFILE.
        knowledge: Retrieve from the knowledge base (index it first, incrementally); off: plan without retrieval.
    """
    from studio.resources.registry import resolve_profile

    profile = resolve_profile(profile)
    prepare_flow_run(heavy=False)
    logger = get_run_logger()
    try:
        if knowledge:
            from studio.flows.index_knowledge import index_knowledge

            index_knowledge()  # incremental: unchanged documents are not embedded again
        ref = plan_short_in_flow(request, shots, seed, profile, knowledge=knowledge)
        stored = ArtifactStore.from_settings().read_json(ref)
        plan = load_plan(ref)
    except StudioError as e:  # the user's input or set-up: the message says what to change, no traceback
        logger.error("%s", e)
        return Failed(message=str(e), data=e)
    log_plan(plan, stored.get("report") or {})
    create_markdown_artifact(key="plan", description=f"the plan of {plan.title!r}", markdown=plan_table(plan))
    return {"plan": plan.model_dump(mode="json"), "report": stored.get("report") or {}}
