"""LLM servers the studio starts, health-checks and stops: llama.cpp (preview) and vLLM (gpu).

Each server runs in its own session (it outlives the CLI call that started it, so the next plan does not pay
the load again), with its PID in `run_dir/llm-<name>.pid` and its output in `logs_dir/llm-<name>.log`.
A start lock makes two processes that want the same server start it once.

vLLM runs with `--enable-sleep-mode`: the residency manager's `HeavyModel` callbacks park it with
`POST /sleep?level=1` (weights to host RAM, ≈1 GB left on the GPU) and activate it with `POST /wake_up`, so
switching between the LLM and SDXL is a copy (public figures: wake-up 0.3–3 s), not a 30–90 s cold start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import httpx

from studio.configs.schema import ModelEntry
from studio.configs.settings import get_settings
from studio.resources.llm.client import LLMError, LLMUnavailableError, OpenAICompatibleClient
from studio.resources.runtime.model_sources import resolve_model_source
from studio.resources.runtime.residency import HeavyModel
from studio.resources.runtime.servers import ManagedServer, ServerStatus


class LLMServerError(LLMError):
    pass


class ManagedLLMServer(ManagedServer):
    """A local OpenAI-compatible server process (start/stop/health come from `ManagedServer`)."""

    managed = True
    kind = "LLM"
    error = LLMServerError
    style = "openai"
    default_start_timeout_s = 120.0

    def __init__(self, name: str, entry: ModelEntry, *, port: int | None = None, host: str = "127.0.0.1"):
        s = get_settings()
        self.name = name
        self.entry = entry
        self.heavy = bool(entry.heavy)
        self.model_id = f"{entry.source or name}@{entry.revision or 'default'}"
        self.host = host
        # The planner and the judge may both be local servers: the judge sits one port above.
        self.port = int(port or entry.options.get("port") or s.llm.port + (0 if entry.modality == "llm" else 1))
        self.pid_file = s.run_dir / f"llm-{name}.pid"
        self.log_file = s.logs_dir / f"llm-{name}.log"
        self.start_timeout_s = float(entry.options.get("start_timeout_s", self.default_start_timeout_s))

    # ------------------------------------------------------------------ what to run (subclasses)
    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    # ------------------------------------------------------------------ addressing
    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def client(self, timeout_s: float | None = None) -> OpenAICompatibleClient:
        return OpenAICompatibleClient(self.base_url, self.name, style=self.style,  # type: ignore[arg-type]
                                      timeout_s=timeout_s or float(self.entry.options.get("timeout_s", 300)),
                                      extra_body=self.entry.options.get("extra_body"),
                                      isolate_prompts=self.isolate_prompts)

    @property
    def isolate_prompts(self) -> bool:
        """Evaluate every prompt from scratch (reproducible sampling); options.isolate_prompts: false to allow
        prefix reuse. Only llama.cpp needs it (see OpenAICompatibleClient)."""
        return self.style == "llama-cpp" and bool(self.entry.options.get("isolate_prompts", True))

    # ------------------------------------------------------------------ state (the lifecycle is ManagedServer's)
    @property
    def url(self) -> str:
        return self.base_url

    def pid_note(self) -> str:
        return f"{self.port} {self.name}"

    def is_healthy(self) -> bool:
        """Healthy = answers /v1/models *and* serves this model (not another server on our port)."""
        return self.name in self.client(timeout_s=3).served_models(timeout_s=3)

    def foreign(self) -> str | None:
        try:
            r = httpx.get(f"{self.base_url}/models", timeout=2)
        except httpx.HTTPError:
            return None  # nothing there: the port is ours to take
        return f"it answered HTTP {r.status_code} without serving '{self.name}'"

    def foreign_error(self, what: str) -> LLMServerError:
        return LLMServerError(f"port {self.port} is already used by another server ({what}). Stop it or set "
                              "STUDIO_LLM__PORT (or options.port in configs/models.yaml) to a free port.")

    def ensure_running(self) -> OpenAICompatibleClient:
        self.start(wait=True)
        return self.client()

    # ------------------------------------------------------------------ residency
    def heavy_model(self) -> HeavyModel:
        """Residency callbacks: load = start, park = stop (llama.cpp has no sleep), unload = stop."""
        return HeavyModel(
            name=self.model_id,
            load=lambda device: self.ensure_running(),
            activate=lambda handle, device: self.ensure_running(),
            park=lambda handle: (self.stop(), handle)[1],
            unload=lambda handle: self.stop(),
        )


class LlamaCppEndpoint(ManagedLLMServer):
    """llama-cpp-python's OpenAI-compatible server for any GGUF (`source:` path or pkg:<package>/<file>).

    options: n_ctx (4096), threads (default STUDIO_LLM__THREADS: 1 on ≤ 2 cores), n_gpu_layers (0),
    chat_format (default: the template in the GGUF), port, start_timeout_s.
    """

    kind = "llama.cpp"
    style = "llama-cpp"
    default_start_timeout_s = 60.0

    def command(self) -> list[str]:
        try:
            import llama_cpp  # noqa: F401  (only to give a clear error before spawning)
        except ImportError:
            raise LLMServerError("the preview LLM needs llama-cpp-python (source-only on PyPI, ≈10 min build): "
                                 "`pip install 'llama-cpp-python[server]>=0.3.7'` (or the `llm` extra), or "
                                 "scripts/setup.sh, which caches the built wheel") from None
        o = self.entry.options
        threads = int(o.get("threads") or get_settings().llm.threads)
        argv = [sys.executable, "-m", "llama_cpp.server", "--model", resolve_model_source(self.entry.source),
                "--model_alias", self.name, "--host", self.host, "--port", str(self.port),
                "--n_ctx", str(int(o.get("n_ctx", 4096))), "--n_threads", str(threads),
                "--n_threads_batch", str(threads), "--n_gpu_layers", str(int(o.get("n_gpu_layers", 0))),
                "--verbose", "false"]
        if o.get("chat_format"):
            argv += ["--chat_format", str(o["chat_format"])]
        return argv


class VLLMEndpoint(ManagedLLMServer):
    """`vllm serve` with sleep mode, for the gpu profile's planner (Qwen2.5-Instruct) and VLM judge.

    options: executable (default `vllm` on PATH), args (extra CLI args, list), gpu_memory_utilization (0.85),
    max_model_len (8192), port, start_timeout_s (600: compile + CUDA graphs take 30–90 s).
    """

    kind = "vLLM"
    style = "openai"
    default_start_timeout_s = 600.0

    def command(self) -> list[str]:
        o = self.entry.options
        exe = o.get("executable") or shutil.which("vllm")
        if not exe:
            raise LLMServerError("the gpu profile's LLM needs vLLM, which is not installed: "
                                 "`pip install -e .[gpu]` on the GPU host, or run with --profile preview")
        argv = [str(exe), "serve", resolve_model_source(self.entry.source), "--host", self.host,
                "--port", str(self.port), "--served-model-name", self.name, "--enable-sleep-mode",
                "--gpu-memory-utilization", str(o.get("gpu_memory_utilization", 0.85)),
                "--max-model-len", str(int(o.get("max_model_len", 8192))), "--seed", str(int(o.get("seed", 0)))]
        if not o.get("prefix_caching", False):
            # Prefix caching changes how a prompt is batched, hence its logits and a seeded sample: off, so the
            # same request + seed gives the same plan after other requests and restarts.
            argv.append("--no-enable-prefix-caching")
        if self.entry.revision:
            argv += ["--revision", self.entry.revision]
        if self.entry.dtype != "auto":
            argv += ["--dtype", self.entry.dtype]
        return argv + [str(a) for a in o.get("args", [])]

    def env(self) -> dict[str, str]:
        # The sleep/wake endpoints are only mounted in dev mode; the server listens on loopback only.
        return {**os.environ, "VLLM_SERVER_DEV_MODE": "1", "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}

    def _control(self, method: str, path: str, timeout_s: float = 120.0) -> httpx.Response:
        try:
            r = httpx.request(method, f"{self.root_url}{path}", timeout=timeout_s)
        except httpx.HTTPError as e:
            raise LLMUnavailableError(f"vLLM server for '{self.name}' at {self.root_url} does not answer "
                                      f"{path}: {e}") from None
        if r.status_code >= 400:
            raise LLMServerError(f"vLLM {path} failed (HTTP {r.status_code}): {r.text[:200]}. Is the server "
                                 "started with --enable-sleep-mode and VLLM_SERVER_DEV_MODE=1?")
        return r

    def is_sleeping(self) -> bool:
        return bool(self._control("GET", "/is_sleeping", 10).json().get("is_sleeping"))

    def sleep(self, level: int = 1) -> None:
        self._control("POST", f"/sleep?level={level}")

    def wake_up(self) -> None:
        self._control("POST", "/wake_up")

    def status(self) -> ServerStatus:
        st = super().status()
        if st.healthy:
            with contextlib.suppress(LLMError, ValueError):
                st.sleeping = self.is_sleeping()
        return st

    def ensure_awake(self) -> OpenAICompatibleClient:
        self.start(wait=True)
        if self.is_sleeping():
            self.wake_up()
        return self.client()

    def heavy_model(self) -> HeavyModel:
        """load = start (or wake a server left asleep by another process), park = sleep level 1, unload = stop."""
        return HeavyModel(
            name=self.model_id,
            load=lambda device: self.ensure_awake(),
            activate=lambda handle, device: (self.wake_up(), handle)[1],
            park=lambda handle: (self.sleep(1), handle)[1],
            unload=lambda handle: self.stop(),
            est_host_gb=float(self.entry.vram_gb),
        )


# ---------------------------------------------------------------------- entry points for planning
def llm_endpoint(profile: str | None = None, role: str = "llm") -> Any:
    """The configured endpoint object (not started) for a role of the active profile."""
    from studio.resources.registry import load_backend

    return load_backend(role, profile)


def ensure_llm_server(profile: str | None = None) -> Any:
    """The planning endpoint, started and healthy (non-heavy), or checked reachable (unmanaged).

    Heavy (GPU) endpoints are not started here but inside `llm_session()`, under the residency manager, so
    they hold the GPU only while an LLM task runs.
    """
    endpoint = llm_endpoint(profile)
    if getattr(endpoint, "heavy", False):
        return endpoint
    endpoint.ensure_running()
    return endpoint


@contextlib.contextmanager
def llm_session(endpoint: Any) -> Iterator[OpenAICompatibleClient]:
    """A client for the duration of the block; heavy endpoints are activated through residency and parked."""
    if getattr(endpoint, "heavy", False) and getattr(endpoint, "managed", False):
        from studio.resources.runtime.residency import get_residency

        with get_residency().use(endpoint.heavy_model()):
            yield endpoint.client()
    else:
        yield endpoint.ensure_running()


__all__ = ["LlamaCppEndpoint", "VLLMEndpoint", "ManagedLLMServer", "LLMServerError",
           "ensure_llm_server", "llm_session", "llm_endpoint", "resolve_model_source"]
