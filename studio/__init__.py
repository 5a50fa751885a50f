"""Animation AI Studio: one import root; `studio.flows`, `studio.tasks`, ... map the repo's top-level folders."""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"


def repo_root() -> Path | None:
    """The source checkout when installed editable (knowledge pack, prefect.yaml live there)."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else None


def knowledge_pack_dir() -> Path:
    """The demo knowledge pack shipped with the studio (`knowledge/` in the checkout)."""
    root = repo_root()
    if root and (root / "knowledge").is_dir():
        return root / "knowledge"
    return Path(__file__).resolve().parent / "knowledge"
