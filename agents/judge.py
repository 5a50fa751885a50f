"""Quality judges: per-shot scores in [0, 1] with reasons, which `revise_failing_shots` acts on.

- `MetricJudge` ("metric", preview profile): measurable checks, named as what they are — keyframe not blank and
  well exposed, colour consistency with the characters' reference images and with the previous shot at the
  same place, voice level / clipping / silence / speech rate, and whether the line fits the shot's duration.
  `score_plan` checks the plan against the request (cast, place, shot count, length, variety).
- `VLMJudge` ("vlm", gpu profile): a vision-language model (Qwen2.5-VL on vLLM) rates each keyframe against its
  shot description through a forced tool call; audio and timing keep the metric checks.
- `judge_plan_with_llm`: the planning LLM rates the plan's coherence with the request (1–5), on any profile.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from studio.agents.plan import Plan, Shot
from studio.configs.schema import ModelEntry

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


def _combine(metrics: dict[str, float]) -> float:
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


# ---------------------------------------------------------------------- audio metrics
def audio_metrics(path: str, line: str, shot_seconds: float) -> tuple[dict[str, float], list[str], float]:
    import soundfile as sf

    data, sr = sf.read(path, dtype="float32", always_2d=True)
    x = data.mean(axis=1)
    seconds = len(x) / sr if sr else 0.0
    m: dict[str, float] = {}
    why: list[str] = []
    if seconds <= 0.05:
        return {"voice_level": 0.0, "duration_fit": 0.0}, ["the voice clip is empty"], seconds
    rms_db = 20 * np.log10(np.sqrt(np.mean(x ** 2)) + 1e-9)
    m["voice_level"] = float(np.clip(1 - max(0.0, -30 - rms_db) / 20, 0, 1)) if rms_db < -6 else \
        float(np.clip(1 - (rms_db + 6) / 6, 0, 1))
    if m["voice_level"] < 0.5:
        why.append(f"voice level {rms_db:.0f} dBFS is {'too quiet' if rms_db < -6 else 'too loud'}")
    clipped = float(np.mean(np.abs(x) >= 0.999))
    m["voice_clipping"] = float(np.clip(1 - clipped * 100, 0, 1))
    if m["voice_clipping"] < 0.5:
        why.append(f"{clipped:.1%} of samples clip")
    frame = max(1, int(sr * 0.02))
    frames = x[: len(x) // frame * frame].reshape(-1, frame)
    frame_db = 20 * np.log10(np.sqrt((frames ** 2).mean(axis=1)) + 1e-9)
    voiced = float(np.mean(frame_db > -45)) if len(frames) else 0.0
    m["voice_silence"] = float(np.clip(voiced / 0.4, 0, 1))
    if m["voice_silence"] < 0.5:
        why.append(f"the clip is {1 - voiced:.0%} silence")
    words = len(line.split())
    rate = words / max(voiced * seconds, 1e-3)
    nearest = min(max(rate, 1.0), 5.0)
    m["speech_rate"] = float(np.clip(1 - abs(rate - nearest) / 3, 0, 1))
    if m["speech_rate"] < 0.5:
        why.append(f"speech rate {rate:.1f} words/s (expected 1–5)")
    excess = seconds - shot_seconds
    m["duration_fit"] = 1.0 if excess <= 0 else float(np.clip(1 - 2 * excess / shot_seconds, 0, 1))
    if m["duration_fit"] < 1.0:
        why.append(f"the line takes {seconds:.1f} s but the shot lasts {shot_seconds:.1f} s")
    return m, why, seconds


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
                am, awhy, _ = audio_metrics(media.audio, shot.dialogue.line, shot.duration)
                m.update(am)
                why += awhy
            else:
                m["duration_fit"] = 0.0
                why.append("the shot has a line but no voice clip")
        return ShotScore(shot_id=shot.id, score=_combine(m), metrics={k: round(v, 4) for k, v in m.items()},
                         reasons=why, judge=self.name)

    def score_shots(self, plan: Plan, media: list[ShotMedia]) -> list[ShotScore]:
        by_id = {m.shot_id: m for m in media}
        out, prev = [], None
        for s in plan.shots:
            md = by_id.get(s.id, ShotMedia(shot_id=s.id))
            out.append(self.score_shot(s, md, prev))
            prev = (s, md.keyframe or "")
        return out

    def score_plan(self, plan: Plan, request: str, registry: Any = None) -> PlanScore:
        from studio.agents.intent import extract_intent
        from studio.agents.schema import PlanRegistry

        intent = extract_intent(request, registry or PlanRegistry.from_configs())
        m: dict[str, float] = {}
        why: list[str] = []
        on_screen = {c for s in plan.shots for c in s.characters}
        if intent.characters:
            m["cast"] = len(set(intent.characters) & on_screen) / len(intent.characters)
            if m["cast"] < 1:
                why.append(f"requested characters missing: {sorted(set(intent.characters) - on_screen)}")
        if intent.location:
            words = {w for w in re.findall(r"[a-z]+", intent.location.lower()) if w != "the"}
            text = " ".join(f"{s.location} {s.action}" for s in plan.shots).lower()
            m["place"] = len([w for w in words if w in text]) / max(1, len(words))
            if m["place"] < 1:
                why.append(f"the plan does not show '{intent.location}'")
        m["shot_count"] = max(0.0, 1 - abs(len(plan.shots) - intent.shots) / intent.shots)
        if intent.target_seconds:
            off = abs(plan.total_duration - intent.target_seconds) / intent.target_seconds
            m["length"] = float(np.clip(1 - off, 0, 1))
            if m["length"] < 0.7:
                why.append(f"{plan.total_duration:.0f} s long, {intent.target_seconds:.0f} s requested")
        actions = [s.action.lower().strip() for s in plan.shots]
        m["variety"] = len(set(actions)) / len(actions)
        if m["variety"] < 0.75:
            why.append("shots repeat the same action")
        return PlanScore(score=_combine(m), metrics={k: round(v, 4) for k, v in m.items()}, reasons=why,
                         judge=self.name)


REVIEW_TOOL = {
    "type": "function",
    "function": {
        "name": "submit_review",
        "description": "Rate the keyframe of one shot.",
        "parameters": {
            "type": "object",
            "properties": {
                "matches_description": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
                "characters_on_model": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
                "image_quality": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
                "problem": {"type": "string", "maxLength": 120},
            },
            "required": ["matches_description", "characters_on_model", "image_quality", "problem"],
            "additionalProperties": False,
        },
    },
}


def _data_uri(path: str) -> str:
    suffix = Path(path).suffix.lower().lstrip(".") or "png"
    mime = "jpeg" if suffix in ("jpg", "jpeg") else suffix
    return f"data:image/{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode()}"


class VLMJudge:
    """A VLM served by vLLM rates keyframes (image part of the score); audio/timing use the metric checks."""

    def __init__(self, name: str, entry: ModelEntry, client: Any = None):
        from studio.resources.llm_servers import VLLMEndpoint

        self.name = name
        self.entry = entry
        self.endpoint = VLLMEndpoint(name, entry)
        self.heavy = self.endpoint.heavy
        self.model_id = self.endpoint.model_id
        self._client = client  # an OpenAICompatibleClient (tests, or a remote judge)
        self._metric = MetricJudge(f"{name}+metric")

    def _review(self, client: Any, shot: Shot, keyframe: str) -> tuple[float, list[str]]:
        cast = ", ".join(shot.characters) or "no characters"
        text = (f"Shot {shot.id}: {shot.action} Characters: {cast}. Camera: {shot.camera}. Place: "
                f"{shot.location or 'unspecified'}. Rate how well the image shows this shot.")
        messages = [{"role": "user", "content": [{"type": "text", "text": text},
                                                 {"type": "image_url", "image_url": {"url": _data_uri(keyframe)}}]}]
        args, _ = client.call_tool(messages, REVIEW_TOOL, temperature=0.0, max_tokens=200)
        ratings = [int(args.get(k, 1)) for k in ("matches_description", "characters_on_model", "image_quality")]
        score = float(np.clip((np.mean(ratings) - 1) / 4, 0, 1))
        problem = " ".join(str(args.get("problem", "")).split())
        return score, ([problem] if problem and score < 0.75 else [])

    def score_shots(self, plan: Plan, media: list[ShotMedia]) -> list[ShotScore]:
        import contextlib

        from studio.resources.llm_servers import llm_session

        base = {s.shot_id: s for s in self._metric.score_shots(plan, media)}
        by_id = {m.shot_id: m for m in media}
        out = []
        with contextlib.ExitStack() as stack:
            client = self._client or stack.enter_context(llm_session(self.endpoint))
            for shot in plan.shots:
                sc = base[shot.id]
                md = by_id.get(shot.id)
                metrics = {k: v for k, v in sc.metrics.items()
                           if k not in ("keyframe_present", "exposure", "reference_consistency", "continuity")}
                reasons = [r for r in sc.reasons if "keyframe" not in r and "colour" not in r]
                if md and md.keyframe and Path(md.keyframe).is_file():
                    metrics["vlm_image"], why = self._review(client, shot, md.keyframe)
                    reasons += why
                else:
                    metrics["vlm_image"] = 0.0
                    reasons.append("no keyframe was rendered")
                out.append(ShotScore(shot_id=shot.id, score=_combine(metrics), metrics=metrics, reasons=reasons,
                                     judge=self.name))
        return out

    def score_plan(self, plan: Plan, request: str, registry: Any = None) -> PlanScore:
        return self._metric.score_plan(plan, request, registry)


PLAN_REVIEW_TOOL = {
    "type": "function",
    "function": {
        "name": "submit_plan_review",
        "description": "Rate how well the plan tells the requested short.",
        "parameters": {
            "type": "object",
            "properties": {"coherence": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
                           "problem": {"type": "string", "maxLength": 120}},
            "required": ["coherence", "problem"],
            "additionalProperties": False,
        },
    },
}


def judge_plan_with_llm(plan: Plan, request: str, client: Any) -> PlanScore:
    """LLM text judge: coherence of the plan with the request, 1–5 mapped to [0, 1]."""
    story = "\n".join(f"{s.id}. [{', '.join(s.characters)}] {s.action}"
                      + (f' — {s.dialogue.character}: "{s.dialogue.line}"' if s.dialogue else "") for s in plan.shots)
    messages = [{"role": "system", "content": "You review plans of animated shorts. Be strict."},
                {"role": "user", "content": f"Request: {request}\nPlan '{plan.title}':\n{story}\n\nRate its "
                                            "coherence with the request from 1 (unrelated) to 5 (tells it well)."}]
    args, _ = client.call_tool(messages, PLAN_REVIEW_TOOL, temperature=0.0, max_tokens=120)
    c = int(args.get("coherence", 1))
    problem = " ".join(str(args.get("problem", "")).split())
    return PlanScore(score=(min(5, max(1, c)) - 1) / 4, metrics={"coherence": float(c)},
                     reasons=[problem] if problem else [], judge=f"llm:{getattr(client, 'model', '?')}")
