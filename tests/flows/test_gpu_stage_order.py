"""The gpu profile's stage order, read from the residency record of one create_short run with four heavy tiny
models (SDXL, LTX-Video, SAM2, Wav2Lip; built by `studio models tiny`) and a CPU voice (piper in the voice role:
GPT-SoVITS needs its server): no two models active at once, each model active in one contiguous stretch (the
sequence of activated models has no repeats), so a job's switches = its distinct models − 1; a rerun touches no
model. The flow runs in-process on a real Prefect server, the plan passed as a parameter (no LLM).

The random-weight SDXL draws no face, so shot 1's keyframe is a portrait (matplotlib's sample photo of Grace
Hopper, public domain) stored under the keyframe recipe the picture stage computes — the stage finds it and
reuses it, as it reuses any stored keyframe. Everything after it runs on it: motion, then Wav2Lip on the clip.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image
from support.gpu_env import use_gpu_config_dir
from typer.testing import CliRunner

from studio.configs.settings import get_settings
from studio.configs.vocabulary import Dialogue, Plan, Shot
from studio.resources.runtime.residency import active_intervals, get_residency, overlapping_actives, read_residency_log

pytest.importorskip("mediapipe", reason="the lip-sync face box comes from mediapipe 0.10.x")

PLAN = Plan(title="Stage order", characters=["bunny"], shots=[
    Shot(id=1, source="generate", characters=["bunny"], action="Bunny talks to the camera", emotion="happy",
         camera="close-up", duration=1.5,
         dialogue=Dialogue(character="bunny", line="Hello there.", emotion="happy", intensity=0.5)),
    Shot(id=2, source="generate", characters=["bunny"], action="Bunny runs across the meadow", location="meadow",
         duration=1.5),
    # Not animated by the video model (the test's generation.animate is [generate]): a still keyframe shot whose
    # character SAM2 cuts out for the cut-out animator.
    Shot(id=3, source="storyboard", characters=["bunny"], action="Bunny waves hello", location="meadow",
         duration=1.5),
])


@pytest.fixture(scope="module")
def tiny_configs(tmp_path_factory) -> Path:
    import torch

    from studio.cli import app

    torch.set_num_threads(1)  # the shared 2-core machine: one thread is far faster than two under load
    out = tmp_path_factory.mktemp("tiny-gpu")
    res = CliRunner().invoke(app, ["models", "tiny", "--out", str(out)])
    assert res.exit_code == 0, res.output
    configs = out / "configs"
    models = yaml.safe_load((configs / "models.yaml").read_text())
    # GPT-SoVITS and the VLM judge need servers: a CPU voice and the metric judge in their roles.
    models["profiles"]["gpu"].update(voice="piper-joe", judge="metric-judge")
    (configs / "models.yaml").write_text(yaml.safe_dump(models, sort_keys=False))
    video = yaml.safe_load((configs / "video.yaml").read_text())
    video["generation"]["animate"] = ["generate"]
    (configs / "video.yaml").write_text(yaml.safe_dump(video, sort_keys=False))
    return configs


@pytest.fixture
def gpu_env(tiny_configs, monkeypatch, isolated_store):
    use_gpu_config_dir(monkeypatch, tiny_configs)  # the session's home (its Prefect server), a fresh store
    yield tiny_configs
    get_settings.cache_clear()


def _store_portrait_keyframe(tmp: Path) -> None:
    """Shot 1's keyframe = a portrait, stored under the exact recipe the picture stage will ask for."""
    import matplotlib

    from studio.resources.image.request import image_request_from_shot
    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.tasks.images import image_backend, keyframe_recipe

    shot = PLAN.shots[0]
    backend = image_backend(profile="gpu")
    request = image_request_from_shot(shot.model_copy(update={"dialogue": None}), PLAN, seed=0 + shot.id)
    recipe, req = keyframe_recipe(backend, request)
    src = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"

    def write(path: Path) -> dict:
        Image.open(src).convert("RGB").resize((req.width, req.height)).save(path, format="PNG")
        return {"prompt": req.prompt, "negative_prompt": req.negative_prompt, "seed": req.seed,
                "characters": req.characters, "loras": [], "controlnets": [], "model": backend.model_id,
                "source": "test portrait"}

    ArtifactStore.from_settings().lookup_or_make(recipe, ".png", "image/png", write)


def _sidecars(store: Path) -> list[dict]:
    import json

    rows = []
    for side in store.rglob("*.json"):
        meta = json.loads(side.read_text())
        if isinstance(meta, dict) and "recipe" in meta and "stage" in meta:
            rows.append(meta)
    return rows


def _turns(rows: list[dict]) -> list[str]:
    """The models in the order they became active, consecutive repeats merged."""
    order = [iv.model for iv in sorted(active_intervals(rows), key=lambda iv: iv.start)]
    return [m for i, m in enumerate(order) if i == 0 or order[i - 1] != m]


def test_each_heavy_model_runs_in_one_stretch_and_a_rerun_touches_none(gpu_env, prefect_server, tmp_path,
                                                                        isolated_store):
    from studio.flows.create_short import create_short

    _store_portrait_keyframe(tmp_path)
    get_residency().unload_all()  # a cold process cache: this job's loads are its own
    t0 = time.time()
    result = create_short(request="stage order", profile="gpu", plan=PLAN.model_dump(mode="json"),
                          out_dir=str(tmp_path / "out"), max_revisions=0)
    assert Path(result["short"]).is_file()
    rows = [r for r in read_residency_log() if r["t"] >= t0 and r["pid"] == os.getpid()]
    assert overlapping_actives(rows) == []
    turns = _turns(rows)
    activations = {m: sum(1 for iv in active_intervals(rows) if iv.model == m) for m in turns}
    print(f"\nstage order: {' -> '.join(turns)}\nactivations: {activations}\nswitches: {len(turns) - 1}")
    assert len(turns) == len(set(turns)), f"a model came back after another: {turns}"  # one stretch each
    kinds = [next(k for k in ("piper", "sdxl", "ltx", "sam2", "wav2lip") if k in m) for m in turns]
    assert kinds == ["piper", "sdxl", "ltx", "sam2", "wav2lip"]  # voices, pictures, motion, masks, lip sync
    assert len(turns) - 1 == 4  # switches: distinct models − 1, four heavy tiny models + the voice

    sides = _sidecars(isolated_store)
    clips = {m["sha256"] for m in sides if m["stage"] == "motion_clip"}
    synced = [m for m in sides if m["stage"] == "lipsync"]
    assert len(clips) == 2 and len(synced) == 1  # shots 1 and 2 move; shot 1 (dialogue, a face) speaks
    assert synced[0]["recipe"]["inputs"][0] in clips  # Wav2Lip ran on shot 1's generated clip
    assert sum(m["stage"] == "keyframe_mask" for m in sides) == 1  # shot 3, the still, is cut out by SAM2

    t1 = time.time()
    again = create_short(request="stage order", profile="gpu", plan=PLAN.model_dump(mode="json"),
                         out_dir=str(tmp_path / "out"), max_revisions=0)
    assert Path(again["short"]).read_bytes() == Path(result["short"]).read_bytes()
    assert [r for r in read_residency_log() if r["t"] >= t1 and r["pid"] == os.getpid()] == []
