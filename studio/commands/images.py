"""`studio images batch FILE` and `studio models tiny`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

out = Console()
err = Console(stderr=True)
images_app = typer.Typer(help="Image generation: keyframe batches, contact sheets.", no_args_is_help=True)
models_app = typer.Typer(help="Model files: tiny random-weight test models.", no_args_is_help=True)


@images_app.command("batch")
def batch(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Batch YAML (see "
                                      "examples/batch_images.yaml)."),
          out_dir: Path = typer.Option(None, "--out", help="Also copy the final images, the contact sheet and "
                                       "a JSON report here."),
          start_server: bool = typer.Option(True, help="Start the local Prefect server when it is down.")) -> None:
    """Render a batch (characters × prompts × seeds × LoRA weights) as a Prefect flow run."""
    from studio.flows.generate_images import generate_images, plan_batch
    from studio.resources.runtime.prefect_server import ensure_server

    # Bad files, names, sizes and model paths fail here, before the server starts or a model loads.
    spec, backend, _embedder, items, _ = plan_batch(str(file.resolve()))
    err.print(f"batch '{spec.name}': {len(items)} images with {backend.name} ({backend.model_id})")
    ensure_server(start_server, say=err.print)
    summary = generate_images(batch_file=str(file.resolve()), out_dir=str(out_dir.resolve()) if out_dir else None)
    t = Table("#", "character", "seed", "LoRA w", "score", "status", "tries", "image", title=spec.name)
    for r in summary["items"]:
        weight = "" if r["lora_weight"] is None else f"{r['lora_weight']:g}"
        score = "" if r["score"] is None else f"{r['score']:.2f}"
        t.add_row(str(r["#"]), r["character"], str(r["seed"]), weight, score, r["status"], str(len(r["attempts"])),
                  r["image"])
    out.print(t)
    out.print(f"contact sheet: {summary['contact_sheet']['uri']}")
    if summary.get("out_dir"):
        out.print(f"copies: {summary['out_dir']}")


@models_app.command("tiny")
def tiny(out_dir: Path = typer.Option(None, "--out", help="Where to write (default: STUDIO_HOME/models/tiny)."),
         seed: int = typer.Option(0, help="Seed of the random weights.")) -> None:
    """Build tiny random-weight models of every gpu-profile generation tool — SDXL + 2 ControlNets + 2 LoRAs,
    LTX-Video image-to-video, SAM2, Wav2Lip — and a config folder whose gpu profile uses them."""
    from studio.configs.settings import get_settings
    from studio.resources.image.tiny_models import build_tiny_models, write_tiny_configs
    from studio.resources.image.tiny_sam2 import build_tiny_sam2, use_tiny_sam2
    from studio.resources.video.tiny_video_models import build_tiny_ltx, write_tiny_video_configs
    from studio.resources.video.tiny_wav2lip import build_tiny_wav2lip, use_tiny_wav2lip

    s = get_settings()
    target = (out_dir or s.home / "models" / "tiny").expanduser().resolve()
    tm = build_tiny_models(target, seed=seed)
    configs = write_tiny_configs(tm, s.configs_path)
    ltx = build_tiny_ltx(target / "ltx-video", seed=seed, configs_dir=configs)
    write_tiny_video_configs(configs, ltx)
    sam2 = build_tiny_sam2(target / "sam2", seed=seed)
    use_tiny_sam2(configs, sam2)
    wav2lip = build_tiny_wav2lip(target / "wav2lip", seed=seed)
    use_tiny_wav2lip(configs, wav2lip)
    out.print(f"tiny SDXL: {tm.sdxl}")
    for kind, p in tm.controlnets.items():
        out.print(f"ControlNet {kind}: {p}")
    for name, p in tm.loras.items():
        out.print(f"LoRA {name}: {p}")
    out.print(f"tiny LTX-Video: {ltx}\ntiny SAM2: {sam2}\ntiny Wav2Lip: {wav2lip}")
    out.print(f"configs using them: {configs}\n"
              f"try: STUDIO_CONFIG_DIR={configs} studio --profile gpu images batch examples/batch_images.yaml")


def register(app: typer.Typer) -> None:
    app.add_typer(images_app, name="images")
    app.add_typer(models_app, name="models")
