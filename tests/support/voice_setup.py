"""Helpers shared by the voice tests (no tests here): private config folders, measurements, tone makers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from studio.configs.settings import get_settings
from studio.resources.media import audio_io

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_settings():
    """Import into a test module: settings re-read around each test (config folders never leak)."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def deep_merge(base: dict, edits: dict) -> dict:
    out = dict(base)
    for k, v in edits.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def make_config_dir(tmp_path: Path, monkeypatch, tts: dict | None = None, voices: dict | None = None,
                    models: dict | None = None) -> Path:
    """A copy of configs/*.yaml with edits, made the active STUDIO_CONFIG_DIR for this test."""
    folder = tmp_path / "configs"
    folder.mkdir(exist_ok=True)
    for f in (REPO / "configs").glob("*.yaml"):
        shutil.copy(f, folder / f.name)
    for name, edits in (("tts_config.yaml", tts), ("character_voices.yaml", voices), ("models.yaml", models)):
        if edits:
            data = yaml.safe_load((folder / name).read_text())
            (folder / name).write_text(yaml.safe_dump(deep_merge(data, edits), sort_keys=False))
    monkeypatch.setenv("STUDIO_CONFIG_DIR", str(folder))
    get_settings.cache_clear()
    return folder




def f0_stats(*paths: Path) -> dict:
    """Median f0 (Hz, YIN on energetic frames) pooled over one or more renderings of the same line (piper's
    own pitch varies by ±1.5 semitones from one rendering to the next, so single takes are noisy)."""

    frames = []
    for path in paths:
        y, sr = audio_io.load_audio(path)
        f0 = f0_track(y, sr)
        frames.append(f0[~np.isnan(f0)])
    v = np.concatenate(frames)
    return {"median": float(np.median(v)), "voiced": len(v)}


def _ltas(path: Path) -> np.ndarray:
    """Long-term average log spectrum of the speech frames on a log-frequency grid (¼ semitone, 80–5000 Hz),
    z-normalised."""
    import librosa


    y, sr = audio_io.load_audio(path)
    s = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    energy = s.sum(axis=0)
    spec = np.log(s[:, energy > 0.05 * energy.max()].mean(axis=1) + 1e-9)
    grid = 80.0 * 2 ** (np.arange(int(48 * np.log2(5000 / 80))) / 48)
    v = np.interp(grid, np.linspace(0, sr / 2, len(spec)), spec)
    return (v - v.mean()) / v.std()


def spectral_shift(a: Path, b: Path, max_st: float = 16.0) -> float:
    """How many semitones b's spectrum sits above a's (best correlation of their log-frequency LTAS).

    A pitch shift moves the whole spectrum (harmonics and formants), so this measures the voices' pitch
    offset robustly — unlike f0 trackers on piper's creaky phrase endings — on the same text."""
    pa, pb = _ltas(a), _ltas(b)
    best, lag_best = -2.0, 0
    for lag in range(-int(max_st * 4), int(max_st * 4) + 1):
        x = pa[max(0, -lag): len(pa) - max(0, lag)]
        y = pb[max(0, lag): len(pb) - max(0, -lag)]
        c = float(np.corrcoef(x, y)[0, 1])
        if c > best:
            best, lag_best = c, lag
    return lag_best / 4


def semitones(a: float, b: float) -> float:
    return float(12 * np.log2(a / b))


# --------------------------------------------------------------------------- a synthetic film track
TRACK_LINES = [  # (offset s, srt speaker label or None, text, subtitled?)
    (2.0, "LUCA", "I have never seen the sea this close before, it is enormous.", True),
    (9.0, "LUCA", "Alberto says that humans are dangerous, but I am not so sure about that anymore.", True),
    (17.5, "LUCA", "Yes.", True),
    (21.0, "FRANK", "Well well well, look who finally decided to show up here today, little bunny.", True),
    (29.0, "LUCA", "Tomorrow we will ride the Vespa all the way down the hill to the harbour.", True),
    (35.5, "LUCA", "And then we will see the whole world, every single town and every single star.", True),
    (44.0, None, "This line has no subtitle at all, so nobody knows what was said here.", False),
    # one continuous ≈12 s stretch (0.15 s breaths between sentences): split at a breath, subtitles follow
    (50.0, "LUCA", "When I was little my grandmother told me never to go near the surface of the water."
                   "||But the surface is where everything interesting happens, and I wanted to see it all."
                   "||So one night I swam up.||And I saw the lights of the town for the very first time.", True),
]


def _srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def make_track(folder: Path, fmt: str = "m4a", sr: int = 32000, noise_dbfs: float = -62.0,
               lines=TRACK_LINES, repeat: int = 1) -> dict:
    """Piper speech placed at known offsets in low noise, encoded with ffmpeg, plus an SRT (labels NAME:).

    Returns {"audio", "srt", "regions": [(start, end, label, text, subtitled)], "duration"}; `repeat`
    tiles the whole script (for throughput benchmarks).
    """
    import subprocess

    from studio.resources.audio import mix, post
    from studio.resources.voice.base import SynthesisRequest
    from studio.resources.voice.line import plan_line
    from studio.resources.voice.select import _entry_for_backend, get_backend

    folder.mkdir(parents=True, exist_ok=True)
    piper = get_backend(*_entry_for_backend("piper"))  # the raw voice: no character pitch/tempo post-process
    spec = plan_line("luca", "x", "neutral", 0.0, backend="piper")
    flat = spec.prosody.model_copy(update={"tempo": 1.0})
    cache: dict[str, np.ndarray] = {}
    span = max(o for o, *_ in lines) + 20.0
    total = span * repeat
    rng = np.random.default_rng(0)
    track = (rng.standard_normal(int(total * sr)) * 10 ** (noise_dbfs / 20)).astype(np.float32)
    regions, cues = [], []
    for k in range(repeat):
        for offset, label, text, subtitled in lines:
            start = k * span + offset
            for piece in text.split("||"):
                if piece not in cache:
                    raw = piper.synthesize(SynthesisRequest(text=piece, language="en", voice=spec.voice,
                                                            voice_id="luca", emotion="neutral", prosody=flat))
                    y = mix.loudness_normalize(post.resample(raw, piper.sample_rate, sr), sr, -22.0)[0]  # dialogue
                    cache[piece], _, _ = post.trim_silence(y, sr, 40)
                y = cache[piece]
                a = int(start * sr)
                track[a:a + len(y)] += y
                end = start + len(y) / sr
                regions.append((start, end, label, piece, subtitled))
                if subtitled:
                    cues.append((start - 0.1, end + 0.2, label, piece))
                start = end + 0.15
    wav = folder / "track.wav"
    audio_io.write_wav(wav, track, sr)
    audio = folder / f"track.{fmt}"
    if fmt != "wav":
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-b:a", "128k", str(audio)], check=True)
        wav.unlink()
    srt = folder / "track.srt"
    srt.write_text("\n".join(f"{i}\n{_srt_time(s)} --> {_srt_time(e)}\n{lab}: {txt}\n"
                             for i, (s, e, lab, txt) in enumerate(cues, 1)), encoding="utf-8")
    return {"audio": audio, "srt": srt, "regions": regions, "duration": total}


def f0_track(y: np.ndarray, sr: int, fmin: float = 60.0, fmax: float = 600.0) -> np.ndarray:
    """Fundamental frequency per 10 ms frame (YIN) on voiced, energetic frames; NaN elsewhere."""
    import librosa

    hop = int(sr * 0.01)
    frame = max(2048, int(sr * 0.05))
    f0 = librosa.yin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame, hop_length=hop)
    from studio.resources.audio.post import rms_db

    db = rms_db(y, sr, hop_ms=10.0, frame_ms=frame / sr * 1000)[: len(f0)]
    f0 = f0[: len(db)].astype(np.float64)
    f0[db < db.max() - 30.0] = np.nan
    return f0
