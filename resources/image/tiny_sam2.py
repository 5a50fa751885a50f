"""A tiny random-weight SAM2, saved like a real checkpoint so the real loading and masking code runs on CPU.

No SAM2 weights install from the package registries, so tests, `bench/gpu_sam2.py --tiny` and set-ups without
weights build a `Sam2Model` from a small config (a 4-stage hiera of 8–64 channels at a 128² input, ≈0.1 M
parameters, ≈0.5 MB), save it with `save_pretrained` next to a `preprocessor_config.json` shaped like the
hub's, and the backend loads it with `from_pretrained(folder, local_files_only=True)`. Random weights give
random masks: tests check the plumbing (shapes, binary values, determinism, residency), never the quality.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

TINY_SAM2_SIZE = 128  # model input side


def tiny_sam2_config(size: int = TINY_SAM2_SIZE) -> dict[str, Any]:
    """Sub-config dicts of a tiny Sam2Config (a global-attention block is never a stage's first: q-pooling
    there would make the window size 0)."""
    backbone = {"model_type": "sam2_hiera_det_model", "hidden_size": 8, "num_attention_heads": 1,
                "image_size": [size, size], "blocks_per_stage": [1, 1, 2, 1],
                "embed_dim_per_stage": [8, 16, 32, 64], "num_attention_heads_per_stage": [1, 1, 1, 1],
                "window_size_per_stage": [4, 4, 4, 4], "global_attention_blocks": [3],
                "window_positional_embedding_background_size": [2, 2]}
    return {"vision_config": {"backbone_config": backbone, "backbone_channel_list": [64, 32, 16, 8],
                              "backbone_feature_sizes": [[size // 4] * 2, [size // 8] * 2, [size // 16] * 2],
                              "fpn_hidden_size": 32},
            "prompt_encoder_config": {"hidden_size": 32, "image_size": size, "patch_size": 16,
                                      "mask_input_channels": 4},
            "mask_decoder_config": {"hidden_size": 32, "mlp_dim": 64, "num_hidden_layers": 2,
                                    "num_attention_heads": 2, "iou_head_hidden_dim": 32}}


def preprocessor_config(size: int, mask_size: int) -> dict[str, Any]:
    """The fields of a hub SAM2 `preprocessor_config.json` that the backend reads (and a few it keeps)."""
    return {"image_processor_type": "Sam2ImageProcessor", "processor_class": "Sam2Processor",
            "do_resize": True, "size": {"height": size, "width": size},
            "mask_size": {"height": mask_size, "width": mask_size}, "do_rescale": True,
            "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.485, 0.456, 0.406],
            "image_std": [0.229, 0.224, 0.225], "do_convert_rgb": True, "resample": 2}


def build_sam2(out: Path, config: dict[str, Any], seed: int = 0) -> Path:
    """Save a random-weight SAM2 of `config` (Sam2Config keyword dicts) at `out`; returns the folder."""
    import torch
    from transformers import Sam2Config, Sam2Model

    torch.manual_seed(seed)
    cfg = Sam2Config(**config)
    out = Path(out).expanduser().resolve()
    Sam2Model(cfg).eval().save_pretrained(out, safe_serialization=True)
    size = cfg.vision_config.backbone_config.image_size[0]
    (out / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(size, size // 4), indent=2))
    return out


def build_tiny_sam2(out: Path, seed: int = 0) -> Path:
    return build_sam2(out, tiny_sam2_config(), seed)


def use_tiny_sam2(configs_dir: Path, model_dir: Path, name: str = "sam2-hiera-large") -> None:
    """Point model `name` of `configs_dir/models.yaml` at the tiny SAM2 (float32, tiny VRAM estimate)."""
    path = Path(configs_dir) / "models.yaml"
    models = yaml.safe_load(path.read_text())
    models["models"][name].update(source=str(model_dir), dtype="float32", vram_gb=0.01)
    path.write_text(yaml.safe_dump(models, sort_keys=False))
