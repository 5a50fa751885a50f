"""A story that follows the intent: beats per tone (setup → the request's event with its subject → escalation
→ climax → payoff), each shot briefed with who is on screen, the verb and its target, the things and place it
shows, weather, time of day, exaggeration, and the few choices left to the model (verb, camera, emotion, line).

This is code's work, so every plan uses the request's things, places and verbs by construction; the preview
model (135M) only chooses among the brief's options, a larger model writes free text for them.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import BaseModel

from studio.agents.events import Event
from studio.agents.intent import Intent
from studio.agents.lines import catchphrases, line_candidates
from studio.agents.registry import PlanRegistry

BEAT_VERBS: dict[str, dict[str, tuple[str, ...]]] = {
    "escalation": {"comedy": ("chase", "reach for", "tiptoe towards", "pounce at"),
                   "action": ("chase", "sneak up on", "race after", "grab at"),
                   "drama": ("reach for", "look back at", "walk towards"),
                   "adventure": ("follow", "reach for", "tiptoe towards"),
                   "spooky": ("back away from", "peek at", "tiptoe towards"),
                   "romance": ("smile at", "walk towards", "wave at")},
    "climax": {"comedy": ("leap at", "trip over", "crash into"), "action": ("lunge at", "dive for", "grab"),
               "drama": ("hold on to", "run to", "call out to"), "adventure": ("leap towards", "reach", "climb to"),
               "spooky": ("scream at", "run away from", "face"), "romance": ("hug", "dance with", "run to")},
    "payoff": {"comedy": ("laugh with", "wave goodbye to", "grin at"), "action": ("stare at", "give up on", "laugh at"),
               "drama": ("say goodbye to", "smile at", "sit with"), "adventure": ("wave at", "sit with", "watch"),
               "spooky": ("laugh at", "peek back at", "wave at"), "romance": ("sit with", "smile at", "hug")},
}
# Beats without anything to act on (a request that names no thing, place or second character).
ALONE_VERBS = {"escalation": ("hurry along", "tiptoe along", "look around"), "climax": ("leap", "spin around", "shout"),
               "payoff": ("laugh", "smile", "take a bow")}
SETUP_VERBS = ("arrive at", "look around", "wander through")
BEAT_CAMERAS = {"setup": ("wide", "medium"), "event": ("medium", "close-up"), "escalation": ("medium", "wide"),
                "climax": ("close-up", "extreme-close-up"), "payoff": ("wide", "medium"), "any": ("medium", "wide")}
BEAT_MOVES = {"setup": "pan-right", "event": "push-in", "escalation": "pan-left", "climax": "push-in",
              "payoff": "pull-out", "any": "static"}
BEAT_EMOTIONS = {"setup": ("neutral", "happy", "curious"), "event": ("surprised", "curious", "excited"),
                 "escalation": ("determined", "excited", "scared"), "climax": ("excited", "scared", "determined"),
                 "payoff": ("happy", "sad", "surprised"), "any": ("curious", "happy", "surprised")}
TONE_EMOTIONS = {"drama": {"payoff": ("sad", "happy"), "climax": ("sad", "scared", "determined")},
                 "spooky": {"setup": ("curious", "scared"), "event": ("scared", "surprised"),
                            "escalation": ("scared", "surprised")},
                 "action": {"setup": ("determined", "neutral"), "event": ("determined", "excited")}}
EXAGGERATION = {"comedy": (1.2, 1.8, 2.0, 2.5, 1.5), "action": (1.0, 1.5, 1.8, 2.2, 1.3),
                "drama": (1.0, 1.2, 1.3, 1.6, 1.1)}
BEAT_SECONDS = {"setup": 4.0, "event": 4.0, "escalation": 3.0, "climax": 3.0, "payoff": 4.0, "any": 5.0}
_BEAT_INDEX = {"setup": 0, "event": 1, "escalation": 2, "climax": 3, "payoff": 4, "any": 1}


class ShotBrief(BaseModel):
    beat: str
    characters: list[str]
    verbs: list[str]  # the model picks one; one entry: fixed by the request
    target: str | None = None  # a character id or one of `things`
    modifier: str = ""
    things: list[str] = []
    extras: list[str] = []  # requested subjects this shot names besides its target
    location: str = ""
    weather: str = "clear"
    time_of_day: str = "day"
    exaggeration: float = 1.0
    emotions: list[str]
    cameras: list[str]
    camera_move: str = "static"
    speaker: str | None = None
    lines: list[str] = []
    seconds: float = 4.0
    must_show: list[str] = []  # subjects that must appear in this shot's action, location or line


class Story(BaseModel):
    briefs: list[ShotBrief]
    titles: list[str]


def beat_kinds(n: int) -> list[str]:
    if n == 1:
        return ["any"]
    if n == 2:
        return ["event", "payoff"]
    if n == 3:
        return ["setup", "event", "payoff"]
    return ["setup", "event", *["escalation"] * (n - 4), "climax", "payoff"]


def _main_event(intent: Intent, lead: list[str]) -> Event:
    for e in intent.events:
        if e.subjects or e.target:
            return e
    x = (intent.things or intent.places or [None])[0]
    verb = {"comedy": "play with", "action": "chase", "drama": "look at", "spooky": "tiptoe towards",
            "romance": "smile at"}.get(intent.tone, "discover")
    return Event(verb=verb if x or len(intent.characters) > 1 else "look around", subjects=lead,
                 target=x or (intent.characters[1] if len(intent.characters) > 1 else None))


def _transitive(verb: str) -> bool:
    """Whether the request's verb takes an object in the shot ('win' the race, but not 'fail')."""
    return verb.split()[0] not in ("fail", "sleep", "cry", "laugh", "fall", "wake", "smile", "sneeze", "wait",
                                   "arrive", "leave", "dance", "sing", "swim", "rest", "die", "relax", "learn")


def _cast_for(kind: str, event: Event, cast: list[str], shown: set[str], target: str | None) -> list[str]:
    who = [c for c in (event.subjects or cast[:1]) if c in cast]
    if kind in ("climax", "payoff", "escalation") or not who:
        who = list(dict.fromkeys([*who, *cast]))
    if target in cast and target not in who:
        who.insert(1, target)
    picked = who[:3]
    missing = [c for c in cast if c not in shown and c not in picked]
    while missing and len(picked) < 3:
        picked.append(missing.pop(0))
    if missing and len(picked) == 3 and kind != "event":
        picked[-1] = missing[0]
    return list(dict.fromkeys(picked))


def _display(x: str | None, registry: PlanRegistry) -> str:
    if x in registry.character_ids:
        return registry.character(x).display_name
    return x or ""


def compose_story(intent: Intent, registry: PlanRegistry, hits: list[dict[str, Any]] | None = None,
                  seed: int = 0, positions: list[int] | None = None,
                  avoid_lines: set[str] | None = None) -> Story:
    """Briefs for the shots (all, or only `positions`, 1-based, for a revision) and candidate titles."""
    rng = random.Random(f"{intent.request}|{seed}")
    cast = [c for c in intent.characters if c in registry.character_ids] or list(registry.character_ids[:1])
    event = _main_event(intent, cast[:1])
    others = [c for c in cast if c not in event.subjects]
    x = event.target or (intent.things or intent.places or others or [None])[0]
    if not event.target and x and not event.modifier:  # "glides over the river" needs no object
        event = event.model_copy(update={"target": x} if _transitive(event.verb) else {})
    later = [e for e in intent.events if e is not event and e.verb != event.verb]
    kinds = beat_kinds(intent.shots)
    used: set[str] = set(avoid_lines or ())
    shown: set[str] = set()
    briefs: list[ShotBrief] = []
    shown_place = (intent.location or "").lower()
    extras = [s for s in intent.subjects if s not in (x, event.target) and s.lower() not in shown_place]
    for i, kind in enumerate(kinds):
        brief = _brief(kind, i, intent, registry, event, later, x, cast, shown, used, hits or [], rng)
        if kind in ("setup", "any") or (i == 0 and extras):
            brief.extras = extras
            brief.must_show = list(dict.fromkeys([*brief.must_show, *extras]))
        briefs.append(brief)
        shown.update(brief.characters)
    if extras and not any(b.extras for b in briefs):
        briefs[0].extras = extras
        briefs[0].must_show = list(dict.fromkeys([*briefs[0].must_show, *extras]))
    lead = registry.character(cast[0]).display_name
    subject = _display(x, registry) or (intent.location or "").removeprefix("the ") or "Day"
    noun = " ".join(w[:1].upper() + w[1:] for w in subject.split())
    titles = [f"{lead} and the {noun}" if subject[:1].islower() else f"{lead} and {noun}", f"The {noun}"
              if subject[:1].islower() else noun, f"{lead}'s Big Day"]
    if positions:
        briefs = [briefs[p - 1] for p in positions]
    return Story(briefs=briefs, titles=list(dict.fromkeys(t[:48] for t in titles)))


def _brief(kind: str, i: int, intent: Intent, registry: PlanRegistry, event: Event, later: list[Event],
           x: str | None, cast: list[str], shown: set[str], used: set[str], hits: list[dict[str, Any]],
           rng: random.Random) -> ShotBrief:
    tone = intent.tone if intent.tone in BEAT_VERBS["climax"] else "adventure"
    target, modifier = x, ""
    if kind in ("event", "any"):
        verbs, target, modifier = [event.verb], event.target, event.modifier
    elif kind == "setup":
        verbs, target = list(SETUP_VERBS), None
    else:
        own = later.pop(0) if later and kind in ("climax", "payoff") else None
        verbs = [own.verb] if own else list(BEAT_VERBS[kind][tone] if x else ALONE_VERBS[kind])
        if own:  # a later event of the request, with its own object and where it happens
            target, modifier = own.target, own.modifier
        rng.shuffle(verbs)
    who = _cast_for(kind, event, cast, shown, target)
    speaker = next((c for c in who if c in registry.speaking_ids), None)
    thing_list = [t for t in [*intent.things] if t == target or kind != "setup"]
    x_name = _display(target or x, registry)
    place = intent.location or ""
    own_lines = catchphrases(hits, speaker) if speaker else []
    other = next((registry.character(c).display_name for c in who if c != speaker), "")
    lines = line_candidates(kind, tone, event.verb, x_name if (target or x) not in registry.character_ids
                            else (x_name or ""), place, other or x_name, own_lines, used,
                            x_is_place=(target or x) in intent.places,
                            x_is_character=(target or x) in registry.character_ids) if speaker else []
    emotions = TONE_EMOTIONS.get(intent.tone, {}).get(kind) or BEAT_EMOTIONS[kind]
    exag = EXAGGERATION.get(intent.tone, (1.0, 1.5, 1.5, 2.0, 1.2))[_BEAT_INDEX[kind]]
    must = [target] if target and target not in registry.character_ids else []
    return ShotBrief(beat=kind, characters=who, verbs=verbs, target=target, modifier=modifier,
                     things=list(dict.fromkeys(thing_list))[:6], location=place, weather=intent.weather,
                     time_of_day=intent.time_of_day, exaggeration=exag, emotions=list(emotions),
                     cameras=list(BEAT_CAMERAS[kind]), camera_move=BEAT_MOVES[kind], speaker=speaker, lines=lines,
                     seconds=BEAT_SECONDS[kind], must_show=must)
