"""/metrics: the studio's records become Prometheus metrics (parsed with prometheus_client's own parser), served
on loopback by the file server; the gpu-heavy slot gauges come from the real Prefect server."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from studio.configs.settings import get_settings


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_records_become_metrics(home):
    from studio.resources.runtime.metrics import record_llm_call, record_stage_outcome, render_metrics
    from studio.resources.runtime.residency import ResidencyManager

    rm = ResidencyManager(device="cpu")
    rm.record("load", "sdxl", seconds=2.5)
    rm.record("park", "sdxl", seconds=0.5)
    rm.record("activate", "sdxl", seconds=0.25)
    rm.record("load", "vlm", seconds=1.0)
    rm.record("park", "vlm", seconds=0.1)
    record_stage_outcome("keyframe", rendered=3, reused=1)
    record_stage_outcome("keyframe", rendered=0, reused=4)
    record_stage_outcome("segment", rendered=2, reused=0)
    record_llm_call("smollm2", 40, 2.0)
    record_llm_call("smollm2", 30, 1.0)
    with open(home / "logs" / "stage_outcomes.jsonl", "a") as f:
        f.write('{"stage": "keyframe", "rend')  # a torn line from a killed writer is skipped
    body, ctype = render_metrics(with_slots=False)
    assert ctype.startswith("text/plain")
    m = _samples(body.decode())
    assert m[("studio_artifacts_total", (("outcome", "rendered"), ("stage", "keyframe")))] == 3
    assert m[("studio_artifacts_total", (("outcome", "reused"), ("stage", "keyframe")))] == 5
    assert m[("studio_artifacts_total", (("outcome", "rendered"), ("stage", "segment")))] == 2
    assert m[("studio_model_events_total", (("event", "load"), ("model", "sdxl")))] == 1
    assert m[("studio_model_switch_seconds_sum", (("event", "load"), ("model", "sdxl")))] == 2.5
    assert m[("studio_model_switch_seconds_count", (("event", "park"), ("model", "sdxl")))] == 1
    # sdxl was re-activated after its park (active); vlm's last event is a park (parked)
    assert m[("studio_model_resident", (("model", "sdxl"), ("state", "active")))] == 1
    assert m[("studio_model_resident", (("model", "vlm"), ("state", "parked")))] == 1
    assert m[("studio_llm_completion_tokens_total", (("model", "smollm2"),))] == 70
    assert m[("studio_llm_tokens_per_second", (("model", "smollm2"),))] == 30.0


def test_metrics_endpoint_with_slots(prefect_server, home):
    """Served over HTTP by the file server, with the live gpu-heavy limit read from the Prefect server."""
    from support.record import serve_in_thread

    from studio.resources.runtime.metrics import record_stage_outcome

    record_stage_outcome("voice_line", rendered=1, reused=2)
    server = serve_in_thread({"store": home / "store"})
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200
            m = _samples(r.read().decode())
    finally:
        server.shutdown()
        server.server_close()
    assert m[("studio_prefect_up", ())] == 1
    assert m[("studio_gpu_heavy_slots_limit", ())] == get_settings().gpu.limit
    assert m[("studio_gpu_heavy_slots_active", ())] == 0
    assert ("studio_gpu_heavy_waiting_tasks", ()) in m
    assert m[("studio_artifacts_total", (("outcome", "reused"), ("stage", "voice_line")))] == 2
