"""Mach-O reader: facts from the load commands, symbols from the symbol table.

Reads thin files of either width and byte order, and fat (universal) files with 32-bit
(``0xcafebabe``) or 64-bit (``0xcafebabf``) slice offsets.  Only the header, the load
commands and, for :meth:`MachOFile.symbols`, the symbol and string tables (or the export
trie and chained-fixup imports) are read.  Every offset, size and count comes from the file
and is checked before use; malformed input raises :class:`~unveil.errors.FormatError` and
non-fatal oddities are kept as ``warnings``.

A fat file is described by a container :class:`~unveil.model.Binary` whose fields are those
of its *first* slice (so a consumer that ignores slices still sees the facts of one real
architecture, as ``otool -L`` does), except ``size``, which is the whole file's, and
``slices``, which holds one :class:`~unveil.model.Binary` per slice in file order.  A
non-empty ``slices`` is what marks a file as fat.

``0xcafebabe`` is also the magic of Java class files; there the next word (the class-file
version, at least 45) is read as the slice count, so a count above :data:`MAX_FAT_ARCHS` is
taken to mean "not Mach-O".
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace

from unveil.errors import FormatError
from unveil.formats._reader import read_binary
from unveil.formats.blob import Blob
from unveil.model import Binary, BinaryFormat, Symbol

__all__ = [
    "DYNAMIC_LOOKUP",
    "FAT_MAGIC",
    "FAT_MAGIC_64",
    "MAIN_EXECUTABLE",
    "MH_MAGIC",
    "MH_MAGIC_64",
    "SELF_LIBRARY",
    "WEAK_LOOKUP",
    "MachOFile",
    "arch_name",
    "is_macho",
    "parse_macho",
]

MH_MAGIC, MH_CIGAM = 0xFEEDFACE, 0xCEFAEDFE
MH_MAGIC_64, MH_CIGAM_64 = 0xFEEDFACF, 0xCFFAEDFE
FAT_MAGIC, FAT_MAGIC_64 = 0xCAFEBABE, 0xCAFEBABF

LC_REQ_DYLD = 0x80000000
LC_SEGMENT, LC_SYMTAB, LC_DYSYMTAB = 0x1, 0x2, 0xB
LC_LOAD_DYLIB, LC_ID_DYLIB, LC_LOAD_DYLINKER = 0xC, 0xD, 0xE
LC_LOAD_WEAK_DYLIB = 0x18 | LC_REQ_DYLD
LC_SEGMENT_64, LC_UUID = 0x19, 0x1B
LC_RPATH = 0x1C | LC_REQ_DYLD
LC_REEXPORT_DYLIB = 0x1F | LC_REQ_DYLD
LC_LAZY_LOAD_DYLIB = 0x20
LC_DYLD_INFO, LC_DYLD_INFO_ONLY = 0x22, 0x22 | LC_REQ_DYLD
LC_LOAD_UPWARD_DYLIB = 0x23 | LC_REQ_DYLD
LC_VERSION_MIN_MACOSX, LC_VERSION_MIN_IPHONEOS = 0x24, 0x25
LC_VERSION_MIN_TVOS, LC_VERSION_MIN_WATCHOS = 0x2F, 0x30
LC_BUILD_VERSION = 0x32
LC_DYLD_EXPORTS_TRIE = 0x33 | LC_REQ_DYLD
LC_DYLD_CHAINED_FIXUPS = 0x34 | LC_REQ_DYLD

MH_TWOLEVEL = 0x80

#: Load commands naming a dependency, and the kind recorded in ``Binary.needed_kinds``.
#: Their order in the file is the two-level-namespace library ordinal (1-based).
DYLIB_KINDS = {
    LC_LOAD_DYLIB: "load",
    LC_LOAD_WEAK_DYLIB: "weak",
    LC_REEXPORT_DYLIB: "reexport",
    LC_LAZY_LOAD_DYLIB: "lazy",
    LC_LOAD_UPWARD_DYLIB: "upward",
}
_VERSION_MIN = {
    LC_VERSION_MIN_MACOSX: "macos",
    LC_VERSION_MIN_IPHONEOS: "ios",
    LC_VERSION_MIN_TVOS: "tvos",
    LC_VERSION_MIN_WATCHOS: "watchos",
}
_PLATFORMS = {
    1: "macos", 2: "ios", 3: "tvos", 4: "watchos", 5: "bridgeos", 6: "maccatalyst",
    7: "iossimulator", 8: "tvossimulator", 9: "watchossimulator", 10: "driverkit",
    11: "visionos", 12: "visionossimulator",
}
_DYNAMIC_COMMANDS = frozenset({
    *DYLIB_KINDS, LC_ID_DYLIB, LC_LOAD_DYLINKER, LC_DYLD_INFO, LC_DYLD_INFO_ONLY,
    LC_DYLD_CHAINED_FIXUPS, LC_DYLD_EXPORTS_TRIE,
})

#: ``Symbol.library`` for imports not bound to one of ``Binary.needed``: the special
#: two-level ordinals 0 (this image), 0xff (the main executable), 0xfe (looked up in every
#: loaded image, which is also how a flat-namespace image binds) and the chained-fixups
#: "weak lookup" (-3: bound to whichever image defines the weak symbol first).
SELF_LIBRARY = "@self"
MAIN_EXECUTABLE = "@executable"
DYNAMIC_LOOKUP = "@dynamic_lookup"
WEAK_LOOKUP = "@weak_lookup"
_SPECIAL_ORDINALS = {0: SELF_LIBRARY, 0xFF: MAIN_EXECUTABLE, 0xFE: DYNAMIC_LOOKUP,
                     0xFD: WEAK_LOOKUP}

#: Limits that keep hostile files from costing more than a real one could.
MAX_FAT_ARCHS = 30
MAX_LOAD_COMMANDS = 1 << 16
MAX_COMMANDS_BYTES = 16 << 20
MAX_SYMBOLS = 1 << 22
MAX_STRING = 1 << 16
MAX_TRIE_NODES = 1 << 22

# nlist n_type bits and N_TYPE values; n_desc bits.
N_STAB, N_PEXT, N_TYPE, N_EXT = 0xE0, 0x10, 0x0E, 0x01
N_UNDF, N_ABS, N_INDR, N_PBUD, N_SECT = 0x0, 0x2, 0xA, 0xC, 0xE
N_WEAK_REF, N_WEAK_DEF = 0x40, 0x80
_NTYPES = {N_UNDF: "UNDF", N_ABS: "ABS", N_INDR: "INDR", N_PBUD: "PBUD", N_SECT: "SECT"}

# Export trie flags.
EXPORT_SYMBOL_FLAGS_KIND_MASK = 0x03
EXPORT_SYMBOL_FLAGS_WEAK_DEFINITION = 0x04
EXPORT_SYMBOL_FLAGS_REEXPORT = 0x08
EXPORT_SYMBOL_FLAGS_STUB_AND_RESOLVER = 0x10
_EXPORT_KINDS = {0: "REGULAR", 1: "TLS", 2: "ABS"}

CPU_ARCH_ABI64, CPU_ARCH_ABI64_32 = 0x01000000, 0x02000000
CPU_SUBTYPE_MASK = 0xFF000000
CPU_TYPE_X86, CPU_TYPE_ARM, CPU_TYPE_POWERPC = 7, 12, 18
_ARCHS: dict[tuple[int, int | None], str] = {
    (CPU_TYPE_X86, None): "i386",
    (CPU_TYPE_X86 | CPU_ARCH_ABI64, None): "x86_64",
    (CPU_TYPE_X86 | CPU_ARCH_ABI64, 8): "x86_64h",
    (CPU_TYPE_ARM, None): "arm",
    (CPU_TYPE_ARM, 5): "armv4t",
    (CPU_TYPE_ARM, 6): "armv6",
    (CPU_TYPE_ARM, 7): "armv5",
    (CPU_TYPE_ARM, 9): "armv7",
    (CPU_TYPE_ARM, 11): "armv7s",
    (CPU_TYPE_ARM, 12): "armv7k",
    (CPU_TYPE_ARM, 14): "armv6m",
    (CPU_TYPE_ARM, 15): "armv7m",
    (CPU_TYPE_ARM, 16): "armv7em",
    (CPU_TYPE_ARM | CPU_ARCH_ABI64, None): "arm64",
    (CPU_TYPE_ARM | CPU_ARCH_ABI64, 1): "arm64v8",
    (CPU_TYPE_ARM | CPU_ARCH_ABI64, 2): "arm64e",
    (CPU_TYPE_ARM | CPU_ARCH_ABI64_32, None): "arm64_32",
    (CPU_TYPE_POWERPC, None): "ppc",
    (CPU_TYPE_POWERPC | CPU_ARCH_ABI64, None): "ppc64",
}

_FAT_HEADER = struct.Struct(">II")
_FAT_ARCH = struct.Struct(">iiIII")
_FAT_ARCH_64 = struct.Struct(">iiQQII")


def arch_name(cputype: int, cpusubtype: int) -> str:
    """The name ``lipo`` and ``clang -arch`` use for a CPU type and subtype."""
    cputype &= 0xFFFFFFFF
    sub = cpusubtype & ~CPU_SUBTYPE_MASK & 0xFFFFFFFF
    name = _ARCHS.get((cputype, sub)) or _ARCHS.get((cputype, None))
    return name if name is not None else f"cputype-{cputype:#x}"


def is_macho(head: bytes) -> bool:
    """Whether the first 8 bytes of a file look like Mach-O (thin or fat, not Java)."""
    if len(head) < 8:
        return False
    (magic,) = struct.unpack_from(">I", head)
    if magic in (MH_MAGIC, MH_CIGAM, MH_MAGIC_64, MH_CIGAM_64):
        return True
    if magic in (FAT_MAGIC, FAT_MAGIC_64):
        nfat: int = struct.unpack_from(">I", head, 4)[0]
        return 0 < nfat <= MAX_FAT_ARCHS
    return False


def _version(v: int) -> str:
    """Mach-O's nibble-packed ``xxxx.yy.zz`` version."""
    major, minor, patch = v >> 16, (v >> 8) & 0xFF, v & 0xFF
    return f"{major}.{minor}.{patch}" if patch else f"{major}.{minor}"


class _SliceBlob(Blob):
    """A window of another blob: a fat slice, whose offsets start at the slice."""

    def __init__(self, parent: Blob, offset: int, size: int) -> None:
        self._parent = parent
        self._offset = offset
        self.size = size

    def _read(self, offset: int, size: int) -> bytes:
        return self._parent.read(self._offset + offset, size)


@dataclass(frozen=True, slots=True)
class _Command:
    cmd: int
    offset: int  # of the command, from the start of the slice
    data: bytes  # the whole command, header included


@dataclass(frozen=True, slots=True)
class _Header:
    bits: int
    little: bool
    cputype: int
    cpusubtype: int
    filetype: int
    flags: int


class MachOFile:
    """A Mach-O file being read.  ``binary()`` gives the facts; ``symbols()`` is separate
    because symbol tables of large libraries are big and most scans need none.

    For a fat file, ``slices`` holds a :class:`MachOFile` per slice and both methods
    describe the first slice (``binary()`` as a container, see the module docstring).
    """

    h: _Header
    _e: str
    _commands: tuple[_Command, ...]

    def __init__(self, blob: Blob) -> None:
        self.blob = blob
        self.warnings: list[str] = []
        self.slices: tuple[MachOFile, ...] = ()
        self.fat = False
        if blob.size < 8:
            raise FormatError("file too short for a Mach-O header", 0)
        (magic,) = struct.unpack(">I", blob.read(0, 4))
        if magic in (FAT_MAGIC, FAT_MAGIC_64):
            self.fat = True
            self.slices = self._fat(magic == FAT_MAGIC_64)
            first = self.slices[0]
            self.h = first.h
            self._e = first._e
            self._commands = first._commands
            return
        self.h = self._header(magic)
        self._e = "<" if self.h.little else ">"
        self._commands = self._load_commands()

    # -- fat --------------------------------------------------------------------------------
    def _fat(self, wide: bool) -> tuple[MachOFile, ...]:
        blob = self.blob
        _magic, nfat = _FAT_HEADER.unpack(blob.read(0, 8))
        if nfat == 0:
            raise FormatError("fat Mach-O file with no slices", 4)
        if nfat > MAX_FAT_ARCHS:
            raise FormatError(
                f"0xcafebabe file with {nfat} slices: a Java class file, not Mach-O", 4)
        st = _FAT_ARCH_64 if wide else _FAT_ARCH
        table_end = 8 + nfat * st.size
        table = blob.read(8, nfat * st.size)
        ranges: list[tuple[int, int, int]] = []
        seen: set[tuple[int, int]] = set()
        for i in range(nfat):
            fields = st.unpack_from(table, i * st.size)
            cputype, cpusubtype, offset, size, align = fields[:5]
            where = 8 + i * st.size
            if size == 0:
                raise FormatError(f"fat slice {i} is empty", where)
            if offset < table_end or offset + size > blob.size:
                raise FormatError(
                    f"fat slice {i} ({offset:#x}+{size:#x}) lies outside the file "
                    f"({blob.size} bytes) or over the fat header", where)
            if align > 31:
                self.warnings.append(f"fat slice {i} has alignment 2**{align}")
            elif offset % (1 << align):
                self.warnings.append(
                    f"fat slice {i} at {offset:#x} is not aligned to 2**{align}")
            key = (cputype & 0xFFFFFFFF, cpusubtype & ~CPU_SUBTYPE_MASK & 0xFFFFFFFF)
            if key in seen:
                self.warnings.append(
                    f"fat slice {i} repeats architecture {arch_name(cputype, cpusubtype)}")
            seen.add(key)
            ranges.append((offset, size, i))
        ordered = sorted(ranges)
        for (o1, s1, i1), (o2, _s2, i2) in itertools.pairwise(ordered):
            if o1 + s1 > o2:
                raise FormatError(f"fat slices {i1} and {i2} overlap", o2)
        out: list[MachOFile] = []
        for offset, size, i in ranges:
            sub = _SliceBlob(blob, offset, size)
            (magic,) = struct.unpack(">I", sub.read(0, 4)) if size >= 4 else (0,)
            if magic not in (MH_MAGIC, MH_CIGAM, MH_MAGIC_64, MH_CIGAM_64):
                raise FormatError(f"fat slice {i} is not a thin Mach-O file", offset)
            try:
                m = MachOFile(sub)
            except FormatError as e:
                at = None if e.offset is None else offset + e.offset
                raise FormatError(f"fat slice {i}: {e}", at) from e
            fields = st.unpack_from(table, i * st.size)
            if (fields[0] & 0xFFFFFFFF) != m.h.cputype:
                self.warnings.append(
                    f"fat slice {i} is listed as {arch_name(fields[0], fields[1])} but is "
                    f"{arch_name(m.h.cputype, m.h.cpusubtype)}")
            arch = arch_name(m.h.cputype, m.h.cpusubtype)
            self.warnings.extend(f"{arch}: {w}" for w in m.warnings)
            m.warnings.clear()
            out.append(m)
        return tuple(out)

    # -- thin -------------------------------------------------------------------------------
    def _header(self, magic: int) -> _Header:
        if magic in (MH_MAGIC, MH_MAGIC_64):
            little = False
        elif magic in (MH_CIGAM, MH_CIGAM_64):
            little = True
        else:
            raise FormatError("not a Mach-O file (bad magic)", 0)
        bits = 64 if magic in (MH_MAGIC_64, MH_CIGAM_64) else 32
        hsize = 32 if bits == 64 else 28
        if self.blob.size < hsize:
            raise FormatError("file too short for a Mach-O header", 0)
        e = "<" if little else ">"
        _m, cputype, cpusubtype, filetype, ncmds, sizeofcmds, flags = struct.unpack(
            e + "7I", self.blob.read(0, 28))
        self._hsize, self._ncmds, self._sizeofcmds = hsize, ncmds, sizeofcmds
        return _Header(bits, little, cputype, cpusubtype, filetype, flags)

    def _load_commands(self) -> tuple[_Command, ...]:
        ncmds, sizeofcmds, start = self._ncmds, self._sizeofcmds, self._hsize
        if ncmds > MAX_LOAD_COMMANDS:
            raise FormatError(f"{ncmds} load commands", 16)
        if sizeofcmds > MAX_COMMANDS_BYTES:
            raise FormatError(f"{sizeofcmds} bytes of load commands", 20)
        if ncmds * 8 > sizeofcmds:
            raise FormatError(f"{ncmds} load commands do not fit in {sizeofcmds} bytes", 20)
        if start + sizeofcmds > self.blob.size:
            raise FormatError(
                f"load commands ({sizeofcmds} bytes) run past the end of the file", 20)
        raw = self.blob.read(start, sizeofcmds)
        head = struct.Struct(self._e + "II")
        out: list[_Command] = []
        pos = 0
        for i in range(ncmds):
            if pos + 8 > sizeofcmds:
                raise FormatError(f"load command {i} runs past sizeofcmds", start + pos)
            cmd, cmdsize = head.unpack_from(raw, pos)
            if cmdsize < 8 or cmdsize % 4:
                raise FormatError(f"load command {i} ({cmd:#x}) has cmdsize {cmdsize}",
                                  start + pos)
            if pos + cmdsize > sizeofcmds:
                raise FormatError(f"load command {i} ({cmd:#x}) runs past sizeofcmds",
                                  start + pos)
            out.append(_Command(cmd, start + pos, raw[pos:pos + cmdsize]))
            pos += cmdsize
        if pos != sizeofcmds:
            self.warnings.append(
                f"load commands take {pos} bytes but sizeofcmds is {sizeofcmds}")
        return tuple(out)

    def _fields(self, c: _Command, fmt: str) -> tuple[int, ...]:
        """The fixed fields after ``cmd, cmdsize``."""
        st = struct.Struct(self._e + fmt)
        if 8 + st.size > len(c.data):
            raise FormatError(
                f"load command {c.cmd:#x} of {len(c.data)} bytes is too short", c.offset)
        return st.unpack_from(c.data, 8)

    def _lc_str(self, c: _Command, fixed: int) -> str:
        """The ``lc_str`` whose offset field follows ``cmd, cmdsize``; ``fixed`` is the
        size of the command's fixed part, which the string may not overlap."""
        (off,) = self._fields(c, "I")
        if off < fixed or off >= len(c.data):
            raise FormatError(
                f"load command {c.cmd:#x}: string offset {off} outside {fixed}..{len(c.data)}",
                c.offset)
        end = c.data.find(b"\0", off)
        if end < 0:
            raise FormatError(f"load command {c.cmd:#x}: string is not terminated", c.offset)
        return c.data[off:end].decode("utf-8", "backslashreplace")

    # -- public -----------------------------------------------------------------------------
    def binary(self) -> Binary:
        if self.fat:
            slices: list[Binary] = []
            for m in self.slices:
                slices.append(m.binary())
                self.warnings.extend(f"{slices[-1].arch}: {w}" for w in m.warnings)
                m.warnings.clear()
            return replace(slices[0], size=self.blob.size, slices=tuple(slices))
        h = self.h
        needed: list[str] = []
        kinds: list[str] = []
        rpaths: list[str] = []
        soname = interpreter = build_id = min_os = None
        has_dynamic = False
        for c in self._commands:
            if c.cmd in _DYNAMIC_COMMANDS:
                has_dynamic = True
            kind = DYLIB_KINDS.get(c.cmd)
            if kind is not None:
                needed.append(self._lc_str(c, 24))
                kinds.append(kind)
            elif c.cmd == LC_ID_DYLIB:
                name = self._lc_str(c, 24)
                if soname is not None:
                    self.warnings.append(f"second LC_ID_DYLIB {name!r} ignored")
                else:
                    soname = name
            elif c.cmd == LC_RPATH:
                rpaths.append(self._lc_str(c, 12))
            elif c.cmd == LC_LOAD_DYLINKER:
                interpreter = self._lc_str(c, 12)
            elif c.cmd == LC_UUID:
                if len(c.data) < 24:
                    raise FormatError("LC_UUID is too short", c.offset)
                if build_id is None:
                    build_id = c.data[8:24].hex()
            elif c.cmd == LC_BUILD_VERSION:
                platform, minos, _sdk, _ntools = self._fields(c, "IIII")
                if min_os is None:
                    name = _PLATFORMS.get(platform, f"platform-{platform}")
                    min_os = f"{name} {_version(minos)}"
            elif c.cmd in _VERSION_MIN:
                version, _sdk = self._fields(c, "II")
                if min_os is None:
                    min_os = f"{_VERSION_MIN[c.cmd]} {_version(version)}"
        return Binary(
            format=BinaryFormat.MACHO,
            size=self.blob.size,
            bits=h.bits,
            little_endian=h.little,
            machine=h.cputype,
            osabi=0,
            abiversion=0,
            file_type=h.filetype,
            interpreter=interpreter,
            soname=soname,
            needed=tuple(needed),
            rpath=tuple(rpaths) if rpaths else None,
            runpath=None,
            flags=h.flags,
            build_id=build_id,
            has_dynamic=has_dynamic,
            arch=arch_name(h.cputype, h.cpusubtype),
            needed_kinds=tuple(kinds),
            min_os=min_os,
        )

    def _dylibs(self) -> list[str]:
        return [self._lc_str(c, 24) for c in self._commands if c.cmd in DYLIB_KINDS]

    def _library(self, ordinal: int, dylibs: list[str]) -> str | None:
        if 1 <= ordinal <= len(dylibs):
            return dylibs[ordinal - 1]
        special = _SPECIAL_ORDINALS.get(ordinal)
        if special is None:
            self.warnings.append(
                f"library ordinal {ordinal} but only {len(dylibs)} dylibs are loaded")
        return special

    def symbols(self) -> tuple[Symbol, ...]:
        """External symbols: defined (exported) ones, then undefined (imported) ones.

        The nlist table (``LC_SYMTAB``, ranges from ``LC_DYSYMTAB``) is the source; names
        found only in the export trie or only among the chained-fixup imports are added
        after it, so stripped modern images still list them.
        """
        if self.fat:
            first = self.slices[0]
            try:
                return first.symbols()
            finally:
                self.warnings.extend(first.warnings)
                first.warnings.clear()
        try:
            return self._symbols()
        except struct.error as e:  # bounds were checked; this is a short structure
            raise FormatError(f"truncated structure: {e}") from e

    def _symbols(self) -> tuple[Symbol, ...]:
        dylibs = self._dylibs()
        twolevel = bool(self.h.flags & MH_TWOLEVEL)
        out = self._nlist_symbols(dylibs, twolevel)
        # A name already listed is not repeated: in particular a weak definition of this
        # image is also a chained-fixup import with the weak-lookup ordinal (so dyld can
        # coalesce it), and stays listed as the definition.
        seen = {s.name for s in out}
        for sym in (*self._trie_exports(dylibs), *self._chained_imports(dylibs, twolevel)):
            if sym.name not in seen:
                seen.add(sym.name)
                out.append(sym)
        return tuple(out)

    def _command(self, cmd: int) -> _Command | None:
        return next((c for c in self._commands if c.cmd == cmd), None)

    def _nlist_symbols(self, dylibs: list[str], twolevel: bool) -> list[Symbol]:
        symtab = self._command(LC_SYMTAB)
        if symtab is None:
            return []
        symoff, nsyms, stroff, strsize = self._fields(symtab, "IIII")
        if nsyms > MAX_SYMBOLS:
            raise FormatError(f"{nsyms} symbols", symtab.offset)
        entsize = 16 if self.h.bits == 64 else 12
        # Only the external ranges are read when LC_DYSYMTAB gives them.
        ranges: list[tuple[int, int]] = [(0, nsyms)]
        filter_ext = True
        dysymtab = self._command(LC_DYSYMTAB)
        if dysymtab is not None:
            _il, _nl, iext, next_, iundef, nundef = self._fields(dysymtab, "6I")
            if iext + next_ > nsyms or iundef + nundef > nsyms:
                raise FormatError("LC_DYSYMTAB ranges run past the symbol table",
                                  dysymtab.offset)
            ranges = [(iext, next_), (iundef, nundef)]
            filter_ext = False
        if not nsyms:
            return []
        if stroff + strsize > self.blob.size:
            raise FormatError("string table runs past the end of the file", symtab.offset)
        strtab = self.blob.read(stroff, strsize)
        fmt = struct.Struct(self._e + ("IBBHQ" if self.h.bits == 64 else "IBBHI"))
        out: list[Symbol] = []
        for first, count in ranges:
            if not count:
                continue
            raw = self.blob.read(symoff + first * entsize, count * entsize)
            for strx, ntype, _sect, desc, _value in fmt.iter_unpack(raw):
                if ntype & N_STAB or (filter_ext and not ntype & N_EXT):
                    continue
                t = ntype & N_TYPE
                is_defined = t not in (N_UNDF, N_PBUD)
                weak = bool(desc & (N_WEAK_DEF if is_defined else N_WEAK_REF))
                library = None
                if not is_defined:
                    library = self._library((desc >> 8) & 0xFF, dylibs) if twolevel \
                        else DYNAMIC_LOOKUP
                out.append(Symbol(
                    name=_string(strtab, strx),
                    defined=is_defined,
                    binding="WEAK" if weak else "GLOBAL",
                    type=_NTYPES.get(t, f"{t:#x}"),
                    library=library,
                ))
        return out

    def _linkedit(self, off: int, size: int, what: str, at: int) -> bytes:
        if off + size > self.blob.size:
            raise FormatError(f"{what} ({off:#x}+{size:#x}) lies outside the file", at)
        return self.blob.read(off, size)

    def _trie_exports(self, dylibs: list[str]) -> list[Symbol]:
        c = self._command(LC_DYLD_EXPORTS_TRIE)
        if c is not None:
            off, size = self._fields(c, "II")
        else:
            c = self._command(LC_DYLD_INFO_ONLY) or self._command(LC_DYLD_INFO)
            if c is None:
                return []
            off, size = self._fields(c, "10I")[8:10]
        if not size:
            return []
        trie = self._linkedit(off, size, "export trie", c.offset)
        out: list[Symbol] = []
        for name, flags, ordinal in _walk_trie(trie):
            reexport = bool(flags & EXPORT_SYMBOL_FLAGS_REEXPORT)
            out.append(Symbol(
                name=name,
                defined=True,
                binding="WEAK" if flags & EXPORT_SYMBOL_FLAGS_WEAK_DEFINITION else "GLOBAL",
                type="INDR" if reexport else _EXPORT_KINDS.get(
                    flags & EXPORT_SYMBOL_FLAGS_KIND_MASK, "UNKNOWN"),
                library=self._library(ordinal, dylibs) if reexport else None,
            ))
        return out

    def _chained_imports(self, dylibs: list[str], twolevel: bool) -> list[Symbol]:
        c = self._command(LC_DYLD_CHAINED_FIXUPS)
        if c is None:
            return []
        off, size = self._fields(c, "II")
        if size < 28:
            return []
        data = self._linkedit(off, size, "chained fixups", c.offset)
        (_version, _starts, imports_off, symbols_off, count, imports_format,
         symbols_format) = struct.unpack_from(self._e + "7I", data)
        if symbols_format != 0:
            self.warnings.append(f"chained-fixup symbols in format {symbols_format} skipped")
            return []
        entry = {1: 4, 2: 8, 3: 16}.get(imports_format)
        if entry is None:
            self.warnings.append(f"chained-fixup imports in format {imports_format} skipped")
            return []
        if count > MAX_SYMBOLS or imports_off + count * entry > len(data):
            raise FormatError("chained-fixup imports run past their data", c.offset)
        if symbols_off > len(data):
            raise FormatError("chained-fixup symbols lie past their data", c.offset)
        names = data[symbols_off:]
        out: list[Symbol] = []
        for i in range(count):
            pos = imports_off + i * entry
            if imports_format == 3:
                (word,) = struct.unpack_from(self._e + "Q", data, pos)
                ordinal, weak, name_off = word & 0xFFFF, (word >> 16) & 1, word >> 32
                if ordinal >= 0xFFF0:  # negative: special ordinals in 16 bits
                    ordinal &= 0xFF
            else:
                (word,) = struct.unpack_from(self._e + "I", data, pos)
                ordinal, weak, name_off = word & 0xFF, (word >> 8) & 1, word >> 9
            out.append(Symbol(
                name=_string(names, name_off),
                defined=False,
                binding="WEAK" if weak else "GLOBAL",
                type="UNDF",
                library=self._library(ordinal, dylibs) if twolevel else DYNAMIC_LOOKUP,
            ))
        return out


def _string(table: bytes, index: int) -> str:
    if index >= len(table):
        raise FormatError(f"string index {index:#x} beyond the string table ({len(table)})")
    end = table.find(b"\0", index, index + MAX_STRING)
    if end < 0:
        raise FormatError(f"unterminated string at string-table index {index:#x}")
    return table[index:end].decode("utf-8", "backslashreplace")


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise FormatError("ULEB128 runs past the export trie")
        byte = data[pos]
        pos += 1
        if shift < 64:
            result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos
        if shift > 70:
            raise FormatError("ULEB128 too long in the export trie")


def _walk_trie(trie: bytes) -> Iterator[tuple[str, int, int]]:
    """(name, flags, re-export ordinal) for every terminal of a dyld export trie."""
    stack: list[tuple[int, bytes]] = [(0, b"")]
    visited: set[int] = set()
    while stack:
        node, prefix = stack.pop()
        if node in visited:
            raise FormatError("export trie nodes form a loop", node)
        visited.add(node)
        if len(visited) > MAX_TRIE_NODES:
            raise FormatError("export trie has too many nodes")
        terminal, pos = _uleb(trie, node)
        children = pos + terminal
        if children >= len(trie):
            raise FormatError("export trie node runs past the trie", node)
        if terminal:
            flags, p = _uleb(trie, pos)
            ordinal = 0
            if flags & EXPORT_SYMBOL_FLAGS_REEXPORT:
                ordinal, p = _uleb(trie, p)
            yield prefix.decode("utf-8", "backslashreplace"), flags, ordinal
        count = trie[children]
        p = children + 1
        edges: list[tuple[int, bytes]] = []
        for _ in range(count):
            end = trie.find(b"\0", p, p + MAX_STRING)
            if end < 0:
                raise FormatError("unterminated edge label in the export trie", p)
            label = trie[p:end]
            child, p = _uleb(trie, end + 1)
            if child >= len(trie):
                raise FormatError("export trie edge points past the trie", p)
            if len(prefix) + len(label) > MAX_STRING:
                raise FormatError("export trie symbol name too long", p)
            edges.append((child, prefix + label))
        stack.extend(reversed(edges))


def parse_macho(blob: Blob) -> tuple[Binary, tuple[str, ...]]:
    """Parse one Mach-O file, thin or fat; returns its facts and any non-fatal warnings."""
    return read_binary(MachOFile, blob)
