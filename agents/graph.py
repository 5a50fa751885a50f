"""The director as a LangGraph `StateGraph`.

    plan:    understand → retrieve → model ⇄ tools → check ─ok→ END
                                       ↑______repair______|  └─ too many failures → fail → END
    revise:  understand → evaluate ─nothing failing / bound reached→ END
                             └─failing→ model ⇄ tools → check → END

`understand` reads the request (code: spaCy); `retrieve` fetches knowledge and composes the story (beats and
shot briefs, code); `model` asks the LLM for a `submit_plan` call whose schema is built from the briefs;
`check` parses, assembles and validates the plan — registry rules and fidelity to the request — and feeds
problems back to the model, at most `max_repair_attempts` times. Revision is one step per call (the
create_short flow re-renders and judges between calls): it rewrites the shots the judges or the fidelity
check blame and keeps every other shot byte-for-byte.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from studio.agents.assemble import assemble_plan
from studio.agents.context import DirectorContext
from studio.agents.fidelity import check_fidelity
from studio.agents.intent import Intent, extract_intent
from studio.agents.prompts import plan_messages, repair_message, revise_messages, tool_result_message
from studio.agents.schema import Draft, PlanValidationError, draft_schema, schema_problems, validate_plan
from studio.agents.state import DirectorState
from studio.agents.story import Story, compose_story
from studio.agents.tools import SUBMIT_PLAN, TOOLS, ToolError, execute_tool, tool_specs
from studio.configs.vocabulary import Plan
from studio.resources.llm.client import LLMOutputError

Ctx = Runtime[DirectorContext]


def _trace(state: DirectorState, node: str) -> list[str]:
    return [*state.get("trace", []), node]


def _intent(state: DirectorState) -> Intent:
    return Intent.model_validate(state["intent"])


def _story(state: DirectorState) -> Story:
    return Story.model_validate(state["story"])


def _sources(state: DirectorState, ctx: DirectorContext) -> tuple[str, ...]:
    """The profile's renderable sources, plus film footage when the request asks for it."""
    return (*ctx.sources, "footage") if _intent(state).use_footage else ctx.sources


def _schema(state: DirectorState, ctx: DirectorContext) -> dict[str, Any]:
    return draft_schema(_story(state), ctx.registry, not ctx.structured, _sources(state, ctx))


# ---------------------------------------------------------------------- nodes
def understand(state: DirectorState, runtime: Ctx) -> dict[str, Any]:
    ctx = runtime.context
    plan = state.get("plan") or {}
    request = state.get("request") or plan.get("logline") or plan.get("title", "")
    shots = len(plan.get("shots", [])) if state["mode"] == "revise" else state.get("shots_wanted")
    intent = extract_intent(request, ctx.registry, shots, ctx.config)
    return {"intent": intent.model_dump(), "trace": _trace(state, "understand")}


def _retrieve_hits(intent: Intent, ctx: DirectorContext) -> list[dict[str, Any]]:
    k = ctx.config.retrieve_k
    if ctx.search is None or not k:
        return []
    queries: list[dict[str, Any]] = [{"query": intent.request, "k": k}]
    for cid in intent.characters[:3]:
        name = ctx.registry.character(cid).display_name
        queries.append({"query": f"{name}: personality, how they speak, good shots",
                        "collection": "character_info", "character": cid, "k": 2})
    queries.append({"query": f"style guide camera pacing {intent.tone}", "collection": "style_guide", "k": 2})
    hits: dict[str, dict[str, Any]] = {}
    found = [h for q in queries for h in json.loads(execute_tool("search_knowledge", q, ctx))[:2]]
    for h in sorted(found, key=lambda h: -h["score"]):
        hits.setdefault(h["id"], h)
    return list(hits.values())


def retrieve(state: DirectorState, runtime: Ctx) -> dict[str, Any]:
    """Knowledge (through the same allow-listed tool the model could call), then the story from the intent."""
    ctx, intent = runtime.context, _intent(state)
    hits = _retrieve_hits(intent, ctx)
    story = compose_story(intent, ctx.registry, hits, state.get("seed", 0))
    chosen = hits[:ctx.config.retrieve_k]
    return {"hits": chosen, "story": story.model_dump(), "trace": _trace(state, "retrieve"),
            "messages": plan_messages(intent, story, chosen, ctx.registry, ctx.config.snippet_chars,
                                      not ctx.structured)}


def model(state: DirectorState, runtime: Ctx) -> dict[str, Any]:
    ctx = runtime.context
    forced = state.get("tool_rounds", 0) >= ctx.config.max_tool_rounds
    specs = tool_specs(_schema(state, ctx), include_helpers=not forced)
    choice: str | dict[str, Any] = {"type": "function", "function": {"name": SUBMIT_PLAN}} if forced else "auto"
    messages = list(state["messages"])
    attempts = state.get("attempts", 0)
    update: dict[str, Any] = {"trace": _trace(state, "model"), "errors": [], "pending_calls": []}
    try:
        turn = ctx.chat.invoke(messages, tools=specs, tool_choice=choice, seed=state.get("seed", 0) + attempts)
    except LLMOutputError as e:
        return {**update, "errors": [str(e)], "attempts": attempts + 1,
                "messages": [*messages, repair_message([str(e)])]}
    calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in turn.tool_calls]
    reply = turn.as_message()
    if not reply["content"] and calls:  # let small chat templates show the model what it wrote
        reply["content"] = calls[0]["arguments"][:4000]
    messages.append(reply)
    if any(c["name"] == SUBMIT_PLAN for c in calls):
        return {**update, "pending_calls": calls, "messages": messages}
    errors = [] if calls else [f"no tool was called (the reply was {(turn.content or '')[:120]!r}); call "
                               f"{SUBMIT_PLAN}"]
    errors += [f"tool '{c['name']}' is not allowed; the tools are {', '.join(TOOLS)}" for c in calls
               if c["name"] not in TOOLS]
    if not errors and forced:
        errors.append(f"no more helper tools: call {SUBMIT_PLAN} now")
    if errors:
        feedback = [tool_result_message(c["id"], "refused: " + "; ".join(errors)) for c in calls]
        return {**update, "errors": errors, "attempts": attempts + 1,
                "messages": [*messages, *feedback, *([] if calls else [repair_message(errors)])]}
    return {**update, "pending_calls": calls, "messages": messages}


def tools(state: DirectorState, runtime: Ctx) -> dict[str, Any]:
    messages = list(state["messages"])
    for c in state["pending_calls"]:
        try:
            content = execute_tool(c["name"], c["arguments"], runtime.context)
        except ToolError as e:
            content = f"error: {e}"
        messages.append(tool_result_message(c["id"], content))
    return {"messages": messages, "pending_calls": [], "tool_rounds": state.get("tool_rounds", 0) + 1,
            "trace": _trace(state, "tools")}


def _parse(call: dict[str, Any], schema: dict[str, Any]) -> Draft:
    try:
        args = json.loads(call["arguments"], strict=False)
    except json.JSONDecodeError as e:
        raise PlanValidationError([f"the submit_plan arguments are not valid JSON ({e.msg})"]) from None
    if not isinstance(args, dict):
        raise PlanValidationError(["the submit_plan arguments must be a JSON object"])
    if problems := schema_problems(args, schema):
        raise PlanValidationError(problems[:20])
    return Draft.model_validate(args)


def check(state: DirectorState, runtime: Ctx) -> dict[str, Any]:
    ctx = runtime.context
    call = next(c for c in state["pending_calls"] if c["name"] == SUBMIT_PLAN)
    update: dict[str, Any] = {"trace": _trace(state, "check"), "pending_calls": []}
    intent, story = _intent(state), _story(state)
    try:
        draft = _parse(call, _schema(state, ctx))
        sources = _sources(state, ctx)
        assembled = assemble_plan(draft, story, intent, ctx.registry, not ctx.structured, sources)
        if state["mode"] == "revise":
            plan = _merge(Plan.model_validate(state["plan"]), assembled, state["failing"])
            briefs = None
        else:
            plan, briefs = assembled, story.briefs
        plan = validate_plan(plan, ctx.registry)
        fidelity = check_fidelity(plan, intent, briefs)
        if not fidelity.ok:
            raise PlanValidationError(fidelity.problems)
    except PlanValidationError as e:
        feedback = tool_result_message(call["id"], "rejected: " + "; ".join(e.problems[:12]) +
                                       f". Call {SUBMIT_PLAN} again with every problem fixed.")
        return {**update, "errors": e.problems, "attempts": state.get("attempts", 0) + 1,
                "messages": [*state["messages"], feedback]}
    if state["mode"] == "revise":
        return {**update, "plan": plan.model_dump(), "status": "revised", "errors": [],
                "iteration": state["iteration"] + 1, "revised": sorted({*state["revised"], *state["failing"]})}
    return {**update, "plan": plan.model_dump(), "status": "planned", "errors": []}


def _merge(plan: Plan, replacement: Plan, failing: list[int]) -> Plan:
    """Replace the failing shots (in order) and keep every other shot exactly as it was."""
    new = {sid: s.model_copy(update={"id": sid}) for sid, s in zip(failing, replacement.shots, strict=True)}
    shots = [new.get(s.id, s) for s in plan.shots]
    cast = list(dict.fromkeys([*plan.characters, *(c for s in shots for c in s.characters)]))
    cast = [c for c in cast if any(c in s.characters for s in shots)]
    return plan.model_copy(update={"shots": shots, "characters": cast})


def fail(state: DirectorState, runtime: Ctx) -> dict[str, Any]:
    return {"status": "failed", "trace": _trace(state, "fail")}


def evaluate(state: DirectorState, runtime: Ctx) -> dict[str, Any]:
    """The shots to revise: those the judges scored below the threshold and those fidelity blames."""
    ctx, intent = runtime.context, _intent(state)
    plan = Plan.model_validate(state["plan"])
    blamed = check_fidelity(plan, intent).by_shot
    scores = {s["shot_id"]: dict(s) for s in state["scores"]}
    for sid, why in blamed.items():
        s = scores.setdefault(sid, {"shot_id": sid, "score": 1.0, "reasons": []})
        s["score"] = 0.0
        s["reasons"] = [*s.get("reasons", []), *why]
    failing = sorted(sid for sid, s in scores.items() if s["score"] < state["threshold"])
    update: dict[str, Any] = {"trace": _trace(state, "evaluate"), "failing": failing,
                              "scores": [scores[k] for k in sorted(scores)]}
    if not failing:
        return {**update, "decision": "accept", "status": "accepted"}
    if state["iteration"] >= state["max_iterations"]:
        return {**update, "decision": "give_up", "status": "gave_up"}
    kept = {s.dialogue.line.lower() for s in plan.shots if s.dialogue and s.id not in failing}
    story = compose_story(intent, ctx.registry, state.get("hits", []), state.get("seed", 0) + 1 + state["iteration"],
                          positions=failing, avoid_lines=kept)
    details = [scores[sid] for sid in failing]
    return {**update, "decision": "revise", "attempts": 0, "tool_rounds": 0, "story": story.model_dump(),
            "messages": revise_messages(plan.model_dump(), details, ctx.registry, intent, story,
                                        state.get("hits", []), ctx.config.snippet_chars)}


# ---------------------------------------------------------------------- routers
def route_after_understand(state: DirectorState) -> Literal["retrieve", "evaluate"]:
    return "evaluate" if state["mode"] == "revise" else "retrieve"


def route_after_evaluate(state: DirectorState) -> Literal["model", "__end__"]:
    return "model" if state["decision"] == "revise" else END


def _repair_or_fail(state: DirectorState, runtime: Ctx) -> Literal["model", "fail"]:
    return "model" if state.get("attempts", 0) <= runtime.context.max_repair_attempts else "fail"


def route_after_model(state: DirectorState, runtime: Ctx) -> Literal["check", "tools", "model", "fail"]:
    if state.get("errors"):
        return _repair_or_fail(state, runtime)
    return "check" if any(c["name"] == SUBMIT_PLAN for c in state["pending_calls"]) else "tools"


def route_after_check(state: DirectorState, runtime: Ctx) -> Literal["model", "fail", "__end__"]:
    return _repair_or_fail(state, runtime) if state.get("errors") else END


def build_graph(checkpointer: Any = None) -> Any:
    g = StateGraph(DirectorState, context_schema=DirectorContext)
    for name, fn in (("understand", understand), ("retrieve", retrieve), ("model", model), ("tools", tools),
                     ("check", check), ("fail", fail), ("evaluate", evaluate)):
        g.add_node(name, fn)
    g.add_edge(START, "understand")
    g.add_conditional_edges("understand", route_after_understand)
    g.add_edge("retrieve", "model")
    g.add_conditional_edges("model", route_after_model)
    g.add_edge("tools", "model")
    g.add_conditional_edges("check", route_after_check)
    g.add_edge("fail", END)
    g.add_conditional_edges("evaluate", route_after_evaluate)
    return g.compile(checkpointer=checkpointer)
