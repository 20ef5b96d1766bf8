"""The shared ELF section-table reader, against pyelftools on the system's libraries."""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.conftest import Builder
from unveil.formats import elfsections
from unveil.formats.blob import BytesBlob
from unveil.formats.elfsections import elf_sections
from unveil.identify.banners import identify_bytes
from unveil.sources.zipread import InflateBlob


def _system_elves(n: int) -> list[Path]:
    found = []
    for p in sorted(Path("/usr/lib/x86_64-linux-gnu").glob("*.so*")):
        if p.is_file() and not p.is_symlink() and p.read_bytes()[:4] == b"\x7fELF":
            found.append(p)
    return random.Random(3).sample(found, min(n, len(found)))


@pytest.mark.parametrize("path", _system_elves(25), ids=lambda p: p.name)
def test_agrees_with_pyelftools(path: Path) -> None:
    data = path.read_bytes()
    table = elf_sections(BytesBlob(data))
    assert table is not None
    assert table.problem is None
    with path.open("rb") as f:
        oracle = ELFFile(f)
        want = [(s.name, s["sh_type"], s["sh_flags"], s["sh_addr"], s["sh_offset"],
                 s["sh_size"], s["sh_link"], s["sh_entsize"]) for s in oracle.iter_sections()]
    got = [(s.name, s.type, s.flags, s.addr, s.offset, s.size, s.link, s.entsize)
           for s in table.sections]
    assert [g[0] for g in got] == [w[0] for w in want]
    assert [g[2:] for g in got] == [w[2:] for w in want]
    for g, w in zip(got, want, strict=True):  # types pyelftools names; others it may not
        if w[1] in _SHT:
            assert g[1] == _SHT[w[1]], (g, w)


_SHT = {"SHT_NULL": 0, "SHT_PROGBITS": 1, "SHT_SYMTAB": 2, "SHT_STRTAB": 3, "SHT_RELA": 4,
        "SHT_HASH": 5, "SHT_DYNAMIC": 6, "SHT_NOTE": 7, "SHT_NOBITS": 8, "SHT_REL": 9,
        "SHT_DYNSYM": 11, "SHT_INIT_ARRAY": 14, "SHT_FINI_ARRAY": 15, "SHT_GNU_HASH": 0x6FFFFFF6,
        "SHT_GNU_verdef": 0x6FFFFFFD, "SHT_GNU_verneed": 0x6FFFFFFE,
        "SHT_GNU_versym": 0x6FFFFFFF}


def test_parsed_once_per_blob() -> None:
    path = _system_elves(1)[0]
    blob = BytesBlob(path.read_bytes())
    assert elf_sections(blob) is elf_sections(blob)


def test_not_elf_and_hostile_tables() -> None:
    assert elf_sections(BytesBlob(b"MZ" + bytes(100))) is None
    assert elf_sections(BytesBlob(b"\x7fELF")) is None  # shorter than a header
    path = _system_elves(1)[0]
    data = bytearray(path.read_bytes())
    table = elf_sections(BytesBlob(bytes(data)))
    assert table is not None
    # The section table cut off by truncation: a problem, no sections, no exception.
    cut = elf_sections(BytesBlob(bytes(data[:table.shoff + 10])))
    assert cut is not None
    assert cut.sections == ()
    assert cut.problem
    # An absurd section count.
    hostile = bytearray(data)
    hostile[0x3C:0x3E] = (0).to_bytes(2, "little")  # e_shnum 0: count in section 0's size
    hostile[table.shoff + 32:table.shoff + 40] = (1 << 40).to_bytes(8, "little")
    bad = elf_sections(BytesBlob(bytes(hostile)))
    assert bad is not None
    assert bad.sections == ()
    assert bad.problem is not None
    assert "section headers" in bad.problem


def _handmade(bits: int, little: bool) -> bytes:
    """An ELF file of this class and byte order with four sections, written field by field."""
    e = "<" if little else ">"
    names = b"\0.shstrtab\0.rodata\0.bss\0"
    ehsize, shentsize = (64, 64) if bits == 64 else (52, 40)
    rodata = b"version 1.2.3\0"
    body = names + rodata
    shoff = ehsize + len(body)
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1]) + bytes(9)
    if bits == 64:
        head = ident + struct.pack(e + "HHIQQQIHHHHHH", 3, 62, 1, 0, 0, shoff, 0, ehsize, 0, 0,
                                   shentsize, 4, 1)
        row = e + "IIQQQQIIQQ"
    else:
        head = ident + struct.pack(e + "HHIIIIIHHHHHH", 3, 3, 1, 0, 0, shoff, 0, ehsize, 0, 0,
                                   shentsize, 4, 1)
        row = e + "IIIIIIIIII"
    table = struct.pack(row, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    table += struct.pack(row, 1, 3, 0, 0, ehsize, len(names), 0, 0, 1, 0)
    table += struct.pack(row, 11, 1, 2, 0x1000, ehsize + len(names), len(rodata), 0, 0, 1, 0)
    table += struct.pack(row, 19, 8, 3, 0x2000, shoff, 0x100, 0, 0, 8, 0)
    return head + body + table


@pytest.mark.parametrize(("bits", "little"), [(32, True), (32, False), (64, False)])
def test_other_classes_and_byte_orders(tmp_path: Path, bits: int, little: bool) -> None:
    data = _handmade(bits, little)
    path = tmp_path / "f.so"
    path.write_bytes(data)
    table = elf_sections(BytesBlob(data))
    assert table is not None
    assert (table.bits, table.little) == (bits, little)
    with path.open("rb") as f:
        want = [(s.name, s["sh_offset"], s["sh_size"], s["sh_flags"])
                for s in ELFFile(f).iter_sections()]
    assert [(s.name, s.offset, s.size, s.flags) for s in table.sections] == want


# --------------------------------------------------------------------------- far tails


def _member(data: bytes) -> InflateBlob:
    """``data`` as a deflated archive member, inflated as a wheel's would be."""
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    comp = z.compress(data) + z.flush()
    return InflateBlob(comp, 0, len(comp), len(data))


@pytest.mark.parametrize("path", _system_elves(25), ids=lambda p: p.name)
def test_far_tail_stand_ins_agree_with_the_real_table(path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every compressed member treated as having a far tail: the sections identification
    reads are where the real table says, and nothing the banners scan is left out."""
    monkeypatch.setattr(elfsections, "FAR_TAIL", -1)
    data = path.read_bytes()
    real = elf_sections(BytesBlob(data))
    stand = elf_sections(_member(data))
    assert real is not None
    assert stand is not None
    if not stand.synthesized:  # .rodata in the code segment, or no tail: the real table
        assert stand.sections == real.sections
        return
    by_name = {s.name: s for s in real.sections}
    for name in (".dynstr", ".dynamic"):
        got = next(s for s in stand.sections if s.name == name)
        assert (got.offset, got.size, got.addr) == (by_name[name].offset, by_name[name].size,
                                                    by_name[name].addr)
    dynsym = next(s for s in stand.sections if s.name == ".dynsym")
    assert (dynsym.offset, dynsym.size) == (by_name[".dynsym"].offset, by_name[".dynsym"].size)
    assert stand.sections[dynsym.link].name == ".dynstr"
    if ".comment" in by_name:
        comment = next(s for s in stand.sections if s.name == ".comment")
        assert (comment.offset, comment.size) == (by_name[".comment"].offset,
                                                  by_name[".comment"].size)
    # Read-only data and initialised data the banners scan: inside a stand-in data piece.
    pieces = [s for s in stand.sections if s.type == 1 and s.flags & 2 and not s.flags & 4
              and s.name == ""]
    for s in real.sections:
        if s.name in (".rodata", ".data") and s.size:
            assert any(p.offset <= s.offset and s.offset + s.size <= p.offset + p.size
                       for p in pieces), s


def _far_tail_lib(build: Builder, name: str, asm: str) -> bytes:
    code = f'__asm__("{asm}");\nconst char banner[] = "zlib 1.3.1";\nint f(void) {{ return 1; }}\n'
    return build.lib(name, code=code).read_bytes()


def test_far_tail_go_and_rust_read_the_real_table(build: Builder,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elfsections, "FAR_TAIL", -1)
    plain = _far_tail_lib(build, "libplain.so", "")
    go = _far_tail_lib(build, "libgo.so", r'.section .note.go.buildid,\"a\",@note\n'
                       r'.p2align 2\n.long 3\n.long 4\n.long 4\n.asciz \"Go\"\n.p2align 2\n'
                       r'.ascii \"abcd\"\n.previous\n')
    rust = _far_tail_lib(build, "librust.so", r'.section .comment,\"MS\",@progbits,1\n'
                         r'.asciz \"rustc version 1.80.0 (051478957 2024-07-21)\"\n.previous\n')
    stand = elf_sections(_member(plain))
    assert stand is not None
    assert stand.synthesized
    assert any(s.name == ".comment" for s in stand.sections)
    for data in (go, rust):
        table = elf_sections(_member(data))
        assert table is not None
        assert not table.synthesized
        real = elf_sections(BytesBlob(data))
        assert real is not None
        assert table.sections == real.sections


def test_far_tail_identification_is_unchanged(build: Builder,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    lib = build.lib("libz.so.1", code='const char v[] = " deflate 1.3.1 Copyright 1995-2024 '
                    'Jean-loup Gailly and Mark Adler";\nint f(void) { return 1; }\n')
    data = lib.read_bytes()
    want = identify_bytes(BytesBlob(data), "libz.so.1")
    monkeypatch.setattr(elfsections, "FAR_TAIL", -1)
    member = _member(data)
    got = identify_bytes(member, "libz.so.1")
    table = elf_sections(member)
    assert table is not None
    assert table.synthesized
    assert got == want
    assert any(c.name == "zlib" and c.version == "1.3.1" for c in got)


def test_far_tail_relocation_tables(build: Builder, monkeypatch: pytest.MonkeyPatch) -> None:
    """A version pointer is read through its R_X86_64_RELATIVE relocation: the stand-in
    relocation tables are the real ones."""
    data = build.lib("libxml2.so.2", code='const char *xmlParserVersion = "21406";\n'
                     'int f(void) { return 1; }\n').read_bytes()
    real = elf_sections(BytesBlob(data))
    monkeypatch.setattr(elfsections, "FAR_TAIL", -1)
    stand = elf_sections(_member(data))
    assert real is not None
    assert stand is not None
    assert stand.synthesized
    want = {(s.type, s.offset, s.size, s.entsize) for s in real.sections if s.type in (4, 9)}
    got = {(s.type, s.offset, s.size, s.entsize) for s in stand.sections if s.type in (4, 9)}
    assert got == want


def test_far_tail_rodata_in_the_code_segment_reads_the_real_table(
        build: Builder, monkeypatch: pytest.MonkeyPatch) -> None:
    """ARM's default layout: no -z separate-code and no PT_GNU_EH_FRAME, so .rodata shares
    the one code segment with the dynamic tables: the stand-ins cannot find it."""
    lib = build.lib("libz.so.1", code='const char v[] = " deflate 1.3.1 Copyright 1995-2024 '
                    'Jean-loup Gailly and Mark Adler ";\nint f(void) { return v[0]; }\n',
                    extra=["-Wl,-z,noseparate-code", "-Wl,--no-eh-frame-hdr"])
    data = lib.read_bytes()
    monkeypatch.setattr(elfsections, "FAR_TAIL", -1)
    member = _member(data)
    table = elf_sections(member)
    assert table is not None
    assert not table.synthesized
    assert [(c.name, c.version) for c in identify_bytes(member, "libz.so.1")] == [
        ("zlib", "1.3.1")]


def _first_data_segment(data: bytes) -> int:
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phnum, = struct.unpack_from("<H", data, 0x38)
    for i in range(phnum):
        typ, flags, off = struct.unpack_from("<IIQ", data, phoff + 56 * i)
        if typ == 1 and flags & 2 and not flags & 1:
            return int(off)
    raise AssertionError("no data segment")


def test_far_tail_go_header_without_note_and_many_headers_read_the_real_table(
        build: Builder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elfsections, "FAR_TAIL", -1)
    data = build.lib("libplain.so", code="int x = 1;\nint f(void) { return x; }\n").read_bytes()
    plain = elf_sections(_member(data))
    assert plain is not None
    assert plain.synthesized
    # Go's build information header at the start of the data segment, no Go note.
    go = bytearray(data)
    at = _first_data_segment(data)
    go[at:at + 16] = b"\xff Go buildinf:\x08\x02"
    table = elf_sections(_member(bytes(go)))
    assert table is not None
    assert not table.synthesized
    # More program headers than any real file: not cut into stand-ins (crafted files with
    # thousands made that quadratic).
    many = bytearray(data)
    struct.pack_into("<H", many, 0x38, elfsections.MAX_STAND_IN_HEADERS + 1)
    table = elf_sections(_member(bytes(many)))
    assert table is None or not table.synthesized
