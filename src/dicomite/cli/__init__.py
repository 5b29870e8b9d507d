"""The ``dicomite`` command (Typer + Rich): thin calls of the same domain functions the
management API uses."""
