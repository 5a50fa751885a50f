"""Image tasks: render a keyframe, check a character's face against its references, draw a contact sheet.

Each takes its `recipe` first and returns the `ArtifactRef` of the file it wrote (never bytes); the recipe
cache policy makes a rerun return the stored artifact without executing. Heavy backends get the `gpu-heavy`
tag at submit time through `heavy_tags`, which drops it when the artifact already exists, so cached work never
queues behind another process's GPU job.

Recipes are built here, before any task runs, by `keyframe_recipe` / `consistency_recipe`: the backend's
`prepare()` validates the request (unknown LoRA, missing weights, bad size → a StudioError) and fills its
defaults, and the upstream files' content hashes become the recipe's inputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import task

from studio.resources.image.faces import FaceEmbedder
from studio.resources.image.request import ImageBackend, ImageRequest
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe, file_digest
from studio.tasks.caching import generation_task_options

KEYFRAME_STAGE = "keyframe"
CONSISTENCY_STAGE = "consistency"
SHEET_STAGE = "contact_sheet"

def image_backend(model: str | None = None, profile: str | None = None) -> ImageBackend:
    """The image backend of the profile (or a named model of models.yaml)."""
    from studio.resources.registry import load_backend

    return load_backend("image", profile, name=model)


def keyframe_recipe(backend: ImageBackend, request: ImageRequest) -> tuple[Recipe, ImageRequest]:
    """Validate and complete `request` for `backend`; return its recipe and the prepared request."""
    req = backend.prepare(request)
    recipe = Recipe(stage=KEYFRAME_STAGE, backend=backend.entry.backend, model=backend.model_id,
                    params={"model_name": backend.name, **backend.recipe_params(req)},
                    inputs=[file_digest(p) for p in backend.input_files(req)])
    return recipe, req


@task(task_run_name="render-keyframe-{recipe.params[model_name]}-{request[seed]}",
      **generation_task_options(heavy=True))
def render_keyframe(recipe: Recipe, request: dict[str, Any]) -> ArtifactRef:
    """Render one keyframe PNG; the sidecar records prompt, seed, LoRAs, ControlNets and model revision."""
    store = ArtifactStore.from_settings()
    backend = image_backend(recipe.params["model_name"])
    req = ImageRequest.model_validate(request)

    def write(path: Path) -> dict[str, Any]:
        meta = backend.render(req, path)
        return {"prompt": req.prompt, "negative_prompt": req.negative_prompt, "seed": req.seed,
                "characters": req.characters, "loras": [s.model_dump() for s in req.loras],
                "controlnets": [s.model_dump() for s in req.controls], "model": backend.model_id, **meta}

    return store.lookup_or_make(recipe, ".png", "image/png", write)


# --------------------------------------------------------------------------- consistency
def consistency_recipe(embedder: FaceEmbedder, keyframe: ArtifactRef, character: str, references: list[Path],
                       threshold: float) -> Recipe:
    return Recipe(stage=CONSISTENCY_STAGE, backend=embedder.name, model=embedder.model_id,
                  params={"character": character, "threshold": threshold},
                  inputs=[keyframe.sha256, *[file_digest(p) for p in references]])


def score_faces(embedder: FaceEmbedder, image: Path, references: list[Path], threshold: float) -> dict[str, Any]:
    """Compare the largest face of `image` with each reference; the score is the best match."""
    embs = embedder.embed_many([image, *references])
    face, refs = embs[0], embs[1:]
    per_ref = [None if (face is None or r is None) else round(embedder.similarity(face, r), 4) for r in refs]
    known = [s for s in per_ref if s is not None]
    ref_faces = sum(r is not None for r in refs)
    if ref_faces == 0:
        status = "no-reference-face"  # cartoon animals: nothing to compare, never a reason to re-roll
    elif face is None:
        status = "no-face"
    else:
        status = "pass" if max(known) >= threshold else "below-threshold"
    return {"score": max(known) if known else None, "per_reference": per_ref, "threshold": threshold,
            "status": status, "face_found": face is not None, "reference_faces": ref_faces,
            "references": [str(p) for p in references]}


@task(task_run_name="check-consistency-{character}", **generation_task_options(heavy=True))
def check_consistency(recipe: Recipe, keyframe: ArtifactRef, character: str, references: list[str]
                      ) -> ArtifactRef:
    """Score a keyframe's face against the character's reference images; writes a JSON report."""
    store = ArtifactStore.from_settings()
    embedder = face_embedder(recipe.backend)
    result = {"character": character, "keyframe": keyframe.key, "embedder": embedder.model_id,
              **score_faces(embedder, store.local_path(keyframe), [Path(p) for p in references],
                            recipe.params["threshold"])}

    def write(path: Path) -> dict[str, Any]:
        path.write_text(json.dumps(result, indent=2, sort_keys=True))
        return {"status": result["status"], "score": result["score"]}

    return store.lookup_or_make(recipe, ".json", "application/json", write)


_EMBEDDERS: dict[tuple[str, str], Any] = {}


def face_embedder(name: str | None = None, profile: str | None = None) -> FaceEmbedder:
    """The face embedder of the profile (or a named model), one per process: mediapipe graphs take ~0.2 s to
    build and insightface sessions live in the residency manager."""
    from studio.configs.schema import studio_config
    from studio.configs.settings import get_settings
    from studio.resources.registry import import_backend_class, model_entry

    if name is None:
        name, entry = model_entry("face", profile)
    else:
        entry = studio_config().models.models[name]
    key = (str(get_settings().configs_path), name)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = import_backend_class("face", entry.backend)(name, entry)
    return _EMBEDDERS[key]


# --------------------------------------------------------------------------- contact sheet
def sheet_recipe(tiles: list[tuple[ArtifactRef, list[str]]], title: str, columns: int | None) -> Recipe:
    from studio.resources.image.storyboard.frame import RENDER_VERSION, font_tag

    return Recipe(stage=SHEET_STAGE, backend="pillow", model=f"contact-sheet@{RENDER_VERSION}+{font_tag()}",
                  params={"labels": [labels for _, labels in tiles], "title": title, "columns": columns},
                  inputs=[ref.sha256 for ref, _ in tiles])


@task(task_run_name="contact-sheet", **generation_task_options(heavy=False))
def render_contact_sheet(recipe: Recipe, tiles: list[tuple[ArtifactRef, list[str]]]) -> ArtifactRef:
    from studio.resources.image.storyboard.frame import make_contact_sheet

    store = ArtifactStore.from_settings()
    local = [(store.local_path(ref), labels) for ref, labels in tiles]

    def write(path: Path) -> dict[str, Any]:
        make_contact_sheet(local, path, columns=recipe.params["columns"], title=recipe.params["title"])
        return {"tiles": [ref.key for ref, _ in tiles]}

    return store.lookup_or_make(recipe, ".png", "image/png", write)
