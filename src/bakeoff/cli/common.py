"""What every subcommand shares: the stderr console and the user-error boundary."""

from __future__ import annotations

import functools
import os
import sys

import typer
from rich.console import Console
from rich.text import Text

from bakeoff.errors import BakeoffError
from bakeoff.runners.interrupt import RunInterrupted

console = Console(stderr=True)
_probe = Console()
# Piped into a file or CI log, rich would fold wide tables to 80 columns; give them room instead.
stdout = _probe if _probe.is_terminal else Console(width=200)


def debug_enabled() -> bool:
    return os.environ.get("BAKEOFF_DEBUG") == "1"


def user_errors(command):
    """Turn BakeoffError into a short message and exit code 2 (a traceback only with --debug)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BakeoffError as err:
            if debug_enabled():
                raise
            # Text, not markup: messages quote user input (`[/INST]`, `exports [final]/x.csv`) that rich would parse.
            console.print(Text.assemble(("error:", "bold red"), " ", str(err)), highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except (RunInterrupted, KeyboardInterrupt) as err:
            console.print(
                "\n[yellow]stopped.[/yellow] Finished trials are saved; run the same command again to resume."
            )
            sys.exit(getattr(err, "exit_code", 130))  # 128 + the signal: 130 Ctrl-C, 143 SIGTERM

    return wrapper
