"""The one lifecycle of the background servers the studio manages (Prefect, llama.cpp/vLLM, GPT-SoVITS): a pid
file, a log, a start lock, a health wait, a stop of the whole process group, and one status type.

A server is started in its own session (`start_new_session`), so stopping it stops its children too; the pid
file records who was started, and a server counts as running only while that process lives. Starting runs
under an OS lock beside the pid file, so two processes that find the server down start it once. A subclass
says what to run (`command`), how to tell it is up (`is_healthy`), and — optionally — who else answers on its
address (`foreign`), which is refused rather than taken for ours.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from studio.configs.errors import StudioError


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True


def tail_log(path: Path, n: int = 20) -> str:
    """The last `n` lines of a log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def stop_process_group(pid: int, timeout_s: float = 15.0) -> None:
    """SIGTERM a server started in its own session (children too), then SIGKILL what is left after `timeout_s`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


@contextlib.contextmanager
def os_lock(path: Path, timeout_s: float | None = None,
            on_timeout: Callable[[], Exception] | None = None) -> Iterator[int]:
    """An exclusive `flock` on `path` (created if needed), across processes; the kernel releases it the instant
    the holder exits or is killed. Yields the open descriptor (the holder may note itself in the file).
    `timeout_s` None waits for ever; past it, `on_timeout()` is raised (default: TimeoutError)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    start = time.monotonic()
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if timeout_s is not None and time.monotonic() - start > timeout_s:
                    raise (on_timeout() if on_timeout else TimeoutError(f"{path} stayed locked")) from None
                time.sleep(0.05)
        yield fd
    finally:
        os.close(fd)  # closing drops the flock


@dataclass
class ServerStatus:
    """What `studio … status` shows of a managed server."""

    name: str
    url: str
    running: bool  # the recorded process lives
    healthy: bool  # it answers, as this server
    pid: int | None
    log: Path
    foreign: str | None = None  # another process answers on the address: refused, never sent work
    sleeping: bool | None = None  # vLLM sleep mode
    ui_url: str | None = None  # where a person looks (the Prefect UI)

    def as_dict(self) -> dict:
        return {**asdict(self), "log": str(self.log)}


class ManagedServer:
    """Start / health / stop / status of one local server process (see the module docstring)."""

    name: str = "server"
    kind: str = "server"
    error: type[StudioError] = StudioError  # what start/wait failures raise (a subclass says which)
    pid_file: Path
    log_file: Path
    start_timeout_s: float = 60.0
    cwd: Path | None = None

    # ------------------------------------------------------------------ what a subclass defines
    @property
    def url(self) -> str:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str] | None:
        return None  # inherit this process's environment

    def is_healthy(self) -> bool:
        raise NotImplementedError

    def foreign(self) -> str | None:
        """Why whatever answers on our address is not this server (None: nothing foreign there)."""
        return None

    def foreign_error(self, what: str) -> StudioError:
        return self.error(f"something else answers at {self.url}: {what}. The studio sends it nothing; stop it "
                          "or give this server another port.")

    def before_start(self) -> None:
        """Checks that must pass before a start (raise `self.error` saying what to change)."""

    def pid_note(self) -> str:
        return ""  # extra words after the pid in the pid file

    # ------------------------------------------------------------------ state
    def recorded_pid(self) -> int | None:
        """The pid of the process this studio started, while it lives."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def status(self) -> ServerStatus:
        pid = self.recorded_pid()
        healthy = self.is_healthy()
        foreign = None if (healthy or pid) else self.foreign()
        return ServerStatus(self.name, self.url, pid is not None, healthy and foreign is None, pid, self.log_file,
                            foreign)

    # ------------------------------------------------------------------ lifecycle
    def start(self, wait: bool = True) -> ServerStatus:
        """Start the server unless it already runs (one starter at a time); wait until it is healthy."""
        def stuck() -> Exception:
            return self.error(f"another studio process has been starting the {self.kind} server for too long; "
                              f"see {self.log_file}")

        with os_lock(self.pid_file.with_suffix(".lock"), self.start_timeout_s + 30, stuck):
            st = self.status()
            if st.healthy:
                return st
            if st.foreign:
                raise self.foreign_error(st.foreign)
            if not st.running:
                self.before_start()
                self._spawn()
        return self.wait_healthy() if wait else self.status()

    def _spawn(self) -> None:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        argv = self.command()
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(argv, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=self.env(), start_new_session=True)
        self.pid_file.write_text(f"{proc.pid} {self.pid_note()}".rstrip() + "\n")

    def wait_healthy(self) -> ServerStatus:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            st = self.status()
            if st.healthy:
                return st
            if st.foreign:
                raise self.foreign_error(st.foreign)
            if not st.running:
                raise self.error(f"the {self.kind} server '{self.name}' exited while starting. Last log lines "
                                 f"({self.log_file}):\n{tail_log(self.log_file)}")
            time.sleep(0.25)
        raise self.error(f"the {self.kind} server '{self.name}' did not become healthy within "
                         f"{self.start_timeout_s:.0f}s; see {self.log_file}")

    def stop(self, timeout_s: float = 15.0) -> bool:
        """Stop the process group this studio started. False when nothing of ours was running."""
        pid = self.recorded_pid()
        if pid is not None:
            stop_process_group(pid, timeout_s)  # own session: its children go too
        self.pid_file.unlink(missing_ok=True)
        return pid is not None
