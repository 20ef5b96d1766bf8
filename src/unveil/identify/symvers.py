"""The GCC runtime libraries (libstdc++, libgcc_s, libgfortran, libquadmath, libgomp,
libatomic, libitm): which GCC release a vendored copy belongs to.

They carry no version banner.  Two kinds of evidence are read instead:

* **Build information** that names a GCC release outright, searched over the whole file (these
  libraries are small): the compiler ident GCC writes into every object (``.comment`` in ELF,
  ``.rdata`` in MinGW DLLs: ``GCC: (Alpine 14.2.0) 14.2.0``), Red Hat's annobin note
  (``running gcc 8.5.0 20210514``), a source path inside a ``gcc-X.Y.Z`` tree (assertion
  file names, Mach-O debug-map paths: ``.../gcc-13.4.0/build/.../libgfortran/...``) and an
  rpm debuginfo link (``libgomp.so.1.0.0-8.5.0-28.el8_10.alma.1.x86_64.debug``: the ``gcc``
  package version).  A GCC runtime library is compiled in GCC's own build tree by the
  compiler just built, so the GCC that compiled it is the release it belongs to.
* **Symbol-version nodes** it defines (ELF ``DT_VERDEF``): ``GLIBCXX_3.4.30`` first shipped in
  GCC 12.1, so a libstdc++ defining it was built from GCC 12.1 or later.  That is a *lower
  bound*, not a version: it goes into the evidence (method ``symbol-version``) and is never
  written as the component's version.  The release of each node is data
  (``unveil/data/symbol-versions.json``, with its sources).

The bound also checks the build information: a compiler ident older than the bound means the
sources are newer than the compiler that built them (RHEL 8's gcc 8.5.0 ships a libgomp with
GCC 9's ``GOMP_5.0``): no version is given then, and the disagreement is recorded.  Absent
nodes prove nothing (some exist on some targets only), so there is no upper bound.

A bound is compared with a version through its *floor*, the lowest version string a build
that has the node can carry: since GCC 5 a branch snapshot between N.1.0 and N.2.0 calls
itself N.1.1, so a node first released in N.2.0 may be in an N.1.1 build, and one first
released in N.1.0 in an N.0.x development build; before GCC 5 a branch was renumbered to its
next release right after each one.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import Any

from packageurl import PackageURL

from unveil._data import read_text
from unveil.errors import UnveilError
from unveil.formats.blob import Blob
from unveil.formats.elfsections import elf_sections
from unveil.identify.banners import FILENAME_CONFIDENCE, dehash
from unveil.model import Binary, Component, Evidence

__all__ = [
    "Bound",
    "Claim",
    "Runtime",
    "SymbolVersionTable",
    "TableError",
    "build_claims",
    "default_table",
    "identify_runtime",
    "load_table",
    "lower_bound",
    "merge_runtime",
    "parse_table",
    "runtime_for",
]

#: A node name: a family (``GLIBCXX``, ``GOMP_PLUGIN``, ``GFORTRAN_C99``) and a number.
_NODE = re.compile(r"(?P<family>[A-Z][A-Z0-9_]*?)_(?P<number>\d+(?:\.\d+)*)")
_RELEASE = re.compile(r"\d+\.\d+\.\d+")

#: Files up to this size are searched whole for build information (the GCC runtimes are a
#: few MB; an unstripped libstdc++ about 20 MB).
MAX_SEARCH = 64 * 1024 * 1024
_CHUNK = 8 * 1024 * 1024
_OVERLAP = 512

BOUND_CONFIDENCE = 0.6
NAME_CONFIDENCE = 0.8


class TableError(UnveilError):
    """The symbol-version table is malformed or inconsistent."""


def _tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _short(release: str) -> str:
    """``12.1.0`` -> ``12.1``; ``4.8.3`` stays."""
    return release[:-2] if release.endswith(".0") and release.count(".") == 2 else release


def floor(release: str) -> tuple[int, ...]:
    """The lowest GCC version string a build carrying a node first released in ``release``
    may have (see the module docstring)."""
    major, minor, patch = _tuple(release)
    if major < 5:
        return (major, minor, patch)
    return (major, 0, 0) if minor <= 1 else (major, minor - 1, 1)


@dataclass(frozen=True, slots=True)
class Runtime:
    """One GCC runtime library: how its files are named and the release of each node."""

    project: str
    files: tuple[str, ...]
    sonames: tuple[str, ...]
    source_dir: str
    nodes: Mapping[str, str]
    sources: tuple[str, ...] = ()

    def family_max(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Per family, the highest listed node number and its node name."""
        out: dict[str, tuple[tuple[int, ...], str]] = {}
        for node in self.nodes:
            m = _NODE.fullmatch(node)
            if m is None:
                continue
            number = _tuple(m.group("number"))
            fam = m.group("family")
            if fam not in out or number > out[fam][0]:
                out[fam] = (number, node)
        return out


@dataclass(frozen=True, slots=True)
class SymbolVersionTable:
    purl_name: str
    cpe: str
    homepage: str
    source: str
    runtimes: tuple[Runtime, ...]


def parse_table(doc: Any) -> SymbolVersionTable:
    """Validate a decoded table: releases are X.Y.Z, node names parse, and within a family a
    higher node number never maps to an earlier release."""
    if not isinstance(doc, dict) or doc.get("schema") != 1:
        raise TableError("the table must be an object with schema 1")
    comp = doc.get("component")
    if not isinstance(comp, dict) or not all(isinstance(comp.get(k), str) for k in (
            "purl_name", "cpe", "homepage", "source")):
        raise TableError("component needs purl_name, cpe, homepage and source")
    runtimes = []
    seen: set[str] = set()
    for item in doc.get("runtimes") or []:
        if not isinstance(item, dict):
            raise TableError("a runtime must be an object")
        project = item.get("project")
        nodes = item.get("nodes")
        if not isinstance(project, str) or not isinstance(nodes, dict):
            raise TableError("a runtime needs project and nodes")
        if project in seen:
            raise TableError(f"{project}: listed twice")
        seen.add(project)
        families: dict[str, list[tuple[tuple[int, ...], tuple[int, ...], str]]] = {}
        for node, release in nodes.items():
            if not isinstance(release, str) or not _RELEASE.fullmatch(release):
                raise TableError(f"{project}: {node}: release {release!r} is not X.Y.Z")
            m = _NODE.fullmatch(node)
            if m is None:
                raise TableError(f"{project}: {node!r} is not a FAMILY_number node name")
            families.setdefault(m.group("family"), []).append(
                (_tuple(m.group("number")), _tuple(release), node))
        for fam, entries in families.items():
            entries.sort()
            for (_, r1, n1), (_, r2, n2) in pairwise(entries):
                if r2 < r1:
                    raise TableError(f"{project}: {fam}: {n2} is listed before {n1}'s release")
        for key in ("files", "sonames", "sources"):
            if not all(isinstance(x, str) for x in item.get(key) or []):
                raise TableError(f"{project}: {key} must be strings")
        if not item.get("files") or not isinstance(item.get("source_dir"), str):
            raise TableError(f"{project}: files and source_dir are required")
        runtimes.append(Runtime(project, tuple(item["files"]), tuple(item.get("sonames") or ()),
                                item["source_dir"], dict(nodes), tuple(item.get("sources") or ())))
    if not runtimes:
        raise TableError("no runtimes")
    return SymbolVersionTable(comp["purl_name"], comp["cpe"], comp["homepage"], comp["source"],
                              tuple(runtimes))


def load_table(text: str | bytes) -> SymbolVersionTable:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise TableError(f"the table is not JSON: {e}") from e
    return parse_table(doc)


@cache
def default_table() -> SymbolVersionTable:
    """The table shipped with unveil (loaded and validated once)."""
    text = read_text("symbol-versions.json")
    return load_table(text)


# --------------------------------------------------------------------------- which runtime


def runtime_for(table: SymbolVersionTable, file_name: str,
                soname: str | None = None) -> Runtime | None:
    """The runtime a file is, by its de-hashed name or SONAME (auditwheel renames both)."""
    names = {dehash(posixpath.basename(file_name)).lower()}
    if soname:
        names.add(dehash(soname).lower())
    for rt in table.runtimes:
        if names & {s.lower() for s in rt.sonames}:
            return rt
        if any(fnmatch.fnmatchcase(n, g.lower()) for n in names for g in rt.files):
            return rt
    return None


# --------------------------------------------------------------------------- lower bound


@dataclass(frozen=True, slots=True)
class Bound:
    """The newest listed node a library defines, and the GCC release that first shipped it.

    ``beyond`` are nodes it defines that are numbered above the newest listed node of their
    family (a GCC newer than the table): the bound holds, the truth is higher still."""

    node: str
    release: str
    beyond: tuple[str, ...] = ()

    @property
    def floor(self) -> tuple[int, ...]:
        return floor(self.release)

    def text(self) -> str:
        s = f"defines {self.node} (GCC \u2265 {_short(self.release)}): lower bound"
        if self.beyond:
            s += f"; also {', '.join(self.beyond[:3])}, newer than the table"
        return s


def _own_nodes(rt: Runtime, defs: Iterable[str]) -> list[str]:
    fams = rt.family_max()
    out = []
    for d in defs:
        m = _NODE.fullmatch(d)
        if d in rt.nodes or (m is not None and m.group("family") in fams):
            out.append(d)
    return out


def lower_bound(rt: Runtime, defs: Iterable[str]) -> Bound | None:
    """The bound the defined nodes give, or None when none of them is the runtime's."""
    fams = rt.family_max()
    best: tuple[tuple[int, ...], str] | None = None
    beyond: list[str] = []
    for d in defs:
        node = d
        if d not in rt.nodes:
            m = _NODE.fullmatch(d)
            if m is None or m.group("family") not in fams:
                continue
            top, top_node = fams[m.group("family")]
            if _tuple(m.group("number")) <= top:
                continue  # a gap in the table (or a target-specific node): no claim
            beyond.append(d)
            node = top_node
        rel = _tuple(rt.nodes[node])
        if best is None or rel > best[0]:
            best = (rel, node)
    if best is None:
        return None
    return Bound(best[1], rt.nodes[best[1]], tuple(beyond))


# --------------------------------------------------------------------------- build information


@dataclass(frozen=True, slots=True)
class Claim:
    """A GCC release named by build information in the file: ``seen`` says what and where."""

    version: str
    kind: str
    seen: str
    confidence: float


_IDENT = re.compile(rb"GCC: \((?:[^()\x00\n]|\([^()\x00\n]*\)){0,120}\) (\d+\.\d+\.\d+)"
                    rb"[^\x00\n]{0,80}")
_ANNOBIN = re.compile(rb"running gcc (\d+\.\d+\.\d+)[^\x00\n]{0,40}")
_DIRS = rb"(?:libstdc\+\+-v3|libgcc|libgfortran|libquadmath|libgomp|libatomic|libitm)"
_TREE = re.compile(rb"/gcc-(\d+\.\d+\.\d+)/(?:[^/\x00\n]{1,64}/){0,3}?" + _DIRS + rb"/"
                   rb"[^\x00\n]{0,60}")
# No look-behind before "lib": it would turn off the regex engine's literal-prefix search
# (0.08 s per MiB instead of 1 ms); the character before the match is checked by hand.
_DEBUGLINK = re.compile(rb"(lib[\w+]+\.(?:so|dylib)[.\d]*)-(\d+\.\d+\.\d+)-"
                        rb"([\w.+~]{1,40}?)\.(?:x86_64|aarch64|ppc64le|ppc64|s390x|i686|armv7hl|"
                        rb"riscv64|loongarch64)\.debug\x00")

_NAME_BYTES = frozenset(bytes([c]) for c in
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-")

#: How far each kind of build information is trusted.
_KINDS = {
    "ident": 0.8,
    "annobin": 0.8,
    "source-tree": 0.85,
    "rpm-debuginfo": 0.85,
}
_BELONGS = {
    "ident": "a GCC runtime library is compiled by the GCC release it belongs to",
    "annobin": "a GCC runtime library is compiled by the GCC release it belongs to",
    "source-tree": "the release whose sources it was compiled from",
    "rpm-debuginfo": "the gcc package version is the GCC release",
}


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").strip()


def _regions(blob: Blob) -> list[tuple[int, int]]:
    """Where build information can be: an ELF file's sections other than code (``.comment``,
    notes, read-only data, debug strings, ``.gnu_debuglink``), else the whole file."""
    table = elf_sections(blob)
    if table is None or not table.sections:
        return [(0, blob.size)]
    out: list[tuple[int, int]] = []
    for s in sorted(table.sections, key=lambda s: s.offset):
        if s.type in (0, 8) or s.flags & 0x4 or not s.size:  # NULL, NOBITS, SHF_EXECINSTR
            continue
        start, end = s.offset, min(s.offset + s.size, blob.size)
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        elif start < end:
            out.append((start, end))
    # Sections that all lie outside the file (a damaged table): search the whole file.
    return [(a, b - a) for a, b in out] or [(0, blob.size)]


def _chunks(blob: Blob) -> Iterator[bytes]:
    for off, size in _regions(blob):
        pos, end = off, off + size
        while pos < end:
            n = min(_CHUNK + _OVERLAP, end - pos)
            yield blob.read(pos, n)
            pos += _CHUNK


def build_claims(blob: Blob, rt: Runtime) -> list[Claim]:
    """The GCC releases the file's build information names, one claim per (kind, release)."""
    if blob.size > MAX_SEARCH:
        return []
    found: dict[tuple[str, str], Claim] = {}

    def add(kind: str, version: str, seen: str) -> None:
        if (kind, version) not in found:
            found[(kind, version)] = Claim(version, kind, seen, _KINDS[kind])

    for data in _chunks(blob):
        for m in _IDENT.finditer(data):
            add("ident", m.group(1).decode(), f"compiler ident '{_text(m.group(0))}'")
        for m in _ANNOBIN.finditer(data):
            add("annobin", m.group(1).decode(), f"annobin note '{_text(m.group(0))}'")
        for m in _TREE.finditer(data):
            add("source-tree", m.group(1).decode(),
                f"compiled in the gcc-{m.group(1).decode()} source tree "
                f"('{_text(m.group(0))[:100]}')")
        for m in _DEBUGLINK.finditer(data):
            if m.start() and data[m.start() - 1:m.start()] in _NAME_BYTES:
                continue  # inside a longer name
            name = m.group(1).decode().lower()
            if not any(fnmatch.fnmatchcase(name, g.lower()) for g in rt.files):
                continue
            v, rel = m.group(2).decode(), m.group(3).decode()
            add("rpm-debuginfo", v, f"debuginfo link '{_text(m.group(0)[:-1])}' of rpm "
                f"package gcc {v}-{rel}")
    return list(found.values())


# --------------------------------------------------------------------------- the component


def _purl(table: SymbolVersionTable, version: str | None) -> str:
    return str(PackageURL(type="generic", name=table.purl_name, version=version))


def identify_runtime(blob: Blob, file_name: str, binary: Binary,
                     table: SymbolVersionTable | None = None) -> Component | None:
    """The GCC runtime a file is, with the GCC release when its build information names one
    the symbol-version nodes do not contradict; ``None`` for any other file.

    May raise :class:`~unveil.errors.FormatError` for unreadable bytes."""
    table = default_table() if table is None else table
    rt = runtime_for(table, file_name, binary.soname)
    if rt is None:
        return None
    evidence = [Evidence("filename", dehash(posixpath.basename(file_name)), FILENAME_CONFIDENCE,
                         "name")]
    own = _own_nodes(rt, binary.version_defs)
    if own:
        shown = ", ".join(own[:3]) + (", \u2026" if len(own) > 3 else "")
        evidence.append(Evidence("symbol-version", f"defines {len(own)} {rt.project} "
                                 f"symbol-version nodes ({shown})", NAME_CONFIDENCE, "name"))
    bound = lower_bound(rt, binary.version_defs)
    claims = build_claims(blob, rt)
    fits = [c for c in claims if bound is None or _tuple(c.version) >= bound.floor]
    older = [c for c in claims if c not in fits]
    versions = sorted({c.version for c in fits}, key=_tuple)
    version = versions[0] if len(versions) == 1 else None
    conflicts: list[str] = []
    if len(versions) > 1:
        conflicts.append("build information names GCC " + ", ".join(versions))
    for c in sorted(fits, key=lambda c: -c.confidence):
        evidence.append(Evidence("build-info", f"{c.seen}: GCC {c.version}, "
                                 f"{_BELONGS[c.kind]}", c.confidence, "version"))
    if bound is not None:
        evidence.append(Evidence("symbol-version", bound.text(), BOUND_CONFIDENCE, "version"))
    for c in older:
        evidence.append(Evidence("build-info", f"{c.seen}: GCC {c.version}, older than the "
                                 f"symbol-version bound", c.confidence / 2, "version"))
    if older and not fits and bound is not None:
        gcc = ", ".join(sorted({c.version for c in older}, key=_tuple))
        conflicts.append(f"build information says GCC {gcc} but it defines {bound.node} "
                         f"(GCC \u2265 {_short(bound.release)}): sources newer than the "
                         f"compiler that built them (a vendor backport)")
    cpe = table.cpe.replace("{version}", version) if version else None
    return Component(rt.project, version, _purl(table, version), (cpe,) if cpe else (),
                     tuple(evidence), table.homepage, table.source, tuple(conflicts))


def merge_runtime(base: Component, extra: Component) -> Component:
    """Add what :func:`identify_runtime` found to the component the banner rules gave for the
    same file (same project): its version when the rules had none, and its evidence."""
    conflicts = list(base.conflicts)
    if base.version and extra.version and base.version != extra.version:
        conflicts.append(f"build information says GCC {extra.version}")
    conflicts += [c for c in extra.conflicts if c not in conflicts]
    take = base.version is None and extra.version is not None
    have = {(e.method, e.detail) for e in base.evidence}
    return Component(
        name=base.name,
        version=base.version or extra.version,
        purl=extra.purl if take else base.purl or extra.purl,
        cpes=extra.cpes if take else base.cpes or extra.cpes,
        evidence=(*base.evidence,
                  *(e for e in extra.evidence if (e.method, e.detail) not in have)),
        homepage=base.homepage or extra.homepage,
        source=base.source or extra.source,
        conflicts=tuple(conflicts),
    )
