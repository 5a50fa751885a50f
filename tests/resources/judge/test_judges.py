"""Quality judges on real, synthetic media: the metric judge's checks separate good from broken shots and say
why; the VLM judge sends keyframes to an OpenAI-compatible VLM (stand-in server: vLLM cannot run here)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from support.llm_standin import StandIn, completion

from studio.agents.judge import score_plan
from studio.configs.schema import ModelEntry
from studio.configs.vocabulary import Plan
from studio.resources.judge.metric import MetricJudge, ShotMedia
from studio.resources.judge.vlm import VLMJudge
from studio.resources.llm.client import OpenAICompatibleClient


def _plan() -> Plan:
    return Plan.model_validate({"title": "Sea", "characters": ["luca"], "shots": [
        {"id": 1, "characters": ["luca"], "action": "Luca runs to the water", "location": "beach", "duration": 4,
         "dialogue": {"character": "luca", "line": "The sea is so big and so blue today"}},
        {"id": 2, "characters": ["luca"], "action": "Luca dives into a wave", "location": "beach", "duration": 3},
    ]})


def _image(path, kind: str):
    rng = np.random.default_rng(0)
    if kind == "blank":
        arr = np.full((96, 96, 3), 128, np.uint8)
    else:  # a sunny scene: sky, sea, sand, with texture
        arr = np.zeros((96, 96, 3), np.uint8)
        arr[:32] = (120, 180, 240)
        arr[32:64] = (30, 110, 200)
        arr[64:] = (230, 200, 140)
        arr = np.clip(arr + rng.integers(-25, 25, arr.shape), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return str(path)


def _speech(path, seconds: float, amplitude: float, sr: int = 16000):
    t = np.arange(int(sr * seconds)) / sr
    envelope = (np.sin(2 * np.pi * 3 * t) > -0.3).astype(np.float32)  # syllable-like bursts with pauses
    x = amplitude * np.sin(2 * np.pi * 180 * t) * envelope
    sf.write(path, np.clip(x, -1, 1).astype(np.float32), sr)
    return str(path)


def test_metric_judge_scores_good_media_high(tmp_path):
    good = _image(tmp_path / "k1.png", "scene")
    media = [ShotMedia(shot_id=1, keyframe=good, audio=_speech(tmp_path / "a.wav", 3.0, 0.3), references=[good]),
             ShotMedia(shot_id=2, keyframe=_image(tmp_path / "k2.png", "scene"))]
    s1, s2 = MetricJudge().score_shots(_plan(), media)
    assert s1.score > 0.85 and s1.reasons == [] and s1.metrics["reference_consistency"] == 1.0
    assert s2.score > 0.85 and s2.metrics["continuity"] > 0.9  # same beach as shot 1
    assert s1.judge == "metric-judge"


def test_metric_judge_names_each_failure(tmp_path):
    media = [ShotMedia(shot_id=1, keyframe=_image(tmp_path / "k.png", "blank"),
                       audio=_speech(tmp_path / "loud.wav", 6.0, 3.0))]  # clipped and longer than the 4 s shot
    s1, s2 = MetricJudge().score_shots(_plan(), media)
    text = " ".join(s1.reasons)
    assert "nearly blank" in text and "clip" in text and "takes 6.0 s but the shot lasts 4.0 s" in text
    assert s1.score < 0.5 and s1.metrics["duration_fit"] == 0.0
    assert s2.score == 0.0 and s2.reasons == ["no keyframe was rendered"]
    quiet_clip = ShotMedia(shot_id=1, audio=_speech(tmp_path / "q.wav", 2, 0.001))
    quiet = MetricJudge().score_shot(_plan().shots[0], quiet_clip)
    assert any("too quiet" in r for r in quiet.reasons)
    silent = MetricJudge().score_shot(_plan().shots[0], ShotMedia(shot_id=1))
    assert "the shot has a line but no voice clip" in silent.reasons


def test_metric_plan_judge_checks_the_request():
    plan = _plan()
    good = score_plan(plan, "Luca at the beach in 2 shots")
    assert good.score == 1.0 and good.reasons == []
    bad = score_plan(plan, "Alberto and Luca in Portorosso in 4 shots")
    assert bad.metrics["cast"] == 0.5 and bad.metrics["subjects"] == 0.0 and bad.metrics["shot_count"] == 0.5
    assert any("alberto" in r for r in bad.reasons)


@pytest.mark.contract
def test_vlm_judge_sends_keyframes_and_forces_its_review_tool(tmp_path):
    def reply(path, body):
        args = {"matches_description": 2, "characters_on_model": 3, "image_quality": 1, "problem": "Luca is missing"}
        return 200, completion({"tool_calls": [{"id": "r", "function": {"name": "submit_review",
                                                                         "arguments": json.dumps(args)}}]})

    s = StandIn(reply)
    try:
        entry = ModelEntry(modality="judge", backend="vlm", source="Qwen/Qwen2.5-VL-7B-Instruct-AWQ", heavy=True)
        judge = VLMJudge("qwen2.5-vl-7b", entry, client=OpenAICompatibleClient(s.url, "qwen2.5-vl-7b"))
        assert judge.heavy and judge.model_id == "Qwen/Qwen2.5-VL-7B-Instruct-AWQ@default"
        key = _image(tmp_path / "k.png", "scene")
        scores = judge.score_shots(_plan(), [ShotMedia(shot_id=1, keyframe=key,
                                                       audio=_speech(tmp_path / "a.wav", 3.0, 0.3))])
    finally:
        s.close()
    assert len(s.requests) == 1  # shot 2 has no keyframe: nothing to ask the VLM
    body = s.requests[0][1]
    parts = body["messages"][0]["content"]
    assert parts[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(open(key, "rb").read()).decode()
    assert "Luca runs to the water" in parts[0]["text"]
    assert body["tool_choice"]["function"]["name"] == "submit_review"
    s1, s2 = scores
    assert s1.metrics["vlm_image"] == pytest.approx(0.25) and "Luca is missing" in s1.reasons
    assert "voice_level" in s1.metrics and "keyframe_present" not in s1.metrics
    assert s2.metrics["vlm_image"] == 0.0 and s1.judge == "qwen2.5-vl-7b"
