"""The least any Python tool must do to list a wheel's ELF dependencies: the floor.

Usage: ``python bench/floor.py [--threads N] WHEEL`` (``compare.py --tools ...,floor``
runs it as a command beside the real tools).

It starts the interpreter, reads the zip's central directory (a bare ``struct`` loop over
it: :mod:`zipfile`'s took 0.13 s of torch's 12,248 entries, twice unveil's own reader, and
unveil once came in under a floor that used it), and inflates each member that starts with
the ELF magic up to the end of its dynamic segment (``PT_DYNAMIC``: the needed
names, SONAME and search paths live there, or in ``.dynstr`` before it) with python-isal,
the fastest inflater available here, on ``--threads`` threads (default 2, this machine's
cores), biggest member first, skipping the text endings unveil skips.  It parses nothing
else, resolves nothing and prints only a count.  No tool that reads the dependencies of a
deflated wheel member can be faster on the same machine and interpreter without skipping
bytes a deflate stream cannot skip: so ``elfdeps s / floor s`` is the best ratio any such
tool can reach against elfdeps.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from isal import isal_zlib

ELF_MAGIC = b"\x7fELF"
PT_DYNAMIC = 2
STEP = 256 << 10  # compressed bytes fed per call
OUT = 1 << 20  # inflated bytes produced per call at most
#: endings no tool need open to look for the ELF magic (unveil's default ``skip_suffixes``)
TEXT = frozenset({
    ".py", ".pyc", ".pyi", ".pyx", ".pxd", ".txt", ".md", ".rst", ".json", ".toml",
    ".yaml", ".yml", ".cfg", ".ini", ".h", ".hpp", ".hh", ".c", ".cc", ".cpp", ".cu",
    ".cuh", ".html", ".css", ".js", ".csv", ".typed", ".pem", ".png", ".jpg", ".svg",
})


def _dynamic_end(head: bytes) -> int | None:
    """End offset of PT_DYNAMIC from the first bytes of an ELF file, or None."""
    if len(head) < 64 or head[:4] != ELF_MAGIC:
        return None
    wide, end = head[4] == 2, "<" if head[5] == 1 else ">"
    if wide:
        phoff, = struct.unpack_from(end + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(end + "HH", head, 54)
    else:
        phoff, = struct.unpack_from(end + "I", head, 28)
        phentsize, phnum = struct.unpack_from(end + "HH", head, 42)
    for i in range(phnum):
        at = phoff + i * phentsize
        if at + phentsize > len(head):
            return None
        if wide:
            p_type, _f, p_offset, _v, _p, p_filesz = struct.unpack_from(end + "IIQQQQ", head, at)
        else:
            p_type, p_offset, _v, _p, p_filesz = struct.unpack_from(end + "IIIII", head, at)
        if p_type == PT_DYNAMIC:
            return int(p_offset + p_filesz)
    return 0  # static: the header is all there is to read


class _Entry(NamedTuple):
    name: str
    method: int
    compress_size: int
    file_size: int
    header_offset: int


_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")


def _entries(fd: int) -> list[_Entry]:
    """The central directory's file entries (zip64 end records are not handled: no wheel
    here needs them, and a floor need not be general)."""
    size = os.fstat(fd).st_size
    tail = os.pread(fd, min(size, 65557), max(0, size - 65557))
    at = tail.rfind(b"PK\x05\x06")
    count, cd_size, cd_off = struct.unpack_from("<HII", tail, at + 10)
    cd = os.pread(fd, cd_size, cd_off)
    out, p = [], 0
    for _ in range(count):
        (_sig, _vm, _vn, _fl, method, _t, _d, _crc, csize, usize, nlen, elen, clen, _disk,
         _ia, _ea, lho) = _CENTRAL.unpack_from(cd, p)
        name = cd[p + 46:p + 46 + nlen].decode("utf-8", "replace")
        out.append(_Entry(name, method, csize, usize, lho))
        p += 46 + nlen + elen + clen
    return out


def _member(fd: int, info: _Entry) -> int:
    """Inflate one member as far as its dynamic segment; the number of bytes produced."""
    name_len, extra_len = struct.unpack_from("<HH", os.pread(fd, 30, info.header_offset), 26)
    pos = info.header_offset + 30 + name_len + extra_len
    if info.method == 0:  # stored
        head = os.pread(fd, 4096, pos)
        stop = _dynamic_end(head) or 0
        return max(len(head), len(os.pread(fd, max(stop - 4096, 0), pos + 4096)) + 4096)
    inflater = isal_zlib.decompressobj(-15)
    end = pos + info.compress_size
    out = inflater.decompress(os.pread(fd, min(4096, end - pos), pos), 4096)
    pos += 4096
    stop = _dynamic_end(out)
    produced = len(out)
    if stop is None:
        return produced
    pending = inflater.unconsumed_tail
    while produced < stop:
        # Bounded output: unbounded pieces (a few MB each) cost 8 % more on
        # libtorch_cpu.so in fresh allocations.
        if not pending:
            if pos >= end:
                break
            pending = os.pread(fd, min(STEP, end - pos), pos)
            pos += len(pending)
        produced += len(inflater.decompress(pending, OUT))
        pending = inflater.unconsumed_tail
    return produced


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    fd = os.open(args.wheel, os.O_RDONLY)
    try:
        members = [i for i in _entries(fd) if not i.name.endswith("/") and i.file_size >= 64
                   and os.path.splitext(i.name)[1] not in TEXT]
        members.sort(key=lambda i: i.compress_size, reverse=True)
        with ThreadPoolExecutor(args.threads) as pool:
            produced = sum(pool.map(lambda i: _member(fd, i), members))
    finally:
        os.close(fd)
    print(f"{len(members)} members, {produced} bytes inflated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
