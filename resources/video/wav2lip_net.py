"""The Wav2Lip generator (Prajwal et al., "A Lip Sync Expert Is All You Need", 2020) in torch, and its audio
features — so lip sync runs in-process, residency-managed, instead of as the research repo's script.

The module tree mirrors Rudrabha/Wav2Lip `models/wav2lip.py` exactly (same attribute names and layer order), so
the authors' `wav2lip.pth` / `wav2lip_gan.pth` state dicts load as they are. `width` scales every channel count
(1.0 = the published network, 36 M parameters); a small width builds a tiny network with the same layers,
shapes of 96×96 faces and 80×16 mel windows, which is what tests run on CPU.

Inputs per frame: a 96×96 face crop with its lower half blacked out, concatenated with a reference crop of the
same face (6 channels, BGR in [0, 1] as the authors' cv2 pipeline fed it), and the 16 mel frames (0.2 s) of
the voice around that video frame. Output: the 96×96 face with the mouth drawn for that audio.

Weights are read with `torch.load(weights_only=True)` or safetensors — never by unpickling arbitrary objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from studio.configs.errors import StudioError

FACE_SIZE = 96
MEL_STEP = 16  # mel frames per window: 16 × hop 200 / 16 kHz = 0.2 s
# Wav2Lip's hparams.py (the checkpoints were trained on exactly these features).
SAMPLE_RATE, N_FFT, HOP, WIN, N_MELS = 16000, 800, 200, 800, 80
FMIN, FMAX, PREEMPHASIS, REF_LEVEL_DB, MIN_LEVEL_DB, MAX_ABS = 55, 7600, 0.97, 20, -100, 4.0


class Wav2LipWeightsError(StudioError):
    """A checkpoint that is not a plain Wav2Lip state dict (or does not fit the configured width)."""


class Conv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: Any, stride: Any, padding: Any, residual: bool = False):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        return self.act(out + x if self.residual else out)


class Conv2dTranspose(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, padding: int, output_padding: int = 0):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding), nn.BatchNorm2d(cout)
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def _res(c: int, n: int) -> list[nn.Module]:
    return [Conv2d(c, c, 3, 1, 1, residual=True) for _ in range(n)]


class Wav2Lip(nn.Module):
    """The generator. `width` multiplies every channel count (1.0 = the published checkpoints)."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        self.width = width

        def c(n: int) -> int:
            return max(2, round(n * width))

        e = [c(n) for n in (16, 32, 64, 128, 256, 512, 512)]  # face encoder outputs, 96² → 1²
        a = [c(n) for n in (32, 64, 128, 256, 512)]
        d = [c(n) for n in (512, 512, 512, 384, 256, 128, 64)]  # decoder outputs, 1² → 96²
        self.face_encoder_blocks = nn.ModuleList(
            [
                nn.Sequential(Conv2d(6, e[0], 7, 1, 3)),
                nn.Sequential(Conv2d(e[0], e[1], 3, 2, 1), *_res(e[1], 2)),
                nn.Sequential(Conv2d(e[1], e[2], 3, 2, 1), *_res(e[2], 3)),
                nn.Sequential(Conv2d(e[2], e[3], 3, 2, 1), *_res(e[3], 2)),
                nn.Sequential(Conv2d(e[3], e[4], 3, 2, 1), *_res(e[4], 2)),
                nn.Sequential(Conv2d(e[4], e[5], 3, 2, 1), *_res(e[5], 1)),
                nn.Sequential(Conv2d(e[5], e[6], 3, 1, 0), Conv2d(e[6], e[6], 1, 1, 0)),
            ]
        )
        self.audio_encoder = nn.Sequential(
            Conv2d(1, a[0], 3, 1, 1),
            *_res(a[0], 2),
            Conv2d(a[0], a[1], 3, (3, 1), 1),
            *_res(a[1], 2),
            Conv2d(a[1], a[2], 3, 3, 1),
            *_res(a[2], 2),
            Conv2d(a[2], a[3], 3, (3, 2), 1),
            *_res(a[3], 1),
            Conv2d(a[3], a[4], 3, 1, 0),
            Conv2d(a[4], a[4], 1, 1, 0),
        )
        skips = [e[6], e[5], e[4], e[3], e[2], e[1], e[0]]  # encoder features concatenated after each block
        ins = [a[4]] + [d[i] + skips[i] for i in range(6)]
        self.face_decoder_blocks = nn.ModuleList(
            [
                nn.Sequential(Conv2d(ins[0], d[0], 1, 1, 0)),
                nn.Sequential(Conv2dTranspose(ins[1], d[1], 3, 1, 0), *_res(d[1], 1)),
                *[
                    nn.Sequential(Conv2dTranspose(ins[i], d[i], 3, 2, 1, output_padding=1), *_res(d[i], 2))
                    for i in range(2, 7)
                ],
            ]
        )
        self.output_block = nn.Sequential(
            Conv2d(d[6] + skips[6], c(32), 3, 1, 1), nn.Conv2d(c(32), 3, 1, 1, 0), nn.Sigmoid()
        )

    def forward(self, audio: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """audio (B, 1, 80, 16), faces (B, 6, 96, 96) → faces (B, 3, 96, 96) in [0, 1]."""
        x = self.audio_encoder(audio)
        feats = []
        f = faces
        for block in self.face_encoder_blocks:
            f = block(f)
            feats.append(f)
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), feats.pop()), dim=1)
        return self.output_block(x)


# --------------------------------------------------------------------------- weights
def random_wav2lip(width: float = 1.0, seed: int = 0) -> Wav2Lip:
    """A random-weight network (tests and GPU timing: same FLOPs as the trained one at width 1). Its BatchNorm
    statistics are set from one random batch, as training leaves them matched to each layer's activations:
    with the identity statistics of a fresh module the audio's signal fades out before the decoder, and the
    mouth would not move at all."""
    torch.manual_seed(seed)
    net = Wav2Lip(width)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # a cumulative average: the statistics of exactly this batch
    gen = torch.Generator().manual_seed(seed)
    net.train()
    with torch.no_grad():
        net(
            torch.rand(16, 1, N_MELS, MEL_STEP, generator=gen) * 2 * MAX_ABS - MAX_ABS,
            torch.rand(16, 6, FACE_SIZE, FACE_SIZE, generator=gen),
        )
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
    return net.eval()


def save_wav2lip(net: Wav2Lip, path: Path) -> Path:
    """Save like the authors' checkpoints: `{"state_dict": {"module.<key>": tensor}}` (DataParallel prefix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    return path


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors: safetensors, or a torch file read with `weights_only=True` (an arbitrary pickle
    is refused). Unwraps `{"state_dict": ...}` and strips DataParallel's `module.` prefix."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = load_file(str(path))
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - UnpicklingError, or a torch version's own wrapper of it
            raise Wav2LipWeightsError(
                f"refused to load {path}: it is not a plain tensor checkpoint (torch.load weights_only=True "
                f"failed: {str(e).splitlines()[0][:200]}). Use the authors' wav2lip_gan.pth or a .safetensors "
                "export; the studio never unpickles arbitrary objects."
            ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise Wav2LipWeightsError(f"{path} holds no Wav2Lip state dict (expected tensors under 'state_dict')")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_wav2lip(path: Path, width: float = 1.0, device: str = "cpu") -> Wav2Lip:
    net = Wav2Lip(width)
    try:
        net.load_state_dict(read_state_dict(path))
    except RuntimeError as e:
        raise Wav2LipWeightsError(
            f"{path} does not fit a Wav2Lip generator of width {width} (the published "
            f"checkpoints are width 1.0; set options.width in configs/models.yaml): "
            f"{str(e).splitlines()[0][:200]}"
        ) from None
    return net.eval().to(device)


# --------------------------------------------------------------------------- audio features
def melspectrogram(wav: np.ndarray) -> np.ndarray:
    """Wav2Lip's mel features of 16 kHz mono audio: (80, frames), symmetric-normalised to [−4, 4]."""
    import librosa
    from scipy.signal import lfilter

    y = lfilter([1, -PREEMPHASIS], [1], np.asarray(wav, dtype=np.float64))
    spec = np.abs(librosa.stft(y=y, n_fft=N_FFT, hop_length=HOP, win_length=WIN))
    mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX) @ spec
    min_level = np.exp(MIN_LEVEL_DB / 20 * np.log(10))
    db = 20 * np.log10(np.maximum(min_level, mel)) - REF_LEVEL_DB
    norm = 2 * MAX_ABS * ((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MAX_ABS
    return np.clip(norm, -MAX_ABS, MAX_ABS).astype(np.float32)


def mel_windows(mel: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """One 80×16 window per video frame (Wav2Lip's inference: window i starts at mel frame ⌊i · 80 / fps⌋;
    windows past the end repeat the last full one). Returns (n_frames, 80, 16)."""
    if mel.shape[1] < MEL_STEP:
        mel = np.pad(mel, ((0, 0), (0, MEL_STEP - mel.shape[1])), constant_values=-MAX_ABS)
    last = mel.shape[1] - MEL_STEP
    starts = np.minimum((np.arange(n_frames) * (80.0 / fps)).astype(int), last)
    return (
        np.stack([mel[:, s : s + MEL_STEP] for s in starts])
        if n_frames
        else np.zeros((0, N_MELS, MEL_STEP), np.float32)
    )
