"""Batch image generation: characters × prompts × seeds × LoRA weights → keyframes, a contact sheet, a table.

    studio images batch examples/batch_images.yaml                                   # CLI
    prefect deployment run 'generate-images/generate-images' --param batch_file=FILE  # on demand
    (deployment `generate-images/batch-generate` runs examples/batch_images.yaml nightly; see prefect.yaml)

Stage-ordered so each model is made active once per round, never once per image:
1. plan: expand the batch and build every recipe — each request is validated (unknown LoRA or character,
   missing weights, a size that is not a multiple of 8) before anything loads;
2. render every keyframe (heavy backends one after another under the `gpu-heavy` slot: the pipeline loads once
   per process and stays resident between images);
3. check every keyframe's faces against the characters' reference images; items below the threshold are
   re-rendered with a new seed in the next round (render all, then check all), up to `attempts` renders;
4. a contact sheet of the best attempt of each item, a Prefect table artifact, optional copies in `out_dir`.

A rerun with the same batch executes nothing: every recipe is already in the store, so its task comes back
Cached and heavy tags are dropped (no GPU slot is taken for cached work).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from studio.resources.image.request import BatchItem, ImageRequest, expand_batch, load_batch
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe
from studio.resources.runtime.files import copy_atomic, write_text_atomic
from studio.tasks.caching import heavy_tags
from studio.tasks.images import (
    check_consistency,
    consistency_recipe,
    face_embedder,
    image_backend,
    keyframe_recipe,
    render_contact_sheet,
    render_keyframe,
    sheet_recipe,
)
from studio.tasks.reuse import shows_cached

RESEED_STRIDE = 1_000_003  # attempt k renders with seed + k·stride: deterministic, far from the batch's seeds


@dataclass
class Attempt:
    seed: int
    recipe: Recipe
    request: ImageRequest
    ref: ArtifactRef | None = None
    checks: dict[str, dict] = field(default_factory=dict)  # character → consistency report

    @property
    def score(self) -> float | None:
        scores = [c["score"] for c in self.checks.values() if c.get("score") is not None]
        return min(scores) if scores else None

    @property
    def failed(self) -> bool:
        return any(c["status"] in ("below-threshold", "no-face") for c in self.checks.values())


def _reseed(backend: Any, item: BatchItem, attempt: int) -> Attempt:
    seed = item.seed + attempt * RESEED_STRIDE
    recipe, req = keyframe_recipe(backend, item.request.model_copy(update={"seed": seed}))
    return Attempt(seed, recipe, req)


def _render_round(backend: Any, attempts: list[Attempt]) -> None:
    if backend.heavy:  # one after another: the slot is taken without contention, the model stays active
        for a in attempts:
            task = shows_cached(render_keyframe.with_options(tags=heavy_tags(a.recipe, True)))
            a.ref = task.submit(a.recipe, a.request.model_dump(mode="json")).result()
        return
    task = shows_cached(render_keyframe.with_options(tags=set()))  # a reused keyframe shows "Cached" in the UI
    futures = [task.submit(a.recipe, a.request.model_dump(mode="json")) for a in attempts]
    for a, f in zip(attempts, futures, strict=True):
        a.ref = f.result()


def _check_round(embedder: Any, attempts: list[Attempt], threshold: float) -> None:
    from studio.configs.schema import studio_config
    from studio.resources.image.storyboard.frame import reference_paths

    store = ArtifactStore.from_settings()
    chars = studio_config().characters.characters
    for a in attempts:
        for cid in a.request.characters:
            refs = reference_paths(chars[cid])
            if not refs:
                a.checks[cid] = {"status": "no-reference", "score": None}
                continue
            recipe = consistency_recipe(embedder, a.ref, cid, refs, threshold)
            task = shows_cached(check_consistency.with_options(tags=heavy_tags(recipe, embedder.heavy)))
            a.checks[cid] = store.read_json(task.submit(recipe, a.ref, cid, [str(p) for p in refs]).result())


def _round(score: float | None) -> float | None:
    return None if score is None else round(score, 4)


def _label(item: BatchItem, best: Attempt, n_attempts: int) -> list[str]:
    from studio.configs.schema import studio_config

    name = studio_config().characters.characters[item.character].display_name
    loras = ", ".join(f"{s.name}@{s.weight:g}" for s in best.request.loras) or "no LoRA"
    score = "no face check" if not best.checks else (
        f"face {best.score:.2f}" if best.score is not None else
        ", ".join(sorted({c['status'] for c in best.checks.values()})))
    tries = f" · try {n_attempts}" if n_attempts > 1 else ""
    return [f"{name} · seed {best.seed}", item.prompt, loras, f"{score}{tries}"]


def plan_batch(batch: str | dict[str, Any], profile: str | None = None
               ) -> tuple[Any, Any, Any, list[BatchItem], list[list[Attempt]]]:
    """Validate a batch and build its first-round recipes: (spec, backend, face embedder or None, items,
    attempts). Raises a StudioError for anything a render would trip on, before any model loads."""
    spec, base_dir = load_batch(batch)
    backend = image_backend(spec.model, profile or spec.profile)
    items = expand_batch(spec, base_dir)
    history = [[_reseed(backend, it, 0)] for it in items]
    embedder = face_embedder(profile=profile or spec.profile) if spec.consistency.enabled else None
    return spec, backend, embedder, items, history


@flow(name="generate-images", log_prints=False)
def generate_images(batch_file: str = "examples/batch_images.yaml", batch: dict[str, Any] | None = None,
                    profile: str | None = None, out_dir: str | None = None) -> dict[str, Any]:
    """Render a batch file (or an inline `batch` mapping, which wins) and return the batch summary."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from studio.resources.runtime.gpu_limit import prepare_flow_run

    log = get_run_logger()
    # 1. plan: every request validated and every recipe built before any model is touched
    spec, backend, embedder, items, history = plan_batch(batch if batch is not None else batch_file, profile)
    threshold = (spec.consistency.threshold if spec.consistency.threshold is not None
                 else getattr(embedder, "default_threshold", 0.62))
    prepare_flow_run(heavy=backend.heavy or bool(embedder and embedder.heavy))
    log.info("batch '%s': %d images with %s (%s)", spec.name, len(items), backend.name, backend.model_id)

    # 2–3. render all, check all; re-roll what failed, in rounds
    todo = list(range(len(items)))
    for round_no in range(spec.consistency.attempts if embedder else 1):
        if round_no:
            for i in todo:
                history[i].append(_reseed(backend, items[i], round_no))
        _render_round(backend, [history[i][-1] for i in todo])
        if embedder is None:
            break
        _check_round(embedder, [history[i][-1] for i in todo], threshold)
        todo = [i for i in todo if history[i][-1].failed]
        log.info("round %d: %d below threshold or without a face", round_no + 1, len(todo))
        if not todo:
            break

    # 4. outputs
    best = [max(h, key=lambda a: (not a.failed, a.score if a.score is not None else -1.0)) for h in history]
    tiles = [(b.ref, _label(it, b, len(h))) for it, b, h in zip(items, best, history, strict=True)]
    sheet = shows_cached(render_contact_sheet).submit(
        sheet_recipe(tiles, f"{spec.name} · {backend.name}", spec.sheet_columns), tiles).result()
    rows = [{"#": it.index, "character": it.character, "prompt": it.prompt[:80], "seed": b.seed,
             "lora_weight": it.lora_weight, "score": _round(b.score),
             "status": ",".join(sorted({c["status"] for c in b.checks.values()})) or "unchecked",
             "attempts": [{"seed": a.seed, "score": _round(a.score)} for a in h], "image": b.ref.uri,
             "key": b.ref.short}
            for it, b, h in zip(items, best, history, strict=True)]
    create_table_artifact(key=f"images-{spec.name}", table=[{**r, "attempts": json.dumps(r["attempts"])}
                                                            for r in rows],
                          description=f"Batch **{spec.name}**: {len(rows)} images with `{backend.model_id}`; "
                                      f"contact sheet `{sheet.uri}`")
    create_markdown_artifact(key=f"images-{spec.name}-sheet",
                             markdown=f"Contact sheet of **{spec.name}**: `{sheet.uri}`")
    summary = {"batch": spec.name, "backend": backend.name, "model": backend.model_id,
               "contact_sheet": sheet.model_dump(), "items": rows, "threshold": threshold}
    if out_dir:
        named = [(f"{r['#']:03d}-{r['character']}-seed{r['seed']}.png", b.ref) for r, b in zip(rows, best, strict=True)]
        summary["out_dir"] = str(export(summary, named, sheet, Path(out_dir)))
    return summary


def export(summary: dict, images: list[tuple[str, ArtifactRef]], sheet: ArtifactRef, out: Path) -> Path:
    """Copy the final images and the contact sheet to `out` under readable names, plus a JSON report."""
    store = ArtifactStore.from_settings()
    out.mkdir(parents=True, exist_ok=True)
    copy_atomic(store.local_path(sheet), out / "contact_sheet.png")
    for name, ref in images:
        copy_atomic(store.local_path(ref), out / name)
    write_text_atomic(out / "batch_report.json", json.dumps(summary, indent=2, default=str))
    return out
