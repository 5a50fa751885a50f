"""One client for any OpenAI-compatible chat endpoint: llama.cpp's server, vLLM, or a remote service.

Structured output is where servers differ: llama-cpp-python's server takes
`response_format={"type": "json_object", "schema": ...}`, vLLM takes OpenAI's `{"type": "json_schema", ...}`.
Both turn a *forced tool call* (`tool_choice` naming one function) into constrained decoding over the tool's
parameter schema, so `call_tool()` is the portable way to get schema-shaped JSON; `chat_json()` uses the
server's own response_format dialect.

Plain httpx, not the `openai` SDK: one small dependency, and errors we can word for the user.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from studio.configs.errors import StudioError
from studio.configs.schema import ModelEntry
from studio.resources.runtime.metrics import record_llm_call

FormatStyle = Literal["llama-cpp", "openai"]


class LLMError(StudioError):
    """The LLM endpoint failed in a way the user must act on."""


class LLMUnavailableError(LLMError):
    """Nobody answers at the endpoint (server down, wrong port)."""


class LLMOutputError(LLMError):
    """The model answered, but not with what was asked (no tool call, unparsable JSON)."""

    def __init__(self, message: str, raw: str = ""):
        super().__init__(message)
        self.raw = raw


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model produced it

    def parsed(self) -> dict[str, Any]:
        try:
            # strict=False: llama.cpp's string grammar lets raw newlines into strings; they are harmless here.
            value = json.loads(self.arguments, strict=False)
        except json.JSONDecodeError as e:
            raise LLMOutputError(f"the arguments of tool call '{self.name}' are not valid JSON ({e.msg} at "
                                 f"char {e.pos}): {self.arguments[:200]!r}", self.arguments) from None
        if not isinstance(value, dict):
            raise LLMOutputError(f"the arguments of tool call '{self.name}' are a {type(value).__name__}, "
                                 "not a JSON object", self.arguments)
        return value


@dataclass
class ChatTurn:
    """One assistant reply."""

    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_message(self) -> dict[str, Any]:
        """The reply as a message to append to the conversation (for repair turns)."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.content or ""}
        if self.tool_calls:
            msg["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}} for c in self.tool_calls]
        return msg


def tool_spec(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


def json_response_format(schema: dict[str, Any], name: str, style: FormatStyle) -> dict[str, Any]:
    if style == "llama-cpp":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


class OpenAICompatibleClient:
    """Chat completions against `base_url` (ending in `/v1`)."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 300.0,
                 style: FormatStyle = "openai", extra_body: dict[str, Any] | None = None,
                 isolate_prompts: bool = False):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.style = style
        self.timeout_s = timeout_s
        self.extra_body = dict(extra_body or {})
        # llama-cpp-python's server reuses the KV cache of the longest prefix shared with the previous
        # request and evaluates only the rest: the logits then depend on what was asked before (another batch
        # split), and so does a seeded sample. With isolate_prompts every chat is preceded by a one-token
        # completion that shares no prefix with it, so every prompt is evaluated the same way from scratch.
        # (llama.cpp's own llama-server takes `cache_prompt: false` in the body instead: use extra_body.)
        self.isolate_prompts = isolate_prompts
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    # ------------------------------------------------------------------ transport
    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            r = httpx.post(url, json=payload, headers=self._headers, timeout=self.timeout_s)
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            raise LLMUnavailableError(f"no LLM server answers at {self.base_url} ({e.__class__.__name__}). "
                                      "Start it with `studio llm start` or fix the endpoint in "
                                      "configs/models.yaml.") from None
        except httpx.TimeoutException:
            raise LLMUnavailableError(f"the LLM server at {self.base_url} did not answer within "
                                      f"{self.timeout_s:.0f}s; it may be overloaded — retry, or lower the "
                                      "number of shots") from None
        except httpx.HTTPError as e:
            raise LLMUnavailableError(f"talking to the LLM server at {self.base_url} failed: {e}") from None
        if r.status_code >= 400:
            raise LLMError(f"the LLM server at {self.base_url} rejected the request (HTTP {r.status_code}): "
                           f"{r.text[:300]}")
        try:
            return r.json()
        except ValueError:
            raise LLMOutputError(f"the LLM server at {self.base_url} sent a reply that is not JSON: "
                                 f"{r.text[:200]!r}", r.text) from None

    def health(self, timeout_s: float = 2.0) -> bool:
        try:
            r = httpx.get(f"{self.base_url}/models", headers=self._headers, timeout=timeout_s)
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    def served_models(self, timeout_s: float = 5.0) -> list[str]:
        try:
            r = httpx.get(f"{self.base_url}/models", headers=self._headers, timeout=timeout_s)
            r.raise_for_status()
            return [m.get("id", "") for m in r.json().get("data", [])]
        except (httpx.HTTPError, ValueError):
            return []

    # ------------------------------------------------------------------ chat
    def chat(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
             tool_choice: str | dict[str, Any] | None = None, response_format: dict[str, Any] | None = None,
             temperature: float = 0.2, max_tokens: int | None = None, seed: int | None = None,
             **extra: Any) -> ChatTurn:
        payload: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": temperature,
                                   **self.extra_body, **extra}
        if tools:
            payload["tools"] = tools
        if tool_choice is not None:
            payload["tool_choice"] = tool_choice
        if response_format is not None:
            payload["response_format"] = response_format
        if max_tokens is not None:
            payload["max_tokens"] = max_tokens
        if seed is not None:
            payload["seed"] = seed
        t0 = time.perf_counter()
        if self.isolate_prompts:
            self._post("/completions", {"model": self.model, "prompt": "\n", "max_tokens": 1, "temperature": 0.0})
        data = self._post("/chat/completions", payload)
        seconds = time.perf_counter() - t0
        record_llm_call(self.model, int((data.get("usage") or {}).get("completion_tokens") or 0), seconds)
        try:
            choice = data["choices"][0]
            msg = choice.get("message") or {}
        except (KeyError, IndexError, TypeError):
            raise LLMOutputError(f"the LLM server sent no choices: {json.dumps(data)[:200]}") from None
        calls = []
        for i, c in enumerate(msg.get("tool_calls") or []):
            fn = c.get("function") or {}
            args = fn.get("arguments", "")
            calls.append(ToolCall(id=c.get("id") or f"call_{i}", name=fn.get("name", ""),
                                  arguments=args if isinstance(args, str) else json.dumps(args)))
        return ChatTurn(content=msg.get("content"), tool_calls=calls, finish_reason=choice.get("finish_reason"),
                        usage=data.get("usage") or {}, seconds=seconds)

    def call_tool(self, messages: list[dict[str, Any]], tool: dict[str, Any], *,
                  other_tools: list[dict[str, Any]] | None = None, **kw: Any) -> tuple[dict[str, Any], ChatTurn]:
        """Force a call of `tool` (constrained decoding over its parameters) and return its parsed arguments."""
        name = tool["function"]["name"]
        turn = self.chat(messages, tools=[tool, *(other_tools or [])],
                         tool_choice={"type": "function", "function": {"name": name}}, **kw)
        call = next((c for c in turn.tool_calls if c.name == name), None)
        if call is None:
            raise LLMOutputError(f"the model did not call '{name}' (finish_reason={turn.finish_reason}); it "
                                 f"wrote: {(turn.content or '')[:200]!r}", turn.content or "")
        return call.parsed(), turn

    def chat_json(self, messages: list[dict[str, Any]], schema: dict[str, Any], name: str = "output",
                  **kw: Any) -> dict[str, Any]:
        """Schema-constrained JSON via the server's response_format dialect."""
        turn = self.chat(messages, response_format=json_response_format(schema, name, self.style), **kw)
        text = turn.content or ""
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise LLMOutputError(f"the model's reply is not valid JSON ({e.msg}): {text[:200]!r}", text) from None
        if not isinstance(value, dict):
            raise LLMOutputError(f"the model's reply is a {type(value).__name__}, not a JSON object", text)
        return value


class OpenAICompatibleEndpoint:
    """An endpoint the studio does not manage (a shared vLLM, a hosted API): `options.base_url` in models.yaml.

    options: base_url (required), api_key_env (name of an env var holding the key), style (openai|llama-cpp),
    served_model (model name to send; default: source or the registry name), timeout_s.
    """

    managed = False

    def __init__(self, name: str, entry: ModelEntry):
        self.name = name
        self.entry = entry
        self.heavy = False  # someone else's GPU: no local slot to take
        self.model_id = f"{entry.source or name}@{entry.revision or 'default'}"
        base = entry.options.get("base_url")
        if not base:
            raise LLMError(f"model '{name}' uses backend 'openai-compatible' but has no options.base_url in "
                           "configs/models.yaml (e.g. http://gpu-host:8000/v1)")
        self.base_url = str(base).rstrip("/")

    def client(self) -> OpenAICompatibleClient:
        import os

        key_env = self.entry.options.get("api_key_env")
        return OpenAICompatibleClient(self.base_url, self.entry.options.get("served_model") or self.entry.source
                                      or self.name, api_key=os.environ.get(key_env) if key_env else None,
                                      style=self.entry.options.get("style", "openai"),
                                      timeout_s=float(self.entry.options.get("timeout_s", 300)))

    def ensure_running(self) -> OpenAICompatibleClient:
        c = self.client()
        if not c.health():
            raise LLMUnavailableError(f"the LLM endpoint '{self.name}' at {self.base_url} does not answer; "
                                      "it is not managed by the studio — start it where it runs, or switch "
                                      "profile")
        return c
