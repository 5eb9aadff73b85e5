"""Memory settings while scoring: freed buffers are kept for the next chunk.

Every chunk allocates the same large buffers again (the decoded columns, the model's
input matrix, its output). By default neither Arrow's allocator (mimalloc) nor glibc's
``malloc`` keeps large freed blocks, and both Arrow and numpy ask for transparent huge
pages: the next chunk's buffers are faulted in afresh, 2 MB pages that the kernel zeroes
(and, where memory is fragmented, compacts first). That system time can exceed the
scoring itself. So while scoring, Arrow allocates with ``malloc``, numpy uses ordinary
pages and, in a worker process, glibc keeps freed blocks (``mallopt``): after the first
chunks the same memory is reused.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # mallopt parameters (glibc's malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks up to this come from the heap, reused
TRIM_THRESHOLD = 1 << 30  # free memory at the heap's top kept rather than given back


def keep_freed_memory() -> dict[str, bool]:
    """Set up a worker process for good; says which settings took effect
    (``arrow_pool``: Arrow allocates with ``malloc``; ``numpy_small_pages``: numpy does not
    ask for huge pages; ``mallopt``: glibc keeps freed blocks). Each is skipped where it
    does not exist (another C library, allocator or numpy build)."""
    return {
        "arrow_pool": _set_arrow_pool(_system_pool()) is not None,
        "numpy_small_pages": _set_numpy_huge_pages(False) is not None,
        "mallopt": _glibc_keeps_freed(),
    }


@contextmanager
def freed_memory_kept() -> Iterator[None]:
    """The settings of :func:`keep_freed_memory` that can be undone (Arrow's pool, numpy's
    huge pages), for scoring in the caller's process: set back afterwards."""
    pool = _set_arrow_pool(_system_pool())
    huge = _set_numpy_huge_pages(False)
    try:
        yield
    finally:
        if pool is not None:
            _set_arrow_pool(pool)
        if huge is not None:
            _set_numpy_huge_pages(huge)


def _system_pool() -> object | None:
    import pyarrow as pa

    try:
        return pa.system_memory_pool()
    except (NotImplementedError, pa.ArrowException):  # pragma: no cover - builds without it
        logger.info("Arrow's system memory pool is not available: its default is kept")
        return None


def _set_arrow_pool(pool: object | None) -> object | None:
    """Make ``pool`` Arrow's default; the one it replaces (None: nothing was changed)."""
    import pyarrow as pa

    if pool is None:
        return None
    before = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    return before


def _set_numpy_huge_pages(enabled: bool) -> bool | None:
    """Whether numpy asks for huge pages for arrays of 4 MB and more; the previous
    setting (None: this numpy cannot say)."""
    import importlib

    try:
        multiarray = importlib.import_module("numpy._core.multiarray")
    except ImportError:  # pragma: no cover - numpy 1
        multiarray = importlib.import_module("numpy.core.multiarray")
    switch = getattr(multiarray, "_set_madvise_hugepage", None)
    return None if switch is None else bool(switch(enabled))


def _glibc_keeps_freed() -> bool:
    if not _is_glibc():
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError, AttributeError):  # not Linux, or another C library
        return False
