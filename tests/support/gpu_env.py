"""The gpu profile pointed at a folder of test configs (tiny models), with its own home and artifact store."""

from __future__ import annotations

from pathlib import Path

from studio.configs.settings import get_settings


def use_gpu_config_dir(monkeypatch, configs: Path) -> None:
    """The gpu profile with `configs` (tiny models), offline; home and store as they are."""
    monkeypatch.setenv("STUDIO_CONFIG_DIR", str(configs))
    monkeypatch.setenv("STUDIO_PROFILE", "gpu")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    get_settings.cache_clear()


def use_gpu_configs(monkeypatch, configs: Path, tmp: Path) -> None:
    monkeypatch.setenv("STUDIO_HOME", str(tmp / "home"))
    monkeypatch.setenv("STUDIO_STORE__URI", str(tmp / "store"))
    use_gpu_config_dir(monkeypatch, configs)
