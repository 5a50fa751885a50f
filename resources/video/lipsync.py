"""Lip sync: Wav2Lip on the `gpu` profile; on every profile, mouth flaps for the cut-out animator from the voice
line's envelope (`mouth_openness`), which is also Wav2Lip's fallback when a keyframe shows no face.

Flaps: the timing sidecar the voice stage writes next to each line carries `envelope` (RMS per hop, dBFS) and
`segments` (voiced regions); the mouth layer opens with the loudness of the line at each frame and closes
in silence.

Wav2Lip runs in-process (`studio.resources.video.wav2lip_net`): a heavy model of the residency manager, loaded
once per process from a local `.pth`/`.safetensors` or a Hugging Face id already in the local cache (never
downloaded at run time), parked in host RAM between heavy tasks. Per shot: the face box (mediapipe, found by
the task layer and part of the recipe) is cropped to 96×96, the network draws the mouth for each 0.2 s mel
window, and the lower part of the box is blended back with a feathered mask — pixels outside the box are the
keyframe's own. A shot with generated motion is synced on its clip: every frame's own crop is the network's
reference, in the keyframe's face box mapped into the clip (`fit_box`; image-to-video keeps the framing of its
first frame — a face that wanders out of the box keeps its generated mouth). Frames are piped to ffmpeg
(lossless RGB, bit-exact flags) and muxed with the voice, placed `voice_offset` seconds into the shot.
Registered as backend "wav2lip" (modality `lipsync`) in resources/registry.py; `options.width` in
configs/models.yaml scales the network (1.0 = the published one).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from studio.configs.errors import StudioError
from studio.configs.schema import ModelEntry
from studio.resources.image.faces import _read_rgb, box_blend_mask
from studio.resources.media.audio_io import load_audio, write_wav
from studio.resources.media.ffmpeg import BITEXACT_OUTPUT, ffmpeg_path
from studio.resources.runtime.model_sources import ModelNotAvailableError, Source, offline, resolve_source
from studio.resources.runtime.residency import HeavyModel, detect_device, get_residency
from studio.resources.video.config import LipSyncConfig, video_config

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in keyframe pixels


class LipSyncError(StudioError):
    pass


def find_face_box(image: Path | str, pad_bottom: float | None = None) -> Box | None:
    """The largest face's box, extended below the chin the way Wav2Lip pads its detections; None: no face."""
    from studio.resources.image.faces import face_box

    return face_box(image, video_config().lipsync.pad_bottom if pad_bottom is None else pad_bottom)


class Wav2LipBackend:
    """Wav2Lip generator in-process; `sync()` writes a lip-synced clip of a keyframe (see the module docstring)."""

    heavy = True

    def __init__(self, name: str = "wav2lip-gan", entry: ModelEntry | None = None,
                 config: LipSyncConfig | None = None):
        self.name = name
        self.entry = entry or ModelEntry(modality="lipsync", backend="wav2lip", heavy=True)
        self.heavy = self.entry.heavy
        self.config = config or video_config().lipsync
        self.width = float(self.entry.options.get("width", 1.0))
        self.device = detect_device(_settings().gpu.device)
        self._weights: tuple[Path, Source] | None = None

    # ------------------------------------------------------------------ weights
    def weights(self) -> tuple[Path, Source]:
        """The checkpoint file and its source (revision for recipes); raises naming what to fetch or place."""
        if self._weights is None:
            self._weights = self._resolve()
        return self._weights

    def _resolve(self) -> tuple[Path, Source]:
        src_text = self.entry.source
        what = f"lip-sync model '{self.name}'"
        weight_name = self.entry.options.get("weight_name", "wav2lip_gan.pth")
        if src_text and src_text.startswith(("/", "~", ".")) and not Path(src_text).expanduser().exists():
            raise ModelNotAvailableError(
                f"{what}: no weights at {src_text}. Place the Wav2Lip checkpoint there (wav2lip_gan.pth from "
                "https://github.com/Rudrabha/Wav2Lip, or a .safetensors export), or set 'source:' in "
                "configs/models.yaml to a Hugging Face id pre-fetched with `huggingface-cli download`.")
        src = resolve_source(src_text, what, "configs/models.yaml", self.entry.revision)
        if src.local:
            path = Path(src.ref)
            if path.is_dir():
                found = sorted(path.rglob("*.safetensors")) or sorted(path.rglob("*.pth"))
                if not found:
                    raise ModelNotAvailableError(f"{what}: {path} holds no .pth or .safetensors checkpoint")
                path = found[0]
            return path, src
        try:  # a Hugging Face id: only ever from the local cache
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(src.ref, weight_name, revision=self.entry.revision, local_files_only=True))
        except Exception:  # noqa: BLE001 - any failure means "not in the local cache"
            raise ModelNotAvailableError(
                f"{what} '{src.ref}' ({weight_name}) is not in the local Hugging Face cache"
                f"{' and the studio is offline' if offline() else ''}; weights are never downloaded at run time. "
                f"Pre-fetch it with `huggingface-cli download {src.ref} {weight_name}` on this host, or point "
                "'source:' in configs/models.yaml at a local .pth file.") from None
        return path, src

    @property
    def model_id(self) -> str:
        path, src = self.weights()
        return f"{self.name}@{src.revision}+w{self.width:g}"

    def require(self) -> None:
        self.weights()

    # ------------------------------------------------------------------ residency
    def heavy_model(self) -> HeavyModel:
        from studio.resources.video.wav2lip_net import load_wav2lip

        path, src = self.weights()
        dtype = self.entry.dtype

        def load(device: str) -> Any:
            net = load_wav2lip(path, self.width, device)
            return net.half() if device.startswith("cuda") and dtype == "float16" else net

        return HeavyModel(name=f"{self.name}@{src.revision}", load=load, est_host_gb=max(self.entry.vram_gb, 0.05))

    # ------------------------------------------------------------------ running
    def predict(self, net: Any, faces: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """Network forward in batches: faces (6, 96, 96) one crop for a still, or (m, 6, 96, 96) one per frame of
        a clip (window i uses crop min(i, m-1)); windows (n, 80, 16) → (n, 96, 96, 3) uint8 BGR."""
        import torch

        param = next(net.parameters())
        out = []
        face_t = torch.from_numpy(faces if faces.ndim == 4 else faces[None]).to(param.device, param.dtype)
        bs = self.config.batch_size
        with torch.inference_mode():
            for i in range(0, len(windows), bs):
                mel = torch.from_numpy(windows[i:i + bs]).to(param.device, param.dtype).unsqueeze(1)
                idx = torch.arange(i, i + len(mel), device=face_t.device).clamp(max=len(face_t) - 1)
                pred = net(mel, face_t[idx])
                out.append((pred.float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 96, 96, 3), np.uint8)

    def sync(self, visual: Path, voice: Path, out: Path, *, box: Box, fps: int, seconds: float | None = None,
             voice_offset: float = 0.0) -> dict[str, Any]:
        """Write a lossless clip (Matroska: RGB H.264 qp 0 + PCM voice) of `visual` — a still, or a generated clip
        (each frame's own face crop is the network's reference; a clip shorter than `seconds` holds its last
        frame) — whose mouth follows `voice`, `seconds` long (default: the voice line) at `fps`, the line
        starting `voice_offset` in. `box` is in the visual's pixels, the same on every frame."""
        import cv2

        from studio.resources.video.wav2lip_net import FACE_SIZE, SAMPLE_RATE, mel_windows, melspectrogram

        visual, voice = Path(visual), Path(voice)
        if not visual.is_file():
            raise LipSyncError(f"lip sync visual not found: {visual}")
        frames = visual_frames(visual)
        H, W = frames.shape[1:3]
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H):
            raise LipSyncError(f"face box {box} lies outside the {W}×{H} keyframe {visual}")
        line16, _ = load_audio(voice, sr=SAMPLE_RATE)
        native, sr = load_audio(voice)
        seconds = float(seconds or voice_offset + len(native) / sr)
        n = max(1, round(seconds * fps))
        timeline = np.zeros(int(round(n / fps * SAMPLE_RATE)), np.float32)
        start = int(round(voice_offset * SAMPLE_RATE))
        part = line16[: max(0, len(timeline) - start)]
        timeline[start:start + len(part)] = part
        windows = mel_windows(melspectrogram(timeline), n, fps)
        crops = np.stack([cv2.resize(f[y0:y1, x0:x1, ::-1], (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
                          for f in frames[:n]])
        ref = crops.astype(np.float32) / 255.0
        masked = ref.copy()
        masked[:, FACE_SIZE // 2:] = 0.0
        faces = np.ascontiguousarray(np.concatenate([masked, ref], axis=3).transpose(0, 3, 1, 2))
        t0 = time.perf_counter()
        with get_residency().use(self.heavy_model()) as net:
            t_net = time.perf_counter()
            preds = self.predict(net, faces, windows)
            net_s = time.perf_counter() - t_net
        hold_s = time.perf_counter() - t0
        mask = box_blend_mask(x1 - x0, y1 - y0, self.config.mouth_top, self.config.feather)

        def produce(sink: Any) -> None:
            for i, pred in enumerate(preds):
                frame = frames[min(i, len(frames) - 1)]
                base = frame[y0:y1, x0:x1].astype(np.float32)
                mouth = cv2.resize(pred[:, :, ::-1], (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
                out_frame = frame.copy()
                out_frame[y0:y1, x0:x1] = np.clip(np.rint(base + mask * (mouth - base)), 0, 255).astype(np.uint8)
                sink(out_frame.tobytes())

        self._encode(W, H, fps, n, produce, native, sr, voice_offset, out)
        return {"model": self.model_id, "device": self.device, "frames": n, "fps": fps, "seconds": round(n / fps, 4),
                "box": list(box), "voice_offset": voice_offset, "network_s": round(net_s, 4),
                "gpu_hold_s": round(hold_s, 4), "network_fps": round(n / net_s, 1) if net_s > 0 else None}

    @staticmethod
    def _encode(W: int, H: int, fps: int, n: int, produce: Any, voice: np.ndarray, sr: int, offset: float,
                out: Path) -> None:
        """One ffmpeg run: raw RGB frames on stdin + the voice placed `offset` s in (padded to the clip's length)
        → lossless RGB H.264 + PCM in Matroska, bit-exact flags, one x264 thread (same inputs → same bytes)."""
        with tempfile.TemporaryDirectory(prefix="studio-wav2lip-") as scratch:
            total = int(round(n / fps * sr))
            track = np.zeros(total, np.float32)
            start = int(round(offset * sr))
            part = voice[: max(0, total - start)]
            track[start:start + len(part)] = part
            wav = write_wav(Path(scratch) / "voice.wav", track, sr)
            cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo",
                   "-pix_fmt", "rgb24", "-s", f"{W}x{H}", "-r", str(fps), "-i", "pipe:0", "-i", str(wav),
                   "-map", "0:v", "-map", "1:a", "-frames:v", str(n), "-c:v", "libx264rgb", "-preset", "ultrafast",
                   "-qp", "0", "-threads", "1", "-c:a", "pcm_s16le", *BITEXACT_OUTPUT, "-f", "matroska", str(out)]
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                produce(proc.stdin.write)
                proc.stdin.close()
            except BrokenPipeError:
                pass
            err = proc.stderr.read().decode(errors="replace")
            if proc.wait() != 0 or not out.is_file():
                raise LipSyncError(f"ffmpeg could not encode the lip-synced clip: {err.strip()[-400:]}")


VIDEO_SUFFIXES = frozenset({".mkv", ".mp4", ".mov", ".webm", ".avi"})


def visual_frames(visual: Path) -> np.ndarray:
    """The frames Wav2Lip draws on, (k, H, W, 3) RGB: one for a still, every frame of a clip."""
    if visual.suffix.lower() in VIDEO_SUFFIXES:
        from studio.resources.media.frames import read_all_frames

        return read_all_frames(visual)
    return _read_rgb(visual)[None]


def fit_box(box: Box, src: tuple[int, int], dst: tuple[int, int]) -> Box:
    """A box of a `src` (w, h) picture mapped into the `dst` (w, h) picture made from it by a centred cover-crop
    and resize (how the video model fits its keyframe), clipped to `dst`."""
    (sw, sh), (dw, dh) = src, dst
    scale = max(dw / sw, dh / sh)
    ox, oy = (sw - dw / scale) / 2, (sh - dh / scale) / 2
    x0, x1 = (min(max(round((v - ox) * scale), 0), dw) for v in (box[0], box[2]))
    y0, y1 = (min(max(round((v - oy) * scale), 0), dh) for v in (box[1], box[3]))
    return x0, y0, x1, y1


def _settings() -> Any:
    from studio.configs.settings import get_settings

    return get_settings()


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
