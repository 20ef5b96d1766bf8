"""What a Go or Rust toolchain compiled into a binary, read from the build metadata it embeds.

Go and Rust link statically: every dependency is inside the executable, so the file's own
record of its build is the best (often the only) account of what it holds.

**Go** (every ``go build`` since 1.13 in module mode): a 32-byte header, ``\\xff Go buildinf:``
(14 bytes), the pointer size and a flags byte, 16-aligned at the start of ``.go.buildinfo``
(ELF), ``__DATA,__go_buildinfo`` (Mach-O) or the first writable data section (PE; also ELF
and Mach-O files without section headers).  With flag 2 (Go 1.18 and later) the toolchain
version and the module information follow inline, each a uvarint length and the bytes;
before that (flag clear) the header holds two pointers to Go string headers (data address,
length), followed here through the load segments.  The module information is framed by two
16-byte sentinels and reads, line by line, ``path`` (the main package), ``mod`` (the main
module, its version and sum), ``dep`` (each module linked in), ``=>`` (the replacement of the
line above) and ``build`` (``-ldflags``, ``CGO_ENABLED``, ``GOOS``, ``vcs.revision``...).

Some release pipelines strip the header (esbuild's npm binaries have none) while the
framed module information stays in the read-only data, so a file that is Go by its section
names (``.gopclntab``, ``.note.go.buildid``...) or by the build ID at the start of its code
is searched for the sentinel too, and for its one ``go1.N.N`` string (a weaker claim).

Components: the main module first, then the standard library of the toolchain as
``pkg:golang/stdlib@1.22.4`` (the name and the ``go``-less semantic version under which the
Go vulnerability database and OSV list it), then every module as
``pkg:golang/<module path>@<version>`` with the module path's case kept (Go module paths are
case-sensitive; the Go tools, OSV and syft keep it).  A module replaced by another is
reported as the replacement, which is what was compiled; one replaced by a local directory
has no version.  A binary built outside module mode (GOPATH builds, as Debian's) records no
module at all: only the toolchain and the main package path are reported, with a warning.

**Rust** built with ``cargo auditable``: a ``.dep-v0`` section (ELF, PE; ``__DATA,.dep-v0``
in Mach-O) of zlib-compressed JSON, ``{"packages": [{"name", "version", "source", "kind",
"dependencies", "root"}]}``.  Each package becomes ``pkg:cargo/<name>@<version>`` when it
comes from crates.io; a ``local``, ``git`` or alternative-registry package gets no purl (the
name on crates.io may be someone else's crate), its source is said in the evidence.  Build
dependencies (build scripts, proc-macros) ran at build time and are mostly not in the
binary: they are kept with a lower confidence.  Decompression is capped
(:data:`MAX_DEP_JSON`), so a zip-bomb section costs a bounded amount and becomes a warning.

**rustc** without (or beside) ``.dep-v0``: an ELF ``.comment`` entry ``rustc version
1.95.0 (hash date)`` says the Rust standard library of that toolchain is statically linked in.
That is a guess and is reported as one, with low confidence.

Nothing here raises for bad bytes: whatever cannot be read becomes a warning that says where.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from packageurl import PackageURL

from unveil.errors import FormatError
from unveil.formats.blob import Blob
from unveil.formats.elfsections import elf_sections
from unveil.model import Binary, BinaryFormat, Component, Evidence

__all__ = [
    "GO_CONFIDENCE",
    "MAX_DEP_JSON",
    "GoBuildInfo",
    "GoModule",
    "buildinfo_components",
    "go_semver",
    "parse_modinfo",
]

GO_MAGIC = b"\xff Go buildinf:"
#: cmd/go's sentinels around the module information (modload.infoStart / infoEnd).
INFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
INFO_END = bytes.fromhex("f932433186182072008242104116d8f2")
GO_BUILD_ID = b"\xff Go build ID: "

#: The confidence of what a binary's own build record says.
GO_CONFIDENCE = 0.95
#: The same module information found by its sentinels, without the header that points at it.
GO_FRAMED_CONFIDENCE = 0.85
#: A lone ``go1.N.N`` string in the data of a Go binary whose build info header is gone.
GO_STRING_CONFIDENCE = 0.6
#: A module replaced by a local directory: the name is right, the code is someone's checkout.
GO_LOCAL_CONFIDENCE = 0.6
#: A main-module version read from ``-ldflags -X ...version=``: the builder's word.
GO_LDFLAGS_CONFIDENCE = 0.5
CARGO_CONFIDENCE = 0.95
#: A build dependency (build script, proc-macro): run by the build, mostly not linked in.
CARGO_BUILD_CONFIDENCE = 0.5
RUSTC_CONFIDENCE = 0.4

#: Bounds that keep a hostile file from costing more than a large real one.
MAX_SEARCH = 64 << 20  # bytes of data searched for the Go header
MAX_FRAMED_SEARCH = 256 << 20  # bytes of read-only data searched for the sentinels
SEARCH_CHUNK = 1 << 20
MAX_GO_VERSION = 1024
MAX_MODINFO = 4 << 20
MAX_GO_LINES = 1 << 17
MAX_DEP_SECTION = 8 << 20
#: Decompressed ``.dep-v0`` JSON (uv's, 567 packages, is 54 KiB).
MAX_DEP_JSON = 8 << 20
MAX_PACKAGES = 1 << 16
MAX_COMMENT = 1 << 16
MAX_LOAD_COMMANDS = 1 << 14
MAX_FAT_SLICES = 64
MAX_COMMANDS_BYTES = 16 << 20

_GO_SECTIONS = frozenset({".gopclntab", "__gopclntab", ".go.buildinfo", "__go_buildinfo",
                          ".note.go.buildid", ".go.module", ".go.fipsinfo", "__go_module",
                          "__go_fipsinfo"})
_GO_VERSION = re.compile(r"go(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:(rc|beta)(\d+))?")
_GO_VERSION_BYTES = re.compile(
    rb"(?<![\x21-\x7e])go1\.\d{1,3}(?:\.\d{1,3})?(?:(?:rc|beta)\d{1,2})?(?![\x21-\x7e])")
_LDFLAGS_X = re.compile(r"""-X[\s=]+["']?([^\s"'=]+)=([^\s"']+)""")
_LDFLAGS_VERSION_KEYS = frozenset({"version", "gitversion", "buildversion", "appversion",
                                   "releaseversion", "semver"})
_RUSTC = re.compile(rb"rustc version (\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)"
                    rb"(?: \(([0-9a-f]{7,40}) (\d{4}-\d{2}-\d{2})\))?")


# --------------------------------------------------------------------------- file layout


@dataclass(slots=True)  # not frozen: built for every section of every file, never changed
class _Area:
    """A section or load segment: where its bytes are in the file and in memory."""

    name: str
    addr: int
    offset: int
    #: bytes backed by the file (0 for zero-fill)
    size: int
    writable: bool
    executable: bool
    segment: str = ""
    #: Mach-O (initprot, maxprot) or PE (characteristics, 0), as Go's reader tests them.
    raw_flags: tuple[int, int] = (0, 0)


@dataclass(frozen=True, slots=True)
class _Layout:
    """The sections and segments of one binary (one slice of a fat Mach-O file)."""

    fmt: BinaryFormat
    little: bool
    bits: int
    sections: tuple[_Area, ...]
    segments: tuple[_Area, ...]
    #: where this binary starts in the blob (a fat slice's offset), for messages
    base: int = 0

    def section(self, name: str, segment: str | None = None) -> _Area | None:
        return next((s for s in self.sections if s.name == name
                     and (segment is None or s.segment == segment)), None)

    def offset_of(self, addr: int, size: int) -> int | None:
        """The file offset of ``size`` bytes at virtual address ``addr``, if file-backed."""
        for s in self.segments:
            if s.addr <= addr and addr + size <= s.addr + s.size:
                return s.offset + (addr - s.addr)
        return None


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


def _elf_layout(blob: Blob, warnings: list[str]) -> _Layout:
    ident = blob.read(0, 16)
    if ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        raise FormatError("not an ELF file", 0)
    bits, little = (32 if ident[4] == 1 else 64), ident[5] == 1
    e = "<" if little else ">"
    hdr = struct.Struct(e + ("HHIIIIIHHHHHH" if bits == 32 else "HHIQQQIHHHHHH"))
    (_t, _m, _v, _entry, phoff, shoff, _f, _eh, phentsize, phnum, _shentsize, _shnum,
     _shstrndx) = hdr.unpack(blob.read(16, hdr.size))
    segments: list[_Area] = []
    pfmt = struct.Struct(e + ("IIIIIIII" if bits == 32 else "IIQQQQQQ"))
    if phnum and phentsize >= pfmt.size and phnum < 0xFFFF:
        table = blob.read(phoff, phentsize * phnum)
        for i in range(phnum):
            f = pfmt.unpack_from(table, i * phentsize)
            if bits == 32:
                ptype, off, vaddr, _pa, filesz, _memsz, flags, _al = f
            else:
                ptype, flags, off, vaddr, _pa, filesz, _memsz, _al = f
            if ptype == 1:  # PT_LOAD
                segments.append(_Area(f"segment {i}", vaddr, off, filesz, bool(flags & 2),
                                      bool(flags & 1)))
    shdrs = elf_sections(blob)
    if shdrs is not None and shdrs.problem:
        warnings.append(f"ELF section headers at {shoff:#x} unreadable: {shdrs.problem}")
    sections = tuple(
        _Area(s.name, s.addr, s.offset, 0 if s.type == 8 else s.size,  # 8: SHT_NOBITS
              bool(s.flags & 1), bool(s.flags & 4))
        for s in (shdrs.sections if shdrs is not None else ()))
    return _Layout(BinaryFormat.ELF, little, bits, sections, tuple(segments))


def _macho_layouts(blob: Blob, warnings: list[str]) -> list[_Layout]:
    (magic,) = struct.unpack(">I", blob.read(0, 4))
    if magic not in (0xCAFEBABE, 0xCAFEBABF):
        return [_macho_thin(blob, 0, blob.size)]
    wide = magic == 0xCAFEBABF
    (nfat,) = struct.unpack(">I", blob.read(4, 4))
    if not 0 < nfat <= MAX_FAT_SLICES:
        raise FormatError(f"fat Mach-O header with {nfat} slices", 4)
    st = struct.Struct(">iiQQII" if wide else ">iiIII")
    out: list[_Layout] = []
    for i in range(nfat):
        fields = st.unpack(blob.read(8 + i * st.size, st.size))
        offset, size = fields[2], fields[3]
        try:
            out.append(_macho_thin(blob, offset, size))
        except (FormatError, struct.error) as ex:
            warnings.append(f"fat Mach-O slice {i} at {offset:#x} unreadable: {ex}")
    return out


def _macho_thin(blob: Blob, base: int, limit: int) -> _Layout:
    raw_magic = blob.read(base, 4)
    (magic,) = struct.unpack("<I", raw_magic)
    if magic in (0xFEEDFACE, 0xFEEDFACF):
        little = True
    elif magic in (0xCEFAEDFE, 0xCFFAEDFE):
        little = False
    else:
        raise FormatError("not a Mach-O file", base)
    bits = 64 if magic in (0xFEEDFACF, 0xCFFAEDFE) else 32
    e = "<" if little else ">"
    _m, _cpu, _sub, _ft, ncmds, sizeofcmds, _fl = struct.unpack(e + "7I", blob.read(base, 28))
    if ncmds > MAX_LOAD_COMMANDS or sizeofcmds > MAX_COMMANDS_BYTES:
        raise FormatError(f"{ncmds} load commands in {sizeofcmds} bytes", base + 16)
    start = base + (32 if bits == 64 else 28)
    raw = blob.read(start, sizeofcmds)
    seg = struct.Struct(e + ("16sQQQQiiII" if bits == 64 else "16sIIIIiiII"))
    sec = struct.Struct(e + ("16s16sQQIIIIIIII" if bits == 64 else "16s16sIIIIIIIII"))
    want = 0x19 if bits == 64 else 0x1
    sections: list[_Area] = []
    segments: list[_Area] = []
    pos = 0
    for _ in range(ncmds):
        if pos + 8 > len(raw):
            break
        cmd, cmdsize = struct.unpack_from(e + "II", raw, pos)
        if cmdsize < 8 or pos + cmdsize > len(raw):
            raise FormatError(f"load command {cmd:#x} of {cmdsize} bytes", start + pos)
        if cmd == want and cmdsize >= 8 + seg.size:
            (segname, vmaddr, _vmsize, fileoff, filesize, maxprot, initprot, nsects,
             _sf) = seg.unpack_from(raw, pos + 8)
            sname = _cstr(segname)
            prot = (initprot & 7, maxprot & 7)
            segments.append(_Area(sname, vmaddr, base + fileoff, min(filesize, limit),
                                  bool(initprot & 2), bool(initprot & 4), sname, prot))
            at = pos + 8 + seg.size
            for _j in range(min(nsects, (cmdsize - 8 - seg.size) // sec.size)):
                (sectname, segn, addr, size, offset, *_r, flags) = sec.unpack_from(raw, at)[:9]
                at += sec.size
                zerofill = (flags & 0xFF) in (0x1, 0xC, 0x12)
                sections.append(_Area(_cstr(sectname), addr, base + offset,
                                      0 if zerofill or not offset else size,
                                      bool(initprot & 2), bool(initprot & 4), _cstr(segn), prot))
        pos += cmdsize
    return _Layout(BinaryFormat.MACHO, little, bits, tuple(sections), tuple(segments), base)


def _pe_layout(blob: Blob) -> _Layout:
    (lfanew,) = struct.unpack("<I", blob.read(0x3C, 4))
    if blob.read(lfanew, 4) != b"PE\0\0":
        raise FormatError("not a PE file", lfanew)
    (_mach, nsections, _ts, _sp, _ns, opt_size, _ch) = struct.unpack(
        "<HHIIIHH", blob.read(lfanew + 4, 20))
    opt = lfanew + 24
    (omagic,) = struct.unpack("<H", blob.read(opt, 2))
    if omagic == 0x20B:
        (image_base,) = struct.unpack("<Q", blob.read(opt + 24, 8))
        bits = 64
    elif omagic == 0x10B:
        (image_base,) = struct.unpack("<I", blob.read(opt + 28, 4))
        bits = 32
    else:
        raise FormatError(f"unsupported optional header magic {omagic:#x}", opt)
    (file_align,) = struct.unpack("<I", blob.read(opt + 36, 4))
    table = blob.read(opt + opt_size, 40 * nsections)
    out: list[_Area] = []
    for i in range(nsections):
        name, vsize, va, raw_size, raw_ptr, _a, _b, _c, _d, chars = struct.unpack_from(
            "<8sIIIIIIHHI", table, 40 * i)
        if file_align >= 0x200:
            raw_ptr &= ~0x1FF
        size = min(raw_size, vsize) if vsize else raw_size
        out.append(_Area(_cstr(name), image_base + va, raw_ptr, size,
                         bool(chars & 0x80000000), bool(chars & 0x20000000),
                         raw_flags=(chars, 0)))
    areas = tuple(out)
    return _Layout(BinaryFormat.PE, True, bits, areas, areas)


def _layouts(blob: Blob, binary: Binary, warnings: list[str]) -> list[_Layout]:
    if binary.format is BinaryFormat.ELF:
        return [_elf_layout(blob, warnings)]
    if binary.format is BinaryFormat.MACHO:
        return _macho_layouts(blob, warnings)
    return [_pe_layout(blob)]


def _read_area(blob: Blob, area: _Area, cap: int) -> bytes:
    if area.offset >= blob.size or area.size <= 0:
        return b""
    return blob.read_upto(area.offset, min(area.size, cap))


def _chunks(blob: Blob, area: _Area, cap: int, overlap: int) -> Iterator[tuple[int, bytes]]:
    """(offset of the chunk relative to the area, bytes) over the first ``cap`` bytes."""
    end = min(area.size, cap, max(0, blob.size - area.offset))
    pos = 0
    while pos < end:
        n = min(SEARCH_CHUNK + overlap, end - pos)
        yield pos, blob.read(area.offset + pos, n)
        if pos + n >= end:
            break
        pos += SEARCH_CHUNK


# --------------------------------------------------------------------------- Go


@dataclass(frozen=True, slots=True)
class GoModule:
    """A module line of Go build info: path, version ("(devel)" for an untagged main
    module, empty for a local replacement), checksum, and what replaced it."""

    path: str
    version: str = ""
    sum: str = ""
    replace: GoModule | None = None


@dataclass(frozen=True, slots=True)
class GoBuildInfo:
    """The module information of a Go binary (``runtime/debug.BuildInfo`` less GoVersion)."""

    path: str = ""
    main: GoModule | None = None
    deps: tuple[GoModule, ...] = ()
    settings: tuple[tuple[str, str], ...] = ()

    def setting(self, key: str) -> str | None:
        return next((v for k, v in self.settings if k == key), None)


def go_semver(raw: str) -> str | None:
    """``go1.22.4`` → ``1.22.4``, ``go1.20`` → ``1.20.0``, ``go1.21rc2`` → ``1.21.0-rc.2``
    (the spelling of the Go vulnerability database and OSV); ``None`` for a development
    toolchain (``devel go1.23-4b3c2a1 ...``) or anything else."""
    token = raw.split(" ", 1)[0].split("-", 1)[0]
    m = _GO_VERSION.fullmatch(token)
    if m is None:
        return None
    major, minor, patch, pre, num = m.groups()
    if minor is None:
        return f"{major}.0.0" if pre is None else None
    base = f"{major}.{minor}.{patch or 0}"
    return f"{base}-{pre}.{num}" if pre else base


def _unquote(s: str) -> str:
    """Go's strconv.Unquote, enough for build settings (``-ldflags="-s -w"``)."""
    if len(s) >= 2 and s[0] == s[-1] == "`":
        return s[1:-1]
    if len(s) >= 2 and s[0] == s[-1] == '"':
        try:
            out = json.loads(s)
        except (ValueError, RecursionError):
            return s[1:-1]
        return out if isinstance(out, str) else s[1:-1]
    return s


def _module(fields: list[str], what: str, n: int, warnings: list[str]) -> GoModule | None:
    if len(fields) not in (2, 3) or not fields[0]:
        warnings.append(f"{what} line {n}: expected a module path, version and sum, "
                        f"got {len(fields)} fields")
        return None
    return GoModule(fields[0], fields[1], fields[2] if len(fields) == 3 else "")


def parse_modinfo(text: str) -> tuple[GoBuildInfo, tuple[str, ...]]:
    """Parse the module information of a Go binary (the text between the sentinels) the way
    ``runtime/debug.ParseBuildInfo`` does, except that a bad line is skipped with a warning
    instead of failing the whole."""
    warnings: list[str] = []
    path = ""
    main: GoModule | None = None
    deps: list[GoModule] = []
    settings: list[tuple[str, str]] = []
    last: str | None = None  # "mod" or "dep": what a "=>" line replaces
    lines = text.split("\n")
    if len(lines) > MAX_GO_LINES:
        warnings.append(f"Go module information of {len(lines)} lines: only the first "
                        f"{MAX_GO_LINES} read")
        lines = lines[:MAX_GO_LINES]
    for n, line in enumerate(lines, 1):
        if not line:
            continue
        key, _, rest = line.partition("\t")
        if key == "path":
            path, last = rest, None
        elif key == "go":
            last = None
        elif key in ("mod", "dep"):
            m = _module(rest.split("\t"), key, n, warnings)
            last = None
            if m is not None:
                if key == "mod":
                    main = m
                else:
                    deps.append(m)
                last = key
        elif key == "=>":
            fields = rest.split("\t")
            r = _module(fields, "=>", n, warnings) if len(fields) != 1 else (
                GoModule(fields[0]) if fields[0] else None)
            if r is None:
                continue
            if last == "mod" and main is not None and main.replace is None:
                main = GoModule(main.path, main.version, main.sum, r)
            elif last == "dep" and deps and deps[-1].replace is None:
                d = deps[-1]
                deps[-1] = GoModule(d.path, d.version, d.sum, r)
            else:
                warnings.append(f"=> line {n}: a replacement with no module line before it")
            last = None
        elif key == "build":
            kv = _build_setting(rest)
            if kv is None:
                warnings.append(f"build line {n}: no key=value")
            else:
                settings.append(kv)
            last = None
        else:
            warnings.append(f"line {n}: unknown Go build info line {line[:40]!r}")
            last = None
    return GoBuildInfo(path, main, tuple(deps), tuple(settings)), tuple(warnings)


def _build_setting(kv: str) -> tuple[str, str] | None:
    if not kv or kv[0] == "=":
        return None
    if kv[0] in "\"`":
        m = re.match(r'"(?:[^"\\]|\\.)*"|`[^`]*`', kv)
        if m is None or kv[m.end():m.end() + 1] != "=":
            return None
        key, raw = _unquote(m.group()), kv[m.end() + 1:]
    else:
        key, sep, raw = kv.partition("=")
        if not sep:
            return None
    return key, _unquote(raw) if raw[:1] in ("\"", "`") else raw


@dataclass(frozen=True, slots=True)
class _GoFound:
    version: str
    modinfo: str
    offset: int
    #: "header" (the build info blob) or "sentinel" (module info found by its framing)
    how: str


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(10):
        if pos + i >= len(data):
            raise FormatError("varint runs past the data")
        b = data[pos + i]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos + i + 1
        shift += 7
    raise FormatError("varint longer than 10 bytes")


def _go_data_area(lay: _Layout, go: bool) -> _Area | None:
    """Where Go's debug/buildinfo looks: the build info section, else the first writable
    data segment or section.  Without the section the data is searched only in a file that
    is Go by other signs, or that has no section headers to tell (a cost every other binary
    would pay)."""
    if lay.fmt is BinaryFormat.ELF:
        sec = lay.section(".go.buildinfo")
        if sec is not None or not (go or not lay.sections):
            return sec
        return next((s for s in lay.segments if s.writable and not s.executable), None)
    if lay.fmt is BinaryFormat.MACHO:
        sec = lay.section("__go_buildinfo")
        if sec is not None or not go:
            return sec
        return next((s for s in lay.segments
                     if s.addr and s.size and s.raw_flags == (3, 3)), None)
    if not go:
        return None
    # PE: initialized data, read, write (alignment bits ignored)
    return next((s for s in lay.sections
                 if s.addr and s.size and s.raw_flags[0] & ~0x00F00000 == 0xC0000040), None)


def _find_go_header(blob: Blob, area: _Area) -> int | None:
    for rel, chunk in _chunks(blob, area, MAX_SEARCH, 32):
        i = chunk.find(GO_MAGIC)
        while i >= 0:
            if (rel + i) % 16 == 0:
                return area.offset + rel + i
            i = chunk.find(GO_MAGIC, i + 1)
    return None


def _strip_frame(mod: bytes) -> bytes:
    if len(mod) >= 33 and mod[-17:-16] == b"\n":
        return mod[16:-16]
    return b""


def _go_header(blob: Blob, lay: _Layout, at: int) -> _GoFound:
    head = blob.read(at, 32)
    ptr_size, flags = head[14], head[15]
    if flags & 2:
        vlen, pos = _uvarint(blob.read_upto(at + 32, 10), 0)
        if vlen > MAX_GO_VERSION:
            raise FormatError(f"Go version string of {vlen} bytes", at + 32)
        vstart = at + 32 + pos
        version = blob.read(vstart, vlen)
        mhead = blob.read_upto(vstart + vlen, 10)
        mlen, mpos = _uvarint(mhead, 0)
        if mlen > MAX_MODINFO:
            raise FormatError(f"Go module information of {mlen} bytes (limit {MAX_MODINFO})",
                              vstart + vlen)
        mod = blob.read(vstart + vlen + mpos, mlen)
    else:
        if ptr_size not in (4, 8):
            raise FormatError(f"Go build info with pointer size {ptr_size}", at + 14)
        e = ">" if flags & 1 else "<"
        pfmt = e + ("Q" if ptr_size == 8 else "I")
        (vaddr,) = struct.unpack_from(pfmt, head, 16)
        (maddr,) = struct.unpack_from(pfmt, head, 16 + ptr_size)
        version = _go_string(blob, lay, vaddr, pfmt, MAX_GO_VERSION)
        mod = _go_string(blob, lay, maddr, pfmt, MAX_MODINFO)
    if not version:
        raise FormatError("Go build info with an empty Go version", at)
    return _GoFound(version.decode("utf-8", "backslashreplace"),
                    _strip_frame(mod).decode("utf-8", "backslashreplace"), at, "header")


def _go_string(blob: Blob, lay: _Layout, addr: int, pfmt: str, cap: int) -> bytes:
    """A Go string (data pointer, length) whose header is at virtual address ``addr``;
    ``pfmt`` is the struct format of one pointer."""
    ptr_size = struct.calcsize(pfmt)
    off = lay.offset_of(addr, 2 * ptr_size)
    if off is None:
        raise FormatError(f"Go string header at address {addr:#x} is not in the file")
    raw = blob.read(off, 2 * ptr_size)
    (data,) = struct.unpack_from(pfmt, raw, 0)
    (length,) = struct.unpack_from(pfmt, raw, ptr_size)
    if length > cap:
        raise FormatError(f"Go string of {length} bytes at address {data:#x}", off)
    if length == 0:
        return b""
    doff = lay.offset_of(data, length)
    if doff is None:
        raise FormatError(f"Go string data at address {data:#x} is not in the file", off)
    return blob.read(doff, length)


def _looks_go(blob: Blob, lay: _Layout) -> bool:
    if any(s.name in _GO_SECTIONS for s in lay.sections):
        return True
    if lay.fmt is BinaryFormat.ELF and lay.sections:
        # Go's ELF output always names its sections (.note.go.buildid, .gopclntab); reading
        # .text would send a deflated member back to its start for nothing.
        return False
    # PE and Mach-O: the linker writes the build ID at the very start of the code.
    text = next((s for s in lay.sections if s.name in (".text", "__text") and s.size), None)
    if text is None:
        return False
    try:
        return _read_area(blob, text, 64).startswith(GO_BUILD_ID)
    except FormatError:
        return False


def _readonly_areas(lay: _Layout) -> list[_Area]:
    named = [s for s in lay.sections if s.name in (".rodata", "__rodata", ".rdata")]
    if named:
        return named
    if lay.sections:
        return [s for s in lay.sections if s.size and not s.writable and not s.executable
                and s.addr]
    return [s for s in lay.segments if s.size and not s.writable and not s.executable]


def _go_framed(blob: Blob, lay: _Layout,
               warnings: list[str]) -> tuple[_GoFound | None, str | None]:
    """The module information found by its sentinels, and the one ``go1.N`` string."""
    found: _GoFound | None = None
    versions: set[bytes] = set()
    budget = MAX_FRAMED_SEARCH
    for area in _readonly_areas(lay):
        if budget <= 0:
            break
        for rel, chunk in _chunks(blob, area, budget, 64):
            versions.update(m.group() for m in _GO_VERSION_BYTES.finditer(chunk))
            i = chunk.find(INFO_START) if found is None else -1
            if i >= 0:
                at = area.offset + rel + i
                tail = blob.read_upto(at, min(MAX_MODINFO, area.offset + area.size - at))
                end = tail.find(INFO_END, 16)
                if end < 0:
                    warnings.append(f"Go module information at {at:#x} has no end marker")
                else:
                    mod = _strip_frame(tail[:end + 16])
                    if mod:
                        found = _GoFound("", mod.decode("utf-8", "backslashreplace"), at,
                                         "sentinel")
        budget -= area.size
    version = None
    if len(versions) == 1:
        version = versions.pop().decode()
    elif versions and found is not None:
        warnings.append(f"Go toolchain version unknown: {len(versions)} candidate strings "
                        f"({', '.join(sorted(v.decode() for v in versions)[:4])})")
    return found, version


def _go_purl(path: str, version: str | None) -> str | None:
    ns, _, name = path.rpartition("/")
    try:
        return PackageURL(type="golang", namespace=ns or None, name=name,
                          version=version or None).to_string()
    except ValueError:
        return None


def _ev(method: str, detail: str, confidence: float, version: bool) -> tuple[Evidence, ...]:
    ev = (Evidence(method, detail, confidence, "name"),)
    return (*ev, Evidence(method, detail, confidence, "version")) if version else ev


def _is_local(path: str) -> bool:
    return path.startswith(("./", "../", "/")) or (len(path) > 2 and path[1] == ":")


def _go_module_component(m: GoModule, where: str, conf: float) -> Component:
    r = m.replace
    if r is not None and (_is_local(r.path) or not r.version):
        detail = f"{where}: dep {m.path} {m.version} replaced by local directory {r.path}"
        return Component(m.path, None, _go_purl(m.path, None), (),
                         _ev("go-buildinfo", detail, min(conf, GO_LOCAL_CONFIDENCE), False))
    if r is not None:
        detail = f"{where}: dep {m.path} {m.version} => {r.path} {r.version}"
        return Component(r.path, r.version, _go_purl(r.path, r.version), (),
                         _ev("go-buildinfo", detail, conf, True))
    detail = f"{where}: dep {m.path} {m.version}" + (f" {m.sum}" if m.sum else "")
    return Component(m.path, m.version or None, _go_purl(m.path, m.version), (),
                     _ev("go-buildinfo", detail, conf, bool(m.version)))


def _ldflags_version(info: GoBuildInfo) -> str | None:
    flags = info.setting("-ldflags")
    if not flags:
        return None
    found = {value for var, value in _LDFLAGS_X.findall(flags)
             if var.rsplit(".", 1)[-1].lower() in _LDFLAGS_VERSION_KEYS}
    return found.pop() if len(found) == 1 else None


def _go_main(info: GoBuildInfo, where: str, conf: float) -> Component | None:
    settings = [f"{k}={info.setting(k)}" for k in ("vcs.revision", "vcs.time", "vcs.modified")
                if info.setting(k) is not None]
    extra = f" ({', '.join(settings)})" if settings else ""
    m = info.main
    if m is None:
        if not info.path or info.path == "command-line-arguments":
            return None
        detail = f"{where}: main package {info.path}, built outside module mode{extra}"
        return Component(info.path, None, _go_purl(info.path, None), (),
                         _ev("go-buildinfo", detail, conf * 0.8, False))
    if m.replace is not None and not _is_local(m.replace.path) and m.replace.version:
        m = GoModule(m.replace.path, m.replace.version, m.replace.sum)
    version = None if m.version in ("", "(devel)") else m.version
    detail = f"{where}: main module {m.path} {m.version}{extra}"
    if info.path and info.path != m.path:
        detail += f", package {info.path}"
    ev = _ev("go-buildinfo", detail, conf, version is not None)
    if version is None:
        guessed = _ldflags_version(info)
        if guessed is not None:
            version = guessed
            ev += (Evidence("go-buildinfo", f"{where}: -ldflags sets the version to {guessed}",
                            GO_LDFLAGS_CONFIDENCE, "version"),)
    return Component(m.path, version, _go_purl(m.path, version), (), ev)


def _go_stdlib(raw: str, info: GoBuildInfo, where: str, conf: float) -> Component:
    version = go_semver(raw)
    keys = ("GOOS", "GOARCH", "CGO_ENABLED", "-buildmode")
    settings = [f"{k}={info.setting(k)}" for k in keys if info.setting(k) is not None]
    detail = f"{where}: built with {raw}" + (f" ({', '.join(settings)})" if settings else "")
    if info.setting("CGO_ENABLED") == "1":
        detail += "; cgo: C libraries may be linked in too"
    cpes = () if version is None or "-" in version else (
        f"cpe:2.3:a:golang:go:{version}:*:*:*:*:*:*:*",)
    purl = PackageURL(type="golang", name="stdlib", version=version).to_string()
    return Component("stdlib", version, purl, cpes,
                     _ev("go-buildinfo", detail, conf, version is not None),
                     homepage="https://go.dev")


def _go_components(blob: Blob, lay: _Layout, warnings: list[str]) -> list[Component]:
    found: _GoFound | None = None
    go = _looks_go(blob, lay)
    area = _go_data_area(lay, go)
    if area is not None:
        at = _find_go_header(blob, area)
        if at is not None:
            try:
                found = _go_header(blob, lay, at)
            except (FormatError, struct.error) as ex:
                warnings.append(f"Go build info at {at:#x} unreadable: {ex}")
                return []
    string_version: str | None = None
    if found is None:
        if not go:
            return []
        found, string_version = _go_framed(blob, lay, warnings)
        if found is None:
            warnings.append("Go binary without build info: its modules are unknown")
            if string_version is None:
                return []
            found = _GoFound("", "", 0, "none")
    where = (f"Go build info at {found.offset:#x}" if found.how == "header"
             else f"Go module information at {found.offset:#x} (no build info header)"
             if found.how == "sentinel" else "Go binary without build info")
    conf = GO_CONFIDENCE if found.how == "header" else GO_FRAMED_CONFIDENCE
    info, bad = parse_modinfo(found.modinfo)
    warnings.extend(f"{where}: {w}" for w in bad[:20])
    if len(bad) > 20:
        warnings.append(f"{where}: {len(bad) - 20} more malformed lines")
    out: list[Component] = []
    main = _go_main(info, where, conf)
    if main is not None:
        out.append(main)
    if found.version:
        out.append(_go_stdlib(found.version, info, where, conf))
    elif string_version is not None:
        out.append(_go_stdlib(string_version, info,
                              f"guess: the one Go version string in the data of a Go binary "
                              f"({where})", GO_STRING_CONFIDENCE))
    out.extend(_go_module_component(m, where, conf) for m in info.deps)
    if found.how != "none" and info.main is None and not info.deps:
        warnings.append(f"{where}: no modules recorded (built outside module mode, e.g. "
                        f"GOPATH): the Go packages linked in are not listed")
    return out


# --------------------------------------------------------------------------- Rust


def _dep_section(lay: _Layout) -> _Area | None:
    return lay.section(".dep-v0")


def _inflate(raw: bytes, where: str) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(raw, MAX_DEP_JSON)
    except zlib.error as ex:
        raise FormatError(f"{where}: not zlib data: {ex}") from ex
    if d.unconsumed_tail or (not d.eof and len(out) >= MAX_DEP_JSON):
        raise FormatError(f"{where}: inflates past {MAX_DEP_JSON} bytes (a zip bomb?): "
                          f"not read")
    if not d.eof:
        raise FormatError(f"{where}: compressed data is truncated")
    return out


def _cargo_packages(doc: object, where: str,
                    warnings: list[str]) -> list[tuple[dict[str, object], int]]:
    """The well-formed package entries, each with its index."""
    if not isinstance(doc, dict) or not isinstance(doc.get("packages"), list):
        raise FormatError(f"{where}: JSON has no \"packages\" list")
    packages: list[object] = doc["packages"]
    if len(packages) > MAX_PACKAGES:
        warnings.append(f"{where}: {len(packages)} packages, only {MAX_PACKAGES} read")
        packages = packages[:MAX_PACKAGES]
    good: list[tuple[dict[str, object], int]] = []
    bad = 0
    for i, p in enumerate(packages):
        if (isinstance(p, dict) and isinstance(p.get("name"), str) and p["name"]
                and isinstance(p.get("version"), str) and p["version"]
                and isinstance(p.get("source", ""), str)):
            good.append((p, i))
        else:
            bad += 1
    if bad:
        warnings.append(f"{where}: {bad} package entries without a name and version skipped")
    return good


def _dependency_problems(packages: list[object], where: str) -> list[str]:
    """Dependency indices out of range, and cycles (cargo-auditable's readers refuse both)."""
    n = len(packages)
    edges: list[list[int]] = []
    out_of_range = 0
    for p in packages:
        deps = p.get("dependencies", []) if isinstance(p, dict) else []
        ok: list[int] = []
        for d in deps if isinstance(deps, list) else []:
            if isinstance(d, int) and not isinstance(d, bool) and 0 <= d < n:
                ok.append(d)
            else:
                out_of_range += 1
        edges.append(ok)
    problems = []
    if out_of_range:
        problems.append(f"{where}: {out_of_range} dependency indices are not package indices")
    state = [0] * n  # 0 new, 1 on the stack, 2 done
    for start in range(n):
        if state[start]:
            continue
        stack: list[tuple[int, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            node, k = stack[-1]
            if k < len(edges[node]):
                stack[-1] = (node, k + 1)
                nxt = edges[node][k]
                if state[nxt] == 1:
                    p = packages[nxt]
                    name = p.get("name") if isinstance(p, dict) else None
                    problems.append(f"{where}: the dependency graph has a cycle "
                                    f"(through package {nxt}, {name!r})")
                    return problems
                if state[nxt] == 0:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                stack.pop()
    return problems


def _cargo_components(blob: Blob, lay: _Layout, warnings: list[str]) -> list[Component]:
    sec = _dep_section(lay)
    if sec is None:
        return []
    where = f".dep-v0 at {sec.offset:#x}"
    if sec.size > MAX_DEP_SECTION:
        warnings.append(f"{where}: {sec.size} bytes, over the {MAX_DEP_SECTION}-byte limit: "
                        f"not read")
        return []
    try:
        text = _inflate(_read_area(blob, sec, MAX_DEP_SECTION), where)
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as ex:
            raise FormatError(f"{where}: not valid JSON: {ex}") from ex
        entries = _cargo_packages(doc, where, warnings)
    except FormatError as ex:
        warnings.append(str(ex))
        return []
    assert isinstance(doc, dict)
    packages: list[object] = doc["packages"][:MAX_PACKAGES]
    warnings.extend(_dependency_problems(packages, where))
    roots = [p for p, _i in entries if p.get("root") is True]
    if len(roots) > 1:
        warnings.append(f"{where}: {len(roots)} root packages")
    out: list[Component] = []
    for p, _i in sorted(entries, key=lambda e: e[0].get("root") is not True):
        name, version = str(p["name"]), str(p["version"])
        source = str(p.get("source") or "unknown")
        build = p.get("kind") == "build"
        conf = CARGO_BUILD_CONFIDENCE if build else CARGO_CONFIDENCE
        role = ("the binary's own package" if p.get("root") is True
                else "build dependency (build script or proc-macro: ran at build time, "
                     "mostly not linked in)" if build else "dependency")
        detail = f"{where}: {name} {version} from {source}, {role}"
        purl = None
        if source == "crates.io":
            try:
                purl = PackageURL(type="cargo", name=name, version=version).to_string()
            except ValueError:
                purl = None
        out.append(Component(name, version, purl, (), _ev("cargo-auditable", detail, conf,
                                                            True)))
    return out


def _rustc_components(blob: Blob, lay: _Layout, warnings: list[str]) -> list[Component]:
    sec = lay.section(".comment") if lay.fmt is BinaryFormat.ELF else None
    if sec is None:
        return []
    data = _read_area(blob, sec, MAX_COMMENT)
    seen: dict[str, tuple[bytes | None, bytes | None]] = {}
    for m in _RUSTC.finditer(data):
        seen.setdefault(m.group(1).decode(), (m.group(2), m.group(3)))
    out = []
    for version, (commit, date) in seen.items():
        built = f" ({commit.decode()} {date.decode()})" if commit and date else ""
        detail = (f"guess: .comment names rustc version {version}{built}: the Rust standard "
                  f"library of that toolchain is likely linked in")
        out.append(Component("rust", version, None,
                             (f"cpe:2.3:a:rust-lang:rust:{version}:*:*:*:*:*:*:*",),
                             _ev("rustc-comment", detail, RUSTC_CONFIDENCE, True),
                             homepage="https://www.rust-lang.org"))
    return out


# --------------------------------------------------------------------------- public


def buildinfo_components(blob: Blob, binary: Binary
                         ) -> tuple[tuple[Component, ...], tuple[str, ...]]:
    """Go modules and toolchain, cargo-auditable crates and the rustc version that the
    build recorded in ``blob`` (a binary already parsed as ``binary``).

    Returns (components, warnings).  Components come per source in this order: Go (main
    module, ``stdlib``, dependencies), cargo-auditable (root package first), rustc; a fat
    Mach-O file's slices are read in turn and repeats dropped.  Never raises for bad bytes:
    whatever could not be read is a warning naming the offset."""
    warnings: list[str] = []
    try:
        layouts = _layouts(blob, binary, warnings)
    except (FormatError, struct.error, ValueError) as ex:
        return (), (f"build metadata not read: headers unreadable: {ex}",)
    out: list[Component] = []
    seen: set[tuple[str, str | None, str | None]] = set()
    for lay in layouts:
        prefix = f"slice at {lay.base:#x}: " if len(layouts) > 1 else ""
        for reader in (_go_components, _cargo_components, _rustc_components):
            found: list[str] = []
            try:
                comps = reader(blob, lay, found)
            except (FormatError, struct.error, ValueError, OverflowError, RecursionError,
                    zlib.error) as ex:
                found.append(f"{reader.__name__.strip('_').split('_')[0]} build metadata "
                             f"not read: {ex}")
                comps = []
            warnings.extend(prefix + w for w in found if prefix + w not in warnings)
            for c in comps:
                key = (c.name, c.version, c.purl)
                if key not in seen:
                    seen.add(key)
                    out.append(c)
    return tuple(out), tuple(warnings)
