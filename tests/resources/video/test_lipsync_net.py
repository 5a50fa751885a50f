"""Wav2Lip in-process: a tiny random-weight generator (the published architecture at width 1/8) through the real
backend — face box from mediapipe on a real portrait, mel windows of a real piper voice line, residency, ffmpeg
— and the task's recipe cache. The portrait is matplotlib's sample photo of Grace Hopper (public domain)."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from support.gpu_env import use_gpu_configs
from support.record import count_events

from studio.configs.errors import StudioError
from studio.configs.settings import get_settings
from studio.resources.media.frames import read_all_frames
from studio.resources.media.probe import probe
from studio.resources.runtime.residency import overlapping_actives, read_residency_log
from studio.resources.video.wav2lip_net import Wav2Lip, random_wav2lip, read_state_dict, save_wav2lip

pytest.importorskip("mediapipe", reason="the face box comes from mediapipe 0.10.x")
REPO = Path(__file__).resolve().parents[3]
TINY_WIDTH = 0.125


@pytest.fixture(scope="module")
def portrait(tmp_path_factory) -> Path:
    import matplotlib

    src = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    out = tmp_path_factory.mktemp("face") / "keyframe.png"
    Image.open(src).convert("RGB").resize((256, 304)).save(out)  # a keyframe-sized still
    return out


@pytest.fixture(scope="module")
def voice_line(tmp_path_factory) -> Path:
    from studio.resources.voice.line import synthesize_line_file

    out = tmp_path_factory.mktemp("voice") / "line.wav"
    return synthesize_line_file("Luca", "Look at the sea!", "excited", 0.6, out).path


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return save_wav2lip(random_wav2lip(TINY_WIDTH, seed=3), tmp_path_factory.mktemp("w2l") / "wav2lip_tiny.pth")


def _configs(tmp: Path, source: str, width: float = TINY_WIDTH) -> Path:
    import shutil

    dest = tmp / "configs"
    shutil.copytree(REPO / "configs", dest, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    models = yaml.safe_load((dest / "models.yaml").read_text())
    models["models"]["wav2lip-gan"].update(source=source, options={"width": width})
    (dest / "models.yaml").write_text(yaml.safe_dump(models, sort_keys=False))
    return dest


@pytest.fixture
def gpu_env(tmp_path, tiny_ckpt, monkeypatch):
    torch.set_num_threads(1)
    use_gpu_configs(monkeypatch, _configs(tmp_path, str(tiny_ckpt)), tmp_path)
    yield tmp_path
    get_settings.cache_clear()


def test_published_architecture_and_checkpoint_format(tiny_ckpt):
    assert sum(p.numel() for p in Wav2Lip(1.0).parameters()) == 36_298_035  # the authors' generator
    raw = torch.load(tiny_ckpt, weights_only=True)
    assert all(k.startswith("module.") for k in raw["state_dict"])  # saved as the DataParallel checkpoints are
    state = read_state_dict(tiny_ckpt)
    assert "face_encoder_blocks.0.0.conv_block.0.weight" in state and "output_block.1.weight" in state
    with torch.no_grad():
        out = random_wav2lip(TINY_WIDTH)(torch.zeros(2, 1, 80, 16), torch.zeros(2, 6, 96, 96))
    assert out.shape == (2, 3, 96, 96) and float(out.min()) >= 0 and float(out.max()) <= 1


def test_registry_resolves_the_lipsync_backend(gpu_env, tiny_ckpt):
    from studio.resources.registry import import_backend_class, load_backend
    from studio.resources.video.lipsync import Wav2LipBackend

    assert import_backend_class("lipsync", "wav2lip") is Wav2LipBackend
    backend = load_backend("lipsync")  # the gpu profile's `lipsync` role
    assert backend.name == "wav2lip-gan" and backend.weights()[0] == tiny_ckpt
    assert backend.model_id.startswith("wav2lip-gan@") and backend.model_id.endswith("+w0.125")


def test_tiny_wav2lip_moves_only_the_mouth_and_keeps_the_voice(gpu_env, portrait, voice_line):
    from studio.resources.media.audio_io import audio_duration
    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.resources.video.lipsync import find_face_box
    from studio.tasks.video import lipsync_backend, lipsync_recipe, sync_lips

    box = find_face_box(portrait)
    assert box is not None
    x0, y0, x1, y1 = box
    assert 40 < x1 - x0 < 256 and 40 < y1 - y0 < 304
    backend = lipsync_backend("gpu")
    assert backend.heavy and backend.width == TINY_WIDTH
    fps, offset, seconds = 25, 0.3, round(audio_duration(voice_line) + 0.5, 3)
    recipe = lipsync_recipe(backend, portrait, voice_line, box, fps, seconds, offset)
    ref = sync_lips.fn(recipe, str(portrait), str(voice_line))
    clip = ArtifactStore.from_settings().local_path(ref)
    info = probe(clip)
    assert info.has_video and info.has_audio
    frames = read_all_frames(clip)
    assert len(frames) == round(seconds * fps)
    key = np.asarray(Image.open(portrait).convert("RGB"))
    outside = np.ones(key.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    for f in frames:
        assert np.array_equal(f[outside], key[outside])  # lossless, and nothing outside the face box changes
    upper = (slice(y0, y0 + (y1 - y0) // 2), slice(x0, x1))
    assert all(np.array_equal(f[upper], key[upper]) for f in frames)  # the eyes stay the keyframe's
    mouth = (slice(y0 + 2 * (y1 - y0) // 3, y1 - 4), slice(x0 + (x1 - x0) // 4, x1 - (x1 - x0) // 4))
    moves = [
        np.abs(a[mouth].astype(int) - b[mouth].astype(int)).mean() for a, b in zip(frames, frames[1:], strict=False)
    ]
    assert max(moves) > 1.0  # the mouth region follows the audio frame by frame
    meta = ArtifactStore.from_settings().sidecar(ref)["extra"]
    assert meta["frames"] == len(frames) and meta["box"] == list(box)


def test_same_recipe_same_bytes_and_rerun_loads_nothing(gpu_env, portrait, voice_line):
    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.resources.video.lipsync import find_face_box
    from studio.tasks.video import lipsync_backend, lipsync_recipe, sync_lips

    backend = lipsync_backend("gpu")
    recipe = lipsync_recipe(backend, portrait, voice_line, find_face_box(portrait), 25, None, 0.0)
    store = ArtifactStore.from_settings()
    first = sync_lips.fn(recipe, str(portrait), str(voice_line))
    a = store.local_path(first).read_bytes()
    store.local_path(first).unlink()  # gone: made again, the same bytes
    again = sync_lips.fn(recipe, str(portrait), str(voice_line))
    assert store.local_path(again).read_bytes() == a and again.sha256 == first.sha256
    rows = read_residency_log()
    used = count_events(rows, "load") + count_events(rows, "activate")
    assert used == 2  # one load, one activate (the second make): the model stayed parked in between
    sync_lips.fn(recipe, str(portrait), str(voice_line))  # stored: no model use at all
    rows = read_residency_log()
    assert count_events(rows, "load") + count_events(rows, "activate") == used


def test_missing_weights_name_the_model_and_how_to_fetch_it(tmp_path, monkeypatch):
    from studio.tasks.video import lipsync_backend

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for source, expect in [
        ("studio-tests/no-such-wav2lip", r"huggingface-cli download studio-tests/no-such-wav2lip"),
        (str(tmp_path / "nowhere" / "wav2lip_gan.pth"), r"Place the Wav2Lip checkpoint there"),
    ]:
        monkeypatch.setenv("STUDIO_CONFIG_DIR", str(_configs(tmp_path / source.replace("/", "_")[-20:], source)))
        get_settings.cache_clear()
        with pytest.raises(StudioError, match=expect) as err:
            lipsync_backend("gpu")
        assert "wav2lip-gan" in str(err.value)
    get_settings.cache_clear()


class _Payload:
    def __reduce__(self):
        return (print, ("arbitrary code ran",))


def test_a_pickle_of_arbitrary_objects_is_refused(tmp_path, capsys):
    from studio.resources.video.wav2lip_net import Wav2LipWeightsError, load_wav2lip

    bad = tmp_path / "wav2lip_gan.pth"
    bad.write_bytes(pickle.dumps({"state_dict": _Payload()}))
    with pytest.raises(Wav2LipWeightsError, match="weights_only"):
        load_wav2lip(bad, TINY_WIDTH)
    torch.save({"state_dict": {"x": _Payload()}}, tmp_path / "zip.pth")
    with pytest.raises(Wav2LipWeightsError, match="refused"):
        load_wav2lip(tmp_path / "zip.pth", TINY_WIDTH)
    assert "arbitrary code ran" not in capsys.readouterr().out


def test_no_face_falls_back_to_lip_flaps_with_a_warning(gpu_env, voice_line, caplog):
    from studio.configs.vocabulary import Dialogue, Shot
    from studio.resources.video.segment import SegmentSpec
    from studio.tasks.animation import sync_shot_lips

    blank = gpu_env / "sky.png"
    Image.new("RGB", (256, 160), (90, 140, 200)).save(blank)
    shot = Shot(id=1, action="the sky", characters=["luca"], dialogue=Dialogue(character="luca", line="Hi!"))
    spec = SegmentSpec(image=blank, voice=voice_line, duration=2.0)
    with caplog.at_level(logging.WARNING, logger="studio.animation"):
        assert sync_shot_lips([(shot, spec)], "gpu") == {}
    assert "no face detected" in caplog.text and "lip flaps" in caplog.text
    assert sync_shot_lips([(shot, spec)], "preview") == {}  # preview never runs Wav2Lip
    assert not overlapping_actives(read_residency_log())
