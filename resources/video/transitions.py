"""Gradual transitions — fades to/from black or white, dissolves — found in the same decode pass as the cuts.

`TransitionProbe` is a PySceneDetect `SceneDetector` that never reports a cut: the SceneManager hands it the
same downscaled BGR frames it hands the cut detector, and it records
- black/white holds with PySceneDetect's own `ThresholdDetector` (FLOOR for black, CEILING for white): the
  frames between its fade-out and fade-in crossings;
- gradual runs with a twin-comparison test on content scores (Zhang et al. 1993): a run of frames whose
  HSV content score (ContentDetector's formula, on a 64-px-wide copy) stays above a low threshold, kept only
  when every frame inside it is a blend of the frames on either side of it (f ≈ (1-α)·A + α·B, α rising
  from 0 to 1). A pan or a moving subject also raises the scores for a while but is not such a blend.
A run that ends in (or starts from) a black/white frame is a fade; otherwise a dissolve. A fade-out, the
hold and the fade-in after it merge into one transition: footage picks never start or end inside it and it
never splits a shot.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

import numpy as np
from pydantic import BaseModel

THUMB_WIDTH = 64  # the blend test and the low-threshold scores work on copies this wide


class Transition(BaseModel):
    kind: Literal["fade", "dissolve"]
    via: Literal["black", "white"] | None = None  # what a fade goes through (None for a dissolve)
    start: float  # seconds: the first frame that is no longer clean picture
    end: float  # seconds: the first clean frame after it (exclusive end)

    @property
    def duration(self) -> float:
        return self.end - self.start


def _hsv_score(a_hsv: np.ndarray, b_hsv: np.ndarray) -> float:
    """ContentDetector's frame score with its default weights: mean |Δ| of hue, saturation and value."""
    return float(np.abs(a_hsv.astype(np.int32) - b_hsv.astype(np.int32)).mean())


def blend_fit(a: np.ndarray, b: np.ndarray, frames: list[np.ndarray]) -> tuple[list[float], float]:
    """Least-squares α of each frame as (1-α)·a + α·b and the worst residual relative to |b - a|."""
    d = (b - a).reshape(-1)
    norm = float(d @ d)
    if norm <= 0:
        return [], float("inf")
    alphas, worst = [], 0.0
    for f in frames:
        x = (f - a).reshape(-1)
        alpha = float(x @ d) / norm
        worst = max(worst, float(np.linalg.norm(x - alpha * d)) / norm ** 0.5)
        alphas.append(alpha)
    return alphas, worst


def is_blend(alphas: list[float], residual: float, max_residual: float) -> bool:
    """Every in-between frame lies on the segment a→b, in order, and the blend advances in steps (a dissolve or
    a fade): a hard cut after a few frames of motion (α ≈ 0, 0, then one jump to 1) is not one."""
    if residual > max_residual or not alphas:
        return False
    inside = all(-0.1 <= x <= 1.1 for x in alphas)
    rising = all(b >= a - 0.08 for a, b in zip(alphas, alphas[1:], strict=False))
    steps = np.diff([0.0, *alphas, 1.0])
    return inside and rising and float(steps.max()) <= min(0.6, max(0.25, 3 / len(steps)))


class TransitionProbe:
    """Feed it every frame the cut detector sees (`process_frame`), then read `transitions()`.

    It has the interface the SceneManager calls on a `SceneDetector` (process_frame, post_process,
    event_buffer_length, stats_manager) and returns no cuts, so the manager's cut list is the cut detector's.
    """

    def __init__(self, fade_threshold: float = 12.0, low_score: float = 1.5, min_change: float = 12.0,
                 max_seconds: float = 4.0, min_frames: int = 3, max_residual: float = 0.3, min_hold: float = 0.25):
        from scenedetect import ThresholdDetector

        self.stats_manager = None  # set by SceneManager.add_detector (this probe keeps no statistics)
        self._black = ThresholdDetector(threshold=fade_threshold, min_scene_len=0,
                                        method=ThresholdDetector.Method.FLOOR)
        self._white = ThresholdDetector(threshold=255 - fade_threshold, min_scene_len=0,
                                        method=ThresholdDetector.Method.CEILING)
        self.fade_threshold = fade_threshold
        self.low_score, self.min_change, self.max_seconds = low_score, min_change, max_seconds
        self.min_frames, self.max_residual, self.min_hold = min_frames, max_residual, min_hold
        self.times: list[float] = []
        self.timecodes: list = []  # PySceneDetect's FrameTimecodes of the frames seen
        self.end_time = 0.0  # presentation end of the last frame seen
        self.fade_splits: list[float] = []  # ThresholdDetector's own split points (fade middles), seconds
        self._holds: list[list] = []  # [via, start, end | None]
        self._runs: list[Transition] = []
        self._buf: deque = deque()
        self._prev_hsv: np.ndarray | None = None
        self._run_start: int | None = None

    # SceneDetector interface --------------------------------------------------------------
    def get_metrics(self) -> list[str]:
        return []

    @property
    def event_buffer_length(self) -> int:
        return 0

    def process_frame(self, timecode, frame_img: np.ndarray) -> list:
        import cv2

        i = len(self.times)
        t = float(timecode.seconds)
        self.times.append(t)
        self.timecodes.append(timecode)
        self._track_holds(timecode, frame_img, t)
        h, w = frame_img.shape[:2]
        small = cv2.resize(frame_img, (THUMB_WIDTH, max(2, round(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        score = 0.0 if self._prev_hsv is None else _hsv_score(hsv, self._prev_hsv)
        self._prev_hsv = hsv
        fps = float(timecode.frame_rate or 24)
        self._buf.append((i, small.astype(np.float32)))
        while len(self._buf) > int(self.max_seconds * fps) + 3:
            self._buf.popleft()
        if score >= self.low_score:
            if self._run_start is None:
                self._run_start = i
            elif i - self._run_start > self.max_seconds * fps:  # too long for a transition: a moving shot
                self._run_start = None
        elif self._run_start is not None:
            self._close_run(self._run_start, i - 1)
            self._run_start = None
        return []

    def post_process(self, timecode) -> list:
        if self._run_start is not None:
            self._close_run(self._run_start, len(self.times) - 1)
            self._run_start = None
        end = self.times[-1] + 1.0 / float(timecode.frame_rate or 24) if self.times else 0.0
        self.end_time = end
        for hold in self._holds:
            if hold[2] is None:
                hold[2] = end
        return []

    # internals ----------------------------------------------------------------------------
    def _track_holds(self, timecode, frame_img: np.ndarray, t: float) -> None:
        """PySceneDetect's ThresholdDetector decides when the picture is black (white): its fade-out and
        fade-in crossings bound each hold."""
        for via, det in (("black", self._black), ("white", self._white)):
            before = det.last_fade["type"]
            self.fade_splits += [float(c.seconds) for c in det.process_frame(timecode, frame_img)]
            after = det.last_fade["type"]
            if after == "out" and before != "out":
                self._holds.append([via, t, None])
            elif after == "in" and before == "out":
                open_hold = next((h for h in reversed(self._holds) if h[0] == via and h[2] is None), None)
                if open_hold is not None:
                    open_hold[2] = t

    def _close_run(self, r0: int, r1: int) -> None:
        """Frames r0..r1 scored above the low threshold: A = frame r0-1, B = frame r1, r0..r1-1 in between."""
        frames = {i: f for i, f in self._buf}
        if r1 - r0 + 1 < self.min_frames or (r0 - 1) not in frames or r1 not in frames:
            return
        if not self._blend_run(frames, r0, r1):
            # A fade out to black/white straight into a fade in (no hold): split at the extreme frame.
            levels = {k: float(frames[k].mean()) for k in range(r0, r1)}
            k = min(levels, key=lambda j: min(levels[j], 255 - levels[j]))
            if min(levels[k], 255 - levels[k]) < self.fade_threshold:
                for a0, a1 in ((r0, k), (k + 1, r1)):
                    if a1 - a0 + 1 >= 2 and self._blend_run(frames, a0, a1):
                        self._add_run(frames, a0, a1)
            return
        self._add_run(frames, r0, r1)

    def _blend_run(self, frames: dict, r0: int, r1: int) -> bool:
        a, b = frames[r0 - 1], frames[r1]
        if float(np.abs(b - a).mean()) < self.min_change:
            return False
        alphas, residual = blend_fit(a, b, [frames[k] for k in range(r0, r1)])
        return is_blend(alphas, residual, self.max_residual)

    def _add_run(self, frames: dict, r0: int, r1: int) -> None:
        a, b = frames[r0 - 1], frames[r1]
        via = None
        for level in (float(a.mean()), float(b.mean())):
            if level < self.fade_threshold:
                via = "black"
            elif level >= 255 - self.fade_threshold:
                via = "white"
        self._runs.append(Transition(kind="fade" if via else "dissolve", via=via, start=self.times[r0],
                                     end=self.times[r1]))

    def transitions(self) -> list[Transition]:
        """Runs and holds, overlapping or touching ones merged (fade-out + hold + fade-in = one fade)."""
        gap = self._frame_gap()
        holds = [Transition(kind="fade", via=v, start=s, end=e) for v, s, e in self._holds if e is not None]
        # A hold on its own (a cut to black and back) must last `min_hold` s; shorter is a flash, not a fade.
        holds = [h for h in holds if h.duration >= self.min_hold
                 or any(r.start - gap <= h.end and h.start <= r.end + gap for r in self._runs)]
        return merge_transitions(self._runs + holds, gap)

    def _frame_gap(self) -> float:
        if len(self.times) < 2:
            return 0.05
        return 1.5 * float(np.median(np.diff(self.times)))


def merge_transitions(items: list[Transition], gap: float) -> list[Transition]:
    """Sorted union: transitions that overlap or lie within `gap` seconds of each other become one (a fade if
    any part of it goes through black/white)."""
    out: list[Transition] = []
    for tr in sorted(items, key=lambda x: (x.start, x.end)):
        if out and tr.start <= out[-1].end + gap:
            last = out[-1]
            via = last.via or tr.via
            out[-1] = Transition(kind="fade" if via else "dissolve", via=via, start=last.start,
                                 end=max(last.end, tr.end))
        else:
            out.append(tr)
    return out
