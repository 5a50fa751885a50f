"""hibari-tts (Apache-2.0): a Kokoro-82M voice distilled to 7.9 MB, English only, ≈50–100× real time on one
CPU core. Optional backend (`pip install hibari-tts`); only the `heart` voice ships in the wheel — the others
download on first use, which cannot happen offline, so they count as unavailable.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import threading

import numpy as np

from studio.configs.schema import ModelEntry
from studio.resources.voice.base import BackendUnavailableError, SynthesisError, SynthesisRequest
from studio.resources.voice.config import load_tts_config


class HibariVoiceBackend:
    backend = "hibari"
    post_pitch = True
    sample_rate = 24000

    def __init__(self, name: str, entry: ModelEntry):
        self.name = name
        self.heavy = False
        self.cfg = load_tts_config().backends.hibari
        try:
            version = importlib.metadata.version("hibari-tts")
        except importlib.metadata.PackageNotFoundError:
            version = "missing"
        self.model_id = f"hibari@{version}"
        self._models: dict[str, object] = {}
        self._lock = threading.Lock()

    def languages(self) -> set[str]:
        return set(self.cfg.languages)

    def check_available(self) -> None:
        if importlib.util.find_spec("hibari") is None:
            raise BackendUnavailableError("hibari-tts is not installed (pip install hibari-tts)")

    def session(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def _model(self, voice: str):
        with self._lock:
            if voice not in self._models:
                from hibari import Hibari

                try:
                    self._models[voice] = Hibari(voice=voice, threads=self.cfg.threads)
                except RuntimeError as e:  # a voice that would need a download
                    raise BackendUnavailableError(f"hibari voice '{voice}' is not available offline: {e}") from e
            return self._models[voice]

    def synthesize(self, req: SynthesisRequest) -> np.ndarray:
        self.check_available()
        tts = self._model(req.voice.hibari.voice)
        speed = float(min(2.0, max(0.5, req.prosody.tempo)))
        try:
            y = tts(req.text, speed=speed, seed=req.seed * 1000 + req.attempt)
        except Exception as e:  # noqa: BLE001
            raise SynthesisError(f"hibari failed on {req.text[:60]!r}: {e}") from e
        return np.asarray(y, dtype=np.float32)
