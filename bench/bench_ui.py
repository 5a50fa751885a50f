"""The UI path's cost: a preview short with INFO logs to the API, image artifacts and the file server ON vs
OFF (PREFECT_LOGGING_LEVEL=WARNING, STUDIO_FILES__ENABLED=false), alternating, each from an empty store; and the
latency of a /metrics scrape (with the live gpu-heavy slot read) after those runs.

    .venv/bin/python bench/bench_ui.py [--repeats 3] [--scrapes 30]

Starts its own Prefect server (temp STUDIO_HOME on 127.0.0.1). Goal: ON costs ≤ 3 % of the short's wall time.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HOME = Path(tempfile.mkdtemp(prefix="studio-bench-ui-"))
os.environ["STUDIO_HOME"] = str(HOME)
for var in ("STUDIO_PREFECT__PORT", "STUDIO_LLM__PORT", "STUDIO_FILES__PORT"):
    with socket.socket() as _s:
        _s.bind(("127.0.0.1", 0))
        os.environ[var] = str(_s.getsockname()[1])

from studio.resources.runtime.prefect_server import configure_prefect_env, start_server, stop_server  # noqa: E402

configure_prefect_env()
STUDIO = [sys.executable, "-m", "studio.cli"]
PLAN = Path(__file__).resolve().parents[1] / "tests" / "data" / "plan_bunny.json"


def make(tag: str, ui_on: bool) -> float:
    env = {**os.environ, "COLUMNS": "200", "STUDIO_STORE__URI": str(HOME / f"store-{tag}")}
    if ui_on:
        env.update(PREFECT_LOGGING_LEVEL="INFO", STUDIO_FILES__ENABLED="true")
    else:
        env.update(PREFECT_LOGGING_LEVEL="WARNING", STUDIO_FILES__ENABLED="false")
    t0 = time.perf_counter()
    subprocess.run([*STUDIO, "make", "a butterfly short", "--plan", str(PLAN), "--out", str(HOME / f"out-{tag}"),
                    "--no-start-server"], check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def scrape_ms(url: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as r:
            r.read()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scrapes", type=int, default=30)
    args = ap.parse_args()
    from studio.resources.runtime.file_server import start_file_server, stop_file_server

    start_server()
    try:
        files = start_file_server()
        make("warm", ui_on=True)  # first run pays model downloads-from-disk, knowledge index, film index
        on, off = [], []
        for i in range(args.repeats):  # alternate, so drift on a shared machine hits both sides
            off.append(make(f"off{i}", ui_on=False))
            on.append(make(f"on{i}", ui_on=True))
        scrapes = scrape_ms(f"{files}/metrics", args.scrapes)
        stop_file_server()
    finally:
        stop_server()
    m_on, m_off = statistics.median(on), statistics.median(off)
    print(f"preview short, UI path OFF: median {m_off:.1f}s  runs {[round(x, 1) for x in off]}")
    print(f"preview short, UI path ON:  median {m_on:.1f}s  runs {[round(x, 1) for x in on]}")
    print(f"extra wall time ON vs OFF: {100 * (m_on / m_off - 1):+.1f} % (goal <= 3 %)")
    q = statistics.quantiles(scrapes, n=20)
    print(f"/metrics scrape: median {statistics.median(scrapes):.1f} ms, p95 {q[18]:.1f} ms over {len(scrapes)}")


if __name__ == "__main__":
    main()
