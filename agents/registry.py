"""What a plan may name, read from the configs at one moment: characters (ids, names, aliases), voices,
effects and parody recipes. Its fingerprint is part of every plan's recipe: a registry change plans again."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from studio.configs.schema import config_path, read_yaml, studio_config


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
