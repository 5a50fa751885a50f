"""Voice benchmarks: TTS real-time factors and dataset-builder throughput (issue 5).

    .venv/bin/python bench/bench_voice.py [--repeats 3] [--dataset-minutes 10] [--json out.json]

- RTF = wall seconds / seconds of audio produced (lower is better; goal for piper ≤ 0.15). On a shared,
  oversubscribed machine wall time is inflated; `model_cpu_s_per_audio_s` (process CPU time, one thread) is
  the load-independent figure.
  `model` times the backend call alone (warm); `pipeline` times the whole line (plan + synthesis + pitch/
  contour + trim + resample + loudness + quality check + WAV/timing write).
- Dataset throughput: a synthetic film track (piper speech at known offsets in noise, AAC-encoded) through
  plan → chunks → export without Prefect (the flow adds ≈0.1–0.3 s of orchestration per chunk).
Medians over repeats. Runs in a private STUDIO_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="bench-voice-"))

SENTENCES = [
    "Silenzio, Bruno!",
    "I have never seen the sea this close before, it is enormous.",
    "Tomorrow we will ride the Vespa all the way down the hill to the harbour, and nobody can stop us.",
    "When I was little my grandmother told me never to go near the surface of the water, but the surface is "
    "where everything interesting happens.",
    "Acorns! Acorns everywhere!",
]


def bench_backend(name: str, repeats: int) -> dict:
    from studio.resources.voice.base import SynthesisRequest
    from studio.resources.voice.line import plan_line, synthesize_line_file
    from studio.resources.voice.select import _entry_for_backend, get_backend

    be = get_backend(*_entry_for_backend(name))
    be.check_available()
    spec = plan_line("luca", SENTENCES[1], "neutral", 0.0, backend=name)
    req = SynthesisRequest(text=SENTENCES[0], language="en", voice=spec.voice, voice_id="luca", emotion="neutral",
                           prosody=spec.prosody)
    be.synthesize(req)  # warm-up: model load, first-call imports
    model_rtf, model_cpu, pipe_rtf, emo_rtf, audio_s = [], [], [], [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        synthesize_line_file("luca", SENTENCES[0], "happy", 0.5, Path(tmp) / "w.wav", backend=name)  # warm post
        for _ in range(repeats):
            for text in SENTENCES:
                req.text = text
                t0, c0 = time.perf_counter(), time.process_time()
                y = be.synthesize(req)
                dt, dc = time.perf_counter() - t0, time.process_time() - c0
                model_rtf.append(dt / (len(y) / be.sample_rate))
                model_cpu.append(dc / (len(y) / be.sample_rate))
                audio_s += len(y) / be.sample_rate
                for emotion, intensity, bucket in (("neutral", 0.0, pipe_rtf), ("excited", 0.8, emo_rtf)):
                    t0 = time.perf_counter()
                    r = synthesize_line_file("luca", text, emotion, intensity, Path(tmp) / "l.wav", backend=name)
                    bucket.append((time.perf_counter() - t0) / r.duration_s)
    return {"backend": name, "model_id": be.model_id, "lines": len(model_rtf), "audio_s": round(audio_s, 1),
            "model_rtf_median": round(statistics.median(model_rtf), 4),
            # CPU seconds per audio second: what the wall RTF is on an idle core (threads=1), whatever the load
            "model_cpu_s_per_audio_s": round(statistics.median(model_cpu), 4),
            "pipeline_rtf_neutral_median": round(statistics.median(pipe_rtf), 4),
            "pipeline_rtf_emotion_median": round(statistics.median(emo_rtf), 4)}


def bench_dataset(minutes: float, chunk_s: float) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_voice_support import TRACK_LINES, make_track

    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.resources.voice.dataset import export_dataset, make_chunk, plan_dataset

    span = max(o for o, *_ in TRACK_LINES) + 20.0
    with tempfile.TemporaryDirectory() as tmp:
        track = make_track(Path(tmp) / "track", repeat=max(1, round(minutes * 60 / span)))
        store = ArtifactStore(str(Path(tmp) / "store"))
        t0 = time.perf_counter()
        recipes = plan_dataset(track["audio"], "luca", "en", track["srt"], chunk_s=chunk_s)
        t_plan = time.perf_counter() - t0
        refs = [make_chunk(r, store) for r in recipes]
        t_chunks = time.perf_counter() - t0 - t_plan
        report = export_dataset(refs, Path(tmp) / "out", "luca", "en", store=store)
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        export_dataset([make_chunk(r, store) for r in plan_dataset(track["audio"], "luca", "en", track["srt"],
                                                                   chunk_s=chunk_s)], Path(tmp) / "out2", "luca",
                       "en", store=store)
        rerun = time.perf_counter() - t1
    src_min = track["duration"] / 60
    return {"source_minutes": round(src_min, 2), "chunk_s": chunk_s, "chunks": len(recipes),
            "clips": report["clips"], "rejected": report["rejected"], "wall_s": round(wall, 2),
            "plan_s": round(t_plan, 2), "chunks_s": round(t_chunks, 2),
            "minutes_per_second": round(src_min / wall, 3), "rerun_all_cached_s": round(rerun, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dataset-minutes", type=float, default=10.0)
    ap.add_argument("--backends", default="piper,hibari,espeak")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = {"cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg(), "tts": [], "dataset": []}
    for name in args.backends.split(","):
        try:
            results["tts"].append(bench_backend(name, args.repeats))
        except Exception as e:  # noqa: BLE001 - report an unavailable optional backend, go on
            results["tts"].append({"backend": name, "error": str(e)[:200]})
        print(json.dumps(results["tts"][-1]), flush=True)
    for chunk_s in (300.0, 60.0):
        results["dataset"].append(bench_dataset(args.dataset_minutes, chunk_s))
        print(json.dumps(results["dataset"][-1]), flush=True)
    results["load_avg_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
