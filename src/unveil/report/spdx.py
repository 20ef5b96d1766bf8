"""SPDX 2.3 JSON, built with ``spdx-tools``' model and JSON writer and validated with its
validator in the tests.

Elements:

* one package per distribution (``pkg:pypi`` purl), or per target for binaries no
  distribution owns, which the document ``DESCRIBES``;
* one file per binary in it, which the package ``CONTAINS``;
* one package per identified library (purl and CPE external references), which ``CONTAINS``
  the file it was identified in, and which the file ``STATIC_LINK``\\ s when the library is
  embedded in another binary (``ScannedBinary.components[1:]``);
* one package per library resolved outside the package, and per library not found (download
  location ``NOASSERTION``, a comment saying why);
* ``DYNAMIC_LINK`` from each file to what it loads (``dlopen`` ones say so in the comment),
  ``STATIC_LINK`` for statically linked dependencies.

SPDX 2.3 makes SHA-1 mandatory for a file and derives a package's verification code from the
SHA-1 of its files, while a scan records SHA-256 only.  So files are written when the caller
passes their SHA-1 (:func:`read_sha1` reads them again): then the package has
``filesAnalyzed: true`` and a verification code.  Without SHA-1 for every binary of a
package, the package has ``filesAnalyzed: false`` and its binaries become packages of
purpose ``FILE`` (with their SHA-256 when known), so the link graph is kept either way.  The
listed files are the binaries the scan found, not every file of the distribution; the package
comment says so.
"""

from __future__ import annotations

import functools
import hashlib
import io
import posixpath
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from spdx_tools.spdx.model.actor import Actor, ActorType
from spdx_tools.spdx.model.checksum import Checksum, ChecksumAlgorithm
from spdx_tools.spdx.model.document import CreationInfo, Document
from spdx_tools.spdx.model.file import File, FileType
from spdx_tools.spdx.model.package import (
    ExternalPackageRef,
    ExternalPackageRefCategory,
    Package,
    PackagePurpose,
    PackageVerificationCode,
)
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
from spdx_tools.spdx.validation.external_package_ref_validator import (
    validate_external_package_ref,
)
from spdx_tools.spdx.validation.uri_validators import validate_url
from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

from unveil.errors import UnveilError
from unveil.identify.vendoring import vendoring_tool
from unveil.model import (
    Component,
    Edge,
    EdgeClass,
    LinkKind,
    Outcome,
    ScannedBinary,
    ScanResult,
    TargetResult,
)
from unveil.report.purls import distribution_purl
from unveil.sources.zipread import ZipArchive

__all__ = ["SPDX_VERSION", "read_sha1", "to_spdx", "verification_code"]

SPDX_VERSION = "SPDX-2.3"
DOCUMENT_ID = "SPDXRef-DOCUMENT"
_ID_CHARS = re.compile(r"[^A-Za-z0-9.]+")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAMESPACE = "https://unveil.invalid/spdx/"


def verification_code(sha1s: Iterable[str]) -> str:
    """The SPDX package verification code: SHA-1 of the sorted, concatenated SHA-1 values
    of the package's files (SPDX 2.3 clause 7.9)."""
    return hashlib.sha1("".join(sorted(s.lower() for s in sha1s)).encode("ascii"),
                        usedforsecurity=False).hexdigest()


def read_sha1(result: ScanResult) -> dict[str, str]:
    """SHA-1 of every scanned binary, keyed by ``str(location)``, read again from the wheel
    or the disk.  A file that cannot be read, or whose SHA-256 no longer matches the scan's,
    is left out (its package is then written with ``filesAnalyzed: false``)."""
    out: dict[str, str] = {}
    by_container: dict[str | None, list[ScannedBinary]] = {}
    for t in result.targets:
        for b in t.binaries:
            by_container.setdefault(b.location.container, []).append(b)
    for container, binaries in by_container.items():
        if container is None:
            for b in binaries:
                try:
                    with open(b.location.path, "rb") as f:
                        _digest_into(out, b, iter(functools.partial(f.read, _PIECE), b""))
                except OSError:
                    continue
            continue
        # unveil's own zip reader, as the scan read the wheel: member names decoded the same
        # way (zipfile refuses a name flagged UTF-8 that is not), its bounds checks.
        try:
            archive = ZipArchive(container)
        except UnveilError:
            continue
        try:
            members = {m.name: m for m in archive.members}  # the last of a name, as scanned
            for b in binaries:
                member = members.get(b.location.path)
                if member is None:
                    continue
                try:
                    blob = archive.blob(member)
                    try:
                        _digest_into(out, b, blob.pieces(_PIECE))
                    finally:
                        blob.close()
                except UnveilError:
                    continue
        finally:
            archive.close()
    return out


def _digest_into(out: dict[str, str], b: ScannedBinary, pieces: Iterable[bytes]) -> None:
    sha1 = hashlib.sha1(usedforsecurity=False)
    sha256 = hashlib.sha256()
    for chunk in pieces:
        sha1.update(chunk)
        sha256.update(chunk)
    if b.sha256 is None or b.sha256 == sha256.hexdigest():
        out[str(b.location)] = sha1.hexdigest()


_PIECE = 1 << 20


class _Ids:
    """SPDX identifiers: ``SPDXRef-`` plus letters, digits, ``.`` and ``-``; unique."""

    def __init__(self) -> None:
        self.used: set[str] = {DOCUMENT_ID}

    def new(self, kind: str, text: str) -> str:
        tail = _ID_CHARS.sub("-", text).strip("-")[:96] or "x"
        base = f"SPDXRef-{kind}-{tail}"
        sid, n = base, 2
        while sid in self.used:
            sid, n = f"{base}-{n}", n + 1
        self.used.add(sid)
        return sid


def _refs(sid: str, purl: str | None, cpes: Iterable[str]) -> list[ExternalPackageRef]:
    refs = []
    if purl:
        refs.append(ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl))
    for cpe in cpes:
        kind = "cpe23Type" if cpe.startswith("cpe:2.3:") else "cpe22Type"
        refs.append(ExternalPackageRef(ExternalPackageRefCategory.SECURITY, kind, cpe))
    # A malformed identifier from a rule table must not make the whole document invalid.
    return [r for r in refs if not validate_external_package_ref(r, sid, SPDX_VERSION)]


def _evidence_text(c: Component) -> str:
    parts = [f"{e.field} by {e.method} ({e.confidence:.2f}): {e.detail[:200]}"
             for e in c.evidence]
    if c.conflicts:
        parts.append("conflicting claims: " + ", ".join(c.conflicts))
    return "; ".join(parts)


def _file_name(b: ScannedBinary, t: TargetResult) -> str:
    path = b.location.path
    if b.location.container is None:
        root = t.target.rstrip("/")
        if path.startswith(root + "/"):
            path = path[len(root) + 1:]
    return "./" + posixpath.normpath(path).lstrip("/")


def _binary_comment(b: ScannedBinary) -> str:
    parts = [f"role: {b.role.value}"]
    if b.binary.soname:
        parts.append(f"soname: {b.binary.soname}")
    if b.binary.build_id:
        parts.append(f"build-id: {b.binary.build_id}")
    tool = vendoring_tool(b.location.path)
    if tool:
        parts.append(f"vendored by {tool}")
    parts.append(f"location: {b.location}")
    return "; ".join(parts)


def _external_comment(e: Edge) -> str:
    r = e.resolution
    note = e.note
    if r.outcome is Outcome.FOUND:
        text = f"resolved outside the package to {r.path} ({e.edge_class.value})"
    elif e.edge_class is EdgeClass.OTHER_DISTRIBUTION:
        text = (f"not found: {r.request} is expected from the distribution {e.provider}, "
                "which is not present")
        note = None  # the scan's note says just that
    else:
        text = f"not found: no file provides {r.request} ({e.edge_class.value})"
    if r.fatal:
        text += f"; the loader would stop: {r.fatal}"
    if note:
        text += f"; {note}"
    if e.component is not None and e.component.evidence:
        text += "; identified: " + _evidence_text(e.component)
    return text


@dataclass
class _Builder:
    sha1: Mapping[str, str]
    ids: _Ids = field(default_factory=_Ids)
    packages: list[Package] = field(default_factory=list)
    files: list[File] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)
    seen: set[tuple[str, RelationshipType, str]] = field(default_factory=set)
    components: dict[tuple[str, str | None, str | None], Package] = field(default_factory=dict)
    external: dict[tuple[str, ...], str] = field(default_factory=dict)
    file_sha1: dict[str, str] = field(default_factory=dict)
    contains: dict[str, list[str]] = field(default_factory=dict)

    def relate(self, a: str, kind: RelationshipType, b: str, comment: str | None = None) -> None:
        if (a, kind, b) in self.seen or a == b:
            return
        self.seen.add((a, kind, b))
        self.relationships.append(Relationship(a, kind, b, comment=comment))
        if kind is RelationshipType.CONTAINS:
            self.contains.setdefault(a, []).append(b)

    def component(self, c: Component) -> str:
        key = (c.name, c.version, c.purl)
        if key not in self.components:
            sid = self.ids.new("Package", f"{c.name}-{c.version or ''}")
            homepage = c.homepage if c.homepage and not validate_url(c.homepage) else None
            comment = _evidence_text(c) or None
            self.components[key] = Package(
                spdx_id=sid, name=c.name, download_location=SpdxNoAssertion(),
                version=c.version, files_analyzed=False, homepage=homepage,
                source_info=f"upstream source: {c.source}" if c.source else None,
                comment=f"identified: {comment}" if comment else None,
                external_references=_refs(sid, c.purl, c.cpes),
                primary_package_purpose=PackagePurpose.LIBRARY)
            self.packages.append(self.components[key])
        return self.components[key].spdx_id

    def external_package(self, e: Edge) -> str:
        r = e.resolution
        if r.outcome is Outcome.FOUND:
            key: tuple[str, ...] = ("found", r.path or r.request)
        else:
            key = ("missing", e.edge_class.value, r.request)
        if key not in self.external:
            c = e.component
            name = c.name if c else r.request.rsplit("/", 1)[-1]
            sid = self.ids.new("Package", f"{'' if r.outcome is Outcome.FOUND else 'missing-'}"
                                          f"{name}")
            self.packages.append(Package(
                spdx_id=sid, name=name, download_location=SpdxNoAssertion(),
                version=c.version if c else None, files_analyzed=False,
                comment=_external_comment(e),
                external_references=_refs(sid, c.purl, c.cpes) if c else [],
                primary_package_purpose=PackagePurpose.LIBRARY))
            self.external[key] = sid
        return self.external[key]

    def top(self, name: str, version: str | None, purl: str | None, comment: str) -> Package:
        sid = self.ids.new("Package", f"{name}-{version or ''}")
        pkg = Package(spdx_id=sid, name=name, download_location=SpdxNoAssertion(),
                      version=version, files_analyzed=False, comment=comment,
                      external_references=_refs(sid, purl, ()),
                      primary_package_purpose=PackagePurpose.LIBRARY)
        self.packages.append(pkg)
        self.relate(DOCUMENT_ID, RelationshipType.DESCRIBES, sid)
        return pkg

    def binary(self, b: ScannedBinary, t: TargetResult, as_file: bool) -> str:
        name = _file_name(b, t)
        sha256 = (Checksum(ChecksumAlgorithm.SHA256, b.sha256)
                  if b.sha256 and _HEX64.match(b.sha256) else None)
        if as_file:
            sid = self.ids.new("File", name.removeprefix("./"))
            sha1 = self.sha1[str(b.location)]
            checks = [Checksum(ChecksumAlgorithm.SHA1, sha1)] + ([sha256] if sha256 else [])
            self.files.append(File(name=name, spdx_id=sid, checksums=checks,
                                   file_types=[FileType.BINARY], comment=_binary_comment(b)))
            self.file_sha1[sid] = sha1
            return sid
        sid = self.ids.new("Package", name.removeprefix("./"))
        self.packages.append(Package(
            spdx_id=sid, name=name.removeprefix("./"), download_location=SpdxNoAssertion(),
            file_name=name, files_analyzed=False, checksums=[sha256] if sha256 else [],
            comment=_binary_comment(b), primary_package_purpose=PackagePurpose.FILE))
        return sid

    def finish(self) -> None:
        """Set ``filesAnalyzed`` and the verification code of packages that contain files."""
        for pkg in self.packages:
            sha1s = [self.file_sha1[x] for x in self.contains.get(pkg.spdx_id, ())
                     if x in self.file_sha1]
            if sha1s:
                pkg.files_analyzed = True
                pkg.verification_code = PackageVerificationCode(verification_code(sha1s))
                note = "files listed: the binaries unveil scanned, not every file"
                pkg.comment = f"{pkg.comment}; {note}" if pkg.comment else note


def _link_type(e: Edge) -> RelationshipType:
    return RelationshipType.STATIC_LINK if e.link is LinkKind.STATIC else \
        RelationshipType.DYNAMIC_LINK


def to_spdx(result: ScanResult, version: str, *, sha1: Mapping[str, str] | None = None,
            created: datetime | None = None, namespace: str | None = None) -> str:
    """The scan as an SPDX 2.3 JSON document.

    ``sha1`` maps ``str(location)`` of binaries to their SHA-1 (see :func:`read_sha1`);
    without it binaries are described as packages of purpose ``FILE``.  ``created``
    defaults to now, ``namespace`` to a URI derived from the content and ``created``.
    """
    when = (created or datetime.now(UTC)).replace(microsecond=0)
    digests = {k: v.lower() for k, v in (sha1 or {}).items() if _HEX40.match(v.lower())}
    out = _Builder(digests)
    for t in result.targets:
        tops: dict[str | None, Package] = {}
        for d in t.distributions:
            purl = distribution_purl(d)
            tops[d.name] = out.top(d.name, d.version, purl.to_string() if purl else None,
                                   f"distribution in {t.target} ({d.metadata_path})")
        owners = {b.distribution if b.distribution in tops else None for b in t.binaries}
        if None in owners:
            base = posixpath.basename(t.target.rstrip("/")) or t.target
            tops[None] = out.top(base, None, None,
                                 f"binaries of {t.target} ({t.kind.value}) that no "
                                 "distribution owns")
        as_file = {}
        for owner in owners:
            mine = [b for b in t.binaries
                    if (b.distribution if b.distribution in tops else None) == owner]
            as_file[owner] = bool(mine) and all(str(b.location) in digests for b in mine)
        element: dict[str, str] = {}
        for b in t.binaries:
            owner = b.distribution if b.distribution in tops else None
            sid = out.binary(b, t, as_file[owner])
            element[str(b.location)] = sid
            top = tops[owner].spdx_id
            out.relate(top, RelationshipType.CONTAINS, sid)
            # The distribution's own code (scan's first-party guess) is the distribution
            # package already: it CONTAINS the file, no second package of that name.
            if b.components and not b.components[0].unidentified and not any(
                    e.method == "distribution" for e in b.components[0].evidence):
                lib = out.component(b.components[0])
                out.relate(lib, RelationshipType.CONTAINS, sid)
                out.relate(top, RelationshipType.CONTAINS, lib)
            for extra in b.components[1:]:
                out.relate(sid, RelationshipType.STATIC_LINK, out.component(extra),
                           "embedded in the binary")
        for b in t.binaries:
            sid = element[str(b.location)]
            for e in b.edges:
                r = e.resolution
                comment = f"needs {r.request} ({e.edge_class.value}"
                comment += ", loaded with dlopen)" if e.link is LinkKind.DLOPEN else ")"
                inside = element.get(str(e.location)) if (
                    e.location is not None and r.outcome is Outcome.FOUND
                    and e.edge_class in (EdgeClass.BUNDLED, EdgeClass.OTHER_DISTRIBUTION)) \
                    else None
                target = inside or out.external_package(e)
                out.relate(sid, _link_type(e), target, comment)
    out.finish()
    if not out.packages:
        out.top("empty", None, None, "the scan found no distribution and no binary")
    targets = ", ".join(t.target for t in result.targets) or "nothing"
    ns = namespace or _NAMESPACE + str(uuid.uuid5(
        uuid.NAMESPACE_URL, f"{_NAMESPACE}{version}/{when.isoformat()}/{result!r}"))
    info = CreationInfo(
        spdx_version=SPDX_VERSION, spdx_id=DOCUMENT_ID, name=f"unveil scan of {targets}",
        document_namespace=ns, creators=[Actor(ActorType.TOOL, f"unveil-{version}")],
        created=when,
        creator_comment="Binary dependencies resolved as the platform's loader would; "
                        "external packages are libraries found outside the scanned "
                        "package or not found at all.")
    doc = Document(info, packages=out.packages, files=out.files,
                   relationships=out.relationships)
    stream = io.StringIO()
    # Validation runs in the tests: spdx-tools' validator is quadratic in the relationships.
    write_document_to_stream(doc, stream, validate=False, drop_duplicates=False)
    return stream.getvalue() + "\n"
