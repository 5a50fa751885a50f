"""Text on pictures: the caption font and text rendered to transparent PNGs for overlays."""

from __future__ import annotations

import os
from pathlib import Path

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/System/Library/Fonts/Supplemental/Arial Bold.ttf",
    "C:/Windows/Fonts/arialbd.ttf",
)


def find_font(explicit: str | None = None) -> str | None:
    """A TrueType font for captions: explicit, else `STUDIO_FONT`, else a system DejaVu; None means the
    font bundled in Pillow (`ImageFont.load_default`), so captions never depend on a download."""
    for cand in (explicit, os.environ.get("STUDIO_FONT"), *FONT_CANDIDATES):
        if cand and Path(cand).is_file():
            return cand
    return None
