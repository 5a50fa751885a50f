"""System commands: `studio server …`, `studio gpu …`, `studio doctor`, `studio demo`."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from studio.configs.errors import StudioError

out = Console()
server_app = typer.Typer(help="The local Prefect server (127.0.0.1, SQLite under STUDIO_HOME).", no_args_is_help=True)
gpu_app = typer.Typer(help="GPU residency and the gpu-heavy slot.", no_args_is_help=True)


# ---------------------------------------------------------------------- server
@server_app.command("start")
def server_start() -> None:
    """Start the server in the background (PID and log under STUDIO_HOME); create the gpu-heavy limit."""
    from studio.resources.runtime.prefect_server import server_status, start_server

    before = server_status()
    st = start_server()
    from studio.resources.runtime.gpu_limit import ensure_gpu_limit

    limit = ensure_gpu_limit()
    verb = "already running" if before.healthy else "started"
    out.print(f"Prefect server {verb}: pid {st.pid or '?'} · API {st.url} · UI [link]{st.ui_url}[/link]")
    out.print(f"gpu-heavy limit verified: {limit} · log {st.log}")
    from studio.resources.runtime.file_server import start_file_server

    files = start_file_server()
    out.print(f"file server (the UI's pictures, the playable short): {files}/files · metrics {files}/metrics"
              if files else "file server off (STUDIO_FILES__ENABLED=false): the UI shows no pictures")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the server this studio home started (and its file server)."""
    from studio.resources.runtime.file_server import stop_file_server
    from studio.resources.runtime.prefect_server import stop_server

    stop_file_server()
    out.print("stopped" if stop_server() else "no server of this studio home was running")


@server_app.command("status")
def server_status_cmd() -> None:
    """Print whether the server runs and answers, and the UI URL."""
    from studio.resources.runtime.prefect_server import server_status

    st = server_status()
    state = "[green]healthy[/]" if st.healthy else ("[yellow]starting/unhealthy[/]" if st.running else "[red]down[/]")
    out.print(f"server: {state} · pid {st.pid or '-'} · API {st.url}")
    out.print(f"UI: [link]{st.ui_url}[/link] · log {st.log}")
    if not st.healthy:
        out.print("start it with: studio server start")
        raise typer.Exit(1)


# ---------------------------------------------------------------------- gpu
@gpu_app.command("status")
def gpu_status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Resident models (from the residency record), VRAM if NVIDIA is present, and slot holders."""
    from studio.resources.runtime.gpu_slots import slot_report
    from studio.resources.runtime.residency import ResidencyManager, overlapping_actives, read_residency_log
    from studio.resources.runtime.vram import vram_report

    rows = read_residency_log()
    overlaps = overlapping_actives(rows)
    last: dict[tuple[int, str], dict] = {}
    for r in rows:
        last[(r["pid"], r["model"])] = r
    resident = [r for r in last.values() if r["event"] in ("load", "activate", "park")]
    report = {
        "resident": [{"model": r["model"], "pid": r["pid"], "device": r["device"],
                      "state": "active" if r["event"] in ("load", "activate") else "parked"} for r in resident],
        "gpu_lock_holder": ResidencyManager().lock_holder(),
        "vram": vram_report(),
        "slots": slot_report(),
        # the invariant, checked on the whole record: two models active on one device at once never happened
        "overlaps": [{"device": a.device, "first": f"{a.model} (pid {a.pid})", "second": f"{b.model} (pid {b.pid})",
                      "at": b.start} for a, b in overlaps],
    }
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    t = Table("model", "pid", "device", "state", title="Residency (last event per process/model)")
    for r in report["resident"]:
        t.add_row(r["model"], str(r["pid"]), r["device"], r["state"])
    out.print(t)
    out.print(f"GPU lock holder: {report['gpu_lock_holder'] or 'none'}")
    out.print("One heavy model at a time per device: " + ("kept over the whole record" if not overlaps else
              "BROKEN — " + "; ".join(f"{o['first']} and {o['second']} on {o['device']}" for o in report["overlaps"])))
    vram = report["vram"]
    out.print("VRAM: " + (", ".join(f"{g['name']} {g['used_gb']:.1f}/{g['total_gb']:.1f} GB" for g in vram)
                          if vram else "no NVIDIA GPU visible (pynvml unavailable)"))
    s = report["slots"]
    out.print(f"gpu-heavy slots: {s.get('active_slots', '?')}/{s.get('limit', '?')} active; holders: "
              + (", ".join(f"{h['task_run_name']} ({h['state']})" for h in s.get("holders", [])) or "none"))


@gpu_app.command("reset")
def gpu_reset(force: bool = typer.Option(False, "--force", help="free slots even if a holder looks alive")) -> None:
    """Free leaked gpu-heavy slots whose holders are dead (crashed/killed task runs)."""
    from studio.resources.runtime.gpu_slots import free_dead_slots

    freed, kept = free_dead_slots(force=force)
    out.print(f"freed {freed} slot(s); {kept} held by live task runs" + (" (use --force)" if kept else ""))


# ---------------------------------------------------------------------- doctor
def doctor() -> None:
    """Check server, limit, ffmpeg, configs, models and GPU; print what to fix."""
    from studio.resources.runtime.doctor import run_checks

    results = run_checks()
    t = Table("check", "status", "detail")
    bad = 0
    for name, ok, detail in results:
        t.add_row(name, "[green]ok[/]" if ok else "[red]FIX[/]", detail)
        bad += not ok
    out.print(t)
    if bad:
        out.print(f"[red]{bad} problem(s)[/]: follow the detail column.")
        raise typer.Exit(1)
    out.print("[green]all checks passed[/]")


def demo(label: str = typer.Option("demo"), tasks: int = typer.Option(3, min=1, max=50),
         hold_s: float = typer.Option(0.0, help="seconds each task holds the model (simulates a long render)"),
         start_server: bool = typer.Option(True, help="start the local server when it is down")) -> None:
    """Run the spine's smoke flow: heavy tasks through the residency manager, cached on rerun."""
    from studio.resources.runtime.prefect_server import ensure_server

    ensure_server(start_server, say=lambda msg: out.print(Text(msg)))
    from studio.flows.heavy_demo import heavy_demo
    from studio.resources.runtime.prefect_server import ensure_result_storage

    ensure_result_storage()

    refs = heavy_demo(label=label, n_tasks=tasks, hold_s=hold_s)
    for r in refs:
        out.print(f"{r.stage} {r.short} {r.uri}")


worker_app = typer.Typer(help="Prefect workers that run the studio's deployments.", no_args_is_help=True)


@worker_app.command("start")
def worker_start(queue: list[str] = typer.Option([], "--queue", "-q", help="work queue(s); default: all"),
                 limit: int = typer.Option(1, help="flow runs at once on this host (1 per GPU)")) -> None:
    """Start a process worker on the studio pool (configured for this studio home and store)."""
    import os
    import sys

    from studio.deployments.bootstrap import POOL
    from studio.resources.runtime.prefect_server import ensure_result_storage, require_server

    require_server()
    ensure_result_storage()
    args = [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--limit", str(limit)]
    for q in queue:
        args += ["--work-queue", q]
    out.print(f"worker on pool {POOL} ({', '.join(queue) or 'all queues'}), API {os.environ['PREFECT_API_URL']}")
    os.execve(sys.executable, args, os.environ.copy())


def deploy() -> None:
    """Create the work pool, queues and gpu-heavy limit (idempotent), then `prefect deploy --all`."""
    import subprocess
    import sys

    from studio import repo_root
    from studio.deployments.bootstrap import bootstrap

    root = repo_root()
    if root is None:
        raise StudioError("`studio deploy` runs from a source checkout (it needs prefect.yaml and flows/)")
    out.print(bootstrap())
    r = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=root)
    if r.returncode:
        raise typer.Exit(r.returncode)


def register(app: typer.Typer) -> None:
    app.add_typer(worker_app, name="worker")
    app.command("deploy")(deploy)
    app.add_typer(server_app, name="server")
    app.add_typer(gpu_app, name="gpu")
    app.command("doctor")(doctor)
    app.command("demo")(demo)

