"""create_short: a creative request → a planned, rendered, voiced, subtitled short.

    request → director (intent, RAG, plan) → ALL keyframes + footage picks → ALL voice lines → judging
    → bounded revision of failing shots only → per-shot segments → assembly (music, subtitles)

Stage order matters on a 16 GB GPU: each heavy model is loaded once per job instead of ping-ponging per shot.
Every step is a recipe-cached task, so rerunning after a crash or kill -9 (or Prefect's Retry) finishes the
short without executing any finished task again, and an edited plan re-renders only the shots it changes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from studio.configs.vocabulary import Plan
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore
from studio.resources.runtime.gpu_limit import prepare_flow_run
from studio.tasks import shorts
from studio.tasks.images import image_backend, keyframe_recipe, render_contact_sheet, render_keyframe, sheet_recipe
from studio.tasks.planning import load_plan, plan_short_in_flow, revise_plan_in_flow
from studio.tasks.video import assemble_cut, cut_recipe, render_segment, segment_recipe
from studio.tasks.voice import line_recipe, read_line_timing, voice_task_for

MAX_REQUEST_CHARS = 100_000


def slugify(text: str, n: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:n].rstrip("-") or "untitled"


def _run_name() -> str:
    from prefect.runtime import flow_run

    return f"short-{slugify(str(flow_run.parameters.get('request', '')))}"


class Progress:
    """Stage and shot progress: a Prefect progress artifact plus progress.jsonl for the CLI's live view."""

    def __init__(self, out_dir: Path, total_steps: int):
        self.path = out_dir / "progress.jsonl"
        self.t0 = time.monotonic()
        self.total = max(total_steps, 1)
        self.done = 0
        self.artifact_id = create_progress_artifact(0.0, key="short-progress", description="shots finished")

    def event(self, stage: str, detail: str = "", advance: int = 0) -> None:
        self.done += advance
        pct = min(100.0, 100.0 * self.done / self.total)
        update_progress_artifact(self.artifact_id, pct)
        with open(self.path, "a") as f:
            f.write(json.dumps({"t": time.time(), "elapsed": round(time.monotonic() - self.t0, 1), "stage": stage,
                                "detail": detail, "percent": round(pct, 1)}) + "\n")


def _ref_entry(store: ArtifactStore, ref: ArtifactRef | None) -> dict | None:
    if ref is None:
        return None
    side = store.sidecar(ref)
    return {**ref.model_dump(), "recipe": side.get("recipe")}


def _stage_visuals(plan: Plan, seed: int, profile: str, store: ArtifactStore, progress: Progress,
                   voice_seconds: dict[int, float]) -> tuple[dict[int, ArtifactRef], dict[int, ArtifactRef]]:
    """All keyframes (storyboard or SDXL) and footage picks, submitted together: one model load per stage."""
    from studio.resources.image.request import image_request_from_shot
    from studio.tasks.caching import heavy_tags

    backend = image_backend(profile=profile)
    futures, picks = {}, {}
    fingerprint = None
    for shot in plan.shots:
        if shot.source == "footage":
            fingerprint = fingerprint or shorts.film_scenes_fingerprint()
            need = shorts.shot_seconds(shot, voice_seconds.get(shot.id))
            picks[shot.id] = shorts.pick_footage.submit(shorts.footage_recipe(shot, need, fingerprint), shot)
            continue
        # The keyframe never shows the dialogue: editing a line must not re-render the picture.
        request = image_request_from_shot(shot.model_copy(update={"dialogue": None}), plan, seed=seed + shot.id)
        recipe, prepared = keyframe_recipe(backend, request)
        task = render_keyframe.with_options(tags=sorted(heavy_tags(recipe, backend.heavy)))
        futures[shot.id] = task.submit(recipe, prepared.model_dump(mode="json"))
    keyframes = {}
    for sid, fut in futures.items():
        keyframes[sid] = fut.result()
        progress.event("keyframes", f"shot {sid}/{len(plan.shots)}", advance=1)
    footage = {}
    for sid, fut in picks.items():
        footage[sid] = fut.result()
        progress.event("footage", f"shot {sid}/{len(plan.shots)}", advance=1)
    return keyframes, footage


def _stage_voices(plan: Plan, seed: int, profile: str, progress: Progress) -> dict[int, ArtifactRef]:
    futures = {}
    for shot in plan.shots:
        if shot.dialogue:
            d = shot.dialogue
            recipe = line_recipe(d.character, d.line, d.emotion, d.intensity, seed=seed, profile=profile)
            futures[shot.id] = voice_task_for(recipe).submit(recipe)
    voices = {}
    for sid, fut in futures.items():
        voices[sid] = fut.result()
        progress.event("voices", f"line of shot {sid}", advance=1)
    return voices


def _media(plan: Plan, store: ArtifactStore, keyframes: dict, footage_frames: dict, voices: dict) -> list[dict]:
    from studio.configs.schema import studio_config
    from studio.resources.image.storyboard.frame import reference_paths

    chars = studio_config().characters
    media = []
    for shot in plan.shots:
        frame = keyframes.get(shot.id) or footage_frames.get(shot.id)
        voice = voices.get(shot.id)
        refs = [str(p) for c in shot.characters for p in reference_paths(chars.resolve(c)[1])]
        media.append({"shot_id": shot.id, "keyframe": str(store.local_path(frame)) if frame else None,
                      "audio": str(store.local_path(voice)) if voice else None, "references": refs,
                      "keyframe_sha": frame.sha256 if frame else None, "audio_sha": voice.sha256 if voice else None})
    return media


@flow(name="create-short", flow_run_name=_run_name, log_prints=True)
def create_short(request: str, profile: str = "preview", shots: int | None = None, seed: int = 0,
                 plan: dict[str, Any] | None = None, out_dir: str | None = None, max_revisions: int | None = None
                 ) -> dict[str, Any]:
    """request: what to make; profile: preview | gpu | auto; shots: how many (default: the director's choice);
    seed: all randomness; plan: an edited plan or manifest (only changed shots re-render); out_dir: outputs."""
    from studio.agents.context import load_director_config
    from studio.agents.schema import validate_plan
    from studio.configs.settings import get_settings
    from studio.resources.registry import resolve_profile
    from studio.resources.runtime.residency import read_residency_log

    logger = get_run_logger()
    t_start = time.time()
    profile = resolve_profile(profile)
    prepare_flow_run(heavy=profile == "gpu")
    store = ArtifactStore.from_settings()
    out = Path(out_dir or get_settings().home / "shorts" / slugify(request)).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def lap(stage: str, t0: float) -> None:
        timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - t0, 3)

    # 1. The plan (cached per request + seed + models + registry), or the user's edited plan.
    t0 = time.perf_counter()
    from studio.flows.index_knowledge import index_knowledge

    index_knowledge()  # incremental: unchanged documents are not embedded again
    if plan is not None:
        the_plan = validate_plan(plan.get("plan", plan))
        recipe = shorts_plan_recipe(the_plan)
        plan_ref = store.lookup(recipe) or store.put_json(recipe, {"plan": the_plan.model_dump(mode="json"),
                                                                    "report": {"source": "user"}})
    else:
        plan_ref = plan_short_in_flow(request, shots, seed, profile)
        the_plan = load_plan(plan_ref)
    plan_report = store.read_json(plan_ref).get("report", {})
    lap("plan", t0)
    if any(s.source == "footage" for s in the_plan.shots):
        _ensure_film_index()
    progress = Progress(out, total_steps=3 * len(the_plan.shots) + 2)
    progress.event("plan", f"{len(the_plan.shots)} shots: {the_plan.title}")

    # 2–4. Visuals, voices, judging; then revise only failing shots (bounded).
    cfg = load_director_config()
    limit = cfg.revision.max_iterations if max_revisions is None else max_revisions
    rounds: list[dict] = []
    for iteration in range(limit + 1):
        t0 = time.perf_counter()
        voices = _stage_voices(the_plan, seed, profile, progress)
        lap("voices", t0)
        voice_s = {sid: float(store.sidecar(ref)["extra"]["duration_s"]) for sid, ref in voices.items()}
        t0 = time.perf_counter()
        keyframes, footage = _stage_visuals(the_plan, seed, profile, store, progress, voice_s)
        footage_frames = {sid: shorts.footage_frame(ref) for sid, ref in footage.items()}
        lap("visuals", t0)
        t0 = time.perf_counter()
        media = _media(the_plan, store, keyframes, footage_frames, voices)
        judge = _judge_backend(profile)
        scores_ref = shorts.judge_shots(shorts.judge_recipe(judge, the_plan, media), media, profile)
        scores = store.read_json(scores_ref)
        lap("judge", t0)
        failing = [s["shot_id"] for s in scores if s["score"] < cfg.revision.threshold]
        rounds.append({"iteration": iteration, "scores": scores, "failing": failing})
        progress.event("judge", f"round {iteration}: {len(failing)} shot(s) below {cfg.revision.threshold}")
        if not failing or iteration == limit:
            break
        t0 = time.perf_counter()
        revised_ref = revise_plan_in_flow(plan_ref, scores, cfg.revision.threshold, iteration, profile)
        revised = load_plan(revised_ref)
        lap("revise", t0)
        if revised == the_plan:
            break  # the director kept the plan: no point rendering it again
        plan_ref, the_plan = revised_ref, revised

    # 5. Segments (one per shot, recipe-cached), then the cut.
    t0 = time.perf_counter()
    seg_futures = []
    for shot in the_plan.shots:
        pick = store.read_json(footage[shot.id]) if shot.id in footage else None
        spec = shorts.segment_spec_for(
            shot, keyframe=store.local_path(keyframes[shot.id]) if shot.id in keyframes else None, footage=pick,
            voice=store.local_path(voices[shot.id]) if shot.id in voices else None, voice_s=voice_s.get(shot.id))
        seg_futures.append(render_segment.submit(segment_recipe(spec), spec))
    segments = []
    for shot, fut in zip(the_plan.shots, seg_futures, strict=True):
        segments.append(fut.result())
        progress.event("segments", f"shot {shot.id}/{len(the_plan.shots)}", advance=1)
    cut = assemble_cut(cut_recipe(segments, music="procedural"), segments, "procedural")
    lap("segments+assembly", t0)

    # 6. The storyboard sheet, the outputs, the manifest.
    t0 = time.perf_counter()
    tiles = []
    for shot, seg in zip(the_plan.shots, segments, strict=True):
        frame = keyframes.get(shot.id) or footage_frames[shot.id]
        line = f'{shot.dialogue.character}: "{shot.dialogue.line}"' if shot.dialogue else shot.action
        seconds = float(store.sidecar(seg)["extra"].get("duration", shot.duration))
        tiles.append((frame, [f"#{shot.id} · {shot.camera} · {seconds:.1f}s", line[:90]]))
    sheet = render_contact_sheet(sheet_recipe(tiles, the_plan.title, None), tiles)
    outputs = _export(store, cut, sheet, out)
    lap("outputs", t0)

    residency = [r for r in read_residency_log() if r["t"] >= t_start and r["pid"] == os.getpid()]
    manifest = {
        "request": request, "profile": profile, "seed": seed, "plan": the_plan.model_dump(mode="json"),
        "plan_artifact": _ref_entry(store, plan_ref), "director": plan_report,
        "shots": [{"id": s.id, "planned_s": s.duration,
                   "seconds": float(store.sidecar(seg)["extra"]["duration"]),
                   "keyframe": _ref_entry(store, keyframes.get(s.id)),
                   "footage": store.read_json(footage[s.id]) if s.id in footage else None,
                   "footage_artifact": _ref_entry(store, footage.get(s.id)),
                   "voice": _ref_entry(store, voices.get(s.id)),
                   "voice_timing": read_line_timing(voices[s.id]) if s.id in voices else None,
                   "segment": _ref_entry(store, seg)} for s, seg in zip(the_plan.shots, segments, strict=True)],
        "cut": _ref_entry(store, cut), "storyboard": _ref_entry(store, sheet), "judge": rounds,
        "timings_s": timings, "residency": residency, "outputs": {k: str(v) for k, v in outputs.items()},
        "duration_s": float(store.sidecar(cut)["extra"]["duration"]),
    }
    (out / "manifest.json").write_text(shorts.manifest_json(manifest))
    outputs["manifest"] = out / "manifest.json"
    progress.event("done", str(outputs["short"]), advance=1)
    _report_to_ui(request, the_plan, plan_report, rounds, manifest, outputs)
    _index_past_generation(outputs["manifest"], logger)
    logger.info("short ready: %s", outputs["short"])
    return {k: str(v) for k, v in outputs.items()} | {"duration_s": manifest["duration_s"]}


def shorts_plan_recipe(plan: Plan):
    from studio.resources.runtime.artifacts import Recipe

    return Recipe(stage="plan", backend="user", params={"plan": plan.model_dump(mode="json")})


def _judge_backend(profile: str) -> Any:
    from studio.resources.registry import load_backend

    return load_backend("judge", profile)


def _ensure_film_index() -> None:
    """Footage shots need indexed scenes: analyse the demo film once (cached) when the index is empty."""
    from studio.resources.knowledge.store import KnowledgeBase
    from studio.resources.media.frames import sample_footage_path

    if KnowledgeBase.from_settings().count("film_scenes") == 0:
        from studio.flows.analyze_film import analyze_film

        analyze_film(str(sample_footage_path()), index=True)


def _export(store: ArtifactStore, cut: ArtifactRef, sheet: ArtifactRef, out: Path) -> dict[str, Path]:
    outputs = {"short": out / "short.mp4", "storyboard": out / "storyboard.png", "subtitles": out / "subtitles.srt"}
    for ref, dst in ((cut, outputs["short"]), (sheet, outputs["storyboard"])):
        tmp = dst.with_suffix(dst.suffix + ".part")
        shutil.copyfile(store.local_path(ref), tmp)
        os.replace(tmp, dst)
    subs = (store.sidecar(cut).get("extra") or {}).get("subtitles")
    if subs:
        shutil.copyfile(store.local_path(ArtifactRef(**subs)), outputs["subtitles"])
    else:
        outputs["subtitles"].write_text("")
    return outputs


def _report_to_ui(request: str, plan: Plan, report: dict, rounds: list[dict], manifest: dict,
                  outputs: dict[str, Path]) -> None:
    last = {s["shot_id"]: s for s in rounds[-1]["scores"]}
    retrieved = report.get("retrieved") or report.get("citations") or []
    lines = [f"# {plan.title}", "", f"> {request[:300]}", "", plan.logline, "",
             f"**Duration** {manifest['duration_s']:.1f} s · **shots** {len(plan.shots)} · "
             f"**judge rounds** {len(rounds)}", "", "## Retrieved knowledge"]
    lines += [f"- {r.get('id', r) if isinstance(r, dict) else r}" for r in retrieved[:12]] or ["- (none)"]
    lines += ["", "## Timings (s)", *(f"- {k}: {v}" for k, v in manifest["timings_s"].items())]
    create_markdown_artifact("\n".join(lines), key="short-summary", description="plan, knowledge, scores")
    create_table_artifact([
        {"shot": s.id, "source": s.source, "characters": ", ".join(s.characters), "camera": s.camera,
         "duration": s.duration, "line": s.dialogue.line if s.dialogue else "", "effects": ", ".join(s.effects),
         "score": last.get(s.id, {}).get("score")} for s in plan.shots], key="short-shots")
    for name, path in outputs.items():
        create_link_artifact(f"file://{path}", link_text=f"{name}: {path.name}", key=f"short-{name}")


def _index_past_generation(manifest: Path, logger: Any) -> None:
    try:
        from studio.resources.knowledge.pack import index_past_generation

        index_past_generation(manifest)
    except Exception as e:  # noqa: BLE001 - the short is done; indexing it is a bonus, report and go on
        logger.warning("could not index this short into past_generations: %s", e)
