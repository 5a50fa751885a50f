"""Managed LLM server lifecycle: vLLM's command line, PID/log files, sleep/wake through the residency manager
(against a stand-in `vllm` executable — vLLM needs a GPU), and refusing a port another server holds."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap

import pytest
from support.env import free_port as _free_port

from studio.configs.schema import ModelEntry
from studio.resources.llm.servers import LLMServerError, VLLMEndpoint
from studio.resources.runtime.residency import HeavyModel, ResidencyManager, read_residency_log

STAND_IN = textwrap.dedent("""
    import json, os, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    argv = sys.argv[1:]
    opt = lambda k: argv[argv.index(k) + 1]
    record = os.environ["STANDIN_RECORD"]
    with open(record, "a") as f:
        f.write(json.dumps({"argv": argv, "dev_mode": os.environ.get("VLLM_SERVER_DEV_MODE")}) + "\\n")
    state = {"sleeping": False}

    class H(BaseHTTPRequestHandler):
        def _send(self, obj):
            data = json.dumps(obj).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers()
            self.wfile.write(data)
        def do_GET(self):
            if self.path == "/v1/models":
                self._send({"data": [{"id": opt("--served-model-name")}]})
            elif self.path == "/is_sleeping":
                self._send({"is_sleeping": state["sleeping"]})
            else:
                self.send_response(404); self.end_headers()
        def do_POST(self):
            with open(record, "a") as f:
                f.write(json.dumps({"call": self.path}) + "\\n")
            state["sleeping"] = self.path.startswith("/sleep")
            self._send({})
        def log_message(self, *a):
            pass

    print("stand-in vllm serving", opt("--served-model-name"), flush=True)
    HTTPServer((opt("--host"), int(opt("--port"))), H).serve_forever()
""")




@pytest.fixture
def vllm_standin(tmp_path, monkeypatch):
    exe = tmp_path / "vllm"
    exe.write_text(f"#!{sys.executable}\n{STAND_IN}")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("STANDIN_RECORD", str(record))
    model_dir = tmp_path / "qwen"
    model_dir.mkdir()
    entry = ModelEntry(modality="llm", backend="vllm", source=str(model_dir), heavy=True, vram_gb=0.0,
                       options={"executable": str(exe), "port": _free_port(), "start_timeout_s": 30,
                                "args": ["--quantization", "awq"]})
    ep = VLLMEndpoint("qwen-test", entry)
    yield ep, record
    ep.stop()


def _records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_vllm_command_pid_log_and_sleep_wake_through_residency(vllm_standin, tmp_path):
    ep, record = vllm_standin
    rm = ResidencyManager(device="cuda:0", log_path=tmp_path / "residency.jsonl", lock_dir=tmp_path / "locks",
                          host_ram_reserve_gb=0.0)
    with rm.use(ep.heavy_model()) as client:
        assert client.health() and ep.status().sleeping is False
        pid = int(ep.pid_file.read_text().split()[0])
    assert ep.is_sleeping()  # parked: weights in host RAM, server still up
    other = HeavyModel(name="sdxl-base@main", load=lambda device: object())
    with rm.use(other):
        assert ep.is_sleeping()
    with rm.use(ep.heavy_model()) as client:
        assert not ep.is_sleeping() and client.base_url == ep.base_url
    assert int(ep.pid_file.read_text().split()[0]) == pid  # woken, never restarted

    start, *calls = _records(record)
    argv = start["argv"]
    assert argv[:2] == ["serve", str(tmp_path / "qwen")] and "--enable-sleep-mode" in argv
    assert argv[argv.index("--served-model-name") + 1] == "qwen-test" and argv[-2:] == ["--quantization", "awq"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and start["dev_mode"] == "1"
    assert [c["call"] for c in calls] == ["/sleep?level=1", "/wake_up", "/sleep?level=1"]
    events = [(r["event"], r["model"]) for r in read_residency_log(tmp_path / "residency.jsonl")]
    assert events == [("load", ep.model_id), ("park", ep.model_id), ("load", "sdxl-base@main"),
                      ("park", "sdxl-base@main"), ("activate", ep.model_id), ("park", ep.model_id)]
    assert "starting:" in ep.log_file.read_text() and "stand-in vllm serving qwen-test" in ep.log_file.read_text()

    rm.unload_all()  # unload = stop the server
    assert not ep.pid_file.exists()
    with pytest.raises(OSError):
        os.kill(pid, 0)


def test_start_is_idempotent_and_stop_reports(vllm_standin):
    ep, record = vllm_standin
    first = ep.start()
    second = ep.start()
    assert first.pid == second.pid and second.healthy
    assert len([r for r in _records(record) if "argv" in r]) == 1
    assert ep.stop() is True and ep.stop() is False


def test_a_port_held_by_another_server_is_refused(vllm_standin):
    from support.llm_standin import StandIn

    other = StandIn(lambda path, body: (200, {"data": [{"id": "someone-else"}]}))
    try:
        ep, _ = vllm_standin
        ep.port = int(other.url.split(":")[-1].split("/")[0])
        with pytest.raises(LLMServerError, match="already used by another server"):
            ep.start()
    finally:
        other.close()


def test_missing_vllm_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    ep = VLLMEndpoint("q", ModelEntry(modality="llm", backend="vllm", source="Qwen/Qwen2.5-7B-Instruct-AWQ",
                                      heavy=True, options={"port": _free_port()}))
    with pytest.raises(LLMServerError, match=r"pip install -e \.\[gpu\]"):
        ep.start()


def test_registry_builds_the_llm_and_judge_backends_without_starting_them():
    from studio.resources.judge.metric import MetricJudge
    from studio.resources.judge.vlm import VLMJudge
    from studio.resources.llm.servers import LlamaCppEndpoint
    from studio.resources.registry import load_backend

    preview_llm, gpu_llm = load_backend("llm", "preview"), load_backend("llm", "gpu")
    assert isinstance(preview_llm, LlamaCppEndpoint) and not preview_llm.heavy
    assert isinstance(gpu_llm, VLLMEndpoint) and gpu_llm.heavy and not gpu_llm.status().running
    assert isinstance(load_backend("judge", "preview"), MetricJudge)
    vlm = load_backend("judge", "gpu")
    assert isinstance(vlm, VLMJudge) and vlm.heavy and vlm.endpoint.port == gpu_llm.port + 1
