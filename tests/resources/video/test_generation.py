"""Image-to-video motion (LTX-Video) on tiny random-weight models: the real diffusers pipeline loaded from a saved
folder with from_pretrained(local_files_only=True), the recipe-cached heavy task, missing weights, and the
residency record of a job that renders SDXL keyframes and then animates them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.gpu_env import use_gpu_config_dir
from support.record import count_events

from studio.configs.errors import StudioError
from studio.configs.schema import ModelEntry
from studio.configs.settings import GPU_HEAVY_TAG, get_settings
from studio.resources.media.frames import read_all_frames
from studio.resources.media.probe import require_video
from studio.resources.runtime.residency import get_residency, overlapping_actives, read_residency_log
from studio.resources.video.generation import DiffusersLTXVideoBackend, MotionRequest, clip_frames

REPO = Path(__file__).resolve().parents[3]
PROMPT = "big buck bunny running in the meadow, pixar style 3d animation"


@pytest.fixture(scope="module")
def tiny_configs(tmp_path_factory) -> Path:
    """Tiny SDXL (as `studio models tiny` builds it) + tiny LTX-Video, and a config folder pointing at both."""
    import torch

    from studio.resources.image.tiny_models import build_tiny_models, write_tiny_configs
    from studio.resources.video.tiny_video_models import build_tiny_ltx, write_tiny_video_configs

    torch.set_num_threads(1)  # the shared 2-core machine: one thread is far faster than two under load
    out = tmp_path_factory.mktemp("tiny-video")
    configs = write_tiny_configs(build_tiny_models(out, configs_dir=REPO / "configs"), REPO / "configs")
    return write_tiny_video_configs(configs, build_tiny_ltx(out / "ltx-video", configs_dir=configs))


@pytest.fixture
def gpu_env(tiny_configs, monkeypatch, isolated_store):
    use_gpu_config_dir(monkeypatch, tiny_configs)
    yield tiny_configs
    get_settings.cache_clear()


def _keyframe(path: Path, kind: int) -> Path:
    a = np.zeros((64, 64, 3), np.uint8)
    if kind:
        a[:, :32], a[:, 32:] = (220, 40, 40), (40, 40, 220)
    else:
        a[:32], a[32:] = (40, 200, 40), (240, 240, 240)
    Image.fromarray(a).save(path)
    return path


def _backend() -> DiffusersLTXVideoBackend:
    from studio.tasks.motion import video_backend

    return video_backend(profile="gpu")


def _clip(backend, image: Path, path: Path, seed: int = 3, seconds: float = 1.0) -> tuple[np.ndarray, dict]:
    meta = backend.render(backend.prepare(MotionRequest(image=image, prompt=PROMPT, seconds=seconds, seed=seed)),
                          path)
    return read_all_frames(path).astype(np.int16), meta


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_clip_frames_rule():
    assert clip_frames(4.0, 24, 121) == (96, 97)  # 8k+1 covering the shot
    assert clip_frames(1.0, 12, 17) == (12, 17)
    assert clip_frames(10.0, 24, 121) == (240, 121)  # capped: the rest holds the last frame


def test_tiny_ltx_through_the_backend_animates_the_keyframe(gpu_env, tmp_path):
    backend = _backend()
    assert type(backend).__name__ == "DiffusersLTXVideoBackend" and backend.heavy
    assert backend.model_id.startswith(str(gpu_env.parent / "ltx-video") + "@")
    k1, k2 = _keyframe(tmp_path / "k1.png", 0), _keyframe(tmp_path / "k2.png", 1)
    a, meta = _clip(backend, k1, tmp_path / "a.mkv")
    info = require_video(tmp_path / "a.mkv")
    assert a.shape == (12, 64, 64, 3) and round(info.fps) == 12  # 1 s at the configured 12 fps
    assert meta["generated_frames"] == 17 and meta["held_frames"] == 0 and meta["device"] == "cpu"
    assert np.abs(a[-1] - a[0]).mean() > 2 and np.abs(a[6] - a[0]).mean() > 2  # it moves
    # The keyframe conditions the clip: it alone makes the first frame (another seed keeps it), and another
    # keyframe gives another clip; the seed changes only the motion.
    b, _ = _clip(backend, k1, tmp_path / "b.mkv", seed=4)
    c, _ = _clip(backend, k2, tmp_path / "c.mkv")
    assert np.abs(a[0] - b[0]).max() <= 1 and np.abs(a[-1] - b[-1]).mean() > 1
    assert np.abs(a[0] - c[0]).mean() > 5 and np.abs(a - c).mean() > 5
    long, meta = _clip(backend, k1, tmp_path / "long.mkv", seconds=2.0)  # 24 frames > max_frames 17: held
    assert long.shape[0] == 24 and meta["held_frames"] == 7 and np.array_equal(long[16], long[-1])
    assert np.array_equal(long[:12], a)  # same seed, same generated frames


def test_a_clip_becomes_the_shot_segment(gpu_env, tmp_path):
    from studio.configs.vocabulary import Shot
    from studio.resources.video.config import OutputFormat
    from studio.resources.video.segment import render_segment_file
    from studio.tasks.shorts import segment_spec_for

    backend = _backend()
    shot = Shot(id=1, action="runs across the meadow", duration=1.5, camera_move="push-in", effects=[])
    clip = tmp_path / "clip.mkv"
    backend.render(backend.prepare(MotionRequest(image=_keyframe(tmp_path / "k.png", 0), prompt=PROMPT,
                                                 seconds=1.5)), clip)
    spec = segment_spec_for(shot, keyframe=tmp_path / "k.png", footage=None, voice=None, voice_s=None, clip=clip)
    assert spec.video == clip and spec.image is None and spec.effects == []  # the camera moves in the clip
    result = render_segment_file(spec, tmp_path / "seg.mp4", OutputFormat(width=128, height=72, fps=24))
    assert result.nframes == 36 and round(require_video(tmp_path / "seg.mp4").duration, 1) == 1.5


def test_same_recipe_same_bytes(gpu_env, tmp_path, monkeypatch):
    from studio.tasks.motion import animate_keyframe, motion_recipe

    backend = _backend()
    key = _keyframe(tmp_path / "k.png", 1)
    _clip(backend, key, tmp_path / "one.mkv")
    _clip(backend, key, tmp_path / "two.mkv")
    assert _sha(tmp_path / "one.mkv") == _sha(tmp_path / "two.mkv")
    recipe, req = motion_recipe(backend, MotionRequest(image=key, prompt=PROMPT, seconds=1.0, seed=3))
    ref = animate_keyframe.fn(recipe, req.model_dump(mode="json"))
    monkeypatch.setenv("STUDIO_STORE__URI", str(tmp_path / "other-store"))  # another store renders it anew
    get_settings.cache_clear()
    again = animate_keyframe.fn(recipe, req.model_dump(mode="json"))
    assert again.sha256 == ref.sha256 == _sha(tmp_path / "one.mkv") and again.uri != ref.uri


def test_missing_weights_name_the_model_and_the_prefetch(gpu_env, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-cache"))
    key = _keyframe(tmp_path / "k.png", 0)
    req = MotionRequest(image=key, prompt=PROMPT, seconds=1.0)

    def backend(source: str) -> DiffusersLTXVideoBackend:
        return DiffusersLTXVideoBackend("ltx-video", ModelEntry(modality="video", backend="diffusers-ltx-i2v",
                                                                source=source, heavy=True))

    with pytest.raises(StudioError) as e:
        backend("Lightricks/LTX-Video").prepare(req)
    assert "Lightricks/LTX-Video" in str(e.value) and "huggingface-cli download Lightricks/LTX-Video" in str(e.value)
    with pytest.raises(StudioError, match="does not exist"):
        backend(str(tmp_path / "no-such-model")).prepare(req)
    # Online but not pre-fetched: still never downloaded — the load fails with the same advice.
    monkeypatch.delenv("HF_HUB_OFFLINE")
    b = backend("Lightricks/LTX-Video")
    b.prepare(req)
    with pytest.raises(StudioError) as e:
        b.heavy_model().load("cpu")
    assert "huggingface-cli download Lightricks/LTX-Video" in str(e.value)


def test_task_tagged_heavy_until_stored_then_reused_without_a_load(gpu_env, tmp_path):
    from studio.tasks.caching import heavy_tags
    from studio.tasks.motion import animate_keyframe, motion_recipe

    backend = _backend()
    key = _keyframe(tmp_path / "k.png", 0)
    recipe, req = motion_recipe(backend, MotionRequest(image=key, prompt=PROMPT + ", night", seconds=1.0, seed=9))
    assert GPU_HEAVY_TAG in animate_keyframe.tags and GPU_HEAVY_TAG in heavy_tags(recipe, backend.heavy)
    ref = animate_keyframe.fn(recipe, req.model_dump(mode="json"))
    assert heavy_tags(recipe, backend.heavy) == set()  # stored: no GPU slot taken for it any more
    rows_before = len(read_residency_log())
    assert animate_keyframe.fn(recipe, req.model_dump(mode="json")) == ref
    assert read_residency_log()[rows_before:] == []  # reused: the model was not loaded nor activated
    from studio.resources.runtime.artifacts import ArtifactStore

    extra = ArtifactStore.from_settings().sidecar(ref)["extra"]
    assert extra["seed"] == 9 and extra["frames"] == 12 and extra["model"] == backend.model_id
    # A re-rendered keyframe re-animates its shot: the keyframe is in the recipe by content.
    _keyframe(key, 1)
    assert motion_recipe(backend, MotionRequest(image=key, prompt=PROMPT + ", night", seconds=1.0, seed=9)
                         )[0].key() != recipe.key()


def test_keyframes_then_motion_in_one_flow_one_model_at_a_time(gpu_env, prefect_server):
    import time

    from prefect import flow

    from studio.configs.vocabulary import Plan, Shot
    from studio.resources.image.request import image_request_from_shot
    from studio.tasks.caching import heavy_tags
    from studio.tasks.images import image_backend, keyframe_recipe, render_keyframe
    from studio.tasks.motion import animate_keyframe_shots

    plan = Plan(title="tiny", shots=[Shot(id=i, source="generate", characters=["bunny"], action=a)
                                     for i, a in ((1, "runs across the meadow"), (2, "jumps over a rock"),
                                                  (3, "waves hello"))])

    @flow
    def keyframes_then_motion() -> dict:
        backend = image_backend(profile="gpu")
        futures = {}
        for shot in plan.shots:  # the picture stage: every keyframe first
            recipe, req = keyframe_recipe(backend, image_request_from_shot(shot, plan, seed=shot.id))
            task = render_keyframe.with_options(tags=sorted(heavy_tags(recipe, backend.heavy)))
            futures[shot.id] = task.submit(recipe, req.model_dump(mode="json"))
        keyframes = {sid: f.result() for sid, f in futures.items()}
        return animate_keyframe_shots(plan.shots, keyframes, {s.id: 1.0 for s in plan.shots}, profile="gpu", seed=0)

    get_residency().unload_all()  # count this job's loads from a cold process cache
    t0 = time.time()
    clips = keyframes_then_motion()
    assert sorted(clips) == [1, 2, 3] and len({c.sha256 for c in clips.values()}) == 3
    rows = [r for r in read_residency_log() if r["t"] >= t0]
    assert overlapping_actives(rows) == []
    sdxl, ltx = _backend_names()
    assert count_events(rows, "load", sdxl) == 1 and count_events(rows, "load", ltx) == 1
    turns = [r["model"] for r in sorted(rows, key=lambda r: r["t"]) if r["event"] in ("load", "activate")]
    assert [m for i, m in enumerate(turns) if i == 0 or turns[i - 1] != m] == [sdxl, ltx]  # one switch per job
    assert count_events(rows, "activate", ltx) == 2  # three shots: one load, two activations, no reload
    t1 = time.time()
    assert keyframes_then_motion() == clips  # rerun: everything reused
    assert [r for r in read_residency_log() if r["t"] >= t1] == []


def _backend_names() -> tuple[str, str]:
    from studio.tasks.images import image_backend

    return image_backend(profile="gpu").heavy_model().name, _backend().heavy_model().name
