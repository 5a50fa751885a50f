"""Composition and coherence against ground truth: a figure placed at a known third and size (wide, medium,
close-up by its height) in a locked-off shot → placement, size and box found; flicker and jump frames
injected at known indices → flagged at exactly those frames, nothing else."""

from __future__ import annotations

import pytest
from support.video_clips import glitch_video, subject_video

from studio.resources.media.frames import read_all_frames
from studio.resources.video.composition import coherence, composition

PLACES = {"left-third": 1 / 3, "center": 0.5, "right-third": 2 / 3}
SIZES = {"wide": 0.3, "medium": 0.65, "close-up": 1.4}  # figure height in frame heights (>1: cut by the frame)


def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("place", list(PLACES))
@pytest.mark.parametrize("size", list(SIZES))
def test_figure_placement_and_shot_size(tmp_path, place, size):
    clip, box = subject_video(tmp_path / "shot.mp4", PLACES[place], SIZES[size])
    rgb, gray = read_all_frames(clip), read_all_frames(clip, gray=True)
    m = 12  # the representative frame and its neighbours 2-6 frames away, as analyze_range picks them
    comp = composition(rgb[m], [gray[j] for j in (m - 6, m - 4, m - 2, m + 2, m + 4, m + 6)])
    assert (comp.placement, comp.shot_size) == (place, size), comp
    assert comp.subject_method == "motion" and _iou(comp.subject_box, box) > 0.7, (comp.subject_box, box)


def test_flicker_and_jump_frames_are_found_exactly(tmp_path):
    clip = glitch_video(tmp_path / "glitch.mp4", flickers=(10, 40), jumps=(25,))
    coh = coherence(list(read_all_frames(clip, gray=True)), first_frame=200, fps=24)
    assert [(f.frame, f.kind) for f in coh.flags] == [(210, "flicker"), (225, "jump"), (240, "flicker")]
    clean = coherence(list(read_all_frames(glitch_video(tmp_path / "clean.mp4", (), ()), gray=True)), 0, 24)
    assert clean.flags == []
