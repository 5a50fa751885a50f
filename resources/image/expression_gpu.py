"""Expression exaggeration on the `gpu` profile: SDXL inpainting of a keyframe's face region, the emotion
weighted by the shot's exaggeration factor (the preview profile warps the cut-out's landmarks instead:
`storyboard.figures.exaggerate`).

How the factor weighs the emotion. diffusers' SDXL pipelines read no `(furious:1.6)` emphasis syntax, so the
factor acts through two things the pipeline does honour:
- the denoising strength, `0.30 + 0.25 · (factor − 1)` capped at 0.85 (1.0 → 0.30: a touch; 2.5 → 0.675:
  the face is largely redrawn), so a larger factor lets the model move further from the keyframe's face;
- the wording: the emotion's strong form ("furious scowling face") behind an intensifier that grows with the
  factor ("slightly" … "extremely", then "wildly exaggerated cartoon"), appended to the keyframe's prompt.

The face box (mediapipe, with a margin) is cropped, resized to the model's working size, inpainted with a
mask over the face, resized back and blended with a feathered box mask: pixels outside the face box stay the
keyframe's own. The inpainting pipeline is built with `from_pipe` on the loaded SDXL modules (no second model
load) and cached on the residency handle. The face-consistency check and re-roll live in the task layer
(`studio.tasks.expression`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from studio.resources.image.faces import box_blend_mask
from studio.resources.image.request import ImageRequest
from studio.resources.runtime.residency import get_residency

EXPRESSION_VERSION = 1  # bump when the edit's output for the same inputs changes
EMOTION_WORDS: dict[str, str] = {
    "neutral": "calm relaxed face",
    "happy": "joyful beaming smile",
    "excited": "ecstatic wide open smile",
    "sad": "tearful sorrowful face",
    "angry": "furious scowling face",
    "scared": "terrified wide eyed face",
    "determined": "fierce determined frown",
    "surprised": "astonished gaping mouth",
    "curious": "intrigued face with raised eyebrows",
}
_INTENSIFIERS = ((1.25, "slightly"), (1.75, "clearly"), (2.25, "very"), (2.75, "extremely"))
FACE_MARGIN = 0.25  # context around the face box in the crop, fraction of its size per side


def expression_strength(factor: float) -> float:
    """Denoising strength for an exaggeration factor (1.0 → 0.30, 2.5 → 0.675, capped at 0.85)."""
    return round(min(0.85, 0.30 + 0.25 * (max(1.0, factor) - 1.0)), 4)


def expression_prompt(base: str, emotion: str, factor: float) -> str:
    """The keyframe's prompt plus the emotion's strong form behind an intensifier that grows with `factor`."""
    word = next((w for limit, w in _INTENSIFIERS if factor < limit), "wildly exaggerated cartoon")
    phrase = f"{word} {EMOTION_WORDS.get(emotion, emotion + ' face')}"
    return f"{base}, {phrase}, close-up of the face" if base else f"{phrase}, close-up of the face"


def _crop_region(box: tuple[int, int, int, int], w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    mx, my = round((x1 - x0) * FACE_MARGIN), round((y1 - y0) * FACE_MARGIN)
    return max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)


def _face_crop(keyframe: Any, box: tuple[int, int, int, int]) -> tuple[Any, np.ndarray, tuple[int, int]]:
    """(the crop around the face with a margin, its mask: 255 inside `box`, the crop's top-left corner)."""
    cx0, cy0, cx1, cy1 = _crop_region(box, *keyframe.size)
    crop = keyframe.crop((cx0, cy0, cx1, cy1))
    face = np.zeros((crop.size[1], crop.size[0]), np.uint8)
    face[box[1] - cy0 : box[3] - cy0, box[0] - cx0 : box[2] - cx0] = 255
    return crop, face, (cx0, cy0)


def _blend_face(keyframe: Any, edited_crop: Any, box: tuple[int, int, int, int], corner: tuple[int, int]) -> Any:
    """The keyframe with the edited face blended into `box` (feathered edges: no seam)."""
    from PIL import Image

    edited = np.asarray(edited_crop, dtype=np.float32)
    out = np.asarray(keyframe, dtype=np.float32).copy()
    fx0, fy0 = box[0] - corner[0], box[1] - corner[1]
    bw, bh = box[2] - box[0], box[3] - box[1]
    region = out[box[1] : box[3], box[0] : box[2]]
    out[box[1] : box[3], box[0] : box[2]] = region + box_blend_mask(bw, bh) * (
        edited[fy0 : fy0 + bh, fx0 : fx0 + bw] - region)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def inpaint_face(backend: Any, image: Path, box: tuple[int, int, int, int], emotion: str, factor: float, seed: int,
                 out_path: Path, prompt: str = "", loras: list[dict] | None = None) -> dict[str, Any]:
    """Redraw the face inside `box` of `image` with `emotion` weighted by `factor` (a `DiffusersSDXLBackend`);
    writes a PNG of the keyframe's size to `out_path` and returns what was done (strength, prompt, seconds)."""
    import torch
    from PIL import Image

    from studio.resources.image.storyboard.frame import save_png

    req = backend.prepare(ImageRequest(prompt=expression_prompt(prompt, emotion, factor), seed=seed, loras=loras or []))
    strength = expression_strength(factor)
    with Image.open(image) as im:
        keyframe = im.convert("RGB")
    crop, face, corner = _face_crop(keyframe, box)
    work = (req.width, req.height)
    with get_residency().use(backend.heavy_model()) as handle:
        backend._set_loras(handle.pipe, req)
        pipe = _inpaint_pipeline(handle)
        backend._set_scheduler(pipe, req.scheduler or "default", handle)
        t0 = time.perf_counter()
        with torch.inference_mode():
            result = pipe(prompt=req.prompt, negative_prompt=req.negative_prompt or None,
                          image=crop.resize(work, Image.LANCZOS), mask_image=Image.fromarray(face).resize(work),
                          strength=strength, num_inference_steps=req.steps, guidance_scale=req.guidance_scale,
                          width=req.width, height=req.height, generator=torch.Generator("cpu").manual_seed(seed),
                          output_type="pil").images[0]
        pipeline_s = time.perf_counter() - t0
    save_png(_blend_face(keyframe, result.resize(crop.size, Image.LANCZOS), box, corner), out_path,
             {"parameters": f"{req.prompt}\nStrength: {strength}, Seed: {seed}, Model: {backend.model_id}"})
    return {"prompt": req.prompt, "strength": strength, "seed": seed, "factor": factor, "emotion": emotion,
            "box": list(box), "work_size": list(work), "steps": req.steps, "model": backend.model_id,
            "pipeline_s": round(pipeline_s, 4)}


def _inpaint_pipeline(handle: Any) -> Any:
    """SDXL inpainting on the loaded pipeline's own modules (`from_pipe`: no second load), built once."""
    key = ("inpaint",)
    if key not in handle.derived:
        from diffusers import StableDiffusionXLInpaintPipeline

        derived = StableDiffusionXLInpaintPipeline.from_pipe(handle.pipe)
        derived.set_progress_bar_config(disable=True)
        handle.derived[key] = derived
    return handle.derived[key]
