"""Pictogram props for any noun: the plan's `things` drawn from Noto Color Emoji, matched by name and meaning.

Art: Noto Color Emoji (Debian `fonts-noto-color-emoji`, SIL Open Font License 1.1), rendered through Pillow's
colour-font support. Names: the CLDR short names of the `emoji` package (one per code point). A noun is
matched (1) by name: the whole name, then the name's head word ("apple" → "red apple"), with plural → singular;
(2) by meaning: cosine similarity of the studio's sentence embedder (the knowledge base's MiniLM, loaded once
per process) between the noun and every name, the names' vectors cached on disk. Below `MIN_SIMILARITY` the
noun gets a labelled placeholder and a warning — never silence.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from studio.resources.image.storyboard.draw import font

log = logging.getLogger("studio.props")

EMOJI_FONT_PATHS = [Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"),
                    Path("/usr/share/fonts/noto/NotoColorEmoji.ttf")]
EMOJI_STRIKE = 109  # the only bitmap size Noto Color Emoji carries
MAX_EMOJI_VERSION = 15.0  # Debian 12's font covers Emoji 15.0; newer code points would draw as tofu
MIN_SIMILARITY = 0.6
ATTRIBUTION = "Props: Noto Color Emoji, © Google, SIL Open Font License 1.1 (fonts-noto-color-emoji)"
PROPS_VERSION = 1
# Things that fly: they flutter along a wavy path instead of standing on the ground.
FLYING = {"butterfly", "bird", "bee", "honeybee", "bat", "dove", "eagle", "owl", "parrot", "fly", "mosquito",
          "ladybug", "lady beetle", "dragon", "kite", "balloon", "airplane", "helicopter", "rocket", "ufo",
          "flying saucer", "ghost", "duck", "swan", "flamingo", "feather", "leaf", "fairy", "angel", "cloud",
          "crow", "seagull", "pigeon", "hummingbird", "dragonfly", "moth", "wasp", "phoenix", "drone"}


# Symbols that are never an object in a scene (and would win embedding matches by spelling: acorn → capricorn).
_NOT_THINGS = {"button", "keycap", "sign", "symbol", "mark", "aries", "taurus", "gemini", "cancer", "leo", "virgo",
               "libra", "scorpio", "sagittarius", "capricorn", "aquarius", "pisces", "ophiuchus", "squared",
               "circled", "arrow", "arrows"}
# Nouns whose best picture is not the shortest name that ends with them.
ALIASES = {"ball": "soccer ball", "acorn": "chestnut", "nut": "chestnut", "treasure": "gem stone",
           "treasure chest": "gem stone", "jewel": "gem stone", "shell": "spiral shell", "sea shell": "spiral shell",
           "seashell": "spiral shell", "car": "automobile", "boat": "sailboat", "plane": "airplane",
           "ship": "passenger ship", "bush": "deciduous tree", "flower": "blossom", "bug": "bug"}


class PropMatch:
    """How a noun is drawn: an emoji (`char`, `name`, `how` = name|embedding) or a placeholder."""

    def __init__(self, noun: str, char: str | None, name: str | None, how: str, score: float):
        self.noun, self.char, self.name, self.how, self.score = noun, char, name, how, round(float(score), 3)

    @property
    def placeholder(self) -> bool:
        return self.char is None

    def as_dict(self) -> dict:
        return {"noun": self.noun, "emoji": self.char, "name": self.name, "how": self.how, "score": self.score,
                "placeholder": self.placeholder}


@dataclass(frozen=True)
class _Catalogue:
    chars: tuple[str, ...]
    names: tuple[str, ...]  # "red apple"


def emoji_font_path() -> Path | None:
    return next((p for p in EMOJI_FONT_PATHS if p.is_file()), None)


def props_tag() -> str:
    """Part of every recipe that draws props: the font file and the names' version."""
    import emoji

    p = emoji_font_path()
    return f"props@{PROPS_VERSION}+emoji{emoji.__version__}+{p.stat().st_size if p else 'nofont'}"


@functools.cache
def catalogue() -> _Catalogue:
    import emoji

    chars, names = [], []
    for ch, data in emoji.EMOJI_DATA.items():
        name = data["en"].strip(":").replace("_", " ").lower()
        if data.get("status") != emoji.STATUS["fully_qualified"] or data.get("E", 99) > MAX_EMOJI_VERSION:
            continue
        if "skin tone" in name or name.startswith("flag") or any(0x1F1E6 <= ord(c) <= 0x1F1FF for c in ch):
            continue
        if set(name.split()) & _NOT_THINGS:  # signs, buttons, zodiac: never a thing on screen
            continue
        chars.append(ch)
        names.append(name)
    return _Catalogue(tuple(chars), tuple(names))


def singular(word: str) -> str:
    w = word.lower()
    for suffix, repl in (("ies", "y"), ("ves", "f"), ("ches", "ch"), ("shes", "sh"), ("sses", "ss"), ("s", "")):
        if w.endswith(suffix) and len(w) > len(suffix) + 2 and not w.endswith("ss"):
            return w[: -len(suffix)] + repl
    return w


def normalise_noun(noun: str) -> str:
    words = re.sub(r"[^a-z0-9 \-]", " ", noun.lower()).split()
    words = [w for w in words if w not in ("a", "an", "the", "some", "his", "her", "its", "their", "my")]
    return " ".join([*words[:-1], singular(words[-1])]) if words else ""


def match_by_name(noun: str) -> PropMatch | None:
    cat, key = catalogue(), normalise_noun(noun)
    if not key:
        return None
    key = ALIASES.get(key, key)
    best: tuple[int, int, int] | None = None  # (rank, name length, index): lower is better
    for i, name in enumerate(cat.names):
        if name == key:
            rank = 0
        elif name.endswith(" " + key) or name.endswith(" " + key.replace(" ", "")):
            rank = 1
        elif key in name.split():
            rank = 2
        else:
            continue
        cand = (rank, len(name), i)
        best = cand if best is None or cand < best else best
    if best is None:
        return None
    i = best[2]
    return PropMatch(noun, cat.chars[i], cat.names[i], "name", 1.0 - 0.05 * best[0])


_EMBED_LOCK = threading.Lock()


@functools.cache
def _embedder():
    from studio.resources.registry import load_backend

    return load_backend("embedder")  # the knowledge base's embedder: the model loads once per process


def _name_vectors() -> np.ndarray:
    """Embeddings of every catalogue name, cached on disk per embedder and catalogue."""
    from studio.configs.settings import get_settings

    emb, cat = _embedder(), catalogue()
    digest = hashlib.sha256(("\n".join(cat.names) + emb.model_id).encode()).hexdigest()[:16]
    path = get_settings().home / "cache" / "props" / f"names-{digest}.npy"
    with _EMBED_LOCK:
        if path.is_file():
            return np.load(path)
        vecs = emb.embed([f"a {n}" for n in cat.names]).astype(np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp.npy")
        np.save(tmp, vecs)
        tmp.replace(path)
        return vecs


@functools.lru_cache(maxsize=512)
def match_noun(noun: str) -> PropMatch:
    """The emoji for a noun, by name then by embedding similarity; a placeholder match when nothing is close."""
    if (hit := match_by_name(noun)) is not None:
        return hit
    key = normalise_noun(noun)
    if key:
        try:
            vecs = _name_vectors()
            q = _embedder().embed([f"a {key}"])[0]
            sims = vecs @ q
            i = int(np.argmax(sims))
            if sims[i] >= MIN_SIMILARITY:
                cat = catalogue()
                return PropMatch(noun, cat.chars[i], cat.names[i], "embedding", float(sims[i]))
            log.warning("no pictogram for %r (closest: %r, similarity %.2f): drawing a labelled placeholder",
                        noun, catalogue().names[i], sims[i])
            return PropMatch(noun, None, None, "placeholder", float(sims[i]))
        except Exception as e:  # no embedder here: the name match was the only chance
            log.warning("no pictogram for %r by name and the embedder is unavailable (%s): placeholder", noun, e)
    else:
        log.warning("empty noun %r: placeholder", noun)
    return PropMatch(noun, None, None, "placeholder", 0.0)


def is_flying(noun: str, match: PropMatch | None = None) -> bool:
    key = normalise_noun(noun)
    names = {key, key.split()[-1] if key else ""}
    if match is not None and match.name:
        names |= {match.name, match.name.split()[-1]}
    return bool(names & FLYING)


_GLYPHS = threading.local()


@functools.lru_cache(maxsize=256)
def _glyph(char: str) -> Image.Image:
    from PIL import ImageFont

    path = emoji_font_path()
    if path is None:
        raise FileNotFoundError("Noto Color Emoji is not installed (Debian: apt-get install fonts-noto-color-emoji)")
    fonts = _GLYPHS.__dict__.setdefault("fonts", {})
    if "emoji" not in fonts:  # FreeType faces are not shared between threads
        fonts["emoji"] = ImageFont.truetype(str(path), EMOJI_STRIKE)
    img = Image.new("RGBA", (EMOJI_STRIKE * 2, EMOJI_STRIKE * 2), (0, 0, 0, 0))
    ImageDraw.Draw(img).text((EMOJI_STRIKE // 4, EMOJI_STRIKE // 4), char, font=fonts["emoji"], embedded_color=True)
    bbox = img.getchannel("A").getbbox()
    return img.crop(bbox) if bbox else img


def placeholder_art(noun: str, size: int = 160) -> Image.Image:
    """A dashed card with the noun written on it and a question mark: visibly 'something should be here'."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([4, 4, size - 5, size - 5], radius=size // 8, fill=(255, 246, 214, 235),
                        outline=(200, 60, 60, 255), width=max(2, size // 40))
    d.text((size / 2, size * 0.36), "?", font=font(int(size * 0.4), "bold"), fill=(200, 60, 60, 255), anchor="mm")
    label = noun if len(noun) <= 14 else noun[:13] + "…"
    fs = max(10, min(int(size * 0.16), int(size * 1.5 / max(len(label), 1))))
    d.text((size / 2, size * 0.76), label, font=font(fs, "bold"), fill=(40, 30, 30, 255), anchor="mm")
    return img


def prop_art(match: PropMatch, size: int) -> Image.Image:
    """The prop as RGBA, its larger side `size` pixels."""
    art = _glyph(match.char) if match.char else placeholder_art(match.noun)
    k = size / max(art.width, art.height)
    return art.resize((max(1, round(art.width * k)), max(1, round(art.height * k))), Image.LANCZOS)
