"""Which voice and which backend: a character's voice preset, the prosody of an emotion, and the profile's
backend (one cached instance per model and config folder), with the fallback chain when one is unavailable."""

from __future__ import annotations

import functools
import logging

from studio.configs.errors import StudioError, UnknownNameError
from studio.configs.schema import ModelEntry, studio_config
from studio.configs.vocabulary import EMOTIONS
from studio.resources.voice.base import (
    BackendUnavailableError,
    VoiceBackend,
    VoiceError,
)
from studio.resources.voice.config import (
    CharacterVoice,
    Prosody,
    TTSConfig,
    load_character_voices,
    load_tts_config,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- resolution
def resolve_voice(character: str) -> tuple[str, str, CharacterVoice]:
    """character name/alias → (character id, voice id, voice config)."""
    char_id, preset = studio_config().characters.resolve(character)
    voice_id = preset.voice or char_id
    voices = load_character_voices().voices
    if voice_id not in voices:
        raise UnknownNameError(f"character '{char_id}' uses voice '{voice_id}', which is not in "
                               f"configs/character_voices.yaml (known voices: {', '.join(sorted(voices))}). "
                               "Add it there or fix `voice:` in configs/characters.yaml.")
    return char_id, voice_id, voices[voice_id]


def prosody_for(emotion: str, intensity: float, tts: TTSConfig) -> Prosody:
    """Linear interpolation from neutral (intensity 0) to the emotion's full prosody (intensity 1)."""
    if emotion not in EMOTIONS:
        raise VoiceError(f"unknown emotion '{emotion}' (known: {', '.join(EMOTIONS)})")
    if not 0.0 <= intensity <= 1.0:
        raise VoiceError(f"intensity must be between 0 and 1, got {intensity}")
    base = tts.emotions["neutral"]
    full = tts.emotions.get(emotion, base)  # an emotion missing from the table speaks neutrally
    mixed = {k: getattr(base, k) + intensity * (getattr(full, k) - getattr(base, k)) for k in Prosody.model_fields}
    return Prosody(**{k: round(v, 4) for k, v in mixed.items()})


@functools.cache
def _cached_backend(model_name: str, entry_json: str, configs: str) -> VoiceBackend:
    from studio.resources.registry import import_backend_class

    entry = ModelEntry.model_validate_json(entry_json)
    cls = import_backend_class("voice", entry.backend)
    return cls(model_name, entry)


def get_backend(model_name: str, entry: ModelEntry) -> VoiceBackend:
    """One backend instance per model per process (a loaded piper voice is reused across lines)."""
    from studio.configs.settings import get_settings
    from studio.resources.registry import BackendError

    try:
        return _cached_backend(model_name, entry.model_dump_json(), str(get_settings().configs_path))
    except BackendError as e:  # the backend's package is not installed
        raise BackendUnavailableError(str(e)) from e
    except StudioError:
        raise
    except (ImportError, OSError) as e:
        raise BackendUnavailableError(f"voice backend '{entry.backend}' cannot start: {e}") from e


def _entry_for_backend(backend: str) -> tuple[str, ModelEntry]:
    """The models.yaml entry that uses a registry backend (fallbacks name backends, not models)."""
    for name, entry in studio_config().models.models.items():
        if entry.modality == "voice" and entry.backend == backend:
            return name, entry
    return backend, ModelEntry(modality="voice", backend=backend)


def choose_backend(profile: str | None = None, backend: str | None = None) -> tuple[VoiceBackend, str | None]:
    """The profile's voice backend, or the first configured fallback that can run here.

    Returns (backend, fallback_from) where fallback_from names the backend that could not run (None when the
    first choice was used). An explicitly requested backend never falls back.
    """
    from studio.resources.registry import model_entry

    if backend:
        name, entry = _entry_for_backend(backend) if backend not in studio_config().models.models else (
            backend, studio_config().models.models[backend])
        be = get_backend(name, entry)
        be.check_available()
        return be, None
    name, entry = model_entry("voice", profile)
    candidates = [(name, entry)] + [_entry_for_backend(b) for b in load_tts_config().fallback
                                    if b != entry.backend]
    reasons = []
    for cand_name, cand_entry in candidates:
        try:
            be = get_backend(cand_name, cand_entry)
            be.check_available()
        except BackendUnavailableError as e:
            reasons.append(f"{cand_entry.backend}: {e}")
            continue
        if reasons:
            log.warning("voice backend fallback: using %s because %s", be.backend, "; ".join(reasons))
            return be, entry.backend
        return be, None
    raise BackendUnavailableError("no voice backend can run here:\n  " + "\n  ".join(reasons))


def model_entry_for(model_name: str, backend: str) -> ModelEntry:
    """The models.yaml entry a line was planned with (by name), else the first entry of its backend."""
    models = studio_config().models.models
    if model_name in models and models[model_name].backend == backend:
        return models[model_name]
    return _entry_for_backend(backend)[1]
