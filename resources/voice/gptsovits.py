"""GPT-SoVITS over its HTTP API (`api_v2.py`): the `gpu` profile's voice (heavy, MIT-licensed project).

- `GPTSoVITSServer` starts/stops `api_v2.py` from a GPT-SoVITS checkout like the studio's other servers:
  own session, PID file under `run_dir`, log under `logs_dir`, health by HTTP.
- `GPTSoVITSClient` speaks the API: `GET /set_gpt_weights?weights_path=`, `GET /set_sovits_weights?...`,
  `POST /tts` with a JSON body (text, text_lang, ref_audio_path, prompt_text, prompt_lang, speed_factor, seed,
  media_type, streaming_mode, sampling options). Success is WAV bytes; failure is JSON `{"message": ...}`
  with HTTP 400 — every failure becomes a `VoiceError` subclass naming the server's message.
- `GPTSoVITSVoiceBackend` picks the reference clip for the line's emotion (alternatives on retries), maps
  languages api_v2 does not know (`language_map`), switches per-character weights only when they differ from
  what the server has loaded (recorded under `run_dir`, written under the GPU lock), and holds the server as
  the heavy model in the residency manager (`park: stop` frees the VRAM between heavy tasks).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from studio.configs.schema import ModelEntry
from studio.configs.settings import get_settings
from studio.resources.audio.post import resample
from studio.resources.media.audio_io import CorruptAudioError, decode_bytes
from studio.resources.runtime.files import write_text_atomic
from studio.resources.runtime.servers import ManagedServer
from studio.resources.voice.base import BackendUnavailableError, SynthesisError, SynthesisRequest, VoiceError
from studio.resources.voice.config import GPTSoVITSBackendConfig, Reference, load_tts_config


class GPTSoVITSUnavailableError(BackendUnavailableError):
    pass


class GPTSoVITSRequestError(SynthesisError):
    """The server refused the request (HTTP 4xx): bad language, missing reference, bad weights path..."""


class GPTSoVITSServerError(SynthesisError):
    """The server failed (HTTP 5xx) or answered with no/undecodable audio."""


# --------------------------------------------------------------------------- client
class GPTSoVITSClient:
    def __init__(self, base_url: str, timeout_s: float = 300.0):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            with httpx.Client(timeout=httpx.Timeout(self.timeout_s, connect=5.0)) as c:
                r = c.request(method, f"{self.base_url}{path}", **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            raise GPTSoVITSUnavailableError(
                f"no GPT-SoVITS server answers at {self.base_url} ({e.__class__.__name__}). Start it with "
                "`studio voice server start`, or fix backends.gpt_sovits in configs/tts_config.yaml.") from e
        except httpx.TimeoutException as e:
            raise GPTSoVITSServerError(f"GPT-SoVITS at {self.base_url} did not answer {path} within "
                                       f"{self.timeout_s:.0f}s; raise backends.gpt_sovits.request_timeout_s") from e
        except httpx.HTTPError as e:
            raise GPTSoVITSServerError(f"GPT-SoVITS request {path} failed: {e}") from e
        if 400 <= r.status_code < 500:
            raise GPTSoVITSRequestError(f"GPT-SoVITS refused {path} (HTTP {r.status_code}): {_message(r)}")
        if r.status_code >= 500:
            raise GPTSoVITSServerError(f"GPT-SoVITS failed on {path} (HTTP {r.status_code}): {_message(r)}. "
                                       "See its log (`studio voice server status`).")
        return r

    def healthy(self, path: str = "/openapi.json") -> bool:
        try:
            with httpx.Client(timeout=2.0) as c:
                return c.get(f"{self.base_url}{path}").status_code == 200
        except httpx.HTTPError:
            return False

    def set_gpt_weights(self, weights_path: str) -> None:
        self._call("GET", "/set_gpt_weights", params={"weights_path": weights_path})

    def set_sovits_weights(self, weights_path: str) -> None:
        self._call("GET", "/set_sovits_weights", params={"weights_path": weights_path})

    def tts(self, payload: dict[str, Any]) -> tuple[np.ndarray, int]:
        r = self._call("POST", "/tts", json=payload)
        if not r.content:
            raise GPTSoVITSServerError(f"GPT-SoVITS returned HTTP {r.status_code} with no audio for "
                                       f"{str(payload.get('text'))[:60]!r}")
        try:
            return decode_bytes(r.content, "GPT-SoVITS /tts response")
        except CorruptAudioError as e:
            raise GPTSoVITSServerError(str(e)) from e


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
        if isinstance(body, dict):
            return "; ".join(str(body[k]) for k in ("message", "Exception", "detail") if k in body) or str(body)
        return str(body)
    except ValueError:
        return r.text[:300] or r.reason_phrase


# --------------------------------------------------------------------------- managed server
class GPTSoVITSServer(ManagedServer):
    """`api_v2.py` of a GPT-SoVITS checkout, as a managed server (or a remote one at `base_url`)."""

    kind = "GPT-SoVITS"
    error = GPTSoVITSUnavailableError

    def __init__(self, cfg: GPTSoVITSBackendConfig | None = None):
        self.cfg = cfg or load_tts_config().backends.gpt_sovits
        s = get_settings()
        self.name = "gpt-sovits"
        self.pid_file = s.run_dir / "gpt-sovits.pid"
        self.log_file = s.logs_dir / "gpt-sovits.log"
        self.weights_file = s.run_dir / "gpt-sovits.weights.json"
        self.start_timeout_s = self.cfg.start_timeout_s
        self.client = GPTSoVITSClient(self.cfg.url(), self.cfg.request_timeout_s)

    @property
    def managed(self) -> bool:
        return self.cfg.managed and not self.cfg.base_url

    @property
    def url(self) -> str:
        return self.cfg.url()

    @property
    def cwd(self) -> Path:  # type: ignore[override]
        return self.checkout()

    def checkout(self) -> Path:
        return Path(self.cfg.checkout).expanduser()

    def pid(self) -> int | None:
        return self.recorded_pid()

    def healthy(self) -> bool:
        return self.is_healthy()

    def is_healthy(self) -> bool:
        return self.client.healthy(self.cfg.health_path)

    def command(self) -> list[str]:
        subst = {"python": self.cfg.python, "host": self.cfg.host, "port": str(self.cfg.port),
                 "config": self.cfg.tts_infer_config, "checkout": str(self.checkout())}
        return [part.format(**subst) for part in self.cfg.command]

    def can_start(self) -> str | None:
        """None when start() can work, else why not (for availability checks)."""
        if not self.managed:
            return (f"the GPT-SoVITS server at {self.cfg.url()} is not managed by the studio and does not "
                    "answer; start it there or set backends.gpt_sovits.managed: true")
        if not self.checkout().is_dir():
            return (f"no GPT-SoVITS checkout at {self.checkout()}: clone it there (and its pretrained models) or "
                    "set backends.gpt_sovits.checkout in configs/tts_config.yaml")
        return None

    def before_start(self) -> None:
        if why := self.can_start():
            raise GPTSoVITSUnavailableError(why)
        self.weights_file.unlink(missing_ok=True)  # a fresh server has its default weights

    def stop(self, timeout_s: float = 20.0) -> bool:
        self.weights_file.unlink(missing_ok=True)
        return super().stop(timeout_s)

    # weights the server has loaded, as last set by any studio process (callers hold the GPU lock)
    def loaded_weights(self) -> dict:
        try:
            return json.loads(self.weights_file.read_text())
        except (OSError, ValueError):
            return {}

    def ensure_weights(self, gpt: str | None, sovits: str | None, force: bool = False) -> None:
        state = self.loaded_weights()
        changed = False
        if gpt and (force or state.get("gpt") != gpt):
            self.client.set_gpt_weights(gpt)
            state["gpt"], changed = gpt, True
        if sovits and (force or state.get("sovits") != sovits):
            self.client.set_sovits_weights(sovits)
            state["sovits"], changed = sovits, True
        if changed:
            write_text_atomic(self.weights_file, json.dumps({**state, "url": self.cfg.url(), "t": time.time()}))


# --------------------------------------------------------------------------- backend
class GPTSoVITSVoiceBackend:
    backend = "gpt-sovits"
    post_pitch = False  # prosody comes from the emotion's reference clip; only tempo is passed (speed_factor)

    def __init__(self, name: str, entry: ModelEntry):
        self.name = name
        self.entry = entry
        self.heavy = bool(entry.heavy)
        self.cfg = load_tts_config().backends.gpt_sovits
        self.server = GPTSoVITSServer(self.cfg)
        self.model_id = f"gpt-sovits@{entry.revision or 'api_v2'}"
        self.sample_rate = 32000  # v2 output; other rates are resampled on arrival

    def languages(self) -> set[str]:
        plain = {lang for lang in self.cfg.languages if "_" not in lang and lang != "auto"}
        return plain | set(self.cfg.language_map)

    def api_language(self, language: str) -> str:
        lang = self.cfg.language_map.get(language, language)
        if lang not in self.cfg.languages:
            raise VoiceError(f"GPT-SoVITS api_v2 does not accept language '{lang}' (accepted: "
                             f"{', '.join(self.cfg.languages)}); map it under backends.gpt_sovits.language_map")
        return lang

    def check_available(self) -> None:
        if self.server.healthy():
            return
        why = self.server.can_start()
        if why:
            raise GPTSoVITSUnavailableError(why)

    def input_files(self, spec) -> dict[str, str]:
        """Hashes of the reference clips (small) and size/mtime of the weights (large) this line reads."""
        out: dict[str, str] = {}
        for emotion, refs in spec.voice.gpt_sovits.references.items():
            for i, ref in enumerate(refs):
                p = ref.path()
                out[f"ref:{emotion}:{i}"] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "missing"
        for kind in ("gpt_weights", "sovits_weights"):
            val = getattr(spec.voice.gpt_sovits, kind)
            p = Path(val).expanduser() if val else None
            out[kind] = f"{p.stat().st_size}-{p.stat().st_mtime_ns}" if p and p.is_file() else str(val)
        return out

    # ------------------------------------------------------------------ residency
    def heavy_model(self):
        from studio.resources.runtime.residency import HeavyModel

        def load(device: str) -> GPTSoVITSServer:
            self.server.start()
            return self.server

        def park(server: GPTSoVITSServer) -> GPTSoVITSServer:
            if self.cfg.park == "stop" and server.managed:
                server.stop()
            return server

        def activate(server: GPTSoVITSServer, device: str) -> GPTSoVITSServer:
            server.start()
            return server

        # the URL is part of the name: a handle bound to another server (config edited) is never reused
        return HeavyModel(name=f"{self.name}@{self.model_id}@{self.cfg.url()}", load=load, activate=activate, park=park,
                          unload=lambda server: server.stop() if server.managed else None)

    def session(self) -> contextlib.AbstractContextManager:
        if not self.heavy:
            return _light_session(self.server)
        from studio.resources.runtime.residency import get_residency

        return get_residency().use(self.heavy_model())

    # ------------------------------------------------------------------ synthesis
    def pick_reference(self, req: SynthesisRequest) -> Reference:
        refs = req.voice.gpt_sovits.references
        choices = refs.get(req.emotion) or refs.get("neutral") or next(iter(refs.values()), None)
        if not choices:
            raise VoiceError(f"voice '{req.voice_id}' has no GPT-SoVITS reference clip: add "
                             "gpt_sovits.references.neutral (audio, text, language) in configs/character_voices.yaml")
        # a retry takes the next alternative for the emotion, then the neutral ones
        pool = choices + [r for r in refs.get("neutral", []) if r not in choices]
        return pool[req.attempt % len(pool)]

    def build_payload(self, req: SynthesisRequest) -> dict[str, Any]:
        ref = self.pick_reference(req)
        if not ref.path().is_file():
            raise VoiceError(f"reference clip for '{req.voice_id}' ({req.emotion}) not found: {ref.path()}")
        payload: dict[str, Any] = {**self.cfg.request}
        g = req.voice.gpt_sovits
        if g.top_k is not None:
            payload["top_k"] = g.top_k
        if g.temperature is not None:
            payload["temperature"] = g.temperature
        payload.update({
            "text": req.text,
            "text_lang": self.api_language(req.language),
            "ref_audio_path": str(ref.path()),
            "prompt_text": ref.text,
            "prompt_lang": self.api_language(ref.language),
            "speed_factor": round(float(req.prosody.tempo), 4),
            "seed": int(req.seed * 1000 + req.attempt),
            "media_type": "wav",
            "streaming_mode": False,
        })
        return payload

    def synthesize(self, req: SynthesisRequest) -> np.ndarray:
        payload = self.build_payload(req)
        g = req.voice.gpt_sovits
        self.server.ensure_weights(_abs(g.gpt_weights), _abs(g.sovits_weights), force=self.cfg.always_set_weights)
        y, sr = self.server.client.tts(payload)
        return resample(y, sr, self.sample_rate) if sr != self.sample_rate else y


def _abs(path: str | None) -> str | None:
    return str(Path(path).expanduser()) if path else None


@contextlib.contextmanager
def _light_session(server: GPTSoVITSServer):
    server.start()
    yield server
