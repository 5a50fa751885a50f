"""espeak-ng, the last-resort fallback: formant synthesis, robotic but always available (Debian package
`espeak-ng`, GPL-3.0-or-later; run as a separate program, not linked). 100+ languages; variants (m1..m7,
f1..f5) keep characters apart. Lines made with it are labelled `backend: espeak` in their timing sidecar.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess

import numpy as np

from studio.configs.schema import ModelEntry
from studio.resources.media.audio_io import CorruptAudioError, decode_bytes
from studio.resources.voice.base import BackendUnavailableError, SynthesisError, SynthesisRequest
from studio.resources.voice.config import load_tts_config


class EspeakVoiceBackend:
    backend = "espeak"
    post_pitch = True
    sample_rate = 22050

    def __init__(self, name: str, entry: ModelEntry):
        self.name = name
        self.heavy = False
        self.cfg = load_tts_config().backends.espeak
        self.binary = shutil.which(self.cfg.binary)
        self.model_id = f"espeak-ng@{self._version()}"

    def _version(self) -> str:
        if not self.binary:
            return "missing"
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout
        parts = out.split()
        return next((p for p in parts if p[:1].isdigit()), "unknown")

    def languages(self) -> set[str]:
        return set(self.cfg.voices)

    def check_available(self) -> None:
        if not self.binary:
            raise BackendUnavailableError(f"'{self.cfg.binary}' is not installed (apt-get install espeak-ng)")

    def session(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def synthesize(self, req: SynthesisRequest) -> np.ndarray:
        self.check_available()
        voice = self.cfg.voices[req.language]
        if req.voice.espeak.variant:
            voice = f"{voice}+{req.voice.espeak.variant}"
        # prosody.tempo = emotion tempo x character speed; a per-character wpm replaces default x speed
        if req.voice.espeak.wpm:
            wpm = req.voice.espeak.wpm * req.prosody.tempo / max(req.voice.speed, 0.1)
        else:
            wpm = self.cfg.wpm * req.prosody.tempo
        wpm = int(round(wpm))
        pitch = 50 + int(round(8 * req.attempt)) % 20  # a retry varies the base pitch slightly
        cmd = [self.binary, "-v", voice, "-s", str(max(80, min(450, wpm))), "-p", str(pitch), "--stdout",
               "--", req.text]
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0:
            raise SynthesisError(f"espeak-ng failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
        try:
            y, sr = decode_bytes(proc.stdout, "espeak-ng output")
        except CorruptAudioError as e:
            raise SynthesisError(str(e)) from e
        if sr != self.sample_rate:
            from studio.resources.audio.post import resample

            y = resample(y, sr, self.sample_rate)
        return y
