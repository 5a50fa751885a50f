"""CPU benchmark of the image stack: storyboard frames/s, tiny SDXL images/s (ours vs plain diffusers, side by
side in one run), contact sheet time.

    .venv/bin/python bench/bench_images.py [--repeats 10] [--threads 1] [--json out.json]

"Ours" is DiffusersSDXLBackend.render: residency activate → LoRA/scheduler set-up → pipeline → PNG → park.
"Plain" is the same pipeline object's __call__ + PNG save, with the same settings and seed. Medians.
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


def _median_time(fn, repeats: int) -> float:
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_storyboard(tmp: Path, repeats: int) -> dict:
    from studio.configs.schema import ModelEntry
    from studio.configs.vocabulary import Dialogue, Plan, Shot
    from studio.resources.image.request import image_request_from_shot
    from studio.resources.image.storyboard.frame import StoryboardImageBackend, make_contact_sheet

    backend = StoryboardImageBackend("storyboard", ModelEntry(modality="image", backend="storyboard"))
    shots = [
        Shot(id=1, characters=["bunny"], action="Bunny stretches in the sun", location="meadow", camera="wide"),
        Shot(id=2, characters=["frank", "rinky", "gimera"], action="The bullies plot", location="forest",
             camera="medium", dialogue=Dialogue(character="frank", line="Get him!")),
        Shot(id=3, characters=["luca"], action="Luca sees the sea", location="harbour", time_of_day="sunset",
             camera="close-up"),
        Shot(id=4, characters=["giulia", "alberto"], action="They race", location="town square", camera="wide",
             camera_move="pan-left"),
    ]
    plan = Plan(title="bench", shots=shots)
    reqs = [backend.prepare(image_request_from_shot(s, plan, seed=i)) for i, s in enumerate(shots)]
    paths = []

    def one(i: int) -> None:
        p = tmp / f"sb{i}.png"
        backend.render(reqs[i % len(reqs)].model_copy(update={"seed": i}), p)
        paths.append(p)

    per_frame = _median_time(one, repeats)
    tiles = [(p, [p.stem, "label"]) for p in paths[:16]]
    sheet = _median_time(lambda i: make_contact_sheet(tiles, tmp / f"sheet{i}.png"), 3)
    return {"storyboard_s_per_frame": round(per_frame, 4), "storyboard_frames_per_s": round(1 / per_frame, 2),
            "frame_size": [reqs[0].width, reqs[0].height], "contact_sheet_s": round(sheet, 4),
            "contact_sheet_tiles": len(tiles)}


def bench_tiny_sdxl(tmp: Path, repeats: int) -> dict:
    import torch
    from PIL import Image  # noqa: F401 - PIL is what both paths save with

    from studio.configs.settings import get_settings
    from studio.resources.image.request import ImageRequest
    from studio.resources.image.tiny_models import build_tiny_models, write_tiny_configs
    from studio.resources.runtime.residency import get_residency, read_residency_log

    t = time.perf_counter()
    tiny = build_tiny_models(tmp / "tiny")
    build_s = time.perf_counter() - t
    os.environ["STUDIO_CONFIG_DIR"] = str(write_tiny_configs(tiny, get_settings().configs_path))
    os.environ["STUDIO_PROFILE"] = "gpu"
    get_settings.cache_clear()
    from studio.resources.registry import load_backend

    backend = load_backend("image")
    req = backend.prepare(ImageRequest(prompt="big buck bunny waves hello in a meadow", seed=1))
    t = time.perf_counter()
    backend.render(req, tmp / "first.png")  # load + first image
    first_s = time.perf_counter() - t
    with get_residency().use(backend.heavy_model()) as handle:
        pipe = handle.pipe  # the very same pipeline object, called directly

    def plain(i: int) -> None:
        image = pipe(prompt=req.prompt, negative_prompt=req.negative_prompt, num_inference_steps=req.steps,
                     guidance_scale=req.guidance_scale, width=req.width, height=req.height,
                     generator=torch.Generator("cpu").manual_seed(i)).images[0]
        image.save(tmp / f"p{i}.png")

    # Interleaved, so a busy neighbour slows both sides alike.
    t_ours, t_plain = [], []
    for i in range(repeats):
        t = time.perf_counter()
        backend.render(req.model_copy(update={"seed": i}), tmp / f"o{i}.png")
        t_ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        plain(i)
        t_plain.append(time.perf_counter() - t)
    ours, plain_s = statistics.median(t_ours), statistics.median(t_plain)
    same = (tmp / "o0.png").exists() and _pixels(tmp / "o0.png") == _pixels(tmp / "p0.png")
    rows = [r for r in read_residency_log() if r["pid"] == os.getpid()]
    act = [r["seconds"] for r in rows if r["event"] == "activate"]
    return {"tiny_build_s": round(build_s, 2), "tiny_load_and_first_image_s": round(first_s, 3),
            "tiny_ours_s_per_image": round(ours, 4), "tiny_plain_s_per_image": round(plain_s, 4),
            "tiny_ours_images_per_s": round(1 / ours, 2), "tiny_ours_over_plain": round(ours / plain_s, 3),
            "tiny_same_pixels_as_plain": same, "tiny_size": [req.width, req.height], "tiny_steps": req.steps,
            "activate_s_median_cpu": round(statistics.median(act), 4) if act else None,
            "torch_threads": torch.get_num_threads()}


def _pixels(path: Path) -> bytes:
    from PIL import Image

    return Image.open(path).convert("RGB").tobytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-images-"))
    os.environ.setdefault("STUDIO_HOME", str(tmp / "home"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    results = {"machine": f"{os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f} at start",
               **bench_storyboard(tmp, args.repeats), **bench_tiny_sdxl(tmp, args.repeats)}
    results["load_avg_end"] = round(os.getloadavg()[0], 1)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
