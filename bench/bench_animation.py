"""Benchmark of the animated look (issue 12), side by side with today's still-frame segments, in one run.

    .venv/bin/python bench/bench_animation.py [--repeats 3] [--voice-lines 4] [--skip-voice]

1. Cut-out renderer frames/s at 854×480 pinned to ONE core (drawing only, and drawing + the ffmpeg pipe),
   for six shots covering the motion primitives, weather and camera moves (goal ≥ 120 fps).
2. One shot's segment: still keyframe + camera effect (today) vs animated (frames → clip → segment), wall s.
3. Voice stage: lines rendered one after another in one process (as the flow's voice stage does): the first
   line (libraries and model load) and the rest, as wall seconds / audio seconds (goal ≤ 2 after the first).
Medians over repeats. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.configs.vocabulary import Dialogue, Shot  # noqa: E402

SHOTS = [
    Shot(id=1, characters=["bunny"], action="The bunny chases the butterfly", things=["butterfly"],
         location="meadow", camera="wide"),
    Shot(id=2, characters=["frank"], action="Frank jumps over a rock", things=["rock"], location="forest",
         camera="wide", weather="rain", emotion="excited"),
    Shot(id=3, characters=["rinky", "frank"], action="Rinky runs away from Frank", target="frank",
         location="beach", time_of_day="sunset", camera="wide", camera_move="pan-right"),
    Shot(id=4, characters=["gimera"], action="Gimera hides and peeks", location="town", time_of_day="night",
         weather="snow", camera="medium", emotion="scared"),
    Shot(id=5, characters=["luca"], action="Luca sees an apple", things=["apple", "kite"], location="kitchen",
         camera="medium", camera_move="push-in", emotion="surprised", exaggeration=2.5),
    Shot(id=6, characters=["frank"], action="Frank shouts in the storm", location="sea", weather="storm",
         camera="close-up", emotion="angry", dialogue=Dialogue(character="frank", line="Get him!")),
]
W, H, FPS, SECONDS = 854, 480, 24, 4.0


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def renderer_fps(repeats: int) -> dict:
    import numpy as np

    from studio.resources.video.animation import build_scene, pipe_frames_to_clip, render_scene_frames

    timing = {"envelope": {"hop_s": 0.01, "values": (0.5 + 0.5 * np.sin(np.arange(400) * 0.15)).round(3).tolist()},
              "segments": [{"start": 0.3, "end": 3.5}]}
    draw, piped, build = [], [], []
    per_shot = {}
    with tempfile.TemporaryDirectory() as tmp:
        for shot in SHOTS:
            fps_draw, fps_pipe, t_build = [], [], []
            for r in range(repeats):
                t0 = time.perf_counter()
                scene = build_scene(shot, W, H, FPS, SECONDS, 7 + r, timing, 0.3)
                t_build.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                render_scene_frames(scene, lambda b: None)
                fps_draw.append(scene.n / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                pipe_frames_to_clip(W, H, FPS, scene.n, lambda sink, s=scene: render_scene_frames(s, sink),
                                    Path(tmp) / "clip.mkv")
                fps_pipe.append(scene.n / (time.perf_counter() - t0))
            per_shot[f"{shot.id}:{shot.action[:28]}"] = {
                "draw_fps": round(statistics.median(fps_draw)), "draw+pipe_fps": round(statistics.median(fps_pipe)),
                "build_s": round(statistics.median(t_build), 3)}
            draw.append(statistics.median(fps_draw))
            piped.append(statistics.median(fps_pipe))
            build.append(statistics.median(t_build))
    return {"per_shot": per_shot, "median_draw_fps": round(statistics.median(draw)),
            "min_draw_fps": round(min(draw)), "median_draw+pipe_fps": round(statistics.median(piped)),
            "min_draw+pipe_fps": round(min(piped))}


def segment_side_by_side(repeats: int) -> dict:
    """The chase shot: today's still segment (storyboard keyframe + ken_burns) vs the animated segment."""
    from studio.configs.schema import ModelEntry
    from studio.configs.vocabulary import Plan
    from studio.resources.image.request import image_request_from_shot
    from studio.resources.image.storyboard.frame import StoryboardImageBackend, render_storyboard_frame, save_png
    from studio.resources.video.animation import render_animation
    from studio.resources.video.config import video_config
    from studio.resources.video.segment import SegmentSpec, render_segment_file

    shot = SHOTS[0]
    fmt = video_config().format()
    backend = StoryboardImageBackend("storyboard", ModelEntry(modality="image", backend="storyboard"))
    still_s, anim_s, key_s = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for _ in range(repeats):
            t0 = time.perf_counter()
            req = backend.prepare(image_request_from_shot(shot, Plan(title="b", shots=[shot]), seed=1))
            save_png(render_storyboard_frame(req), tmp / "key.png")
            key_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            render_segment_file(SegmentSpec(image=tmp / "key.png", duration=SECONDS,
                                            effects=[{"name": "ken_burns",
                                                      "params": {"zoom_start": 1.0, "zoom_end": 1.06}}]),
                                tmp / "still.mp4", fmt)
            still_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            render_animation(shot, tmp / "clip.mkv", fmt.width, fmt.height, fmt.fps, SECONDS, 1)
            render_segment_file(SegmentSpec(video=tmp / "clip.mkv"), tmp / "anim.mp4", fmt)
            anim_s.append(time.perf_counter() - t0)
    return {"shot_s": SECONDS, "still_keyframe_s": round(statistics.median(key_s), 3),
            "still_segment_s": round(statistics.median(still_s), 3),
            "animated_segment_s": round(statistics.median(anim_s), 3),
            "animated_over_still_plus_keyframe": round(statistics.median(anim_s)
                                                       / (statistics.median(still_s) + statistics.median(key_s)), 2)}


def voice_stage(n_lines: int) -> dict:
    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.tasks.voice import line_recipe, make_line

    texts = ["What a beautiful morning.", "Hey, fluffy! Nice ears!", "Catch me if you can!",
             "The butterfly flew over the hill.", "I will get you, squirrels.", "Look at the sea!"]
    chars = ["bunny", "frank", "rinky", "gimera", "bunny", "frank"]
    rows = []
    store = ArtifactStore.from_settings()  # STUDIO_STORE__URI: a fresh folder set by main()
    for i in range(n_lines):
        t0 = time.perf_counter()
        recipe = line_recipe(chars[i % 6], texts[i % 6], "happy", 0.6, seed=1000 + i)
        ref = make_line(recipe, store)
        wall = time.perf_counter() - t0
        audio = float(store.sidecar(ref)["extra"]["duration_s"])
        rows.append({"wall_s": round(wall, 3), "audio_s": round(audio, 3), "ratio": round(wall / audio, 2)})
    rest = rows[1:]
    return {"lines": rows, "first_line_s": rows[0]["wall_s"],
            "after_first_wall_over_audio": round(sum(r["wall_s"] for r in rest) / sum(r["audio_s"] for r in rest), 2)
            if rest else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--voice-lines", type=int, default=4)
    ap.add_argument("--skip-voice", action="store_true")
    args = ap.parse_args()
    out: dict = {"load_before": _load(), "cores": os.cpu_count()}
    os.environ.setdefault("STUDIO_STORE__URI", tempfile.mkdtemp(prefix="bench-anim-store-"))
    if not args.skip_voice:  # first, while the process is fresh: the stage's real first-line cost
        out["voice"] = voice_stage(args.voice_lines)
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})  # one core for the renderer (ffmpeg inherits it)
    out["renderer_854x480_one_core"] = renderer_fps(args.repeats)
    os.sched_setaffinity(0, affinity)
    out["segment_side_by_side"] = segment_side_by_side(args.repeats)
    out["load_after"] = _load()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
