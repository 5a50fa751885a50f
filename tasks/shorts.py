"""The create-short flow's stages, one function each: plan, voices, pictures (keyframes + footage), judging with
bounded revision, segments, the cut and the storyboard sheet, the outputs. The flow calls them in order.

Stage order matters on a 16 GB GPU: each heavy model is active in one stretch per job, never ping-ponging per
shot. On the gpu profile: LLM (plan) → voices (GPT-SoVITS: the lines' lengths set the shots') → SDXL (keyframes,
then the expression edits) → judge (VLM) → image-to-video (motion) → SAM2 (masks) → Wav2Lip (lip sync, on stills
and on generated clips) — a job's switches are its distinct heavy models − 1. Only a revision round (bounded,
`max_revisions`) comes back to the voice, SDXL and judge models, for the failing shots.
Every step is a recipe-addressed task, so rerunning after a crash or kill -9 (or Prefect's Retry) finishes the
short without making any finished artifact again, and an edited plan re-renders only the shots it changes.
The segment stage builds one `SegmentSpec` per shot (`segment_spec_for`) and renders it with `render_segment`:
another renderer for a shot kind plugs in there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.runtime import flow_run

from studio.configs.errors import StudioError
from studio.configs.settings import get_settings
from studio.configs.vocabulary import Plan, Shot
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe
from studio.resources.runtime.files import copy_atomic, write_text_atomic
from studio.tasks import footage as footage_tasks
from studio.tasks.animation import plan_lipsync, submit_shot_segment, sync_shot_lips, with_cards
from studio.tasks.caching import heavy_tags
from studio.tasks.expression import exaggerate_keyframes
from studio.tasks.images import image_backend, keyframe_recipe, render_contact_sheet, render_keyframe, sheet_recipe
from studio.tasks.judging import judge_backend, judge_recipe, judge_shots, shot_media
from studio.tasks.motion import clip_path
from studio.tasks.planning import load_plan, revise_plan_in_flow
from studio.tasks.reuse import shows_cached
from studio.tasks.segmentation import collect_masks
from studio.tasks.short_report import Progress, report_stage
from studio.tasks.video import assemble_cut, cut_recipe
from studio.tasks.voice import line_recipe, read_line_timing, voice_task_for

# A still shot moves the way its camera note says (the animatic's "camera"), then the shot's own effects.
CAMERA_EFFECTS: dict[str, list[dict[str, Any]]] = {
    "static": [{"name": "ken_burns", "params": {"zoom_start": 1.0, "zoom_end": 1.06}}],
    "push-in": [{"name": "ken_burns", "params": {"zoom_start": 1.0, "zoom_end": 1.3}}],
    "pull-out": [{"name": "ken_burns", "params": {"zoom_start": 1.3, "zoom_end": 1.0}}],
    "pan-left": [{"name": "ken_burns", "params": {"zoom_start": 1.15, "zoom_end": 1.15, "pan": "left"}}],
    "pan-right": [{"name": "ken_burns", "params": {"zoom_start": 1.15, "zoom_end": 1.15, "pan": "right"}}],
    "tilt-up": [{"name": "ken_burns", "params": {"zoom_start": 1.15, "zoom_end": 1.15, "pan": "up"}}],
    "tilt-down": [{"name": "ken_burns", "params": {"zoom_start": 1.15, "zoom_end": 1.15, "pan": "down"}}],
}
VOICE_LEAD_S = 0.35  # silence before a line starts in its shot
VOICE_TAIL_S = 0.45  # and after it ends


class InjectedFailure(StudioError):
    """Raised where STUDIO_FAIL_AT asks (tests of Retry); unset STUDIO_FAIL_AT to run normally."""


@dataclass
class ShortJob:
    """What every stage of one run shares: the request, the store, the output folder, timings, progress."""

    request: str
    profile: str
    seed: int
    store: ArtifactStore
    out: Path
    t_start: float = field(default_factory=time.time)
    timings: dict[str, float] = field(default_factory=dict)
    progress: Progress | None = None

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage (summed over revision rounds) and note it as where the run stands."""
        if self.progress:
            self.progress.where = name
        fail_point(name)
        t0 = time.perf_counter()
        yield
        self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t0, 3)

    def event(self, stage: str, detail: str = "", advance: int = 0) -> None:
        if self.progress:
            self.progress.event(stage, detail, advance)


@dataclass
class Takes:
    """One round's media per shot id: voice lines (and their seconds), keyframes, footage picks and stills."""

    voices: dict[int, ArtifactRef]
    voice_s: dict[int, float]
    keyframes: dict[int, ArtifactRef]
    footage: dict[int, ArtifactRef]
    frames: dict[int, ArtifactRef]
    clips: dict[int, ArtifactRef] = field(default_factory=dict)  # generated motion per keyframe shot (gpu)


def fail_point(stage: str) -> None:
    """STUDIO_FAIL_AT="STAGE:N": raise at the start of STAGE on the run's first N attempts (Retry tests)."""
    spec = get_settings().fail_at
    if not spec:
        return
    name, _, times = spec.partition(":")
    if name == stage and (flow_run.run_count or 1) <= int(times or 1):
        raise InjectedFailure(f"injected failure at stage '{stage}' (attempt {flow_run.run_count}); "
                              "unset STUDIO_FAIL_AT to run normally")


def plan_recipe_of(plan: Plan) -> Recipe:
    """The recipe of a plan the user supplied (an edited manifest or plan file)."""
    return Recipe(stage="plan", backend="user", params={"plan": plan.model_dump(mode="json")})


def store_user_plan(store: ArtifactStore, plan: Plan) -> ArtifactRef:
    return store.lookup_or_make_json(plan_recipe_of(plan), lambda: {"plan": plan.model_dump(mode="json"),
                                                                     "report": {"source": "user"}})


def log_plan(plan: Plan, report: dict) -> None:
    logger = get_run_logger()
    logger.info("plan: %r, %d shots (%s)", plan.title, len(plan.shots), report.get("source", "director"))
    for s in plan.shots:
        logger.info("shot %s [%s, %s, %.1fs] %s", s.id, s.source, s.camera, s.duration, s.action[:100])


# ----------------------------------------------------------------------------- voices and pictures
def voice_stage(job: ShortJob, plan: Plan) -> tuple[dict[int, ArtifactRef], dict[int, float]]:
    logger = get_run_logger()
    futures = {}
    for shot in plan.shots:
        if shot.dialogue:
            d = shot.dialogue
            recipe = line_recipe(d.character, d.line, d.emotion, d.intensity, seed=job.seed, profile=job.profile)
            futures[shot.id] = shows_cached(voice_task_for(recipe)).submit(recipe)
    voices = {}
    for sid, fut in futures.items():
        voices[sid] = fut.result()
        job.event("voices", f"line of shot {sid}", advance=1)
    seconds = {sid: float(job.store.sidecar(ref)["extra"]["duration_s"]) for sid, ref in voices.items()}
    for shot in plan.shots:
        if shot.id in voices:
            logger.info("voice shot %s: %s says %r (%.2fs)", shot.id, shot.dialogue.character, shot.dialogue.line,
                        seconds[shot.id])
    report_stage("voice_line", voices, job.store, job.t_start)
    return voices, seconds


def picture_stage(job: ShortJob, plan: Plan, voice_s: dict[int, float]
                  ) -> tuple[dict[int, ArtifactRef], dict[int, ArtifactRef], dict[int, ArtifactRef]]:
    """All keyframes (storyboard or SDXL) and footage picks, submitted together: one model load per stage.
    Returns keyframes, footage picks, and every shot's still (keyframe or footage frame)."""
    from studio.resources.image.request import image_request_from_shot

    backend = image_backend(profile=job.profile)
    futures, picks = {}, {}
    fingerprint = None
    for shot in plan.shots:
        if shot.source == "footage":
            fingerprint = fingerprint or footage_tasks.film_scenes_fingerprint()
            need = shot_seconds(shot, voice_s.get(shot.id))
            recipe = footage_tasks.footage_recipe(shot, need, fingerprint)
            picks[shot.id] = shows_cached(footage_tasks.pick_footage).submit(recipe, shot)
            continue
        # The keyframe never shows the dialogue: editing a line must not re-render the picture.
        request = image_request_from_shot(shot.model_copy(update={"dialogue": None}), plan, seed=job.seed + shot.id)
        recipe, prepared = keyframe_recipe(backend, request)
        task = shows_cached(render_keyframe.with_options(tags=sorted(heavy_tags(recipe, backend.heavy))))
        futures[shot.id] = task.submit(recipe, prepared.model_dump(mode="json"))
    keyframes, footage = {}, {}
    for sid, fut in futures.items():
        keyframes[sid] = fut.result()
        job.event("keyframes", f"shot {sid}/{len(plan.shots)}", advance=1)
    for sid, fut in picks.items():
        footage[sid] = fut.result()
        job.event("footage", f"shot {sid}/{len(plan.shots)}", advance=1)
    # Climax beats (exaggeration > 1) on the gpu profile: the face redrawn with the emotion, SDXL still resident.
    keyframes = exaggerate_keyframes(plan.shots, keyframes, backend, job.profile, wrap=shows_cached)
    report_stage("keyframe", keyframes, job.store, job.t_start)
    report_stage("footage_pick", footage, job.store, job.t_start)
    frames = {**keyframes, **{sid: footage_tasks.footage_frame(ref) for sid, ref in footage.items()}}
    return keyframes, footage, frames


# ----------------------------------------------------------------------------- judging and revision
def render_and_judge(job: ShortJob, plan_ref: ArtifactRef, plan: Plan, max_revisions: int | None
                     ) -> tuple[ArtifactRef, Plan, Takes, list[dict]]:
    """Voices, pictures, judging; then revise only the failing shots (bounded) and render those again."""
    from studio.agents.context import load_director_config

    cfg = load_director_config().revision
    limit = cfg.max_iterations if max_revisions is None else max_revisions
    logger = get_run_logger()
    rounds: list[dict] = []
    for iteration in range(limit + 1):
        with job.stage("voices"):
            voices, voice_s = voice_stage(job, plan)
        with job.stage("visuals"):
            keyframes, footage, frames = picture_stage(job, plan, voice_s)
        takes = Takes(voices, voice_s, keyframes, footage, frames)
        with job.stage("judge"):
            media = shot_media(plan, job.store, frames, voices)
            recipe = judge_recipe(judge_backend(job.profile), plan, media)
            scores_ref = shows_cached(judge_shots).submit(recipe, media, job.profile).result()
            scores = job.store.read_json(scores_ref)
        failing = [s["shot_id"] for s in scores if s["score"] < cfg.threshold]
        rounds.append({"iteration": iteration, "scores": scores, "failing": failing})
        logger.info("judge round %d: %s; below %.2f: %s", iteration,
                    ", ".join(f"#{s['shot_id']}={s['score']:.2f}" for s in scores), cfg.threshold, failing or "none")
        job.event("judge", f"round {iteration}: {len(failing)} shot(s) below {cfg.threshold}", advance=1)
        if not failing or iteration == limit:
            break
        with job.stage("revise"):
            revised_ref = revise_plan_in_flow(plan_ref, scores, cfg.threshold, iteration, job.profile)
            revised = load_plan(revised_ref)
        if revised == plan:
            logger.info("the director kept the plan: no revision rendered")
            break
        logger.info("revised shots %s (round %d)", failing, iteration + 1)
        if job.progress:  # the revised round reports its steps again
            job.progress.total += job.progress.done
        plan_ref, plan = revised_ref, revised
    return plan_ref, plan, takes, rounds


# ----------------------------------------------------------------------------- motion, segments, cut, outputs
def motion_stage(job: ShortJob, plan: Plan, takes: Takes) -> dict[int, ArtifactRef]:
    """gpu profile: the final keyframes animated by the `video` model, all shots in one stage (one model switch
    after SDXL and the judge); the clips become the segments' visuals. Nothing on profiles without one."""
    from studio.tasks.motion import animate_keyframe_shots

    seconds = {s.id: shot_seconds(s, takes.voice_s.get(s.id)) for s in plan.shots}
    takes.clips = animate_keyframe_shots(plan.shots, takes.keyframes, seconds, profile=job.profile, seed=job.seed,
                                         wrap=shows_cached)
    if takes.clips:
        report_stage("motion_clip", takes.clips, job.store, job.t_start)
    return takes.clips


def segment_stage(job: ShortJob, plan: Plan, takes: Takes) -> list[ArtifactRef]:
    """One segment per shot (recipe-cached): the shot's spec rendered by the segment renderer."""
    specs = []
    timings = {sid: read_line_timing(ref, job.store) for sid, ref in takes.voices.items()}
    for shot in plan.shots:
        pick = job.store.read_json(takes.footage[shot.id]) if shot.id in takes.footage else None
        key = takes.keyframes.get(shot.id)
        voice = takes.voices.get(shot.id)
        specs.append(segment_spec_for(shot, keyframe=job.store.local_path(key) if key else None, footage=pick,
                                      voice=job.store.local_path(voice) if voice else None,
                                      voice_s=takes.voice_s.get(shot.id), clip=clip_path(takes.clips, shot.id),
                                      voice_timing=timings.get(shot.id)))
    items = list(zip(plan.shots, specs, strict=True))
    # After the motion stage each heavy model runs once, all its shots together: SAM2 masks, then Wav2Lip.
    # Which shots get Wav2Lip is known first (a face check, no heavy model) so SAM2 leaves them out.
    keyframe_paths = {sid: job.store.local_path(ref) for sid, ref in takes.keyframes.items()}
    planned = plan_lipsync(items, job.profile, keyframe_paths)
    masks = collect_masks([(s, p) for s, p in items if s.id not in planned[1]], job.profile, wrap=shows_cached)
    synced = sync_shot_lips(items, job.profile, wrap=shows_cached, planned=planned)
    futures = []
    for shot, spec in zip(plan.shots, specs, strict=True):
        futures.append(submit_shot_segment(shot, spec, seed=job.seed + shot.id, voice_timing=timings.get(shot.id),
                                           wrap=shows_cached, profile=job.profile, synced=synced.get(shot.id),
                                           mask=masks.get(shot.id)))
    segments = []
    for shot, fut in zip(plan.shots, futures, strict=True):
        segments.append(fut.result())
        job.event("segments", f"shot {shot.id}/{len(plan.shots)}", advance=1)
    report_stage("segment", {s.id: ref for s, ref in zip(plan.shots, segments, strict=True)}, job.store,
                 job.t_start)
    return segments


def assemble_stage(job: ShortJob, segments: list[ArtifactRef], plan: Plan | None = None) -> ArtifactRef:
    """The cut; with the plan, framed by the `final` look's title and end cards."""
    segments = with_cards(plan, segments, wrap=shows_cached) if plan is not None else segments
    cut = shows_cached(assemble_cut).submit(cut_recipe(segments, music="procedural"), segments, "procedural").result()
    get_run_logger().info("cut %s: %.1fs, %d segments", cut.short,
                          float(job.store.sidecar(cut)["extra"]["duration"]), len(segments))
    return cut


def storyboard_stage(job: ShortJob, plan: Plan, takes: Takes, segments: list[ArtifactRef]) -> ArtifactRef:
    """storyboard.png: one tile per shot. In the `final` look a tile is a frame from the middle of the shot's
    rendered segment — what the short shows (props, weather, motion, lip sync) — else the keyframe."""
    from studio.resources.video.config import video_config

    final = video_config().look == "final"
    tiles = []
    for shot, seg in zip(plan.shots, segments, strict=True):
        line = f'{shot.dialogue.character}: "{shot.dialogue.line}"' if shot.dialogue else shot.action
        seconds = float(job.store.sidecar(seg)["extra"].get("duration", shot.duration))
        tile = segment_still(job.store, seg, seconds / 2) if final else takes.frames[shot.id]
        tiles.append((tile, [f"#{shot.id} · {shot.camera} · {seconds:.1f}s", line[:90]]))
    return shows_cached(render_contact_sheet).submit(sheet_recipe(tiles, plan.title, None), tiles).result()


SEGMENT_STILL_STAGE = "segment_still"


def segment_still(store: ArtifactStore, segment: ArtifactRef, at_s: float) -> ArtifactRef:
    """A frame of a rendered segment at `at_s` seconds as a PNG artifact (recipe: the segment's bytes + time)."""
    from studio.resources.media.frames import write_frame_png

    recipe = Recipe(stage=SEGMENT_STILL_STAGE, backend="ffmpeg", inputs=[segment.sha256],
                    params={"at": round(at_s, 3)})

    def write(out: Path) -> None:
        write_frame_png(store.local_path(segment), at_s, out)

    return store.lookup_or_make(recipe, ".png", "image/png", write)


def export_outputs(store: ArtifactStore, cut: ArtifactRef, sheet: ArtifactRef, out: Path) -> dict[str, Path]:
    """short.mp4, storyboard.png and subtitles.srt in the output folder (temp name, then rename)."""
    outputs = {"short": out / "short.mp4", "storyboard": out / "storyboard.png", "subtitles": out / "subtitles.srt"}
    subs = (store.sidecar(cut).get("extra") or {}).get("subtitles")
    sources = [(cut, outputs["short"]), (sheet, outputs["storyboard"])]
    if subs:
        sources.append((ArtifactRef(**subs), outputs["subtitles"]))
    for ref, dst in sources:
        copy_atomic(store.local_path(ref), dst)
    if not subs:
        write_text_atomic(outputs["subtitles"], "")
    return outputs


# ----------------------------------------------------------------------------- shot → segment spec
def still_effects(shot: Shot) -> list[dict[str, Any]]:
    return [*CAMERA_EFFECTS.get(shot.camera_move, CAMERA_EFFECTS["static"]), *({"name": e} for e in shot.effects)]


def shot_seconds(shot: Shot, voice_s: float | None) -> float:
    """A shot lasts its planned duration, or longer when its line needs the time."""
    if voice_s is None:
        return shot.duration
    return round(max(shot.duration, VOICE_LEAD_S + voice_s + VOICE_TAIL_S), 3)


def caption_for(shot: Shot, max_chars: int = 48) -> str:
    """The on-screen caption a parody recipe's caption step shows: the shot's action, cut at a word."""
    text = shot.action.strip().rstrip(".")
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0] + "…"
    return text.upper()


def segment_spec_for(shot: Shot, *, keyframe: Path | None, footage: dict | None, voice: Path | None,
                     voice_s: float | None, clip: Path | None = None, voice_timing: dict | None = None) -> Any:
    """The shot's segment: its picture source, effects, caption, voice, and subtitles — one cue per sentence of
    the line, shown while that sentence is spoken (`voice_timing`: the line's timing sidecar)."""
    from studio.resources.video.effects.library import resolve_effects
    from studio.resources.video.segment import SegmentSpec
    from studio.resources.video.subtitles import cues_from_voice_timing

    needs_caption = any(e.name == "caption" for e in resolve_effects(list(shot.effects)))
    common: dict[str, Any] = {
        "subtitle": shot.dialogue.line if shot.dialogue else None,
        "subtitle_cues": cues_from_voice_timing(voice_timing, VOICE_LEAD_S) if voice and voice_timing else [],
        "voice": voice, "voice_offset": VOICE_LEAD_S if voice else 0.0,
        "caption": caption_for(shot) if needs_caption else None,
    }
    if footage is not None:
        return SegmentSpec(video=Path(footage["video"]), start=footage["start"], end=footage["end"],
                           effects=[{"name": e} for e in shot.effects], **common)
    if clip is not None:  # generated motion: the camera moves in the clip, so only the shot's own effects
        return SegmentSpec(video=clip, duration=shot_seconds(shot, voice_s),
                           effects=[{"name": e} for e in shot.effects], **common)
    return SegmentSpec(image=keyframe, duration=shot_seconds(shot, voice_s), effects=still_effects(shot), **common)
