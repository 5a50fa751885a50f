"""`studio make "REQUEST"`: the whole short, against the local Prefect server, with a live progress view."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from studio.configs.errors import StudioError

out = Console()


class MakeInputError(StudioError):
    pass


def _read_plan(path: Path) -> dict:
    """An edited manifest.json (its "plan") or a plan JSON/YAML file."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise MakeInputError(f"cannot read --plan {path}: {e.strerror or e}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise MakeInputError(f"--plan {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {e}. "
                             "Pass the manifest.json a run wrote (edit its \"plan\") or a plan file.") from None
    if not isinstance(data, dict) or not isinstance(data.get("plan", data).get("shots"), list):
        raise MakeInputError(f"--plan {path} has no plan: expected a manifest with a \"plan\" key or a plan with "
                             "\"shots\"")
    from studio.agents.schema import validate_plan

    validate_plan(data.get("plan", data))  # a clear error now, before any server or model is touched
    return data


def _check_request(request: str, shots: int | None) -> str:
    from studio.configs.vocabulary import MAX_SHOTS
    from studio.flows.create_short import MAX_REQUEST_CHARS

    req = " ".join(request.split())
    if not req:
        raise MakeInputError("the request is empty: say what the short is about, e.g. "
                             "studio make \"Big Buck Bunny meets a butterfly\"")
    if len(request) > MAX_REQUEST_CHARS:
        raise MakeInputError(f"the request is {len(request):,} characters; keep it under {MAX_REQUEST_CHARS:,} "
                             "(a paragraph is plenty: the knowledge base holds the details)")
    if shots is not None and not 1 <= shots <= MAX_SHOTS:
        raise MakeInputError(f"--shots {shots} is out of range: use 1 to {MAX_SHOTS}")
    return req


def _watch(progress_file: Path, stop: threading.Event, live: Live, t0: float) -> None:
    last = {"stage": "starting", "detail": "", "percent": 0.0}
    while not stop.wait(0.5):
        try:
            lines = progress_file.read_text().splitlines()
            if lines:
                last = json.loads(lines[-1])
        except (OSError, json.JSONDecodeError):
            pass
        live.update(Text(f"[{time.monotonic() - t0:6.1f}s] {last['stage']:<10} {last['percent']:5.1f}%  "
                         f"{last['detail']}"))


def make(request: str = typer.Argument(..., help="what the short is about"),
         profile: str = typer.Option(None, "--profile", help="preview | gpu | auto (default: STUDIO_PROFILE)"),
         out_dir: Path = typer.Option(None, "--out", help="output folder (default: STUDIO_HOME/shorts/<slug>)"),
         shots: int = typer.Option(None, "--shots", help="number of shots (default: the director decides)"),
         seed: int = typer.Option(0, "--seed", help="seed for every random choice"),
         plan_file: Path = typer.Option(None, "--plan", help="an edited manifest.json or plan file"),
         start_server: bool = typer.Option(True, help="start the local Prefect server when it is down")) -> None:
    """Make a short: plan → keyframes/footage → voices → judge → segments → short.mp4 (+ srt, storyboard, manifest)."""
    import os

    from studio.configs.settings import get_settings
    from studio.flows.create_short import slugify
    from studio.resources.runtime.prefect_server import ensure_result_storage, server_status
    from studio.resources.runtime.prefect_server import start_server as _start

    req = _check_request(request, shots)
    plan = _read_plan(plan_file) if plan_file else None
    if plan is None:  # unknown characters and the like are refused before any server or model starts
        from studio.agents.intent import extract_intent
        from studio.agents.schema import PlanRegistry

        extract_intent(req, PlanRegistry.from_configs(), shots)
    prof = profile or os.environ.get("STUDIO_PROFILE") or get_settings().profile
    st = server_status()
    if not st.healthy:
        if not start_server:
            raise MakeInputError(f"no Prefect server answers at {st.api_url}: run `studio server start`")
        out.print(f"[yellow]The Prefect server is not running: starting it[/] (log {st.log})…")
        st = _start()
        out.print(Text(f"server up at {st.api_url}"))
    if start_server:  # the UI's pictures and the playable short need the file server beside the Prefect server
        from studio.resources.runtime.file_server import start_file_server

        start_file_server()
    ensure_result_storage()
    target = (out_dir or get_settings().home / "shorts" / slugify(req)).expanduser().resolve()
    target.mkdir(parents=True, exist_ok=True)
    progress_file = target / "progress.jsonl"
    progress_file.unlink(missing_ok=True)

    from studio.flows.create_short import create_short

    t0 = time.monotonic()
    stop = threading.Event()
    with Live(Text("starting…"), console=out, refresh_per_second=4, transient=True) as live:
        watcher = threading.Thread(target=_watch, args=(progress_file, stop, live, t0), daemon=True)
        watcher.start()
        try:
            state = create_short(request=req, profile=prof, shots=shots, seed=seed, plan=plan, out_dir=str(target),
                                 return_state=True)
        finally:
            stop.set()
            watcher.join(2)
    run_url = f"{st.ui_url}/runs/flow-run/{state.state_details.flow_run_id}"
    if not state.is_completed():
        out.print(Text(f"the run ended {state.name}: its logs and progress are at {run_url}", style="red"))
    result = state.result()  # raises the run's error (the CLI prints it)
    out.print(Text.assemble((f"done in {time.monotonic() - t0:.0f}s", "green"),
                            f" · {result['duration_s']:.1f}s of film"))
    for key in ("short", "subtitles", "storyboard", "manifest"):
        out.print(Text(f"  {key:<10} {result[key]}"))  # paths print literally, never as markup
    out.print(Text(f"  run        {run_url}"))


def register(app: typer.Typer) -> None:
    app.command("make")(make)
