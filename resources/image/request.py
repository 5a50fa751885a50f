"""Image generation contracts: the request every backend renders, the backend protocol, prompt assembly.

Light module (no torch): flows and the CLI import it to build and validate requests *before* any model loads.
An `ImageRequest` is backend-neutral — prompt and negative prompt assembled from character presets, LoRAs,
ControlNets, seed, size, and the shot it illustrates (the storyboard backend draws from that). A backend's
`prepare()` fills its own defaults (size, steps, scheduler from configs/sdxl.yaml) and raises a `StudioError`
naming what to change; `render()` writes one PNG.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from studio.configs.errors import StudioError, UnknownNameError
from studio.configs.schema import (
    CharactersConfig,
    LoraRegistry,
    ModelEntry,
    Strict,
    load_config,
    studio_config,
)
from studio.configs.vocabulary import Weather


class ImageRequestError(StudioError):
    """A request that cannot be rendered as asked (raised before any model loads)."""


# --------------------------------------------------------------------------- request
class LoraSpec(BaseModel):
    name: str  # key in configs/lora_registry.yaml
    weight: float = Field(ge=0.0, le=2.0)


class ControlSpec(BaseModel):
    kind: str  # key in configs/controlnet.yaml (canny, depth, openpose, ...)
    image: str  # path of a reference image (preprocessed) or of a ready control map (preprocess=False)
    scale: float | None = Field(default=None, ge=0.0, le=2.0)  # default: the config's conditioning_scale
    preprocess: bool = True


class ImageScene(BaseModel):
    """What the frame shows: the fields of a plan shot that matter for a picture (not duration, effects)."""

    shot_id: int | None = None
    shot_count: int | None = None
    title: str = ""
    action: str = ""
    emotion: str = "neutral"
    location: str = ""
    time_of_day: Literal["dawn", "day", "sunset", "night"] = "day"
    weather: Weather = "clear"
    camera: Literal["wide", "medium", "close-up", "extreme-close-up"] = "medium"
    camera_move: str = "static"
    dialogue_character: str | None = None
    dialogue_line: str | None = None


class ImageRequest(BaseModel):
    prompt: str
    negative_prompt: str = ""
    characters: list[str] = []  # character ids (configs/characters.yaml)
    scene: ImageScene = ImageScene()
    seed: int = Field(default=0, ge=0, lt=2**63)
    width: int | None = None  # None: the backend's default
    height: int | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    scheduler: str | None = None
    loras: list[LoraSpec] = []
    controls: list[ControlSpec] = []
    init_image: str | None = None  # image-to-image (revisions)
    strength: float | None = Field(default=None, gt=0.0, le=1.0)


def check_request(req: ImageRequest) -> None:
    """Checks every backend shares; raises `ImageRequestError` naming the field to change."""
    for axis in ("width", "height"):
        v = getattr(req, axis)
        if v is not None and (v <= 0 or v % 8):
            raise ImageRequestError(f"{axis} {v} is not a positive multiple of 8 (latent diffusion works on "
                                    f"8-pixel blocks); use e.g. {max(8, round((v or 8) / 8) * 8)}")
    if req.steps is not None and req.steps < 1:
        raise ImageRequestError(f"steps must be ≥ 1 (got {req.steps})")
    loras = studio_config().loras.loras
    for spec in req.loras:
        if spec.name not in loras:
            raise UnknownNameError(f"unknown LoRA '{spec.name}'. Registered LoRAs: "
                                   f"{', '.join(sorted(loras)) or 'none'}. Add it to configs/lora_registry.yaml.")
    chars = studio_config().characters
    for cid in req.characters:
        chars.resolve(cid)
    for path, what in [(c.image, f"control image for '{c.kind}'") for c in req.controls] + (
            [(req.init_image, "init image")] if req.init_image else []):
        if not Path(path).expanduser().is_file():
            raise ImageRequestError(f"{what} {path} does not exist")


# --------------------------------------------------------------------------- backend protocol
@runtime_checkable
class ImageBackend(Protocol):
    name: str  # model name in configs/models.yaml
    entry: ModelEntry  # its models.yaml entry (entry.backend names the registry backend)
    heavy: bool
    model_id: str  # id@revision: part of every recipe

    def prepare(self, request: ImageRequest) -> ImageRequest:
        """Fill this backend's defaults and validate — cheap, never loads a model."""

    def recipe_params(self, request: ImageRequest) -> dict[str, Any]:
        """Exactly the prepared request's fields that determine this backend's bytes."""

    def input_files(self, request: ImageRequest) -> list[Path]:
        """Files whose content determines the output (reference art, control images, LoRA weights)."""

    def render(self, request: ImageRequest, out_path: Path) -> dict[str, Any]:
        """Write one PNG to `out_path`; return provenance for the artifact sidecar."""


# --------------------------------------------------------------------------- image configs
SchedulerName = Literal["default", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddim", "unipc"]


class SdxlConfig(Strict):
    width: int = 1024
    height: int = 1024
    steps: int = Field(default=35, ge=1, le=200)
    guidance_scale: float = Field(default=7.5, ge=0.0, le=30.0)
    scheduler: SchedulerName = "euler"
    negative_prompt: str = ""
    img2img_strength: float = Field(default=0.55, gt=0.0, le=1.0)
    variant: str | None = "fp16"  # weight-file variant of HF repos (fp16 halves the download and load)
    vae: str | None = None  # replacement VAE (HF id or path), e.g. madebyollin/sdxl-vae-fp16-fix
    device_map: bool = True  # load straight onto the GPU (faster than .to("cuda")); ignored on CPU
    cpu_threads: int | None = None  # torch threads when rendering on CPU (None: torch's default)
    # How the pipeline parks in host RAM between heavy tasks on CUDA: `move` = .to("cpu") (pageable memory);
    # `pinned` = copy into page-locked buffers allocated once, so activation is a fast DMA copy back.
    park: Literal["move", "pinned"] = "move"


class ControlNetEntry(Strict):
    source: str  # HF id or local path
    variant: str | None = None
    revision: str | None = None
    conditioning_scale: float = Field(default=0.5, ge=0.0, le=2.0)
    preprocessor: Literal["canny", "depth", "openpose", "none"] = "none"
    canny_low: int = 100
    canny_high: int = 200
    preprocessor_model: str | None = None  # depth: a transformers depth-estimation model (HF id or path)


class ControlNetConfig(Strict):
    controlnets: dict[str, ControlNetEntry] = {}


def sdxl_config() -> SdxlConfig:
    return load_config("sdxl.yaml", SdxlConfig, missing_ok=True)


def controlnet_config() -> ControlNetConfig:
    return load_config("controlnet.yaml", ControlNetConfig, missing_ok=True)


# --------------------------------------------------------------------------- prompt assembly
_TIME_LIGHT = {"dawn": "soft dawn light", "day": "bright daylight", "sunset": "warm sunset light",
               "night": "moonlit night"}
_WEATHER_LOOK = {"cloudy": "overcast sky", "rain": "pouring rain, wet", "snow": "falling snow, snowy ground",
                 "storm": "thunderstorm, dark storm clouds, lashing rain", "fog": "thick fog", "wind": "strong wind"}
_CAMERA = {"wide": "wide shot", "medium": "medium shot", "close-up": "close-up",
           "extreme-close-up": "extreme close-up"}


def _dedupe(parts: list[str]) -> list[str]:
    seen, out = set(), []
    for p in parts:
        p = re.sub(r"\s+", " ", p).strip(" ,")
        if p and p.lower() not in seen:
            seen.add(p.lower())
            out.append(p)
    return out


def assemble_prompt(characters: list[str], scene: ImageScene, loras: list[LoraSpec] = (),
                    extra: str = "", chars: CharactersConfig | None = None,
                    registry: LoraRegistry | None = None) -> tuple[str, str]:
    """(prompt, negative prompt) from character presets, the scene and the LoRAs' trigger words.

    Order matters: CLIP reads at most 77 tokens, so identity (triggers, character tokens) and the action come
    first and the style tokens last.
    """
    chars = chars or studio_config().characters
    registry = registry or studio_config().loras
    parts: list[str] = []
    for spec in loras:
        entry = registry.loras.get(spec.name)
        if entry and spec.weight > 0:
            parts += entry.trigger_words
    negatives = [chars.negative_prompt]
    for cid in characters:
        _, preset = chars.resolve(cid)
        parts += preset.prompt_tokens
        negatives.append(preset.negative_prompt)
    parts += [scene.action, extra]
    if scene.emotion and scene.emotion != "neutral":
        parts.append(f"{scene.emotion} expression")
    parts.append(_CAMERA.get(scene.camera, scene.camera))
    if scene.location:
        parts.append(scene.location)
    parts.append(_TIME_LIGHT.get(scene.time_of_day, ""))
    parts.append(_WEATHER_LOOK.get(scene.weather, ""))
    parts += chars.style_tokens
    return ", ".join(_dedupe(parts)), ", ".join(_dedupe(", ".join(negatives).split(",")))


def character_loras(characters: list[str], weight_override: float | None = None,
                    chars: CharactersConfig | None = None, registry: LoraRegistry | None = None
                    ) -> list[LoraSpec]:
    """Each character's own LoRA at its preset weight (or the registry default, or `weight_override`)."""
    chars = chars or studio_config().characters
    registry = registry or studio_config().loras
    specs: list[LoraSpec] = []
    for cid in characters:
        _, preset = chars.resolve(cid)
        if not preset.lora:
            continue
        if preset.lora not in registry.loras:
            raise UnknownNameError(f"character '{cid}' names LoRA '{preset.lora}', which is not in "
                                   "configs/lora_registry.yaml")
        weight = weight_override if weight_override is not None else (
            preset.lora_weight if preset.lora_weight is not None else registry.loras[preset.lora].weight)
        if all(s.name != preset.lora for s in specs):
            specs.append(LoraSpec(name=preset.lora, weight=weight))
    return specs


def scene_from_shot(shot: Any, plan: Any | None = None) -> ImageScene:
    dialogue = getattr(shot, "dialogue", None)
    return ImageScene(
        shot_id=shot.id, shot_count=len(plan.shots) if plan is not None else None,
        title=getattr(plan, "title", "") or "", action=shot.action, emotion=shot.emotion,
        location=shot.location, time_of_day=shot.time_of_day, weather=getattr(shot, "weather", "clear"),
        camera=shot.camera, camera_move=shot.camera_move,
        dialogue_character=dialogue.character if dialogue else None, dialogue_line=dialogue.line if dialogue else None)


def image_request_from_shot(shot: Any, plan: Any | None, seed: int, width: int | None = None,
                            height: int | None = None, loras: list[LoraSpec] | None = None,
                            controls: list[ControlSpec] | None = None, lora_weight: float | None = None
                            ) -> ImageRequest:
    """The keyframe request for one plan shot (configs/vocabulary.py `Shot`): characters resolved to ids, their
    LoRAs at preset weights (plus `loras`), the prompt assembled from presets and the shot."""
    chars = studio_config().characters
    ids = [chars.resolve(c)[0] for c in shot.characters]
    scene = scene_from_shot(shot, plan)
    if scene.dialogue_character:
        try:
            scene.dialogue_character = chars.resolve(scene.dialogue_character)[0]
        except UnknownNameError:
            pass  # the line is still shown, under the name the plan gave
    specs = character_loras(ids, lora_weight) + [s for s in (loras or []) if s.name]
    prompt, negative = assemble_prompt(ids, scene, specs)
    req = ImageRequest(prompt=prompt, negative_prompt=negative, characters=ids, scene=scene, seed=seed,
                       width=width, height=height, loras=specs, controls=controls or [])
    check_request(req)
    return req


# --------------------------------------------------------------------------- batch files
class BatchPrompt(Strict):
    """One prompt of a batch: an action line plus the optional shot fields that shape the picture."""

    action: str = Field(min_length=1, max_length=200)
    location: str = ""
    time_of_day: Literal["dawn", "day", "sunset", "night"] = "day"
    camera: Literal["wide", "medium", "close-up", "extreme-close-up"] = "medium"
    camera_move: str = "static"
    emotion: str = "neutral"


class ConsistencySpec(Strict):
    enabled: bool = True
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # default: the face embedder's own
    attempts: int = Field(default=3, ge=1, le=10)  # renders per item, the first one included


class BatchSpec(Strict):
    """A batch file (examples/batch_images.yaml): characters × prompts × seeds × LoRA weights."""

    name: str = Field(default="batch", pattern=r"^[a-z0-9][a-z0-9-]*$")
    model: str | None = None  # models.yaml name; default: the profile's image model
    profile: Literal["preview", "gpu", "auto"] | None = None
    characters: list[str] = Field(min_length=1)
    prompts: list[str | BatchPrompt] = Field(min_length=1)
    seeds: list[int] = Field(default=[0], min_length=1)
    lora_weights: list[float] | None = None  # each character's own LoRA; None: its preset weight
    loras: list[LoraSpec] = []  # always-on extra adapters (style, background)
    controls: list[ControlSpec] = []  # relative image paths: relative to the batch file
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    scheduler: str | None = None
    consistency: ConsistencySpec = ConsistencySpec()
    sheet_columns: int | None = Field(default=None, ge=1, le=12)


class BatchItem(BaseModel):
    index: int
    character: str
    prompt: str
    seed: int
    lora_weight: float | None
    request: ImageRequest


def load_batch(source: str | Path | dict) -> tuple[BatchSpec, Path]:
    """A validated batch (file path or mapping) and the folder its relative paths are relative to."""
    from studio.configs.errors import ConfigError
    from studio.configs.schema import validate_file

    if isinstance(source, dict):
        try:
            return BatchSpec.model_validate(source), Path.cwd()
        except Exception as e:  # pydantic ValidationError → the same readable form as config files
            from pydantic import ValidationError

            from studio.configs.schema import _format_validation

            if isinstance(e, ValidationError):
                raise ConfigError("(batch parameters)", _format_validation(e)) from None
            raise
    path = Path(source).expanduser().resolve()
    return validate_file(path, BatchSpec), path.parent


def expand_batch(spec: BatchSpec, base_dir: Path) -> list[BatchItem]:
    """Every (character, prompt, seed, LoRA weight) combination as a validated request, in a stable order.

    A character without its own LoRA renders once per prompt and seed (the weight axis does not apply)."""
    from studio.configs.vocabulary import Shot

    chars = studio_config().characters
    controls = [c.model_copy(update={"image": str((base_dir / Path(c.image).expanduser()).resolve())})
                for c in spec.controls]
    items: list[BatchItem] = []
    for character in spec.characters:
        cid, preset = chars.resolve(character)
        weights: list[float | None] = list(spec.lora_weights) if (preset.lora and spec.lora_weights) else [None]
        for prompt in spec.prompts:
            p = BatchPrompt(action=prompt) if isinstance(prompt, str) else prompt
            shot = Shot(id=1, source="generate", characters=[cid], **p.model_dump())
            for seed in spec.seeds:
                for w in weights:
                    req = image_request_from_shot(shot, None, seed, spec.width, spec.height, loras=spec.loras,
                                                  controls=controls, lora_weight=w)
                    req.scene.shot_id, req.scene.title = None, spec.name
                    req = req.model_copy(update={"steps": spec.steps, "guidance_scale": spec.guidance_scale,
                                                 "scheduler": spec.scheduler})
                    items.append(BatchItem(index=len(items), character=cid, prompt=p.action, seed=seed,
                                           lora_weight=w, request=req))
    return items
