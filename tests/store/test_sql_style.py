"""SQL is built by SQLAlchemy (issue 14): no module under ``src/`` but ``store/db.py`` writes
SQL text (``sqlalchemy.text``, ``exec_driver_sql``) or reaches past SQLAlchemy to the driver
(``raw_connection``, a DBAPI ``cursor()``, ``driver_connection``, ``dbapi_connection``). The
two styles left are ORM sessions and Core statements on a ``Connection``."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "dicomite"
ALLOWED = {
    SRC / "store" / "db.py",  # the engine's SQLite setup: PRAGMAs and BEGIN
    SRC / "store" / "compiled.py",  # compiled statements run on the driver's cursor
}
DRIVER_LEVEL = {
    "exec_driver_sql",
    "raw_connection",
    "cursor",
    "driver_connection",
    "dbapi_connection",
}


def violations(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            found += [(node.lineno, f"imports {a.name}") for a in node.names if a.name == "text"]
        elif isinstance(node, ast.Attribute) and (
            node.attr in DRIVER_LEVEL or (node.attr == "text" and _is_sqlalchemy(node.value))
        ):
            found.append((node.lineno, node.attr))
    return found


def _is_sqlalchemy(node: ast.expr) -> bool:
    """``sqlalchemy.text`` or ``sql.text`` (``sa.text``), not a Dicomite ``text`` helper."""
    return isinstance(node, ast.Name) and node.id in {"sqlalchemy", "sa", "sql"}


def test_no_module_but_the_store_writes_sql_or_reaches_the_driver() -> None:
    found = [
        f"{path.relative_to(SRC)}:{line}: {what}"
        for path in sorted(SRC.rglob("*.py"))
        if path not in ALLOWED
        for line, what in violations(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_the_scan_finds_each_kind() -> None:
    source = """
from sqlalchemy import text
import sqlalchemy
sqlalchemy.text("SELECT 1")
connection.exec_driver_sql("SELECT 1")
engine.raw_connection().cursor()
connection.connection.driver_connection
"""
    kinds = [what for _, what in sorted(violations(source))]
    assert kinds == [
        "imports text",
        "text",
        "exec_driver_sql",
        "cursor",
        "raw_connection",
        "driver_connection",
    ]
    assert violations('text(dataset, "Modality")\nbody.text(fields, "name")') == []
