"""Backgrounds per location, time of day and weather: sky gradient, sun or moon, scenery for sea / beach / town /
forest / meadow / mountains / cave / indoor, and weather (clouds, rain, snow, storm, fog, wind).

`draw_background` paints the empty set once per shot; `weather_layer` draws the moving part of the weather
(falling rain or snow, a lightning flash) for one frame of an animated shot.
"""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw

from studio.resources.image.storyboard.draw import _gradient, _shade, _tint

SKY = {"dawn": ((112, 140, 204), (250, 196, 168)), "day": ((66, 134, 222), (196, 228, 250)),
       "sunset": ((58, 48, 118), (250, 146, 76)), "night": ((8, 12, 36), (38, 50, 96))}
SCENERY_WORDS = [  # first match wins; order puts specific places before generic ones
    ("indoor", "indoor inside room kitchen bedroom house hall office shop cafe restaurant school attic"),
    ("cave", "cave cavern tunnel underground burrow"),
    ("harbour", "harbour harbor port pier dock portorosso marina quay"),
    ("beach", "beach shore sand sandy seaside dune dunes"),
    ("sea", "sea ocean coast island underwater lagoon bay"),
    ("town", "town village street square city piazza market alley rooftop"),
    ("mountain", "mountain mountains peak cliff summit valley"),
    ("forest", "forest woods jungle trees grove"),
    ("meadow", "meadow field hill hills grass garden park farm clearing"),
]


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


def _sky(img: Image.Image, d: ImageDraw.ImageDraw, horizon: float, tod: str, rng: random.Random) -> None:
    """Stars and moon at night, sun and clouds by day."""
    w, h = img.size
    if tod == "night":
        for _ in range(140):
            x, y, r = rng.uniform(0, w), rng.uniform(0, horizon), rng.choice((1.5, 2, 3))
            d.ellipse([x - r, y - r, x + r, y + r], fill=(230, 234, 255))
        mx, my, mr = w * rng.uniform(0.65, 0.85), h * 0.16, h * 0.07
        d.ellipse([mx - mr, my - mr, mx + mr, my + mr], fill=(246, 242, 214))
        d.ellipse([mx - mr * 0.55, my - mr * 1.05, mx + mr * 1.3, my + mr * 0.8], fill=SKY[tod][0])
        return
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


def _indoor(img: Image.Image, d: ImageDraw.ImageDraw, horizon: float, tod: str, rng: random.Random) -> None:
    """A room: wall, a window onto the sky just drawn, a picture, a plank floor (a lamp at night)."""
    w, h = img.size
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


def _seaside(img: Image.Image, d: ImageDraw.ImageDraw, horizon: float, tod: str, rng: random.Random,
             scenery: str) -> None:
    """Sea with waves and maybe an island; a harbour's quay, houses and boat, or a beach's sand."""
    w, h = img.size
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
        sand = (0.66, 0.6, 0.72) if scenery == "beach" else (0.8, 0.72, 0.86)
        d.polygon([(0, h * sand[0]), (w * 0.45, h * sand[1]), (w, h * sand[2]), (w, h), (0, h)],
                  fill=_tint((236, 214, 160), tod))


def _town(img: Image.Image, d: ImageDraw.ImageDraw, horizon: float, tod: str, rng: random.Random) -> None:
    w, h = img.size
    _hills(d, w, h, horizon - h * 0.08, h * 0.06, _tint((120, 160, 110), tod), rng)
    _house_row(d, w, horizon + h * 0.04, rng, tod)
    d.rectangle([0, horizon + h * 0.04, w, h], fill=_tint((176, 160, 140), tod))
    for k in range(14):
        d.line([(w * k / 13, horizon + h * 0.04), (w * (k / 13 - 0.5) * 2.2 + w / 2, h)],
               fill=_tint((150, 134, 116), tod), width=3)


def _cave(img: Image.Image, d: ImageDraw.ImageDraw, horizon: float, tod: str, rng: random.Random) -> None:
    w, h = img.size
    d.rectangle([0, 0, w, h], fill=_tint((58, 52, 60), tod))
    d.ellipse([w * 0.25, h * 0.15, w * 0.75, h * 1.1], fill=SKY[tod][1])
    d.rectangle([0, horizon + h * 0.1, w, h], fill=_tint((86, 76, 70), tod))
    for _ in range(9):
        x = rng.uniform(0, w)
        d.polygon([(x - 30, 0), (x + 30, 0), (x, rng.uniform(h * 0.08, h * 0.2))], fill=_tint((70, 62, 72), tod))


def _countryside(img: Image.Image, d: ImageDraw.ImageDraw, horizon: float, tod: str, rng: random.Random,
                 scenery: str) -> None:
    """Meadow, forest or mountain: peaks, rolling hills, trees, flowers."""
    w, h = img.size
    green, dark_green = _tint((112, 178, 72), tod), _tint((62, 124, 58), tod)
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
        return
    _tree(d, w * rng.choice((0.1, 0.9)), horizon + h * 0.1, h * 0.4, dark_green, _tint((96, 66, 42), tod))
    for _ in range(70):
        x, y = rng.uniform(0, w), rng.uniform(horizon + h * 0.1, h)
        c = _tint(rng.choice([(250, 240, 120), (250, 250, 250), (236, 120, 160), (170, 130, 230)]), tod)
        d.ellipse([x - 5, y - 5, x + 5, y + 5], fill=c)


def draw_background(w: int, h: int, scenery: str, tod: str, rng: random.Random) -> Image.Image:
    """The empty set at `w`×`h` (already supersampled by the caller)."""
    img = _gradient(w, h, *SKY[tod])
    d = ImageDraw.Draw(img)
    horizon = h * {"sea": 0.5, "harbour": 0.52, "town": 0.62, "mountain": 0.6, "indoor": 0.7}.get(scenery, 0.56)
    _sky(img, d, horizon, tod, rng)
    if scenery == "indoor":
        _indoor(img, d, horizon, tod, rng)
    elif scenery in ("sea", "harbour", "beach"):
        _seaside(img, d, horizon, tod, rng, scenery)
    elif scenery == "town":
        _town(img, d, horizon, tod, rng)
    elif scenery == "cave":
        _cave(img, d, horizon, tod, rng)
    else:
        _countryside(img, d, horizon, tod, rng, scenery)
    return img


# --------------------------------------------------------------------------- weather
WEATHER_WORDS = {"rain": "rain raining rainy drizzle shower downpour", "snow": "snow snowing snowy snowflake blizzard",
                 "storm": "storm stormy thunder thunderstorm lightning tempest hurricane",
                 "fog": "fog foggy mist misty haze", "wind": "wind windy breeze gust gale",
                 "cloudy": "cloudy clouds overcast grey gray"}


def weather_for(weather: str, *texts: str) -> str:
    """The shot's weather field, else a weather word in its location/action/things; clear by default."""
    if weather and weather != "clear":
        return weather
    words = set(" ".join(texts).lower().replace(",", " ").split())
    return next((kind for kind, keys in WEATHER_WORDS.items() if words & set(keys.split())), "clear")


SKY_WORDS = {"sun", "moon", "sky", "stars", "sunrise", "sunset", "daylight", "sunshine", "moonlight"}


def place_kind(noun: str) -> str | None:
    """'scenery' or 'weather' when a thing of the plan is a place, the sky or a weather (the sea, the sun, a
    storm: the set draws them), else None."""
    words = set(noun.lower().split())
    if words & SKY_WORDS or any(words & set(keys.split()) for _, keys in SCENERY_WORDS):
        return "scenery"
    if any(words & set(keys.split()) for keys in WEATHER_WORDS.values()):
        return "weather"
    return None


def apply_weather(img: Image.Image, weather: str, rng: random.Random) -> Image.Image:
    """The static part of the weather on an RGB set: grey skies and heavy clouds, fog, a snowy ground."""
    if weather in ("clear", "wind"):
        return img
    w, h = img.size
    if weather in ("cloudy", "rain", "storm", "snow", "fog"):
        grey = {"cloudy": 0.25, "rain": 0.4, "snow": 0.3, "storm": 0.6, "fog": 0.2}[weather]
        veil = Image.new("RGB", img.size, (70, 74, 86) if weather == "storm" else (150, 156, 166))
        img = Image.blend(img, veil, grey * 0.6)
        d = ImageDraw.Draw(img)
        cloud = (96, 100, 112) if weather == "storm" else (214, 218, 226)
        for _ in range(rng.randint(5, 8)):
            cx, cy, cw = rng.uniform(0, w), rng.uniform(0, h * 0.22), rng.uniform(w * 0.15, w * 0.3)
            for k in range(5):
                ox, rr = cx + (k - 2) * cw * 0.22, cw * (0.2 if k in (1, 2, 3) else 0.14)
                d.ellipse([ox - rr, cy - rr * 0.9, ox + rr, cy + rr * 0.6], fill=cloud)
    if weather == "snow":
        d = ImageDraw.Draw(img)
        d.rectangle([0, h * 0.82, w, h], fill=(240, 244, 250))
    if weather == "fog":
        fog = _gradient(w, h, (214, 218, 224), (236, 238, 242))
        img = Image.blend(img, fog, 0.45)
    return img


def weather_particles(weather: str, w: int, h: int, seed: int, n: int | None = None) -> list[tuple[float, ...]]:
    """Rain/snow/wind particles (x, y, speed, size), fixed per shot; `weather_layer` moves them per frame."""
    rng = random.Random(seed)
    count = n or {"rain": 160, "storm": 220, "snow": 120, "wind": 26}.get(weather, 0)
    return [(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.7, 1.3), rng.uniform(0.6, 1.4)) for _ in range(count)]


def weather_layer(d: ImageDraw.ImageDraw, weather: str, particles: list[tuple[float, ...]], t: float, w: int,
                  h: int) -> bool:
    """Draw the moving weather of time `t` (s) onto a frame; returns True on a lightning flash frame."""
    if weather in ("rain", "storm"):
        fall, slant = h * 1.6, w * (0.12 if weather == "storm" else 0.04)
        for x, y, v, s in particles:
            yy = (y + fall * v * t) % h
            xx = (x + slant * v * t) % w
            d.line([(xx, yy), (xx - slant * 0.02 * s, yy + h * 0.035 * s)], fill=(200, 210, 230), width=1)
        return weather == "storm" and ((t + 1.2) % 2.3) < 0.09
    if weather == "snow":
        for x, y, v, s in particles:
            yy = (y + h * 0.12 * v * t) % h
            xx = (x + w * 0.015 * math.sin(t * 1.7 * v + y)) % w
            r = 1.5 + 1.5 * s
            d.ellipse([xx - r, yy - r, xx + r, yy + r], fill=(250, 250, 255))
    elif weather == "wind":
        for x, y, v, s in particles:
            xx = (x + w * 0.9 * v * t) % (w + 80) - 40
            d.line([(xx, y), (xx + 30 * s, y - 2)], fill=(236, 240, 246), width=2)
    return False
