"""The studio's user-facing errors: each message says what to change. The CLI prints them without a
traceback and exits 2."""

from __future__ import annotations

from pathlib import Path


class StudioError(Exception):
    """Base of every user-facing error: the message says what to change."""


class ConfigError(StudioError):
    def __init__(self, file: Path | str, problems: list[str]):
        self.file = str(file)
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid config {self.file}:\n{lines}")


class UnknownNameError(StudioError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])

