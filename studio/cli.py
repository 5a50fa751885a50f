"""`studio` command line. Sub-command groups live in `studio/commands/*.py`, each exposing `register(app)`.

Everything heavy is imported inside commands so `studio --help` stays fast; the Prefect environment is
configured before any command imports prefect.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from studio.configs.errors import StudioError

app = typer.Typer(name="studio", help="Animation AI Studio: request → planned, rendered, voiced short.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
console = Console(stderr=True)

# One line per command module; each module defines `register(app: typer.Typer) -> None`.
COMMAND_MODULES = [
    "studio.commands.system",  # server, gpu, doctor, demo
    "studio.commands.images",  # images batch, models tiny
    "studio.commands.planning",  # plan, knowledge
    "studio.commands.voice",  # voice say, voice dataset, voice train
    "studio.commands.video",  # analyze, edit
    "studio.commands.make",  # make
]


@app.callback()
def _main(profile: str = typer.Option(None, "--profile", help="preview | gpu | auto (default: STUDIO_PROFILE)",
                                      show_default=False)) -> None:
    import os

    from studio.configs.settings import get_settings
    from studio.resources.runtime.prefect_server import configure_prefect_env

    if profile:
        os.environ["STUDIO_PROFILE"] = profile
        get_settings.cache_clear()
    configure_prefect_env()


for _name in COMMAND_MODULES:
    try:
        importlib.import_module(_name).register(app)
    except ModuleNotFoundError as e:  # a module not written yet in a partial checkout
        if e.name != _name:
            raise


def main() -> None:
    try:
        app()
    except StudioError as e:
        console.print(f"[bold red]error:[/] {e}")
        sys.exit(2)


if __name__ == "__main__":
    main()
