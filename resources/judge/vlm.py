"""`VLMJudge` ("vlm", gpu profile): a vision-language model (Qwen2.5-VL on vLLM) rates each keyframe against
its shot description through a forced tool call; audio and timing keep the metric checks."""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from studio.configs.schema import ModelEntry
from studio.configs.vocabulary import Plan, Shot
from studio.resources.judge.metric import MetricJudge, ShotMedia, ShotScore, combine_metrics
from studio.resources.llm.servers import VLLMEndpoint, llm_session

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
                out.append(ShotScore(shot_id=shot.id, score=combine_metrics(metrics), metrics=metrics, reasons=reasons,
                                     judge=self.name))
        return out
