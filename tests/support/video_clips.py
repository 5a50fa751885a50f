"""Synthetic videos with known ground truth, shared by the video tests (plus checks of the generators).

Every clip is drawn in numpy and encoded with ffmpeg (H.264, yuv420p, a short GOP so seeks are cheap):
- `cut_video`: scenes of distinct textures with a moving square inside each, cuts at given frames;
- `camera_video`: a window moving over (or scaling into) a large texture — a pan, tilt or zoom of known sign;
- `flicker_video`: a slow pan with one frame brightened.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from studio.resources.media.ffmpeg import ffmpeg_path


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """A trackable RGB texture: blurred noise plus random coloured rectangles (corners for optical flow)."""
    import cv2

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    img = cv2.GaussianBlur(img, (5, 5), 1.2)
    for _ in range(max(12, h * w // 1500)):
        x, y = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 8))
        cw, ch = int(rng.integers(4, max(6, w // 12))), int(rng.integers(4, max(6, h // 12)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.rectangle(img, (x, y), (x + cw, y + ch), colour, -1)
    return img


def write_video(path: Path, frames, fps: int, size: tuple[int, int], gop: int = 12) -> Path:
    w, h = size
    cmd = [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0", "-c:v", "libx264", "-preset", "veryfast",
           "-crf", "16", "-g", str(gop), "-pix_fmt", "yuv420p", "-threads", "1", str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for f in frames:
        proc.stdin.write(np.ascontiguousarray(f, dtype=np.uint8).tobytes())
    proc.stdin.close()
    assert proc.wait() == 0, f"ffmpeg could not write {path}"
    return path


def cut_video(path: Path, cuts: list[int], n: int, fps: int = 24, size=(160, 90)) -> Path:
    w, h = size
    bounds = [0, *cuts, n]

    def frames():
        for s, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
            bg = texture(h, w, seed=100 + s)
            # A strong per-scene colour cast so every cut is a big content change.
            bg = np.clip(bg.astype(np.int16) + np.array([(s * 70) % 160 - 60, (s * 40) % 120 - 50,
                                                         (s * 95) % 150 - 70]), 0, 255).astype(np.uint8)
            for i in range(b - a):
                f = bg.copy()
                x = 10 + (i * 2) % (w - 30)
                f[h // 3:h // 3 + 14, x:x + 14] = (255, 255, 255)
                yield f

    return write_video(path, frames(), fps, size)


def camera_video(path: Path, kind: str, n: int = 36, fps: int = 24, size=(192, 108), speed: float = 2.0) -> Path:
    """kind: pan-left | pan-right | tilt-up | tilt-down | zoom-in | zoom-out. `speed`: px per frame (pans)."""
    import cv2

    w, h = size
    big = texture(h * 3, w * 3, seed=7)
    cx, cy = big.shape[1] / 2, big.shape[0] / 2

    def frames():
        for i in range(n):
            dx = dy = 0.0
            z = 1.0
            if kind == "pan-right":  # the camera turns right: the window moves right over the scene
                dx = speed * i
            elif kind == "pan-left":
                dx = -speed * i
            elif kind == "tilt-up":  # the window moves up
                dy = -speed * i
            elif kind == "tilt-down":
                dy = speed * i
            elif kind == "zoom-in":
                z = 1.0 + 0.012 * i
            elif kind == "zoom-out":
                z = 1.0 + 0.012 * (n - 1 - i)
            ww, hh = w / z, h / z
            x0, y0 = cx + dx - ww / 2, cy + dy - hh / 2
            m = np.array([[1 / z, 0, x0], [0, 1 / z, y0]], np.float32)
            yield cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)

    return write_video(path, frames(), fps, size)


def flicker_video(path: Path, flicker_frame: int, n: int = 48, fps: int = 24, size=(160, 90), boost: int = 60
                  ) -> Path:
    import cv2

    w, h = size
    big = texture(h * 2, w * 2, seed=11)

    def frames():
        for i in range(n):
            m = np.array([[1, 0, 20 + i * 0.7], [0, 1, 20]], np.float32)
            f = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            if i == flicker_frame:
                f = np.clip(f.astype(np.int16) + boost, 0, 255).astype(np.uint8)
            yield f

    return write_video(path, frames(), fps, size)


# --------------------------------------------------------------------------- edited films with transitions
def _shot_frame(seed: int, i: int, size: tuple[int, int], cache: dict) -> np.ndarray:
    """Frame i of shot `seed`: a textured background with a per-shot colour cast and a moving white square."""
    w, h = size
    if seed not in cache:
        bg = texture(h, w, seed=100 + seed)
        cast = np.array([(seed * 70) % 160 - 60, (seed * 40) % 120 - 50, (seed * 95) % 150 - 70])
        cache[seed] = np.clip(bg.astype(np.int16) + cast, 0, 255).astype(np.uint8)
    f = cache[seed].copy()
    x = 10 + (i * 2) % (w - 30)
    f[h // 3:h // 3 + 14, x:x + 14] = (255, 255, 255)
    return f


def film_video(path: Path, shots: list[tuple[int, int]], joins: list, fps: int = 24, size=(320, 180),
               flashes: tuple[int, ...] = ()) -> tuple[Path, dict]:
    """An edited film: `shots` are (seed, frames of clean picture); `joins[i]` joins shot i to shot i+1:
    "cut", ("dissolve", n) (n-1 blended frames), ("fade", "black"|"white", n_out, hold, n_in) (the picture
    blends to the level over n_out frames, holds it for `hold` more, and blends into the next shot over n_in).
    `flashes`: absolute frame indices overwritten with white. Returns the path and the ground truth:
    {"cuts": [frame], "transitions": [(kind, via, start_frame, end_frame)], "frames": n} where a
    transition's start is its first blended frame and its end the first clean frame after it."""
    cache: dict = {}
    frames: list[np.ndarray] = []
    truth: dict = {"cuts": [], "transitions": []}
    first = [0] * len(shots)  # a shot's clean frames continue the motion of its blended ones
    for k, (seed, n) in enumerate(shots):
        frames += [_shot_frame(seed, first[k] + i, size, cache) for i in range(n)]
        n += first[k]
        if k == len(shots) - 1:
            break
        join, nxt = joins[k], shots[k + 1][0]
        if join == "cut":
            truth["cuts"].append(len(frames))
        elif join[0] == "dissolve":
            m = join[1]
            start = len(frames)
            for j in range(1, m):
                a = _shot_frame(seed, n + j - 1, size, cache).astype(np.float32)
                b = _shot_frame(nxt, j - 1, size, cache).astype(np.float32)
                frames.append(np.round(a + (b - a) * j / m).astype(np.uint8))
            truth["transitions"].append(("dissolve", None, start, len(frames)))
            first[k + 1] = m - 1
        else:
            _, via, n_out, hold, n_in = join
            level = np.float32(0 if via == "black" else 255)
            start = len(frames)
            for j in range(1, n_out + 1):
                a = _shot_frame(seed, n + j - 1, size, cache).astype(np.float32)
                frames.append(np.round(a + (level - a) * j / n_out).astype(np.uint8))
            frames += [np.full_like(frames[-1], int(level))] * hold
            for j in range(1, n_in):
                b = _shot_frame(nxt, j - 1, size, cache).astype(np.float32)
                frames.append(np.round(level + (b - level) * j / n_in).astype(np.uint8))
            truth["transitions"].append(("fade", via, start, len(frames)))
            first[k + 1] = n_in - 1
    for i in flashes:
        frames[i] = np.full_like(frames[i], 255)
    truth["frames"] = len(frames)
    return write_video(path, frames, fps, size), truth


def vfr_copy(src: Path, dst: Path) -> Path:
    """A variable-frame-rate copy of `src`: frames dropped in an irregular pattern, the rest keep their times."""
    subprocess.run([ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), "-vf",
                    "select='lt(mod(n\\,7)\\,4)+between(n\\,30\\,50)'", "-fps_mode", "vfr", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "16", "-g", "12", "-threads", "1", str(dst)], check=True)
    return dst


# --------------------------------------------------------------------------- camera moves of known speed
def moving_camera_video(path: Path, kind: str, speed: float, n: int = 36, fps: int = 24, size=(192, 108),
                        noise: int = 6, crf: int = 23) -> Path:
    """A camera move of known speed over a large still, with grain and compression.

    Pans and tilts: ffmpeg's crop filter with a per-frame x/y expression, `speed` px per frame (the window
    moves right for pan-right, up for tilt-up). Zooms: the window shrinks (zoom-in) or grows (zoom-out) by
    exp(speed / fps) per frame, i.e. `speed` = ln(scale) per second, drawn with sub-pixel warps in numpy.
    `noise`: ffmpeg temporal noise strength; `crf`: x264 quality."""
    import cv2

    w, h = size
    still = texture(h * 4, w * 4, seed=21)
    if kind.startswith(("pan", "tilt")):
        png = path.with_suffix(".png")
        cv2.imwrite(str(png), cv2.cvtColor(still, cv2.COLOR_RGB2BGR))
        sign = 1 if kind in ("pan-right", "tilt-down") else -1
        x0, y0 = (still.shape[1] - w) // 2, (still.shape[0] - h) // 2
        x = f"{x0}+{sign * speed}*n" if kind.startswith("pan") else str(x0)
        y = f"{y0}+{sign * speed}*n" if kind.startswith("tilt") else str(y0)
        vf = f"crop={w}:{h}:x='{x}':y='{y}':exact=1,noise=alls={noise}:allf=t,format=yuv420p"
        subprocess.run([ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", "-loop", "1", "-framerate",
                        str(fps), "-i", str(png), "-vf", vf, "-frames:v", str(n), "-c:v", "libx264", "-preset",
                        "veryfast", "-crf", str(crf), "-g", "12", "-threads", "1", str(path)], check=True)
        png.unlink()
        return path
    rng = np.random.default_rng(5)
    cx, cy = still.shape[1] / 2, still.shape[0] / 2

    def frames():
        for i in range(n):
            z = float(np.exp((speed if kind == "zoom-in" else -speed) * i / fps))
            m = np.array([[1 / z, 0, cx - w / z / 2], [0, 1 / z, cy - h / z / 2]], np.float32)
            f = cv2.warpAffine(still, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP).astype(np.int16)
            yield np.clip(f + rng.normal(0, noise / 2, f.shape), 0, 255).astype(np.uint8)

    return write_video(path, frames(), fps, size)


# --------------------------------------------------------------------------- composition and coherence
def subject_video(path: Path, cx: float, height: float, n: int = 24, fps: int = 24, size=(320, 180)
                  ) -> tuple[Path, tuple[float, float, float, float]]:
    """A locked-off shot of a figure (a patterned ellipse) centred at `cx` (fraction of the width), `height`
    frame heights tall (over 1: cut off by the frame), swaying a few pixels over a calm background.
    Returns the path and the figure's box (x0, y0, x1, y1, fractions, clipped to the frame) at rest."""
    import cv2

    w, h = size
    bg = (texture(h, w, seed=31).astype(np.float32) * 0.5 + 64).astype(np.uint8)  # corners, but muted
    rx, ry = height * h * 0.22, height * h / 2

    def frames():
        for i in range(n):
            f = bg.copy()
            x, y = cx * w + 3 * np.sin(i / 3), h / 2 + 2 * np.cos(i / 4)
            mask = np.zeros((h, w), np.uint8)
            cv2.ellipse(mask, (int(round(x)), int(round(y))), (int(rx), int(ry)), 0, 0, 360, 255, -1)
            ys, xs = np.nonzero(mask)
            stripes = ((ys - int(round(y))) // 6) % 2  # a striped tunic, bright against the muted background
            f[ys, xs] = np.where(stripes[:, None] == 1, (235, 80, 40), (250, 200, 60)).astype(np.uint8)
            yield f

    box = (max(0.0, cx - rx / w), max(0.0, 0.5 - ry / h), min(1.0, cx + rx / w), min(1.0, 0.5 + ry / h))
    return write_video(path, frames(), fps, size), box


def glitch_video(path: Path, flickers: tuple[int, ...], jumps: tuple[int, ...], n: int = 60, fps: int = 24,
                 size=(160, 90)) -> Path:
    """A slow pan with one-frame luma spikes at `flickers` and frames from another shot at `jumps`."""
    import cv2

    w, h = size
    big, other = texture(h * 2, w * 2, seed=11), texture(h, w, seed=99)

    def frames():
        for i in range(n):
            m = np.array([[1, 0, 20 + i * 0.7], [0, 1, 20]], np.float32)
            f = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            if i in flickers:
                f = np.clip(f.astype(np.int16) + 60, 0, 255).astype(np.uint8)
            yield other if i in jumps else f

    return write_video(path, frames(), fps, size)
