"""Expression exaggeration on the gpu profile with the tiny random-weight SDXL: the face region is inpainted,
the rest of the keyframe is untouched, a larger factor changes more, the face check re-rolls (bounded) and
records every score; and one heavy model at a time when SDXL and Wav2Lip share a job.
The portrait is matplotlib's sample photo of Grace Hopper (public domain)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from support.gpu_env import use_gpu_configs
from typer.testing import CliRunner

from studio.configs.settings import get_settings
from studio.resources.runtime.residency import overlapping_actives, read_residency_log

pytest.importorskip("mediapipe", reason="the face box and check come from mediapipe 0.10.x")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    import torch

    torch.set_num_threads(1)
    from studio.cli import app
    from studio.resources.video.wav2lip_net import random_wav2lip, save_wav2lip

    out = tmp_path_factory.mktemp("tiny-models")
    res = CliRunner().invoke(app, ["models", "tiny", "--out", str(out)])
    assert res.exit_code == 0, res.output
    configs = out / "configs"
    ckpt = save_wav2lip(random_wav2lip(0.125, seed=1), out / "wav2lip" / "tiny.pth")
    models = yaml.safe_load((configs / "models.yaml").read_text())
    models["models"]["wav2lip-gan"].update(source=str(ckpt), options={"width": 0.125})
    (configs / "models.yaml").write_text(yaml.safe_dump(models, sort_keys=False))
    return configs


@pytest.fixture
def gpu_env(tiny, tmp_path, monkeypatch):
    use_gpu_configs(monkeypatch, tiny, tmp_path)
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def portrait(tmp_path_factory) -> Path:
    import matplotlib

    src = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    out = tmp_path_factory.mktemp("face") / "keyframe.png"
    Image.open(src).convert("RGB").resize((256, 304)).save(out)
    return out


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_face_region_redrawn_outside_untouched_and_factor_scales_the_change(gpu_env, portrait):
    from studio.resources.image.expression_gpu import expression_prompt, expression_strength, inpaint_face
    from studio.resources.image.faces import face_box
    from studio.resources.registry import load_backend

    assert expression_strength(1.0) == 0.3 and expression_strength(2.5) == 0.675
    assert "extremely furious" in expression_prompt("a rabbit", "angry", 2.5)
    box = face_box(portrait)
    assert box is not None
    x0, y0, x1, y1 = box
    backend = load_backend("image")
    key = _rgb(portrait)
    outside = np.ones(key.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    change = {}
    for factor in (1.0, 2.5):
        out = gpu_env / f"x{factor}.png"
        meta = inpaint_face(backend, portrait, box, "angry", factor, 5, out, prompt="portrait of a woman")
        img = _rgb(out)
        assert img.shape == key.shape and meta["strength"] == expression_strength(factor)
        assert np.array_equal(img[outside], key[outside])  # nothing outside the face box moves
        change[factor] = float(np.abs(img[y0:y1, x0:x1] - key[y0:y1, x0:x1]).mean())
    assert change[1.0] > 0.5  # the face is redrawn
    # The tiny random VAE alone redraws much of the crop, so the margin is small — but deterministic.
    assert change[2.5] > change[1.0] * 1.03  # and more so for a climax beat (higher strength)
    again = gpu_env / "again.png"
    inpaint_face(backend, portrait, box, "angry", 2.5, 5, again, prompt="portrait of a woman")
    assert again.read_bytes() == (gpu_env / "x2.5.png").read_bytes()  # same inputs → same bytes


def test_below_threshold_rerolls_bounded_and_records_every_score(gpu_env, portrait):
    from support.record import count_events

    from studio.resources.image.faces import face_box
    from studio.resources.runtime.artifacts import ArtifactStore, Recipe
    from studio.tasks.expression import expression_recipe, make_exaggerated_keyframe
    from studio.tasks.images import face_embedder, image_backend

    store = ArtifactStore.from_settings()
    key_ref = store.put_file(
        Recipe(stage="keyframe", backend="test", params={"keyframe": "portrait"}), portrait, "image/png"
    )
    backend, embedder = image_backend(), face_embedder("mediapipe-face")
    box = face_box(portrait)
    # The tiny random SDXL draws no face: the check fails on every attempt (0.99 would fail a real one too).
    recipe = expression_recipe(backend, embedder, key_ref, box, "angry", 2.5, 11, 0.99, attempts=3)
    ref = make_exaggerated_keyframe(recipe, portrait, "portrait of a woman")
    extra = store.sidecar(ref)["extra"]
    assert [a["attempt"] for a in extra["attempts"]] == [0, 1, 2]  # bounded: exactly `attempts` renders
    assert len({a["seed"] for a in extra["attempts"]}) == 3  # each re-roll a new seed
    assert all(a["status"] in ("below-threshold", "no-face") for a in extra["attempts"])
    assert all("score" in a for a in extra["attempts"])
    assert extra["kept_original"] and store.local_path(ref).read_bytes() == portrait.read_bytes()
    loads = count_events(read_residency_log(), "load") + count_events(read_residency_log(), "activate")
    assert make_exaggerated_keyframe(recipe, portrait, "portrait of a woman") == ref  # stored: nothing rendered
    assert count_events(read_residency_log(), "load") + count_events(read_residency_log(), "activate") == loads
    # Without the check the first render is taken.
    unchecked = expression_recipe(backend, None, key_ref, box, "angry", 2.5, 11, None, attempts=3)
    extra = store.sidecar(make_exaggerated_keyframe(unchecked, portrait))["extra"]
    assert extra["chosen"] == 0 and [a["status"] for a in extra["attempts"]] == ["unchecked"]


def test_one_heavy_model_at_a_time_with_sdxl_and_wav2lip_in_one_job(gpu_env, portrait):
    from studio.resources.image.expression_gpu import inpaint_face
    from studio.resources.image.faces import face_box
    from studio.resources.media.audio_io import write_wav
    from studio.resources.registry import load_backend
    from studio.tasks.video import lipsync_backend

    box = face_box(portrait)
    sdxl, lips = load_backend("image"), lipsync_backend("gpu")
    t = np.arange(16000) / 16000
    voice = write_wav(gpu_env / "line.wav", 0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0), 16000)
    inpaint_face(sdxl, portrait, box, "happy", 2.0, 1, gpu_env / "e.png")
    lips.sync(portrait, voice, gpu_env / "a.mkv", box=box, fps=25)
    inpaint_face(sdxl, portrait, box, "happy", 2.0, 2, gpu_env / "f.png")
    lips.sync(portrait, voice, gpu_env / "b.mkv", box=box, fps=25)
    rows = read_residency_log()
    assert not overlapping_actives(rows)
    models = [r["model"] for r in rows if r["event"] in ("load", "activate")]
    assert len(models) == 4 and len(set(models)) == 2  # each loaded once, then switched by park/activate
    assert sum(r["event"] == "load" for r in rows) == 2
