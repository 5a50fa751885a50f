"""Plan judges: how well a plan tells the request. `score_plan` scores its fidelity to the request's intent
(`studio.agents.fidelity`: subjects, cast, shot count, length, distinct lines) and variety;
`judge_plan_with_llm` has the planning LLM rate its coherence (1-5)."""

from __future__ import annotations

from typing import Any

from studio.agents.fidelity import check_fidelity
from studio.agents.intent import extract_intent
from studio.agents.schema import PlanRegistry
from studio.configs.vocabulary import Plan
from studio.resources.judge.metric import PlanScore, combine_metrics


def score_plan(plan: Plan, request: str, registry: Any = None) -> PlanScore:
    """Fidelity to the request (requested subjects shown, exact cast, shot count, length, distinct lines) and
    variety of the actions; reasons name what is missing."""
    intent = extract_intent(request, registry or PlanRegistry.from_configs())
    fidelity = check_fidelity(plan, intent)
    m = dict(fidelity.metrics)
    actions = [s.action.lower().strip() for s in plan.shots]
    m["variety"] = len(set(actions)) / len(actions)
    why = list(fidelity.problems)
    if m["variety"] < 0.75:
        why.append("shots repeat the same action")
    return PlanScore(score=combine_metrics(m), metrics={k: round(v, 4) for k, v in m.items()}, reasons=why,
                     judge="plan-metric")


PLAN_REVIEW_TOOL = {
    "type": "function",
    "function": {
        "name": "submit_plan_review",
        "description": "Rate how well the plan tells the requested short.",
        "parameters": {
            "type": "object",
            "properties": {"coherence": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
                           "problem": {"type": "string", "maxLength": 120}},
            "required": ["coherence", "problem"],
            "additionalProperties": False,
        },
    },
}


def judge_plan_with_llm(plan: Plan, request: str, client: Any) -> PlanScore:
    """LLM text judge: coherence of the plan with the request, 1–5 mapped to [0, 1]."""
    story = "\n".join(f"{s.id}. [{', '.join(s.characters)}] {s.action}"
                      + (f' — {s.dialogue.character}: "{s.dialogue.line}"' if s.dialogue else "") for s in plan.shots)
    messages = [{"role": "system", "content": "You review plans of animated shorts. Be strict."},
                {"role": "user", "content": f"Request: {request}\nPlan '{plan.title}':\n{story}\n\nRate its "
                                            "coherence with the request from 1 (unrelated) to 5 (tells it well)."}]
    args, _ = client.call_tool(messages, PLAN_REVIEW_TOOL, temperature=0.0, max_tokens=120)
    c = int(args.get("coherence", 1))
    problem = " ".join(str(args.get("problem", "")).split())
    return PlanScore(score=(min(5, max(1, c)) - 1) / 4, metrics={"coherence": float(c)},
                     reasons=[problem] if problem else [], judge=f"llm:{getattr(client, 'model', '?')}")
