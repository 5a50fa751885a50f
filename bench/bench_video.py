"""Video benchmarks (issue 6). Run: `.venv/bin/python bench/bench_video.py [--copies 24] [--repeats 3]`.

1. Scene detection on a long input (the Big Buck Bunny sample looped `--copies` times, 720p, stream copy):
   the `scenedetect` CLI with its defaults vs the studio's detector in one process vs chunked on 2 processes
   (same detector and downscale). Frames per second of wall time; the cut lists must agree.
2. Final assembly of 20 segments (preview format 854×480 @ 24 fps): the studio's concat demuxer (stream copy)
   + numpy audio mix (music ducked under dialogue, loudness) vs one MoviePy composite of the same edit.
   Both outputs are probed: the durations must be identical (to one frame).
Prints a markdown table; `--json PATH` also writes the raw figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="bench-video-home-"))

import numpy as np  # noqa: E402

from studio.resources.audio.procedural import music_bed  # noqa: E402
from studio.resources.media.audio_io import write_wav
from studio.resources.media.ffmpeg import ffmpeg_path
from studio.resources.media.frames import sample_footage_path
from studio.resources.media.probe import probe
from studio.resources.runtime.artifacts import ArtifactStore  # noqa: E402
from studio.resources.video.analysis import detect_scenes  # noqa: E402
from studio.resources.video.assemble import assemble_segments  # noqa: E402
from studio.resources.video.config import video_config  # noqa: E402
from studio.resources.video.segment import SegmentSpec  # noqa: E402
from studio.tasks.video import make_segment, segment_recipe  # noqa: E402


def _cpu() -> float:
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _median_time(fn, repeats: int, cpu: list | None = None) -> tuple[float, object]:
    """Median wall seconds of `repeats` calls; CPU seconds (this process + finished children) go to `cpu`."""
    times, cpus, out = [], [], None
    for _ in range(repeats):
        t, c = time.perf_counter(), _cpu()
        out = fn()
        times.append(time.perf_counter() - t)
        cpus.append(_cpu() - c)
    if cpu is not None:
        cpu.append(statistics.median(cpus))
    return statistics.median(times), out


def long_input(folder: Path, copies: int) -> Path:
    listing = folder / "loop.txt"
    listing.write_text("".join(f"file '{sample_footage_path()}'\n" for _ in range(copies)))
    out = folder / f"bbb_x{copies}.mp4"
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-an",
                    "-c", "copy", str(out)], check=True)
    return out


def bench_scenes(folder: Path, copies: int, repeats: int) -> dict:
    video = long_input(folder, copies)
    info = probe(video)
    frames = info.n_frames
    cfg = video_config().scene_detection
    chunk = info.duration / 2 + 0.01  # one chunk per process
    whole = info.duration + 10
    cli = [str(Path(sys.executable).with_name("scenedetect")), "-q", "-i", str(video)]
    rows, cpu = {}, {}
    c: list = []
    t_cli, _ = _median_time(lambda: subprocess.run(cli, check=True, capture_output=True), repeats, c)
    rows["scenedetect CLI default (detect-adaptive, auto downscale)"] = t_cli
    cpu["scenedetect CLI default (detect-adaptive, auto downscale)"] = c[-1]
    single_cuts = {}
    key = "studio content, 1 process, 1 decoder thread (one core's worth)"
    rows[key], _ = _median_time(lambda: detect_scenes(video, cfg, "content", chunk_seconds=whole, threads=1),
                                repeats, c)
    cpu[key] = c[-1]
    for det in ("adaptive", "content"):
        t1, sc1 = _median_time(lambda d=det: detect_scenes(video, cfg, d, chunk_seconds=whole), repeats, c)
        cpu[f"studio {det}, 1 process"] = c[-1]
        t2, sc2 = _median_time(lambda d=det: detect_scenes(video, cfg, d, chunk_seconds=chunk, workers=2), repeats,
                               c)
        cpu[f"studio {det}, 2 chunks on 2 processes"] = c[-1]
        cuts1, cuts2 = [s.start_frame for s in sc1], [s.start_frame for s in sc2]
        assert cuts1 == cuts2, f"chunked {det} detection disagrees: {cuts1} vs {cuts2}"
        single_cuts[det] = len(cuts1)
        rows[f"studio {det}, 1 process"] = t1
        rows[f"studio {det}, 2 chunks on 2 processes"] = t2
    return {"video": f"Big Buck Bunny ×{copies}: {info.width}x{info.height}, {info.duration:.1f} s, {frames} frames",
            "frames": frames, "seconds": rows, "cpu_seconds": cpu, "fps": {k: frames / v for k, v in rows.items()},
            "scenes": single_cuts,
            "speedup_adaptive": rows["studio adaptive, 1 process"] / rows["studio adaptive, 2 chunks on 2 processes"],
            "speedup_content": rows["studio content, 1 process"] / rows["studio content, 2 chunks on 2 processes"],
            "speedup_content_vs_one_thread": rows[key] / rows["studio content, 2 chunks on 2 processes"]}


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
    t_ours, _ = _median_time(lambda: assemble_segments(paths, ours_out, music=str(music_wav), fmt=fmt,
                                                       duck_intervals=ducks, segment_frames=frames), repeats)
    mp_out = folder / "moviepy.mp4"
    t_mp, _ = _median_time(lambda: moviepy_composite(paths, music_wav, ducks, mp_out, fmt), 1)
    d_ours, d_mp = probe(ours_out), probe(mp_out)
    return {"segments": len(paths), "render_20_segments_s": render_s, "six_shot_short_s": short_s,
            "cut_seconds": total,
            "ours_s": t_ours, "moviepy_s": t_mp, "speedup": t_mp / t_ours,
            "ours_frames": d_ours.n_frames, "moviepy_frames": d_mp.n_frames,
            "ours_duration": d_ours.duration, "moviepy_duration": d_mp.duration}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=24, help="sample loops in the long input (5.3 s each)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=["scenes", "assembly"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-video-"))
    res: dict = {"load_average_start": os.getloadavg(), "cores": os.cpu_count()}
    if args.only in (None, "scenes"):
        res["scenes"] = bench_scenes(folder, args.copies, args.repeats)
    if args.only in (None, "assembly"):
        res["assembly"] = bench_assembly(folder, args.repeats)
    res["load_average_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    print(f"machine: {res['cores']} cores, load average {res['load_average_start'][0]:.1f} → "
          f"{res['load_average_end'][0]:.1f}; medians of {args.repeats}")
    if "scenes" in res:
        s = res["scenes"]
        print(f"\nScene detection — {s['video']} (scenes {s['scenes']})\n\n"
              "| method | wall s | fps | CPU s |\n|---|---|---|---|")
        for k, v in s["seconds"].items():
            print(f"| {k} | {v:.1f} | {s['fps'][k]:.0f} | {s['cpu_seconds'][k]:.1f} |")
        print(f"\nchunked speed-up: adaptive ×{s['speedup_adaptive']:.2f}, content ×{s['speedup_content']:.2f}, "
              f"content vs one decoder thread ×{s['speedup_content_vs_one_thread']:.2f}")
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
