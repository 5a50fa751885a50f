"""The events of a request: each content verb with who does it and to whom or what, from the dependency
parse ("the rabbit discovering a butterfly" → discover(bunny, butterfly); "three squirrels try to steal an
apple and fail" → steal(frank+rinky+gimera, apple), fail(…); "Alberto teaches Luca to ride a bike" →
teach(alberto, luca), ride(luca, bike))."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from studio.agents import nlp
from studio.agents.cast import CastTable

_PARTICLES = {"away", "off", "up", "down", "back", "out", "around", "over", "in"}
_TARGET_PREPS = {"at", "to", "from", "with", "after", "towards", "toward", "into", "over", "on", "for", "about",
                 "behind", "around", "through", "across", "along"}

class Event(BaseModel):
    verb: str  # lemma, phrasal when it has a particle or preposition: "see", "run away from", "steal"
    subjects: list[str] = []  # character ids doing it
    target: str | None = None  # a character id or one of the intent's things/places
    modifier: str = ""  # "for the first time"


def noun_phrase(tok: Any) -> str:
    mods = [c for c in tok.children if c.dep_ == "compound" and c.i < tok.i]
    proper = tok.pos_ == "PROPN" or (tok.text[:1].isupper() and not tok.is_sent_start)
    head = tok.text if proper else tok.lemma_.lower()
    words = [m.text if m.pos_ == "PROPN" or proper else m.lower_ for m in sorted(mods, key=lambda t: t.i)
             if not (m.text[:1].isupper() and m.i < tok.i and not proper)]
    return " ".join([*words, head])


def _ids(tok: Any, cast: CastTable) -> list[str]:
    out = list(cast.by_token.get(tok.i, []))
    for c in tok.children:
        if c.dep_ == "conj":
            out += _ids(c, cast)
    return list(dict.fromkeys(out))


def _subjects(verb: Any, cast: CastTable, depth: int = 0) -> list[str]:
    if depth > 4:
        return []
    for c in verb.children:
        if c.dep_ in ("nsubj", "nsubjpass"):
            ids = _ids(c, cast)
            if ids:
                return ids
            if c.lower_ in ("where", "who", "that", "which") and verb.dep_ == "relcl":
                break
            return []
    head = verb.head
    if verb.dep_ in ("acl", "relcl") and head.i in cast.by_token:
        return _ids(head, cast)
    if verb.dep_ == "xcomp":
        obj = next((c for c in head.children if c.dep_ in ("dobj", "dative") and c.i in cast.by_token), None)
        return _ids(obj, cast) if obj is not None else _subjects(head, cast, depth + 1)
    if verb.dep_ in ("conj", "advcl", "relcl", "ccomp") and head.i != verb.i:
        ids = _subjects(head, cast, depth + 1)
        if ids:
            return ids
    before = [t for t in verb.doc[max(0, verb.i - 4):verb.i] if t.i in cast.by_token]
    return list(cast.by_token[before[-1].i]) if before else []


def _target(verb: Any, cast: CastTable, subjects: list[str]) -> tuple[str | None, str]:
    """(target, preposition the verb takes): a character id or a thing, from the object or a prepositional
    complement ("runs away from the dog")."""
    def name(tok: Any) -> str | None:
        ids = [i for i in _ids(tok, cast) if i not in subjects]
        if ids:
            return ids[0]
        if nlp.is_nounish(tok) and tok.lemma_.lower() not in nlp.FORM_NOUNS:
            return noun_phrase(tok)
        return None
    for c in verb.children:
        if (c.dep_ in ("dobj", "dative", "attr", "nsubjpass") or (c.dep_ == "ccomp" and c.pos_ == "ADJ")) and \
                (t := name(c)):
            return t, ""
    preps = [c for c in verb.children if c.dep_ == "prep"]
    preps += [g for c in verb.children if c.dep_ in ("advmod", "prt") for g in c.children if g.dep_ == "prep"]
    for c in preps:
        if c.lower_ in _TARGET_PREPS:
            obj = next((g for g in c.children if g.dep_ == "pobj"), None)
            if obj is not None and c.lower_ in ("at", "after", "for") and obj.lemma_.lower() in _TIME_WORDS:
                continue  # "waits at sunset", "hide at night": when, not whom
            if obj is not None and obj.lemma_.lower() not in nlp.PLACE_NOUNS and (t := name(obj)):
                return t, c.lower_
    return None, ""


_TIME_WORDS = {w for ws in nlp.TIMES.values() for w in ws}
_WHEN_WORDS = _TIME_WORDS | {w for ws in nlp.WEATHER.values() for w in ws}
_PATH_PREPS = {"over", "into", "onto", "in", "on", "across", "through", "under", "along", "around", "off", "to",
               "towards", "toward", "from", "behind", "past", "up", "down", "beside", "near", "out", "inside"}


def _where(verb: Any, used_prep: str) -> str:
    """Where an action goes or happens, as the request says it ("over the river", "into the sea", "in the mud"):
    the verb's prepositional phrase (not the one that names its target, not a time or weather phrase)."""
    for c in verb.children:
        if c.dep_ != "prep" or c.lower_ not in _PATH_PREPS or c.lower_ == used_prep:
            continue
        obj = next((g for g in c.children if g.dep_ == "pobj"), None)
        if obj is None or obj.lemma_.lower() in _WHEN_WORDS or obj.lemma_.lower() in nlp.FORM_NOUNS or obj.like_num \
                or obj.ent_type_ in ("DATE", "TIME", "CARDINAL", "QUANTITY"):
            continue
        end = next((t.i for t in verb.doc[c.i:c.right_edge.i + 1] if t.pos_ in ("CCONJ", "PUNCT")),
                   c.right_edge.i + 1)  # "on the beach" of "on the beach and a crab …"
        span = verb.doc[c.i:end]
        if len(span) <= 6:
            return span.text
        return f"{c.lower_} {noun_phrase(obj) if obj.pos_ == 'PROPN' else 'the ' + noun_phrase(obj)}"
    return ""


def _modifier(verb: Any, used_prep: str = "") -> str:
    for c in verb.children:
        if c.dep_ == "xcomp" and verb.lemma_ in ("teach", "help", "show", "dare", "ask", "tell"):
            obj = next((g for g in c.children if g.dep_ == "dobj"), None)
            return " ".join(filter(None, ["to", nlp.verb_lemma(c), f"the {noun_phrase(obj)}" if obj is not None
                                          and obj.pos_ == "NOUN" else (obj.text if obj is not None else "")]))
        if c.dep_ == "prep" and c.lower_ == "for":
            obj = next((g for g in c.children if g.dep_ == "pobj" and g.lemma_ == "time"), None)
            if obj is not None and any(g.lower_ == "first" for g in obj.children):
                return "for the first time"
        if c.dep_ == "advmod" and c.lower_ in ("again", "finally"):
            return c.lower_
    return _where(verb, used_prep)


def _gerund_event(tok: Any, cast: CastTable) -> Event | None:
    """"Show the bunny eating carrots": the small parser makes "eating" a modifier of "carrots". A gerund right
    after a character, before its noun, is that character's action on it ("a flying squirrel" is not)."""
    prev = tok.doc[tok.i - 1] if tok.i else None
    if tok.tag_ != "VBG" or prev is None or prev.i not in cast.by_token or prev.pos_ == "DET" or \
            tok.i in cast.by_token or tok.head.i <= tok.i:
        return None
    obj = tok.head
    target = (_ids(obj, cast) or [None])[0] or (noun_phrase(obj) if nlp.is_nounish(obj) else None)
    return Event(verb=nlp.verb_lemma(tok)[:40], subjects=list(cast.by_token[prev.i]), target=target)


def request_events(doc: Any, cast: CastTable, subjects: list[str]) -> list[Event]:
    events: list[Event] = []
    for tok in doc:
        if tok.pos_ != "VERB" or tok.dep_ in ("aux", "auxpass"):
            continue
        if tok.dep_ == "amod":
            if (event := _gerund_event(tok, cast)) is not None:
                events.append(event)
            continue
        lemma = nlp.verb_lemma(tok)
        if lemma in nlp.REQUEST_VERBS or lemma in nlp.HELPER_VERBS:
            continue
        who = _subjects(tok, cast)
        target, prep = _target(tok, cast, who)
        parts = [lemma, *(c.lower_ for c in tok.children if c.dep_ in ("prt", "advmod") and c.lower_ in _PARTICLES)]
        verb = " ".join([*parts, prep] if prep else parts)
        events.append(Event(verb=verb[:40], subjects=who, target=target, modifier=_modifier(tok, prep)))
    return events
