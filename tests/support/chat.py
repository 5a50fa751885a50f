"""A scripted fake chat model for graph tests: it replays tool calls."""

from __future__ import annotations

import json

from studio.resources.llm.client import ChatTurn, ToolCall


def shot(**kw) -> dict:
    d = {"characters": ["luca"], "action": "Luca stares at the endless sea", "emotion": "curious", "camera": "wide",
         "camera_move": "static", "location": "the shore", "speaker": "luca", "line": "So much water!",
         "effect": "none", "duration": 3}
    d.update(kw)
    return d



class ScriptedChat:
    """Replays prepared assistant turns and records what the graph sent."""

    def __init__(self, turns: list[ChatTurn | Exception]):
        self.turns = list(turns)
        self.calls: list[dict] = []

    def invoke(self, messages, *, tools, tool_choice, seed=None):
        self.calls.append({"messages": json.loads(json.dumps(messages)), "tools": tools, "tool_choice": tool_choice,
                           "seed": seed})
        if not self.turns:
            raise AssertionError("the graph asked the model more often than scripted")
        turn = self.turns.pop(0)
        if isinstance(turn, Exception):
            raise turn
        return turn


def draft(n: int = 4, **shot_kw) -> dict:
    return {"title": "First Sight", "logline": "Luca sees the sea for the first time.",
            "shots": [shot(action=f"Luca does thing number {i}", **shot_kw) for i in range(1, n + 1)]}


def submit(args: dict | str, call_id: str = "c1") -> ChatTurn:
    text = args if isinstance(args, str) else json.dumps(args)
    return ChatTurn(content=None, tool_calls=[ToolCall(call_id, "submit_plan", text)])

