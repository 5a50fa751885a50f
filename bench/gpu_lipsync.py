"""GPU benchmark: the full-size Wav2Lip generator (random weights, the published architecture: 36.3 M parameters,
96×96 faces, 80×16 mel windows) through the studio's backend.

No Wav2Lip checkpoint can be fetched on these machines; random weights cost exactly the compute of the trained
network. Measured:
- network fps: frames per second of `Wav2LipBackend.predict` (the forward the backend runs per batch), fp32 and
  fp16, batch 32 and 128, after a warm-up;
- peak VRAM of those calls;
- park → activate: the residency manager's switch times for the network (seconds of each event);
- end-to-end `sync` fps (mel, crop, network, blend, ffmpeg) when librosa, soundfile and OpenCV are importable.

On the GPU host (Python 3.12 with torch; no pydantic): fetch the same wheels as bench/gpu_sdxl.py:
1. here, once:  .venv/bin/python bench/gpu_sdxl.py --fetch-wheels      (wheels into .whl/, git-ignored)
2. run with:    device run, carry [".whl"], command:
     python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
     PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 bench/gpu_lipsync.py --out $OUT
   (≈ 1 min on an H200.)
CPU dry run of the same code path with a tiny network:  .venv/bin/python bench/gpu_lipsync.py --tiny
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_sdxl import REPO, _med, bench_main, bench_parser, switch_times  # noqa: E402 - shared bench helpers


def write_configs(ckpt: Path, dest: Path, width: float, dtype: str) -> None:
    import yaml

    shutil.copytree(REPO / "configs", dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    models = yaml.safe_load((dest / "models.yaml").read_text())
    models["models"]["wav2lip-gan"].update(source=str(ckpt), dtype=dtype, options={"width": width})
    (dest / "models.yaml").write_text(yaml.safe_dump(models, sort_keys=False))


def run(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    device = "cpu" if args.tiny else "cuda:0"
    if args.tiny:
        torch.set_num_threads(1)
    width = 0.125 if args.tiny else 1.0
    work = Path(tempfile.mkdtemp(prefix="gpu-lipsync-"))
    os.environ.update(
        STUDIO_HOME=str(work / "home"), STUDIO_PROFILE="gpu", HF_HUB_OFFLINE="1", STUDIO_GPU__DEVICE=device
    )
    from studio.configs.settings import get_settings
    from studio.resources.registry import load_backend
    from studio.resources.runtime.residency import get_residency
    from studio.resources.video.wav2lip_net import random_wav2lip, save_wav2lip

    res: dict = {
        "device": torch.cuda.get_device_name(0) if device != "cpu" else "cpu",
        "torch": torch.__version__,
        "width": width,
    }
    net = random_wav2lip(width, seed=0)
    res["parameters_m"] = round(sum(p.numel() for p in net.parameters()) / 1e6, 2)
    ckpt = save_wav2lip(net, work / "wav2lip_random.pth")
    rng = np.random.default_rng(0)
    faces = rng.random((6, 96, 96), dtype=np.float32)
    frames = 64 if args.tiny else args.frames
    windows = (rng.random((frames, 80, 16), dtype=np.float32) * 8 - 4).astype(np.float32)
    for dtype in ("float32",) if args.tiny else ("float32", "float16"):
        os.environ["STUDIO_CONFIG_DIR"] = str(work / f"configs-{dtype}")
        write_configs(ckpt, work / f"configs-{dtype}", width, dtype)
        get_settings.cache_clear()
        backend = load_backend("lipsync")
        for bs in (32,) if args.tiny else (32, 128):
            backend.config = backend.config.model_copy(update={"batch_size": bs})
            with get_residency().use(backend.heavy_model()) as handle:
                backend.predict(handle, faces, windows[:bs])  # warm-up (cuDNN algorithm choice)
                if device != "cpu":
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                times = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    backend.predict(handle, faces, windows)
                    if device != "cpu":
                        torch.cuda.synchronize()
                    times.append(time.perf_counter() - t)
                res[f"network_fps_{dtype}_b{bs}"] = round(frames / _med(times), 1)
                if device != "cpu":
                    res[f"peak_vram_gb_{dtype}_b{bs}"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        res[f"activate_s_{dtype}"], res[f"park_s_{dtype}"] = switch_times(backend.heavy_model(), args.switches)
        res.update(sync_end_to_end(backend, work, device) if dtype == "float32" else {})
        get_residency().unload_all()
    res["work_dir"] = str(work)
    return res


def sync_end_to_end(backend, work: Path, device: str) -> dict:
    """The whole `sync` on a 1024² keyframe and a 4 s voice, when its libraries are present."""
    missing = [m for m in ("librosa", "soundfile", "cv2") if importlib.util.find_spec(m) is None]
    if missing:
        return {"sync_fps": f"not measured (missing {', '.join(missing)})"}
    import numpy as np
    from PIL import Image

    from studio.resources.media.audio_io import write_wav

    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (1024, 1024, 3), dtype=np.uint8)).save(work / "key.png")
    t = np.arange(4 * 16000) / 16000
    voice = write_wav(work / "voice.wav", 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0), 16000)
    backend.sync(work / "key.png", voice, work / "warm.mkv", box=(384, 384, 640, 680), fps=25)
    t0 = time.perf_counter()
    meta = backend.sync(work / "key.png", voice, work / "clip.mkv", box=(384, 384, 640, 680), fps=25)
    wall = time.perf_counter() - t0
    return {
        "sync_fps": round(meta["frames"] / wall, 1),
        "sync_frames": meta["frames"],
        "sync_network_fps": meta["network_fps"],
    }


def main() -> None:
    ap = bench_parser("gpu_lipsync_results.json", fetch=False)
    ap.add_argument("--frames", type=int, default=1000, help="frames per timed call (40 s of video at 25 fps)")
    ap.add_argument("--repeats", type=int, default=3)
    bench_main(ap, run, None, "gpu_lipsync_results.json")


if __name__ == "__main__":
    main()
