"""Character consistency: mediapipe's geometric face signature on a real portrait, the pass / re-roll rules,
and the batch flow re-rendering a keyframe whose face scores below the threshold.

The portrait is matplotlib's sample photo of Grace Hopper (public domain, US Navy), shipped in the package.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from studio.configs.settings import get_settings

pytest.importorskip("mediapipe", reason="the preview face check needs mediapipe 0.10.x")


@pytest.fixture(scope="module")
def portrait() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.fixture(scope="module")
def embedder():
    from studio.resources.image.faces import MediapipeFaceEmbedder

    return MediapipeFaceEmbedder()


def test_geometric_signature_on_a_real_face(embedder, portrait, tmp_path):
    ref = embedder.embed(portrait)
    assert ref is not None and ref.shape == (90,)
    assert embedder.similarity(ref, ref) == pytest.approx(1.0)
    img = Image.open(portrait).convert("RGB")
    # The same face, smaller, somewhere in a 16:9 frame: found by the full-range detector, scores high.
    frame = Image.new("RGB", (1280, 720), (90, 140, 200))
    frame.paste(img.resize((256, 300)), (800, 320))
    frame.save(tmp_path / "placed.png")
    placed = embedder.embed(tmp_path / "placed.png")
    assert placed is not None and embedder.similarity(ref, placed) >= embedder.default_threshold
    # Other proportions (the face stretched 15 % sideways) score below the threshold.
    img.resize((int(img.width * 1.15), img.height)).save(tmp_path / "wide.png")
    assert embedder.similarity(ref, embedder.embed(tmp_path / "wide.png")) < embedder.default_threshold
    # No face at all: None, not a score.
    Image.fromarray(np.full((200, 300, 3), 120, np.uint8)).save(tmp_path / "blank.png")
    assert embedder.embed(tmp_path / "blank.png") is None


def test_score_faces_statuses(embedder, portrait, tmp_path):
    from studio.tasks.images import score_faces

    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 200), (40, 160, 60)).save(blank)
    ok = score_faces(embedder, portrait, [portrait], 0.62)
    assert ok["status"] == "pass" and ok["score"] == pytest.approx(1.0) and ok["face_found"]
    assert score_faces(embedder, portrait, [portrait], 1.01)["status"] == "below-threshold"
    assert score_faces(embedder, blank, [portrait], 0.62)["status"] == "no-face"
    cartoon = score_faces(embedder, portrait, [blank], 0.62)  # e.g. the bunny: nothing to compare
    assert cartoon["status"] == "no-reference-face" and cartoon["score"] is None


@pytest.fixture
def grace_configs(tmp_path, monkeypatch, portrait):
    """The shipped configs plus a character whose reference image is the portrait (profile preview)."""
    folder = tmp_path / "configs"
    shutil.copytree(get_settings().configs_path, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    chars = yaml.safe_load((folder / "characters.yaml").read_text())
    chars["characters"]["grace"] = {"display_name": "Grace", "description": "A computer scientist.",
                                    "prompt_tokens": ["grace hopper"], "reference_images": [str(portrait)],
                                    "color": "#34495e"}
    (folder / "characters.yaml").write_text(yaml.safe_dump(chars, sort_keys=False))
    monkeypatch.setenv("STUDIO_CONFIG_DIR", str(folder))
    monkeypatch.setenv("STUDIO_PROFILE", "preview")
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


def test_flow_rerolls_below_threshold_and_records_every_score(grace_configs, prefect_server, isolated_store):
    from studio.flows.generate_images import RESEED_STRIDE, generate_images

    batch = {"name": "grace", "characters": ["grace"],
             "prompts": [{"action": "smiles at the camera", "location": "town square", "camera": "medium"}],
             "seeds": [1], "consistency": {"threshold": 0.62, "attempts": 3}}
    passed = generate_images(batch=batch)["items"][0]
    # The storyboard pastes the reference: the first render passes, nothing is re-rolled.
    assert passed["status"] == "pass" and passed["score"] >= 0.62 and len(passed["attempts"]) == 1

    strict = {**batch, "name": "grace-strict", "consistency": {"threshold": 0.999, "attempts": 2}}
    item = generate_images(batch=strict)["items"][0]
    assert item["status"] == "below-threshold"
    assert [a["seed"] for a in item["attempts"]] == [1, 1 + RESEED_STRIDE]  # re-rolled with a new seed
    assert all(isinstance(a["score"], float) and 0.0 < a["score"] < 0.999 for a in item["attempts"])
    assert item["score"] == max(a["score"] for a in item["attempts"])  # the best attempt is kept
    assert item["seed"] in {1, 1 + RESEED_STRIDE}


def test_cli_batch_renders_storyboards_and_exports(grace_configs, prefect_server, isolated_store, tmp_path):
    from typer.testing import CliRunner

    from studio.cli import app

    batch = tmp_path / "batch.yaml"
    batch.write_text("name: cli-check\ncharacters: [grace, rinky]\nprompts: ['waves from the harbour']\n"
                     "seeds: [3]\nconsistency: {attempts: 1}\n")
    res = CliRunner().invoke(app, ["images", "batch", str(batch), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "contact sheet:" in res.output
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["000-grace-seed3.png", "001-rinky-seed3.png", "batch_report.json", "contact_sheet.png"]
    assert Image.open(tmp_path / "out" / "000-grace-seed3.png").size == (1024, 576)
