"""The shipped scrape config points at the studio's /metrics port, and every metric the Grafana dashboard
queries is one the studio exports (checked against a real exposition)."""

from __future__ import annotations

import json
import re

import yaml
from prometheus_client.parser import text_string_to_metric_families
from support.env import REPO

from studio.configs.settings import FilesGroup

MONITORING = REPO / "deployments" / "monitoring"


def test_scrape_config_targets_the_metrics_endpoint():
    cfg = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    job = cfg["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"{FilesGroup().host}:{FilesGroup().port}"]


def test_dashboard_queries_only_exported_metrics(tmp_path, monkeypatch):
    from studio.configs.settings import get_settings

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        from studio.resources.runtime.metrics import record_llm_call, record_stage_outcome, render_metrics
        from studio.resources.runtime.residency import ResidencyManager

        ResidencyManager(device="cpu").record("load", "m", seconds=1.0)
        record_stage_outcome("keyframe", 1, 1)
        record_llm_call("llm", 10, 1.0)
        body, _ = render_metrics(with_slots=False)
    finally:
        get_settings.cache_clear()
    exported = {s.name for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}
    exported |= {f.name for f in text_string_to_metric_families(body.decode())}
    # Slot and VRAM gauges need a live server / an NVIDIA GPU: their names are checked against the source.
    source = (REPO / "resources" / "runtime" / "metrics.py").read_text()
    dash = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    queried = {m for p in dash["panels"] for t in p["targets"] for m in re.findall(r"\bstudio_\w+", t["expr"])}
    assert queried
    for name in queried:
        assert name in exported or f'"{name}"' in source, name
