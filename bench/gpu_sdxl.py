"""GPU benchmark: full-size SDXL (random weights built from SDXL-base's config) through the studio's backend vs
plain diffusers, same settings, same run.

No SDXL weights can be fetched on these machines, but a UNet/VAE/text encoders built from the real configs
cost exactly the compute of the real model (random weights change the pixels, not the FLOPs). Measured:
- load: from_pretrained of the saved fp16 folder onto the GPU (ours: device_map="cuda"; plain: .to("cuda"));
- seconds per image, 1024², 30 steps, CFG 7.5, Euler, fp16 + SDPA: ours (backend.render = activate, pipeline,
  PNG, park) and ours' pipeline alone, vs plain `pipe(...)` + PNG, interleaved so drift hits both alike;
- park → activate switch time, for both park modes (`move` = .to("cpu"), `pinned` = page-locked buffers);
- peak VRAM, and whether ours and plain give the same pixels for the same seed.

On the GPU host (Python 3.12 with torch, transformers, peft, accelerate; no diffusers, pydantic or internet):
1. here, once:  .venv/bin/python bench/gpu_sdxl.py --fetch-wheels      (wheels into .whl/, git-ignored)
2. run with:    device run, carry [".whl"], command:
     python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
     PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 bench/gpu_sdxl.py --out $OUT
   (≈ 3–5 min on an H200: build + save 7 GB, two loads, 2 × (1 warm-up + N) images, switches.)
CPU dry run of the same code path with tiny weights:  .venv/bin/python bench/gpu_sdxl.py --tiny
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WHEELS = ["diffusers==0.42.1", "pydantic==2.14.4", "pydantic-core==2.50.5", "pydantic-settings==2.16.3",
          "python-dotenv==1.2.4", "platformdirs==4.14.8", "annotated-types==0.8.0", "typing-inspection==0.4.5",
          "importlib-metadata==10.2.0"]

# stabilityai/stable-diffusion-xl-base-1.0 configs (unet/, vae/, text_encoder/, text_encoder_2/, scheduler/).
SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(320, 640, 1280), layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1,
    act_fn="silu", norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=2048,
    transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20), use_linear_projection=True, addition_embed_type="text_time",
    addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816)
SDXL_VAE = dict(
    in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512), layers_per_block=2, act_fn="silu", latent_channels=4, norm_num_groups=32,
    sample_size=1024, scaling_factor=0.13025, force_upcast=True)
CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
              max_position_embeddings=77, vocab_size=49408, hidden_act="quick_gelu", projection_dim=768)
CLIP_G = dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=20, num_hidden_layers=32,
              max_position_embeddings=77, vocab_size=49408, hidden_act="gelu", projection_dim=1280)
SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                 steps_offset=1, timestep_spacing="leading", prediction_type="epsilon")
PROMPT = "big buck bunny, giant fluffy grey rabbit, waves hello in a sunny meadow, pixar style 3d animation"


def _bootstrap_studio() -> None:
    """Import `studio.*` from this checkout even where the package is not installed (the GPU host)."""
    try:
        import studio.resources.image.sdxl  # noqa: F401
        return
    except ImportError:
        pass
    sys.path.insert(0, str(REPO))
    import studio

    for sub in ("configs", "resources", "tasks", "agents", "flows"):
        name = f"studio.{sub}"
        spec = importlib.util.spec_from_file_location(name, REPO / sub / "__init__.py",
                                                      submodule_search_locations=[str(REPO / sub)])
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        setattr(studio, sub, mod)


def fetch_wheels(wheels: list[str] | None = None) -> None:
    """The wheels the GPU host lacks (`wheels`, default this script's) into the git-ignored .whl/."""
    dest = REPO / ".whl"
    dest.mkdir(exist_ok=True)
    platforms = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
                    "3.12", "--implementation", "cp", *[a for p in platforms for a in ("--platform", p)],
                    "-d", str(dest), *(wheels or WHEELS)], check=True)
    print(f"wheels in {dest}: {sorted(p.name for p in dest.glob('*.whl'))}")


def switch_times(model, switches: int) -> tuple[float, float]:
    """(median activate s, median park s) over `switches` tasks that hold `model` (a HeavyModel), from the
    residency record's own timings."""
    from studio.resources.runtime.residency import get_residency, read_residency_log

    t_mark = time.time()
    for _ in range(switches):
        with get_residency().use(model):
            pass  # a task that holds the model; leaving parks it
    rows = [r for r in read_residency_log() if r["t"] >= t_mark]
    return (_med([r["seconds"] for r in rows if r["event"] == "activate"]),
            _med([r["seconds"] for r in rows if r["event"] == "park"]))


def save_pipeline(pipeline_cls, comps: dict, out: Path, device: str) -> None:
    """Save the built pipeline as safetensors, then free its weights (and the GPU's cache)."""
    import torch

    pipeline_cls(**comps).save_pretrained(out, safe_serialization=True)
    comps.clear()
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def build_random_sdxl(out: Path, device: str, tiny: bool) -> float:
    """Random-weight SDXL saved like the real one (fp16 safetensors on GPU, fp32 for the tiny CPU run)."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from studio.resources.image.tiny_models import _tiny_tokenizer, tiny_sdxl_components

    t = time.perf_counter()
    if tiny:
        comps = tiny_sdxl_components(0, REPO / "configs")
    else:
        tok = _tiny_tokenizer(REPO / "configs")  # prompts tokenize to 77 ids like CLIP's; ids fit the 49408 table
        ids = {"bos_token_id": tok.convert_tokens_to_ids("<|startoftext|>"),
               "eos_token_id": tok.convert_tokens_to_ids("<|endoftext|>"),
               "pad_token_id": tok.convert_tokens_to_ids("<|endoftext|>")}
        torch.manual_seed(0)
        with torch.device(device):
            unet = UNet2DConditionModel(**SDXL_UNET)
            vae = AutoencoderKL(**SDXL_VAE)
            te = CLIPTextModel(CLIPTextConfig(**CLIP_L, **ids))
            te2 = CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_G, **ids))
        for m in (unet, te, te2):
            m.to(torch.float16)
        vae.to(torch.float16)
        comps = {"unet": unet, "vae": vae, "text_encoder": te, "text_encoder_2": te2, "tokenizer": tok,
                 "tokenizer_2": tok, "scheduler": EulerDiscreteScheduler(**SCHEDULER)}
    save_pipeline(StableDiffusionXLPipeline, comps, out, device)
    return time.perf_counter() - t


def write_configs(model_dir: Path, dest: Path, size: int, steps: int, dtype: str, park: str, vram_gb: float
                  ) -> None:
    import yaml

    shutil.copytree(REPO / "configs", dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    models = yaml.safe_load((dest / "models.yaml").read_text())
    models["models"]["sdxl-base"].update(source=str(model_dir), dtype=dtype, vram_gb=vram_gb)
    (dest / "models.yaml").write_text(yaml.safe_dump(models, sort_keys=False))
    sdxl = yaml.safe_load((dest / "sdxl.yaml").read_text())
    sdxl.update(width=size, height=size, steps=steps, guidance_scale=7.5, scheduler="euler", variant=None,
                device_map=True, park=park, negative_prompt="")
    (dest / "sdxl.yaml").write_text(yaml.safe_dump(sdxl, sort_keys=False))


def run(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch
    from PIL import Image

    device = "cpu" if args.tiny else "cuda:0"
    if args.tiny:
        torch.set_num_threads(1)
    size, steps = (64, 4) if args.tiny else (args.size, args.steps)
    dtype = "float32" if args.tiny else args.dtype
    work = Path(tempfile.mkdtemp(prefix="gpu-sdxl-"))
    os.environ.update(STUDIO_HOME=str(work / "home"), STUDIO_PROFILE="gpu", HF_HUB_OFFLINE="1",
                      STUDIO_GPU__DEVICE=device)
    model_dir = work / "sdxl-random"
    res: dict = {"device": torch.cuda.get_device_name(0) if device != "cpu" else "cpu", "torch": torch.__version__,
                 "size": size, "steps": steps, "dtype": dtype, "images": args.images}
    res["build_and_save_s"] = round(build_random_sdxl(model_dir, device, args.tiny), 2)

    from diffusers import StableDiffusionXLPipeline

    from studio.configs.settings import get_settings
    from studio.resources.image.request import ImageRequest
    from studio.resources.registry import load_backend
    from studio.resources.runtime.residency import get_residency, read_residency_log

    def backend_for(park: str):
        os.environ["STUDIO_CONFIG_DIR"] = str(work / f"configs-{park}")
        write_configs(model_dir, work / f"configs-{park}", size, steps, dtype, park, 0.1 if args.tiny else 9.5)
        get_settings.cache_clear()
        return load_backend("image")

    ours = backend_for("move")
    req = ours.prepare(ImageRequest(prompt=PROMPT, seed=0))
    t = time.perf_counter()
    ours.render(req, work / "warm.png")  # load + warm-up (cuDNN/SDPA kernel selection)
    res["ours_load_and_first_image_s"] = round(time.perf_counter() - t, 2)
    res["ours_load_s"] = next(r["seconds"] for r in read_residency_log() if r["event"] == "load")
    # Ours is parked in host RAM now; plain diffusers gets its own copy on the GPU.
    t = time.perf_counter()
    plain = StableDiffusionXLPipeline.from_pretrained(model_dir, dtype=getattr(torch, dtype), local_files_only=True)
    plain.to(device)
    plain.set_progress_bar_config(disable=True)
    res["plain_load_s"] = round(time.perf_counter() - t, 2)

    def plain_render(seed: int, path: Path) -> float:
        t0 = time.perf_counter()
        img = plain(prompt=req.prompt, negative_prompt=req.negative_prompt or None, num_inference_steps=steps,
                    guidance_scale=7.5, width=size, height=size,
                    generator=torch.Generator("cpu").manual_seed(seed)).images[0]
        img.save(path)
        return time.perf_counter() - t0

    plain_render(0, work / "plain-warm.png")
    # Interleave: ours needs the GPU memory plain holds, so plain parks to CPU between its turns, untimed.
    ours_s, ours_pipe_s, plain_s, same = [], [], [], []
    for i in range(1, args.images + 1):
        plain.to("cpu")
        t0 = time.perf_counter()
        meta = ours.render(req.model_copy(update={"seed": i}), work / f"o{i}.png")
        ours_s.append(time.perf_counter() - t0)
        ours_pipe_s.append(meta["pipeline_s"])
        res.setdefault("attention", meta["attention"])
        res["peak_vram_gb_ours"] = max(res.get("peak_vram_gb_ours", 0), meta.get("peak_vram_gb", 0))
        if device != "cpu":
            torch.cuda.empty_cache()
            plain.to(device)
            torch.cuda.reset_peak_memory_stats()
        plain_s.append(plain_render(i, work / f"p{i}.png"))
        if device != "cpu":
            res["peak_vram_gb_plain"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        a = np.asarray(Image.open(work / f"o{i}.png").convert("RGB"), dtype=np.int16)
        b = np.asarray(Image.open(work / f"p{i}.png").convert("RGB"), dtype=np.int16)
        same.append(float(np.abs(a - b).max()))
    res.update(ours_task_s=_med(ours_s), ours_pipeline_s=_med(ours_pipe_s), plain_s=_med(plain_s),
               ours_task_over_plain=round(_med(ours_s) / _med(plain_s), 3),
               ours_pipeline_over_plain=round(_med(ours_pipe_s) / _med(plain_s), 3),
               max_pixel_diff_ours_vs_plain=max(same))
    get_residency().unload_all()
    plain.to("cpu")
    plain = None  # noqa: F841 - drop plain's copy before the switch measurements
    gc.collect()
    if device != "cpu":
        torch.cuda.empty_cache()

    # Park → activate switch times, both park modes (residency record: seconds of each event).
    for park in ("move", "pinned"):
        b = backend_for(park)
        get_residency().unload_all()
        res[f"activate_s_{park}"], res[f"park_s_{park}"] = switch_times(b.heavy_model(), args.switches + 1)
        if park == "pinned" and device != "cpu":
            meta = b.render(req.model_copy(update={"seed": 99}), work / "pinned.png")  # still renders correctly
            res["pinned_render_ok"] = bool(meta["pipeline_s"] > 0)
        get_residency().unload_all()
    res["work_dir"] = str(work)
    return res


def write_results(res: dict, out: Path | None, name: str) -> None:
    """Print a benchmark's results; with `out` (e.g. $OUT on the device machine) also save them as `name` there
    and drop the work folder of built models."""
    text = json.dumps(res, indent=2)
    print(text)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
        shutil.rmtree(res["work_dir"], ignore_errors=True)


def bench_parser(results: str, fetch: bool = True) -> argparse.ArgumentParser:
    """The flags every bench/gpu_*.py has: --tiny (a CPU dry run), --switches, --out (and --fetch-wheels)."""
    ap = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    if fetch:
        ap.add_argument("--fetch-wheels", action="store_true",
                        help="download the wheels the GPU host lacks, then exit")
    ap.add_argument("--tiny", action="store_true", help="CPU dry run with tiny weights (checks the script)")
    ap.add_argument("--switches", type=int, default=5, help="model switches timed for the residency figures")
    ap.add_argument("--out", type=Path, help=f"folder for {results} (e.g. $OUT on the device machine)")
    return ap


def bench_main(ap: argparse.ArgumentParser, run_bench, fetch, results: str) -> None:
    """Parse, fetch the wheels and exit if asked, else bootstrap the studio, run, print and save the results."""
    args = ap.parse_args()
    if getattr(args, "fetch_wheels", False):
        return fetch()
    _bootstrap_studio()
    write_results(run_bench(args), args.out, results)


def _med(xs: list[float]) -> float:
    return round(statistics.median(xs), 4) if xs else float("nan")


def main() -> None:
    ap = bench_parser("gpu_sdxl_results.json")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16"])
    ap.add_argument("--images", type=int, default=3)
    bench_main(ap, run, fetch_wheels, "gpu_sdxl_results.json")


if __name__ == "__main__":
    main()
