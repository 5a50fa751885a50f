"""Creative-studio benchmark: a 6-shot preview short end to end.

    .venv/bin/python bench/bench_short.py [--request "..."] [--shots 6]

Starts its own Prefect server (temp STUDIO_HOME on 127.0.0.1). Measures: first run (with the manifest's
per-stage breakdown), a cached rerun, a one-line edit through --plan (ratio to the full run), and model
switches per job in the flow's stage order vs a naive shot-by-shot order of the same plan.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOME = Path(tempfile.mkdtemp(prefix="studio-bench-short-"))
os.environ["STUDIO_HOME"] = str(HOME)
with socket.socket() as _s:
    _s.bind(("127.0.0.1", 0))
    os.environ["STUDIO_PREFECT__PORT"] = str(_s.getsockname()[1])
with socket.socket() as _s:
    _s.bind(("127.0.0.1", 0))
    os.environ["STUDIO_LLM__PORT"] = str(_s.getsockname()[1])

from studio.resources.runtime.prefect_server import configure_prefect_env, start_server, stop_server  # noqa: E402

configure_prefect_env()
STUDIO = [sys.executable, "-m", "studio.cli"]


def make(request: str, out: Path, *extra: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([*STUDIO, "make", request, "--out", str(out), "--no-start-server", *extra], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "200"})
    return time.perf_counter() - t0


def switches(sequence: list[str]) -> int:
    """How many times the active model changes (the first load counts as one)."""
    return sum(1 for i, m in enumerate(sequence) if i == 0 or m != sequence[i - 1])


def model_sequences(plan: dict) -> tuple[list[str], list[str]]:
    """The gpu profile's heavy-model uses for this plan: stage order (ours) vs shot by shot (naive)."""
    staged, naive = [], []
    uses = []
    for shot in plan["shots"]:
        per_shot = []
        if shot["source"] != "footage":
            per_shot.append("sdxl")
        if shot.get("dialogue"):
            per_shot.append("gpt-sovits")
        per_shot.append("vlm-judge")
        uses.append(per_shot)
        naive += per_shot
    for stage in ("gpt-sovits", "sdxl", "vlm-judge"):  # the flow's order: voices, visuals, judge
        staged += [m for per_shot in uses for m in per_shot if m == stage]
    return ["llm", *staged], ["llm", *naive]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--request", default="make a funny short of Big Buck Bunny seeing a butterfly for the first time")
    ap.add_argument("--shots", type=int, default=6)
    args = ap.parse_args()
    start_server()
    try:
        out = HOME / "short"
        first = make(args.request, out, "--shots", str(args.shots))
        manifest = json.loads((out / "manifest.json").read_text())
        cached = make(args.request, out, "--shots", str(args.shots))
        edited = json.loads(json.dumps(manifest))
        shot = next((s for s in edited["plan"]["shots"] if s.get("dialogue")), None)
        if shot is None:
            shot = edited["plan"]["shots"][0]
            shot["dialogue"] = {"character": shot["characters"][0] if shot["characters"] else "bunny",
                                "line": "Well, that was unexpected.", "emotion": "surprised", "intensity": 0.6}
        else:
            shot["dialogue"]["line"] = shot["dialogue"]["line"].rstrip(".!?") + ", really!"
        (HOME / "edited.json").write_text(json.dumps(edited))
        edit = make(args.request, HOME / "short-edit", "--plan", str(HOME / "edited.json"))
    finally:
        subprocess.run([*STUDIO, "llm", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stop_server()
    staged, naive = model_sequences(manifest["plan"])
    residency = manifest["residency"]
    print(f"request: {args.request!r}, {len(manifest['plan']['shots'])} shots, {manifest['duration_s']:.1f} s of film")
    print("| measure | value |")
    print("|---|---|")
    print(f"| first run, wall (incl. CLI start, LLM server start) | {first:.1f} s |")
    for stage, secs in manifest["timings_s"].items():
        print(f"| — {stage} | {secs:.1f} s |")
    print(f"| cached rerun, wall | {cached:.1f} s ({first / cached:.1f}× faster) |")
    print(f"| one-line edit via --plan, wall | {edit:.1f} s ({edit / first:.2f} of the full run) |")
    print(f"| model loads in the preview run's residency record | "
          f"{sum(1 for r in residency if r['event'] == 'load')} load(s), "
          f"{len({r['model'] for r in residency})} distinct model(s) |")
    print(f"| gpu-profile model switches for this plan: stage order vs shot by shot | {switches(staged)} vs "
          f"{switches(naive)} (distinct heavy models: {len(set(staged))}) |")


if __name__ == "__main__":
    main()
