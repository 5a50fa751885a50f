"""Image-to-video motion (profile `gpu`): a keyframe shot's SDXL keyframe animated by LTX-Video.

Why LTX-Video (`LTXImageToVideoPipeline`) and not AnimateDiff-SDXL or Wan 2.1:
- it is conditioned on the keyframe itself: the image's latent is the clip's first latent frame and stays fixed
  while the rest is denoised, so the shot starts on the picture the judge approved. AnimateDiff-SDXL is
  text-to-video (a motion adapter on the SDXL UNet); it can only approximate the keyframe through img2img noise
  or an IP-Adapter, so the character drifts from its LoRA-made look.
- it fits a 16 GB card: a 2B-parameter DiT (≈4 GB in bf16) with a T5-XXL text encoder (≈9.5 GB) that model CPU
  offload keeps off the GPU while the transformer runs, and a VAE that decodes in tiles. Wan 2.1's
  image-to-video model is 14B parameters (≈28 GB in bf16) plus a CLIP image encoder: it needs offload of the
  transformer itself or quantisation on 16 GB, several times slower per clip.
- it is fast: its VAE compresses 32×32×8 pixels per latent token, so a 1024×576×121-frame clip is ~7k tokens.

Sizes: sides divisible by 32, 8k+1 frames (the first frame is the keyframe, then 8 frames per latent). The clip
covers the shot: the smallest 8k+1 frames ≥ the shot's frames, capped at `generation.max_frames`; a longer shot
holds its last generated frame. Weights by Hugging Face id (pre-fetched) or local folder, always loaded with
`local_files_only=True`. Same recipe → same bytes on the same machine: the noise comes from a seeded CPU
generator and the clip is written losslessly with ffmpeg's bit-exact flags.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from studio.configs.errors import StudioError
from studio.configs.schema import ModelEntry
from studio.configs.vocabulary import Shot
from studio.resources.image.control import fit_rgb
from studio.resources.runtime.model_sources import (
    ModelNotAvailableError,
    Source,
    has_variant,
    resolve_source,
)
from studio.resources.runtime.residency import HeavyModel, detect_device, get_residency, torch_dtype
from studio.resources.video.config import GenerationConfig, video_config

CAMERA_WORDS = {"static": "static camera", "push-in": "the camera slowly pushes in",
                "pull-out": "the camera slowly pulls out", "pan-left": "the camera pans left",
                "pan-right": "the camera pans right", "tilt-up": "the camera tilts up",
                "tilt-down": "the camera tilts down"}


class MotionRequest(BaseModel):
    """One clip: the keyframe to animate, what moves, how long. Unset sizes come from configs/video.yaml."""

    model_config = ConfigDict(extra="forbid")

    image: Path
    prompt: str = Field(min_length=1, max_length=2000)
    negative_prompt: str | None = None
    seconds: float = Field(gt=0, le=60)
    seed: int = 0
    width: int | None = Field(default=None, ge=32, le=2048, multiple_of=32)
    height: int | None = Field(default=None, ge=32, le=2048, multiple_of=32)
    fps: int | None = Field(default=None, ge=1, le=60)
    steps: int | None = Field(default=None, ge=1, le=200)
    guidance_scale: float | None = Field(default=None, ge=0, le=20)


def motion_prompt(shot: Shot, image_prompt: str) -> str:
    """What moves, then what is seen: LTX-Video follows long, literal descriptions of the action and camera."""
    parts = [shot.action.rstrip("."), f"{shot.emotion} expression" if shot.emotion != "neutral" else "",
             CAMERA_WORDS.get(shot.camera_move, ""), image_prompt]
    return ", ".join(p for p in parts if p)


def clip_frames(seconds: float, fps: int, max_frames: int) -> tuple[int, int]:
    """(frames the shot needs, frames to generate): the smallest 8k+1 ≥ the need, at most `max_frames`."""
    needed = max(1, math.ceil(seconds * fps - 1e-6))  # never shorter than the shot (the segment cuts it)
    return needed, min(max_frames, 8 * math.ceil(max(needed - 1, 1) / 8) + 1)


@dataclass
class LtxHandle:
    """The pipeline and how it is placed: with CPU offload, accelerate's hooks move each component to the GPU
    for its own step, so activating is free and parking only returns the last component to host RAM."""

    pipe: Any
    offload: str

    def to(self, device: str) -> LtxHandle:
        if self.offload == "none":
            self.pipe.to(device)
        elif device == "cpu":
            self.pipe.maybe_free_model_hooks()
        return self


class DiffusersLTXVideoBackend:
    """`video` role backend: keyframe + prompt → a clip (frames at the configured rate), residency-managed."""

    def __init__(self, name: str, entry: ModelEntry, cfg: GenerationConfig | None = None):
        from studio.configs.settings import get_settings

        self.name, self.entry = name, entry
        self.heavy = entry.heavy
        self.cfg = cfg or video_config().generation
        self.device = detect_device(get_settings().gpu.device)
        self._source: Source | None = None

    @property
    def source(self) -> Source:
        if self._source is None:
            self._source = resolve_source(self.entry.source, f"video model '{self.name}'", "configs/models.yaml",
                                          self.entry.revision)
        return self._source

    @property
    def model_id(self) -> str:
        return f"{self.entry.source}@{self.source.revision}"

    def prepare(self, request: MotionRequest) -> MotionRequest:
        """Fill the defaults and check everything that can fail before a model loads (keyframe, weights)."""
        c = self.cfg
        image = Path(request.image).expanduser().resolve()
        if not image.is_file():
            raise StudioError(f"keyframe {image} does not exist: render the shot's keyframe first")
        negative = ", ".join(p for p in (request.negative_prompt, c.negative_prompt) if p)
        req = request.model_copy(update={
            "image": image, "width": request.width or c.width, "height": request.height or c.height,
            "fps": request.fps or c.fps, "steps": request.steps or c.steps, "negative_prompt": negative,
            "guidance_scale": c.guidance_scale if request.guidance_scale is None else request.guidance_scale})
        MotionRequest.model_validate(req.model_dump())
        _ = self.source  # missing folder / uncached HF id → the error now, not after other work
        return req

    def recipe_params(self, request: MotionRequest) -> dict[str, Any]:
        """Everything that changes the clip's bytes except the keyframe, which enters the recipe by content."""
        needed, generated = clip_frames(request.seconds, request.fps, self.cfg.max_frames)
        req = request.model_dump(mode="json", exclude={"image"})
        sampler = self.cfg.model_dump(include={"max_sequence_length", "decode_timestep", "decode_noise_scale"})
        return {"request": req, "frames": needed, "generated_frames": generated, "dtype": self.entry.dtype,
                "sampler": sampler}

    # ------------------------------------------------------------------ loading
    def heavy_model(self) -> HeavyModel:
        return HeavyModel(name=f"{self.name}@{self.source.revision}", load=self._load,
                          est_host_gb=self.entry.vram_gb)

    def _load(self, device: str) -> LtxHandle:
        from diffusers import LTXImageToVideoPipeline
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        diffusers_logging.set_verbosity_error()
        diffusers_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()
        src = self.source
        kwargs: dict[str, Any] = {"dtype": torch_dtype(self.entry.dtype, device), "local_files_only": True,
                                  "use_safetensors": True}
        if not src.local and self.entry.revision:
            kwargs["revision"] = self.entry.revision
        if device.startswith("cuda") and has_variant(src, self.entry.options.get("variant")):
            kwargs["variant"] = self.entry.options["variant"]
        try:
            pipe = LTXImageToVideoPipeline.from_pretrained(src.ref, **kwargs)
        except OSError as e:  # never downloaded at run time: an HF id must be in the local cache
            raise ModelNotAvailableError(
                f"video model '{self.name}' ({self.entry.source}) is not on this host ({str(e).splitlines()[0]}). "
                f"Pre-fetch it with `huggingface-cli download {self.entry.source}`, or point 'source:' in "
                "configs/models.yaml at a local folder.") from None
        if self.cfg.vae_tiling:
            pipe.vae.enable_tiling()
        if self.cfg.vae_slicing:
            pipe.vae.enable_slicing()
        pipe.set_progress_bar_config(disable=True)
        offload = self.cfg.offload if device.startswith("cuda") else "none"
        if offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        elif offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=device)
        else:
            pipe.to(device)
        return LtxHandle(pipe, offload)

    # ------------------------------------------------------------------ rendering
    def generate(self, request: MotionRequest) -> tuple[Any, dict[str, Any]]:
        """The clip's generated frames (uint8, frames × H × W × 3) and what made them."""
        import numpy as np
        import torch

        req = request
        _, n_gen = clip_frames(req.seconds, req.fps, self.cfg.max_frames)
        if self.device == "cpu" and self.cfg.cpu_threads:
            torch.set_num_threads(self.cfg.cpu_threads)
        with get_residency().use(self.heavy_model()) as handle:
            pipe = handle.pipe
            cuda = self.device.startswith("cuda")
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = pipe(image=fit_rgb(str(req.image), req.width, req.height), prompt=req.prompt,
                           negative_prompt=req.negative_prompt or None, width=req.width, height=req.height,
                           num_frames=n_gen, frame_rate=req.fps, num_inference_steps=req.steps,
                           guidance_scale=req.guidance_scale, generator=torch.Generator("cpu").manual_seed(req.seed),
                           max_sequence_length=self.cfg.max_sequence_length,
                           decode_timestep=self.cfg.decode_timestep, decode_noise_scale=self.cfg.decode_noise_scale,
                           output_type="np")
            frames = (np.clip(np.asarray(out.frames[0], dtype=np.float32), 0.0, 1.0) * 255.0).round().astype(np.uint8)
            meta: dict[str, Any] = {
                "model": self.model_id, "device": self.device, "offload": handle.offload,
                "dtype": str(pipe.transformer.dtype).removeprefix("torch."),
                "attention": sorted({type(p).__name__ for p in pipe.transformer.attn_processors.values()}),
                "pipeline_s": round(time.perf_counter() - t0, 4)}
            if cuda:
                meta["peak_vram_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        return frames, meta

    def render(self, request: MotionRequest, out_path: Path) -> dict[str, Any]:
        """Generate the clip and write the shot's frames (held on the last one past the generated length) as a
        lossless, silent clip at `out_path`."""
        from studio.resources.video.animation import pipe_frames_to_clip

        req = request
        needed, _ = clip_frames(req.seconds, req.fps, self.cfg.max_frames)
        frames, meta = self.generate(req)

        def produce(sink: Any) -> None:
            for i in range(needed):
                sink(frames[min(i, len(frames) - 1)].tobytes())

        pipe_frames_to_clip(req.width, req.height, req.fps, needed, produce, Path(out_path))
        return {**meta, "prompt": req.prompt, "seed": req.seed, "fps": req.fps, "width": req.width,
                "height": req.height, "frames": needed, "generated_frames": int(len(frames)),
                "held_frames": max(0, needed - len(frames)), "steps": req.steps}
