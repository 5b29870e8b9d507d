"""Heap settings: body-sized blocks come back from the heap instead of fresh mappings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dicomite.lean_http import READ_BUFFER_BYTES

# Allocates 8 body chunks of the largest size the parser hands over (a full read buffer) and
# frees them, 50 times (as the event loop does, several in flight), and prints the page
# faults that took, before and after.
_SCRIPT = """
import resource
from dicomite.heap import reuse_freed_buffers
from dicomite.lean_http import READ_BUFFER_BYTES

def faults_of_chunks():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        held = [b"x" * READ_BUFFER_BYTES for _ in range(8)]
        del held
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

plain = faults_of_chunks()
applied = reuse_freed_buffers()
print(plain, applied, faults_of_chunks())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc settings")
def test_freed_body_chunks_are_reused_without_page_faults() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    plain, applied, tuned = out.stdout.split()
    assert applied == "True"
    pages = 50 * 8 * READ_BUFFER_BYTES // 4096  # 4 KB pages of every block allocated
    assert int(plain) > pages // 2  # blocks mapped and faulted in afresh
    assert int(tuned) < pages // 20  # the same heap pages, faulted in once
