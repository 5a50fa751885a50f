"""Camera motion against ground truth: clips of known pan/tilt speed (ffmpeg crop over a large still) and
zoom rate, both directions, several speeds, with grain and compression → speed within 10 %, the direction
always right, static shots static."""

from __future__ import annotations

import pytest
from support.video_clips import moving_camera_video

from studio.resources.media.frames import read_all_frames
from studio.resources.video.camera import camera_motion

FPS, W, H = 24, 192, 108
CASES = [(k, s) for k in ("pan-left", "pan-right", "tilt-up", "tilt-down") for s in (1, 3)] + \
        [(k, r) for k in ("zoom-in", "zoom-out") for r in (0.1, 0.3)]


def measure(path):
    frames = list(read_all_frames(path, gray=True))[::2]  # sampled at 12 fps, as analyze_range samples
    return camera_motion(frames, FPS / 2)


def expected_speed(kind: str, speed: float) -> float:
    """The truth in camera_motion's units: content moves opposite to the window (frame widths/heights per s)."""
    if kind.startswith("zoom"):
        return speed if kind == "zoom-in" else -speed
    sign = -1 if kind in ("pan-right", "tilt-down") else 1
    return sign * speed * FPS / (W if kind.startswith("pan") else H)


@pytest.mark.parametrize(("kind", "speed"), CASES)
def test_speed_within_ten_percent_and_direction_right(tmp_path, kind, speed):
    motion = measure(moving_camera_video(tmp_path / f"{kind}.mp4", kind, speed, fps=FPS, size=(W, H)))
    assert motion.motion == kind, motion
    got = {"pan": motion.pan_speed, "tilt": motion.tilt_speed, "zoom": motion.zoom_rate}[kind.split("-")[0]]
    want = expected_speed(kind, speed)
    assert got == pytest.approx(want, rel=0.10), (motion, want)
    assert motion.confidence > 0.8


@pytest.mark.parametrize("noise", [0, 12])
def test_a_locked_off_shot_is_static(tmp_path, noise):
    motion = measure(moving_camera_video(tmp_path / "still.mp4", "pan-left", 0, fps=FPS, size=(W, H), noise=noise))
    assert motion.motion == "static", motion
    assert abs(motion.pan_speed) < 0.01 and abs(motion.tilt_speed) < 0.01 and abs(motion.zoom_rate) < 0.01
