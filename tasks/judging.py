"""Judging a round of shots: what the judge sees of each shot, and the recipe-cached scoring task."""

from __future__ import annotations

from typing import Any

from prefect import task

from studio.configs.vocabulary import Plan
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe
from studio.tasks.caching import generation_task_options

JUDGE_STAGE = "shot_scores"


def judge_backend(profile: str) -> Any:
    from studio.resources.registry import load_backend

    return load_backend("judge", profile)


def shot_media(plan: Plan, store: ArtifactStore, frames: dict[int, ArtifactRef],
               voices: dict[int, ArtifactRef]) -> list[dict]:
    """Per shot: the keyframe (or footage still), the voice line and the characters' reference pictures."""
    from studio.configs.schema import studio_config
    from studio.resources.image.storyboard.frame import reference_paths

    chars = studio_config().characters
    media = []
    for shot in plan.shots:
        frame, voice = frames.get(shot.id), voices.get(shot.id)
        refs = [str(p) for c in shot.characters for p in reference_paths(chars.resolve(c)[1])]
        media.append({"shot_id": shot.id, "keyframe": str(store.local_path(frame)) if frame else None,
                      "audio": str(store.local_path(voice)) if voice else None, "references": refs,
                      "keyframe_sha": frame.sha256 if frame else None, "audio_sha": voice.sha256 if voice else None})
    return media


def judge_recipe(judge: Any, plan: Plan, media: list[dict]) -> Recipe:
    shas = []
    for m in media:
        shas += [m.get("keyframe_sha") or "-", m.get("audio_sha") or "-"]
    return Recipe(stage=JUDGE_STAGE, backend=judge.name, model=judge.model_id,
                  params={"plan": plan.model_dump(mode="json")}, inputs=shas)


def _score(recipe: Recipe, media: list[dict], profile: str | None) -> list[dict]:
    from studio.resources.judge.metric import ShotMedia
    from studio.resources.registry import load_backend

    judge = load_backend("judge", profile)
    plan = Plan.model_validate(recipe.params["plan"])
    shots = [ShotMedia(**{k: v for k, v in m.items() if k in ShotMedia.model_fields}) for m in media]
    return [s.model_dump() for s in judge.score_shots(plan, shots)]


@task(task_run_name="judge-shots", **generation_task_options(heavy=False))
def judge_shots(recipe: Recipe, media: list[dict], profile: str | None = None) -> ArtifactRef:
    """Score every shot with the profile's judge (metric judge on preview, VLM judge on gpu)."""
    return ArtifactStore.from_settings().lookup_or_make_json(recipe, lambda: _score(recipe, media, profile))
