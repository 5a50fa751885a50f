"""Contact sheets: a grid of thumbnails with label lines under each (batch overviews, storyboard.png)."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

from studio.resources.image.storyboard.draw import font, save_png, wrap


def make_contact_sheet(tiles: list[tuple[Path | str, list[str]]], out_path: Path | str, columns: int | None = None,
                       tile_width: int = 320, title: str | None = None) -> Path:
    """A grid of thumbnails with label lines under each (batch overviews, storyboard.png)."""
    if not tiles:
        raise ValueError("make_contact_sheet needs at least one tile")
    columns = columns or min(len(tiles), 4 if tile_width >= 300 else 6)
    thumbs = []
    for path, _labels in tiles:
        with Image.open(path) as im:
            im = im.convert("RGB")
            thumbs.append(im.resize((tile_width, max(1, round(im.height * tile_width / im.width))), Image.LANCZOS))
    fl = font(max(11, tile_width // 22))
    fb = font(max(12, tile_width // 20), "bold")
    line_h = int(fl.size * 1.35)
    n_lines = max(len(lbl) for _, lbl in tiles)
    cell_h = max(t.height for t in thumbs) + 10 + n_lines * line_h + 12
    gap, head = 12, (int(fb.size * 2.6) if title else 0)
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (gap + columns * (tile_width + gap), head + gap + rows * (cell_h + gap)), (24, 26, 32))
    d = ImageDraw.Draw(sheet)
    if title:
        d.text((gap, gap), title, font=font(int(fb.size * 1.4), "bold"), fill=(255, 210, 90))
    for i, (thumb, (_, labels)) in enumerate(zip(thumbs, tiles, strict=True)):
        x = gap + (i % columns) * (tile_width + gap)
        y = head + gap + (i // columns) * (cell_h + gap)
        d.rectangle([x - 1, y - 1, x + tile_width, y + cell_h - 6], fill=(36, 40, 48))
        sheet.paste(thumb, (x, y))
        ty = y + thumb.height + 6
        for j, text in enumerate(labels):
            f = fb if j == 0 else fl
            d.text((x + 6, ty), wrap(str(text), f, tile_width - 12, 1)[0] if text else "", font=f,
                   fill=(240, 240, 240) if j == 0 else (170, 178, 192))
            ty += line_h
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_png(sheet, out_path)
    return out_path
