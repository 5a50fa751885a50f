"""Director graph logic with a scripted fake chat model (as LangGraph's own tests do): routing, the repair
loop on registry and fidelity problems and its bound, the tool allow-list, citations, one-step revision of
failing shots only (judge scores and fidelity blame), and resume after a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.chat import ScriptedChat, submit

from studio.agents.context import DirectorConfig, RevisionConfig
from studio.agents.director import PlanningError, checkpoint_path, plan_short, revise_failing_shots
from studio.agents.intent import RequestError
from studio.agents.registry import PlanRegistry
from studio.resources.knowledge.store import Hit
from studio.resources.llm.client import ChatTurn, ToolCall

REQUEST = "a funny short of Luca seeing the sea for the first time"


def shot(**kw) -> dict:
    d = {"action": "Luca stares at the endless sea", "line": "So much water!", "camera": "wide",
         "camera_move": "static", "emotion": "curious", "effect": "none"}
    d.update(kw)
    return d


def draft(n: int = 4, **kw) -> dict:
    return {"title": "First Sight", "logline": "Luca sees the sea for the first time.",
            "shots": [shot(action=f"Luca looks at the sea, moment {i}", line=f"Line number {i}!", **kw)
                      for i in range(1, n + 1)]}


def choose_last(schema: dict) -> dict:
    """What a structured model returns: one option of every enum."""
    shots = schema["properties"]["shots"]["prefixItems"]
    return {"title": schema["properties"]["title"]["enum"][-1],
            "shots": [{k: v["enum"][-1] for k, v in it["properties"].items()} for it in shots]}


class EnumChooser(ScriptedChat):
    def __init__(self):
        super().__init__([])

    def invoke(self, messages, *, tools, tool_choice, seed=None):
        self.calls.append({"messages": messages, "tools": tools, "tool_choice": tool_choice, "seed": seed})
        return submit(choose_last(tools[0]["function"]["parameters"]))


@pytest.fixture
def registry() -> PlanRegistry:
    return PlanRegistry.from_configs()


@pytest.fixture
def cfg() -> DirectorConfig:
    return DirectorConfig(max_repair_attempts=2, draft_style="free",
                          revision=RevisionConfig(threshold=0.5, max_iterations=2))


def test_structured_plan_follows_the_intent_and_the_model_only_chooses(registry):
    cfg = DirectorConfig(draft_style="structured")
    chat = EnumChooser()
    plan, report = plan_short("make a funny short of Big Buck Bunny seeing a butterfly for the first time",
                              chat=chat, search=None, registry=registry, config=cfg)
    assert report["status"] == "planned" and report["trace"] == ["understand", "retrieve", "model", "check"]
    call = chat.calls[0]
    assert call["tool_choice"] == {"type": "function", "function": {"name": "submit_plan"}}
    items = call["tools"][0]["function"]["parameters"]["properties"]["shots"]["prefixItems"]
    assert len(items) == 4
    assert all(set(it["properties"]) <= {"verb", "camera", "emotion", "line"} for it in items)
    assert all(v.get("enum") for it in items for v in it["properties"].values())  # nothing free to write
    assert "verb" not in items[1]["properties"]  # the request's event is not the model's choice
    event = plan.shots[1]
    assert event.verb == "see" and event.target == "butterfly" and "butterfly" in event.things
    assert event.action == "Big Buck Bunny sees a butterfly for the first time"
    assert plan.characters == ["bunny"] and all(s.characters == ["bunny"] for s in plan.shots)
    lines = [s.dialogue.line for s in plan.shots if s.dialogue]
    assert len(lines) == 4 and len(set(lines)) == 4 and "Oops!" not in lines
    assert any("butterfly" in ln.lower() for ln in lines)
    assert plan.shots[3].exaggeration > 1.0 and plan.shots[2].exaggeration >= plan.shots[1].exaggeration


def test_free_text_plan_that_drops_the_subject_is_repaired_with_the_reason(registry, cfg):
    request = "a funny short of Luca finding a seashell for the first time"
    bad, good = draft(), draft()
    for s in bad["shots"]:
        s["action"] = "Luca runs around the town square"
    for s in good["shots"]:
        s["action"] = s["action"].replace("the sea", "a seashell")
    chat = ScriptedChat([submit(bad, "bad"), submit(good, "good")])
    plan, report = plan_short(request, chat=chat, search=None, registry=registry, config=cfg)
    assert report["attempts"] == 1 and len(chat.calls) == 2
    feedback = chat.calls[1]["messages"][-1]
    assert feedback["role"] == "tool" and feedback["tool_call_id"] == "bad"
    assert "never shows seashell" in feedback["content"] and "must show seashell" in feedback["content"]
    assert chat.calls[1]["seed"] != chat.calls[0]["seed"]  # a repair samples differently
    assert plan.shots[1].verb == "find" and plan.shots[1].target == "seashell"  # the structure is the intent's


def test_repeated_lines_and_wrong_count_are_refused_after_bounded_repairs(registry, cfg, isolated_store):
    same_line = draft()
    for s in same_line["shots"]:
        s["line"] = "Oops!"
    chat = ScriptedChat([submit("{not json"), submit(draft(n=2)), submit(same_line)])
    with pytest.raises(PlanningError) as e:
        plan_short(REQUEST, chat=chat, search=None, registry=registry, config=cfg)
    assert len(chat.calls) == 3  # 1 try + max_repair_attempts (2)
    assert "repeats the line 'oops!'" in str(e.value) and "Nothing was written" in str(e.value)
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
                                 "shots": [shot(action="Luca dives into a wave of the sea", line="Cold!"),
                                           shot(action="Luca waves goodbye to the sea", line="Bye, sea!")]})])
    new, report = revise_failing_shots(plan, {1: 0.9, 2: 0.1, 3: 0.7, 4: 0.2}, request=REQUEST, chat=chat,
                                       registry=registry, config=cfg)
    assert report["decision"] == "revise" and report["revised_shots"] == [2, 4]
    assert [s.action for s in new.shots] == [plan.shots[0].action, "Luca dives into a wave of the sea",
                                            plan.shots[2].action, "Luca waves goodbye to the sea"]
    assert new.shots[0] == plan.shots[0] and new.shots[2] == plan.shots[2] and new.title == plan.title
    schema = chat.calls[0]["tools"][0]["function"]["parameters"]
    assert schema["properties"]["shots"]["maxItems"] == 2
    assert "Shot 2 scored 0.10" in chat.calls[0]["messages"][1]["content"]


def test_revision_also_revises_what_fidelity_blames(registry, cfg):
    plan = _plan(registry, cfg)
    repeated = plan.model_copy(deep=True)
    repeated.shots[2].dialogue = repeated.shots[1].dialogue  # shot 3 says shot 2's line again
    chat = ScriptedChat([submit({"title": "New", "logline": "Replacement shots for review.",
                                 "shots": [shot(action="Luca splashes into the sea", line="Here I go!")]})])
    new, report = revise_failing_shots(repeated, {1: 0.9, 2: 0.9, 3: 0.9, 4: 0.9}, request=REQUEST, chat=chat,
                                       registry=registry, config=cfg)
    assert report["failing"] == [3] and report["revised_shots"] == [3]
    assert "repeats the line" in chat.calls[0]["messages"][1]["content"]
    assert new.shots[2].dialogue.line == "Here I go!" and new.shots[1] == repeated.shots[1]


def test_revision_accepts_without_model_when_all_pass_or_bound_reached(registry, cfg):
    plan = _plan(registry, cfg)
    chat = ScriptedChat([])
    same, report = revise_failing_shots(plan, {1: 0.9, 2: 0.8}, request=REQUEST, chat=chat, registry=registry,
                                        config=cfg)
    assert same == plan and report["decision"] == "accept"
    same, report = revise_failing_shots(plan, {1: 0.1}, iteration=2, chat=chat, registry=registry, config=cfg)
    assert same == plan and report["decision"] == "give_up" and report["failing"] == [1]
    assert chat.calls == []


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


def test_footage_is_offered_only_when_the_request_asks_for_it(registry, cfg):
    chat = ScriptedChat([submit({**draft(2), "shots": [
        shot(action="Big Buck Bunny plays with a butterfly", line="Hi!", source="footage"),
        shot(action="Big Buck Bunny waves at the butterfly", line="Bye!", source="storyboard")]})])
    plan, _ = plan_short("use footage from the film: the bunny plays with a butterfly in 2 shots", chat=chat,
                         search=None, registry=registry, config=cfg)
    source = chat.calls[0]["tools"][0]["function"]["parameters"]["properties"]["shots"]["prefixItems"][0]
    assert source["properties"]["source"]["enum"] == ["storyboard", "footage"]
    assert plan.shots[0].source == "footage" and plan.shots[0].footage_query.startswith("Big Buck Bunny ")
    plain = ScriptedChat([submit(draft())])
    plan_short(REQUEST, chat=plain, search=None, registry=registry, config=cfg)
    assert "source" not in plain.calls[0]["tools"][0]["function"]["parameters"]["properties"]["shots"][
        "prefixItems"][0]["properties"]
