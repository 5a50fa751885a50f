"""Deterministic understanding of a request and assembly of the final plan.

A 135M model cannot reliably count shots, match names to ids or time dialogue, so code does that: names and
aliases from the registry are matched in the request; a capitalised word that is neither a known character
nor a known place/thing is reported as an unknown character; shot count, target length, time of day and
tone come from plain keywords. The LLM still decides every constrained field of the draft.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel

from studio.agents.schema import NO_EFFECT, NO_SPEAKER, Draft, PlanRegistry
from studio.configs.errors import StudioError
from studio.configs.vocabulary import MAX_SHOT_S, MAX_SHOTS, MIN_SHOT_S, Dialogue, Plan, Shot

MAX_REQUEST_BYTES = 100_000
DEFAULT_SHOTS = 4
WORDS_PER_SECOND = 2.6  # unhurried animated speech

_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_NUMBER_WORDS |= {"fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90,
                  "half a": 0.5}
_STARTERS = {"make", "create", "write", "generate", "plan", "show", "tell", "give", "let", "please", "a", "an",
             "the", "in", "on", "at", "when", "where", "i", "we", "you", "do", "draw", "render", "film",
             "imagine", "once", "one", "two", "three", "it", "this", "that", "after", "before", "then", "and",
             "but", "so", "now", "today", "tonight", "finally", "suddenly", "my", "our"}
# Capitalised words that are not characters: days, months, languages, studios, common title words.
_COMMON_PROPER = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february", "march",
    "april", "may", "june", "july", "august", "september", "october", "november", "december", "christmas",
    "halloween", "easter", "english", "italian", "french", "spanish", "german", "japanese", "europe", "italy",
    "pixar", "disney", "blender", "dreamworks", "ghibli", "ok", "okay", "tv", "usa", "earth", "moon", "sun",
    "mars", "god", "mr", "mrs", "ms", "dr", "short", "film", "movie", "scene", "act", "part", "episode",
}
_TONES = {
    "comedy": ("funny", "comedy", "comic", "hilarious", "silly", "laugh", "prank", "slapstick", "parody", "joke"),
    "drama": ("sad", "emotional", "touching", "drama", "tear", "lonely", "goodbye", "farewell"),
    "adventure": ("adventure", "explore", "journey", "discover", "first time", "quest", "treasure"),
    "action": ("race", "chase", "fight", "battle", "escape", "action", "revenge", "trap"),
    "spooky": ("scary", "spooky", "horror", "ghost", "dark", "night fright"),
    "romance": ("love", "romantic", "crush", "date"),
}
_TONE_EMOTION = {"comedy": "happy", "drama": "sad", "adventure": "curious", "action": "determined",
                 "spooky": "scared", "romance": "happy"}
_TIMES = (("dawn", ("dawn", "sunrise", "early morning", "morning")), ("sunset", ("sunset", "dusk", "evening")),
          ("night", ("night", "midnight", "stars", "moonlight")))
_FOOTAGE = re.compile(r"\b(footage|film clips?|from the (?:film|movie)|real scenes?|movie clips?)\b", re.I)


class RequestError(StudioError):
    """The request cannot be planned as written; the message says what to change."""


class Intent(BaseModel):
    request: str
    characters: list[str] = []  # registry ids, in order of mention
    location: str | None = None
    time_of_day: str = "day"
    tone: str = "adventure"
    emotion: str = "neutral"
    shots: int = DEFAULT_SHOTS
    target_seconds: float | None = None
    use_footage: bool = False


def check_request(request: object) -> str:
    if not isinstance(request, str):
        raise RequestError(f"the request must be text, got {type(request).__name__}")
    size = len(request.encode("utf-8", errors="replace"))
    if size > MAX_REQUEST_BYTES:
        raise RequestError(f"the request is {size // 1000} kB; keep it under {MAX_REQUEST_BYTES // 1000} kB (a few "
                           "sentences describing the short). Put long background into the knowledge pack instead.")
    text = " ".join(request.split())
    if not text:
        raise RequestError('the request is empty; describe the short, e.g. studio plan "a funny short of Luca '
                           'seeing the sea for the first time"')
    return text


def _names(registry: PlanRegistry) -> dict[str, str]:
    """lower-case name/alias → id, longest first (so "big buck bunny" wins over "bunny")."""
    table = {}
    for c in registry.characters:
        for n in (c.id, c.display_name, *c.aliases):
            table[n.lower()] = c.id
    return dict(sorted(table.items(), key=lambda kv: -len(kv[0])))


@lru_cache(maxsize=4)
def _pack_vocabulary(pack: str) -> frozenset[str]:
    """Capitalised words used in the knowledge pack (places, things): these are not unknown characters."""
    words: set[str] = set()
    root = Path(pack)
    if root.is_dir():
        for p in root.rglob("*"):
            if p.suffix in (".md", ".yaml", ".yml", ".json") and p.is_file():
                words.update(w.lower() for w in re.findall(r"\b[A-Z][a-zA-Z]+\b", p.read_text(errors="ignore")))
    return frozenset(words)


def _known_words(registry: PlanRegistry) -> set[str]:
    from studio.configs.settings import get_settings

    known = set(_COMMON_PROPER)
    for c in registry.characters:
        for n in (c.id, c.display_name, *c.aliases, c.description):
            known.update(w.lower() for w in re.findall(r"[A-Za-z]+", n))
    return known | set(_pack_vocabulary(str(get_settings().knowledge_path)))


def unknown_names(text: str, registry: PlanRegistry) -> list[str]:
    """Capitalised words (not sentence-initial) that name no character, place or thing the studio knows.

    Sentence-initial words are skipped unless they appear capitalised elsewhere too: "Make a short..." must
    not count, and a name at the start ("Shrek meets Luca") is caught only when it is used again. This is a guard
    against obvious mistakes, not a full named-entity recogniser.
    """
    known = _known_words(registry)
    found: list[str] = []
    tokens = list(re.finditer(r"[A-Za-z][A-Za-z'’-]*|[.!?;:\"“”()]", text))
    initial = True
    caps = [t.group().lower() for t in tokens if t.group()[0].isupper()]
    inner_caps = {t.group().lower() for i, t in enumerate(tokens) if i and t.group()[0].isupper()
                  and tokens[i - 1].group() not in ".!?:\"“("}
    inner_caps |= {w for w in caps if caps.count(w) > 1}  # a repeated capitalised word is a name
    for tok in tokens:
        w = tok.group()
        if w in ".!?:\"“”(;":
            initial = w in ".!?:\"“("
            continue
        base = re.sub(r"['’]s$", "", w)
        if (base[0].isupper() and not base.isupper() and len(base) >= 3 and base.lower() not in known
                and base.lower() not in _STARTERS and (not initial or base.lower() in inner_caps)
                and base not in found):
            found.append(base)
        initial = False
    return found


def extract_intent(request: str, registry: PlanRegistry, shots: int | None = None) -> Intent:
    text = check_request(request)
    low = text.lower()
    names = _names(registry)
    mentioned: list[tuple[int, str]] = []
    masked = low
    for name, cid in names.items():
        for m in re.finditer(rf"(?<![a-z]){re.escape(name)}(?![a-z])", masked):
            mentioned.append((m.start(), cid))
        masked = re.sub(rf"(?<![a-z]){re.escape(name)}(?![a-z])", lambda m: " " * len(m.group()), masked)
    characters = list(dict.fromkeys(cid for _, cid in sorted(mentioned)))
    unknown = unknown_names(text, registry)
    if unknown:
        listing = ", ".join(f"{c.id} ({c.display_name})" for c in registry.characters)
        raise RequestError(f"the request names {', '.join(repr(u) for u in unknown)}, which "
                           f"{'is not a character' if len(unknown) == 1 else 'are not characters'} in "
                           f"configs/characters.yaml. Known characters: {listing}. Add a preset for it, or — "
                           "if it is a place or a thing — write it in lower case or add it to the knowledge pack.")
    n = shots if shots is not None else _shot_count(low)
    target = _target_seconds(low)
    if n is None:
        n = max(2, min(12, round(target / 5))) if target else DEFAULT_SHOTS
    if not 1 <= n <= MAX_SHOTS:
        raise RequestError(f"a short has 1 to {MAX_SHOTS} shots; got {n}")
    tone = next((t for t, kws in _TONES.items() if any(k in low for k in kws)), "adventure")
    time_of_day = next((t for t, kws in _TIMES if any(re.search(rf"\b{k}\b", low) for k in kws)), "day")
    return Intent(request=text, characters=characters, location=_location(text, registry), time_of_day=time_of_day,
                  tone=tone, emotion=_TONE_EMOTION[tone], shots=n, target_seconds=target,
                  use_footage=bool(_FOOTAGE.search(text)))


def _shot_count(low: str) -> int | None:
    counts = "|".join(w for w, v in _NUMBER_WORDS.items() if isinstance(v, int) and v >= 1)
    m = re.search(r"\b(\d{1,2}|" + counts + r")[ -](?:short )?(?:shots?|scenes?|panels?)\b", low)
    if not m:
        return None
    v = m.group(1)
    return int(v) if v.isdigit() else int(_NUMBER_WORDS[v])


def _target_seconds(low: str) -> float | None:
    words = "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
    m = re.search(rf"\b(\d{{1,3}}|{words})[ -]?(seconds?|secs?|s|minutes?|mins?)\b", low)
    if not m:
        return None
    value = float(m.group(1)) if m.group(1).isdigit() else float(_NUMBER_WORDS[m.group(1)])
    return value * 60 if m.group(2).startswith("m") else value


_LOC_STOP = {"at", "in", "on", "with", "for", "while", "and", "during", "then", "but", "so", "who", "that",
             "where", "when", "as", "of", "from", "a", "an", "his", "her", "their", "its", "sunset", "sunrise", "dawn",
             "night", "midnight", "morning", "evening", "noon", "shots", "shot", "scenes", "seconds", "minutes"}
_NOT_PLACES = {"him", "her", "them", "it", "me", "us", "you", "time", "first", "order", "love", "fun", "revenge",
               "style", "slow", "motion", "silence", "vain", "turn", "turns", "trouble", "front", "morning",
               "evening", "afternoon", "night", "dawn", "sunset", "day", "rain", "summer", "winter"}


def _location(text: str, registry: PlanRegistry | None = None) -> str | None:
    """The first 'in/at/on/... <place>' phrase that names no character (≤ 4 words), or None."""
    names = set(_names(registry)) if registry else set()
    for m in re.finditer(r"\b(in|at|on|by|near|under|inside|across|to|into|through|around|along)\s+"
                         r"(?=((?:[A-Za-z][A-Za-z'-]*\s*){1,5}))", text):  # lookahead: phrases may overlap
        prep, phrase = m.group(1), m.group(2)
        if prep in ("to", "by") and not (phrase.startswith("the ") or phrase[:1].isupper()):
            continue  # "to ride", "by jumping": verbs, not places
        words: list[str] = []
        for w in phrase.split():
            if w.lower() in _LOC_STOP and words and words != ["the"]:
                break
            if w.lower() in _LOC_STOP - {"the"} and not words:
                break
            words.append(w)
        core = [w for w in words if w.lower() != "the"]
        if not core or core[0].lower() in _NOT_PLACES or core[0].isdigit():
            continue
        if " ".join(core).lower() in names or core[0].lower() in names:
            continue
        return " ".join(words[:4])[:40]
    return None


# ---------------------------------------------------------------------- draft → plan
def speech_seconds(line: str) -> float:
    return len(line.split()) / WORDS_PER_SECOND + 0.8


def assemble_plan(draft: Draft, intent: Intent, registry: PlanRegistry, source_default: str = "storyboard") -> Plan:
    """Turn the model's draft into a full `Plan`: ids, cast bookkeeping, dialogue timing, footage queries.

    Nothing the model chose is overridden except to make it consistent: a speaker who is not in the shot is
    added to it (or the line dropped when the shot is full); a shot is lengthened to fit its line; durations
    are scaled to a requested total length.
    """
    ids = set(registry.character_ids)
    effect_names = set(registry.effect_names)
    shots: list[Shot] = []
    for i, d in enumerate(draft.shots, start=1):
        cast = [c for c in dict.fromkeys(d.characters) if c in ids][:3]
        dialogue = None
        line = " ".join(d.line.split()).strip(" \"'")
        if line and d.speaker not in (NO_SPEAKER, "") and d.speaker in registry.speaking_ids:
            if d.speaker not in cast and len(cast) < 3:
                cast.append(d.speaker)
            if d.speaker in cast:
                dialogue = Dialogue(character=d.speaker, line=line[:240], emotion=d.emotion)  # type: ignore[arg-type]
        duration = float(d.duration)
        if dialogue:
            duration = max(duration, round(speech_seconds(dialogue.line) + 0.5) * 1.0)
        source = d.source if d.source in ("generate", "footage", "storyboard") else source_default
        action = " ".join(d.action.split()) or _compose_action(cast, d.verb, d.object, registry)
        shots.append(Shot(
            id=i, source=source, characters=cast, action=action or "the scene holds", emotion=d.emotion,  # type: ignore[arg-type]
            location=(" ".join(d.location.split()) or intent.location or "")[:80], time_of_day=intent.time_of_day,  # type: ignore[arg-type]
            camera=d.camera, camera_move=d.camera_move,  # type: ignore[arg-type]
            duration=min(MAX_SHOT_S, max(MIN_SHOT_S, duration)), dialogue=dialogue,
            effects=[d.effect] if d.effect != NO_EFFECT and d.effect in effect_names else [],
            footage_query=_footage_query(action, cast, registry) if source == "footage" else None,
        ))
    if intent.target_seconds:
        _fit_total(shots, intent.target_seconds)
    cast_all = list(dict.fromkeys([*intent.characters, *(c for s in shots for c in s.characters)]))
    cast_all = [c for c in cast_all if any(c in s.characters for s in shots)]
    names = [registry.character(c).display_name for c in cast_all]
    logline = " ".join(draft.logline.split()) or (f"{', '.join(names)}: " if names else "") + intent.request
    return Plan(title=" ".join(draft.title.split())[:80] or "Untitled short", logline=logline[:240],
                characters=cast_all, shots=shots)


def _plural(verb: str) -> str:
    """'looks at' → 'look at', 'catches' → 'catch' (verb phrases agree with a plural subject)."""
    head, _, rest = verb.partition(" ")
    if re.search(r"(ch|sh|x|ss)es$", head):
        head = head[:-2]
    elif head.endswith("s") and not head.endswith("ss"):
        head = head[:-1]
    return f"{head} {rest}".strip()


def _compose_action(cast: list[str], verb: str, obj: str, registry: PlanRegistry) -> str:
    names = [registry.character(c).display_name for c in cast]
    if obj in names:  # "Frank and the bunny chase Frank" → "... chase each other"
        obj = "each other" if len(names) > 1 else "the camera"
    who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{who} {verb if len(names) == 1 else _plural(verb)} {obj}".strip()[:200]


def _footage_query(action: str, cast: list[str], registry: PlanRegistry) -> str:
    names = " ".join(registry.character(c).display_name for c in cast)
    return f"{names} {action}".strip()[:120]


def _fit_total(shots: list[Shot], target: float) -> None:
    """Scale durations towards the requested length, never below what a line needs."""
    total = sum(s.duration for s in shots)
    if total <= 0:
        return
    k = target / total
    for s in shots:
        floor = speech_seconds(s.dialogue.line) if s.dialogue else MIN_SHOT_S
        s.duration = round(min(MAX_SHOT_S, max(MIN_SHOT_S, floor, s.duration * k)), 1)
