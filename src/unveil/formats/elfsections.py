"""The section header table of an ELF file, parsed once per open blob.

Loading needs no section headers (:mod:`unveil.formats.elf` works from the program headers,
so stripped files work), but identification does: banner regions, ``.dynstr``, ``.comment``,
Go and cargo-auditable sections.  Those readers run one after the other on the same open
blob; the table is parsed by the first of them and remembered for that blob.
"""

from __future__ import annotations

import re
import struct
import threading
import weakref
from dataclasses import dataclass
from typing import NamedTuple

from unveil.errors import FormatError
from unveil.formats.blob import Blob
from unveil.formats.elf import ElfFile

__all__ = ["FAR_TAIL", "MAX_SECTIONS", "ElfSection", "ElfSections", "elf_sections"]

#: More section headers than any real file has (the extended count allows 2**32).
MAX_SECTIONS = 1 << 16
#: The section-name table is read up to this size.
MAX_NAMES = 1 << 24

SHT_NOBITS = 8
#: A compressed member whose section headers lie more than this past its loaded segments gets
#: a synthesized table (see the module docstring).
FAR_TAIL = 1 << 20
#: How much of the unloaded tail is read for ``.comment`` (it is the tail's first section).
COMMENT_MAX = 1 << 16
#: More program headers than this: the real table is read (stand-ins cut each segment by
#: every RELRO/TLS header, which a crafted file with thousands would make quadratic).
MAX_STAND_IN_HEADERS = 256
#: How much of the first data segment is looked at for Go's build information header (it
#: opens the segment; Go's debug/buildinfo searches the segment when the section is unnamed).
GO_PEEK = 1 << 16


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
    #: the table was not read: ``sections`` are stand-ins built from the program headers and
    #: the dynamic segment of a compressed member (see the module docstring)
    synthesized: bool = False


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
    if blob.sequential:
        try:
            stand_in = _synthesized(blob, bits, shoff)
        except (FormatError, struct.error):
            stand_in = None
        if stand_in is not None:
            return ElfSections(little, bits, machine, shoff, stand_in, None, True)
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


# --------------------------------------------------------------------------- stand-ins

_PT_LOAD, _PT_DYNAMIC, _PT_TLS = 1, 2, 7
_PT_GNU_EH_FRAME, _PT_GNU_RELRO = 0x6474E550, 0x6474E552
_DT_GNU_HASH, _SHT_GNU_HASH = 0x6FFFFEF5, 0x6FFFFFF6
_SHF_WRITE, _SHF_ALLOC, _SHF_EXECINSTR, _SHF_MERGE_STRINGS = 0x1, 0x2, 0x4, 0x30
_GO_MAGIC = b"\xff Go buildinf:"
_STRINGS = re.compile(rb"[\x00\x09\x20-\x7e]*")
#: dynamic tags of the tables the linker puts at the start of the first segment:
#: (address tag, size tag or None)
_TABLES: tuple[tuple[int, int | None], ...] = (
    (6, None), (5, 10), (4, None), (0x6FFFFEF5, None), (0x6FFFFFF0, None), (0x6FFFFFFE, None),
    (0x6FFFFFFC, None), (7, 8), (17, 18), (23, 2))


def _synthesized(blob: Blob, bits: int, shoff: int) -> tuple[ElfSection, ...] | None:
    """Stand-in sections for a compressed member whose real table lies past a far tail;
    ``None`` when the real table should be read (near, or a Go or Rust binary, or a layout the
    stand-ins cannot describe)."""
    elf = ElfFile(blob)
    if not 0 < len(elf.h.segments) <= MAX_STAND_IN_HEADERS:
        return None  # (real files have a dozen; thousands would make the cuts quadratic)
    # (type, flags, offset, vaddr, filesz)
    headers = [(g.type, g.flags, g.offset, g.vaddr, g.filesz) for g in elf.h.segments]
    loads = [h for h in headers if h[0] == _PT_LOAD and h[4]]
    if not loads:
        return None
    loaded_end = max(off + filesz for _t, _f, off, _v, filesz in loads)
    if shoff - loaded_end <= FAR_TAIL or shoff > blob.size:
        return None
    if any(owner == b"Go" for owner, _type, _desc in elf.notes()):
        return None
    if not any(not pflags & 3 for _t, pflags, _o, _v, _s in loads):
        # No read-only data segment: .rodata shares the code segment (ARM's default, no
        # -z separate-code) and the stand-ins could not tell it from code.
        return None
    data = next((h for h in loads if h[1] & 2 and not h[1] & 1), None)
    if data is not None and _GO_MAGIC in blob.read(data[2], min(GO_PEEK, data[4])):
        return None  # Go without a build ID note: its build information needs the table

    to_offset = elf.file_offset
    dyn = next((h for h in headers if h[0] == _PT_DYNAMIC), None)
    tags: dict[int, int] = {}
    for tag, value in elf.dynamic():
        tags.setdefault(tag, value)
    out = [ElfSection("", 0, 0, 0, 0, 0, 0, 0)]
    strtab = to_offset(tags[5]) if 5 in tags else None
    dynstr_index = 0
    if strtab is not None and 10 in tags:
        dynstr_index = len(out)
        out.append(ElfSection(".dynstr", 3, _SHF_ALLOC, tags[5], strtab, tags[10], 0, 0))
    symtab = to_offset(tags[6]) if 6 in tags else None
    entsize = tags.get(11, 24 if bits == 64 else 16)
    if symtab is not None and strtab is not None and symtab < strtab and dynstr_index:
        # .dynsym ends where the next dynamic table starts: .dynstr after GNU ld's, the
        # symbol versions after lld's (.dynsym, .gnu.version, .gnu.version_r, .gnu.hash,
        # .dynstr).
        after = [at for tag, _size in _TABLES if tag != 6 and tag in tags
                 and (at := to_offset(tags[tag])) is not None and at > symtab]
        out.append(ElfSection(".dynsym", 11, _SHF_ALLOC, tags[6], symtab,
                              min(after, default=strtab) - symtab, dynstr_index, entsize))
    gnu_hash = to_offset(tags[_DT_GNU_HASH]) if _DT_GNU_HASH in tags else None
    if gnu_hash is not None:
        # (read by its own header: the size only bounds it, up to the next table)
        ends = [at for tag, _size in _TABLES if tag in tags and tag != _DT_GNU_HASH
                and (at := to_offset(tags[tag])) is not None and at > gnu_hash]
        out.append(ElfSection(".gnu.hash", _SHT_GNU_HASH, _SHF_ALLOC, tags[_DT_GNU_HASH],
                              gnu_hash, min(ends, default=gnu_hash + 16) - gnu_hash, 0, 0))
    if dyn is not None:
        out.append(ElfSection(".dynamic", 6, _SHF_ALLOC | _SHF_WRITE, dyn[3], dyn[2], dyn[4],
                              dynstr_index, 16 if bits == 64 else 8))
    for name, at_tag, size_tag, typ in ((".rela.dyn", 7, 8, 4), (".rel.dyn", 17, 18, 9),
                                        (".rela.plt" if tags.get(20) == 7 else ".rel.plt",
                                         23, 2, 4 if tags.get(20) == 7 else 9)):
        rel_at = to_offset(tags[at_tag]) if at_tag in tags and size_tag in tags else None
        if rel_at is not None:
            entry_size = (24 if typ == 4 else 16) if bits == 64 else (12 if typ == 4 else 8)
            out.append(ElfSection(name, typ, _SHF_ALLOC, tags[at_tag], rel_at, tags[size_tag],
                                  0, entry_size))
    # The dynamic tables open the first segment: the data a segment holds starts after them.
    table_ends: list[tuple[int, int]] = []
    for table_tag, table_size_tag in _TABLES:
        if table_tag in tags and (at := to_offset(tags[table_tag])) is not None:
            table_ends.append((at, at + (tags.get(table_size_tag, 0) if table_size_tag else 0)))
    # (start, end, name, flags) of what segments other than PT_LOAD say a stretch holds
    named: list[tuple[int, int, str, int]] = [
        (h[2], h[2] + h[4], ".data.rel.ro" if h[0] == _PT_GNU_RELRO else ".tdata",
         _SHF_ALLOC | _SHF_WRITE)
        for h in headers if h[0] in (_PT_GNU_RELRO, _PT_TLS) and h[4]]
    eh = next((h for h in headers if h[0] == _PT_GNU_EH_FRAME and h[4]), None)
    if eh is not None and any(off <= eh[2] < off + filesz and pflags & 1
                              for _t, pflags, off, _v, filesz in loads):
        return None  # .rodata shares the code segment (no -z separate-code): not told apart
    if any(pflags & 1 and any(off <= t_start < off + filesz for t_start, _e in table_ends)
           for _t, pflags, off, _v, filesz in loads):
        return None  # the dynamic tables open a code segment: so may .rodata follow them
    for _t, pflags, off, vaddr, filesz in sorted(loads, key=lambda h: h[2]):
        start, end = off, off + filesz
        inside = [t_end for t_start, t_end in table_ends if start <= t_start < end]
        if inside:
            start = min(max(inside), end)
        flags = _SHF_ALLOC | (_SHF_WRITE if pflags & 2 else 0) | (
            _SHF_EXECINSTR if pflags & 1 else 0)
        cuts = [cut for cut in named if start <= cut[0] < end]
        if eh is not None and start <= eh[2] < end and not pflags & 1:
            cuts.append((eh[2], end, ".eh_frame", _SHF_ALLOC))
        for c_start, c_end, name, c_flags in sorted(cuts):
            if c_start > start:
                out.append(ElfSection("", 1, flags, vaddr + (start - off), start,
                                      c_start - start, 0, 0))
            c_end = min(c_end, end)
            out.append(ElfSection(name, 1, c_flags, vaddr + (c_start - off), c_start,
                                  c_end - c_start, 0, 0))
            start = max(start, c_end)
        if end > start:
            out.append(ElfSection("", 1, flags, vaddr + (start - off), start, end - start,
                                  0, 0))
    comment = blob.read(loaded_end, min(COMMENT_MAX, shoff - loaded_end))
    if b"rustc version" in comment:
        return None  # Rust: .dep-v0 and .comment are worth the whole table
    size = _strings_run(comment)
    if size:
        out.append(ElfSection(".comment", 1, _SHF_MERGE_STRINGS, 0, loaded_end, size, 0, 1))
    return tuple(out)


def _strings_run(data: bytes) -> int:
    """The length of the NUL-separated printable strings ``data`` starts with (how
    ``.comment`` looks), or 0 when it does not start with one."""
    m = _STRINGS.match(data)
    n = m.end() if m else 0
    while n and data[n - 1] != 0:  # end at the last complete string
        n -= 1
    return n if n >= 4 and data[:1] != b"\x00" else 0
