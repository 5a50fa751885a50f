"""Explicit backend registry: (modality, backend name) → "module:Class", imported lazily.

Importing flows never imports torch: a backend's module is imported only when `load_backend` is called.
Each backend class takes `(name: str, entry: ModelEntry)` and exposes `heavy: bool` and `model_id: str`
(id@revision, part of every recipe it produces).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from studio.configs.errors import StudioError, UnknownNameError
from studio.configs.schema import ModelEntry, studio_config
from studio.resources.runtime.vram import cuda_available

BACKENDS: dict[str, dict[str, str]] = {
    "image": {
        "storyboard": "studio.resources.image.storyboard.frame:StoryboardImageBackend",
        "diffusers-sdxl": "studio.resources.image.sdxl:DiffusersSDXLBackend",
    },
    "voice": {
        "piper": "studio.resources.voice.piper:PiperVoiceBackend",
        "gpt-sovits": "studio.resources.voice.gptsovits:GPTSoVITSVoiceBackend",
        "hibari": "studio.resources.voice.hibari:HibariVoiceBackend",
        "espeak": "studio.resources.voice.espeak:EspeakVoiceBackend",
    },
    "llm": {
        "llama-cpp": "studio.resources.llm.servers:LlamaCppEndpoint",
        "vllm": "studio.resources.llm.servers:VLLMEndpoint",
        "openai-compatible": "studio.resources.llm.client:OpenAICompatibleEndpoint",
    },
    "judge": {
        "metric": "studio.resources.judge.metric:MetricJudge",
        "vlm": "studio.resources.judge.vlm:VLMJudge",
    },
    "embedder": {
        "sentence-transformers": "studio.resources.knowledge.store:SentenceTransformerEmbedder",
    },
    "face": {
        "mediapipe": "studio.resources.image.faces:MediapipeFaceEmbedder",
        "insightface": "studio.resources.image.faces:InsightFaceEmbedder",
    },
    "lipsync": {
        "wav2lip": "studio.resources.video.lipsync:Wav2LipBackend",
    },
    "video": {
        "diffusers-ltx-i2v": "studio.resources.video.generation:DiffusersLTXVideoBackend",
    },
    "segmenter": {
        "sam2": "studio.resources.image.segmentation:Sam2SegmenterBackend",
    },
}


class BackendError(StudioError):
    pass


def import_backend_class(modality: str, backend: str) -> type:
    try:
        target = BACKENDS[modality][backend]
    except KeyError:
        known = ", ".join(sorted(BACKENDS.get(modality, {}))) or "none"
        raise UnknownNameError(f"unknown {modality} backend '{backend}' (known: {known}); "
                               "fix 'backend:' in configs/models.yaml") from None
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise BackendError(f"{modality} backend '{backend}' needs a package that is not installed ({e.name}). "
                           "Install the matching extra (e.g. `pip install -e .[gpu]`) or pick another "
                           "backend in configs/models.yaml.") from e
    return getattr(module, cls_name)


# Roles whose stage has a fallback (motion → the still with its camera move, SAM2 cut-out → the drawn figure or
# uncut footage, Wav2Lip → lip flaps): their weights never decide `auto`, and a missing one is a warning.
OPTIONAL_ROLES = frozenset({"video", "segmenter", "lipsync"})


def resolve_profile(profile: str | None = None) -> str:
    """`auto` → `gpu` only when CUDA is present and the gpu profile's required models (all but
    `OPTIONAL_ROLES`) are on this host."""
    from studio.configs.settings import get_settings

    profile = profile or get_settings().profile
    if profile != "auto":
        return profile
    cfg = studio_config().models
    if "gpu" not in cfg.profiles:
        return "preview"
    if not cuda_available():
        return "preview"
    for role, name in cfg.profiles["gpu"].model_dump().items():
        entry = cfg.models.get(name) if name and role not in OPTIONAL_ROLES else None
        if entry is not None and entry.heavy and entry.source and not _source_available(entry.source):
            return "preview"
    return "gpu"


def _source_available(source: str) -> bool:
    from pathlib import Path

    if Path(source).expanduser().exists():
        return True
    try:  # a Hugging Face id counts when it is in the local cache (we never download at run time)
        from huggingface_hub import snapshot_download

        snapshot_download(source, local_files_only=True)
        return True
    except Exception:
        return False


def model_entry(role: str, profile: str | None = None) -> tuple[str, ModelEntry]:
    cfg = studio_config().models
    prof = resolve_profile(profile)
    if prof not in cfg.profiles:
        raise StudioError(f"profile '{prof}' is not defined in configs/models.yaml (known: "
                          f"{', '.join(cfg.profiles)})")
    name = getattr(cfg.profiles[prof], role, None)
    if not name:
        raise StudioError(f"profile '{prof}' names no '{role}' model in configs/models.yaml")
    return name, cfg.models[name]


def load_backend(role: str, profile: str | None = None, name: str | None = None, **kwargs: Any) -> Any:
    """Instantiate the backend the profile (or an explicit model name) selects for a role."""
    if name is None:
        name, entry = model_entry(role, profile)
    else:
        try:
            entry = studio_config().models.models[name]
        except KeyError:
            known = ", ".join(sorted(studio_config().models.models))
            raise UnknownNameError(f"unknown model '{name}' (known: {known})") from None
    cls = import_backend_class(entry.modality, entry.backend)
    return cls(name, entry, **kwargs)


def optional_backend(role: str, make: Callable[[], Any], fallback: str) -> Any:
    """The backend of an optional role (`OPTIONAL_ROLES`) with its weights checked, or None — with a warning that
    names what to pre-fetch (the error's own text) and what the stage does instead — when they are missing.
    `make` returns the backend, or None where the profile names no model for the role."""
    import logging

    from studio.resources.runtime.model_sources import ModelNotAvailableError

    try:
        backend = make()
        if backend is not None:
            _ = backend.model_id  # resolves the weights: a missing folder or uncached HF id raises here
        return backend
    except ModelNotAvailableError as e:
        logging.getLogger("studio.models").warning("%s: %s; %s instead", role, e, fallback)
        return None
