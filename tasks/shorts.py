"""Tasks of the creative studio that are not a modality of their own: footage picks from the indexed films,
judging a round of shots, and turning plan shots into image requests and segment specs.

Every task here is recipe-cached like the generation tasks, so a rerun after a crash redoes nothing finished.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import task

from studio.configs.vocabulary import Plan, Shot
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe
from studio.tasks.caching import generation_task_options

FOOTAGE_STAGE = "footage_pick"
FOOTAGE_FRAME_STAGE = "footage_frame"
JUDGE_STAGE = "shot_scores"
PICK_VERSION = 1

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


# ----------------------------------------------------------------------------- footage
def footage_query(shot: Shot) -> str:
    return shot.footage_query or " ".join(x for x in (shot.action, shot.location, shot.camera) if x)


def footage_recipe(shot: Shot, need_s: float, kb_fingerprint: str) -> Recipe:
    return Recipe(stage=FOOTAGE_STAGE, backend="lancedb", model=kb_fingerprint,
                  params={"query": footage_query(shot), "need_s": round(need_s, 3), "camera": shot.camera,
                          "v": PICK_VERSION})


def film_scenes_fingerprint() -> str:
    """Changes when the indexed films change, so picks are redone against the new index."""
    import hashlib

    from studio.resources.knowledge.store import KnowledgeBase

    hashes = KnowledgeBase.from_settings().hashes("film_scenes")
    return "film_scenes@" + hashlib.sha256(json.dumps(sorted(hashes.items())).encode()).hexdigest()[:16]


def choose_window(hit_meta: dict, need_s: float, video_s: float) -> tuple[float, float]:
    """A window of `need_s` seconds that starts at the scene's start and stays inside the film."""
    need_s = min(need_s, video_s)
    start = float(hit_meta.get("start", 0.0))
    if start + need_s > video_s:
        start = max(0.0, video_s - need_s)
    return round(start, 3), round(start + need_s, 3)


@task(task_run_name="pick-footage", **generation_task_options(heavy=False))
def pick_footage(recipe: Recipe, shot: Shot) -> ArtifactRef:
    """Retrieve the best-matching indexed film scene for a footage shot and fix the clip window."""
    from studio.resources.knowledge.store import KnowledgeBase
    from studio.resources.media.frames import sample_footage_path
    from studio.resources.media.probe import probe

    store = ArtifactStore.from_settings()
    if (ref := store.lookup(recipe)) is not None:
        return ref
    need = float(recipe.params["need_s"])
    hits = KnowledgeBase.from_settings().search(recipe.params["query"], collection="film_scenes", k=5)
    hits = [h for h in hits if Path(str(h.metadata.get("video", ""))).is_file()]
    if hits:
        # Prefer a scene whose shot size matches the plan's camera among the closest matches.
        same = [h for h in hits if h.metadata.get("shot_size") == shot.camera]
        hit = (same or hits)[0]
        video, meta, why = str(hit.metadata["video"]), dict(hit.metadata), f"retrieved: {hit.text[:120]}"
        score = float(hit.score)
    else:
        video, meta, why, score = str(sample_footage_path()), {"start": 0.0}, "no indexed film: the sample", 0.0
    start, end = choose_window(meta, need, probe(video).duration)
    return store.put_json(recipe, {"video": video, "start": start, "end": end, "scene": meta.get("scene"),
                                   "score": score, "why": why, "query": recipe.params["query"]})


def footage_frame(pick_ref: ArtifactRef) -> ArtifactRef:
    """A still of the picked window (for the storyboard sheet and the judge)."""
    from PIL import Image

    from studio.resources.media.frames import read_frame

    store = ArtifactStore.from_settings()
    recipe = Recipe(stage=FOOTAGE_FRAME_STAGE, backend="ffmpeg", inputs=[pick_ref.sha256], params={"at": "mid"})

    def write(out: Path) -> None:
        pick = store.read_json(pick_ref)
        rgb = read_frame(pick["video"], (pick["start"] + pick["end"]) / 2, width=854)
        Image.fromarray(rgb).save(out, format="PNG", optimize=False)

    return store.lookup_or_make(recipe, ".png", "image/png", write)


# ----------------------------------------------------------------------------- judging
def judge_recipe(judge: Any, plan: Plan, media: list[dict]) -> Recipe:
    shas = []
    for m in media:
        shas += [m.get("keyframe_sha") or "-", m.get("audio_sha") or "-"]
    return Recipe(stage=JUDGE_STAGE, backend=judge.name, model=judge.model_id,
                  params={"plan": plan.model_dump(mode="json")}, inputs=shas)


@task(task_run_name="judge-shots", **generation_task_options(heavy=False))
def judge_shots(recipe: Recipe, media: list[dict], profile: str | None = None) -> ArtifactRef:
    """Score every shot with the profile's judge (metric judge on preview, VLM judge on gpu)."""
    from studio.resources.judge.metric import ShotMedia
    from studio.resources.registry import load_backend

    store = ArtifactStore.from_settings()
    if (ref := store.lookup(recipe)) is not None:
        return ref
    judge = load_backend("judge", profile)
    plan = Plan.model_validate(recipe.params["plan"])
    shot_media = [ShotMedia(**{k: v for k, v in m.items() if k in ShotMedia.model_fields}) for m in media]
    scores = judge.score_shots(plan, shot_media)
    return store.put_json(recipe, [s.model_dump() for s in scores])


# ----------------------------------------------------------------------------- shot → segment
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
                     voice_s: float | None) -> Any:
    from studio.resources.video.effects.chain import resolve_effects
    from studio.resources.video.segment import SegmentSpec

    needs_caption = any(e.name == "caption" for e in resolve_effects(list(shot.effects)))
    common: dict[str, Any] = {
        "subtitle": shot.dialogue.line if shot.dialogue else None,
        "voice": voice, "voice_offset": VOICE_LEAD_S if voice else 0.0,
        "caption": caption_for(shot) if needs_caption else None,
    }
    if footage is not None:
        return SegmentSpec(video=Path(footage["video"]), start=footage["start"], end=footage["end"],
                           effects=[{"name": e} for e in shot.effects], **common)
    return SegmentSpec(image=keyframe, duration=shot_seconds(shot, voice_s), effects=still_effects(shot), **common)


def manifest_json(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)
