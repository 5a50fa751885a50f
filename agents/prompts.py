"""Prompts of the director. Short on purpose: the preview model has 135M parameters, and every prompt token
costs planning time on 2 cores. The story (beats, who, what, where) is already composed by code; the prompt
tells it so the model's choices fit, and a larger model writes the free text from it.

Retrieved knowledge is numbered [1], [2], ... with its source (free text only), so the plan can cite it.
"""

from __future__ import annotations

import json
from typing import Any

from studio.agents.assemble import compose_action
from studio.agents.intent import Intent
from studio.agents.registry import PlanRegistry
from studio.agents.story import Story

SYSTEM = ("You are the director of short animated films. Fill in the shots of the story below and submit them "
          "with the submit_plan tool.")
FREE_RULES = ("For each shot write one short sentence of visible action that keeps the shot's who, verb and "
              "target, naming the things it must show, and one short line for its speaker that fits the moment "
              "(never the same line twice).")


def format_hits(hits: list[dict[str, Any]], snippet_chars: int) -> str:
    lines = []
    for i, h in enumerate(hits, start=1):
        text = " ".join(str(h.get("text", "")).split())
        if len(text) > snippet_chars:
            text = text[:snippet_chars].rsplit(" ", 1)[0] + " ..."
        lines.append(f"[{i}] ({h.get('id', '?')}) {text}")
    return "\n".join(lines)


def cast_lines(registry: PlanRegistry, ids: list[str]) -> str:
    return "\n".join(f"- {c.display_name}: {c.description}" for c in (registry.character(i) for i in ids))


def outline(story: Story, registry: PlanRegistry, first: int = 1) -> str:
    seen: set[str] = set()
    out = []
    for i, b in enumerate(story.briefs, start=first):
        must = f" (show: {', '.join(b.must_show)})" if b.must_show else ""
        speaker = registry.character(b.speaker).display_name if b.speaker else "nobody"
        out.append(f"{i}. {b.beat}: {compose_action(b, b.verbs[0], registry, seen)}{must}; {speaker} speaks")
    return "\n".join(out)


def plan_messages(intent: Intent, story: Story, hits: list[dict[str, Any]], registry: PlanRegistry,
                  snippet_chars: int = 280, free: bool = False) -> list[dict[str, Any]]:
    user = f"Request: {intent.request}\nTone: {intent.tone}.\nStory:\n{outline(story, registry)}"
    if free:
        user += f"\n\nCharacters:\n{cast_lines(registry, intent.characters)}\n\n{FREE_RULES}"
        if hits:
            user += f"\n\nStyle notes (cite them as [n]):\n{format_hits(hits, snippet_chars)}"
    user += f"\n\nNow call submit_plan with {len(story.briefs)} shots."
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def repair_message(errors: list[str]) -> dict[str, Any]:
    listing = "\n".join(f"- {e}" for e in errors[:12])
    return {"role": "user", "content": f"That plan was rejected:\n{listing}\nCall submit_plan again with every "
                                       "problem fixed."}


def tool_result_message(call_id: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def revise_messages(plan: dict[str, Any], failing: list[dict[str, Any]], registry: PlanRegistry, intent: Intent,
                    story: Story, hits: list[dict[str, Any]], snippet_chars: int = 280) -> list[dict[str, Any]]:
    """Ask for replacements of the failing shots only; the rest of the plan is context."""
    shots = "\n".join(f"{s['id']}. {s['action']}" for s in plan["shots"])
    problems = []
    for f in failing:
        shot = next(s for s in plan["shots"] if s["id"] == f["shot_id"])
        brief = {k: shot.get(k) for k in ("characters", "action", "camera", "location", "dialogue")}
        reasons = "; ".join(f.get("reasons") or []) or "low quality score"
        problems.append(f"Shot {f['shot_id']} scored {f['score']:.2f} ({reasons}). It was: {json.dumps(brief)}")
    user = (f"Request: {intent.request}\nThe short '{plan['title']}' has these shots:\n{shots}\n\n"
            "These shots failed review:\n" + "\n".join(problems)
            + f"\n\nTheir new outline:\n{outline(story, registry)}"
            + (f"\n\nStyle notes:\n{format_hits(hits, snippet_chars)}" if hits else "")
            + f"\n\nCall submit_plan with {len(failing)} replacement shot(s), in the same order.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
