"""The `analyze-film` flow on the test session's Prefect server (chunks on a 2-process pool), its artifacts
(JSON in the store, --out folder, Prefect table), the `film_scenes` upsert, the cached rerun, and the CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from support.env import studio_env
from support.video_clips import cut_video

CUTS = [30, 72, 96, 120]  # 24 fps, 3 s chunks: 72 sits exactly on the border of chunks 0 and 1


class HashEmbedder:
    """A deterministic bag-of-words embedder (the real MiniLM one is tested with the knowledge base)."""

    model_id = "hash-bow@1"
    heavy = False
    dim = 64

    def embed(self, texts):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace(",", " ").replace(";", " ").split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.fixture
def knowledge_base(tmp_path, monkeypatch):
    from studio.resources.knowledge import store as knowledge

    kb = knowledge.KnowledgeBase(str(tmp_path / "kb.lance"), HashEmbedder())
    monkeypatch.setattr(knowledge.KnowledgeBase, "from_settings", classmethod(lambda cls, *a, **k: kb))
    return kb


@pytest.mark.slow
def test_analyze_film_flow_chunks_caches_and_indexes(prefect_server, isolated_store, knowledge_base, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.task_runners import ProcessPoolTaskRunner

    from studio.flows.analyze_film import analyze_film

    video = cut_video(tmp_path / "film.mp4", CUTS, 144)
    flow = analyze_film.with_options(task_runner=ProcessPoolTaskRunner(max_workers=2))
    out = tmp_path / "out"
    result = flow(str(video), str(out), None, 3.0, True)
    assert result["scenes"] == 5 and result["chunks"] == 2

    analysis = json.loads((out / "analysis.json").read_text())
    assert [s["scene"]["start_frame"] for s in analysis["shots"]] == [0, *CUTS]
    assert len(list((out / "thumbnails").glob("scene-*.jpg"))) == 5
    assert all(s["camera"]["motion"] == "static" for s in analysis["shots"])

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["film-analysis-film"])))
    assert arts and arts[0].type == "table"
    table = arts[0].data if isinstance(arts[0].data, list) else json.loads(arts[0].data)
    assert [row["start"] for row in table] == [0.0, *(round(c / 24, 2) for c in CUTS)]

    assert knowledge_base.count("film_scenes") == 5
    hits = knowledge_base.search("wide shot static camera", "film_scenes", k=5)
    meta = hits[0].metadata
    assert meta["video"] == str(video.resolve()) and meta["kind"] == "film_scene"
    assert {"start", "end", "shot_size", "camera_move", "thumbnail"} <= set(meta)
    assert sorted((h.metadata["start"], h.metadata["end"]) for h in hits) == \
        [(a / 24, b / 24) for a, b in zip([0, *CUTS], [*CUTS, 144], strict=True)]

    # Rerun: every chunk and batch comes from the store (sidecars untouched), same analysis, no re-embedding.
    sidecars = {p: p.stat().st_mtime_ns for stage in ("scene_chunk", "shot_analysis")
                for p in isolated_store.glob(f"{stage}/*/*.json") if "-" not in p.stem}  # not the JSON data
    assert len(sidecars) == 2 + 2  # 2 chunks; scenes of 1.25+1.75 and 1+1+1 s: two batches of ≤ 3 s
    again = flow(str(video), None, None, 3.0, True)
    assert again["analysis"]["sha256"] == result["analysis"]["sha256"]
    assert {p: p.stat().st_mtime_ns for p in sidecars} == sidecars
    assert again["knowledge"]["embedded"] == 0 and again["knowledge"]["unchanged"] == 5


def test_cli_analyze_local_and_bad_input(tmp_path):
    from typer.testing import CliRunner

    from studio.cli import app

    video = cut_video(tmp_path / "film.mp4", [20], 40)
    ok = CliRunner().invoke(app, ["analyze", str(video), "--local", "--out", str(tmp_path / "out")])
    assert ok.exit_code == 0, ok.output
    assert len(ok.stdout.strip().splitlines()) == 2 and "static" in ok.stdout
    assert len(json.loads((tmp_path / "out" / "analysis.json").read_text())["shots"]) == 2
    # the real entry point: a user error is one line on stderr and exit code 2
    bad = subprocess.run([sys.executable, "-m", "studio.cli", "analyze", str(tmp_path / "nope.mp4"), "--local"],
                         env=studio_env(), capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "media file not found" in bad.stderr


def test_cli_analyze_runs_the_flow_and_shows_its_link(prefect_server, tmp_path):
    """`studio analyze` without --local: the analyze-film flow on the studio's server; stderr names the run."""
    video = cut_video(tmp_path / "film.mp4", [20], 40)
    r = subprocess.run([sys.executable, "-m", "studio.cli", "analyze", str(video), "--no-index", "--out",
                        str(tmp_path / "out")], env=studio_env(COLUMNS="80"), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(r.stdout.strip().splitlines()) == 2  # one row per shot
    link = next(ln for ln in r.stderr.splitlines() if ln.startswith("run "))
    assert "/runs/flow-run/" in link and len(link.split("/runs/flow-run/")[1]) == 36  # one unwrapped line
    assert len(json.loads((tmp_path / "out" / "analysis.json").read_text())["shots"]) == 2
