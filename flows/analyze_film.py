"""Flow `analyze-film`: a film → scenes, shot analysis, keyframes → artifact store, Prefect table, RAG.

Long films are cut into time chunks; each chunk is its own cached `detect_scenes` task (decoding a few seconds
either side of its range, with PySceneDetect's own decoder and detectors), and `assemble_scenes` turns the
chunks into PySceneDetect's exact cut list (its flash filter runs once over all chunks' frames, in order),
the transitions (fades, dissolves) and the shots between them; the shots are analysed in batches of about
the same length by `analyze_shots`. Both run on a process pool, one worker per core: scene detection is
CPU-bound Python + OpenCV and threads would serialise on the GIL. Killed at any point, a rerun with the same
film finds the finished chunks and batches in the store and does only the rest.

The results go to: a JSON artifact (`film_analysis` stage) and `--out DIR` (analysis.json + thumbnails/), a
Prefect table artifact, and the `film_scenes` collection of the knowledge base (when that module is
installed), one document per scene with the film path, start/end seconds, shot size and camera motion in its
metadata so the director can pick footage.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ProcessPoolTaskRunner

from studio.resources.media.probe import require_video
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe, file_digest
from studio.resources.runtime.files import copy_atomic, write_text_atomic
from studio.resources.runtime.gpu_limit import prepare_flow_run
from studio.resources.video.config import video_config
from studio.resources.video.scenes import Scene, assemble_scenes, plan_chunks
from studio.tasks.video import analyze_shots, detect_scenes, scene_chunk_recipe, shots_recipe


def workers() -> int:
    """Process pool size: `scene_detection.workers` of configs/video.yaml, 0 = one per core."""
    return video_config().scene_detection.workers or os.cpu_count() or 1


def batch_scenes(scenes: list[Scene], seconds: float) -> list[list[Scene]]:
    """Consecutive scenes grouped into batches of about `seconds` (a long scene is a batch of its own)."""
    batches: list[list[Scene]] = []
    for s in scenes:
        if batches and sum(x.duration for x in batches[-1]) + s.duration <= seconds:
            batches[-1].append(s)
        else:
            batches.append([s])
    return batches


def scene_docs(video: str, digest: str, shots: list[dict]) -> list:
    from studio.resources.knowledge.store import KnowledgeDoc

    docs = []
    for shot in shots:
        sc, cam, comp = shot["scene"], shot["camera"], shot["composition"]
        docs.append(KnowledgeDoc(id=f"film-{digest[:16]}-scene-{sc['index']:04d}", text=shot["description"],
                                 metadata={"kind": "film_scene", "video": video, "video_sha256": digest,
                                           "scene": sc["index"], "start": sc["start"], "end": sc["end"],
                                           "start_frame": sc["start_frame"], "end_frame": sc["end_frame"],
                                           "starts_with": sc.get("starts_with"), "ends_with": sc.get("ends_with"),
                                           "shot_size": comp["shot_size"], "camera_move": cam["camera_move"],
                                           "motion": cam["motion"], "subject": comp["subject_method"],
                                           "subject_box": comp["subject_box"], "placement": comp["placement"],
                                           "colors": shot["colors"], "brightness": shot["brightness"],
                                           "coherent": not shot["coherence"]["flags"],
                                           "thumbnail": shot.get("thumbnail")}))
    return docs


def index_scenes(video: str, digest: str, shots: list[dict]) -> dict:
    """Sync the scenes into `film_scenes` (upsert, and drop this film's scenes that no longer exist), one writer
    at a time across hosts (the knowledge base may be shared on S3)."""
    from studio.resources.knowledge.store import KnowledgeBase
    from studio.resources.runtime.gpu_limit import knowledge_writes

    docs = scene_docs(video, digest, shots)
    with knowledge_writes():
        return KnowledgeBase.from_settings().sync("film_scenes", docs, origin=f"film:{digest[:16]}").as_dict()


def _reuse_or_submit(store: ArtifactStore, task, recipes: list[Recipe], video: str, *args) -> list[ArtifactRef]:
    """Artifacts already in the store are taken as they are; only the missing ones go to the process pool.

    The tasks' cache policy would return them too, but only after the pool has spawned its workers (seconds
    of imports each): a resumed or repeated analysis should not pay that for work that is done.
    """
    logger = get_run_logger()
    found = {i: ref for i, r in enumerate(recipes) if (ref := store.lookup(r)) is not None}
    futures = {i: task.submit(r, video, *args) for i, r in enumerate(recipes) if i not in found}
    if found:
        logger.info("%s: %d of %d reused from the artifact store", task.name, len(found), len(recipes))
    return [found[i] if i in found else futures[i].result() for i in range(len(recipes))]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40] or "film"


@flow(name="analyze-film", flow_run_name="analyze-film-{video}",
      task_runner=ProcessPoolTaskRunner())  # one process per core; see `workers()` to override
def analyze_film(video: str, out_dir: str | None = None, detector: str | None = None,
                 chunk_seconds: float | None = None, index: bool = True) -> dict:
    """video: a film file; out_dir: also write analysis.json + thumbnails/ there; detector: content | adaptive;
    chunk_seconds: override the chunk length of configs/video.yaml; index: upsert scenes into the RAG."""
    prepare_flow_run(heavy=False)
    logger = get_run_logger()
    video = str(Path(video).resolve())
    info = require_video(video)
    cfg = video_config().scene_detection
    digest = file_digest(video)
    chunk_s = chunk_seconds or cfg.chunk_seconds
    chunks = plan_chunks(info.duration, chunk_s, cfg.overlap_seconds)
    store = ArtifactStore.from_settings()
    chunk_refs = _reuse_or_submit(store, detect_scenes, [scene_chunk_recipe(video, c, detector) for c in chunks],
                                  video)
    found = assemble_scenes([store.read_json(ref) for ref in chunk_refs], cfg.min_scene_len)
    fps, scenes = found["fps"], found["scenes"]
    logger.info("%s: %d cuts, %d transitions, %d shots in %d chunk(s)", Path(video).name, len(found["cuts"]),
                len(found["transitions"]), len(scenes), len(chunks))

    batches = batch_scenes(scenes, chunk_s)
    shot_refs = _reuse_or_submit(store, analyze_shots, [shots_recipe(video, b) for b in batches], video)
    shots = [row for ref in shot_refs for row in store.read_json(ref)["shots"]]

    summary = {"video": video, "sha256": digest, "fps": fps, "duration": info.duration, "scenes": len(shots),
               "chunks": len(chunks), "cuts": found["cuts"],
               "transitions": [t.model_dump() for t in found["transitions"]], "shots": shots}
    analysis_ref = store.put_json(Recipe(stage="film_analysis", backend="studio-video-analysis",
                                         params={"chunks": len(chunks)}, inputs=[r.sha256 for r in shot_refs]),
                                  summary)
    if out_dir:  # a user-visible copy: thumbnails beside the JSON, paths pointing at them
        out = Path(out_dir)
        (out / "thumbnails").mkdir(parents=True, exist_ok=True)
        local = {**summary, "shots": [dict(row) for row in shots]}
        for row in local["shots"]:
            if row.get("thumbnail_ref"):
                dst = out / "thumbnails" / f"scene-{row['scene']['index']:04d}.jpg"
                copy_atomic(store.local_path(ArtifactRef(**row["thumbnail_ref"])), dst)
                row["thumbnail"] = str(dst)
        write_text_atomic(out / "analysis.json", json.dumps(local, indent=2, sort_keys=True))

    create_table_artifact(key=f"film-analysis-{_slug(Path(video).stem)}", description=f"scenes of {video}",
                          table=[{"scene": r["scene"]["index"], "start": round(r["scene"]["start"], 2),
                                  "end": round(r["scene"]["end"], 2), "shot": r["composition"]["shot_size"],
                                  "camera": r["camera"]["camera_move"], "subject": r["composition"]["subject_method"],
                                  "flags": len(r["coherence"]["flags"])} for r in shots])
    kb_stats = None
    if index:
        kb_stats = index_scenes(video, digest, shots)
        if kb_stats is None:
            logger.warning("knowledge base module not installed: scenes were not indexed into film_scenes")
    return {"video": video, "scenes": len(shots), "chunks": len(chunks), "analysis": analysis_ref.model_dump(),
            "out_dir": out_dir, "knowledge": kb_stats}


if __name__ == "__main__":
    import sys

    print(analyze_film(sys.argv[1]))
