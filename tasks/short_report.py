"""What a create-short run tells the outside: progress (Prefect progress artifact + progress.jsonl for the CLI),
INFO logs per stage, rendered-vs-reused counts (for /metrics), the manifest, and the run's page in the Prefect UI
(summary with the storyboard, image artifacts, a per-shot table with thumbnails, a link that plays the short).

Pictures reach the UI by http URL only: the file server beside the Prefect server serves the store and the
output folders (a local store), or the store signs URLs (S3). Without either, artifacts name store paths.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import (
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.runtime import flow_run

from studio.configs.vocabulary import Plan
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore
from studio.resources.runtime.file_server import file_url
from studio.resources.runtime.metrics import record_stage_outcome
from studio.tasks.voice import read_line_timing

PROGRESS_KEY = "short-progress"


class Progress:
    """Stage and shot progress: a Prefect progress artifact plus progress.jsonl for the CLI's live view.

    The total counts every step the run will report (voice lines, pictures, judge rounds, segments, outputs),
    `finish()` sets 100 %, and `failed()` writes where the run stopped into the artifact's description."""

    def __init__(self, out_dir: Path, total_steps: int):
        self.path = out_dir / "progress.jsonl"
        self.t0 = time.monotonic()
        self.total = max(total_steps, 1)
        self.done = 0
        self.where = "plan"
        self.artifact_id = create_progress_artifact(0.0, key=PROGRESS_KEY, description="starting")

    @property
    def percent(self) -> float:
        return min(100.0, 100.0 * self.done / self.total)

    def event(self, stage: str, detail: str = "", advance: int = 0) -> None:
        self.done += advance
        self.where = f"{stage}: {detail}" if detail else stage
        self._write(stage, detail, self.percent, self.where)

    def finish(self, detail: str) -> None:
        self.done = self.total
        self._write("done", detail, 100.0, f"done: {detail}")

    def failed(self, error: BaseException) -> None:
        why = f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
        self._write("failed", why, self.percent, f"stopped at {self.where} ({self.percent:.0f} %): {why}")

    def _write(self, stage: str, detail: str, pct: float, description: str) -> None:
        update_progress_artifact(self.artifact_id, pct, description=description[:500])
        with open(self.path, "a") as f:
            f.write(json.dumps({"t": time.time(), "elapsed": round(time.monotonic() - self.t0, 1), "stage": stage,
                                "detail": detail, "percent": round(pct, 1)}) + "\n")


def progress_steps(plan: Plan, judge_rounds: int = 1) -> int:
    """Voice lines + pictures (keyframes or footage) + judge rounds + segments + the outputs step."""
    lines = sum(1 for s in plan.shots if s.dialogue)
    return lines + 2 * len(plan.shots) + judge_rounds + 1


def made_in_run(store: ArtifactStore, ref: ArtifactRef, since: float) -> bool:
    """True when this run rendered the artifact; False when it was reused from the store (a cache hit)."""
    return float(store.sidecar(ref).get("created", 0.0)) >= since


def report_stage(stage: str, refs: dict[int, ArtifactRef], store: ArtifactStore, since: float) -> None:
    """One INFO line per item (rendered or cache hit), and the stage's counts for /metrics."""
    logger = get_run_logger()
    made = 0
    for sid, ref in sorted(refs.items()):
        fresh = made_in_run(store, ref, since)
        made += fresh
        logger.info("%s shot %s: %s (%s)", stage, sid, "rendered" if fresh else "cache hit", ref.short)
    record_stage_outcome(stage, made, len(refs) - made, run_id=str(flow_run.id or ""))


def artifact_url(store: ArtifactStore, ref: ArtifactRef | None) -> str | None:
    """An http(s) URL a browser can open: the file server's for a local store, a signed one on S3."""
    if ref is None:
        return None
    if store.is_local:
        return file_url(ref.uri)
    try:
        return store.fs.sign(ref.uri, expiration=7 * 24 * 3600)
    except (NotImplementedError, AttributeError, ValueError):
        return None


def output_url(store: ArtifactStore, path: Path, ref: ArtifactRef | None) -> str | None:
    """The output file's own URL when the file server serves its folder, else its artifact's."""
    return file_url(path) or artifact_url(store, ref)


def ref_entry(store: ArtifactStore, ref: ArtifactRef | None) -> dict | None:
    if ref is None:
        return None
    return {**ref.model_dump(), "recipe": store.sidecar(ref).get("recipe")}


def report_to_ui(request: str, plan: Plan, manifest: dict, store: ArtifactStore, media: dict[str, Any]) -> None:
    """The run's page: summary (storyboard embedded), storyboard + keyframe images, shot table, output links.

    media: {"storyboard": ref, "cut": ref, "frames": {shot_id: ref}, "outputs": {name: Path},
    "subtitles": ref | None}."""
    sheet_url = output_url(store, media["outputs"]["storyboard"], media["storyboard"])
    short_url = output_url(store, media["outputs"]["short"], media["cut"])
    create_markdown_artifact(_summary(request, plan, manifest, sheet_url, short_url), key="short-summary",
                             description="plan, storyboard, knowledge, scores")
    if sheet_url:
        create_image_artifact(sheet_url, key="short-storyboard", description=f"storyboard: {plan.title}")
    thumbs = {sid: artifact_url(store, ref) for sid, ref in media["frames"].items()}
    for sid, url in sorted(thumbs.items()):
        if url:
            create_image_artifact(url, key=f"short-keyframe-{sid}", description=f"shot {sid}")
    create_table_artifact(_shot_rows(plan, manifest, thumbs), key="short-shots",
                          description="per shot: source, line, judge score, picture")
    for name, path in media["outputs"].items():
        url = output_url(store, path, media.get("cut") if name == "short" else None)
        if url:
            create_link_artifact(url, link_text=f"{name}: {path.name}", key=f"short-{name}",
                                 description=f"{name} ({path})")
    logger = get_run_logger()
    logger.info("outputs: %s", ", ".join(f"{k}={v}" for k, v in media["outputs"].items()))
    if short_url:
        logger.info("play the short: %s", short_url)


def _summary(request: str, plan: Plan, manifest: dict, sheet_url: str | None, short_url: str | None) -> str:
    report = manifest.get("director") or {}
    rounds = manifest["judge"]
    retrieved = report.get("retrieved") or report.get("citations") or []
    lines = [f"# {plan.title}", "", f"> {request[:300]}", "", plan.logline, "",
             f"**Duration** {manifest['duration_s']:.1f} s · **shots** {len(plan.shots)} · "
             f"**judge rounds** {len(rounds)}", ""]
    if short_url:
        lines += [f"[▶ Play the short]({short_url})", ""]
    if sheet_url:
        lines += [f"![storyboard]({sheet_url})", ""]
    lines += ["## Retrieved knowledge"]
    lines += [f"- {r.get('id', r) if isinstance(r, dict) else r}" for r in retrieved[:12]] or ["- (none)"]
    lines += ["", "## Timings (s)", *(f"- {k}: {v}" for k, v in manifest["timings_s"].items())]
    return "\n".join(lines)


def _shot_rows(plan: Plan, manifest: dict, thumbs: dict[int, str | None]) -> list[dict]:
    last = {s["shot_id"]: s for s in manifest["judge"][-1]["scores"]} if manifest["judge"] else {}
    seconds = {e["id"]: e["seconds"] for e in manifest["shots"]}
    return [{"shot": s.id, "source": s.source, "characters": ", ".join(s.characters), "camera": s.camera,
             "seconds": seconds.get(s.id), "line": s.dialogue.line if s.dialogue else "",
             "effects": ", ".join(s.effects), "score": last.get(s.id, {}).get("score"),
             "picture": thumbs.get(s.id) or ""} for s in plan.shots]


def shot_entries(plan: Plan, store: ArtifactStore, refs: dict[str, dict[int, ArtifactRef]],
                 segments: Iterable[ArtifactRef]) -> list[dict]:
    """The manifest's per-shot records. refs: {"keyframes", "footage", "voices"} by shot id."""
    rows = []
    for s, seg in zip(plan.shots, segments, strict=True):
        foot, voice = refs["footage"].get(s.id), refs["voices"].get(s.id)
        rows.append({"id": s.id, "planned_s": s.duration, "seconds": float(store.sidecar(seg)["extra"]["duration"]),
                     "keyframe": ref_entry(store, refs["keyframes"].get(s.id)),
                     "footage": store.read_json(foot) if foot else None, "footage_artifact": ref_entry(store, foot),
                     "voice": ref_entry(store, voice), "voice_timing": read_line_timing(voice) if voice else None,
                     "segment": ref_entry(store, seg)})
    return rows


def write_manifest(out: Path, manifest: dict) -> Path:
    """manifest.json next to the short (unique temp name, then rename)."""
    path = out / "manifest.json"
    tmp = path.with_name(f".manifest.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(manifest_json(manifest))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def manifest_json(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)
