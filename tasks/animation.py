"""Animated segments (the `final` look): a storyboard shot becomes a cut-out animation, then the segment stage
adds its voice, subtitles and effects; a title card and an end card (credits and licences) frame the short.

Recipe-cached like every segment: the recipe names the shot (its description, not its keyframe), the art of
its characters by content hash, the voice line by content hash, the format, the animator's version, the props
catalogue and the ffmpeg build. The frames go straight from the renderer to ffmpeg, into a scratch clip that
`lookup_or_make` never publishes until the segment is complete, so kill -9 mid-shot leaves nothing half-made
and the rerun renders the same bytes.

    seg = submit_shot_segment(shot, spec, seed=7, voice_timing=timing)   # inside a flow: a future
    cut_inputs = with_cards(plan, segments)                                # title + shots + end card
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import Task, task

from studio.configs.schema import studio_config
from studio.configs.vocabulary import Plan, Shot
from studio.resources.media.ffmpeg import ffmpeg_version
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe, file_digest
from studio.resources.video.config import OutputFormat, video_config
from studio.resources.video.segment import SegmentSpec, render_segment_file
from studio.tasks.caching import generation_task_options
from studio.tasks.video import render_segment, segment_recipe

ANIMATED_STAGE, CARD_STAGE = "animated_segment", "card_segment"
CREDITS = ["Characters of Big Buck Bunny: (c) 2008 Blender Foundation, www.bigbuckbunny.org, CC BY 3.0"]


def _looks(shot: Shot) -> dict[str, Any]:
    """The characters' art (and rigs) by content hash: editing a reference image re-renders its shots."""
    from studio.resources.image.storyboard.figures import reference_paths

    chars, out = studio_config().characters, {}
    for cid in shot.characters:
        _, preset = chars.resolve(cid)
        refs = reference_paths(preset)[:1]
        rigs = [r.with_suffix(".rig.json") for r in refs if r.with_suffix(".rig.json").is_file()]
        out[cid] = {"color": preset.color, "name": preset.display_name,
                    "art": [file_digest(p) for p in refs], "rig": [file_digest(p) for p in rigs]}
    return out


def _segment_params(spec: SegmentSpec) -> dict[str, Any]:
    params = spec.model_dump(mode="json", exclude={"image", "video", "voice", "previous_segment", "effects",
                                                   "duration", "start", "end"})
    params["effects"] = [e.model_dump(mode="json") for e in spec.effects]
    params["voice"] = file_digest(spec.voice) if spec.voice else None
    return params


def animated_segment_recipe(shot: Shot, spec: SegmentSpec, seconds: float, seed: int,
                            fmt: OutputFormat | None = None, mask: ArtifactRef | None = None) -> Recipe:
    """`mask`: the keyframe's SAM2 mask — the subject is then the keyframe's character cut out by it."""
    from studio.resources.image.storyboard.props import props_tag
    from studio.resources.video.animation import ANIMATION_VERSION

    fmt = fmt or video_config().format()
    params = {"shot": shot.model_dump(mode="json", exclude={"dialogue"}),
              "speaker": shot.dialogue.character if shot.dialogue else None,
              "seconds": round(seconds, 3), "seed": seed, "looks": _looks(shot), "segment": _segment_params(spec),
              "format": fmt.model_dump(), "lip_flaps": video_config().animation.lip_flaps,
              "render": {"animation": ANIMATION_VERSION, "props": props_tag(), "font": video_config().font}}
    inputs = sorted([params["segment"]["voice"]] if params["segment"]["voice"] else [])
    if mask is not None:
        params["cutout"] = {"mask": mask.sha256, "keyframe": file_digest(spec.image)}
        inputs = sorted([*inputs, mask.sha256, params["cutout"]["keyframe"]])
    return Recipe(stage=ANIMATED_STAGE, backend="cutout+ffmpeg", model=ffmpeg_version(), params=params,
                  inputs=inputs)


def make_animated_segment(recipe: Recipe, shot: Shot, spec: SegmentSpec, voice_timing: dict | None = None,
                          store: ArtifactStore | None = None, mask: ArtifactRef | None = None) -> ArtifactRef:
    """The body of `animate_shot`, callable without Prefect: frames → lossless clip → segment (voice, subs)."""
    from studio.resources.video.animation import render_animation

    store = store or ArtifactStore.from_settings()
    fmt = OutputFormat(**recipe.params["format"])
    p = recipe.params

    def write(tmp: Path) -> dict[str, Any]:
        scratch = Path(tempfile.mkdtemp(prefix="studio-anim-"))
        try:
            clip = scratch / "frames.mkv"
            timing = voice_timing if p["lip_flaps"] else None
            cutouts = None
            if mask is not None and shot.characters:
                from studio.tasks.segmentation import keyframe_cutout

                sprite = keyframe_cutout(Path(spec.image), mask, store)
                cutouts = {shot.characters[0]: sprite} if sprite is not None else None
            meta = render_animation(shot, clip, fmt.width, fmt.height, fmt.fps, p["seconds"], p["seed"], timing,
                                    spec.voice_offset, cutouts)
            seg = spec.model_copy(update={"image": None, "video": clip, "start": 0.0, "end": None, "duration": None})
            result = render_segment_file(seg, tmp, fmt)
            return dict(nframes=result.nframes, fps=result.fps, duration=result.duration,
                        voice_interval=result.voice_interval, transition_in=result.transition_in,
                        subtitles=[c.model_dump() for c in result.subtitles], markers=result.markers,
                        animation=meta)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    return store.lookup_or_make(recipe, ".mp4", "video/mp4", write)


@task(name="animate_shot", task_run_name="animate_shot-{shot.id}", **generation_task_options())
def animate_shot(recipe: Recipe, shot: Shot, spec: SegmentSpec, voice_timing: dict | None = None,
                 mask: ArtifactRef | None = None) -> ArtifactRef:
    """One storyboard shot → one animated segment (cut-out animation + voice + subtitles), recipe-cached."""
    return make_animated_segment(recipe, shot, spec, voice_timing, mask=mask)


def animated_spec(shot: Shot, spec: SegmentSpec) -> SegmentSpec:
    """The still's spec without its camera effects (the animator moves the camera): only the shot's own."""
    return spec.model_copy(update={"effects": [e for e in spec.effects if e.name in shot.effects]})


def _same(t: Task) -> Task:
    return t


def submit_shot_segment(shot: Shot, spec: SegmentSpec, *, seed: int, voice_timing: dict | None = None,
                        wrap: Callable[[Task], Task] = _same, profile: str | None = None,
                        synced: Path | None = None, mask: ArtifactRef | None = None) -> Any:
    """Inside a flow: the shot's segment as a future — a keyframe shot lip-synced by the lip-sync stage
    (`sync_shot_lips`, gpu profile) becomes a segment of that clip; otherwise, in the `final` look, storyboard
    shots (stills) are animated with lip flaps from the voice (also Wav2Lip's fallback); footage and the
    `storyboard` look keep the segment renderer's own. `wrap`: applied to each task before submitting (e.g.
    marking reused artifacts Cached). `mask` (segmentation stage): a footage shot becomes a parody cut-out, a
    keyframe shot's character is cut out of its keyframe and animated."""
    if mask is not None and shot.source == "footage":
        from studio.tasks.segmentation import cutout_segment_recipe, cutout_shot

        return wrap(cutout_shot).submit(cutout_segment_recipe(shot, spec, mask, seed), shot, spec, mask, seed)
    if synced is not None and shot.source != "footage":
        # The clip lasts the whole shot with the line at its offset; the segment mixes the voice as for a still.
        # A still loses its camera effects (the synced clip holds the framing); a generated clip had none.
        effects = animated_spec(shot, spec).effects if spec.image is not None else spec.effects
        vspec = spec.model_copy(update={"image": None, "video": synced, "duration": None, "effects": effects})
        return wrap(render_segment).submit(segment_recipe(vspec), vspec)
    if video_config().look != "final" or spec.image is None or shot.source == "footage":
        return wrap(render_segment).submit(segment_recipe(spec), spec)
    seconds = float(spec.duration or shot.duration)
    aspec = animated_spec(shot, spec)
    return wrap(animate_shot).submit(animated_segment_recipe(shot, aspec, seconds, seed, mask=mask), shot, aspec,
                                     voice_timing, mask)


def wants_lipsync(shot: Shot, spec: SegmentSpec, profile: str | None) -> bool:
    """Wav2Lip is for gpu-profile keyframe shots — the still, or its generated clip — with a spoken line (the
    face check comes after)."""
    return profile == "gpu" and shot.source != "footage" and (spec.image is not None or spec.video is not None) \
        and bool(shot.dialogue) and spec.voice is not None


def plan_lipsync(shots: list[tuple[Shot, SegmentSpec]], profile: str | None, keyframes: dict[int, Path] | None = None
                 ) -> tuple[Any, dict[int, tuple[int, int, int, int]]]:
    """Which shots Wav2Lip will sync — cheap, no heavy model (the face detector), so the stages before it know —
    as (backend, shot id → face box in the pixels of the visual it syncs). `keyframes`: each shot's keyframe,
    where the face is looked for when the shot's visual is a generated clip. A shot whose keyframe shows no face
    is left out with a warning (lip flaps instead); so is every shot, with a warning naming the pre-fetch, when
    the Wav2Lip weights are missing."""
    import logging

    from studio.resources.registry import optional_backend
    from studio.resources.video.lipsync import find_face_box, fit_box
    from studio.tasks.video import lipsync_backend

    eligible = [(shot, spec) for shot, spec in shots if wants_lipsync(shot, spec, profile)]
    backend = optional_backend("lipsync", lambda: lipsync_backend(profile), "lip flaps from the voice") \
        if eligible else None
    if backend is None:
        return None, {}
    log = logging.getLogger("studio.animation")
    boxes = {}
    for shot, spec in eligible:
        still = spec.image or (keyframes or {}).get(shot.id)
        box = find_face_box(still) if still is not None else None
        if box is None:
            log.warning("shot %s: no face detected in %s: lip flaps instead of Wav2Lip", shot.id, still)
            continue
        if spec.image is None:  # a generated clip: the keyframe's box where the video model put the keyframe
            from PIL import Image

            from studio.resources.media.probe import probe

            info = probe(spec.video)
            with Image.open(still) as im:
                box = fit_box(box, im.size, (info.width, info.height))
        boxes[shot.id] = box
    return backend, boxes


def sync_shot_lips(shots: list[tuple[Shot, SegmentSpec]], profile: str | None,
                   wrap: Callable[[Task], Task] = _same, planned: tuple[Any, dict] | None = None
                   ) -> dict[int, Path]:
    """The lip-sync stage: every planned shot (`plan_lipsync`, computed here unless given) lip-synced by Wav2Lip
    on its still or its generated clip (heavy, recipe-cached tasks, submitted together so the model loads once
    and the GPU is taken once per job), as shot id → clip path."""
    from studio.resources.media.probe import probe
    from studio.tasks.caching import heavy_tags
    from studio.tasks.video import lipsync_recipe, sync_lips

    backend, boxes = planned if planned is not None else plan_lipsync(shots, profile)
    if backend is None or not boxes:
        return {}
    fps = video_config().format().fps
    futures = {}
    for shot, spec in shots:
        if shot.id not in boxes:
            continue
        visual = spec.image or spec.video  # a clip keeps its own frame rate
        rate = fps if spec.image is not None else round(probe(visual).fps)
        recipe = lipsync_recipe(backend, visual, spec.voice, boxes[shot.id], rate, spec.duration, spec.voice_offset)
        task = wrap(sync_lips.with_options(tags=sorted(heavy_tags(recipe, backend.heavy))))
        futures[shot.id] = task.submit(recipe, str(visual), str(spec.voice))
    store = ArtifactStore.from_settings()
    return {sid: store.local_path(fut.result()) for sid, fut in futures.items()}


# --------------------------------------------------------------------------- title and end cards
def card_recipe(kind: str, title: str, lines: list[str], seconds: float, fmt: OutputFormat | None = None) -> Recipe:
    from studio.resources.video.animation import ANIMATION_VERSION

    fmt = fmt or video_config().format()
    return Recipe(stage=CARD_STAGE, backend="cutout+ffmpeg", model=ffmpeg_version(),
                  params={"kind": kind, "title": title, "lines": lines, "seconds": round(seconds, 3),
                          "format": fmt.model_dump(), "render": {"animation": ANIMATION_VERSION}})


def make_card_segment(recipe: Recipe, store: ArtifactStore | None = None) -> ArtifactRef:
    from studio.resources.video.cards import render_card

    store = store or ArtifactStore.from_settings()
    p, fmt = recipe.params, OutputFormat(**recipe.params["format"])

    def write(tmp: Path) -> dict[str, Any]:
        scratch = Path(tempfile.mkdtemp(prefix="studio-card-"))
        try:
            clip = scratch / "card.mkv"
            meta = render_card(clip, fmt.width, fmt.height, fmt.fps, p["seconds"], p["title"], p["lines"],
                               end=p["kind"] == "end")
            result = render_segment_file(SegmentSpec(video=clip), tmp, fmt)
            return dict(nframes=result.nframes, fps=result.fps, duration=result.duration, voice_interval=None,
                        transition_in=0.0, subtitles=[], markers={}, card=meta)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    return store.lookup_or_make(recipe, ".mp4", "video/mp4", write)


@task(name="render_card", task_run_name="render_card-{recipe.params[kind]}", **generation_task_options())
def render_card_segment(recipe: Recipe) -> ArtifactRef:
    """A title or end card as a segment in the cut's format."""
    return make_card_segment(recipe)


def end_card_lines(plan: Plan) -> list[str]:
    from studio.resources.image.storyboard.props import ATTRIBUTION

    uses_props = any(s.things for s in plan.shots if s.source != "footage")
    return [*CREDITS, *([ATTRIBUTION] if uses_props else []), "Made with Animation AI Studio"]


def with_cards(plan: Plan, segments: list[ArtifactRef], wrap: Callable[[Task], Task] = _same) -> list[ArtifactRef]:
    """The cut's segments in the `final` look: a title card, the shots, an end card (credits and licences).
    The `storyboard` look (and a card length of 0) leaves the list as it is."""
    cfg = video_config()
    if cfg.look != "final":
        return list(segments)
    head, tail = [], []
    if cfg.animation.title_card_s > 0:
        # .submit().result(): a direct call of a `shows_cached` task hands back its State when it reuses
        head.append(wrap(render_card_segment).submit(card_recipe(
            "title", plan.title, [plan.logline] if plan.logline else [], cfg.animation.title_card_s)).result())
    if cfg.animation.end_card_s > 0:
        tail.append(wrap(render_card_segment).submit(card_recipe(
            "end", "The End", end_card_lines(plan), cfg.animation.end_card_s)).result())
    return [*head, *segments, *tail]
