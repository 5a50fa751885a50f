"""The effect library as data: `configs/effects.yaml` declares each effect's kind and parameters (default +
range/choices); `configs/parody_recipes.yaml` names sequences of them. `resolve_effects()` expands recipes and
checks every parameter, so a bad value fails before any rendering with a message naming the effect, the
parameter and the allowed range."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from studio.configs.errors import ConfigError, StudioError, UnknownNameError
from studio.configs.schema import Strict, config_path, load_config


class EffectError(StudioError):
    pass


class UnknownEffectError(UnknownNameError):
    pass


class EffectParamError(EffectError):
    pass


# --------------------------------------------------------------------------- configs
class ParamSpec(Strict):
    kind: Literal["number", "int", "time", "text", "choice"] = "number"
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: list[str] | None = None
    description: str = ""


class EffectDef(Strict):
    kind: Literal["video", "time", "sfx", "transition"]
    description: str = ""
    params: dict[str, ParamSpec] = {}
    sound: str | None = None  # sfx: the procedural generator (default: the effect's name)


class EffectsConfig(Strict):
    effects: dict[str, EffectDef] = Field(min_length=1)


class RecipeStep(Strict):
    effect: str
    params: dict[str, Any] = {}


class ParodyRecipe(Strict):
    description: str = ""
    steps: list[RecipeStep] = Field(min_length=1)


class RecipesConfig(Strict):
    recipes: dict[str, ParodyRecipe] = {}


class EffectUse(BaseModel):
    """An effect or parody recipe named by a shot, with optional parameter overrides."""

    name: str = Field(min_length=1)
    params: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v


@dataclass(frozen=True)
class ResolvedEffect:
    name: str
    kind: str
    params: dict[str, Any]
    recipe: str | None = None


@dataclass(frozen=True)
class EffectLibrary:
    effects: dict[str, EffectDef]
    recipes: dict[str, ParodyRecipe]

    def names(self) -> list[str]:
        return sorted(self.effects) + sorted(self.recipes)

    def resolve(self, uses: list[EffectUse | str | dict]) -> list[ResolvedEffect]:
        out: list[ResolvedEffect] = []
        for raw in uses:
            use = raw if isinstance(raw, EffectUse) else EffectUse.model_validate(raw)
            if use.name in self.effects:
                out.append(self._check(use.name, use.params))
            elif use.name in self.recipes:
                out.extend(self._expand(use))
            else:
                raise UnknownEffectError(
                    f"unknown effect or parody recipe '{use.name}'. Effects: {', '.join(sorted(self.effects))}. "
                    f"Recipes: {', '.join(sorted(self.recipes)) or 'none'}. Add it to configs/effects.yaml or "
                    "configs/parody_recipes.yaml, or pick one of these.")
        return out

    def _expand(self, use: EffectUse) -> list[ResolvedEffect]:
        steps = self.recipes[use.name].steps
        known = {p for s in steps for p in self.effects[s.effect].params}
        known |= {f"{s.effect}.{p}" for s in steps for p in self.effects[s.effect].params}
        for key in use.params:
            if key not in known:
                raise EffectParamError(f"recipe '{use.name}' has no parameter '{key}' "
                                       f"(its steps take: {', '.join(sorted(known))})")
        out = []
        for step in steps:
            params = dict(step.params)
            for key, value in use.params.items():
                eff, _, pname = key.rpartition(".")
                if (eff in ("", step.effect)) and pname in self.effects[step.effect].params:
                    params[pname] = value
            out.append(self._check(step.effect, params, recipe=use.name))
        return out

    def _check(self, name: str, params: dict[str, Any], recipe: str | None = None) -> ResolvedEffect:
        d = self.effects[name]
        where = f"effect '{name}'" + (f" (in recipe '{recipe}')" if recipe else "")
        unknown = set(params) - set(d.params)
        if unknown:
            raise EffectParamError(f"{where} has no parameter {', '.join(sorted(unknown))} "
                                   f"(it takes: {', '.join(d.params) or 'none'})")
        full = {}
        for pname, spec in d.params.items():
            full[pname] = check_param(where, pname, spec, params.get(pname, spec.default))
        return ResolvedEffect(name, d.kind, full, recipe)


_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")


def check_param(where: str, name: str, spec: ParamSpec, value: Any) -> Any:
    if value is None:
        return None
    if spec.kind == "choice":
        if value not in (spec.choices or []):
            raise EffectParamError(f"{where}: '{name}' must be one of {spec.choices}, got {value!r}")
        return value
    if spec.kind == "text":
        return str(value)
    if spec.kind == "time" and isinstance(value, str):
        if value in ("start", "end") or value.isidentifier():
            return value  # a marker, checked when the chain reaches it
        m = _PERCENT.match(value)
        if not m or float(m[1]) > 100:
            raise EffectParamError(f"{where}: '{name}' = {value!r} is not a time: give seconds, 'NN%' (0-100) "
                                   "or a marker (start, end, punch, ramp, ramp_end, freeze, freeze_end)")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EffectParamError(f"{where}: '{name}' must be a number, got {value!r}")
    if spec.kind == "int" and int(value) != value:
        raise EffectParamError(f"{where}: '{name}' must be a whole number, got {value!r}")
    lo, hi = spec.min, spec.max
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise EffectParamError(f"{where}: '{name}' = {value} is out of range [{lo}, {hi}]"
                               + (f" ({spec.description})" if spec.description else ""))
    return int(value) if spec.kind == "int" else float(value)


def load_library() -> EffectLibrary:
    eff_path, rec_path = config_path("effects.yaml"), config_path("parody_recipes.yaml")
    stamp = tuple(p.stat().st_mtime_ns if p.exists() else 0 for p in (eff_path, rec_path))
    return _library(str(eff_path), str(rec_path), stamp)


@functools.lru_cache(maxsize=4)
def _library(eff_path: str, rec_path: str, _stamp: tuple) -> EffectLibrary:
    effects = load_config("effects.yaml", EffectsConfig).effects
    recipes = load_config("parody_recipes.yaml", RecipesConfig, missing_ok=True).recipes
    lib = EffectLibrary(effects, recipes)
    problems = []
    for rname, r in recipes.items():
        if rname in effects:
            problems.append(f"recipe '{rname}' has the name of an effect; rename one of them")
        for i, step in enumerate(r.steps):
            if step.effect not in effects:
                problems.append(f"recipes.{rname}.steps[{i}]: unknown effect '{step.effect}' "
                                f"(known: {', '.join(sorted(effects))})")
                continue
            try:
                lib._check(step.effect, step.params, recipe=rname)
            except EffectError as e:
                problems.append(f"recipes.{rname}.steps[{i}]: {e}")
    if problems:
        raise ConfigError(rec_path, problems)
    return lib


def resolve_effects(uses: list[EffectUse | str | dict]) -> list[ResolvedEffect]:
    return load_library().resolve(uses)
