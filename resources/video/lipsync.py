"""Lip sync: Wav2Lip on the `gpu` profile, where it is installed; on every profile, mouth flaps for the cut-out
animator from the voice line's envelope (`mouth_openness`), which is also Wav2Lip's fallback.

Flaps: the timing sidecar the voice stage writes next to each line carries `envelope` (RMS per hop, dBFS) and
`segments` (voiced regions); the mouth layer opens with the loudness of the line at each frame and closes
in silence.

Wav2Lip (https://github.com/Rudrabha/Wav2Lip) is research code run from its own checkout and environment;
the studio calls its `inference.py` as a subprocess with the paths from `configs/video.yaml` (`lipsync:`):

    python inference.py --checkpoint_path CKPT --face VISUAL --audio VOICE --outfile OUT [extra_args]

Registered as backend "wav2lip" (modality `lipsync`) in resources/registry.py. It is heavy: the task that runs
it (`studio.tasks.video.sync_lips`) carries the `gpu-heavy` tag so it never shares the GPU with SDXL or vLLM.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from studio.configs.errors import StudioError
from studio.configs.schema import ModelEntry
from studio.resources.media.probe import probe, require_video
from studio.resources.video.config import LipSyncConfig, video_config


class LipSyncUnavailableError(StudioError):
    pass


class LipSyncError(StudioError):
    pass


class Wav2LipBackend:
    heavy = True

    def __init__(self, name: str = "wav2lip", entry: ModelEntry | None = None, config: LipSyncConfig | None = None):
        cfg = (config or video_config().lipsync).model_copy()
        if entry is not None:  # a models.yaml entry may point at the checkout/checkpoint instead of video.yaml
            opts = entry.options or {}
            cfg = cfg.model_copy(update={k: v for k, v in {
                "wav2lip_dir": opts.get("wav2lip_dir") or entry.source, "checkpoint": opts.get("checkpoint"),
                "python": opts.get("python")}.items() if v})
        self.name = name
        self.config = cfg
        self.model_id = f"wav2lip@{Path(cfg.checkpoint).name if cfg.checkpoint else 'unset'}"

    @classmethod
    def from_config(cls) -> Wav2LipBackend:
        return cls(config=video_config().lipsync)

    # ------------------------------------------------------------------ availability
    def problems(self) -> list[str]:
        """Why this backend cannot run here (empty when it can)."""
        c = self.config
        out = []
        if c.backend != "wav2lip":
            out.append("configs/video.yaml lipsync.backend is not 'wav2lip'")
        if not c.wav2lip_dir:
            out.append("lipsync.wav2lip_dir is not set (a checkout of Rudrabha/Wav2Lip)")
        elif not (Path(c.wav2lip_dir) / "inference.py").is_file():
            out.append(f"{c.wav2lip_dir} has no inference.py: is it a Wav2Lip checkout?")
        if not c.checkpoint:
            out.append("lipsync.checkpoint is not set (e.g. checkpoints/wav2lip_gan.pth)")
        elif not Path(c.checkpoint).is_file():
            out.append(f"checkpoint {c.checkpoint} does not exist")
        if c.python and not Path(c.python).is_file():
            out.append(f"lipsync.python {c.python} does not exist")
        return out

    def available(self) -> bool:
        return not self.problems()

    def require(self) -> None:
        if problems := self.problems():
            raise LipSyncUnavailableError("Wav2Lip lip sync is not available: " + "; ".join(problems)
                                          + ". Set these under lipsync: in configs/video.yaml, or render "
                                          "without lip sync (the preview profile never fakes it).")

    # ------------------------------------------------------------------ running
    def command(self, visual: Path, voice: Path, out: Path) -> list[str]:
        c = self.config
        return [c.python or sys.executable, "inference.py", "--checkpoint_path", str(Path(c.checkpoint).resolve()),
                "--face", str(Path(visual).resolve()), "--audio", str(Path(voice).resolve()),
                "--outfile", str(Path(out).resolve()), *c.extra_args]

    def sync(self, visual: Path, voice: Path, out: Path) -> Path:
        """Run Wav2Lip; `out` gets an mp4 whose mouth follows `voice`. Raises with Wav2Lip's own log tail."""
        self.require()
        if visual.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
            if not visual.is_file():
                raise LipSyncError(f"lip sync visual not found: {visual}")
        else:
            require_video(visual)
        if not probe(voice).has_audio:
            raise LipSyncError(f"lip sync voice {voice} has no audio stream")
        work = Path(tempfile.mkdtemp(prefix="studio-wav2lip-"))
        try:
            target = work / "result.mp4"
            proc = subprocess.run(self.command(visual, voice, target), cwd=self.config.wav2lip_dir,
                                  capture_output=True, text=True, timeout=self.config.timeout_s)
            if proc.returncode != 0 or not target.is_file():
                tail = "\n  ".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
                hint = " (no face found in the visual?)" if "Face not detected" in (proc.stderr + proc.stdout) else ""
                raise LipSyncError(f"Wav2Lip failed (exit {proc.returncode}){hint}:\n  {tail}")
            require_video(target)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(target), out)
            return out
        except subprocess.TimeoutExpired as e:
            raise LipSyncError(f"Wav2Lip took longer than {self.config.timeout_s} s; raise lipsync.timeout_s") from e
        finally:
            shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- flaps (every profile)
def mouth_openness(timing: dict | None, n_frames: int, fps: int, offset_s: float = 0.0,
                   floor: float | None = None) -> np.ndarray:
    """Mouth opening (0 = closed … 1 = wide) per frame from a voice line's timing sidecar (`envelope.values`:
    RMS per hop relative to the loudest, 0–1 over 60 dB), the line starting
    `offset_s` into the shot. Loudness between the line's quiet floor and its peak maps to the opening; outside
    the voiced segments (and outside the line) the mouth is closed."""
    out = np.zeros(n_frames)
    env = (timing or {}).get("envelope") or {}
    values = np.asarray(env.get("values") or [], dtype=float)
    if values.size == 0 or n_frames == 0:
        return out
    hop = float(env.get("hop_s", 0.01))
    t = np.arange(n_frames) / fps - offset_s
    # average the envelope over each frame's span (a frame shows 1/fps s of speech)
    idx0 = np.clip(np.floor(t / hop).astype(int), 0, values.size)
    idx1 = np.clip(np.floor((t + 1.0 / fps) / hop).astype(int), 0, values.size)
    csum = np.concatenate([[0.0], np.cumsum(values)])
    span = np.maximum(idx1 - idx0, 1)
    level = np.where(idx1 > idx0, (csum[idx1] - csum[idx0]) / span, values[np.clip(idx0, 0, values.size - 1)])
    peak = float(np.percentile(values, 95))
    floor = peak - 0.5 if floor is None else floor  # envelope values span 60 dB: half of it below the peak
    opening = np.clip((level - floor) / max(peak - floor, 1e-6), 0.0, 1.0) ** 1.3
    voiced = np.zeros(n_frames, bool)
    for seg in (timing or {}).get("segments") or [{"start": 0.0, "end": values.size * hop}]:
        voiced |= (t + 0.5 / fps >= seg["start"]) & (t + 0.5 / fps <= seg["end"])
    inside = (t >= 0) & (t < values.size * hop)
    return np.round(np.where(voiced & inside, opening, 0.0), 3)
