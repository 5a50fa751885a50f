"""Expression exaggeration on the gpu profile: a keyframe whose shot the director marked with an exaggeration
factor above 1 (a climax beat) gets its face redrawn by SDXL inpainting with the emotion weighted by the factor
(`studio.resources.image.expression_gpu`), then the face-consistency check against the keyframe's own face:
below the threshold it re-rolls with a new seed, at most `attempts` renders; every attempt's score is recorded
in the artifact's sidecar. When none passes, the keyframe is kept as it was (identity outranks the effect).

Recipe-cached like every artifact (keyframe by content hash, emotion, factor, box, seed, SDXL and face model
revisions); heavy, so it carries the `gpu-heavy` tags unless already stored.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from prefect import task

from studio.configs.vocabulary import Shot
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe
from studio.tasks.caching import generation_task_options

EXPRESSION_STAGE = "expression"
MAX_ATTEMPTS = 3


def wants_exaggeration(shot: Shot, backend: Any, profile: str | None) -> bool:
    return (
        profile == "gpu"
        and shot.exaggeration > 1.0
        and shot.source != "footage"
        and getattr(backend, "entry", None) is not None
        and backend.entry.backend == "diffusers-sdxl"
    )


def expression_recipe(
    backend: Any,
    embedder: Any,
    keyframe: ArtifactRef,
    box: list[int] | tuple[int, ...],
    emotion: str,
    factor: float,
    seed: int,
    threshold: float | None,
    attempts: int = MAX_ATTEMPTS,
) -> Recipe:
    from studio.resources.image.expression_gpu import EXPRESSION_VERSION

    return Recipe(
        stage=EXPRESSION_STAGE,
        backend="diffusers-sdxl-inpaint",
        model=backend.model_id,
        params={
            "v": EXPRESSION_VERSION,
            "model_name": backend.name,
            "emotion": emotion,
            "factor": round(factor, 3),
            "box": list(box),
            "seed": seed,
            "threshold": threshold,
            "attempts": attempts,
            "face_model": embedder.model_id if embedder else None,
            "face_name": embedder.name if embedder else None,
        },
        inputs=[keyframe.sha256],
    )


def _attempt(backend: Any, embedder: Any, keyframe: Path, p: dict[str, Any], i: int, out: Path, prompt: str,
             loras: list[dict] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Attempt `i` (its own seed): the edit, then the face check against the keyframe → (row, edit metadata)."""
    from studio.resources.image.expression_gpu import inpaint_face
    from studio.tasks.images import score_faces

    meta = inpaint_face(backend, keyframe, tuple(p["box"]), p["emotion"], p["factor"], p["seed"] + 1000 * i, out,
                        prompt, loras)
    row = {"attempt": i, "seed": meta["seed"], "strength": meta["strength"], "pipeline_s": meta["pipeline_s"]}
    if embedder is None:
        row.update(status="unchecked", score=None)
    else:
        check = score_faces(embedder, out, [keyframe], p["threshold"])
        row.update(status=check["status"], score=check["score"])
    return row, meta


def make_exaggerated_keyframe(recipe: Recipe, keyframe: Path, prompt: str = "", loras: list[dict] | None = None,
                              store: ArtifactStore | None = None) -> ArtifactRef:
    """The body of `exaggerate_keyframe`, callable without Prefect: edit → check → re-roll (bounded)."""
    from studio.tasks.images import face_embedder, image_backend

    store = store or ArtifactStore.from_settings()
    p = recipe.params

    def write(tmp: Path) -> dict[str, Any]:
        backend = image_backend(p["model_name"])
        embedder = face_embedder(p["face_name"]) if p["threshold"] is not None else None
        attempts: list[dict[str, Any]] = []
        chosen = None
        with tempfile.TemporaryDirectory(prefix="studio-expr-") as scratch:
            for i in range(p["attempts"]):
                out = Path(scratch) / f"attempt-{i}.png"
                row, meta = _attempt(backend, embedder, keyframe, p, i, out, prompt, loras)
                attempts.append(row)
                if row["status"] in ("pass", "unchecked", "no-reference-face"):
                    chosen = i
                    shutil.copyfile(out, tmp)
                    break
            if chosen is None:
                shutil.copyfile(keyframe, tmp)  # every attempt lost the face: keep the keyframe's
        return {"attempts": attempts, "chosen": chosen, "kept_original": chosen is None, "prompt": meta["prompt"],
                "emotion": p["emotion"], "factor": p["factor"], "box": p["box"], "threshold": p["threshold"],
                "model": backend.model_id}

    return store.lookup_or_make(recipe, ".png", "image/png", write)


@task(
    name="exaggerate_keyframe",
    task_run_name="exaggerate_keyframe-{recipe.params[seed]}",
    **generation_task_options(heavy=True),
)
def exaggerate_keyframe(
    recipe: Recipe, keyframe: str, prompt: str = "", loras: list[dict] | None = None
) -> ArtifactRef:
    """One keyframe's face with its emotion exaggerated (gpu profile), face-checked with bounded re-rolls."""
    return make_exaggerated_keyframe(recipe, Path(keyframe), prompt, loras)


def exaggerate_keyframes(
    shots: list[Shot], keyframes: dict[int, ArtifactRef], backend: Any, profile: str | None, wrap: Any = None
) -> dict[int, ArtifactRef]:
    """The stage after the keyframes (the same SDXL, still resident): every climax beat's keyframe exaggerated,
    submitted together; returns the keyframes with those replaced. A keyframe with no face is left as it is."""
    import logging

    from studio.resources.image.faces import face_box
    from studio.tasks.caching import heavy_tags
    from studio.tasks.images import face_embedder

    todo = [s for s in shots if s.id in keyframes and wants_exaggeration(s, backend, profile)]
    if not todo:
        return keyframes
    store = ArtifactStore.from_settings()
    embedder = face_embedder(profile=profile)
    futures = {}
    for shot in todo:
        path = store.local_path(keyframes[shot.id])
        box = face_box(path)
        if box is None:
            logging.getLogger("studio.expression").warning(
                "shot %s: no face in the keyframe, nothing to exaggerate", shot.id
            )
            continue
        side = store.sidecar(keyframes[shot.id]).get("extra") or {}
        recipe = expression_recipe(
            backend,
            embedder,
            keyframes[shot.id],
            box,
            shot.emotion,
            shot.exaggeration,
            int(side.get("seed", 0)),
            embedder.default_threshold,
        )
        t = exaggerate_keyframe.with_options(tags=sorted(heavy_tags(recipe, True)))
        futures[shot.id] = (wrap(t) if wrap else t).submit(
            recipe, str(path), side.get("prompt", ""), side.get("loras") or []
        )
    return {**keyframes, **{sid: f.result() for sid, f in futures.items()}}
