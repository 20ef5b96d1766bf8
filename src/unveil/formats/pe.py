"""PE reader (PE32 and PE32+): facts from the headers, the import and delay-import
directories, the export directory, the CodeView debug record and a ``.pkgnote`` section.

Addresses inside a PE file are RVAs (offsets in the *mapped* image); they are turned into file
offsets through the section table the way the Windows loader maps sections: file data from
``PointerToRawData`` (rounded down to 512 when ``FileAlignment`` is at least 512), followed by
zeros up to ``VirtualSize``.  Reads that land in that zero-filled tail read zeros, which is how
a table that runs to the end of its section still terminates.

Only the ranges needed are read from the :class:`~unveil.formats.blob.Blob`.  A malformed DOS,
COFF or optional header raises :class:`~unveil.errors.FormatError`; damage inside one of the
directories (an RVA outside every section, a thunk array that never ends, a truncated table)
stops reading that table and is reported in ``warnings``, so what could be read is kept.
Every walk over a table is capped, so a hostile file costs no more than a large real one.

``Binary.file_type`` for PE (there is no ELF-like type field): :data:`PE_TYPE_DLL` (2) when
the COFF characteristics have ``IMAGE_FILE_DLL``, :data:`PE_TYPE_EXE` (1) when they have
``IMAGE_FILE_EXECUTABLE_IMAGE`` only, :data:`PE_TYPE_OTHER` (0) otherwise (the loader refuses
such a file).
"""

from __future__ import annotations

import bisect
import json
import struct
from dataclasses import dataclass

from unveil.errors import FormatError
from unveil.formats._reader import read_binary
from unveil.formats.blob import Blob
from unveil.model import Binary, BinaryFormat, Symbol

__all__ = [
    "PE_MAGIC",
    "PE_TYPE_DLL",
    "PE_TYPE_EXE",
    "PE_TYPE_OTHER",
    "PEFile",
    "arch_name",
    "parse_pe",
]

PE_MAGIC = b"MZ"
PE_SIGNATURE = b"PE\0\0"
PE_TYPE_OTHER, PE_TYPE_EXE, PE_TYPE_DLL = 0, 1, 2

IMAGE_FILE_EXECUTABLE_IMAGE = 0x0002
IMAGE_FILE_DLL = 0x2000
IMAGE_SCN_MEM_EXECUTE = 0x20000000
OPT_MAGIC_PE32, OPT_MAGIC_PE32_PLUS = 0x10B, 0x20B
DIR_EXPORT, DIR_IMPORT, DIR_DEBUG, DIR_DELAY_IMPORT = 0, 1, 6, 13
IMAGE_DEBUG_TYPE_CODEVIEW = 2
DELAY_ATTR_RVA = 0x1
NT_FDO_PACKAGING_METADATA = 0xCAFE1A7E

#: Limits that keep hostile files from costing more than a real one could.
MAX_DESCRIPTORS = 1 << 16
MAX_THUNKS = 1 << 16
MAX_IMPORTS = 1 << 20
MAX_EXPORTS = 1 << 20
MAX_DEBUG_ENTRIES = 256
MAX_DATA_DIRECTORIES = 16
MAX_NAME = 1 << 16
MAX_DLL_NAME = 4096
#: Bytes that string reads may cost in all, beyond 8 times the file size: without it, many
#: table entries pointing into one long unterminated run would each read it again.
STRING_READ_BUDGET = 64 << 20
MAX_NOTE_BYTES = 1 << 20
_CHUNK = 512

_ARCH = {
    0x14C: "x86", 0x8664: "amd64", 0xAA64: "arm64", 0xA641: "arm64ec", 0xA64E: "arm64x",
    0x1C0: "arm", 0x1C2: "thumb", 0x1C4: "armnt", 0x200: "ia64", 0x5032: "riscv32",
    0x5064: "riscv64", 0x5128: "riscv128", 0x6232: "loongarch32", 0x6264: "loongarch64",
    0x166: "mips", 0x1F0: "powerpc", 0xEBC: "ebc",
}

# Optional header up to NumberOfRvaAndSizes (the data directories follow).
_OPT32 = struct.Struct("<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII")
_OPT64 = struct.Struct("<HBBIIIIIQIIHHHHHHIIIIHHQQQQII")
_COFF = struct.Struct("<HHIIIHH")
_SECTION = struct.Struct("<8sIIIIIIHHI")
_IMPORT_DESC = struct.Struct("<IIIII")
_DELAY_DESC = struct.Struct("<IIIIIIII")
_EXPORT_DIR = struct.Struct("<IIHHIIIIIII")
_DEBUG_DIR = struct.Struct("<IIHHIIII")


def arch_name(machine: int) -> str:
    """The architecture name of a COFF machine number ("x86", "amd64", "arm64"...)."""
    return _ARCH.get(machine, f"machine-{machine:#x}")


@dataclass(frozen=True, slots=True)
class _Section:
    name: bytes
    va: int
    #: bytes of the mapped section: max(VirtualSize, SizeOfRawData), cut at the next section
    span: int
    raw_ptr: int
    #: bytes of ``span`` backed by the file; the rest reads as zeros
    raw_size: int
    characteristics: int
    #: VirtualSize: the size of the contents, without the file alignment padding
    vsize: int


@dataclass(frozen=True, slots=True)
class _Header:
    machine: int
    characteristics: int
    bits: int
    image_base: int
    size_of_image: int
    size_of_headers: int
    os_version: tuple[int, int]
    subsystem_version: tuple[int, int]
    directories: tuple[tuple[int, int], ...]
    sections: tuple[_Section, ...]


@dataclass(frozen=True, slots=True)
class _ImportDll:
    """One import or delay-import descriptor: the DLL and where its name table is."""

    dll: str
    kind: str
    #: RVA of the thunk array naming the imports (ILT/INT, or the IAT of an import without
    #: an ILT); 0 when there is none
    thunks: int
    #: old (pre-VC 7) delay descriptor: its fields and thunks hold VAs, not RVAs
    va_based: bool = False


class PEFile:
    """A PE file being read.  ``binary()`` gives the facts; ``symbols()`` is separate
    because walking every thunk and export name costs more and most scans need none."""

    def __init__(self, blob: Blob) -> None:
        self.blob = blob
        self.warnings: list[str] = []
        self.h = self._header()
        # One section per address: the first (in table order) that maps any bytes there.
        by_va: dict[int, _Section] = {}
        for sec in self.h.sections:
            if sec.span and sec.va not in by_va:
                by_va[sec.va] = sec
        self._map = sorted(by_va.values(), key=lambda sec: sec.va)
        self._starts = [sec.va for sec in self._map]
        self._string_budget = STRING_READ_BUDGET + 8 * blob.size
        self._dlls: list[_ImportDll] | None = None

    # -- headers ----------------------------------------------------------------------------
    def _header(self) -> _Header:
        blob = self.blob
        if blob.size < 64 or blob.read(0, 2) != PE_MAGIC:
            raise FormatError("not a PE file (no MZ header)", 0)
        (lfanew,) = struct.unpack("<I", blob.read(0x3C, 4))
        if lfanew + 24 > blob.size:
            raise FormatError(f"e_lfanew {lfanew:#x} lies outside the file", 0x3C)
        if blob.read(lfanew, 4) != PE_SIGNATURE:
            raise FormatError("not a PE file (no PE signature at e_lfanew)", lfanew)
        (machine, nsections, _ts, _symptr, _nsyms, opt_size,
         characteristics) = _COFF.unpack(blob.read(lfanew + 4, _COFF.size))
        opt_off = lfanew + 24
        if opt_size < 2:
            raise FormatError(f"optional header of {opt_size} bytes", lfanew + 20)
        (magic,) = struct.unpack("<H", blob.read(opt_off, 2))
        if magic == OPT_MAGIC_PE32:
            st, bits = _OPT32, 32
        elif magic == OPT_MAGIC_PE32_PLUS:
            st, bits = _OPT64, 64
        else:
            raise FormatError(f"unsupported optional header magic {magic:#x}", opt_off)
        if opt_size < st.size:
            raise FormatError(f"optional header of {opt_size} bytes is too short for "
                              f"{'PE32+' if bits == 64 else 'PE32'}", lfanew + 20)
        f = st.unpack(blob.read(opt_off, st.size))
        if bits == 32:
            image_base, file_align = f[9], f[11]
            os_ver, sub_ver = (f[12], f[13]), (f[16], f[17])
            size_of_image, size_of_headers, ndirs = f[19], f[20], f[29]
        else:
            image_base, file_align = f[8], f[10]
            os_ver, sub_ver = (f[11], f[12]), (f[15], f[16])
            size_of_image, size_of_headers, ndirs = f[18], f[19], f[28]
        room = (opt_size - st.size) // 8
        count = min(ndirs, MAX_DATA_DIRECTORIES, room)
        if ndirs > room:
            self.warnings.append(f"{ndirs} data directories declared, room for {room}")
        raw_dirs = blob.read(opt_off + st.size, 8 * count)
        directories = tuple(struct.iter_unpack("<II", raw_dirs))
        table = blob.read(opt_off + opt_size, _SECTION.size * nsections)
        rows = [_SECTION.unpack_from(table, i * _SECTION.size) for i in range(nsections)]
        sections = self._sections(rows, file_align)
        return _Header(machine, characteristics, bits, image_base, size_of_image,
                       size_of_headers, os_ver, sub_ver, directories, sections)

    def _sections(self, rows: list[tuple[bytes, int, int, int, int, int, int, int, int, int]],
                  file_align: int) -> tuple[_Section, ...]:
        """The sections in table order, each cut at the start of the next by address."""
        vas = sorted({r[2] for r in rows})
        out: list[_Section] = []
        for name, vsize, va, raw_size, raw_ptr, _r, _l, _nr, _nl, chars in rows:
            if file_align >= 0x200:
                raw_ptr &= ~0x1FF  # the loader reads whole 512-byte sectors
            span = max(vsize, raw_size)
            i = bisect.bisect_right(vas, va)
            if i < len(vas) and va + span > vas[i]:
                span = vas[i] - va
            # File data past the end of a truncated file is not zero fill: reading it fails.
            out.append(_Section(name.rstrip(b"\0"), va, span, raw_ptr, min(raw_size, span),
                                chars, vsize))
        return tuple(out)

    def directory(self, index: int) -> tuple[int, int]:
        """(RVA, size) of data directory ``index``, (0, 0) when absent."""
        return self.h.directories[index] if index < len(self.h.directories) else (0, 0)

    # -- address mapping --------------------------------------------------------------------
    def _section_at(self, rva: int) -> _Section | None:
        i = bisect.bisect_right(self._starts, rva)
        if i == 0:
            return None
        s = self._map[i - 1]
        return s if rva < s.va + s.span else None

    def _locate(self, rva: int) -> tuple[int, int, int]:
        """(file offset, bytes backed by the file, bytes mapped in all) from ``rva`` on."""
        s = self._section_at(rva)
        if s is not None:
            rel = rva - s.va
            return s.raw_ptr + rel, max(0, s.raw_size - rel), s.span - rel
        first = self._starts[0] if self._starts else self.h.size_of_headers
        end = min(self.h.size_of_headers, first, self.blob.size)
        if 0 <= rva < end:  # the headers are mapped too
            return rva, end - rva, end - rva
        raise FormatError(f"RVA {rva:#x} is not in any section")

    def read_rva(self, rva: int, size: int) -> bytes:
        """``size`` bytes of the mapped image at ``rva`` (zeros past a section's file data)."""
        off, backed, mapped = self._locate(rva)
        if size > mapped:
            raise FormatError(f"range at RVA {rva:#x}+{size:#x} runs past its section")
        data = self.blob.read(off, min(size, backed))
        return data + bytes(size - len(data))

    def _mapped(self, rva: int) -> int:
        """Bytes mapped from ``rva`` to the end of its section."""
        return self._locate(rva)[2]

    def string_at(self, rva: int, limit: int = MAX_NAME) -> str:
        """The NUL-terminated string at ``rva`` (at most ``limit`` bytes)."""
        off, backed, mapped = self._locate(rva)
        readable = min(limit, backed)
        buf = b""
        step = 128
        while len(buf) < readable:
            n = min(step, readable - len(buf))
            self._string_budget -= n
            if self._string_budget < 0:
                raise FormatError("string tables cost more to read than the file could need")
            chunk = self.blob.read(off + len(buf), n)
            end = chunk.find(b"\0")
            if end >= 0:
                return (buf + chunk[:end]).decode("utf-8", "backslashreplace")
            buf += chunk
            step *= 2
        if backed < min(limit, mapped):
            # The section's file data ended first: the zero fill terminates the string.
            return buf.decode("utf-8", "backslashreplace")
        raise FormatError(f"unterminated string at RVA {rva:#x}")

    def _va_rva(self, value: int) -> int:
        """An address from an old VA-based table as an RVA (left alone when not in the image)."""
        base = self.h.image_base
        return value - base if base <= value < base + self.h.size_of_image else value

    # -- import and delay-import directories ------------------------------------------------
    def _descriptors(self) -> list[_ImportDll]:
        """Import descriptors then delay-import descriptors, each in table order."""
        if self._dlls is None:
            self._dlls = self._import_descriptors() + self._delay_descriptors()
        return self._dlls

    def _import_descriptors(self) -> list[_ImportDll]:
        rva, _size = self.directory(DIR_IMPORT)
        out: list[_ImportDll] = []
        if not rva:
            return out
        for i in range(MAX_DESCRIPTORS):
            at = rva + i * _IMPORT_DESC.size
            try:
                ilt, _ts, _fwd, name, iat = _IMPORT_DESC.unpack(self.read_rva(at, 20))
            except FormatError as e:
                self.warnings.append(f"import directory cut short at RVA {at:#x}: {e}")
                return out
            # The NT loader's end test (ReactOS ldrpe.c has it too): a descriptor without a
            # name or an IAT ends the table; the directory's size is not used.
            if not name or not iat:
                return out
            try:
                dll = self.string_at(name, MAX_DLL_NAME)
            except FormatError as e:
                self.warnings.append(f"import descriptor {i}: DLL name unreadable: {e}")
                continue
            out.append(_ImportDll(dll, "import", ilt or iat))
        self.warnings.append(f"import directory has more than {MAX_DESCRIPTORS} entries; "
                             "the rest were ignored")
        return out

    def _delay_descriptors(self) -> list[_ImportDll]:
        rva, _size = self.directory(DIR_DELAY_IMPORT)
        out: list[_ImportDll] = []
        if not rva:
            return out
        for i in range(MAX_DESCRIPTORS):
            at = rva + i * _DELAY_DESC.size
            try:
                attrs, name, _hmod, _iat, names, *_rest = _DELAY_DESC.unpack(self.read_rva(at, 32))
            except FormatError as e:
                self.warnings.append(f"delay-import directory cut short at RVA {at:#x}: {e}")
                return out
            if not name:
                return out
            old = not attrs & DELAY_ATTR_RVA
            if old:
                name, names = self._va_rva(name), self._va_rva(names)
            try:
                dll = self.string_at(name, MAX_DLL_NAME)
            except FormatError as e:
                self.warnings.append(f"delay-import descriptor {i}: DLL name unreadable: {e}")
                continue
            # The IAT of a delay import holds stubs, not names: only the INT names imports.
            out.append(_ImportDll(dll, "delay", names, old))
        self.warnings.append(f"delay-import directory has more than {MAX_DESCRIPTORS} "
                             "entries; the rest were ignored")
        return out

    def _thunk_names(self, d: _ImportDll, budget: int) -> list[str]:
        """Names ("#ordinal" when by ordinal) of one descriptor's imports, at most ``budget``."""
        width = self.h.bits // 8
        ordinal_flag = 1 << (self.h.bits - 1)
        fmt = "<I" if width == 4 else "<Q"
        out: list[str] = []
        rva = d.thunks
        if not rva:
            return out
        cap = min(MAX_THUNKS, budget)
        while len(out) < cap:
            try:
                n = min(_CHUNK, self._mapped(rva) // width, cap - len(out))
                if n == 0:
                    raise FormatError("thunk array runs past its section")
                raw = self.read_rva(rva, n * width)
            except FormatError as e:
                self.warnings.append(f"imports of {d.dll}: thunk array at RVA {rva:#x} is "
                                     f"not terminated: {e}")
                return out
            for (value,) in struct.iter_unpack(fmt, raw):
                if value == 0:
                    return out
                if value & ordinal_flag:
                    out.append(f"#{value & 0xFFFF}")
                    continue
                hint_name = self._va_rva(value) if d.va_based else value & (ordinal_flag - 1)
                try:
                    out.append(self.string_at(hint_name + 2))
                except FormatError as e:
                    self.warnings.append(f"imports of {d.dll}: name unreadable: {e}")
                    return out
            rva += n * width
        self.warnings.append(f"imports of {d.dll}: more than {cap} entries; the rest were "
                             "ignored")
        return out

    # -- export directory -------------------------------------------------------------------
    def _export_header(self) -> tuple[int, ...] | None:
        rva, _size = self.directory(DIR_EXPORT)
        if not rva:
            return None
        try:
            return _EXPORT_DIR.unpack(self.read_rva(rva, _EXPORT_DIR.size))
        except FormatError as e:
            self.warnings.append(f"export directory unreadable: {e}")
            return None

    def export_name(self) -> str | None:
        hdr = self._export_header()
        if hdr is None or not hdr[4]:
            return None
        try:
            return self.string_at(hdr[4], MAX_DLL_NAME)
        except FormatError as e:
            self.warnings.append(f"export directory: DLL name unreadable: {e}")
            return None

    def exports(self) -> list[Symbol]:
        """Named exports in the order of the name table (sorted, as the loader requires)."""
        hdr = self._export_header()
        if hdr is None:
            return []
        dir_rva, dir_size = self.directory(DIR_EXPORT)
        nfuncs, nnames, funcs_rva, names_rva, ords_rva = hdr[6:11]
        out: list[Symbol] = []
        if not nnames:
            return out
        count = min(nnames, MAX_EXPORTS)
        if count < nnames:
            self.warnings.append(f"{nnames} exported names; only {count} read")
        try:
            count = min(count, self._mapped(names_rva) // 4, self._mapped(ords_rva) // 2)
            names = struct.unpack(f"<{count}I", self.read_rva(names_rva, 4 * count))
            ords = struct.unpack(f"<{count}H", self.read_rva(ords_rva, 2 * count))
        except FormatError as e:
            self.warnings.append(f"export name table unreadable: {e}")
            return out
        if count < min(nnames, MAX_EXPORTS):
            self.warnings.append("export name table runs past its section")
        for name_rva, ordinal in zip(names, ords, strict=True):
            try:
                name = self.string_at(name_rva)
            except FormatError as e:
                self.warnings.append(f"exported name unreadable: {e}")
                return out
            sym_type, library = "NOTYPE", None
            if ordinal < nfuncs:
                try:
                    (addr,) = struct.unpack("<I", self.read_rva(funcs_rva + 4 * ordinal, 4))
                    if dir_rva <= addr < dir_rva + dir_size:
                        # A forwarder: "OTHER.Name" or "OTHER.#12"; the loader loads OTHER
                        # (".dll" added when it has no extension) to resolve it.
                        sym_type = "FORWARDER"
                        module = self.string_at(addr).rpartition(".")[0]
                        library = module if "." in module else module + ".dll"
                    else:
                        sym_type = "FUNC" if self._executable(addr) else "OBJECT"
                except FormatError as e:
                    self.warnings.append(f"export {name}: address unreadable: {e}")
            else:
                self.warnings.append(f"export {name}: ordinal index {ordinal} is out of range")
            out.append(Symbol(name=name, defined=True, binding="GLOBAL", type=sym_type,
                              library=library))
        return out

    def _executable(self, rva: int) -> bool:
        s = self._section_at(rva)
        return s is not None and bool(s.characteristics & IMAGE_SCN_MEM_EXECUTE)

    # -- debug directory and package note ---------------------------------------------------
    def _build_id(self) -> str | None:
        """The PDB's symbol-server key (GUID as printed by Microsoft, then age, in hex) from
        the CodeView RSDS record."""
        rva, size = self.directory(DIR_DEBUG)
        if not rva or size < _DEBUG_DIR.size:
            return None
        for i in range(min(size // _DEBUG_DIR.size, MAX_DEBUG_ENTRIES)):
            try:
                (_c, _ts, _maj, _min, dtype, dsize, daddr,
                 dptr) = _DEBUG_DIR.unpack(self.read_rva(rva + i * _DEBUG_DIR.size,
                                                         _DEBUG_DIR.size))
                if dtype != IMAGE_DEBUG_TYPE_CODEVIEW or dsize < 24:
                    continue
                rec = self.read_rva(daddr, 24) if daddr else self.blob.read(dptr, 24)
            except FormatError as e:
                self.warnings.append(f"debug directory unreadable: {e}")
                return None
            if rec[:4] != b"RSDS":
                continue
            d1, d2, d3 = struct.unpack_from("<IHH", rec, 4)
            (age,) = struct.unpack_from("<I", rec, 20)
            return f"{d1:08X}{d2:04X}{d3:04X}{rec[12:20].hex().upper()}{age:X}"
        return None

    def _package_note(self) -> tuple[tuple[str, str], ...] | None:
        sec = next((s for s in self.h.sections if s.name == b".pkgnote"), None)
        if sec is None:
            return None
        size = min(sec.raw_size, sec.vsize) if sec.vsize else sec.raw_size
        if size == 0:
            return None
        if size > MAX_NOTE_BYTES:
            self.warnings.append(f".pkgnote section of {size} bytes skipped")
            return None
        try:
            data = self.blob.read(sec.raw_ptr, size)
        except FormatError as e:
            self.warnings.append(f".pkgnote section unreadable: {e}")
            return None
        payload = data
        if len(data) >= 16 and data[12:16] == b"FDO\0":
            # An ELF-style note: namesz, descsz, type, "FDO\0", then the JSON descriptor.
            namesz, descsz, ntype = struct.unpack_from("<III", data)
            if namesz != 4 or ntype != NT_FDO_PACKAGING_METADATA or 16 + descsz > len(data):
                self.warnings.append(".pkgnote holds a malformed FDO packaging-metadata note")
                return None
            payload = data[16:16 + descsz]
        text = payload.lstrip(b"\0").split(b"\0", 1)[0]
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as e:
            self.warnings.append(f".pkgnote is not valid JSON: {e}")
            return None
        if not isinstance(obj, dict):
            self.warnings.append(".pkgnote JSON is not an object")
            return None
        return tuple((str(k), str(v)) for k, v in obj.items())

    # -- public -----------------------------------------------------------------------------
    def binary(self) -> Binary:
        h = self.h
        dlls = self._descriptors()
        if h.characteristics & IMAGE_FILE_DLL:
            file_type = PE_TYPE_DLL
        elif h.characteristics & IMAGE_FILE_EXECUTABLE_IMAGE:
            file_type = PE_TYPE_EXE
        else:
            file_type = PE_TYPE_OTHER
        # The subsystem version is what the loader enforces; the "OS version" fields are
        # informational and only used when the subsystem version is unset.
        major, minor = h.subsystem_version if any(h.subsystem_version) else h.os_version
        return Binary(
            format=BinaryFormat.PE,
            size=self.blob.size,
            bits=h.bits,
            little_endian=True,
            machine=h.machine,
            osabi=0,
            abiversion=0,
            file_type=file_type,
            soname=self.export_name(),
            needed=tuple(d.dll for d in dlls),
            needed_kinds=tuple(d.kind for d in dlls),
            build_id=self._build_id(),
            package_note=self._package_note(),
            has_dynamic=bool(dlls),
            arch=arch_name(h.machine),
            min_os=f"windows {major}.{minor}",
        )

    def import_tables(self) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
        """(DLL, "import" or "delay", imported names) for each descriptor, in the order of
        ``Binary.needed``; a name is ``#n`` for an import by ordinal."""
        out: list[tuple[str, str, tuple[str, ...]]] = []
        total = 0
        for d in self._descriptors():
            budget = MAX_IMPORTS - total
            if budget <= 0:
                self.warnings.append(f"more than {MAX_IMPORTS} imports; the rest were ignored")
                break
            names = self._thunk_names(d, budget)
            total += len(names)
            out.append((d.dll, d.kind, tuple(names)))
        return tuple(out)

    def symbols(self) -> tuple[Symbol, ...]:
        """Imports (``defined=False``, ``library`` = the DLL), then named exports
        (``defined=True``; a forwarder has type ``FORWARDER`` and the DLL it forwards to as
        ``library``)."""
        out = [Symbol(name=n, defined=False, binding="GLOBAL", type="NOTYPE", library=dll)
               for dll, _kind, names in self.import_tables() for n in names]
        out.extend(self.exports())
        return tuple(out)


def parse_pe(blob: Blob) -> tuple[Binary, tuple[str, ...]]:
    """Parse one PE file; returns its facts and any non-fatal warnings."""
    return read_binary(PEFile, blob)
