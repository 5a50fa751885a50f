"""Voice-clip quality: the one set of measurements (length, speech span, peak, clipping, silence, loudness)
and the checks on them, used by the voice stage to accept or retry a line (`check_quality`) and by the shot
judge to score a shot's clip (`clip_scores`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from studio.resources.audio import mix
from studio.resources.audio.post import rms_db, voiced_regions


@dataclass
class AudioStats:
    duration_s: float
    speech_s: float
    peak: float
    clipped_fraction: float
    silence_ratio: float
    loudness_lufs: float

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v) for k, v in asdict(self).items()}


def measure(y: np.ndarray, sr: int, clip_threshold: float = 0.999, silence_db: float = -40.0) -> AudioStats:
    db = rms_db(y, sr)
    silent = float(np.mean(db < db.max() + silence_db)) if db.size else 1.0
    regions = voiced_regions(y, sr, silence_db)
    return AudioStats(
        duration_s=len(y) / sr,
        speech_s=(regions[-1][1] - regions[0][0]) if regions else 0.0,
        peak=float(np.max(np.abs(y))) if y.size else 0.0,
        clipped_fraction=float(np.mean(np.abs(y) >= clip_threshold)) if y.size else 0.0,
        silence_ratio=silent,
        loudness_lufs=mix.integrated_loudness(y, sr),
    )


@dataclass
class QualityReport:
    passed: bool
    issues: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


def check_quality(stats: AudioStats, text: str, target_lufs: float, q) -> QualityReport:
    """Per-line checks (q: voice_config.QualityConfig): duration fits the text, no clipping, not mostly
    silence, loudness on target."""
    issues = []
    chars = len("".join(text.split()))
    if stats.speech_s <= 0:
        issues.append("no speech detected")
    else:
        cps = chars / stats.speech_s
        if cps < q.min_chars_per_s:
            issues.append(f"too slow for the text: {cps:.1f} chars/s < {q.min_chars_per_s}")
        if cps > q.max_chars_per_s:
            issues.append(f"too fast or truncated: {cps:.1f} chars/s > {q.max_chars_per_s}")
    if stats.clipped_fraction > q.max_clipped_fraction:
        issues.append(f"clipping: {stats.clipped_fraction:.2%} of samples at full scale")
    if stats.silence_ratio > q.max_silence_ratio:
        issues.append(f"mostly silence: {stats.silence_ratio:.0%} > {q.max_silence_ratio:.0%}")
    if not math.isfinite(stats.loudness_lufs) or abs(stats.loudness_lufs - target_lufs) > q.loudness_tolerance_db:
        issues.append(f"loudness {stats.loudness_lufs:.1f} LUFS is off target {target_lufs:.1f} "
                      f"± {q.loudness_tolerance_db}")
    return QualityReport(passed=not issues, issues=issues, stats=stats.as_dict())


def clip_scores(path: str, line: str, shot_seconds: float, silence_db: float = -40.0
                ) -> tuple[dict[str, float], list[str], float]:
    """Scores in [0, 1] for a shot's voice clip — level, clipping, silence, speech rate, fit in the shot —
    from the same `measure` the voice stage checks, with the reasons for the low ones and the clip's length."""
    from studio.resources.media.audio_io import load_audio

    x, sr = load_audio(path)
    seconds = len(x) / sr if sr else 0.0
    if seconds <= 0.05:
        return {"voice_level": 0.0, "duration_fit": 0.0}, ["the voice clip is empty"], seconds
    stats = measure(x, sr, silence_db=silence_db)
    m: dict[str, float] = {}
    why: list[str] = []
    level_db = 20 * np.log10(np.sqrt(np.mean(x ** 2)) + 1e-9)
    m["voice_level"] = float(np.clip(1 - max(0.0, -30 - level_db) / 20, 0, 1)) if level_db < -6 else \
        float(np.clip(1 - (level_db + 6) / 6, 0, 1))
    if m["voice_level"] < 0.5:
        why.append(f"voice level {level_db:.0f} dBFS is {'too quiet' if level_db < -6 else 'too loud'}")
    m["voice_clipping"] = float(np.clip(1 - stats.clipped_fraction * 100, 0, 1))
    if m["voice_clipping"] < 0.5:
        why.append(f"{stats.clipped_fraction:.1%} of samples clip")
    voiced = 1.0 - stats.silence_ratio
    m["voice_silence"] = float(np.clip(voiced / 0.4, 0, 1))
    if m["voice_silence"] < 0.5:
        why.append(f"the clip is {stats.silence_ratio:.0%} silence")
    rate = len(line.split()) / max(voiced * seconds, 1e-3)
    m["speech_rate"] = float(np.clip(1 - abs(rate - min(max(rate, 1.0), 5.0)) / 3, 0, 1))
    if m["speech_rate"] < 0.5:
        why.append(f"speech rate {rate:.1f} words/s (expected 1–5)")
    excess = seconds - shot_seconds
    m["duration_fit"] = 1.0 if excess <= 0 else float(np.clip(1 - 2 * excess / shot_seconds, 0, 1))
    if m["duration_fit"] < 1.0:
        why.append(f"the line takes {seconds:.1f} s but the shot lasts {shot_seconds:.1f} s")
    return m, why, seconds
