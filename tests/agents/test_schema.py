"""The plan schema from the live registry, validate_plan, and the draft schema built from the story."""

from __future__ import annotations

import shutil

import pytest

from studio.agents.intent import extract_intent
from studio.agents.registry import PlanRegistry
from studio.agents.schema import (
    PlanValidationError,
    draft_schema,
    plan_model_from_registry,
    schema_problems,
    validate_plan,
)
from studio.agents.story import compose_story
from studio.configs.settings import get_settings
from studio.configs.vocabulary import Plan


@pytest.fixture
def registry(tmp_path, monkeypatch) -> PlanRegistry:
    """A config folder with known voices/effects/recipes (the real files are other modules' to change)."""
    cfg = tmp_path / "configs"
    shutil.copytree(get_settings().configs_path, cfg, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (cfg / "character_voices.yaml").write_text("voices:\n  luca: {}\n  alberto: {}\n  bunny: {}\n")
    (cfg / "effects.yaml").write_text("effects:\n  slow_motion: {}\n  freeze_frame: {}\n")
    (cfg / "parody_recipes.yaml").write_text("recipes:\n  dramatic_zoom: {}\n")
    monkeypatch.setenv("STUDIO_CONFIG_DIR", str(cfg))
    get_settings.cache_clear()
    yield PlanRegistry.from_configs()
    monkeypatch.delenv("STUDIO_CONFIG_DIR")
    get_settings.cache_clear()


def plan_dict(**shot_kw) -> dict:
    shot = {"id": 1, "characters": ["luca"], "action": "Luca runs to the water", "duration": 3.0}
    shot.update(shot_kw)
    return {"title": "Sea", "characters": ["luca"], "shots": [shot]}


def test_registry_reads_characters_voices_effects_and_recipes(registry):
    assert registry.character_ids == ("bunny", "frank", "rinky", "gimera", "luca", "alberto", "giulia")
    assert registry.speaking_ids == ("bunny", "luca", "alberto")
    assert registry.effect_names == ("slow_motion", "freeze_frame", "dramatic_zoom")


def test_registry_plan_model_has_enums_and_bounds(registry):
    schema = plan_model_from_registry(registry).model_json_schema()
    defs = schema["$defs"]
    assert defs["RegistryShot"]["properties"]["characters"]["items"]["enum"] == list(registry.character_ids)
    assert defs["RegistryShot"]["properties"]["effects"]["items"]["enum"] == list(registry.effect_names)
    assert defs["RegistryDialogue"]["properties"]["character"]["enum"] == ["bunny", "luca", "alberto"]
    assert defs["RegistryShot"]["properties"]["camera"]["enum"] == ["wide", "medium", "close-up", "extreme-close-up"]
    assert defs["RegistryShot"]["properties"]["duration"]["maximum"] == 12.0
    assert defs["RegistryShot"]["properties"]["action"]["maxLength"] == 200


@pytest.mark.parametrize("change, needle", [
    ({"characters": ["shrek"]}, "'shrek'"),
    ({"effects": ["explode"]}, "effects.0"),
    ({"duration": 30}, "less than or equal to 12"),
    ({"dialogue": {"character": "giulia", "line": "Ciao!"}}, "dialogue.character"),  # giulia has no voice here
    ({"camera": "drone"}, "camera"),
    ({"id": 2}, "shot ids must be 1..1"),
    ({"dialogue": {"character": "alberto", "line": "Hey!"}}, "not in the shot"),
    ({"source": "footage"}, "needs a footage_query"),
])
def test_validate_plan_rejects_with_a_precise_problem(registry, change, needle):
    with pytest.raises(PlanValidationError) as e:
        validate_plan(plan_dict(**change), registry)
    assert needle in str(e.value)


def test_validate_plan_accepts_a_good_plan_and_returns_the_static_model(registry):
    plan = validate_plan(plan_dict(effects=["dramatic_zoom"], dialogue={"character": "luca", "line": "Wow!"}), registry)
    assert type(plan) is Plan and plan.shots[0].effects == ["dramatic_zoom"]


def _story(registry, request="Luca and Alberto race a Vespa down the hill in 3 shots"):
    return compose_story(extract_intent(request, registry), registry)


def test_structured_draft_schema_is_choices_only_and_skips_fixed_fields(registry):
    story = _story(registry)
    s = draft_schema(story, registry)
    shots = s["properties"]["shots"]
    assert shots["minItems"] == shots["maxItems"] == 3 and shots["items"] is False
    assert s["properties"]["title"]["enum"] == story.titles
    for item, brief in zip(shots["prefixItems"], story.briefs, strict=True):
        props = item["properties"]
        assert all("enum" in v for v in props.values()) and set(item["required"]) == set(props)
        assert ("verb" in props) == (len(brief.verbs) > 1)
        if "line" in props:
            assert props["line"]["enum"] == brief.lines
    offered = [ln for b in story.briefs for ln in b.lines]
    assert len(offered) == len(set(offered))  # no line is offered twice in a short


def test_free_draft_schema_bounds_text_and_enumerates_the_rest(registry):
    s = draft_schema(_story(registry), registry, free=True)
    item = s["properties"]["shots"]["prefixItems"][0]["properties"]
    assert item["effect"]["enum"] == ["slow_motion", "freeze_frame", "dramatic_zoom", "none"]
    assert item["action"]["maxLength"] <= 160 and item["line"]["maxLength"] <= 160
    assert {"title", "logline", "shots"} == set(s["required"])


def test_schema_problems_finds_every_violation(registry):
    s = draft_schema(_story(registry), registry, free=True)
    bad = {"title": "x", "shots": [{"camera": "huge", "extra": 1}]}
    text = "\n".join(schema_problems(bad, s))
    assert "missing 'logline'" in text and "title: length 1" in text and "expected 3 items" in text
    assert "'huge' is not one of: wide" in text and "unexpected field 'extra'" in text
