"""Film analysis benchmarks (issue 16). Run: `.venv/bin/python bench/bench_analysis.py [--copies 12] [--repeats 3]`.

1. Cut detection, frames per second of wall time, medians of `--repeats`, on two inputs: the Big Buck Bunny
   sample looped `--copies` times (720p, stream copy) and a synthetic edited film (640x360: hard cuts, fades
   through black and white, dissolves). Side by side in one run:
   - PySceneDetect `detect(path, ContentDetector())` (cuts only);
   - PySceneDetect cuts + fades: `detect()` with ContentDetector, then again with ThresholdDetector;
   - the `scenedetect` CLI (`detect-content list-scenes`, process start included);
   - the studio (`film_scenes`: cuts + fades + dissolves in one decode) in one process, and chunked in two
     halves on 1 and on 2 processes.
   Every studio cut list is checked against `detect()`'s (seconds, 1 µs) and the CLI's (its CSV has ms).
2. Camera motion error on the synthetic ground-truth set (the clips of tests/resources/video/
   test_analysis_camera.py): relative speed error per clip and whether the direction is right.
Prints markdown; `--json PATH` also writes the raw figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the synthetic clip generators

from support.video_clips import film_video, moving_camera_video  # noqa: E402
from timing import median_time  # noqa: E402  (bench/ is on sys.path when a bench script runs)

from studio.resources.media.ffmpeg import ffmpeg_path  # noqa: E402
from studio.resources.media.frames import read_all_frames, sample_footage_path  # noqa: E402
from studio.resources.media.probe import probe  # noqa: E402
from studio.resources.video.camera import camera_motion  # noqa: E402
from studio.resources.video.config import video_config  # noqa: E402
from studio.resources.video.scenes import film_scenes  # noqa: E402


def looped_sample(folder: Path, copies: int) -> Path:
    listing = folder / "loop.txt"
    listing.write_text("".join(f"file '{sample_footage_path()}'\n" for _ in range(copies)))
    out = folder / f"bbb_x{copies}.mp4"
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-an",
                    "-c", "copy", str(out)], check=True)
    return out


def edited_film(folder: Path, shots: int = 16) -> Path:
    joins_cycle = ["cut", ("fade", "black", 12, 6, 12), ("dissolve", 18), "cut", ("fade", "white", 8, 0, 8)]
    path, _truth = film_video(folder / "edited.mp4", [(s, 60 + 7 * (s % 5)) for s in range(shots)],
                              [joins_cycle[i % len(joins_cycle)] for i in range(shots - 1)], 24, size=(640, 360))
    return path


def cli_cuts(video: Path, out_dir: Path) -> list[float]:
    scenedetect = str(Path(sys.executable).with_name("scenedetect"))
    subprocess.run([scenedetect, "-q", "-i", str(video), "-o", str(out_dir), "detect-content", "list-scenes"],
                   check=True, capture_output=True)
    rows = list(csv.reader((out_dir / f"{video.stem}-Scenes.csv").open()))
    return [float(r[3]) for r in rows[2:]][1:]


def bench_cuts(video: Path, repeats: int, folder: Path) -> dict:
    from scenedetect import ContentDetector, ThresholdDetector, detect

    info = probe(video)
    cfg = video_config().scene_detection
    whole, half = info.duration + 10, info.duration / 2 + 0.01

    def psd_cuts():
        return [float(s.seconds) for s, _e in detect(str(video), ContentDetector())[1:]]

    def psd_cuts_and_fades():
        return psd_cuts(), detect(str(video), ThresholdDetector())

    rows: dict[str, float] = {}
    cpu: dict[str, float] = {}
    k1, k2, k3 = ("PySceneDetect detect(ContentDetector()) — cuts only",
                  "PySceneDetect cuts + fades (detect() twice: Content, Threshold)",
                  "scenedetect CLI detect-content list-scenes")
    rows[k1], oracle = median_time(psd_cuts, repeats, cpu, k1)
    rows[k2], _ = median_time(psd_cuts_and_fades, repeats, cpu, k2)
    rows[k3], cli = median_time(lambda: cli_cuts(video, folder), repeats, cpu, k3)
    runs = {"studio, 1 process (cuts + transitions)": dict(chunk_seconds=whole),
            "studio, 2 chunks on 1 process": dict(chunk_seconds=half),
            "studio, 2 chunks on 2 processes": dict(chunk_seconds=half, workers=2)}
    found = {}
    for name, kw in runs.items():
        rows[name], found[name] = median_time(lambda kw=kw: film_scenes(video, cfg, "content", **kw), repeats,
                                               cpu, name)
    for name, res in found.items():
        assert res["cuts"] == oracle or max(abs(a - b) for a, b in zip(res["cuts"], oracle, strict=True)) < 1e-6, \
            f"{name}: {res['cuts']} != {oracle}"
        assert all(abs(a - b) < 1.5e-3 for a, b in zip(res["cuts"], cli, strict=True)) and len(cli) == len(oracle)
    one = found["studio, 1 process (cuts + transitions)"]
    return {"video": f"{video.name}: {info.width}x{info.height}, {info.duration:.1f} s, {info.n_frames} frames",
            "frames": info.n_frames, "cuts": len(oracle), "transitions": len(one["transitions"]),
            "seconds": rows, "fps": {k: info.n_frames / v for k, v in rows.items()}, "cpu_seconds": cpu,
            "identical_cuts": True}


CAMERA_CASES = [(k, s) for k in ("pan-left", "pan-right", "tilt-up", "tilt-down") for s in (1, 3)] + \
               [(k, r) for k in ("zoom-in", "zoom-out") for r in (0.1, 0.3)]


def bench_camera(folder: Path) -> dict:
    fps, w, h = 24, 192, 108
    rows = []
    for kind, speed in CAMERA_CASES:
        clip = moving_camera_video(folder / f"{kind}-{speed}.mp4", kind, speed, fps=fps, size=(w, h))
        m = camera_motion(list(read_all_frames(clip, gray=True))[::2], fps / 2)
        if kind.startswith("zoom"):
            want, got = (speed if kind == "zoom-in" else -speed), m.zoom_rate
        else:
            sign = -1 if kind in ("pan-right", "tilt-down") else 1
            want = sign * speed * fps / (w if kind.startswith("pan") else h)
            got = m.pan_speed if kind.startswith("pan") else m.tilt_speed
        rows.append({"clip": f"{kind} {speed}", "truth": want, "measured": got,
                     "rel_error": abs(got - want) / abs(want), "direction_right": m.motion == kind})
    still = moving_camera_video(folder / "static.mp4", "pan-left", 0, fps=fps, size=(w, h))
    static = camera_motion(list(read_all_frames(still, gray=True))[::2], fps / 2).motion == "static"
    errs = [r["rel_error"] for r in rows]
    return {"clips": rows, "median_rel_error": statistics.median(errs), "max_rel_error": max(errs),
            "directions_right": sum(r["direction_right"] for r in rows), "static_is_static": static}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=12, help="sample loops in the long input (5.3 s each)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    res: dict = {"load_average_start": os.getloadavg(), "cores": os.cpu_count(), "cuts": []}
    for video in (looped_sample(folder, args.copies), edited_film(folder)):
        res["cuts"].append(bench_cuts(video, args.repeats, folder))
    res["camera"] = bench_camera(folder)
    res["load_average_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    print(f"machine: {res['cores']} cores, load average {res['load_average_start'][0]:.1f} → "
          f"{res['load_average_end'][0]:.1f}; medians of {args.repeats}")
    for s in res["cuts"]:
        base = s["seconds"]["PySceneDetect detect(ContentDetector()) — cuts only"]
        print(f"\nCut detection — {s['video']}; {s['cuts']} cuts, {s['transitions']} transitions; "
              "every studio cut list identical to detect()'s and the CLI's\n\n"
              "| method | wall s | frames/s | vs detect() | CPU s |\n|---|---|---|---|---|")
        for k, v in s["seconds"].items():
            print(f"| {k} | {v:.2f} | {s['fps'][k]:.0f} | ×{base / v:.2f} | {s['cpu_seconds'][k]:.1f} |")
    c = res["camera"]
    print(f"\nCamera motion — {len(c['clips'])} synthetic clips: median error {100 * c['median_rel_error']:.1f} %, "
          f"max {100 * c['max_rel_error']:.1f} %, direction right {c['directions_right']}/{len(c['clips'])}, "
          f"static clip static: {c['static_is_static']}\n\n| clip | truth | measured | error |\n|---|---|---|---|")
    for r in c["clips"]:
        print(f"| {r['clip']} | {r['truth']:.4f} | {r['measured']:.4f} | {100 * r['rel_error']:.1f} % |")


if __name__ == "__main__":
    main()
