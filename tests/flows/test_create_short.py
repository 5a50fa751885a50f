"""The creative studio end to end (preview profile, real Prefect server on loopback, real models):
outputs, kill -9 at three stages + rerun with identical bytes, one-line edits, two runs at once, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.env import free_port

from studio.resources.runtime.residency import overlapping_actives, read_residency_log

PLAN = Path(__file__).resolve().parents[1] / "data" / "plan_bunny.json"
STUDIO = [sys.executable, "-m", "studio.cli"]


def _env(store: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "STUDIO_STORE__URI": str(store), "COLUMNS": "200", **extra}


def _make(store: Path, out: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([*STUDIO, "make", "a butterfly short", "--out", str(out), "--no-start-server", *args],
                            env=env or _env(store), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    return out


def _commits(store: Path) -> dict[str, tuple[int, float]]:
    """Every committed artifact: sidecar path → (pid, created). A re-execution rewrites its sidecar."""
    rows = {}
    for side in store.rglob("*.json"):
        try:
            meta = json.loads(side.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(meta, dict) and "recipe" in meta and "created" in meta:
            rows[str(side)] = (meta["pid"], meta["created"], meta["stage"])
    return rows


def _ffprobe(path: Path) -> dict:
    from studio.resources.media.ffmpeg import ffprobe_path

    r = subprocess.run([ffprobe_path(), "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def finished_short(prefect_server, tmp_path_factory):
    """One uninterrupted short from the fixed plan (store A)."""
    root = tmp_path_factory.mktemp("short-a")
    (root / "make.out").write_text(_finish(_make(root / "store", root / "out", "--plan", str(PLAN))))
    return root


def test_make_prints_the_runs_own_page_and_progress_ends_at_100(finished_short):
    import re

    printed = (finished_short / "make.out").read_text()
    m = re.search(r"run\s+(http://127\.0\.0\.1:\d+)/runs/flow-run/([0-9a-f-]{36})", printed)
    assert m, printed
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(m.group(2))
    assert run.state.is_completed() and run.parameters["out_dir"] == str(finished_short / "out")
    last = json.loads((finished_short / "out" / "progress.jsonl").read_text().splitlines()[-1])
    assert last["stage"] == "done" and last["percent"] == 100.0


def test_outputs_of_a_short(finished_short):
    from studio.agents.schema import validate_plan

    out = finished_short / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    plan = validate_plan(manifest["plan"])
    probe = _ffprobe(out / "short.mp4")
    kinds = {s["codec_type"]: s for s in probe["streams"]}
    assert kinds["video"]["codec_name"] == "h264" and kinds["audio"]["codec_name"] == "aac"
    duration = float(probe["format"]["duration"])
    # The video is the shots back to back. A shot lasts its planned duration, longer only when its voice line
    # needs the time or a time effect (freeze frame, slow motion) adds some.
    from studio.resources.video.config import video_config
    from studio.resources.video.effects.library import resolve_effects

    cfg = video_config()  # the final look frames the shots with a title card and an end card
    cards = cfg.animation.title_card_s + cfg.animation.end_card_s if cfg.look == "final" else 0.0
    assert abs(duration - cards - sum(e["seconds"] for e in manifest["shots"])) < 0.15
    for shot, entry in zip(plan.shots, manifest["shots"], strict=True):
        assert entry["seconds"] >= shot.duration - 0.05, entry
        timed = any(e.kind == "time" for e in resolve_effects(list(shot.effects)))
        if not shot.dialogue and not timed:
            assert abs(entry["seconds"] - shot.duration) < 0.1, entry
        if shot.dialogue:
            voice_s = entry["voice_timing"]["duration_s"]
            assert entry["seconds"] >= voice_s + 0.5, entry
    assert abs(duration - manifest["duration_s"]) < 0.1
    srt = (out / "subtitles.srt").read_text()
    cues = [b for b in srt.strip().split("\n\n") if b.strip()]
    lines = [s.dialogue.line for s in plan.shots if s.dialogue]
    # one cue per spoken sentence (a pause inside one, "Almost... got it!", stays one), in order, together the
    # whole of every line
    sentences = [x for e in manifest["shots"] if e["voice_timing"] for x in e["voice_timing"]["sentences"]
                 if not x["text"].strip()[:1].islower()]
    assert len(cues) == len(sentences) >= len(lines)
    assert " ".join(" ".join(c.split("\n")[2:]) for c in cues).split() == " ".join(lines).split()
    from PIL import Image

    sheet = Image.open(out / "storyboard.png")
    assert sheet.width > 800
    sheet_meta = json.loads(Path(manifest["storyboard"]["uri"]).with_name(
        manifest["storyboard"]["key"] + ".json").read_text())
    assert len(sheet_meta["extra"]["tiles"]) == len(plan.shots)
    if cfg.look == "final":  # each tile is a frame of the shot's segment: the sheet shows what the short shows
        stills = [json.loads(p.read_text()) for p in Path(manifest["storyboard"]["uri"]).parents[2].glob(
            "segment_still/*/*.json")]
        by_sha = {m["sha256"]: m["recipe"]["inputs"] for m in stills}
        assert [by_sha[t][0] for t in sheet_meta["recipe"]["inputs"]] == [e["segment"]["sha256"]
                                                                          for e in manifest["shots"]]
    assert set(manifest["timings_s"]) >= {"plan", "voices", "visuals", "segments+assembly"}


def _wait_for_stage(progress: Path, stage: str, proc: subprocess.Popen, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"make ended before stage {stage}: {proc.stdout.read()[-3000:]}"
        if progress.exists() and any(json.loads(x)["stage"] == stage for x in progress.read_text().splitlines()):
            return
        time.sleep(0.1)
    raise AssertionError(f"stage {stage} never reached")


def test_kill_9_at_three_stages_resumes_without_redoing_work(finished_short, tmp_path):
    store, out = tmp_path / "store", tmp_path / "out"
    for stage in ("voices", "keyframes", "segments"):
        before = _commits(store)
        proc = _make(store, out, "--plan", str(PLAN))
        _wait_for_stage(out / "progress.jsonl", stage, proc)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        after = _commits(store)
        redone = [k for k, v in before.items() if after.get(k) != v]
        assert redone == [], f"killed run at {stage} re-executed finished tasks: {redone}"
    before = _commits(store)
    _finish(_make(store, out, "--plan", str(PLAN)))
    after = _commits(store)
    assert [k for k, v in before.items() if after.get(k) != v] == []
    assert len(after) > len(before)  # the rest was done by the final run
    # Same seed, same plan: the interrupted short is byte-identical to the uninterrupted one.
    assert (out / "short.mp4").read_bytes() == (finished_short / "out" / "short.mp4").read_bytes()
    assert (out / "subtitles.srt").read_text() == (finished_short / "out" / "subtitles.srt").read_text()


def test_editing_one_line_rerenders_only_that_shot(finished_short, tmp_path):
    # The finished short's own store: a copied store would not do, since a sidecar naming a data file outside
    # its store is refused (so a copy re-renders everything).
    store = finished_short / "store"
    manifest = json.loads((finished_short / "out" / "manifest.json").read_text())
    manifest["plan"]["shots"][2]["dialogue"]["line"] = "Hey, fluffy! Lovely ears you have!"
    edited = tmp_path / "manifest.json"
    edited.write_text(json.dumps(manifest))
    before = _commits(store)
    _finish(_make(store, tmp_path / "out", "--plan", str(edited)))
    after = _commits(store)
    new = [v[2] for k, v in after.items() if before.get(k) != v]
    counts = {stage: new.count(stage) for stage in set(new)}
    shots_redone = counts.get("segment", 0) + counts.get("animated_segment", 0)  # still or animated
    assert counts.get("voice_line") == 1 and shots_redone == 1 and counts.get("cut") == 1, counts
    assert "card_segment" not in counts, counts
    assert "keyframe" not in counts and "footage_pick" not in counts, counts
    assert "Lovely ears" in (tmp_path / "out" / "subtitles.srt").read_text()


def test_two_makes_at_once_share_the_device(prefect_server, tmp_path):
    n0 = len(read_residency_log())
    procs = [_make(tmp_path / "store", tmp_path / f"out{i}", "--plan", str(PLAN), "--seed", str(100 + i))
             for i in range(2)]
    for p in procs:
        _finish(p)
    for i in range(2):
        assert (tmp_path / f"out{i}" / "short.mp4").stat().st_size > 10_000
    rows = read_residency_log()[n0:]
    assert overlapping_actives(rows) == []


@pytest.mark.parametrize("args,expect", [
    (["   "], "request is empty"),
    (["x" * 100_001], "characters; keep it under"),
    (["a short", "--shots", "0"], "--shots 0 is out of range"),
    (["a short", "--shots", "500"], "--shots 500 is out of range"),
    (["a short", "--plan", "/nonexistent/manifest.json"], "cannot read --plan"),
    (["make a funny short of Shrek meeting Big Buck Bunny"], "uses 'Shrek' as a character, but it is not in"),
])
def test_bad_input_is_refused_clearly(tmp_path, args, expect):
    out = tmp_path / "out"
    r = subprocess.run([*STUDIO, "make", *args, "--out", str(out), "--no-start-server"], capture_output=True,
                       text=True, env=_env(tmp_path / "store"), timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert expect in " ".join((r.stdout + r.stderr).split()), r.stdout + r.stderr
    assert not (tmp_path / "store").exists()


def test_broken_or_invalid_plan_file(tmp_path):
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('{"plan": {"shots": [')
    unknown = tmp_path / "unknown.json"
    plan = json.loads(PLAN.read_text())
    plan["shots"][0]["characters"] = ["shrek"]
    unknown.write_text(json.dumps(plan))
    for path, expect in ((bad_json, "not valid JSON"), (unknown, "shrek")):
        r = subprocess.run([*STUDIO, "make", "x", "--plan", str(path), "--no-start-server"], capture_output=True,
                           text=True, env=_env(tmp_path / "store"), timeout=120)
        assert r.returncode == 2 and expect in r.stdout + r.stderr, r.stdout + r.stderr


def test_server_down_says_how_to_start_it(tmp_path):
    port = free_port()
    env = _env(tmp_path / "store", STUDIO_HOME=str(tmp_path / "home"), STUDIO_PREFECT__PORT=str(port))
    env.pop("PREFECT_API_URL", None)
    r = subprocess.run([*STUDIO, "make", "a short", "--plan", str(PLAN), "--no-start-server"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 2 and "studio server start" in r.stdout + r.stderr, r.stdout + r.stderr
    assert not (tmp_path / "store").exists()
