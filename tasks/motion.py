"""Motion tasks (gpu profile): a keyframe shot's keyframe animated by the profile's `video` model
(image-to-video), one recipe-addressed clip per shot, all shots submitted in one stage after every keyframe
exists — one model switch (SDXL → video model) per job, never a ping-pong per shot.

The recipe names the keyframe by content hash (a re-rendered keyframe re-animates its shot), the prompt, seed,
size, rate, frame counts, sampler and the model's revision. The clip is a lossless, silent artifact; the segment
stage renders it with the shot's voice, subtitles and effects.

    clips = animate_keyframe_shots(plan.shots, keyframes, seconds, profile="gpu", seed=7)   # inside a flow
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import Task, task

from studio.configs.vocabulary import Shot
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe, file_digest
from studio.resources.video.config import video_config
from studio.resources.video.generation import MotionRequest, motion_prompt
from studio.tasks.caching import generation_task_options, heavy_tags

MOTION_STAGE = "motion_clip"


def video_backend(model: str | None = None, profile: str | None = None) -> Any:
    """The image-to-video backend of the profile (or a named model of models.yaml); None when the profile names
    no `video` model (the preview profile: cut-out animation instead)."""
    from studio.configs.schema import studio_config
    from studio.resources.registry import load_backend, resolve_profile

    if model is None:
        prof = studio_config().models.profiles.get(resolve_profile(profile))
        if prof is None or not prof.video:
            return None
    return load_backend("video", profile, name=model)


def motion_recipe(backend: Any, request: MotionRequest) -> tuple[Recipe, MotionRequest]:
    """Validate and complete `request` for `backend` (missing weights → a StudioError now); its recipe."""
    req = backend.prepare(request)
    recipe = Recipe(stage=MOTION_STAGE, backend=backend.entry.backend, model=backend.model_id,
                    params={"model_name": backend.name, **backend.recipe_params(req)}, inputs=[file_digest(req.image)])
    return recipe, req


@task(task_run_name="animate-keyframe-{recipe.params[model_name]}-{request[seed]}",
      **generation_task_options(heavy=True))
def animate_keyframe(recipe: Recipe, request: dict[str, Any]) -> ArtifactRef:
    """Animate one keyframe into a clip (lossless Matroska); the sidecar records prompt, seed, frames, model."""
    backend = video_backend(recipe.params["model_name"])
    req = MotionRequest.model_validate(request)
    return ArtifactStore.from_settings().lookup_or_make(recipe, ".mkv", "video/x-matroska",
                                                        lambda path: backend.render(req, path))


def _same(t: Task) -> Task:
    return t


def animate_keyframe_shots(shots: list[Shot], keyframes: dict[int, ArtifactRef], seconds: dict[int, float], *,
                           profile: str | None, seed: int, wrap: Callable[[Task], Task] = _same
                           ) -> dict[int, ArtifactRef]:
    """The motion stage: each keyframe shot whose source `generation.animate` lists, animated for its length
    (`seconds[shot.id]`), as shot id → clip ref. Nothing when the profile has no `video` model, or (with a
    warning naming the pre-fetch) when its weights are not on this host: the shots then stay stills."""
    animate = set(video_config().generation.animate)
    todo = [s for s in shots if s.id in keyframes and s.source != "footage" and s.source in animate]
    if not todo:
        return {}
    from studio.resources.registry import optional_backend

    backend = optional_backend("video", lambda: video_backend(profile=profile),
                               "the shots stay stills with their camera moves")
    if backend is None:
        return {}
    store = ArtifactStore.from_settings()
    futures = {}
    for shot in todo:
        key = keyframes[shot.id]
        image_prompt = str((store.sidecar(key).get("extra") or {}).get("prompt", ""))
        request = MotionRequest(image=store.local_path(key), prompt=motion_prompt(shot, image_prompt),
                                seconds=seconds[shot.id], seed=seed + shot.id)
        recipe, prepared = motion_recipe(backend, request)
        t = wrap(animate_keyframe.with_options(tags=sorted(heavy_tags(recipe, backend.heavy))))
        futures[shot.id] = t.submit(recipe, prepared.model_dump(mode="json"))
    return {sid: fut.result() for sid, fut in futures.items()}


def clip_path(clips: dict[int, ArtifactRef], shot_id: int) -> Path | None:
    ref = clips.get(shot_id)
    return ArtifactStore.from_settings().local_path(ref) if ref is not None else None
