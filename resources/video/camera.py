"""Camera motion of a shot: a similarity transform between sampled frames (Shi-Tomasi corners tracked with
pyramidal Lucas-Kanade, fitted with RANSAC), accumulated per shot → static / pan / tilt / zoom with speeds.

Speeds are per second: pans in frame widths, tilts in frame heights, zooms in ln(scale); tests check them
against clips of known motion (ffmpeg crop/scale over a large still) to within 10 %.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel

from studio.resources.video.config import AnalysisConfig, video_config

Motion = Literal["static", "pan-left", "pan-right", "tilt-up", "tilt-down", "zoom-in", "zoom-out"]
PLAN_MOVE = {"zoom-in": "push-in", "zoom-out": "pull-out"}  # the plan's camera_move vocabulary


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


