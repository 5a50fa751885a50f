"""Text on pictures: the caption font and text rendered to transparent PNGs for overlays."""

from __future__ import annotations

import hashlib
import os
import textwrap
from pathlib import Path
from typing import Literal

from studio.resources.runtime.files import atomic_path

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


# --------------------------------------------------------------------------- text
def render_text_png(text: str, width: int, size_px: int, style: Literal["caption", "subtitle"], folder: Path,
                    font: str | None = None) -> tuple[Path, int]:
    """Text as an RGBA PNG as wide as the frame (captions: outlined; subtitles: on a translucent band), in
    `font` (a file; None: the system default, see `find_font`). The name is the hash of what is drawn."""
    from PIL import Image, ImageDraw, ImageFont

    font_path = find_font(font)
    size_px = max(10, size_px)
    fnt = ImageFont.truetype(font_path, size_px) if font_path else ImageFont.load_default(size=size_px)
    avg_char = max(1.0, fnt.getlength("abcdefghijklmnopqrstuvwxyz") / 26)
    lines = textwrap.wrap(text, width=max(8, int(width * 0.9 / avg_char))) or [text]
    stroke = max(1, size_px // 12) if style == "caption" else 0
    line_h = int(size_px * 1.25) + 2 * stroke
    pad = int(size_px * 0.3)
    h = line_h * len(lines) + 2 * pad
    h += h % 2
    img = Image.new("RGBA", (width, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    if style == "subtitle":
        widest = max(draw.textlength(s, font=fnt) for s in lines)
        x0 = int((width - widest) / 2) - pad
        draw.rectangle([max(0, x0), 0, min(width, width - x0), h], fill=(0, 0, 0, 150))
    for i, line in enumerate(lines):
        w = draw.textlength(line, font=fnt)
        draw.text(((width - w) / 2, pad + i * line_h), line, font=fnt, fill=(255, 255, 255, 255),
                  stroke_width=stroke, stroke_fill=(0, 0, 0, 255))
    digest = hashlib.sha256(f"{style}|{width}|{size_px}|{font_path}|{text}".encode()).hexdigest()[:16]
    path = folder / f"{style}-{digest}.png"
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path, h
