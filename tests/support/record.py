"""Test helpers over the studio's records: the residency log's event counts, the file server in a thread."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from pathlib import Path


def count_events(rows: list[dict], event: str, model: str | None = None) -> int:
    """How many `event` rows (load, activate, park, unload) the residency record has, for `model` or any."""
    return sum(1 for r in rows if r["event"] == event and (model is None or r["model"] == model))


def serve_in_thread(roots: dict[str, Path], host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """The studio's read-only file server (the real handler) on a daemon thread of the test process."""
    from studio.resources.runtime.file_server import make_server

    server = make_server(roots, host, port)
    threading.Thread(target=server.serve_forever, name="studio-files", daemon=True).start()
    return server
