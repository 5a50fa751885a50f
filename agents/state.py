"""The director graph's state: plain JSON-able values, so the SQLite checkpointer can store every step.

Every channel is overwritten by the node that returns it (no reducers): a fresh run passes a complete
initial state, so nothing leaks from an earlier run on the same thread.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Mode = Literal["plan", "revise"]
Status = Literal["started", "planned", "failed", "accepted", "revised", "gave_up"]


class ShotScoreDict(TypedDict, total=False):
    shot_id: int
    score: float
    reasons: list[str]


class DirectorState(TypedDict, total=False):
    mode: Mode
    request: str
    shots_wanted: int | None
    seed: int
    intent: dict[str, Any]  # studio.agents.intent.Intent as a dict
    hits: list[dict[str, Any]]  # retrieved knowledge (Hit dicts), cited in the prompt as [1], [2], ...
    story: dict[str, Any] | None  # studio.agents.story.Story: the beats and shot briefs the draft fills
    messages: list[dict[str, Any]]  # the chat transcript of the current planning/revision attempt
    pending_calls: list[dict[str, Any]]  # tool calls of the last model turn: {id, name, arguments}
    tool_rounds: int
    attempts: int  # model turns that produced an invalid plan (bounded by max_repair_attempts)
    errors: list[str]  # the last validation / output errors (fed back to the model)
    plan: dict[str, Any] | None
    status: Status
    trace: list[str]  # nodes visited, in order (the report shows it)
    # revision
    scores: list[ShotScoreDict]
    threshold: float
    iteration: int
    max_iterations: int
    failing: list[int]
    revised: list[int]  # every shot id revised so far
    decision: Literal["accept", "revise", "give_up"] | None


def initial_plan_state(request: str, shots: int | None, seed: int) -> DirectorState:
    return DirectorState(mode="plan", request=request, shots_wanted=shots, seed=seed, intent={}, hits=[],
                         story=None, messages=[], pending_calls=[], tool_rounds=0, attempts=0, errors=[], plan=None,
                         status="started", trace=[], scores=[], threshold=0.0, iteration=0, max_iterations=0,
                         failing=[], revised=[], decision=None)


def initial_revise_state(plan: dict[str, Any], scores: list[ShotScoreDict], threshold: float, iteration: int,
                         max_iterations: int, request: str, seed: int) -> DirectorState:
    state = initial_plan_state(request, len(plan["shots"]), seed)
    state.update(mode="revise", plan=plan, scores=scores, threshold=threshold, iteration=iteration,
                 max_iterations=max_iterations)
    return state
