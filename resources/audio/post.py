"""Audio post-processing shared by every voice backend and the dataset builder.

Pure numpy/librosa/pyloudnorm functions on float32 mono arrays (decoding and the WAV writer are in
`studio.resources.media.audio_io`). Nothing here knows about characters or backends.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-10




















# --------------------------------------------------------------------------- edits


def resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out or y.size == 0:
        return y.astype(np.float32)
    import librosa

    return librosa.resample(y.astype(np.float32), orig_sr=sr_in, target_sr=sr_out, res_type="soxr_hq")


def trim_silence(y: np.ndarray, sr: int, top_db: float = 40.0) -> tuple[np.ndarray, int, int]:
    """Cut leading/trailing audio quieter than peak - top_db. Returns (trimmed, start, end) in samples."""
    import librosa

    if y.size == 0:
        return y, 0, 0
    frame = max(256, int(sr * 0.025))
    hop = frame // 4
    _, (start, end) = librosa.effects.trim(y, top_db=top_db, frame_length=frame, hop_length=hop)
    return y[start:end], int(start), int(end)






def pad(y: np.ndarray, sr: int, ms: float) -> np.ndarray:
    n = int(sr * ms / 1000)
    return np.concatenate([np.zeros(n, np.float32), y, np.zeros(n, np.float32)]) if n else y


def pitch_shift(y: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    if abs(semitones) < 1e-3 or y.size < 2048:
        return y
    import librosa

    return librosa.effects.pitch_shift(y, sr=sr, n_steps=float(semitones), res_type="soxr_hq").astype(np.float32)


def pitch_contour(y: np.ndarray, sr: int, end_semitones: float, start_at: float = 0.45) -> np.ndarray:
    """Bend the intonation: 0 semitones until `start_at` of the sentence, then a smooth ramp to
    `end_semitones` at its end (rising for questions/surprise, falling for statements/resolve).

    Varispeed (time-varying resampling) shifts pitch and local tempo together; a phase-vocoder stretch by the
    mean rate then restores the overall duration, so the net effect is a pitch bend with a slight local
    tempo drift that follows it, much like natural phrase-final intonation.
    """
    if abs(end_semitones) < 1e-3 or y.size < 4096:
        return y
    import librosa

    n = len(y)
    # the ramp follows the spoken part, not the silence around it
    db = rms_db(y, sr, hop_ms=10.0)
    loud = np.flatnonzero(db > db.max() - 35.0) if db.size else np.array([], int)
    a, b = (loud[0] * sr // 100, min(n, (loud[-1] + 1) * sr // 100)) if loud.size else (0, n)
    a, b = float(a), float(max(b, a + 1))

    def rate_at(pos_in: np.ndarray) -> np.ndarray:  # input samples consumed per output sample
        frac = (pos_in - a) / (b - a)
        ramp = np.clip((frac - start_at) / (1.0 - start_at), 0.0, 1.0)
        ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no kink where the bend starts
        return 2.0 ** (end_semitones * ramp / 12.0)

    m = int(n / min(1.0, 2.0 ** (min(0.0, end_semitones) / 12.0))) + 2
    pos = np.arange(m, dtype=np.float64)
    for _ in range(3):  # fixed point: the rate is a function of the input position being read
        rate = rate_at(pos)
        pos = np.concatenate([[0.0], np.cumsum(rate[:-1])])
    n_out = int(np.searchsorted(pos, n - 1))
    warped = np.interp(pos[:n_out], np.arange(n), y).astype(np.float32)
    if len(warped) < 2048:
        return y
    stretched = librosa.effects.time_stretch(warped, rate=len(warped) / n)
    return librosa.util.fix_length(stretched, size=n).astype(np.float32)


def time_stretch(y: np.ndarray, tempo: float) -> np.ndarray:
    if abs(tempo - 1.0) < 1e-3 or y.size < 2048:
        return y
    import librosa

    return librosa.effects.time_stretch(y, rate=float(tempo)).astype(np.float32)


# --------------------------------------------------------------------------- analysis


def rms_db(y: np.ndarray, sr: int, hop_ms: float = 10.0, frame_ms: float = 30.0) -> np.ndarray:
    """Frame RMS in dBFS, frames centred at i * hop."""
    import librosa

    hop = max(1, int(round(sr * hop_ms / 1000)))
    frame = max(hop, int(round(sr * frame_ms / 1000)))
    if y.size == 0:
        return np.zeros(0, np.float32)
    rms = librosa.feature.rms(y=y, frame_length=frame, hop_length=hop, center=True)[0]
    return (20 * np.log10(rms + _EPS)).astype(np.float32)


def envelope(y: np.ndarray, sr: int, hop_ms: float = 10.0) -> list[float]:
    """Amplitude envelope 0..1 (RMS relative to the loudest frame), one value per hop — for mouth flaps."""
    db = rms_db(y, sr, hop_ms=hop_ms, frame_ms=max(20.0, 2 * hop_ms))
    if db.size == 0:
        return []
    rel = np.clip((db - db.max() + 60.0) / 60.0, 0.0, 1.0)  # 60 dB range
    return [round(float(v), 3) for v in rel]


def voiced_regions(y: np.ndarray, sr: int, silence_db: float = -40.0, hop_ms: float = 10.0,
                   min_gap_ms: float = 120.0, min_len_ms: float = 60.0, *, relative: bool = True,
                   frame_ms: float = 30.0) -> list[tuple[float, float]]:
    """The studio's one activity detector: stretches (seconds) louder than `silence_db` — relative to the
    peak (words and phrases of a line, for timing) or, with `relative=False`, absolute dBFS (where dialogue
    is in a mix, the ducking key) — with short gaps bridged and blips dropped."""
    db = rms_db(y if y.ndim == 1 else y.mean(axis=1), sr, hop_ms=hop_ms, frame_ms=frame_ms)
    if db.size == 0:
        return []
    active = db > (db.max() + silence_db if relative else silence_db)
    return frames_to_regions(active, hop_ms / 1000, min_gap_ms / 1000, min_len_ms / 1000)


def frames_to_regions(active: np.ndarray, hop_s: float, min_gap_s: float, min_len_s: float
                      ) -> list[tuple[float, float]]:
    regions: list[list[float]] = []
    idx = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    for s, e in zip(idx[::2], idx[1::2], strict=True):
        start, end = s * hop_s, e * hop_s
        if regions and start - regions[-1][1] < min_gap_s:
            regions[-1][1] = end
        else:
            regions.append([start, end])
    return [(round(s, 3), round(e, 3)) for s, e in regions if e - s >= min_len_s]










