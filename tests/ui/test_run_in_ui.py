"""The Prefect UI as the studio's window, on ONE real run (preview profile, real Prefect server, real models):

the create-short deployment is served (`flow.serve`), a run is made to fail mid-way on purpose (STUDIO_FAIL_AT
injects a failure at the segments stage on the first two attempts), retried with `prefect flow-run retry`
(fails again at the same place, every finished task Cached) and then through the REST call the UI's Retry
button makes (completes, finished tasks Cached, the rest rendered). The finished run then has INFO logs,
image artifacts with http URLs, a progress of 100 %, and in headless Chromium (Playwright) the storyboard image
loads and the short's link answers 200 with video/mp4 bytes that ffprobe reads. A screenshot is kept.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

PLAN = Path(__file__).resolve().parents[1] / "data" / "plan_bunny.json"
REPO = Path(__file__).resolve().parents[2]
DEPLOYMENT = "create-short/ui-test"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.slow  # a worker, a deployment and a browser: minutes (runs in CI; -m "not slow" skips)


def _api() -> str:
    return os.environ["PREFECT_API_URL"].rstrip("/")


def _flow_run(run_id: str) -> dict:
    return httpx.get(f"{_api()}/flow_runs/{run_id}", timeout=30).json()


def _wait_terminal(run_id: str, after_count: int, timeout: float = 420) -> dict:
    """The run once it is terminal again with run_count > after_count (a retry really ran)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fr = _flow_run(run_id)
        if fr["state_type"] in TERMINAL and fr["run_count"] > after_count:
            return fr
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish: {_flow_run(run_id)['state_name']}")


def _task_runs(run_id: str, since: str | None = None) -> list[dict]:
    """The run's own task runs (a subflow's placeholder task run is not one), started after `since`."""
    body: dict = {"flow_runs": {"id": {"any_": [run_id]}}, "task_runs": {"subflow_runs": {"exists_": False}},
                  "limit": 200}
    if since:
        body["task_runs"]["start_time"] = {"after_": since}
    return httpx.post(f"{_api()}/task_runs/filter", json=body, timeout=30).json()


def _artifacts(run_id: str) -> list[dict]:
    """The run's artifacts, newest first (a retried run adds new versions of the same keys)."""
    return httpx.post(f"{_api()}/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}},
                                                          "sort": "CREATED_DESC"}, timeout=30).json()


def _latest(run_id: str) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for a in _artifacts(run_id):
        latest.setdefault(a["key"], a)
    return latest


def _states(runs: list[dict]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in runs:
        out.setdefault(t["state_name"], []).append(t["name"])
    return out


@pytest.fixture(scope="module")
def retried_run(prefect_server, studio_home, tmp_path_factory):
    """Fail → `prefect flow-run retry` → fail → the UI's Retry REST call → complete; one served deployment."""
    from support.record import serve_in_thread

    root = tmp_path_factory.mktemp("ui-run")
    store, out = root / "store", root / "out"
    files = serve_in_thread({"store": store, "shorts": studio_home / "shorts"})
    env = {**os.environ, "STUDIO_STORE__URI": str(store), "STUDIO_FILES__PORT": str(files.server_address[1]),
           "STUDIO_FAIL_AT": "segments:2", "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    served = subprocess.Popen([sys.executable, "-c", "from studio.flows.create_short import create_short; "
                               "create_short.serve(name='ui-test', limit=1)"], cwd=REPO, env=env,
                              stdout=open(root / "serve.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield _retry_sequence(root, out, served)
    finally:
        from studio.resources.runtime.servers import stop_process_group

        stop_process_group(served.pid, 10)
        files.shutdown()
        files.server_close()


def _retry_sequence(root: Path, out: Path, served: subprocess.Popen) -> dict:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + 120
    with get_client(sync_client=True) as client:
        while True:  # the served deployment appears once `serve` has registered it
            try:
                dep = client.read_deployment_by_name(DEPLOYMENT)
                break
            except Exception:  # noqa: BLE001
                assert served.poll() is None and time.monotonic() < deadline, (root / "serve.log").read_text()
                time.sleep(1)
        plan = json.loads(PLAN.read_text())
        run = client.create_flow_run_from_deployment(dep.id, parameters={
            "request": "a butterfly short", "plan": plan, "out_dir": str(out), "max_revisions": 0})
    run_id = str(run.id)
    first = _wait_terminal(run_id, -1)
    assert "injected failure" in (first["state"]["message"] or ""), (root / "serve.log").read_text()[-3000:]
    attempt1 = _task_runs(run_id)
    progress_failed = [a for a in _artifacts(run_id) if a["type"] == "progress"][0]

    t_cli = _flow_run(run_id)["end_time"]
    r = subprocess.run([sys.executable, "-m", "prefect", "flow-run", "retry", run_id], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    second = _wait_terminal(run_id, first["run_count"])
    attempt2 = _task_runs(run_id, since=t_cli)

    t_ui = _flow_run(run_id)["end_time"]
    # What the UI's Retry button sends (Prefect UI: RetryFlowRunDialog → setFlowRunState, force).
    resp = httpx.post(f"{_api()}/flow_runs/{run_id}/set_state", json={
        "state": {"type": "SCHEDULED", "name": "AwaitingRetry", "message": "Retry from the UI"}, "force": True},
        timeout=30)
    assert resp.status_code in (200, 201) and resp.json()["status"] == "ACCEPT", resp.text
    third = _wait_terminal(run_id, second["run_count"])
    attempt3 = _task_runs(run_id, since=t_ui)
    return {"run_id": run_id, "root": root, "out": out, "runs": (first, second, third),
            "tasks": (attempt1, attempt2, attempt3), "progress_failed": progress_failed}


def test_injected_failure_then_retries_reuse_finished_tasks(retried_run):
    first, second, third = retried_run["runs"]
    attempt1, attempt2, attempt3 = retried_run["tasks"]
    assert first["state_type"] == "FAILED" and "injected failure at stage 'segments'" in first["state"]["message"]
    assert second["state_type"] == "FAILED" and third["state_type"] == "COMPLETED", third["state"]
    assert (first["run_count"], second["run_count"], third["run_count"]) == (1, 2, 3)
    # Attempt 1 rendered every voice line, keyframe, footage pick and the judge round, and no segment.
    made = [t["name"] for t in attempt1 if t["state_name"] == "Completed"]
    assert made and not any("segment" in n for n in made), _states(attempt1)
    # Each retry: every one of those tasks came back Cached (counted), and none of them ran again.
    for attempt in (attempt2, attempt3):
        states = _states(attempt)
        assert sorted(states.get("Cached", [])) == sorted(made), states
        assert not set(states.get("Completed", [])) & set(made), states
    assert "Completed" not in _states(attempt2)  # it failed before the segments again: nothing new was made
    # Only the last attempt rendered the rest: the segments and the cut (and whatever they use).
    rest = _states(attempt3).get("Completed", [])
    assert any("segment" in n or "animate" in n for n in rest) and any("assemble" in n for n in rest), rest
    assert (retried_run["out"] / "short.mp4").stat().st_size > 10_000


def test_progress_says_where_it_stopped_then_reaches_100(retried_run):
    failed = retried_run["progress_failed"]
    assert "stopped at segments" in failed["description"], failed
    assert failed["data"] < 100
    final = _latest(retried_run["run_id"])["short-progress"]
    assert final["data"] == 100.0 and final["description"].startswith("done"), final


def test_stages_log_at_info_to_the_run(retried_run):
    logs = httpx.post(f"{_api()}/logs/filter", json={"logs": {"flow_run_id": {"any_": [retried_run["run_id"]]}},
                                                     "limit": 200}, timeout=30).json()
    text = "\n".join(entry["message"] for entry in logs)
    for expected in ("plan: 'The Butterfly', 3 shots", "voice shot 1: bunny says", "keyframe shot 1: rendered",
                     "keyframe shot 1: cache hit", "judge round 0", "segment shot 3: rendered", "play the short:"):
        assert expected in text, expected
    assert len(logs) < 200  # one page: a line per stage item and task run over three attempts, not a flood


def test_deployment_form_and_bad_values_refused(retried_run):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(DEPLOYMENT)
        props = dep.parameter_openapi_schema["properties"]
        assert props["profile"]["enum"] == ["preview", "gpu", "auto"] and props["profile"]["default"] == "preview"
        assert props["shots"]["anyOf"][0]["minimum"] == 1 and all(p.get("description") for p in props.values())
        n_runs = len(client.read_flow_runs())
        for bad in ({"request": "x", "profile": "fast"}, {"request": "x", "shots": 0}, {"request": ""}):
            with pytest.raises(Exception, match="(?i)validation|invalid|parameters"):
                client.create_flow_run_from_deployment(dep.id, parameters=bad)
        assert len(client.read_flow_runs()) == n_runs  # refused before any run exists


def test_the_run_in_a_real_browser(retried_run, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    run_id = retried_run["run_id"]
    arts = _latest(run_id)
    sheet_url = arts["short-storyboard"]["data"]
    link = arts["short-short"]["data"]  # a link artifact's data is markdown: [text](url)
    short_url = link[link.index("](") + 2:link.rindex(")")]
    assert sheet_url.startswith("http://127.0.0.1:") and short_url.startswith("http://127.0.0.1:")
    ui = _api().removesuffix("/api")
    shots_dir = tmp_path / "screenshots"
    shots_dir.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                    "--disable-dev-shm-usage", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{ui}/artifacts/artifact/{arts['short-summary']['id']}", wait_until="networkidle")
        img = page.locator(f'img[src="{sheet_url}"]').first
        img.wait_for(state="visible", timeout=60_000)
        page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle(),
                               timeout=30_000)
        width = img.evaluate("el => el.naturalWidth")
        page.screenshot(path=str(shots_dir / "summary.png"), full_page=True)
        page.goto(f"{ui}/runs/flow-run/{run_id}", wait_until="networkidle")
        page.get_by_text("Completed").first.wait_for(timeout=60_000)
        page.screenshot(path=str(shots_dir / "run.png"), full_page=True)
        video = page.request.get(short_url)
        status, ctype, body = video.status, video.headers.get("content-type"), video.body()
        ranged = page.request.get(short_url, headers={"Range": "bytes=0-99"})
        ranged_status, ranged_body = ranged.status, ranged.body()
        browser.close()
    kept = retried_run["root"] / "screenshots"
    shutil.copytree(shots_dir, kept, dirs_exist_ok=True)
    print(f"UI screenshots kept in {kept}")
    assert width > 0
    assert status == 200 and ctype == "video/mp4" and body == (retried_run["out"] / "short.mp4").read_bytes()
    assert ranged_status == 206 and ranged_body == body[:100]
    clip = tmp_path / "from-browser.mp4"
    clip.write_bytes(body)
    from studio.resources.media.ffmpeg import ffprobe_path

    probe = subprocess.run([ffprobe_path(), "-v", "error", "-show_streams", "-of", "json", str(clip)],
                           capture_output=True, text=True, check=True)
    assert {"video", "audio"} <= {s["codec_type"] for s in json.loads(probe.stdout)["streams"]}
