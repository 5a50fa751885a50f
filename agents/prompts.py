"""Prompts of the director. Short on purpose: the preview model has 135M parameters and a 4k context.

Retrieved knowledge is numbered [1], [2], ... with its source, so the plan (and the report) can cite it.
"""

from __future__ import annotations

import json
from typing import Any

from studio.agents.intent import Intent
from studio.agents.schema import PlanRegistry, story_beats

SYSTEM = (
    "You are the director of short animated films. Plan the short as a list of shots and submit it with the "
    "submit_plan tool. For each shot give: the characters on screen, one short sentence of visible action, "
    "their emotion, the camera (shot size and move), a short location, and optionally one short spoken line "
    "with its speaker (speaker 'nobody' and an empty line for silence). Use only the listed characters. "
    "Tell a tiny story: a beginning, a middle and an end. Follow the style notes."
)


def format_hits(hits: list[dict[str, Any]], snippet_chars: int) -> str:
    lines = []
    for i, h in enumerate(hits, start=1):
        text = " ".join(str(h.get("text", "")).split())
        if len(text) > snippet_chars:
            text = text[:snippet_chars].rsplit(" ", 1)[0] + " ..."
        lines.append(f"[{i}] ({h.get('id', '?')}) {text}")
    return "\n".join(lines)


def cast_lines(registry: PlanRegistry, ids: list[str]) -> str:
    out = []
    for cid in ids or registry.character_ids:
        c = registry.character(cid)
        out.append(f"- {c.id}: {c.display_name}. {c.description}")
    return "\n".join(out)


def plan_messages(intent: Intent, hits: list[dict[str, Any]], registry: PlanRegistry,
                  snippet_chars: int = 280, vocab: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    facts = [f"Shots: exactly {intent.shots}.", f"Tone: {intent.tone}.", f"Time of day: {intent.time_of_day}."]
    if intent.location:
        facts.append(f"Location: {intent.location}.")
    if intent.target_seconds:
        facts.append(f"Length: about {intent.target_seconds:.0f} seconds.")
    user = (f"Request: {intent.request}\n\nCharacters:\n{cast_lines(registry, intent.characters)}\n\n"
            + " ".join(facts))
    if hits:
        user += f"\n\nStyle notes from the studio's knowledge (cite them as [n]):\n{format_hits(hits, snippet_chars)}"
    beats = "; ".join(f"shot {i}: {b}" for i, b in enumerate(story_beats(intent.shots), start=1))
    user += f"\n\nStory beats: {beats}."
    if vocab:
        user += ("\nFor each shot choose who is on screen, a verb and an object for the action (e.g. 'runs to' + "
                 f"'{vocab['objects'][0]}'), a place, and a line to say or silence.")
    user += f"\n\nNow call submit_plan with {intent.shots} shots."
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def repair_message(errors: list[str]) -> dict[str, Any]:
    listing = "\n".join(f"- {e}" for e in errors[:12])
    return {"role": "user", "content": f"That plan was rejected:\n{listing}\nCall submit_plan again with every "
                                       "problem fixed."}


def tool_result_message(call_id: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def revise_messages(plan: dict[str, Any], failing: list[dict[str, Any]], registry: PlanRegistry,
                    intent: Intent, hits: list[dict[str, Any]], snippet_chars: int = 280) -> list[dict[str, Any]]:
    """Ask for replacements of the failing shots only; the rest of the plan is context."""
    story = "\n".join(f"{s['id']}. {s['action']}" for s in plan["shots"])
    problems = []
    for f in failing:
        shot = next(s for s in plan["shots"] if s["id"] == f["shot_id"])
        brief = {k: shot.get(k) for k in ("characters", "action", "camera", "location", "dialogue")}
        reasons = "; ".join(f.get("reasons") or []) or "low quality score"
        problems.append(f"Shot {f['shot_id']} scored {f['score']:.2f} ({reasons}). It was: {json.dumps(brief)}")
    user = (f"The short '{plan['title']}' ({plan.get('logline', '')}) has these shots:\n{story}\n\n"
            f"Characters:\n{cast_lines(registry, intent.characters)}\n\nThese shots failed review:\n"
            + "\n".join(problems)
            + (f"\n\nStyle notes:\n{format_hits(hits, snippet_chars)}" if hits else "")
            + f"\n\nCall submit_plan with {len(failing)} replacement shot(s), in the same order, that fix the problems "
              "and keep the story.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
