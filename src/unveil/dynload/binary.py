"""Library names in the bytes of a binary that imports ``dlopen``.

A library loaded with ``dlopen("libfoo.so.1")`` keeps that name as a string in its data,
whatever language it was written in (Rust string literals are not NUL-terminated, so raw
bytes are searched with a regex, not ``strings``).  Only files whose dynamic string table
names ``dlopen`` are searched, only in their data sections, and what is found is a
low-confidence guess: a name in the data is not proof of a load.
"""

from __future__ import annotations

import posixpath
import re

from unveil.errors import FormatError, SourceError
from unveil.formats.blob import Blob
from unveil.identify.banners import scan_regions
from unveil.model import Binary

__all__ = ["dlopen_names"]

# No look-behind for the character before "lib": it disables the regex engine's literal-prefix
# search (1.5 s instead of 0.04 s over libtorch_cpu's 17 MiB of data); checked by hand below.
_NAME = re.compile(rb"lib[A-Za-z0-9_+\-]{1,64}(?:\.[A-Za-z0-9_+\-]+)*?"
                   rb"\.so(?:\.[0-9]+){0,3}(?![A-Za-z0-9_])")
_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-.")
MAX_NAMES = 64
MAX_BYTES = 32 << 20


def dlopen_names(blob: Blob, path: str, binary: Binary) -> tuple[str, ...]:
    own = {binary.soname, posixpath.basename(path), *binary.needed}
    out: list[str] = []
    budget = MAX_BYTES
    try:
        for off, size in scan_regions(blob):
            size = min(size, budget)
            if size <= 0:
                break
            budget -= size
            data = blob.read(off, size)
            for m in _NAME.finditer(data):
                if m.start() and data[m.start() - 1] in _WORD:
                    continue  # inside a longer word
                name = m.group(0).decode("ascii", "replace")
                if name not in own and name not in out:
                    out.append(name)
                    if len(out) >= MAX_NAMES:
                        return tuple(out)
    except (FormatError, SourceError):
        return tuple(out)
    return tuple(out)
