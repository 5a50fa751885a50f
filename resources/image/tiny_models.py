"""Tiny random-weight SDXL, ControlNet and LoRA, saved like real ones so the real loading code runs on CPU.

No pretrained text-to-image model installs from the package registries, so tests and `studio models tiny` build
diffusers-test-style dummy components (`get_dummy_components()` in diffusers' SDXL tests) from configs, save
them with `save_pretrained` / `save_lora_weights`, and the backend loads them through exactly the path users
take for real weights: `from_pretrained(folder, local_files_only=True)`.

The tokenizer is a real CLIP BPE tokenizer trained here on the words of the studio's prompts, so prompts are
word tokens (not one token per letter) and a change anywhere in a typical prompt changes the conditioning.
"""

from __future__ import annotations

import collections
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

TINY_SIZE = 64  # default image side for the tiny pipeline (latents 32², 4 steps ≈ 0.2 s on CPU)

# Words the tokenizer learns as whole tokens, besides every word found in characters.yaml.
_CORE_WORDS = """
a an the and with of in on at to from by for is are his her their its into over under near behind front
standing running walking sitting jumping flying looking smiling laughing crying shouting eating holding
waving falling sleeping hiding chasing throwing catching climbing swimming dancing pointing staring
neutral happy excited sad angry scared determined surprised curious emotion expression face close up
wide shot medium extreme camera view portrait full body character sheet
meadow forest tree trees river sea ocean beach harbour harbor town village street square house room
kitchen indoor outdoor mountain hill cave sky clouds sun moon stars night day dawn sunset morning
evening grass flowers rock rocks field garden boat island bridge road path
pixar style 3d animation soft global illumination expressive faces vibrant colors cinematic lighting
blurry lowres deformed extra limbs text watermark photo realistic skin thin scary
rabbit bunny squirrel chinchilla boy girl hair eyes shirt acorn butterfly apple
""".split()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte ↔ printable-unicode table (so every byte has a base token)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def _corpus_words(configs_dir: Path | None) -> collections.Counter:
    words: collections.Counter = collections.Counter(_CORE_WORDS)
    if configs_dir and (configs_dir / "characters.yaml").exists():
        data = yaml.safe_load((configs_dir / "characters.yaml").read_text()) or {}
        texts = list(data.get("style_tokens", [])) + [data.get("negative_prompt", "")]
        for c in (data.get("characters") or {}).values():
            texts += c.get("prompt_tokens", []) + [c.get("display_name", ""), c.get("description", "")]
            texts += c.get("aliases", [])
        for t in texts:
            words.update(re.findall(r"[a-z]+|[0-9]", str(t).lower()))
    return words


def train_clip_bpe(words: collections.Counter, max_merges: int = 900) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-pair merges until each corpus word is one token (or `max_merges`): CLIP's `</w>` convention."""
    byte_chars = list(_bytes_to_unicode().values())
    vocab_list = byte_chars + [c + "</w>" for c in byte_chars]
    splits = {w: tuple(w[:-1]) + (w[-1] + "</w>",) for w in words if w}
    merges: list[tuple[str, str]] = []
    for _ in range(max_merges):
        pairs: collections.Counter = collections.Counter()
        for w, parts in splits.items():
            for a, b in zip(parts, parts[1:], strict=False):
                pairs[(a, b)] += words[w]
        if not pairs:
            break
        (a, b), _count = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))  # deterministic tie-break
        merges.append((a, b))
        vocab_list.append(a + b)
        for w, parts in splits.items():
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            splits[w] = tuple(out)
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab: dict[str, int] = {}
    for tok in vocab_list:
        vocab.setdefault(tok, len(vocab))
    return vocab, merges


def _tiny_tokenizer(configs_dir: Path | None):
    from transformers import CLIPTokenizer

    vocab, merges = train_clip_bpe(_corpus_words(configs_dir))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def tiny_sdxl_components(seed: int = 0, configs_dir: Path | None = None) -> dict:
    """diffusers' SDXL dummy components (tests/pipelines/stable_diffusion_xl), with a trained tokenizer."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = _tiny_tokenizer(configs_dir)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=TINY_SIZE // 2, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,  # 6 time ids × 8 + pooled text (32)
        cross_attention_dim=64, norm_num_groups=1,
    )
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                       beta_schedule="scaled_linear", timestep_spacing="leading")
    torch.manual_seed(seed)
    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4,
                        sample_size=TINY_SIZE * 2)
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    bos = tokenizer.convert_tokens_to_ids("<|startoftext|>")
    te_config = CLIPTextConfig(bos_token_id=bos, eos_token_id=eos, pad_token_id=eos, hidden_size=32,
                               intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4,
                               num_hidden_layers=5, vocab_size=len(tokenizer), hidden_act="gelu",
                               projection_dim=32, max_position_embeddings=77)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(te_config)
    torch.manual_seed(seed + 1)
    text_encoder_2 = CLIPTextModelWithProjection(te_config)
    return {"unet": unet, "scheduler": scheduler, "vae": vae, "text_encoder": text_encoder,
            "tokenizer": tokenizer, "text_encoder_2": text_encoder_2, "tokenizer_2": tokenizer}


def tiny_controlnet(unet, seed: int):
    """A ControlNet shaped for the tiny UNet. Its conditioning embedding downsamples ×2 like the tiny VAE."""
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    cn = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32), load_weights_from_unet=True)
    # from_unet copies the UNet and leaves zero convolutions at zero (a no-op control); give them small random
    # weights so the control image visibly steers the tiny model, as a trained ControlNet would.
    with torch.no_grad():
        for mod in [*cn.controlnet_down_blocks, cn.controlnet_mid_block]:
            mod.weight.normal_(0.0, 0.3)
    return cn


def tiny_lora_state_dict(unet, seed: int, rank: int = 4) -> dict:
    """A random peft LoRA on the UNet's attention projections (B ≠ 0 so the adapter changes the image)."""
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = _clone_module(unet)
    torch.manual_seed(seed)
    cfg = LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                     init_lora_weights=False)
    unet.add_adapter(cfg)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.mul_(4.0)  # random init is small; make each adapter's effect obvious in the tiny model
    return get_peft_model_state_dict(unet)


def _clone_module(module):
    import copy

    return copy.deepcopy(module)


@dataclass
class TinyModels:
    root: Path
    sdxl: Path
    controlnets: dict[str, Path]
    loras: dict[str, Path]


TINY_LORAS = ("tiny-character", "tiny-style")
TINY_CONTROLNETS = ("canny", "depth")


def build_tiny_models(out: Path, seed: int = 0, configs_dir: Path | None = None) -> TinyModels:
    """Build, save and return the paths of a tiny SDXL, two ControlNets and two LoRAs under `out`."""
    from diffusers import StableDiffusionXLPipeline

    from studio.configs.settings import get_settings

    out = Path(out).expanduser().resolve()
    configs_dir = configs_dir or get_settings().configs_path
    comps = tiny_sdxl_components(seed, configs_dir)
    pipe = StableDiffusionXLPipeline(**comps)
    sdxl = out / "sdxl"
    pipe.save_pretrained(sdxl, safe_serialization=True)
    controlnets = {}
    for i, kind in enumerate(TINY_CONTROLNETS):
        path = out / f"controlnet-{kind}"
        tiny_controlnet(comps["unet"], seed + 10 + i).save_pretrained(path, safe_serialization=True)
        controlnets[kind] = path
    loras = {}
    for i, name in enumerate(TINY_LORAS):
        path = out / "loras" / name
        StableDiffusionXLPipeline.save_lora_weights(
            path, unet_lora_layers=tiny_lora_state_dict(comps["unet"], seed + 20 + i), safe_serialization=True)
        loras[name] = path
    return TinyModels(out, sdxl, controlnets, loras)


def write_tiny_configs(tiny: TinyModels, src_configs: Path, dest: Path | None = None) -> Path:
    """A config folder (copy of `src_configs`) whose image models point at the tiny ones.

    Use it with `STUDIO_CONFIG_DIR=<folder>`: the gpu profile then renders with the tiny SDXL at 64², the tiny
    LoRAs are registered (luca's character LoRA becomes `tiny-character`) and ControlNets point at the tiny
    ones — the production code path end to end, on CPU, in seconds.
    """
    dest = Path(dest or tiny.root / "configs")
    dest.mkdir(parents=True, exist_ok=True)
    for f in Path(src_configs).glob("*.yaml"):
        shutil.copyfile(f, dest / f.name)

    models = yaml.safe_load((dest / "models.yaml").read_text())
    models["models"]["sdxl-base"].update(source=str(tiny.sdxl), dtype="float32", vram_gb=0.1)
    if "gpu" in models.get("profiles", {}):  # ArcFace needs insightface + its weights: the CPU check instead
        models["profiles"]["gpu"]["face"] = "mediapipe-face"
    (dest / "models.yaml").write_text(yaml.safe_dump(models, sort_keys=False))

    loras = yaml.safe_load((dest / "lora_registry.yaml").read_text()) if (dest / "lora_registry.yaml").exists() \
        else {"loras": {}}
    loras.setdefault("loras", {})
    loras["loras"]["tiny-character"] = {"source": str(tiny.loras["tiny-character"]), "weight": 0.8,
                                        "trigger_words": ["tinychar"], "kind": "character"}
    loras["loras"]["tiny-style"] = {"source": str(tiny.loras["tiny-style"]), "weight": 0.7,
                                    "trigger_words": ["tinystyle"], "kind": "style"}
    loras["loras"]["luca-character"] = dict(loras["loras"]["tiny-character"], trigger_words=["luca paguro"])
    (dest / "lora_registry.yaml").write_text(yaml.safe_dump(loras, sort_keys=False))

    sdxl = yaml.safe_load((dest / "sdxl.yaml").read_text())
    sdxl.update(width=TINY_SIZE, height=TINY_SIZE, steps=4, guidance_scale=5.0, variant=None, cpu_threads=1)
    (dest / "sdxl.yaml").write_text(yaml.safe_dump(sdxl, sort_keys=False))

    cn = yaml.safe_load((dest / "controlnet.yaml").read_text())
    for kind, path in tiny.controlnets.items():
        cn["controlnets"][kind].update(source=str(path), variant=None)
    (dest / "controlnet.yaml").write_text(yaml.safe_dump(cn, sort_keys=False))
    return dest
