"""The Mach-O reader on synthetic files: thin 32/64-bit in both byte orders, fat with 32- and
64-bit offsets, symbols from nlist, the export trie and chained-fixup imports; then
truncated, mutated and hostile files, which must raise only FormatError and never hang.

The files are written field by field from <mach-o/loader.h> and <mach-o/fat.h> by the small
writer below (no Apple toolchain here); the differential test checks the reader against
macholib on real macOS wheels.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unveil.errors import FormatError
from unveil.formats.blob import BytesBlob
from unveil.formats.macho import (
    DYNAMIC_LOOKUP,
    MAIN_EXECUTABLE,
    MachOFile,
    arch_name,
    is_macho,
    parse_macho,
)
from unveil.model import BinaryFormat, Symbol

X86_64, ARM64, I386, PPC = 0x01000007, 0x0100000C, 7, 18
MH_EXECUTE, MH_DYLIB, MH_BUNDLE = 2, 6, 8
MH_TWOLEVEL, MH_DYLDLINK = 0x80, 0x4
LC_SYMTAB, LC_DYSYMTAB, LC_LOAD_DYLIB, LC_ID_DYLIB, LC_LOAD_DYLINKER = 0x2, 0xB, 0xC, 0xD, 0xE
LC_UUID, LC_BUILD_VERSION, LC_VERSION_MIN_MACOSX = 0x1B, 0x32, 0x24
LC_RPATH = 0x8000001C
LC_DYLD_INFO_ONLY, LC_DYLD_CHAINED_FIXUPS = 0x80000022, 0x80000034
KIND_CMDS = {"load": 0xC, "weak": 0x80000018, "reexport": 0x8000001F, "lazy": 0x20,
             "upward": 0x80000023}
N_EXT, N_SECT, N_UNDF, N_PEXT, N_STAB_FUN = 0x1, 0xE, 0x0, 0x10, 0x24
FAST = settings(max_examples=300, deadline=10000, database=None,
                suppress_health_check=[HealthCheck.too_slow])


# -- a small Mach-O writer ---------------------------------------------------------------------
@dataclass
class Sym:
    name: str
    defined: bool
    ordinal: int = 0
    weak: bool = False
    local: bool = False
    stab: bool = False


@dataclass
class Spec:
    bits: int = 64
    little: bool = True
    cputype: int = X86_64
    cpusubtype: int = 3
    filetype: int = MH_DYLIB
    flags: int = MH_TWOLEVEL | MH_DYLDLINK
    id_dylib: str | None = None
    dylibs: tuple[tuple[str, str], ...] = ()
    rpaths: tuple[str, ...] = ()
    dylinker: str | None = None
    uuid: bytes | None = None
    build: tuple[int, int] | None = None
    version_min: int | None = None
    symbols: tuple[Sym, ...] = ()
    exports: tuple[str, ...] = ()
    chained_imports: tuple[tuple[str, int], ...] = ()
    extra: tuple[bytes, ...] = field(default=())


def _pad(data: bytes, align: int) -> bytes:
    return data + b"\0" * (-len(data) % align)


def _trie(names: tuple[str, ...]) -> bytes:
    """A root with one edge per name to a terminal leaf (flags 0, address i)."""
    leaves = []
    for i, _ in enumerate(names):
        body = bytes([0, i & 0x7F])  # flags, address (ULEB128 < 128)
        leaves.append(bytes([len(body)]) + body + b"\0")
    edges_size = sum(len(n) + 2 for n in names)  # label, NUL, 1-byte child offset
    root_size = 2 + edges_size  # terminal size 0, child count
    root = bytearray([0, len(names)])
    off = root_size
    for name, leaf in zip(names, leaves, strict=True):
        assert off < 128
        root += name.encode() + b"\0" + bytes([off])
        off += len(leaf)
    return bytes(root) + b"".join(leaves)


def make_macho(s: Spec) -> bytes:
    e = "<" if s.little else ">"
    al = 8 if s.bits == 64 else 4

    def lc_str(cmd: int, fixed: bytes, text: str) -> bytes:
        body = _pad(text.encode() + b"\0", al)
        size = 8 + 4 + len(fixed) + len(body)
        return struct.pack(e + "III", cmd, size, 12 + len(fixed)) + fixed + body

    cmds: list[bytes] = []
    if s.id_dylib is not None:
        cmds.append(lc_str(LC_ID_DYLIB, struct.pack(e + "III", 2, 0x10000, 0x10000), s.id_dylib))
    if s.dylinker is not None:
        cmds.append(lc_str(LC_LOAD_DYLINKER, b"", s.dylinker))
    for kind, name in s.dylibs:
        cmds.append(lc_str(KIND_CMDS[kind], struct.pack(e + "III", 2, 0x10000, 0x10000), name))
    for path in s.rpaths:
        cmds.append(lc_str(LC_RPATH, b"", path))
    if s.uuid is not None:
        cmds.append(struct.pack(e + "II", LC_UUID, 24) + s.uuid)
    if s.build is not None:
        cmds.append(struct.pack(e + "6I", LC_BUILD_VERSION, 24, s.build[0], s.build[1], 0, 0))
    if s.version_min is not None:
        cmds.append(struct.pack(e + "4I", LC_VERSION_MIN_MACOSX, 16, s.version_min, 0))
    cmds.extend(s.extra)
    # Fixed-size linkedit commands come last, once the data layout is known.
    linkedit_sizes = (24 if s.symbols else 0) + (80 if s.symbols else 0) + \
        (48 if s.exports else 0) + (16 if s.chained_imports else 0)
    hsize = 32 if s.bits == 64 else 28
    data_start = hsize + sum(map(len, cmds)) + linkedit_sizes
    tail = b""

    if s.symbols:
        order = [x for x in s.symbols if x.local or x.stab] + \
            [x for x in s.symbols if x.defined and not (x.local or x.stab)] + \
            [x for x in s.symbols if not x.defined and not (x.local or x.stab)]
        nlocal = sum(1 for x in s.symbols if x.local or x.stab)
        ndef = sum(1 for x in s.symbols if x.defined and not (x.local or x.stab))
        strtab = b"\0"
        entries = b""
        for x in order:
            strx = len(strtab)
            strtab += x.name.encode() + b"\0"
            if x.stab:
                ntype = N_STAB_FUN
            elif x.local:
                ntype = N_SECT | N_PEXT
            else:
                ntype = (N_SECT if x.defined else N_UNDF) | N_EXT
            desc = (x.ordinal << 8) if not x.defined else 0
            if x.weak:
                desc |= 0x80 if x.defined else 0x40
            fmt = "IBBHQ" if s.bits == 64 else "IBBHI"
            entries += struct.pack(e + fmt, strx, ntype, 1 if x.defined else 0, desc,
                                   0x1000 if x.defined else 0)
        symoff = data_start + len(tail)
        tail += entries
        stroff = data_start + len(tail)
        tail += _pad(strtab, al)
        cmds.append(struct.pack(e + "6I", LC_SYMTAB, 24, symoff, len(order), stroff,
                                len(strtab)))
        dys = [0] * 18
        dys[0:6] = [0, nlocal, nlocal, ndef, nlocal + ndef, len(order) - nlocal - ndef]
        cmds.append(struct.pack(e + "II18I", LC_DYSYMTAB, 80, *dys))
    if s.exports:
        trie = _pad(_trie(s.exports), al)
        off = data_start + len(tail)
        tail += trie
        fields = [0] * 10
        fields[8:10] = [off, len(trie)]
        cmds.append(struct.pack(e + "II10I", LC_DYLD_INFO_ONLY, 48, *fields))
    if s.chained_imports:
        imports = b"".join(struct.pack(e + "I", ordinal | (noff << 9))
                           for (_n, ordinal), noff in zip(
                               s.chained_imports, _offsets(s.chained_imports), strict=True))
        names = b"".join(n.encode() + b"\0" for n, _o in s.chained_imports)
        header = struct.pack(e + "7I", 0, 28, 28, 28 + len(imports),
                             len(s.chained_imports), 1, 0)
        blob = _pad(header + imports + names, al)
        off = data_start + len(tail)
        tail += blob
        cmds.append(struct.pack(e + "IIII", LC_DYLD_CHAINED_FIXUPS, 16, off, len(blob)))
    body = b"".join(cmds)
    magic = 0xFEEDFACF if s.bits == 64 else 0xFEEDFACE
    header = struct.pack(e + "7I", magic, s.cputype, s.cpusubtype, s.filetype, len(cmds),
                         len(body), s.flags)
    if s.bits == 64:
        header += b"\0\0\0\0"
    out = header + body
    assert len(out) == data_start
    return out + tail


def _offsets(imports: tuple[tuple[str, int], ...]) -> list[int]:
    out, pos = [], 0
    for name, _o in imports:
        out.append(pos)
        pos += len(name) + 1
    return out


def make_fat(slices: list[tuple[int, int, bytes]], *, wide: bool = False,
             align: int = 12) -> bytes:
    """(cputype, cpusubtype, thin file) per slice, each at a 2**align boundary."""
    entry = 32 if wide else 20
    pos = 8 + entry * len(slices)
    table = b""
    body = b""
    start = pos
    for cputype, sub, data in slices:
        pad = -(start + len(body)) % (1 << align)
        body += b"\0" * pad
        off = start + len(body)
        if wide:
            table += struct.pack(">iiQQII", cputype, sub, off, len(data), align, 0)
        else:
            table += struct.pack(">iiIII", cputype, sub, off, len(data), align)
        body += data
    magic = 0xCAFEBABF if wide else 0xCAFEBABE
    return struct.pack(">II", magic, len(slices)) + table + body


LIBSYSTEM = "/usr/lib/libSystem.B.dylib"
PYTHON_EXT = Spec(
    id_dylib="@rpath/libfoo.1.dylib",
    dylibs=(("load", "@rpath/libbar.dylib"), ("weak", "/usr/lib/libweak.dylib"),
            ("reexport", "@loader_path/libre.dylib"), ("lazy", "/usr/lib/liblazy.dylib"),
            ("upward", "@executable_path/libup.dylib"), ("load", LIBSYSTEM)),
    rpaths=("@loader_path/../lib", "/opt/x/lib"),
    uuid=bytes(range(16)),
    build=(1, (11 << 16) | (0 << 8)),
    symbols=(Sym("_local", True, local=True), Sym("_stab", True, stab=True),
             Sym("_foo", True), Sym("_weakdef", True, weak=True),
             Sym("_bar", False, ordinal=1), Sym("_malloc", False, ordinal=6),
             Sym("_maybe", False, ordinal=2, weak=True), Sym("_PyLong", False, ordinal=0xFE),
             Sym("_main_sym", False, ordinal=0xFF)),
)


def parse(data: bytes) -> tuple[MachOFile, tuple[str, ...]]:
    f = MachOFile(BytesBlob(data))
    return f, tuple(f.warnings)


# -- thin files --------------------------------------------------------------------------------
def test_thin_64_little_endian_every_fact() -> None:
    data = make_macho(PYTHON_EXT)
    b, warnings = parse_macho(BytesBlob(data))
    assert warnings == ()
    assert b.format is BinaryFormat.MACHO
    assert (b.size, b.bits, b.little_endian, b.machine, b.osabi, b.abiversion) == \
        (len(data), 64, True, X86_64, 0, 0)
    assert (b.file_type, b.arch, b.soname) == (MH_DYLIB, "x86_64", "@rpath/libfoo.1.dylib")
    assert b.needed == tuple(n for _k, n in PYTHON_EXT.dylibs)
    assert b.needed_kinds == ("load", "weak", "reexport", "lazy", "upward", "load")
    assert b.rpath == ("@loader_path/../lib", "/opt/x/lib")
    assert b.runpath is None
    assert b.build_id == bytes(range(16)).hex()
    assert b.min_os == "macos 11.0"
    assert b.has_dynamic
    assert b.slices == ()
    assert b.flags & MH_TWOLEVEL


def test_thin_64_symbols_are_bound_to_their_library() -> None:
    f, _ = parse(make_macho(PYTHON_EXT))
    syms = {s.name: s for s in f.symbols()}
    assert set(syms) == {"_foo", "_weakdef", "_bar", "_malloc", "_maybe", "_PyLong",
                         "_main_sym"}
    assert syms["_foo"] == Symbol("_foo", True, "GLOBAL", "SECT")
    assert syms["_weakdef"].binding == "WEAK"
    assert syms["_bar"] == Symbol("_bar", False, "GLOBAL", "UNDF",
                                  library="@rpath/libbar.dylib")
    assert syms["_malloc"].library == LIBSYSTEM
    assert (syms["_maybe"].binding, syms["_maybe"].library) == ("WEAK", "/usr/lib/libweak.dylib")
    assert syms["_PyLong"].library == DYNAMIC_LOOKUP
    assert syms["_main_sym"].library == MAIN_EXECUTABLE
    assert f.warnings == []


def test_thin_32_big_endian_ppc_with_version_min() -> None:
    spec = Spec(bits=32, little=False, cputype=PPC, cpusubtype=0, filetype=MH_EXECUTE,
                dylinker="/usr/lib/dyld", dylibs=(("load", LIBSYSTEM),),
                version_min=(10 << 16) | (4 << 8) | 11,
                symbols=(Sym("_main", True), Sym("_printf", False, ordinal=1)))
    b, warnings = parse_macho(BytesBlob(make_macho(spec)))
    assert warnings == ()
    assert (b.bits, b.little_endian, b.machine, b.arch) == (32, False, PPC, "ppc")
    assert (b.file_type, b.interpreter, b.min_os) == (MH_EXECUTE, "/usr/lib/dyld", "macos 10.4.11")
    assert (b.rpath, b.soname, b.build_id) == (None, None, None)
    syms = MachOFile(BytesBlob(make_macho(spec))).symbols()
    assert [(s.name, s.defined, s.library) for s in syms] == \
        [("_main", True, None), ("_printf", False, LIBSYSTEM)]


def test_thin_32_little_i386_and_64_big() -> None:
    b, _ = parse_macho(BytesBlob(make_macho(Spec(bits=32, cputype=I386, filetype=MH_BUNDLE))))
    assert (b.bits, b.little_endian, b.arch, b.file_type, b.has_dynamic) == \
        (32, True, "i386", MH_BUNDLE, False)
    b, _ = parse_macho(BytesBlob(make_macho(Spec(little=False, cputype=ARM64, cpusubtype=2,
                                                 dylibs=(("load", LIBSYSTEM),)))))
    assert (b.bits, b.little_endian, b.arch) == (64, False, "arm64e")


def test_flat_namespace_imports_are_dynamic_lookup() -> None:
    spec = Spec(flags=MH_DYLDLINK, dylibs=(("load", LIBSYSTEM),),
                symbols=(Sym("_x", False, ordinal=1),))
    (sym,) = MachOFile(BytesBlob(make_macho(spec))).symbols()
    assert sym.library == DYNAMIC_LOOKUP


def test_export_trie_and_chained_imports_fill_in_stripped_tables() -> None:
    spec = Spec(dylibs=(("load", LIBSYSTEM), ("load", "@rpath/libz.1.dylib")),
                symbols=(Sym("_foo", True),),
                exports=("_foo", "_only_in_trie", "_other"),
                chained_imports=(("_malloc", 1), ("_deflate", 2), ("_PyX", 0xFE)))
    f, _ = parse(make_macho(spec))
    syms = f.symbols()
    assert [(s.name, s.defined, s.library) for s in syms] == [
        ("_foo", True, None), ("_only_in_trie", True, None), ("_other", True, None),
        ("_malloc", False, LIBSYSTEM), ("_deflate", False, "@rpath/libz.1.dylib"),
        ("_PyX", False, DYNAMIC_LOOKUP)]
    assert f.warnings == []


def test_bad_library_ordinal_is_a_warning() -> None:
    spec = Spec(dylibs=(("load", LIBSYSTEM),), symbols=(Sym("_x", False, ordinal=7),))
    f, _ = parse(make_macho(spec))
    (sym,) = f.symbols()
    assert sym.library is None
    assert any("ordinal 7" in w for w in f.warnings)


@pytest.mark.parametrize(("cputype", "sub", "name"), [
    (X86_64, 3, "x86_64"), (X86_64, 8, "x86_64h"), (ARM64, 0, "arm64"),
    (ARM64, 0x80000002, "arm64e"), (0x0200000C, 1, "arm64_32"), (12, 9, "armv7"),
    (I386, 3, "i386"), (PPC, 0, "ppc"), (0x01000012, 0, "ppc64"), (99, 0, "cputype-0x63"),
])
def test_arch_names(cputype: int, sub: int, name: str) -> None:
    assert arch_name(cputype, sub) == name


# -- fat files ---------------------------------------------------------------------------------
def _universal(wide: bool) -> bytes:
    x86 = make_macho(PYTHON_EXT)
    arm = make_macho(Spec(cputype=ARM64, cpusubtype=0, id_dylib="@rpath/libfoo.1.dylib",
                          dylibs=(("load", LIBSYSTEM),), build=(1, 11 << 16),
                          uuid=b"\xaa" * 16, symbols=(Sym("_arm_only", True),)))
    return make_fat([(X86_64, 3, x86), (ARM64, 0, arm)], wide=wide)


@pytest.mark.parametrize("wide", [False, True])
def test_fat_two_slices(wide: bool) -> None:
    data = _universal(wide)
    b, warnings = parse_macho(BytesBlob(data))
    assert warnings == ()
    assert [s.arch for s in b.slices] == ["x86_64", "arm64"]
    assert [s.machine for s in b.slices] == [X86_64, ARM64]
    # The container describes the first slice, sized as the whole file.
    assert b.size == len(data)
    assert (b.arch, b.needed, b.soname) == ("x86_64", b.slices[0].needed, b.slices[0].soname)
    assert b.slices[1].needed == (LIBSYSTEM,)
    assert b.slices[1].build_id == "aa" * 16
    assert b.slices[1].size < len(data)
    assert is_macho(data[:8])
    f = MachOFile(BytesBlob(data))
    assert (f.fat, len(f.slices)) == (True, 2)
    assert "_foo" in {s.name for s in f.symbols()}
    assert [s.name for s in f.slices[1].symbols()] == ["_arm_only"]


def test_java_class_file_is_not_macho() -> None:
    java = b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + b"\0" * 64
    assert not is_macho(java[:8])
    with pytest.raises(FormatError, match="Java"):
        parse_macho(BytesBlob(java))


def test_fat_slice_outside_the_file() -> None:
    data = bytearray(_universal(False))
    struct.pack_into(">I", data, 8 + 20 + 12, len(data))  # second slice's size
    with pytest.raises(FormatError, match="outside"):
        parse_macho(BytesBlob(bytes(data)))


def test_fat_slices_overlap() -> None:
    data = bytearray(_universal(False))
    first_off = struct.unpack_from(">I", data, 8 + 8)[0]
    struct.pack_into(">I", data, 8 + 20 + 8, first_off + 4)  # second offset inside first
    with pytest.raises(FormatError, match="overlap"):
        parse_macho(BytesBlob(bytes(data)))


def test_fat_slice_listed_under_another_arch_warns() -> None:
    x86 = make_macho(Spec(dylibs=(("load", LIBSYSTEM),)))
    data = make_fat([(ARM64, 0, x86)])
    b, warnings = parse_macho(BytesBlob(data))
    assert b.slices[0].arch == "x86_64"
    assert any("listed as arm64" in w for w in warnings)


def test_fat_inside_fat_is_rejected() -> None:
    inner = make_fat([(X86_64, 3, make_macho(Spec()))])
    with pytest.raises(FormatError, match="not a thin"):
        parse_macho(BytesBlob(make_fat([(X86_64, 3, inner)])))


# -- hostile files -----------------------------------------------------------------------------
def _with_header(data: bytes, **fields: int) -> bytes:
    """Rewrite a little-endian thin header's ncmds / sizeofcmds."""
    out = bytearray(data)
    for name, value in fields.items():
        struct.pack_into("<I", out, {"ncmds": 16, "sizeofcmds": 20}[name], value)
    return bytes(out)


def test_cmdsize_zero_is_an_error_not_a_loop() -> None:
    data = bytearray(make_macho(Spec(dylibs=(("load", LIBSYSTEM),))))
    struct.pack_into("<I", data, 32 + 4, 0)
    with pytest.raises(FormatError, match="cmdsize 0"):
        parse_macho(BytesBlob(bytes(data)))


def test_cmdsize_not_a_multiple_of_four() -> None:
    data = bytearray(make_macho(Spec(dylibs=(("load", LIBSYSTEM),))))
    struct.pack_into("<I", data, 32 + 4, 30)
    with pytest.raises(FormatError, match="cmdsize 30"):
        parse_macho(BytesBlob(bytes(data)))


def test_huge_ncmds_and_sizeofcmds() -> None:
    data = make_macho(Spec(dylibs=(("load", LIBSYSTEM),)))
    for fields in ({"ncmds": 0xFFFFFFFF}, {"sizeofcmds": 0xFFFFFFF0},
                   {"ncmds": 1000}, {"sizeofcmds": len(data)}):
        with pytest.raises(FormatError):
            parse_macho(BytesBlob(_with_header(data, **fields)))


def test_string_offset_outside_its_command() -> None:
    data = bytearray(make_macho(Spec(dylibs=(("load", LIBSYSTEM),))))
    struct.pack_into("<I", data, 32 + 8, 4000)
    with pytest.raises(FormatError, match="string offset"):
        parse_macho(BytesBlob(bytes(data)))


def test_symbol_table_outside_the_file() -> None:
    spec = Spec(symbols=(Sym("_a", True),))
    data = bytearray(make_macho(spec))
    struct.pack_into("<I", data, 32 + 12, 0x7FFFFFFF)  # LC_SYMTAB nsyms (first command)
    f = MachOFile(BytesBlob(bytes(data)))
    with pytest.raises(FormatError):
        f.symbols()


def test_export_trie_loop() -> None:
    spec = Spec(exports=("_a",))
    data = bytearray(make_macho(spec))
    trie_off = struct.unpack_from("<I", data, 32 + 8 + 32)[0]
    # Point the root's only edge back at the root.
    edge_end = trie_off + 2 + len(b"_a\0")
    data[edge_end] = 0
    with pytest.raises(FormatError, match="loop"):
        MachOFile(BytesBlob(bytes(data))).symbols()


def _samples() -> list[bytes]:
    return [make_macho(PYTHON_EXT), _universal(False), _universal(True),
            make_macho(Spec(bits=32, little=False, cputype=PPC, dylibs=(("load", LIBSYSTEM),),
                            symbols=(Sym("_m", True), Sym("_p", False, ordinal=1)),
                            exports=("_m",), chained_imports=(("_p", 1),)))]


def _exercise(data: bytes) -> None:
    try:
        f = MachOFile(BytesBlob(data))
        f.binary()
        f.symbols()
    except FormatError:
        pass


def test_every_truncation() -> None:
    for data in _samples():
        for n in range(len(data)):
            _exercise(data[:n])


@FAST
@given(st.integers(0, 3), st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)),
                                   min_size=1, max_size=6))
def test_mutating_the_first_4k_raises_only_format_error(
        which: int, edits: list[tuple[int, int]]) -> None:
    data = bytearray(_samples()[which])
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    _exercise(bytes(data))


@FAST
@given(st.integers(0, 3), st.integers(0, 4095), st.sampled_from(
    [0, 1, 4, 0x7F, 0x80, 0xFF, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFF0]))
def test_mutating_a_word_raises_only_format_error(which: int, pos: int, value: int) -> None:
    data = bytearray(_samples()[which])
    if pos + 4 <= len(data):
        struct.pack_into("<I", data, pos & ~3, value)
    _exercise(bytes(data))


def test_not_macho() -> None:
    for data in (b"", b"\xfe\xed", b"\x7fELF" + b"\0" * 60, b"\0" * 64):
        with pytest.raises(FormatError):
            parse_macho(BytesBlob(data))
        assert not is_macho(data[:8])
