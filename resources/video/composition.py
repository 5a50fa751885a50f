"""Composition and temporal coherence of a shot.

- Composition: the subject is the largest frontal face (OpenCV Haar cascade) or, for cartoon animals and
  anything a face detector misses, the largest foreground blob — moving pixels against nearby frames after
  cancelling the camera's motion, else spectral-residual saliency with a centre prior. From its box: shot
  size, rule-of-thirds placement and headroom. `subject_method` says which cue found it.
- Coherence: SSIM and mean luma between consecutive frames → flicker (a one-frame luma spike) and jumps (a
  frame unlike both neighbours, or a break in structure the cut detector did not call a cut).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from studio.resources.video.config import AnalysisConfig, video_config


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


def figure_shot_size(y0: float, y1: float) -> Literal["close-up", "medium", "wide"]:
    """Shot size of a subject found without a face, read as a whole figure by its height: cut off by both the
    top and the bottom of the frame → close-up; at least half the frame tall → medium; smaller → wide."""
    if y0 <= 0.02 and y1 >= 0.98:
        return "close-up"
    return "medium" if y1 - y0 >= 0.5 else "wide"


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
    bh = y1 - y0
    if method == "face":  # face height → shot size (a close-up shows the head and shoulders)
        size = "extreme-close-up" if bh > 0.5 else "close-up" if bh > 0.25 else "medium" if bh > 0.1 else "wide"
        top = max(0.0, y0 - 0.25 * bh)  # the crown sits above the detected face box
    else:
        size = figure_shot_size(y0, y1)
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


