"""Dicomite uses only the public interfaces of its dependencies (issue 14): no module under
``src/`` imports ``ctypes``, imports a private module or name of another package
(``from x._y import``, ``import x._y``, ``from x import _y``), touches a private attribute
(``_name``) of anything but its own instance or class or a Dicomite module, or reaches for a
bound method's ``__self__``. A private name can change in any release; a public one is
deprecated first.

Between Dicomite's own modules the same holds: no module imports a private module or name of
another (``from dicomite.cli._x import``, ``from dicomite.cli.token import _y``) or reaches a
private name through an imported module or object (``token._y``). What several modules share is
public in the module that owns it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
OWN_PACKAGE = "dicomite"
# (module under src/, violation) -> why it is tolerated for now; to be removed once fixed.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


def _private(name: str) -> bool:
    """``_name``, not ``__name__`` (dunders are the language's public protocol)."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


class _Scan(ast.NodeVisitor):
    def __init__(self) -> None:
        self.own_names = {"self", "cls"}  # bound to Dicomite's own objects and modules
        self.found: list[tuple[int, str]] = []

    def _flag(self, node: ast.AST, what: str) -> None:
        self.found.append((getattr(node, "lineno", 0), what))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == OWN_PACKAGE:
                self.own_names.add(alias.asname or parts[0])
            else:
                self._external_module(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or module.split(".")[0] == OWN_PACKAGE:
            self.own_names.update(alias.asname or alias.name for alias in node.names)
            return
        self._external_module(node, module)
        for alias in node.names:
            if _private(alias.name):
                self._flag(node, f"imports the private name {alias.name} of {module}")

    def _external_module(self, node: ast.AST, module: str) -> None:
        parts = module.split(".")
        if parts[0] == "ctypes":
            self._flag(node, f"imports {module}")
        elif any(_private(part) for part in parts):
            self._flag(node, f"imports the private module {module}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._attribute(node, node.attr, node.value)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        """``getattr(x, "_name")`` and its kin are attribute accesses too."""
        accessors = ("getattr", "setattr", "delattr", "hasattr")
        if isinstance(node.func, ast.Name) and node.func.id in accessors and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                self._attribute(node, name.value, node.args[0])
        self.generic_visit(node)

    def _attribute(self, node: ast.AST, name: str, owner: ast.expr) -> None:
        if name == "__self__":
            self._flag(node, f"reaches for {ast.unparse(owner)}.__self__")
        elif _private(name) and not (isinstance(owner, ast.Name) and owner.id in self.own_names):
            self._flag(node, f"touches the private attribute {ast.unparse(owner)}.{name}")


def violations(source: str) -> list[tuple[int, str]]:
    scan = _Scan()
    scan.visit(ast.parse(source))
    return scan.found


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_src_uses_only_public_interfaces() -> None:
    found = {
        (path.relative_to(SRC).as_posix(), what): line
        for path in _modules()
        for line, what in violations(path.read_text(encoding="utf-8"))
    }
    unexpected = [
        f"src/{module}:{line}: {what}"
        for (module, what), line in found.items()
        if (module, what) not in KNOWN_EXCEPTIONS
    ]
    assert not unexpected, "\n".join(unexpected)
    stale = set(KNOWN_EXCEPTIONS) - set(found)
    assert not stale, f"known exceptions that are gone, remove them: {sorted(stale)}"


def test_the_scan_covers_the_package() -> None:
    names = {path.relative_to(SRC).as_posix() for path in _modules()}
    assert {"dicomite/app.py", "dicomite/dicom/model/rawjson.py", "dicomite/cli/main.py"} <= names


@pytest.mark.parametrize(
    "source",
    [
        "import ctypes",
        "import ctypes.util as util",
        "from ctypes import CDLL",
        "import uvicorn._types",
        "from pydicom._private import thing",
        "from uvicorn.protocols.http import _helpers",
        "from pydicom import _version",
        "import pydicom\npydicom._config",
        "from pydicom import Dataset\nDataset._character_set",
        "def f(dataset):\n    dataset._parent_encoding = 'x'",
        "def f(x):\n    return x.dataset()._character_set",
        "def f(receive):\n    return receive.__self__",
        "def f(server):\n    return getattr(server, '_loop')",
        "class A:\n    def f(self):\n        return self.store._engine",
    ],
)
def test_a_violation_is_found(source: str) -> None:
    assert violations(source)


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations",
        "import os\nos.path.join('a', 'b')",
        "from dicomite.cli import _shared\n_shared.console",
        "from dicomite import services\nservices._default",
        "from . import _helpers",
        "class A:\n    def f(self):\n        return self._store\n"
        "    @classmethod\n    def g(cls):\n        return cls._made",
        "def f(x):\n    return x.__class__.__name__",
    ],
)
def test_public_use_is_not_a_violation(source: str) -> None:
    assert violations(source) == []


# --- private names of other Dicomite modules --------------------------------------------------


def _imported_private(module: str, names: list[str]) -> list[str]:
    parts = module.split(".")
    found = [f"imports the private module {module}"] if any(map(_private, parts)) else []
    private_names = [name for name in names if _private(name)]
    return found + [f"imports the private name {name} of {module}" for name in private_names]


def own_private_uses(source: str) -> list[tuple[int, str]]:
    """Private modules and names of other Dicomite modules that ``source`` imports or uses."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    imported: set[str] = set()  # names bound to another Dicomite module or one of its objects
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or _own(node.module or "")):
            module = "." * node.level + (node.module or "")
            names = [alias.name for alias in node.names]
            found += [(node.lineno, what) for what in _imported_private(module, names)]
            imported.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in (a for a in node.names if _own(a.name)):
                found += [(node.lineno, what) for what in _imported_private(alias.name, [])]
                imported.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in imported:
                found.append((node.lineno, f"uses the private name {ast.unparse(node)}"))
    return found


def _own(module: str) -> bool:
    return module.split(".")[0] == OWN_PACKAGE


def test_no_module_uses_a_private_name_of_another() -> None:
    found = [
        f"src/{path.relative_to(SRC).as_posix()}:{line}: {what}"
        for path in _modules()
        for line, what in own_private_uses(path.read_text(encoding="utf-8"))
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "from dicomite.cli._shared import say",
        "import dicomite.cli._shared",
        "from dicomite.cli.token import _trust",
        "from . import _helpers",
        "from dicomite.cli import token\ntoken._trust",
        "from dicomite import identity\nidentity.consent._object_id",
        "from dicomite.store.tables import Tenant\nTenant._private",
    ],
)
def test_a_private_use_across_modules_is_found(source: str) -> None:
    assert own_private_uses(source)


@pytest.mark.parametrize(
    "source",
    [
        "from dicomite.cli.shared import say",
        "from dicomite.cli import token\ntoken.request_token",
        "def _own():\n    pass\n_own()",
        "class A:\n    def f(self):\n        return self._store",
        "import os\nos._exit",
        "from dicomite.identity import directory\ndirectory.__name__",
    ],
)
def test_own_private_names_are_not_a_violation(source: str) -> None:
    assert own_private_uses(source) == []
