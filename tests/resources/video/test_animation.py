"""The cut-out animator: motion per verb (scene graph and decoded pixels), lip flaps from the voice envelope,
expression exaggeration, things in the frame metadata, placeholders, byte-reproducible and resumable segments.
Low resolution and frame rate keep this module to seconds of rendering."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from studio.configs.schema import studio_config
from studio.configs.vocabulary import Dialogue, Shot
from studio.resources.image.storyboard.figures import MOUTH_FILL, character_art, exaggerate, rig_for_art
from studio.resources.media.ffmpeg import ffmpeg_path
from studio.resources.video.animation import build_scene, draw_frame, render_animation
from studio.resources.video.animation_motion import verb_family
from studio.resources.video.config import OutputFormat
from studio.resources.video.segment import SegmentSpec

W, H, FPS = 320, 180, 12
CHASE = Shot(id=1, characters=["bunny"], action="The bunny chases the butterfly", verb="chase",
             target="butterfly", things=["butterfly"], location="meadow", camera="wide")


def _centre(box):
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _decode(path: Path, w: int, h: int) -> np.ndarray:
    raw = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "pipe:1"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def _blobs(frame: np.ndarray, plate: np.ndarray, k: int = 2) -> list[np.ndarray]:
    """Centroids of the k largest regions where the frame differs from the empty set."""
    mask = np.abs(frame.astype(int) - plate.astype(int)).sum(axis=2) > 60
    labels, n = ndimage.label(ndimage.binary_opening(mask))
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    keep = np.argsort(sizes)[::-1][:k] + 1
    return [np.array(ndimage.center_of_mass(mask, labels, i))[::-1] for i in keep]


def test_verbs_come_from_the_structured_verb_or_else_the_action_line():
    assert verb_family("run away from", "") == "flee"
    assert verb_family(None, "Rinky runs away from Frank") == "flee"
    assert verb_family(None, "The bunny is chasing a butterfly") == "chase"
    assert verb_family(None, "Frank hopped onto the log") == "jump"
    assert verb_family(None, "Luca looks at the sea") == "idle"


def test_chase_shrinks_the_distance_in_the_scene_graph_and_in_decoded_pixels(tmp_path):
    clip = tmp_path / "chase.mkv"
    meta = render_animation(CHASE, clip, W, H, FPS, 3.0, seed=3)
    boxes = meta["frames"]["actors"]
    bunny, fly = boxes["bunny"]["bbox"], boxes["thing:butterfly"]["bbox"]
    assert all(b is not None for b in bunny + fly)  # both sprites on screen in every frame
    d = [np.linalg.norm(_centre(a) - _centre(b)) for a, b in zip(bunny, fly, strict=True)]
    assert d[-1] < 0.6 * d[0]
    seg = tmp_path / "seg.mp4"  # the segment stage's encode (yuv420p, the cut's format) of the same frames
    from studio.resources.video.segment import render_segment_file

    render_segment_file(SegmentSpec(video=clip), seg, OutputFormat(width=W, height=H, fps=FPS))
    frames = _decode(seg, W, H)
    scene = build_scene(CHASE, W, H, FPS, 3.0, 3)
    everyone = frozenset(a.spec.id for a in scene.actors)
    dist = []
    for i in (0, len(frames) - 1):
        plate = np.asarray(draw_frame(scene, i, hide=everyone)[0])
        a, b = _blobs(frames[i], plate)
        dist.append(np.linalg.norm(a - b))
    assert dist[1] < 0.6 * dist[0], dist


def test_jump_arcs_flee_grows_and_a_flying_prop_is_not_a_straight_line():
    jump = build_scene(Shot(id=2, characters=["frank"], action="Frank jumps", camera="wide"), W, H, FPS, 3.0, 1)
    y = jump.actors[0].track.y
    assert y.min() < y[0] - 0.2 * jump.actors[0].spec.height  # up in the air…
    assert abs(y[-1] - y[0]) < 1e-6 and np.argmin(y) not in (0, len(y) - 1)  # …and back down
    assert jump.actors[0].track.sy.min() < 0.9  # squash before take-off / on landing
    flee = build_scene(Shot(id=3, characters=["rinky", "frank"], action="Rinky runs away from Frank",
                            target="frank", camera="wide"), W, H, FPS, 3.0, 1)
    r, f = (next(a.track for a in flee.actors if a.spec.id == k) for k in ("rinky", "frank"))
    assert abs(r.x[-1] - f.x[-1]) > 1.5 * abs(r.x[0] - f.x[0])
    fly = next(a for a in build_scene(CHASE, W, H, FPS, 3.0, 3).actors if a.spec.id == "thing:butterfly")
    assert fly.spec.flying
    x, yy = fly.track.x, fly.track.y
    line = yy[0] + (yy[-1] - yy[0]) * (x - x[0]) / (x[-1] - x[0])
    assert np.abs(yy - line).max() > 0.3 * fly.spec.height


def _envelope(seconds: float, hop: float = 0.01) -> dict:
    """A voice sidecar as the voice stage writes it: syllables (4 Hz) for 1.5 s, 0.8 s of silence, 1 s more."""
    t = np.arange(int(seconds / hop)) * hop
    speech = ((t > 0.2) & (t < 1.7)) | ((t > 2.5) & (t < 3.5))
    values = np.where(speech, 0.55 + 0.45 * np.abs(np.sin(2 * np.pi * 2.0 * t)), 0.0)
    return {"envelope": {"hop_s": hop, "values": values.round(3).tolist()},
            "segments": [{"start": 0.2, "end": 1.7}, {"start": 2.5, "end": 3.5}]}


def test_mouth_opening_follows_the_voice_envelope_and_closes_in_silence():
    timing = _envelope(4.0)
    shot = Shot(id=4, characters=["frank"], action="Frank talks", camera="close-up",
                dialogue=Dialogue(character="frank", line="Get him now, Rinky!"))
    fps = 24
    scene = build_scene(shot, W, H, fps, 4.0, 2, timing, voice_offset=0.0)
    areas, env = [], []
    values = np.array(timing["envelope"]["values"])
    for i in range(scene.n):
        frame, where = draw_frame(scene, i)
        box = where["mouths"].get("frank")
        px = np.asarray(frame).astype(int)
        if box is None:
            areas.append(0)
        else:
            x0, y0, x1, y1 = (max(0, v) for v in box)
            crop = px[y0:y1 + 1, x0:x1 + 1]
            areas.append(int((np.abs(crop - np.array(MOUTH_FILL)).sum(axis=2) < 40).sum()))
        k = int(i / fps / 0.01)
        env.append(values[k:k + 4].mean())
    areas, env = np.array(areas, float), np.array(env)
    assert np.corrcoef(areas, env)[0, 1] >= 0.6
    silent = [i for i in range(scene.n) if 1.8 < i / fps < 2.4]
    assert all(areas[i] == 0 for i in silent)
    assert areas.max() > 20


def test_exaggeration_enlarges_eyes_and_mouth_against_the_neutral_art():
    preset = studio_config().characters.resolve("frank")[1]
    art, rig = character_art(preset, "surprised"), rig_for_art(preset)
    big = exaggerate(art, rig, 2.5)

    def dark_and_white(img, x, y, r):
        a = np.asarray(img).astype(int)[int(y - r):int(y + r), int(x - r):int(x + r)]
        white = (a[..., :3].min(axis=2) > 235) & (a[..., 3] > 200)
        ink = (a[..., :3].max(axis=2) < 60) & (a[..., 3] > 200)
        return white.sum(), ink.sum()

    for x, y, r in rig["eyes"]:
        w0, _ = dark_and_white(art, x, y, r * 3)
        w1, _ = dark_and_white(big, x, y, r * 3)
        assert w1 > 1.3 * w0
    mx, my, mw = rig["mouth"]
    _, i0 = dark_and_white(art, mx, my, mw)
    _, i1 = dark_and_white(big, mx, my, mw)
    assert i1 > 1.3 * i0
    assert exaggerate(art, rig, 1.0) is art


def test_every_thing_and_place_is_in_the_metadata_and_an_unknown_noun_is_a_labelled_placeholder(caplog):
    shot = Shot(id=5, characters=["gimera"], action="Gimera finds an apple by the sea in the storm",
                things=["apple", "sea", "qzxv wrmbl"], location="beach", weather="storm", camera="wide")
    with caplog.at_level("WARNING"):
        scene = build_scene(shot, W, H, FPS, 1.0, 4)
    meta = scene.metadata({})
    things = {t["noun"]: t for t in meta["things"]}
    assert set(things) == {"apple", "sea", "qzxv wrmbl"}
    assert things["sea"]["role"] == "scenery" and meta["scenery"] in ("beach", "sea")
    assert things["apple"]["role"] == "prop" and not things["apple"]["placeholder"]
    assert things["qzxv wrmbl"]["placeholder"]
    assert meta["weather"] == "storm" and meta["location"] == "beach"
    assert any("qzxv wrmbl" in w for w in meta["warnings"]) and "qzxv wrmbl" in caplog.text
    actor = next(a for a in meta["actors"] if a["id"] == "thing:qzxv wrmbl")
    assert actor["placeholder"] and actor["emoji"] is None
    _, where = draw_frame(scene, 0)
    assert where["boxes"]["thing:qzxv wrmbl"] and where["boxes"]["thing:apple"]


_RENDER = """
import sys
from studio.configs.vocabulary import Shot
from studio.resources.runtime.artifacts import ArtifactStore
from studio.resources.video.config import OutputFormat
from studio.resources.video.segment import SegmentSpec
from studio.tasks.animation import animated_segment_recipe, make_animated_segment
shot = Shot(id=6, characters=["bunny", "frank"], action="Frank chases the bunny", camera="wide",
            things=["kite"], weather="snow", camera_move="push-in")
fmt = OutputFormat(width=int(sys.argv[1]), height=int(sys.argv[2]), fps=12)
# the still the storyboard look would show: the animated look replaces it by frames
spec = SegmentSpec(image=sys.argv[4], duration=float(sys.argv[3]), subtitle="Catch me!")
recipe = animated_segment_recipe(shot, spec, float(sys.argv[3]), 11, fmt)
ref = make_animated_segment(recipe, shot, spec)
print(ArtifactStore.from_settings().local_path(ref))
"""


def _render_in_subprocess(tmp: Path, store: Path, *args: str, kill_mid_shot: bool = False) -> Path | None:
    from PIL import Image

    still = tmp / "still.png"
    if not still.exists():
        Image.new("RGB", (32, 18), (90, 120, 200)).save(still)
    scratch = tmp / f"scratch-{store.name}"
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "STUDIO_STORE__URI": str(store), "TMPDIR": str(scratch)}
    proc = subprocess.Popen([sys.executable, "-c", _RENDER, *args, str(still)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if kill_mid_shot:  # as soon as frames are flowing into the clip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            clips = list(scratch.glob("studio-anim-*/frames.mkv"))
            if clips and clips[0].stat().st_size > 20_000:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the render finished before it could be killed: make the shot longer"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return None
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return Path(out.strip().splitlines()[-1])


def test_same_recipe_same_bytes_and_kill_minus_9_mid_segment_resumes_to_identical_bytes(tmp_path):
    args = ("320", "180", "8.0")
    first = _render_in_subprocess(tmp_path, tmp_path / "a", *args)
    ref_bytes = hashlib.sha256(first.read_bytes()).hexdigest()
    again = hashlib.sha256(_render_in_subprocess(tmp_path, tmp_path / "b", *args).read_bytes()).hexdigest()
    assert again == ref_bytes
    store = tmp_path / "c"
    _render_in_subprocess(tmp_path, store, *args, kill_mid_shot=True)
    assert not (list(store.rglob("*.mp4")) if store.exists() else [])  # nothing half-made was published
    resumed = _render_in_subprocess(tmp_path, store, *args)
    assert hashlib.sha256(resumed.read_bytes()).hexdigest() == ref_bytes


@pytest.mark.parametrize("camera", ["medium", "close-up"])
def test_closer_cameras_keep_the_actors_on_screen(camera):
    scene = build_scene(CHASE.model_copy(update={"camera": camera}), W, H, FPS, 2.0, 5)
    _, where = draw_frame(scene, scene.n // 2)
    for box in where["boxes"].values():
        assert box[2] > 0 and box[0] < W and box[3] > 0 and box[1] < H


def test_a_thrown_thing_travels_from_the_thrower_to_the_catcher_in_an_arc():
    shot = Shot(id=7, characters=["frank", "rinky"], action="Frank throws an acorn to Rinky", things=["acorn"],
                target="rinky", camera="wide")
    scene = build_scene(shot, W, H, FPS, 3.0, 1)
    tr = {a.spec.id: a.track for a in scene.actors}
    nut, frank, rinky = tr["thing:acorn"], tr["frank"], tr["rinky"]
    assert abs(nut.x[0] - frank.x[0]) < abs(nut.x[0] - rinky.x[0])  # starts in the thrower's hand
    assert abs(nut.x[-1] - rinky.x[-1]) < abs(nut.x[-1] - frank.x[-1])  # ends in the catcher's
    mid = len(nut.y) // 2
    assert nut.y[mid] < min(nut.y[0], nut.y[-1])  # an arc, not a slide
