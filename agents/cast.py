"""The cast of a request: registry names, aliases, possessives and plurals, groups ("the squirrels", "three
rodents") and "all the characters", matched on the parse's tokens; and the world (knowledge-pack folder) the
cast comes from, so a request that names nobody gets characters of one film, not a mix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from studio.agents import nlp
from studio.agents.context import DirectorConfig
from studio.agents.registry import PlanRegistry

MAX_NGRAM = 4


@dataclass
class CastTable:
    ids: list[str] = field(default_factory=list)  # in order of mention, groups expanded
    by_token: dict[int, list[str]] = field(default_factory=dict)  # token index → ids it names
    everyone: bool = False  # "all the characters"

    @property
    def tokens(self) -> set[int]:
        return set(self.by_token)


def _names(registry: PlanRegistry) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for c in registry.characters:
        for n in (c.id, c.display_name, *c.aliases):
            low = n.lower()
            table[low] = [c.id]
            table.setdefault(low.removeprefix("the "), [c.id])
    return table


def expand_group(members: list[str], count: int | None, cfg: DirectorConfig) -> list[str]:
    """A group's members; with a stated count larger than the group ("three squirrels" when two characters
    are squirrels) the smallest configured group that contains it and is large enough."""
    if not count or count <= len(members):
        return members[:count] if count else members
    bigger = sorted((g for g in cfg.groups.values() if set(members) <= set(g) and len(g) >= count), key=len)
    return list(bigger[0][:count]) if bigger else members


def _group_count(span: Any) -> int | None:
    for t in span.root.children:
        if t.dep_ == "nummod":
            v = nlp.number_value(t.lower_)
            if v:
                return int(v)
    return None


def _match(span: Any, names: dict[str, list[str]], cfg: DirectorConfig) -> list[str] | None:
    text = span.text.lower()
    lemma = " ".join(t.lemma_.lower() for t in span)
    for key in (text, text.removeprefix("the "), lemma, lemma.removeprefix("the ")):
        if key in names:
            return names[key]
    groups = {k.lower(): v for k, v in cfg.groups.items()}
    if text in groups or text.removeprefix("the ") in groups:
        return expand_group(list(groups.get(text) or groups[text.removeprefix("the ")]), _group_count(span), cfg)
    singular = {k.rstrip("s"): v for k, v in groups.items()}
    if lemma in singular and len(span) == 1 and span[0].tag_ != "NNS":
        return list(singular[lemma][:1])
    if lemma in singular:
        return expand_group(list(singular[lemma]), _group_count(span), cfg)
    return None


def cast_table(doc: Any, registry: PlanRegistry, cfg: DirectorConfig) -> CastTable:
    names = _names(registry)
    table = CastTable()
    low = doc.text.lower()
    i = 0
    while i < len(doc):
        for n in range(min(MAX_NGRAM, len(doc) - i), 0, -1):
            span = doc[i:i + n]
            if n == 1 and span[0].pos_ in ("VERB", "ADP", "DET", "PRON"):
                continue
            ids = _match(span, names, cfg)
            if ids:
                for t in span:
                    table.by_token[t.i] = list(ids)
                table.ids.extend(ids)
                i += n
                break
        else:
            i += 1
    if any(phrase in low for phrase in nlp.ALL_WORDS):
        table.everyone = True
        for t in doc:
            if t.lower_ in ("characters", "everyone", "everybody", "cast", "gang", "them"):
                table.by_token.setdefault(t.i, [])
    table.ids = list(dict.fromkeys(table.ids))
    return table


def world_of(cid: str, cfg: DirectorConfig) -> str | None:
    return next((w for w, spec in cfg.worlds.items() if cid in spec.characters), None)


def choose_world(cast: CastTable, registry: PlanRegistry, cfg: DirectorConfig, lemmas: set[str]
                 ) -> tuple[list[str], str | None]:
    """The characters of the short and their world. Named characters are kept as named (a request may mix
    worlds: the world is then None); "all the characters" means the named characters' world, or everyone;
    a request naming nobody gets the lead pair of the world its words fit best."""
    worlds = {world_of(c, cfg) for c in cast.ids}
    if cast.everyone:
        world = next(iter(worlds)) if len(worlds) == 1 else None
        pool = cfg.worlds[world].characters if world else list(registry.character_ids)
        ids = list(dict.fromkeys([*cast.ids, *pool]))
        return [c for c in ids if c in registry.character_ids], world
    if cast.ids:
        return cast.ids, next(iter(worlds)) if len(worlds) == 1 else None
    if not cfg.worlds:
        return list(registry.character_ids[:1]), None
    def fit(w: str) -> int:
        spec = cfg.worlds[w]
        return len(lemmas & set(spec.keywords)) + len(lemmas & {p.lower().removeprefix("the ") for p in spec.places})
    best = max(cfg.worlds, key=lambda w: (fit(w), -list(cfg.worlds).index(w)))
    lead = [c for c in cfg.worlds[best].characters if c in registry.character_ids][:2]
    return lead or list(registry.character_ids[:1]), best
