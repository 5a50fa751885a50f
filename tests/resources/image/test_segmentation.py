"""SAM2 segmentation on a tiny random-weight model through the real backend (from_pretrained of a saved folder,
residency, recipe-cached mask artifacts), parody cut-outs of footage and the cut-out animator with a mask.

Random weights give random masks, so the SAM2 tests check the plumbing (size, binary values, determinism,
reuse, one heavy model at a time, the mask really used as the cut-out's alpha); the compositing and the
animator are also checked with masks known from synthetic pictures."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.gpu_env import use_gpu_config_dir
from support.record import count_events
from support.video_clips import write_video

from studio.configs.settings import get_settings
from studio.configs.vocabulary import Shot
from studio.resources.media.ffmpeg import ffmpeg_path
from studio.resources.runtime.residency import get_residency, overlapping_actives, read_residency_log
from studio.resources.video.config import OutputFormat
from studio.resources.video.segment import SegmentSpec

FMT = OutputFormat(width=160, height=90, fps=8)
MAGENTA = np.array([255, 0, 255], np.uint8)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """Tiny SDXL (for the residency test) and tiny SAM2, and a config folder whose gpu profile uses them."""
    import torch

    torch.set_num_threads(1)
    from studio.resources.image.tiny_models import build_tiny_models, write_tiny_configs
    from studio.resources.image.tiny_sam2 import build_tiny_sam2, use_tiny_sam2

    out = tmp_path_factory.mktemp("tiny-seg")
    configs = write_tiny_configs(build_tiny_models(out), get_settings().configs_path)
    use_tiny_sam2(configs, build_tiny_sam2(out / "sam2"))
    return configs


@pytest.fixture
def gpu_env(tiny, monkeypatch, isolated_store):
    use_gpu_config_dir(monkeypatch, tiny)
    yield tiny
    get_settings.cache_clear()


def _keyframe(path: Path, w: int = 96, h: int = 64) -> Path:
    """A synthetic keyframe: a magenta figure on a green-blue gradient (no face: the centre box prompt)."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 2 % 256, 120 + y, 200 - y], axis=-1).astype(np.uint8)
    img[(x - w / 2) ** 2 / 16**2 + (y - h / 2) ** 2 / 24**2 < 1] = MAGENTA
    Image.fromarray(img).save(path)
    return path


def _footage(path: Path, n: int = 16) -> Path:
    """A magenta square crossing a textured field, 160×90 at 8 fps."""
    from support.video_clips import texture

    bg = texture(90, 160, seed=5)

    def frames():
        for i in range(n):
            f = bg.copy()
            x = 20 + 6 * i
            f[30:60, x:x + 24] = MAGENTA
            yield f

    return write_video(path, frames(), 8, (160, 90))


def _decode(path: Path, w: int, h: int) -> np.ndarray:
    raw = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "pipe:1"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def _sam2_rows(rows: list[dict], since: float = 0.0) -> list[dict]:
    """SAM2's residency rows of this process (the log is shared by every test of the session)."""
    return [r for r in rows if r["model"].startswith("sam2-") and r["pid"] == os.getpid() and r["t"] >= since]


# --------------------------------------------------------------------------- SAM2 through the real backend
def test_keyframe_mask_is_a_binary_artifact_reused_on_rerun_and_reproducible(gpu_env, tmp_path, monkeypatch):
    from studio.resources.image.segmentation import Sam2SegmenterBackend, load_mask
    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.tasks.segmentation import keyframe_mask_recipe, segment_keyframe, segmenter_backend

    backend = segmenter_backend("gpu")
    assert isinstance(backend, Sam2SegmenterBackend) and backend.heavy
    resident = backend.heavy_model().name in get_residency().resident()  # loaded by an earlier test of this process
    t0 = time.time()
    assert backend.model_id.startswith(str(gpu_env.parent / "sam2") + "@")  # path@content fingerprint
    key = _keyframe(tmp_path / "key.png")
    recipe = keyframe_mask_recipe(backend, key)
    ref = segment_keyframe.fn(recipe, str(key))
    store = ArtifactStore.from_settings()
    raw = np.asarray(Image.open(store.local_path(ref)))
    assert raw.shape == (64, 96) and set(np.unique(raw)) <= {0, 255}  # the keyframe's size, binary
    assert load_mask(store.local_path(ref)).dtype == bool
    extra = store.sidecar(ref)["extra"]
    assert extra["prompt_from"] == "centre" and extra["model"] == backend.model_id and extra["size"] == [96, 64]
    loads = count_events(_sam2_rows(read_residency_log(), since=t0), "load")
    acts = count_events(_sam2_rows(read_residency_log(), since=t0), "activate")
    assert loads == (0 if resident else 1) and loads + acts == 1  # one use: a load, or an activation if parked
    assert segment_keyframe.fn(keyframe_mask_recipe(backend, key), str(key)) == ref  # stored: not run again
    rows = _sam2_rows(read_residency_log(), since=t0)
    assert count_events(rows, "load") == loads and count_events(rows, "activate") == acts
    # same recipe in another store (a fresh host) → the same bytes
    monkeypatch.setenv("STUDIO_STORE__URI", str(tmp_path / "store2"))
    get_settings.cache_clear()
    again = segment_keyframe.fn(keyframe_mask_recipe(segmenter_backend("gpu"), key), str(key))
    assert again.sha256 == ref.sha256 and again.key == ref.key


def test_footage_masks_one_per_output_frame(gpu_env, tmp_path):
    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.resources.video.cutout import read_mask_clip
    from studio.tasks.segmentation import footage_mask_recipe, segment_footage, segmenter_backend

    clip = _footage(tmp_path / "run.mp4")
    backend = segmenter_backend("gpu")
    recipe = footage_mask_recipe(backend, clip, 0.5, 1.5, fmt=FMT)
    ref = segment_footage.fn(recipe, str(clip))
    store = ArtifactStore.from_settings()
    masks = read_mask_clip(store.local_path(ref))
    assert masks.shape == (8, 90, 160) and masks.dtype == bool  # 1 s at 8 fps, at the output width
    raw = _decode(store.local_path(ref), 160, 90)
    assert set(np.unique(raw)) <= {0, 255}  # lossless: the mask values survive the clip
    assert store.sidecar(ref)["extra"]["nframes"] == 8
    assert footage_mask_recipe(backend, clip, 0.5, 1.75, fmt=FMT).key() != recipe.key()


def test_missing_weights_name_the_model_and_how_to_prefetch(monkeypatch, tmp_path):
    from studio.resources.runtime.model_sources import ModelNotAvailableError
    from studio.tasks.segmentation import keyframe_mask_recipe, segmenter_backend

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    backend = segmenter_backend(name="sam2-hiera-tiny")  # facebook/sam2.1-hiera-tiny, never fetched here
    with pytest.raises(ModelNotAvailableError) as e:
        keyframe_mask_recipe(backend, _keyframe(tmp_path / "k.png"))
    msg = str(e.value)
    assert "facebook/sam2.1-hiera-tiny" in msg and "huggingface-cli download facebook/sam2.1-hiera-tiny" in msg


def test_one_heavy_model_at_a_time_with_sam2_and_sdxl_in_one_job(gpu_env, tmp_path):
    from studio.resources.image.faces import _read_rgb
    from studio.resources.image.request import ImageRequest
    from studio.resources.registry import load_backend
    from studio.tasks.segmentation import segmenter_backend

    sdxl, sam2 = load_backend("image"), segmenter_backend("gpu")
    before = len(read_residency_log())
    sdxl.render(sdxl.prepare(ImageRequest(prompt="a rabbit in a meadow", seed=1)), tmp_path / "a.png")
    rgb = _read_rgb(tmp_path / "a.png")
    masks, _ = sam2.segment([rgb, rgb], [(8, 8, 56, 56)] * 2)
    assert masks[0].shape == (64, 64) and np.array_equal(masks[0], masks[1])
    sdxl.render(sdxl.prepare(ImageRequest(prompt="a rabbit in a meadow", seed=2)), tmp_path / "b.png")
    rows = read_residency_log()[before:]
    assert overlapping_actives(read_residency_log()) == []
    names = [r["model"].split("@")[0] for r in rows if r["event"] in ("load", "activate")]
    assert "sdxl-base" in names and "sam2-hiera-large" in names
    # each switch parks the previous model before the next one is active
    events = [(r["event"], r["model"].split("@")[0]) for r in rows if r["event"] != "unload"]
    active = None
    for ev, name in events:
        if ev in ("load", "activate"):
            assert active is None, events
            active = name
        elif ev == "park":
            assert active == name
            active = None


# --------------------------------------------------------------------------- parody cut-outs
def test_cutout_pixels_come_from_the_source_inside_the_mask_and_the_background_outside(tmp_path):
    from studio.resources.video.cutout import read_mask_clip, render_cutout_clip, window_frames, write_mask_clip

    clip = _footage(tmp_path / "run.mp4")
    frames = window_frames(clip, 0.0, 1.5, 8, 160)
    assert frames.shape == (12, 90, 160, 3)
    # a known mask: the magenta figure, found by colour (not by SAM2)
    known = np.abs(frames.astype(int) - MAGENTA.astype(int)).sum(axis=3) < 90
    write_mask_clip(list(known), 8, tmp_path / "masks.mkv")
    masks = read_mask_clip(tmp_path / "masks.mkv")
    assert np.array_equal(masks, known)
    bg = np.zeros((90, 160, 3), np.uint8)
    bg[..., 1] = 200
    render_cutout_clip(frames, masks, bg, 8, tmp_path / "cut.mkv")
    out = _decode(tmp_path / "cut.mkv", 160, 90)
    assert len(out) == 12
    for f, src, m in zip(out, frames, masks, strict=True):
        assert np.array_equal(f[~m], np.broadcast_to(bg, f.shape)[~m])  # outside: the new background
        assert np.array_equal(f[m], src[m])  # inside: the source footage
        assert m.mean() > 0.03


def test_footage_shot_with_cutout_effect_becomes_a_cutout_segment_with_the_sam2_mask(gpu_env, tmp_path):
    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.resources.video.cutout import read_mask_clip, scenery_picture, window_frames
    from studio.tasks.segmentation import (
        cutout_kind,
        cutout_segment_recipe,
        footage_mask_recipe,
        make_cutout_segment,
        segment_footage,
        segmenter_backend,
    )

    clip = _footage(tmp_path / "run.mp4")
    shot = Shot(id=3, source="footage", action="The bunny runs", location="beach", effects=["cutout"])
    spec = SegmentSpec(video=clip, start=0.5, end=1.5, effects=[{"name": "cutout"}])
    assert cutout_kind(shot, spec, "gpu") == "footage" and cutout_kind(shot, SegmentSpec(video=clip), "gpu") is None
    mask = segment_footage.fn(footage_mask_recipe(segmenter_backend("gpu"), clip, 0.5, 1.5, fmt=FMT), str(clip))
    recipe = cutout_segment_recipe(shot, spec, mask, seed=4, fmt=FMT)
    seg = make_cutout_segment(recipe, shot, spec, mask, seed=4)
    store = ArtifactStore.from_settings()
    extra = store.sidecar(seg)["extra"]
    assert extra["nframes"] == 8 and extra["cutout"]["mask"] == mask.key
    out = _decode(store.local_path(seg), 160, 90).astype(int)
    masks = read_mask_clip(store.local_path(mask))
    frames = window_frames(clip, 0.5, 1.5, 8, 160).astype(int)
    bg = scenery_picture(shot, 160, 90, 4).astype(int)
    for f, src, m in zip(out, frames, masks, strict=True):  # the H.264 segment: close, not bit-equal
        inner, outer = m[8:-8, 8:-8], ~m[8:-8, 8:-8]
        fc, sc, bc = f[8:-8, 8:-8], src[8:-8, 8:-8], bg[8:-8, 8:-8]
        if inner.sum() > 200:
            assert np.abs(fc[inner] - sc[inner]).mean() < np.abs(fc[inner] - bc[inner]).mean()
        if outer.sum() > 200:
            assert np.abs(fc[outer] - bc[outer]).mean() < np.abs(fc[outer] - sc[outer]).mean()
    assert make_cutout_segment(recipe, shot, spec, mask, seed=4) == seg  # stored


# --------------------------------------------------------------------------- the cut-out animator
def test_the_animator_moves_the_keyframe_character_cut_out_by_its_mask(tmp_path):
    from studio.resources.image.segmentation import cutout_rgba
    from studio.resources.video.animation import build_scene, draw_frame

    key = np.asarray(Image.open(_keyframe(tmp_path / "key.png", 120, 120)).convert("RGB"))
    known = np.all(key == MAGENTA, axis=2)
    sprite = cutout_rgba(key, known)
    ys, xs = np.nonzero(known)
    assert sprite.mode == "RGBA" and sprite.size == (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    shot = Shot(id=2, characters=["bunny"], action="The bunny runs across the meadow", verb="run",
                location="meadow", camera="wide")
    scene = build_scene(shot, 320, 180, 8, 3.0, 1, cutouts={"bunny": sprite})
    bunny = next(a for a in scene.actors if a.spec.id == "bunny")
    assert bunny.info["cutout"] and not bunny.info["rigged"]
    track = bunny.track
    cents = []
    for i in (0, scene.n - 1):
        frame = np.asarray(draw_frame(scene, i)[0]).astype(int)
        on = np.abs(frame - MAGENTA.astype(int)).sum(axis=2) < 60
        assert on.sum() > 100  # the cut-out (the magenta figure) is on screen…
        cents.append(np.argwhere(on).mean(axis=0)[::-1])
    moved = cents[1] - cents[0]
    planned = np.array([track.x[-1] - track.x[0], track.y[-1] - track.y[0]])
    assert abs(planned[0]) > 20  # …and the motion primitive moves it
    assert np.sign(moved[0]) == np.sign(planned[0]) and abs(moved[0] - planned[0]) < 0.25 * abs(planned[0]) + 4


def test_cutout_effect_is_a_no_op_in_the_chain_where_nothing_cut_it_out(tmp_path):
    from studio.resources.video.segment import render_segment_file

    clip = _footage(tmp_path / "run.mp4")
    res = render_segment_file(SegmentSpec(video=clip, start=0.0, end=1.0, effects=["cutout"]), tmp_path / "s.mp4",
                              FMT)
    assert res.nframes == 8


def test_keyframe_shot_animated_as_a_cutout_of_its_sam2_mask(gpu_env, tmp_path):
    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.tasks.animation import animated_segment_recipe, make_animated_segment
    from studio.tasks.segmentation import cutout_kind, keyframe_mask_recipe, segment_keyframe, segmenter_backend

    key = _keyframe(tmp_path / "key.png")
    shot = Shot(id=5, characters=["bunny"], action="The bunny runs", verb="run", location="meadow", camera="wide")
    spec = SegmentSpec(image=key, duration=1.0)
    assert cutout_kind(shot, spec, "preview") is None
    mask = segment_keyframe.fn(keyframe_mask_recipe(segmenter_backend("gpu"), key), str(key))
    plain = animated_segment_recipe(shot, spec, 1.0, 3, fmt=FMT)
    recipe = animated_segment_recipe(shot, spec, 1.0, 3, fmt=FMT, mask=mask)
    assert recipe.key() != plain.key() and mask.sha256 in recipe.inputs
    seg = make_animated_segment(recipe, shot, spec, mask=mask)
    actors = ArtifactStore.from_settings().sidecar(seg)["extra"]["animation"]["actors"]
    assert next(a for a in actors if a["id"] == "bunny")["cutout"] is True
