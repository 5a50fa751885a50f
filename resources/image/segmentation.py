"""SAM2 segmentation (profile `gpu`): a character's mask from a keyframe or from footage frames, for parody
cut-outs and the cut-out animator.

The backend runs transformers' `Sam2Model`, loaded by Hugging Face id or local folder with
`from_pretrained(..., local_files_only=True)` — weights are never downloaded at run time — and held by the
residency manager like every heavy model (loaded once per process, parked in host RAM between heavy tasks).

Pre- and post-processing are done here, from the checkpoint's own `preprocessor_config.json` (mean, std,
rescale factor) and the model config (input size): transformers' `Sam2ImageProcessor` needs torchvision, which
the CPU install does not carry (a PyPI torchvision pins a CUDA torch). The steps are the processor's: resize
to the square input (SAM2 does not keep the aspect ratio), rescale, normalise; box prompts scaled per axis to
the input size; the low-resolution mask logits upsampled bilinearly to the image size and thresholded at 0.

Prompts: a box per image. `auto` takes the largest face the mediapipe detector finds, widened to a body box
(the character stands under its face), else a box around the image centre — where the storyboard and the
director put the subject. Same image + prompt + model → the same mask bytes (inference mode, no sampling;
PNGs without timestamps).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from studio.configs.errors import StudioError
from studio.configs.schema import ModelEntry
from studio.resources.runtime.files import atomic_path
from studio.resources.runtime.model_sources import Source, resolve_source
from studio.resources.runtime.residency import HeavyModel, detect_device, get_residency, torch_dtype

MASK_VERSION = 1  # bump when the masks for the same image, prompt and weights change
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class SegmentationError(StudioError):
    pass


# --------------------------------------------------------------------------- prompts
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels


def centre_box(width: int, height: int) -> Box:
    """The middle 60 % of the width and 80 % of the height: where a shot's subject stands."""
    return (0.2 * width, 0.1 * height, 0.8 * width, 0.9 * height)


def face_box(rgb: np.ndarray) -> Box | None:
    """The largest face mediapipe finds, as a pixel box; None without a face or without mediapipe."""
    try:
        import mediapipe as mp
    except ImportError:
        return None
    h, w = rgb.shape[:2]
    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as det:
        found = det.process(np.ascontiguousarray(rgb)).detections or []
    if not found:
        return None
    b = max(found, key=lambda d: d.location_data.relative_bounding_box.width).location_data.relative_bounding_box
    return (b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h)


def body_box(face: Box, width: int, height: int) -> Box:
    """A face widened to the body below it: 1.2 face widths each side, half a face above, four below."""
    x0, y0, x1, y1 = face
    fw, fh = x1 - x0, y1 - y0
    return (max(0.0, x0 - 1.2 * fw), max(0.0, y0 - 0.5 * fh), min(float(width), x1 + 1.2 * fw),
            min(float(height), y1 + 4.0 * fh))


def prompt_box(rgb: np.ndarray, policy: str = "auto") -> tuple[Box, str]:
    """The box prompt for one image and where it came from (`face` or `centre`)."""
    h, w = rgb.shape[:2]
    face = face_box(rgb) if policy == "auto" else None
    if face is not None:
        return body_box(face, w, h), "face"
    return centre_box(w, h), "centre"


def detector_tag() -> str:
    """What `auto` prompts depend on (part of mask recipes)."""
    import importlib.metadata

    try:
        return f"mediapipe=={importlib.metadata.version('mediapipe')}"
    except importlib.metadata.PackageNotFoundError:
        return "centre-only"


# --------------------------------------------------------------------------- mask files and compositing
def save_mask_png(mask: np.ndarray, path: Path | str) -> None:
    """A binary mask as an 8-bit PNG (0 / 255), no timestamp: same mask → same bytes."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(tmp, format="PNG", optimize=False)


def load_mask(path: Path | str) -> np.ndarray:
    """A mask PNG as a boolean H×W array (anything above half grey is inside)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) >= 128


def composite(source: np.ndarray, mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The source's pixels inside the mask over the background's outside it (all H×W, RGB uint8)."""
    if source.shape != background.shape or mask.shape != source.shape[:2]:
        raise SegmentationError(f"cut-out sizes differ: source {source.shape}, mask {mask.shape}, "
                                f"background {background.shape}")
    return np.where(mask[..., None], source, background)


def cutout_rgba(rgb: np.ndarray, mask: np.ndarray) -> Image.Image:
    """The masked character as an RGBA sprite cropped to the mask's bounding box (for the cut-out animator)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise SegmentationError("the mask is empty: nothing to cut out")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    alpha = np.where(mask[y0:y1, x0:x1], 255, 0).astype(np.uint8)
    return Image.fromarray(np.dstack([rgb[y0:y1, x0:x1], alpha]))  # 4 channels: RGBA


# --------------------------------------------------------------------------- the model
@dataclass
class Sam2Handle:
    """The model and its input preprocessing; moves as one between GPU and host RAM."""

    model: Any
    size: tuple[int, int]  # model input (height, width)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    rescale: float

    def to(self, device: str) -> Sam2Handle:
        self.model.to(device)
        return self


class Sam2SegmenterBackend:
    """Box-prompted SAM2 masks. `segment(images, boxes)` → one boolean mask per image, at the image's size."""

    def __init__(self, name: str, entry: ModelEntry):
        from studio.configs.settings import get_settings

        self.name, self.entry = name, entry
        self.heavy = entry.heavy
        self.device = detect_device(get_settings().gpu.device)
        self.batch = int(entry.options.get("batch", 8))
        self._source: Source | None = None

    @property
    def source(self) -> Source:
        if self._source is None:
            self._source = resolve_source(self.entry.source, f"SAM2 model '{self.name}'", "configs/models.yaml",
                                          self.entry.revision)
        return self._source

    @property
    def model_id(self) -> str:
        """source@revision: the cached snapshot's commit for HF ids, a content fingerprint for folders."""
        return f"{self.entry.source}@{self.source.revision}"

    def heavy_model(self) -> HeavyModel:
        return HeavyModel(name=f"{self.name}@{self.source.revision}", load=self._load, est_host_gb=self.entry.vram_gb)

    def _preprocessor(self) -> dict[str, Any]:
        src = self.source
        if src.local:
            path = Path(src.ref) / "preprocessor_config.json"
        else:
            from huggingface_hub import hf_hub_download

            try:
                path = Path(hf_hub_download(src.ref, "preprocessor_config.json", revision=self.entry.revision,
                                            local_files_only=True))
            except Exception:  # noqa: BLE001 - a checkpoint without one uses SAM2's published defaults
                return {}
        return json.loads(path.read_text()) if path.is_file() else {}

    def _load(self, device: str) -> Sam2Handle:
        from transformers import Sam2Model
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
        src = self.source
        kwargs: dict[str, Any] = {"dtype": torch_dtype(self.entry.dtype, device, default="float32"),
                                  "local_files_only": src.local_files_only}
        if not src.local and self.entry.revision:
            kwargs["revision"] = self.entry.revision
        model = Sam2Model.from_pretrained(src.ref, **kwargs).to(device).eval()
        size = model.config.vision_config.backbone_config.image_size
        pre = self._preprocessor()
        return Sam2Handle(model, (int(size[0]), int(size[1])), tuple(pre.get("image_mean", _IMAGENET_MEAN)),
                          tuple(pre.get("image_std", _IMAGENET_STD)), float(pre.get("rescale_factor", 1 / 255)))

    def segment(self, images: list[np.ndarray], boxes: list[Box]) -> tuple[list[np.ndarray], dict[str, Any]]:
        """One boolean mask per RGB image (H×W×3 uint8) for its box prompt; plus timing metadata."""
        import torch

        if len(images) != len(boxes):
            raise SegmentationError(f"{len(images)} images but {len(boxes)} box prompts")
        masks: list[np.ndarray] = []
        with get_residency().use(self.heavy_model()) as handle:
            t0 = time.perf_counter()
            for i in range(0, len(images), self.batch):
                masks += self._run(handle, images[i:i + self.batch], boxes[i:i + self.batch], torch)
            seconds = time.perf_counter() - t0
        meta = {"model": self.model_id, "device": self.device, "frames": len(images),
                "ms_per_frame": round(1000 * seconds / max(1, len(images)), 2)}
        return masks, meta

    def _run(self, handle: Sam2Handle, images: list[np.ndarray], boxes: list[Box], torch: Any) -> list[np.ndarray]:
        H, W = handle.size
        model = handle.model
        dtype = next(model.parameters()).dtype
        mean = np.array(handle.mean, np.float32)[:, None, None]
        std = np.array(handle.std, np.float32)[:, None, None]
        pixels, scaled = [], []
        for rgb, (x0, y0, x1, y1) in zip(images, boxes, strict=True):
            h, w = rgb.shape[:2]
            resized = np.asarray(Image.fromarray(rgb).resize((W, H), Image.BILINEAR), np.float32)
            pixels.append((resized.transpose(2, 0, 1) * handle.rescale - mean) / std)
            scaled.append([[x0 * W / w, y0 * H / h, x1 * W / w, y1 * H / h]])
        px = torch.from_numpy(np.stack(pixels)).to(self.device, dtype)
        bx = torch.tensor(scaled, dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            logits = model(pixel_values=px, input_boxes=bx, multimask_output=False).pred_masks  # (B, 1, 1, h, w)
        out = []
        for rgb, lo in zip(images, logits.float(), strict=True):
            up = torch.nn.functional.interpolate(lo[:, :1], rgb.shape[:2], mode="bilinear", align_corners=False)
            out.append((up[0, 0] > 0.0).cpu().numpy())
        return out
