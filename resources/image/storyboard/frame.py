"""Storyboard frames with Pillow: the `preview` profile's image backend (light, CPU, deterministic).

A 16:9 frame per shot: a background chosen from the shot's location and time of day (sky gradient, sun or
moon, scenery for sea / town / forest / meadow / mountains / cave / indoor), the characters' reference art
from the knowledge pack — or a drawn, coloured figure wearing the character's expression — placed and scaled
by the camera size, a camera-move mark, and a caption band a director can read: shot number, camera note,
action line and dialogue. Shapes are drawn at 2× and downsampled (Pillow draws without anti-aliasing).

Same request → same bytes: the seed drives every random choice and PNGs carry no timestamp.
"""

from __future__ import annotations

import math
import random
import zlib
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from studio.configs.schema import ModelEntry, studio_config
from studio.resources.image.request import ImageRequest, check_request
from studio.resources.image.storyboard.draw import SS, _hex, font, font_tag, save_png, wrap
from studio.resources.image.storyboard.figures import (
    FRAMING,
    _name_tag,
    _place,
    character_art,
    draw_figure,
    reference_paths,
)
from studio.resources.image.storyboard.scenery import (
    apply_weather,
    draw_background,
    scenery_for,
    weather_for,
    weather_layer,
    weather_particles,
)
from studio.resources.image.storyboard.sheet import make_contact_sheet

__all__ = ["FRAMING", "RENDER_VERSION", "StoryboardImageBackend", "_place", "draw_figure", "font", "font_tag",
           "make_contact_sheet", "reference_paths", "render_storyboard_frame", "save_png", "scenery_for"]

RENDER_VERSION = 1  # bump when drawing changes: it is part of every storyboard recipe
DEFAULT_SIZE = (1024, 576)


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
                                  sc.location, sc.time_of_day, sc.weather if sc.weather != "clear" else "") if p)
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
    weather = weather_for(sc.weather, sc.location, sc.action)
    bg = apply_weather(bg, weather, rng)  # the keyframe shows the weather the animated shot has
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
    weather_layer(ImageDraw.Draw(frame), weather, weather_particles(weather, W, H, rng.randrange(1 << 30)), 0.0, W, H)
    draw_camera_move(frame, sc.camera_move, H * 0.75)
    draw_caption(frame, req, names)
    return frame.convert("RGB")



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

