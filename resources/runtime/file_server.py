"""A read-only HTTP file server for the artifact store and the output folders, so the Prefect UI can show the
run's pictures and play its short (a browser opens neither `file://` links nor images without an http URL).

- GET/HEAD only, `/files/<root>/<path>` where <root> is one of the named folders (`store`, `shorts`); a path
  that resolves outside its root (`..`, symlinks, absolute names) answers 404, as does anything not a file.
- Single byte ranges (`Range: bytes=a-b`, `a-`, `-n`) answer 206 with Content-Range, so `<video>` can seek;
  `video/mp4`, `image/png`, subtitles as UTF-8 text.
- `/metrics`: the studio's Prometheus metrics (see metrics.py), served from the same loopback port.
- Binds 127.0.0.1 by default (`STUDIO_FILES__HOST` to change).

`python -m studio.resources.runtime.file_server` serves the folders of the current settings; `studio server
start` runs it beside the Prefect server.
"""

from __future__ import annotations

import argparse
import mimetypes
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from studio.configs.errors import StudioError
from studio.configs.settings import StudioSettings, get_settings
from studio.resources.runtime.servers import ManagedServer

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
TYPES = {".mp4": "video/mp4", ".png": "image/png", ".jpg": "image/jpeg", ".wav": "audio/wav",
         ".srt": "text/plain; charset=utf-8", ".json": "application/json", ".jsonl": "text/plain; charset=utf-8"}
CHUNK = 1 << 16


def served_roots(s: StudioSettings | None = None) -> dict[str, Path]:
    """The folders the file server exposes: the local artifact store and the default output folder."""
    s = s or get_settings()
    roots = {"shorts": s.home / "shorts"}
    if "://" not in s.store_uri or s.store_uri.startswith("file://"):
        roots["store"] = Path(s.store_uri.removeprefix("file://"))
    return {k: v.expanduser().resolve() for k, v in roots.items()}


def file_url(path: Path | str, s: StudioSettings | None = None) -> str | None:
    """The http URL of a local file under one of the served roots, or None when it lies outside them."""
    s = s or get_settings()
    if not s.files.enabled:
        return None
    p = Path(path).expanduser().resolve()
    for name, root in served_roots(s).items():
        if p.is_relative_to(root):
            rel = urllib.parse.quote(p.relative_to(root).as_posix())
            return f"{s.files.url()}/files/{name}/{rel}"
    return None


def resolve_request(roots: dict[str, Path], url_path: str) -> Path | None:
    """The file a request path names, or None when it is not a file inside its root (no path escapes)."""
    parts = urllib.parse.unquote(urllib.parse.urlsplit(url_path).path).split("/", 3)
    if len(parts) != 4 or parts[0] != "" or parts[1] != "files" or parts[2] not in roots or not parts[3]:
        return None
    root = roots[parts[2]]
    if "\x00" in parts[3] or Path(parts[3]).is_absolute():
        return None
    try:
        target = (root / parts[3]).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """(start, end inclusive) for a satisfiable single range; None: no/ignored header; False: unsatisfiable."""
    if not header:
        return None
    m = RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # multi-range or malformed: serve the whole file (RFC 9110 allows ignoring Range)
    if not m.group(1):  # suffix: the last n bytes
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else False
    start = int(m.group(1))
    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if start >= size or end < start:
        return False
    return start, end


class FileHandler(BaseHTTPRequestHandler):
    server_version = "studio-files/1"
    roots: dict[str, Path] = {}

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        pass  # quiet: the UI fetches many thumbnails

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._serve(body=False)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.split("?")[0] == "/metrics":
            return self._metrics()
        self._serve(body=True)

    def _refuse(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "read-only")

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

    def _metrics(self) -> None:
        from studio.resources.runtime.metrics import render_metrics

        body, ctype = render_metrics()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _serve(self, body: bool) -> None:
        path = resolve_request(self.roots, self.path)
        if path is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        size = path.stat().st_size
        rng = parse_range(self.headers.get("Range"), size)
        if rng is False:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end = rng if rng else (0, size - 1)
        self.send_response(HTTPStatus.PARTIAL_CONTENT if rng else HTTPStatus.OK)
        ctype = TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self.send_header("Content-Type", ctype)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(max(0, end - start + 1)))
        self.send_header("Cache-Control", "public, max-age=3600")
        self.send_header("Access-Control-Allow-Origin", "*")
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if body and size:
            with open(path, "rb") as f:
                f.seek(start)
                _copy(f, self.wfile, end - start + 1)


def _copy(src, dst, n: int) -> None:
    try:
        while n > 0:
            block = src.read(min(CHUNK, n))
            if not block:
                break
            dst.write(block)
            n -= len(block)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the browser stopped reading (seeking in a video does this)


def make_server(roots: dict[str, Path], host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A ready server (not yet serving); port 0 picks a free one (`server.server_address[1]`)."""
    for root in roots.values():
        root.mkdir(parents=True, exist_ok=True)
    handler = type("BoundFileHandler", (FileHandler,), {"roots": {k: Path(v).resolve() for k, v in roots.items()}})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


# ----------------------------------------------------------------------------- the background process
class FileServer(ManagedServer):
    """The read-only file server as a background process of this home (started beside the Prefect server)."""

    name = "files"
    kind = "file"

    def __init__(self, s: StudioSettings | None = None, timeout_s: float = 15.0):
        self.s = s or get_settings()
        self.pid_file = self.s.run_dir / "file-server.pid"
        self.log_file = self.s.logs_dir / "file-server.log"
        self.start_timeout_s = timeout_s

    @property
    def url(self) -> str:
        return self.s.files.url()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "studio.resources.runtime.file_server"]

    def is_healthy(self) -> bool:
        return is_serving(self.s)

    def foreign_error(self, what: str) -> StudioError:
        return StudioError(f"the file server's port is taken ({what}); set STUDIO_FILES__PORT to another port "
                           "(or STUDIO_FILES__ENABLED=false)")


def is_serving(s: StudioSettings | None = None, timeout: float = 1.0) -> bool:
    """True when the file server answers on its port (its /metrics)."""
    s = s or get_settings()
    try:
        with urllib.request.urlopen(f"{s.files.url()}/metrics", timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_file_server(s: StudioSettings | None = None, timeout_s: float = 15.0) -> str | None:
    """Start the file server in the background (own session, PID and log under STUDIO_HOME) unless it already
    answers; its base URL, or None when `STUDIO_FILES__ENABLED=false`."""
    s = s or get_settings()
    if not s.files.enabled:
        return None
    try:
        return FileServer(s, timeout_s).start().url
    except StudioError as e:
        raise StudioError(f"{e}\nIs the port in use? Set STUDIO_FILES__PORT to another port (or "
                          "STUDIO_FILES__ENABLED=false).") from None


def stop_file_server(s: StudioSettings | None = None) -> bool:
    return FileServer(s).stop(5.0)


def main(argv: list[str] | None = None) -> None:
    s = get_settings()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default=s.files.host)
    ap.add_argument("--port", type=int, default=s.files.port)
    args = ap.parse_args(argv)
    server = make_server(served_roots(s), args.host, args.port)
    print(f"serving {', '.join(f'{k}={v}' for k, v in served_roots(s).items())} at "
          f"http://{args.host}:{server.server_address[1]} (pid {os.getpid()})", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
