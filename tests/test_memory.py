"""Giving back start-up memory (edge_agent.memory): it shrinks the resident set and changes nothing else."""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge_agent import memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and madvise are Linux's")

SMAPS = """\
55d0c0000000-55d0c0021000 rw-p 00000000 00:00 0                          [heap]
Rss:                 132 kB
Anonymous:           132 kB
Swap:                  0 kB
55d0c1000000-55d0c1200000 r-xp 00001000 08:01 77                         /usr/bin/python3.11
Rss:                1024 kB
Anonymous:             0 kB
7f0000000000-7f0000400000 r-xp 00010000 08:01 1234                       /usr/lib/libexample.so.1
Rss:                2048 kB
Anonymous:             0 kB
Swap:                  0 kB
7f0000400000-7f0000401000 r--p 00410000 08:01 1234                       /usr/lib/libexample.so.1
Rss:                   4 kB
Anonymous:             4 kB
Swap:                  0 kB
7f0000401000-7f0000402000 rw-p 00411000 08:01 1234                       /usr/lib/libexample.so.1
Rss:                   4 kB
Anonymous:             4 kB
7f0000402000-7f0000404000 r--p 00412000 08:01 1234                       /usr/lib/libexample.so.1
Rss:                   4 kB
Anonymous:             0 kB
Swap:                  4 kB
7f0000500000-7f0000510000 r--p 00000000 08:01 99                         /opt/x/_core.cpython-311.so (deleted)
Rss:                  64 kB
Anonymous:             0 kB
7f0000520000-7f0000530000 r--p 00000000 08:01 97                         /var/lib/data.bin
Rss:                  64 kB
Anonymous:             0 kB
7f0000540000-7f0000550000 r--s 00000000 08:01 96                         /usr/lib/libshm.so
Rss:                  64 kB
Anonymous:             0 kB
7f0000600000-7f0000610000 r--p 00000000 08:01 98                         /usr/lib/cold.so
Rss:                   0 kB
Anonymous:             0 kB
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
Rss:                   0 kB
Anonymous:             0 kB
"""


def test_only_clean_read_only_resident_library_pages_are_releasable() -> None:
    maps = memory.mappings(SMAPS)
    assert [m.path for m in maps if m.releasable()] == [
        "/usr/lib/libexample.so.1",
        "/opt/x/_core.cpython-311.so (deleted)",  # replaced by an upgrade: still the file we run
    ]
    assert next(m.path for m in maps if m.releasable("/usr/bin/python3.11")) == "/usr/bin/python3.11"
    text = maps[2]
    assert (text.start, text.end, text.perms, text.rss_kib) == (0x7F0000000000, 0x7F0000400000, "r-xp", 2048)
    relro = maps[3]  # read-only now, but relocated: its page is ours, not the file's
    assert relro.perms == "r--p" and relro.anon_kib == 4 and not relro.releasable()
    swapped = maps[5]  # the same, with the private page out on swap: dropping it would lose it
    assert swapped.swap_kib == 4 and swapped.anon_kib == 0 and not swapped.releasable()


def test_parses_this_process() -> None:
    maps = memory.mappings(Path("/proc/self/smaps").read_text())
    assert any(m.path == "[heap]" and not m.releasable() for m in maps)
    assert any(m.releasable() for m in maps)  # at least this interpreter's extension modules
    total_mib = sum(m.rss_kib for m in maps) / 1024
    assert total_mib == pytest.approx(memory.resident_mib(), rel=0.1)


def test_private_pages_of_a_read_only_mapping_survive_and_clean_ones_read_back(tmp_path: Path) -> None:
    """The guard that makes MADV_DONTNEED safe: a copy-on-write page (what relocation leaves in a library's
    RELRO) must keep our bytes; a clean page must read the file again."""
    size = 4 * mmap.PAGESIZE
    # named like libraries, so that only the guard below keeps the dirty one from being released
    dirty_file, clean_file = tmp_path / "libdirty.so", tmp_path / "libclean.so"
    dirty_file.write_bytes(b"F" * size)
    clean_file.write_bytes(bytes(range(256)) * (size // 256))
    with open(dirty_file, "rb") as fd, open(clean_file, "rb") as fc:
        dirty = mmap.mmap(fd.fileno(), size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        clean = mmap.mmap(fc.fileno(), size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    dirty[: mmap.PAGESIZE] = b"P" * mmap.PAGESIZE  # copy-on-write: now our page, not the file's
    anchor = ctypes.c_char.from_buffer(dirty)
    address = ctypes.addressof(anchor)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(address, size, mmap.PROT_READ) == 0, ctypes.get_errno()
    del anchor
    assert clean[:256] == bytes(range(256))  # make the clean mapping resident

    def ours(path: Path) -> memory.Mapping:
        maps = memory.mappings(Path("/proc/self/smaps").read_text())
        return next(m for m in maps if m.path == str(path))

    assert ours(dirty_file).start == address and ours(dirty_file).perms.startswith("r--")
    assert not ours(dirty_file).releasable() and ours(clean_file).releasable()
    assert memory.release_startup_pages() is not None
    assert ours(clean_file).rss_kib == 0  # released: no longer in our resident set
    assert dirty[: mmap.PAGESIZE] == b"P" * mmap.PAGESIZE
    assert dirty[mmap.PAGESIZE : 2 * mmap.PAGESIZE] == b"F" * mmap.PAGESIZE
    assert clean[:] == bytes(range(256)) * (size // 256)
    libc.mprotect(address, size, mmap.PROT_READ | mmap.PROT_WRITE)
    dirty.close()
    clean.close()


def test_release_shrinks_an_onnxruntime_process_and_inference_is_unchanged(tmp_path: Path) -> None:
    """In a fresh interpreter, as in the agent: numpy + onnxruntime + the bundled model's session."""
    script = textwrap.dedent("""
        import json, numpy as np
        from edge_agent.analytics.runner import ModelRunner
        from pathlib import Path
        from edge_agent.memory import mappings, release_startup_pages, resident_mib
        def ort_kib():
            maps = mappings(Path("/proc/self/smaps").read_text())
            return sum(m.rss_kib for m in maps if "onnxruntime_pybind11_state" in m.path)
        runner = ModelRunner()
        rng = np.random.default_rng(7)
        n = runner.n_features
        runner.set_normal(rng.normal(size=n).astype(np.float32), np.ones(n, np.float32))
        x = rng.normal(size=n).astype(np.float32)
        score, contrib = runner.run(x)
        before = (score, contrib.copy())  # run() hands back a view of its output buffer
        ort_before = ort_kib()
        released = release_startup_pages()
        after = runner.run(x)
        print(json.dumps({
            "released": released.released_mib, "mappings": released.mappings, "rss": resident_mib(),
            "ort_before": ort_before, "ort_after": ort_kib(),
            "same": before[0] == after[0] and bool((before[1] == after[1]).all()),
        }))
    """)
    # Pages pip has just written are dirty and cannot be evicted yet (drop_unmapped_cache); an installed
    # box runs long after that, so let the test see the same.
    os.sync()
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["same"], result
    assert result["mappings"] > 10 and result["released"] > 0
    # Building the session touched most of onnxruntime's library (its kernel registry, ~20 MiB on
    # x86_64); scoring needs a small part of it.
    assert result["ort_after"] < result["ort_before"] / 2, result
