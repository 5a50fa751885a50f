"""The voice modality's contract: what a backend is given (`SynthesisRequest`), what it must do
(`VoiceBackend`), and the errors every voice path raises."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from studio.configs.errors import StudioError
from studio.resources.voice.config import (
    CharacterVoice,
    Prosody,
)


# --------------------------------------------------------------------------- errors
class VoiceError(StudioError):
    """A voice line cannot be made as asked; the message says what to change."""


class EmptyTextError(VoiceError):
    pass


class UnsupportedLanguageError(VoiceError):
    pass


class BackendUnavailableError(VoiceError):
    """The backend cannot run here (package, model file, binary or server missing): a fallback may."""


class SynthesisError(VoiceError):
    """The backend ran and failed."""


class QualityError(VoiceError):
    pass


# --------------------------------------------------------------------------- backend protocol
@dataclass
class SynthesisRequest:
    text: str  # one sentence (or a piece of a long one)
    language: str
    voice: CharacterVoice
    voice_id: str
    emotion: str
    prosody: Prosody  # already interpolated for the intensity; tempo includes the character's speed
    seed: int = 0
    attempt: int = 0


@runtime_checkable
class VoiceBackend(Protocol):
    name: str  # models.yaml name
    backend: str  # registry name: piper | espeak | hibari | gpt-sovits
    model_id: str  # id@revision, part of every recipe
    heavy: bool
    sample_rate: int  # rate of the arrays `synthesize` returns
    post_pitch: bool  # apply the librosa pitch/contour post-process (False: the model carries prosody)

    def languages(self) -> set[str]: ...

    def check_available(self) -> None: ...  # raise BackendUnavailableError with the fix

    def session(self) -> contextlib.AbstractContextManager[Any]: ...  # held around a batch of requests

    def synthesize(self, req: SynthesisRequest) -> np.ndarray: ...  # float32 mono at sample_rate
