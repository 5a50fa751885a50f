"""The gpu profile's required and optional tools: `auto` picks gpu when CUDA and the required models are there,
whatever the optional ones (motion, SAM2, Wav2Lip); a stage whose optional model is missing warns with the
pre-fetch command and falls back; a missing required model (SDXL) is a clear error."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import yaml

from studio.configs.settings import get_settings
from studio.configs.vocabulary import Dialogue, Shot
from studio.resources.video.segment import SegmentSpec

REPO = Path(__file__).resolve().parents[2]
MISSING = {"ltx-video": "studio-tests/no-such-ltx", "sam2-hiera-large": "studio-tests/no-such-sam2",
           "wav2lip-gan": "studio-tests/no-such-wav2lip"}


def _configs(tmp: Path, required_present: bool) -> Path:
    """Every heavy required model at a local folder (or not), every optional one an uncached HF id."""
    dest = tmp / f"configs-{'with' if required_present else 'without'}-required"
    shutil.copytree(REPO / "configs", dest, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    models = yaml.safe_load((dest / "models.yaml").read_text())
    gpu = models["profiles"]["gpu"]
    for role in ("image", "llm", "judge", "face", "voice", "embedder"):
        entry = models["models"][gpu[role]]
        if entry.get("heavy") and entry.get("source"):
            folder = tmp / "weights" / gpu[role] / ("here" if required_present else "absent")
            if required_present:
                folder.mkdir(parents=True, exist_ok=True)
            entry["source"] = str(folder)
    for name, source in MISSING.items():
        models["models"][name]["source"] = source
    (dest / "models.yaml").write_text(yaml.safe_dump(models, sort_keys=False))
    return dest


@pytest.fixture
def use_configs(tmp_path, monkeypatch):
    def use(required_present: bool = True) -> Path:
        monkeypatch.setenv("STUDIO_CONFIG_DIR", str(_configs(tmp_path, required_present)))
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setenv("STUDIO_STORE__URI", str(tmp_path / "store"))
        get_settings.cache_clear()
        return tmp_path

    yield use
    get_settings.cache_clear()


def test_auto_ignores_the_optional_tools_and_needs_the_required_ones(use_configs, monkeypatch):
    from studio.resources import registry

    monkeypatch.setattr(registry, "cuda_available", lambda: True)
    use_configs(required_present=True)
    assert registry.resolve_profile("auto") == "gpu"  # LTX, SAM2 and Wav2Lip are all missing
    use_configs(required_present=False)
    assert registry.resolve_profile("auto") == "preview"  # SDXL (and the LLM) are not on this host
    monkeypatch.setattr(registry, "cuda_available", lambda: False)
    assert registry.resolve_profile("auto") == "preview"


def test_missing_optional_models_warn_with_the_prefetch_and_fall_back(use_configs, tmp_path, caplog):
    from studio.tasks.animation import plan_lipsync
    from studio.tasks.motion import animate_keyframe_shots
    from studio.tasks.segmentation import submit_masks

    use_configs()
    shot = Shot(id=1, source="generate", characters=["bunny"], action="Bunny speaks",
                dialogue=Dialogue(character="bunny", line="Hello."))
    spec = SegmentSpec(image=tmp_path / "key.png", voice=tmp_path / "line.wav", duration=2.0)
    log = logging.getLogger("studio.models")
    log.addHandler(caplog.handler)  # Prefect's logging set-up may stop studio loggers propagating to the root
    try:
        assert animate_keyframe_shots([shot], {1: object()}, {1: 2.0}, profile="gpu", seed=0) == {}
        assert submit_masks([(shot, spec)], "gpu") == {}
        assert plan_lipsync([(shot, spec)], "gpu") == (None, {})
    finally:
        log.removeHandler(caplog.handler)
    text = caplog.text
    for source in MISSING.values():
        assert f"huggingface-cli download {source}" in text
    assert "stills with their camera moves" in text and "drawn figure" in text and "lip flaps" in text


def test_a_missing_required_model_is_a_clear_error(use_configs):
    from studio.configs.errors import StudioError
    from studio.resources.image.request import ImageRequest
    from studio.tasks.images import image_backend, keyframe_recipe

    use_configs(required_present=False)
    with pytest.raises(StudioError, match="sdxl-base|does not exist"):
        keyframe_recipe(image_backend(profile="gpu"), ImageRequest(prompt="bunny", seed=1))
