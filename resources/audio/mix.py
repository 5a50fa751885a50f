"""Mixing a short's soundtrack: where the dialogue is (the ducking key), the ducking envelope, and the one
loudness normaliser."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np


def duck_envelope(n: int, SR: int, intervals: Sequence[tuple[float, float]], duck_db: float, attack_s: float,
                  release_s: float) -> np.ndarray:
    """Gain per sample: 1 outside `intervals`, 10^(duck_db/20) inside, linear ramps before and after."""
    env = np.ones(n, np.float32)
    low = np.float32(10 ** (duck_db / 20))
    ra, rr = max(1, int(attack_s * SR)), max(1, int(release_s * SR))
    for a, b in intervals:
        i0, i1 = min(n, max(0, int(a * SR))), min(n, max(0, int(b * SR)))
        env[i0:i1] = np.minimum(env[i0:i1], low)
        s = max(0, i0 - ra)  # ramp down before the line starts
        env[s:i0] = np.minimum(env[s:i0], np.linspace(1, low, ra + 1, dtype=np.float32)[1:][ra - (i0 - s):])
        e = min(n, i1 + rr)  # and back up after it ends
        env[i1:e] = np.minimum(env[i1:e], np.linspace(low, 1, rr + 1, dtype=np.float32)[:-1][: e - i1])
    return env


def integrated_loudness(y: np.ndarray, sr: int) -> float:
    """ITU-R BS.1770 integrated loudness (LUFS) of mono (n,) or multichannel (n, ch) audio. Clips shorter
    than one 400 ms gating block fall back to RMS."""
    if y.size == 0:
        return -math.inf
    if len(y) < int(0.4 * sr) + 1:
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
        return 20 * math.log10(rms + 1e-10) - 0.691  # ≈ K-weighted level for speech-band content
    import pyloudnorm

    return float(pyloudnorm.Meter(sr).integrated_loudness(y.astype(np.float64)))


def loudness_normalize(y: np.ndarray, sr: int, target_lufs: float, peak_ceiling_db: float = -1.0,
                       over_ceiling: Literal["limit", "cap"] = "limit") -> tuple[np.ndarray, float | None]:
    """The one loudness normaliser: a static gain to `target_lufs`. When that pushes the peak over the
    ceiling, `limit` rounds the loud peaks with a soft limiter (voice lines keep their level) and `cap`
    lowers the gain instead (a finished mix stays untouched in shape). Returns the audio and its loudness
    after the gain (None when silence cannot be measured, and then the audio is returned as it was)."""
    current = integrated_loudness(y, sr)
    if not math.isfinite(current):
        return y, None
    gain_db = target_lufs - current
    ceiling = 10 ** (peak_ceiling_db / 20.0)
    if over_ceiling == "cap":
        peak = float(np.max(np.abs(y))) or 1e-9
        gain_db = min(gain_db, peak_ceiling_db - 20 * math.log10(peak))
        return (y * 10 ** (gain_db / 20)).astype(np.float32), current + gain_db
    out = y * (10 ** (gain_db / 20.0))
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > ceiling:
        # tanh knee above 70 % of the ceiling: loud consonant peaks are rounded, the body keeps its level
        knee = 0.7 * ceiling
        mag = np.abs(out)
        over = mag > knee
        mag[over] = knee + (ceiling - knee) * np.tanh((mag[over] - knee) / (ceiling - knee))
        out = np.sign(out) * mag
    return out.astype(np.float32), target_lufs
