"""Voice-training tasks: build a dataset chunk of clips from a film's audio, validate a dataset list, and run
one GPT-SoVITS training step under the gpu-heavy slot."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from studio.configs.settings import GPU_HEAVY_TAG
from studio.resources.runtime.artifacts import ArtifactRef, Recipe
from studio.resources.runtime.vram import cuda_available
from studio.resources.voice.config import load_tts_config
from studio.resources.voice.dataset import make_chunk
from studio.resources.voice.training import run_step, validate_dataset
from studio.tasks.caching import generation_task_options


@task(name="build_dataset_chunk", task_run_name="dataset-chunk-{recipe.params[chunk][index]}",
      **generation_task_options(heavy=False))
def build_dataset_chunk(recipe: Recipe) -> ArtifactRef:
    """Detect, cut, label and store the clips of one chunk of the source."""
    return make_chunk(recipe)


@task(name="validate_voice_dataset")
def validate_voice_dataset(list_path: str) -> dict:
    from dataclasses import asdict

    return asdict(validate_dataset(list_path, load_tts_config().training))


@task(name="run_training_step", tags=[GPU_HEAVY_TAG], task_run_name="gpt-sovits-{step[name]}")
def run_training_step(step: dict, log_path: str, timeout_s: float) -> str:
    """One GPT-SoVITS step under the gpu-heavy slot and the per-GPU OS lock (models parked meanwhile)."""
    from studio.resources.runtime.residency import get_residency

    with get_residency().gpu_lock():
        run_step(step, Path(log_path), timeout_s)
    return step["name"]


def gpu_ready(profile: str | None) -> str | None:
    """None when training can run here, else the reason it cannot."""
    from studio.resources.registry import resolve_profile

    prof = resolve_profile(profile)
    if prof != "gpu":
        return f"the active profile is '{prof}', and training needs the gpu profile (studio --profile gpu ...)"
    if not cuda_available():
        return "no CUDA GPU is visible to this process (or torch is not installed)"
    return None
