"""Scene cuts exactly as PySceneDetect finds them, gradual transitions beside them, chunked for long films.

Cuts: PySceneDetect's own pipeline — `open_video` (OpenCV decoding), `SceneManager` with its automatic
downscale (factor = frame width / 256, bilinear `cv2.resize`) and its detector with the same arguments — so
`detect(path, ContentDetector())` and the studio give the same cut list, in seconds, on any input,
variable frame rate included (times are the decoder's presentation times). Decoding with ffmpeg scaled to
256 px and without H.264 deblocking was 1.3-3x faster but changed the frame scores enough to add cuts at
fades; equality wins.

Transitions (fades, dissolves; see transitions.py) come from the same decode pass and are reported apart
from the cuts. The shots footage is picked from are the stretches of clean picture between cuts and
transitions: a fade never splits a shot, and no shot starts or ends inside one.

Long films are cut into chunks; each decodes from `overlap` seconds before its own range to `overlap`
seconds after it (the detectors need context on both sides: the flash filter can emit a cut up to
`min_scene_len` frames late) and keeps only the cuts inside its own range, so a cut on a chunk border is
found exactly once; `detect_scenes(workers=N)` runs chunks in processes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from studio.configs.errors import ConfigError
from studio.resources.media.ffmpeg import UnsupportedMediaError
from studio.resources.media.probe import require_video
from studio.resources.video.config import SceneDetectionConfig, video_config
from studio.resources.video.transitions import Transition, TransitionProbe, merge_transitions

Boundary = Literal["start", "cut", "fade", "dissolve", "end"]


@dataclass(frozen=True)
class Chunk:
    index: int
    read_start: float  # where decoding starts (own_start - overlap, ≥ 0)
    own_start: float  # cuts at times in [own_start, own_end) belong to this chunk
    own_end: float
    read_end: float | None  # where decoding stops (own_end + overlap); None = the end of the film


def plan_chunks(duration: float, chunk_seconds: float, overlap_seconds: float) -> list[Chunk]:
    n = max(1, math.ceil(duration / chunk_seconds - 1e-9))
    return [Chunk(i, max(0.0, i * chunk_seconds - overlap_seconds), i * chunk_seconds,
                  duration + 1.0 if i == n - 1 else (i + 1) * chunk_seconds,
                  None if i == n - 1 else (i + 1) * chunk_seconds + overlap_seconds) for i in range(n)]


def cut_detector(cfg: SceneDetectionConfig, kind: str | None = None):
    """The PySceneDetect detector the settings name, built with exactly those arguments."""
    from scenedetect import AdaptiveDetector, ContentDetector

    if (kind or cfg.detector) == "adaptive":
        return AdaptiveDetector(adaptive_threshold=cfg.adaptive_threshold, min_scene_len=cfg.min_scene_len,
                                min_content_val=cfg.min_content_val)
    return ContentDetector(threshold=cfg.content_threshold, min_scene_len=cfg.min_scene_len)


def transition_probe(cfg: SceneDetectionConfig) -> TransitionProbe:
    return TransitionProbe(fade_threshold=cfg.fade_threshold, low_score=cfg.dissolve_low_score,
                           max_seconds=cfg.transition_max_seconds)


def detect_cuts_in_range(path: str | Path, chunk: Chunk, cfg: SceneDetectionConfig | None = None,
                         detector: str | None = None) -> dict:
    """One decode of a chunk's range → what the cut detector needs to decide its cuts, and transitions.

    Content detector: the frames of the chunk's own range (presentation times as PySceneDetect holds them)
    and which of them score above the threshold — PySceneDetect's ContentDetector with its flash filter off.
    The flash filter (min_scene_len) keeps state across a whole film (a merge can stay open until the next
    cut), so `assemble_scenes` runs it once over all chunks in order: the same cuts as one pass, exactly.
    Adaptive detector: its own cuts (its state is a short window and the last cut, so the overlap covers it).
    """
    from scenedetect import SceneManager, VideoOpenFailure, open_video

    cfg = cfg or video_config().scene_detection
    kind = detector or cfg.detector
    try:
        video = open_video(str(path), backend="opencv")
    except (VideoOpenFailure, OSError) as e:
        require_video(path)  # missing, corrupt, audio only: its own clear error
        raise UnsupportedMediaError(f"{path}: PySceneDetect's OpenCV decoder cannot open it ({e}); transcode it "
                                    f"first, e.g. `ffmpeg -i '{path}' -c:v libx264 -pix_fmt yuv420p out.mp4`") from None
    fps = float(video.frame_rate)
    if cfg.overlap_seconds * fps <= cfg.min_scene_len + 2:
        raise ConfigError("configs/video.yaml", [f"scene_detection.overlap_seconds ({cfg.overlap_seconds}) must "
                                                 f"cover more than min_scene_len ({cfg.min_scene_len} frames) at "
                                                 f"{fps:g} fps"])
    if chunk.read_start > 0:
        video.seek(chunk.read_start)
    manager = SceneManager()  # PySceneDetect's defaults: auto downscale, bilinear resampling
    scoring = cut_detector(cfg.model_copy(update={"min_scene_len": 0}) if kind == "content" else cfg, kind)
    manager.add_detector(scoring)
    probe = transition_probe(cfg)
    manager.add_detector(probe)
    manager.detect_scenes(video, end_time=chunk.read_end)
    lo, hi = chunk.own_start - 1e-6, chunk.own_end - 1e-6
    marks = [s for s, _e in manager.get_scene_list(start_in_scene=True)[1:]]
    own = [tc for tc in probe.timecodes if lo <= tc.seconds < hi]
    rate = video.frame_rate
    out = {"chunk": chunk.index, "fps": fps, "rate": [rate.numerator, rate.denominator], "detector": kind,
           "frames_read": len(probe.timecodes),
           "frames": [[tc.pts, tc.time_base.numerator, tc.time_base.denominator] for tc in own],
           "transitions": [t.model_dump() for t in probe.transitions() if t.end > lo and t.start < hi],
           "end_time": probe.end_time, "fade_splits": [t for t in probe.fade_splits if lo <= t < hi]}
    if kind == "content":
        above = {(m.pts, m.time_base) for m in marks}
        out["above"] = [i for i, tc in enumerate(own) if (tc.pts, tc.time_base) in above]
    else:
        out["cuts"] = [{"time": float(m.seconds), "frame": int(m.frame_num)} for m in marks if lo <= m.seconds < hi]
    return out


def _timecodes(result: dict) -> list:
    from fractions import Fraction

    from scenedetect import FrameTimecode
    from scenedetect.common import Timecode

    rate = Fraction(*result["rate"])
    return [FrameTimecode(Timecode(pts=p, time_base=Fraction(n, d)), fps=rate) for p, n, d in result["frames"]]


def merge_chunks(results: Sequence[dict], min_scene_len: int) -> tuple[list[dict], list[Transition]]:
    """Cuts of the whole film from its chunks, in order, and their transitions with overlaps merged.

    Content detector: PySceneDetect's FlashFilter (MERGE mode, as ContentDetector builds it) over every
    frame of the film in order, told which frames scored above the threshold."""
    from scenedetect.detector import FlashFilter

    results = sorted(results, key=lambda r: r["chunk"])
    if results and results[0]["detector"] == "content":
        flash = FlashFilter(mode=FlashFilter.Mode.MERGE, length=min_scene_len)
        marks = []
        for r in results:
            above = set(r["above"])
            for i, tc in enumerate(_timecodes(r)):
                marks += flash.filter(timecode=tc, above_threshold=i in above)
        cuts = [{"time": float(m.seconds), "frame": int(m.frame_num)} for m in sorted(set(marks))]
    else:
        cuts = sorted({round(c["time"], 6): c for r in results for c in r["cuts"]}.values(),
                      key=lambda c: c["time"])
    fps = results[0]["fps"] if results else 24.0
    trans = merge_transitions([Transition(**t) for r in results for t in r["transitions"]], 0.5 / fps)
    return cuts, trans


class Scene(BaseModel):
    """A shot: clean picture between two boundaries (a cut, or the edge of a transition)."""

    index: int
    start_frame: int  # frame numbers at the average rate (exact for constant frame rate)
    end_frame: int  # exclusive
    start: float  # seconds (presentation time, exact also for variable frame rate)
    end: float
    starts_with: Boundary = "cut"  # what comes before it
    ends_with: Boundary = "cut"  # what comes after it

    @property
    def duration(self) -> float:
        return self.end - self.start


def scenes_from_cuts(cuts: Sequence[float], transitions: Sequence[Transition], duration: float, fps: float
                     ) -> list[Scene]:
    """Shots between cut times and transitions; a cut inside (or at the edge of) a transition belongs to it."""
    tol = 0.5 / fps
    marks: list[tuple[float, float, Boundary]] = [(t.start, t.end, t.kind) for t in transitions]
    marks += [(c, c, "cut") for c in cuts if not any(t.start - tol <= c <= t.end + tol for t in transitions)]
    marks.sort()
    scenes: list[Scene] = []
    pos, before = 0.0, "start"
    for a, b, kind in [*marks, (duration, duration, "end")]:
        if a - pos > tol:
            scenes.append(Scene(index=len(scenes), start_frame=round(pos * fps), end_frame=round(a * fps),
                                start=round(pos, 6), end=round(a, 6), starts_with=before, ends_with=kind))
        pos, before = max(pos, b), kind
    return scenes


def detect_scenes(path: str | Path, cfg: SceneDetectionConfig | None = None, detector: str | None = None,
                  chunk_seconds: float | None = None, workers: int = 1) -> list[Scene]:
    """Shots of a whole video; chunked (and, with workers > 1, in parallel processes: then a film shorter
    than workers × chunk_seconds is cut into one chunk per worker). The cuts are the same either way."""
    return film_scenes(path, cfg, detector, chunk_seconds, workers)["scenes"]


def film_scenes(path: str | Path, cfg: SceneDetectionConfig | None = None, detector: str | None = None,
                chunk_seconds: float | None = None, workers: int = 1) -> dict:
    """{"cuts": PySceneDetect's cut times, "transitions": [...], "scenes": shots, "fps", "frames_read"}."""
    cfg = cfg or video_config().scene_detection
    info = require_video(path)
    chunk_s = chunk_seconds or cfg.chunk_seconds
    if chunk_seconds is None and workers > 1:  # a film shorter than workers × chunk is spread over them too
        chunk_s = min(chunk_s, max(info.duration / workers + 1e-3, 4 * cfg.overlap_seconds))
    chunks = plan_chunks(info.duration, chunk_s, cfg.overlap_seconds)
    if workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
            results = list(pool.map(detect_cuts_in_range, [str(path)] * len(chunks), chunks,
                                    [cfg] * len(chunks), [detector] * len(chunks)))
    else:
        results = [detect_cuts_in_range(path, c, cfg, detector) for c in chunks]
    return assemble_scenes(results, cfg.min_scene_len)


def assemble_scenes(results: Sequence[dict], min_scene_len: int) -> dict:
    """Chunk results → cuts, transitions and shots of the whole film."""
    cuts, trans = merge_chunks(results, min_scene_len)
    fps = results[0]["fps"]
    end = max(r["end_time"] for r in results)
    return {"cuts": [c["time"] for c in cuts], "cut_frames": [c["frame"] for c in cuts], "transitions": trans,
            "scenes": scenes_from_cuts([c["time"] for c in cuts], trans, end, fps), "fps": fps,
            "duration": end, "frames_read": sum(r["frames_read"] for r in results)}
