"""Word lists for the structured draft: what a small model chooses from instead of writing free text.

SmolLM2-135M writes nonsense when a string is free ("bunny-face-jerry-dragon…"), but chooses sensibly among a
few options. So for the preview model the draft's text fields become enums built here from the request, the
registry and the retrieved knowledge: actions are `verb` + `object`, places come from the request and the
pack's place notes, lines are the characters' own catchphrases (quoted in the knowledge pack) or stock lines
for the tone, and the title is picked from a few composed candidates. A larger model gets free text
(`draft_style: free`), with the same lists offered as hints in the prompt.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from studio.agents.intent import Intent
from studio.agents.schema import PlanRegistry
from studio.configs.vocabulary import EMOTIONS

VERBS: tuple[str, ...] = (
    "looks at", "stares in wonder at", "runs to", "runs away from", "walks along", "tiptoes towards",
    "jumps into", "jumps over", "climbs", "falls into", "hides behind", "peeks out from behind", "points at",
    "waves at", "laughs at", "shouts at", "whispers to", "sneaks up on", "chases", "plays with", "dances around",
    "throws something at", "catches", "trips over", "sits by", "swims in", "rides", "builds", "eats", "hugs",
    "celebrates with", "sleeps next to", "argues with", "gasps at", "races", "sets a trap for",
)
STOCK_LINES: dict[str, tuple[str, ...]] = {
    "comedy": ("Ha! Did you see that?", "Oops!", "That was not supposed to happen!", "Wait for me!"),
    "drama": ("I will miss you.", "Please don't go.", "It's okay.", "Thank you, my friend."),
    "adventure": ("Wow, look at that!", "Let's go!", "What is that?", "We can do this!"),
    "action": ("Now!", "Run!", "Come back here!", "Got you!"),
    "spooky": ("Who's there?", "Did you hear that?", "I'm not scared!", "Run!"),
    "romance": ("You look nice today.", "Want to watch the sunset?", "Me too.", "Really?"),
}
_ARTICLES = r"(?:the|a|an|his|her|their|its|some)"
_STOP = {"first", "time", "same", "end", "beginning", "short", "story", "film", "movie", "shot", "shots", "scene",
         "minute", "second", "seconds", "way", "day", "moment", "quiet", "funny", "sad", "one", "two", "three",
         "big", "little", "new", "old", "last", "next"}
_BREAKS = {"and", "with", "in", "on", "at", "to", "for", "of", "who", "that", "where", "down", "up", "into",
           "from", "through", "over", "under", "across", "by", "near", "around", "along", "after", "before",
           "while", "as", "about", "because", "but", "is", "are", "was", "takes", "gets", "goes"}
MAX_OBJECTS, MAX_PLACES, MAX_LINES, MAX_TITLES = 16, 8, 20, 5

# What characters do at each story beat; every verb is in VERBS.
BEAT_VERBS: dict[str, tuple[str, ...]] = {
    "setup": ("looks at", "stares in wonder at", "walks along", "tiptoes towards", "waves at", "sits by",
              "peeks out from behind", "plays with", "points at"),
    "trouble": ("trips over", "falls into", "hides behind", "runs away from", "gasps at", "shouts at",
                "argues with", "laughs at", "sneaks up on", "whispers to"),
    "attempt": ("runs to", "climbs", "builds", "rides", "swims in", "sets a trap for", "throws something at",
                "chases", "races", "jumps over"),
    "climax": ("jumps into", "chases", "races", "catches", "throws something at", "jumps over", "sneaks up on",
               "rides", "falls into", "swims in"),
    "payoff": ("laughs at", "celebrates with", "hugs", "dances around", "plays with", "sleeps next to", "eats",
               "waves at", "looks at", "rides"),
}
BEAT_CAMERAS: dict[str, tuple[str, ...]] = {
    "setup": ("wide", "medium"), "trouble": ("medium", "close-up", "wide"), "attempt": ("medium", "wide", "close-up"),
    "climax": ("close-up", "medium", "extreme-close-up"), "payoff": ("wide", "medium", "close-up"),
}

BEAT_EMOTIONS: dict[str, tuple[str, ...]] = {
    "setup": ("neutral", "happy", "curious"), "trouble": ("surprised", "scared", "angry", "sad", "curious"),
    "attempt": ("determined", "excited", "angry"), "climax": ("excited", "scared", "determined", "surprised"),
    "payoff": ("happy", "excited", "sad", "surprised"),
}


def beat_kinds(n: int) -> list[str]:
    """setup … payoff for an n-shot story (middle shots alternate trouble / attempt)."""
    if n == 1:
        return ["any"]
    if n == 2:
        return ["setup", "payoff"]
    middle = ["trouble", "attempt"]
    return ["setup", *[middle[i % 2] for i in range(n - 3)], "climax", "payoff"]


def position_choices(vocab: Vocabulary, n: int) -> list[dict[str, list[str]]]:
    """Per shot position: the verbs, shot sizes and emotions of its beat and a share of the lines (+ silence)."""
    spoken = [ln for ln in vocab.lines if ln != SILENCE]
    out = []
    for i, kind in enumerate(beat_kinds(n)):
        verbs = list(vocab.verbs) if kind == "any" else [v for v in BEAT_VERBS[kind] if v in vocab.verbs]
        cameras = ["wide", "medium", "close-up", "extreme-close-up"] if kind == "any" else list(BEAT_CAMERAS[kind])
        emotions = list(EMOTIONS) if kind == "any" else list(BEAT_EMOTIONS[kind])
        share = spoken[i::n] if n > 1 else spoken
        out.append({"verbs": verbs or list(vocab.verbs), "cameras": cameras, "emotions": emotions,
                    "lines": [*share, SILENCE]})
    return out


class Vocabulary(BaseModel):
    verbs: list[str]
    objects: list[str]
    places: list[str]
    lines: list[str]  # "speaker_id: text", plus "nobody: (silence)"
    titles: list[str]


SILENCE = "nobody: (silence)"


def request_objects(text: str, names: set[str]) -> list[str]:
    """Noun phrases of the request ("the sea", "a Vespa", "the big tree"), names of characters excluded."""
    out: list[str] = []
    # lookahead: "a Vespa down the hill" yields "a Vespa" and "the hill"
    for m in re.finditer(rf"\b({_ARTICLES})\s+(?=((?:[A-Za-z][A-Za-z'-]*\s+){{0,2}}[A-Za-z][A-Za-z'-]*))",
                         text, re.I):
        words = m.group(2).split()
        while words and words[-1].lower() in _STOP | {"and", "with", "in", "on", "at", "to", "for", "of"}:
            words.pop()
        cut = next((i for i, w in enumerate(words) if w.lower() in _BREAKS), len(words))
        words = words[:cut]
        if not words or all(w.lower() in _STOP for w in words) or words[0].lower() in names \
                or " ".join(words).lower() in names:
            continue
        article = m.group(1).lower()
        out.append(f"{'the' if article in ('his', 'her', 'their', 'its') else article} {' '.join(words)}")
    return list(dict.fromkeys(out))


def catchphrases(hits: list[dict[str, Any]], cid: str) -> list[str]:
    """Quoted lines in a character's knowledge chunks, e.g. "Silenzio, Bruno!"."""
    out = []
    for h in hits:
        meta = h.get("metadata") or {}
        if cid in (meta.get("characters") or []) and h.get("collection") == "character_info":
            out += [q.strip() for q in re.findall(r"[\"“]([^\"”]{3,60})[\"”]", h.get("text", ""))]
    return list(dict.fromkeys(out))


def build_vocabulary(intent: Intent, registry: PlanRegistry, hits: list[dict[str, Any]],
                     place_hits: list[dict[str, Any]] | None = None) -> Vocabulary:
    cast = intent.characters or list(registry.character_ids)
    names = {n.lower() for c in registry.characters for n in (c.id, c.display_name, *c.aliases)}
    display = [registry.character(c).display_name for c in cast]
    objects = request_objects(intent.request, names)
    if intent.location and intent.location.lower() not in (o.lower() for o in objects):
        objects.append(intent.location)
    objects += [registry.character(c).display_name for c in cast[1:3]] if len(cast) > 1 else []
    objects += ["each other", "the sky", "the camera"] if len(cast) > 1 else ["the sky", "the camera"]
    places = [intent.location] if intent.location else []
    for h in place_hits or []:
        section = str((h.get("metadata") or {}).get("section") or "")
        if section:
            places.append(re.sub(r"^the\s+", "the ", section, flags=re.I).lower() if section[:1].islower()
                          else section)
    places += [o for o in objects if o.lower().startswith("the ") and o not in places][:3] or ["outdoors"]
    speakers = [c for c in cast if c in registry.speaking_ids]
    lines: list[str] = []
    for cid in speakers:
        lines += [f"{cid}: {q}" for q in catchphrases(hits, cid)[:4]]
        lines += [f"{cid}: {q}" for q in STOCK_LINES.get(intent.tone, STOCK_LINES["adventure"])[:3]]
    lead = display[0] if display else "Our Hero"
    obj = next((o for o in objects if o not in ("the sky", "the camera", "each other")), "the Day")
    obj_title = " ".join(w if w in ("a", "an", "the") else w[:1].upper() + w[1:] for w in obj.split())
    titles = [f"{lead} and {obj_title}", f"{lead}'s Big Day", f"{obj_title}!"]
    if len(display) > 1:
        titles.append(f"{display[0]} vs. {display[1]}")
    genre = {"comedy": "A Comedy", "drama": "A Drama", "adventure": "An Adventure", "action": "A Chase",
             "spooky": "A Spooky Night", "romance": "A Romance"}.get(intent.tone, "A Day")
    titles.append(f"{genre} with {lead}")
    return Vocabulary(verbs=list(VERBS), objects=list(dict.fromkeys(objects))[:MAX_OBJECTS],
                      places=[p[:40] for p in dict.fromkeys(places)][:MAX_PLACES],
                      lines=[*list(dict.fromkeys(lines))[:MAX_LINES], SILENCE],
                      titles=[t[:48] for t in dict.fromkeys(titles)][:MAX_TITLES])
