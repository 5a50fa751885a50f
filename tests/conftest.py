"""Test session set-up: a private STUDIO_HOME and a real Prefect server on 127.0.0.1.

The environment is set here, at conftest import, because Prefect reads its settings when it is imported.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from support.env import free_port as _free_port
from support.env import studio_env  # noqa: F401  (re-exported for older imports)

_HOME = Path(tempfile.mkdtemp(prefix="studio-test-home-"))
os.environ["STUDIO_HOME"] = str(_HOME)
os.environ.setdefault("STUDIO_PREFECT__PORT", str(_free_port()))
os.environ.setdefault("STUDIO_LLM__PORT", str(_free_port()))
os.environ.pop("PREFECT_API_URL", None)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from studio.configs.settings import get_settings  # noqa: E402
from studio.resources.runtime.prefect_server import configure_prefect_env  # noqa: E402

get_settings.cache_clear()
configure_prefect_env()

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def studio_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def prefect_server(studio_home: Path):
    """A real Prefect API server on loopback, started through the studio's own `start_server`."""
    from studio.resources.runtime.prefect_server import start_server, stop_server

    st = start_server()
    from studio.resources.runtime.gpu_limit import ensure_gpu_limit

    ensure_gpu_limit()
    yield st.url
    stop_server()


@pytest.fixture(scope="session", autouse=True)
def _stop_managed_servers_at_exit(studio_home: Path):
    """LLM/TTS servers the studio starts in the background (PID files under run/) die with the session."""
    yield
    import signal

    for pid_file in (studio_home / "run").glob("*.pid"):
        if pid_file.name == "prefect-server.pid":
            continue  # stopped by its own fixture
        try:
            pid = int(pid_file.read_text().split()[0])
            os.killpg(pid, signal.SIGTERM)
        except (ValueError, OSError):
            try:
                os.kill(pid, signal.SIGTERM)
            except (OSError, UnboundLocalError):
                pass


@pytest.fixture
def isolated_store(tmp_path, monkeypatch):
    """A fresh artifact store folder for one test (settings re-read)."""
    monkeypatch.setenv("STUDIO_STORE__URI", str(tmp_path / "store"))
    get_settings.cache_clear()
    yield tmp_path / "store"
    get_settings.cache_clear()
