"""SBOMs shipped inside packages, read as identification evidence.

Where they are found, for every ``*.dist-info`` directory of the site-packages given:

* ``<dist-info>/sboms/**`` (PEP 770), where auditwheel (>= 6.5) writes ``auditwheel.cdx.json``
  and projects such as Pillow and cryptography put their own;
* files listed in the distribution's ``RECORD`` whose names say SBOM (``*.cdx.json``,
  ``*.cyclonedx.json``, ``*.spdx.json``, ``bom.json``, ``sbom.json``, ``*.sbom.json``),
  wherever the project put them.

CycloneDX JSON (1.2 to 1.7) and SPDX 2.x JSON are read; anything else, and anything
malformed, oversized, too deep or of the wrong types, becomes a problem string, never an
exception.  What is kept of each component is what can tie it to a file: name, version,
purl, CPE, SHA-256 hashes and the file names and paths it mentions (CycloneDX
``evidence.occurrences``, file-like ``properties``, components that are files; SPDX files a
package ``CONTAINS``).

An SBOM is evidence, never an inventory: auditwheel records only the libraries that the build
image's package manager owns (often one of eighteen vendored), and a project SBOM describes
what the project chose to list.  Absence from an SBOM proves nothing.

:func:`match_sbom` ties one binary to the components that describe it, strongest first: the
file's SHA-256 (0.99), its path or file name (0.9; 0.85 for the de-hashed name or the soname),
a Python extension module's dotted name (0.9), the de-hashed library name against the
component name (0.7; auditwheel's RPM ``libXau`` for ``libXau-154567c4.so.6.0.0``, 0.65 by the
project the library file name maps to, 0.6 by a name prefix: RPM ``libxcb`` for
``libxcb-shm``), and a component already identified in the binary (a banner) that the SBOM
also records (0.8: e.g. OpenSSL statically linked into cryptography's ``_rust.abi3.so``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from packageurl import PackageURL

from unveil.errors import UnveilError
from unveil.identify.banners import dehash
from unveil.identify.depurl import depurl_for, project_for_filename
from unveil.model import Component, Evidence
from unveil.sources.fs import FileSystem, Kind

__all__ = [
    "MAX_SBOM_BYTES",
    "DistSbomReader",
    "SHA256_CONFIDENCE",
    "FILE_CONFIDENCE",
    "NAME_CONFIDENCE",
    "SbomComponent",
    "ShippedSbom",
    "match_sbom",
    "parse_sbom",
    "read_dist_sboms",
    "read_sboms",
    "same_project",
    "sbom_covers",
]

#: Documents larger than this are skipped (with a problem); real ones are under 100 KB.
MAX_SBOM_BYTES = 16 * 1024 * 1024
#: Component nesting (CycloneDX ``components[].components``) followed at most this deep.
MAX_DEPTH = 32
#: Components kept per document; the rest are dropped with a problem.
MAX_COMPONENTS = 20_000
#: SBOM files read per distribution.
MAX_FILES = 64
#: File names/paths kept per component.
MAX_PATHS = 256
#: Longest string kept from a document (a name, a path, a purl).
MAX_STRING = 4096
#: Longest name compared by name (a file name has at most 255 bytes; this also bounds the
#: cost of the regular expressions below on hostile names).
_MAX_NAME = 255

SHA256_CONFIDENCE = 0.99
FILE_CONFIDENCE = 0.9
DEHASHED_FILE_CONFIDENCE = 0.85
IDENTIFIED_CONFIDENCE = 0.8
NAME_CONFIDENCE = 0.7
PROJECT_CONFIDENCE = 0.65
PREFIX_CONFIDENCE = 0.6

_SBOM_NAME = re.compile(
    r"(?i)(?:\.cdx\.json|\.cyclonedx\.json|\.spdx\.json|\.sbom\.json|^s?bom\.json)$")
_JSON = re.compile(r"\.json", re.IGNORECASE)
_DIST_INFO = re.compile(r"^(?P<name>.+?)(?:-(?P<version>[^-]+))?\.dist-info$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_FILE_LIKE = re.compile(
    r"(?i)^[^\s]*(?:/[^\s/]+|\.so(?:\.[0-9A-Za-z]+)*|\.dylib|\.dll|\.pyd|\.exe|\.a|\.lib)$")
_FILE_PROPERTY = re.compile(r"(?i)path|file|soname|location|occurrence")
#: A Python extension module's file name: named after its module, not a library.
_EXTENSION = re.compile(
    r"(?i)\.(?:cpython-[^.]*|abi3|cp\d+-[^.]*|pypy[^.]*)\.(?:so|pyd|dylib)$|\.pyd$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")
_ALTERNATIVES = re.compile(r"\s*(?:/|,|\||\bor\b)\s*")
#: Distro subpackage suffixes: ``openssl-libs`` is OpenSSL, ``openblas-threads`` OpenBLAS.
_SUBPACKAGE = re.compile(
    r"(?:-(?:libs|lib|devel|dev|threads|pthreads|openmp|serial|shared|runtime|common|bin))+$")
#: purl types of language package managers: their names are packages (Rust crates, Python
#: distributions...), not the C libraries a file name names (the ``openssl`` crate is not
#: OpenSSL), so they never match by name.
_LANGUAGE_PURLS = frozenset({
    "cargo", "pypi", "npm", "gem", "golang", "maven", "nuget", "composer", "hex", "pub",
    "swift", "cocoapods", "hackage", "cran", "conan-recipe", "luarocks", "cpan",
})
#: Library-name cores that differ from the project's (after ``lib`` and digits are removed).
_CORE_ALIASES = {"bz": "bzip", "z": "zlib", "lzma": "xz", "ssl": "openssl",
                 "crypto": "openssl", "jpeg": "libjpeg", "turbojpeg": "libjpeg"}


@dataclass(frozen=True, slots=True)
class SbomComponent:
    """One component of a shipped SBOM, reduced to what ties it to a file.

    ``files`` are the file names and paths the document mentions for it; ``subject`` marks the
    component the document describes (CycloneDX ``metadata.component``, SPDX ``DESCRIBES``):
    usually the distribution itself, which says nothing about who a vendored file is.
    """

    name: str
    version: str | None = None
    purl: str | None = None
    cpes: tuple[str, ...] = ()
    sha256: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    ref: str | None = None
    type: str | None = None
    scope: str | None = None
    subject: bool = False


@dataclass(frozen=True, slots=True)
class ShippedSbom:
    """One SBOM document found in a package.

    ``path`` is the path in the target's tree, ``shown`` the same relative to its
    site-packages (``pillow-13.0.0.dist-info/sboms/auditwheel.cdx.json``), used in evidence.
    ``format`` is ``"cyclonedx"`` or ``"spdx"``; ``distribution`` the dist-info's name.
    """

    path: str
    shown: str
    format: str
    spec_version: str | None
    distribution: str | None
    site_packages: str
    tools: tuple[str, ...] = ()
    components: tuple[SbomComponent, ...] = ()


# --------------------------------------------------------------------------- reading


#: Reads one distribution's SBOMs (:func:`read_dist_sboms`, or a memo of it).
DistSbomReader = Callable[[FileSystem, str], tuple[list[ShippedSbom], list[str]]]


def read_sboms(fs: FileSystem, site_packages: list[str], *,
               read: DistSbomReader | None = None) -> tuple[list[ShippedSbom], list[str]]:
    """Every SBOM shipped by the distributions in ``site_packages``, and the problems met
    (an SBOM file that two distributions' RECORDs list is counted once)."""
    read = read or read_dist_sboms
    sboms: list[ShippedSbom] = []
    problems: list[str] = []
    seen: set[str] = set()
    for site in site_packages:
        try:
            names = sorted(n for n, k in fs.listdir(site).items()
                           if k in (Kind.DIR, Kind.SYMLINK) and n.endswith(".dist-info"))
        except (UnveilError, OSError) as e:
            problems.append(f"{site}: cannot list: {e}")
            continue
        for name in names:
            found, why = read(fs, f"{site.rstrip('/')}/{name}")
            sboms.extend(sb for sb in found if sb.path not in seen)
            seen.update(sb.path for sb in found)
            # An SBOM two RECORDs list is read for each: say what is wrong with it once.
            problems.extend(w for w in why if w not in problems)
    return sboms, problems


def read_dist_sboms(fs: FileSystem, dist_info_dir: str) -> tuple[list[ShippedSbom], list[str]]:
    """The SBOMs one distribution ships (its ``sboms/`` directory and SBOM files its RECORD
    lists), and the problems met."""
    seen: set[str] = set()
    site, dirname = posixpath.split(dist_info_dir.rstrip("/"))
    m = _DIST_INFO.match(dirname)
    dist = m.group("name") if m else None
    problems: list[str] = []
    paths: list[str] = []
    try:
        real_dir = fs.resolve(dist_info_dir) or dist_info_dir
        if fs.kind(f"{real_dir}/sboms") is Kind.DIR:
            real_sboms = fs.resolve(f"{real_dir}/sboms") or f"{real_dir}/sboms"
            for p in fs.walk_files(real_sboms):
                paths.append(p)
                if len(paths) > MAX_FILES:
                    break
        paths.extend(_recorded_sboms(fs, real_dir, site, problems))
    except (UnveilError, OSError, RecursionError) as e:
        problems.append(f"{dist_info_dir}: cannot look for SBOMs: {e}")
    out: list[ShippedSbom] = []
    for p in paths[:MAX_FILES]:
        if p in seen:
            continue
        seen.add(p)
        shown = p[len(site) + 1:] if p.startswith(site + "/") else p
        data, why = _read(fs, p)
        if data is None:
            problems.append(f"{shown}: {why}")
            continue
        sbom, why_list = parse_sbom(data, path=p, shown=shown, distribution=dist, site=site)
        problems.extend(f"{shown}: {w}" for w in why_list)
        if sbom is not None:
            out.append(sbom)
    if len(paths) > MAX_FILES:
        problems.append(f"{dist_info_dir}: more than {MAX_FILES} SBOM files; the rest skipped")
    return out, problems


def _recorded_sboms(fs: FileSystem, dist_info: str, site: str,
                    problems: list[str]) -> Iterator[str]:
    """SBOM-named files a distribution's RECORD lists outside ``sboms/``."""
    record = f"{dist_info}/RECORD"
    if fs.kind(record) is not Kind.FILE:
        return
    data, why = _read(fs, record)
    if data is None:
        problems.append(f"{record}: {why}")
        return
    text = data.decode("utf-8", "replace")
    rows: Iterable[str] = io.StringIO(text)
    if '"' not in text and text.count("\r") == text.count("\r\n"):
        # No quoted fields and no bare carriage returns: each line is a row, and only rows
        # naming a ".json" file (every SBOM name does) need the csv reader; a large
        # distribution's RECORD has tens of thousands of rows.
        rows = _json_rows(text)
    try:
        for row in csv.reader(rows):
            if not row or not row[0] or "/sboms/" in f"/{row[0]}":
                continue
            if not _SBOM_NAME.search(posixpath.basename(row[0])):
                continue
            full = posixpath.normpath(posixpath.join(site, row[0]))
            real = fs.resolve(full)
            if real is not None and fs.kind(real) is Kind.FILE:
                yield real
    except csv.Error as e:
        problems.append(f"{record}: unreadable RECORD: {e}")


def _json_rows(text: str) -> list[str]:
    """The lines of ``text`` that mention ``.json`` (any case), found from each occurrence:
    a regex anchored at every line start walked each of torch's 15,000 RECORD lines (29 ms
    for an environment's RECORDs).  Lines end at ``\\n``; a ``\\r`` inside one
    (a CR-only file) is looked for within that line only, so the work stays linear."""
    rows: list[str] = []
    end = 0
    for m in _JSON.finditer(text):
        at = m.start()
        if at < end:
            continue  # a second mention on a line already taken
        line_start = text.rfind("\n", 0, at) + 1
        line_end = text.find("\n", at)
        if line_end < 0:
            line_end = len(text)
        start = text.rfind("\r", line_start, at) + 1 or line_start
        cr = text.find("\r", at, line_end)
        end = cr if cr >= 0 else line_end
        rows.append(text[start:end])
    return rows


def _read(fs: FileSystem, path: str) -> tuple[bytes | None, str]:
    if fs.size_hint(path) > MAX_SBOM_BYTES:
        return None, f"larger than {MAX_SBOM_BYTES} bytes: skipped"
    try:
        blob = fs.open_blob(path)
    except (UnveilError, OSError, ValueError) as e:
        return None, f"unreadable: {e}"
    try:
        if blob.size > MAX_SBOM_BYTES:
            return None, f"larger than {MAX_SBOM_BYTES} bytes: skipped"
        return blob.read(0, blob.size), ""
    except (UnveilError, OSError, ValueError) as e:
        return None, f"unreadable: {e}"
    finally:
        blob.close()


def parse_sbom(data: bytes, *, path: str = "", shown: str | None = None,
               distribution: str | None = None,
               site: str = "") -> tuple[ShippedSbom | None, list[str]]:
    """Parse one SBOM document (CycloneDX or SPDX 2.x JSON); never raises for bad input."""
    problems: list[str] = []
    if len(data) > MAX_SBOM_BYTES:
        return None, [f"larger than {MAX_SBOM_BYTES} bytes: skipped"]
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError) as e:
        return None, [f"not a JSON SBOM: {str(e)[:200]}"]
    if not isinstance(doc, dict):
        return None, ["not a JSON SBOM: the document is not an object"]
    try:
        if doc.get("bomFormat") == "CycloneDX" or (
                "specVersion" in doc and "components" in doc and "spdxVersion" not in doc):
            fmt = "cyclonedx"
            spec, tools, comps = _cyclonedx(doc, problems)
        elif isinstance(doc.get("spdxVersion"), str) and doc["spdxVersion"].startswith("SPDX-2"):
            fmt = "spdx"
            spec, tools, comps = _spdx(doc, problems)
        elif "@context" in doc or isinstance(doc.get("spdxVersion"), str):
            return None, ["unsupported SBOM format (only CycloneDX JSON and SPDX 2.x JSON)"]
        else:
            return None, ["not a CycloneDX or SPDX 2.x JSON document"]
    except RecursionError:
        return None, ["document nested too deeply"]
    return ShippedSbom(path, shown if shown is not None else path, fmt, spec, distribution,
                       site, tuple(tools), tuple(comps)), problems


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        s = value.strip()
        if s and len(s) <= MAX_STRING:
            return s
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _sha256(alg: Any, content: Any) -> str | None:
    a = _str(alg)
    c = _str(content)
    if a is None or c is None:
        return None
    if a.upper().replace("-", "").replace("_", "") != "SHA256" or not _SHA256.match(c):
        return None
    return c.lower()


def _purl_with_version(ref: str, version: str | None) -> str | None:
    """A bom-ref that is a purl (Pillow writes ``pkg:generic/freetype2``), with the version."""
    try:
        p = PackageURL.from_string(ref)
    except ValueError:
        return None
    if p.version is None and version is not None:
        try:
            p = PackageURL(p.type, p.namespace, p.name, version, p.qualifiers or None, p.subpath)
        except ValueError:
            return None
    return str(p.to_string())


def _tool_name(t: dict[str, Any]) -> str | None:
    name = _str(t.get("name"))
    if name is None:
        return None
    version = _str(t.get("version"))
    return f"{name} {version}" if version else name


def _cyclonedx(doc: dict[str, Any],
               problems: list[str]) -> tuple[str | None, list[str], list[SbomComponent]]:
    spec = _str(doc.get("specVersion"))
    meta = _dict(doc.get("metadata"))
    tools: list[str] = []
    raw_tools = meta.get("tools")
    if isinstance(raw_tools, dict):  # 1.5+: {"components": [...], "services": [...]}
        raw_tools = _list(raw_tools.get("components")) + _list(raw_tools.get("services"))
    for t in _list(raw_tools):
        name = _tool_name(_dict(t))
        if name:
            tools.append(name)
    out: list[SbomComponent] = []
    stack: list[tuple[Any, int, bool]] = []
    if isinstance(meta.get("component"), dict):
        stack.append((meta["component"], 0, True))
    stack.extend((c, 0, False) for c in reversed(_list(doc.get("components"))))
    dropped = deep = 0
    while stack:
        raw, depth, subject = stack.pop()
        if not isinstance(raw, dict):
            continue
        if len(out) >= MAX_COMPONENTS:
            dropped += 1
            continue
        c = _cdx_component(raw, subject)
        if c is not None:
            out.append(c)
        children = _list(raw.get("components"))
        if children:
            if depth + 1 > MAX_DEPTH:
                deep += 1
                continue
            stack.extend((x, depth + 1, subject) for x in reversed(children))
    if dropped:
        problems.append(f"more than {MAX_COMPONENTS} components: {dropped} skipped")
    if deep:
        problems.append(f"components nested deeper than {MAX_DEPTH}: skipped")
    return spec, tools, out


def _cdx_component(c: dict[str, Any], subject: bool) -> SbomComponent | None:
    name = _str(c.get("name"))
    if name is None:
        return None
    version = _str(c.get("version"))
    ref = _str(c.get("bom-ref"))
    purl = _str(c.get("purl"))
    if purl is None and ref is not None and ref.startswith("pkg:"):
        purl = _purl_with_version(ref, version)
    cpe = _str(c.get("cpe"))
    hashes: list[str] = []
    for h in _list(c.get("hashes")):
        h = _dict(h)
        digest = _sha256(h.get("alg"), h.get("content"))
        if digest and digest not in hashes:
            hashes.append(digest)
    files: list[str] = []
    evidence = _dict(c.get("evidence"))
    for occ in _list(evidence.get("occurrences")):
        loc = _str(_dict(occ).get("location"))
        if loc:
            files.append(loc)
    for prop in _list(c.get("properties")):
        prop = _dict(prop)
        pname = _str(prop.get("name")) or ""
        value = _str(prop.get("value"))
        if value and _FILE_PROPERTY.search(pname):
            files.append(value)
    kind = _str(c.get("type"))
    if kind == "file" or (len(name) <= _MAX_NAME and _FILE_LIKE.match(name)):
        files.append(name)
    return SbomComponent(name, version, purl, (cpe,) if cpe else (), tuple(hashes),
                         tuple(dict.fromkeys(files))[:MAX_PATHS], ref, kind,
                         _str(c.get("scope")), subject)


def _spdx(doc: dict[str, Any],
          problems: list[str]) -> tuple[str | None, list[str], list[SbomComponent]]:
    spec = _str(doc.get("spdxVersion"))
    creation = _dict(doc.get("creationInfo"))
    tools = [t.split(":", 1)[1].strip() for t in map(_str, _list(creation.get("creators")))
             if t and t.startswith("Tool:")]
    files: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    for f in _list(doc.get("files"))[:MAX_COMPONENTS * 4]:
        f = _dict(f)
        fid = _str(f.get("SPDXID"))
        if fid is None:
            continue
        digests = tuple(d for d in (_sha256(_dict(ck).get("algorithm"),
                                            _dict(ck).get("checksumValue"))
                                    for ck in _list(f.get("checksums"))) if d)
        files[fid] = (_str(f.get("fileName")), digests)
    packages: dict[str, dict[str, Any]] = {}
    for p in _list(doc.get("packages")):
        p = _dict(p)
        pid = _str(p.get("SPDXID"))
        if pid is not None and _str(p.get("name")) is not None:
            packages.setdefault(pid, p)
    contains: dict[str, list[str]] = {}
    #: packages built from another package of the document (GENERATES): not a project of
    #: their own (vcpkg's "<port>:<triplet>" binary package, versioned by its ABI hash)
    generated: set[str] = set()
    described: set[str] = {d for d in map(_str, _list(doc.get("documentDescribes"))) if d}
    for pid, p in packages.items():
        for fid in map(_str, _list(p.get("hasFiles"))):
            if fid:
                contains.setdefault(pid, []).append(fid)
    for rel in _list(doc.get("relationships")):
        rel = _dict(rel)
        a, kind, b = (_str(rel.get("spdxElementId")), _str(rel.get("relationshipType")),
                      _str(rel.get("relatedSpdxElement")))
        if a is None or b is None or kind is None:
            continue
        if kind == "CONTAINS":
            contains.setdefault(a, []).append(b)
        elif kind == "CONTAINED_BY":
            contains.setdefault(b, []).append(a)
        elif kind == "GENERATES" and a in packages:
            generated.add(b)
        elif kind == "GENERATED_FROM" and b in packages:
            generated.add(a)
        elif kind == "DESCRIBES":
            described.add(b)
        elif kind == "DESCRIBED_BY":
            described.add(a)
    # vcpkg writes one document per port: the port (versioned "<version>#<port revision>"),
    # the binary package it generates, and the source archives it downloaded
    # ("SPDXRef-resource-N", named after their repositories): only the port is a project.
    vcpkg = any(t.startswith("vcpkg") for t in tools)
    out: list[SbomComponent] = []
    for pid, p in packages.items():
        if len(out) >= MAX_COMPONENTS:
            problems.append(f"more than {MAX_COMPONENTS} packages: the rest skipped")
            break
        if pid in generated or (vcpkg and pid.startswith("SPDXRef-resource")):
            continue
        name = _str(p.get("name"))
        assert name is not None
        version = _str(p.get("versionInfo"))
        if vcpkg and version and "#" in version:
            version = version.split("#", 1)[0]
        purl: str | None = None
        cpes: list[str] = []
        for ref in _list(p.get("externalRefs")):
            ref = _dict(ref)
            rtype = (_str(ref.get("referenceType")) or "").lower()
            loc = _str(ref.get("referenceLocator"))
            if loc is None:
                continue
            if rtype == "purl" and purl is None:
                purl = loc
            elif rtype.startswith("cpe"):
                cpes.append(loc)
        hashes = [d for d in (_sha256(_dict(ck).get("algorithm"), _dict(ck).get("checksumValue"))
                              for ck in _list(p.get("checksums"))) if d]
        paths: list[str] = []
        pkg_file = _str(p.get("packageFileName"))
        if pkg_file:
            paths.append(pkg_file)
        for fid in contains.get(pid, [])[:MAX_PATHS * 16]:
            entry = files.get(fid)
            if entry is None:
                continue
            fname, digests = entry
            if fname:
                paths.append(fname)
            hashes.extend(digests)
        out.append(SbomComponent(name, version, purl, tuple(dict.fromkeys(cpes)),
                                 tuple(dict.fromkeys(hashes)),
                                 tuple(dict.fromkeys(paths))[:MAX_PATHS], pid, "package",
                                 None, pid in described))
    return spec, tools, out


# --------------------------------------------------------------------------- matching


def _norm_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _clean_path(p: str) -> str:
    p = p.replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p.lstrip("/")


def _alnum(s: str) -> str:
    return re.sub(r"[^a-z0-9+]", "", s.lower())


def _core(s: str) -> str:
    n = _alnum(s)
    if n.startswith("lib") and len(n) > 3:
        n = n[3:]
    n = n.rstrip("0123456789") or n
    return _CORE_ALIASES.get(n, n)


@lru_cache(maxsize=4096)
def _depurl(name: str) -> str | None:
    """The DepURL of a name, or ``None`` when it is empty or only an interface/compiler."""
    try:
        url = depurl_for(name).url
    except ValueError:
        return None
    return None if url.startswith("dep:virtual/") else url


def _lib_stem(file_name: str) -> str:
    """``libpng16-1d1ba958.so.16.58.0`` -> ``libpng16``; ``_imaging.cpython-311-...so`` ->
    ``_imaging``."""
    base = dehash(file_name)
    return base.split(".", 1)[0].lower()


@dataclass(frozen=True, slots=True)
class _LibNames:
    stems: tuple[str, ...]
    alnum: frozenset[str]
    cores: frozenset[str]
    projects: frozenset[str]


@lru_cache(maxsize=4096)
def _lib_names(names: tuple[str, ...]) -> _LibNames:
    stems = tuple(dict.fromkeys(s for s in (_lib_stem(n) for n in names) if s))
    projects: set[str] = set()
    for n in names:
        for candidate in (dehash(n), _lib_stem(n) + ".so"):
            if project_for_filename(candidate) is not None:
                url = _depurl(candidate)
                if url:
                    projects.add(url)
    return _LibNames(stems, frozenset(_alnum(s) for s in stems),
                     frozenset(_core(s) for s in stems), frozenset(projects))


@dataclass(frozen=True, slots=True)
class _CompNames:
    variants: tuple[str, ...]
    alnum: frozenset[str]
    cores: frozenset[str]
    projects: frozenset[str]


@lru_cache(maxsize=8192)
def _comp_names(name: str, purl: str | None, ref: str | None) -> _CompNames:
    if len(name) > _MAX_NAME:
        return _CompNames((), frozenset(), frozenset(), frozenset())
    raw = [name, *_ALTERNATIVES.split(name)]
    for text in (purl, ref):
        if text and text.startswith("pkg:"):
            with contextlib.suppress(ValueError):
                raw.append(PackageURL.from_string(text).name)
    variants: list[str] = []
    for r in raw:
        r = r.strip().lower()
        if not r or len(r) > _MAX_NAME:
            continue
        variants.append(r)
        bare = _SUBPACKAGE.sub("", r)
        if bare and bare != r:
            variants.append(bare)
    variants = list(dict.fromkeys(variants))
    projects: set[str] = set()
    for v in variants:
        for candidate in (v, v.replace(" ", "-"), _alnum(v), _alnum(v).rstrip("0123456789")):
            if candidate:
                url = _depurl(candidate)
                if url:
                    projects.add(url)
    return _CompNames(tuple(variants), frozenset(_alnum(v) for v in variants if _alnum(v)),
                      frozenset(_core(v) for v in variants if _alnum(v)), frozenset(projects))


def _purl_type(purl: str | None) -> str | None:
    if not purl or not purl.startswith("pkg:"):
        return None
    return purl[4:].split("/", 1)[0].lower()


def _identifies(c: SbomComponent) -> bool:
    """Whether a component names a project (a bare file entry only says a file is there)."""
    return not (c.type == "file" and not c.purl and not c.cpes and not c.version)


def _name_score(lib: _LibNames, c: SbomComponent) -> float:
    if c.subject or c.scope == "excluded" or not _identifies(c):
        return 0.0
    if _purl_type(c.purl) in _LANGUAGE_PURLS:
        return 0.0
    names = _comp_names(c.name, c.purl, c.ref)
    if lib.alnum & names.alnum or lib.cores & names.cores:
        return NAME_CONFIDENCE
    if lib.projects & names.projects:
        return PROJECT_CONFIDENCE
    for stem in lib.stems:
        for v in names.variants:
            if len(v) >= 4 and " " not in v and stem.startswith((v + "-", v + "_")):
                return PREFIX_CONFIDENCE
    return 0.0


def _module_name(rel: str) -> str | None:
    """``PIL/_imaging.cpython-311-x86_64-linux-gnu.so`` -> ``PIL._imaging``."""
    rel = _clean_path(rel)
    if not rel:
        return None
    d, base = posixpath.split(rel)
    stem = base.split(".", 1)[0]
    if not stem:
        return None
    return ".".join([*(x for x in d.split("/") if x), stem])


def _file_score(c: SbomComponent, paths: Sequence[str], bases: frozenset[str],
                dehashed: frozenset[str], modules: frozenset[str]) -> float:
    best = 0.0
    for f in c.files:
        f = _clean_path(f)
        if not f:
            continue
        for p in paths:
            if p == f or p.endswith("/" + f) or f.endswith("/" + p):
                return FILE_CONFIDENCE
        base = posixpath.basename(f)
        if base in bases:
            return FILE_CONFIDENCE
        if base in dehashed or dehash(base) in dehashed:
            best = DEHASHED_FILE_CONFIDENCE
    if not c.subject and _MODULE.match(c.name) and c.name in modules:
        return FILE_CONFIDENCE
    return best


def same_project(a: Component, b: Component) -> bool:
    """Whether two components name one project, however each source spells it: an SBOM's
    ``FreeType``, ``Little CMS 2`` or ``libjpeg / libjpeg-turbo`` and the rules' ``freetype``,
    ``lcms2`` and ``libjpeg-turbo`` (the same letters and digits, or one DepURL of the PEP 804
    registry)."""
    if a.name == b.name:
        return True
    x, y = _comp_names(a.name, a.purl, None), _comp_names(b.name, b.purl, None)
    return bool(x.alnum & y.alnum or x.projects & y.projects)


def _same_project(ident: Component, c: SbomComponent) -> bool:
    if c.subject or c.scope == "excluded" or not _identifies(c):
        return False
    if _purl_type(c.purl) in _LANGUAGE_PURLS:
        return False
    names = _comp_names(c.name, c.purl, c.ref)
    mine = _comp_names(ident.name, ident.purl, None)
    return bool(mine.alnum & names.alnum or mine.projects & names.projects)


@dataclass(slots=True)
class _Hit:
    sbom: ShippedSbom
    comp: SbomComponent
    confidence: float
    version_confidence: float


def _hits(binary_path: str, member_name: str, sha256: str | None, *, soname: str | None,
          sboms: Iterable[ShippedSbom], distribution: str | None,
          identified: Sequence[Component], coverage: bool) -> list[_Hit]:
    digest = sha256.lower() if sha256 else None
    raw_names = [n for n in (posixpath.basename(member_name.replace("\\", "/")),
                             posixpath.basename(binary_path), soname)
                 if n and len(n) <= _MAX_NAME]
    bases = frozenset(raw_names[:2])
    dehashed = frozenset(dehash(n) for n in raw_names) | frozenset(
        [soname] if soname else [])
    # An extension module (``PIL/_webp...so``) is named after its module: matching its name
    # against libraries (libwebp) would be wrong.  Worked out when a component is first
    # matched by name: most binaries of an environment have no SBOM of their distribution.
    lib_key = tuple(n for n in raw_names if not _EXTENSION.search(n))
    lib: _LibNames | None = None
    want = _norm_dist(distribution) if distribution else None
    hits: list[_Hit] = []
    for sbom in sboms:
        if want is not None and sbom.distribution is not None \
                and _norm_dist(sbom.distribution) != want:
            continue
        paths = [_clean_path(member_name)]
        site = sbom.site_packages.rstrip("/")
        if site and binary_path.startswith(site + "/"):
            paths.append(binary_path[len(site) + 1:])
        paths.append(_clean_path(binary_path))
        paths = [p for p in dict.fromkeys(paths) if p]
        modules = frozenset(m for m in (_module_name(p) for p in paths[:2]) if m)
        name_hits: list[_Hit] = []
        for c in sbom.components:
            if digest is not None and digest in c.sha256 and (coverage or not c.subject):
                hits.append(_Hit(sbom, c, SHA256_CONFIDENCE, SHA256_CONFIDENCE))
                continue
            score = _file_score(c, paths, bases, dehashed, modules)
            if score and (coverage or (not c.subject and _identifies(c))):
                hits.append(_Hit(sbom, c, score, score))
                continue
            if lib is None:
                lib = _lib_names(lib_key)
            score = _name_score(lib, c)
            if score:
                name_hits.append(_Hit(sbom, c, score, score))
                continue
            for ident in identified:
                if _same_project(ident, c):
                    same = ident.version is None or c.version is None or \
                        ident.version == c.version
                    hits.append(_Hit(sbom, c, IDENTIFIED_CONFIDENCE,
                                     IDENTIFIED_CONFIDENCE if same else 0.4))
                    break
        if name_hits:  # only the best way of matching by name: libxau over libxcb-*
            top = max(h.confidence for h in name_hits)
            hits.extend(h for h in name_hits if h.confidence == top)
    hits.sort(key=lambda h: -h.confidence)
    return hits


def _detail(h: _Hit) -> str:
    c = h.comp
    return f"{h.sbom.shown}: {c.name}@{c.version}" if c.version else f"{h.sbom.shown}: {c.name}"


def match_sbom(binary_path: str, member_name: str, sha256: str | None, soname: str | None,
               sboms: Sequence[ShippedSbom], *, distribution: str | None = None,
               identified: Sequence[Component] = ()) -> list[Component]:
    """The SBOM components that describe one binary, strongest first.

    ``binary_path`` is the file's path in the target tree (the loader path), ``member_name``
    its path as the package records it (the wheel member, or the path relative to
    site-packages), ``sha256`` its digest when known, ``soname`` its DT_SONAME.  With
    ``distribution``, only that distribution's SBOMs are used (a vendored library is described
    by the SBOM of the wheel it came in).  ``identified`` are components already found in the
    file (banners): one the SBOM also records is confirmed (0.8).

    Each component carries ``Evidence("sbom", "<sbom>: <name>@<version>", confidence)`` for its
    name and version; the same project listed twice (auditwheel repeats an RPM once per
    library) is merged.  Never complete: no match means nothing.
    """
    out: dict[tuple[str, str | None, str | None], Component] = {}
    for h in _hits(binary_path, member_name, sha256, soname=soname, sboms=sboms,
                   distribution=distribution, identified=identified, coverage=False):
        c = h.comp
        detail = _detail(h)
        ev = [Evidence("sbom", detail, h.confidence, "name")]
        if c.version:
            ev.append(Evidence("sbom", detail, h.version_confidence, "version"))
        key = (c.name.lower(), c.version, c.purl)
        prev = out.get(key)
        if prev is None:
            out[key] = Component(c.name, c.version, c.purl, c.cpes, tuple(ev))
        else:
            extra = tuple(e for e in ev if e not in prev.evidence)
            out[key] = Component(prev.name, prev.version, prev.purl,
                                 tuple(dict.fromkeys(prev.cpes + c.cpes)),
                                 prev.evidence + extra)
    return sorted(out.values(), key=lambda comp: -max(e.confidence for e in comp.evidence))


def sbom_covers(binary_path: str, member_name: str, sha256: str | None, soname: str | None,
                sboms: Sequence[ShippedSbom], *, distribution: str | None = None,
                identified: Sequence[Component] = ()) -> Evidence | None:
    """Whether a (vendored) library is recorded in a shipped SBOM: the strongest record as
    evidence, else ``None``.  A bare file entry (hash or path, no project named) counts: the
    file is recorded, even if the SBOM does not say who it is."""
    hits = _hits(binary_path, member_name, sha256, soname=soname, sboms=sboms,
                 distribution=distribution, identified=identified, coverage=True)
    if not hits:
        return None
    h = hits[0]
    return Evidence("sbom", _detail(h), h.confidence, "name")
