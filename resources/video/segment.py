"""Segment rendering: one shot → one segment file in a fixed format (the cut is `assemble.py`'s job).

`render_segment_file(spec, out, fmt)` renders a `SegmentSpec` (a still or a clip window, effects and parody
recipes, caption, subtitles, voice line, sound effects) with ONE ffmpeg call to H.264 yuv420p + AAC 48 kHz
stereo at the format's size and fps, bit-exact (same spec + same ffmpeg → same bytes). That is what makes a
long render resumable: each segment is a recipe-cached artifact, and a rerun re-encodes only missing ones.

Crossfades are rendered into the head of the next segment, so the assembly only trims the previous segment's
tail (no B-frames, so a stream-copied tail cut is clean).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from studio.configs.errors import StudioError
from studio.resources.audio import procedural as procedural_audio
from studio.resources.media.audio_io import audio_duration
from studio.resources.media.ffmpeg import BITEXACT_OUTPUT, CorruptMediaError, MediaNotFoundError, encode_to
from studio.resources.media.probe import require_video
from studio.resources.media.text import render_text_png
from studio.resources.video.config import OutputFormat, video_config
from studio.resources.video.effects.chain import EffectChain
from studio.resources.video.effects.library import EffectUse, resolve_effects
from studio.resources.video.subtitles import SubtitleCue


class SegmentError(StudioError):
    pass


class SfxUse(BaseModel):
    name: str  # a procedural sound: whoosh, boing, record_scratch, dramatic_sting
    at: float = Field(default=0.0, ge=0)
    gain_db: float = Field(default=0.0, ge=-40, le=12)
    params: dict = {}


class SegmentSpec(BaseModel):
    """One shot of the cut. Visual: `image` (a still) or `video` with `start`/`end` (a clip window)."""

    image: Path | None = None
    video: Path | None = None
    start: float = Field(default=0.0, ge=0)
    end: float | None = None
    # Still: seconds on screen before time effects (default: the voice line + 0.5 s, at least 3 s).
    # Clip: the window length when `end` is not given.
    duration: float | None = Field(default=None, gt=0, le=600)
    fit: Literal["cover", "contain"] = "cover"
    effects: list[EffectUse] = []
    caption: str | None = Field(default=None, max_length=200)
    subtitle: str | None = Field(default=None, max_length=400)
    subtitle_cues: list[SubtitleCue] = []  # times within the segment; override `subtitle`'s timing
    voice: Path | None = None
    voice_offset: float = Field(default=0.0, ge=0)
    voice_gain_db: float | None = None
    sfx: list[SfxUse] = []
    clip_audio: bool = False  # keep the clip's own sound (under voice/SFX)
    clip_audio_gain_db: float = Field(default=-6.0, ge=-60, le=12)
    previous_segment: Path | None = None  # the rendered previous shot, for a crossfade into this one
    lipsync: bool = False  # gpu profile: the task layer runs Wav2Lip first; preview never fakes it

    @field_validator("effects", mode="before")
    @classmethod
    def _effects(cls, v):
        return [EffectUse.model_validate(x) for x in (v or [])]

    @model_validator(mode="after")
    def _one_visual(self) -> SegmentSpec:
        # SegmentError (not ValueError) passes through pydantic unchanged: the CLI prints it as a user error.
        if (self.image is None) == (self.video is None):
            raise SegmentError("a segment needs exactly one visual: image (a still) or video (a clip)")
        if self.end is not None and self.end <= self.start:
            raise SegmentError(f"zero-length clip: end ({self.end} s) must be after start ({self.start} s)")
        return self


@dataclass
class SegmentResult:
    path: Path
    nframes: int
    fps: int
    voice_interval: tuple[float, float] | None
    subtitles: list[SubtitleCue]
    transition_in: float  # seconds of crossfade rendered into this segment's head
    markers: dict[str, float] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.nframes / self.fps


def default_format() -> OutputFormat:
    return video_config().format()


# --------------------------------------------------------------------------- rendering
def _check_image(path: Path) -> None:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise MediaNotFoundError(f"image not found: {path}. Check the path.")
    try:
        with Image.open(path) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise CorruptMediaError(f"{path} is not a readable image ({e}); re-export it as PNG or JPEG") from e


def _fit_filter(fmt: OutputFormat, fit: str) -> str:
    W, H = fmt.width, fmt.height
    if fit == "cover":
        return f"scale={W}:{H}:force_original_aspect_ratio=increase:flags=bicubic,crop={W}:{H},setsar=1"
    return (f"scale={W}:{H}:force_original_aspect_ratio=decrease:flags=bicubic,"
            f"pad={W}:{H}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1")


def render_segment_file(spec: SegmentSpec, out_path: Path | str, fmt: OutputFormat | None = None) -> SegmentResult:
    """Render one segment with one ffmpeg call. Raises SegmentError / MediaError / EffectError subclasses."""
    fmt = fmt or default_format()
    out_path = Path(out_path)
    effects = resolve_effects(spec.effects)  # validate everything before touching files
    if spec.caption and not any(e.name == "caption" for e in effects):
        effects += resolve_effects(["caption"])  # a caption with no caption step: on screen for the whole shot
    voice_len = audio_duration(spec.voice) if spec.voice is not None else 0.0

    scratch = Path(tempfile.mkdtemp(prefix="studio-seg-"))
    try:
        chain = EffectChain(fmt=fmt, nframes=0, v="", scratch=scratch, default_caption=spec.caption)
        n = _still_input(chain, spec, fmt, voice_len) if spec.image is not None else _clip_input(chain, spec, fmt)
        chain.nframes, chain.v = n, "v0"
        for eff in effects:
            chain.apply(eff)
        total = chain.nframes
        cues, voice_interval = _overlay_subtitles(chain, spec, fmt, voice_len, total, scratch)
        chain.v = chain._emit(chain.v, f"trim=end_frame={total},settb=1/{fmt.fps},setpts=N")
        vout, aout = chain.v, _audio_graph(chain, spec, fmt, total, scratch)
        transition = 0.0
        if chain.transition_in:
            vout, aout, transition = _crossfade_head(chain, spec, fmt, vout, aout, total)
        args = [a for inp in chain.inputs for a in inp]
        # Both streams end exactly at `total` frames (trims in the graph); `-frames:v` would cut the audio short.
        args += ["-filter_complex", ";".join(chain.lines), "-map", f"[{vout}]", "-map", f"[{aout}]",
                 *fmt.video_args(), *fmt.audio_args(), *BITEXACT_OUTPUT, "-f", "mp4"]
        encode_to(args, out_path, f"rendering a segment ({spec.image or spec.video})")
        return SegmentResult(out_path, total, fmt.fps, voice_interval, cues, transition, dict(chain.markers))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _still_input(chain: EffectChain, spec: SegmentSpec, fmt: OutputFormat, voice_len: float) -> int:
    """A still looped for the shot (default length: the voice line plus half a second, at least 3 s)."""
    _check_image(Path(spec.image))
    base = spec.duration or max(3.0, spec.voice_offset + voice_len + 0.5)
    n = max(1, int(round(base * fmt.fps)))
    # a '%' in a file name would make ffmpeg's image demuxer read it as a frame-number pattern
    literal = ["-f", "image2", "-pattern_type", "none"] if "%" in str(spec.image) else []
    idx = chain.add_input([*literal, "-i", str(spec.image)])
    chain.lines.append(f"[{idx}:v]{_fit_filter(fmt, spec.fit)},format=yuv420p,loop=loop={n - 1}:size=1:start=0,"
                       f"settb=1/{fmt.fps},setpts=N[v0]")
    return n


def _clip_input(chain: EffectChain, spec: SegmentSpec, fmt: OutputFormat) -> int:
    """A window of a video file at the output rate (and its sound, when asked for and present)."""
    F, spf = fmt.fps, fmt.samples_per_frame
    info = require_video(spec.video)
    end = spec.end if spec.end is not None else (spec.start + spec.duration if spec.duration else info.duration)
    if spec.start >= info.duration - 0.5 / max(info.fps, 1):
        raise SegmentError(f"clip start {spec.start:.2f} s is at or past the end of {spec.video} "
                           f"({info.duration:.2f} s)")
    if end > info.duration + 0.05:
        raise SegmentError(f"clip window ends at {end:.2f} s but {spec.video} is {info.duration:.2f} s long; "
                           "shorten the window")
    end = min(end, info.duration)
    n = int(round((end - spec.start) * F))
    if n < 1:
        raise SegmentError(f"zero-length clip: window {spec.start:.3f}–{end:.3f} s of {spec.video} is "
                           f"shorter than one frame at {F} fps")
    idx = chain.add_input(["-ss", f"{spec.start:.6f}", "-t", f"{end - spec.start + 1.0 / F:.6f}",
                           "-i", str(spec.video)])
    chain.lines.append(f"[{idx}:v]fps={F},{_fit_filter(fmt, spec.fit)},format=yuv420p,tpad=stop_mode=clone:"
                       f"stop={n},trim=end_frame={n},settb=1/{F},setpts=N[v0]")
    if spec.clip_audio and info.has_audio:
        chain.lines.append(f"[{idx}:a]aresample={fmt.sample_rate},aformat=sample_fmts=fltp:channel_layouts=stereo,"
                           f"apad=whole_len={n * spf},atrim=end_sample={n * spf},asetpts=PTS-STARTPTS,"
                           f"volume={spec.clip_audio_gain_db}dB[a0]")
        chain.a = "a0"
    return n


def _overlay_subtitles(chain: EffectChain, spec: SegmentSpec, fmt: OutputFormat, voice_len: float, total: int,
                       scratch: Path) -> tuple[list[SubtitleCue], tuple[float, float] | None]:
    """Subtitles on the final timeline: explicit cues, else the line while the voice speaks."""
    F = fmt.fps
    cues = list(spec.subtitle_cues)
    voice_interval = None
    if spec.voice is not None:
        voice_interval = (spec.voice_offset, spec.voice_offset + voice_len)
        if voice_interval[1] > total / F + 1e-3:
            raise SegmentError(f"the voice line ({voice_len:.2f} s from {spec.voice_offset:.2f} s) runs past the "
                               f"end of the shot ({total / F:.2f} s); lengthen the shot or move the line earlier")
    if spec.subtitle and not cues:
        a, b = voice_interval or (0.0, total / F)
        cues = [SubtitleCue(start=a, end=min(b, total / F), text=spec.subtitle)]
    for cue in cues:
        png, h = render_text_png(cue.text, fmt.width, int(fmt.height / 17), "subtitle", scratch, video_config().font)
        f0, f1 = max(0, int(round(cue.start * F))), min(total, int(round(cue.end * F))) - 1
        if f1 >= f0:
            y = clear_of(chain.text_bands, fmt.height - h - int(0.06 * fmt.height), h, f0, f1, fmt.height)
            chain.overlay_png(png, y, f0, f1)
            chain.text_bands.append((y, h, f0, f1))
    return cues, voice_interval


def clear_of(bands: list[tuple[int, int, int, int]], y: int, h: int, f0: int, f1: int, height: int,
             gap: int = 6) -> int:
    """The top of a text box of height `h`, shown on frames f0..f1, at `y` or moved up just above every box it
    would overlap on screen at the same time (a bottom caption): subtitles never cover other text."""
    for by, bh, b0, b1 in sorted(bands, key=lambda b: -b[0]):
        if b0 <= f1 and f0 <= b1 and y < by + bh and by < y + h:
            y = by - h - gap
    return max(0, min(y, height - h))


def _audio_graph(chain: EffectChain, spec: SegmentSpec, fmt: OutputFormat, total: int, scratch: Path) -> str:
    """Mix the shot's own audio, the voice and the sound cues into one stereo track of exactly `total` frames."""
    from studio.configs.settings import get_settings

    SR, n_samples = fmt.sample_rate, total * fmt.samples_per_frame
    mix = [chain.a] if chain.a else []
    norm = f"aresample={SR},aformat=sample_fmts=fltp:channel_layouts=stereo"
    cfg = video_config().audio
    if spec.voice is not None:
        idx = chain.add_input(["-i", str(spec.voice)])
        gain = cfg.voice_gain_db if spec.voice_gain_db is None else spec.voice_gain_db
        delay = int(round(spec.voice_offset * SR))
        mix.append(chain._emit(f"{idx}:a", f"{norm},volume={gain}dB,adelay=delays={delay}S:all=1", "av"))
    cues = [(c.sound, c.params, c.at, c.gain_db) for c in chain.sounds]
    cues += [(s.name, s.params, s.at, s.gain_db) for s in spec.sfx]
    sfx_cache = get_settings().home / "cache" / "sfx"
    sfx_cache.mkdir(parents=True, exist_ok=True)
    for name, params, at, gain in cues:
        if at >= total / fmt.fps:
            continue  # a cue at or after the end would be silent anyway
        wav = procedural_audio.sfx_file(name, sfx_cache, **params)
        idx = chain.add_input(["-i", str(wav)])
        delay = int(round(at * SR))
        mix.append(chain._emit(f"{idx}:a", f"{norm},volume={gain + cfg.sfx_gain_db}dB,"
                                           f"adelay=delays={delay}S:all=1", "as"))
    tail = f"apad=whole_len={n_samples},atrim=end_sample={n_samples},asetpts=N/SR/TB"
    if not mix:
        out = chain.label("a")
        chain.lines.append(f"anullsrc=r={SR}:cl=stereo,atrim=end_sample={n_samples},asetpts=N/SR/TB[{out}]")
        return out
    if len(mix) == 1:
        return chain._emit(mix[0], f"{norm},{tail}", "a")
    return chain._emit("][".join(mix), f"amix=inputs={len(mix)}:normalize=0:duration=longest:dropout_transition=0,"
                                       f"{tail}", "a")


def _crossfade_head(chain: EffectChain, spec: SegmentSpec, fmt: OutputFormat, vout: str, aout: str,
                    total: int) -> tuple[str, str, float]:
    """Blend the previous segment's last `d` seconds into this segment's first `d` (length unchanged).
    Without a previous segment the crossfade is a fade from black."""
    F, SR, spf = fmt.fps, fmt.sample_rate, fmt.samples_per_frame
    dframes = min(int(round(chain.transition_in * F)), total - 1)
    if dframes < 1:
        return vout, aout, 0.0
    if spec.previous_segment is None:
        v = chain._emit(vout, f"fade=t=in:s=0:n={dframes}")
        a = chain._emit(aout, f"afade=t=in:ss=0:ns={dframes * spf}", "a")
        return v, a, 0.0
    prev = require_video(spec.previous_segment)
    if prev.n_frames <= dframes:
        raise SegmentError(f"the previous segment ({prev.duration:.2f} s) is shorter than the crossfade "
                           f"({dframes / F:.2f} s)")
    idx = chain.add_input(["-sseof", f"-{dframes / F + 2.0 / F:.6f}", "-i", str(spec.previous_segment)])
    pv = chain._emit(f"{idx}:v", f"fps={F},{_fit_filter(fmt, 'cover')},format=yuv420p,reverse,trim=end_frame="
                                 f"{dframes},reverse,settb=1/{F},setpts=N", "pv")
    cur = chain._emit(vout, f"fps={F},settb=1/{F},setpts=N", "cv")
    v = chain._emit(f"{pv}][{cur}", f"xfade=transition=fade:duration={dframes / F:.6f}:offset=0,settb=1/{F},"
                                    f"setpts=N")
    pa = chain._emit(f"{idx}:a", f"aresample={SR},aformat=sample_fmts=fltp:channel_layouts=stereo,areverse,"
                                 f"atrim=end_sample={dframes * spf},areverse,asetpts=N/SR/TB", "pa")
    a = chain._emit(f"{pa}][{aout}", f"acrossfade=ns={dframes * spf}:c1=tri:c2=tri,"
                                     f"atrim=end_sample={total * spf}", "a")
    return v, a, dframes / F


