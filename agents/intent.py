"""Request understanding: what the short must be about, read with spaCy (see `studio.agents.nlp`).

From the request's parse: the cast (registry ids via names, aliases, possessives, plurals, groups such as "the
squirrels" and "all the characters"), the things and places the shots must show, the events (verb, who does
it, to whom or what: "sees a butterfly for the first time", "try to steal an apple", "teaches Luca to ride a
bike"), tone, time of day, weather, shot count and length. A capitalised word used as a character (subject or
object of a verb, wherever it stands) that the registry does not know is refused; one used as a thing ("a
Vespa") stays a thing. Everything here is code, so the same request always means the same thing.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from studio.agents import nlp
from studio.agents.cast import CastTable, cast_table, choose_world, expand_group
from studio.agents.context import DirectorConfig, load_director_config
from studio.agents.events import Event, noun_phrase, request_events
from studio.agents.registry import PlanRegistry
from studio.configs.errors import StudioError
from studio.configs.vocabulary import MAX_SHOTS

MAX_REQUEST_BYTES = 100_000
DEFAULT_SHOTS = 4
SECONDS_PER_SHOT = 5.0
_DETS = {"a", "an", "the", "some", "this", "that", "these", "those", "his", "her", "their", "its", "my", "our"}
_CHAR_PREPS = {"with", "about", "of", "for", "to", "at", "from", "between", "against", "like", "and", "after",
               "behind", "towards", "toward"}
_FOOTAGE = ("footage", "film clip", "from the film", "from the movie", "real scene", "movie clip")
_COMMON_PROPER = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february", "march",
    "april", "may", "june", "july", "august", "september", "october", "november", "december", "christmas",
    "halloween", "easter", "english", "italian", "french", "spanish", "german", "japanese", "europe", "italy",
    "pixar", "disney", "blender", "dreamworks", "ghibli", "ok", "okay", "tv", "usa", "earth", "moon", "sun",
    "mars", "god", "mr", "mrs", "ms", "dr", "short", "film", "movie", "scene", "act", "part", "episode", "make",
}


class RequestError(StudioError):
    """The request cannot be planned as written; the message says what to change."""


class UnknownCharacterError(RequestError):
    """The request uses as a character someone the registry does not know."""

    def __init__(self, names: list[str], registry: PlanRegistry):
        self.names = names
        listing = ", ".join(f"{c.id} ({c.display_name})" for c in registry.characters)
        super().__init__(
            f"the request uses {', '.join(repr(n) for n in names)} as a character, but "
            f"{'it is' if len(names) == 1 else 'they are'} not in configs/characters.yaml. Known characters: "
            f"{listing}. To add one, give it a preset under `characters:` in configs/characters.yaml (display_name, "
            "aliases, description, prompt_tokens, voice) and a note in the knowledge pack; or, if it is a thing "
            "or a place, write it with an article (\"a Vespa\", \"the Eiffel Tower\").")


class Intent(BaseModel):
    request: str
    characters: list[str] = []  # registry ids, in order of mention
    cast_named: bool = False  # the request names its cast (names, aliases, groups, "all the characters")
    world: str | None = None  # the knowledge-pack world the cast comes from (None: mixed or unknown)
    things: list[str] = []  # nouns the shots must show that are neither characters nor places
    places: list[str] = []
    weather_words: list[str] = []  # weather named as a subject ("thunderstorm")
    location: str | None = None
    events: list[Event] = []
    tone: str = "adventure"
    emotion: str = "neutral"
    time_of_day: str = "day"
    weather: str = "clear"
    shots: int = DEFAULT_SHOTS
    target_seconds: float | None = None
    use_footage: bool = False

    @property
    def subjects(self) -> list[str]:
        """What the plan must show somewhere in its actions, locations or lines."""
        return list(dict.fromkeys([*self.things, *self.places, *self.weather_words]))

    def explain(self, registry: PlanRegistry) -> str:
        names = [f"{registry.character(c).display_name} ({c})" for c in self.characters]
        events = [" ".join(filter(None, ["+".join(e.subjects) or "?", e.verb, e.target or "", e.modifier]))
                  for e in self.events]
        rows = [("cast", ", ".join(names) + ("" if self.cast_named else "  [not named: chosen from the world]")),
                ("world", self.world or "mixed"), ("things", ", ".join(self.things) or "-"),
                ("places", ", ".join(self.places) or "-"), ("location", self.location or "-"),
                ("events", "; ".join(events) or "-"), ("tone", f"{self.tone} ({self.emotion})"),
                ("time / weather", f"{self.time_of_day} / {self.weather}"),
                ("shots", str(self.shots)), ("length", f"{self.target_seconds:.0f} s" if self.target_seconds else "-")]
        return "\n".join(f"{k:>15}: {v}" for k, v in rows)


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


# ---------------------------------------------------------------------- known words
@lru_cache(maxsize=4)
def _pack_words(pack: str) -> frozenset[str]:
    """Capitalised words of the knowledge pack (places, things): these are not unknown characters."""
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
    return known | set(_pack_words(str(get_settings().knowledge_path)))


# ---------------------------------------------------------------------- pieces of the parse
def _name_span(tok: Any) -> str:
    parts = [c for c in tok.children if c.dep_ == "compound" and c.i < tok.i] + [tok]
    return " ".join(t.text for t in sorted(parts, key=lambda t: t.i))


def _used_as_character(tok: Any, cast: CastTable) -> bool:
    dep = tok.dep_
    if any(c.dep_ == "conj" and c.i in cast.tokens for c in tok.children) or (dep == "conj" and tok.head.i in
                                                                              cast.tokens):
        return True  # listed with a character: "Shrek and Luca"
    if dep == "conj":
        return _used_as_character(tok.head, cast) or tok.head.pos_ == "PROPN"
    if dep in ("nsubj", "nsubjpass"):
        return True
    if dep == "amod" and tok.head.pos_ == "VERB":
        return True  # "a short of Shrek meeting Luca": the small tagger reads the name as the gerund's modifier
    if dep == "advmod" and tok.head.pos_ == "VERB" and tok.i > tok.head.i and not nlp.dictionary_word(tok):
        return True  # "Rinky meets Shrek": the small parser reads the unknown name as an adverb
    if dep in ("dobj", "dative", "attr", "appos", "ROOT", "npadvmod"):
        return tok.ent_type_ not in nlp.NOT_NAME_ENTS
    if dep == "pobj":
        prep = tok.head.lower_
        if prep in nlp.LOCATION_PREPS and (tok.ent_type_ != "PERSON" or prep in ("in", "inside", "into")):
            return False  # "in Narnia": a place
        return prep in _CHAR_PREPS and tok.ent_type_ not in nlp.NOT_NAME_ENTS
    return False


def _longer_name(tok: Any, cast: CastTable, known: set[str]) -> bool:
    """A known name inside a longer unknown one: "Bugs Bunny" is not the bunny."""
    return tok.i in cast.tokens and any(
        c.dep_ == "compound" and c.i < tok.i and c.i not in cast.tokens and c.pos_ == "PROPN" and
        c.text[:1].isupper() and c.lower_ not in known for c in tok.children)


def unknown_characters(doc: Any, cast: CastTable, registry: PlanRegistry) -> list[str]:
    known = _known_words(registry)
    found: list[str] = [_name_span(t) for t in doc if _longer_name(t, cast, known)]
    for tok in doc:
        if tok.i in cast.tokens or tok.dep_ == "compound" or not tok.text[:1].isupper() or len(tok.text) < 2:
            continue
        misread_name = tok.pos_ == "NOUN" and tok.i > 0 and tok.dep_ == "amod" and tok.head.pos_ == "VERB"
        common = nlp.dictionary_word(tok)
        if (tok.pos_ != "PROPN" and not (tok.ent_type_ == "PERSON" and tok.i > 0) and not misread_name and common) \
                or (tok.is_sent_start and common):
            continue  # a capitalised common word ("Music plays", "Chaos erupts"); a word no dictionary knows is a name
        if any(c.lower_ in _DETS for c in tok.children if c.dep_ in ("det", "poss")):
            continue  # "a Vespa", "the Eiffel Tower": a thing
        words = [w.lower() for w in _name_span(tok).split()]
        if all(w in known for w in words) or not _used_as_character(tok, cast):
            continue
        name = _name_span(tok)
        if name not in found:
            found.append(name)
    return found


def _subjects_things(doc: Any, cast: CastTable) -> tuple[list[str], list[str], list[str], str | None]:
    things: list[str] = []
    places: list[str] = []
    weather: list[str] = []
    location = None
    weather_lex = {w for ws in nlp.WEATHER.values() for w in ws}
    time_lex = {w for ws in nlp.TIMES.values() for w in ws}
    for tok in doc:
        if tok.i in cast.tokens or tok.dep_ == "compound" or not nlp.is_nounish(tok):
            continue
        lemma = tok.lemma_.lower()
        named = any(c.dep_ == "compound" and c.lemma_.lower() not in nlp.FORM_NOUNS and not c.like_num
                    for c in tok.children)  # "a sack race" is a thing, "a race" or "a 30-second comedy" is not
        if any(c.dep_ == "compound" and c.i in cast.tokens for c in tok.children) and tok.tag_ == "NNS" and \
                not any(c.dep_ == "det" for c in tok.children):
            continue  # "Frank glides": a verb the tagger read as a plural noun after a name
        if lemma in nlp.MEDIUM_NOUNS or (lemma in nlp.FORM_NOUNS and not named) or lemma in time_lex \
                or nlp.describes_the_medium(tok) \
                or tok.ent_type_ in ("DATE", "TIME"):
            continue
        if lemma in weather_lex:
            weather.append(lemma)
            continue
        if tok.pos_ == "PROPN" and not any(c.lower_ in _DETS for c in tok.children) and tok.ent_type_ not in \
                nlp.PLACE_ENTS and not (tok.dep_ == "pobj" and tok.head.lower_ in nlp.LOCATION_PREPS):
            continue  # a name used as a name: characters are handled by the cast
        phrase = noun_phrase(tok)
        prep = tok.head.lower_ if tok.dep_ == "pobj" else ""
        is_place = lemma in nlp.PLACE_NOUNS or tok.ent_type_ in nlp.PLACE_ENTS or \
            any(w in nlp.PLACE_NOUNS for w in phrase.split()) or \
            (tok.pos_ == "PROPN" and prep in nlp.LOCATION_PREPS)
        (places if is_place else things).append(phrase)
        if is_place and location is None:
            location = phrase if tok.pos_ == "PROPN" else f"the {phrase}"
    return (list(dict.fromkeys(things)), list(dict.fromkeys(places)), list(dict.fromkeys(weather)), location)


def _count_and_length(doc: Any) -> tuple[int | None, float | None]:
    shots = seconds = None
    toks = [t for t in doc if not t.is_punct]
    for i, tok in enumerate(toks):
        text = tok.lower_
        if text.endswith("s") and text[:-1].isdigit():  # "30s"
            seconds = seconds or float(text[:-1])
            continue
        value = nlp.number_value(text) if (tok.like_num or text in nlp.NUMBER_WORDS) else None
        if value is None or i + 1 >= len(toks):
            continue
        nxt = toks[i + 1]
        unit = nxt.lemma_.lower()
        if unit == "a" and i + 2 < len(toks) and text == "half":
            nxt, unit = toks[i + 2], toks[i + 2].lemma_.lower()
        if unit in ("shot", "scene", "panel") and value >= 1 and shots is None and text not in ("a", "an"):
            shots = int(value)
        elif unit in ("second", "sec", "s") and seconds is None and text not in ("a", "an"):
            seconds = value
        elif unit in ("minute", "min") and seconds is None:
            seconds = value * 60
    return shots, seconds


def extract_intent(request: str, registry: PlanRegistry, shots: int | None = None,
                   config: DirectorConfig | None = None) -> Intent:
    """The request's intent, or a `RequestError` saying what to change (empty, too long, unknown character,
    impossible shot count)."""
    text = check_request(request)
    cfg = config or load_director_config()
    doc = nlp.parse(text)
    cast = cast_table(doc, registry, cfg)
    unknown = unknown_characters(doc, cast, registry)
    if unknown:
        raise UnknownCharacterError(unknown, registry)
    lemmas = {t.lemma_.lower() for t in doc} | {t.lower_ for t in doc}
    things, places, weather_words, location = _subjects_things(doc, cast)
    characters, world = choose_world(cast, registry, cfg, lemmas)
    n, target = _count_and_length(doc)
    n = shots if shots is not None else n
    if n is None:
        n = max(2, min(12, round(target / SECONDS_PER_SHOT))) if target else DEFAULT_SHOTS
    if not 1 <= n <= MAX_SHOTS:
        raise RequestError(f"a short has 1 to {MAX_SHOTS} shots; got {n}")
    tone = nlp.lexicon_hit(lemmas, nlp.TONES, "adventure") or "adventure"
    low = text.lower()
    return Intent(
        request=text, characters=characters, cast_named=bool(cast.ids) or cast.everyone, world=world,
        things=things, places=places,
        weather_words=weather_words, location=location or _world_place(world, cfg),
        events=request_events(doc, cast, things + places), tone=tone, emotion=nlp.TONE_EMOTION[tone],
        time_of_day=nlp.lexicon_hit(lemmas, nlp.TIMES, "day") or "day",
        weather=nlp.lexicon_hit(lemmas, nlp.WEATHER, "clear") or "clear", shots=n, target_seconds=target,
        use_footage=any(k in low for k in _FOOTAGE))


def _world_place(world: str | None, cfg: DirectorConfig) -> str | None:
    w = cfg.worlds.get(world or "")
    return w.places[0] if w and w.places else None


__all__ = ["Event", "Intent", "RequestError", "UnknownCharacterError", "check_request", "expand_group",
           "extract_intent", "unknown_characters"]
