"""Character art for the storyboard and the cut-out animator: reference art from the knowledge pack (or a drawn,
coloured figure wearing the character's expression), its placement by camera size, and name tags.
"""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from studio.configs.schema import CharacterPreset
from studio.resources.image.storyboard.draw import SS, _hex, _shade, font

# camera size → (crop top, crop bottom) as fractions of the figure's height, the crop's height as a fraction of
# the frame, and the crop's top in the frame (None: stand on the ground line / rest on the bottom edge).
# Reference art and drawn figures keep the head in the top third (knowledge/bbb/refs/CREDITS.txt).
FRAMING: dict[str, tuple[float, float, float, float | None]] = {
    "wide": (0.0, 1.0, 0.42, None), "medium": (0.0, 0.62, 0.8, None),
    "close-up": (0.0, 0.42, 0.86, 0.06), "extreme-close-up": (0.07, 0.3, 0.95, 0.0)}


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



# --------------------------------------------------------------------------- rig, expression, mouth
FIGURE_RIG = {"eyes": [[172.7, 163.5, 17.0], [247.3, 163.5, 17.0]], "mouth": [210.0, 217.3, 40.0]}  # draw_figure
MOUTH_FILL, MOUTH_INK = (120, 24, 36), (40, 20, 20)


def rig_for_art(preset: CharacterPreset) -> dict | None:
    """Rig points of the art `character_art` returns, in its (cropped) pixels: `eyes` [[x, y, r], ...] and
    `mouth` [x, y, width]. Reference art carries them in `<art>.rig.json` beside it; drawn figures know theirs.
    None: reference art without a rig (no mouth flaps or expression warp on it, said in the shot's warnings)."""
    import json

    refs = reference_paths(preset)
    if not refs:
        return FIGURE_RIG
    rig_path = refs[0].with_suffix(".rig.json")
    if not rig_path.is_file():
        return None
    rig = json.loads(rig_path.read_text())
    with Image.open(refs[0]) as im:
        bbox = im.convert("RGBA").getchannel("A").getbbox() or (0, 0, 0, 0)
    ox, oy = bbox[0], bbox[1]  # `_load_art` crops the art to its opaque box
    return {"eyes": [[x - ox, y - oy, r] for x, y, r in rig["eyes"]],
            "mouth": [rig["mouth"][0] - ox, rig["mouth"][1] - oy, rig["mouth"][2]]}


def exaggerate(art: Image.Image, rig: dict, factor: float) -> Image.Image:
    """The expression exaggeration tool: magnify the eyes (with their brows) and the mouth of `art` about the
    rig points by `factor` (1 = unchanged), a smooth local warp that fades back to the art at the region's edge."""
    if factor <= 1.0 or not rig:
        return art
    import numpy as np

    src = np.asarray(art.convert("RGBA"), dtype=np.float32)
    h, w = src.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    off_x, off_y = np.zeros_like(xx), np.zeros_like(yy)
    feats = [(x, y - r * 0.3, r * 1.5) for x, y, r in rig["eyes"]]  # eyes and brows together
    mx, my, mw = rig["mouth"]
    feats.append((mx, my, mw * 0.6))
    for fx, fy, r in feats:  # displacements add up where two regions touch
        R = r * (factor + 0.4)
        dx, dy = xx - fx, yy - fy
        u = np.clip(np.sqrt(dx * dx + dy * dy) / R, 0.0, 1.0)
        k = 1.0 / factor + (1.0 - 1.0 / factor) * (u * u * (3 - 2 * u))  # 1/factor at the centre → 1 at the edge
        off_x += dx * (k - 1.0)
        off_y += dy * (k - 1.0)
    map_x, map_y = xx + off_x, yy + off_y
    x0 = np.clip(np.round(map_x).astype(np.int32), 0, w - 1)
    y0 = np.clip(np.round(map_y).astype(np.int32), 0, h - 1)
    return Image.fromarray(src[y0, x0].astype(np.uint8))


def draw_mouth(d: ImageDraw.ImageDraw, x: float, y: float, width: float, openness: float) -> tuple[float, ...] | None:
    """The mouth layer: an open mouth `openness` (0–1) of its full height at (x, y); closed draws nothing (the
    art's own mouth shows). Returns the drawn box."""
    if openness < 0.08:
        return None
    hw, hh = width * 0.5, width * 0.42 * openness
    box = (x - hw, y - hh * 0.5, x + hw, y + hh)
    d.ellipse(box, fill=MOUTH_FILL, outline=MOUTH_INK, width=max(1, int(width / 14)))
    return box
