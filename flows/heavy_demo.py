"""A small end-to-end flow over the spine: heavy tasks that load a real (tiny) torch model through the
residency manager, hold the `gpu-heavy` slot, and write recipe-addressed artifacts.

It is the studio's smoke test (`studio demo`) and what the durability tests kill and resume.
"""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

from prefect import flow, get_run_logger, task

from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe
from studio.resources.runtime.gpu_limit import prepare_flow_run
from studio.resources.runtime.residency import HeavyModel, get_residency
from studio.tasks.caching import generation_task_options, heavy_tags

DEMO_MODELS = ("demo-mlp-a@1", "demo-mlp-b@1")


def _load_mlp(name: str, device: str):
    import torch

    torch.manual_seed(zlib.crc32(name.encode()))
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Linear(256, 64))
    return model.to(device).eval()


def demo_model(name: str) -> HeavyModel:
    return HeavyModel(name=name, load=lambda device: _load_mlp(name, device), est_host_gb=0.001)


def _note_execution(step: int) -> None:
    """Append one line per real execution (tests count executions, not states)."""
    path = os.environ.get("STUDIO_DEMO_EXEC_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{os.getpid()} step={step} t={time.time()}\n")


def _forced_hold(step: int) -> float:
    """STUDIO_DEMO_HOLD=STEP:SECONDS makes one step hold the GPU long enough to be killed mid-task."""
    spec = os.environ.get("STUDIO_DEMO_HOLD", "")
    if ":" in spec and int(spec.split(":")[0]) == step:
        return float(spec.split(":")[1])
    return 0.0


@task(task_run_name="transform-{step}", **generation_task_options(heavy=True))
def transform_with_model(recipe: Recipe, step: int, model_name: str, hold_s: float = 0.0) -> ArtifactRef:
    import numpy as np
    import torch

    def write(out: Path) -> None:  # runs only when the artifact is not stored yet (the store is the cache)
        _note_execution(step)
        with get_residency().use(demo_model(model_name)) as model:
            gen = torch.Generator().manual_seed(step)
            x = torch.randn(8, 64, generator=gen)
            with torch.no_grad():
                y = model(x.to(next(model.parameters()).device)).cpu().numpy()
            hold = hold_s or _forced_hold(step)
            if hold:
                time.sleep(hold)  # stands in for a long render while the slot and the model are held
        with open(out, "wb") as f:
            np.save(f, y.astype("float32"))

    return ArtifactStore.from_settings().lookup_or_make(recipe, ".npy", "application/x-npy", write)


@flow(name="heavy-demo", flow_run_name="heavy-demo-{label}")
def heavy_demo(label: str = "demo", n_tasks: int = 3, hold_s: float = 0.0, alternate_models: bool = True
               ) -> list[ArtifactRef]:
    prepare_flow_run(heavy=True)
    logger = get_run_logger()
    refs: list[ArtifactRef] = []
    for step in range(1, n_tasks + 1):
        model = DEMO_MODELS[(step - 1) % 2] if alternate_models else DEMO_MODELS[0]
        recipe = Recipe(stage="demo", backend="torch-mlp", model=model,
                        params={"label": label, "step": step}, inputs=[r.sha256 for r in refs[-1:]])
        t = transform_with_model.with_options(tags=heavy_tags(recipe, heavy=True))
        refs.append(t(recipe, step, model, hold_s))
        logger.info("step %d → %s", step, refs[-1].short)
    return refs
