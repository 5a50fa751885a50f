"""Voice dataset builder on a synthetic film track: piper speech at known offsets in noise, an SRT with
speaker labels, encoded to AAC (.m4a) so the ffmpeg path is used. Then kill -9 mid-build and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from support.voice_setup import fresh_settings, make_track  # noqa: F401

from studio.configs.settings import get_settings

TOL = 0.100  # seconds


@pytest.fixture(scope="module")
def track(tmp_path_factory):
    return make_track(tmp_path_factory.mktemp("track"))


def _near(a: float, b: float) -> bool:
    return abs(a - b) <= TOL


def test_segments_texts_and_list_format(track, tmp_path, isolated_store):
    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.resources.voice.dataset import export_dataset, make_chunk, plan_dataset

    store = ArtifactStore.from_settings()
    recipes = plan_dataset(track["audio"], "Luca", "en", track["srt"], chunk_s=20)
    assert len(recipes) == 4  # 70 s in 20 s chunks
    refs = [make_chunk(r, store) for r in recipes]
    report = export_dataset(refs, tmp_path / "ds", "Luca", "en", store=store)
    clips = report["clip_list"]
    regions = track["regions"]

    # single utterances of Luca: one clip each, boundaries within 100 ms, the subtitle's text exactly
    for start, end, _label, text, _subtitled in regions[:2] + regions[4:6]:
        match = [c for c in clips if _near(c["start"], start)]
        assert len(match) == 1, f"no clip starts near {start:.2f} s ({text[:30]}): {clips}"
        assert _near(match[0]["end"], end) and match[0]["text"] == text
    # the continuous 12.7 s stretch is split at a breath into clips of at most 10 s; texts follow the split
    long_parts = regions[7:]
    long_clips = [c for c in clips if c["start"] >= long_parts[0][0] - TOL]
    assert len(long_clips) == 2 and all(3.0 <= c["duration_s"] <= 10.0 for c in long_clips)
    assert _near(long_clips[0]["start"], long_parts[0][0]) and _near(long_clips[-1]["end"], long_parts[-1][1])
    cut = long_clips[0]["end"]
    assert any(_near(cut, e) for _, e, *_ in long_parts[:-1]), "the split is at a pause between sentences"
    assert " ".join(c["text"] for c in long_clips) == " ".join(p[3] for p in long_parts)
    # rejected, with reasons
    def reason_at(t: float) -> str:
        (r,) = [r for r in report["rejected_clips"] if _near(r["start"], t)]
        return r["reason"]

    assert reason_at(regions[2][0]).startswith("too short") and reason_at(regions[3][0]) == "other speaker (frank)"
    assert reason_at(regions[6][0]) == "no subtitle over this speech"
    assert report["clips"] == 6 and report["rejected"] == 3
    assert report["rejected_by_reason"] == {"too short": 1, "other speaker": 1, "no subtitle over this speech": 1}
    assert report["minutes"] == pytest.approx(sum(c["duration_s"] for c in clips) / 60, abs=1e-3)

    # the GPT-SoVITS list: path|speaker|language|text, one line per clip, files exist at 32 kHz mono
    lines = Path(report["list"]).read_text(encoding="utf-8").splitlines()
    assert Path(report["list"]).name == "Luca.list" and len(lines) == 6
    for line, clip in zip(lines, clips, strict=True):
        path, speaker, lang, text = line.split("|")
        assert (path, speaker, lang, text) == (clip["path"], "Luca", "en", clip["text"])
        info = sf.info(path)
        assert info.samplerate == 32000 and info.channels == 1
        assert info.duration == pytest.approx(clip["duration_s"] + 0.16, abs=0.03)  # + 2 x 80 ms pad
    assert json.loads((tmp_path / "ds" / "report.json").read_text())["clips"] == 6
    assert "other speaker" in (tmp_path / "ds" / "report.md").read_text()


def test_bad_inputs_are_refused_clearly(track, tmp_path, isolated_store):
    from studio.resources.media.audio_io import CorruptAudioError
    from studio.resources.voice.dataset import DatasetError, plan_dataset

    bad = tmp_path / "corrupt.mp3"
    bad.write_bytes(b"ID3" + os.urandom(2000))
    with pytest.raises(CorruptAudioError, match="corrupt.mp3"):
        plan_dataset(bad, "luca", "en")
    with pytest.raises(DatasetError, match="audio file not found"):
        plan_dataset(tmp_path / "missing.wav", "luca", "en")
    with pytest.raises(DatasetError, match="language 'xx' is not supported"):
        plan_dataset(track["audio"], "luca", "xx")
    with pytest.raises(DatasetError, match="speaker label is required"):
        plan_dataset(track["audio"], " ", "en")
    srt = tmp_path / "bad.srt"
    srt.write_text("1\n00:00:01,000 -> nonsense\nhello\n")
    with pytest.raises(DatasetError, match="no SubRip cues"):
        plan_dataset(track["audio"], "luca", "en", srt)


def _chunk_sidecars(store: Path) -> dict[str, dict]:
    out = {}
    for p in (store / "voice_dataset_chunk").glob("*/*.json"):
        if len(p.stem) == 64:  # sidecars are <key>.json; data files carry a hash suffix
            try:
                out[p.stem] = json.loads(p.read_text())
            except ValueError:
                pass
    return out


def test_kill_9_mid_build_then_rerun_reuses_finished_chunks(track, tmp_path, isolated_store, prefect_server):
    """A flow process is killed with SIGKILL after a few chunks; the rerun takes those chunks from the store
    (their artifacts still carry the killed process's pid) and only builds the rest."""
    from studio.flows.build_voice_dataset import build_voice_dataset
    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.resources.voice.dataset import export_dataset, make_chunk, plan_dataset

    long = tmp_path / "long.flac"
    subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", "1", "-i", str(track["audio"]), str(long)], check=True)
    out = tmp_path / "ds"
    code = ("from studio.flows.build_voice_dataset import build_voice_dataset as b;"
            f"b({str(long)!r}, 'luca', {str(out)!r}, None, 'en', 20.0)")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 150
    while len(_chunk_sidecars(isolated_store)) < 2:
        assert proc.poll() is None, f"the build exited early: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "no chunk finished in time"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    finished = _chunk_sidecars(isolated_store)
    total = len(plan_dataset(long, "luca", "en", chunk_s=20.0))  # ≈140 s in 20 s chunks
    assert total >= 7
    assert 2 <= len(finished) < total, "the kill must land mid-build"
    assert all(meta["pid"] == proc.pid for meta in finished.values())
    assert not (out / "luca.list").exists()

    get_settings.cache_clear()
    report = build_voice_dataset(str(long), "luca", str(out), None, "en", 20.0)
    assert report["chunks"] == total and report["chunks_reused"] == len(finished)
    after = _chunk_sidecars(isolated_store)
    assert len(after) == total
    for key, meta in finished.items():  # untouched: same writer, same time
        assert after[key]["pid"] == proc.pid and after[key]["created"] == meta["created"]
    assert sum(1 for m in after.values() if m["pid"] == os.getpid()) == total - len(finished)

    # same clips as one uninterrupted single-chunk pass over the base track, twice over
    store = ArtifactStore(str(tmp_path / "other-store"))
    base = export_dataset([make_chunk(r, store) for r in plan_dataset(track["audio"], "luca", "en", chunk_s=1000)],
                          tmp_path / "base", "luca", "en", store=store)
    assert report["clips"] == 2 * base["clips"] and report["without_text"] == report["clips"]
    assert len((out / "luca.list").read_text().splitlines()) == report["clips"]
