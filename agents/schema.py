"""The plan schema built from the live registry, and the one gate every plan passes: `validate_plan()`.

Two shapes come from the registry (characters.yaml, character_voices.yaml, effects.yaml, parody_recipes.yaml):

- `plan_model_from_registry()`: the full `Plan` with enums for character ids, speaking characters (those with
  a voice), effect names and shot types; `validate_plan()` checks any plan against it plus cross-field rules.
- `draft_schema()`: the JSON schema of the `submit_plan` tool the LLM fills with constrained decoding. It
  holds only what the model decides (title, logline, per shot: characters, action, emotion, camera, move,
  location, line, speaker, effect, duration) with enums and short `maxLength`s. Deterministic code
  (`studio.agents.intent.assemble_plan`) adds ids, fits durations to the dialogue and sets sources.

Numbers in the draft are enums too: llama.cpp's grammar ignores numeric min/max (FACTS.md), an enum it cannot
get wrong.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, create_model, model_validator

from studio.configs.errors import StudioError
from studio.configs.schema import config_path, read_yaml, studio_config
from studio.configs.vocabulary import (
    EMOTIONS,
    MAX_SHOT_S,
    MAX_SHOTS,
    MIN_SHOT_S,
    CameraMove,
    Dialogue,
    Plan,
    Shot,
    ShotSize,
    Source,
    TimeOfDay,
)

SHOT_SIZES: tuple[str, ...] = ShotSize.__args__  # type: ignore[attr-defined]
CAMERA_MOVES: tuple[str, ...] = CameraMove.__args__  # type: ignore[attr-defined]
SOURCES: tuple[str, ...] = Source.__args__  # type: ignore[attr-defined]
TIMES_OF_DAY: tuple[str, ...] = TimeOfDay.__args__  # type: ignore[attr-defined]
DRAFT_DURATIONS: tuple[float, ...] = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
NO_EFFECT = "none"
NO_SPEAKER = "nobody"

# Draft string limits: short enough that a 135M model stays on topic, long enough for a 7B model to say something.
TITLE_MAX, LOGLINE_MAX, ACTION_MAX, LOCATION_MAX, LINE_MAX = 48, 160, 100, 40, 90


class PlanValidationError(StudioError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("the plan is not valid:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class CharacterInfo:
    id: str
    display_name: str
    aliases: tuple[str, ...]
    description: str
    voice: str


@dataclass(frozen=True)
class PlanRegistry:
    """What a plan may name, read from the configs at one moment."""

    characters: tuple[CharacterInfo, ...]
    voices: tuple[str, ...] | None  # None: no character_voices.yaml yet (every character may speak)
    effects: tuple[str, ...]
    recipes: tuple[str, ...]

    @classmethod
    def from_configs(cls) -> PlanRegistry:
        chars = studio_config().characters.characters
        infos = tuple(CharacterInfo(k, c.display_name, tuple(c.aliases), c.description, c.voice or k)
                      for k, c in chars.items())
        return cls(infos, _yaml_keys("character_voices.yaml", "voices"), _yaml_keys("effects.yaml", "effects") or (),
                   _yaml_keys("parody_recipes.yaml", "recipes") or ())

    @property
    def character_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.characters)

    def character(self, cid: str) -> CharacterInfo:
        return next(c for c in self.characters if c.id == cid)

    @property
    def speaking_ids(self) -> tuple[str, ...]:
        if self.voices is None:
            return self.character_ids
        return tuple(c.id for c in self.characters if c.voice in self.voices or c.id in self.voices)

    @property
    def effect_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.effects, *self.recipes)))

    def fingerprint(self) -> str:
        blob = json.dumps([[c.__dict__ for c in self.characters], self.voices, self.effects, self.recipes],
                          sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _yaml_keys(name: str, top: str) -> tuple[str, ...] | None:
    """Keys of `top:` in an optional config owned by another module (absent file → None)."""
    path = config_path(name)
    if not path.exists():
        return None
    data = read_yaml(path) or {}
    section = data.get(top) if isinstance(data, dict) else None
    return tuple(str(k) for k in section) if isinstance(section, dict) else ()


def _literal(values: tuple[str, ...]) -> Any:
    return Literal[values] if values else Literal["__none__"]  # an enum nothing valid can match


@functools.lru_cache(maxsize=16)
def _plan_model(reg: PlanRegistry) -> type[BaseModel]:
    CharacterId = _literal(reg.character_ids)  # noqa: N806 - type aliases
    Speaker = _literal(reg.speaking_ids)  # noqa: N806
    EffectName = _literal(reg.effect_names)  # noqa: N806
    dialogue = create_model("RegistryDialogue", __base__=Dialogue, character=(Speaker, ...))
    shot = create_model("RegistryShot", __base__=Shot,
                        characters=(list[CharacterId], Field(default=[], max_length=3)),
                        dialogue=(dialogue | None, None),
                        effects=(list[EffectName], Field(default=[], max_length=3)))
    return create_model("RegistryPlan", __base__=Plan, characters=(list[CharacterId], []),
                        shots=(list[shot], Field(min_length=1, max_length=MAX_SHOTS)))


def plan_model_from_registry(registry: PlanRegistry | None = None) -> type[BaseModel]:
    """`Plan` with the registry's enums (character ids, voiced speakers, effects); cached per registry."""
    return _plan_model(registry or PlanRegistry.from_configs())


def _format(err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        got = e.get("input")
        got_s = repr(got)[:60] if not isinstance(got, dict | list) else type(got).__name__
        msg = e["msg"]
        if e["type"] == "literal_error":
            msg = msg.replace("Input should be", "must be one of")
        out.append(f"{loc}: {msg} (got {got_s})")
    return out


def validate_plan(data: Plan | dict[str, Any], registry: PlanRegistry | None = None) -> Plan:
    """The gate every plan passes, whatever produced it. Returns the static `Plan` or raises
    `PlanValidationError` listing every problem (fed back to the model by the repair loop)."""
    reg = registry or PlanRegistry.from_configs()
    raw = data.model_dump() if isinstance(data, BaseModel) else data
    try:
        checked = plan_model_from_registry(reg).model_validate(raw)
    except ValidationError as e:
        raise PlanValidationError(_format(e)) from None
    plan = Plan.model_validate(checked.model_dump())
    problems = []
    ids = [s.id for s in plan.shots]
    if ids != list(range(1, len(ids) + 1)):
        problems.append(f"shot ids must be 1..{len(ids)} in order (got {ids})")
    for s in plan.shots:
        if s.dialogue and s.characters and s.dialogue.character not in s.characters:
            problems.append(f"shots.{s.id}.dialogue: speaker '{s.dialogue.character}' is not in the shot "
                            f"(characters {s.characters})")
        if s.source == "footage" and not s.footage_query:
            problems.append(f"shots.{s.id}: source 'footage' needs a footage_query")
        if len(set(s.characters)) != len(s.characters):
            problems.append(f"shots.{s.id}.characters: repeated character")
    missing = sorted({c for s in plan.shots for c in s.characters} - set(plan.characters))
    if missing:
        problems.append(f"characters: plan.characters lacks {missing}, who appear in shots")
    if problems:
        raise PlanValidationError(problems)
    return plan


# ---------------------------------------------------------------------- the LLM's part
def draft_schema(registry: PlanRegistry, n_shots: int, characters: list[str] | None = None,
                 sources: tuple[str, ...] = ("storyboard",), vocab: Any = None,
                 positions: list[int] | None = None, total: int | None = None) -> dict[str, Any]:
    """JSON schema of `submit_plan`'s arguments: exactly `n_shots` shots, every field required.

    `characters` narrows the character enum to those the request names (a tiny model then cannot wander off
    to other characters); speakers are the voiced ones among them. With a `vocab`
    (`studio.agents.vocabulary.Vocabulary`) every text field becomes a choice — `verb` + `object` instead of
    a free `action`, `say` ("speaker: line") instead of speaker + line, places and titles from lists — for
    models too small to write; without one the model writes short free text (bounded by maxLength).
    Structured shots get per-position choices (verbs, lines, shot sizes of their story beat: setup …
    payoff), so a small model cannot copy shot 1 four times. `positions` (1-based, out of `total`) place
    the drafted shots in the story (revision drafts a few shots in the middle of a plan).
    """
    cast = [c for c in (characters or registry.character_ids) if c in registry.character_ids] \
        or list(registry.character_ids)
    speakers = [c for c in cast if c in registry.speaking_ids]
    effects = [*registry.effect_names, NO_EFFECT]
    common = {
        "characters": {"type": "array", "items": {"type": "string", "enum": cast}, "minItems": 1,
                       "maxItems": min(3, len(cast))},
        "emotion": {"type": "string", "enum": list(EMOTIONS)},
        "camera": {"type": "string", "enum": list(SHOT_SIZES)},
        "camera_move": {"type": "string", "enum": list(CAMERA_MOVES)},
    }
    tail: dict[str, Any] = {
        "effect": {"type": "string", "enum": effects},
        "duration": {"type": "number", "enum": list(DRAFT_DURATIONS)},
    }
    if len(sources) > 1:  # a one-option field only costs tokens
        tail["source"] = {"type": "string", "enum": list(sources)}
    if vocab is not None:
        props = {"characters": common["characters"],
                 "verb": {"type": "string", "enum": list(vocab.verbs)},
                 "object": {"type": "string", "enum": list(vocab.objects)},
                 "emotion": common["emotion"], "camera": common["camera"], "camera_move": common["camera_move"],
                 "location": {"type": "string", "enum": list(vocab.places)},
                 "say": {"type": "string", "enum": [ln for ln in vocab.lines
                                                     if ln.split(":", 1)[0] in (*speakers, NO_SPEAKER)]},
                 **tail}
        top = {"title": {"type": "string", "enum": list(vocab.titles)}}
    else:
        props = {**common,
                 "action": {"type": "string", "minLength": 8, "maxLength": ACTION_MAX,
                            "description": "what happens on screen, one short sentence"},
                 "location": {"type": "string", "minLength": 3, "maxLength": LOCATION_MAX},
                 "speaker": {"type": "string", "enum": [*speakers, NO_SPEAKER]},
                 "line": {"type": "string", "maxLength": LINE_MAX, "description": "what the speaker says, or empty"},
                 **tail}
        # llama.cpp's grammar keeps property order: characters first, then what they do.
        props = {k: props[k] for k in ("characters", "action", "emotion", "camera", "camera_move", "location",
                                       "speaker", "line", "effect", "duration", "source") if k in props}
        top = {"title": {"type": "string", "minLength": 3, "maxLength": TITLE_MAX},
               "logline": {"type": "string", "minLength": 10, "maxLength": LOGLINE_MAX}}
    shot = {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
    positions = positions or list(range(1, n_shots + 1))
    per_shot = []
    if vocab is not None:
        from studio.agents.vocabulary import position_choices

        choices = position_choices(vocab, total or n_shots)
        for pos in positions:
            item = json.loads(json.dumps(shot))
            c = choices[pos - 1]
            item["properties"]["verb"]["enum"] = c["verbs"]
            item["properties"]["camera"]["enum"] = c["cameras"]
            item["properties"]["emotion"]["enum"] = c["emotions"]
            item["properties"]["say"]["enum"] = [ln for ln in c["lines"] if ln in props["say"]["enum"]] \
                or props["say"]["enum"][-1:]
            per_shot.append(item)
    else:
        per_shot = [shot] * n_shots
    return {
        "type": "object",
        "properties": {**top, "shots": {"type": "array", "prefixItems": per_shot, "items": False,
                                        "minItems": n_shots, "maxItems": n_shots}},
        "required": [*top, "shots"],
        "additionalProperties": False,
    }


def story_beats(n: int) -> list[str]:
    """Names of the story beats of an n-shot short (setup … payoff)."""
    if n == 1:
        return ["the whole story in one shot"]
    middle = ["the problem appears", "a first attempt", "things get worse", "a new idea", "the big try",
              "a surprise", "a turn"]
    if n == 2:
        return ["the setup", "the payoff"]
    inner = [middle[i % len(middle)] for i in range(n - 3)]
    return ["the setup", *inner, "the climax", "the payoff"]


class DraftShot(BaseModel):
    """Pydantic twin of one draft shot (either style): validated before assembly, with the same limits."""

    characters: list[str] = Field(min_length=1, max_length=3)
    action: str = Field(default="", max_length=ACTION_MAX)
    verb: str = ""
    object: str = ""
    emotion: str
    camera: str
    camera_move: str
    location: str = Field(max_length=LOCATION_MAX)
    speaker: str = NO_SPEAKER
    line: str = Field(default="", max_length=LINE_MAX)
    say: str = ""
    effect: str
    duration: float = Field(ge=MIN_SHOT_S, le=MAX_SHOT_S)
    source: str = ""  # absent when the profile renders one kind of source

    @model_validator(mode="after")
    def _has_action(self) -> DraftShot:
        if not self.action.strip() and not (self.verb and self.object):
            raise ValueError("a shot needs an action (or a verb and an object)")
        if self.say:
            self.speaker, _, self.line = (p.strip() for p in self.say.partition(":"))
            if self.speaker == NO_SPEAKER:
                self.line = ""
        return self


class Draft(BaseModel):
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    logline: str = Field(default="", max_length=LOGLINE_MAX)
    shots: list[DraftShot] = Field(min_length=1, max_length=MAX_SHOTS)


def schema_problems(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Check a value against the subset of JSON schema `draft_schema` uses (type, enum, lengths, items,
    required, additionalProperties). Servers differ in how much of a schema they enforce; this does not."""
    where = path or "(top level)"
    out: list[str] = []
    if "enum" in schema:
        if value not in schema["enum"]:
            shown = ", ".join(map(str, schema["enum"][:24]))
            out.append(f"{where}: {value!r} is not one of: {shown}")
        return out
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        props = schema.get("properties", {})
        out += [f"{where}: missing '{k}'" for k in schema.get("required", []) if k not in value]
        if schema.get("additionalProperties") is False:
            out += [f"{where}: unexpected field '{k}'" for k in value if k not in props]
        for k, sub in props.items():
            if k in value:
                out += schema_problems(value[k], sub, f"{path}.{k}" if path else k)
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        lo, hi = schema.get("minItems", 0), schema.get("maxItems")
        if len(value) < lo or (hi is not None and len(value) > hi):
            out.append(f"{where}: expected {lo}{'' if hi == lo else f' to {hi}'} items, got {len(value)}")
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else schema.get("items", {})
            if sub is False:
                out.append(f"{where}.{i}: no item allowed at this position")
            elif isinstance(sub, dict):
                out += schema_problems(item, sub, f"{where}.{i}")
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected text, got {type(value).__name__}"]
        n = len(value.strip())
        if n < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1 << 30):
            out.append(f"{where}: length {len(value)} is outside {schema.get('minLength', 0)}.."
                       f"{schema.get('maxLength', '')}")
    elif kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        out.append(f"{where}: expected a number, got {type(value).__name__}")
    return out


def parse_draft(args: dict[str, Any], n_shots: int | None = None, schema: dict[str, Any] | None = None) -> Draft:
    """Validate the model's `submit_plan` arguments: against the exact schema it was given (enums from the
    registry, lengths, shot count), then into the `Draft` model."""
    if schema is not None and (problems := schema_problems(args, schema)):
        raise PlanValidationError(problems[:20])
    try:
        draft = Draft.model_validate(args)
    except ValidationError as e:
        raise PlanValidationError(_format(e)) from None
    if n_shots is not None and len(draft.shots) != n_shots:
        raise PlanValidationError([f"shots: expected exactly {n_shots} shots, got {len(draft.shots)}"])
    return draft
