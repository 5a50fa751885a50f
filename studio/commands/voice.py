"""`studio voice say | list | dataset | train | server`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from studio.configs.errors import StudioError

out = Console()
err = Console(stderr=True)
voice_app = typer.Typer(help="Character voices: say a line, build a voice dataset, train a voice.",
                        no_args_is_help=True)
server_app = typer.Typer(help="The managed GPT-SoVITS server (gpu profile).", no_args_is_help=True)


@voice_app.command("say")
def say(character: str = typer.Argument(..., help="Character id, name or alias (configs/characters.yaml)."),
        text: str = typer.Argument(..., help="The words to say (long texts are split into sentences)."),
        emotion: str = typer.Option("neutral", "--emotion", "-e", help="neutral, happy, excited, sad, angry, "
                                    "scared, determined, surprised, curious"),
        intensity: float = typer.Option(0.5, "--intensity", "-i", min=0.0, max=1.0, help="0 = neutral … 1 = full"),
        out_path: Path = typer.Option(Path("line.wav"), "--out", "-o", help="WAV to write; the timing sidecar "
                                      "goes next to it as <name>.timing.json."),
        language: str = typer.Option(None, "--language", "-l", help="Line language (default: the voice's)."),
        backend: str = typer.Option(None, "--backend", help="piper | espeak | hibari | gpt-sovits (default: "
                                    "the profile's voice model)."),
        seed: int = typer.Option(0, help="Seed (part of the cache key; change it for another take)."),
        cache: bool = typer.Option(True, help="Reuse/keep the line in the artifact store.")) -> None:
    """Say a line as a character, with emotion, into a WAV (+ timing JSON)."""
    from studio.resources.voice.line import plan_line, synthesize_line_file

    if not cache:
        res = synthesize_line_file(character, text, emotion, intensity, out_path, language=language, seed=seed,
                                   backend=backend)
        _print_line(res.summary(), res.path)
        return
    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.tasks.voice import export_line, make_line, read_line_timing, recipe_from_spec

    spec = plan_line(character, text, emotion, intensity, language=language, seed=seed, backend=backend)
    recipe = recipe_from_spec(spec)
    store = ArtifactStore.from_settings()
    cached = store.lookup(recipe) is not None
    ref = make_line(recipe, store)
    export_line(ref, out_path, store)
    timing = read_line_timing(ref, store)
    summary = {"character": spec.character, "emotion": spec.emotion, "intensity": spec.intensity,
               "backend": spec.backend, "fallback_from": spec.fallback_from, "duration_s": timing["duration_s"],
               "quality": timing["quality"], "cached": cached, "artifact": ref.short}
    _print_line(summary, out_path)


def _print_line(summary: dict, path: Path) -> None:
    q = summary.get("quality") or {}
    if summary.get("fallback_from"):
        err.print(f"[yellow]fallback:[/] {summary['fallback_from']} cannot run here; spoken with "
                  f"{summary['backend']}")
    out.print(f"{path}  {summary['duration_s']:.2f} s  {summary['character']} ({summary['emotion']} "
              f"{summary['intensity']:g})  backend={summary['backend']}"
              + ("  (cached)" if summary.get("cached") else ""))
    if not q.get("passed", True):
        err.print(f"[yellow]quality:[/] {'; '.join(q.get('issues', []))}")


@voice_app.command("list")
def list_voices() -> None:
    """Characters, their voices and which voice backends can run here."""
    from studio.configs.schema import studio_config
    from studio.resources.voice.base import BackendUnavailableError
    from studio.resources.voice.config import load_character_voices
    from studio.resources.voice.select import _entry_for_backend, get_backend

    voices = load_character_voices().voices
    t = Table("character", "voice", "language", "speed", "pitch", "GPT-SoVITS refs", title="voices")
    for cid, c in studio_config().characters.characters.items():
        v = voices.get(c.voice or cid)
        t.add_row(cid, c.voice or cid, v.language if v else "-", f"{v.speed:g}" if v else "-",
                  f"{v.pitch_semitones:+g}" if v else "-",
                  ", ".join(v.gpt_sovits.references) if v else "[red]missing[/]")
    out.print(t)
    b = Table("backend", "model id", "status")
    for name in ("piper", "hibari", "espeak", "gpt-sovits"):
        try:
            be = get_backend(*_entry_for_backend(name))
            be.check_available()
            b.add_row(name, be.model_id, "[green]available[/]")
        except (BackendUnavailableError, StudioError) as e:
            b.add_row(name, "-", f"[yellow]{str(e)[:80]}[/]")
    out.print(b)


@voice_app.command("dataset")
def dataset(audio: Path = typer.Argument(..., exists=True, dir_okay=False, help="Film or audio file (any "
                                         "format ffmpeg reads)."),
            speaker: str = typer.Option(..., "--speaker", "-s", help="Whose voice to collect (SRT label / "
                                        "character)."),
            out_dir: Path = typer.Option(..., "--out", "-o", help="Dataset folder (wavs/, <speaker>.list, report)."),
            srt: Path = typer.Option(None, "--srt", exists=True, dir_okay=False, help="Subtitles for the texts."),
            language: str = typer.Option("en", "--language", "-l"),
            chunk_s: float = typer.Option(None, "--chunk-s", help="Seconds of source per resumable chunk."),
            start_server: bool = typer.Option(True, help="Start the local Prefect server when it is down.")) -> None:
    """Extract a character's clips + texts from a film into a GPT-SoVITS training list (resumable)."""
    from studio.resources.voice.dataset import plan_dataset

    plan_dataset(audio, speaker, language, srt, chunk_s)  # bad inputs fail before any server starts
    _ensure_server(start_server)
    from studio.flows.build_voice_dataset import build_voice_dataset

    report = build_voice_dataset(str(audio.resolve()), speaker, str(out_dir.resolve()),
                                 str(srt.resolve()) if srt else None, language, chunk_s)
    out.print(f"{report['clips']} clips, {report['minutes']:.2f} min → {report['list']} "
              f"({report['rejected']} rejected: {json.dumps(report['rejected_by_reason'])}; "
              f"{report['chunks_reused']}/{report['chunks']} chunks reused)")


@voice_app.command("train")
def train(character: str = typer.Argument(..., help="Character whose voice to train."),
          dataset_list: Path = typer.Argument(..., exists=True, dir_okay=False, help="<speaker>.list"),
          exp_name: str = typer.Option(None, help="Experiment name (default: <voice>-<date>)."),
          validate_only: bool = typer.Option(False, "--validate-only", help="Check the dataset and write the "
                                             "training config, never train."),
          start_server: bool = typer.Option(True, help="Start the local Prefect server when it is down.")) -> None:
    """Validate a dataset, write the GPT-SoVITS training config, train on the gpu profile, register weights."""
    _ensure_server(start_server)
    from studio.flows.train_voice import train_voice

    res = train_voice(character, str(dataset_list.resolve()), exp_name=exp_name, validate_only=validate_only)
    out.print(res["message"])
    if res["status"] == "stopped" and not validate_only:
        raise typer.Exit(3)


@server_app.command("start")
def server_start() -> None:
    """Start api_v2.py from the configured GPT-SoVITS checkout and wait until it answers."""
    from studio.resources.voice.gptsovits import GPTSoVITSServer

    out.print(GPTSoVITSServer().start().as_dict())


@server_app.command("stop")
def server_stop() -> None:
    from studio.resources.voice.gptsovits import GPTSoVITSServer

    out.print("stopped" if GPTSoVITSServer().stop() else "not running")


@server_app.command("status")
def server_status() -> None:
    from studio.resources.voice.gptsovits import GPTSoVITSServer

    out.print(GPTSoVITSServer().status().as_dict())


def _ensure_server(start: bool) -> None:
    from studio.resources.runtime.prefect_server import ensure_server

    ensure_server(start, say=lambda msg: err.print(Text(msg)))


def register(app: typer.Typer) -> None:
    voice_app.add_typer(server_app, name="server")
    app.add_typer(voice_app, name="voice")
