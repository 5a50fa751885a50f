"""Shared drawing helpers of the storyboard renderer: fonts, text wrapping, colours, gradients, PNG output.

Shapes are drawn at `SS`× and downsampled (Pillow draws without anti-aliasing).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageFont

from studio.resources.runtime.files import atomic_path

SS = 2  # supersampling factor for shapes
_FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu")]
TINT = {"dawn": (1.0, 0.93, 0.92), "day": (1.0, 1.0, 1.0), "sunset": (1.06, 0.84, 0.7),
        "night": (0.34, 0.4, 0.62)}


# --------------------------------------------------------------------------- fonts
@functools.cache
def _font_file(style: str) -> Path | None:
    name = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "italic": "DejaVuSans-Oblique.ttf"}[style]
    return next((d / name for d in _FONT_DIRS if (d / name).exists()), None)


_FONTS = threading.local()  # FreeType faces are not shared between threads (Prefect runs tasks in threads)


def font(size: int, style: str = "regular") -> ImageFont.FreeTypeFont:
    """DejaVu (Debian fonts-dejavu-core) when present, else Pillow's bundled scalable default font."""
    cache = _FONTS.__dict__.setdefault("fonts", {})
    if (size, style) not in cache:
        path = _font_file(style)
        cache[(size, style)] = ImageFont.truetype(str(path), size) if path else ImageFont.load_default(size=size)
    return cache[(size, style)]


def font_tag() -> str:
    return "dejavu" if _font_file("regular") else "pillow-default"


def wrap(text: str, fnt: ImageFont.FreeTypeFont, width: float, max_lines: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        trial = f"{cur} {w}".strip()
        if fnt.getlength(trial) <= width or not cur:
            cur = trial
        else:
            lines.append(cur)
            cur = w
    if cur:
        lines.append(cur)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        while lines[-1] and fnt.getlength(lines[-1] + "…") > width:
            lines[-1] = lines[-1][:-1]
        lines[-1] = lines[-1].rstrip() + "…"
    return lines


# --------------------------------------------------------------------------- colours
def _tint(rgb: tuple[int, ...], tod: str) -> tuple[int, int, int]:
    t = TINT[tod]
    return tuple(max(0, min(255, int(c * k))) for c, k in zip(rgb[:3], t, strict=True))  # type: ignore


def _hex(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    try:
        return tuple(int(color[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    except ValueError:
        return (74, 123, 208)


def _shade(rgb: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, int(c * k))) for c in rgb)  # type: ignore[return-value]


def _gradient(w: int, h: int, top: tuple, bottom: tuple) -> Image.Image:
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    arr = (np.array(top)[None, None, :] * (1 - t) + np.array(bottom)[None, None, :] * t)
    return Image.fromarray(np.repeat(arr, w, axis=1).astype(np.uint8))



def save_png(img: Image.Image, path: Path, text: dict[str, str] | None = None) -> None:
    """PNG with no timestamp chunk (Pillow writes none unless asked), so same pixels → same bytes."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", pnginfo=info, compress_level=6)

