"""The studio's local Prefect server: 127.0.0.1, SQLite under STUDIO_HOME, filesystem lease storage.

One per home, and only its own: `start_server` runs under an OS lock (`run/prefect-server.lock`), so two
`studio make` with the server down start one server; a server counts as the studio's only when the process
listening on its port is the one in the pid file (or its child) — any other process answering `/api/health`
there is refused, never sent work. `PREFECT_SERVER_API_AUTH_STRING` (if set) protects the API: the server gets
it and every client process of the home sends it (`PREFECT_API_AUTH_STRING`). No credential is ever saved in
a Prefect block: S3 keys come from each process's environment.

Never Prefect's ephemeral mode for GPU work: there a kill -9 of a slot holder leaks the `gpu-heavy` slot
forever (no cleanup service runs there). `configure_prefect_env()` must run before `import prefect` in a
process — Prefect reads its settings at import — and the CLI does that first thing.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable

from studio.configs.errors import StudioError
from studio.configs.settings import StudioSettings, get_settings
from studio.resources.runtime.servers import ManagedServer, ServerStatus


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


def is_loopback(host: str) -> bool:
    """Whether a bind address stays on this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


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


def is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    """True when a Prefect API answers /health at `api_url` (which says nothing about whose it is)."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


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


class PrefectServer(ManagedServer):
    """This home's Prefect server: `prefect server start` on 127.0.0.1 with the settings of `server_env`."""

    name = "prefect"
    kind = "Prefect"
    error = ServerDownError

    def __init__(self, s: StudioSettings | None = None):
        self.s = s or get_settings()
        self.pid_file = self.s.run_dir / "prefect-server.pid"
        self.log_file = self.s.logs_dir / "prefect-server.log"
        self.start_timeout_s = self.s.prefect.start_timeout_s

    @property
    def url(self) -> str:
        return self.s.prefect.url()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "prefect", "server", "start", "--host", self.s.prefect.host,
                "--port", str(self.s.prefect.port)]

    def env(self) -> dict[str, str]:
        env = {**os.environ, **server_env(self.s)}
        env.pop("PREFECT_API_URL", None)  # the server must not try to talk to another one
        return env

    def is_healthy(self) -> bool:
        return is_healthy(self.url)

    def before_start(self) -> None:
        if not is_loopback(self.s.prefect.host) and not api_auth_string():
            raise ServerDownError(f"refusing to start the Prefect server on {self.s.prefect.host} (beyond this "
                                  "machine) without API auth: set PREFECT_SERVER_API_AUTH_STRING=user:password (and "
                                  "put a TLS-terminating proxy in front, see deployments/README.md), or keep "
                                  "STUDIO_PREFECT__HOST=127.0.0.1")
        self.s.prefect_home.mkdir(parents=True, exist_ok=True)

    def foreign_error(self, what: str) -> ServerDownError:
        return ServerDownError(f"something answers at {self.url} but it is not this studio's Prefect server "
                               f"(STUDIO_HOME {self.s.home}): {what}. The studio sends it nothing. Stop that "
                               "process or give this home its own port with STUDIO_PREFECT__PORT.")

    def status(self) -> ServerStatus:
        """A shared server named by PREFECT_API_URL counts when this home runs none of its own; the local port
        counts only when the process listening there is the one this home started."""
        pid = self.recorded_pid()
        api = (os.environ.get("PREFECT_API_URL") if self.s.prefect.api_url is None and pid is None else None) \
            or self.url
        healthy, foreign = is_healthy(api), None
        if healthy and _is_local_api(self.s, api):
            foreign = foreign_listener(self.s, pid)
            healthy = foreign is None
        return ServerStatus(self.name, api, pid is not None, healthy, pid, self.log_file, foreign,
                            ui_url=api.removesuffix("/api"))


def server_status(s: StudioSettings | None = None) -> ServerStatus:
    return PrefectServer(s).status()


def start_server(s: StudioSettings | None = None, wait: bool = True) -> ServerStatus:
    """Start the server in the background (own session, survives the CLI), record its PID and log.
    Under the home's start lock: a second caller waits, then finds the first one's server."""
    return PrefectServer(s).start(wait)


def stop_server(s: StudioSettings | None = None, timeout: float = 20.0) -> bool:
    return PrefectServer(s).stop(timeout)


def ensure_server(start: bool = True, say: Callable[[str], None] | None = None) -> ServerStatus:
    """The healthy server of this home, started (and `say` told so) when it is down and `start` allows; a
    foreign server on the port, or a down one with `start=False`, raises the error saying what to do."""
    st = server_status()
    if st.healthy:
        return st
    if st.foreign or not start:
        require_server()  # raises: not this studio's server, or how to start it
    if say:
        say(f"The Prefect server is not running: starting it (log {st.log})…")
    return start_server()


def require_server(s: StudioSettings | None = None) -> str:
    """The API URL, or a clear error saying how to start the server."""
    s = s or get_settings()
    url = os.environ.get("PREFECT_API_URL") or s.prefect.url()
    if not is_healthy(url):
        raise ServerDownError(f"no Prefect server answers at {url}. Start it with `studio server start` "
                              "(or pass --start-server); the studio never falls back to ephemeral mode, which "
                              "leaks GPU slots when a process is killed.")
    server = PrefectServer(s)
    if _is_local_api(s, url) and (foreign := foreign_listener(s, server.recorded_pid())):
        raise server.foreign_error(foreign)
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
