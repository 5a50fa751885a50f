"""A tiny random-weight Wav2Lip (the published architecture at 1/8 width) for tests and `studio models tiny`:
saved as the authors' DataParallel checkpoints are, so the real loading code runs on CPU in milliseconds."""

from __future__ import annotations

from pathlib import Path

import yaml

TINY_WAV2LIP_WIDTH = 0.125


def build_tiny_wav2lip(out: Path, seed: int = 0, width: float = TINY_WAV2LIP_WIDTH) -> Path:
    """Save the tiny generator as `out/wav2lip_tiny.pth` and return the file."""
    from studio.resources.video.wav2lip_net import random_wav2lip, save_wav2lip

    return save_wav2lip(random_wav2lip(width, seed=seed), Path(out).expanduser().resolve() / "wav2lip_tiny.pth")


def use_tiny_wav2lip(configs_dir: Path, checkpoint: Path, width: float = TINY_WAV2LIP_WIDTH,
                     name: str = "wav2lip-gan") -> None:
    """Point model `name` of `configs_dir/models.yaml` at the tiny checkpoint (network width `width`)."""
    path = Path(configs_dir) / "models.yaml"
    models = yaml.safe_load(path.read_text())
    models["models"][name].update(source=str(checkpoint), options={"width": width})
    path.write_text(yaml.safe_dump(models, sort_keys=False))
