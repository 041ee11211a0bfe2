"""Give back the memory that only start-up needed, so the agent's resident set is its working set.

Starting the agent touches far more than the poll loop ever runs again: importing numpy and onnxruntime
runs their library initialisers, and building an inference session walks onnxruntime's registry of every
kernel it ships (about 30 MiB of library pages, most of them in ``onnxruntime_pybind11_state.so``). The
loop afterwards executes a few kernels and a few numpy ufuncs. Those start-up pages stay mapped, so they
count in the agent's resident set and the kernel's reclaim treats them as in use (mapped code gets a
second pass before eviction): ``ps`` shows the agent at 78 MiB when its loop keeps 54 MiB busy.

:func:`release_startup_pages` asks the kernel, once start-up is over, to unmap the clean pages of the
shared libraries' read-only mappings (code and constants) with ``MADV_DONTNEED``, and glibc to return free
heap with ``malloc_trim``, then evicts those libraries' cached pages that no process maps
(:func:`drop_unmapped_cache`). Whatever the loop uses comes back on its next touch, and stays. Nothing
private is touched: a mapping is skipped if it is writable, shared, or holds any private copy-on-write
page, resident or swapped out (a library's relocated RELRO), since ``MADV_DONTNEED`` would revert such a
page to the file's bytes. Heap, stacks and every other anonymous page are left alone, so the
steady number that follows is honest: what the loop really keeps resident.

Only shared libraries and the interpreter's executable are advised, because their address ranges cannot
change under us: CPython never unloads an extension module and ctypes never calls ``dlclose``. Any other
file mapping could be unmapped by another thread between reading ``smaps`` and the ``madvise``, and its
addresses reused.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MADV_DONTNEED = 4  # the same value on x86_64, aarch64 and armv7 Linux
_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$")
_LIBRARY = re.compile(r"^/.*\.so(\.[0-9][0-9.]*)?( \(deleted\))?$")  # libfoo.so, libfoo.so.1.2


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
    anon_kib: int  # resident pages that are no longer the file's: copy-on-write copies (Anonymous:)
    swap_kib: int  # such pages, swapped out (Swap:)

    def releasable(self, executable: str = "") -> bool:
        """A read-only, private, clean and resident mapping of a shared library (or of ``executable``,
        the interpreter, which some distributions link statically): safe to drop and fault back."""
        return (
            (bool(_LIBRARY.match(self.path)) or (bool(executable) and self.path == executable))
            and "w" not in self.perms
            and self.perms.endswith("p")
            and self.anon_kib == 0
            and self.swap_kib == 0
            and self.rss_kib > 0
        )


def mappings(smaps: str) -> list[Mapping]:
    """The mappings of a ``/proc/<pid>/smaps`` text, with their resident and private sizes."""
    out: list[Mapping] = []
    head: tuple[int, int, str, str] | None = None
    sizes = {"Rss:": 0, "Anonymous:": 0, "Swap:": 0}
    for line in smaps.splitlines():
        m = _HEADER.match(line)
        if m:
            if head is not None:
                out.append(Mapping(*head, *sizes.values()))
            head = (int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4).strip())
            sizes = dict.fromkeys(sizes, 0)
        else:
            key, _, rest = line.partition(" ")
            if key in sizes:
                sizes[key] = int(rest.split()[0])
    if head is not None:
        out.append(Mapping(*head, *sizes.values()))
    return out


def resident_mib() -> float | None:
    """This process's ``VmRSS`` in MiB (None where there is no ``/proc``)."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) / 1024 if m else None


def drop_unmapped_cache(path: str) -> None:
    """Evict the cached pages of ``path`` that no process has mapped (``POSIX_FADV_DONTNEED`` skips
    mapped ones, so other programs sharing a library keep theirs).

    Why: the page cache may hold a library in large folios (ext4 on recent kernels, right after the file
    was written, e.g. by ``pip install``), and a fault maps the whole folio back: one inference then
    brought 20 MiB of onnxruntime back instead of 5. Evicted, the pages the loop needs are read again as
    small pages, once, and the memory the rest occupied is free for the box.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # replaced by an upgrade ("(deleted)") or unreadable: leave its cache alone
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def release_startup_pages() -> Released | None:
    """Drop the clean library pages start-up touched and trim the heap; None where not supported
    (not Linux, no ``/proc``). Costs a few milliseconds; call it again after loading something big."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        smaps = Path("/proc/self/smaps").read_text()
    except OSError:
        return None
    before = resident_mib()
    if before is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    try:
        executable = os.path.realpath("/proc/self/exe")
    except OSError:
        executable = ""
    advised = 0
    files: set[str] = set()
    for m in mappings(smaps):
        # EINVAL for locked or huge-page mappings: those simply stay resident
        if m.releasable(executable) and madvise(m.start, m.end - m.start, MADV_DONTNEED) == 0:
            advised += 1
            files.add(m.path)
    for path in files:
        drop_unmapped_cache(path)
    trim = getattr(libc, "malloc_trim", None)  # glibc only; musl has no such call
    if trim is not None:
        trim(0)
    released = Released(round(before, 1), round(resident_mib() or before, 1), advised)
    log.info(
        "released start-up memory",
        extra={"rss_before_mib": released.before_mib, "rss_after_mib": released.after_mib},
    )
    return released
