"""Subtitles: SRT cues written and parsed strictly, and cues made from a voice line's timing sidecar."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from studio.configs.errors import StudioError
from studio.resources.runtime.files import write_bytes_atomic


class SubtitleError(StudioError):
    pass


# --------------------------------------------------------------------------- the spec
class SubtitleCue(BaseModel):
    start: float = Field(ge=0)
    end: float = Field(gt=0)
    text: str = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> SubtitleCue:
        if self.end <= self.start:
            raise ValueError(f"subtitle ends ({self.end:.3f} s) before it starts ({self.start:.3f} s)")
        return self


# --------------------------------------------------------------------------- SRT
_TS = r"(\d{1,2}):(\d{2}):(\d{2})[,.](\d{3})"


_TIMING = re.compile(rf"^\s*{_TS}\s*-->\s*{_TS}\s*$")


def _srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")


def srt_text(text: str) -> str:
    """A cue body that cannot start another cue: no blank lines (they end a cue), no control characters and no
    `-->` (a timing line inside the text would be a new cue to lenient players)."""
    lines = (_CONTROL.sub(" ", ln).replace("-->", "→").strip() for ln in text.replace("\r", "\n").split("\n"))
    return "\n".join(ln for ln in lines if ln) or "…"


def write_srt(cues: Sequence[SubtitleCue], path: Path | str) -> Path:
    """Write the cues as SRT (cue text made safe by `srt_text`; unique temp file, then rename)."""
    path = Path(path)
    blocks = [f"{i}\n{_srt_time(c.start)} --> {_srt_time(c.end)}\n{srt_text(c.text)}\n"
              for i, c in enumerate(sorted(cues, key=lambda c: c.start), 1)]
    write_bytes_atomic(path, "\n".join(blocks).encode("utf-8"))
    return path


def parse_srt(source: Path | str) -> list[SubtitleCue]:
    """Parse SRT text or a file; raise SubtitleError naming the line of the first bad block."""
    p = Path(source) if not isinstance(source, str) or "\n" not in source else None
    if p is not None and not p.is_file():
        raise SubtitleError(f"subtitle file not found: {p}")
    text = p.read_text(encoding="utf-8-sig") if p else str(source)
    where = str(p) if p else "SRT text"
    cues: list[SubtitleCue] = []
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        block_line = i + 1
        if lines[i].strip().isdigit():
            i += 1
        if i >= len(lines):
            raise SubtitleError(f"{where}, line {block_line}: cue number with no timing line")
        m = _TIMING.match(lines[i])
        if not m:
            raise SubtitleError(f"{where}, line {i + 1}: bad timing line {lines[i]!r}; expected "
                                "'HH:MM:SS,mmm --> HH:MM:SS,mmm'")
        g = [int(x) for x in m.groups()]
        if g[2] > 59 or g[1] > 59 or g[6] > 59 or g[5] > 59:
            raise SubtitleError(f"{where}, line {i + 1}: minutes/seconds above 59 in {lines[i]!r}")
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        if end <= start:
            raise SubtitleError(f"{where}, line {i + 1}: the cue ends ({_srt_time(end)}) at or before it starts "
                                f"({_srt_time(start)})")
        i += 1
        body = []
        while i < len(lines) and lines[i].strip():
            body.append(lines[i].strip())
            i += 1
        if not body:
            raise SubtitleError(f"{where}, line {block_line}: cue with no text")
        cues.append(SubtitleCue(start=start, end=end, text="\n".join(body)))
    return cues


def cues_from_voice_timing(timing: dict, offset: float = 0.0, min_len: float = 0.8) -> list[SubtitleCue]:
    """Subtitle cues from a voice line's timing sidecar (`sentences` with start/end/text, as the voice stage
    writes them): on the preview profile this — not fake lip sync — is what ties text to speech.
    Each cue lasts at least `min_len` seconds so short sentences stay readable."""
    cues: list[SubtitleCue] = []
    for s in timing.get("sentences", []):
        text = s.get("text", "").strip()
        if not text or s["end"] <= s["start"]:
            continue
        if cues and text[:1].islower():  # "Almost... got it!": the voice pauses, the subtitle reads on
            cues[-1].text = f"{cues[-1].text} {text}"
            cues[-1].end = offset + max(s["end"], cues[-1].start - offset + min_len)
            continue
        cues.append(SubtitleCue(start=offset + s["start"], end=offset + max(s["end"], s["start"] + min_len),
                                text=text))
    for a, b in zip(cues, cues[1:], strict=False):  # never overlap the next sentence
        a.end = min(a.end, b.start) if b.start > a.start else a.end
    return cues
