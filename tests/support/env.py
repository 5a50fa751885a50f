"""Ports and environments shared by the tests."""

from __future__ import annotations

import os
import socket
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def studio_env(**extra: str) -> dict[str, str]:
    """Environment for subprocesses (CLI, flow processes) that share this test session's home and server."""
    return {**os.environ, **extra}
