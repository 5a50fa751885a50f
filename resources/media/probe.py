"""Media probing: duration, streams, size and frame rate of a file, through ffprobe or (without it) `ffmpeg -i`."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from studio.resources.media.ffmpeg import (
    CorruptMediaError,
    MediaNotFoundError,
    UnsupportedMediaError,
    ffmpeg_path,
    ffmpeg_version,
    ffprobe_path,
)


# --------------------------------------------------------------------------- probing
@dataclass(frozen=True)
class MediaInfo:
    path: str
    duration: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    n_frames: int = 0  # from the container when it says, else duration × fps
    video_codec: str = ""
    pix_fmt: str = ""
    audio_codec: str = ""
    sample_rate: int = 0
    channels: int = 0
    format_name: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _ratio(text: str | None) -> float:
    if not text or text in ("0/0", "N/A"):
        return 0.0
    if "/" in text:
        num, den = text.split("/", 1)
        return float(num) / float(den) if float(den) else 0.0
    return float(text)


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise MediaNotFoundError(f"media file not found: {path}. Check the path (relative paths are "
                                 f"resolved against {Path.cwd()}).")
    if path.is_dir():
        raise MediaNotFoundError(f"{path} is a folder, not a media file")
    if path.stat().st_size == 0:
        raise CorruptMediaError(f"{path} is empty (0 bytes); re-export or re-download it")


def probe(path: Path | str) -> MediaInfo:
    """Streams and duration of a media file. Raises MediaNotFoundError / CorruptMediaError /
    UnsupportedMediaError with what to do about it."""
    path = Path(path)
    _check_exists(path)
    ffprobe = ffprobe_path()
    info = _probe_ffprobe(path, ffprobe) if ffprobe else _probe_ffmpeg(path)
    if info.has_video and not info.video_codec:
        raise UnsupportedMediaError(f"{path}: its video codec cannot be decoded by this ffmpeg "
                                    f"({ffmpeg_version()}). Transcode it first, e.g. "
                                    f"`ffmpeg -i '{path}' -c:v libx264 -pix_fmt yuv420p out.mp4`.")
    return info


def _probe_ffprobe(path: Path, ffprobe: str) -> MediaInfo:
    proc = subprocess.run([ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                           str(path)], capture_output=True)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise CorruptMediaError(f"{path} is not a readable media file ({msg[-1] if msg else 'ffprobe failed'}). "
                                "It may be truncated or not a video/audio file at all.")
    data = json.loads(proc.stdout or b"{}")
    streams = data.get("streams", [])
    fmt = data.get("format", {})
    v = next((s for s in streams if s.get("codec_type") == "video"
              and not s.get("disposition", {}).get("attached_pic")), None)
    a = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if v is None and a is None:
        raise CorruptMediaError(f"{path} has no video or audio stream ffmpeg can read")
    duration = _ratio(fmt.get("duration")) or _ratio((v or a or {}).get("duration"))
    fps = _ratio(v.get("avg_frame_rate")) or _ratio(v.get("r_frame_rate")) if v else 0.0
    n_frames = int(v.get("nb_frames") or 0) if v else 0
    if v and not n_frames and fps and duration:
        n_frames = int(round(duration * fps))
    video_codec = ""
    if v:
        name = v.get("codec_name") or ""
        video_codec = "" if name in ("", "none", "unknown") else name
    return MediaInfo(
        path=str(path), duration=duration, has_video=v is not None, has_audio=a is not None,
        width=int(v.get("width") or 0) if v else 0, height=int(v.get("height") or 0) if v else 0,
        fps=fps, n_frames=n_frames, video_codec=video_codec, pix_fmt=(v or {}).get("pix_fmt", "") or "",
        audio_codec=(a or {}).get("codec_name", "") or "", sample_rate=int((a or {}).get("sample_rate") or 0),
        channels=int((a or {}).get("channels") or 0), format_name=fmt.get("format_name", ""),
    )


_DUR_RE = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")


_VID_RE = re.compile(r"Stream #\S+.*?: Video: (\w+)?[^,]*(?:\([^)]*\))?.*?, (\d{2,5})x(\d{2,5})")


_FPS_RE = re.compile(r"([\d.]+) fps")


_AUD_RE = re.compile(r"Stream #\S+.*?: Audio: (\w+).*?, (\d+) Hz, ([\w.]+)")


def _probe_ffmpeg(path: Path) -> MediaInfo:
    """Fallback probe from `ffmpeg -i` (imageio-ffmpeg ships no ffprobe)."""
    proc = subprocess.run([ffmpeg_path(), "-hide_banner", "-i", str(path)], capture_output=True)
    text = proc.stderr.decode(errors="replace")
    if "Invalid data found" in text or "Duration:" not in text:
        raise CorruptMediaError(f"{path} is not a readable media file; it may be truncated or not a video")
    d = _DUR_RE.search(text)
    duration = int(d[1]) * 3600 + int(d[2]) * 60 + float(d[3]) if d else 0.0
    v = _VID_RE.search(text)
    a = _AUD_RE.search(text)
    fps_m = _FPS_RE.search(text[v.start():]) if v else None
    fps = float(fps_m[1]) if fps_m else 0.0
    channels = {"mono": 1, "stereo": 2, "5.1": 6}.get(a[3].split("(")[0], 2) if a else 0
    codec = v[1] if v and v[1] and v[1] != "none" else ""
    return MediaInfo(path=str(path), duration=duration, has_video=v is not None, has_audio=a is not None,
                     width=int(v[2]) if v else 0, height=int(v[3]) if v else 0, fps=fps,
                     n_frames=int(round(duration * fps)) if fps else 0, video_codec=codec,
                     audio_codec=a[1] if a else "", sample_rate=int(a[2]) if a else 0, channels=channels)


def require_video(path: Path | str) -> MediaInfo:
    """Probe and insist on a decodable video stream with at least one frame."""
    info = probe(path)
    if not info.has_video:
        raise UnsupportedMediaError(f"{path} has no video stream (audio only?); give a video file")
    if info.duration <= 0 or info.n_frames <= 0:
        raise CorruptMediaError(f"{path} has a video stream with no frames (zero length); re-export it")
    return info
