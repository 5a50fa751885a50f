"""Parody cut-outs: a character cut out of film footage by its SAM2 masks and composited onto a new background.

The masks and the composite see the same frames: `window_frames` decodes the footage window at the output
fps and width once for the mask task and again (bit-identically: ffmpeg decoding is deterministic) for the
cut-out. A footage shot's masks are stored as one lossless clip (libx264rgb, qp 0: 0/255 survive exactly) with
a frame per output frame, so a moving character is cut out frame by frame. The composite goes to a lossless
scratch clip that the segment renderer then treats like any footage window (effects, voice, subtitles).

Backgrounds: `scenery` — the storyboard set for the shot's place and time of day (the cut-out animator's
sets), or the path of an image (cover-fitted).
"""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from studio.configs.vocabulary import Shot
from studio.resources.image.segmentation import SegmentationError, composite
from studio.resources.image.storyboard.draw import SS
from studio.resources.image.storyboard.scenery import draw_background, scenery_for
from studio.resources.media.frames import iter_frames
from studio.resources.video.animation import pipe_frames_to_clip


def window_frames(video: Path | str, start: float, end: float, fps: int, width: int) -> np.ndarray:
    """The frames of `video` between `start` and `end` at `fps`, scaled to `width` (even height): (n, H, W, 3).
    Exactly round((end - start) · fps) frames (the last one repeated if the file runs short)."""
    n = max(1, int(round((end - start) * fps)))
    frames = []
    for f in iter_frames(video, width=width, fps=fps, start=start, duration=end - start + 1.0 / fps):
        frames.append(f)
        if len(frames) == n:
            break
    if not frames:
        raise SegmentationError(f"no frames decoded from {video} between {start:.2f} s and {end:.2f} s")
    frames += [frames[-1]] * (n - len(frames))
    return np.stack(frames)


def write_mask_clip(masks: list[np.ndarray], fps: int, out_path: Path) -> None:
    """Binary masks (n × H × W) as a lossless clip, one frame per mask."""
    h, w = masks[0].shape

    def produce(sink) -> None:
        for m in masks:
            sink(np.repeat(np.where(m, 255, 0).astype(np.uint8)[..., None], 3, axis=2).tobytes())

    pipe_frames_to_clip(w, h, fps, len(masks), produce, Path(out_path))


def read_mask_clip(path: Path | str) -> np.ndarray:
    """The masks of a mask clip as an (n, H, W) boolean array."""
    masks = [f[..., 0] >= 128 for f in iter_frames(path)]
    if not masks:
        raise SegmentationError(f"{path}: the mask clip holds no frames; rerun the segmentation step")
    return np.stack(masks)


def scenery_picture(shot: Shot, width: int, height: int, seed: int) -> np.ndarray:
    """The storyboard set of the shot's place and time of day (no characters, no props), RGB."""
    rng = random.Random(zlib.crc32(f"{seed}|{shot.id}|{shot.location}|cutout".encode()))
    big = draw_background(width * SS, height * SS, scenery_for(shot.location, shot.action), shot.time_of_day, rng)
    return np.asarray(big.convert("RGB").resize((width, height), Image.LANCZOS))


def background_picture(choice: str, shot: Shot, width: int, height: int, seed: int) -> np.ndarray:
    """`scenery` (the shot's storyboard set) or an image file, at width × height."""
    if choice == "scenery":
        return scenery_picture(shot, width, height, seed)
    path = Path(choice).expanduser()
    if not path.is_file():
        raise SegmentationError(f"cut-out background {choice!r} is neither 'scenery' nor an image file; fix the "
                                "shot's `cutout` effect (params.background)")
    with Image.open(path) as im:
        return np.asarray(ImageOps.fit(im.convert("RGB"), (width, height), Image.LANCZOS))


def render_cutout_clip(frames: np.ndarray, masks: np.ndarray, background: np.ndarray, fps: int,
                       out_path: Path) -> dict:
    """Each frame's masked character over `background` → a lossless clip; returns what the sidecar records."""
    if len(frames) != len(masks):
        raise SegmentationError(f"{len(frames)} footage frames but {len(masks)} masks: rerun the segmentation step")
    n, h, w = masks.shape

    def produce(sink) -> list[float]:
        inside = []
        for f, m in zip(frames, masks, strict=True):
            sink(np.ascontiguousarray(composite(f, m, background)).tobytes())
            inside.append(round(float(m.mean()), 4))
        return inside

    inside = pipe_frames_to_clip(w, h, fps, n, produce, Path(out_path))
    return {"nframes": n, "size": [w, h], "mask_fraction": inside}
