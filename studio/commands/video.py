"""Video commands: `studio analyze VIDEO`, `studio edit EDIT.yaml`, `studio effects`.

`studio analyze` runs the `analyze-film` flow on the studio's Prefect server, started if it is down (chunked,
resumable, one process per core; the run's UI link goes to stderr); `--local` runs the same analysis in this
process without Prefect. `studio edit` renders an edit list through the artifact store: each segment is a
recipe-addressed artifact, so a rerun after a crash re-encodes only the segments that are missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from studio.resources.runtime.files import write_text_atomic

err = Console(stderr=True)


def analyze(video: Path = typer.Argument(..., help="The film to analyse."),
            out: Path = typer.Option(None, "--out", "-o", help="Write analysis.json and thumbnails/ here."),
            detector: str = typer.Option(None, "--detector", help="content | adaptive (default: configs/video.yaml)"),
            chunk_seconds: float = typer.Option(None, "--chunk-seconds", min=5.0, help="Chunk length for long films."),
            no_index: bool = typer.Option(False, "--no-index", help="Do not upsert scenes into film_scenes."),
            local: bool = typer.Option(False, "--local", help="Analyse in this process, without Prefect."),
            start_server: bool = typer.Option(True, help="Start the local Prefect server when it is down.")) -> None:
    """Detect cuts (PySceneDetect's) and transitions, analyse each shot (camera, composition, coherence)."""
    from studio.resources.media.probe import require_video

    require_video(video)  # a clear error before any server or process pool starts
    if detector not in (None, "content", "adaptive"):
        raise typer.BadParameter("--detector must be content or adaptive")
    if local:
        from studio.resources.video.analysis import analyze_range
        from studio.resources.video.scenes import film_scenes

        found = film_scenes(video, detector=detector, workers=_workers())
        shots = analyze_range(video, found["scenes"], (out / "thumbnails") if out else None)
        rows = [s.model_dump(mode="json") | {"description": s.description()} for s in shots]
        transitions = [t.model_dump() for t in found["transitions"]]
        if out:
            out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out / "analysis.json", json.dumps({"video": str(video), "cuts": found["cuts"],
                                                           "transitions": transitions, "shots": rows}, indent=2))
        _print_rows(rows)
        err.print(f"{len(found['cuts'])} cuts, {len(transitions)} transitions (fades, dissolves), {len(rows)} shots")
        return
    from rich.text import Text

    from studio.resources.runtime.prefect_server import ensure_server

    st = ensure_server(start_server, say=lambda msg: err.print(Text(msg, style="yellow")))
    from prefect.task_runners import ProcessPoolTaskRunner

    from studio.flows.analyze_film import analyze_film, workers

    flow = analyze_film.with_options(task_runner=ProcessPoolTaskRunner(max_workers=workers()))
    state = flow(str(video), str(out) if out else None, detector, chunk_seconds, not no_index, return_state=True)
    err.print(f"run {st.ui_url}/runs/flow-run/{state.state_details.flow_run_id}", soft_wrap=True)
    result = state.result()  # raises the run's error (the CLI prints it, exit 2)
    from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore

    data = ArtifactStore.from_settings().read_json(ArtifactRef(**result["analysis"]))
    _print_rows(data["shots"])
    err.print(f"{result['scenes']} scenes in {result['chunks']} chunk(s); analysis artifact "
              f"{result['analysis']['uri']}" + (f"; knowledge: {result['knowledge']}" if result["knowledge"] else ""))


def _workers() -> int:
    from studio.flows.analyze_film import workers

    return workers()


def _print_rows(rows: list[dict]) -> None:
    for r in rows:
        sc = r["scene"]
        flags = r["coherence"]["flags"]
        typer.echo(f"{sc['index']:4d}  {sc['start']:8.2f}-{sc['end']:8.2f} s  after {sc.get('starts_with', 'cut'):8} "
                   f"{r['composition']['shot_size']:16} "
                   f"{r['camera']['camera_move']:10} {r['composition']['subject_method']:9} "
                   f"{'flags ' + str(len(flags)) if flags else 'ok'}")


def edit(edit_file: Path = typer.Argument(..., help="Edit list YAML: format, music, burn_subtitles, segments."),
         out: Path = typer.Option(..., "--out", "-o", help="Where to write the cut (mp4; the SRT beside it)."),
         fmt_name: str = typer.Option(None, "--format", help="Output format from configs/video.yaml.")) -> None:
    """Render an edit list (segments with effects, parody recipes, voice, SFX) and assemble the cut."""
    import yaml

    from studio.configs.errors import ConfigError
    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.resources.video.config import video_config
    from studio.resources.video.segment import SegmentSpec
    from studio.tasks.video import export_artifact, render_cut_local

    try:
        data = yaml.safe_load(edit_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(edit_file, [str(e)]) from None
    base = edit_file.resolve().parent
    specs = []
    for i, raw in enumerate(data.get("segments") or []):
        for key in ("image", "video", "voice"):
            if raw.get(key) and not Path(raw[key]).is_absolute():
                raw[key] = str(base / raw[key])
        try:
            specs.append(SegmentSpec.model_validate(raw))
        except ValueError as e:
            raise ConfigError(edit_file, [f"segments[{i}]: {e}"]) from None
    if not specs:
        raise ConfigError(edit_file, ["no segments: add a list under 'segments:'"])
    fmt = video_config().format(fmt_name or data.get("format"))
    music = data.get("music")
    if music and music != "procedural" and not Path(music).is_absolute():
        music = str(base / music)
    store = ArtifactStore.from_settings()
    cut = render_cut_local(specs, fmt, music, bool(data.get("burn_subtitles")), workers=_workers(), store=store)
    export_artifact(cut, out, store)
    err.print(f"[green]wrote[/] {out} ({len(specs)} segments)")


def effects() -> None:
    """List the effect library and the parody recipes."""
    from studio.resources.video.effects.library import load_library

    lib = load_library()
    for name, d in sorted(lib.effects.items()):
        params = ", ".join(f"{p}={s.default}" for p, s in d.params.items())
        typer.echo(f"{name:16} {d.kind:10} {d.description}  [{params}]")
    for name, r in sorted(lib.recipes.items()):
        typer.echo(f"{name:16} {'recipe':10} {r.description}  [{' + '.join(s.effect for s in r.steps)}]")


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze)
    app.command("edit")(edit)
    app.command("effects")(effects)
