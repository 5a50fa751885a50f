"""Assembly: rendered segments → the cut. The concat demuxer stream-copies the video when every segment has
the output format; the soundtrack (segment audio, crossfades, ducked music, loudness) is mixed in numpy and
muxed once."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.resources.audio import procedural as procedural_audio
from studio.resources.audio.mix import duck_envelope, loudness_normalize
from studio.resources.audio.post import voiced_regions
from studio.resources.media.audio_io import read_audio
from studio.resources.media.ffmpeg import BITEXACT_OUTPUT, CorruptMediaError, encode_to
from studio.resources.media.probe import MediaInfo, probe, require_video
from studio.resources.media.text import render_text_png
from studio.resources.video.config import AudioMixConfig, OutputFormat, video_config
from studio.resources.video.segment import SegmentError, SegmentSpec, default_format, render_segment_file
from studio.resources.video.subtitles import parse_srt, write_srt


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
    F, SR = fmt.fps, fmt.sample_rate
    crossfades = list(crossfades or [0.0] * len(segment_paths))
    if len(crossfades) != len(segment_paths):
        raise SegmentError(f"{len(crossfades)} crossfade values for {len(segment_paths)} segments")
    cues = parse_srt(Path(srt_path)) if srt_path else []

    scratch = Path(tempfile.mkdtemp(prefix="studio-cut-"))
    try:
        paths, frames = _inputs_in_format(segment_paths, fmt, segment_frames, scratch)
        keep = [n - (int(round(crossfades[i + 1] * F)) if i + 1 < len(paths) else 0) for i, n in enumerate(frames)]
        if any(k < 1 for k in keep):
            raise SegmentError("a crossfade is as long as the segment before it; shorten the crossfade")
        listing = _write_listing(scratch / "segments.txt", paths, keep, frames, F)
        dialogue = _segment_audio(paths, keep, frames, fmt.samples_per_frame, SR)
        track, duck_intervals, lufs = _soundtrack(dialogue, SR, music, duck_intervals, mix)
        raw = scratch / "mix.f32"
        track.astype("<f4").tofile(raw)

        args = ["-f", "concat", "-safe", "0", "-i", str(listing),
                "-f", "f32le", "-ar", str(SR), "-ac", "2", "-i", str(raw)]
        srt_out = write_srt(cues, out_path.with_suffix(".srt")) if cues else None
        if srt_out:
            args += ["-i", str(srt_out)]
        args += _picture_args(cues if burn_subtitles else [], fmt, scratch)
        args += ["-map", "1:a", *fmt.audio_args()]
        if srt_out:
            args += ["-map", "2:s", "-c:s", "mov_text", "-metadata:s:s:0", "language=eng"]
        # No -frames:v: the listing already ends the video at the kept frames, and ffmpeg would stop muxing the
        # (exactly as long) audio at the last video packet.
        args += [*BITEXACT_OUTPUT, "-movflags", "+faststart", "-f", "mp4"]
        encode_to(args, out_path, f"assembling {len(paths)} segments")
        return CutResult(out_path, sum(keep), F, srt_out, not (burn_subtitles and cues),
                         [tuple(x) for x in duck_intervals], lufs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _inputs_in_format(segment_paths: Sequence[Path | str], fmt: OutputFormat, segment_frames: Sequence[int] | None,
                      scratch: Path) -> tuple[list[Path], list[int]]:
    """The segments as files in `fmt` and their frame counts; a segment in another format (e.g. footage
    rendered elsewhere) is re-encoded to it first."""
    paths, frames = [], []
    for i, p in enumerate(segment_paths):
        if segment_frames is not None:  # rendered by render_segment_file in `fmt`: no need to probe
            paths.append(Path(p).resolve())
            frames.append(int(segment_frames[i]))
            continue
        info = require_video(p)
        if not _matches(info, fmt):
            fixed = scratch / f"norm{i:04d}.mp4"
            render_segment_file(SegmentSpec(video=Path(p), clip_audio=True, clip_audio_gain_db=0.0), fixed, fmt)
            info, p = require_video(fixed), fixed
        paths.append(Path(p).resolve())
        frames.append(info.n_frames)
    return paths, frames


def _write_listing(listing: Path, paths: list[Path], keep: list[int], frames: list[int], fps: int) -> Path:
    """The concat demuxer's listing: each segment from its first video frame, the ones followed by a crossfade
    cut before their last frames."""
    with open(listing, "w") as f:
        f.write("ffconcat version 1.0\n")
        for p, k, n in zip(paths, keep, frames, strict=True):
            # inpoint 0: the file starts at its first video frame, not at the AAC priming (-21 ms), which
            # would otherwise delay the stream-copied picture against the separately mixed sound
            f.write(f"file '{_concat_escape(p)}'\ninpoint 0\n")
            if k < n:  # stop just before frame k (decode order == display order: no B-frames)
                f.write(f"outpoint {(k - 0.5) / fps:.6f}\n")
    return listing


def _soundtrack(dialogue: np.ndarray, SR: int, music: Path | str | np.ndarray | None,
                duck_intervals: Sequence[tuple[float, float]] | None, mix: AudioMixConfig
                ) -> tuple[np.ndarray, Sequence[tuple[float, float]], float | None]:
    """Dialogue + the music bed ducked under it (default key: wherever the dialogue is audible), then the
    loudness target. Returns the track, the duck intervals used and the loudness reached."""
    if duck_intervals is None:
        duck_intervals = (voiced_regions(dialogue, SR, -40.0, hop_ms=20, frame_ms=20, min_gap_ms=250,
                                         min_len_ms=100, relative=False) if music is not None else [])
    track = dialogue
    if music is not None:
        bed = _music_samples(music, dialogue.shape[0], SR)
        env = duck_envelope(dialogue.shape[0], SR, duck_intervals, mix.duck_db, mix.duck_attack_s,
                            mix.duck_release_s)
        track = dialogue + bed * (10 ** (mix.music_gain_db / 20)) * env[:, None]
    if mix.loudness_lufs is None or track.shape[0] < SR // 2:
        return track, duck_intervals, None
    track, lufs = loudness_normalize(track, SR, mix.loudness_lufs, mix.peak_ceiling_db, over_ceiling="cap")
    return track, duck_intervals, lufs


def _picture_args(burned: list, fmt: OutputFormat, scratch: Path) -> list[str]:
    """Stream-copy the joined video, or — with subtitles to burn in — overlay each cue's PNG and re-encode."""
    if not burned:
        return ["-map", "0:v", "-c:v", "copy"]
    inputs, graph, v = [], [], "0:v"
    for j, cue in enumerate(burned):
        png, h = render_text_png(cue.text, fmt.width, int(fmt.height / 17), "subtitle", scratch, video_config().font)
        inputs += ["-i", str(png)]
        f0, f1 = int(round(cue.start * fmt.fps)), int(round(cue.end * fmt.fps)) - 1
        y = fmt.height - h - int(0.06 * fmt.height)
        graph.append(f"[{v}][{3 + j}:v]overlay=x=0:y={y}:eof_action=repeat:enable='between(n,{f0},{f1})'[b{j}]")
        v = f"b{j}"
    return [*inputs, "-filter_complex", ";".join(graph), "-map", f"[{v}]", *fmt.video_args()]


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
