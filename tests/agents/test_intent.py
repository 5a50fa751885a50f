"""Request understanding with spaCy: cast (names, aliases, possessives, plurals, groups, "all the characters"),
things and places, events, tone, time, weather, count and length; unknown characters refused, unknown
things kept; a request naming nobody gets a cast from one world; a mixed-world cast is explained."""

from __future__ import annotations

import pytest

from studio.agents.intent import RequestError, UnknownCharacterError, extract_intent
from studio.agents.registry import PlanRegistry

BBB = {"bunny", "frank", "rinky", "gimera"}
LUCA = {"luca", "alberto", "giulia"}


@pytest.fixture(scope="module")
def registry() -> PlanRegistry:
    return PlanRegistry.from_configs()


# request, cast (ordered ids, or a set: any cast from that world), subjects that must be understood, shots, seconds
CASES = [
    ("make a funny short of Big Buck Bunny seeing a butterfly for the first time", ["bunny"], ["butterfly"], 4, None),
    ("Make a funny short of the big rabbit discovering a butterfly for the first time", ["bunny"], ["butterfly"], 4,
     None),
    ("A tense chase where three squirrels try to steal an apple and fail", ["frank", "rinky", "gimera"], ["apple"],
     4, None),
    ("the squirrels throw nuts at the bunny", ["frank", "rinky", "bunny"], ["nut"], 4, None),
    ("Luca rides a Vespa to Portorosso at sunset", ["luca"], ["Vespa", "Portorosso"], 4, None),
    ("Alberto teaches Luca to ride a bike in 30 seconds", ["alberto", "luca"], ["bike"], 6, 30.0),
    ("a 20-second short with four shots where Giulia finds a lighthouse during a thunderstorm", ["giulia"],
     ["lighthouse", "thunderstorm"], 4, 20.0),
    ("all the characters have a picnic in the meadow", BBB | LUCA, ["picnic", "meadow"], 4, None),
    ("Luca and all the characters swim in the sea", LUCA, ["sea"], 4, None),
    ("a quiet short about the harbour at dawn", LUCA, ["harbour"], 4, None),
    ("a short where a fox sneaks through the meadow", BBB, ["fox", "meadow"], 4, None),
    ("Rinky's acorn rolls down the hill in 3 shots", ["rinky"], ["hill"], 3, None),
    ("Giulia's bike breaks in the rain", ["giulia"], ["bike"], 4, None),
    ("Frank and Gimera build a trap under the big tree, six shots", ["frank", "gimera"], ["trap", "tree"], 6, None),
    ("Big Buck Bunny chases the flying squirrel at sunset in 5 shots", ["bunny", "frank"], [], 5, None),
    ("a one-minute story: Luca, Alberto and Giulia race to the beach", ["luca", "alberto", "giulia"], ["beach"],
     12, 60.0),
    ("the chinchilla laughs at the red squirrel", ["gimera", "rinky"], [], 4, None),
    ("make a 2 shot short of the bunny eating an apple", ["bunny"], ["apple"], 2, None),
    ("Luca sees snow for the first time", ["luca"], ["snow"], 4, None),
    ("in 45 seconds, Alberto shows Giulia his secret hideout on the island", ["alberto", "giulia"],
     ["hideout", "island"], 9, 45.0),
    ("a spooky short where the rodents hide in a cave at night", ["frank", "rinky", "gimera"], ["cave"], 4, None),
    ("the bunny waves at a balloon in the sky, two scenes", ["bunny"], ["balloon", "sky"], 2, None),
    ("A romantic short where Giulia gives Luca a flower on the pier", ["giulia", "luca"], ["flower", "pier"], 4,
     None),
    ("Buck plays football with Frank in the fog", ["bunny", "frank"], ["football"], 4, None),
    ("a sad goodbye between Luca and Alberto at the station", ["luca", "alberto"], ["station"], 4, None),
    ("a 15 second short of Gimera stealing a cake", ["gimera"], ["cake"], 3, 15.0),
    ("the kids fly a kite on a windy hill", ["luca", "alberto", "giulia"], ["kite", "hill"], 4, None),
    ("Make a short about a lonely lighthouse keeper's cat", LUCA, ["cat", "lighthouse"], 4, None),
    ("Luca and Giulia bake pasta in the kitchen in three shots", ["luca", "giulia"], ["pasta", "kitchen"], 3, None),
    ("the sea monsters find a treasure chest underwater", ["luca", "alberto"], ["treasure chest"], 4, None),
    ("Frank drops a pinecone on the bunny's head", ["frank", "bunny"], ["pinecone"], 4, None),
    ("Eight shots: Giulia trains for the Portorosso Cup with a Vespa", ["giulia"], ["Vespa"], 8, None),
]


@pytest.mark.parametrize("request_text, cast, subjects, shots, seconds", CASES)
def test_request_is_understood(registry, request_text, cast, subjects, shots, seconds):
    i = extract_intent(request_text, registry)
    if isinstance(cast, set):
        assert set(i.characters) <= cast and i.characters, i.characters
    else:
        assert i.characters == cast
    understood = " ".join(i.subjects).lower()
    assert all(s.lower() in understood for s in subjects), (subjects, i.subjects)
    assert i.shots == shots and i.target_seconds == seconds


def test_the_event_has_its_verb_subject_and_target(registry):
    i = extract_intent("make a funny short of the big rabbit discovering a butterfly for the first time", registry)
    e = i.events[0]
    assert (e.verb, e.subjects, e.target, e.modifier) == ("discover", ["bunny"], "butterfly", "for the first time")
    steal = extract_intent("three squirrels try to steal an apple and fail", registry).events
    assert [(e.verb, e.target) for e in steal] == [("steal", "apple"), ("fail", None)]
    assert steal[0].subjects == ["frank", "rinky", "gimera"]
    teach = extract_intent("Alberto teaches Luca to ride a bike", registry).events
    assert (teach[0].verb, teach[0].subjects, teach[0].target) == ("teach", ["alberto"], "luca")
    assert teach[0].modifier == "to ride the bike"
    flee = extract_intent("the bunny runs away from a bee", registry).events[0]
    assert (flee.verb, flee.target) == ("run away from", "bee")


def test_a_verb_the_small_tagger_reads_as_a_noun_is_still_the_event(registry):
    """"Frank glides …" parses as the noun phrase "Frank glides" (headline style): the verb is re-read."""
    i = extract_intent("Frank glides over the river and lands in the mud", registry)
    assert [(e.verb, e.subjects) for e in i.events] == [("glide", ["frank"]), ("land", ["frank"])]
    assert "land" not in i.things and "mud" in i.things
    race = extract_intent("Luca races Alberto to the harbour", registry).events
    assert [(e.verb, e.subjects, e.target) for e in race] == [("race", ["luca"], "alberto")]
    race = extract_intent("Giulia and Alberto race bicycles along the harbour", registry).events
    assert [(e.verb, e.subjects, e.target) for e in race] == [("race", ["giulia", "alberto"], "bicycle")]
    # a real noun phrase stays one: a determiner, or a noun after it
    assert extract_intent("Make a Christmas parade short with the bunny", registry).things == ["parade"]
    assert "dance" in extract_intent("Luca's dances make Giulia laugh", registry).things


def test_where_the_event_happens_is_kept_and_a_time_is_not_a_target(registry):
    glide = extract_intent("Frank glides over the river", registry).events[0]
    assert (glide.verb, glide.target, glide.modifier) == ("glide", None, "over the river")
    drop = extract_intent("Frank drops a pinecone on the bunny's head", registry).events[0]
    assert (drop.target, drop.modifier) == ("pinecone", "on the bunny's head")
    wait = extract_intent("a drama where Alberto waits alone on the island at sunset", registry)
    assert (wait.events[0].verb, wait.events[0].target, wait.time_of_day) == ("wait", None, "sunset")
    spooky = extract_intent("a spooky short where the rodents hide in a cave at night", registry)
    assert spooky.things == [] and spooky.events[0].verb == "hide" and spooky.tone == "spooky"
    assert extract_intent("the bunny hides from a thunderstorm", registry).events[0].target == "thunderstorm"
    fall = extract_intent("Alberto falls asleep on the beach and a crab pinches his nose", registry)
    assert fall.events[0].modifier == "on the beach" and "crab" in fall.things and fall.events[1].verb == "pinch"


def test_the_small_taggers_other_misreadings(registry):
    """A gerund read as its object's modifier, an object read as an adjective, a unit read as a thing."""
    eat = extract_intent("Show the bunny eating carrots at night", registry)
    assert [(e.verb, e.subjects, e.target) for e in eat.events] == [("eat", ["bunny"], "carrot")]
    assert extract_intent("a short of the flying squirrel", registry).events == []  # an alias, not an action
    steal = extract_intent("a film where Gimera steals Frank's acorn and runs away", registry)
    assert (steal.events[0].target, steal.things) == ("acorn", ["acorn"])
    comedy = extract_intent("Make a 30-second comedy where Alberto tries to catch a seagull on the pier", registry)
    assert comedy.things == ["seagull"] and comedy.target_seconds == 30.0
    road = extract_intent("a short where Alberto's Vespa breaks down in the middle of the road", registry)
    assert road.things == ["Vespa"] and road.places == ["road"]


def test_tone_time_and_weather(registry):
    i = extract_intent("a funny short of the bunny in a thunderstorm at night", registry)
    assert (i.tone, i.time_of_day, i.weather) == ("comedy", "night", "storm")
    i = extract_intent("a tense chase where Frank escapes in the snow at sunset", registry)
    assert (i.tone, i.time_of_day, i.weather) == ("action", "sunset", "snow")
    assert extract_intent("a sad short of Luca in the rain", registry).tone == "drama"


@pytest.mark.parametrize("request_text, name", [
    ("Pikachu meets Luca at the beach", "Pikachu"),       # at the start of the request
    ("Luca meets Elsa at the harbour", "Elsa"),            # object of a verb
    ("make a short about Shrek and Luca", "Shrek"),       # listed with a character
    ("the bunny and Mickey Mouse dance in the meadow", "Mickey Mouse"),
    # The small tagger reads these unknown names as a noun/adjective/adverb; no dictionary knows the word.
    ("Shrek meets Rinky", "Shrek"),
    ("Rinky meets Shrek", "Shrek"),
    ("Shrek and Rinky play chess", "Shrek"),
    # ... or the verb after the unknown name as a plural noun ("Mickey dances" as a noun phrase)
    ("Mickey dances with Luca on the beach", "Mickey"),
    ("Make a short where Mickey dances with Luca", "Mickey"),
    ("Bugs Bunny races the bunny", "Bugs Bunny"),  # a known name inside an unknown one
])
def test_unknown_character_is_refused_with_the_cast_and_how_to_add_one(registry, request_text, name):
    with pytest.raises(UnknownCharacterError) as e:
        extract_intent(request_text, registry)
    msg = str(e.value)
    assert repr(name) in msg and "bunny (Big Buck Bunny)" in msg and "configs/characters.yaml" in msg
    assert e.value.names == [name]


@pytest.mark.parametrize("request_text, thing", [
    ("Luca rides a Vespa through Portorosso", "Vespa"),
    ("Make a funny short of Luca on a Vespa in Portorosso.", "Vespa"),
    ("the bunny finds a Rubik's cube in the grass", "cube"),
    ("Alberto climbs the Eiffel Tower", "Tower"),
])
def test_unknown_capitalised_thing_stays_a_thing(registry, request_text, thing):
    i = extract_intent(request_text, registry)
    assert any(thing.lower() in s.lower() for s in i.subjects), i.subjects


@pytest.mark.parametrize("request_text, cast", [
    ("Music plays while Luca dances", ["luca"]),            # capitalised common words at the start
    ("Chaos erupts when Frank steals an acorn", ["frank"]),
    ("Sunset at the beach with Luca", ["luca"]),
])
def test_capitalised_common_words_are_not_characters(registry, request_text, cast):
    assert extract_intent(request_text, registry).characters == cast


def test_a_two_world_cast_is_kept_and_explained(registry):
    i = extract_intent("Big Buck Bunny meets Luca on the beach", registry)
    assert i.characters == ["bunny", "luca"] and i.world is None
    assert "world: mixed" in i.explain(registry).replace("  ", "").replace(" :", ":")
    one = extract_intent("a funny short about a picnic by the river", registry)
    assert one.world == "bbb" and set(one.characters) <= BBB and not one.cast_named


def test_bad_requests(registry):
    with pytest.raises(RequestError, match="empty"):
        extract_intent("   ", registry)
    with pytest.raises(RequestError, match="kB"):
        extract_intent("x" * 100_001, registry)
    with pytest.raises(RequestError, match="1 to 24 shots"):
        extract_intent("Luca sees the sea in 40 shots", registry)
