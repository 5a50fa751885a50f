"""Film analysis of whole shots: one decode of a range of scenes → camera motion (camera.py), composition and
coherence (composition.py), colours, brightness and a keyframe per shot; `analyze_video` runs scene detection
(scenes.py) and this without Prefect (the `analyze-film` flow is the chunked, resumable version).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from studio.resources.media.ffmpeg import MediaError
from studio.resources.media.frames import iter_frames
from studio.resources.media.probe import require_video
from studio.resources.runtime.files import atomic_path
from studio.resources.video.camera import CameraMotion, camera_motion
from studio.resources.video.composition import Coherence, Composition, coherence, composition
from studio.resources.video.config import AnalysisConfig, video_config
from studio.resources.video.scenes import Scene, detect_scenes


class ShotAnalysis(BaseModel):
    video: str
    scene: Scene
    camera: CameraMotion
    composition: Composition
    coherence: Coherence
    colors: list[str]
    brightness: Literal["dark", "normal", "bright"]
    thumbnail: str | None = None  # path of the keyframe JPEG

    def description(self) -> str:
        """The text the knowledge base embeds: what a director would search footage by."""
        c, m = self.composition, self.camera
        where = f", subject {c.placement.replace('-', ' ')}" if c.placement else ""
        subject = {"face": "a face", "motion": "a moving character", "saliency": "a salient object",
                   "none": "no clear subject"}[c.subject_method]
        return (f"{c.shot_size} shot, {m.camera_move.replace('-', ' ')} camera, {subject}{where}; "
                f"{self.brightness} {', '.join(self.colors)} tones; {self.scene.duration:.1f} s "
                f"({self.scene.start:.2f}-{self.scene.end:.2f} s) of {Path(self.video).name}")


_HUES = [(10, "red"), (22, "orange"), (35, "yellow"), (85, "green"), (100, "teal"), (130, "blue"),
         (150, "purple"), (170, "pink"), (180, "red")]


def color_words(frame_rgb: np.ndarray, k: int = 2) -> tuple[list[str], str]:
    import cv2

    hsv = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.float32)
    v = float(hsv[:, 2].mean())
    brightness = "dark" if v < 70 else "bright" if v > 170 else "normal"
    sat = hsv[:, 1] > 60
    words: dict[str, int] = {}
    if sat.any():
        for h in hsv[sat, 0]:
            name = next(n for edge, n in _HUES if h < edge)
            words[name] = words.get(name, 0) + 1
    grey = int((~sat).sum())
    if grey > 0.4 * len(hsv):
        words["grey"] = grey
    ranked = sorted(words, key=words.get, reverse=True)[:k]
    return ranked or ["grey"], brightness


def _decode_scenes(path: str | Path, scenes: Sequence[Scene], fps: float, step: int,
                   cfg: AnalysisConfig) -> dict[int, dict]:
    """One decode of the scenes' time range → per scene: small greys for coherence, sampled greys for motion,
    and the representative frame (the sampled frame nearest the scene's middle) in colour."""
    import cv2

    coh_w = max(64, cfg.width // 2)
    first, last = scenes[0], scenes[-1]
    mids = {s.index: s.start_frame + step * ((s.end_frame - s.start_frame - 1) // 2 // step) for s in scenes}
    per_scene: dict[int, dict] = {s.index: {"coh": [], "motion": [], "mid": None} for s in scenes}
    bounds = [(s.start_frame, s.end_frame, s.index) for s in scenes]
    b = 0
    frame_no = first.start_frame
    # Seek to the first scene's start; frames are counted from there at the video's own rate.
    for rgb in iter_frames(path, width=max(cfg.width, cfg.thumbnails_width), start=first.start_frame / fps,
                           duration=(last.end_frame - first.start_frame) / fps):
        while b < len(bounds) and frame_no >= bounds[b][1]:
            b += 1
        if b >= len(bounds):
            break
        a0, _a1, idx = bounds[b]
        if frame_no < a0:  # inside a transition between two shots: no shot's picture
            frame_no += 1
            continue
        slot = per_scene[idx]
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        h = int(round(gray.shape[0] * cfg.width / gray.shape[1] / 2)) * 2
        g_an = cv2.resize(gray, (cfg.width, h), interpolation=cv2.INTER_AREA)
        slot["coh"].append(cv2.resize(g_an, (coh_w, h * coh_w // cfg.width), interpolation=cv2.INTER_AREA))
        if (frame_no - a0) % step == 0:
            slot["motion"].append(g_an)
        if frame_no == mids[idx]:
            slot["mid"] = rgb
            slot["mid_sample"] = len(slot["motion"]) - 1
        frame_no += 1
    return per_scene


def _analyse_scene(path: str | Path, s: Scene, slot: dict, fps: float, step: int, cfg: AnalysisConfig,
                   thumb_dir: Path | None) -> ShotAnalysis:
    import cv2

    if not slot["coh"]:
        raise MediaError(f"no frames decoded for scene {s.index} ({s.start:.2f}-{s.end:.2f} s) of {path}")
    motion = slot["motion"]
    cam = camera_motion(motion, fps / step, cfg)
    m = slot.get("mid_sample", len(motion) // 2)
    mid_rgb = slot["mid"] if slot["mid"] is not None else cv2.cvtColor(motion[m], cv2.COLOR_GRAY2RGB)
    small = cv2.resize(mid_rgb, (cfg.width, motion[m].shape[0]), interpolation=cv2.INTER_AREA)
    # Neighbours 2-6 samples (≈0.15-0.5 s) around the representative frame carry the motion cue.
    near = [motion[j] for j in (m - 6, m - 4, m - 2, m + 2, m + 4, m + 6) if 0 <= j < len(motion)]
    comp = composition(small, near)
    coh = coherence(slot["coh"], s.start_frame, fps, cfg)
    colors, brightness = color_words(small)
    thumb = None
    if thumb_dir is not None:
        from PIL import Image

        thumb = str(thumb_dir / f"scene-{s.index:04d}.jpg")
        with atomic_path(thumb) as tmp:
            Image.fromarray(mid_rgb).save(tmp, format="JPEG", quality=85)
    return ShotAnalysis(video=str(path), scene=s, camera=cam, composition=comp, coherence=coh,
                        colors=colors, brightness=brightness, thumbnail=thumb)


def analyze_range(path: str | Path, scenes: Sequence[Scene], thumb_dir: Path | None = None,
                  cfg: AnalysisConfig | None = None) -> list[ShotAnalysis]:
    """Analyse consecutive scenes with ONE decode of their time range (frames are streamed, not stored)."""
    cfg = cfg or video_config().analysis
    if not scenes:
        return []
    fps = require_video(path).fps
    step = max(1, int(round(fps / cfg.motion_sample_fps)))
    per_scene = _decode_scenes(path, scenes, fps, step, cfg)
    return [_analyse_scene(path, s, per_scene[s.index], fps, step, cfg, thumb_dir) for s in scenes]


def analyze_video(path: str | Path, out_dir: Path | None = None, workers: int = 1,
                  detector: str | None = None) -> list[ShotAnalysis]:
    """Scenes + per-shot analysis without Prefect (the flow `analyze_film` is the resumable version)."""
    scenes = detect_scenes(path, detector=detector, workers=workers)
    return analyze_range(path, scenes, (out_dir / "thumbnails") if out_dir else None)
