"""Cut-out animation on any CPU: a shot → a small scene graph → frames at the output fps, piped raw to ffmpeg.

The scene graph: the set (background by location, time of day and weather), props (the shot's things as
Noto Color Emoji pictograms, or labelled placeholders), characters (reference art or drawn figures, with rig
points for the mouth layer and the expression warp); every actor has a per-frame position, scale, squash and
stretch, rotation, flip and z-order from the motion primitive the shot's verb selects (animation_motion.py),
under a camera (pan, zoom, tilt, shake). Frames go to ffmpeg's stdin as rgb24 — no per-frame files — into a
lossless clip; the segment stage then adds the voice, subtitles and effects. `Scene.metadata()` is what the
segment's sidecar records: the actors, what each thing of the plan became, and per-frame positions on screen.

Same shot + seed → same frames (every random choice is seeded; Pillow and numpy drawing is deterministic).
"""

from __future__ import annotations

import logging
import random
import subprocess
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from studio.configs.errors import StudioError
from studio.configs.schema import studio_config
from studio.configs.vocabulary import Shot
from studio.resources.image.storyboard import props as props_mod
from studio.resources.image.storyboard.draw import SS
from studio.resources.image.storyboard.figures import character_art, draw_mouth, exaggerate, rig_for_art
from studio.resources.image.storyboard.scenery import (
    apply_weather,
    draw_background,
    place_kind,
    scenery_for,
    weather_for,
    weather_layer,
    weather_particles,
)
from studio.resources.media.ffmpeg import BITEXACT_OUTPUT, ffmpeg_path
from studio.resources.video.animation_motion import TARGETED, ActorSpec, Track, camera_path, plan_motion, verb_family
from studio.resources.video.lipsync import mouth_openness

log = logging.getLogger("studio.animation")
ANIMATION_VERSION = 1  # bump when the frames for the same shot change: part of every animated segment recipe
# camera size → (character height, feet line) as fractions of the frame height, and how far paths travel
LAYOUT = {"wide": (0.42, 0.86, 1.0), "medium": (0.66, 0.97, 0.8), "close-up": (1.2, 1.28, 0.35),
          "extreme-close-up": (1.9, 1.85, 0.15)}
COVER_NOUN = "deciduous tree"  # what a character hides behind when the shot names nothing
THROWN_NOUN = "softball"  # what flies between two characters in a throw/catch when the shot names nothing


class AnimationError(StudioError):
    pass


@dataclass
class Actor:
    spec: ActorSpec
    art: Image.Image  # RGBA at base height
    rig: dict | None  # in `art` pixels
    track: Track | None = None
    info: dict = field(default_factory=dict)
    _cache: OrderedDict = field(default_factory=OrderedDict)

    def sprite(self, scale: float, sx: float, sy: float, rot: float, flip: bool) -> Image.Image:
        flip = flip and not self.info.get("placeholder")  # a placeholder's label stays readable
        key = (round(scale * sx, 2), round(scale * sy, 2), int(round(rot)), bool(flip))
        img = self._cache.get(key)
        if img is None:
            w = max(1, round(self.art.width * key[0]))
            h = max(1, round(self.art.height * key[1]))
            img = self.art.resize((w, h), Image.BILINEAR) if (w, h) != self.art.size else self.art
            if key[3]:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            if key[2]:
                img = img.rotate(key[2], resample=Image.BILINEAR, expand=True)
            self._cache[key] = img
            if len(self._cache) > 192:
                self._cache.popitem(last=False)
        return img


@dataclass
class Scene:
    W: int
    H: int
    fps: int
    n: int
    background: Image.Image
    actors: list[Actor]
    camera: np.ndarray  # (n, 3): centre x, centre y, zoom
    weather: str
    particles: list
    mouth: dict[str, np.ndarray]  # actor id → openness per frame
    info: dict
    zoomed: dict = field(default_factory=dict)  # magnification → the set magnified once (constant-zoom cameras)
    background2x: Image.Image | None = None  # the set at 2× (drawn at that size): source of changing zooms

    def metadata(self, frames: dict) -> dict:
        return {**self.info, "actors": [a.info for a in self.actors], "frames": frames,
                "camera": [[round(float(v), 2) for v in row] for row in self.camera]}


# --------------------------------------------------------------------------- building the scene
def _roles(shot: Shot, family: str, things: list[str]) -> tuple[str | None, str | None]:
    """(subject id, target id): the first character acts; the target is the shot's, else (for verbs that need
    one) the first thing, else the second character."""
    subject = shot.characters[0] if shot.characters else (f"thing:{things[0]}" if things else None)
    ids = {c.lower(): c for c in shot.characters} | {t.lower(): f"thing:{t}" for t in things}
    target = ids.get((shot.target or "").lower())
    if target is None and family in TARGETED | {"idle"}:
        others = [f"thing:{t}" for t in things] + list(shot.characters[1:])
        target = next((o for o in others if o != subject), None)
    return subject, (target if target != subject else None)


@dataclass
class _Set:
    """The shot's set and what its things became: scenery drawn by the set, props, stand-ins."""
    scenery: str
    weather: str
    background: Image.Image  # at W×H
    background2x: Image.Image
    things: list[dict]  # the sidecar's record of every thing of the plan
    props: list[str]  # nouns drawn as props


def _build_set(shot: Shot, W: int, H: int, rng: random.Random) -> _Set:
    things_meta, prop_nouns = [], []
    for noun in shot.things:
        kind = place_kind(noun)
        if kind:  # the sea, a storm: drawn by the set, not as a prop
            things_meta.append({"noun": noun, "role": kind})
        else:
            prop_nouns.append(noun)
    scenery = scenery_for(" ".join([shot.location, *[t["noun"] for t in things_meta if t["role"] == "scenery"]]),
                          shot.action)
    weather = weather_for(shot.weather, shot.location, shot.action, *shot.things)
    bg2 = apply_weather(draw_background(W * SS, H * SS, scenery, shot.time_of_day, rng).convert("RGB"), weather, rng)
    return _Set(scenery, weather, bg2.resize((W, H), Image.LANCZOS), bg2, things_meta, prop_nouns)


def _stand_ins(family: str, the_set: _Set, subject: str | None, target: str | None) -> str | None:
    """A cover to hide behind and a thing to throw when the shot names none; the thrown noun, if any."""
    if family == "hide" and not any(not props_mod.is_flying(t) for t in the_set.props):
        the_set.props.append(COVER_NOUN)
        the_set.things.append({"noun": COVER_NOUN, "role": "cover"})
    thrown = next((t for t in the_set.props if f"thing:{t}" not in (subject, target)), None)
    if family in ("throw", "catch") and thrown is None:
        thrown = THROWN_NOUN
        the_set.props.append(thrown)
        the_set.things.append({"noun": thrown, "role": "thrown"})
    return thrown


def _framed_cast(shot: Shot, subject: str | None, target: str | None) -> tuple[list[str], str | None, str | None]:
    """(cast, subject, target) on screen: a close-up frames one face, the speaker's."""
    cast = list(shot.characters)
    if shot.camera in ("close-up", "extreme-close-up") and len(cast) > 1:
        speaker = shot.dialogue.character if shot.dialogue else None
        cast = [speaker if speaker in cast else cast[0]]
        subject = cast[0]
        target = target if target and target.startswith("thing:") else None
    return cast, subject, target


def _character_actor(shot: Shot, cid: str, ch_px: float, role: str, subject: str | None,
                     cutouts: dict[str, Image.Image] | None, warnings: list[str]) -> Actor:
    _, preset = studio_config().characters.resolve(cid)
    speaking = shot.dialogue is not None and shot.dialogue.character == cid
    emotion = shot.emotion if cid == subject or speaking or not shot.dialogue else "neutral"
    art, rig = character_art(preset, emotion), rig_for_art(preset)
    cut = bool(cutouts and cid in cutouts)
    if cut:
        art, rig = cutouts[cid], None
    elif rig is None:
        warnings.append(f"{cid}: reference art has no rig (.rig.json beside it): no mouth flaps or warp")
    elif shot.exaggeration > 1.0 and emotion == shot.emotion:
        art = exaggerate(art, rig, shot.exaggeration)
    k = ch_px / art.height
    art = art.resize((max(1, round(art.width * k)), max(1, round(ch_px))), Image.LANCZOS)
    rig = _scale_rig(rig, k)
    return Actor(ActorSpec(cid, "character", ch_px, role=role), art, rig,
                 info={"id": cid, "kind": "character", "role": role, "name": preset.display_name,
                       "emotion": emotion, "exaggeration": shot.exaggeration if emotion == shot.emotion else 1.0,
                       "rigged": rig is not None, "cutout": cut})


def _prop_actor(noun: str, family: str, the_set: _Set, H: int, ch_px: float, role: str,
                warnings: list[str]) -> Actor:
    match = props_mod.match_noun(noun)
    if match.placeholder:
        warnings.append(f"no pictogram matches {noun!r}: a labelled placeholder is drawn")
    flying = props_mod.is_flying(noun, match)
    size = min(H * 0.32, max(H * (0.13 if flying else 0.1), ch_px * (0.26 if flying else 0.33)))
    if noun == COVER_NOUN and family == "hide":
        size = ch_px * 0.9
    pid = f"thing:{noun}"
    the_set.things.append({"noun": noun, "role": "prop", "actor": pid, "placeholder": match.placeholder})
    return Actor(ActorSpec(pid, "prop", size, flying=flying, role=role), props_mod.prop_art(match, int(size)), None,
                 info={"id": pid, "kind": "prop", "role": role, "flying": flying, **match.as_dict()})


def _prop_role(noun: str, family: str, props: list[str], subject: str | None, target: str | None,
               thrown: str | None) -> str:
    pid = f"thing:{noun}"
    if pid in (subject, target):
        return "subject" if pid == subject else "target"
    if family == "hide" and noun == (COVER_NOUN if COVER_NOUN in props else props[0]):
        return "cover"
    return "projectile" if family in ("throw", "catch") and noun == thrown else "extra"


def _shake(weather: str, family: str, n: int, W: int, rng: random.Random) -> np.ndarray | None:
    """Camera shake: a storm or a tremble shakes the frame; a fall jolts it when the body hits the ground."""
    if weather != "storm" and family not in ("tremble", "fall"):
        return None
    amp = 0.006 * W if weather == "storm" or family == "tremble" else 0.0
    shake = np.array([rng.uniform(-1, 1) for _ in range(n)]) * amp
    if family == "fall":
        hit = np.clip((np.arange(n) / max(n - 1, 1) - 0.45) / 0.1, 0, 1)
        shake = shake + 0.012 * W * np.sin(np.pi * hit) * np.cos(np.arange(n) * 2.1)
    return shake


def build_scene(shot: Shot, W: int, H: int, fps: int, seconds: float, seed: int,
                voice_timing: dict | None = None, voice_offset: float = 0.0,
                cutouts: dict[str, Image.Image] | None = None) -> Scene:
    """`cutouts`: character id → RGBA art cut out of a keyframe by its mask, used instead of the drawn figure
    (no rig: no mouth flaps or warp on a cut-out)."""
    n = max(1, int(round(seconds * fps)))
    rng = random.Random(zlib.crc32(f"{seed}|{shot.id}|{shot.location}|{shot.action}".encode()))
    family = verb_family(shot.verb, shot.action)
    warnings: list[str] = []
    the_set = _build_set(shot, W, H, rng)
    ch_h, ground, travel = LAYOUT[shot.camera]
    ch_px = ch_h * H
    subject, target = _roles(shot, family, the_set.props)
    thrown = _stand_ins(family, the_set, subject, target)
    cast, subject, target = _framed_cast(shot, subject, target)
    actors = [_character_actor(shot, cid, ch_px, "subject" if cid == subject else "target" if cid == target
                               else "extra", subject, cutouts, warnings) for cid in cast]
    actors += [_prop_actor(noun, family, the_set, H, ch_px,
                           _prop_role(noun, family, the_set.props, subject, target, thrown), warnings)
               for noun in list(the_set.props)]
    tracks = plan_motion(family, [a.spec for a in actors], W, H, ground * H, n, fps, shot.emotion,
                         rng.randrange(1 << 30), travel)
    for a in actors:
        a.track = tracks[a.spec.id]
    camera = camera_path(shot.camera_move, n, W, H, _shake(the_set.weather, family, n, W, rng))
    mouths = {}
    if shot.dialogue is not None and voice_timing is not None:
        mouths[shot.dialogue.character] = mouth_openness(voice_timing, n, fps, voice_offset)
    for w in warnings:
        log.warning("shot %s: %s", shot.id, w)
    info = {"version": ANIMATION_VERSION, "shot": shot.id, "verb": shot.verb, "primitive": family,
            "subject": subject, "target": target, "cast": cast, "scenery": the_set.scenery, "location": shot.location,
            "time_of_day": shot.time_of_day, "weather": the_set.weather, "things": the_set.things,
            "warnings": warnings, "size": [W, H], "fps": fps, "nframes": n,
            "attribution": [props_mod.ATTRIBUTION] if the_set.props else []}
    particles = weather_particles(the_set.weather, W, H, rng.randrange(1 << 30))
    return Scene(W, H, fps, n, the_set.background, actors, camera, the_set.weather, particles, mouths, info,
                 background2x=the_set.background2x)


def _scale_rig(rig: dict | None, k: float) -> dict | None:
    if rig is None:
        return None
    return {"eyes": [[x * k, y * k, r * k] for x, y, r in rig["eyes"]],
            "mouth": [rig["mouth"][0] * k, rig["mouth"][1] * k, rig["mouth"][2] * k]}


# --------------------------------------------------------------------------- drawing frames
def _place(a: Actor, i: int, z: float = 1.0, off: tuple[float, float] = (0.0, 0.0)
           ) -> tuple[Image.Image, int, int, tuple[float, float] | None]:
    """The actor's sprite for frame i, its top-left, and where its rig mouth lands, in frame pixels of a camera
    that magnifies the set by `z` with its top-left at `off` (in the magnified set)."""
    tr = a.track
    scale, sx, sy, rot, flip = float(tr.scale[i]) * z, float(tr.sx[i]), float(tr.sy[i]), float(tr.rot[i]), \
        bool(tr.flip[i])
    img = a.sprite(scale, sx, sy, rot, flip)
    w0, h0 = a.art.width * round(scale * sx, 2), a.art.height * round(scale * sy, 2)
    cx, cy = float(tr.x[i]) * z - off[0], float(tr.y[i]) * z - off[1] - h0 / 2  # rotate about the centre
    left, top = int(round(cx - img.width / 2)), int(round(cy - img.height / 2))
    mouth = None
    if a.rig is not None:
        mx, my = a.rig["mouth"][0] * round(scale * sx, 2), a.rig["mouth"][1] * round(scale * sy, 2)
        mx = w0 - mx if flip else mx
        dx, dy = mx - w0 / 2, my - h0 / 2
        th = np.deg2rad(int(round(rot)))
        mouth = (cx + dx * np.cos(th) + dy * np.sin(th), cy - dx * np.sin(th) + dy * np.cos(th))
    return img, left, top, mouth


def _set_view(scene: Scene, i: int) -> tuple[Image.Image, float, tuple[float, float]]:
    """The set as the camera sees it in frame i: (picture, magnification, offset of the picture's top-left in
    the magnified set). A camera with one magnification for the whole shot (pan, tilt, shake) crops a set
    magnified once; a changing zoom (push-in, pull-out) samples the 2× set at twice the frame size and
    box-averages it down (a bilinear resample of the frame costs ~10× more)."""
    W, H = scene.W, scene.H
    cx, cy, z = (float(v) for v in scene.camera[i])
    if z == 1.0 and cx == W / 2 and cy == H / 2:
        return scene.background.copy(), 1.0, (0.0, 0.0)
    x0, y0 = cx - W / (2 * z), cy - H / (2 * z)
    if np.all(scene.camera[:, 2] == scene.camera[0, 2]) or scene.background2x is None:
        big = scene.zoomed.get(z)
        if big is None:
            big = scene.zoomed[z] = scene.background.resize((round(W * z), round(H * z)), Image.LANCZOS)
        ox = min(max(0, int(round(x0 * z))), big.width - W)
        oy = min(max(0, int(round(y0 * z))), big.height - H)
        return big.crop((ox, oy, ox + W, oy + H)), z, (float(ox), float(oy))
    k = scene.background2x.width / W
    box = (x0 * k, y0 * k, (x0 + W / z) * k, (y0 + H / z) * k)
    view = scene.background2x.resize((2 * W, 2 * H), Image.NEAREST, box=box).reduce(2)
    return view, z, (x0 * z, y0 * z)


def draw_frame(scene: Scene, i: int, hide: frozenset[str] = frozenset()) -> tuple[Image.Image, dict]:
    """Frame i (RGB, camera applied) and what is where on screen: actor id → [x0, y0, x1, y1], mouth boxes."""
    W, H = scene.W, scene.H
    frame, z, off = _set_view(scene, i)
    d = ImageDraw.Draw(frame)
    boxes: dict[str, list[int]] = {}
    mouths: dict[str, list[int] | None] = {}
    order = sorted(scene.actors, key=lambda a: (float(a.track.z[i]), a.spec.flying, float(a.track.y[i])))
    for a in order:
        if a.spec.id in hide:
            continue
        img, left, top, mouth = _place(a, i, z, off)
        frame.paste(img, (left, top), img)
        boxes[a.spec.id] = [left, top, left + img.width, top + img.height]
        if a.spec.id in scene.mouth and mouth is not None:
            box = draw_mouth(d, mouth[0], mouth[1], a.rig["mouth"][2] * float(a.track.scale[i]) * z,
                             float(scene.mouth[a.spec.id][i]))
            mouths[a.spec.id] = [int(v) for v in box] if box else None
    if weather_layer(d, scene.weather, scene.particles, i / scene.fps, W, H):
        frame = Image.blend(frame, Image.new("RGB", frame.size, (246, 248, 255)), 0.55)
    return frame, {"boxes": boxes, "mouths": mouths}


def render_scene_frames(scene: Scene, sink, hide: frozenset[str] = frozenset()) -> dict:
    """Draw every frame into `sink(rgb_bytes)`; returns the per-frame record for the sidecar."""
    rec: dict[str, Any] = {a.spec.id: {"x": [], "y": [], "bbox": []} for a in scene.actors}
    mouth_rec: dict[str, dict[str, list]] = {k: {"open": [], "box": []} for k in scene.mouth}
    for i in range(scene.n):
        frame, where = draw_frame(scene, i, hide)
        sink(frame.tobytes())
        for a in scene.actors:
            r = rec[a.spec.id]
            r["x"].append(round(float(a.track.x[i]), 1))
            r["y"].append(round(float(a.track.y[i]), 1))
            r["bbox"].append(where["boxes"].get(a.spec.id))
        for k, m in mouth_rec.items():
            m["open"].append(float(scene.mouth[k][i]))
            m["box"].append(where["mouths"].get(k))
    return {"actors": rec, "mouths": mouth_rec}


# --------------------------------------------------------------------------- ffmpeg
def pipe_frames_to_clip(W: int, H: int, fps: int, n: int, produce, out_path: Path) -> Any:
    """Run `produce(sink)` with a sink that writes rgb24 frames into ffmpeg's stdin → a lossless clip at
    `out_path` (H.264 RGB, qp 0, one thread, bit-exact flags). Returns what `produce` returns."""
    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo",
           "-pix_fmt", "rgb24", "-s", f"{W}x{H}", "-r", str(fps), "-i", "pipe:0", "-frames:v", str(n),
           "-c:v", "libx264rgb", "-preset", "ultrafast", "-qp", "0", "-threads", "1", *BITEXACT_OUTPUT,
           "-f", "matroska", str(out_path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        result = produce(proc.stdin.write)
        proc.stdin.close()
    except BrokenPipeError:
        result = None
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0 or not out_path.is_file():
        raise AnimationError(f"ffmpeg could not encode the animated frames: {err.strip()[-400:]}")
    return result


def render_animation(shot: Shot, out_path: Path | str, W: int, H: int, fps: int, seconds: float, seed: int,
                     voice_timing: dict | None = None, voice_offset: float = 0.0,
                     cutouts: dict[str, Image.Image] | None = None) -> dict:
    """The shot as a lossless, silent clip at `out_path`; returns the scene metadata for the sidecar."""
    scene = build_scene(shot, W, H, fps, seconds, seed, voice_timing, voice_offset, cutouts)
    frames = pipe_frames_to_clip(W, H, fps, scene.n, lambda sink: render_scene_frames(scene, sink), Path(out_path))
    return scene.metadata(frames)
