"""`studio` command line. Sub-command groups live in `studio/commands/*.py`, each exposing `register(app)`.

Everything heavy is imported inside commands so `studio --help` stays fast; the Prefect environment is
configured before any command imports prefect.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from studio.configs.errors import StudioError

# Model loading bars (transformers' "Loading weights", hub downloads) would scribble over the live progress line.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

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
        from studio.commands.make import check_profile

        check_profile(profile)
        os.environ["STUDIO_PROFILE"] = profile
        get_settings.cache_clear()
    configure_prefect_env()


for _name in COMMAND_MODULES:
    try:
        importlib.import_module(_name).register(app)
    except ModuleNotFoundError as e:  # a module not written yet in a partial checkout
        if e.name != _name:
            raise


def print_error(message: str) -> None:
    """`error: …` on stderr, the message printed literally (never read as Rich markup)."""
    console.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)  # paths stay whole


def main() -> None:
    try:
        app()
    except StudioError as e:
        print_error(str(e))
        sys.exit(2)
    except ValidationError as e:  # a STUDIO_* setting of the wrong shape (settings are read first thing)
        errors = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'value'}: {x['msg']}" for x in e.errors())
        print_error(f"invalid setting ({e.title}): {errors}. Fix the STUDIO_* environment variable.")
        sys.exit(2)
    except OSError as e:  # a full disk, a read-only or forbidden folder: say which, no traceback
        where = f" ({e.filename})" if e.filename else ""
        print_error(f"{e.strerror or e}{where}. Free disk space or fix the folder's permissions, then rerun: "
                    "finished artifacts are kept.")
        sys.exit(2)


if __name__ == "__main__":
    main()
