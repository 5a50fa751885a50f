"""Footage shots: pick the best-matching indexed film scene, fix its clip window, and take a still of it.

Both steps are recipe-cached, so a rerun after a crash (or Prefect's Retry) picks nothing again.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import task

from studio.configs.vocabulary import Shot
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe
from studio.tasks.caching import generation_task_options

FOOTAGE_STAGE = "footage_pick"
FOOTAGE_FRAME_STAGE = "footage_frame"
PICK_VERSION = 1


def footage_query(shot: Shot) -> str:
    return shot.footage_query or " ".join(x for x in (shot.action, shot.location, shot.camera) if x)


def footage_recipe(shot: Shot, need_s: float, kb_fingerprint: str) -> Recipe:
    return Recipe(stage=FOOTAGE_STAGE, backend="lancedb", model=kb_fingerprint,
                  params={"query": footage_query(shot), "need_s": round(need_s, 3), "camera": shot.camera,
                          "v": PICK_VERSION})


def film_scenes_fingerprint() -> str:
    """Changes when the indexed films change, so picks are redone against the new index."""
    import hashlib

    from studio.resources.knowledge.store import KnowledgeBase

    hashes = KnowledgeBase.from_settings().hashes("film_scenes")
    return "film_scenes@" + hashlib.sha256(json.dumps(sorted(hashes.items())).encode()).hexdigest()[:16]


def choose_window(hit_meta: dict, need_s: float, video_s: float) -> tuple[float, float]:
    """A window of `need_s` seconds that starts at the scene's start and stays inside the film."""
    need_s = min(need_s, video_s)
    start = float(hit_meta.get("start", 0.0))
    if start + need_s > video_s:
        start = max(0.0, video_s - need_s)
    return round(start, 3), round(start + need_s, 3)


def _pick(recipe: Recipe, shot: Shot) -> dict:
    from studio.resources.knowledge.store import KnowledgeBase
    from studio.resources.media.frames import sample_footage_path
    from studio.resources.media.probe import probe

    need = float(recipe.params["need_s"])
    hits = KnowledgeBase.from_settings().search(recipe.params["query"], collection="film_scenes", k=5)
    hits = [h for h in hits if Path(str(h.metadata.get("video", ""))).is_file()]
    if hits:
        # Prefer a scene whose shot size matches the plan's camera among the closest matches.
        same = [h for h in hits if h.metadata.get("shot_size") == shot.camera]
        hit = (same or hits)[0]
        video, meta, why = str(hit.metadata["video"]), dict(hit.metadata), f"retrieved: {hit.text[:120]}"
        score = float(hit.score)
    else:
        video, meta, why, score = str(sample_footage_path()), {"start": 0.0}, "no indexed film: the sample", 0.0
    start, end = choose_window(meta, need, probe(video).duration)
    return {"video": video, "start": start, "end": end, "scene": meta.get("scene"), "score": score, "why": why,
            "query": recipe.params["query"]}


@task(task_run_name="pick-footage", **generation_task_options(heavy=False))
def pick_footage(recipe: Recipe, shot: Shot) -> ArtifactRef:
    """Retrieve the best-matching indexed film scene for a footage shot and fix the clip window."""
    return ArtifactStore.from_settings().lookup_or_make_json(recipe, lambda: _pick(recipe, shot))


def footage_frame(pick_ref: ArtifactRef) -> ArtifactRef:
    """A still of the picked window (for the storyboard sheet and the judge)."""
    from studio.resources.media.frames import write_frame_png

    store = ArtifactStore.from_settings()
    recipe = Recipe(stage=FOOTAGE_FRAME_STAGE, backend="ffmpeg", inputs=[pick_ref.sha256], params={"at": "mid"})

    def write(out: Path) -> None:
        pick = store.read_json(pick_ref)
        write_frame_png(pick["video"], (pick["start"] + pick["end"]) / 2, out)

    return store.lookup_or_make(recipe, ".png", "image/png", write)

