"""What the director graph runs with but does not checkpoint: the chat model, retrieval, limits.

`ChatModel` is the one seam between the graph and an LLM: the real one wraps the OpenAI-compatible client;
tests pass a scripted fake (as LangGraph's own tests do), so graph logic is tested without a server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from studio.agents.schema import PlanRegistry
from studio.configs.schema import config_path, validate_file
from studio.resources.llm.client import ChatTurn, OpenAICompatibleClient


class ChatModel(Protocol):
    def invoke(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]],
               tool_choice: str | dict[str, Any], seed: int | None = None) -> ChatTurn: ...


@dataclass
class EndpointChatModel:
    """A ChatModel over an OpenAI-compatible endpoint (llama.cpp, vLLM)."""

    client: OpenAICompatibleClient
    temperature: float = 0.3
    max_tokens: int = 2048
    sampling: dict[str, float] = field(default_factory=dict)  # presence/frequency penalties, top_p

    def invoke(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]],
               tool_choice: str | dict[str, Any], seed: int | None = None) -> ChatTurn:
        return self.client.chat(messages, tools=tools, tool_choice=tool_choice, temperature=self.temperature,
                                max_tokens=self.max_tokens, seed=seed, **self.sampling)


class RevisionConfig(BaseModel):
    threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    max_iterations: int = Field(default=2, ge=0, le=10)


class WorldConfig(BaseModel):
    """A film world of the knowledge pack: its characters, default places and words that point to it."""

    characters: list[str]
    places: list[str] = []  # where a short is set when the request names no place
    keywords: list[str] = []  # lemmas that suggest this world when the request names no character


class DirectorConfig(BaseModel):
    """configs/director.yaml (optional; these are the defaults)."""

    max_repair_attempts: int | None = Field(default=None, ge=0, le=10)  # None: settings.llm.max_repair_attempts
    max_tool_rounds: int = Field(default=0, ge=0, le=6)  # tool calls (search, list) before submit_plan is forced
    # structured: text fields are choices from lists (small models); free: short free text (7B+); auto:
    # structured on the preview profile, free on gpu.
    draft_style: Literal["auto", "structured", "free"] = "auto"
    retrieve_k: int = Field(default=4, ge=0, le=12)
    snippet_chars: int = Field(default=280, ge=40, le=2000)
    temperature: float = Field(default=0.3, ge=0.0, le=2.0)
    max_tokens: int = Field(default=2048, ge=64)
    # OpenAI-standard sampling options both llama.cpp and vLLM accept (penalties curb a small model's repeats).
    sampling: dict[str, float] = {"presence_penalty": 0.0, "frequency_penalty": 0.0}
    revision: RevisionConfig = RevisionConfig()
    # Collective words of requests ("the squirrels") → character ids; plural keys, singular forms match too.
    groups: dict[str, list[str]] = {}
    worlds: dict[str, WorldConfig] = {}


def load_director_config() -> DirectorConfig:
    path = config_path("director.yaml")
    return validate_file(path, DirectorConfig) if path.exists() else DirectorConfig()


SearchFn = Callable[[str, str | None, dict[str, Any] | None, int], list[Any]]


@dataclass
class DirectorContext:
    chat: ChatModel
    registry: PlanRegistry
    search: SearchFn | None = None  # KnowledgeBase.search-like; None: plan without retrieval
    config: DirectorConfig = field(default_factory=DirectorConfig)
    max_repair_attempts: int = 3
    sources: tuple[str, ...] = ("storyboard",)  # shot sources this profile can render
    structured: bool = False  # draft text fields as choices (see DirectorConfig.draft_style)
    tool_log: list[dict[str, Any]] = field(default_factory=list)  # every tool the graph executed
