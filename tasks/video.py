"""Video tasks: scene detection per time chunk, shot analysis per batch of scenes, segment rendering, assembly.

Every task takes a `Recipe` first and returns an `ArtifactRef`, reused through the store (`lookup_or_make`): a
recipe names its inputs by content hash (the film, the still, the voice line, the previous segment), never by
path, so the same edit on another machine or after a crash maps to the same keys. A rerun after kill -9 finds
the finished chunks and segments in the store and re-does only the rest.

    specs = [SegmentSpec(...), ...]
    cut = render_cut(specs, fmt=fmt, music="procedural")   # inside a flow: segments in parallel, then the cut
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from prefect import task

from studio.resources.audio.procedural import GENERATOR_VERSION
from studio.resources.media.ffmpeg import ffmpeg_version
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe, file_digest
from studio.resources.video.analysis import analyze_range
from studio.resources.video.assemble import assemble_segments
from studio.resources.video.config import OutputFormat, video_config
from studio.resources.video.effects.library import resolve_effects
from studio.resources.video.scenes import Chunk, Scene, detect_cuts_in_range
from studio.resources.video.segment import SegmentSpec, render_segment_file
from studio.resources.video.subtitles import SubtitleCue, write_srt
from studio.tasks.caching import generation_task_options

RENDER_VERSION = 1  # bump when the renderer's output for the same spec changes
SCENE_STAGE, SHOTS_STAGE, THUMB_STAGE = "scene_chunk", "shot_analysis", "scene_thumbnail"
SEGMENT_STAGE, CUT_STAGE, SUBS_STAGE, LIPSYNC_STAGE = "segment", "cut", "cut_subtitles", "lipsync"


def _scenedetect_version() -> str:
    import scenedetect

    return f"scenedetect {scenedetect.__version__}"


# --------------------------------------------------------------------------- analysis
def scene_chunk_recipe(video: str | Path, chunk: Chunk, detector: str | None = None) -> Recipe:
    cfg = video_config().scene_detection
    return Recipe(stage=SCENE_STAGE, backend="pyscenedetect", model=_scenedetect_version(),
                  params={"chunk": chunk.__dict__, "detector": detector or cfg.detector, "v": 2,
                          "config": cfg.model_dump(exclude={"chunk_seconds", "overlap_seconds", "workers"})},
                  inputs=[file_digest(video)])


@task(name="detect_scenes", task_run_name="detect_scenes-chunk{recipe.params[chunk][index]}",
      **generation_task_options())
def detect_scenes(recipe: Recipe, video: str) -> ArtifactRef:
    """One time chunk of a film: frame times, above-threshold frames (or cuts) and transitions (JSON)."""
    chunk = Chunk(**recipe.params["chunk"])
    return ArtifactStore.from_settings().lookup_or_make_json(recipe, lambda: detect_cuts_in_range(
        video, chunk, video_config().scene_detection, recipe.params["detector"]))


def shots_recipe(video: str | Path, scenes: list[Scene]) -> Recipe:
    cfg = video_config().analysis
    return Recipe(stage=SHOTS_STAGE, backend="studio-video-analysis", model="opencv+ffmpeg",
                  params={"scenes": [s.model_dump() for s in scenes], "config": cfg.model_dump(), "v": 2},
                  inputs=[file_digest(video)])


@task(name="analyze_shots", task_run_name="analyze_shots-{recipe.params[scenes][0][index]}",
      **generation_task_options())
def analyze_shots(recipe: Recipe, video: str) -> ArtifactRef:
    """Camera motion, composition, coherence and a stored keyframe for each scene of a batch (JSON)."""
    store = ArtifactStore.from_settings()
    if (ref := store.lookup(recipe)) is not None:
        return ref
    scenes = [Scene(**s) for s in recipe.params["scenes"]]
    scratch = Path(store.cache_dir or "/tmp") / f"thumbs-{recipe.key()[:12]}-{os.getpid()}"
    try:
        shots = analyze_range(video, scenes, scratch)
        rows = []
        for shot in shots:
            row = shot.model_dump(mode="json")
            if shot.thumbnail:
                thumb_recipe = Recipe(stage=THUMB_STAGE, backend=recipe.backend, model=recipe.model,
                                      params={"shots": recipe.key(), "scene": shot.scene.index})
                tref = store.put_file(thumb_recipe, shot.thumbnail, "image/jpeg")
                row["thumbnail"] = tref.uri
                row["thumbnail_ref"] = tref.model_dump()
            row["description"] = shot.description()
            rows.append(row)
        return store.put_json(recipe, {"video": str(video), "shots": rows})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------- editing
def _spec_files(spec: SegmentSpec) -> dict[str, str]:
    return {k: str(getattr(spec, k)) for k in ("image", "video", "voice", "previous_segment")
            if getattr(spec, k) is not None}


def segment_recipe(spec: SegmentSpec, fmt: OutputFormat | None = None) -> Recipe:
    """Everything the segment's bytes depend on: the spec (files by content hash, not path), the resolved
    effects (so editing effects.yaml re-renders what uses it), the format and the ffmpeg build."""
    fmt = fmt or video_config().format()
    files = _spec_files(spec)
    params = spec.model_dump(mode="json", exclude=set(files))
    params["files"] = {k: file_digest(v) for k, v in files.items()}
    params["resolved_effects"] = [e.__dict__ for e in resolve_effects(spec.effects)]
    params["format"] = fmt.model_dump()
    params["render"] = {"v": RENDER_VERSION, "sfx": GENERATOR_VERSION, "font": video_config().font}
    return Recipe(stage=SEGMENT_STAGE, backend="ffmpeg", model=ffmpeg_version(), params=params,
                  inputs=sorted(params["files"].values()))


def make_segment(recipe: Recipe, spec: SegmentSpec, fmt: OutputFormat | None = None,
                 store: ArtifactStore | None = None) -> ArtifactRef:
    """The body of `render_segment`, callable without Prefect."""
    store = store or ArtifactStore.from_settings()
    fmt = fmt or OutputFormat(**recipe.params["format"])

    def write(tmp: Path) -> dict[str, Any]:
        result = render_segment_file(spec, tmp, fmt)
        return dict(nframes=result.nframes, fps=result.fps, duration=result.duration,
                    voice_interval=result.voice_interval, transition_in=result.transition_in,
                    subtitles=[c.model_dump() for c in result.subtitles], markers=result.markers)

    return store.lookup_or_make(recipe, ".mp4", "video/mp4", write)


def _segment_run_name() -> str:
    from prefect.runtime import task_run

    spec = task_run.parameters.get("spec")
    visual = getattr(spec, "image", None) or getattr(spec, "video", None)
    return f"render_segment-{Path(str(visual)).stem[:40]}" if visual else "render_segment"


@task(name="render_segment", task_run_name=_segment_run_name, **generation_task_options())
def render_segment(recipe: Recipe, spec: SegmentSpec, fmt: OutputFormat | None = None) -> ArtifactRef:
    """One shot → one segment file in the cut's fixed format (bit-exact, recipe-cached)."""
    return make_segment(recipe, spec, fmt)


def cut_recipe(segments: list[ArtifactRef], fmt: OutputFormat | None = None, music: str | None = None,
               burn_subtitles: bool = False) -> Recipe:
    fmt = fmt or video_config().format()
    music_id = music if music in (None, "procedural") else file_digest(music)
    return Recipe(stage=CUT_STAGE, backend="ffmpeg", model=ffmpeg_version(),
                  params={"format": fmt.model_dump(), "music": music_id, "burn_subtitles": burn_subtitles,
                          "mix": video_config().audio.model_dump(), "render": RENDER_VERSION},
                  inputs=[r.sha256 for r in segments])


def make_cut(recipe: Recipe, segments: list[ArtifactRef], music: str | None = None,
             store: ArtifactStore | None = None) -> ArtifactRef:
    """The body of `assemble_cut`: segments → the cut, with subtitles gathered from the segments' sidecars."""
    store = store or ArtifactStore.from_settings()
    if (ref := store.lookup(recipe)) is not None:
        return ref
    fmt = OutputFormat(**recipe.params["format"])
    paths, crossfades, cues, ducks, frames = [], [], [], [], []
    t = 0.0
    for i, ref in enumerate(segments):
        info = store.sidecar(ref).get("extra", {})
        paths.append(store.local_path(ref))
        frames.append(info.get("nframes"))
        xf = float(info.get("transition_in", 0.0)) if i else 0.0
        crossfades.append(xf)
        t -= xf  # this segment starts `xf` earlier: the previous one's tail was cut
        for c in info.get("subtitles", []):
            cues.append(SubtitleCue(start=t + c["start"], end=t + c["end"], text=c["text"]))
        if info.get("voice_interval"):
            a, b = info["voice_interval"]
            ducks.append((t + a, t + b))
        t += float(info.get("duration", 0.0))

    def write(tmp: Path) -> dict[str, Any]:
        srt = write_srt(cues, tmp.with_suffix(".srt")) if cues else None
        result = assemble_segments(paths, tmp, music=music, fmt=fmt, srt_path=srt,
                                   burn_subtitles=recipe.params["burn_subtitles"], crossfades=crossfades,
                                   duck_intervals=ducks if music else None,
                                   segment_frames=frames if None not in frames else None)
        extra = dict(duration=result.duration, nframes=result.nframes, segments=len(segments),
                     stream_copied=result.stream_copied, loudness_lufs=result.loudness_lufs,
                     duck_intervals=result.duck_intervals)
        if result.srt_path:
            subs = store.put_file(Recipe(stage=SUBS_STAGE, backend="studio", params={"cut": recipe.key()}),
                                  result.srt_path, "application/x-subrip")
            extra["subtitles"] = subs.model_dump()
        return extra

    return store.lookup_or_make(recipe, ".mp4", "video/mp4", write)


@task(name="assemble_cut", task_run_name="assemble_cut-{recipe.params[music]}", **generation_task_options())
def assemble_cut(recipe: Recipe, segments: list[ArtifactRef], music: str | None = None) -> ArtifactRef:
    """Segments → the cut: concat demuxer with stream copy, music ducked under dialogue, SRT beside it."""
    return make_cut(recipe, segments, music)


def render_cut(specs: list[SegmentSpec], fmt: OutputFormat | None = None, music: str | None = None,
               burn_subtitles: bool = False) -> ArtifactRef:
    """Inside a flow: submit every segment (in parallel on the flow's task runner, except that a crossfade
    waits for the segment before it), then assemble. Finished segments come back from the store."""
    fmt = fmt or video_config().format()
    store = ArtifactStore.from_settings()
    futures: list[Any] = []
    for spec in specs:
        if any(e.kind == "transition" for e in resolve_effects(spec.effects)) and futures:
            prev = futures[-1].result()  # the crossfade needs the previous segment's pixels
            spec = spec.model_copy(update={"previous_segment": store.local_path(prev)})
        recipe = segment_recipe(spec, fmt)
        futures.append(render_segment.submit(recipe, spec, fmt))
    refs = [f.result() for f in futures]
    return assemble_cut(cut_recipe(refs, fmt, music, burn_subtitles), refs, music)


def render_cut_local(specs: list[SegmentSpec], fmt: OutputFormat | None = None, music: str | None = None,
                     burn_subtitles: bool = False, workers: int | None = None,
                     store: ArtifactStore | None = None) -> ArtifactRef:
    """`render_cut` without Prefect (the CLI, benchmarks): the same task bodies and recipes, so it reads and
    fills the same store — and resumes the same way — with one single-threaded encode per core."""
    from concurrent.futures import ThreadPoolExecutor

    fmt = fmt or video_config().format()
    store = store or ArtifactStore.from_settings()
    futures: list[Any] = []
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for spec in specs:
            if futures and any(e.kind == "transition" for e in resolve_effects(spec.effects)):
                spec = spec.model_copy(update={"previous_segment": store.local_path(futures[-1].result())})
            futures.append(pool.submit(make_segment, segment_recipe(spec, fmt), spec, fmt, store))
        refs = [f.result() for f in futures]
    return make_cut(cut_recipe(refs, fmt, music, burn_subtitles), refs, music, store)


def export_artifact(ref: ArtifactRef, out_path: str | Path, store: ArtifactStore | None = None) -> Path:
    """Copy an artifact (and a cut's SRT) to a user-visible path."""
    store = store or ArtifactStore.from_settings()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(store.local_path(ref), out)
    subs = (store.sidecar(ref).get("extra") or {}).get("subtitles")
    if subs:
        shutil.copyfile(store.local_path(ArtifactRef(**subs)), out.with_suffix(".srt"))
    return out


# --------------------------------------------------------------------------- lip sync (gpu profile)
def lipsync_backend(profile: str | None = None, name: str | None = None) -> Any:
    """The profile's Wav2Lip backend, or None where the profile names none or lipsync.backend is `none`.
    Its weights are checked here (missing → a StudioError naming the model and how to pre-fetch it)."""
    from studio.configs.schema import studio_config
    from studio.resources.registry import load_backend, resolve_profile

    if video_config().lipsync.backend == "none":
        return None
    if name is None:
        models = studio_config().models.profiles.get(resolve_profile(profile))
        name = models.lipsync if models is not None else None
        if not name:
            return None
    backend = load_backend("lipsync", name=name)
    backend.require()
    return backend


def lipsync_recipe(backend: Any, visual: str | Path, voice: str | Path, box: list[int] | tuple[int, ...],
                   fps: int, seconds: float | None, voice_offset: float = 0.0) -> Recipe:
    return Recipe(stage=LIPSYNC_STAGE, backend="wav2lip", model=backend.model_id,
                  params={"v": 2, "model_name": backend.name, "box": list(box), "fps": fps,
                          "seconds": None if seconds is None else round(seconds, 3),
                          "voice_offset": round(voice_offset, 3), "blend": video_config().lipsync.model_dump(),
                          "ffmpeg": ffmpeg_version()},
                  inputs=[file_digest(visual), file_digest(voice)])


@task(name="sync_lips", task_run_name="sync_lips", **generation_task_options(heavy=True))
def sync_lips(recipe: Recipe, visual: str, voice: str) -> ArtifactRef:
    """Wav2Lip on a keyframe + a voice line → a lossless lip-synced clip (gpu profile; recipe-cached)."""
    p = recipe.params

    def write(tmp: Path) -> dict[str, Any]:
        backend = lipsync_backend(name=p["model_name"])
        return backend.sync(Path(visual), Path(voice), tmp, box=tuple(p["box"]), fps=p["fps"],
                            seconds=p["seconds"], voice_offset=p["voice_offset"])

    return ArtifactStore.from_settings().lookup_or_make(recipe, ".mkv", "video/x-matroska", write)
