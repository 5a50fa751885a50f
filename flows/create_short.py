"""create_short: a creative request → a planned, rendered, voiced, subtitled short.

    request → director (intent, RAG, plan) → ALL voice lines → ALL keyframes + footage picks → judging
    → bounded revision of failing shots only → per-shot segments → assembly (music, subtitles) → outputs

The stages live in tasks/shorts.py (what they do) and tasks/short_report.py (what the run tells the UI, the
CLI and /metrics); this module only orders them. Parameters carry pydantic metadata, so the deployment's form
in the Prefect UI shows descriptions, the profile's choices, defaults and bounds, and refuses bad values before
the run starts.
"""

import time
from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.states import Failed
from pydantic import Field

from studio.configs.errors import StudioError
from studio.configs.settings import Profile, get_settings
from studio.configs.vocabulary import MAX_REQUEST_CHARS, MAX_SHOTS
from studio.resources.runtime.artifacts import ArtifactStore
from studio.resources.runtime.gpu_limit import prepare_flow_run
from studio.resources.runtime.outputs import folder_name, hold_output_folder
from studio.tasks import short_report, shorts
from studio.tasks.planning import load_plan, plan_short_in_flow


def _run_name() -> str:
    from prefect.runtime import flow_run

    return f"short-{folder_name(str(flow_run.parameters.get('request', '')))}"


@flow(name="create-short", flow_run_name=_run_name, log_prints=True, validate_parameters=True)
def create_short(
    request: Annotated[str, Field(min_length=1, max_length=MAX_REQUEST_CHARS)],
    profile: Profile = "preview",
    shots: Annotated[int | None, Field(ge=1, le=MAX_SHOTS)] = None,
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0,
    plan: dict[str, Any] | None = None,
    out_dir: str | None = None,
    max_revisions: Annotated[int | None, Field(ge=0, le=5)] = None,
) -> dict[str, Any]:
    """Make a short: plan → voices → keyframes/footage → judge (+ bounded revision) → segments → short.mp4,
    subtitles.srt, storyboard.png and manifest.json.

    Args:
        request: What the short is about, in a sentence or a paragraph (the knowledge base holds the details).
        profile: preview: CPU models and storyboard frames (minutes); gpu: SDXL keyframes and the VLM judge;
            auto: gpu when an NVIDIA GPU is visible.
        shots: How many shots (1 to the vocabulary's maximum); empty: the director decides.
        seed: Seed of every random choice (same seed and plan: the same bytes).
        plan: An edited plan or a manifest.json's content; only the shots it changes re-render.
        out_dir: Output folder; empty: STUDIO_HOME/shorts/<slug of the request>.
        max_revisions: Judge → revise rounds at most; empty: configs/director.yaml's revision.max_iterations.
    """
    from studio.resources.registry import resolve_profile

    profile = resolve_profile(profile)
    prepare_flow_run(heavy=profile == "gpu")
    out = Path(out_dir or get_settings().home / "shorts" / folder_name(request)).expanduser().resolve()
    with hold_output_folder(out):  # one run per output folder (re-entrant: `studio make` already holds it)
        job = shorts.ShortJob(request, profile, seed, ArtifactStore.from_settings(), out)
        try:
            return _make(job, shots, plan, max_revisions)
        except StudioError as e:  # the user's input or set-up: the message says what to change, no traceback
            if job.progress:
                job.progress.failed(e)
            get_run_logger().error("%s", e)
            return Failed(message=str(e), data=e)  # the run ends Failed; `studio make` re-raises `e` from it
        except BaseException as e:
            if job.progress:
                job.progress.failed(e)
            raise


def _make(job: shorts.ShortJob, shots: int | None, plan: dict[str, Any] | None,
          max_revisions: int | None) -> dict[str, Any]:
    from studio.agents.schema import validate_plan
    from studio.flows.index_knowledge import index_knowledge

    with job.stage("plan"):
        index_knowledge()  # incremental: unchanged documents are not embedded again
        if plan is not None:
            plan_ref = shorts.store_user_plan(job.store, validate_plan(plan.get("plan", plan)))
        else:
            plan_ref = plan_short_in_flow(job.request, shots, job.seed, job.profile)
        the_plan, report = load_plan(plan_ref), job.store.read_json(plan_ref).get("report", {})
    shorts.log_plan(the_plan, report)
    if any(s.source == "footage" for s in the_plan.shots):
        _ensure_film_index()
    job.progress = short_report.Progress(job.out, short_report.progress_steps(the_plan))
    job.event("plan", f"{len(the_plan.shots)} shots: {the_plan.title}")

    plan_ref, the_plan, takes, rounds = shorts.render_and_judge(job, plan_ref, the_plan, max_revisions)
    with job.stage("motion"):
        shorts.motion_stage(job, the_plan, takes)
    with job.stage("segments"):
        segments = shorts.segment_stage(job, the_plan, takes)
    with job.stage("assembly"):
        cut = shorts.assemble_stage(job, segments, the_plan)
    job.timings["segments+assembly"] = round(job.timings["segments"] + job.timings["assembly"], 3)
    with job.stage("outputs"):
        sheet = shorts.storyboard_stage(job, the_plan, takes, segments)
        outputs = shorts.export_outputs(job.store, cut, sheet, job.out)

    manifest = _manifest(job, the_plan, plan_ref, report, takes, segments, cut, sheet, rounds, outputs)
    outputs["manifest"] = short_report.write_manifest(job.out, manifest)
    short_report.report_to_ui(job.request, the_plan, manifest, job.store,
                              {"storyboard": sheet, "cut": cut, "frames": takes.frames, "outputs": outputs})
    _index_past_generation(outputs["manifest"])
    job.progress.finish(str(outputs["short"]))
    get_run_logger().info("short ready: %s (%.1fs)", outputs["short"], manifest["duration_s"])
    return {k: str(v) for k, v in outputs.items()} | {"duration_s": manifest["duration_s"]}


def _manifest(job: shorts.ShortJob, plan: Any, plan_ref: Any, report: dict, takes: shorts.Takes,
              segments: list, cut: Any, sheet: Any, rounds: list[dict], outputs: dict[str, Path]) -> dict[str, Any]:
    import os

    from studio.resources.runtime.residency import read_residency_log

    store, entry = job.store, short_report.ref_entry
    refs = {"keyframes": takes.keyframes, "footage": takes.footage, "voices": takes.voices}
    return {
        "request": job.request, "profile": job.profile, "seed": job.seed, "plan": plan.model_dump(mode="json"),
        "plan_artifact": entry(store, plan_ref), "director": report,
        "shots": short_report.shot_entries(plan, store, refs, segments),
        "cut": entry(store, cut), "storyboard": entry(store, sheet), "judge": rounds, "timings_s": job.timings,
        "residency": [r for r in read_residency_log() if r["t"] >= job.t_start and r["pid"] == os.getpid()],
        "outputs": {k: str(v) for k, v in outputs.items()},
        "duration_s": float(store.sidecar(cut)["extra"]["duration"]), "finished": time.time(),
    }


def _ensure_film_index() -> None:
    """Footage shots need indexed scenes: analyse the demo film once (cached) when the index is empty."""
    from studio.resources.knowledge.store import KnowledgeBase
    from studio.resources.media.frames import sample_footage_path

    if KnowledgeBase.from_settings().count("film_scenes") == 0:
        from studio.flows.analyze_film import analyze_film

        analyze_film(str(sample_footage_path()), index=True)


def _index_past_generation(manifest: Path) -> None:
    try:
        from studio.resources.knowledge.pack import index_past_generation
        from studio.resources.runtime.gpu_limit import knowledge_writes

        with knowledge_writes():  # the knowledge base may be shared by every host (S3): one writer at a time
            index_past_generation(manifest)
    except Exception as e:  # noqa: BLE001 - the short is done; indexing it is a bonus, report and go on
        get_run_logger().warning("could not index this short into past_generations: %s", e)
