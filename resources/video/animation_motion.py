"""Motion for the cut-out animator: the shot's verb → a motion primitive → per-frame states of every actor.

A state is where an actor stands (x, y of its feet, in frame pixels before the camera), its scale, squash and
stretch (sx, sy), rotation (degrees, counter-clockwise) and whether it is flipped (art faces right; flipped
faces left). Primitives: walk/run along a path, chase, flee, jump (squash and stretch), fall, hide/peek,
fly/flutter, throw/catch, dance, tremble, idle; an emotion adds a pose on top (a sad droop, a scared
tremble, a happy bounce). Everything is a pure function of (shot, seed): same shot → same motion.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

import numpy as np

# verb family → words (lemmas, phrasal verbs first); the first family whose phrase occurs in the verb or the
# action line wins, so "runs away from" is a flee before "run" is a run.
VERB_FAMILIES: list[tuple[str, tuple[str, ...]]] = [
    ("flee", ("run away", "runs away", "running away", "ran away", "get away", "flee", "escape", "run from",
              "retreat", "dodge", "avoid")),
    ("chase", ("chase", "pursue", "follow", "hunt", "go after", "run after", "race after", "stalk")),
    ("throw", ("throw", "toss", "hurl", "pass", "kick", "give", "fling", "pitch", "lob")),
    ("catch", ("catch", "grab", "snatch", "receive", "take")),
    ("hide", ("hide", "peek", "sneak", "duck behind", "spy", "lurk")),
    ("fall", ("fall", "trip", "tumble", "slip", "collapse", "faint", "drop down", "stumble")),
    ("jump", ("jump", "hop", "leap", "bounce", "spring", "skip", "vault")),
    ("fly", ("fly", "flutter", "soar", "glide", "float", "hover", "swoop", "flap")),
    ("dance", ("dance", "celebrate", "twirl", "spin", "party", "cheer", "wiggle", "boogie")),
    ("tremble", ("tremble", "shiver", "shake", "cower", "quake", "panic", "freeze")),
    ("run", ("run", "race", "dash", "sprint", "hurry", "rush", "zoom", "charge")),
    ("walk", ("walk", "stroll", "wander", "go", "move", "approach", "march", "head", "step", "travel", "come")),
]
TARGETED = {"chase", "flee", "throw", "catch", "walk", "run", "hide"}


def _forms(word: str) -> set[str]:
    """Inflected forms of a lemma (chase → chases, chased, chasing) for matching free text."""
    w = word
    stem = w[:-1] if w.endswith("e") else w
    double = w + w[-1] if re.fullmatch(r"[^aeiou]*[aeiou][bdgmnprt]", w) else w
    return {w, w + "s", w + "es", stem + "ed", stem + "ing", double + "ing", double + "ed", w[:-1] + "ies",
            w[:-1] + "ied"} if w else set()


def verb_family(verb: str | None, action: str = "") -> str:
    """The motion primitive for a shot: from the structured verb first, else from the action line; idle."""
    for text in (verb or "", action):
        low = " " + re.sub(r"[^a-z ]", " ", text.lower()) + " "
        for family, phrases in VERB_FAMILIES:
            for ph in phrases:
                head, *rest = ph.split()
                if any(f" {f}{(' ' + ' '.join(rest)) if rest else ''} " in low for f in _forms(head)):
                    return family
    return "idle"


@dataclass
class ActorSpec:
    id: str  # character id or "thing:<noun>"
    kind: str  # character | prop
    height: float  # base height on screen (px)
    flying: bool = False
    role: str = "extra"  # subject | target | extra


@dataclass
class Track:
    x: np.ndarray
    y: np.ndarray
    scale: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    rot: np.ndarray
    flip: np.ndarray
    z: np.ndarray = field(default_factory=lambda: np.zeros(0))


def ease(u: np.ndarray) -> np.ndarray:
    return u * u * (3 - 2 * u)


def _track(n: int, x: float, y: float) -> Track:
    one = np.ones(n)
    return Track(x * one, y * one, one.copy(), one.copy(), one.copy(), np.zeros(n), np.zeros(n, bool), np.zeros(n))


def _run_bob(t: np.ndarray, h: float, hz: float, amp: float) -> np.ndarray:
    return -np.abs(np.sin(math.pi * hz * t)) * amp * h


def _flutter(tr: Track, t: np.ndarray, h: float, phase: float, amp: float = 0.5) -> None:
    """A wavy flight with flapping wings (horizontal squash) — never a straight line."""
    tr.y = tr.y - h * (0.9 + amp * np.sin(2 * math.pi * 0.9 * t + phase))
    tr.x = tr.x + h * 0.35 * np.sin(2 * math.pi * 0.45 * t + phase * 2)
    tr.sx = tr.sx * (1 - 0.35 * np.abs(np.sin(2 * math.pi * 4.0 * t + phase)))
    tr.rot = tr.rot + 8 * np.sin(2 * math.pi * 0.9 * t + phase)


def _jump(tr: Track, t: np.ndarray, h: float, period: float) -> None:
    ph = (t % period) / period
    crouch, air = ph < 0.2, (ph >= 0.2) & (ph < 0.8)
    land = ph >= 0.8
    a = np.clip((ph - 0.2) / 0.6, 0, 1)
    tr.y = tr.y - np.where(air, 4 * a * (1 - a) * 0.55 * h, 0.0)
    sq = np.where(crouch, 1 - 0.22 * np.sin(math.pi * ph / 0.2), 1.0)
    sq = np.where(land, 1 - 0.18 * np.sin(math.pi * (ph - 0.8) / 0.2), sq)
    st = np.where(air, 1 + 0.15 * np.sin(math.pi * a), 1.0)
    tr.sy, tr.sx = tr.sy * sq * st, tr.sx / np.sqrt(sq * st)


def _face(tr: Track, other_x: np.ndarray | float) -> None:
    tr.flip = np.asarray(other_x) < tr.x


def _face_motion(tr: Track) -> None:
    dx = np.gradient(tr.x) if tr.x.size > 1 else np.zeros_like(tr.x)
    flip = np.zeros(tr.x.size, bool)
    cur = bool(dx[0] < 0) if dx.size else False
    for i, v in enumerate(dx):
        if abs(v) > 0.05:
            cur = v < 0
        flip[i] = cur
    tr.flip = flip


@dataclass
class _Path:
    """What the motion primitives of one shot share: the time axis, the (eased) progress and the path."""
    n: int
    fps: int
    W: int
    H: int
    ground: float
    direction: int  # +1: the path runs left to right, -1: right to left
    travel: float
    rng: random.Random
    t: np.ndarray = field(init=False)  # seconds
    u: np.ndarray = field(init=False)  # 0 → 1 over the shot
    e: np.ndarray = field(init=False)  # eased u

    def __post_init__(self) -> None:
        self.t = np.arange(self.n) / self.fps
        self.u = np.arange(self.n) / max(self.n - 1, 1)
        self.e = ease(self.u)

    def at(self, f: float) -> float:
        """The x of a frame fraction `f` along the path."""
        return self.W * (0.5 + self.direction * (f - 0.5) * self.travel)

    def fly(self, a: ActorSpec, tr: Track) -> None:
        if a.flying:
            _flutter(tr, self.t, a.height * 1.4, self.rng.uniform(0, 6.28))


# A primitive moves the subject's track `s` in place; chase and flee also return the target's track.
def _chase(p: _Path, s: Track, hs: float, target: ActorSpec) -> Track:
    s.x = p.at(0.1) + (p.at(0.72) - p.at(0.1)) * p.e
    tt = _track(p.n, 0, p.ground)
    tt.x = p.at(0.55) + (p.at(0.9) - p.at(0.55)) * p.e
    p.fly(target, tt)
    s.y = s.y + _run_bob(p.t, hs, 3.0, 0.07)
    _face(s, tt.x)
    _face_motion(tt)
    return tt


def _flee(p: _Path, s: Track, hs: float, target: ActorSpec) -> Track:
    s.x = p.at(0.42) + (p.at(0.92) - p.at(0.42)) * ease(np.clip(p.u * 1.25 - 0.1, 0, 1))
    tt = _track(p.n, p.at(0.18), p.ground)
    tt.x = p.at(0.18) + (p.at(0.3) - p.at(0.18)) * p.e
    p.fly(target, tt)
    s.y = s.y + _run_bob(p.t, hs, 3.2, 0.07)
    s.x = s.x + np.where(p.u < 0.1, hs * 0.02 * np.sin(2 * math.pi * 11 * p.t), 0)  # a start of fright
    _face_motion(s)
    _face(tt, s.x)
    return tt


def _walk(p: _Path, s: Track, hs: float, fast: bool, targeted: bool) -> None:
    end = 0.62 if targeted else 0.85
    s.x = p.at(0.12) + (p.at(end) - p.at(0.12)) * (p.u if fast else p.e)
    s.y = s.y + _run_bob(p.t, hs, 3.0 if fast else 1.8, 0.07 if fast else 0.03)
    s.rot = s.rot - p.direction * (6 if fast else 2)
    _face_motion(s)


def _jump_in_place(p: _Path, s: Track, hs: float) -> None:
    s.x = s.x + p.W * 0.08 * p.travel * (p.e - 0.5) * p.direction
    _jump(s, p.t, hs, max(0.9, min(1.6, p.n / p.fps / max(1, round(p.n / p.fps / 1.4)))))


def _fall(p: _Path, s: Track) -> None:
    u = p.u
    drop = ease(np.clip(u / 0.45, 0, 1)) ** 2
    s.y = p.ground - p.H * 0.55 * (1 - drop)
    s.rot = s.rot + p.direction * 80 * ease(np.clip((u - 0.35) / 0.3, 0, 1))
    hit = np.clip((u - 0.45) / 0.12, 0, 1)
    s.sy = s.sy * np.where((u > 0.45) & (u < 0.57), 1 - 0.25 * np.sin(math.pi * hit), 1.0)


def _hide(p: _Path, s: Track, hs: float) -> None:
    u = p.u
    s.x = p.at(0.3) + (p.at(0.62) - p.at(0.3)) * ease(np.clip(u / 0.4, 0, 1))
    peek = np.clip((u - 0.55) / 0.2, 0, 1) * (1 - np.clip((u - 0.85) / 0.15, 0, 1))
    s.x = s.x - p.direction * hs * 0.35 * peek
    s.z = np.full(p.n, -1.0)  # behind the cover


def _move_subject(family: str, p: _Path, s: Track, hs: float, target: ActorSpec | None) -> Track | None:
    """Apply the primitive of `family` to the subject's track; the target's track when the primitive moves it."""
    t = p.t
    if family == "chase" and target is not None:
        return _chase(p, s, hs, target)
    if family == "flee" and target is not None:
        return _flee(p, s, hs, target)
    if family in ("walk", "run"):
        _walk(p, s, hs, family == "run", target is not None)
    elif family == "jump":
        _jump_in_place(p, s, hs)
    elif family == "fall":
        _fall(p, s)
    elif family == "hide":
        _hide(p, s, hs)
    elif family == "fly":
        s.x = p.at(0.1) + (p.at(0.9) - p.at(0.1)) * p.u
        _flutter(s, t, hs * 0.9, 0.0, amp=0.35)
        _face_motion(s)
    elif family == "dance":
        s.rot = s.rot + 12 * np.sin(2 * math.pi * 1.2 * t)
        s.y = s.y + _run_bob(t, hs, 2.4, 0.06)
        s.flip = (np.floor(t * 1.2) % 2).astype(bool)
    elif family == "tremble":
        noise = np.array([p.rng.uniform(-1, 1) for _ in range(p.n)])
        s.x = s.x + hs * 0.025 * noise
        s.sy = s.sy * (0.96 + 0.01 * np.sin(2 * math.pi * 9 * t))
    else:  # idle: breathing
        s.sy = s.sy * (1 + 0.015 * np.sin(2 * math.pi * 0.5 * t))
    return None


def _subject_and_target(family: str, p: _Path, subject: ActorSpec, target: ActorSpec | None,
                        tracks: dict[str, Track]) -> None:
    s = _track(p.n, p.W * 0.5, p.ground)
    moved = _move_subject(family, p, s, subject.height, target)
    if moved is not None and target is not None:
        tracks[target.id] = moved
    tracks[subject.id] = s
    if target is not None and target.id not in tracks:  # a target the primitive left alone stands by, facing
        near = family in ("throw", "catch", "walk", "run", "hide")
        tt = _track(p.n, p.at(0.78 if near else 0.72), p.ground)
        p.fly(target, tt)
        _face(tt, s.x)
        tracks[target.id] = tt
        if family not in ("walk", "run", "fly", "dance"):
            _face(s, tt.x)


def _bystanders(p: _Path, actors: list[ActorSpec], tracks: dict[str, Track]) -> None:
    """The cover the subject hides behind (in front of it), and the extras in the free spots, facing the middle."""
    for a in actors:
        if a.role == "cover":
            tr = _track(p.n, p.at(0.62), p.ground)
            tr.z = np.ones(p.n)
            tracks[a.id] = tr
    spots = [0.88, 0.08, 0.5, 0.95, 0.2, 0.65]
    for k, a in enumerate(a for a in actors if a.role == "extra"):
        tr = _track(p.n, p.at(spots[k % len(spots)]), p.ground)
        p.fly(a, tr)
        if a.kind == "character":
            tr.sy = tr.sy * (1 + 0.012 * np.sin(2 * math.pi * 0.4 * p.t + k))
            _face(tr, p.W * 0.5)
        tracks[a.id] = tr


def plan_motion(family: str, actors: list[ActorSpec], W: int, H: int, ground: float, n: int, fps: int,
                emotion: str, seed: int, travel: float = 1.0) -> dict[str, Track]:
    """Per-frame tracks for every actor. `travel`: how much of the frame width paths cover (close-ups travel less)."""
    rng = random.Random(seed)
    subject = next((a for a in actors if a.role == "subject"), None)
    target = next((a for a in actors if a.role == "target"), None)
    p = _Path(n, fps, W, H, ground, rng.choice((1, -1)), travel, rng)
    tracks: dict[str, Track] = {}
    if subject is not None:
        _subject_and_target(family, p, subject, target, tracks)
    projectile = next((a for a in actors if a.role == "projectile"), None)
    if projectile is not None and subject is not None:
        tracks[projectile.id] = _throw(tracks[subject.id], tracks.get(target.id) if target else None, family, p.u,
                                       subject.height, W, ground)
    _bystanders(p, actors, tracks)
    for a in actors:
        if a.kind == "character":
            _pose(tracks[a.id], emotion if a.role == "subject" or subject is None else "neutral", p.t, a.height, rng)
    return tracks


def _throw(thrower: Track, catcher: Track | None, family: str, u: np.ndarray, h: float, W: int,
           ground: float) -> Track:
    """A thrown thing: held at the thrower's hand, a parabola (with spin) to the catcher, then held there.
    `catch`: it comes in from above the frame edge to the subject's hands."""
    n = u.size
    hand = lambda tr: (tr.x + np.where(tr.flip, -1, 1) * h * 0.25, tr.y - h * 0.55)  # noqa: E731
    if family == "throw" and catcher is not None:
        (x0, y0), (x1, y1) = hand(thrower), hand(catcher)
        a, b = 0.25, 0.7
    else:  # caught by the subject
        x1, y1 = hand(thrower)
        x0, y0 = np.full(n, W * (0.02 if x1[0] > W / 2 else 0.98)), np.full(n, ground - h * 1.6)
        a, b = 0.1, 0.6
    s = np.clip((u - a) / (b - a), 0, 1)
    tr = _track(n, 0, 0)
    tr.x = x0 + (x1 - x0) * s
    tr.y = y0 + (y1 - y0) * s - 4 * s * (1 - s) * h * 0.6
    tr.rot = np.where((s > 0) & (s < 1), 360 * s * 1.5, 0.0) % 360
    tr.z = np.full(n, 0.5)
    return tr


def _pose(tr: Track, emotion: str, t: np.ndarray, h: float, rng: random.Random) -> None:
    """The emotion on top of the motion: sad droops, scared trembles, happy bounces, angry leans in."""
    lean = np.where(tr.flip, -1.0, 1.0)
    if emotion == "sad":
        tr.sy, tr.rot = tr.sy * 0.95, tr.rot - 4 * lean
    elif emotion == "scared":
        tr.x = tr.x + h * 0.012 * np.sin(2 * math.pi * 13 * t)
    elif emotion in ("happy", "excited"):
        tr.y = tr.y + _run_bob(t, h, 2.0 if emotion == "happy" else 3.0, 0.025)
    elif emotion in ("angry", "determined"):
        tr.rot = tr.rot - 5 * lean
    elif emotion == "surprised":
        u = np.clip(t / 0.35, 0, 1)
        tr.sy = tr.sy * (1 + 0.12 * np.sin(math.pi * u))
    elif emotion == "curious":
        tr.rot = tr.rot + 5 * np.sin(2 * math.pi * 0.35 * t)


def camera_path(move: str, n: int, W: int, H: int, shake: np.ndarray | None = None) -> np.ndarray:
    """Per-frame camera (centre x, centre y, zoom) for the shot's camera move; `shake` adds an offset (px)."""
    u = ease(np.arange(n) / max(n - 1, 1))
    cx, cy, z = np.full(n, W / 2), np.full(n, H / 2), np.ones(n)
    if move == "push-in":
        z = 1.0 + 0.25 * u
    elif move == "pull-out":
        z = 1.25 - 0.25 * u
    elif move in ("pan-left", "pan-right", "tilt-up", "tilt-down"):
        z = np.full(n, 1.15)
        span_x, span_y = W * (1 - 1 / 1.15) / 2, H * (1 - 1 / 1.15) / 2
        sign = 1 if move in ("pan-right", "tilt-down") else -1
        if move.startswith("pan"):
            cx = W / 2 + sign * span_x * (2 * u - 1)
        else:
            cy = H / 2 + sign * span_y * (2 * u - 1)
    if shake is not None:
        z = np.maximum(z, 1.04)
        cx = cx + shake
        cy = cy + shake[::-1] * 0.6
    half_w, half_h = W / (2 * z), H / (2 * z)
    cx = np.clip(cx, half_w, W - half_w)
    cy = np.clip(cy, half_h, H - half_h)
    return np.stack([cx, cy, z], axis=1)
