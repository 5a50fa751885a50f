"""Film analysis: scene cuts, shot composition, camera motion, temporal coherence, thumbnails.

- Scenes: PySceneDetect's content or adaptive detector over a time range. Long films are cut into chunks that
  each start `overlap` seconds early (the detectors need context) and keep only the cuts inside their own
  range, so a cut on a chunk border is found exactly once; `detect_scenes(workers=N)` runs chunks in processes.
- Camera motion: a similarity transform between sampled frames (Shi-Tomasi corners tracked with pyramidal
  Lucas-Kanade, fitted with RANSAC), accumulated per shot → static / pan / tilt / zoom with a magnitude.
- Composition: the subject is the largest frontal face (OpenCV Haar cascade) or, for cartoon animals and
  anything a face detector misses, the largest foreground blob — moving pixels against the shot's median
  frame when the camera holds still, else spectral-residual saliency with a centre prior. From its box:
  shot size, rule-of-thirds placement and headroom. `subject_method` says which cue found it.
- Coherence: SSIM and mean luma between consecutive frames → flicker (a one-frame luma spike) and jumps (a
  frame unlike both neighbours, or a break in structure the cut detector did not call a cut).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from studio.resources.media.ffmpeg import MediaError
from studio.resources.media.frames import iter_frames
from studio.resources.media.probe import require_video
from studio.resources.video.config import AnalysisConfig, SceneDetectionConfig, video_config

Motion = Literal["static", "pan-left", "pan-right", "tilt-up", "tilt-down", "zoom-in", "zoom-out"]
PLAN_MOVE = {"zoom-in": "push-in", "zoom-out": "pull-out"}  # the plan's camera_move vocabulary


# --------------------------------------------------------------------------- scenes
@dataclass(frozen=True)
class Chunk:
    index: int
    read_start: float  # where decoding starts (own_start - overlap, ≥ 0)
    own_start: float  # cuts at frames in [own_start, own_end) belong to this chunk
    own_end: float


def plan_chunks(duration: float, chunk_seconds: float, overlap_seconds: float) -> list[Chunk]:
    n = max(1, math.ceil(duration / chunk_seconds - 1e-9))
    return [Chunk(i, max(0.0, i * chunk_seconds - overlap_seconds), i * chunk_seconds,
                  duration + 1.0 if i == n - 1 else (i + 1) * chunk_seconds) for i in range(n)]


def _detector(cfg: SceneDetectionConfig, fps: float, kind: str | None = None):
    from scenedetect import AdaptiveDetector, ContentDetector

    min_len = max(1, int(round(cfg.min_scene_len_s * fps)))
    if (kind or cfg.detector) == "adaptive":
        return AdaptiveDetector(adaptive_threshold=cfg.adaptive_threshold, min_scene_len=min_len,
                                min_content_val=cfg.min_content_val)
    return ContentDetector(threshold=cfg.content_threshold, min_scene_len=min_len)


def _bgr_frames(path: str | Path, start_frame: int, n_frames: int, fps: float, width: int, height: int,
                threads: int, fast_decode: bool):
    """Frames [start_frame, start_frame + n_frames) as small BGR arrays, decoded and scaled by ffmpeg.

    Scaling in ffmpeg (and skipping H.264's deblocking filter, which changes nothing a cut detector sees)
    makes decoding — 90 % of scene detection — several times cheaper than OpenCV's full-size decode.
    """
    import subprocess

    from studio.resources.media.ffmpeg import ffmpeg_path

    h = height
    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error", "-threads", str(threads)]
    if fast_decode:
        cmd += ["-skip_loop_filter", "all"]
    if start_frame:
        cmd += ["-ss", f"{start_frame / fps:.6f}"]
    cmd += ["-i", str(path), "-map", "0:v:0", "-frames:v", str(n_frames), "-vf", f"scale={width}:{h}:flags=area",
            "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"]
    size = width * h * 3
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        while len(buf := proc.stdout.read(size)) == size:
            yield np.frombuffer(buf, np.uint8).reshape(h, width, 3)
    finally:
        proc.kill()
        proc.wait()


def detect_cuts_in_range(path: str | Path, chunk: Chunk, cfg: SceneDetectionConfig | None = None,
                         detector: str | None = None, threads: int = 0) -> dict:
    """Cut frames (a cut at frame k: k is the first frame of a new scene) owned by one chunk.

    PySceneDetect's detectors get the frames from an ffmpeg pipe (`threads`: decoder threads, 0 = auto; a
    chunk worker uses 1 so N workers use N cores).
    """
    from scenedetect import FrameTimecode

    cfg = cfg or video_config().scene_detection
    info = require_video(path)
    fps = info.fps
    total = info.n_frames
    first = int(round(chunk.read_start * fps))
    own0, own1 = int(round(chunk.own_start * fps)), min(total, int(round(chunk.own_end * fps)))
    det = _detector(cfg, fps, detector)
    cuts: list[int] = []
    frame_no = first
    width = min(cfg.downscale_width, info.width)
    height = max(2, int(round(info.height * width / info.width / 2)) * 2)
    for frame in _bgr_frames(path, first, own1 - first, fps, width, height, threads, cfg.fast_decode):
        cuts += [int(c.frame_num) for c in det.process_frame(FrameTimecode(frame_no, fps), frame)]
        frame_no += 1
    if frame_no > first:
        cuts += [int(c.frame_num) for c in det.post_process(FrameTimecode(frame_no - 1, fps))]
    return {"chunk": chunk.index, "fps": fps, "first_frame": first, "frames_read": frame_no - first,
            "cuts": sorted({c for c in cuts if own0 <= c < own1 and c > first}), "total_frames": total}


def merge_cuts(chunk_results: Sequence[dict], min_len_frames: int) -> list[int]:
    """Union of the chunks' cuts, enforcing the minimum scene length across chunk borders too."""
    out: list[int] = []
    for c in sorted({c for r in chunk_results for c in r["cuts"]}):
        if c <= 0:
            continue
        if not out or c - out[-1] >= min_len_frames:
            out.append(c)
    return out


class Scene(BaseModel):
    index: int
    start_frame: int
    end_frame: int  # exclusive
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def scenes_from_cuts(cuts: Sequence[int], total_frames: int, fps: float) -> list[Scene]:
    bounds = [0, *[c for c in cuts if 0 < c < total_frames], total_frames]
    return [Scene(index=i, start_frame=a, end_frame=b, start=a / fps, end=b / fps)
            for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)) if b > a]


def detect_scenes(path: str | Path, cfg: SceneDetectionConfig | None = None, detector: str | None = None,
                  chunk_seconds: float | None = None, workers: int = 1, threads: int = 0) -> list[Scene]:
    """Scenes of a whole video; chunked (and, with workers > 1, in parallel processes) for long inputs.
    `threads`: ffmpeg decoder threads of a single-process run (0 = auto); pool workers use one each."""
    cfg = cfg or video_config().scene_detection
    info = require_video(path)
    chunks = plan_chunks(info.duration, chunk_seconds or cfg.chunk_seconds, cfg.overlap_seconds)
    if workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
            results = list(pool.map(detect_cuts_in_range, [str(path)] * len(chunks), chunks, [cfg] * len(chunks),
                                    [detector] * len(chunks), [1] * len(chunks)))
    else:
        results = [detect_cuts_in_range(path, c, cfg, detector, threads) for c in chunks]
    fps = results[0]["fps"]
    total = results[0]["total_frames"] or info.n_frames
    return scenes_from_cuts(merge_cuts(results, max(1, int(round(cfg.min_scene_len_s * fps)))), total, fps)


# --------------------------------------------------------------------------- camera motion
class CameraMotion(BaseModel):
    motion: Motion
    camera_move: str  # the plan's vocabulary (push-in / pull-out for zooms)
    pan_speed: float  # frame widths per second, + = content moves right (camera pans left)
    tilt_speed: float  # frame heights per second, + = content moves down (camera tilts up)
    zoom_rate: float  # ln(scale) per second, + = zooming in
    confidence: float  # fraction of sampled frame pairs with a reliable fit


def estimate_pair_motion(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float] | None:
    """(dx, dy, ln scale) of b relative to a, about the frame centre; None without enough texture."""
    import cv2

    pts = cv2.goodFeaturesToTrack(a, maxCorners=300, qualityLevel=0.01, minDistance=6, blockSize=5)
    if pts is None or len(pts) < 12:
        return None
    nxt, status, _err = cv2.calcOpticalFlowPyrLK(a, b, pts, None, winSize=(21, 21), maxLevel=3)
    good = status.reshape(-1) == 1
    if good.sum() < 12:
        return None
    m, inliers = cv2.estimateAffinePartial2D(pts[good], nxt[good], method=cv2.RANSAC, ransacReprojThreshold=1.5)
    if m is None or inliers is None or inliers.sum() < 10:
        return None
    scale = math.hypot(m[0, 0], m[1, 0])
    h, w = a.shape
    c = np.array([w / 2, h / 2])
    moved = m[:, :2] @ c + m[:, 2] - c
    return float(moved[0]), float(moved[1]), math.log(max(scale, 1e-6))


def camera_motion(frames: Sequence[np.ndarray], fps: float, cfg: AnalysisConfig | None = None) -> CameraMotion:
    """Classify a shot's camera motion from gray frames sampled at `fps`."""
    cfg = cfg or video_config().analysis
    fits = [estimate_pair_motion(a, b) for a, b in zip(frames, frames[1:], strict=False)]
    ok = [f for f in fits if f is not None]
    if not ok:
        return CameraMotion(motion="static", camera_move="static", pan_speed=0, tilt_speed=0, zoom_rate=0,
                            confidence=0.0)
    h, w = frames[0].shape
    dx = float(np.median([f[0] for f in ok])) / w * fps
    dy = float(np.median([f[1] for f in ok])) / h * fps
    dz = float(np.median([f[2] for f in ok])) * fps
    # A zoom moves the frame edges at |dz|/2 widths per second; call it a zoom when that beats the drift.
    if abs(dz) > cfg.zoom_rate and abs(dz) >= 0.5 * max(abs(dx), abs(dy)):
        motion: Motion = "zoom-in" if dz > 0 else "zoom-out"
    elif max(abs(dx), abs(dy)) < cfg.static_speed:
        motion = "static"
    elif abs(dx) >= abs(dy):
        motion = "pan-right" if dx < 0 else "pan-left"  # content moving left = the camera turning right
    else:
        motion = "tilt-up" if dy > 0 else "tilt-down"
    return CameraMotion(motion=motion, camera_move=PLAN_MOVE.get(motion, motion), pan_speed=round(dx, 4),
                        tilt_speed=round(dy, 4), zoom_rate=round(dz, 4), confidence=round(len(ok) / len(fits), 3))


# --------------------------------------------------------------------------- composition
class Composition(BaseModel):
    subject_method: Literal["face", "motion", "saliency", "none"]
    subject_box: tuple[float, float, float, float] | None  # x0, y0, x1, y1 as fractions of the frame
    shot_size: Literal["extreme-close-up", "close-up", "medium", "wide"]
    placement: Literal["left-third", "center", "right-third"] | None
    thirds_offset: float | None  # distance of the subject centre to the nearest thirds point (0 = on it)
    headroom: float | None  # free space above the subject, as a fraction of the frame height
    faces: int = 0


def _largest_blob(mask: np.ndarray, min_frac: float = 0.01) -> tuple[int, int, int, int] | None:
    import cv2

    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, _lab, stats, _c = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return None
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = stats[i]
    if area < min_frac * mask.size:
        return None
    return int(x), int(y), int(x + w), int(y + h)


def spectral_residual_saliency(gray: np.ndarray) -> np.ndarray:
    """Hou & Zhang (2007) saliency on a 64-px-wide copy, with a mild centre prior; returns [0, 1] at input size."""
    import cv2

    h, w = gray.shape
    small = cv2.resize(gray.astype(np.float32), (64, max(8, int(64 * h / w))), interpolation=cv2.INTER_AREA)
    spec = np.fft.fft2(small)
    log_amp = np.log(np.abs(spec) + 1e-8)
    residual = log_amp - cv2.blur(log_amp, (3, 3))
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spec)))) ** 2
    sal = cv2.GaussianBlur(sal, (9, 9), 2.5)
    yy, xx = np.mgrid[0:sal.shape[0], 0:sal.shape[1]]
    prior = np.exp(-(((xx / sal.shape[1] - 0.5) ** 2) + ((yy / sal.shape[0] - 0.5) ** 2)) / 0.18)
    sal = sal * prior
    sal = cv2.resize(sal, (w, h), interpolation=cv2.INTER_LINEAR)
    return (sal - sal.min()) / (np.ptp(sal) + 1e-9)


def _faces(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal faces as pixel boxes: OpenCV's Haar cascade where the build ships it (OpenCV 4.x), else
    mediapipe's detector where installed, else none (OpenCV 5 wheels dropped the cascades)."""
    import cv2

    cascade_file = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    if hasattr(cv2, "CascadeClassifier") and cascade_file.is_file():
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        min_side = max(16, gray.shape[0] // 12)
        found = cv2.CascadeClassifier(str(cascade_file)).detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=6, minSize=(min_side, min_side))
        return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in (found if len(found) else [])]
    det = _mediapipe_detector()
    if det is None:
        return []
    h, w = rgb.shape[:2]
    with _MP_LOCK:  # one graph per process, not thread-safe
        res = det.process(np.ascontiguousarray(rgb))
    boxes = []
    for d in res.detections or []:
        bb = d.location_data.relative_bounding_box
        boxes.append((int(bb.xmin * w), int(bb.ymin * h), int((bb.xmin + bb.width) * w),
                      int((bb.ymin + bb.height) * h)))
    return boxes


_MP_LOCK = threading.Lock()


@functools.cache
def _mediapipe_detector():
    """mediapipe's full-range face detector, built once per process (TF Lite start-up costs ~0.5 s)."""
    try:
        import mediapipe as mp

        return mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.6)
    except (ImportError, AttributeError):
        return None


def face_detector_available() -> str | None:
    """Which face detector `composition` can use here: 'haar', 'mediapipe' or None."""
    import importlib.util

    import cv2

    if hasattr(cv2, "CascadeClassifier") and (Path(cv2.data.haarcascades) /
                                             "haarcascade_frontalface_default.xml").is_file():
        return "haar"
    return "mediapipe" if importlib.util.find_spec("mediapipe") else None


def _aligned_motion(ref: np.ndarray, others: Sequence[np.ndarray]) -> np.ndarray:
    """Per-pixel motion energy of `ref` against nearby frames after cancelling the camera's own motion
    (similarity transform fitted with RANSAC): what is left moves by itself — the character."""
    import cv2

    h, w = ref.shape
    energy = np.zeros((h, w), np.float32)
    pts = cv2.goodFeaturesToTrack(ref, maxCorners=300, qualityLevel=0.01, minDistance=6, blockSize=5)
    for other in others:
        warped = other
        if pts is not None and len(pts) >= 12:
            nxt, st, _e = cv2.calcOpticalFlowPyrLK(ref, other, pts, None, winSize=(21, 21), maxLevel=3)
            good = st.reshape(-1) == 1
            if good.sum() >= 12:
                m, _inl = cv2.estimateAffinePartial2D(nxt[good], pts[good], method=cv2.RANSAC,
                                                      ransacReprojThreshold=1.5)
                if m is not None:
                    warped = cv2.warpAffine(other, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
        diff = np.abs(ref.astype(np.float32) - warped.astype(np.float32))
        energy = np.maximum(energy, cv2.GaussianBlur(diff, (0, 0), 1.5))
    return energy


def composition(frame_rgb: np.ndarray, neighbours: Sequence[np.ndarray] = ()) -> Composition:
    """Subject, shot size, thirds placement and headroom for one representative frame of a shot.

    `neighbours`: gray frames (same size) a few frames before/after it, for the motion cue.
    """
    import cv2

    h, w = frame_rgb.shape[:2]
    gray = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
    faces = _faces(frame_rgb)
    method, box = "none", None
    if faces:
        method, box = "face", max(faces, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    if box is None and neighbours:
        energy = _aligned_motion(gray, [cv2.resize(f, (w, h)) for f in neighbours])
        moving = energy > max(15.0, float(np.percentile(energy, 90)))
        k = max(3, (w // 22) | 1)
        blob = _largest_blob(cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((k, k), np.uint8)),
                             0.01)
        if blob is not None:
            method, box = "motion", blob
    if box is None:
        sal = spectral_residual_saliency(gray)
        blob = _largest_blob(sal > max(0.35, float(np.percentile(sal, 85))), 0.005)
        if blob is not None:
            method, box = "saliency", blob
    if box is None:
        return Composition(subject_method="none", subject_box=None, shot_size="wide", placement=None,
                           thirds_offset=None, headroom=None)
    x0, y0, x1, y1 = box[0] / w, box[1] / h, box[2] / w, box[3] / h
    bh, area = y1 - y0, (x1 - x0) * (y1 - y0)
    if method == "face":  # face height → shot size (a close-up shows the head and shoulders)
        size = "extreme-close-up" if bh > 0.5 else "close-up" if bh > 0.25 else "medium" if bh > 0.1 else "wide"
        top = max(0.0, y0 - 0.25 * bh)  # the crown sits above the detected face box
    else:
        size = "close-up" if area > 0.45 else "medium" if area > 0.12 else "wide"
        top = y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    thirds = min(math.hypot(cx - tx, cy - ty) for tx in (1 / 3, 2 / 3) for ty in (1 / 3, 2 / 3))
    placement = "left-third" if cx < 0.42 else "right-third" if cx > 0.58 else "center"
    return Composition(subject_method=method, subject_box=(round(x0, 3), round(y0, 3), round(x1, 3), round(y1, 3)),
                       shot_size=size, placement=placement, thirds_offset=round(thirds, 3),
                       headroom=round(top, 3), faces=len(faces))


# --------------------------------------------------------------------------- coherence
class CoherenceFlag(BaseModel):
    frame: int  # absolute frame number in the video
    time: float
    kind: Literal["flicker", "jump"]
    score: float


class Coherence(BaseModel):
    ssim_mean: float
    ssim_min: float
    flags: list[CoherenceFlag]

    @property
    def coherent(self) -> bool:
        return not self.flags


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two gray images (Gaussian window, Wang et al. 2004 constants)."""
    import cv2

    a, b = a.astype(np.float32), b.astype(np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = cv2.GaussianBlur(a, (7, 7), 1.5), cv2.GaussianBlur(b, (7, 7), 1.5)
    saa = cv2.GaussianBlur(a * a, (7, 7), 1.5) - mu_a ** 2
    sbb = cv2.GaussianBlur(b * b, (7, 7), 1.5) - mu_b ** 2
    sab = cv2.GaussianBlur(a * b, (7, 7), 1.5) - mu_a * mu_b
    m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
    return float(m.mean())


def coherence(frames: Sequence[np.ndarray], first_frame: int, fps: float, cfg: AnalysisConfig | None = None
              ) -> Coherence:
    """Flag flicker and jumps inside one shot from its consecutive gray frames (all of them, not sampled)."""
    cfg = cfg or video_config().analysis
    n = len(frames)
    if n < 2:
        return Coherence(ssim_mean=1.0, ssim_min=1.0, flags=[])
    luma = np.array([float(f.mean()) for f in frames])
    s = np.array([ssim(frames[i], frames[i + 1]) for i in range(n - 1)])  # s[i]: frame i vs i+1
    flags: dict[int, CoherenceFlag] = {}
    median_s = float(np.median(s))
    for i in range(1, n - 1):
        up, down = luma[i] - luma[i - 1], luma[i] - luma[i + 1]
        if min(abs(up), abs(down)) > cfg.flicker_luma and np.sign(up) == np.sign(down) \
                and abs(luma[i + 1] - luma[i - 1]) < cfg.flicker_luma / 2:
            flags[i] = CoherenceFlag(frame=first_frame + i, time=round((first_frame + i) / fps, 3), kind="flicker",
                                     score=round(min(abs(up), abs(down)), 2))
            continue
        bridge = ssim(frames[i - 1], frames[i + 1])
        drop = bridge - max(s[i - 1], s[i])
        if drop > cfg.ssim_jump * (1 - min(bridge, 0.999)) + 0.15 and drop > 0.2:
            flags[i] = CoherenceFlag(frame=first_frame + i, time=round((first_frame + i) / fps, 3), kind="jump",
                                     score=round(drop, 3))
    for i, v in enumerate(s):  # structural breaks that persist (a missed cut, a generated clip that jumps)
        j = i + 1
        if v < median_s - cfg.ssim_jump and j not in flags and i not in flags:
            flags[j] = CoherenceFlag(frame=first_frame + j, time=round((first_frame + j) / fps, 3), kind="jump",
                                     score=round(median_s - float(v), 3))
    return Coherence(ssim_mean=round(float(s.mean()), 4), ssim_min=round(float(s.min()), 4),
                     flags=sorted(flags.values(), key=lambda f: f.frame))


# --------------------------------------------------------------------------- whole shots
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


def analyze_range(path: str | Path, scenes: Sequence[Scene], thumb_dir: Path | None = None,
                  cfg: AnalysisConfig | None = None) -> list[ShotAnalysis]:
    """Analyse consecutive scenes with ONE decode of their time range (frames are streamed, not stored)."""
    import cv2

    cfg = cfg or video_config().analysis
    if not scenes:
        return []
    info = require_video(path)
    fps = info.fps
    step = max(1, int(round(fps / cfg.motion_sample_fps)))
    coh_w = max(64, cfg.width // 2)
    decode_w = max(cfg.width, cfg.thumbnails_width)
    first, last = scenes[0], scenes[-1]
    # The representative frame is the sampled frame nearest each scene's middle.
    mids = {s.index: s.start_frame + step * ((s.end_frame - s.start_frame - 1) // 2 // step) for s in scenes}
    per_scene: dict[int, dict] = {s.index: {"coh": [], "motion": [], "mid": None} for s in scenes}
    bounds = [(s.start_frame, s.end_frame, s.index) for s in scenes]
    b = 0
    frame_no = first.start_frame
    # Seek to the first scene's start; frames are counted from there at the video's own rate.
    for rgb in iter_frames(path, width=decode_w, start=first.start_frame / fps,
                           duration=(last.end_frame - first.start_frame) / fps):
        while b < len(bounds) and frame_no >= bounds[b][1]:
            b += 1
        if b >= len(bounds):
            break
        a0, _a1, idx = bounds[b]
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
    out = []
    for s in scenes:
        slot = per_scene[s.index]
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

            thumb_dir.mkdir(parents=True, exist_ok=True)
            thumb = str(thumb_dir / f"scene-{s.index:04d}.jpg")
            Image.fromarray(mid_rgb).save(thumb, quality=85)
        out.append(ShotAnalysis(video=str(path), scene=s, camera=cam, composition=comp, coherence=coh,
                                colors=colors, brightness=brightness, thumbnail=thumb))
    return out


def analyze_video(path: str | Path, out_dir: Path | None = None, workers: int = 1,
                  detector: str | None = None) -> list[ShotAnalysis]:
    """Scenes + per-shot analysis without Prefect (the flow `analyze_film` is the resumable version)."""
    scenes = detect_scenes(path, detector=detector, workers=workers)
    return analyze_range(path, scenes, (out_dir / "thumbnails") if out_dir else None)
