"""Title and end cards: a still on a dark gradient (the title, a few wrapped lines) faded in and out, encoded
like an animated shot (a lossless clip) so the segment stage treats it as one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from studio.resources.image.storyboard.draw import font, wrap
from studio.resources.video.animation import pipe_frames_to_clip


def card_frame(W: int, H: int, title: str, lines: list[str], end: bool = False) -> Image.Image:
    """A title card (the short's title and logline) or an end card (credits and licences)."""
    top, bottom = ((18, 20, 36), (60, 44, 88)) if not end else ((10, 10, 14), (30, 32, 44))
    t = np.linspace(0, 1, H)[:, None, None]
    arr = np.array(top)[None, None] * (1 - t) + np.array(bottom)[None, None] * t
    img = Image.fromarray(np.repeat(arr, W, axis=1).astype(np.uint8))
    d = ImageDraw.Draw(img)
    ft = font(max(12, int(H / (9 if not end else 12))), "bold")
    y = H * (0.36 if not end else 0.2)
    for line in wrap(title, ft, W * 0.86, 2):
        d.text((W / 2, y), line, font=ft, fill=(255, 214, 96), anchor="mm")
        y += ft.size * 1.25
    fl = font(max(9, int(H / (22 if not end else 34))))
    y += fl.size
    for text in lines:
        for line in wrap(text, fl, W * 0.86, 3):
            d.text((W / 2, y), line, font=fl, fill=(226, 228, 236), anchor="mm")
            y += fl.size * 1.45
    return img


def render_card(out_path: Path | str, W: int, H: int, fps: int, seconds: float, title: str, lines: list[str],
                end: bool = False) -> dict:
    n = max(1, int(round(seconds * fps)))
    still = np.asarray(card_frame(W, H, title, lines, end), dtype=np.float32)
    fade = max(1, min(n // 4, int(0.4 * fps)))

    def produce(sink) -> dict:
        for i in range(n):
            k = min(1.0, (i + 1) / fade, (n - i) / fade)
            sink((still * k).astype(np.uint8).tobytes() if k < 1 else still.astype(np.uint8).tobytes())
        return {"card": "end" if end else "title", "title": title, "lines": lines}

    return pipe_frames_to_clip(W, H, fps, n, produce, Path(out_path))
