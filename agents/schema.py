"""The plan schema built from the live registry, and the one gate every plan passes: `validate_plan()`.

Two shapes come from the registry (characters.yaml, character_voices.yaml, effects.yaml, parody_recipes.yaml):

- `plan_model_from_registry()`: the full `Plan` with enums for character ids, speaking characters (those with
  a voice), effect names and shot types; `validate_plan()` checks any plan against it plus cross-field rules.
- `draft_schema()`: the JSON schema of the `submit_plan` tool the LLM fills with constrained decoding, built
  from the story's shot briefs (`studio.agents.story`): choices only for a small model, short free text for a
  large one. `studio.agents.assemble` turns the draft into the plan.

Nothing numeric is left to the model: llama.cpp's grammar ignores numeric min/max.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, create_model

from studio.agents.registry import PlanRegistry
from studio.configs.errors import StudioError
from studio.configs.vocabulary import (
    EMOTIONS,
    MAX_SHOTS,
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
NO_EFFECT = "none"

# Draft string limits: short enough that a 135M model stays on topic, long enough for a 7B model to say something.
TITLE_MAX, LOGLINE_MAX, ACTION_MAX, LOCATION_MAX, LINE_MAX = 48, 160, 100, 40, 90


class PlanValidationError(StudioError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("the plan is not valid:\n" + "\n".join(f"  - {p}" for p in problems))


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
def draft_schema(story: Any, registry: PlanRegistry, free: bool = False,
                 sources: tuple[str, ...] = ("storyboard",)) -> dict[str, Any]:
    """JSON schema of `submit_plan`'s arguments: one item per brief of `story` (`studio.agents.story.Story`).

    Structured (small models): every field is a choice among the brief's options (verb, camera, emotion,
    line) and fields with a single option are left out — the less a 135M model writes, the faster and the
    fewer its mistakes. Free (7B+): a short free `action` and `line` per shot, the brief's options as enums
    for camera and emotion. Numbers are never asked for: llama.cpp's grammar ignores numeric min/max.
    """
    items = []
    for b in story.briefs:
        if free:
            props: dict[str, Any] = {
                "action": {"type": "string", "minLength": 8, "maxLength": ACTION_MAX},
                "line": {"type": "string", "maxLength": LINE_MAX},
                "camera": {"type": "string", "enum": list(SHOT_SIZES)},
                "camera_move": {"type": "string", "enum": list(CAMERA_MOVES)},
                "emotion": {"type": "string", "enum": list(EMOTIONS)},
                "effect": {"type": "string", "enum": [*registry.effect_names, NO_EFFECT]},
            }
        else:
            props = {}
            for key, options in (("verb", b.verbs), ("camera", b.cameras), ("emotion", b.emotions),
                                 ("line", b.lines)):
                if len(options) > 1:
                    props[key] = {"type": "string", "enum": list(options)}
        if len(sources) > 1:
            props["source"] = {"type": "string", "enum": list(sources)}
        items.append({"type": "object", "properties": props, "required": list(props), "additionalProperties": False})
    top: dict[str, Any] = ({"title": {"type": "string", "minLength": 3, "maxLength": TITLE_MAX},
                            "logline": {"type": "string", "minLength": 10, "maxLength": LOGLINE_MAX}} if free
                           else {"title": {"type": "string", "enum": list(story.titles)}})
    n = len(items)
    return {"type": "object",
            "properties": {**top, "shots": {"type": "array", "prefixItems": items, "items": False, "minItems": n,
                                            "maxItems": n}},
            "required": [*top, "shots"], "additionalProperties": False}


class DraftShot(BaseModel):
    """One drafted shot, either style: the model's choices (missing ones take the brief's first option)."""

    verb: str | None = None
    action: str = Field(default="", max_length=ACTION_MAX)
    camera: str | None = None
    camera_move: str | None = None
    emotion: str | None = None
    line: str | None = Field(default=None, max_length=LINE_MAX)
    effect: str | None = None
    source: str | None = None


class Draft(BaseModel):
    title: str = ""
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
