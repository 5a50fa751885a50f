"""Segment rendering and assembly: one shot → one segment file in a fixed format; segments → the cut.

`render_segment_file(spec, out, fmt)` renders a `SegmentSpec` (a still or a clip window, effects and parody
recipes, caption, subtitles, voice line, sound effects) with ONE ffmpeg call to H.264 yuv420p + AAC 48 kHz
stereo at the format's size and fps, bit-exact (same spec + same ffmpeg → same bytes). That is what makes a
long render resumable: each segment is a recipe-cached artifact, and a rerun re-encodes only missing ones.

`assemble_segments()` joins segments with the concat demuxer, stream-copying the video, and builds the sound
track sample-exactly in numpy: the segments' audio, a music bed ducked under dialogue, loudness-normalised.
Crossfades were already rendered into the head of the next segment, so the join only trims the previous
segment's tail (the `outpoint` directive; no B-frames, so a stream-copied tail cut is clean).

SRT: `write_srt` / `parse_srt` (validated: malformed or reversed timestamps raise `SubtitleError`).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from studio.configs.errors import StudioError
from studio.resources.audio import procedural as procedural_audio
from studio.resources.media.audio_io import audio_duration, read_audio
from studio.resources.media.ffmpeg import BITEXACT_OUTPUT, CorruptMediaError, MediaNotFoundError, run_ffmpeg
from studio.resources.media.probe import MediaInfo, probe, require_video
from studio.resources.media.text import find_font
from studio.resources.video.config import AudioMixConfig, OutputFormat, video_config
from studio.resources.video.effects.chain import EffectChain, EffectUse, resolve_effects


class SegmentError(StudioError):
    pass


class SubtitleError(StudioError):
    pass


# --------------------------------------------------------------------------- the spec
class SubtitleCue(BaseModel):
    start: float = Field(ge=0)
    end: float = Field(gt=0)
    text: str = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> SubtitleCue:
        if self.end <= self.start:
            raise ValueError(f"subtitle ends ({self.end:.3f} s) before it starts ({self.start:.3f} s)")
        return self


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


# --------------------------------------------------------------------------- text
def render_text_png(text: str, width: int, size_px: int, style: Literal["caption", "subtitle"], folder: Path,
                    font: str | None = None) -> tuple[Path, int]:
    """Text as an RGBA PNG as wide as the frame (captions: outlined; subtitles: on a translucent band)."""
    from PIL import Image, ImageDraw, ImageFont

    font_path = find_font(font or video_config().font)
    size_px = max(10, size_px)
    fnt = ImageFont.truetype(font_path, size_px) if font_path else ImageFont.load_default(size=size_px)
    avg_char = max(1.0, fnt.getlength("abcdefghijklmnopqrstuvwxyz") / 26)
    lines = textwrap.wrap(text, width=max(8, int(width * 0.9 / avg_char))) or [text]
    stroke = max(1, size_px // 12) if style == "caption" else 0
    line_h = int(size_px * 1.25) + 2 * stroke
    pad = int(size_px * 0.3)
    h = line_h * len(lines) + 2 * pad
    h += h % 2
    img = Image.new("RGBA", (width, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    if style == "subtitle":
        widest = max(draw.textlength(s, font=fnt) for s in lines)
        x0 = int((width - widest) / 2) - pad
        draw.rectangle([max(0, x0), 0, min(width, width - x0), h], fill=(0, 0, 0, 150))
    for i, line in enumerate(lines):
        w = draw.textlength(line, font=fnt)
        draw.text(((width - w) / 2, pad + i * line_h), line, font=fnt, fill=(255, 255, 255, 255),
                  stroke_width=stroke, stroke_fill=(0, 0, 0, 255))
    digest = hashlib.sha256(f"{style}|{width}|{size_px}|{font_path}|{text}".encode()).hexdigest()[:16]
    path = folder / f"{style}-{digest}.png"
    img.save(path)
    return path, h


# --------------------------------------------------------------------------- SRT
_TS = r"(\d{1,2}):(\d{2}):(\d{2})[,.](\d{3})"
_TIMING = re.compile(rf"^\s*{_TS}\s*-->\s*{_TS}\s*$")


def _srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write_srt(cues: Sequence[SubtitleCue], path: Path | str) -> Path:
    path = Path(path)
    blocks = [f"{i}\n{_srt_time(c.start)} --> {_srt_time(c.end)}\n{c.text.strip()}\n"
              for i, c in enumerate(sorted(cues, key=lambda c: c.start), 1)]
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def parse_srt(source: Path | str) -> list[SubtitleCue]:
    """Parse SRT text or a file; raise SubtitleError naming the line of the first bad block."""
    p = Path(source) if not isinstance(source, str) or "\n" not in source else None
    if p is not None and not p.is_file():
        raise SubtitleError(f"subtitle file not found: {p}")
    text = p.read_text(encoding="utf-8-sig") if p else str(source)
    where = str(p) if p else "SRT text"
    cues: list[SubtitleCue] = []
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        block_line = i + 1
        if lines[i].strip().isdigit():
            i += 1
        if i >= len(lines):
            raise SubtitleError(f"{where}, line {block_line}: cue number with no timing line")
        m = _TIMING.match(lines[i])
        if not m:
            raise SubtitleError(f"{where}, line {i + 1}: bad timing line {lines[i]!r}; expected "
                                "'HH:MM:SS,mmm --> HH:MM:SS,mmm'")
        g = [int(x) for x in m.groups()]
        if g[2] > 59 or g[1] > 59 or g[6] > 59 or g[5] > 59:
            raise SubtitleError(f"{where}, line {i + 1}: minutes/seconds above 59 in {lines[i]!r}")
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        if end <= start:
            raise SubtitleError(f"{where}, line {i + 1}: the cue ends ({_srt_time(end)}) at or before it starts "
                                f"({_srt_time(start)})")
        i += 1
        body = []
        while i < len(lines) and lines[i].strip():
            body.append(lines[i].strip())
            i += 1
        if not body:
            raise SubtitleError(f"{where}, line {block_line}: cue with no text")
        cues.append(SubtitleCue(start=start, end=end, text="\n".join(body)))
    return cues


def cues_from_voice_timing(timing: dict, offset: float = 0.0, min_len: float = 0.8) -> list[SubtitleCue]:
    """Subtitle cues from a voice line's timing sidecar (`sentences` with start/end/text, as the voice stage
    writes them): on the preview profile this — not fake lip sync — is what ties text to speech.
    Each cue lasts at least `min_len` seconds so short sentences stay readable."""
    cues = []
    for s in timing.get("sentences", []):
        if s.get("text", "").strip() and s["end"] > s["start"]:
            cues.append(SubtitleCue(start=offset + s["start"], end=offset + max(s["end"], s["start"] + min_len),
                                    text=s["text"].strip()))
    for a, b in zip(cues, cues[1:], strict=False):  # never overlap the next sentence
        a.end = min(a.end, b.start) if b.start > a.start else a.end
    return cues


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
    F, SR, spf = fmt.fps, fmt.sample_rate, fmt.samples_per_frame
    effects = resolve_effects(spec.effects)  # validate everything before touching files
    if spec.caption and not any(e.name == "caption" for e in effects):
        effects += resolve_effects(["caption"])  # a caption with no caption step: on screen for the whole shot

    voice_len = audio_duration(spec.voice) if spec.voice is not None else 0.0

    scratch = Path(tempfile.mkdtemp(prefix="studio-seg-"))
    try:
        chain = EffectChain(fmt=fmt, nframes=0, v="", scratch=scratch, default_caption=spec.caption)
        fitf = _fit_filter(fmt, spec.fit)
        if spec.image is not None:
            _check_image(Path(spec.image))
            base = spec.duration or max(3.0, spec.voice_offset + voice_len + 0.5)
            n = max(1, int(round(base * F)))
            # a '%' in a file name would make ffmpeg's image demuxer read it as a frame-number pattern
            literal = ["-f", "image2", "-pattern_type", "none"] if "%" in str(spec.image) else []
            idx = chain.add_input([*literal, "-i", str(spec.image)])
            chain.lines.append(f"[{idx}:v]{fitf},format=yuv420p,loop=loop={n - 1}:size=1:start=0,"
                               f"settb=1/{F},setpts=N[v0]")
        else:
            info = require_video(spec.video)
            end = spec.end if spec.end is not None else (
                spec.start + spec.duration if spec.duration else info.duration)
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
            chain.lines.append(f"[{idx}:v]fps={F},{fitf},format=yuv420p,tpad=stop_mode=clone:stop={n},"
                               f"trim=end_frame={n},settb=1/{F},setpts=N[v0]")
            if spec.clip_audio and info.has_audio:
                chain.lines.append(f"[{idx}:a]aresample={SR},aformat=sample_fmts=fltp:channel_layouts=stereo,"
                                   f"apad=whole_len={n * spf},atrim=end_sample={n * spf},asetpts=PTS-STARTPTS,"
                                   f"volume={spec.clip_audio_gain_db}dB[a0]")
                chain.a = "a0"
        chain.nframes, chain.v = n, "v0"

        for eff in effects:
            chain.apply(eff)
        total = chain.nframes

        # Subtitles (on the final timeline): explicit cues, else the line while the voice speaks.
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
            png, h = render_text_png(cue.text, fmt.width, int(fmt.height / 17), "subtitle", scratch)
            y = fmt.height - h - int(0.06 * fmt.height)
            f0 = max(0, int(round(cue.start * F)))
            f1 = min(total, int(round(cue.end * F))) - 1
            if f1 >= f0:
                chain.overlay_png(png, y, f0, f1)

        chain.v = chain._emit(chain.v, f"trim=end_frame={total},settb=1/{F},setpts=N")
        audio = _audio_graph(chain, spec, fmt, total, scratch)
        vout, aout = chain.v, audio
        transition = 0.0
        if chain.transition_in:
            vout, aout, transition = _crossfade_head(chain, spec, fmt, vout, aout, total)

        args: list[str] = []
        for inp in chain.inputs:
            args += inp
        graph = ";".join(chain.lines)
        # Both streams end exactly at `total` frames (trims in the graph); `-frames:v` would cut the audio short.
        args += ["-filter_complex", graph, "-map", f"[{vout}]", "-map", f"[{aout}]", *fmt.video_args(),
                 *fmt.audio_args(), *BITEXACT_OUTPUT, "-f", "mp4"]
        tmp = out_path.with_name(f".{out_path.name}.part")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        run_ffmpeg([*args, str(tmp)], f"rendering a segment ({spec.image or spec.video})")
        tmp.replace(out_path)
        return SegmentResult(out_path, total, F, voice_interval, cues, transition, dict(chain.markers))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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


# --------------------------------------------------------------------------- assembly
@dataclass
class CutResult:
    path: Path
    nframes: int
    fps: int
    srt_path: Path | None
    stream_copied: bool
    duck_intervals: list[tuple[float, float]]
    loudness_lufs: float | None

    @property
    def duration(self) -> float:
        return self.nframes / self.fps


def _matches(info: MediaInfo, fmt: OutputFormat) -> bool:
    return (info.video_codec == "h264" and info.width == fmt.width and info.height == fmt.height
            and abs(info.fps - fmt.fps) < 1e-3 and info.pix_fmt == fmt.pix_fmt and info.audio_codec == "aac"
            and info.sample_rate == fmt.sample_rate and info.channels == fmt.channels)


def assemble_segments(segment_paths: Sequence[Path | str], out_path: Path | str, *,
                      music: Path | str | np.ndarray | None = None, fmt: OutputFormat | None = None,
                      srt_path: Path | str | None = None, burn_subtitles: bool = False,
                      crossfades: Sequence[float] | None = None,
                      duck_intervals: Sequence[tuple[float, float]] | None = None,
                      mix: AudioMixConfig | None = None, segment_frames: Sequence[int] | None = None
                      ) -> CutResult:
    """Join rendered segments into the cut.

    Video: concat demuxer + stream copy (segments that do not match `fmt` are re-encoded to it first).
    Audio: the segments' tracks joined sample-exactly, plus `music` (a file, samples at 48 kHz stereo, or
    "procedural" for a generated bed) ducked under `duck_intervals` (default: wherever the segment track is
    active), loudness-normalised. `crossfades[i]`: seconds of crossfade rendered into segment i's head, cut
    from segment i-1's tail. `segment_frames`: frame counts of segments known to be in `fmt` (skips
    probing). `srt_path`: validated, written beside the output and muxed as a soft subtitle track;
    `burn_subtitles` also draws it into the picture (re-encodes the video).
    """
    fmt = fmt or default_format()
    mix = mix or video_config().audio
    out_path = Path(out_path)
    if not segment_paths:
        raise SegmentError("nothing to assemble: no segments given")
    F, SR, spf = fmt.fps, fmt.sample_rate, fmt.samples_per_frame
    crossfades = list(crossfades or [0.0] * len(segment_paths))
    if len(crossfades) != len(segment_paths):
        raise SegmentError(f"{len(crossfades)} crossfade values for {len(segment_paths)} segments")
    cues = parse_srt(Path(srt_path)) if srt_path else []

    scratch = Path(tempfile.mkdtemp(prefix="studio-cut-"))
    try:
        paths, frames = [], []
        for i, p in enumerate(segment_paths):
            if segment_frames is not None:  # rendered by render_segment_file in `fmt`: no need to probe
                paths.append(Path(p).resolve())
                frames.append(int(segment_frames[i]))
                continue
            info = require_video(p)
            if not _matches(info, fmt):  # e.g. footage rendered elsewhere: bring it to the cut's format
                fixed = scratch / f"norm{i:04d}.mp4"
                render_segment_file(SegmentSpec(video=Path(p), clip_audio=True, clip_audio_gain_db=0.0), fixed, fmt)
                info = require_video(fixed)
                p = fixed
            paths.append(Path(p).resolve())
            frames.append(info.n_frames)
        keep = [n - (int(round(crossfades[i + 1] * F)) if i + 1 < len(paths) else 0) for i, n in enumerate(frames)]
        if any(k < 1 for k in keep):
            raise SegmentError("a crossfade is as long as the segment before it; shorten the crossfade")
        total = sum(keep)

        listing = scratch / "segments.txt"
        with open(listing, "w") as f:
            f.write("ffconcat version 1.0\n")
            for p, k, n in zip(paths, keep, frames, strict=True):
                # inpoint 0: the file starts at its first video frame, not at the AAC priming (-21 ms), which
                # would otherwise delay the stream-copied picture against the separately mixed sound
                f.write(f"file '{_concat_escape(p)}'\ninpoint 0\n")
                if k < n:  # stop just before frame k (decode order == display order: no B-frames)
                    f.write(f"outpoint {(k - 0.5) / F:.6f}\n")

        dialogue = _segment_audio(paths, keep, frames, spf, SR)
        if duck_intervals is None:
            duck_intervals = activity_intervals(dialogue, SR) if music is not None else []
        track = dialogue
        if music is not None:
            bed = _music_samples(music, dialogue.shape[0], SR)
            env = duck_envelope(dialogue.shape[0], SR, duck_intervals, mix.duck_db, mix.duck_attack_s,
                                mix.duck_release_s)
            track = dialogue + bed * (10 ** (mix.music_gain_db / 20)) * env[:, None]
        track, lufs = normalise_loudness(track, SR, mix.loudness_lufs, mix.peak_ceiling_db)
        raw = scratch / "mix.f32"
        track.astype("<f4").tofile(raw)

        args = ["-f", "concat", "-safe", "0", "-i", str(listing),
                "-f", "f32le", "-ar", str(SR), "-ac", "2", "-i", str(raw)]
        srt_out = None
        if cues:
            srt_out = write_srt(cues, out_path.with_suffix(".srt"))
            args += ["-i", str(srt_out)]
        if burn_subtitles and cues:
            overlay_inputs, graph, v = [], [], "0:v"
            for j, cue in enumerate(cues):
                png, h = render_text_png(cue.text, fmt.width, int(fmt.height / 17), "subtitle", scratch)
                overlay_inputs += ["-i", str(png)]
                f0, f1 = int(round(cue.start * F)), int(round(cue.end * F)) - 1
                y = fmt.height - h - int(0.06 * fmt.height)
                graph.append(f"[{v}][{3 + j}:v]overlay=x=0:y={y}:eof_action=repeat:"
                             f"enable='between(n,{f0},{f1})'[b{j}]")
                v = f"b{j}"
            args += overlay_inputs + ["-filter_complex", ";".join(graph), "-map", f"[{v}]", *fmt.video_args()]
        else:
            args += ["-map", "0:v", "-c:v", "copy"]
        args += ["-map", "1:a", *fmt.audio_args()]
        if srt_out:
            args += ["-map", "2:s", "-c:s", "mov_text", "-metadata:s:s:0", "language=eng"]
        # No -frames:v: the listing already ends the video at `total` frames, and ffmpeg would stop muxing the
        # (exactly as long) audio at the last video packet.
        args += [*BITEXACT_OUTPUT, "-movflags", "+faststart", "-f", "mp4"]
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(f".{out_path.name}.part")
        run_ffmpeg([*args, str(tmp)], f"assembling {len(paths)} segments")
        tmp.replace(out_path)
        return CutResult(out_path, total, F, srt_out, not (burn_subtitles and cues),
                         [tuple(x) for x in duck_intervals], lufs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _concat_escape(p: Path) -> str:
    return str(p).replace("'", r"'\''")


def _segment_audio(paths: list[Path], keep: list[int], frames: list[int], spf: int, SR: int) -> np.ndarray:
    """The segments' audio, each padded/trimmed to its frame count, tails cut for crossfades, joined —
    decoded by ONE ffmpeg (the concat filter decodes every input with its own priming handled)."""
    import subprocess

    from studio.resources.media.ffmpeg import ffmpeg_path

    args, chains = [], []
    for i, (p, k, n) in enumerate(zip(paths, keep, frames, strict=True)):
        args += ["-i", str(p)]
        chains.append(f"[{i}:a]aresample={SR},aformat=sample_fmts=fltp:channel_layouts=stereo,"
                      f"apad=whole_len={n * spf},atrim=end_sample={k * spf},asetpts=N/SR/TB[a{i}]")
    graph = ";".join(chains) + ";" + "".join(f"[a{i}]" for i in range(len(paths))) + \
        f"concat=n={len(paths)}:v=0:a=1[out]"
    proc = subprocess.run([ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error", *args,
                           "-filter_complex", graph, "-map", "[out]", "-f", "f32le", "-ar", str(SR), "-ac", "2",
                           "pipe:1"], capture_output=True)
    if proc.returncode != 0:
        raise CorruptMediaError("cannot decode the segments' audio: "
                                + proc.stderr.decode(errors="replace").strip()[-400:])
    track = np.frombuffer(proc.stdout, np.float32).reshape(-1, 2)
    want = sum(keep) * spf
    if track.shape[0] != want:
        track = track[:want] if track.shape[0] > want else np.pad(track, ((0, want - track.shape[0]), (0, 0)))
    return track.copy()


def _music_samples(music: Path | str | np.ndarray, n: int, SR: int) -> np.ndarray:
    if isinstance(music, np.ndarray):
        bed = music.astype(np.float32)
        bed = bed[:, None].repeat(2, 1) if bed.ndim == 1 else bed
    elif str(music) == "procedural":
        return procedural_audio.music_bed(duration=n / SR)[:n]
    else:
        info = probe(music)
        if not info.has_audio:
            raise SegmentError(f"music file {music} has no audio stream")
        bed = read_audio(music, SR, 2)
    if bed.shape[0] == 0:
        raise SegmentError("the music bed is empty")
    reps = -(-n // bed.shape[0])
    return np.tile(bed, (reps, 1))[:n]


def activity_intervals(track: np.ndarray, SR: int, threshold_db: float = -40.0, window_s: float = 0.02,
                       min_gap_s: float = 0.25, min_len_s: float = 0.1) -> list[tuple[float, float]]:
    """Where a track is audible (RMS over `threshold_db`), merged across short gaps: the ducking key."""
    win = max(1, int(window_s * SR))
    n = track.shape[0] // win
    if n == 0:
        return []
    mono = track[: n * win].mean(axis=1) if track.ndim == 2 else track[: n * win]
    rms = np.sqrt(np.mean(mono.reshape(n, win) ** 2, axis=1) + 1e-12)
    active = 20 * np.log10(rms) > threshold_db
    out: list[list[float]] = []
    for i in np.flatnonzero(active):
        t0, t1 = i * window_s, (i + 1) * window_s
        if out and t0 - out[-1][1] <= min_gap_s:
            out[-1][1] = t1
        else:
            out.append([t0, t1])
    return [(round(a, 3), round(b, 3)) for a, b in out if b - a >= min_len_s]


def duck_envelope(n: int, SR: int, intervals: Sequence[tuple[float, float]], duck_db: float, attack_s: float,
                  release_s: float) -> np.ndarray:
    """Gain per sample: 1 outside `intervals`, 10^(duck_db/20) inside, linear ramps before and after."""
    env = np.ones(n, np.float32)
    low = np.float32(10 ** (duck_db / 20))
    ra, rr = max(1, int(attack_s * SR)), max(1, int(release_s * SR))
    for a, b in intervals:
        i0, i1 = min(n, max(0, int(a * SR))), min(n, max(0, int(b * SR)))
        env[i0:i1] = np.minimum(env[i0:i1], low)
        s = max(0, i0 - ra)  # ramp down before the line starts
        env[s:i0] = np.minimum(env[s:i0], np.linspace(1, low, ra + 1, dtype=np.float32)[1:][ra - (i0 - s):])
        e = min(n, i1 + rr)  # and back up after it ends
        env[i1:e] = np.minimum(env[i1:e], np.linspace(low, 1, rr + 1, dtype=np.float32)[:-1][: e - i1])
    return env


def normalise_loudness(track: np.ndarray, SR: int, target_lufs: float | None, ceiling_db: float
                       ) -> tuple[np.ndarray, float | None]:
    """A static gain to the target integrated loudness (ITU-R BS.1770 via pyloudnorm), capped so the peak
    stays under the ceiling. Returns the track and its loudness after the gain (None if silent/too short)."""
    import pyloudnorm

    if target_lufs is None or track.shape[0] < int(0.5 * SR):
        return track, None
    meter = pyloudnorm.Meter(SR)
    loud = meter.integrated_loudness(track.astype(np.float64))
    if not np.isfinite(loud):
        return track, None
    gain_db = target_lufs - loud
    peak = float(np.max(np.abs(track))) or 1e-9
    gain_db = min(gain_db, ceiling_db - 20 * np.log10(peak))
    out = (track * 10 ** (gain_db / 20)).astype(np.float32)
    return out, float(loud + gain_db)
