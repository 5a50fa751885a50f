"""Dialogue composed for the moment and the speaker: the beat, the request's subject and the character's own
catchphrases (quoted in the knowledge pack). The preview model picks among these; a larger model writes its
own line and these are its hints. No line is offered twice in a short."""

from __future__ import annotations

import re
from typing import Any

CATEGORIES: dict[str, tuple[str, ...]] = {
    "discovery": ("see", "discover", "find", "meet", "notice", "spot", "watch", "encounter", "look", "hear",
                  "visit", "explore", "greet"),
    "grab": ("steal", "take", "grab", "catch", "snatch", "get", "win", "collect", "pick"),
    "chase": ("chase", "follow", "hunt", "run after", "race", "pursue", "track"),
    "flee": ("run away from", "escape", "flee", "hide from", "avoid", "hide"),
    "teach": ("teach", "help", "show", "learn", "train", "coach"),
    "play": ("play", "dance", "ride", "swim", "build", "fly", "throw", "kick", "bake", "cook", "paint", "sing"),
}
EVENT_LINES: dict[str, tuple[str, ...]] = {
    "discovery": ("{A_x}! Come back!", "What is that? {A_x}?", "Hello there, little {x}."),
    "grab": ("That {x} is ours!", "Quick, grab the {x}!", "Nobody move. The {x} is mine."),
    "chase": ("Come back here, {x}!", "You can't outrun me, {x}!", "After the {x}!"),
    "flee": ("Get away from me, {x}!", "Run! The {x}!", "Nope. Not the {x}."),
    "teach": ("Watch me. It's easy!", "Like this, {name}!", "You can do it, {name}!"),
    "play": ("Let's try the {x}!", "Wheee! The {x}!", "Best {x} ever!"),
    "generic": ("Look, {a_x}!", "Here goes, {x}!", "This {x} changes everything."),
    "place": ("There it is: the {x}!", "So this is the {x}...", "Wow. The {x}!"),
}
BEAT_LINES: dict[str, dict[str, tuple[str, ...]]] = {
    "setup": {
        "comedy": ("What a perfectly boring day.", "Nothing ever happens in {place}.", "Ah, {place}. So peaceful."),
        "action": ("Stay sharp. Something's coming.", "Quiet... too quiet.", "On my signal."),
        "drama": ("I come here when I'm sad.", "It's so quiet in {place} today.", "Everything feels different."),
        "adventure": ("What a day for exploring!", "I wonder what's out there.", "{Place}, here I come!"),
        "spooky": ("Did you hear that?", "Who's there?", "I'm not scared. Not at all."),
        "romance": ("{Place} looks lovely today.", "Should I say something?", "Today is the day."),
    },
    "escalation": {
        "comedy": ("Wait for me, little {x}!", "Hold still, {x}!", "Not so fast!"),
        "action": ("It's getting away!", "Cut it off!", "Faster, faster!"),
        "drama": ("Please, don't go.", "I can't lose the {x}.", "Just a little further."),
        "adventure": ("Follow the {x}!", "Just a bit further!", "Where are you going, {x}?"),
        "spooky": ("It's getting closer...", "Stay back!", "Don't look behind you."),
        "romance": ("You dropped this.", "Can I walk with you?", "My heart is racing."),
    },
    "climax": {
        "comedy": ("Got you! ... Or not.", "Whoa-whoa-whoa!", "I meant to do that!"),
        "action": ("Now!", "Almost... got it!", "Don't let it go!"),
        "drama": ("I won't let go!", "Don't leave me!", "Hold on!"),
        "adventure": ("Here goes everything!", "Jump!", "Hold on tight!"),
        "spooky": ("Aaaah!", "It's right behind us!", "Run for it!"),
        "romance": ("I have to tell you something.", "Wait! Don't go!", "This is for you."),
    },
    "payoff": {
        "comedy": ("Same time tomorrow, {x}?", "Best day ever!", "Let's never do that again."),
        "action": ("We'll get it next time.", "Worth it.", "Never again... until tomorrow."),
        "drama": ("Goodbye, {x}.", "I'll remember this.", "Thank you, my friend."),
        "adventure": ("What an adventure!", "Let's come back tomorrow!", "Wait till they hear about this!"),
        "spooky": ("It was just the wind... right?", "Let's go home.", "Never coming back here."),
        "romance": ("Same time tomorrow?", "Me too.", "This was perfect."),
    },
}
BEAT_LINES["event"] = {}


def category(verb: str) -> str:
    v = verb.lower()
    for cat, verbs in CATEGORIES.items():
        if any(v == w or v.startswith(w + " ") for w in verbs):
            return cat
    return "generic"


def article(x: str) -> str:
    if not x or x[:1].isupper():
        return x
    return ("an " if x[:1].lower() in "aeiou" else "a ") + x


_THING_ONLY = re.compile(r"(?i)\b(the|a|an|that|this|little|best)\s+\{x\}|\{a_x\}|\{A_x\}")


def _for_person(pool: list[str]) -> list[str]:
    """The templates that read right with a character's name for {x}: not "After the {x}!" or "This {x} …"."""
    return [t for t in pool if not _THING_ONLY.search(t)]


def _fill(template: str, x: str, place: str, name: str) -> str:
    place_txt = place or "here"
    x = x or "thing"
    out = template.format(x=x, a_x=article(x), A_x=article(x)[:1].upper() + article(x)[1:], place=place_txt,
                          Place=place_txt[:1].upper() + place_txt[1:], name=name or "friend")
    return re.sub(r"\s+", " ", out).strip()


def catchphrases(hits: list[dict[str, Any]], cid: str) -> list[str]:
    """Quoted lines in a character's knowledge chunks, e.g. "Silenzio, Bruno!"."""
    out = []
    for h in hits:
        meta = h.get("metadata") or {}
        if cid in (meta.get("characters") or []) and h.get("collection") == "character_info":
            out += [q.strip() for q in re.findall(r"[\"“]([^\"”]{3,60})[\"”]", h.get("text", ""))]
    return list(dict.fromkeys(out))


def line_candidates(beat: str, tone: str, verb: str, x: str, place: str, name: str,
                    own: list[str], used: set[str], k: int = 3, x_is_place: bool = False,
                    x_is_character: bool = False) -> list[str]:
    """Up to k lines for one shot, none already offered in this short (`used` is updated). With
    `x_is_character`, {x} is a character's name: only templates that read right with a name are used."""
    if beat in ("event", "any"):
        kind = category(verb)
        pool = list(EVENT_LINES["place" if x_is_place and kind in ("discovery", "generic") else kind])
    else:
        pool = list(BEAT_LINES.get(beat, BEAT_LINES["escalation"]).get(tone) or BEAT_LINES[beat]["adventure"])
    if beat in ("setup", "payoff"):
        pool = [*own[:2], *pool]
    if not x:  # nothing to name: no "{x}" lines
        pool = [t for t in pool if "_x}" not in t and "{x}" not in t] or ["Here we go!", "What now?", "Wow!"]
    elif x_is_character:
        pool = _for_person(pool) or ["Come back here, {x}!", "Wait for me, {x}!", "Over here, {x}!"]
    lines = [ln for ln in dict.fromkeys(_fill(t, x, place, name) for t in pool) if ln.lower() not in used]
    if not lines:  # a long short used this beat's lines: borrow from the other beats, this tone first
        spare = [t for b in BEAT_LINES.values() for t in b.get(tone, ())]
        spare += [t for b in BEAT_LINES.values() for ts in b.values() for t in ts] + list(EVENT_LINES["generic"])
        spare = spare if x else [t for t in spare if "_x}" not in t and "{x}" not in t]
        spare = _for_person(spare) if x and x_is_character else spare
        lines = [ln for ln in dict.fromkeys(_fill(t, x, place, name) for t in spare) if ln.lower() not in used]
    if not lines:
        lines = [f"Watch this, {x or name or 'everyone'}! ({len(used) + 1})"]
    chosen = lines[:k]
    used.update(ln.lower() for ln in chosen)
    return chosen
