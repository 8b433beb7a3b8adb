"""The shared typer app and the one way commands report errors."""

from __future__ import annotations

import re

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Fast learned forecasts of scalar spread on a plane of a building.")
import_app = typer.Typer(no_args_is_help=True, help="Import finished CFD output into the plumecast dataset schema.")
app.add_typer(import_app, name="import")

console = Console(stderr=True)


# A rich markup tag ("[simulaton]", "[kg/(m s)]") not already escaped with a backslash.
_UNESCAPED_TAG = re.compile(r"(?<!\\)(\[[a-z#/@][^[]*?])")


def escape_once(text: str) -> str:
    """``text`` with every rich markup tag escaped, leaving tags already escaped as they are.

    Messages quote the user's input (TOML tables, units in brackets), so they are escaped
    before printing; a message a caller escaped already is not escaped twice.
    """
    return _UNESCAPED_TAG.sub(r"\\\1", str(text))


def fail(message: str, code: int = 2) -> None:
    """Print an error that names the problem on one line (no wrapping) and exit non-zero."""
    console.print(f"[bold red]error:[/] {escape_once(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def read_dataset_or_fail(path):
    """A validated dataset, or the reader's message and a non-zero exit."""
    from plumecast.io.dataset import DatasetError, read_dataset

    try:
        return read_dataset(path)
    except DatasetError as e:
        fail(str(e))


def check_output_path(path, kind: str = "file", option: str = "--out"):
    """Fail (one line, exit 2) unless ``path`` can be written as a ``kind`` ("file" or "dir").

    Call it before any work: a directory given where a file is meant, a file where a
    folder is meant, or a folder that cannot be created or written (``/proc/x.nc``, a
    read-only mount) stops the command at once. Nothing is created. Returns ``path``.
    """
    from plumecast.io.preflight import output_problem

    problem = output_problem(path, kind)
    if problem:
        fail(f"{option}: {problem}")
    return path


def progress_bar() -> Progress:
    """The commands' progress bar: what, bar, done of total, time elapsed and time left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console,
    )
