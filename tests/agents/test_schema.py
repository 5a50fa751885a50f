"""The plan schema from the live registry, validate_plan, request understanding and plan assembly."""

from __future__ import annotations

import shutil

import pytest

from studio.agents.intent import RequestError, assemble_plan, extract_intent, speech_seconds
from studio.agents.schema import (
    Draft,
    PlanRegistry,
    PlanValidationError,
    draft_schema,
    parse_draft,
    plan_model_from_registry,
    schema_problems,
    validate_plan,
)
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


def test_draft_schema_is_all_enums_and_short_strings(registry):
    s = draft_schema(registry, 3, ["luca", "giulia"])
    shots = s["properties"]["shots"]
    assert shots["minItems"] == shots["maxItems"] == 3
    assert shots["items"] is False and len(shots["prefixItems"]) == 3
    item = shots["prefixItems"][2]["properties"]
    assert item["characters"]["items"]["enum"] == ["luca", "giulia"]
    assert item["speaker"]["enum"] == ["luca", "nobody"]  # giulia has no voice
    assert item["effect"]["enum"] == ["slow_motion", "freeze_frame", "dramatic_zoom", "none"]
    assert item["duration"]["enum"] == [2.0, 3.0, 4.0, 5.0, 6.0, 8.0]
    assert all(p.get("maxLength", 0) <= 160 for p in item.values() if p.get("type") == "string")
    assert set(shots["prefixItems"][2]["required"]) == set(item)


def test_schema_problems_finds_every_violation(registry):
    s = draft_schema(registry, 2, ["luca"])
    bad = {"title": "x", "shots": [{"characters": ["bunny"], "extra": 1}]}
    problems = schema_problems(bad, s)
    text = "\n".join(problems)
    assert "missing 'logline'" in text and "title: length 1" in text and "expected 2 items" in text
    assert "'bunny' is not one of: luca" in text and "unexpected field 'extra'" in text
    with pytest.raises(PlanValidationError):
        parse_draft(bad, 2, s)


def test_intent_matches_names_and_aliases_and_counts(registry):
    i = extract_intent("Big Buck Bunny chases the flying squirrel at sunset in 5 shots", registry)
    assert i.characters == ["bunny", "frank"] and i.shots == 5 and i.time_of_day == "sunset" and i.tone == "action"
    i = extract_intent("A 40 second sad short where Giulia says goodbye to Luca in Portorosso", registry)
    assert i.characters == ["giulia", "luca"] and i.target_seconds == 40 and i.shots == 8
    assert i.location == "Portorosso" and i.tone == "drama"
    assert extract_intent("luca at night", registry, shots=2).shots == 2


@pytest.mark.parametrize("request_text", ["make a short about Shrek", "Luca meets Elsa at the harbour",
                                          "Shrek visits Luca. Shrek laughs."])
def test_unknown_capitalised_names_are_refused_with_the_known_characters(registry, request_text):
    with pytest.raises(RequestError) as e:
        extract_intent(request_text, registry)
    assert "Known characters: bunny (Big Buck Bunny)" in str(e.value)


@pytest.mark.parametrize("request_text", ["Make a funny short of Luca on a Vespa in Portorosso.",
                                          "Luca and Alberto jump off Isola del Mare", "Alberto's tower on Monday"])
def test_known_places_and_sentence_starts_are_not_unknown_characters(registry, request_text):
    assert extract_intent(request_text, registry).characters


def test_bad_requests(registry):
    for bad in ("", "   \n", "x" * 100_001):
        with pytest.raises(RequestError):
            extract_intent(bad, registry)
    with pytest.raises(RequestError, match="1 to 24"):
        extract_intent("luca", registry, shots=40)


def test_assemble_plan_keeps_the_model_choices_and_makes_them_consistent(registry):
    intent = extract_intent("Luca and Alberto at the harbour at night", registry)
    d = Draft.model_validate({"title": "Night", "logline": "Two friends at the harbour.", "shots": [
        {"characters": ["luca"], "action": "Luca looks at the boats", "emotion": "curious", "camera": "wide",
         "camera_move": "pan-left", "location": "the harbour", "speaker": "alberto",
         "line": "Silenzio Bruno, we can do this, we just have to jump in and swim all the way",
         "effect": "slow_motion", "duration": 2, "source": "storyboard"},
        {"characters": ["alberto"], "action": "Alberto jumps into the water", "emotion": "excited",
         "camera": "medium", "camera_move": "static", "location": "the quay", "speaker": "nobody", "line": "",
         "effect": "none", "duration": 3, "source": "storyboard"}]})
    plan = validate_plan(assemble_plan(d, intent, registry), registry)
    first, second = plan.shots
    assert first.characters == ["luca", "alberto"]  # the speaker joined the shot
    assert first.duration >= speech_seconds(first.dialogue.line)  # lengthened to fit the line
    assert first.effects == ["slow_motion"] and first.time_of_day == "night" and first.camera_move == "pan-left"
    assert second.dialogue is None and second.effects == [] and second.duration == 3.0
    assert plan.characters == ["luca", "alberto"]


# ---------------------------------------------------------------------- structured drafts (small models)
def _vocab(registry, request="Luca and Alberto race a Vespa down the hill in Portorosso"):
    from studio.agents.vocabulary import build_vocabulary

    hits = [{"id": "a", "collection": "character_info", "metadata": {"characters": ["alberto"]},
             "text": 'Alberto — How he speaks: Loud. "Silenzio, Bruno!" is his cure for fear.'}]
    places = [{"id": "p", "metadata": {"section": "Isola del Mare"}}]
    return build_vocabulary(extract_intent(request, registry), registry, hits, places)


def test_vocabulary_comes_from_request_knowledge_and_registry(registry):
    v = _vocab(registry)
    assert v.objects[:2] == ["a Vespa", "the hill"] and "Alberto" in v.objects
    assert v.places[:2] == ["Portorosso", "Isola del Mare"]
    assert "alberto: Silenzio, Bruno!" in v.lines and v.lines[-1] == "nobody: (silence)"
    assert v.titles[0] == "Luca and a Vespa" and "Luca vs. Alberto" in v.titles


def test_structured_draft_schema_gives_each_story_beat_its_own_choices(registry):
    from studio.agents.vocabulary import BEAT_VERBS

    v = _vocab(registry)
    s = draft_schema(registry, 4, ["luca", "alberto"], vocab=v)
    shots = s["properties"]["shots"]["prefixItems"]
    assert "action" not in shots[0]["properties"] and "line" not in shots[0]["properties"]
    assert s["properties"]["title"]["enum"] == v.titles and "logline" not in s["properties"]
    assert shots[0]["properties"]["verb"]["enum"] == list(BEAT_VERBS["setup"])
    assert shots[3]["properties"]["verb"]["enum"] == list(BEAT_VERBS["payoff"])
    assert shots[0]["properties"]["camera"]["enum"] == ["wide", "medium"]
    assert shots[2]["properties"]["emotion"]["enum"] == ["excited", "scared", "determined", "surprised"]
    lines = [set(sh["properties"]["say"]["enum"]) - {"nobody: (silence)"} for sh in shots]
    assert all(lines) and not set.intersection(*lines)  # the lines are shared out, not repeated
    revise = draft_schema(registry, 1, ["luca"], vocab=v, positions=[4], total=4)
    assert revise["properties"]["shots"]["prefixItems"][0]["properties"]["verb"]["enum"] == list(BEAT_VERBS["payoff"])


def test_structured_draft_assembles_readable_actions_and_lines(registry):
    intent = extract_intent("Luca and Alberto race a Vespa down the hill in Portorosso", registry)
    d = Draft.model_validate({"title": "Luca and a Vespa", "shots": [
        {"characters": ["luca", "alberto"], "verb": "races", "object": "the hill", "emotion": "excited",
         "camera": "wide", "camera_move": "pan-right", "location": "Portorosso", "say": "alberto: Silenzio, Bruno!",
         "effect": "none", "duration": 3},
        {"characters": ["luca"], "verb": "catches", "object": "a Vespa", "emotion": "happy", "camera": "close-up",
         "camera_move": "static", "location": "Portorosso", "say": "nobody: (silence)", "effect": "none",
         "duration": 2}]})
    plan = validate_plan(assemble_plan(d, intent, registry), registry)
    assert [s.action for s in plan.shots] == ["Luca and Alberto race the hill", "Luca catches a Vespa"]
    assert plan.shots[0].dialogue.character == "alberto" and plan.shots[0].dialogue.line == "Silenzio, Bruno!"
    assert plan.shots[1].dialogue is None
    assert plan.logline == "Luca, Alberto: Luca and Alberto race a Vespa down the hill in Portorosso"


@pytest.mark.parametrize("text, seconds, shots", [
    ("a one minute short of Frank", 60, 12), ("a thirty second short of Luca", 30, 6),
    ("half a minute with Giulia", 30, 6), ("Rinky in three shots", None, 3), ("Luca waits a minute", None, 4)])
def test_length_and_shot_count_in_words(registry, text, seconds, shots):
    i = extract_intent(text, registry)
    assert (i.target_seconds, i.shots) == (seconds, shots)
