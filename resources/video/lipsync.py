"""Lip sync: Wav2Lip on the `gpu` profile, where it is installed. The preview profile never fakes lip sync:
there the voice line's timing drives subtitle timing only (see `SegmentSpec.subtitle_cues`).

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
