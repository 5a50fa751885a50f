"""Fidelity: does the plan tell what was asked? Every requested subject (things, places, weather named as a
subject) shown in some shot's action, location or line; the exact cast when the request names it; the stated
shot count and length; no line said twice. The check node repairs a plan with problems (bounded) or refuses
it with these reasons; the plan judge scores the same checks; the revision loop revises the shots they blame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from studio.agents.intent import Intent
from studio.configs.vocabulary import Plan

LENGTH_TOLERANCE = 0.2  # a plan within ±20 % of a stated length honours it


@dataclass
class Fidelity:
    problems: list[str] = field(default_factory=list)
    by_shot: dict[int, list[str]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _text(shot: Any) -> str:
    line = shot.dialogue.line if shot.dialogue else ""
    return f"{shot.action} {shot.location} {line}".lower()


def mentions(text: str, subject: str) -> bool:
    words = [w for w in subject.lower().split() if len(w) > 2] or [subject.lower()]
    return all(w in text or w.rstrip("s") in text for w in words)


def check_fidelity(plan: Plan, intent: Intent, briefs: list[Any] | None = None) -> Fidelity:
    f = Fidelity()

    def blame(shot_id: int, why: str) -> None:
        f.by_shot.setdefault(shot_id, []).append(why)

    texts = [_text(s) for s in plan.shots]
    missing = [s for s in intent.subjects if not any(mentions(t, s) for t in texts)]
    f.metrics["subjects"] = 1 - len(missing) / len(intent.subjects) if intent.subjects else 1.0
    if missing:
        f.problems.append(f"the plan never shows {', '.join(missing)}, which the request asks for")
    for b, s in zip(briefs or [], plan.shots, strict=False):
        lacking = [m for m in b.must_show if not mentions(_text(s), m)]
        if lacking:
            blame(s.id, f"shot {s.id} ({b.beat}) must show {', '.join(lacking)}")
    on_screen = list(dict.fromkeys(c for s in plan.shots for c in s.characters))
    asked = set(intent.characters)
    cast_ok, extra = True, []
    if intent.cast_named:
        absent, extra = sorted(asked - set(on_screen)), sorted(set(on_screen) - asked)
        if absent:
            f.problems.append(f"requested characters missing: {', '.join(absent)}")
        if extra:
            f.problems.append(f"characters the request did not ask for: {', '.join(extra)}")
            for s in plan.shots:
                if set(s.characters) - asked:
                    blame(s.id, f"shot {s.id} casts {', '.join(sorted(set(s.characters) - asked))}")
        cast_ok = not absent and not extra
    present = len(asked & set(on_screen)) / len(asked) if asked else 1.0
    f.metrics["cast"] = present if cast_ok or not intent.cast_named else present * (0.5 if extra else 1.0)
    f.metrics["shot_count"] = max(0.0, 1 - abs(len(plan.shots) - intent.shots) / intent.shots)
    if len(plan.shots) != intent.shots:
        f.problems.append(f"{len(plan.shots)} shots, {intent.shots} requested")
    if intent.target_seconds:
        off = abs(plan.total_duration - intent.target_seconds) / intent.target_seconds
        f.metrics["length"] = 1.0 if off <= LENGTH_TOLERANCE else max(0.0, 1 - off)
        if off > LENGTH_TOLERANCE:
            f.problems.append(f"{plan.total_duration:.0f} s long, {intent.target_seconds:.0f} s requested")
    lines = [(s.id, s.dialogue.line.strip().lower()) for s in plan.shots if s.dialogue]
    seen: set[str] = set()
    for sid, ln in lines:
        if ln in seen:
            blame(sid, f"shot {sid} repeats the line {ln!r}")
        seen.add(ln)
    f.metrics["distinct_lines"] = len(seen) / len(lines) if lines else 1.0
    if len(seen) < len(lines):
        f.problems.append("a line is said twice")
    f.problems += [p for ps in f.by_shot.values() for p in ps if p not in f.problems]
    return f
