"""Director graph logic with a scripted fake chat model (as LangGraph's own tests do): routing, the repair
loop and its bound, the tool allow-list, citations, revision of failing shots only, and resume after a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.chat import ScriptedChat, draft, shot, submit

from studio.agents.context import DirectorConfig, RevisionConfig
from studio.agents.director import PlanningError, checkpoint_path, plan_short, revise_failing_shots
from studio.agents.intent import RequestError
from studio.agents.schema import PlanRegistry
from studio.resources.knowledge.store import Hit
from studio.resources.llm.client import ChatTurn, ToolCall

REQUEST = "a funny short of Luca seeing the sea for the first time"










@pytest.fixture
def registry() -> PlanRegistry:
    return PlanRegistry.from_configs()


@pytest.fixture
def cfg() -> DirectorConfig:
    return DirectorConfig(max_repair_attempts=2, draft_style="free",
                          revision=RevisionConfig(threshold=0.5, max_iterations=2))


def test_valid_first_answer_gives_validated_plan(registry, cfg):
    chat = ScriptedChat([submit(draft())])
    plan, report = plan_short(REQUEST, chat=chat, search=None, registry=registry, config=cfg)
    assert [s.id for s in plan.shots] == [1, 2, 3, 4]
    assert plan.characters == ["luca"]
    assert report["status"] == "planned" and report["attempts"] == 0
    assert report["trace"] == ["understand", "retrieve", "model", "check"]
    # the LLM was forced to call submit_plan, whose schema pins the shot count and the cast enum
    call = chat.calls[0]
    assert call["tool_choice"] == {"type": "function", "function": {"name": "submit_plan"}}
    params = call["tools"][0]["function"]["parameters"]
    assert params["properties"]["shots"]["minItems"] == params["properties"]["shots"]["maxItems"] == 4
    shots = params["properties"]["shots"]["prefixItems"]
    assert [s["properties"]["characters"]["items"]["enum"] for s in shots] == [["luca"]] * 4
    assert "source" not in shots[0]["properties"]  # preview renders storyboards only: not the model's choice
    assert ("Story beats: shot 1: the setup; shot 2: the problem appears; shot 3: the climax; shot 4: the payoff"
            in call["messages"][1]["content"])


def test_invalid_plan_is_repaired_with_the_error_fed_back(registry, cfg):
    bad = draft()
    bad["shots"][1]["characters"] = ["shrek"]
    chat = ScriptedChat([submit(bad, "bad"), submit(draft(), "good")])
    plan, report = plan_short(REQUEST, chat=chat, search=None, registry=registry, config=cfg)
    assert report["attempts"] == 1 and len(chat.calls) == 2
    feedback = chat.calls[1]["messages"][-1]
    assert feedback["role"] == "tool" and feedback["tool_call_id"] == "bad"
    assert "'shrek' is not one of: luca" in feedback["content"]
    assert chat.calls[1]["seed"] != chat.calls[0]["seed"]  # a repair samples differently
    assert all(s.characters == ["luca"] for s in plan.shots)


def test_repair_loop_is_bounded_then_fails_clearly_and_writes_nothing(registry, cfg, isolated_store):
    wrong_count = draft(n=2)
    chat = ScriptedChat([submit("{not json"), submit(wrong_count), ChatTurn("I like turtles", [])])
    with pytest.raises(PlanningError) as e:
        plan_short(REQUEST, chat=chat, search=None, registry=registry, config=cfg)
    assert len(chat.calls) == 3  # 1 try + max_repair_attempts (2)
    assert "no tool was called" in str(e.value) and "Nothing was written" in str(e.value)
    assert not isolated_store.exists() or not any(isolated_store.rglob("*.json"))


def test_tool_allow_list_refuses_unknown_tools_and_validates_arguments(registry, tmp_path):
    sentinel = tmp_path / "pwned"
    searches = []

    def search(query, collection, where, k):
        searches.append((query, collection, where, k))
        return [Hit(id="luca/characters/luca.md#personality", text="Luca is curious.", metadata={}, score=0.8,
                    collection="character_info")]

    cfg = DirectorConfig(max_repair_attempts=3, max_tool_rounds=1, retrieve_k=0, draft_style="free")
    chat = ScriptedChat([
        ChatTurn(None, [ToolCall("t1", "run_shell", json.dumps({"cmd": f"touch {sentinel}"}))]),
        ChatTurn(None, [ToolCall("t2", "search_knowledge", json.dumps({"query": "luca", "collection": "../../etc"})),
                        ToolCall("t3", "search_knowledge", json.dumps({"query": "luca", "character": "luca"}))]),
        submit(draft()),
    ])
    plan, report = plan_short(REQUEST, chat=chat, search=search, registry=registry, config=cfg)
    assert not sentinel.exists()
    refused = chat.calls[1]["messages"][-1]
    assert refused["tool_call_id"] == "t1" and "tool 'run_shell' is not allowed" in refused["content"]
    results = {m["tool_call_id"]: m["content"] for m in chat.calls[2]["messages"] if m["role"] == "tool"}
    assert results["t2"].startswith("error: bad arguments for 'search_knowledge'")
    assert "Luca is curious." in results["t3"]
    assert searches == [("luca", None, {"character": "luca"}, 4)]  # only the valid call reached the search
    assert chat.calls[1]["tool_choice"] == "auto" and chat.calls[2]["tool_choice"] != "auto"  # budget then forced
    assert report["trace"] == ["understand", "retrieve", "model", "model", "tools", "model", "check"]


def test_retrieved_knowledge_is_cited_in_the_prompt_and_report(registry, cfg):
    def search(query, collection, where, k):
        return [Hit(id=f"{collection or 'any'}:{(where or {}).get('character', '-')}", text=f"note for {query}",
                    metadata={}, score=0.9 if collection else 0.5, collection=collection or "style_guide")]

    chat = ScriptedChat([submit(draft())])
    _, report = plan_short(REQUEST, chat=chat, search=search, registry=registry, config=cfg)
    prompt = chat.calls[0]["messages"][1]["content"]
    assert "[1] (character_info:luca)" in prompt
    assert [c["id"] for c in report["citations"]][:1] == ["character_info:luca"]
    assert [t["tool"] for t in report["tools_used"]] == ["search_knowledge"] * 3


def test_request_errors_surface_before_anything_runs(registry, cfg):
    chat = ScriptedChat([])
    before = checkpoint_path().exists()
    for bad, needle in (("", "empty"), ("x" * 100_001, "kB"),
                        ("make a short about Shrek and Luca", "Known characters")):
        with pytest.raises(RequestError, match=needle):
            plan_short(bad, chat=chat, search=None, registry=registry, config=cfg)
    assert chat.calls == []
    assert checkpoint_path().exists() == before


def _plan(registry, cfg):
    plan, _ = plan_short(REQUEST, chat=ScriptedChat([submit(draft())]), search=None, registry=registry, config=cfg)
    return plan


def test_revision_rewrites_only_failing_shots(registry, cfg):
    plan = _plan(registry, cfg)
    chat = ScriptedChat([submit({"title": "New", "logline": "Replacement shots for review.",
                                 "shots": [shot(action="Luca dives into a wave"), shot(action="Luca waves goodbye")]})])
    new, report = revise_failing_shots(plan, {1: 0.9, 2: 0.1, 3: 0.7, 4: 0.2}, chat=chat, registry=registry, config=cfg)
    assert report["decision"] == "revise" and report["revised_shots"] == [2, 4]
    assert [s.action for s in new.shots] == [plan.shots[0].action, "Luca dives into a wave", plan.shots[2].action,
                                            "Luca waves goodbye"]
    assert new.shots[0] == plan.shots[0] and new.shots[2] == plan.shots[2] and new.title == plan.title
    schema = chat.calls[0]["tools"][0]["function"]["parameters"]
    assert schema["properties"]["shots"]["maxItems"] == 2
    assert "Shot 2 scored 0.10" in chat.calls[0]["messages"][1]["content"]


def test_revision_accepts_without_model_when_all_pass_or_bound_reached(registry, cfg):
    plan = _plan(registry, cfg)
    chat = ScriptedChat([])
    same, report = revise_failing_shots(plan, {1: 0.9, 2: 0.8}, chat=chat, registry=registry, config=cfg)
    assert same == plan and report["decision"] == "accept"
    same, report = revise_failing_shots(plan, {1: 0.1}, iteration=2, chat=chat, registry=registry, config=cfg)
    assert same == plan and report["decision"] == "give_up" and report["failing"] == [1]
    assert chat.calls == []


def test_revision_loop_with_rescore_is_bounded(registry, cfg):
    plan = _plan(registry, cfg)
    rescored: list[list[int]] = []

    def rescore(p, shot_ids):  # shot 3 never gets better, shot 1 passes after one revision
        rescored.append(list(shot_ids))
        return [{"shot_id": i, "score": 0.9 if i == 1 else 0.2, "reasons": ["still blurry"]} for i in shot_ids]

    def one(action):
        return {"title": "Fix", "logline": "Replacement shots for review.", "shots": [shot(action=action)]}

    two = {"title": "Fix", "logline": "Replacement shots for review.",
           "shots": [shot(action="Luca smiles at gulls"), shot(action="Luca runs on the sand")]}
    chat = ScriptedChat([submit(two), submit(one("Luca tries again at the sea"))])
    new, report = revise_failing_shots(plan, {1: 0.3, 2: 0.9, 3: 0.2, 4: 0.8}, chat=chat, rescore=rescore,
                                       registry=registry, config=cfg)
    assert rescored == [[1, 3], [3]]  # second round revises only the shot still failing
    assert report["decision"] == "give_up" and report["iteration"] == 2 and report["revised_shots"] == [1, 3]
    assert new.shots[2].action == "Luca tries again at the sea" and new.shots[1] == plan.shots[1]
    assert report["trace"].count("evaluate") == 3


def test_interrupted_planning_resumes_from_its_checkpoint(registry, cfg):
    searches = []

    def search(query, collection, where, k):
        searches.append(query)
        return []

    crash = ScriptedChat([ConnectionError("server lost mid-request")])
    with pytest.raises(ConnectionError):
        plan_short(REQUEST, seed=7, chat=crash, search=search, registry=registry, config=cfg)
    n_searches = len(searches)
    assert n_searches > 0 and Path(checkpoint_path()).exists()
    ok = ScriptedChat([submit(draft())])
    plan, report = plan_short(REQUEST, seed=7, chat=ok, search=search, registry=registry, config=cfg)
    assert report["resumed"] is True and len(searches) == n_searches  # understand/retrieve were not redone
    assert report["trace"] == ["understand", "retrieve", "model", "check"]
    assert len(plan.shots) == 4
    # finished threads are dropped: the same call now plans afresh
    _, again = plan_short(REQUEST, seed=7, chat=ScriptedChat([submit(draft())]), search=search, registry=registry,
                          config=cfg)
    assert again["resumed"] is False


def test_structured_style_offers_choices_and_composes_the_plan(registry):
    cfg = DirectorConfig(draft_style="structured", max_repair_attempts=1)
    searched = []

    def search(query, collection, where, k):
        searched.append(where)
        if where and where.get("kind") == "places":
            return [Hit(id="luca/places.md#portorosso", text="Portorosso — a fishing town", score=0.7,
                        metadata={"section": "Portorosso"}, collection="style_guide")]
        return []

    def structured_shot(verb, say):
        return {"characters": ["luca"], "verb": verb, "object": "the sea", "emotion": "happy", "camera": "wide",
                "camera_move": "static", "location": "Portorosso", "say": say, "effect": "none", "duration": 3}

    chat = ScriptedChat([submit({"title": "Luca and the Sea", "shots": [
        structured_shot("stares in wonder at", "luca: Wow, look at that!"),
        structured_shot("hugs", "nobody: (silence)")]})])
    plan, report = plan_short("Luca sees the sea in 2 shots", chat=chat, search=search, registry=registry,
                              config=cfg)
    assert {"kind": "places", "character": ["luca"]} in searched
    props = chat.calls[0]["tools"][0]["function"]["parameters"]["properties"]
    first = props["shots"]["prefixItems"][0]["properties"]
    assert "Portorosso" in first["location"]["enum"] and "the sea" in first["object"]["enum"]
    assert [s.action for s in plan.shots] == ["Luca stares in wonder at the sea", "Luca hugs the sea"]
    assert plan.shots[0].dialogue.line == "Wow, look at that!" and plan.title == "Luca and the Sea"


def test_footage_is_offered_only_when_the_request_asks_for_it(registry, cfg):
    chat = ScriptedChat([submit(draft(2, characters=["bunny"], speaker="bunny", source="footage"))])
    plan, _ = plan_short("use footage from the film: the bunny plays with a butterfly in 2 shots", chat=chat,
                         search=None, registry=registry, config=cfg)
    source = chat.calls[0]["tools"][0]["function"]["parameters"]["properties"]["shots"]["prefixItems"][0]
    assert source["properties"]["source"]["enum"] == ["storyboard", "footage"]
    assert plan.shots[0].source == "footage" and plan.shots[0].footage_query.startswith("Big Buck Bunny ")
    plain = ScriptedChat([submit(draft())])
    plan_short(REQUEST, chat=plain, search=None, registry=registry, config=cfg)
    assert "source" not in plain.calls[0]["tools"][0]["function"]["parameters"]["properties"]["shots"][
        "prefixItems"][0]["properties"]
