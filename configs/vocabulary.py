"""The plan of a short: what the director produces and every later stage consumes.

The shot description (who, what, where, action verb, target, things, emotion, camera) is the contract between
the director and both profiles' renderers: the preview cut-out animator moves `characters` and `things` by
`verb` towards or away from `target`; the gpu profile prompts SDXL with the same fields.

These are the *static* shapes. `studio.agents.schema.plan_model_from_registry()` builds the constrained
variant for decoding, where character names, voices, effects and shot types become enums from the live
registry; every plan, whatever its source, is validated again with `validate_plan()` there.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

Source = Literal["generate", "footage", "storyboard"]
ShotSize = Literal["wide", "medium", "close-up", "extreme-close-up"]
CameraMove = Literal["static", "pan-left", "pan-right", "tilt-up", "tilt-down", "push-in", "pull-out"]
TimeOfDay = Literal["dawn", "day", "sunset", "night"]
Weather = Literal["clear", "cloudy", "rain", "snow", "storm", "fog", "wind"]
Emotion = Literal["neutral", "happy", "excited", "sad", "angry", "scared", "determined", "surprised", "curious"]
EMOTIONS: tuple[str, ...] = Emotion.__args__  # type: ignore[attr-defined]

def one_line(text: str) -> str:
    """Refuse control characters and line breaks (they would inject subtitle cues or break prompts and files):
    plan text is one line of printable characters."""
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in "\u202a\u202b\u202c\u202d\u202e":
            raise ValueError(f"contains the control character {ch!r} (a line break, tab or escape): write it as "
                             "one line of plain text")
    return text


OneLine = Annotated[str, AfterValidator(one_line)]

MIN_SHOT_S = 1.5
MAX_SHOT_S = 12.0
MAX_SHOTS = 24
MAX_REQUEST_CHARS = 100_000  # a paragraph is plenty: the knowledge base holds the details


class Dialogue(BaseModel):
    character: str = Field(max_length=40)  # character id from configs/characters.yaml
    line: OneLine = Field(min_length=1, max_length=240)
    emotion: Emotion = "neutral"
    intensity: float = Field(default=0.5, ge=0.0, le=1.0)


class Shot(BaseModel):
    id: int = Field(ge=1)
    source: Source = "storyboard"
    characters: list[str] = Field(default=[], max_length=3)  # character ids
    action: OneLine = Field(min_length=1, max_length=200)
    emotion: Emotion = "neutral"
    location: str = Field(default="", max_length=80)
    time_of_day: TimeOfDay = "day"
    camera: ShotSize = "medium"
    camera_move: CameraMove = "static"
    duration: float = Field(default=4.0, ge=MIN_SHOT_S, le=MAX_SHOT_S)
    dialogue: Dialogue | None = None
    effects: list[str] = Field(default=[], max_length=3)  # effect or parody-recipe names
    footage_query: str | None = Field(default=None, max_length=120)  # for source == "footage"
    # Structured action (filled by the director from the request's intent; optional so older plans still load):
    verb: str | None = Field(default=None, max_length=40)  # lemma or phrasal verb: "chase", "run away from"
    target: str | None = Field(default=None, max_length=60)  # a character id or one of `things`
    things: list[str] = Field(default=[], max_length=6)  # nouns on screen that are not characters: "butterfly"
    weather: Weather = "clear"
    exaggeration: float = Field(default=1.0, ge=1.0, le=3.0)  # expression factor (e.g. 2.5 on a climax beat)


class Plan(BaseModel):
    title: OneLine = Field(min_length=1, max_length=80)
    logline: OneLine = Field(default="", max_length=240)
    characters: list[str] = []
    shots: list[Shot] = Field(min_length=1, max_length=MAX_SHOTS)

    @property
    def total_duration(self) -> float:
        return sum(s.duration for s in self.shots)
