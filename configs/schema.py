"""Validated YAML configs. Every file under `configs/` has a pydantic model; a broken file raises
`ConfigError` naming the file, the field and what is expected — before anything is written or loaded."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from studio.configs.errors import ConfigError, UnknownNameError
from studio.configs.settings import get_settings

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _format_validation(err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = e.get("input")
        got_s = repr(got) if not isinstance(got, dict | list) else type(got).__name__
        out.append(f"field '{loc}': {e['msg']} (got {got_s[:80]})")
    return out


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, ["file not found: create it or set STUDIO_CONFIG_DIR to a folder that has it"])
    except OSError as e:
        raise ConfigError(path, [f"cannot read the file: {e}"])
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(path, [f"not valid YAML{where}: {getattr(e, 'problem', e)}"])


def validate_file(path: Path, model: type[M]) -> M:
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, [f"expected a mapping at the top level, got {type(data).__name__}"])
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(path, _format_validation(e)) from None


def config_path(name: str) -> Path:
    return get_settings().configs_path / name


def load_config(name: str, model: type[M], missing_ok: bool = False) -> M:
    """The one loader of the studio's YAML: `configs/<name>` (or the same file under STUDIO_CONFIG_DIR),
    validated, cached per (file, modification time, model) so an edited file is re-read and an unchanged one
    is parsed once per process. `missing_ok`: an absent file gives the model's defaults. Treat the result as
    read-only (it is shared)."""
    path = config_path(name)
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        if missing_ok:
            return model()
        stamp = 0  # validate_file says which file is missing and what to do
    except OSError as e:
        raise ConfigError(path, [f"cannot read the file: {e}"]) from None
    return _load_cached(str(path), stamp, model)


@functools.lru_cache(maxsize=64)
def _load_cached(path: str, _stamp: int, model: type[M]) -> M:
    return validate_file(Path(path), model)


# --------------------------------------------------------------------------- characters.yaml
class CharacterPreset(Strict):
    display_name: str
    description: str
    prompt_tokens: list[str] = Field(min_length=1)
    negative_prompt: str = ""
    lora: str | None = None
    lora_weight: float | None = Field(default=None, ge=0.0, le=2.0)
    voice: str | None = None  # key in character_voices.yaml; default: the character's own name
    reference_images: list[str] = []  # paths relative to the knowledge pack or absolute
    color: str = "#4a7bd0"  # storyboard silhouette/label colour
    aliases: list[str] = []


class CharactersConfig(Strict):
    style_tokens: list[str] = ["pixar style 3d animation", "soft global illumination", "expressive faces"]
    negative_prompt: str = "blurry, lowres, deformed, extra limbs, text, watermark"
    characters: dict[str, CharacterPreset] = Field(min_length=1)

    @model_validator(mode="after")
    def _keys_are_ids(self) -> CharactersConfig:
        for key in self.characters:
            if not key.replace("_", "").isalnum() or key != key.lower():
                raise ValueError(f"character id '{key}' must be lowercase letters, digits or '_'")
        return self

    def resolve(self, name: str) -> tuple[str, CharacterPreset]:
        """Find a character by id, display name or alias (case-insensitive)."""
        wanted = name.strip().lower()
        for key, c in self.characters.items():
            names = {key, c.display_name.lower(), *(a.lower() for a in c.aliases)}
            if wanted in names:
                return key, c
        known = ", ".join(sorted(self.characters))
        raise UnknownNameError(f"unknown character '{name}'. Known characters: {known}. "
                               "Add it to configs/characters.yaml or pick one of these.")


# --------------------------------------------------------------------------- lora_registry.yaml
class LoraEntry(Strict):
    source: str  # local path (file or folder) or Hugging Face id
    weight_name: str | None = None  # file inside a HF repo / folder
    weight: float = Field(default=0.75, ge=0.0, le=2.0)
    trigger_words: list[str] = []
    kind: Literal["character", "background", "style"] = "character"
    revision: str | None = None


class LoraRegistry(Strict):
    loras: dict[str, LoraEntry] = {}


# --------------------------------------------------------------------------- models.yaml
Modality = Literal["image", "voice", "llm", "judge", "embedder", "face", "lipsync", "controlnet", "segmenter",
                   "video"]


class ModelEntry(Strict):
    modality: Modality
    backend: str  # name in the backend registry (resources/registry.py)
    source: str | None = None  # Hugging Face id or local path
    revision: str | None = None
    dtype: Literal["float32", "float16", "bfloat16", "auto"] = "auto"
    vram_gb: float = Field(default=0.0, ge=0.0)
    heavy: bool = False
    options: dict[str, Any] = {}


class ProfileModels(Strict):
    image: str
    voice: str
    llm: str
    judge: str
    embedder: str
    face: str | None = None
    lipsync: str | None = None  # Wav2Lip on keyframe shots with dialogue and a face; none: lip flaps
    segmenter: str | None = None  # SAM2 masks for cut-outs (footage parodies, keyframe animation)
    video: str | None = None  # image-to-video motion for keyframe shots; none: stills and cut-out animation


class ModelsConfig(Strict):
    models: dict[str, ModelEntry] = Field(min_length=1)
    profiles: dict[Literal["preview", "gpu"], ProfileModels]

    @model_validator(mode="after")
    def _profiles_name_models(self) -> ModelsConfig:
        for prof, pm in self.profiles.items():
            for role, name in pm.model_dump().items():
                if name is not None and name not in self.models:
                    raise ValueError(f"profiles.{prof}.{role} names model '{name}', which is not under 'models:'"
                                     f" (known: {', '.join(sorted(self.models))})")
        return self


# --------------------------------------------------------------------------- the whole set
class StudioConfig(BaseModel):
    characters: CharactersConfig
    loras: LoraRegistry
    models: ModelsConfig


def load_studio_config() -> StudioConfig:
    """Load the core configs and check references between them (character → LoRA)."""
    chars = load_config("characters.yaml", CharactersConfig)
    loras = load_config("lora_registry.yaml", LoraRegistry, missing_ok=True)
    models = load_config("models.yaml", ModelsConfig)
    problems = [
        f"field 'characters.{key}.lora': LoRA '{c.lora}' is not in lora_registry.yaml "
        f"(known: {', '.join(sorted(loras.loras)) or 'none'})"
        for key, c in chars.characters.items()
        if c.lora and c.lora not in loras.loras
    ]
    if problems:
        raise ConfigError(config_path("characters.yaml"), problems)
    return StudioConfig(characters=chars, loras=loras, models=models)


@functools.cache
def _cached(_key: tuple) -> StudioConfig:
    return load_studio_config()


def studio_config() -> StudioConfig:
    """Cached per config folder (mtime-keyed so an edited YAML is re-read)."""
    folder = get_settings().configs_path
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*.yaml")))
    return _cached((str(folder), stamp))
