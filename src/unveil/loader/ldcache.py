"""``/etc/ld.so.cache`` in its binary forms, and what ``ldconfig`` would make of
``/etc/ld.so.conf`` when a root has no cache.

Formats (glibc ``elf/cache.c``, ``sysdeps/generic/dl-cache.h``): the old ``ld.so-1.7.0``
table optionally followed by the new ``glibc-ld.so.cache1.1`` table; glibc >= 2.32 writes
only the new one, with an extension directory whose ``glibc-hwcaps`` section names the
subdirectory of entries flagged with bit 62 of ``hwcap``.
"""

from __future__ import annotations

import fnmatch
import posixpath
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from unveil.errors import FormatError, LoaderError, SourceError
from unveil.formats.blob import Blob

__all__ = ["CacheEntry", "LdCache", "parse_ld_cache", "read_ld_so_conf"]

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache1.1"
EXTENSION_MAGIC = 0xEAA42174
TAG_GLIBC_HWCAPS = 1
HWCAP_EXTENSION = 1 << 62
MAX_ENTRIES = 1 << 20


@dataclass(frozen=True, slots=True)
class CacheEntry:
    key: str
    value: str
    flags: int
    hwcap: int
    hwcaps_subdir: str | None = None


@dataclass(frozen=True, slots=True)
class LdCache:
    entries: tuple[CacheEntry, ...]
    source: str
    emulated: bool = False

    def index(self) -> dict[str, list[CacheEntry]]:
        out: dict[str, list[CacheEntry]] = {}
        for e in self.entries:
            out.setdefault(e.key, []).append(e)
        return out


def _cstr(data: bytes, off: int) -> str:
    if not 0 <= off < len(data):
        raise FormatError(f"ld.so.cache string offset {off:#x} out of range", off)
    end = data.find(b"\0", off)
    if end < 0:
        raise FormatError("unterminated string in ld.so.cache", off)
    return data[off:end].decode("utf-8", "surrogateescape")  # as os spells file names


def parse_ld_cache(blob: Blob, source: str) -> LdCache:
    """Parse a cache file (either byte order, old+new or new-only layout)."""
    data = blob.read(0, blob.size)
    base = 0
    if data.startswith(OLD_MAGIC):
        if len(data) < 16:
            raise FormatError("ld.so.cache too short", 0)
        (nlibs,) = struct.unpack_from("<I", data, 12)
        if nlibs > MAX_ENTRIES or 16 + nlibs * 12 > len(data):
            raise FormatError(f"ld.so.cache claims {nlibs} entries", 12)
        base = (16 + nlibs * 12 + 7) & ~7
        if not data.startswith(NEW_MAGIC, base):
            # Only the old format: no flags check possible beyond the old ones.
            entries = []
            strings = 16 + nlibs * 12
            for i in range(nlibs):
                flags, key, value = struct.unpack_from("<iII", data, 16 + 12 * i)
                entries.append(CacheEntry(_cstr(data, strings + key), _cstr(data, strings + value),
                                          flags, 0))
            return LdCache(tuple(entries), source)
    if not data.startswith(NEW_MAGIC, base):
        raise FormatError("not an ld.so.cache file", 0)
    new = data[base:]
    if len(new) < 48:
        raise FormatError("ld.so.cache header truncated", base)
    # The flags byte (glibc >= 2.32) records the byte order; 2 = little, 3 = big.
    e = ">" if new[28] & 3 == 3 else "<"
    nlibs, _len_strings = struct.unpack_from(e + "II", new, 20)
    (ext_off,) = struct.unpack_from(e + "I", new, 32)
    if nlibs > MAX_ENTRIES or 48 + nlibs * 24 > len(new):
        raise FormatError(f"ld.so.cache claims {nlibs} entries", base + 20)
    subdirs: list[str] = []
    if ext_off and ext_off + 8 <= len(new):
        magic, count = struct.unpack_from(e + "II", new, ext_off)
        if magic == EXTENSION_MAGIC:
            if ext_off + 8 + 16 * min(count, 64) > len(new):
                raise FormatError("ld.so.cache extension directory truncated", base + ext_off)
            for i in range(min(count, 64)):
                tag, _fl, off, size = struct.unpack_from(e + "IIII", new, ext_off + 8 + 16 * i)
                if tag == TAG_GLIBC_HWCAPS and off + size <= len(new) and size <= 4096:
                    for j in range(size // 4):
                        (soff,) = struct.unpack_from(e + "I", new, off + 4 * j)
                        subdirs.append(_cstr(new, soff))
    entries = []
    for i in range(nlibs):
        flags, key, value, _osv, hwcap = struct.unpack_from(e + "iIIIQ", new, 48 + 24 * i)
        sub = None
        if hwcap & HWCAP_EXTENSION:
            idx = hwcap & 0xFFFFFFFF
            sub = subdirs[idx] if idx < len(subdirs) else f"#{idx}"
        entries.append(CacheEntry(_cstr(new, key), _cstr(new, value), flags, hwcap, sub))
    return LdCache(tuple(entries), source)


ReadText = Callable[[str], str]
Glob = Callable[[str], Iterable[str]]


def read_ld_so_conf(read_text: ReadText, glob: Glob, path: str = "/etc/ld.so.conf",
                    _depth: int = 0) -> list[str]:
    """Directories listed in ``ld.so.conf`` with its ``include`` globs expanded, in order.

    ``read_text(path)`` returns a file's text or raises :class:`SourceError`;
    ``glob(dir)`` lists a directory's entry names (relative includes are relative to the
    including file's directory, as ldconfig does).
    """
    if _depth > 16:
        raise LoaderError(f"ld.so.conf includes nest too deep at {path}")
    try:
        text = read_text(path)
    except SourceError:
        return []
    out: list[str] = []
    seen: set[str] = set()
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include"):
            for pattern in line[len("include"):].split():
                if not pattern.startswith("/"):
                    pattern = posixpath.join(posixpath.dirname(path), pattern)
                d, pat = posixpath.split(pattern)
                for name in sorted(glob(d)):
                    if fnmatch.fnmatchcase(name, pat):
                        for sub in read_ld_so_conf(read_text, glob, posixpath.join(d, name),
                                                   _depth + 1):
                            out.append(sub)
                            seen.add(sub)
        elif line.startswith("hwcap"):
            continue
        else:
            for d in line.replace(",", " ").split():
                d = d.split("=", 1)[0]
                if d not in seen:  # (a set: ld.so.conf files of 50,000 lines exist in tests)
                    seen.add(d)
                    out.append(d.rstrip("/") or "/")
    return out

