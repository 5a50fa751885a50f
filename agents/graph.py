"""The director as a LangGraph `StateGraph`.

    plan:    understand → retrieve → model ⇄ tools → check ─ok→ END
                                       ↑______repair______|  └─ too many failures → fail → END
    revise:  understand → evaluate ─all pass / bound reached→ END
                             └─failing→ model ⇄ tools → check → (rescore → evaluate) | END

`model` asks the LLM for a `submit_plan` call (forced once the helper-tool budget is spent); `check` parses,
assembles and validates it against the registry and, when it fails, feeds the errors back to the model as the
tool's result — at most `max_repair_attempts` times. Revision rewrites only the shots scored below the
threshold and keeps every other shot byte-for-byte.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from studio.agents.context import DirectorContext
from studio.agents.intent import Intent, assemble_plan, extract_intent
from studio.agents.prompts import plan_messages, repair_message, revise_messages, tool_result_message
from studio.agents.schema import PlanValidationError, draft_schema, parse_draft, validate_plan
from studio.agents.state import DirectorState
from studio.agents.tools import SUBMIT_PLAN, TOOLS, ToolError, execute_tool, tool_specs
from studio.agents.vocabulary import Vocabulary, build_vocabulary
from studio.configs.vocabulary import Plan
from studio.resources.llm.client import LLMOutputError

Ctx = Runtime[DirectorContext]


def _trace(state: DirectorState, node: str) -> list[str]:
    return [*state.get("trace", []), node]


def _intent(state: DirectorState) -> Intent:
    return Intent.model_validate(state["intent"])


def _vocab(state: DirectorState) -> Vocabulary | None:
    return Vocabulary.model_validate(state["vocab"]) if state.get("vocab") else None


def _sources(state: DirectorState, ctx: DirectorContext) -> tuple[str, ...]:
    """The profile's renderable sources, plus film footage when the request asks for it."""
    return (*ctx.sources, "footage") if _intent(state).use_footage else ctx.sources


def _schema(state: DirectorState, ctx: DirectorContext) -> dict[str, Any]:
    if state["mode"] == "revise":  # the failing shots keep their place in the story
        positions, total = sorted(state["failing"]), len((state["plan"] or {}).get("shots", []))
    else:
        positions, total = None, None
    return draft_schema(ctx.registry, _expected_shots(state), _intent(state).characters, _sources(state, ctx),
                        _vocab(state), positions, total)


def _expected_shots(state: DirectorState) -> int:
    return len(state["failing"]) if state["mode"] == "revise" else _intent(state).shots


# ---------------------------------------------------------------------- nodes
def understand(state: DirectorState, runtime: Ctx) -> dict[str, Any]:
    reg = runtime.context.registry
    if state["mode"] == "revise":
        plan = state["plan"] or {}
        intent = Intent(request=state.get("request") or plan.get("logline") or plan.get("title", ""),
                        characters=[c for c in plan.get("characters", []) if c in reg.character_ids],
                        shots=len(plan.get("shots", [])))
    else:
        intent = extract_intent(state["request"], reg, state.get("shots_wanted"))
    return {"intent": intent.model_dump(), "trace": _trace(state, "understand")}


def retrieve(state: DirectorState, runtime: Ctx) -> dict[str, Any]:
    """Knowledge for the prompt, fetched through the same allow-listed tool the model could call."""
    ctx, intent = runtime.context, _intent(state)
    k = ctx.config.retrieve_k
    hits: dict[str, dict[str, Any]] = {}
    if ctx.search is not None and k:
        queries: list[dict[str, Any]] = [{"query": intent.request, "k": k}]
        for cid in intent.characters[:3]:
            name = ctx.registry.character(cid).display_name
            queries.append({"query": f"{name}: personality, how they speak, good shots",
                            "collection": "character_info", "character": cid, "k": 2})
        queries.append({"query": f"style guide camera pacing {intent.tone}", "collection": "style_guide", "k": 2})
        found: list[dict[str, Any]] = []
        for q in queries:
            found.extend(json.loads(execute_tool("search_knowledge", q, ctx))[:2])
        for h in sorted(found, key=lambda h: -h["score"]):
            hits.setdefault(h["id"], h)
    chosen = list(hits.values())[:k]
    vocab = None
    if ctx.structured:
        places = []
        if ctx.search is not None and intent.characters:
            where = {"kind": "places", "character": intent.characters}
            places = [h.model_dump() if hasattr(h, "model_dump") else dict(h)
                      for h in ctx.search(intent.location or intent.request, "style_guide", where, 4)]
        vocab = build_vocabulary(intent, ctx.registry, list(hits.values()), places).model_dump()
    return {"hits": chosen, "vocab": vocab, "trace": _trace(state, "retrieve"),
            "messages": plan_messages(intent, chosen, ctx.registry, ctx.config.snippet_chars, vocab)}


def model(state: DirectorState, runtime: Ctx) -> dict[str, Any]:
    ctx = runtime.context
    schema = _schema(state, ctx)
    forced = state.get("tool_rounds", 0) >= ctx.config.max_tool_rounds
    specs = tool_specs(schema, include_helpers=not forced)
    choice: str | dict[str, Any] = {"type": "function", "function": {"name": SUBMIT_PLAN}} if forced else "auto"
    messages = list(state["messages"])
    attempts = state.get("attempts", 0)
    update: dict[str, Any] = {"trace": _trace(state, "model"), "errors": [], "pending_calls": []}
    try:
        turn = ctx.chat.invoke(messages, tools=specs, tool_choice=choice, seed=state.get("seed", 0) + attempts)
    except LLMOutputError as e:
        errors = [str(e)]
        return {**update, "errors": errors, "attempts": attempts + 1,
                "messages": [*messages, repair_message(errors)]}
    calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in turn.tool_calls]
    reply = turn.as_message()
    if not reply["content"] and calls:  # let small chat templates show the model what it wrote
        reply["content"] = calls[0]["arguments"][:4000]
    messages.append(reply)
    if any(c["name"] == SUBMIT_PLAN for c in calls):
        return {**update, "pending_calls": calls, "messages": messages}
    errors = []
    if not calls:
        errors.append(f"no tool was called (the reply was {(turn.content or '')[:120]!r}); call {SUBMIT_PLAN}")
    for c in calls:
        if c["name"] not in TOOLS:
            errors.append(f"tool '{c['name']}' is not allowed; the tools are {', '.join(TOOLS)}")
    if not errors and state.get("tool_rounds", 0) >= ctx.config.max_tool_rounds:
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


def check(state: DirectorState, runtime: Ctx) -> dict[str, Any]:
    ctx = runtime.context
    call = next(c for c in state["pending_calls"] if c["name"] == SUBMIT_PLAN)
    update: dict[str, Any] = {"trace": _trace(state, "check"), "pending_calls": []}
    try:
        try:
            args = json.loads(call["arguments"], strict=False)
        except json.JSONDecodeError as e:
            raise PlanValidationError([f"the submit_plan arguments are not valid JSON ({e.msg})"]) from None
        if not isinstance(args, dict):
            raise PlanValidationError(["the submit_plan arguments must be a JSON object"])
        intent = _intent(state)
        draft = parse_draft(args, _expected_shots(state), _schema(state, ctx))
        assembled = assemble_plan(draft, intent, ctx.registry, ctx.sources[0])
        if state["mode"] == "revise":
            plan = _merge(Plan.model_validate(state["plan"]), assembled, state["failing"])
            validate_plan(plan, ctx.registry)
            return {**update, "plan": plan.model_dump(), "status": "revised", "errors": [],
                    "iteration": state["iteration"] + 1, "revised": sorted({*state["revised"], *state["failing"]})}
        plan = validate_plan(assembled, ctx.registry)
        return {**update, "plan": plan.model_dump(), "status": "planned", "errors": []}
    except PlanValidationError as e:
        feedback = tool_result_message(call["id"], "rejected: " + "; ".join(e.problems[:12]) +
                                       f". Call {SUBMIT_PLAN} again with every problem fixed.")
        return {**update, "errors": e.problems, "attempts": state.get("attempts", 0) + 1,
                "messages": [*state["messages"], feedback]}


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
    ctx = runtime.context
    failing = sorted(s["shot_id"] for s in state["scores"] if s["score"] < state["threshold"])
    update: dict[str, Any] = {"trace": _trace(state, "evaluate"), "failing": failing}
    if not failing:
        return {**update, "decision": "accept", "status": "revised" if state["revised"] else "accepted"}
    if state["iteration"] >= state["max_iterations"]:
        return {**update, "decision": "give_up", "status": "gave_up"}
    plan = state["plan"] or {}
    details = [s for s in state["scores"] if s["shot_id"] in failing]
    details.sort(key=lambda s: s["shot_id"])
    if ctx.structured and not state.get("vocab"):
        update["vocab"] = build_vocabulary(_intent(state), ctx.registry, state.get("hits", [])).model_dump()
    return {**update, "decision": "revise", "attempts": 0, "tool_rounds": 0,
            "messages": revise_messages(plan, details, ctx.registry, _intent(state), state.get("hits", []),
                                        ctx.config.snippet_chars)}


def rescore(state: DirectorState, runtime: Ctx) -> dict[str, Any]:
    """Re-render and judge the shots just revised (the create_short flow supplies how)."""
    fresh = runtime.context.rescore(Plan.model_validate(state["plan"]), state["failing"])  # type: ignore[misc]
    by_id = {s["shot_id"]: s for s in state["scores"]}
    for s in fresh:
        by_id[int(s["shot_id"])] = {"shot_id": int(s["shot_id"]), "score": float(s["score"]),
                                    "reasons": list(s.get("reasons") or [])}
    return {"scores": [by_id[k] for k in sorted(by_id)], "trace": _trace(state, "rescore")}


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
    if any(c["name"] == SUBMIT_PLAN for c in state["pending_calls"]):
        return "check"
    return "tools"


def route_after_check(state: DirectorState, runtime: Ctx) -> Literal["model", "fail", "rescore", "__end__"]:
    if state.get("errors"):
        return _repair_or_fail(state, runtime)
    if state["mode"] == "revise" and runtime.context.rescore is not None:
        return "rescore"
    return END


def build_graph(checkpointer: Any = None) -> Any:
    g = StateGraph(DirectorState, context_schema=DirectorContext)
    for name, fn in (("understand", understand), ("retrieve", retrieve), ("model", model), ("tools", tools),
                     ("check", check), ("fail", fail), ("evaluate", evaluate), ("rescore", rescore)):
        g.add_node(name, fn)
    g.add_edge(START, "understand")
    g.add_conditional_edges("understand", route_after_understand)
    g.add_edge("retrieve", "model")
    g.add_conditional_edges("model", route_after_model)
    g.add_edge("tools", "model")
    g.add_conditional_edges("check", route_after_check)
    g.add_edge("fail", END)
    g.add_conditional_edges("evaluate", route_after_evaluate)
    g.add_edge("rescore", "evaluate")
    return g.compile(checkpointer=checkpointer)
