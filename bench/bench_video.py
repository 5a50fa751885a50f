"""Video assembly benchmark (issue 6; scene detection is in bench/bench_analysis.py).
Run: `.venv/bin/python bench/bench_video.py [--repeats 3]`.

Final assembly of 20 segments (preview format 854×480 @ 24 fps): the studio's concat demuxer (stream copy)
   + numpy audio mix (music ducked under dialogue, loudness) vs one MoviePy composite of the same edit.
   Both outputs are probed: the durations must be identical (to one frame).
Prints a markdown table; `--json PATH` also writes the raw figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="bench-video-home-"))

import numpy as np  # noqa: E402
from timing import median_time  # noqa: E402  (bench/ is on sys.path when a bench script runs)

from studio.resources.audio.procedural import music_bed  # noqa: E402
from studio.resources.media.audio_io import write_wav
from studio.resources.media.ffmpeg import ffmpeg_path
from studio.resources.media.frames import sample_footage_path
from studio.resources.media.probe import probe
from studio.resources.runtime.artifacts import ArtifactStore  # noqa: E402
from studio.resources.video.assemble import assemble_segments  # noqa: E402
from studio.resources.video.config import video_config  # noqa: E402
from studio.resources.video.segment import SegmentSpec  # noqa: E402
from studio.tasks.video import make_segment, segment_recipe  # noqa: E402


def twenty_segments(folder: Path) -> tuple[list[Path], list[tuple[float, float]], list[int], float]:
    """20 preview-format segments from the sample: clip windows and stills, effects, 5 voice lines."""

    sample = sample_footage_path()
    still = folder / "still.png"
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-ss", "2", "-i", str(sample), "-frames:v", "1", str(still)],
                   check=True)
    t = np.arange(int(0.8 * 48000)) / 48000
    voice = write_wav(folder / "voice.wav", 0.3 * np.sin(2 * np.pi * 300 * t) * np.hanning(t.size))
    effects = [[], ["ken_burns"], ["punch_in"], [{"name": "slow_motion", "params": {"factor": 0.5}}], ["whoosh"]]
    specs = []
    for i in range(20):
        common = {"effects": effects[i % 5], "subtitle": f"line {i}" if i % 4 == 0 else None}
        if i % 4 == 0:
            common.update(voice=str(voice), voice_offset=0.3)
        if i % 2:
            specs.append(SegmentSpec(image=still, duration=1.5, **common))
        else:
            start = (i * 0.37) % 3.5
            specs.append(SegmentSpec(video=sample, start=start, end=start + 1.5, **common))
    store = ArtifactStore(str(folder / "store"))
    fmt = video_config().format("preview")
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        refs = list(pool.map(lambda s: make_segment(segment_recipe(s, fmt), s, fmt, store), specs))
    render_s = time.perf_counter() - t0
    paths, ducks, frames, t = [], [], [], 0.0
    for ref in refs:
        extra = store.sidecar(ref)["extra"]
        paths.append(store.local_path(ref))
        frames.append(extra["nframes"])
        if extra.get("voice_interval"):
            ducks.append((t + extra["voice_interval"][0], t + extra["voice_interval"][1]))
        t += extra["duration"]
    return paths, ducks, frames, render_s


def moviepy_composite(paths: list[Path], music_wav: Path, ducks, out: Path, fmt) -> None:
    from moviepy import AudioFileClip, CompositeAudioClip, VideoFileClip, afx, concatenate_videoclips

    clips = [VideoFileClip(str(p)) for p in paths]
    video = concatenate_videoclips(clips)
    music = AudioFileClip(str(music_wav)).with_duration(video.duration)
    cfg = video_config().audio
    music = music.with_volume_scaled(10 ** (cfg.music_gain_db / 20))
    duck = 10 ** (cfg.duck_db / 20)
    music = music.with_effects([afx.MultiplyVolume(duck, a, b) for a, b in ducks])
    video = video.with_audio(CompositeAudioClip([video.audio, music]))
    video.write_videofile(str(out), fps=fmt.fps, codec="libx264", preset=fmt.preset, audio_codec="aac",
                          audio_fps=48000, threads=2, ffmpeg_params=["-crf", str(fmt.crf), "-pix_fmt", "yuv420p"],
                          logger=None)
    for c in clips:
        c.close()


def six_shot_short(folder: Path) -> float:
    """A 6-shot short end to end (segments on 2 workers + assembly), preview format, fresh store."""
    from studio.tasks.video import render_cut_local

    sample = sample_footage_path()
    specs = [SegmentSpec(video=sample, start=0.3, end=3.3, effects=["ken_burns"], caption="Morning"),
             SegmentSpec(video=sample, start=1.0, end=3.0, effects=["reaction_zoom"]),
             SegmentSpec(video=sample, start=2.0, end=4.5, effects=["speed_ramp_gag"], subtitle="Whoa"),
             SegmentSpec(video=sample, start=0.0, end=2.0, effects=["dramatic_discovery"], caption="THE SEA"),
             SegmentSpec(video=sample, start=3.0, end=5.0, effects=[{"name": "crossfade",
                                                                      "params": {"duration": 0.5}}]),
             SegmentSpec(video=sample, start=1.5, end=4.5, effects=["dun_dun_dun", "fade_out"])]
    t = time.perf_counter()
    render_cut_local(specs, video_config().format("preview"), "procedural", workers=2,
                     store=ArtifactStore(str(folder / "short-store")))
    return time.perf_counter() - t


def bench_assembly(folder: Path, repeats: int) -> dict:
    fmt = video_config().format("preview")
    short_s = six_shot_short(folder)
    paths, ducks, frames, render_s = twenty_segments(folder)
    total = sum(frames) / fmt.fps
    music_wav = write_wav(folder / "music.wav", music_bed(duration=total + 1))
    import moviepy  # noqa: F401  both sides' imports happen before the clock starts
    import pyloudnorm  # noqa: F401
    ours_out = folder / "ours.mp4"
    # segment_frames: what assemble_cut passes (the frame counts from the segments' sidecars)
    t_ours, _ = median_time(lambda: assemble_segments(paths, ours_out, music=str(music_wav), fmt=fmt,
                                                       duck_intervals=ducks, segment_frames=frames), repeats)
    mp_out = folder / "moviepy.mp4"
    t_mp, _ = median_time(lambda: moviepy_composite(paths, music_wav, ducks, mp_out, fmt), 1)
    d_ours, d_mp = probe(ours_out), probe(mp_out)
    return {"segments": len(paths), "render_20_segments_s": render_s, "six_shot_short_s": short_s,
            "cut_seconds": total,
            "ours_s": t_ours, "moviepy_s": t_mp, "speedup": t_mp / t_ours,
            "ours_frames": d_ours.n_frames, "moviepy_frames": d_mp.n_frames,
            "ours_duration": d_ours.duration, "moviepy_duration": d_mp.duration}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=["assembly"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-video-"))
    res: dict = {"load_average_start": os.getloadavg(), "cores": os.cpu_count()}
    if args.only in (None, "assembly"):
        res["assembly"] = bench_assembly(folder, args.repeats)
    res["load_average_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    print(f"machine: {res['cores']} cores, load average {res['load_average_start'][0]:.1f} → "
          f"{res['load_average_end'][0]:.1f}; medians of {args.repeats}")
    if "assembly" in res:
        a = res["assembly"]
        print(f"\nAssembly — {a['segments']} segments, {a['cut_seconds']:.1f} s at 854x480@24 "
              f"(rendering them took {a['render_20_segments_s']:.1f} s on 2 workers)\n\n"
              f"| method | wall s | frames | duration s |\n|---|---|---|---|\n"
              f"| studio concat (stream copy) + numpy mix | {a['ours_s']:.2f} | {a['ours_frames']} | "
              f"{a['ours_duration']:.3f} |\n| MoviePy composite | {a['moviepy_s']:.2f} | {a['moviepy_frames']} | "
              f"{a['moviepy_duration']:.3f} |\n\nspeed-up ×{a['speedup']:.1f}; a 6-shot short (clips, recipes, "
              f"music) from specs to mp4: {a['six_shot_short_s']:.1f} s")


if __name__ == "__main__":
    main()
