"""The studio's Prometheus metrics, for the whole studio (every process, not only the one serving /metrics).

Work happens in many processes (CLI runs, workers, flow processes), so nothing is counted in memory: the metrics
are computed at scrape time from the studio's durable records under STUDIO_HOME —
- the residency record (heavy-model loads, activations, parks; each with its duration),
- `logs/stage_outcomes.jsonl` (artifacts rendered vs reused from the store, per stage, per flow run),
- `logs/llm_calls.jsonl` (LLM calls: completion tokens and seconds),
— plus live gpu-heavy slot use from the Prefect API and VRAM through NVML where present.
`/metrics` is served on loopback by the file server (file_server.py); `deployments/prometheus.yml` scrapes it.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from studio.configs.settings import get_settings


def stage_outcomes_path() -> Path:
    return get_settings().logs_dir / "stage_outcomes.jsonl"


def llm_calls_path() -> Path:
    return get_settings().logs_dir / "llm_calls.jsonl"


def _append(path: Path, row: dict[str, Any]) -> None:
    """One JSON line, appended in a single write (O_APPEND: lines from several processes never interleave)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(row) + "\n").encode())
    finally:
        os.close(fd)


def record_stage_outcome(stage: str, rendered: int, reused: int, run_id: str | None = None) -> None:
    _append(stage_outcomes_path(), {"t": time.time(), "stage": stage, "rendered": rendered, "reused": reused,
                                    "run": run_id})


def record_llm_call(model: str, completion_tokens: int, seconds: float) -> None:
    _append(llm_calls_path(), {"t": time.time(), "model": model, "tokens": completion_tokens,
                               "seconds": round(seconds, 4)})


def _rows(path: Path) -> Iterator[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line from a killed writer
                if isinstance(row, dict):
                    yield row
    except FileNotFoundError:
        return


class StudioCollector:
    """A prometheus_client collector that reads the records at each scrape."""

    def __init__(self, with_slots: bool = True):
        self.with_slots = with_slots

    def collect(self) -> Iterator[Any]:
        yield from self._residency()
        yield from self._stages()
        yield from self._llm()
        yield from self._vram()
        if self.with_slots:
            yield from self._slots()

    def _residency(self) -> Iterator[Any]:
        from studio.resources.runtime.residency import read_residency_log

        events = CounterMetricFamily("studio_model_events", "Heavy-model residency events", labels=["model", "event"])
        switch = SummaryMetricFamily("studio_model_switch_seconds", "Time to load, activate or park a heavy model",
                                     labels=["model", "event"])
        resident = GaugeMetricFamily("studio_model_resident", "1 when the model's last event leaves it resident",
                                     labels=["model", "state"])
        counts: dict[tuple[str, str], int] = defaultdict(int)
        sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
        last: dict[tuple[int, str], str] = {}
        for r in read_residency_log():
            key = (r.get("model", "?"), r.get("event", "?"))
            counts[key] += 1
            if isinstance(r.get("seconds"), (int, float)):
                sums[key][0] += 1
                sums[key][1] += float(r["seconds"])
            last[(r.get("pid", 0), key[0])] = key[1]
        for (model, event), n in counts.items():
            events.add_metric([model, event], n)
        for (model, event), (n, total) in sums.items():
            switch.add_metric([model, event], n, total)
        states: dict[tuple[str, str], int] = defaultdict(int)
        for (_pid, model), event in last.items():
            if event in ("load", "activate", "park"):
                states[(model, "parked" if event == "park" else "active")] += 1
        for (model, state), n in states.items():
            resident.add_metric([model, state], n)
        yield from (events, switch, resident)

    def _stages(self) -> Iterator[Any]:
        fam = CounterMetricFamily("studio_artifacts", "Artifacts per stage: rendered in a run, or reused from the "
                                  "store (cache hit)", labels=["stage", "outcome"])
        totals: dict[tuple[str, str], int] = defaultdict(int)
        for r in _rows(stage_outcomes_path()):
            totals[(str(r.get("stage")), "rendered")] += int(r.get("rendered", 0))
            totals[(str(r.get("stage")), "reused")] += int(r.get("reused", 0))
        for (stage, outcome), n in sorted(totals.items()):
            fam.add_metric([stage, outcome], n)
        yield fam

    def _llm(self) -> Iterator[Any]:
        tokens = CounterMetricFamily("studio_llm_completion_tokens", "LLM completion tokens", labels=["model"])
        seconds = CounterMetricFamily("studio_llm_seconds", "Wall time of LLM calls", labels=["model"])
        rate = GaugeMetricFamily("studio_llm_tokens_per_second", "Completion tokens per second of the last "
                                 "call", labels=["model"])
        tok: dict[str, int] = defaultdict(int)
        sec: dict[str, float] = defaultdict(float)
        last: dict[str, float] = {}
        for r in _rows(llm_calls_path()):
            m = str(r.get("model"))
            tok[m] += int(r.get("tokens", 0))
            sec[m] += float(r.get("seconds", 0.0))
            if r.get("seconds"):
                last[m] = int(r.get("tokens", 0)) / float(r["seconds"])
        for m in tok:
            tokens.add_metric([m], tok[m])
            seconds.add_metric([m], sec[m])
        for m, v in last.items():
            rate.add_metric([m], v)
        yield from (tokens, seconds, rate)

    def _vram(self) -> Iterator[Any]:
        from studio.resources.runtime.vram import vram_report

        used = GaugeMetricFamily("studio_vram_used_bytes", "GPU memory in use (NVML)", labels=["gpu", "name"])
        total = GaugeMetricFamily("studio_vram_total_bytes", "GPU memory (NVML)", labels=["gpu", "name"])
        for g in vram_report():
            used.add_metric([str(g["index"]), g["name"]], g["used_gb"] * 2**30)
            total.add_metric([str(g["index"]), g["name"]], g["total_gb"] * 2**30)
        yield from (used, total)

    def _slots(self) -> Iterator[Any]:
        from studio.resources.runtime.gpu_slots import slot_report

        up = GaugeMetricFamily("studio_prefect_up", "1 when the Prefect API answers")
        try:
            report = slot_report()
        except Exception:  # noqa: BLE001 - a scrape must not fail because the API is unwell
            report = {"error": "unreadable"}
        up.add_metric([], 0 if "error" in report and report["error"] == "server down" else 1)
        yield up
        if "error" in report:
            return
        active = GaugeMetricFamily("studio_gpu_heavy_slots_active", "gpu-heavy slots held now")
        active.add_metric([], report.get("active_slots", 0))
        limit = GaugeMetricFamily("studio_gpu_heavy_slots_limit", "gpu-heavy slot limit")
        limit.add_metric([], report.get("limit", 0))
        waiting = GaugeMetricFamily("studio_gpu_heavy_waiting_tasks", "Task runs waiting for a gpu-heavy slot")
        waiting.add_metric([], _waiting_task_runs())
        yield from (active, limit, waiting)


def _waiting_task_runs() -> int:
    """Task runs whose state is AwaitingConcurrencySlot (Prefect's name for a run queued behind a tag limit)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterState, TaskRunFilterStateName

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(
            state=TaskRunFilterState(name=TaskRunFilterStateName(any_=["AwaitingConcurrencySlot"]))), limit=200)
    return len(runs)


def render_metrics(with_slots: bool = True) -> tuple[bytes, str]:
    """The exposition text and its content type (a fresh registry per scrape: no state between scrapes)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StudioCollector(with_slots))
    return generate_latest(registry), CONTENT_TYPE_LATEST
