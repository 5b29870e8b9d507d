"""The code of an earlier commit, installed beside this one, to run side by side (--baseline).

The commit's tree is exported with ``git archive`` (not ``git worktree add``: that would
register a worktree in the repository's metadata) into ``bench/results/baseline-<sha>/``,
which is git-ignored, and gets its own virtual environment there: ``pip install -e .`` of
that tree, constrained by this checkout's ``constraints.txt`` for the packages both share
(an older tree has no constraints file of its own; what only it needs, such as uvicorn, comes
unpinned). Both steps run once per commit; a ``.installed`` marker records a finished install.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from _processes import REPO_ROOT, RESULTS_DIR

DEFAULT_BASELINE = "bf0f29a"  # the last commit on the patched uvicorn serving stack
# The old `dicomite serve` defaulted to 1 worker; the current one to one per core. The
# baseline is started with as many workers as the current server gets, for the same count.
BASELINE_NAME = "baseline"


@dataclass(frozen=True)
class Baseline:
    ref: str
    commit: str
    tree: Path  # the exported source tree (its cwd when serving)
    executable: Path  # its venv's `dicomite`


def _git(*args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def ensure_baseline(ref: str) -> Baseline:
    """Export `ref` and install it into its own venv, unless that was done before."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    home = RESULTS_DIR / f"baseline-{commit[:12]}"
    tree, venv, marker = home / "src", home / "venv", home / ".installed"
    executable = venv / "bin" / "dicomite"
    if marker.exists() and executable.exists():
        return Baseline(ref, commit, tree, executable)
    if home.exists():  # an interrupted export or install: start over
        shutil.rmtree(home)
    tree.mkdir(parents=True)
    print(f"baseline {ref} ({commit[:12]}): exporting into {tree}", flush=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    print(f"baseline: creating {venv} and installing it (pip install -e)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    constraints = REPO_ROOT / "constraints.txt"
    if constraints.exists():
        pip += ["-c", str(constraints)]
    subprocess.run([*pip, "-e", str(tree)], check=True)
    if not executable.exists():
        raise SystemExit(f"baseline install finished without {executable}")
    marker.write_text(commit + "\n")
    return Baseline(ref, commit, tree, executable)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both benches take for the servers they start."""
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Dicomite worker processes (default: none given, the server's own default)",
    )
    parser.add_argument(
        "--baseline",
        nargs="?",
        const=DEFAULT_BASELINE,
        default=None,
        metavar="REF",
        help=f"also run this commit's code side by side (default {DEFAULT_BASELINE})",
    )
