"""Standard records: SPDX 2.3 and CycloneDX validated by their own libraries, the PEP 725
``[external]`` suggestion, PEP 804 DepURLs, and PEP 770 SBOM injection into a wheel."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import platform
import struct
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from tests.conftest import Builder, host_config
from tests.integration.packages import vendored_wheel, write_wheel
from unveil.errors import SourceError
from unveil.identify.depurl import DepUrl, depurl_for, project_for_filename, registry_ids
from unveil.model import (
    Component,
    Edge,
    EdgeClass,
    Evidence,
    LinkKind,
    Outcome,
    Resolution,
    Rule,
    ScannedBinary,
    ScanResult,
)
from unveil.report.cyclonedx import to_cyclonedx
from unveil.report.inject import InjectError, SbomExistsError, inject_sbom, record_line
from unveil.report.pep725 import read_declared, suggest_external
from unveil.report.spdx import read_sha1, to_spdx, verification_code
from unveil.report.upstreams import _upstream_version
from unveil.scan import scan

WHEEL = "pkg-1.0-cp311-cp311-linux_x86_64.whl"
ZLIB = Component("zlib", "1.3.1", "pkg:generic/zlib@1.3.1",
                 ("cpe:2.3:a:zlib:zlib:1.3.1:*:*:*:*:*:*:*",),
                 (Evidence("banner", "deflate 1.3.1 Copyright", 0.9),),
                 homepage="https://zlib.net", source="https://github.com/madler/zlib")
VEND = Component("libvend", "2.0", "pkg:generic/libvend@2.0",
                 evidence=(Evidence("filename", "libvend-0a1b2c3d.so.1", 0.3),))
CREATED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _scan(build: Builder, tmp_path: Path, *, hashes: bool = True) -> tuple[Path, ScanResult]:
    """The vendored wheel scanned, with identities given to its vendored library (libvend,
    with zlib statically inside) in case identification is not wired into the scan."""
    whl = tmp_path / WHEEL
    if not whl.exists():
        vendored_wheel(build, whl)
    result = scan(str(whl), replace(host_config(), hashes=hashes))
    t = result.targets[0]
    bins = tuple(replace(b, components=(VEND, ZLIB)) if "libvend" in b.location.path else b
                 for b in t.binaries)
    return whl, replace(result, targets=(replace(t, binaries=bins),))


def _spdx(text: str) -> dict[str, Any]:
    """Parse with spdx-tools and validate the whole document; return the JSON."""
    doc = JsonLikeDictParser().parse(json.loads(text))  # type: ignore[no-untyped-call]
    assert validate_full_spdx_document(doc) == []
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {p["name"]: p for p in doc["packages"]}
    out.update({f["fileName"]: f for f in doc.get("files", [])})
    return out


def _rels(doc: dict[str, Any], kind: str) -> set[tuple[str, str]]:
    return {(r["spdxElementId"], r["relatedSpdxElement"]) for r in doc["relationships"]
            if r["relationshipType"] == kind}


# --- SPDX -----------------------------------------------------------------------------------

def test_spdx_with_files_validates(build: Builder, tmp_path: Path) -> None:
    _, result = _scan(build, tmp_path)
    sha1 = read_sha1(result)
    assert len(sha1) == 4
    doc = _spdx(to_spdx(result, "0.1.0", sha1=sha1, created=CREATED))
    assert doc["spdxVersion"] == "SPDX-2.3"
    assert doc["creationInfo"]["created"] == "2025-01-02T03:04:05Z"
    el = _by_name(doc)
    wheel = el["pkg"]
    assert wheel["filesAnalyzed"] is True
    assert wheel["externalRefs"][0]["referenceLocator"] == "pkg:pypi/pkg@1.0"
    assert wheel["packageVerificationCode"]["packageVerificationCodeValue"] == \
        verification_code(sha1.values())
    ext = el["./pkg/_ext.cpython-311-x86_64-linux-gnu.so"]
    vend = el["./pkg.libs/libvend-0a1b2c3d.so.1"]
    algs = {c["algorithm"] for c in vend["checksums"]}
    assert algs == {"SHA1", "SHA256"}
    assert (wheel["SPDXID"], ext["SPDXID"]) in _rels(doc, "CONTAINS")
    assert (ext["SPDXID"], vend["SPDXID"]) in _rels(doc, "DYNAMIC_LINK")
    zlib, libvend = el["zlib"], el["libvend"]
    assert (vend["SPDXID"], zlib["SPDXID"]) in _rels(doc, "STATIC_LINK")
    assert (libvend["SPDXID"], vend["SPDXID"]) in _rels(doc, "CONTAINS")
    assert libvend["filesAnalyzed"] is True
    refs = {r["referenceType"]: r["referenceLocator"] for r in zlib["externalRefs"]}
    assert refs == {"purl": "pkg:generic/zlib@1.3.1",
                    "cpe23Type": "cpe:2.3:a:zlib:zlib:1.3.1:*:*:*:*:*:*:*"}
    gone = el["libgone.so.3"]
    assert gone["downloadLocation"] == "NOASSERTION"
    assert "not found" in gone["comment"]
    assert "nvidia/cublas" in el["libcublas.so.12"]["comment"]
    lonely = el["./pkg/_lonely.cpython-311-x86_64-linux-gnu.so"]
    assert (lonely["SPDXID"], gone["SPDXID"]) in _rels(doc, "DYNAMIC_LINK")
    # Deterministic for the same scan and time: the namespace derives from the content.
    assert to_spdx(result, "0.1.0", sha1=sha1, created=CREATED) == \
        to_spdx(result, "0.1.0", sha1=sha1, created=CREATED)


def test_spdx_sha1_of_a_member_whose_name_is_not_utf8(build: Builder, tmp_path: Path) -> None:
    """A member name flagged UTF-8 that is not: zipfile refuses the whole archive, the scan
    reads it (the name with replacement characters); its SHA-1 is read the same way."""
    lib = build.lib("odd/libodd.so")
    whl = tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: pkg\n")
        z.writestr("pkg/libXXd.so", lib.read_bytes())
    raw = whl.read_bytes().replace(b"pkg/libXXd.so", b"pkg/lib\xff\xfed.so")
    at = raw.rfind(b"pkg/lib\xff") - 46  # its central directory entry (the last mention)
    assert raw[at:at + 4] == b"PK\x01\x02"
    flags, = struct.unpack_from("<H", raw, at + 8)
    whl.write_bytes(raw[:at + 8] + struct.pack("<H", flags | 0x800) + raw[at + 10:])
    result = scan(str(whl), host_config())
    assert [b.location.path for b in result.targets[0].binaries] == ["pkg/lib\ufffd\ufffdd.so"]
    sha1 = read_sha1(result)
    assert list(sha1.values()) == [hashlib.sha1(lib.read_bytes()).hexdigest()]
    doc = _spdx(to_spdx(result, "0.1.0", sha1=sha1, created=CREATED))
    assert doc["packages"][0]["filesAnalyzed"] is True


def test_records_of_a_distribution_with_undecodable_names(build: Builder,
                                                         tmp_path: Path) -> None:
    """A .dist-info whose directory and METADATA hold bytes that are not UTF-8: the scan
    reads them (surrogate escapes); the records name it, without a purl they could not
    write (packageurl died on the surrogates)."""
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    info = Path(os.fsdecode(bytes(site / "p") + b"\xffkg-1.0.dist-info"))
    info.mkdir(parents=True)
    (info / "METADATA").write_bytes(b"Metadata-Version: 2.1\nName: p\xffkg\nVersion: 1.0\n")
    (info / "RECORD").write_bytes(b"pkg/libok.so,,\n")
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    lib = build.lib("ok/libok.so")
    (site / "pkg").mkdir()
    (site / "pkg" / "libok.so").write_bytes(lib.read_bytes())
    result = scan(str(tmp_path / "env"), host_config())
    assert [d.name for d in result.targets[0].distributions] == ["p\udcffkg"]
    cdx = json.loads(to_cyclonedx(result, "0.1.0"))
    JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(cdx))
    dist = next(c for c in cdx["components"] if c["bom-ref"].startswith("dist:"))
    assert "purl" not in dist
    doc = _spdx(to_spdx(result, "0.1.0", sha1=read_sha1(result), created=CREATED))
    dist_pkg = next(p for p in doc["packages"] if p["name"] == "p\udcffkg")
    assert not dist_pkg.get("externalRefs")


def test_spdx_without_sha1_or_hashes_validates(build: Builder, tmp_path: Path) -> None:
    _, result = _scan(build, tmp_path)
    doc = _spdx(to_spdx(result, "0.1.0"))
    assert "files" not in doc or doc["files"] == []
    el = _by_name(doc)
    assert el["pkg"]["filesAnalyzed"] is False
    assert "packageVerificationCode" not in el["pkg"]
    vend = el["pkg.libs/libvend-0a1b2c3d.so.1"]
    assert vend["primaryPackagePurpose"] == "FILE"
    assert [c["algorithm"] for c in vend["checksums"]] == ["SHA256"]
    assert (vend["SPDXID"], el["zlib"]["SPDXID"]) in _rels(doc, "STATIC_LINK")
    _, plain = _scan(build, tmp_path, hashes=False)
    assert all(b.sha256 is None for b in plain.targets[0].binaries)
    doc = _spdx(to_spdx(plain, "0.1.0", sha1=read_sha1(plain)))
    assert _by_name(doc)["pkg"]["filesAnalyzed"] is True


def test_spdx_dlopen_static_and_unowned(build: Builder, tmp_path: Path) -> None:
    _, result = _scan(build, tmp_path)
    t = result.targets[0]
    b = t.binaries[0]
    extra = (Edge(Resolution(b.loader_path, "libgomp.so.1", Outcome.NOT_FOUND),
                  EdgeClass.MISSING, link=LinkKind.DLOPEN),
             Edge(Resolution(b.loader_path, "libfoo.a", Outcome.FOUND, path="/usr/lib/libfoo.a"),
                  EdgeClass.SYSTEM, link=LinkKind.STATIC))
    bins = (replace(b, edges=b.edges + extra, distribution=None), *t.binaries[1:])
    doc = _spdx(to_spdx(replace(result, targets=(replace(t, binaries=bins),)), "0.1.0",
                        sha1=read_sha1(result)))
    el = _by_name(doc)
    assert el[WHEEL]["comment"].startswith("binaries of")
    first = el["./" + b.location.path]["SPDXID"]
    assert (first, el["libgomp.so.1"]["SPDXID"]) in _rels(doc, "DYNAMIC_LINK")
    assert (first, el["libfoo.a"]["SPDXID"]) in _rels(doc, "STATIC_LINK")
    assert any("dlopen" in r.get("comment", "") for r in doc["relationships"])


# --- CycloneDX ------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "schema"), [("1.6", SchemaVersion.V1_6),
                                              ("1.7", SchemaVersion.V1_7)])
def test_cyclonedx_strict(build: Builder, tmp_path: Path, spec: str,
                          schema: SchemaVersion) -> None:
    _, result = _scan(build, tmp_path)
    text = to_cyclonedx(result, "0.1.0", spec=spec)
    errors = JsonStrictValidator(schema).validate_str(text)
    assert errors is None, errors
    doc = json.loads(text)
    purls = {c.get("purl") for c in doc["components"]}
    assert {"pkg:pypi/pkg@1.0", "pkg:generic/libvend@2.0"} <= purls


# --- PEP 725 --------------------------------------------------------------------------------

def _edge(b: ScannedBinary, request: str, cls: EdgeClass, path: str | None = None,
          link: LinkKind = LinkKind.DYNAMIC, rule: Rule | None = None) -> Edge:
    outcome = Outcome.FOUND if path else Outcome.NOT_FOUND
    return Edge(Resolution(b.loader_path, request, outcome, path=path, rule=rule), cls,
                link=link)


def test_pep725_suggestion(build: Builder, tmp_path: Path) -> None:
    _, result = _scan(build, tmp_path)
    t = result.targets[0]
    b = next(x for x in t.binaries if "_ext" in x.location.path)
    more = (_edge(b, "libz.so.1", EdgeClass.POLICY_SYSTEM, "/usr/lib/libz.so.1"),
            _edge(b, "libopenblas.so.0", EdgeClass.SYSTEM, "/usr/lib/libopenblas.so.0"),
            _edge(b, "libstdc++.so.6", EdgeClass.POLICY_SYSTEM, "/usr/lib/libstdc++.so.6"),
            _edge(b, "libgomp.so.1", EdgeClass.MISSING, link=LinkKind.DLOPEN),
            _edge(b, "libm.so.6", EdgeClass.POLICY_SYSTEM, "/usr/lib/libm.so.6"),
            _edge(b, "ld-linux-x86-64.so.2", EdgeClass.POLICY_SYSTEM, "/lib64/ld.so"),
            _edge(b, "KERNEL32.dll", EdgeClass.SYSTEM, "C:/Windows/System32/KERNEL32.dll",
                  rule=Rule.KNOWN_DLLS))
    bins = tuple(replace(x, edges=x.edges + more) if x is b else x for x in t.binaries)
    text = suggest_external(replace(result, targets=(replace(t, binaries=bins),)))
    ext = tomllib.loads(text)["external"]
    assert ext["build-requires"] == ["dep:virtual/compiler/cxx"]
    assert ext["host-requires"] == ["dep:generic/libgone", "dep:generic/libvend",
                                    "dep:generic/openblas", "dep:generic/zlib"]
    assert ext["dependencies"] == ["dep:generic/libgone", "dep:generic/openblas",
                                   "dep:generic/zlib", "dep:virtual/interface/openmp"]
    assert "# pkg/_lonely.cpython-311-x86_64-linux-gnu.so needs libgone.so.3 (missing" in text
    assert "vendored by auditwheel as pkg.libs/libvend-0a1b2c3d.so.1" in text
    assert "libgomp.so.1 (missing, dlopen" in text
    assert "non-canonical" in text
    for platform_lib in ("libc.so.6", "libm.so.6", "ld-linux", "KERNEL32"):
        assert platform_lib not in text
    declared = read_declared(text)
    assert declared == {u for g in ext.values() for u in g}


def test_pep725_read_declared() -> None:
    pyproject = """
[project]
name = "x"
[external]
build-requires = ["dep:virtual/compiler/c"]
host-requires = ["dep:generic/openssl@>=3", "dep:generic/zlib; sys_platform != 'win32'"]
dependencies = ["dep:generic/zlib"]
[external.optional-dependencies]
blas = ["dep:virtual/interface/blas"]
"""
    assert read_declared(pyproject) == {"dep:virtual/compiler/c", "dep:generic/openssl",
                                        "dep:generic/zlib", "dep:virtual/interface/blas"}
    assert read_declared('[project]\nname = "x"\n') == set()
    metadata = ("Metadata-Version: 2.5\nName: x\nVersion: 1\n"
                "Requires-External-Dep: dep:generic/libffi\n"
                "Requires-External-Dep: dep:virtual/interface/lapack; sys_platform == 'linux'\n"
                "Requires-External: libpng (>=1.5)\n"
                "Requires-External: zlib\n\nbody: not a header\n")
    assert read_declared(metadata) == {"dep:generic/libffi", "dep:virtual/interface/lapack",
                                       "dep:generic/libpng", "dep:generic/zlib"}


def test_empty_scan_records() -> None:
    empty = ScanResult(targets=())
    assert tomllib.loads(suggest_external(empty)) == {"external": {}}
    assert _by_name(_spdx(to_spdx(empty, "0.1.0")))["empty"]["filesAnalyzed"] is False


# --- PEP 804 DepURLs ------------------------------------------------------------------------

def test_depurl_mapping() -> None:
    z = depurl_for("zlib")
    assert z == DepUrl("dep:generic/zlib", True, z.distro_packages, z.host_packages, (),
                       z.description)
    assert z.distro_packages["ubuntu"] == ("zlib1g",)
    assert "zlib1g-dev" in z.host_packages["ubuntu"]
    assert z.distro_packages["fedora"] == ("zlib-ng-compat",)
    assert "zlib" in z.distro_packages["conda-forge"]
    assert "zlib" in z.distro_packages["homebrew"]
    for alias in ("libz.so.1", "libz-0a1b2c3d.so.1", "libz.1.dylib", "zlib1.dll",
                  "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64", "dep:generic/zlib@1.3"):
        assert depurl_for(alias).url == "dep:generic/zlib", alias
    ob = depurl_for("openblas")
    assert ob.canonical
    assert ob.url == "dep:generic/openblas"
    assert "dep:virtual/interface/blas" in ob.provides
    assert depurl_for("libopenblas64_-a1b2c3d4.so.0").url == "dep:generic/openblas"
    assert depurl_for("libblas.so.3").url == "dep:virtual/interface/blas"
    assert depurl_for("liblapack.so.3").url == "dep:virtual/interface/lapack"
    assert depurl_for("libjpeg-turbo").url == "dep:generic/libjpeg"
    assert depurl_for("libssl.so.3").url == "dep:generic/openssl"
    assert depurl_for("libcrypto-3-x64.dll").url == "dep:generic/openssl"
    png = depurl_for("libpng")
    assert (png.url, png.canonical, dict(png.distro_packages)) == ("dep:generic/libpng", False,
                                                                    {})
    assert depurl_for("libpng16.so.16") == png
    assert depurl_for("libgone.so.3").url == "dep:generic/libgone"
    assert not depurl_for("dep:generic/nothing").canonical
    assert project_for_filename("libtiff.so.6") == "libtiff"
    assert project_for_filename("README") is None
    # Beyond the built-in stems, the identification rules' file globs name the project.
    for name, project in (("libfribidi-0a1b2c3d.so.0.4.0", "fribidi"),
                          ("libbrotlicommon.so.1", "brotli"), ("liblzma.so.5", "xz"),
                          ("libavcodec-0a1b2c3d.so.61", "ffmpeg"), ("zmq.dll", "zeromq"),
                          ("libSDL2-2.0.so.0", "sdl2"), ("libSDL2_image-2.0.so.0", "sdl2-image"),
                          ("libopusfile.so.0", "opusfile")):
        assert project_for_filename(name) == project, name
        assert not depurl_for(name).canonical
    # ... but a glob only names the library it spells out, not a longer name it prefixes.
    for name in ("libyaml-cpp.so.0.7", "libprotobuf-c.so.1", "libuvc.so.0", "libprojectM.so.3",
                 "libgprofng.so.0"):
        assert project_for_filename(name) is None, name
    with pytest.raises(ValueError, match="empty"):
        depurl_for("  ")


def test_pep804_data_is_consistent() -> None:
    data = resources.files("unveil").joinpath("data/pep804")
    assert data.joinpath("LICENSE").read_text().strip()
    assert "external-metadata-mappings" in data.joinpath("SOURCE.txt").read_text()
    ids = registry_ids()
    for eco in ("ubuntu", "fedora", "conda-forge", "homebrew"):
        mapping = json.loads(data.joinpath(f"{eco}.mapping.json").read_text())
        assert {m["id"] for m in mapping["mappings"]} <= ids, eco


# --- PEP 770 injection ----------------------------------------------------------------------

_INFO_FIELDS = ("filename", "date_time", "compress_type", "comment", "extra", "create_system",
                "create_version", "extract_version", "flag_bits", "volume", "internal_attr",
                "external_attr", "CRC", "compress_size", "file_size")


def _raw(path: Path, info: zipfile.ZipInfo) -> bytes:
    """A member's local header, name, extra and compressed data, as stored."""
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        head = f.read(30)
        n, m = struct.unpack("<HH", head[26:30])
        return head + f.read(n + m + info.compress_size)


def _assert_kept(old: Path, new: Path, added: set[str], changed: set[str]) -> None:
    with zipfile.ZipFile(old) as a, zipfile.ZipFile(new) as b:
        assert a.testzip() is None
        assert b.testzip() is None
        old_names = a.namelist()
        assert [n for n in b.namelist() if n not in added] == old_names
        assert a.comment == b.comment
        for name in old_names:
            if name in changed:
                continue
            ia, ib = a.getinfo(name), b.getinfo(name)
            for fld in _INFO_FIELDS:
                assert getattr(ia, fld) == getattr(ib, fld), (name, fld)
            assert _raw(old, ia) == _raw(new, ib), name
            assert a.read(name) == b.read(name)


def test_inject_sbom_installs_with_pip(build: Builder, tmp_path: Path) -> None:
    whl, result = _scan(build, tmp_path)
    before = whl.read_bytes()
    sbom = to_cyclonedx(result, "0.1.0")
    out = tmp_path / "out" / WHEEL
    out.parent.mkdir()
    assert inject_sbom(str(whl), sbom, str(out)) == str(out)
    assert whl.read_bytes() == before
    path = "pkg-1.0.dist-info/sboms/unveil.cdx.json"
    record = "pkg-1.0.dist-info/RECORD"
    _assert_kept(whl, out, {path}, {record})
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert names.index(path) == names.index(record) - 1
        assert z.read(path).decode() == sbom
        rows = list(csv.reader(io.StringIO(z.read(record).decode())))
        assert rows[-1] == [record, "", ""]
        assert [path, *record_line(path, sbom.encode()).split(",")[1:]] in rows
        digest = base64.urlsafe_b64encode(hashlib.sha256(sbom.encode()).digest())
        assert [path, "sha256=" + digest.rstrip(b"=").decode(), str(len(sbom.encode()))] in rows
        assert z.getinfo(path).date_time == z.getinfo(record).date_time
    assert [p.name for p in out.parent.iterdir()] == [WHEEL], "no temporary file left"
    if platform.machine() != "x86_64" or sys.version_info[:2] != (3, 11):
        pytest.skip("the wheel is tagged cp311 linux_x86_64")
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--no-compile", "--target",
                    str(site), str(out)], check=True, capture_output=True, timeout=120)
    assert (site / path).read_text() == sbom
    env = {**os.environ, "PYTHONPATH": str(site)}
    shown = subprocess.run([*pip, "show", "--files", "pkg"], check=True, capture_output=True,
                           text=True, env=env, timeout=120).stdout
    assert "Location: " + str(site) in shown
    assert path in shown.split()


def test_inject_refusals(tmp_path: Path) -> None:
    whl = write_wheel(tmp_path / "pkg-1.0-py3-none-any.whl", {"pkg/__init__.py": b""})
    with pytest.raises(InjectError, match="overwrite"):
        inject_sbom(str(whl), "{}", str(whl))
    with pytest.raises(InjectError, match="overwrite"):
        inject_sbom(str(whl), "{}", str(tmp_path / "." / whl.name))
    with pytest.raises(InjectError, match="file name"):
        inject_sbom(str(whl), "{}", str(tmp_path / "o.whl"), name="../x.json")
    once = tmp_path / "once.whl"
    inject_sbom(str(whl), "{}", str(once))
    with pytest.raises(SbomExistsError):
        inject_sbom(str(once), "{}", str(tmp_path / "twice.whl"))
    assert not (tmp_path / "twice.whl").exists()
    inject_sbom(str(once), "{}", str(tmp_path / "twice.whl"), name="other.spdx.json")
    assert {p.name for p in tmp_path.iterdir()} == {whl.name, "once.whl", "twice.whl"}
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(SourceError, match="not a zip"):
        inject_sbom(str(bad), "{}", str(tmp_path / "bad-out.whl"))
    with pytest.raises(InjectError, match="cannot write"):
        inject_sbom(str(whl), "{}", str(tmp_path / "no" / "such" / "dir.whl"))
    assert not (tmp_path / "bad-out.whl").exists()


class _Unseekable(io.RawIOBase):
    """A write-only stream without seek: zipfile then writes data descriptors."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        return self.buf.write(b)


def test_inject_keeps_stored_descriptors_and_comment(tmp_path: Path) -> None:
    info = "odd-2.0.dist-info"
    members = {"odd/__init__.py": b"x = 1\n" * 50, "odd/data.bin": bytes(range(256)) * 8,
               f"{info}/METADATA": b"Metadata-Version: 2.1\nName: odd\nVersion: 2.0\n",
               f"{info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "\r\n".join([record_line(n, d) for n, d in members.items()] + [f"{info}/RECORD,,"])
    members[f"{info}/RECORD"] = (record + "\r\n").encode()
    stream = _Unseekable()
    with zipfile.ZipFile(stream, "w") as z:
        for i, (name, data) in enumerate(members.items()):
            zi = zipfile.ZipInfo(name, (2001 + i, 2, 3, 4, 5, 6))
            zi.compress_type = zipfile.ZIP_STORED if i % 2 else zipfile.ZIP_DEFLATED
            zi.external_attr = (0o600 + i) << 16
            with z.open(zi, "w") as w:
                w.write(data)
        z.comment = b"kept comment"
    whl = tmp_path / "odd-2.0-py3-none-any.whl"
    whl.write_bytes(stream.buf.getvalue())
    with zipfile.ZipFile(whl) as z:
        assert all(i.flag_bits & 0x08 for i in z.infolist()), "fixture has data descriptors"
    out = tmp_path / "new.whl"
    inject_sbom(str(whl), '{"bomFormat": "CycloneDX"}', str(out), name="x.cdx.json")
    _assert_kept(whl, out, {f"{info}/sboms/x.cdx.json"}, {f"{info}/RECORD"})
    with zipfile.ZipFile(whl) as old, zipfile.ZipFile(out) as z:
        text = z.read(f"{info}/RECORD").decode()
        assert text.startswith(record.split("\r\n")[0] + "\r\n")
        assert text.endswith(f"{info}/RECORD,,\r\n")
        was, now = old.getinfo(f"{info}/RECORD"), z.getinfo(f"{info}/RECORD")
        sbom = z.getinfo(f"{info}/sboms/x.cdx.json")
        for fld in ("compress_type", "date_time", "external_attr"):
            assert getattr(was, fld) == getattr(now, fld) == getattr(sbom, fld), fld


@pytest.mark.parametrize(("version", "manager", "upstream"), [
    ("1:1.2.13.dfsg-1", "dpkg", "1.2.13"),     # epoch, repack, revision
    ("2.36-9+deb12u14", "dpkg", "2.36"),
    ("3.0.11+dfsg-1", "dpkg", "3.0.11"),
    ("2.17-326.el7", "rpm", "2.17"),
    ("1.2.13-r0", "apk", "1.2.13"),
    ("1.6.43-2", "banner", "1.6.43-2"),        # not a distro package's string: as it is
])
def test_upstream_listing_gives_upstream_versions(version: str, manager: str,
                                                  upstream: str) -> None:
    """The upstream listing names the projects to support: a distro package's version
    string (epoch, repack and revision) is reduced to the upstream release."""
    c = Component("x", version, evidence=(Evidence(manager, "", 0.9, "version"),))
    assert _upstream_version(c) == upstream


def test_cyclonedx_is_reproducible_with_a_source_date(build: Builder, tmp_path: Path) -> None:
    """With SOURCE_DATE_EPOCH (the CLI passes it as ``timestamp``) the same scan gives the
    same document; without, each gets its own serial number.  Tools are components (the
    list form is deprecated since CycloneDX 1.5)."""
    whl = vendored_wheel(build, tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl")
    result = scan(str(whl), host_config())
    when = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    a = to_cyclonedx(result, "test", timestamp=when)
    assert a == to_cyclonedx(result, "test", timestamp=when)
    doc = json.loads(a)
    assert doc["metadata"]["timestamp"] == "2023-11-14T22:13:20+00:00"
    assert doc["metadata"]["tools"]["components"][0]["name"] == "unveil"
    assert json.loads(to_cyclonedx(result, "test"))["serialNumber"] != json.loads(
        to_cyclonedx(result, "test"))["serialNumber"]
