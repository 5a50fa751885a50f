"""The director's tools: a typed allow-list. Nothing a model writes reaches a shell, a path or a function.

A model turn names tools by string; `execute_tool` looks the name up in `TOOLS` (four entries), validates the
arguments with the tool's pydantic model (enums for collections and characters, bounded strings) and runs a
fixed Python function. Unknown names and bad arguments become errors fed back to the model.
`submit_plan` is terminal: the graph validates its arguments as the plan instead of "running" it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from studio.agents.context import DirectorContext
from studio.resources.knowledge.store import COLLECTIONS
from studio.resources.llm.client import tool_spec

SUBMIT_PLAN = "submit_plan"
Collection = Literal[COLLECTIONS]  # type: ignore[valid-type]


class ToolError(Exception):
    """A tool call the graph refuses (unknown tool, bad arguments): reported back to the model."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchKnowledgeArgs(_Args):
    query: str = Field(min_length=1, max_length=300)
    collection: Collection | None = None  # type: ignore[valid-type]
    character: str | None = Field(default=None, max_length=40)
    k: int = Field(default=4, ge=1, le=10)


class NoArgs(_Args):
    pass


@dataclass(frozen=True)
class ToolDef:
    name: str
    description: str
    args: type[BaseModel]
    run: Callable[[Any, DirectorContext], Any] | None  # None: terminal (handled by the graph)


def _search(args: SearchKnowledgeArgs, ctx: DirectorContext) -> list[dict[str, Any]]:
    if ctx.search is None:
        return []
    where = None
    if args.character:
        if args.character not in ctx.registry.character_ids:
            raise ToolError(f"unknown character '{args.character}' (known: {', '.join(ctx.registry.character_ids)})")
        where = {"character": args.character}
    hits = ctx.search(args.query, args.collection, where, args.k)
    return [h.model_dump() if hasattr(h, "model_dump") else dict(h) for h in hits]


def _list_characters(_: NoArgs, ctx: DirectorContext) -> list[dict[str, str]]:
    return [{"id": c.id, "name": c.display_name, "description": c.description,
             "speaks": str(c.id in ctx.registry.speaking_ids).lower()} for c in ctx.registry.characters]


def _list_effects(_: NoArgs, ctx: DirectorContext) -> dict[str, list[str]]:
    return {"effects": list(ctx.registry.effects), "parody_recipes": list(ctx.registry.recipes)}


TOOLS: dict[str, ToolDef] = {
    "search_knowledge": ToolDef("search_knowledge", "Search the studio's knowledge (characters, style guide, "
                                "past shorts, film scenes).", SearchKnowledgeArgs, _search),
    "list_characters": ToolDef("list_characters", "List the characters a plan may use.", NoArgs, _list_characters),
    "list_effects": ToolDef("list_effects", "List the effect and parody recipe names a shot may use.", NoArgs,
                            _list_effects),
    SUBMIT_PLAN: ToolDef(SUBMIT_PLAN, "Submit the finished plan of the short.", NoArgs, None),
}


def tool_specs(submit_parameters: dict[str, Any], include_helpers: bool = True) -> list[dict[str, Any]]:
    """OpenAI tool specs: submit_plan (its schema built per request) first, then the helpers."""
    specs = [tool_spec(SUBMIT_PLAN, TOOLS[SUBMIT_PLAN].description, submit_parameters)]
    if include_helpers:
        for t in TOOLS.values():
            if t.run is not None:
                specs.append(tool_spec(t.name, t.description, t.args.model_json_schema()))
    return specs


def execute_tool(name: str, arguments: str | dict[str, Any], ctx: DirectorContext) -> str:
    """Run one allowed helper tool; returns its JSON result for a `tool` message."""
    tool = TOOLS.get(name)
    if tool is None:
        raise ToolError(f"tool '{name}' is not allowed; the tools are {', '.join(TOOLS)}")
    if tool.run is None:
        raise ToolError(f"'{name}' is not executed; it submits the plan")
    try:
        raw = json.loads(arguments) if isinstance(arguments, str) else arguments
        args = tool.args.model_validate(raw or {})
    except (json.JSONDecodeError, ValidationError) as e:
        raise ToolError(f"bad arguments for '{name}': {str(e)[:300]}") from None
    result = tool.run(args, ctx)
    ctx.tool_log.append({"tool": name, "args": args.model_dump()})
    return json.dumps(result, default=str)[:6000]
