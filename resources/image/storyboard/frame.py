"""Storyboard frames with Pillow: the `preview` profile's image backend (light, CPU, deterministic).

A 16:9 frame per shot: a background chosen from the shot's location and time of day (sky gradient, sun or
moon, scenery for sea / town / forest / meadow / mountains / cave / indoor), the characters' reference art
from the knowledge pack — or a drawn, coloured figure wearing the character's expression — placed and scaled
by the camera size, a camera-move mark, and a caption band a director can read: shot number, camera note,
action line and dialogue. Shapes are drawn at 2× and downsampled (Pillow draws without anti-aliasing).

Same request → same bytes: the seed drives every random choice and PNGs carry no timestamp.
"""

from __future__ import annotations

import functools
import math
import random
import threading
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from studio.configs.schema import CharacterPreset, ModelEntry, studio_config
from studio.resources.image.request import ImageRequest, check_request

RENDER_VERSION = 1  # bump when drawing changes: it is part of every storyboard recipe
DEFAULT_SIZE = (1024, 576)
SS = 2  # supersampling factor for shapes
_FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu")]

SKY = {"dawn": ((112, 140, 204), (250, 196, 168)), "day": ((66, 134, 222), (196, 228, 250)),
       "sunset": ((58, 48, 118), (250, 146, 76)), "night": ((8, 12, 36), (38, 50, 96))}
TINT = {"dawn": (1.0, 0.93, 0.92), "day": (1.0, 1.0, 1.0), "sunset": (1.06, 0.84, 0.7),
        "night": (0.34, 0.4, 0.62)}
SCENERY_WORDS = [  # first match wins; order puts specific places before generic ones
    ("indoor", "indoor inside room kitchen bedroom house hall office shop cafe restaurant school attic"),
    ("cave", "cave cavern tunnel underground burrow"),
    ("harbour", "harbour harbor port pier dock portorosso marina quay"),
    ("sea", "sea ocean beach shore coast island underwater lagoon bay seaside"),
    ("town", "town village street square city piazza market alley rooftop"),
    ("mountain", "mountain mountains peak cliff summit valley"),
    ("forest", "forest woods jungle trees grove"),
    ("meadow", "meadow field hill hills grass garden park farm clearing"),
]
# camera size → (crop top, crop bottom) as fractions of the figure's height, the crop's height as a fraction of
# the frame, and the crop's top in the frame (None: stand on the ground line / rest on the bottom edge).
# Reference art and drawn figures keep the head in the top third (knowledge/bbb/refs/CREDITS.txt).
FRAMING: dict[str, tuple[float, float, float, float | None]] = {
    "wide": (0.0, 1.0, 0.42, None), "medium": (0.0, 0.62, 0.8, None),
    "close-up": (0.0, 0.42, 0.86, 0.06), "extreme-close-up": (0.07, 0.3, 0.95, 0.0)}


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


# --------------------------------------------------------------------------- background
def scenery_for(location: str, action: str = "") -> str:
    """The set for a shot: keywords of the location first, then of the action line; meadow by default."""
    for text in (location, action):
        words = set(text.lower().replace(",", " ").replace("'", " ").split())
        for kind, keys in SCENERY_WORDS:
            if words & set(keys.split()):
                return kind
    return "meadow"


def _hills(d: ImageDraw.ImageDraw, w: int, h: int, base: float, amp: float, color, rng: random.Random) -> None:
    phase, freq = rng.uniform(0, 6.28), rng.uniform(1.2, 2.4)
    pts = [(x, base - amp * (0.5 + 0.5 * math.sin(phase + freq * 6.28 * x / w))) for x in range(0, w + 40, 40)]
    d.polygon([(0, h), *pts, (w, h)], fill=color)


def _tree(d: ImageDraw.ImageDraw, x: float, ground: float, size: float, leaf, trunk) -> None:
    d.rectangle([x - size * 0.08, ground - size * 0.55, x + size * 0.08, ground], fill=trunk)
    for dx, dy, r in ((0, -0.75, 0.38), (-0.22, -0.58, 0.28), (0.22, -0.58, 0.28), (0, -1.0, 0.26)):
        d.ellipse([x + dx * size - r * size, ground + dy * size - r * size,
                   x + dx * size + r * size, ground + dy * size + r * size], fill=leaf)


def _house_row(d, w, ground, rng, tod, scale=1.0) -> None:
    x = -rng.uniform(0, 60) * scale
    palette = [(236, 178, 96), (214, 110, 84), (240, 214, 150), (126, 174, 196), (226, 150, 120), (246, 232, 200)]
    while x < w:
        hw, hh = rng.uniform(110, 190) * scale, rng.uniform(170, 300) * scale
        body = _tint(rng.choice(palette), tod)
        d.rectangle([x, ground - hh, x + hw, ground], fill=body)
        d.polygon([(x - 8 * scale, ground - hh), (x + hw / 2, ground - hh - hw * 0.35),
                   (x + hw + 8 * scale, ground - hh)], fill=_tint((178, 82, 52), tod))
        win = _tint((255, 226, 140), "day") if tod == "night" else _tint((60, 74, 96), tod)
        for row in range(int(hh // (70 * scale))):
            for col in range(max(1, int(hw // (60 * scale)))):
                wx, wy = x + 18 * scale + col * 60 * scale, ground - hh + 26 * scale + row * 70 * scale
                if wx + 26 * scale < x + hw and wy + 36 * scale < ground - 10 * scale:
                    d.rectangle([wx, wy, wx + 24 * scale, wy + 34 * scale], fill=win)
                    d.rectangle([wx - 6 * scale, wy, wx - 1 * scale, wy + 34 * scale], fill=_shade(body, 0.7))
        x += hw + rng.uniform(0, 14) * scale


def draw_background(w: int, h: int, scenery: str, tod: str, rng: random.Random) -> Image.Image:
    """The empty set at `w`×`h` (already supersampled by the caller)."""
    img = _gradient(w, h, *SKY[tod])
    d = ImageDraw.Draw(img)
    horizon = h * {"sea": 0.5, "harbour": 0.52, "town": 0.62, "mountain": 0.6, "indoor": 0.7}.get(scenery, 0.56)
    # Sky: stars and moon at night, sun and clouds by day.
    if tod == "night":
        for _ in range(140):
            x, y, r = rng.uniform(0, w), rng.uniform(0, horizon), rng.choice((1.5, 2, 3))
            d.ellipse([x - r, y - r, x + r, y + r], fill=(230, 234, 255))
        mx, my, mr = w * rng.uniform(0.65, 0.85), h * 0.16, h * 0.07
        d.ellipse([mx - mr, my - mr, mx + mr, my + mr], fill=(246, 242, 214))
        d.ellipse([mx - mr * 0.55, my - mr * 1.05, mx + mr * 1.3, my + mr * 0.8], fill=SKY[tod][0])
    else:
        sy = {"dawn": horizon * 0.92, "sunset": horizon * 0.8, "day": h * 0.14}[tod]
        sx, sr = w * rng.uniform(0.62, 0.86), h * (0.09 if tod != "day" else 0.06)
        glow = {"dawn": (255, 214, 170), "sunset": (255, 170, 90), "day": (255, 244, 200)}[tod]
        d.ellipse([sx - sr * 1.6, sy - sr * 1.6, sx + sr * 1.6, sy + sr * 1.6], fill=_shade(glow, 0.98))
        d.ellipse([sx - sr, sy - sr, sx + sr, sy + sr], fill=(255, 250, 226))
        for _ in range(rng.randint(2, 5)):
            cx, cy, cw = rng.uniform(0, w), rng.uniform(h * 0.06, horizon * 0.6), rng.uniform(w * 0.08, w * 0.16)
            cc = _tint((255, 255, 255), tod) if tod == "day" else _tint((255, 226, 214), tod)
            for k in range(4):
                ox = cx + (k - 1.5) * cw * 0.3
                rr = cw * (0.22 if k in (1, 2) else 0.16)
                d.ellipse([ox - rr, cy - rr * (1.2 if k in (1, 2) else 0.8), ox + rr, cy + rr * 0.6], fill=cc)
    green, dark_green = _tint((112, 178, 72), tod), _tint((62, 124, 58), tod)
    if scenery == "indoor":
        wall, floor = _tint((232, 208, 170), tod if tod == "night" else "day"), _tint((150, 102, 62), tod)
        wx0, wy0, wx1, wy1 = w * 0.58, h * 0.16, w * 0.86, h * 0.52
        sky = img.crop((0, 0, int(wx1 - wx0), int(wy1 - wy0)))
        d.rectangle([0, 0, w, horizon], fill=wall)
        img.paste(sky, (int(wx0), int(wy0)))
        d.rectangle([wx0, wy0, wx1, wy1], outline=_tint((250, 246, 236), tod), width=int(h * 0.018))
        d.line([((wx0 + wx1) / 2, wy0), ((wx0 + wx1) / 2, wy1)], fill=_tint((250, 246, 236), tod), width=8)
        d.rectangle([w * 0.12, h * 0.2, w * 0.3, h * 0.42], fill=_tint((92, 70, 50), tod))
        d.rectangle([w * 0.13, h * 0.22, w * 0.29, h * 0.40], fill=_tint((110, 160, 190), tod))
        d.rectangle([0, horizon, w, h], fill=floor)
        for k in range(1, 8):
            d.line([(0, horizon + (h - horizon) * k / 8), (w, horizon + (h - horizon) * k / 8)],
                   fill=_shade(floor, 0.8), width=4)
        if tod == "night":
            d.ellipse([w * 0.4, h * 0.05, w * 0.46, h * 0.14], fill=(255, 230, 150))
    elif scenery in ("sea", "harbour"):
        d.rectangle([0, horizon, w, h], fill=_tint((40, 120, 190), tod))
        sea = _gradient(w, int(h - horizon), _tint((52, 132, 196), tod), _tint((22, 84, 150), tod))
        img.paste(sea, (0, int(horizon)))
        for _ in range(60):
            x, y = rng.uniform(0, w), rng.uniform(horizon + 8, h)
            s = (y - horizon) / (h - horizon) * 30 + 6
            d.arc([x - s, y - s / 3, x + s, y + s / 3], 200, 340, fill=_tint((200, 230, 250), tod), width=3)
        if rng.random() < 0.7:
            ix = w * rng.uniform(0.1, 0.4)
            d.ellipse([ix, horizon - h * 0.05, ix + w * 0.16, horizon + h * 0.02], fill=_tint((70, 110, 80), tod))
        if scenery == "harbour":
            d.rectangle([0, h * 0.68, w, h], fill=_tint((190, 170, 140), tod))
            _house_row(d, w * 0.5, h * 0.62, rng, tod, scale=0.7)
            bx = w * rng.uniform(0.6, 0.8)
            d.polygon([(bx, h * 0.6), (bx + w * 0.12, h * 0.6), (bx + w * 0.1, h * 0.64), (bx + w * 0.02, h * 0.64)],
                      fill=_tint((196, 60, 48), tod))
            d.line([(bx + w * 0.06, h * 0.6), (bx + w * 0.06, h * 0.48)], fill=_tint((90, 60, 40), tod), width=6)
        else:
            d.polygon([(0, h * 0.8), (w * 0.45, h * 0.72), (w, h * 0.86), (w, h), (0, h)],
                      fill=_tint((236, 214, 160), tod))
    elif scenery == "town":
        _hills(d, w, h, horizon - h * 0.08, h * 0.06, _tint((120, 160, 110), tod), rng)
        _house_row(d, w, horizon + h * 0.04, rng, tod)
        d.rectangle([0, horizon + h * 0.04, w, h], fill=_tint((176, 160, 140), tod))
        for k in range(14):
            d.line([(w * k / 13, horizon + h * 0.04), (w * (k / 13 - 0.5) * 2.2 + w / 2, h)],
                   fill=_tint((150, 134, 116), tod), width=3)
    elif scenery == "cave":
        d.rectangle([0, 0, w, h], fill=_tint((58, 52, 60), tod))
        d.ellipse([w * 0.25, h * 0.15, w * 0.75, h * 1.1], fill=SKY[tod][1])
        d.rectangle([0, horizon + h * 0.1, w, h], fill=_tint((86, 76, 70), tod))
        for _ in range(9):
            x = rng.uniform(0, w)
            d.polygon([(x - 30, 0), (x + 30, 0), (x, rng.uniform(h * 0.08, h * 0.2))], fill=_tint((70, 62, 72), tod))
    else:  # meadow, forest, mountain
        if scenery == "mountain":
            for k in range(4):
                px, ph = w * (k / 3.2 + rng.uniform(-0.05, 0.05)), h * rng.uniform(0.3, 0.45)
                d.polygon([(px - w * 0.22, horizon), (px, horizon - ph), (px + w * 0.22, horizon)],
                          fill=_tint((110, 118, 140), tod))
                snow = horizon - ph * 0.73
                d.polygon([(px - w * 0.06, snow), (px, horizon - ph), (px + w * 0.06, snow)],
                          fill=_tint((246, 248, 252), tod))
        _hills(d, w, h, horizon, h * 0.07, _tint((136, 190, 110), tod), rng)
        if scenery == "forest":
            for k in range(16):
                x = w * (k + rng.uniform(-0.3, 0.3)) / 15
                _tree(d, x, horizon + h * 0.04, h * rng.uniform(0.3, 0.42), _tint((48, 100, 56), tod),
                      _tint((86, 60, 40), tod))
        _hills(d, w, h, horizon + h * 0.06, h * 0.05, green, rng)
        if scenery == "forest":
            for x in (w * rng.uniform(0.0, 0.12), w * rng.uniform(0.86, 1.0)):
                _tree(d, x, h * 0.95, h * 0.75, dark_green, _tint((96, 66, 42), tod))
        else:
            _tree(d, w * rng.choice((0.1, 0.9)), horizon + h * 0.1, h * 0.4, dark_green, _tint((96, 66, 42), tod))
            for _ in range(70):
                x, y = rng.uniform(0, w), rng.uniform(horizon + h * 0.1, h)
                c = _tint(rng.choice([(250, 240, 120), (250, 250, 250), (236, 120, 160), (170, 130, 230)]), tod)
                d.ellipse([x - 5, y - 5, x + 5, y + 5], fill=c)
    return img


# --------------------------------------------------------------------------- characters
def _face(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, emotion: str, ink=(40, 30, 30)) -> None:
    for sx in (-1, 1):
        ex, ey = cx + sx * r * 0.36, cy - r * 0.1
        er = r * (0.2 if emotion in ("surprised", "scared") else 0.16)
        d.ellipse([ex - er, ey - er, ex + er, ey + er], fill=(255, 255, 255), outline=ink, width=3)
        d.ellipse([ex - er * 0.5, ey - er * 0.4, ex + er * 0.5, ey + er * 0.6], fill=ink)
        tilt = {"angry": 0.25, "determined": 0.15, "sad": -0.22, "scared": -0.2, "surprised": -0.05}.get(emotion, 0)
        by = ey - er * 1.7 - r * 0.05 * (emotion == "surprised")
        d.line([(ex - sx * er * 1.3, by + tilt * r), (ex + sx * er * 1.1, by - tilt * r)], fill=ink,
               width=max(3, int(r * 0.07)))
    my, mw = cy + r * 0.42, r * 0.38
    if emotion in ("happy", "excited"):
        d.chord([cx - mw, my - mw * 0.8, cx + mw, my + mw * 0.6], 0, 180, fill=(150, 40, 50), outline=ink, width=3)
    elif emotion in ("sad", "scared"):
        d.arc([cx - mw, my, cx + mw, my + mw * 0.9], 200, 340, fill=ink, width=max(3, int(r * 0.07)))
    elif emotion == "surprised":
        d.ellipse([cx - mw * 0.35, my - mw * 0.3, cx + mw * 0.35, my + mw * 0.45], fill=(120, 30, 40), outline=ink)
    elif emotion == "angry":
        d.line([(cx - mw, my + r * 0.06), (cx + mw, my - r * 0.02)], fill=ink, width=max(3, int(r * 0.08)))
    else:  # neutral, curious, determined
        d.arc([cx - mw * 0.8, my - mw * 0.5, cx + mw * 0.8, my + mw * 0.3], 20, 160, fill=ink,
              width=max(3, int(r * 0.07)))


def draw_figure(color: str, emotion: str = "neutral", w: int = 420, h: int = 800) -> Image.Image:
    """A coloured cartoon figure (RGBA) for characters without reference art; head in the top third."""
    big = Image.new("RGBA", (w * SS, h * SS), (0, 0, 0, 0))
    d = ImageDraw.Draw(big)
    s, c = SS, _hex(color)
    skin, hair, ink = (244, 206, 172), _shade(c, 0.55), (40, 30, 30)
    cx = w * s / 2
    d.rounded_rectangle([cx - 95 * s, 470 * s, cx - 20 * s, 790 * s], radius=30 * s, fill=(58, 72, 104))
    d.rounded_rectangle([cx + 20 * s, 470 * s, cx + 95 * s, 790 * s], radius=30 * s, fill=(58, 72, 104))
    d.rounded_rectangle([cx - 130 * s, 270 * s, cx + 130 * s, 520 * s], radius=60 * s, fill=c)
    for sx in (-1, 1):
        d.line([(cx + sx * 120 * s, 300 * s), (cx + sx * 175 * s, 470 * s)], fill=c, width=52 * s)
        d.ellipse([cx + sx * 175 * s - 28 * s, 450 * s, cx + sx * 175 * s + 28 * s, 506 * s], fill=skin)
    r = 115 * s
    hy = 160 * s
    d.ellipse([cx - r * 1.1, hy - r * 1.18, cx + r * 1.1, hy + r * 0.75], fill=hair)  # hair behind the head
    d.ellipse([cx - r, hy - r * 0.92, cx + r, hy + r], fill=skin, outline=_shade(skin, 0.8), width=3 * s)
    fringe = [(cx - r * 0.98, hy - r * 0.2)]
    for k in range(7):  # a zig-zag fringe over the forehead
        fx = cx - r * 0.98 + (k + 0.5) * r * 1.96 / 7
        fringe += [(fx, hy - r * (0.12 if k % 2 else 0.3)), (fx + r * 0.14, hy - r * 0.5)]
    d.polygon([*fringe, (cx + r * 0.98, hy - r * 0.2), (cx + r * 0.7, hy - r * 0.95), (cx - r * 0.7, hy - r * 0.95)],
              fill=hair)
    _face(d, cx, hy + r * 0.12, r * 0.9, emotion, ink)
    return big.resize((w, h), Image.LANCZOS)


def _ref_path(ref: str) -> Path | None:
    from studio.configs.settings import get_settings

    p = Path(ref).expanduser()
    p = p if p.is_absolute() else get_settings().knowledge_path / ref
    return p if p.is_file() else None


def reference_paths(preset: CharacterPreset) -> list[Path]:
    return [p for p in map(_ref_path, preset.reference_images) if p is not None]


@functools.lru_cache(maxsize=32)
def _load_art(path: str, mtime_ns: int) -> Image.Image:
    img = Image.open(path).convert("RGBA")
    bbox = img.getchannel("A").getbbox()
    return img.crop(bbox) if bbox else img


def character_art(preset: CharacterPreset, emotion: str) -> Image.Image:
    refs = reference_paths(preset)
    if refs:
        return _load_art(str(refs[0]), refs[0].stat().st_mtime_ns)
    return draw_figure(preset.color, emotion)


def _place(frame: Image.Image, art: Image.Image, camera: str, cx: float, max_w: float, ground: float
           ) -> tuple[float, float, float]:
    """Paste `art` framed by `camera` centred at x=`cx`; returns (left, top, right) of the pasted figure."""
    W, H = frame.size
    c0, c1, height, anchor = FRAMING[camera]
    part = art.crop((0, int(art.height * c0), art.width, max(int(art.height * c0) + 1, int(art.height * c1))))
    scale = height * H / part.height
    if part.width * scale > max_w:
        if camera in ("wide", "medium"):
            scale = max_w / part.width  # shrink whole figures to fit side by side
        else:  # close-ups crop the sides instead: the face keeps its size
            keep = max_w / scale
            part = part.crop((int((part.width - keep) / 2), 0, int((part.width + keep) / 2), part.height))
    fig = part.resize((max(1, int(part.width * scale)), max(1, int(part.height * scale))), Image.LANCZOS)
    left = int(cx - fig.width / 2)
    if camera == "wide":
        top = int(ground - fig.height)
        shadow = Image.new("RGBA", frame.size, (0, 0, 0, 0))
        ImageDraw.Draw(shadow).ellipse([left + fig.width * 0.1, ground - fig.height * 0.04,
                                        left + fig.width * 0.9, ground + fig.height * 0.04], fill=(0, 0, 0, 90))
        frame.alpha_composite(shadow.filter(ImageFilter.GaussianBlur(6)))
    elif anchor is not None:
        top = int(H * anchor)
    else:
        top = int(H - fig.height)
    _paste_clipped(frame, fig, left, top)
    return left, max(top, 0), left + fig.width


def _paste_clipped(frame: Image.Image, fig: Image.Image, left: int, top: int) -> None:
    box = (max(0, -left), max(0, -top), min(fig.width, frame.width - left), min(fig.height, frame.height - top))
    if box[2] > box[0] and box[3] > box[1]:
        frame.alpha_composite(fig.crop(box), (max(0, left), max(0, top)))


def _name_tag(d: ImageDraw.ImageDraw, text: str, color: str, cx: float, y: float, size: int, W: int) -> None:
    f = font(size, "bold")
    tw = f.getlength(text)
    x0 = max(6, min(W - tw - 26, cx - tw / 2 - 10))
    y0 = max(6, y - size * 1.9)
    d.rounded_rectangle([x0, y0, x0 + tw + 20, y0 + size * 1.5], radius=size * 0.6, fill=(*_hex(color), 230),
                        outline=(255, 255, 255, 220), width=2)
    d.text((x0 + 10, y0 + size * 0.2), text, font=f, fill=(255, 255, 255, 255))


# --------------------------------------------------------------------------- overlays
def _arrow(d: ImageDraw.ImageDraw, a: tuple, b: tuple, width: int, fill) -> None:
    d.line([a, b], fill=fill, width=width)
    ang = math.atan2(b[1] - a[1], b[0] - a[0])
    L = width * 3.2
    d.polygon([b, (b[0] - L * math.cos(ang - 0.45), b[1] - L * math.sin(ang - 0.45)),
               (b[0] - L * math.cos(ang + 0.45), b[1] - L * math.sin(ang + 0.45))], fill=fill)


def draw_camera_move(frame: Image.Image, move: str, picture_h: float) -> None:
    if move in ("static", ""):
        return
    layer = Image.new("RGBA", frame.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    W, fill, wd = frame.width, (255, 255, 255, 190), max(4, int(picture_h / 110))
    y = picture_h * 0.1
    if move == "pan-left":
        _arrow(d, (W * 0.62, y), (W * 0.38, y), wd, fill)
    elif move == "pan-right":
        _arrow(d, (W * 0.38, y), (W * 0.62, y), wd, fill)
    elif move in ("tilt-up", "tilt-down"):
        a, b = (W * 0.95, picture_h * 0.65), (W * 0.95, picture_h * 0.2)
        _arrow(d, *((a, b) if move == "tilt-up" else (b, a)), wd, fill)
    elif move in ("push-in", "pull-out"):
        m = 0.16
        box = [W * m, picture_h * m, W * (1 - m), picture_h * (1 - m)]
        for i in range(0, int(box[2] - box[0]), 28):  # dashed target frame
            d.line([(box[0] + i, box[1]), (box[0] + i + 14, box[1])], fill=fill, width=3)
            d.line([(box[0] + i, box[3]), (box[0] + i + 14, box[3])], fill=fill, width=3)
        for cx, cy, tx, ty in ((0.03, 0.05, box[0], box[1]), (0.97, 0.05, box[2], box[1]),
                               (0.03, 0.95, box[0], box[3]), (0.97, 0.95, box[2], box[3])):
            outer = (W * cx, picture_h * cy)
            _arrow(d, *((outer, (tx, ty)) if move == "push-in" else ((tx, ty), outer)), wd, fill)
    frame.alpha_composite(layer)


def draw_caption(frame: Image.Image, req: ImageRequest, names: dict[str, tuple[str, str]]) -> tuple[int, int]:
    """The caption band; returns its (top, bottom) rows. `names`: character id → (display name, colour)."""
    W, H = frame.size
    sc = scene = req.scene
    top = int(H * 0.75)
    band = Image.new("RGBA", frame.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(band)
    d.rectangle([0, top, W, H], fill=(14, 16, 22, 222))
    d.line([(0, top), (W, top)], fill=(255, 196, 64, 255), width=max(2, H // 200))
    pad, u = int(W * 0.02), H / 576
    f_meta, f_act, f_dlg = font(int(16 * u), "bold"), font(int(22 * u)), font(int(20 * u), "italic")
    y = top + int(10 * u)
    label = f"SHOT {scene.shot_id}" + (f"/{scene.shot_count}" if scene.shot_count else "") \
        if scene.shot_id is not None else f"SEED {req.seed}"
    lw = f_meta.getlength(label)
    d.rounded_rectangle([pad, y, pad + lw + 18 * u, y + 24 * u], radius=8 * u, fill=(255, 196, 64, 255))
    d.text((pad + 9 * u, y + 3 * u), label, font=f_meta, fill=(20, 20, 24, 255))
    note = " · ".join(p for p in (sc.camera.upper(), sc.camera_move.upper() if sc.camera_move != "static" else "",
                                  sc.location, sc.time_of_day) if p)
    d.text((pad + lw + 32 * u, y + 3 * u), note, font=f_meta, fill=(190, 198, 214, 255))
    if sc.title:
        t = sc.title if f_meta.getlength(sc.title) < W * 0.3 else wrap(sc.title, f_meta, W * 0.3, 1)[0]
        d.text((W - pad - f_meta.getlength(t), y + 3 * u), t, font=f_meta, fill=(140, 148, 164, 255))
    y += int(32 * u)
    has_dialogue = bool(sc.dialogue_line)
    for line in wrap(sc.action or req.prompt, f_act, W - 2 * pad, 1 if has_dialogue else 3):
        d.text((pad, y), line, font=f_act, fill=(246, 246, 246, 255))
        y += int(28 * u)
    if has_dialogue:
        who, color = names.get(sc.dialogue_character or "", (sc.dialogue_character or "", "#ffc440"))
        speaker = f"{who.upper()}: "
        d.text((pad, y + 2 * u), speaker, font=font(int(20 * u), "bold"), fill=(*_hex(color), 255))
        sx = pad + font(int(20 * u), "bold").getlength(speaker)
        for line in wrap(f"“{sc.dialogue_line}”", f_dlg, W - sx - pad, 2):
            d.text((sx, y + 2 * u), line, font=f_dlg, fill=(255, 255, 255, 255))
            y += int(25 * u)
    frame.alpha_composite(band)
    return top, H


# --------------------------------------------------------------------------- the frame
def render_storyboard_frame(req: ImageRequest) -> Image.Image:
    W, H = req.width or DEFAULT_SIZE[0], req.height or DEFAULT_SIZE[1]
    sc = req.scene
    rng = random.Random(zlib.crc32(f"{req.seed}|{sc.location}|{sc.shot_id}|{sc.action}".encode()))
    bg = draw_background(W * SS, H * SS, scenery_for(sc.location, sc.action), sc.time_of_day, rng)
    frame = bg.resize((W, H), Image.LANCZOS).convert("RGBA")
    chars = studio_config().characters
    presets = [(cid, chars.resolve(cid)[1]) for cid in req.characters]
    names = {cid: (p.display_name, p.color) for cid, p in chars.characters.items()}
    if sc.camera in ("close-up", "extreme-close-up") and len(presets) > 1:
        focus = [p for p in presets if p[0] == sc.dialogue_character] or presets[:1]
        presets = focus
    ground = H * 0.72
    n = len(presets)
    xs = [W * (i + 1) / (n + 1) + W * rng.uniform(-0.04, 0.04) for i in range(n)]
    if n == 1 and sc.camera != "extreme-close-up":
        xs = [W * rng.choice((0.38, 0.5, 0.62))]
    tags = []
    for (cid, preset), x in zip(presets, xs, strict=True):
        emotion = sc.emotion if cid == sc.dialogue_character or not sc.dialogue_character else "neutral"
        left, top, right = _place(frame, character_art(preset, emotion), sc.camera, x, W / max(n, 1) * 1.05,
                                  ground)
        tags.append((preset.display_name, preset.color, (left + right) / 2, top))
    d = ImageDraw.Draw(frame)
    for name, color, cx, top in tags:
        _name_tag(d, name, color, cx, max(top, H * 0.06) + H * 0.06 * (top < H * 0.06), int(15 * H / 576), W)
    draw_camera_move(frame, sc.camera_move, H * 0.75)
    draw_caption(frame, req, names)
    return frame.convert("RGB")


def save_png(img: Image.Image, path: Path, text: dict[str, str] | None = None) -> None:
    """PNG with no timestamp chunk (Pillow writes none unless asked), so same pixels → same bytes."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    img.save(path, format="PNG", pnginfo=info, compress_level=6)


class StoryboardImageBackend:
    """Light preview backend. Frame size: models.yaml `options: {width, height}` (default 1024×576); a
    request's width is honoured with the height derived to keep 16:9, a requested height is ignored."""

    heavy = False

    def __init__(self, name: str, entry: ModelEntry):
        self.name, self.entry = name, entry
        self.model_id = f"storyboard@{RENDER_VERSION}+{font_tag()}"

    def prepare(self, request: ImageRequest) -> ImageRequest:
        check_request(request)
        width = request.width or int(self.entry.options.get("width", DEFAULT_SIZE[0]))
        height = round(width * 9 / 16) if request.width else int(self.entry.options.get("height", DEFAULT_SIZE[1]))
        return request.model_copy(update={"width": width, "height": height})

    def recipe_params(self, request: ImageRequest) -> dict[str, Any]:
        chars = studio_config().characters
        looks = {cid: {"name": p.display_name, "color": p.color, "refs": p.reference_images}
                 for cid, p in ((c, chars.resolve(c)[1]) for c in request.characters)}
        if request.scene.dialogue_character in chars.characters:
            p = chars.characters[request.scene.dialogue_character]
            looks.setdefault(request.scene.dialogue_character, {"name": p.display_name, "color": p.color})
        return {"request": request.model_dump(mode="json", include={"prompt", "characters", "scene", "seed",
                                                                    "width", "height"}), "looks": looks}

    def input_files(self, request: ImageRequest) -> list[Path]:
        chars = studio_config().characters
        return [p for cid in request.characters for p in reference_paths(chars.resolve(cid)[1])[:1]]

    def render(self, request: ImageRequest, out_path: Path) -> dict[str, Any]:
        save_png(render_storyboard_frame(request), out_path, {"Software": self.model_id})
        return {"scenery": scenery_for(request.scene.location, request.scene.action)}


# --------------------------------------------------------------------------- contact sheets
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
