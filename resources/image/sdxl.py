"""Diffusers SDXL backend (profile `gpu`): text-to-image, image-to-image, LoRA adapters, ControlNets.

Weights come by Hugging Face id or local folder and are never downloaded at run time where the studio is
offline (`HF_HUB_OFFLINE=1`) or the source is a folder: `from_pretrained(..., local_files_only=True)`.
On CUDA: fp16/bf16 from models.yaml, PyTorch SDPA attention (diffusers' default processor; never xformers),
`device_map` loading straight onto the GPU. The pipeline is a heavy model of the residency manager: loaded
once per process, parked in host RAM between heavy tasks, activated by a copy.

Every check that can fail (sizes, LoRA and ControlNet names, model paths, preprocessors) runs in `prepare()`,
before anything loads. Same recipe → same bytes on the same machine: the noise comes from a seeded CPU
generator and the PNG carries no timestamp.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.configs.errors import StudioError
from studio.configs.schema import ModelEntry, studio_config
from studio.resources.image.control import control_map, fit_rgb
from studio.resources.image.request import (
    ControlSpec,
    ImageRequest,
    check_request,
    controlnet_config,
    sdxl_config,
)
from studio.resources.runtime.model_sources import (
    Source,
    has_variant,
    resolve_source,
)
from studio.resources.runtime.residency import HeavyModel, detect_device, get_residency, torch_dtype


# --------------------------------------------------------------------------- the loaded model
@dataclass
class SdxlHandle:
    """The pipeline plus the ControlNets loaded so far; moves as one between GPU and host RAM."""

    pipe: Any
    controlnets: dict[str, Any] = field(default_factory=dict)
    derived: dict[tuple, Any] = field(default_factory=dict)  # from_pipe variants sharing the same modules
    pinned: dict[tuple[int, str], Any] = field(default_factory=dict)  # host buffers of PinnedSwap

    def to(self, device: str) -> SdxlHandle:
        self.pipe.to(device)
        for cn in self.controlnets.values():
            cn.to(device)
        return self


class PinnedSwap:
    """Park by copying every weight into a page-locked host buffer (allocated on the first park, reused after)
    and freeing the GPU copy; activate by copying back. Pinned copies run at DMA speed, several times faster
    than `.to("cuda")` from pageable memory, which is what keeps a model switch under a second."""

    @staticmethod
    def _tensors(handle: SdxlHandle):
        import torch

        modules = [m for m in handle.pipe.components.values() if isinstance(m, torch.nn.Module)]
        for m in [*modules, *handle.controlnets.values()]:
            for sub in m.modules():
                for name, p in sub._parameters.items():
                    if p is not None:
                        yield sub, name, p, True
                for name, b in sub._buffers.items():
                    if b is not None:
                        yield sub, name, b, False

    @staticmethod
    def park(handle: SdxlHandle) -> SdxlHandle:
        import torch

        store = handle.pinned
        moves = []
        for sub, name, t, is_param in PinnedSwap._tensors(handle):
            if t.device.type == "cpu":
                continue
            host = store.get((id(sub), name))
            if host is None or host.shape != t.shape or host.dtype != t.dtype:
                host = store[(id(sub), name)] = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
            host.copy_(t.data, non_blocking=True)
            moves.append((sub, name, host, is_param))
        torch.cuda.synchronize()
        for sub, name, host, is_param in moves:
            if is_param:
                sub._parameters[name].data = host
            else:
                sub._buffers[name] = host
        return handle

    @staticmethod
    def activate(handle: SdxlHandle, device: str) -> SdxlHandle:
        import torch

        for sub, name, t, is_param in list(PinnedSwap._tensors(handle)):
            if t.device.type != "cpu":
                continue
            gpu = torch.empty(t.shape, dtype=t.dtype, device=device)
            gpu.copy_(t.data, non_blocking=t.is_pinned())
            if is_param:
                sub._parameters[name].data = gpu
            else:
                sub._buffers[name] = gpu
        torch.cuda.synchronize()
        return handle


_SCHEDULERS = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "ddim": ("DDIMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
}


class DiffusersSDXLBackend:
    def __init__(self, name: str, entry: ModelEntry):
        self.name, self.entry = name, entry
        self.heavy = entry.heavy
        self.cfg = sdxl_config()
        self.device = detect_device(_settings().gpu.device)
        self._source: Source | None = None

    # ------------------------------------------------------------------ cheap checks
    @property
    def source(self) -> Source:
        if self._source is None:
            self._source = resolve_source(self.entry.source, f"SDXL model '{self.name}'", "configs/models.yaml",
                                          self.entry.revision)
        return self._source

    @property
    def model_id(self) -> str:
        """source@revision: the cached snapshot's commit for HF ids, a content fingerprint for folders."""
        return f"{self.entry.source}@{self.source.revision}"

    def prepare(self, request: ImageRequest) -> ImageRequest:
        check_request(request)
        c = self.cfg
        negative = ", ".join(p for p in (request.negative_prompt, c.negative_prompt) if p)
        req = request.model_copy(update={
            "width": request.width or c.width, "height": request.height or c.height,
            "steps": request.steps or c.steps,
            "guidance_scale": c.guidance_scale if request.guidance_scale is None else request.guidance_scale,
            "scheduler": request.scheduler or c.scheduler, "negative_prompt": negative,
            "strength": (request.strength or c.img2img_strength) if request.init_image else None,
            "controls": [self._control_defaults(s) for s in request.controls]})
        check_request(req)
        if req.scheduler not in _SCHEDULERS and req.scheduler != "default":
            raise StudioError(f"unknown scheduler '{req.scheduler}' (known: default, {', '.join(_SCHEDULERS)})")
        _ = self.source  # missing model path / uncached HF id → error now, not after a model load
        for spec in req.loras:
            self._lora_source(spec.name)
        for spec in req.controls:
            self._controlnet_source(spec.kind)
            self._check_preprocessor(spec)
        return req

    def _control_defaults(self, spec: ControlSpec) -> ControlSpec:
        cfg = controlnet_config().controlnets
        if spec.kind not in cfg:
            raise StudioError(f"unknown ControlNet '{spec.kind}' (configured: {', '.join(sorted(cfg)) or 'none'}); "
                              "add it to configs/controlnet.yaml")
        scale = cfg[spec.kind].conditioning_scale if spec.scale is None else spec.scale
        return spec.model_copy(update={"scale": scale, "image": str(Path(spec.image).expanduser().resolve())})

    def _lora_source(self, name: str) -> Source:
        entry = studio_config().loras.loras[name]  # presence checked by check_request
        return resolve_source(entry.source, f"LoRA '{name}'", "configs/lora_registry.yaml", entry.revision)

    def _controlnet_source(self, kind: str) -> Source:
        e = controlnet_config().controlnets[kind]
        return resolve_source(e.source, f"ControlNet '{kind}'", "configs/controlnet.yaml", e.revision)

    def _check_preprocessor(self, spec: ControlSpec) -> None:
        e = controlnet_config().controlnets[spec.kind]
        if not spec.preprocess or e.preprocessor in ("canny", "none"):
            return
        if e.preprocessor == "depth":
            resolve_source(e.preprocessor_model, f"depth preprocessor of ControlNet '{spec.kind}'",
                           "configs/controlnet.yaml")
        elif e.preprocessor == "openpose":
            import importlib.util

            if importlib.util.find_spec("controlnet_aux") is None:
                raise StudioError(f"ControlNet '{spec.kind}' needs an openpose preprocessor: install "
                                  "`controlnet_aux` with its annotator weights, or pass a ready pose image with "
                                  "`preprocess: false`")

    def recipe_params(self, request: ImageRequest) -> dict[str, Any]:
        loras = [{"name": s.name, "weight": s.weight, "weights": self._lora_source(s.name).revision}
                 for s in request.loras]
        controls = [{"kind": s.kind, "scale": s.scale, "preprocess": s.preprocess,
                     "model": self._controlnet_source(s.kind).revision,
                     "preprocessor": controlnet_config().controlnets[s.kind].model_dump(
                         include={"preprocessor", "canny_low", "canny_high", "preprocessor_model"})}
                    for s in request.controls]
        req = request.model_dump(mode="json", include={"prompt", "negative_prompt", "seed", "width", "height",
                                                       "steps", "guidance_scale", "scheduler", "strength"})
        return {"request": req, "loras": loras, "controls": controls, "dtype": self.entry.dtype,
                "vae": self.cfg.vae, "img2img": request.init_image is not None}

    def input_files(self, request: ImageRequest) -> list[Path]:
        files = [Path(s.image) for s in request.controls]
        return files + ([Path(request.init_image).expanduser()] if request.init_image else [])

    # ------------------------------------------------------------------ loading
    def heavy_model(self) -> HeavyModel:
        model = HeavyModel(name=f"{self.name}@{self.source.revision}", load=self._load,
                           est_host_gb=self.entry.vram_gb)
        if self.cfg.park == "pinned" and self.device.startswith("cuda"):
            model.park, model.activate = PinnedSwap.park, PinnedSwap.activate
        return model

    def _load(self, device: str) -> SdxlHandle:
        import torch
        from diffusers import AutoencoderKL, StableDiffusionXLPipeline
        from diffusers.utils import logging as diffusers_logging

        # Progress bars and "no LoRA keys for the text encoder" notices are noise in task logs.
        from transformers.utils import logging as transformers_logging

        diffusers_logging.set_verbosity_error()
        diffusers_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()
        src = self.source
        kwargs: dict[str, Any] = {"dtype": torch_dtype(self.entry.dtype, device),
                                  "local_files_only": src.local_files_only, "use_safetensors": True}
        if not src.local and self.entry.revision:
            kwargs["revision"] = self.entry.revision
        if device.startswith("cuda") and has_variant(src, self.cfg.variant):
            kwargs["variant"] = self.cfg.variant
        # diffusers' device_map takes "cuda" (= the current device) but not "cuda:N": other GPUs use .to().
        mapped = device in ("cuda", "cuda:0") and self.cfg.device_map
        if mapped:
            kwargs["device_map"] = "cuda"
        pipe = StableDiffusionXLPipeline.from_pretrained(src.ref, **kwargs)
        if self.cfg.vae:
            vae_src = resolve_source(self.cfg.vae, "replacement VAE", "configs/sdxl.yaml")
            pipe.vae = AutoencoderKL.from_pretrained(vae_src.ref, dtype=kwargs["dtype"],
                                                     local_files_only=vae_src.local_files_only)
        if not mapped or self.cfg.vae:
            pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        torch.backends.cuda.matmul.allow_tf32 = True
        return SdxlHandle(pipe)

    def _controlnet(self, handle: SdxlHandle, kind: str, device: str) -> Any:
        if kind not in handle.controlnets:
            from diffusers import ControlNetModel

            src = self._controlnet_source(kind)
            e = controlnet_config().controlnets[kind]
            kw: dict[str, Any] = {"dtype": handle.pipe.unet.dtype, "local_files_only": src.local_files_only}
            if device.startswith("cuda") and has_variant(src, e.variant):
                kw["variant"] = e.variant
            handle.controlnets[kind] = ControlNetModel.from_pretrained(src.ref, **kw).to(device)
        return handle.controlnets[kind]

    def _set_loras(self, pipe: Any, request: ImageRequest) -> None:
        """Load the request's adapters (once per process), delete others, set weights; none → unload all."""
        wanted = {s.name: s.weight for s in request.loras}
        loaded = set(pipe.get_list_adapters().get("unet", [])) if hasattr(pipe, "get_list_adapters") else set()
        if not wanted:
            if loaded:
                pipe.unload_lora_weights()
            return
        stale = sorted(loaded - set(wanted))
        if stale:
            pipe.delete_adapters(stale)
        for name in wanted:
            if name not in loaded:
                src = self._lora_source(name)
                entry = studio_config().loras.loras[name]
                path = Path(src.ref)
                if src.local and path.is_file():
                    pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=name)
                else:
                    pipe.load_lora_weights(src.ref, weight_name=entry.weight_name, adapter_name=name,
                                           local_files_only=src.local_files_only)
        pipe.set_adapters(list(wanted), adapter_weights=list(wanted.values()))

    def _set_scheduler(self, pipe: Any, name: str, handle: SdxlHandle) -> None:
        import diffusers

        base = handle.derived.setdefault(("scheduler-default",), pipe.scheduler)
        if name == "default":
            pipe.scheduler = base
            return
        cls_name, extra = _SCHEDULERS[name]
        pipe.scheduler = getattr(diffusers, cls_name).from_config(base.config, **extra)

    # ------------------------------------------------------------------ rendering
    def render(self, request: ImageRequest, out_path: Path) -> dict[str, Any]:
        import torch

        from studio.resources.image.storyboard.frame import save_png

        req = request
        if self.device == "cpu" and self.cfg.cpu_threads:
            torch.set_num_threads(self.cfg.cpu_threads)
        with get_residency().use(self.heavy_model()) as handle:
            device = self.device
            self._set_loras(handle.pipe, req)
            pipe = self._pipeline_for(handle, req, device)
            self._set_scheduler(pipe, req.scheduler or "default", handle)
            kwargs: dict[str, Any] = {
                "prompt": req.prompt, "negative_prompt": req.negative_prompt or None,
                "num_inference_steps": req.steps, "guidance_scale": req.guidance_scale,
                "generator": torch.Generator("cpu").manual_seed(req.seed), "output_type": "pil"}
            if req.init_image:
                kwargs["image"] = fit_rgb(req.init_image, req.width, req.height)
                kwargs["strength"] = req.strength
            else:
                kwargs.update(width=req.width, height=req.height)
            if req.controls:
                maps = [control_map(s, req.width, req.height) for s in req.controls]
                scales = [s.scale for s in req.controls]
                key = "control_image" if req.init_image else "image"
                kwargs[key] = maps if len(maps) > 1 else maps[0]
                kwargs["controlnet_conditioning_scale"] = scales if len(scales) > 1 else scales[0]
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            with torch.inference_mode():
                image = pipe(**kwargs).images[0]
            pipeline_s = time.perf_counter() - t0
            meta: dict[str, Any] = {
                "prompt": req.prompt, "negative_prompt": req.negative_prompt, "seed": req.seed,
                "loras": [s.model_dump() for s in req.loras], "controlnets": [s.model_dump() for s in req.controls],
                "model": self.model_id, "device": device, "dtype": str(pipe.unet.dtype).removeprefix("torch."),
                "attention": sorted({type(p).__name__ for p in pipe.unet.attn_processors.values()}),
                "scheduler": type(pipe.scheduler).__name__, "pipeline_s": round(pipeline_s, 4)}
            if device.startswith("cuda"):
                meta["peak_vram_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        save_png(image, out_path, {"parameters": f"{req.prompt}\nNegative prompt: {req.negative_prompt}\n"
                                                 f"Steps: {req.steps}, Seed: {req.seed}, Model: {self.model_id}"})
        return meta

    def _pipeline_for(self, handle: SdxlHandle, req: ImageRequest, device: str) -> Any:
        import diffusers

        kinds = tuple(s.kind for s in req.controls)
        img2img = bool(req.init_image)
        key = (kinds, img2img)
        if key == ((), False):
            return handle.pipe
        if key not in handle.derived:
            if kinds:
                cls = diffusers.StableDiffusionXLControlNetImg2ImgPipeline if img2img \
                    else diffusers.StableDiffusionXLControlNetPipeline
                cns = [self._controlnet(handle, k, device) for k in kinds]
                derived = cls.from_pipe(handle.pipe, controlnet=cns if len(cns) > 1 else cns[0])
            else:
                derived = diffusers.StableDiffusionXLImg2ImgPipeline.from_pipe(handle.pipe)
            derived.set_progress_bar_config(disable=True)
            handle.derived[key] = derived
        return handle.derived[key]


def _settings():
    from studio.configs.settings import get_settings

    return get_settings()
