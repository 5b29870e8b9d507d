"""Heap settings for the server process (glibc only; elsewhere nothing is changed).

The event loop and the HTTP parser hand request bodies over in fresh objects of up to
``lean_http.READ_BUFFER_BYTES`` (just under 1 MiB). glibc serves blocks that large with
``mmap`` and unmaps them when freed, so every chunk of an upload faulted in and zeroed new pages:
a tenth of the kernel time of a STOW. Served from the heap and kept there when freed, the same
pages are used again. Larger blocks still get their own mapping, and the heap is still given
back above ``_TRIM_BYTES`` of free space at its top.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt(3) parameter numbers, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# Blocks below this size come from the heap, a whole read's body chunk among them. (2 MiB cost
# study-metadata requests 7 % of their rate, and gained STOW nothing measurable.)
_MMAP_BYTES = 1024 * 1024
_TRIM_BYTES = 16 * 1024 * 1024  # free space kept at the top of a heap


def reuse_freed_buffers() -> bool:
    """Apply the settings; whether they took effect."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_BYTES) and mallopt(_M_TRIM_THRESHOLD, _TRIM_BYTES))
