"""Audio in and out, once for the whole studio: decode any file (WAV/FLAC/OGG through soundfile, anything else
ffmpeg reads — mp3, aac, film audio tracks — through ffmpeg) to float32 samples, and the one WAV writer
(16-bit PCM, written to a unique temp name and renamed, so a crash never leaves half a file)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np

from studio.resources.media.ffmpeg import CorruptMediaError, ffmpeg_path
from studio.resources.media.probe import _check_exists, probe
from studio.resources.runtime.files import atomic_path


class CorruptAudioError(CorruptMediaError):
    """Audio that cannot be decoded or is empty."""


def _checked(y: np.ndarray, sr: int, what: str, allow_empty: bool = False) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.size == 0 and not allow_empty:
        raise CorruptAudioError(f"{what} holds no audio samples")
    if not np.all(np.isfinite(y)):
        raise CorruptAudioError(f"{what} contains NaN/inf samples")
    return y


def read_audio(path: Path | str, sample_rate: int = 48000, channels: int = 2, start: float = 0.0,
               duration: float | None = None) -> np.ndarray:
    """Decode an audio stream with ffmpeg to float32 (n_samples, channels) at `sample_rate`."""
    _check_exists(Path(path))
    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    if start:
        cmd += ["-ss", f"{start:.6f}"]  # before -i: fast seek, sample-accurate for audio
    cmd += ["-i", str(path)]
    if duration is not None:
        cmd += ["-t", f"{duration:.6f}"]
    cmd += ["-vn", "-ac", str(channels), "-ar", str(sample_rate), "-f", "f32le", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise CorruptAudioError(f"cannot decode audio from {path}: "
                                f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
    return np.frombuffer(proc.stdout, np.float32).reshape(-1, channels).copy()


def ffmpeg_decode(path: Path | str, sr: int, offset_s: float = 0.0, duration_s: float | None = None
                  ) -> tuple[np.ndarray, int]:
    """Any format ffmpeg reads as float32 mono at `sr`."""
    y = read_audio(path, sr, channels=1, start=offset_s, duration=duration_s)[:, 0]
    return _checked(y, sr, str(path), allow_empty=offset_s > 0), sr


def decode_bytes(data: bytes, what: str = "audio") -> tuple[np.ndarray, int]:
    """Decode WAV/FLAC/OGG bytes to float32 mono. Raises CorruptAudioError with a readable cause."""
    import soundfile as sf

    if not data:
        raise CorruptAudioError(f"{what} is empty (0 bytes)")
    try:
        y, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001 - libsndfile raises several types
        raise CorruptAudioError(f"{what} is not decodable audio ({len(data)} bytes, starts {data[:12]!r}): {e}")
    return _checked(y.mean(axis=1), sr, what), sr


def load_audio(path: Path | str, sr: int | None = None, mono: bool = True, offset_s: float = 0.0,
               duration_s: float | None = None) -> tuple[np.ndarray, int]:
    """Read a file as float32 (mono unless asked). soundfile for its formats; ffmpeg for everything else."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise CorruptAudioError(f"audio file not found: {path}")
    try:
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - not a libsndfile format: let ffmpeg decode it
        return ffmpeg_decode(path, sr or 44100, offset_s, duration_s)
    start = int(offset_s * info.samplerate)
    frames = -1 if duration_s is None else int(duration_s * info.samplerate)
    y, file_sr = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    y = y.mean(axis=1) if mono else y.T
    if sr and sr != file_sr:
        from studio.resources.audio.post import resample

        y, file_sr = resample(y, file_sr, sr), sr
    return _checked(y, file_sr, str(path)), file_sr


def audio_duration(path: Path | str) -> float:
    """Duration in seconds: soundfile's header for WAV/FLAC/OGG, else the media probe."""
    import soundfile as sf

    try:
        return float(sf.info(str(path)).duration)
    except Exception:  # noqa: BLE001 - not a libsndfile format
        pass
    try:
        info = probe(path)
    except CorruptAudioError:
        raise
    except CorruptMediaError as e:
        raise CorruptAudioError(str(e)) from None
    if not info.has_audio or not info.duration:
        raise CorruptAudioError(f"{path} has no audio stream: give a voice line or music file")
    return float(info.duration)


def write_wav(path: Path | str, samples: np.ndarray, sample_rate: int = 48000, channels: int | None = None
              ) -> Path:
    """Float samples (n,) or (n, ch) as 16-bit PCM WAV; `channels=2` duplicates a mono signal. The file is
    written to a unique temp name and renamed; the bytes are deterministic."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    if channels == 2 and data.ndim == 1:
        data = np.stack([data, data], axis=1)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sample_rate, subtype="PCM_16", format="WAV")
    return path
