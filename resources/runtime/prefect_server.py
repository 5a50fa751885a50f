"""The studio's local Prefect server: 127.0.0.1, SQLite under STUDIO_HOME, filesystem lease storage.

One per home, and only its own: `start_server` runs under an OS lock (`run/prefect-server.lock`), so two
`studio make` with the server down start one server; a server counts as the studio's only when the process
listening on its port is the one in the pid file (or its child) — any other process answering `/api/health`
there is refused, never sent work. `PREFECT_SERVER_API_AUTH_STRING` (if set) protects the API: the server gets
it and every client process of the home sends it (`PREFECT_API_AUTH_STRING`). No credential is ever saved in
a Prefect block: S3 keys come from each process's environment.

Never Prefect's ephemeral mode for GPU work: there a kill -9 of a slot holder leaks the `gpu-heavy` slot
forever (FACTS.md). `configure_prefect_env()` must run before `import prefect` in a process — Prefect reads its
settings at import — and the CLI does that first thing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from studio.configs.errors import StudioError
from studio.configs.settings import StudioSettings, get_settings
from studio.resources.runtime.servers import pid_alive, stop_process_group, tail_log


def results_block_name(s: StudioSettings) -> str:
    """The RemoteFileSystem block older versions saved (with the S3 secret in it); removed on sight."""
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
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": (s.prefect.database_url
                                                   or f"sqlite+aiosqlite:///{s.prefect_home / 'prefect.db'}"),
        # Held slots survive a server restart only with filesystem lease storage.
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
        "PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS": str(s.prefect.slot_wait_seconds),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_LOCAL_STORAGE_PATH": str(s.prefect_home / "results"),
        # Stages log at INFO to the API (the run's Logs tab); the console shows warnings only, and third-party
        # loggers stay at the root level (WARNING).
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "INFO"),
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": os.environ.get("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING"),
        "PREFECT_LOGGING_ROOT_LEVEL": os.environ.get("PREFECT_LOGGING_ROOT_LEVEL", "WARNING"),
    }
    auth = api_auth_string()
    if auth:
        env["PREFECT_SERVER_API_AUTH_STRING"] = auth
        env["PREFECT_API_AUTH_STRING"] = auth
    return env


def api_auth_string() -> str | None:
    """The API's basic-auth string (`user:password`): PREFECT_SERVER_API_AUTH_STRING on the server's host,
    PREFECT_API_AUTH_STRING on a client-only host."""
    return os.environ.get("PREFECT_SERVER_API_AUTH_STRING") or os.environ.get("PREFECT_API_AUTH_STRING") or None


def configure_prefect_env(s: StudioSettings | None = None) -> None:
    """Point this process's Prefect client at the studio server (call before importing prefect).

    An explicit PREFECT_API_URL in the environment (e.g. a shared server) wins over the local default.
    """
    s = s or get_settings()
    explicit_api = os.environ.get("PREFECT_API_URL") if not s.prefect.api_url else None
    for key, value in server_env(s).items():
        if key.startswith("PREFECT_SERVER_"):
            continue  # server-side only
        if key.startswith("PREFECT_LOGGING_"):
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
    foreign: str | None = None  # what answers on the port when it is not this home's server



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


def _recorded_pid(s: StudioSettings) -> int | None:
    with contextlib.suppress(ValueError, OSError):
        return int(_pid_file(s).read_text().split()[0])
    return None


def _is_local_api(s: StudioSettings, api: str) -> bool:
    return s.prefect.api_url is None and api.rstrip("/") == f"http://{s.prefect.host}:{s.prefect.port}/api"


def listener_pid(host: str, port: int) -> int | None:
    """The pid of the process listening on host:port (None when nobody does or it cannot be seen)."""
    import psutil

    for c in psutil.net_connections(kind="inet"):
        if (c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                and c.laddr.ip in (host, "0.0.0.0", "::", f"::ffff:{host}")):
            return c.pid
    return None


def foreign_listener(s: StudioSettings, pid: int | None) -> str | None:
    """None when the process listening on the studio's port is its recorded server (or a child of it); else
    a description of what is there instead. A health answer alone proves nothing."""
    import psutil

    lp = listener_pid(s.prefect.host, s.prefect.port)
    if lp is None:
        return "a process this user cannot identify"
    try:
        proc = psutil.Process(lp)
        family = {lp, *(p.pid for p in proc.parents())}
        if pid is not None and pid in family:
            return None
        return f"pid {lp} ({' '.join(proc.cmdline())[:120]})"
    except psutil.Error:
        return f"pid {lp}"


def server_status(s: StudioSettings | None = None) -> ServerStatus:
    s = s or get_settings()
    pid = _recorded_pid(s)
    running = bool(pid and pid_alive(pid))
    api = os.environ.get("PREFECT_API_URL") if s.prefect.api_url is None and not running else None
    api = api or s.prefect.url()
    healthy = is_healthy(api)
    foreign = None
    if healthy and _is_local_api(s, api):
        foreign = foreign_listener(s, pid if running else None)
        healthy = foreign is None
    return ServerStatus(running, healthy, pid if running else None, api,
                        api.removesuffix("/api"), _log_file(s), foreign)


def _foreign_error(s: StudioSettings, what: str) -> ServerDownError:
    return ServerDownError(f"something answers at {s.prefect.url()} but it is not this studio's Prefect server "
                           f"(STUDIO_HOME {s.home}): {what}. The studio sends it nothing. Stop that process or "
                           "give this home its own port with STUDIO_PREFECT__PORT.")


@contextlib.contextmanager
def _start_lock(s: StudioSettings) -> Iterator[None]:
    """One starter per home at a time (an OS lock: released if the holder dies)."""
    s.run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(s.run_dir / "prefect-server.lock", os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + s.prefect.start_timeout_s + 30
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServerDownError("another studio process has been starting the Prefect server for too "
                                          f"long; see {_log_file(s)}") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


def start_server(s: StudioSettings | None = None, wait: bool = True) -> ServerStatus:
    """Start the server in the background (own session, survives the CLI), record its PID and log.
    Under the home's start lock: a second caller waits, then finds the first one's server."""
    s = s or get_settings()
    with _start_lock(s):
        return _start_locked(s, wait)


def _start_locked(s: StudioSettings, wait: bool) -> ServerStatus:
    st = server_status(s)
    if st.healthy:
        return st
    if st.foreign:
        raise _foreign_error(s, st.foreign)
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
            st = server_status(s)
            if st.foreign:
                raise _foreign_error(s, st.foreign)
            return st
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
    if _is_local_api(s, url) and (foreign := foreign_listener(s, _recorded_pid(s))):
        raise _foreign_error(s, foreign)
    return url


def ensure_result_storage(s: StudioSettings | None = None) -> str | None:
    """Task results are not persisted on shared storage (the artifact store is the cache), so no result block
    is needed; this removes the RemoteFileSystem block older versions saved, which held the S3 secret in clear
    (readable through /api/block_documents). Returns None."""
    s = s or get_settings()
    if not s.store_uri.startswith("s3://"):
        return None
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as c:
        try:
            doc = c.read_block_document_by_name(results_block_name(s), "remote-file-system")
        except ObjectNotFound:
            return None
        c.delete_block_document(doc.id)
    return None
