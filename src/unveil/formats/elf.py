"""ELF reader: facts from the program headers and the dynamic segment.

Works on stripped files (no section headers needed) and on any class, byte order and
machine.  Only the ranges needed are read from the :class:`~unveil.formats.blob.Blob`; every
offset, count and size comes from the file and is therefore checked before use.  Anything
malformed raises :class:`~unveil.errors.FormatError`; oddities that do not stop parsing (a
note with invalid JSON) are kept as ``warnings``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from unveil.errors import FormatError
from unveil.formats._reader import read_binary
from unveil.formats.blob import Blob
from unveil.model import Binary, BinaryFormat, DlopenNote, Filtee, Symbol, VersionNeed

__all__ = ["ELF_MAGIC", "ElfFile", "parse_elf", "machine_name"]

ELF_MAGIC = b"\x7fELF"

PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
DT_NULL, DT_NEEDED, DT_HASH, DT_STRTAB, DT_SYMTAB = 0, 1, 4, 5, 6
DT_STRSZ, DT_SYMENT, DT_SONAME, DT_RPATH, DT_RUNPATH, DT_FLAGS = 10, 11, 14, 15, 29, 30
DT_GNU_HASH, DT_VERSYM, DT_FLAGS_1 = 0x6FFFFEF5, 0x6FFFFFF0, 0x6FFFFFFB
DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM = 0x6FFFFFFC, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF
DT_AUXILIARY, DT_FILTER = 0x7FFFFFFD, 0x7FFFFFFF
#: vna_flags: a weak version need (ld.so goes on without it)
VER_FLG_WEAK = 0x2
NT_GNU_BUILD_ID = 3
NT_FDO_PACKAGING_METADATA = 0xCAFE1A7E
NT_FDO_DLOPEN_METADATA = 0x407C0C0A

#: Limits that keep hostile files from costing more than a real one could.
MAX_PHDRS = 65535
MAX_DYNAMIC_ENTRIES = 1 << 16
MAX_NOTE_BYTES = 1 << 20
#: Real files carry a handful of notes; a crafted segment of empty 12-byte notes would
#: otherwise cost ~90k iterations per MiB.
MAX_NOTES = 1024
MAX_VERSION_ENTRIES = 1 << 14
MAX_SYMBOLS = 1 << 22
MAX_STRING = 1 << 16

_MACHINES = {
    0: "none", 2: "sparc", 3: "i386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390",
    40: "arm", 42: "superh", 43: "sparcv9", 50: "ia64", 62: "x86_64", 183: "aarch64",
    243: "riscv", 258: "loongarch",
}
_BINDINGS = {0: "LOCAL", 1: "GLOBAL", 2: "WEAK", 10: "GNU_UNIQUE"}
_TYPES = {0: "NOTYPE", 1: "OBJECT", 2: "FUNC", 3: "SECTION", 4: "FILE", 5: "COMMON", 6: "TLS",
          10: "GNU_IFUNC"}


def machine_name(machine: int) -> str:
    return _MACHINES.get(machine, f"machine-{machine}")


@dataclass(slots=True)
class _Segment:
    type: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int
    flags: int = 0  # PF_X 1, PF_W 2, PF_R 4


@dataclass(slots=True)
class _Header:
    bits: int
    little: bool
    osabi: int
    abiversion: int
    ident_version: int
    padding_ok: bool
    file_type: int
    machine: int
    phoff: int
    shoff: int
    phentsize: int
    phnum: int
    shentsize: int
    shnum: int
    segments: list[_Segment] = field(default_factory=list)


class ElfFile:
    """An ELF file being read.  ``binary()`` gives the facts; ``symbols()`` is separate
    because dynamic symbol tables of large libraries are big and most scans need none."""

    def __init__(self, blob: Blob) -> None:
        self.blob = blob
        self.warnings: list[str] = []
        self.h = self._header()
        self._e = "<" if self.h.little else ">"
        self._dyn: list[tuple[int, int]] | None = None
        self._strtab: bytes | None = None

    # -- primitives -------------------------------------------------------------------------
    def _unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        st = struct.Struct(self._e + fmt)
        return st.unpack(self.blob.read(offset, st.size))

    def _header(self) -> _Header:
        blob = self.blob
        ident = blob.read(0, 16) if blob.size >= 16 else b""
        if ident[:4] != ELF_MAGIC:
            raise FormatError("not an ELF file (bad magic)", 0)
        cls, data = ident[4], ident[5]
        if cls not in (1, 2):
            raise FormatError(f"invalid ELF class {cls}", 4)
        if data not in (1, 2):
            raise FormatError(f"invalid ELF data encoding {data}", 5)
        bits, little = (32 if cls == 1 else 64), data == 1
        e = "<" if little else ">"
        fmt = e + ("HHIIIIIHHHHHH" if bits == 32 else "HHIQQQIHHHHHH")
        st = struct.Struct(fmt)
        if blob.size < 16 + st.size:
            raise FormatError("file too short for an ELF header", 16)
        (etype, machine, _ver, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum,
         shentsize, shnum, _shstrndx) = st.unpack(blob.read(16, st.size))
        h = _Header(bits, little, ident[7], ident[8], ident[6], not any(ident[9:16]), etype,
                    machine, phoff, shoff, phentsize, phnum, shentsize, shnum)
        if phnum == 0xFFFF and shoff:
            # PN_XNUM: the real count is in sh_info of section header 0.
            sh_info_off = shoff + (28 if bits == 32 else 44)
            (h.phnum,) = struct.unpack(e + "I", blob.read(sh_info_off, 4))
        min_phent = 32 if bits == 32 else 56
        if h.phnum:
            if phentsize < min_phent:
                raise FormatError(f"program header entries of {phentsize} bytes", 0x2A)
            if h.phnum > MAX_PHDRS:
                raise FormatError(f"{h.phnum} program headers", 0x2C)
            table = blob.read(phoff, phentsize * h.phnum)
            pfmt = struct.Struct(e + ("IIIIIIII" if bits == 32 else "IIQQQQQQ"))
            for i in range(h.phnum):
                f = pfmt.unpack_from(table, i * phentsize)
                if bits == 32:
                    ptype, off, vaddr, _pa, filesz, memsz, flags, align = f
                else:
                    ptype, flags, off, vaddr, _pa, filesz, memsz, align = f
                h.segments.append(_Segment(ptype, off, vaddr, filesz, memsz, align, flags))
        return h

    def file_offset(self, vaddr: int) -> int | None:
        """Where the byte at ``vaddr`` is in the file, or ``None`` if no loaded segment
        holds it."""
        try:
            return self._vaddr_to_offset(vaddr)
        except FormatError:
            return None

    def _vaddr_to_offset(self, vaddr: int) -> int:
        for s in self.h.segments:
            if s.type == PT_LOAD and s.vaddr <= vaddr < s.vaddr + s.filesz:
                return vaddr - s.vaddr + s.offset
        raise FormatError(f"address {vaddr:#x} is not in any loaded segment")

    # -- dynamic segment --------------------------------------------------------------------
    def dynamic(self) -> list[tuple[int, int]]:
        if self._dyn is None:
            self._dyn = []
            seg = next((s for s in self.h.segments if s.type == PT_DYNAMIC), None)
            if seg is not None:
                entsize = 8 if self.h.bits == 32 else 16
                count = min(seg.filesz // entsize, MAX_DYNAMIC_ENTRIES)
                raw = self.blob.read(seg.offset, count * entsize)
                fmt = self._e + ("iI" if self.h.bits == 32 else "qQ")
                for tag, val in struct.iter_unpack(fmt, raw):
                    if tag == DT_NULL:
                        break
                    self._dyn.append((tag, val))
        return self._dyn

    def _tag(self, tag: int) -> int | None:
        return next((v for t, v in self.dynamic() if t == tag), None)

    def strtab(self) -> bytes:
        if self._strtab is None:
            addr, size = self._tag(DT_STRTAB), self._tag(DT_STRSZ)
            if addr is None:
                raise FormatError("dynamic segment has no DT_STRTAB")
            off = self._vaddr_to_offset(addr)
            if size is None:
                size = MAX_STRING
            self._strtab = self.blob.read_upto(off, size)
        return self._strtab

    def _strtab_or_empty(self) -> bytes:
        try:
            return self.strtab()
        except FormatError:
            return b""

    def string(self, index: int) -> str:
        tab = self.strtab()
        if index >= len(tab):
            raise FormatError(f"string index {index:#x} beyond the string table ({len(tab)})")
        end = tab.find(b"\0", index, index + MAX_STRING)
        if end < 0:
            raise FormatError(f"unterminated string at string-table index {index:#x}")
        # As os spells file names: a DT_NEEDED or RPATH whose bytes are not UTF-8 then names
        # the very file a directory listing shows (ld.so compares bytes).
        return tab[index:end].decode("utf-8", "surrogateescape")

    # -- notes ------------------------------------------------------------------------------
    def notes(self) -> list[tuple[bytes, int, bytes]]:
        """(owner, type, descriptor) of each note in the PT_NOTE segments, bounded."""
        out: list[tuple[bytes, int, bytes]] = []
        seen: set[int] = set()
        budget = 4 * MAX_NOTE_BYTES
        for seg in self.h.segments:
            if seg.type != PT_NOTE or seg.offset in seen or seg.filesz == 0:
                continue
            seen.add(seg.offset)
            if seg.filesz > MAX_NOTE_BYTES:
                self.warnings.append(f"note segment of {seg.filesz} bytes skipped")
                continue
            budget -= seg.filesz
            if budget < 0:
                self.warnings.append("note segments beyond 4 MiB in all were skipped")
                break
            data = self.blob.read(seg.offset, seg.filesz)
            align = 8 if seg.align == 8 else 4
            pos = 0
            hdr = struct.Struct(self._e + "III")
            while pos + 12 <= len(data):
                if len(out) >= MAX_NOTES:
                    self.warnings.append(f"notes beyond the first {MAX_NOTES} were skipped")
                    return out
                namesz, descsz, ntype = hdr.unpack_from(data, pos)
                pos += 12
                name_end = pos + namesz
                # Offsets are relative to the (aligned) segment: the descriptor starts at the
                # next ``align`` boundary after the name, and so does the next note.
                desc_off = (name_end + align - 1) & -align
                desc_end = desc_off + descsz
                if name_end > len(data) or desc_end > len(data):
                    self.warnings.append(f"note at {seg.offset + pos - 12:#x} overruns its segment")
                    break
                out.append((data[pos:name_end].rstrip(b"\0"), ntype, data[desc_off:desc_end]))
                pos = (desc_end + align - 1) & -align
        return out

    def _json_note(self, desc: bytes, what: str) -> object:
        text = desc.split(b"\0", 1)[0]
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as e:
            self.warnings.append(f"{what} note is not valid JSON: {e}")
            return None

    # -- versions ---------------------------------------------------------------------------
    def _verneed_entries(self) -> list[tuple[str, list[tuple[int, str, int]]]]:
        """DT_VERNEED: (file, [(version index, version name, flags)]) in order.  One budget of
        :data:`MAX_VERSION_ENTRIES` covers entries and their aux chains together, so nested
        counts cannot multiply."""
        addr, num = self._tag(DT_VERNEED), self._tag(DT_VERNEEDNUM)
        if addr is None or not num:
            return []
        out: list[tuple[str, list[tuple[int, str, int]]]] = []
        off = self._vaddr_to_offset(addr)
        seen: set[int] = set()
        budget = MAX_VERSION_ENTRIES
        for _ in range(min(num, MAX_VERSION_ENTRIES)):
            if off in seen:
                raise FormatError("DT_VERNEED entries form a loop", off)
            seen.add(off)
            _v, cnt, file_idx, aux, nxt = self._unpack("HHIII", off)
            versions: list[tuple[int, str, int]] = []
            aoff = off + aux
            for _j in range(cnt):
                budget -= 1
                if budget < 0:
                    raise FormatError("too many DT_VERNEED entries", off)
                _hash, flags, other, name, anext = self._unpack("IHHII", aoff)
                versions.append((other, self.string(name), flags))
                if not anext:
                    break
                aoff += anext
            out.append((self.string(file_idx), versions))
            if not nxt:
                break
            off += nxt
        return out

    def _verneed(self) -> tuple[VersionNeed, ...]:
        return tuple(VersionNeed(f, tuple(n for _i, n, _f in vs),
                                 tuple(n for _i, n, flags in vs if flags & VER_FLG_WEAK))
                     for f, vs in self._verneed_entries())

    def _verdef_names(self) -> dict[int, tuple[str, bool]]:
        """Version index -> (name, is the file's own base version)."""
        addr, num = self._tag(DT_VERDEF), self._tag(DT_VERDEFNUM)
        if addr is None or not num:
            return {}
        out: dict[int, tuple[str, bool]] = {}
        off = self._vaddr_to_offset(addr)
        seen: set[int] = set()
        for _ in range(min(num, MAX_VERSION_ENTRIES)):
            if off in seen:
                raise FormatError("DT_VERDEF entries form a loop", off)
            seen.add(off)
            _v, vflags, ndx, cnt, _hash, aux, nxt = self._unpack("HHHHIII", off)
            if cnt:
                (name, _anext) = self._unpack("II", off + aux)
                out[ndx] = (self.string(name), bool(vflags & 1))
            if not nxt:
                break
            off += nxt
        return out

    # -- public -----------------------------------------------------------------------------
    def binary(self) -> Binary:
        h = self.h
        interp = None
        for s in h.segments:
            if s.type == PT_INTERP and s.filesz:
                raw = self.blob.read(s.offset, min(s.filesz, 4096))
                interp = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                break
        dyn = self.dynamic()
        needed: list[str] = []
        filtees: list[Filtee] = []
        soname = None
        rpath = runpath = None
        flags = flags_1 = 0
        for tag, val in dyn:
            if tag == DT_NEEDED:
                needed.append(self.string(val))
            elif tag in (DT_FILTER, DT_AUXILIARY):
                filtees.append(Filtee(self.string(val), tag == DT_AUXILIARY, len(needed)))
            elif tag == DT_SONAME:
                soname = self.string(val)
            elif tag == DT_RPATH:
                rpath = tuple(self.string(val).split(":"))
            elif tag == DT_RUNPATH:
                runpath = tuple(self.string(val).split(":"))
            elif tag == DT_FLAGS:
                flags = val
            elif tag == DT_FLAGS_1:
                flags_1 = val
        build_id = None
        package: tuple[tuple[str, str], ...] | None = None
        dlopen: list[DlopenNote] = []
        for owner, ntype, desc in self.notes():
            if owner == b"GNU" and ntype == NT_GNU_BUILD_ID:
                build_id = desc.hex()
            elif owner == b"FDO" and ntype == NT_FDO_PACKAGING_METADATA:
                obj = self._json_note(desc, ".note.package")
                if isinstance(obj, dict):
                    package = tuple((str(k), str(v)) for k, v in obj.items())
                elif obj is not None:
                    self.warnings.append(".note.package JSON is not an object")
            elif owner == b"FDO" and ntype == NT_FDO_DLOPEN_METADATA:
                dlopen.extend(self._dlopen_entries(self._json_note(desc, ".note.dlopen")))
        verneed = self._verneed() if dyn else ()
        defs = self._verdef_names() if dyn else {}
        verdef = tuple(n for n, base in defs.values() if not base)
        version_base = next((n for n, base in defs.values() if base), "") if defs else None
        return Binary(
            format=BinaryFormat.ELF,
            size=self.blob.size,
            bits=h.bits,
            little_endian=h.little,
            machine=h.machine,
            osabi=h.osabi,
            abiversion=h.abiversion,
            file_type=h.file_type,
            interpreter=interp,
            soname=soname,
            needed=tuple(needed),
            filtees=tuple(filtees),
            rpath=rpath,
            runpath=runpath,
            flags=flags,
            flags_1=flags_1,
            build_id=build_id,
            package_note=package,
            dlopen_notes=tuple(dlopen),
            version_needs=verneed,
            version_defs=verdef,
            version_base=version_base,
            has_dynamic=bool(dyn),
            imports_dlopen=bool(dyn) and b"\0dlopen" in self._strtab_or_empty(),
            ident_padding_ok=h.padding_ok,
            ident_version=h.ident_version,
            phentsize_ok=h.phentsize == (32 if h.bits == 32 else 56),
        )

    def _dlopen_entries(self, obj: object) -> list[DlopenNote]:
        if obj is None:
            return []
        if not isinstance(obj, list):
            self.warnings.append(".note.dlopen JSON is not an array")
            return []
        out: list[DlopenNote] = []
        for item in obj:
            if not isinstance(item, dict):
                self.warnings.append(".note.dlopen entry is not an object")
                continue
            sonames = item.get("soname", [])
            if isinstance(sonames, str):
                sonames = [sonames]
            if not isinstance(sonames, list):
                self.warnings.append(".note.dlopen soname is not a list")
                continue

            def opt(key: str, entry: dict[str, object] = item) -> str | None:
                v = entry.get(key)
                return v if isinstance(v, str) else None

            out.append(DlopenNote(tuple(str(s) for s in sonames), opt("feature"),
                                  opt("description"), opt("priority")))
        return out

    def _symbol_count(self) -> int:
        hash_addr = self._tag(DT_HASH)
        if hash_addr is not None:
            (_nbucket, nchain) = self._unpack("II", self._vaddr_to_offset(hash_addr))
            return int(nchain)
        gnu = self._tag(DT_GNU_HASH)
        if gnu is None:
            return 0
        off = self._vaddr_to_offset(gnu)
        nbuckets, symoffset, bloom_size, _shift = self._unpack("IIII", off)
        word = 4 if self.h.bits == 32 else 8
        buckets_off = off + 16 + bloom_size * word
        if nbuckets > MAX_SYMBOLS:
            raise FormatError(f"GNU hash table with {nbuckets} buckets", off)
        buckets = struct.unpack(f"{self._e}{nbuckets}I", self.blob.read(buckets_off, 4 * nbuckets))
        last = max(buckets, default=0)
        if last == 0:
            # No hashed (defined) symbol: the table cannot say how many undefined ones
            # follow, so ask the section headers (the rare case of a library exporting
            # nothing, e.g. Debian's libgrpc++_error_details).
            return self._dynsym_count_from_sections() or int(symoffset)
        if last < symoffset:
            return int(symoffset)
        chains_off = buckets_off + 4 * nbuckets
        idx = last
        while idx - symoffset < MAX_SYMBOLS:
            (val,) = self._unpack("I", chains_off + 4 * (idx - symoffset))
            idx += 1
            if val & 1:
                return int(idx)
        raise FormatError("GNU hash chain does not end", chains_off)

    def _dynsym_count_from_sections(self) -> int | None:
        h = self.h
        entsize = 40 if h.bits == 32 else 64
        if not h.shoff or h.shentsize < entsize or not 0 < h.shnum <= 4096:
            return None
        try:
            table = self.blob.read(h.shoff, h.shentsize * h.shnum)
        except FormatError:
            return None
        fmt = struct.Struct(self._e + ("IIIIIIIIII" if h.bits == 32 else "IIQQQQIIQQ"))
        for i in range(h.shnum):
            f = fmt.unpack_from(table, i * h.shentsize)
            sh_type, size, ent = f[1], f[5], f[9]
            if sh_type == 11 and ent:  # SHT_DYNSYM
                return int(size // ent)
        return None

    def symbols(self) -> tuple[Symbol, ...]:
        """The dynamic symbol table with versions (index 0, the null symbol, left out)."""
        symtab = self._tag(DT_SYMTAB)
        if symtab is None:
            return ()
        count = self._symbol_count()
        if count > MAX_SYMBOLS:
            raise FormatError(f"{count} dynamic symbols")
        entsize = self._tag(DT_SYMENT) or (16 if self.h.bits == 32 else 24)
        off = self._vaddr_to_offset(symtab)
        raw = self.blob.read(off, count * entsize)
        versym_addr = self._tag(DT_VERSYM)
        versym: tuple[int, ...] = ()
        if versym_addr is not None and count:
            versym = struct.unpack(f"{self._e}{count}H",
                                   self.blob.read(self._vaddr_to_offset(versym_addr), 2 * count))
        names: dict[int, str] = {i: n for i, (n, _base) in self._verdef_names().items()}
        for _file, versions in self._verneed_entries():
            for idx, vname, _flags in versions:
                names[idx] = vname
        fmt = struct.Struct(self._e + ("IIIBBH" if self.h.bits == 32 else "IBBHQQ"))
        if entsize < fmt.size:
            raise FormatError(f"DT_SYMENT of {entsize} bytes is smaller than a symbol")
        out: list[Symbol] = []
        for i in range(1, count):
            f = fmt.unpack_from(raw, i * entsize)
            if self.h.bits == 32:
                name, _value, _size, info, _other, shndx = f
            else:
                name, info, _other, shndx, _value, _size = f
            version = None
            hidden = False
            if versym:
                vs = versym[i]
                hidden = bool(vs & 0x8000)
                version = names.get(vs & 0x7FFF) if (vs & 0x7FFF) > 1 else None
            out.append(Symbol(
                name=self.string(name),
                defined=shndx != 0,
                binding=_BINDINGS.get(info >> 4, str(info >> 4)),
                type=_TYPES.get(info & 0xF, str(info & 0xF)),
                version=version,
                version_hidden=hidden,
            ))
        return tuple(out)


def parse_elf(blob: Blob) -> tuple[Binary, tuple[str, ...]]:
    """Parse one ELF file; returns its facts and any non-fatal warnings."""
    return read_binary(ElfFile, blob)
