"""Give back the memory that only start-up needed, so the agent's resident set is its working set.

Starting the agent touches far more than the poll loop ever runs again: importing numpy and onnxruntime
runs their library initialisers, and building an inference session walks onnxruntime's registry of every
kernel it ships (about 30 MiB of library pages, most of them in ``onnxruntime_pybind11_state.so``). The
loop afterwards executes a few kernels and a few numpy ufuncs. Those start-up pages stay mapped and count
in the resident set until the kernel reclaims them under memory pressure; on a 512 MiB box they push out
the page cache first, and they make ``ps`` say the agent uses twice what it needs.

:func:`release_startup_pages` asks the kernel, once start-up is over, to unmap the clean pages of
read-only file mappings (library code and constants) with ``MADV_DONTNEED``, and glibc to return free heap
with ``malloc_trim``. The pages stay in the page cache; whatever the loop uses comes back on its next
touch as a minor fault, and stays. Nothing private is touched: a mapping is skipped if it is writable or
holds any private (copy-on-write) page, since ``MADV_DONTNEED`` would revert such a page to the file.
Heap, stacks and every other anonymous page are left alone, so the steady number that follows is honest:
what the loop really keeps resident.
"""

from __future__ import annotations

import ctypes
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MADV_DONTNEED = 4  # the same value on x86_64, aarch64 and armv7 Linux
_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$")


@dataclass(frozen=True)
class Released:
    """What one release did, in MiB of resident memory (``VmRSS``)."""

    before_mib: float
    after_mib: float
    mappings: int  # file mappings that were advised

    @property
    def released_mib(self) -> float:
        return round(self.before_mib - self.after_mib, 1)


@dataclass(frozen=True)
class Mapping:
    start: int
    end: int
    perms: str
    path: str
    rss_kib: int
    private_kib: int  # pages of this mapping that are no longer the file's (Anonymous:)

    @property
    def releasable(self) -> bool:
        """Clean, read-only, file-backed and resident: safe to drop and fault back from the file."""
        return (
            self.path.startswith("/")
            and "w" not in self.perms
            and self.private_kib == 0
            and self.rss_kib > 0
        )


def mappings(smaps: str) -> list[Mapping]:
    """The mappings of a ``/proc/<pid>/smaps`` text, with their resident and private sizes."""
    out: list[Mapping] = []
    head: tuple[int, int, str, str] | None = None
    rss = private = 0
    for line in smaps.splitlines():
        m = _HEADER.match(line)
        if m:
            if head is not None:
                out.append(Mapping(*head, rss, private))
            head = (int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4).strip())
            rss = private = 0
        elif line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Anonymous:"):
            private = int(line.split()[1])
    if head is not None:
        out.append(Mapping(*head, rss, private))
    return out


def resident_mib(status: str | None = None) -> float:
    """This process's ``VmRSS`` in MiB (NaN where ``/proc`` is not there)."""
    try:
        text = status if status is not None else Path("/proc/self/status").read_text()
    except OSError:
        return float("nan")
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) / 1024 if m else float("nan")


def release_startup_pages() -> Released | None:
    """Drop the clean library pages start-up touched and trim the heap; None where not supported
    (not Linux, no ``/proc``). Safe to call from any thread at any time; it costs a few milliseconds."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        smaps = Path("/proc/self/smaps").read_text()
    except OSError:
        return None
    before = resident_mib()
    libc = ctypes.CDLL(None, use_errno=True)
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    advised = 0
    for mapping in mappings(smaps):
        if mapping.releasable and madvise(mapping.start, mapping.end - mapping.start, MADV_DONTNEED) == 0:
            advised += 1
    trim = getattr(libc, "malloc_trim", None)  # glibc only; musl has no such call
    if trim is not None:
        trim(0)
    released = Released(round(before, 1), round(resident_mib(), 1), advised)
    log.info(
        "released start-up memory",
        extra={"rss_before_mib": released.before_mib, "rss_after_mib": released.after_mib},
    )
    return released
