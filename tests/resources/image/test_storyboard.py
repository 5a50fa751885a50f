"""Storyboard frames, prompt assembly, batch expansion and request validation (no model loads)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.configs.errors import ConfigError, StudioError, UnknownNameError
from studio.configs.schema import ModelEntry
from studio.configs.vocabulary import Dialogue, Plan, Shot
from studio.resources.image.request import (
    ControlSpec,
    ImageRequest,
    ImageRequestError,
    ImageScene,
    LoraSpec,
    assemble_prompt,
    check_request,
    expand_batch,
    image_request_from_shot,
    load_batch,
)
from studio.resources.image.storyboard.frame import (
    DEFAULT_SIZE,
    FRAMING,
    StoryboardImageBackend,
    _place,
    draw_figure,
    make_contact_sheet,
    render_storyboard_frame,
    scenery_for,
)

REPO = Path(__file__).resolve().parents[3]


def _backend() -> StoryboardImageBackend:
    return StoryboardImageBackend("storyboard", ModelEntry(modality="image", backend="storyboard"))


def _plan() -> Plan:
    return Plan(title="Bunny's morning", shots=[
        Shot(id=1, characters=["bunny"], action="Big Buck Bunny stretches in the morning sun", location="meadow",
             time_of_day="dawn", camera="wide", camera_move="push-in"),
        Shot(id=2, characters=["frank", "Rinky"], action="Frank and Rinky plot from a branch", emotion="angry",
             location="forest", camera="medium", dialogue=Dialogue(character="frank", line="Get him!")),
        Shot(id=3, characters=["luca"], action="Luca sees the sea for the first time", emotion="surprised",
             location="Portorosso harbour", time_of_day="sunset", camera="close-up")])


def _render(shot_index: int, seed: int = 0, width: int | None = None) -> tuple[ImageRequest, Image.Image]:
    plan = _plan()
    req = _backend().prepare(image_request_from_shot(plan.shots[shot_index], plan, seed=seed, width=width))
    return req, render_storyboard_frame(req)


def test_frame_is_16_9_with_a_filled_caption_band_and_per_shot_content():
    req, a = _render(0)
    assert a.size == (1024, 576) and (req.width, req.height) == (1024, 576)
    _, small = _render(0, width=640)
    assert small.size == (640, 360)  # a requested width keeps 16:9
    _, b = _render(1)
    arr_a, arr_b = np.asarray(a, dtype=np.int16), np.asarray(b, dtype=np.int16)
    band = slice(int(576 * 0.76), 576)
    # The caption band is dark with bright text in it: many dark pixels, and a good share of bright ones.
    lum = arr_a[band].mean(axis=2)
    assert (lum < 60).mean() > 0.5 and (lum > 200).mean() > 0.01
    # Shot number, action and dialogue differ between shots → the band differs; so does the picture.
    assert np.abs(arr_a[band] - arr_b[band]).mean() > 5
    assert np.abs(arr_a[:int(576 * 0.74)] - arr_b[:int(576 * 0.74)]).mean() > 20
    # Dialogue adds a line in shot 2: more bright pixels in its band's lower half than shot 1's.
    low = slice(int(576 * 0.89), 576)
    assert (arr_b[low].mean(axis=2) > 180).sum() > (arr_a[low].mean(axis=2) > 180).sum()


def test_same_request_same_bytes_and_the_seed_matters(tmp_path):
    backend = _backend()
    req, _ = _render(2, seed=5)
    digests = []
    for i, r in enumerate([req, req, req.model_copy(update={"seed": 6})]):
        backend.render(r, tmp_path / f"{i}.png")
        digests.append(hashlib.sha256((tmp_path / f"{i}.png").read_bytes()).hexdigest())
    assert digests[0] == digests[1] != digests[2]


def test_scenery_comes_from_location_then_action():
    assert scenery_for("Portorosso harbour") == "harbour"
    assert scenery_for("the kitchen", "looks out at the sea") == "indoor"
    assert scenery_for("", "runs into the forest") == "forest"
    assert scenery_for("town square") == "town"
    assert scenery_for("", "waves hello") == "meadow"  # 'waves' the verb is not the sea


def test_camera_size_scales_and_crops_the_figure():
    art = draw_figure("#2e86c1", "happy")
    widths, tops = {}, {}
    for camera in FRAMING:
        frame = Image.new("RGBA", (1024, 576))
        left, top, right = _place(frame, art, camera, 512, 2000, 576 * 0.72)
        widths[camera], tops[camera] = right - left, top
    assert widths["wide"] < widths["medium"] < widths["close-up"] < widths["extreme-close-up"]
    assert tops["wide"] > tops["medium"]  # a wide shot stands the whole figure on the ground line


def test_reference_art_and_drawn_figures_are_both_used():
    # Luca has no reference art → a drawn figure: hair in a shade of his colour (#2e86c1) and skin tone.
    _, luca = _render(2)
    arr = np.asarray(luca, dtype=np.int16)[: int(576 * 0.74)]
    hair = (np.abs(arr - np.array([0x2E, 0x86, 0xC1]) * 0.55).sum(axis=2) < 30).mean()
    skin = (np.abs(arr - np.array([244, 206, 172])).sum(axis=2) < 30).mean()
    assert hair > 0.05 and skin > 0.05
    # The bunny's reference art is a cut-out from the film: its grey fur appears in the frame.
    _, bunny = _render(0)
    arr = np.asarray(bunny, dtype=np.int16)[: int(576 * 0.74)]
    grey = ((arr.max(axis=2) - arr.min(axis=2)) < 25) & (arr.mean(axis=2) > 120)
    assert grey.mean() > 0.01


def test_contact_sheet_grid_and_labels(tmp_path):
    tiles = []
    for i in range(5):
        p = tmp_path / f"t{i}.png"
        Image.new("RGB", (160, 90), (40 * i, 100, 200)).save(p)
        tiles.append((p, [f"tile {i}", "second line"]))
    out = make_contact_sheet(tiles, tmp_path / "sheet.png", columns=3, tile_width=200, title="Sheet")
    img = Image.open(out)
    assert img.width == 12 + 3 * (200 + 12)
    assert img.height > 2 * (112 + 12)  # two rows of 200×112 thumbnails plus labels and a title
    again = make_contact_sheet(tiles, tmp_path / "again.png", columns=3, tile_width=200, title="Sheet")
    assert out.read_bytes() == again.read_bytes()
    # The label area under the first thumbnail has light text on the dark background.
    under = np.asarray(img.convert("L"))[60 + 112 + 8: 60 + 112 + 30, 12:212]
    assert (under > 150).mean() > 0.02


def test_prompt_assembly_from_presets():
    scene = ImageScene(action="looks at the sea", emotion="surprised", location="harbour", time_of_day="sunset",
                       camera="close-up")
    prompt, negative = assemble_prompt(["luca"], scene, [LoraSpec(name="luca-character", weight=0.8)])
    parts = prompt.split(", ")
    # Identity first (trigger word, character tokens), then the action, then the shot, style last.
    assert parts[0] == "luca paguro" and "curly brown hair" in parts
    assert parts.index("looks at the sea") < parts.index("surprised expression") < parts.index("close-up")
    assert parts[-1] == "vibrant colors" and "warm sunset light" in parts
    assert parts.count("luca paguro") == 1  # the trigger word and the prompt token are deduplicated
    assert "blurry" in negative and "watermark" in negative
    off, _ = assemble_prompt(["bunny"], scene, [LoraSpec(name="pixar-style", weight=0.0)])
    assert "pixar style" not in off.split(", ")[0]  # a LoRA at weight 0 adds no trigger word
    assert "thin" in assemble_prompt(["bunny"], scene)[1]  # the character's own negative prompt


def test_the_keyframe_shows_the_shots_weather():
    """A storm in the plan is in the keyframe (and so in storyboard.png) as in the animated shot: a darker,
    greyer sky with rain streaks, and in the SDXL prompt; a clear shot has neither."""
    plan = _plan()
    stormy = plan.shots[0].model_copy(update={"weather": "storm"})
    req = image_request_from_shot(stormy, plan, seed=3)
    clear = image_request_from_shot(plan.shots[0].model_copy(update={"weather": "clear"}), plan, seed=3)
    assert req.scene.weather == "storm" and "thunderstorm" in req.prompt and "thunderstorm" not in clear.prompt
    sky = slice(0, int(0.25 * DEFAULT_SIZE[1]))
    a, b = (np.asarray(render_storyboard_frame(r), dtype=np.float32)[sky] for r in (req, clear))
    assert a.mean() < b.mean() - 10  # the storm darkens the sky
    assert (a[..., 2] - a[..., 0]).mean() < (b[..., 2] - b[..., 0]).mean() - 10  # and greys its blue


def test_request_from_shot_resolves_names_and_loras():
    plan = _plan()
    req = image_request_from_shot(plan.shots[1], plan, seed=3)
    assert req.characters == ["frank", "rinky"]  # "Rinky" (display name) resolved to its id
    assert req.scene.dialogue_character == "frank" and req.scene.shot_count == 3
    luca = image_request_from_shot(plan.shots[2], plan, seed=3, lora_weight=0.6)
    assert [(s.name, s.weight) for s in luca.loras] == [("luca-character", 0.6)]


@pytest.mark.parametrize("change, error, message", [
    ({"characters": ["nobody"]}, UnknownNameError, "unknown character 'nobody'"),
    ({"loras": [LoraSpec(name="no-such-lora", weight=0.5)]}, UnknownNameError, "unknown LoRA 'no-such-lora'"),
    ({"width": 1000, "height": 1020}, ImageRequestError, "height 1020 is not a positive multiple of 8"),
    ({"controls": [ControlSpec(kind="canny", image="/nope.png")]}, ImageRequestError, "does not exist"),
])
def test_bad_requests_fail_with_a_clear_message(change, error, message):
    req = ImageRequest(prompt="x", characters=["bunny"]).model_copy(update=change)
    with pytest.raises(error, match=message) as info:
        check_request(req)
    assert isinstance(info.value, StudioError)
    with pytest.raises(error):
        _backend().prepare(req)


def test_sdxl_prepare_fails_before_any_load(monkeypatch, tmp_path):
    """Missing weights, an uncached HF id offline, an unknown ControlNet: errors from prepare(), no load."""
    from studio.resources.image.sdxl import DiffusersSDXLBackend
    from studio.resources.runtime.model_sources import ModelNotAvailableError
    from studio.resources.runtime.residency import get_residency

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = dict(get_residency().resident())
    missing = DiffusersSDXLBackend("sdxl-base", ModelEntry(modality="image", backend="diffusers-sdxl",
                                                           source=str(tmp_path / "no-model"), heavy=True))
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        missing.prepare(ImageRequest(prompt="x", width=64, height=64))
    uncached = DiffusersSDXLBackend("sdxl-base", ModelEntry(modality="image", backend="diffusers-sdxl",
                                                            source="nobody/not-a-model", heavy=True))
    with pytest.raises(ModelNotAvailableError, match="huggingface-cli download nobody/not-a-model"):
        uncached.prepare(ImageRequest(prompt="x"))
    with pytest.raises(ImageRequestError, match="multiple of 8"):
        uncached.prepare(ImageRequest(prompt="x", width=1023))
    # luca's LoRA points at ~/models/loras/luca-character, which is not there
    (tmp_path / "m").mkdir()
    local = DiffusersSDXLBackend("sdxl-base", ModelEntry(modality="image", backend="diffusers-sdxl",
                                                         source=str(tmp_path / "m"), heavy=True))
    with pytest.raises(ModelNotAvailableError, match="LoRA 'luca-character'"):
        local.prepare(ImageRequest(prompt="x", loras=[LoraSpec(name="luca-character", weight=0.7)]))
    ctrl = tmp_path / "c.png"
    Image.new("RGB", (8, 8)).save(ctrl)
    with pytest.raises(StudioError, match="unknown ControlNet 'scribble'"):
        local.prepare(ImageRequest(prompt="x", controls=[ControlSpec(kind="scribble", image=str(ctrl))]))
    assert get_residency().resident() == before  # nothing was loaded


def test_batch_expansion_and_validation(tmp_path):
    spec, base = load_batch(REPO / "examples" / "batch_images.yaml")
    items = expand_batch(spec, base)
    # bunny, frank: 2 prompts × 2 seeds; luca also × 2 LoRA weights (his own LoRA)
    assert len(items) == 2 * 2 + 2 * 2 + 2 * 2 * 2
    assert {(it.character, it.lora_weight) for it in items if it.character == "luca"} == {("luca", 0.6),
                                                                                          ("luca", 0.85)}
    assert all(it.lora_weight is None for it in items if it.character != "luca")
    assert items[-1].request.scene.camera == "close-up" and items[-1].request.scene.time_of_day == "night"
    (tmp_path / "refs").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "refs" / "edge.png")
    spec, base = load_batch({"characters": ["bunny"], "prompts": ["hi"],
                             "controls": [{"kind": "canny", "image": "refs/edge.png"}]})
    items = expand_batch(spec, tmp_path)
    assert items[0].request.controls[0].image == str(tmp_path / "refs" / "edge.png")
    bad = tmp_path / "bad.yaml"
    bad.write_text("characters: [bunny]\nprompts: []\nseeds: [1]\n")
    with pytest.raises(ConfigError, match="prompts"):
        load_batch(bad)
    with pytest.raises(UnknownNameError, match="unknown character 'zorro'"):
        expand_batch(load_batch({"characters": ["zorro"], "prompts": ["x"]})[0], tmp_path)


def test_cli_batch_rejects_a_bad_file_before_starting_anything(tmp_path):
    from typer.testing import CliRunner

    from studio.cli import app
    from studio.resources.runtime.residency import get_residency

    bad = tmp_path / "bad.yaml"
    bad.write_text("characters: [bunny]\nprompts: [hi]\nloras: [{name: no-such-lora, weight: 0.5}]\n")
    res = CliRunner().invoke(app, ["images", "batch", str(bad)])
    assert res.exit_code != 0 and isinstance(res.exception, UnknownNameError)
    assert "unknown LoRA 'no-such-lora'" in str(res.exception)
    assert get_residency().resident() == {} or all(v == "parked" for v in get_residency().resident().values())
