"""A tiny random-weight LTX-Video image-to-video pipeline, saved like the real one so the real loading code
(`from_pretrained(folder, local_files_only=True)`) runs on CPU in a fraction of a second per clip.

Components follow diffusers' own LTX image-to-video test (`get_dummy_components()`), with a T5 tokenizer built
here (a unigram vocabulary of the studio's prompt words: no download) and two deliberate choices so the tiny
model shows the keyframe conditioning as the real one does:
- the encoder's log-variance channel is pinned very low: a trained VAE's posterior is nearly deterministic,
  a random one's is not, and sampling it would drown the keyframe in noise;
- the latent statistics (`latents_mean` / `latents_std`, as a real VAE ships) are measured on sample images,
  so the keyframe's latent has the scale of the noise it sits beside;
- a causal decoder, so the first frame is made from the keyframe's latent alone.
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

TINY_VIDEO_SIZE = 64  # sides of the tiny clips; latents are 16² (the tiny VAE compresses 4× in space and time)


def tiny_t5_tokenizer(configs_dir: Path | None = None):
    """A T5 (unigram, SentencePiece-style "▁word") tokenizer over the words of the studio's prompts."""
    from transformers import T5Tokenizer

    from studio.resources.image.tiny_models import _corpus_words

    words = _corpus_words(configs_dir)
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -20.0)]
    vocab += [("▁" + w, -math.log(1 + i)) for i, (w, _) in enumerate(sorted(words.items(), key=lambda kv: -kv[1]))]
    vocab += [(c, -30.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789,.-'"]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def tiny_ltx_components(seed: int = 0, configs_dir: Path | None = None) -> dict:
    import torch
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXVideoTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    tokenizer = tiny_t5_tokenizer(configs_dir)
    torch.manual_seed(seed)
    transformer = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                             num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32,
                                             num_layers=1, caption_channels=32)
    torch.manual_seed(seed)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False), decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1,) * 4, timestep_conditioning=False, patch_size=1,
        patch_size_t=1, encoder_causal=True, decoder_causal=True)
    with torch.no_grad():
        vae.encoder.conv_out.conv.weight[-1].zero_()  # the last channel is the posterior's log-variance
        vae.encoder.conv_out.conv.bias[-1].fill_(-30.0)
        g = torch.Generator().manual_seed(seed + 1)
        samples = torch.nn.functional.interpolate(torch.rand(8, 3, 4, 4, generator=g), size=(TINY_VIDEO_SIZE,) * 2,
                                                  mode="bilinear")[:, :, None] * 2 - 1
        z = vae.encode(samples).latent_dist.mode()
        vae.latents_mean.copy_(z.mean(dim=(0, 2, 3, 4)))
        vae.latents_std.copy_(z.std(dim=(0, 2, 3, 4)))
    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2,
                                           num_heads=4, feed_forward_proj="gated-gelu", decoder_start_token_id=0,
                                           pad_token_id=0, eos_token_id=1))
    return {"transformer": transformer, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
            "scheduler": FlowMatchEulerDiscreteScheduler()}


def build_tiny_ltx(out: Path, seed: int = 0, configs_dir: Path | None = None) -> Path:
    """Save the tiny image-to-video pipeline under `out` (≈0.5 MB) and return the folder."""
    from diffusers import LTXImageToVideoPipeline

    out = Path(out).expanduser().resolve()
    LTXImageToVideoPipeline(**tiny_ltx_components(seed, configs_dir)).save_pretrained(out, safe_serialization=True)
    return out


def write_tiny_video_configs(configs: Path, model_dir: Path, fps: int = 12, max_frames: int = 17) -> Path:
    """Point the `ltx-video` model of a config folder (e.g. `write_tiny_configs`' copy) at the tiny pipeline and
    make its clips tiny: 64², `fps`, at most `max_frames` generated frames, 4 steps, one CPU thread."""
    configs = Path(configs)
    models = yaml.safe_load((configs / "models.yaml").read_text())
    models["models"]["ltx-video"].update(source=str(model_dir), dtype="float32", vram_gb=0.1)
    (configs / "models.yaml").write_text(yaml.safe_dump(models, sort_keys=False))
    path = configs / "video.yaml"
    video = yaml.safe_load(path.read_text()) if path.exists() else {}
    video.setdefault("generation", {}).update(width=TINY_VIDEO_SIZE, height=TINY_VIDEO_SIZE, fps=fps,
                                              max_frames=max_frames, steps=4, cpu_threads=1, offload="none")
    path.write_text(yaml.safe_dump(video, sort_keys=False))
    return configs
