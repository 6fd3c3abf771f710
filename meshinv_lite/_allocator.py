"""Keep freed memory in the process (glibc), so large temporary tensors do not page-fault each step.

PyTorch on the CPU allocates and frees many multi-megabyte temporaries per optimization step.
By default glibc returns every block above 128 KiB to the kernel (``mmap``/``munmap``) and the
next step faults the pages in again; on virtual machines a page fault is expensive and this
alone can make small-tensor workloads 2-3x slower. Raising glibc's mmap and trim thresholds
(what ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` do) keeps those pages mapped.

Applied by :func:`meshinv_lite.config.set_threads` (every notebook, the CLI and the benches call it), on Linux with glibc only; set the environment
variable ``MESHINV_NO_MALLOC_TUNING=1`` to leave the allocator alone.
"""
from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_applied = False


def tune_glibc_malloc(mmap_threshold: int = 32 * 1024 * 1024, trim_threshold: int = 1 << 30) -> bool:
    """Raise glibc's mmap/trim thresholds; returns True when applied."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("MESHINV_NO_MALLOC_TUNING"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    _applied = bool(ok)
    return _applied
