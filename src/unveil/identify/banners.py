"""Find which upstream projects a binary holds, and their versions, from its bytes.

Three kinds of evidence, strongest first:

* a *banner*: version text the project compiles in (``libpng version 1.6.58``,
  ``OpenSSL 3.0.19 27 Jan 2026``, ``LIBTIFF, Version 4.7.2``), matched by the regexes of
  :mod:`unveil.identify.rules`;
* a *version symbol*: an exported function or variable through which the library reports
  its own version (``WebPGetDecoderVersion`` is ``mov eax, 0x10600; ret``), for the many
  libraries that compile in no text (libwebp, brotli, lcms2, libzmq...);
* the *file name*, de-hashed (auditwheel's ``-<8 hex>``, delvewheel's ``-<32 hex>``): a name
  only, never a version -- an ABI number (``libtiff.so.6``, ``libjpeg.so.62``) is not one.

Speed: the scan reads only the sections that hold data (ELF, PE and Mach-O sections that are
neither code nor zero-fill), in bounded chunks.  Every non-literal pattern holds a version
with a ``<digit>.<digit>`` in it, so one fast search for its dot (a literal-led regex: memchr
speed) finds the few places worth a look; the small windows around them are joined into one
buffer, and a pattern runs only next to occurrences of the literal it requires (derived from
the regex by :func:`unveil.identify.rules.required_literal`).  Literal-led patterns (few by
design) are searched on their own over whole chunks.

Why not one combined alternation of every pattern: CPython's ``re`` tries each alternative at
each position (no multi-literal prefilter), which measured 7 MB/s over libtorch's ``.rodata``
with 24 alternatives and 0.5 MB/s inside the digit-dense windows; keyword gating runs at
hundreds of MB/s (libtorch_cpu.so, 434 MB with 18 MB of data sections: about 50 ms).

Precision: a banner found in a file that *loads* that project's library dynamically (its
DT_NEEDED, Mach-O load commands or PE imports name it) is a mention -- GDAL compares the
``LIBTIFF, Version`` text of the header it was built with -- and is dropped.  A low-confidence
pattern (a bare ``1.2.3`` string) that reads two versions in one file reads none.

Compressed wheel members: section headers sit at the end of an ELF file and ``.rodata``
before them.  The ranges this module will read are kept as the member inflates
(:func:`keep_regions`, from the program headers), so that it is inflated once; when an
unstripped symbol table or debug information lies between the loaded segments and the section
headers, the table is synthesized from the program headers instead of inflating that far
(:mod:`unveil.formats.elfsections`).
"""

from __future__ import annotations

import fnmatch
import re
import struct
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from packageurl import PackageURL

from unveil.errors import FormatError
from unveil.formats.blob import Blob
from unveil.formats.elfsections import ElfSection, elf_sections
from unveil.identify.rules import (
    ANCHOR,
    POST,
    PRE,
    Pattern,
    Rule,
    RuleSet,
    VersionSymbol,
    default_rules,
)
from unveil.literals import LiteralSearch
from unveil.model import Component, Evidence

__all__ = [
    "FILENAME_CONFIDENCE",
    "ScanLimits",
    "applicable_rules",
    "dehash",
    "identify_bytes",
    "keep_regions",
    "prepare_default_rules",
    "scan_regions",
]

#: The confidence of a name read from the file name alone.
FILENAME_CONFIDENCE = 0.3
#: Version symbols are the library's own answer; a regex over text is a little less sure.
SYMBOL_CONFIDENCE = 0.9
#: A file that defines a project's version function holds that project's code.
EXPORT_CONFIDENCE = 0.8

_AUDITWHEEL = re.compile(r"^(?P<stem>.+?)(?:-[0-9a-f]{8})+(?P<rest>\..*)?$")
_DELVEWHEEL = re.compile(r"^(?P<stem>.+?)-[0-9a-f]{32}(?P<rest>\..*)?$")
_SUFFIX = r"(?:\.dev\d*|-?(?:rc|alpha|beta|pre)\d*|[a-z]{1,2}(?![A-Za-z]))?"
#: what a regex's version group is trimmed to (a dotless LTS date such as 20240722 is allowed)
_VERSION = re.compile(r"\d+(?:\.\d+)*" + _SUFFIX)
#: a version inside text a library reports about itself ("expat_2.5.0", "1.5.3-0-gb546257")
_DOTTED = re.compile(r"\d+(?:\.\d+)+" + _SUFFIX)
_SNIPPET_CLEAN = re.compile(rb"[^\x20-\x7e]+")


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """Bounds on the work done for one file.

    ``max_bytes`` caps the data-section bytes read; a file whose layout cannot be read is
    scanned whole when it is at most ``whole_file`` bytes, else only its first and last
    ``edge`` bytes (banners sit in read-only data, near either end in practice).
    """

    chunk: int = 8 * 1024 * 1024
    max_bytes: int = 256 * 1024 * 1024
    whole_file: int = 64 * 1024 * 1024
    edge: int = 32 * 1024 * 1024
    max_hits_per_pattern: int = 64


# --------------------------------------------------------------------------- file names


def dehash(name: str) -> str:
    """Strip the hashes that wheel repair tools add to vendored library names.

    ``libpng16-1d1ba958.so.16.58.0`` -> ``libpng16.so.16.58.0``; re-vendored
    ``libgfortran-040039e1-0352e75f.so.5.0.0`` -> ``libgfortran.so.5.0.0``; delvewheel's
    ``libopenblas-<32 hex>.dll`` -> ``libopenblas.dll``.
    """
    base = name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    for pattern in (_DELVEWHEEL, _AUDITWHEEL):
        m = pattern.match(base)
        if m:
            return m.group("stem") + (m.group("rest") or "")
    return base


def _nul_free_run(word: bytes) -> bytes:
    return max(word.split(b"\x00"), key=len)


class _Keywords(LiteralSearch):
    """Which of the rule table's keywords occur in a buffer, in one Hyperscan pass.

    Before each pattern's regex runs, the engine looks for the literal it needs; with ~65
    patterns tried on every file (the embedded ones), those ``bytes`` searches were a
    third of identifying an environment's 400 binaries.  Hyperscan finds all the literals
    in one pass, each reported once.  Without Hyperscan :meth:`present` returns None and
    the engine searches keyword by keyword.
    """

    def __init__(self, words: tuple[bytes, ...]) -> None:
        # Each keyword is looked for by its longest run without a NUL (Hyperscan's literals
        # are C strings): a keyword found has it; the run found, the keyword itself is then
        # searched as before.  One whose run is under 3 bytes is always "present": such
        # literals slow the whole pass down and occur in every buffer anyway.
        kept = tuple(w for w in words if len(_nul_free_run(w)) >= 3)
        super().__init__(tuple(map(_nul_free_run, kept)), first_only=True)
        self.keywords = kept
        self.always = frozenset(w for w in words if w not in kept)

    def present(self, data: bytes) -> set[bytes] | None:
        """The keywords that may occur in ``data`` (a superset: those whose NUL-free run
        does), or None when there is no database to ask (search each one instead)."""
        found = set(self.always)
        keywords = self.keywords

        def on(ident: int, _from: int, _to: int, _flags: int, _ctx: object) -> None:
            found.add(keywords[ident])

        return found if self.scan(data, on) else None


@dataclass(slots=True)
class _Prepared:
    """What the engine derives once per rule set: name matchers and compiled pattern sets."""

    rules: RuleSet
    #: each rule's file globs as one regex, compiled when a file name first starts like one
    #: of them (compiling all 100+ up front was ~25 ms of every identifying command)
    globs: list[re.Pattern[str] | None]
    sonames: tuple[frozenset[str], ...]
    #: the rules a name may match, by the literal start of their globs (at most 5 characters)
    by_prefix: dict[str, tuple[int, ...]]
    prefix_lengths: tuple[int, ...]
    embedded: tuple[tuple[Rule, Pattern], ...]
    #: (name, GNU hash, rule) of every rule's version-reporting functions and variables
    exports: tuple[tuple[bytes, int, Rule], ...] = ()
    compiled: dict[tuple[int, ...], _Compiled] = field(default_factory=dict)
    #: every pattern's keyword, found in one pass (Hyperscan) instead of one per keyword
    keywords: _Keywords | None = None


_PREPARED: dict[int, _Prepared] = {}


def _prepare(rules: RuleSet) -> _Prepared:
    prepared = _PREPARED.get(id(rules))
    if prepared is not None and prepared.rules is rules:
        return prepared
    if len(_PREPARED) >= 8:
        _PREPARED.clear()
    by_prefix: dict[str, list[int]] = {}
    for i, rule in enumerate(rules.rules):
        for glob in rule.files:
            literal = re.match(r"[^*?\[]*", glob.lower())
            prefix = literal.group(0)[:5] if literal else ""
            by_prefix.setdefault(prefix, []).append(i)
    prepared = _Prepared(
        rules=rules,
        by_prefix={k: tuple(sorted(set(v))) for k, v in by_prefix.items()},
        prefix_lengths=tuple(sorted({len(k) for k in by_prefix})),
        globs=[None] * len(rules.rules),
        sonames=tuple(frozenset(r.sonames) for r in rules.rules),
        embedded=tuple((r, p) for r in rules.rules for p in r.patterns if p.scope == "embedded"),
        exports=tuple((name, _gnu_hash(name), r) for r in rules.rules
                      for name in dict.fromkeys(v.symbols[0].encode() for v in r.version_symbols)),
        keywords=_Keywords(tuple(dict.fromkeys(
            p.keyword for r in rules.rules for p in r.patterns if p.keyword))),
    )
    _PREPARED[id(rules)] = prepared
    return prepared


def prepare_default_rules() -> None:
    """Load, validate and index the shipped rule table now (~30 ms), in a process about to
    fork workers: they inherit it instead of each doing it again."""
    prepared = _prepare(default_rules())
    _compiled(prepared, (), True)
    if prepared.keywords is not None:
        prepared.keywords.present(b"")  # its Hyperscan database, for this thread


def _glob(prepared: _Prepared, i: int) -> re.Pattern[str]:
    got = prepared.globs[i]
    if got is None:  # two threads may both compile it: the same regex either way
        got = prepared.globs[i] = re.compile(
            "|".join(fnmatch.translate(g.lower()) for g in prepared.rules.rules[i].files))
    return got


def _named(prepared: _Prepared, file_name: str, soname: str | None) -> tuple[int, ...]:
    names = {dehash(file_name).lower()}
    sonames = set()
    if soname:
        names.add(dehash(soname).lower())
        sonames = {soname, dehash(soname)}
    candidates: set[int] = set()
    for n in names:
        for length in prepared.prefix_lengths:
            candidates.update(prepared.by_prefix.get(n[:length], ()))
    found = {i for i in candidates if any(_glob(prepared, i).match(n) for n in names)}
    if sonames:
        found.update(i for i, s in enumerate(prepared.sonames) if not s.isdisjoint(sonames))
    return tuple(sorted(found))


def applicable_rules(rules: RuleSet, file_name: str, soname: str | None = None) -> tuple[Rule, ...]:
    """The rules whose file globs or soname hints name this file (after de-hashing)."""
    prepared = _prepare(rules)
    return tuple(rules.rules[i] for i in _named(prepared, file_name, soname))


# --------------------------------------------------------------------------- layout

_ELF_SKIP = frozenset({
    ".eh_frame", ".eh_frame_hdr", ".gcc_except_table", ".init_array", ".fini_array",
    ".got", ".got.plt", ".plt", ".dynamic", ".data.rel.ro", ".data.rel.ro.local", ".tdata",
    ".ctors", ".dtors", ".jcr", ".interp", ".gnu.hash", ".hash", ".dynsym", ".rela.dyn",
    ".rela.plt", ".rel.dyn", ".rel.plt", ".gnu.version", ".gnu.version_r", ".gnu.version_d",
})


@dataclass(slots=True)
class _Elf:
    little: bool
    bits: int
    machine: int
    sections: list[ElfSection] = field(default_factory=list)


def _read_elf(blob: Blob) -> _Elf | None:
    table = elf_sections(blob)
    if table is None:
        return None
    elf = _Elf(table.little, table.bits, table.machine)
    for s in table.sections:
        if s.type != 8 and s.offset + s.size > blob.size:  # past the end (NOBITS takes no
            s = s._replace(offset=0, size=0)  # room): kept, so that sh_link indices line up
        elf.sections.append(s)
    return elf


def _needed(blob: Blob, elf: _Elf) -> list[str]:
    """DT_NEEDED entries, read through the section headers."""
    e = "<" if elf.little else ">"
    fmt, size = (e + "qQ", 16) if elf.bits == 64 else (e + "iI", 8)
    out = []
    for s in elf.sections:
        if s.type != 6 or s.link >= len(elf.sections) or s.size > 1 << 20:  # SHT_DYNAMIC
            continue
        strtab = elf.sections[s.link]
        if strtab.size > 1 << 26:
            continue
        strs = blob.read(strtab.offset, strtab.size)
        table = blob.read(s.offset, s.size // size * size)
        for tag, value in struct.iter_unpack(fmt, table):
            if tag == 0:
                break
            if tag == 1 and value < len(strs):
                end = strs.find(b"\x00", value)
                out.append(strs[value:end if end >= 0 else None].decode("latin-1"))
    return out


def _macho_dylibs(blob: Blob) -> list[str]:
    """The libraries a thin little-endian Mach-O file loads (base names)."""
    magic = blob.read(0, 4) if blob.size >= 32 else b""
    if magic not in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe"):
        return []
    ncmds, sizeofcmds = struct.unpack("<II", blob.read(16, 8))
    at = 32 if magic[0] == 0xCF else 28
    if at + sizeofcmds > blob.size:
        return []
    cmds = blob.read(at, sizeofcmds)
    out = []
    pos = 0
    for _ in range(ncmds):
        if pos + 12 > len(cmds):
            break
        cmd, size, name_at = struct.unpack_from("<III", cmds, pos)
        if size < 8:
            break
        # LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB, LC_LAZY_LOAD_DYLIB, LC_LOAD_UPWARD
        if cmd in (0xC, 0x80000018, 0x8000001F, 0x20, 0x80000023) and name_at < size:
            raw = cmds[pos + name_at:pos + size].split(b"\x00", 1)[0]
            out.append(raw.decode("latin-1").rsplit("/", 1)[-1])
        pos += size
    return out


def _pe_imports(blob: Blob) -> list[str]:
    """The DLLs a PE file imports (the import directory, not delay-loads)."""
    if blob.size < 0x40 or blob.read(0, 2) != b"MZ":
        return []
    lfanew, = struct.unpack("<I", blob.read(0x3C, 4))
    if lfanew + 24 > blob.size or blob.read(lfanew, 4) != b"PE\x00\x00":
        return []
    nsec, = struct.unpack("<H", blob.read(lfanew + 6, 2))
    optsize, = struct.unpack("<H", blob.read(lfanew + 20, 2))
    opt = lfanew + 24
    if opt + optsize > blob.size or optsize < 2:
        return []
    magic, = struct.unpack("<H", blob.read(opt, 2))
    dirs = opt + (112 if magic == 0x20B else 96)
    if dirs + 16 > opt + optsize:
        return []
    import_rva, = struct.unpack("<I", blob.read(dirs + 8, 4))
    table = blob.read(opt + optsize, nsec * 40) if opt + optsize + nsec * 40 <= blob.size else b""
    sections = [struct.unpack_from("<IIII", table, i * 40 + 8) for i in range(len(table) // 40)]

    def offset(rva: int) -> int | None:
        for vsize, vaddr, rawsize, rawptr in sections:
            if vaddr <= rva < vaddr + max(vsize, rawsize):
                return int(rawptr + (rva - vaddr))
        return None

    out: list[str] = []
    at = offset(import_rva) if import_rva else None
    while at is not None and at + 20 <= blob.size and len(out) < 4096:
        entry = blob.read(at, 20)
        if entry == b"\x00" * 20:
            break
        name_off = offset(struct.unpack_from("<I", entry, 12)[0])
        if name_off is not None and name_off < blob.size:
            out.append(blob.read_upto(name_off, 256).split(b"\x00", 1)[0].decode("latin-1"))
        at += 20
    return out


def _linked(blob: Blob, elf: _Elf | None) -> list[str]:
    """The libraries a binary loads dynamically, whatever its format."""
    try:
        if elf is not None:
            return _needed(blob, elf)
        return _macho_dylibs(blob) or _pe_imports(blob)
    except (FormatError, struct.error):
        return []


def _elf_regions(blob: Blob, elf: _Elf) -> list[tuple[int, int]]:
    regions = []
    for s in elf.sections:
        if s.size == 0 or s.name in _ELF_SKIP:
            continue
        if s.type == 1 and s.flags & 0x2 and not s.flags & 0x4:  # allocated, not code
            regions.append((s.offset, s.size))
    if regions or elf.sections:
        return regions
    return _segment_regions(blob, elf)


def _elf_names(elf: _Elf) -> list[tuple[int, int]]:
    """``.dynstr``: symbol names, searched by the literal patterns only (mangled
    ``absl12lts_20240722`` names)."""
    return [(s.offset, s.size) for s in elf.sections if s.type == 3 and s.name == ".dynstr"
            and s.size]


def _segment_regions(blob: Blob, elf: _Elf) -> list[tuple[int, int]]:
    """No section headers: the loadable segments that are not executable."""
    e = "<" if elf.little else ">"
    head = blob.read(0, 64)
    if elf.bits == 64:
        phoff, = struct.unpack_from(e + "Q", head, 0x20)
        phentsize, phnum = struct.unpack_from(e + "HH", head, 0x36)
    else:
        phoff, = struct.unpack_from(e + "I", head, 0x1C)
        phentsize, phnum = struct.unpack_from(e + "HH", head, 0x2A)
    if phnum == 0 or phoff + phnum * phentsize > blob.size:
        return []
    table = blob.read(phoff, phnum * phentsize)
    out = []
    for i in range(phnum):
        if elf.bits == 64:
            typ, flags, off, _va, _pa, filesz = struct.unpack_from(
                e + "IIQQQQ", table, i * phentsize)
        else:
            typ, off, _va, _pa, filesz, _memsz, flags = struct.unpack_from(
                e + "IIIIIII", table, i * phentsize)
        if typ == 1 and not flags & 1 and filesz and off + filesz <= blob.size:
            out.append((off, filesz))
    return out


def _pe_regions(blob: Blob) -> list[tuple[int, int]] | None:
    if blob.size < 0x40 or blob.read(0, 2) != b"MZ":
        return None
    lfanew, = struct.unpack("<I", blob.read(0x3C, 4))
    if lfanew + 24 > blob.size or blob.read(lfanew, 4) != b"PE\x00\x00":
        return None
    nsec, = struct.unpack("<H", blob.read(lfanew + 6, 2))
    optsize, = struct.unpack("<H", blob.read(lfanew + 20, 2))
    table_at = lfanew + 24 + optsize
    if table_at + nsec * 40 > blob.size:
        return None
    table = blob.read(table_at, nsec * 40)
    out = []
    for i in range(nsec):
        name = table[i * 40:i * 40 + 8].rstrip(b"\x00")
        rawsize, rawptr = struct.unpack_from("<II", table, i * 40 + 16)
        chars, = struct.unpack_from("<I", table, i * 40 + 36)
        if chars & 0x20000020 or name in (b".reloc", b".pdata", b".xdata") or not rawsize:
            continue
        if rawptr + rawsize <= blob.size:
            out.append((rawptr, rawsize))
    return out


def _macho_regions(blob: Blob) -> list[tuple[int, int]] | None:
    if blob.size < 32:
        return None
    magic = blob.read(0, 4)
    if magic not in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe"):
        return None  # fat and big-endian files are scanned by the fallback
    is64 = magic[0] == 0xCF
    ncmds, sizeofcmds = struct.unpack("<II", blob.read(16, 8))
    at = 32 if is64 else 28
    if at + sizeofcmds > blob.size:
        return None
    cmds = blob.read(at, sizeofcmds)
    out = []
    pos = 0
    for _ in range(ncmds):
        if pos + 8 > len(cmds):
            break
        cmd, size = struct.unpack_from("<II", cmds, pos)
        if size < 8:
            break
        if cmd in (0x19, 0x1):
            seg_head, sect_size = (72, 80) if cmd == 0x19 else (56, 68)
            nsects, = struct.unpack_from("<I", cmds, pos + seg_head - 8)
            for j in range(nsects):
                s = pos + seg_head + j * sect_size
                if s + sect_size > len(cmds):
                    break
                if cmd == 0x19:
                    _sz, off = struct.unpack_from("<QI", cmds, s + 40)
                    flags, = struct.unpack_from("<I", cmds, s + 64)
                else:
                    _sz, off = struct.unpack_from("<II", cmds, s + 36)
                    flags, = struct.unpack_from("<I", cmds, s + 56)
                kind = flags & 0xFF
                if flags & 0x80000400 or kind in (0x1, 0xC, 0x12) or not _sz or not off:
                    continue
                if off + _sz <= blob.size:
                    out.append((off, _sz))
        pos += size
    return out


#: Without a read-only segment of its own, an ELF file's read-only data sits just before its
#: unwind tables (``.eh_frame_hdr``) in the one executable segment: this much is kept.
RODATA_GUESS = 48 << 20
#: how much of the start and the end of an ELF file's unloaded tail is kept (see _elf_keep)
TAIL_KEEP = 1 << 16


def keep_regions(blob: Blob) -> list[tuple[int, int]]:
    """The ranges banner scanning will read, judged from the headers at the start of the
    file only, most certain first: a hint for :meth:`Blob.keep`, so that a deflated member
    is inflated once.

    PE section tables and Mach-O load commands give the exact regions; an ELF file's section
    headers sit at its end, so its read-only segments (or, when there are none, the stretch
    before ``.eh_frame_hdr``, where linkers put ``.rodata``) stand in for them.
    """
    try:
        head = blob.read(0, 64) if blob.size >= 64 else b""
        if head[:4] != b"\x7fELF":
            return _pe_regions(blob) or _macho_regions(blob) or []
        return _elf_keep(blob, head)
    except (FormatError, struct.error):
        return []


def _elf_keep(blob: Blob, head: bytes) -> list[tuple[int, int]]:
    if head[4] not in (1, 2) or head[5] not in (1, 2):
        return []
    e = "<" if head[5] == 1 else ">"
    if head[4] == 2:
        phoff, shoff = struct.unpack_from(e + "QQ", head, 0x20)
        phentsize, phnum = struct.unpack_from(e + "HH", head, 0x36)
        fmt, want = e + "IIQQQQ", 48
    else:
        phoff, shoff = struct.unpack_from(e + "II", head, 0x1C)
        phentsize, phnum = struct.unpack_from(e + "HH", head, 0x2A)
        fmt, want = e + "IIIIII", 32  # p_flags follows at +24
    if not phnum or phentsize < want or phoff + phnum * phentsize > blob.size:
        return []
    table = blob.read(phoff, phnum * phentsize)
    data: list[tuple[int, int]] = []
    eh_frame: tuple[int, int] | None = None
    loaded_end = 0
    for i in range(phnum):
        if head[4] == 2:
            typ, flags, off, _va, _pa, filesz = struct.unpack_from(fmt, table, i * phentsize)
        else:
            typ, off, _va, _pa, filesz, _memsz = struct.unpack_from(fmt, table, i * phentsize)
            flags, = struct.unpack_from(e + "I", table, i * phentsize + 24)
        if typ == 1:
            loaded_end = max(loaded_end, off + filesz)
        if typ == 1 and not flags & 1 and off and filesz:  # PT_LOAD, not executable
            # (writable too: initialised .data is scanned for banners like .rodata)
            data.append((off, filesz))
        elif typ == 0x6474E550 and filesz:  # PT_GNU_EH_FRAME
            eh_frame = (off, filesz)
    if eh_frame is not None and not any(o <= eh_frame[0] < o + n for o, n in data):
        # One executable segment holds .rodata too (ld -z noseparate-code, gold, lld).
        start = max(0, eh_frame[0] - RODATA_GUESS)
        data.append((start, eh_frame[0] - start))  # last: the exact ranges come first
    if loaded_end and shoff > loaded_end:
        # Past the loaded segments, linkers put .comment first (the toolchain versions
        # build metadata reads) and the section names just before the section headers;
        # a large .symtab or debug info between them would otherwise mean inflating twice.
        data.insert(0, (loaded_end, min(TAIL_KEEP, shoff - loaded_end)))
        data.insert(1, (max(loaded_end, shoff - TAIL_KEEP), min(TAIL_KEEP, shoff - loaded_end)))
    return data


def scan_regions(blob: Blob, limits: ScanLimits = ScanLimits()) -> list[tuple[int, int]]:
    """The (offset, size) ranges worth scanning for banners, within ``limits.max_bytes``
    (symbol-name tables, searched by literal patterns only, are not included)."""
    return _layout(blob, limits)[1]


def _layout(blob: Blob, limits: ScanLimits) -> tuple[_Elf | None, list[tuple[int, int]]]:
    regions: list[tuple[int, int]] | None = None
    elf: _Elf | None = None
    try:
        elf = _read_elf(blob)
        if elf is not None:
            regions = _elf_regions(blob, elf)
        else:
            regions = _pe_regions(blob)
            if regions is None:
                regions = _macho_regions(blob)
    except (FormatError, struct.error):
        elf, regions = None, None
    if not regions:
        if blob.size <= limits.whole_file:
            regions = [(0, blob.size)]
        else:
            regions = [(0, limits.edge), (blob.size - limits.edge, limits.edge)]
    out: list[tuple[int, int]] = []
    budget = limits.max_bytes
    for off, size in sorted(regions):
        if out and off < out[-1][0] + out[-1][1]:  # overlapping: merge
            last_off, last_size = out.pop()
            end = max(last_off + last_size, off + size)
            budget += last_size
            off, size = last_off, end - last_off
        size = min(size, budget)
        if size <= 0:
            break
        out.append((off, size))
        budget -= size
    return elf, out


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True)
class _Compiled:
    #: patterns tried in the windows around each ``<digit>.<digit>``, with the literal each needs
    windowed: tuple[tuple[Rule, Pattern, bytes], ...]
    #: literal-led patterns searched over whole chunks
    literals: tuple[tuple[Rule, Pattern], ...]


def _compiled(prepared: _Prepared, named: tuple[int, ...], embedded: bool) -> _Compiled:
    key = (*named, -1) if embedded else named
    got = prepared.compiled.get(key)
    if got is None:
        active = list(prepared.embedded) if embedded else []
        for i in named:
            rule = prepared.rules.rules[i]
            active.extend((rule, p) for p in rule.patterns
                          if not embedded or p.scope != "embedded")
        got = _Compiled(
            windowed=tuple((r, p, p.keyword) for r, p in active if not p.literal),
            literals=tuple((r, p) for r, p in active if p.literal),
        )
        if len(prepared.compiled) >= 256:
            prepared.compiled.clear()
        prepared.compiled[key] = got
    return got


@dataclass(slots=True)
class _Hit:
    rule: Rule
    version: str | None
    confidence: float
    method: str
    detail: str
    source: str = ""
    count: int = 1


def _snippet(data: bytes, start: int, end: int) -> str:
    text = _SNIPPET_CLEAN.sub(b" ", data[start:end]).strip()
    return text[:100].decode("ascii")


def _windows(data: bytes) -> list[tuple[int, int]]:
    """Merged [start, end) windows around every ``<digit>.<digit>`` in ``data``."""
    out: list[tuple[int, int]] = []
    n = len(data)
    start = end = -1
    for p in [m.start() for m in ANCHOR.finditer(data)]:
        if end >= 0 and p - PRE <= end:
            end = p + POST
            continue
        if end >= 0:
            out.append((start, min(n, end)))
        start, end = max(0, p - PRE), p + POST
    if end >= 0:
        out.append((start, min(n, end)))
    return out


#: Source paths of Rust crates as cargo unpacks them (``~/.cargo/registry/src/index.crates.io-
#: <hash>/bzip2-0.5.2/src/lib.rs``): the version there is the crate's, a binding's, not the
#: version of the C project it wraps (bzip2-sys 0.1.13 carries bzip2 1.0.8).
_CRATE_REGISTRY = (b"/registry/src/", b"crates.io-")


def _in_crate_registry(buf: bytes, at: int) -> bool:
    start = max(buf.rfind(b"\x00", max(0, at - PRE), at) + 1, at - PRE, 0)
    before = buf[start:at]
    return any(marker in before for marker in _CRATE_REGISTRY)


def _match_chunk(data: bytes, compiled: _Compiled, hits: dict[tuple[str, str | None, str], _Hit],
                 limits: ScanLimits, *, windowed: bool = True,
                 keywords: _Keywords | None = None) -> None:
    def record(rule: Rule, pattern: Pattern, m: re.Match[bytes], buf: bytes) -> None:
        if _in_crate_registry(buf, m.start()):
            return
        version = None
        if not pattern.presence:
            vm = _VERSION.match(m.group(1).decode("latin-1"))
            if vm is None:
                return
            version = vm.group(0)
        key = (rule.project, version, pattern.source)
        hit = hits.get(key)
        if hit is not None:
            hit.count += 1
            return
        hits[key] = _Hit(rule, version, pattern.confidence, "banner",
                         _snippet(buf, m.start(), m.end()), pattern.source)

    def around(buf: bytes, rule: Rule, pattern: Pattern, keyword: bytes) -> None:
        """Try the regex only near each occurrence of the literal it requires."""
        at = buf.find(keyword)
        seen = 0
        while at >= 0 and seen < limits.max_hits_per_pattern:
            lo = max(0, at - PRE)
            found = pattern.regex.search(buf, lo, min(len(buf), at + len(keyword) + POST))
            if found is not None and found.start() <= at:
                record(rule, pattern, found, buf)
                seen += 1
                at = buf.find(keyword, max(found.end(), at + 1))
            else:
                at = buf.find(keyword, at + 1)

    if windowed:
        spans = [data[lo:hi] for lo, hi in _windows(data)]
        if spans:
            # One buffer of every window, separated by a byte no pattern accepts, so that
            # each keyword test is a single memchr-speed pass.
            joined = spans[0] if len(spans) == 1 else b"\x01".join(spans)
            present = keywords.present(joined) if keywords is not None else None
            for rule, pattern, keyword in compiled.windowed:
                if keyword not in (joined if present is None or not keyword else present):
                    continue
                if len(keyword) >= 3:
                    around(joined, rule, pattern, keyword)
                    continue
                for n, m in enumerate(pattern.regex.finditer(joined)):
                    if n >= limits.max_hits_per_pattern:
                        break
                    record(rule, pattern, m, joined)
    if compiled.literals:
        present = keywords.present(data) if keywords is not None else None
        for rule, pattern in compiled.literals:
            if present is None or pattern.keyword in present:
                around(data, rule, pattern, pattern.keyword)


def _chunks(blob: Blob, regions: Iterable[tuple[int, int]], limits: ScanLimits) -> Iterator[bytes]:
    overlap = PRE + POST
    for off, size in regions:
        pos, end = off, off + size
        while pos < end:
            n = min(limits.chunk, end - pos)
            yield blob.read(pos, n)
            if pos + n >= end:
                break
            pos += n - overlap


# --------------------------------------------------------------------------- version symbols


def _cstring(blob: Blob, offset: int, limit: int = 96) -> str | None:
    if offset < 0 or offset >= blob.size:
        return None
    raw = blob.read_upto(offset, limit)
    end = raw.find(b"\x00")
    if end <= 0:
        return None
    text = raw[:end]
    if not all(0x20 <= c < 0x7F for c in text):
        return None
    return text.decode("ascii")


def _int_version(value: int, fmt: str | None) -> str | None:
    if value <= 0:
        return None
    parts: tuple[int, ...]
    if fmt in ("hex-8-8-8", "gnu-hex"):
        parts = ((value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF)
        if fmt == "gnu-hex" and parts[2] == 0:
            parts = parts[:2]
    elif fmt == "brotli":
        parts = (value >> 24, (value >> 12) & 0xFFF, value & 0xFFF)
    elif fmt == "dec-2-2":
        parts = (value // 10000, value // 100 % 100, value % 100)
    elif fmt == "dec-3-3":
        parts = (value // 1_000_000, value // 1000 % 1000, value % 1000)
    elif fmt == "lzma":
        parts = (value // 10_000_000, value // 10_000 % 1000, value // 10 % 1000)
    elif fmt == "lcms":
        parts = (value // 1000, value // 10 % 100)
    elif fmt == "pg":
        parts = (value // 10000, value % 10000) if value >= 100000 else (
            value // 10000, value // 100 % 100, value % 100)
    elif fmt == "rdkafka":
        parts = (value >> 24, (value >> 16) & 0xFF, (value >> 8) & 0xFF)
    else:
        return None
    return ".".join(str(p) for p in parts)


class _Symbols:
    """Just enough of an x86-64 ELF to read a few exported symbols' code or data."""

    def __init__(self, blob: Blob, elf: _Elf) -> None:
        self.blob = blob
        self.elf = elf
        self.e = "<" if elf.little else ">"
        dynsym = next((s for s in elf.sections if s.type == 11), None)
        self.syms = b""
        self.strs = b""
        if dynsym is not None and dynsym.link < len(elf.sections) and dynsym.size <= 1 << 26:
            strtab = elf.sections[dynsym.link]
            if strtab.size <= 1 << 26:
                self.syms = blob.read(dynsym.offset, dynsym.size)
                self.strs = blob.read(strtab.offset, strtab.size)

    def address(self, name: str) -> int | None:
        # Linkers merge string tails ("xmlParserVersion" may live inside
        # "__xmlParserVersion"), so every place the name ends a string is a candidate.
        needle = name.encode() + b"\x00"
        starts = set()
        at = self.strs.find(needle)
        while at >= 0:
            starts.add(at)
            at = self.strs.find(needle, at + 1)
        if not starts:
            return None
        for st_name, _info, _other, shndx, value, _size in struct.iter_unpack(
            self.e + "IBBHQQ", self.syms[: len(self.syms) // 24 * 24]
        ):
            if st_name in starts and shndx != 0 and value:
                return int(value)
        return None

    def offset(self, vaddr: int) -> int | None:
        for s in self.elf.sections:
            if s.type != 8 and s.flags & 0x2 and s.addr <= vaddr < s.addr + s.size:
                return s.offset + (vaddr - s.addr)
        return None

    def code(self, vaddr: int, size: int = 48) -> tuple[bytes, int, bool] | None:
        """The function's first bytes past ``endbr64`` and a frame-pointer prologue, the
        address they start at, and whether ``pop rbp`` must precede the ``ret``."""
        off = self.offset(vaddr)
        if off is None:
            return None
        code = self.blob.read_upto(off, size)
        if code.startswith(b"\xf3\x0f\x1e\xfa"):  # endbr64
            code, vaddr = code[4:], vaddr + 4
        if code.startswith(b"\x55\x48\x89\xe5"):  # push rbp; mov rbp, rsp
            return code[4:], vaddr + 4, True
        return code, vaddr, False

    def relative_target(self, vaddr: int) -> int | None:
        packed = struct.pack(self.e + "Q", vaddr)
        for s in self.elf.sections:
            if s.type != 4 or s.size > 1 << 26:  # SHT_RELA
                continue
            table = self.blob.read(s.offset, s.size)
            at = table.find(packed)
            while at >= 0:
                if at % 24 == 0:
                    _off, info, addend = struct.unpack_from(self.e + "QQq", table, at)
                    if info & 0xFFFFFFFF == 8:  # R_X86_64_RELATIVE
                        return int(addend)
                at = table.find(packed, at + 1)
        return None

    def read16(self, vaddr: int) -> int | None:
        """The 16-bit word the file holds at a virtual address (read-only data)."""
        off = self.offset(vaddr)
        if off is None or off + 2 > self.blob.size:
            return None
        return int(struct.unpack(self.e + "H", self.blob.read(off, 2))[0])

    def returned_int(self, name: str) -> int | None:
        """The constant a function returns (``mov eax, imm32; ret``), if that is all it does."""
        addr = self.address(name)
        got = self.code(addr) if addr is not None else None
        if got is None:
            return None
        code, _pc, frame = got
        ret = b"\x5d\xc3" if frame else b"\xc3"
        if code[:1] == b"\xb8" and code[5:5 + len(ret)] == ret:
            return int(struct.unpack_from("<i", code, 1)[0])
        return None

    def read(self, vsym: VersionSymbol) -> tuple[str, str] | None:
        """The version text a symbol reports, and a description of how it was read."""
        kind = vsym.kind
        if kind == "data-int":
            values = []
            for name in vsym.symbols:
                addr = self.address(name)
                off = self.offset(addr) if addr is not None else None
                if off is None:
                    return None
                values.append(struct.unpack(self.e + "i", self.blob.read(off, 4))[0])
            if len(values) == 1:
                text = _int_version(values[0], vsym.format)
            else:
                text = ".".join(str(v) for v in values) if all(v >= 0 for v in values) else None
            return (text, f"{' '.join(vsym.symbols)} = {values}") if text else None
        name = vsym.symbols[0]
        addr = self.address(name)
        if addr is None:
            return None
        if kind == "data-str":
            off = self.offset(addr)
            text = _cstring(self.blob, off) if off is not None else None
            return (text, f"{name} = {text!r}") if text else None
        if kind == "data-ptr-str":
            target = self.relative_target(addr)
            off = self.offset(target) if target is not None else None
            text = _cstring(self.blob, off) if off is not None else None
            if text and vsym.format and text.isdigit():
                text = _int_version(int(text), vsym.format)
            return (text, f"*{name} = {text!r}") if text else None
        if kind == "ret-int" and len(vsym.symbols) > 1:
            # nettle_version_major() and nettle_version_minor(): one number each
            numbers = [self.returned_int(n) for n in vsym.symbols]
            if any(v is None or v < 0 for v in numbers):
                return None
            text = ".".join(str(v) for v in numbers)
            return text, " ".join(f"{n}() returns {v}" for n, v in
                                  zip(vsym.symbols, numbers, strict=True))
        got = self.code(addr)
        if got is None:
            return None
        code, pc, frame = got
        ret = b"\x5d\xc3" if frame else b"\xc3"  # [pop rbp;] ret
        if kind == "ret-int" and code[:1] == b"\xb8" and code[5:5 + len(ret)] == ret:
            value = struct.unpack_from("<i", code, 1)[0]
            text = _int_version(value, vsym.format)
            return (text, f"{name}() returns {value:#x}") if text else None
        if kind == "ret-str":
            # lea rax, [rip+disp32]; ret — at the start, or after a guarded store of the
            # number too (c-ares: if (version) *version = ARES_VERSION; return "1.34.9")
            at = _guarded_stores(code)
            if code[at:at + 3] != b"\x48\x8d\x05" or code[at + 7:at + 7 + len(ret)] != ret:
                return None
            disp = struct.unpack_from("<i", code, at + 3)[0]
            off = self.offset(pc + at + 7 + disp)
            text = _cstring(self.blob, off) if off is not None else None
            return (text, f"{name}() returns {text!r}") if text else None
        if kind == "ret-bytes3":
            got3 = _static_bytes3(code, pc, self.read16)
            if got3 is None:
                return None
            text = ".".join(str(b) for b in got3)
            return text, f"{name}() returns &{{{', '.join(str(b) for b in got3)}}}"
        if kind == "ret-int3":
            regs = {0x07: 0, 0x06: 1, 0x02: 2}
            parts: dict[int, int] = {}
            for i in range(3):
                insn = code[i * 6:i * 6 + 6]
                if len(insn) < 6 or insn[0] != 0xC7 or insn[1] not in regs:
                    return None
                parts[regs[insn[1]]] = struct.unpack_from("<i", insn, 2)[0]
            if code[18:18 + len(ret)] != ret or len(parts) != 3:
                return None
            text = f"{parts[0]}.{parts[1]}.{parts[2]}"
            return text, f"{name}() stores {text}"
        return None


#: ``test reg, reg`` on the first three argument registers (rdi, rsi, rdx)
_TESTS = (b"\x48\x85\xff", b"\x48\x85\xf6", b"\x48\x85\xd2")
#: ``mov dword [reg], imm32`` through them
_STORES = (b"\xc7\x07", b"\xc7\x06", b"\xc7\x02")


def _guarded_stores(code: bytes) -> int:
    """Where a function's code goes on after a run of guarded constant stores through its
    pointer arguments — ``test rdi, rdi; je over; mov dword [rdi], imm32`` — 0 when it
    does not start with one.  Only that exact shape is passed over (a jump must land just
    past its store), so what follows is the code every call reaches."""
    at = 0
    while (code[at:at + 3] in _TESTS and code[at + 3:at + 4] == b"\x74"
           and code[at + 5:at + 7] in _STORES and code[at + 4] == 6):
        at += 11  # test (3) + je +6 (2) + mov dword [reg], imm32 (6)
    return at


def _static_bytes3(code: bytes, pc: int,
                   read16: Callable[[int], int | None]) -> tuple[int, int, int] | None:
    """``ret-bytes3``: a function that fills a static 3-byte struct with constants and
    returns its address (SDL_image's ``IMG_Linked_Version``: mov eax, 0x0002 — or movzx
    eax, word [rip+c], a constant in read-only data; movb [rip+x+2], 5; mov [rip+x], ax;
    lea rax, [rip+x]; ret, in any order).  Only these instructions are followed, at most
    eight; the three bytes at the address in rax at the ``ret`` are the answer."""
    memory: dict[int, int] = {}
    eax: int | None = None
    rax_target: int | None = None
    at = 0
    for _ in range(8):
        op = code[at:at + 3]
        if code[at:at + 1] == b"\xc3" or code[at:at + 2] == b"\x5d\xc3":  # [pop rbp;] ret
            if rax_target is None:
                return None
            major, minor, patch = (memory.get(rax_target + i, -1) for i in range(3))
            return (major, minor, patch) if min(major, minor, patch) >= 0 else None
        if op == b"\x0f\xb7\x05" and len(code) >= at + 7:  # movzx eax, word [rip+d]
            eax = read16(pc + at + 7 + struct.unpack_from("<i", code, at + 3)[0])
            if eax is None:
                return None
            at += 7
        elif code[at:at + 1] == b"\xb8" and len(code) >= at + 5:       # mov eax, imm32
            eax = struct.unpack_from("<I", code, at + 1)[0]
            at += 5
        elif code[at:at + 2] == b"\x66\xb8" and len(code) >= at + 4:  # mov ax, imm16
            eax = struct.unpack_from("<H", code, at + 2)[0]
            at += 4
        elif code[at:at + 2] == b"\xc6\x05" and len(code) >= at + 7:  # movb [rip+d], imm8
            addr = pc + at + 7 + struct.unpack_from("<i", code, at + 2)[0]
            memory[addr] = code[at + 6]
            at += 7
        elif op == b"\x66\xc7\x05" and len(code) >= at + 9:  # movw [rip+d], imm16
            addr = pc + at + 9 + struct.unpack_from("<i", code, at + 3)[0]
            value = struct.unpack_from("<H", code, at + 7)[0]
            memory[addr], memory[addr + 1] = value & 0xFF, value >> 8
            at += 9
        elif op == b"\x66\x89\x05" and eax is not None and len(code) >= at + 7:  # mov [rip+d], ax
            addr = pc + at + 7 + struct.unpack_from("<i", code, at + 3)[0]
            memory[addr], memory[addr + 1] = eax & 0xFF, (eax >> 8) & 0xFF
            at += 7
        elif op == b"\x48\x8d\x05" and len(code) >= at + 7:  # lea rax, [rip+d]
            rax_target = pc + at + 7 + struct.unpack_from("<i", code, at + 3)[0]
            at += 7
        else:
            return None
    return None


def _symbol_hits(blob: Blob, elf: _Elf | None, rules: Iterable[Rule],
                 hits: dict[tuple[str, str | None, str], _Hit]) -> None:
    wanted = [r for r in rules if r.version_symbols]
    if not wanted or elf is None or elf.machine != 62 or elf.bits != 64 or not elf.little:
        return
    try:
        symbols = _Symbols(blob, elf)
    except (FormatError, struct.error):
        return
    if not symbols.syms:
        return
    for rule in wanted:
        for vsym in rule.version_symbols:
            try:
                got = symbols.read(vsym)
            except (FormatError, struct.error):
                got = None
            if got is None:
                continue
            text, detail = got
            vm = _DOTTED.search(text)
            if vm is None:
                continue
            key = (rule.project, vm.group(0), "symbol:" + vsym.symbols[0])
            if key not in hits:
                hits[key] = _Hit(rule, vm.group(0), SYMBOL_CONFIDENCE, "version-symbol", detail,
                                 key[2])


# --------------------------------------------------------------------------- vcpkg

#: A source file compiled by vcpkg: ``<vcpkg>/buildtrees/<port>/src/<ref>-<10 hex>.clean/``
#: (__FILE__ of asserts and error messages), the ref being the port's version tag.
_VCPKG = re.compile(rb"/buildtrees/([a-z0-9][a-z0-9-]{0,62})/src/v?(\d+(?:\.\d+)+)"
                    rb"-[0-9a-f]{10}\.clean/")
#: vcpkg port names that differ from the rule table's project names
_VCPKG_PORTS = {"tiff": "libtiff", "liblzma": "xz", "sqlite3": "sqlite", "lcms": "lcms2",
                "libflac": "flac", "blosc": "c-blosc", "libpq": "postgresql-libpq",
                "fftw3": "fftw", "nu-book-zxing-cpp": "zxing-cpp"}
#: a vcpkg build path names a port exactly, with the version tag its sources came from
VCPKG_CONFIDENCE = 0.85


def _vcpkg_rule(rules: RuleSet, port: str) -> Rule:
    """The rule of a vcpkg port's project, or a bare one named after the port (vcpkg's port
    names are the projects' own: protobuf, mbedtls, onnx)."""
    name = _VCPKG_PORTS.get(port, port)
    for rule in rules.rules:
        if name in (rule.project, rule.purl_name.lower()):
            return rule
    return Rule(project=name, purl_name=name, homepage="", source="", files=())


def _vcpkg_hits(data: bytes, rules: RuleSet,
                hits: dict[tuple[str, str | None, str], _Hit]) -> None:
    # Counted in C (findall, Counter): pyarrow's AWS SDK names 34,000 source paths, and a
    # match object per path was most of identifying it.  Each (port, version) is then
    # found once more, for the snippet of its first path.
    for (raw_port, raw_version), n in Counter(_VCPKG.findall(data)).items():
        port, version = raw_port.decode(), raw_version.decode()
        key = (_VCPKG_PORTS.get(port, port), version, "vcpkg")
        hit = hits.get(key)
        if hit is not None:
            hit.count += n
            continue
        needle = b"/buildtrees/" + raw_port + b"/src/"
        at = data.find(needle)
        m = None
        while at >= 0 and m is None:
            m = _VCPKG.match(data, at)
            if m is not None and m.groups() != (raw_port, raw_version):
                m = None
            at = data.find(needle, at + 1)
        snippet = _snippet(data, max(0, m.start() - 24), m.end()) if m else ""
        hits[key] = _Hit(_vcpkg_rule(rules, port), version, VCPKG_CONFIDENCE, "build-path",
                         snippet, "vcpkg", n)


# --------------------------------------------------------------------------- exports


def _gnu_hash(name: bytes) -> int:
    """The hash of ``.gnu.hash`` tables (dl-lookup.c ``dl_new_hash``)."""
    h = 5381
    for c in name:
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


#: SHT_GNU_HASH
_GNU_HASH = 0x6FFFFFF6
#: the longest hash chain walked (real chains hold a few entries)
_MAX_CHAIN = 4096


class _Exports:
    """Whether an ELF file *defines* a dynamic symbol, looked up as ld.so looks it up: in
    its ``.gnu.hash`` table (bloom filter, bucket, chain).  Only defined symbols are hashed
    there, so a file that merely imports a name never matches; a few small reads per name,
    whatever the size of the symbol table."""

    def __init__(self, blob: Blob, elf: _Elf) -> None:
        self.blob = blob
        self.e = "<" if elf.little else ">"
        self.wide = elf.bits == 64
        self.ok = False
        table = next((s for s in elf.sections if s.type == _GNU_HASH and s.size >= 16), None)
        dynsym = next((s for s in elf.sections if s.type == 11), None)
        if table is None or dynsym is None or dynsym.link >= len(elf.sections):
            return
        self.dynsym = dynsym.offset
        self.dynstr = elf.sections[dynsym.link]
        nbuckets, self.symoffset, nbloom, self.shift = struct.unpack(
            self.e + "IIII", blob.read(table.offset, 16))
        word = 8 if self.wide else 4
        if not (0 < nbuckets <= 1 << 24 and 0 < nbloom <= 1 << 24):
            return
        at = table.offset + 16
        if at + nbloom * word + nbuckets * 4 > blob.size:
            return
        # As machine words (array, not a struct call per lookup: ~70 names are asked of
        # every file, most answered by the bloom filter alone)
        self.bloom = array("Q" if self.wide else "I", blob.read(at, nbloom * word))
        self.buckets = array("I", blob.read(at + nbloom * word, nbuckets * 4))
        if elf.little != (sys.byteorder == "little"):
            self.bloom.byteswap()
            self.buckets.byteswap()
        self.nbloom = nbloom
        self.nbuckets = nbuckets
        self.chains = at + nbloom * word + nbuckets * 4
        self.ok = True

    def defines(self, name: bytes, h: int) -> bool:
        if not self.ok:
            return False
        e, bits = self.e, (64 if self.wide else 32)
        word = self.bloom[h // bits % self.nbloom]
        if not (word >> (h % bits)) & 1 or not (word >> ((h >> self.shift) % bits)) & 1:
            return False
        index = self.buckets[h % self.nbuckets]
        if index < self.symoffset or index == 0:
            return False
        for _ in range(_MAX_CHAIN):
            at = self.chains + (index - self.symoffset) * 4
            if at + 4 > self.blob.size:
                return False
            h2, = struct.unpack(e + "I", self.blob.read(at, 4))
            if h | 1 == h2 | 1 and self._named(index, name):
                return True
            if h2 & 1:
                return False
            index += 1
        return False

    def _named(self, index: int, name: bytes) -> bool:
        size = 24 if self.wide else 16
        at = self.dynsym + index * size
        if at + size > self.blob.size:
            return False
        raw = self.blob.read(at, size)
        if self.wide:
            st_name, _info, _other, shndx, _value, _size = struct.unpack(self.e + "IBBHQQ", raw)
        else:
            st_name, _value, _size, _info, _other, shndx = struct.unpack(self.e + "IIIBBH", raw)
        if shndx == 0 or st_name >= self.dynstr.size:
            return False
        at = self.dynstr.offset + st_name
        got = self.blob.read_upto(at, len(name) + 1) if at < self.blob.size else b""
        return got == name + b"\x00"


def _exported(blob: Blob, elf: _Elf, prepared: _Prepared) -> list[tuple[Rule, str]]:
    """The rules whose own version function or variable this file defines: the project's
    code is in it (statically linked, and exported)."""
    try:
        exports = _Exports(blob, elf)
        return [(rule, name.decode()) for name, h, rule in prepared.exports
                if exports.defines(name, h)]
    except (FormatError, struct.error):
        return []


# --------------------------------------------------------------------------- components


def _purl(rule: Rule, version: str | None) -> str:
    return str(PackageURL(type="generic", name=rule.purl_name, version=version))


#: Below this confidence a pattern (a bare version string) must be unambiguous: when it reads
#: two versions in one file (a library with others linked in), none of them is kept.
WEAK = 0.6


def _unambiguous(hits: Iterable[_Hit]) -> list[_Hit]:
    hits = list(hits)
    versions: dict[tuple[str, str], set[str | None]] = {}
    for h in hits:
        if h.confidence < WEAK:
            versions.setdefault((h.rule.project, h.source), set()).add(h.version)
    return [h for h in hits
            if h.confidence >= WEAK or len(versions[(h.rule.project, h.source)]) == 1]


def _components(hits: Iterable[_Hit], named: Iterable[Rule], file_name: str) -> list[Component]:
    hits = _unambiguous(hits)
    by_project: dict[str, list[_Hit]] = {}
    rules: dict[str, Rule] = {}
    for hit in hits:
        by_project.setdefault(hit.rule.project, []).append(hit)
        rules[hit.rule.project] = hit.rule
    named_projects = set()
    for rule in named:
        by_project.setdefault(rule.project, [])
        rules[rule.project] = rule
        named_projects.add(rule.project)
    dropped = {p for r in rules.values() if r.project in by_project for p in r.supersedes}
    base = dehash(file_name)
    out = []
    for project, phits in by_project.items():
        if project in dropped:
            continue
        rule = rules[project]
        versioned = [h for h in phits if h.version is not None]
        # best: most confident, then most often seen, then first seen
        versioned.sort(key=lambda h: (-h.confidence, -h.count))
        version = versioned[0].version if versioned else None
        if version is not None:
            # one source more precise than another (abseil's "absl12lts_20250814" names the
            # LTS, its vcpkg build path "20250814.0" the release): the same version, spelled
            # out further
            best = version
            version = max((v for h in versioned if (v := h.version) is not None
                           and (v == best or v.startswith(best + "."))), key=len)
        conflicts = tuple(sorted(
            {v for h in versioned if (v := h.version) and v != version
             and not (version or "").startswith(v + ".")}))
        evidence = [
            Evidence(h.method, h.detail, h.confidence, "version" if h.version else "name")
            for h in sorted(phits, key=lambda h: (-h.confidence, -h.count))
        ]
        if project in named_projects:
            evidence.append(Evidence("filename", base, FILENAME_CONFIDENCE, "name"))
        out.append(Component(
            name=project,
            version=version,
            purl=_purl(rule, version),
            cpes=(cpe,) if (cpe := rule.cpe_for(version)) else (),
            evidence=tuple(evidence),
            homepage=rule.homepage,
            source=rule.source,
            conflicts=conflicts,
        ))
    out.sort(key=lambda c: c.name)
    return out


def identify_bytes(blob: Blob, file_name: str, soname: str | None = None,
                   rules: RuleSet | None = None, *, embedded: bool = True,
                   limits: ScanLimits = ScanLimits()) -> list[Component]:
    """Identify the upstream projects in one binary: the one its name says it is (from
    banners, version symbols or, failing those, the name alone) and, unless ``embedded`` is
    false, the statically linked copies the rules' ``embedded`` patterns find in any file.

    ``file_name`` is the member's base name as shipped (hashes are stripped here);
    ``soname`` its DT_SONAME when known.  The result is sorted by project name.
    """
    rules = default_rules() if rules is None else rules
    prepared = _prepare(rules)
    indices = _named(prepared, file_name, soname)
    named = [rules.rules[i] for i in indices]
    if not named and not embedded:
        return []
    compiled = _compiled(prepared, indices, embedded)
    hits: dict[tuple[str, str | None, str], _Hit] = {}
    elf, regions = _layout(blob, limits)
    for data in _chunks(blob, regions, limits):
        _match_chunk(data, compiled, hits, limits, keywords=prepared.keywords)
        if embedded and b"/buildtrees/" in data:
            _vcpkg_hits(data, rules, hits)
    named_literals = tuple((r, p) for r, p in compiled.literals if p.names)
    if elf is not None and named_literals:
        names = [(o, min(n, limits.max_bytes)) for o, n in _elf_names(elf)]
        only_names = _Compiled(windowed=(), literals=named_literals)
        for data in _chunks(blob, names, limits):
            _match_chunk(data, only_names, hits, limits, windowed=False,
                         keywords=prepared.keywords)
    named_projects = {r.project for r in named}
    if any(h.rule.project not in named_projects for h in hits.values()):
        # A file that loads a library dynamically carries that library's header version
        # strings (GDAL compares "LIBTIFF, Version 4.5.0" with TIFFGetVersion()): such a
        # match is a mention, not an embedded copy.
        linked = {rules.rules[i].project for n in _linked(blob, elf)
                  for i in _named(prepared, n, None)}
        linked -= named_projects
        hits = {k: h for k, h in hits.items() if h.rule.project not in linked}
    # The file's own project, and a project found embedded without a version (a presence
    # pattern: xmlsec carries libxml2 and libxslt): their version functions and variables,
    # when the file exports them, give the version.
    unversioned = {h.rule.project: h.rule for h in hits.values()
                   if h.rule.project not in named_projects} if hits else {}
    for h in hits.values():
        if h.version is not None:
            unversioned.pop(h.rule.project, None)
    # A project whose version function the file defines is in it, banner or not (zstd's
    # ZSTD_versionNumber in a CFFI module, lz4's in an extension built from its sources).
    exported = _exported(blob, elf, prepared) if embedded and elf is not None else []
    for rule, _name in exported:
        if rule.project not in named_projects:
            unversioned.setdefault(rule.project, rule)
    asked = [*named, *unversioned.values()]
    if asked:
        _symbol_hits(blob, elf, asked, hits)
    for rule, name in exported:
        if not any(h.rule.project == rule.project for h in hits.values()):
            # defined, but not in a shape whose version can be read: the name stands
            hits[(rule.project, None, "export:" + name)] = _Hit(
                rule, None, EXPORT_CONFIDENCE, "exported-symbol",
                f"defines {name}, the project's own version function", "export:" + name)
    return _components(hits.values(), named, file_name)
