"""The PE reader on synthetic PE32 and PE32+ images built by a small writer below: headers,
a code section, and one data section holding the import, delay-import, export and debug
tables (plus an optional ``.pkgnote`` section).  Then truncations, hostile tables (loops,
unterminated arrays, huge counts) and hypothesis mutations of the header and table bytes:
only :class:`~unveil.errors.FormatError` or a result may come out, and quickly."""

from __future__ import annotations

import json
import struct
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unveil.errors import FormatError
from unveil.formats import pe as pe_module
from unveil.formats.blob import BytesBlob
from unveil.formats.pe import (
    MAX_DESCRIPTORS,
    MAX_THUNKS,
    PE_TYPE_DLL,
    PE_TYPE_EXE,
    PE_TYPE_OTHER,
    PEFile,
    arch_name,
    parse_pe,
)
from unveil.model import BinaryFormat, Symbol

# -- a small PE writer ------------------------------------------------------------------------
FILE_ALIGN, SECTION_ALIGN, HEADERS_SIZE = 0x200, 0x1000, 0x200
TEXT_RVA, DATA_RVA = 0x1000, 0x2000
IMAGE_BASE = {32: 0x10000000, 64: 0x180000000}
MACHINE = {32: 0x14C, 64: 0x8664}
GUID = uuid.UUID("12345678-9abc-def0-1122-334455667788")

Imports = Sequence[tuple[str, Sequence[str | int]]]
DEFAULT_IMPORTS: Imports = (
    ("KERNEL32.dll", ("GetLastError", "LoadLibraryExW")),
    ("python311.dll", ("PyModule_Create2", 7)),  # 7: by ordinal
)
DEFAULT_DELAY: Imports = (("USER32.dll", ("MessageBoxW", 12)), ("SHELL32.dll", ("ShellExecuteW",)))


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


class _Data:
    """The contents of one section, addressed by RVA while it is built."""

    def __init__(self, rva: int) -> None:
        self.rva = rva
        self.buf = bytearray()

    def put(self, data: bytes, align: int = 4) -> int:
        self.buf += bytes(_align(len(self.buf), align) - len(self.buf))
        at = self.rva + len(self.buf)
        self.buf += data
        return at

    def cstr(self, s: str) -> int:
        return self.put(s.encode() + b"\0", 2)


@dataclass
class Image:
    data: bytearray
    bits: int
    #: RVAs of the tables, for tests that corrupt them ("imports", "delay", "ilt:<dll>"...)
    rvas: dict[str, int] = field(default_factory=dict)
    data_offset: int = 0
    data_size: int = 0

    def offset(self, rva: int) -> int:
        assert DATA_RVA <= rva < DATA_RVA + self.data_size
        return self.data_offset + rva - DATA_RVA

    def poke(self, rva: int, fmt: str, *values: int) -> None:
        struct.pack_into("<" + fmt, self.data, self.offset(rva), *values)


def _thunks(d: _Data, bits: int, items: Sequence[str | int], va_base: int | None) -> bytes:
    flag = 1 << (bits - 1)
    out: list[int] = []
    for item in items:
        if isinstance(item, int):
            out.append(flag | item)
        else:
            rva = d.put(struct.pack("<H", 0) + item.encode() + b"\0", 2)
            out.append(rva + va_base if va_base is not None else rva)
    out.append(0)
    return struct.pack(f"<{len(out)}{'I' if bits == 32 else 'Q'}", *out)


def make_pe(bits: int = 64, *, machine: int | None = None, characteristics: int = 0x2022,
            imports: Imports = DEFAULT_IMPORTS, delay: Imports = DEFAULT_DELAY,
            delay_va_based: bool = False, exports: Sequence[str] = ("alpha", "beta"),
            forwarders: dict[str, str] | None = None, export_name: str | None = "sample.dll",
            codeview: bool = True, pkgnote: bytes | None = None,
            subsystem: tuple[int, int] = (6, 2), os_version: tuple[int, int] = (6, 0)) -> Image:
    """A PE image with a ``.text`` section, a ``.rdata`` section holding every table and an
    optional ``.pkgnote`` section."""
    base = IMAGE_BASE[bits]
    forwarders = {"gamma": "OTHER.delta"} if forwarders is None else forwarders
    d = _Data(DATA_RVA)
    rvas: dict[str, int] = {}
    dirs = [(0, 0)] * 16

    descs: list[bytes] = []
    for dll, items in imports:
        name = d.cstr(dll)
        ilt = d.put(_thunks(d, bits, items, None), 8)
        iat = d.put(_thunks(d, bits, items, None), 8)
        rvas.setdefault(f"ilt:{dll}", ilt)
        descs.append(struct.pack("<IIIII", ilt, 0, 0, name, iat))
    if imports:
        table = b"".join(descs) + bytes(20)
        rvas["imports"] = d.put(table, 4)
        dirs[1] = (rvas["imports"], len(table))

    ddescs: list[bytes] = []
    for dll, items in delay:
        vb = base if delay_va_based else None
        name = d.cstr(dll)
        hmod = d.put(bytes(bits // 8), 8)
        int_ = d.put(_thunks(d, bits, items, vb), 8)
        iat = d.put(_thunks(d, bits, items, vb), 8)
        rvas.setdefault(f"int:{dll}", int_)
        va = base if delay_va_based else 0  # old descriptors hold VAs and attributes 0
        ddescs.append(struct.pack("<IIIIIIII", 0 if delay_va_based else 1, name + va, hmod + va,
                                  iat + va, int_ + va, 0, 0, 0))
    if delay:
        table = b"".join(ddescs) + bytes(32)
        rvas["delay"] = d.put(table, 4)
        dirs[13] = (rvas["delay"], len(table))

    if exports or forwarders or export_name:
        names = sorted([*exports, *forwarders])
        n = len(names)
        edir = d.put(bytes(40), 4)
        funcs = d.put(bytes(4 * (n + 1)), 4)  # one more: an export by ordinal only
        name_ptrs = d.put(bytes(4 * n), 4)
        ords = d.put(struct.pack(f"<{n}H", *range(n)), 4)
        dll_name = d.cstr(export_name) if export_name else 0
        addrs = [d.cstr(forwarders[x]) if x in forwarders else TEXT_RVA + 16 * i
                 for i, x in enumerate(names)]
        addrs.append(TEXT_RVA + 0x100)
        ptrs = [d.cstr(x) for x in names]
        size = d.rva + len(d.buf) - edir
        rvas.update(exports=edir, export_names=name_ptrs, export_funcs=funcs)
        dirs[0] = (edir, size)
        fixups = [(edir, struct.pack("<IIHHIIIIIII", 0, 0, 0, 0, dll_name, 1, n + 1, n, funcs,
                                     name_ptrs, ords)),
                  (funcs, struct.pack(f"<{n + 1}I", *addrs)),
                  (name_ptrs, struct.pack(f"<{n}I", *ptrs))]
    else:
        fixups = []

    if codeview:
        rec = d.put(b"RSDS" + GUID.bytes_le + struct.pack("<I", 3) + b"C:\\x\\sample.pdb\0", 4)
        dbg = d.put(struct.pack("<IIHHIIII", 0, 0, 0, 0, 2, 24 + 16, rec, 0), 4)
        rvas["debug"] = dbg
        dirs[6] = (dbg, 28)

    for rva, blob in fixups:
        d.buf[rva - DATA_RVA:rva - DATA_RVA + len(blob)] = blob

    # -- layout ------------------------------------------------------------------------
    text = bytes([0xC3]) * 0x200
    rdata = bytes(d.buf) + bytes(_align(len(d.buf), FILE_ALIGN) - len(d.buf))
    sections = [(b".text", TEXT_RVA, 0x200, text, 0x60000020),
                (b".rdata", DATA_RVA, len(d.buf), rdata, 0x40000040)]
    next_rva = _align(DATA_RVA + len(rdata), SECTION_ALIGN)
    if pkgnote is not None:
        padded = pkgnote + bytes(_align(len(pkgnote), FILE_ALIGN) - len(pkgnote))
        sections.append((b".pkgnote", next_rva, len(pkgnote), padded, 0x40000040))
        next_rva = _align(next_rva + len(padded), SECTION_ALIGN)
    size_of_image = next_rva

    magic = 0x10B if bits == 32 else 0x20B
    common = (0, 0, 0, 0, TEXT_RVA)  # code/data sizes, entry point, BaseOfCode
    tail = (SECTION_ALIGN, FILE_ALIGN, *os_version, 0, 0, *subsystem, 0, size_of_image,
            HEADERS_SIZE, 0, 2, 0x160)
    if bits == 32:
        opt = struct.pack("<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII", magic, 14, 0, *common,
                          DATA_RVA, base, *tail, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
    else:
        opt = struct.pack("<HBBIIIIIQIIHHHHHHIIIIHHQQQQII", magic, 14, 0, *common,
                          base, *tail, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
    opt += b"".join(struct.pack("<II", *x) for x in dirs)
    coff = struct.pack("<HHIIIHH", MACHINE[bits] if machine is None else machine,
                       len(sections), 0, 0, 0, len(opt), characteristics)
    headers = bytearray(HEADERS_SIZE)
    headers[0:2] = b"MZ"
    struct.pack_into("<I", headers, 0x3C, 0x40)
    hdr = b"PE\0\0" + coff + opt
    offset = HEADERS_SIZE
    body = bytearray()
    data_offset = 0
    for sname, rva, vsize, raw, chars in sections:
        hdr += struct.pack("<8sIIIIIIHHI", sname, vsize, rva, len(raw), offset, 0, 0, 0, 0, chars)
        if sname == b".rdata":
            data_offset = offset
        body += raw
        offset += len(raw)
    assert 0x40 + len(hdr) <= HEADERS_SIZE
    headers[0x40:0x40 + len(hdr)] = hdr
    return Image(headers + body, bits, rvas, data_offset, len(rdata))


def _parse(data: bytes | bytearray) -> tuple[PEFile, tuple[Symbol, ...]]:
    f = PEFile(BytesBlob(bytes(data)))
    return f, f.symbols()


def _imports(syms: Sequence[Symbol]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s in syms:
        if not s.defined:
            assert s.library is not None
            out.setdefault(s.library, []).append(s.name)
    return out


# -- the happy path ---------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [32, 64])
def test_synthetic_dll(bits: int) -> None:
    img = make_pe(bits)
    b, warnings = parse_pe(BytesBlob(bytes(img.data)))
    assert warnings == ()
    assert b.format is BinaryFormat.PE
    assert (b.bits, b.little_endian, b.machine) == (bits, True, MACHINE[bits])
    assert b.arch == ("x86" if bits == 32 else "amd64")
    assert b.file_type == PE_TYPE_DLL
    assert b.size == len(img.data)
    assert b.soname == "sample.dll"
    assert b.needed == ("KERNEL32.dll", "python311.dll", "USER32.dll", "SHELL32.dll")
    assert b.needed_kinds == ("import", "import", "delay", "delay")
    assert b.has_dynamic
    assert b.min_os == "windows 6.2"
    assert b.build_id == GUID.hex.upper() + "3"  # the symbol-server key: GUID, then age
    assert b.package_note is None
    assert (b.rpath, b.runpath, b.interpreter) == (None, None, None)


# Old VA-based delay descriptors come from 32-bit compilers only (32-bit fields hold VAs).
@pytest.mark.parametrize(("bits", "va_based"), [(32, False), (64, False), (32, True)])
def test_symbols(bits: int, va_based: bool) -> None:
    f, syms = _parse(make_pe(bits, delay_va_based=va_based).data)
    assert f.warnings == []
    assert _imports(syms) == {
        "KERNEL32.dll": ["GetLastError", "LoadLibraryExW"],
        "python311.dll": ["PyModule_Create2", "#7"],
        "USER32.dll": ["MessageBoxW", "#12"],
        "SHELL32.dll": ["ShellExecuteW"],
    }
    exported = [(s.name, s.type, s.library) for s in syms if s.defined]
    assert exported == [("alpha", "FUNC", None), ("beta", "FUNC", None),
                        ("gamma", "FORWARDER", "OTHER.dll")]


def test_va_based_delay_descriptor_is_read_as_vas() -> None:
    b, warnings = parse_pe(BytesBlob(bytes(make_pe(32, delay_va_based=True).data)))
    assert warnings == ()
    assert b.needed[2:] == ("USER32.dll", "SHELL32.dll")


@pytest.mark.parametrize(("characteristics", "file_type"),
                         [(0x2022, PE_TYPE_DLL), (0x0022, PE_TYPE_EXE), (0x0020, PE_TYPE_OTHER)])
def test_file_type(characteristics: int, file_type: int) -> None:
    b, _ = parse_pe(BytesBlob(bytes(make_pe(characteristics=characteristics).data)))
    assert b.file_type == file_type


def test_no_tables() -> None:
    img = make_pe(imports=(), delay=(), exports=(), forwarders={}, export_name=None,
                  codeview=False)
    b, warnings = parse_pe(BytesBlob(bytes(img.data)))
    assert warnings == ()
    assert (b.needed, b.needed_kinds, b.soname, b.build_id, b.has_dynamic) == \
        ((), (), None, None, False)
    assert PEFile(BytesBlob(bytes(img.data))).symbols() == ()


def test_min_os_falls_back_to_os_version() -> None:
    b, _ = parse_pe(BytesBlob(bytes(make_pe(subsystem=(0, 0), os_version=(10, 0)).data)))
    assert b.min_os == "windows 10.0"


def test_machine_names() -> None:
    assert [arch_name(m) for m in (0x14C, 0x8664, 0xAA64, 0x1234)] == \
        ["x86", "amd64", "arm64", "machine-0x1234"]
    b, _ = parse_pe(BytesBlob(bytes(make_pe(machine=0xAA64).data)))
    assert (b.machine, b.arch) == (0xAA64, "arm64")


# -- .pkgnote ---------------------------------------------------------------------------------
PKG = {"type": "rpm", "os": "fedora", "name": "sample", "version": "1.2-3", "osVersion": 41}


def _note(owner: bytes, ntype: int, desc: bytes) -> bytes:
    name = owner + b"\0"
    name += bytes(_align(len(name), 4) - len(name))
    return struct.pack("<III", len(owner) + 1, len(desc), ntype) + name + desc


@pytest.mark.parametrize("style", ["raw", "note"])
def test_pkgnote(style: str) -> None:
    payload = json.dumps(PKG).encode() + b"\0"
    if style == "note":
        payload = _note(b"FDO", 0xCAFE1A7E, payload)
    b, warnings = parse_pe(BytesBlob(bytes(make_pe(pkgnote=payload).data)))
    assert warnings == ()
    assert b.package_note == tuple((k, str(v)) for k, v in PKG.items())


@pytest.mark.parametrize(("payload", "warning"), [
    (b'{"name": "x",\0', "not valid JSON"),
    (b'["name"]\0', "not an object"),
    (_note(b"FDO", 0xCAFE1A7E, b"{nope}\0"), "not valid JSON"),
    (_note(b"GNU", 3, b"\x01\x02"), "not valid JSON"),
    (_note(b"FDO", 0xCAFE1A7E, b"{}")[:17], "malformed FDO"),
    (_note(b"FDO", 3, b"{}"), "malformed FDO"),
    (b"\x01", "not valid JSON"),
])
def test_bad_pkgnote_is_a_warning(payload: bytes, warning: str) -> None:
    b, warnings = parse_pe(BytesBlob(bytes(make_pe(pkgnote=payload).data)))
    assert b.package_note is None
    assert any(warning in w for w in warnings), warnings
    assert b.needed  # the rest is still read


# -- malformed headers ------------------------------------------------------------------------
def _corrupt(offset: int, data: bytes) -> bytes:
    img = make_pe()
    img.data[offset:offset + len(data)] = data
    return bytes(img.data)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "no MZ header"),
    (b"\x7fELF" + bytes(60), "no MZ header"),
    (_corrupt(0x3C, struct.pack("<I", 0xFFFFFFF0)), "outside the file"),
    (_corrupt(0x40, b"PX\0\0"), "no PE signature"),
    (_corrupt(0x58, struct.pack("<H", 0x107)), "unsupported optional header magic"),
    (_corrupt(0x54, struct.pack("<H", 1)), "optional header of 1 bytes"),
    (_corrupt(0x54, struct.pack("<H", 100)), "too short for PE32+"),
    (_corrupt(0x46, struct.pack("<H", 0xFFFF)), "outside the file"),
])
def test_bad_headers_raise_format_error(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_pe(BytesBlob(data))


@pytest.mark.parametrize("bits", [32, 64])
def test_every_truncation(bits: int) -> None:
    data = bytes(make_pe(bits, pkgnote=json.dumps(PKG).encode()).data)
    table_end = 0x40 + 24 + (224 if bits == 32 else 240) + 3 * 40
    for n in range(0, len(data), 7):
        try:
            f = PEFile(BytesBlob(data[:n]))
            f.binary()
            f.symbols()
        except FormatError:
            continue
        assert n >= table_end, f"a {n}-byte prefix parsed"


# -- hostile tables ---------------------------------------------------------------------------
def test_unmapped_directory_is_a_warning() -> None:
    img = make_pe()
    img.data[0x40 + 24 + 112 + 8:0x40 + 24 + 112 + 12] = struct.pack("<I", 0x7FFF0000)
    b, warnings = parse_pe(BytesBlob(bytes(img.data)))
    assert b.needed == ("USER32.dll", "SHELL32.dll")
    assert any("import directory cut short" in w for w in warnings), warnings


def test_unreadable_dll_name_skips_the_descriptor() -> None:
    img = make_pe()
    img.poke(img.rvas["imports"] + 12, "I", 0x7FFF0000)
    b, warnings = parse_pe(BytesBlob(bytes(img.data)))
    assert b.needed == ("python311.dll", "USER32.dll", "SHELL32.dll")
    assert any("DLL name unreadable" in w for w in warnings)


def test_zero_fill_after_file_data_terminates_a_name() -> None:
    """A name running to the end of a section's file data ends there when the section is
    longer in memory (the loader fills the rest with zeros)."""
    img = make_pe(64)
    vsize_at = 0x40 + 24 + 240 + 40 + 8  # .rdata's VirtualSize
    struct.pack_into("<I", img.data, vsize_at, img.data_size + 0x100)
    end = DATA_RVA + img.data_size
    img.data[img.offset(end - 6):img.offset(end - 1) + 1] = b"ZZ.dll"
    img.poke(img.rvas["imports"] + 12, "I", end - 6)
    b, warnings = parse_pe(BytesBlob(bytes(img.data)))
    assert warnings == ()
    assert b.needed[0] == "ZZ.dll"


def test_string_read_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytes(make_pe().data)
    monkeypatch.setattr(pe_module, "STRING_READ_BUDGET", -8 * len(data) + 40)
    b, warnings = parse_pe(BytesBlob(data))
    assert len(b.needed) < 4
    assert any("cost more to read" in w for w in warnings), warnings


def test_thunk_array_running_off_its_section() -> None:
    img = make_pe(64)
    last = DATA_RVA + img.data_size - 8
    img.poke(last, "Q", (1 << 63) | 5)
    img.poke(img.rvas["imports"], "I", last)
    f, syms = _parse(img.data)
    assert _imports(syms)["KERNEL32.dll"] == ["#5"]
    assert any("not terminated" in w for w in f.warnings), f.warnings


@pytest.mark.parametrize("table", ["imports", "delay"])
def test_descriptor_pointing_at_itself_terminates(table: str) -> None:
    img = make_pe(64)
    at = img.rvas[table]
    if table == "imports":
        img.poke(at, "I", at)  # OriginalFirstThunk -> the descriptor array
    else:
        img.poke(at + 16, "I", at)  # ImportNameTableRVA -> the descriptor array
        img.poke(at + 12, "I", at)
    t = time.monotonic()
    f, syms = _parse(img.data)
    assert time.monotonic() - t < 60  # a hang guard, not a speed check
    assert f.binary().needed == ("KERNEL32.dll", "python311.dll", "USER32.dll", "SHELL32.dll")
    assert len(syms) < 100


def test_thunk_array_cap() -> None:
    img = make_pe(32, imports=(("ORD.dll", range(1, MAX_THUNKS + 10)),), delay=())
    t = time.monotonic()
    f, syms = _parse(img.data)
    assert time.monotonic() - t < 60  # a hang guard, not a speed check
    assert len(_imports(syms)["ORD.dll"]) == MAX_THUNKS
    assert any(f"more than {MAX_THUNKS} entries" in w for w in f.warnings)


def test_descriptor_cap() -> None:
    img = make_pe(32, imports=[("A.dll", (1,))] * (MAX_DESCRIPTORS + 3), delay=(),
                  exports=(), forwarders={}, export_name=None)
    t = time.monotonic()
    b, warnings = parse_pe(BytesBlob(bytes(img.data)))
    assert time.monotonic() - t < 60  # a hang guard, not a speed check
    assert len(b.needed) == MAX_DESCRIPTORS
    assert any("more than" in w for w in warnings)


def test_export_tables_out_of_range() -> None:
    img = make_pe()
    img.poke(img.rvas["exports"] + 32, "I", 0x7FFF0000)  # AddressOfNames
    f, syms = _parse(img.data)
    assert not [s for s in syms if s.defined]
    assert f.binary().soname == "sample.dll"
    assert any("export name table unreadable" in w for w in f.warnings)


def test_export_name_count_beyond_section() -> None:
    img = make_pe()
    img.poke(img.rvas["exports"] + 24, "I", 0xFFFFFFFF)  # NumberOfNames
    t = time.monotonic()
    f, _syms = _parse(img.data)
    assert time.monotonic() - t < 60  # a hang guard, not a speed check
    assert f.warnings


# -- mutations --------------------------------------------------------------------------------
BASE_IMAGES = {bits: make_pe(bits, pkgnote=json.dumps(PKG).encode()) for bits in (32, 64)}
WORDS = [0, 1, 2, 0xFF, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, DATA_RVA,
         DATA_RVA + 4, DATA_RVA + 0x40, TEXT_RVA, HEADERS_SIZE, IMAGE_BASE[32] + DATA_RVA]
FUZZ = settings(max_examples=300, deadline=10000, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(bits=st.sampled_from([32, 64]),
       words=st.lists(st.tuples(st.integers(0, 1 << 20), st.sampled_from(WORDS)), max_size=6),
       flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6))
def test_mutated_headers_and_tables(bits: int, words: list[tuple[int, int]],
                                    flips: list[tuple[int, int]]) -> None:
    img = BASE_IMAGES[bits]
    data = bytearray(img.data)
    # Mutate the headers and the table section (not the padding nor the code).
    spots = [*range(0, 0x200, 2), *range(img.data_offset, img.data_offset + img.data_size, 2)]
    for where, value in words:
        at = spots[where % len(spots)]
        struct.pack_into("<I", data, min(at, len(data) - 4), value)
    for where, value in flips:
        data[spots[where % len(spots)]] = value
    try:
        f = PEFile(BytesBlob(bytes(data)))
        b = f.binary()
        f.symbols()
    except FormatError:
        return
    assert b.format is BinaryFormat.PE
    assert len(b.needed) == len(b.needed_kinds)
