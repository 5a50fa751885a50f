"""Segmentation tasks: SAM2 character masks for keyframes and footage windows, and the parody cut-out segment.

Masks are recipe-addressed heavy artifacts (`gpu-heavy`, dropped when the mask is already stored): the recipe
names the picture by content hash, the prompt policy and the detector behind it, the window and format for
footage, and the segmenter's id@revision. Building a recipe resolves the weights, so a missing model fails
with what to pre-fetch before anything loads. The short's segment stage submits every mask of a job at once
(one model load) before any segment that uses them.

    backend = segmenter_backend(profile="gpu")               # None when the profile names no segmenter
    ref = segment_keyframe.fn(keyframe_mask_recipe(backend, keyframe_ref), str(keyframe_path))
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from prefect import task

from studio.configs.vocabulary import Shot
from studio.resources.image.segmentation import MASK_VERSION, detector_tag, load_mask, prompt_box, save_mask_png
from studio.resources.media.ffmpeg import ffmpeg_version
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe, file_digest
from studio.resources.video.config import OutputFormat, video_config
from studio.resources.video.segment import SegmentSpec, render_segment_file
from studio.tasks.caching import generation_task_options

KEYFRAME_MASK_STAGE, FOOTAGE_MASK_STAGE, CUTOUT_STAGE = "keyframe_mask", "footage_mask", "cutout_segment"
CUTOUT_EFFECT = "cutout"


def segmenter_backend(profile: str | None = None, name: str | None = None) -> Any:
    """The profile's segmenter (or a named model of models.yaml); None when the profile names none."""
    from studio.resources.registry import load_backend, model_entry

    if name is None:
        try:
            name, _ = model_entry("segmenter", profile)
        except Exception:  # noqa: BLE001 - a profile without a segmenter makes no cut-outs
            return None
    return load_backend("segmenter", name=name)


def _mask_params(backend: Any, prompt: str) -> dict[str, Any]:
    return {"model_name": backend.name, "prompt": prompt, "detector": detector_tag() if prompt == "auto" else None,
            "v": MASK_VERSION}


def keyframe_mask_recipe(backend: Any, keyframe: ArtifactRef | Path, prompt: str = "auto") -> Recipe:
    digest = keyframe.sha256 if isinstance(keyframe, ArtifactRef) else file_digest(keyframe)
    return Recipe(stage=KEYFRAME_MASK_STAGE, backend=backend.entry.backend, model=backend.model_id,
                  params=_mask_params(backend, prompt), inputs=[digest])


def footage_mask_recipe(backend: Any, video: Path | str, start: float, end: float, prompt: str = "auto",
                        fmt: OutputFormat | None = None) -> Recipe:
    fmt = fmt or video_config().format()
    params = {**_mask_params(backend, prompt), "window": [round(start, 4), round(end, 4)], "fps": fmt.fps,
              "width": fmt.width}
    return Recipe(stage=FOOTAGE_MASK_STAGE, backend=backend.entry.backend, model=backend.model_id, params=params,
                  inputs=[file_digest(video)])


def make_keyframe_mask(recipe: Recipe, image: str, store: ArtifactStore | None = None) -> ArtifactRef:
    """The body of `segment_keyframe`, callable without Prefect: one binary PNG at the keyframe's size."""
    from studio.resources.image.faces import _read_rgb

    store = store or ArtifactStore.from_settings()

    def write(path: Path) -> dict[str, Any]:
        rgb = _read_rgb(image)
        box, origin = prompt_box(rgb, recipe.params["prompt"])
        backend = segmenter_backend(name=recipe.params["model_name"])
        (mask,), meta = backend.segment([rgb], [box])
        save_mask_png(mask, path)
        return {**meta, "box": [round(v, 1) for v in box], "prompt_from": origin,
                "mask_fraction": round(float(mask.mean()), 4), "size": [rgb.shape[1], rgb.shape[0]]}

    return store.lookup_or_make(recipe, ".png", "image/png", write)


def make_footage_mask(recipe: Recipe, video: str, store: ArtifactStore | None = None) -> ArtifactRef:
    """The body of `segment_footage`: a mask per output frame of the window, as a lossless mask clip. The box
    prompt comes from the window's middle frame and holds for the window (a shot's framing stays put)."""
    from studio.resources.video.cutout import window_frames, write_mask_clip

    store = store or ArtifactStore.from_settings()
    p = recipe.params

    def write(path: Path) -> dict[str, Any]:
        frames = window_frames(video, p["window"][0], p["window"][1], p["fps"], p["width"])
        box, origin = prompt_box(frames[len(frames) // 2], p["prompt"])
        backend = segmenter_backend(name=p["model_name"])
        masks, meta = backend.segment(list(frames), [box] * len(frames))
        write_mask_clip(masks, p["fps"], path)
        return {**meta, "box": [round(v, 1) for v in box], "prompt_from": origin, "nframes": len(masks),
                "size": [frames.shape[2], frames.shape[1]]}

    return store.lookup_or_make(recipe, ".mkv", "video/x-matroska", write)


@task(name="segment_keyframe", task_run_name="segment_keyframe-{recipe.params[model_name]}",
      **generation_task_options(heavy=True))
def segment_keyframe(recipe: Recipe, image: str) -> ArtifactRef:
    """The character's mask of one keyframe (PNG, 0/255, the keyframe's size)."""
    return make_keyframe_mask(recipe, image)


@task(name="segment_footage", task_run_name="segment_footage-{recipe.params[window]}",
      **generation_task_options(heavy=True))
def segment_footage(recipe: Recipe, video: str) -> ArtifactRef:
    """The character's masks over a footage window (one per output frame, a lossless mask clip)."""
    return make_footage_mask(recipe, video)


# --------------------------------------------------------------------------- which shots are cut out
def cutout_use(spec: SegmentSpec) -> Any:
    return next((e for e in spec.effects if e.name == CUTOUT_EFFECT), None)


def cutout_kind(shot: Shot, spec: SegmentSpec, profile: str | None) -> Literal["footage", "keyframe"] | None:
    """`footage`: a footage shot whose effects ask for a cut-out; `keyframe`: on the gpu profile, a keyframe shot
    with characters in the `final` look, animated as a cut-out of its keyframe's character; else None."""
    if shot.source == "footage":
        return "footage" if spec.video is not None and cutout_use(spec) is not None else None
    if profile == "gpu" and spec.image is not None and shot.characters and video_config().look == "final":
        return "keyframe"
    return None


def submit_masks(items: list[tuple[Shot, SegmentSpec]], profile: str | None, wrap: Any = None) -> dict[int, Any]:
    """Inside a flow: the mask futures of every shot that needs a cut-out, submitted together (one model load
    for the stage). A profile without a segmenter (or whose SAM2 weights are missing: a warning) submits none —
    footage cut-outs then play uncut, keyframe characters are drawn."""
    from studio.tasks.caching import heavy_tags

    wanted = [(shot, spec, kind) for shot, spec in items if (kind := cutout_kind(shot, spec, profile))]
    if not wanted:
        return {}
    from studio.resources.registry import optional_backend

    backend = optional_backend("segmenter", lambda: segmenter_backend(profile),
                               "keyframe shots show the drawn figure and footage cut-outs play uncut")
    if backend is None:
        return {}
    wrap = wrap or (lambda t: t)
    futures = {}
    for shot, spec, kind in wanted:
        if kind == "footage":
            info_end = spec.end if spec.end is not None else spec.start + float(spec.duration or shot.duration)
            recipe = footage_mask_recipe(backend, spec.video, spec.start, info_end)
            task, arg = segment_footage, str(spec.video)
        else:
            recipe, task, arg = keyframe_mask_recipe(backend, Path(spec.image)), segment_keyframe, str(spec.image)
        tagged = wrap(task.with_options(tags=sorted(heavy_tags(recipe, backend.heavy))))
        futures[shot.id] = tagged.submit(recipe, arg)
    return futures


# --------------------------------------------------------------------------- the parody cut-out segment
def cutout_segment_recipe(shot: Shot, spec: SegmentSpec, mask: ArtifactRef, seed: int,
                          fmt: OutputFormat | None = None) -> Recipe:
    from studio.tasks.video import segment_recipe

    fmt = fmt or video_config().format()
    base = segment_recipe(spec, fmt)
    background = cutout_use(spec).params.get("background", "scenery")
    bg = {"scenery": {"location": shot.location, "time_of_day": shot.time_of_day, "action": shot.action,
                      "shot": shot.id, "seed": seed}} if background == "scenery" else {"file": file_digest(background)}
    params = {"segment": base.params, "mask": mask.sha256, "background": bg}
    return Recipe(stage=CUTOUT_STAGE, backend="sam2-cutout+ffmpeg", model=ffmpeg_version(), params=params,
                  inputs=[*base.inputs, mask.sha256])


def make_cutout_segment(recipe: Recipe, shot: Shot, spec: SegmentSpec, mask: ArtifactRef, seed: int,
                        store: ArtifactStore | None = None) -> ArtifactRef:
    """The body of `cutout_shot`: footage window → masked character over the new background → the segment."""
    from studio.resources.video.cutout import background_picture, read_mask_clip, render_cutout_clip, window_frames

    store = store or ArtifactStore.from_settings()
    fmt = OutputFormat(**recipe.params["segment"]["format"])
    use = cutout_use(spec)

    def write(tmp: Path) -> dict[str, Any]:
        side = store.sidecar(mask)["recipe"]["params"]
        masks = read_mask_clip(store.local_path(mask))
        start, end = side["window"]
        frames = window_frames(spec.video, start, end, side["fps"], side["width"])
        bg = background_picture(use.params.get("background", "scenery"), shot, frames.shape[2], frames.shape[1],
                                seed)
        scratch = Path(tempfile.mkdtemp(prefix="studio-cutout-"))
        try:
            clip = scratch / "cutout.mkv"
            meta = render_cutout_clip(frames, masks, bg, side["fps"], clip)
            seg = spec.model_copy(update={"video": clip, "start": 0.0, "end": None, "duration": None,
                                          "effects": [e for e in spec.effects if e.name != CUTOUT_EFFECT]})
            result = render_segment_file(seg, tmp, fmt)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return dict(nframes=result.nframes, fps=result.fps, duration=result.duration,
                    voice_interval=result.voice_interval, transition_in=result.transition_in,
                    subtitles=[c.model_dump() for c in result.subtitles], markers=result.markers,
                    cutout={**meta, "mask": mask.key})

    return store.lookup_or_make(recipe, ".mp4", "video/mp4", write)


@task(name="cutout_shot", task_run_name="cutout_shot-{shot.id}", **generation_task_options())
def cutout_shot(recipe: Recipe, shot: Shot, spec: SegmentSpec, mask: ArtifactRef, seed: int) -> ArtifactRef:
    """A footage shot as a parody cut-out: its character over a new background, then effects, voice, subs."""
    return make_cutout_segment(recipe, shot, spec, mask, seed)


def keyframe_cutout(keyframe: Path, mask: ArtifactRef, store: ArtifactStore | None = None) -> Any:
    """The keyframe's character as an RGBA sprite (cropped to its mask) for the cut-out animator; None for an
    empty mask (the animator then draws the character's figure)."""
    from studio.resources.image.faces import _read_rgb
    from studio.resources.image.segmentation import cutout_rgba

    store = store or ArtifactStore.from_settings()
    m = load_mask(store.local_path(mask))
    return cutout_rgba(_read_rgb(keyframe), m) if m.any() else None


def collect_masks(items: list[tuple[Shot, SegmentSpec]], profile: str | None, wrap: Any = None
                  ) -> dict[int, ArtifactRef]:
    """The segmentation stage of a short: every needed mask submitted together, then their refs by shot id."""
    return {sid: fut.result() for sid, fut in submit_masks(items, profile, wrap).items()}
