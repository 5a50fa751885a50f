"""The studio's local Prefect server: 127.0.0.1, SQLite under STUDIO_HOME, filesystem lease storage.

Never Prefect's ephemeral mode for GPU work: there a kill -9 of a slot holder leaks the `gpu-heavy` slot
forever (FACTS.md). `configure_prefect_env()` must run before `import prefect` in a process — Prefect reads its
settings at import — and the CLI does that first thing.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from studio.configs.errors import StudioError
from studio.configs.settings import StudioSettings, get_settings
from studio.resources.runtime.servers import pid_alive, stop_process_group, tail_log


def results_block_name(s: StudioSettings) -> str:
    """One RemoteFileSystem block per store URI, so two studios on one server never share result storage."""
    import hashlib

    return "studio-results-" + hashlib.sha256(s.store_uri.encode()).hexdigest()[:10]


class ServerDownError(StudioError):
    pass


def server_env(s: StudioSettings | None = None) -> dict[str, str]:
    """Environment for the server process and every client process of this studio home."""
    s = s or get_settings()
    env = {
        "PREFECT_HOME": str(s.prefect_home),
        "PREFECT_API_URL": s.prefect.url(),
        "PREFECT_SERVER_API_HOST": s.prefect.host,
        "PREFECT_SERVER_API_PORT": str(s.prefect.port),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{s.prefect_home / 'prefect.db'}",
        # Held slots survive a server restart only with filesystem lease storage.
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
        "PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS": str(s.prefect.slot_wait_seconds),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_LOCAL_STORAGE_PATH": str(s.prefect_home / "results"),
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
    }
    if s.store_uri.startswith("s3://"):
        env["PREFECT_DEFAULT_RESULT_STORAGE_BLOCK"] = f"remote-file-system/{results_block_name(s)}"
    return env


def configure_prefect_env(s: StudioSettings | None = None) -> None:
    """Point this process's Prefect client at the studio server (call before importing prefect).

    An explicit PREFECT_API_URL in the environment (e.g. a shared server) wins over the local default.
    """
    s = s or get_settings()
    explicit_api = os.environ.get("PREFECT_API_URL") if not s.prefect.api_url else None
    for key, value in server_env(s).items():
        if key.startswith("PREFECT_SERVER_"):
            continue  # server-side only
        if key == "PREFECT_LOGGING_LEVEL":
            os.environ.setdefault(key, value)
        else:
            os.environ[key] = value
    if explicit_api:
        os.environ["PREFECT_API_URL"] = explicit_api
    s.prefect_home.mkdir(parents=True, exist_ok=True)


@dataclass
class ServerStatus:
    running: bool
    healthy: bool
    pid: int | None
    api_url: str
    ui_url: str
    log: Path


def _pid_file(s: StudioSettings) -> Path:
    return s.run_dir / "prefect-server.pid"


def _log_file(s: StudioSettings) -> Path:
    return s.logs_dir / "prefect-server.log"


def is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def server_status(s: StudioSettings | None = None) -> ServerStatus:
    s = s or get_settings()
    pid = None
    pf = _pid_file(s)
    if pf.exists():
        with contextlib.suppress(ValueError):
            pid = int(pf.read_text().split()[0])
    running = bool(pid and pid_alive(pid))
    api = os.environ.get("PREFECT_API_URL") if s.prefect.api_url is None and not running else None
    api = api or s.prefect.url()
    return ServerStatus(running, is_healthy(api), pid if running else None, api,
                        api.removesuffix("/api"), _log_file(s))


def start_server(s: StudioSettings | None = None, wait: bool = True) -> ServerStatus:
    """Start the server in the background (own session, survives the CLI), record its PID and log."""
    s = s or get_settings()
    st = server_status(s)
    if st.healthy:
        return st
    if st.running:  # started but not healthy yet
        return wait_healthy(s) if wait else st
    for d in (s.run_dir, s.logs_dir, s.prefect_home):
        d.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **server_env(s)}
    env.pop("PREFECT_API_URL", None)  # the server must not try to talk to another one
    log = open(_log_file(s), "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", s.prefect.host, "--port", str(s.prefect.port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    _pid_file(s).write_text(f"{proc.pid}\n")
    if not wait:
        return server_status(s)
    return wait_healthy(s, proc)


def wait_healthy(s: StudioSettings, proc: subprocess.Popen | None = None) -> ServerStatus:
    deadline = time.monotonic() + s.prefect.start_timeout_s
    while time.monotonic() < deadline:
        if is_healthy(s.prefect.url()):
            return server_status(s)
        if proc is not None and proc.poll() is not None:
            tail = tail_log(_log_file(s))
            raise ServerDownError(f"the Prefect server exited with code {proc.returncode} while starting.\n"
                                  f"Last log lines ({_log_file(s)}):\n{tail}\n"
                                  f"Is port {s.prefect.port} in use? Set STUDIO_PREFECT__PORT to another port.")
        time.sleep(0.5)
    raise ServerDownError(f"the Prefect server did not become healthy within {s.prefect.start_timeout_s:.0f}s; "
                          f"see {_log_file(s)}")


def stop_server(s: StudioSettings | None = None, timeout: float = 20.0) -> bool:
    s = s or get_settings()
    st = server_status(s)
    if not st.running or st.pid is None:
        _pid_file(s).unlink(missing_ok=True)
        return False
    stop_process_group(st.pid, timeout)
    _pid_file(s).unlink(missing_ok=True)
    return True


def require_server(s: StudioSettings | None = None) -> str:
    """The API URL, or a clear error saying how to start the server."""
    s = s or get_settings()
    url = os.environ.get("PREFECT_API_URL") or s.prefect.url()
    if not is_healthy(url):
        raise ServerDownError(f"no Prefect server answers at {url}. Start it with `studio server start` "
                              "(or pass --start-server); the studio never falls back to ephemeral mode, which "
                              "leaks GPU slots when a process is killed.")
    return url


def ensure_result_storage(s: StudioSettings | None = None) -> str | None:
    """On an S3 store, save the RemoteFileSystem block that PREFECT_DEFAULT_RESULT_STORAGE_BLOCK names.

    Must run before a flow starts (Prefect resolves the default result storage at flow start): the CLI and
    `studio worker start` call it; flows call it again through `prepare_flow_run`."""
    s = s or get_settings()
    if not s.store_uri.startswith("s3://"):
        return None
    from prefect.filesystems import RemoteFileSystem

    block = RemoteFileSystem(basepath=f"{s.store_uri.rstrip('/')}/prefect-results", settings=s.storage_options())
    block.save(results_block_name(s), overwrite=True)
    return f"remote-file-system/{results_block_name(s)}"


def prepare_flow_run(heavy: bool = True) -> None:
    """Start-of-flow checks: server reachable, gpu-heavy limit verified (heavy flows), result storage saved."""
    require_server()
    if heavy:
        from studio.resources.runtime.gpu_limit import ensure_gpu_limit

        ensure_gpu_limit()
    ensure_result_storage()
