"""GPU benchmark: full-size LTX-Video image-to-video (random weights built from LTX-Video 0.9's configs) through
the studio's `video` backend, for both VRAM plans.

No LTX-Video weights can be fetched on these machines, but a transformer / VAE / T5-XXL built from the real
configs cost exactly the compute of the real model (random weights change the pixels, not the FLOPs). Measured,
per plan (`offload: model` = the 16 GB plan with VAE tiling + slicing; `offload: none` = all on the GPU):
- load: from_pretrained of the saved bf16 folder (residency record's `load` seconds);
- seconds per 16-frame clip at 1024×576 (LTX takes 8k+1 frames: 17 are generated, the keyframe first, and the
  clip keeps 16), 30 steps, CFG 3, bf16 + SDPA: the task (backend.render = activate, pipeline, lossless
  encode, park) and the pipeline alone;
- peak VRAM of the pipeline call; park → activate switch times.

On the GPU host (Python 3.12 with torch, transformers, accelerate; no diffusers, pydantic or internet):
1. here, once:  .venv/bin/python bench/gpu_sdxl.py --fetch-wheels      (wheels into .whl/, git-ignored)
2. run with:    device run, carry [".whl"], command:
     python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
     PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 bench/gpu_video.py --out $OUT
   (≈ 3–5 min on an H200: build + save ≈ 19 GB of bf16 weights, two loads, 2 × (1 warm-up + N) clips.)
CPU dry run of the same code path with tiny weights:  .venv/bin/python bench/gpu_video.py --tiny
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_sdxl import REPO, _med, bench_main, bench_parser, fetch_wheels, save_pipeline, switch_times  # noqa: E402

# google/t5-v1_1-xxl (LTX-Video's text_encoder/config.json); the transformer and VAE classes' defaults are
# LTX-Video 0.9's configs; the scheduler is the model's scheduler/scheduler_config.json.
T5_XXL = dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
              feed_forward_proj="gated-gelu", relative_attention_num_buckets=32, decoder_start_token_id=0,
              pad_token_id=0, eos_token_id=1, tie_word_embeddings=False)
SCHEDULER = dict(base_image_seq_len=1024, base_shift=0.95, max_image_seq_len=4096, max_shift=2.05,
                 num_train_timesteps=1000, shift=1.0, shift_terminal=0.1, use_dynamic_shifting=True)
PROMPT = "big buck bunny waves hello and hops across a sunny meadow, the camera slowly pushes in, pixar style"


def build_random_ltx(out: Path, device: str, tiny: bool) -> float:
    """Random-weight LTX-Video image-to-video pipeline saved like the real one (bf16 on GPU, fp32 tiny)."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    from studio.resources.video.tiny_video_models import tiny_ltx_components, tiny_t5_tokenizer

    t = time.perf_counter()
    if tiny:
        comps = tiny_ltx_components(0, REPO / "configs")
    else:
        torch.manual_seed(0)
        with torch.device(device):
            transformer = LTXVideoTransformer3DModel().to(torch.bfloat16)
            vae = AutoencoderKLLTXVideo().to(torch.bfloat16)
            text_encoder = T5EncoderModel(T5Config(**T5_XXL)).to(torch.bfloat16)
        comps = {"transformer": transformer, "vae": vae, "text_encoder": text_encoder,
                 "tokenizer": tiny_t5_tokenizer(REPO / "configs"),  # ids fit T5's 32128-row table
                 "scheduler": FlowMatchEulerDiscreteScheduler(**SCHEDULER)}
    save_pipeline(LTXImageToVideoPipeline, comps, out, device)
    return time.perf_counter() - t


def write_configs(model_dir: Path, dest: Path, args: argparse.Namespace, offload: str) -> None:
    import yaml

    shutil.copytree(REPO / "configs", dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    models = yaml.safe_load((dest / "models.yaml").read_text())
    models["models"]["ltx-video"].update(source=str(model_dir), dtype="float32" if args.tiny else "bfloat16",
                                         vram_gb=0.1 if args.tiny else 14.0)
    (dest / "models.yaml").write_text(yaml.safe_dump(models, sort_keys=False))
    video = yaml.safe_load((dest / "video.yaml").read_text())
    video["generation"].update(width=args.width, height=args.height, fps=args.fps, max_frames=17, steps=args.steps,
                               offload=offload, vae_tiling=offload != "none", vae_slicing=offload != "none",
                               cpu_threads=1 if args.tiny else 0)
    (dest / "video.yaml").write_text(yaml.safe_dump(video, sort_keys=False))


def keyframe(path: Path, width: int, height: int) -> Path:
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def run(args: argparse.Namespace) -> dict:
    import torch

    device = "cpu" if args.tiny else "cuda:0"
    if args.tiny:
        torch.set_num_threads(1)
        args.width, args.height, args.steps = 64, 64, 4
    work = Path(tempfile.mkdtemp(prefix="gpu-video-"))
    os.environ.update(STUDIO_HOME=str(work / "home"), STUDIO_PROFILE="gpu", HF_HUB_OFFLINE="1",
                      STUDIO_GPU__DEVICE=device)
    model_dir = work / "ltx-random"
    res: dict = {"device": torch.cuda.get_device_name(0) if device != "cpu" else "cpu", "torch": torch.__version__,
                 "width": args.width, "height": args.height, "clip_frames": 16, "generated_frames": 17,
                 "fps": args.fps, "steps": args.steps, "dtype": "float32" if args.tiny else "bfloat16"}
    res["build_and_save_s"] = round(build_random_ltx(model_dir, device, args.tiny), 2)

    from studio.configs.settings import get_settings
    from studio.resources.runtime.residency import get_residency, read_residency_log
    from studio.resources.video.generation import MotionRequest
    from studio.tasks.motion import video_backend

    image = keyframe(work / "keyframe.png", args.width, args.height)
    for offload in args.offload:
        os.environ["STUDIO_CONFIG_DIR"] = str(work / f"configs-{offload}")
        write_configs(model_dir, work / f"configs-{offload}", args, offload)
        get_settings.cache_clear()
        get_residency().unload_all()
        backend = video_backend(profile="gpu")
        req = backend.prepare(MotionRequest(image=image, prompt=PROMPT, seconds=16 / args.fps, seed=0))
        t_mark = time.time()
        t = time.perf_counter()
        backend.render(req, work / "warm.mkv")  # load + warm-up (kernel selection)
        r = res[offload] = {"load_and_first_clip_s": round(time.perf_counter() - t, 2)}
        r["load_s"] = next(x["seconds"] for x in read_residency_log() if x["event"] == "load" and x["t"] >= t_mark)
        task_s, pipe_s, peaks = [], [], []
        for i in range(1, args.clips + 1):
            t0 = time.perf_counter()
            meta = backend.render(req.model_copy(update={"seed": i}), work / f"clip-{offload}-{i}.mkv")
            task_s.append(time.perf_counter() - t0)
            pipe_s.append(meta["pipeline_s"])
            peaks.append(meta.get("peak_vram_gb", 0.0))
            r.setdefault("attention", meta["attention"])
            r.setdefault("frames", meta["frames"])
        r.update(task_s_per_clip=_med(task_s), pipeline_s_per_clip=_med(pipe_s), peak_vram_gb=max(peaks))
        r["activate_s"], r["park_s"] = switch_times(backend.heavy_model(), args.switches + 1)
        get_residency().unload_all()
        gc.collect()
        if device != "cpu":
            torch.cuda.empty_cache()
    res["work_dir"] = str(work)
    return res


def main() -> None:
    ap = bench_parser("gpu_video_results.json")
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--height", type=int, default=576)
    ap.add_argument("--fps", type=int, default=24)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--offload", nargs="+", default=["model", "none"], choices=["model", "none", "sequential"])
    bench_main(ap, run, fetch_wheels, "gpu_video_results.json")


if __name__ == "__main__":
    main()
