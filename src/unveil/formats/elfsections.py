"""The section header table of an ELF file, parsed once per open blob.

Loading needs no section headers (:mod:`unveil.formats.elf` works from the program headers,
so stripped files work), but identification does: banner regions, ``.dynstr``, ``.comment``,
Go and cargo-auditable sections.  Those readers run one after the other on the same open
blob; the table is parsed by the first of them and remembered for that blob.
"""

from __future__ import annotations

import struct
import threading
import weakref
from dataclasses import dataclass
from typing import NamedTuple

from unveil.errors import FormatError
from unveil.formats.blob import Blob

__all__ = ["MAX_SECTIONS", "ElfSection", "ElfSections", "elf_sections"]

#: More section headers than any real file has (the extended count allows 2**32).
MAX_SECTIONS = 1 << 16
#: The section-name table is read up to this size.
MAX_NAMES = 1 << 24

SHT_NOBITS = 8


class ElfSection(NamedTuple):
    """One section header as written (offsets are not checked against the file size).  A
    named tuple, not a frozen dataclass: a large C++ library has tens of thousands of
    sections, and a frozen dataclass takes four times as long to build."""

    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    entsize: int


@dataclass(frozen=True, slots=True)
class ElfSections:
    """The ELF header facts and section headers of one file.  ``problem`` says why the table
    (or its names) could not be read; ``sections`` is then empty (or nameless)."""

    little: bool
    bits: int
    machine: int
    shoff: int
    sections: tuple[ElfSection, ...]
    problem: str | None = None


_MEMO: weakref.WeakKeyDictionary[Blob, ElfSections | None] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def elf_sections(blob: Blob) -> ElfSections | None:
    """The section table of the ELF file in ``blob``, or ``None`` when it is not ELF.
    Never raises for bad bytes."""
    with _LOCK:
        if blob in _MEMO:
            return _MEMO[blob]
    found = _read(blob)
    with _LOCK:
        _MEMO[blob] = found
    return found


def _read(blob: Blob) -> ElfSections | None:
    try:
        head = blob.read(0, 64) if blob.size >= 64 else b""
    except FormatError:
        return None
    if head[:4] != b"\x7fELF" or head[4] not in (1, 2) or head[5] not in (1, 2):
        return None
    bits = 64 if head[4] == 2 else 32
    e = "<" if head[5] == 1 else ">"
    machine, = struct.unpack_from(e + "H", head, 18)
    if bits == 64:
        shoff, = struct.unpack_from(e + "Q", head, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", head, 0x3A)
        row = struct.Struct(e + "IIQQQQIIQQ")
    else:
        shoff, = struct.unpack_from(e + "I", head, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", head, 0x2E)
        row = struct.Struct(e + "IIIIIIIIII")
    little = head[5] == 1

    def empty(problem: str | None = None) -> ElfSections:
        return ElfSections(little, bits, machine, shoff, (), problem)

    if not shoff or shentsize < row.size:
        return empty()
    try:
        if shnum == 0:  # more than 0xff00 sections: the count is in section 0's sh_size
            shnum = row.unpack(blob.read(shoff, row.size))[5]
        if shnum > MAX_SECTIONS:
            return empty(f"{shnum} section headers")
        table = blob.read(shoff, shentsize * shnum)
    except FormatError as ex:
        return empty(str(ex))
    if shentsize == row.size:
        rows = list(row.iter_unpack(table))
    else:
        rows = [row.unpack_from(table, i * shentsize) for i in range(shnum)]
    if shstrndx == 0xFFFF and rows:  # SHN_XINDEX: the index is in section 0's sh_link
        shstrndx = rows[0][6]
    names = b""
    problem = None
    if shstrndx < len(rows) and rows[shstrndx][1] != SHT_NOBITS:
        off, size = rows[shstrndx][4], rows[shstrndx][5]
        try:
            names = blob.read_upto(off, min(size, MAX_NAMES)) if off < blob.size else b""
        except FormatError as ex:
            problem = f"section names unreadable: {ex}"
    out = []
    for name_at, typ, flags, addr, off, size, link, _info, _align, entsize in rows:
        if name_at < len(names):
            end = names.find(b"\x00", name_at, name_at + 256)
            name = names[name_at:end if end >= 0 else name_at + 256].decode("latin-1")
        else:
            name = ""
        out.append(ElfSection(name, typ, flags, addr, off, size, link, entsize))
    return ElfSections(little, bits, machine, shoff, tuple(out), problem)
