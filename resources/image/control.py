"""Conditioning images for diffusers: an input image cover-cropped to the render size, and ControlNet maps
(OpenCV canny, a depth model, openpose, or the image as is)."""

from __future__ import annotations

from pathlib import Path

from studio.resources.image.request import ControlSpec, controlnet_config
from studio.resources.runtime.model_sources import resolve_source


def fit_rgb(path: str, width: int, height: int):
    """The image cover-cropped to the target aspect and resized (control maps must match the render size)."""
    from PIL import Image, ImageOps

    with Image.open(Path(path).expanduser()) as im:
        return ImageOps.fit(im.convert("RGB"), (width, height), Image.LANCZOS)


def control_map(spec: ControlSpec, width: int, height: int):
    """The conditioning image for one ControlNet: OpenCV canny, a depth model, openpose, or the image as is."""
    import numpy as np
    from PIL import Image

    e = controlnet_config().controlnets[spec.kind]
    img = fit_rgb(spec.image, width, height)
    if not spec.preprocess or e.preprocessor == "none":
        return img
    if e.preprocessor == "canny":
        import cv2

        edges = cv2.Canny(np.asarray(img.convert("L")), e.canny_low, e.canny_high)
        return Image.fromarray(np.stack([edges] * 3, axis=-1))
    if e.preprocessor == "depth":
        from transformers import pipeline

        src = resolve_source(e.preprocessor_model, "depth preprocessor", "configs/controlnet.yaml")
        depth = pipeline("depth-estimation", model=src.ref, device=-1)(img)["depth"]
        return depth.convert("RGB").resize((width, height))
    from controlnet_aux import OpenposeDetector  # checked in prepare()

    return OpenposeDetector.from_pretrained("lllyasviel/Annotators")(img).resize((width, height))
