"""Sound effects and a music bed synthesised in numpy: licence-clean, deterministic, no downloads.

Each generator returns float32 stereo samples, shape (n, 2), at `SR` (48 kHz, the studio's audio rate), peak
≈ -1 dBFS or lower. Same name + parameters + seed → the same samples, so rendered segments stay bit-exact.
`sfx_file()` writes a generator's output once into a content-addressed cache folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from studio.configs.errors import UnknownNameError

SR = 48000
GENERATOR_VERSION = 1  # bump when a generator's sound changes: it is part of cache keys and render recipes


def _t(duration: float) -> np.ndarray:
    return np.arange(int(round(duration * SR)), dtype=np.float64) / SR


def _env(n: int, attack: float, release: float) -> np.ndarray:
    """Linear attack, exponential-ish release envelope of n samples."""
    a = max(1, int(attack * SR))
    r = max(1, int(release * SR))
    env = np.ones(n)
    env[:a] = np.linspace(0.0, 1.0, min(a, n))[: min(a, n)]
    if r < n:
        env[n - r:] *= np.linspace(1.0, 0.0, r) ** 2
    return env


def _normalise(x: np.ndarray, peak_db: float = -1.0) -> np.ndarray:
    peak = float(np.max(np.abs(x))) or 1.0
    return (x / peak * 10 ** (peak_db / 20)).astype(np.float32)


def _stereo(mono: np.ndarray, pan: np.ndarray | float = 0.0) -> np.ndarray:
    """Equal-power pan; `pan` in [-1, 1] (left → right), scalar or per sample."""
    angle = (np.asarray(pan) + 1) * np.pi / 4
    return np.stack([mono * np.cos(angle), mono * np.sin(angle)], axis=1)


def whoosh(duration: float = 0.6, direction: str = "left-to-right", seed: int = 1) -> np.ndarray:
    """Band-passed noise whose centre frequency sweeps up then down, panned across the stereo field."""
    from scipy import signal  # imported here: scipy.signal costs seconds at import
    rng = np.random.default_rng(seed)
    t = _t(duration)
    n = t.size
    noise = rng.standard_normal(n)
    # Time-varying band-pass: filter in short blocks with a moving centre frequency.
    out = np.zeros(n)
    block = 512
    phase = t / duration
    centre = 300 + 2700 * np.sin(np.pi * phase) ** 2
    zi = None
    for i in range(0, n, block):
        fc = float(centre[min(i + block // 2, n - 1)])
        sos = signal.butter(2, [fc * 0.6, min(fc * 1.6, SR / 2 - 100)], btype="bandpass", fs=SR, output="sos")
        if zi is None:
            zi = np.zeros((sos.shape[0], 2))
        out[i:i + block], zi = signal.sosfilt(sos, noise[i:i + block], zi=zi)
    env = np.sin(np.pi * phase) ** 1.5
    pan = (phase * 2 - 1) * (1 if direction == "left-to-right" else -1)
    return _normalise(_stereo(out * env, pan), -3.0)


def boing(duration: float = 0.7, pitch_hz: float = 180.0, seed: int = 2) -> np.ndarray:
    """A cartoon spring: a pitch that wobbles and settles, with a quick decay."""
    t = _t(duration)
    wobble = 1 + 0.35 * np.sin(2 * np.pi * 11 * t) * np.exp(-5 * t)
    freq = pitch_hz * wobble * (1 + 0.25 * np.exp(-12 * t))
    phase = 2 * np.pi * np.cumsum(freq) / SR
    tone = np.sin(phase) + 0.35 * np.sin(2 * phase) + 0.15 * np.sin(3 * phase)
    env = np.exp(-4.0 * t) * _env(t.size, 0.004, 0.05)
    return _normalise(_stereo(tone * env), -3.0)


def record_scratch(duration: float = 0.45, seed: int = 3) -> np.ndarray:
    """A vinyl scratch: a buzzy sawtooth + noise whose playback speed jerks back and forth, then stops."""
    from scipy import signal  # imported here: scipy.signal costs seconds at import
    rng = np.random.default_rng(seed)
    t = _t(duration)
    # Playback speed: two fast back-and-forth strokes decelerating to a stop.
    speed = np.sin(2 * np.pi * 4.5 * t) * np.exp(-2.5 * t / duration)
    freq = 90 + 900 * np.abs(speed)
    phase = np.cumsum(freq) / SR
    saw = 2 * (phase - np.floor(phase + 0.5))
    noise = rng.standard_normal(t.size)
    sos = signal.butter(2, [800, 6000], btype="bandpass", fs=SR, output="sos")
    hiss = signal.sosfilt(sos, noise) * np.abs(speed)
    x = 0.7 * saw * np.abs(speed) + 0.6 * hiss
    return _normalise(_stereo(x * _env(t.size, 0.002, 0.04)), -2.0)


def _brass(freq: float, t: np.ndarray) -> np.ndarray:
    """A brassy tone: detuned sawtooths through a low-pass whose cutoff opens with the attack."""
    from scipy import signal  # imported here: scipy.signal costs seconds at import
    x = np.zeros_like(t)
    for detune in (-0.004, 0.0, 0.005):
        ph = freq * (1 + detune) * t
        x += 2 * (ph - np.floor(ph + 0.5))
    sos = signal.butter(2, min(freq * 8, 6000), btype="lowpass", fs=SR, output="sos")
    return signal.sosfilt(sos, x)


def dramatic_sting(duration: float = 2.2, seed: int = 4) -> np.ndarray:
    """"Dun dun DUNNN": two short low chords and a long one with tremolo, plus a timpani-like thump."""
    out = np.zeros(int(round(duration * SR)))
    hits = [(0.0, 0.22, [98.0, 146.8, 196.0]), (0.32, 0.22, [92.5, 138.6, 185.0]),
            (0.64, max(0.5, duration - 0.64), [87.3, 130.8, 174.6, 207.7])]
    for start, length, chord in hits:
        t = _t(length)
        tone = sum(_brass(f, t) for f in chord)
        env = _env(t.size, 0.01, min(0.3, length * 0.6))
        if length > 0.5:
            env *= 1 + 0.25 * np.sin(2 * np.pi * 6 * t) * np.clip(t / 0.5, 0, 1)
        thump = np.sin(2 * np.pi * 55 * t * (1 + np.exp(-20 * t))) * np.exp(-9 * t)
        i = int(start * SR)
        seg = (tone * env * 0.5 + thump * 1.2)[: out.size - i]
        out[i:i + seg.size] += seg
    return _normalise(_stereo(out), -2.0)


def music_bed(duration: float = 30.0, bpm: float = 96.0, mood: str = "playful", seed: int = 7) -> np.ndarray:
    """A loop-free, simple bed: pad chords, a bass line and soft percussion, in a key chosen by mood."""
    from scipy import signal  # imported here: scipy.signal costs seconds at import
    rng = np.random.default_rng(seed)
    moods = {  # root frequency, chord intervals (semitones) per bar
        "playful": (261.63, [[0, 4, 7], [5, 9, 12], [7, 11, 14], [0, 4, 7]]),
        "tense": (220.0, [[0, 3, 7], [1, 5, 8], [0, 3, 7], [-1, 3, 6]]),
        "warm": (196.0, [[0, 4, 7], [9, 12, 16], [5, 9, 12], [7, 11, 14]]),
    }
    if mood not in moods:
        raise UnknownNameError(f"unknown music mood '{mood}' (known: {', '.join(moods)})")
    root, progression = moods[mood]
    n = int(round(duration * SR))
    t = np.arange(n) / SR
    beat = 60.0 / bpm
    bar = 4 * beat
    out = np.zeros((n, 2))
    bar_idx = (t // bar).astype(int) % len(progression)
    for b in range(len(progression)):
        mask = bar_idx == b
        if not mask.any():
            continue
        tb = t[mask]
        pos = (tb % bar) / bar
        pad_env = np.minimum(1, pos * 8) * np.minimum(1, (1 - pos) * 8)
        pad = sum(np.sin(2 * np.pi * root * 2 ** (s / 12) * tb) for s in progression[b]) / 3
        bass_f = root / 2 * 2 ** (progression[b][0] / 12)
        beat_pos = (tb % beat) / beat
        bass = np.sin(2 * np.pi * bass_f * tb) * np.exp(-3 * beat_pos)
        out[mask, 0] += 0.35 * pad * pad_env + 0.45 * bass
        out[mask, 1] += 0.35 * pad * pad_env + 0.45 * bass
    # Percussion: a soft kick on beats 1 and 3, a noise hat on every off-beat.
    hat_sos = signal.butter(2, 7000, btype="highpass", fs=SR, output="sos")
    hat = signal.sosfilt(hat_sos, rng.standard_normal(int(0.05 * SR))) * np.exp(-np.arange(int(0.05 * SR)) / 600)
    kt = np.arange(int(0.25 * SR)) / SR
    kick = np.sin(2 * np.pi * 60 * kt * (1 + 2 * np.exp(-30 * kt))) * np.exp(-12 * kt)
    k = 0
    while k * beat < duration:
        i = int(k * beat * SR)
        if k % 2 == 0:
            seg = kick[: n - i]
            out[i:i + seg.size] += 0.5 * seg[:, None]
        j = int((k + 0.5) * beat * SR)
        if j < n:
            seg = hat[: n - j]
            out[j:j + seg.size, 0] += 0.12 * seg
            out[j:j + seg.size, 1] += 0.09 * seg
        k += 1
    fade = min(n, int(0.5 * SR))
    out[:fade] *= np.linspace(0, 1, fade)[:, None]
    out[n - fade:] *= np.linspace(1, 0, fade)[:, None]
    return _normalise(out, -6.0)


SFX: dict[str, Callable[..., np.ndarray]] = {
    "whoosh": whoosh,
    "boing": boing,
    "record_scratch": record_scratch,
    "dramatic_sting": dramatic_sting,
}


def generate(name: str, **params) -> np.ndarray:
    if name == "music_bed":
        return music_bed(**params)
    try:
        gen = SFX[name]
    except KeyError:
        raise UnknownNameError(f"unknown sound effect '{name}' (known: {', '.join(sorted(SFX))}, music_bed)"
                               ) from None
    return gen(**params)


def sfx_file(name: str, cache_dir: Path, **params) -> Path:
    """The generator's output as a 48 kHz stereo 16-bit WAV in a content-addressed cache (written once)."""
    from studio.resources.media.audio_io import write_wav

    blob = json.dumps({"name": name, "params": params, "v": GENERATOR_VERSION}, sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"{name}-{key}.wav"
    if not path.exists():
        write_wav(path, generate(name, **params))  # the one WAV writer is atomic
    return path
