"""The director's public API: `plan_short()` turns a request into a validated `Plan`; `revise_failing_shots()`
rewrites only the shots a judge scored below the threshold.

Request problems (empty, > 100 kB, an unknown character) and an unreachable LLM server are reported before
anything is written. The graph's state is checkpointed in SQLite under STUDIO_HOME: a planning run that was
interrupted (killed, server lost mid-way) resumes from its last finished step when called again with the same
request, shot count and seed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from studio.agents.context import (
    ChatModel,
    DirectorConfig,
    DirectorContext,
    EndpointChatModel,
    SearchFn,
    load_director_config,
)
from studio.agents.graph import build_graph
from studio.agents.intent import extract_intent
from studio.agents.schema import PlanRegistry, validate_plan
from studio.agents.state import ShotScoreDict, initial_plan_state, initial_revise_state
from studio.configs.errors import StudioError
from studio.configs.settings import get_settings
from studio.configs.vocabulary import Plan

PROMPT_VERSION = "director-v2"  # intent (spaCy) + composed story + fidelity check


class PlanningError(StudioError):
    pass


# ---------------------------------------------------------------------- plumbing
def checkpoint_path() -> Any:
    return get_settings().home / "director" / "checkpoints.sqlite"


@contextlib.contextmanager
def open_checkpointer() -> Iterator[Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    try:
        yield SqliteSaver(conn)
    finally:
        conn.close()


def _thread_id(kind: str, payload: Any) -> str:
    return f"{kind}-" + hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _sources(profile: str | None) -> tuple[str, ...]:
    from studio.resources.registry import resolve_profile

    return ("generate", "storyboard") if resolve_profile(profile) == "gpu" else ("storyboard",)


def _structured(cfg: DirectorConfig, profile: str | None) -> bool:
    from studio.resources.registry import resolve_profile

    if cfg.draft_style != "auto":
        return cfg.draft_style == "structured"
    return resolve_profile(profile) != "gpu"


def default_search(kb: Any = None) -> SearchFn:
    """KnowledgeBase search over the studio's index, with the knowledge pack synced first (embeds changes only)."""
    from studio.resources.knowledge.pack import index_pack
    from studio.resources.knowledge.store import KnowledgeBase

    kb = kb or KnowledgeBase.from_settings()
    pack = get_settings().knowledge_path
    if pack.is_dir():
        index_pack(kb, pack)
    return lambda query, collection, where, k: kb.search(query, collection=collection, k=k, where=where)


@contextlib.contextmanager
def _chat_for(profile: str | None, cfg: DirectorConfig) -> Iterator[tuple[ChatModel, str]]:
    from studio.resources.llm.servers import ensure_llm_server, llm_session

    endpoint = ensure_llm_server(profile)
    with llm_session(endpoint) as client:
        yield EndpointChatModel(client, cfg.temperature, cfg.max_tokens, dict(cfg.sampling)), endpoint.model_id


def _run(graph: Any, state: dict[str, Any], config: dict[str, Any], ctx: DirectorContext) -> tuple[dict, bool]:
    snap = graph.get_state(config)
    if snap.next and snap.values.get("mode") == state["mode"]:
        return graph.invoke(None, config, context=ctx), True  # resume an interrupted run
    return graph.invoke(state, config, context=ctx), False


def _report(result: dict[str, Any], thread: str, model: str, t0: float, resumed: bool,
            ctx: DirectorContext) -> dict[str, Any]:
    return {
        "status": result.get("status"), "model": model, "thread_id": thread, "resumed": resumed,
        "seconds": round(time.perf_counter() - t0, 3), "attempts": result.get("attempts", 0),
        "errors": result.get("errors", []), "trace": result.get("trace", []), "intent": result.get("intent", {}),
        "citations": [{"ref": i + 1, "id": h["id"], "collection": h.get("collection"), "score": h.get("score")}
                      for i, h in enumerate(result.get("hits", []))],
        "tools_used": list(ctx.tool_log), "decision": result.get("decision"),
        "revised_shots": result.get("revised", []), "iteration": result.get("iteration", 0),
    }


# ---------------------------------------------------------------------- public API
def plan_short(request: str, shots: int | None = None, seed: int = 0, *, profile: str | None = None,
               chat: ChatModel | None = None, search: SearchFn | None | str = "default",
               registry: PlanRegistry | None = None, config: DirectorConfig | None = None
               ) -> tuple[Plan, dict[str, Any]]:
    """Plan a short. Returns the validated plan and a report (status, attempts, citations, trace, timing).

    chat: a ChatModel (tests pass a scripted one); default: the profile's LLM server, started if needed.
    search: a search function, None for no retrieval, or "default" for the studio's knowledge base.
    """
    t0 = time.perf_counter()
    registry = registry or PlanRegistry.from_configs()
    cfg = config or load_director_config()
    extract_intent(request, registry, shots, cfg)  # request errors surface here, before any server or file
    repairs = cfg.max_repair_attempts if cfg.max_repair_attempts is not None else get_settings().llm.max_repair_attempts
    with contextlib.ExitStack() as stack:
        model_id = "scripted"
        if chat is None:
            chat, model_id = stack.enter_context(_chat_for(profile, cfg))
        search_fn = default_search() if search == "default" else search
        ctx = DirectorContext(chat=chat, registry=registry, search=search_fn, config=cfg,  # type: ignore[arg-type]
                              max_repair_attempts=repairs, sources=_sources(profile),
                              structured=_structured(cfg, profile))
        thread = _thread_id("plan", [" ".join(request.split()), shots, seed, registry.fingerprint(), model_id,
                                     PROMPT_VERSION, cfg.model_dump()])
        cp = stack.enter_context(open_checkpointer())
        graph = build_graph(cp)
        run_config = {"configurable": {"thread_id": thread}, "recursion_limit": 100}
        result, resumed = _run(graph, dict(initial_plan_state(request, shots, seed)), run_config, ctx)
        report = _report(result, thread, model_id, t0, resumed, ctx)
        cp.delete_thread(thread)  # finished either way: nothing left to resume
    if result.get("status") != "planned" or not result.get("plan"):
        problems = "\n".join(f"  - {e}" for e in result.get("errors", [])[:10])
        raise PlanningError(f"the model ({model_id}) did not produce a valid plan after {report['attempts']} "
                            f"attempt(s) (valid: registry rules and fidelity to the request); last problems:\n"
                            f"{problems}\nTry another --seed, fewer --shots, or a larger model (--profile gpu). "
                            "Nothing was written.")
    return validate_plan(result["plan"], registry), report


def _blamed(plan: Plan, request: str, registry: PlanRegistry, cfg: DirectorConfig) -> list[int]:
    from studio.agents.fidelity import check_fidelity

    if not request:
        return []
    return list(check_fidelity(plan, extract_intent(request, registry, len(plan.shots), cfg)).by_shot)


def normalize_scores(scores: Any) -> list[ShotScoreDict]:
    """Accept {shot_id: score}, [{shot_id, score, reasons}], or judge ShotScore objects."""
    out: list[ShotScoreDict] = []
    if isinstance(scores, Mapping):
        items: Sequence[Any] = [{"shot_id": k, "score": v} for k, v in scores.items()]
    else:
        items = list(scores)
    for s in items:
        d = s.model_dump() if hasattr(s, "model_dump") else dict(s)
        out.append({"shot_id": int(d["shot_id"]), "score": float(d["score"]), "reasons": list(d.get("reasons") or [])})
    return sorted(out, key=lambda s: s["shot_id"])


def revise_failing_shots(plan: Plan | dict[str, Any], scores: Any, threshold: float | None = None, *,
                         iteration: int = 0, max_iterations: int | None = None, request: str = "", seed: int = 0,
                         profile: str | None = None, chat: ChatModel | None = None,
                         registry: PlanRegistry | None = None, config: DirectorConfig | None = None
                         ) -> tuple[Plan, dict[str, Any]]:
    """One step of the revision loop: accept, or rewrite only the failing shots — those scored below
    `threshold` (default: configs/director.yaml) and those the fidelity check blames (a requested subject not
    shown, an uninvited character, a repeated line). The caller re-renders and calls again with
    `iteration + 1` (the create_short flow does). report["decision"] is accept | revise | give_up and
    report["revised_shots"] lists the ids rewritten. Shots that pass are kept exactly. If the model cannot
    produce a valid revision, the plan comes back unchanged with status "failed".
    """
    t0 = time.perf_counter()
    registry = registry or PlanRegistry.from_configs()
    cfg = config or load_director_config()
    plan = validate_plan(plan, registry)
    thr = cfg.revision.threshold if threshold is None else float(threshold)
    max_it = cfg.revision.max_iterations if max_iterations is None else int(max_iterations)
    norm = normalize_scores(scores)
    unknown = sorted({s["shot_id"] for s in norm} - {s.id for s in plan.shots})
    if unknown:
        raise PlanningError(f"scores name shots {unknown}, which the plan does not have")
    failing = sorted({s["shot_id"] for s in norm if s["score"] < thr} | set(_blamed(plan, request, registry, cfg)))
    if not failing or iteration >= max_it:  # nothing to ask the model: no server needed
        decision = "accept" if not failing else "give_up"
        return plan, {"status": "accepted" if not failing else "gave_up", "decision": decision,
                      "revised_shots": [], "failing": failing, "iteration": iteration, "attempts": 0,
                      "seconds": round(time.perf_counter() - t0, 3), "errors": []}
    repairs = cfg.max_repair_attempts if cfg.max_repair_attempts is not None else get_settings().llm.max_repair_attempts
    with contextlib.ExitStack() as stack:
        model_id = "scripted"
        if chat is None:
            chat, model_id = stack.enter_context(_chat_for(profile, cfg))
        ctx = DirectorContext(chat=chat, registry=registry, search=None, config=cfg, max_repair_attempts=repairs,
                              sources=_sources(profile), structured=_structured(cfg, profile))
        thread = _thread_id("revise", [plan.model_dump(), norm, thr, iteration, max_it, seed, model_id])
        cp = stack.enter_context(open_checkpointer())
        graph = build_graph(cp)
        state = dict(initial_revise_state(plan.model_dump(), norm, thr, iteration, max_it, request, seed))
        result, resumed = _run(graph, state, {"configurable": {"thread_id": thread}, "recursion_limit": 200}, ctx)
        report = _report(result, thread, model_id, t0, resumed, ctx)
        report["failing"] = failing
        cp.delete_thread(thread)
    if result.get("status") == "failed":
        return plan, report
    return validate_plan(result["plan"], registry), report
