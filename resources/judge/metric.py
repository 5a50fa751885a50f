"""Shot judges: per-shot scores in [0, 1] with reasons, which the flow's revision of failing shots acts on.

`MetricJudge` ("metric", preview profile) makes measurable checks, named as what they are: keyframe not blank and
well exposed, colour consistency with the characters' reference images and with the previous shot at the same
place, and the voice clip's level / clipping / silence / speech rate / fit in the shot (the one audio checker,
`studio.resources.audio.quality`, that the voice stage uses too). Plan scoring lives with the director
(`studio.agents.judge`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from studio.configs.schema import ModelEntry
from studio.configs.vocabulary import Plan, Shot
from studio.resources.audio.quality import clip_scores

WEIGHTS = {"keyframe_present": 2.0, "exposure": 1.0, "reference_consistency": 1.5, "continuity": 0.5,
           "voice_level": 1.0, "voice_clipping": 1.0, "voice_silence": 1.0, "speech_rate": 1.0,
           "duration_fit": 2.0, "vlm_image": 3.0}


class ShotMedia(BaseModel):
    """What was rendered for one shot (local paths; the flow resolves artifact refs first)."""

    shot_id: int
    keyframe: str | None = None
    audio: str | None = None
    references: list[str] = []  # reference images of the shot's characters


class ShotScore(BaseModel):
    shot_id: int
    score: float = Field(ge=0.0, le=1.0)
    metrics: dict[str, float] = {}
    reasons: list[str] = []
    judge: str


class PlanScore(BaseModel):
    score: float = Field(ge=0.0, le=1.0)
    metrics: dict[str, float] = {}
    reasons: list[str] = []
    judge: str


def combine_metrics(metrics: dict[str, float]) -> float:
    if not metrics:
        return 0.0
    total = sum(WEIGHTS.get(k, 1.0) for k in metrics)
    return round(float(sum(v * WEIGHTS.get(k, 1.0) for k, v in metrics.items()) / total), 4)


# ---------------------------------------------------------------------- image metrics
def _load_rgb(path: str, size: int = 256) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((size, size))
        return np.asarray(im, dtype=np.float32) / 255.0


def hue_sat_histogram(rgb: np.ndarray, bins: tuple[int, int] = (18, 8)) -> np.ndarray:
    """Normalised 2-D hue × saturation histogram (lighting-robust colour signature)."""
    mx, mn = rgb.max(axis=2), rgb.min(axis=2)
    delta = mx - mn
    sat = np.where(mx > 1e-6, delta / np.maximum(mx, 1e-6), 0.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.maximum(delta, 1e-6)
    hue = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6.0
    hue = np.where(delta > 1e-6, hue, 0.0)
    weight = (mx > 0.08).astype(np.float32)  # ignore near-black pixels
    hist, _, _ = np.histogram2d(hue.ravel(), sat.ravel(), bins=bins, range=[[0, 1], [0, 1]], weights=weight.ravel())
    s = hist.sum()
    return hist / s if s > 0 else hist


def histogram_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection in [0, 1]."""
    return float(np.minimum(hue_sat_histogram(a), hue_sat_histogram(b)).sum())




# ---------------------------------------------------------------------- judges
class MetricJudge:
    """Measured checks only; no model. Scores are in [0, 1]; `reasons` name each failed check."""

    heavy = False

    def __init__(self, name: str = "metric-judge", entry: ModelEntry | None = None):
        self.name = name
        self.entry = entry
        self.model_id = "metric-judge@1"

    def score_shot(self, shot: Shot, media: ShotMedia, previous: tuple[Shot, str] | None = None) -> ShotScore:
        m: dict[str, float] = {}
        why: list[str] = []
        if media.keyframe and Path(media.keyframe).is_file():
            rgb = _load_rgb(media.keyframe)
            contrast = float(rgb.mean(axis=2).std())
            m["keyframe_present"] = float(np.clip(contrast / 0.08, 0, 1))
            if m["keyframe_present"] < 0.5:
                why.append("the keyframe is nearly blank")
            mean = float(rgb.mean())
            m["exposure"] = float(np.clip(1 - max(0.0, abs(mean - 0.5) - 0.3) / 0.2, 0, 1))
            if m["exposure"] < 0.5:
                why.append("the keyframe is " + ("too dark" if mean < 0.5 else "washed out"))
            refs = [r for r in media.references if Path(r).is_file()]
            if refs:
                m["reference_consistency"] = float(np.clip(max(histogram_similarity(rgb, _load_rgb(r))
                                                               for r in refs) / 0.6, 0, 1))
                if m["reference_consistency"] < 0.5:
                    why.append("colours do not match the characters' reference images")
            if previous and previous[1] and previous[0].location == shot.location and Path(previous[1]).is_file():
                m["continuity"] = float(np.clip(histogram_similarity(rgb, _load_rgb(previous[1])) / 0.5, 0, 1))
                if m["continuity"] < 0.5:
                    why.append("looks unlike the previous shot at the same place")
        else:
            m["keyframe_present"] = 0.0
            why.append("no keyframe was rendered")
        if shot.dialogue:
            if media.audio and Path(media.audio).is_file():
                am, awhy, _ = clip_scores(media.audio, shot.dialogue.line, shot.duration)
                m.update(am)
                why += awhy
            else:
                m["duration_fit"] = 0.0
                why.append("the shot has a line but no voice clip")
        return ShotScore(shot_id=shot.id, score=combine_metrics(m), metrics={k: round(v, 4) for k, v in m.items()},
                         reasons=why, judge=self.name)

    def score_shots(self, plan: Plan, media: list[ShotMedia]) -> list[ShotScore]:
        by_id = {m.shot_id: m for m in media}
        out, prev = [], None
        for s in plan.shots:
            md = by_id.get(s.id, ShotMedia(shot_id=s.id))
            out.append(self.score_shot(s, md, prev))
            prev = (s, md.keyframe or "")
        return out
