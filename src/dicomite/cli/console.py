"""Rich consoles and the way commands report domain errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from dicomite.bootstrap import BootstrapError
from dicomite.identity.problems import DirectoryProblem

console = Console()
errors = Console(stderr=True)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn domain errors into a red line and exit status 1, never a traceback."""
    try:
        yield
    except (DirectoryProblem, BootstrapError) as problem:
        errors.print(f"[red]error:[/red] {problem}", highlight=False)
        raise typer.Exit(1) from None
