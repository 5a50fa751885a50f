"""Configs: every file validates; broken files give one clear error naming file, field and expectation,
exit code ≠ 0 from the CLI, and nothing is written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from studio.configs.errors import ConfigError
from studio.configs.schema import load_studio_config
from studio.configs.settings import get_settings

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture
def config_copy(tmp_path, monkeypatch):
    dst = tmp_path / "configs"
    shutil.copytree(CONFIGS, dst, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setenv("STUDIO_CONFIG_DIR", str(dst))
    get_settings.cache_clear()
    yield dst
    get_settings.cache_clear()


def test_shipped_configs_validate(config_copy):
    cfg = load_studio_config()
    assert "bunny" in cfg.characters.characters
    assert cfg.characters.resolve("Big Buck Bunny")[0] == "bunny"
    assert set(cfg.models.profiles) == {"preview", "gpu"}


@pytest.mark.parametrize("name,mutate,expect", [
    ("missing field", lambda t: t.replace("    description: A huge", "    descriptionX: A huge", 1),
     ["characters.yaml", "characters.bunny.description", "Field required"]),
    ("wrong type", lambda t: t.replace('prompt_tokens: ["big buck bunny"', 'prompt_tokens: 7 #', 1),
     ["characters.yaml", "characters.bunny.prompt_tokens", "valid list"]),
    ("invalid yaml", lambda t: t.replace("characters:\n", "characters:\n  - : [\n", 1),
     ["characters.yaml", "not valid YAML", "line"]),
    ("unknown lora reference", lambda t: t.replace("lora: luca-character", "lora: no-such-lora", 1),
     ["characters.yaml", "characters.luca.lora", "no-such-lora", "lora_registry.yaml"]),
])
def test_broken_characters_yaml_gives_clear_error(config_copy, name, mutate, expect):
    f = config_copy / "characters.yaml"
    f.write_text(mutate(f.read_text()))
    with pytest.raises(ConfigError) as ei:
        load_studio_config()
    msg = str(ei.value)
    for piece in expect:
        assert piece in msg, f"{name}: {piece!r} not in {msg!r}"


def test_models_yaml_profile_naming_unknown_model(config_copy):
    f = config_copy / "models.yaml"
    f.write_text(f.read_text().replace("image: storyboard,", "image: nope,", 1))
    with pytest.raises(ConfigError, match=r"profiles.preview.image names model 'nope'"):
        load_studio_config()


def test_cli_exits_nonzero_on_broken_config_and_writes_nothing(config_copy, tmp_path):
    (config_copy / "models.yaml").write_text("models: [unclosed\n")
    home = tmp_path / "home"
    env = {**os.environ, "STUDIO_HOME": str(home), "STUDIO_CONFIG_DIR": str(config_copy), "COLUMNS": "400"}
    r = subprocess.run([sys.executable, "-m", "studio.cli", "doctor"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode != 0
    assert "models.yaml" in r.stdout + r.stderr and "not valid YAML" in r.stdout + r.stderr
    assert not (home / "artifacts").exists() or not any((home / "artifacts").rglob("*.json"))


def test_doctor_checks_the_ffmpeg_renders_use(monkeypatch):
    """The doctor asks the media layer's one finder, so a wrong STUDIO_FFMPEG is reported, not a PATH ffmpeg."""
    from studio.resources.media.ffmpeg import ffmpeg_path, ffprobe_path
    from studio.resources.runtime.doctor import _check_ffmpeg

    assert _check_ffmpeg()[1] is True
    monkeypatch.setenv("STUDIO_FFMPEG", "/nonexistent/ffmpeg")
    ffmpeg_path.cache_clear()
    ffprobe_path.cache_clear()
    try:
        name, ok, detail = _check_ffmpeg()
        assert not ok and "STUDIO_FFMPEG=/nonexistent/ffmpeg does not exist" in detail
    finally:
        monkeypatch.delenv("STUDIO_FFMPEG")
        ffmpeg_path.cache_clear()
        ffprobe_path.cache_clear()
