"""Rich consoles and the way commands report domain errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from dicomite.bootstrap import BootstrapError
from dicomite.identity.problems import DirectoryProblem


def _console(stderr: bool = False) -> Console:
    made = Console(stderr=stderr)
    # Piped or redirected, output is read by programs: one line per record, never folded at 80
    # columns (Rich's default width off a terminal) in the middle of a file path or a UID.
    made.soft_wrap = not made.is_terminal
    return made


console = _console()
errors = _console(stderr=True)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn domain errors into a red line and exit status 1, never a traceback."""
    try:
        yield
    except (DirectoryProblem, BootstrapError) as problem:
        errors.print(f"[red]error:[/red] {problem}", highlight=False)
        raise typer.Exit(1) from None
