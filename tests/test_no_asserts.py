"""No ``assert`` statement in ``src/`` (issue 14): ``python -O`` strips them, so a check that
guards anything must be an ``if`` with an exception that says what went wrong, and one that only
narrows a type must become typing (``Session.get_one``, a non-optional return) instead."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"


def asserts(source: str) -> list[int]:
    """Line numbers of the ``assert`` statements in ``source``."""
    return sorted(n.lineno for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Assert))


def test_src_has_no_assert_statement() -> None:
    found = {
        path.relative_to(SRC).as_posix(): lines
        for path in sorted(SRC.rglob("*.py"))
        if (lines := asserts(path.read_text(encoding="utf-8")))
    }
    listed = [
        f"src/{module}: lines {', '.join(map(str, lines))}" for module, lines in found.items()
    ]
    assert not found, f"assert statements in {len(found)} files:\n" + "\n".join(listed)


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("assert x", [1]),
        ("def f(x):\n    if x:\n        assert x is not None, 'why'", [3]),
        ("x = 'assert y'\n# assert z", []),
        ("def assert_ok(x):\n    return x", []),
    ],
)
def test_the_scan_finds_assert_statements_only(source: str, lines: list[int]) -> None:
    assert asserts(source) == lines
