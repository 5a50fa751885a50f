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
PROFILES = ("preview", "gpu", "auto")
MAX_SEED = 2**31 - 1  # the flow's own bound (create_short's `seed` parameter)


class MakeInputError(StudioError):
    pass


def check_profile(profile: str | None) -> str | None:
    if profile is not None and profile not in PROFILES:
        raise MakeInputError(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)} "
                             "(--profile or STUDIO_PROFILE)")
    return profile


def check_seed(seed: int) -> int:
    if not 0 <= seed <= MAX_SEED:
        raise MakeInputError(f"--seed {seed} is out of range: use a whole number from 0 to {MAX_SEED}")
    return seed


def _check_gpu_profile(profile: str) -> None:
    """The gpu profile's planner needs vLLM: say so now, not from inside a flow run after a traceback."""
    from studio.resources.registry import resolve_profile

    if resolve_profile(profile) != "gpu":
        return
    from studio.resources.llm.servers import llm_endpoint

    command = getattr(llm_endpoint("gpu"), "command", None)
    if callable(command):
        command()  # raises a StudioError naming what to install when the server cannot be started


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
    inner = data.get("plan", data) if isinstance(data, dict) else None
    if not isinstance(inner, dict) or not isinstance(inner.get("shots"), list):
        raise MakeInputError(f"--plan {path} has no plan: expected a manifest with a \"plan\" key or a plan with "
                             "\"shots\"")
    from studio.agents.schema import validate_plan

    validate_plan(inner)  # a clear error now, before any server or model is touched
    return data


def check_request(request: str, shots: int | None) -> str:
    from studio.configs.vocabulary import MAX_REQUEST_CHARS, MAX_SHOTS

    req = " ".join(request.split())  # newlines and tabs become spaces; other control characters are refused
    if any(ord(c) < 32 or ord(c) == 127 for c in req):
        raise MakeInputError("the request contains control characters (escape codes?): type it as plain text")
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
    from studio.resources.runtime.outputs import folder_name, hold_output_folder

    req = check_request(request, shots)
    check_seed(seed)
    prof = check_profile(profile or os.environ.get("STUDIO_PROFILE")) or get_settings().profile
    plan = _read_plan(plan_file) if plan_file else None
    target = (out_dir or get_settings().home / "shorts" / folder_name(req)).expanduser().resolve()
    with hold_output_folder(target):  # a second run into the same folder is refused here, at once
        if plan is None:  # unknown characters and the like are refused before any server or model starts
            from studio.agents.intent import extract_intent
            from studio.agents.schema import PlanRegistry

            extract_intent(req, PlanRegistry.from_configs(), shots)
            _check_gpu_profile(prof)
        _make_into(target, req, prof, shots, seed, plan, start_server)


def _make_into(target: Path, req: str, prof: str, shots: int | None, seed: int, plan: dict | None,
               start_server: bool) -> None:
    from studio.resources.runtime.prefect_server import ensure_result_storage, ensure_server

    st = ensure_server(start_server, say=lambda msg: out.print(Text(msg, style="yellow")))
    if start_server:  # the UI's pictures and the playable short need the file server beside the Prefect server
        from studio.resources.runtime.file_server import start_file_server

        start_file_server()
    ensure_result_storage()
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
        out.print(Text(f"the run ended {state.name}: its logs and progress are at {run_url}", style="red"),
                  soft_wrap=True)
    result = state.result()  # raises the run's error (the CLI prints it)
    out.print(Text.assemble((f"done in {time.monotonic() - t0:.0f}s", "green"),
                            f" · {result['duration_s']:.1f}s of film"))
    for key in ("short", "subtitles", "storyboard", "manifest"):
        out.print(Text(f"  {key:<10} {result[key]}"))  # paths print literally, never as markup
    out.print(Text(f"  run        {run_url}"), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("make")(make)
