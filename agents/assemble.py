"""Draft → `Plan`: the model's choices put into the story's briefs. Code sets ids, cast, the structured action
(verb, target, things, weather, exaggeration), dialogue timing and the requested length."""

from __future__ import annotations

import re

from studio.agents.intent import Intent
from studio.agents.lines import article
from studio.agents.registry import PlanRegistry
from studio.agents.schema import Draft, DraftShot
from studio.agents.story import ShotBrief, Story
from studio.configs.vocabulary import MAX_SHOT_S, MIN_SHOT_S, Dialogue, Plan, Shot

WORDS_PER_SECOND = 2.6  # unhurried animated speech
_IRREGULAR = {"be": "is", "have": "has", "do": "does", "go": "goes"}


def speech_seconds(line: str) -> float:
    return len(line.split()) / WORDS_PER_SECOND + 0.8


def conjugate(verb: str, plural: bool) -> str:
    """'run away from' → 'runs away from' for one subject; the lemma for several."""
    head, _, rest = verb.partition(" ")
    if not plural:
        if head in _IRREGULAR:
            head = _IRREGULAR[head]
        elif re.search(r"[^aeiou]y$", head):
            head = head[:-1] + "ies"
        elif re.search(r"(s|sh|ch|x|z|o)$", head):
            head += "es"
        else:
            head += "s"
    return f"{head} {rest}".strip()


def _who(cast: list[str], registry: PlanRegistry) -> str:
    names = [registry.character(c).display_name for c in cast]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def compose_action(b: ShotBrief, verb: str, registry: PlanRegistry, seen: set[str]) -> str:
    actors = [c for c in b.characters if c != b.target] or b.characters
    target = b.target
    if target in registry.character_ids:
        obj = registry.character(target).display_name
    elif target:
        known = target in seen or f"the {target}" == (b.location or "").lower()  # the shot's own place is "the"
        obj = f"the {target}" if known and target[:1].islower() else article(target)
        seen.add(target)
    else:
        obj = b.location if verb in ("wander through", "arrive at") else ""
    tail = []
    for e in b.extras:
        tail.append(f"as {article(e)} rolls in" if e in _WEATHER_WORDS else f"with {article(e)} nearby")
        seen.add(e)
    text = " ".join(filter(None, [_who(actors, registry), conjugate(verb, len(actors) > 1), obj, b.modifier]))
    return (text + (", " + " and ".join(tail) if tail else ""))[:200]


_WEATHER_WORDS = {"storm", "thunderstorm", "thunder", "lightning", "rain", "rainstorm", "downpour", "snow",
                  "blizzard", "snowstorm", "fog", "mist", "wind", "breeze", "gale", "hurricane"}


def _pick(value: str | None, options: list[str]) -> str:
    return value if value in options else options[0]


def _shot(i: int, b: ShotBrief, d: DraftShot, registry: PlanRegistry, seen: set[str], free: bool,
          source: str) -> Shot:
    verb = _pick(d.verb, b.verbs)
    action = " ".join(d.action.split()) if free and d.action.strip() else compose_action(b, verb, registry, seen)
    emotion = _pick(d.emotion, b.emotions) if not free else (d.emotion or b.emotions[0])
    line = " ".join((d.line or "").split()).strip(" \"'") if free else _pick(d.line, b.lines) if b.lines else ""
    dialogue = None
    if line and b.speaker and b.speaker in registry.speaking_ids:
        dialogue = Dialogue(character=b.speaker, line=line[:240], emotion=emotion,  # type: ignore[arg-type]
                            intensity=round(min(1.0, 0.3 + 0.3 * (b.exaggeration - 1)), 2))
    duration = b.seconds if not dialogue else max(b.seconds, round(speech_seconds(dialogue.line) + 0.5))
    return Shot(id=i, source=source, characters=b.characters, action=action or "the scene holds",  # type: ignore[arg-type]
                emotion=emotion, location=b.location[:80], time_of_day=b.time_of_day,  # type: ignore[arg-type]
                camera=_pick(d.camera, b.cameras) if not free else (d.camera or b.cameras[0]),  # type: ignore[arg-type]
                camera_move=(d.camera_move or b.camera_move) if free else b.camera_move,  # type: ignore[arg-type]
                duration=min(MAX_SHOT_S, max(MIN_SHOT_S, float(duration))), dialogue=dialogue,
                effects=[d.effect] if d.effect and d.effect in registry.effect_names else [],
                verb=verb, target=b.target, things=b.things, weather=b.weather,  # type: ignore[arg-type]
                exaggeration=b.exaggeration,
                footage_query=f"{_who(b.characters, registry)} {action}"[:120] if source == "footage" else None)


def assemble_plan(draft: Draft, story: Story, intent: Intent, registry: PlanRegistry, free: bool = False,
                  sources: tuple[str, ...] = ("storyboard",)) -> Plan:
    seen: set[str] = set()
    shots = [_shot(i, b, d, registry, seen, free, d.source if d.source in sources else sources[0])
             for i, (b, d) in enumerate(zip(story.briefs, draft.shots, strict=True), start=1)]
    if intent.target_seconds:
        fit_total(shots, intent.target_seconds)
    cast = list(dict.fromkeys(c for s in shots for c in s.characters))
    names = [registry.character(c).display_name for c in cast]
    title = " ".join(draft.title.split())[:80] if free else _pick(draft.title, story.titles)
    logline = (" ".join(draft.logline.split()) if free else "") or f"{', '.join(names)}: {intent.request}"
    return Plan(title=title or "Untitled short", logline=logline[:240], characters=cast, shots=shots)


def fit_total(shots: list[Shot], target: float) -> None:
    """Scale durations to the requested length, never below what a line needs; shortening is spread over
    the shots that have room."""
    for _ in range(3):
        total = sum(s.duration for s in shots)
        if total <= 0 or abs(total - target) < 0.05:
            return
        k = target / total
        for s in shots:
            floor = speech_seconds(s.dialogue.line) if s.dialogue else MIN_SHOT_S
            s.duration = round(min(MAX_SHOT_S, max(MIN_SHOT_S, floor, s.duration * k)), 1)
