"""Shipped SBOMs as identification evidence (identify/sboms.py) and phantom-dependency
classification (identify/phantom.py): synthetic CycloneDX and SPDX documents, hostile
documents, the real SBOMs of Pillow and cryptography wheels (cached under
``~/.cache/unveil-tests``; downloaded with ``-m network``), and a synthetic scan result."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unveil.config import ScanConfig
from unveil.formats.blob import BytesBlob
from unveil.formats.elf import parse_elf
from unveil.identify import identify_binary
from unveil.identify.phantom import (
    Category,
    Declared,
    PhantomFinding,
    classify_declarations,
    declared_from_text,
    read_wheel_declarations,
)
from unveil.identify.sboms import (
    MAX_SBOM_BYTES,
    ShippedSbom,
    match_sbom,
    parse_sbom,
    read_dist_sboms,
    read_sboms,
    sbom_covers,
)
from unveil.model import (
    Binary,
    BinaryFormat,
    Component,
    Confidence,
    DynamicLoad,
    Edge,
    EdgeClass,
    Evidence,
    LinkKind,
    LoadSite,
    Location,
    Outcome,
    Resolution,
    Role,
    Rule,
    ScannedBinary,
    TargetKind,
    TargetResult,
)
from unveil.sources.fs import HostFS
from unveil.sources.targets import open_target

CACHE = Path.home() / ".cache" / "unveil-tests"
SITE = "/lib/python3.11/site-packages"
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --------------------------------------------------------------------------- documents

PNG_SHA = "a" * 64
FOO_SHA = "b" * 64

CDX_12: dict[str, Any] = {
    "bomFormat": "CycloneDX", "specVersion": "1.2", "version": 1,
    "metadata": {"tools": [{"vendor": "x", "name": "oldtool", "version": "0.1"}],
                 "component": {"type": "library", "name": "demo", "version": "1.0",
                               "purl": "pkg:pypi/demo@1.0"}},
    "components": [
        {"type": "library", "name": "libpng", "version": "1.6.58",
         "purl": "pkg:generic/libpng@1.6.58",
         "cpe": "cpe:2.3:a:libpng:libpng:1.6.58:*:*:*:*:*:*:*",
         "hashes": [{"alg": "SHA-256", "content": PNG_SHA.upper()},
                    {"alg": "MD5", "content": "c" * 32}],
         "components": [{"type": "library", "name": "zlib", "version": "1.3.1"}]},
    ],
}

CDX_16: dict[str, Any] = {
    "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
    "metadata": {"tools": {"components": [{"type": "application", "name": "newtool",
                                           "version": "2"}]}},
    "components": [
        {"type": "library", "name": "foo", "version": "3.2",
         "evidence": {"occurrences": [{"location": "demo.libs/libfoo-1a2b3c4d.so.3.2.0"}]}},
        {"type": "library", "name": "bar", "version": "9",
         "properties": [{"name": "unveil:soname", "value": "libbar.so.9"},
                        {"name": "color", "value": "libnotafile.so"}]},
        {"type": "file", "name": "libqux.so.1"},
        {"type": "library", "name": "openssl", "version": "0.10.81",
         "purl": "pkg:cargo/openssl@0.10.81"},
        {"type": "library", "name": "libxcb", "version": "1.13.1-1.el8",
         "purl": "pkg:rpm/almalinux/libxcb@1.13.1-1.el8"},
        {"type": "library", "name": "libxcb", "version": "1.13.1-1.el8",
         "purl": "pkg:rpm/almalinux/libxcb@1.13.1-1.el8"},
        {"type": "library", "name": "openssl-libs", "version": "1.1.1k",
         "purl": "pkg:rpm/almalinux/openssl-libs@1.1.1k"},
        {"type": "library", "name": "demo._speedups", "version": "1.0"},
        {"type": "library", "name": "cc", "version": "1.0", "scope": "excluded"},
    ],
}

CDX_17: dict[str, Any] = {
    "$schema": "http://cyclonedx.org/schema/bom-1.7.schema.json",
    "bomFormat": "CycloneDX", "specVersion": "1.7",
    "components": [
        {"bom-ref": "pkg:generic/littlecms2", "type": "library", "name": "Little CMS 2",
         "version": "2.19.1"},
        {"bom-ref": "pkg:generic/libjpeg", "type": "library",
         "name": "libjpeg / libjpeg-turbo", "version": "3.2.0"},
    ],
}

SPDX: dict[str, Any] = {
    "spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "demo",
    "creationInfo": {"creators": ["Tool: spdxgen-1.0", "Person: someone"]},
    "documentDescribes": ["SPDXRef-demo"],
    "packages": [
        {"SPDXID": "SPDXRef-demo", "name": "demo", "versionInfo": "1.0",
         "hasFiles": ["SPDXRef-f-ext"]},
        {"SPDXID": "SPDXRef-tiff", "name": "libtiff", "versionInfo": "4.7.0",
         "externalRefs": [
             {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
              "referenceLocator": "pkg:generic/libtiff@4.7.0"},
             {"referenceCategory": "SECURITY", "referenceType": "cpe23Type",
              "referenceLocator": "cpe:2.3:a:libtiff:libtiff:4.7.0:*:*:*:*:*:*:*"}]},
        {"SPDXID": "SPDXRef-webp", "name": "libwebp", "versionInfo": "1.5.0"},
    ],
    "files": [
        {"SPDXID": "SPDXRef-f-tiff", "fileName": "./demo.libs/libtiff-0a1b2c3d.so.6.1.0",
         "checksums": [{"algorithm": "SHA256", "checksumValue": "d" * 64},
                       {"algorithm": "SHA1", "checksumValue": "e" * 40}]},
        {"SPDXID": "SPDXRef-f-webp", "fileName": "./demo.libs/libwebp-99887766.so.7",
         "checksums": [{"algorithm": "SHA256", "checksumValue": "f" * 64}]},
        {"SPDXID": "SPDXRef-f-ext", "fileName": "./demo/_ext.so",
         "checksums": [{"algorithm": "SHA256", "checksumValue": "1" * 64}]},
    ],
    "relationships": [
        {"spdxElementId": "SPDXRef-tiff", "relationshipType": "CONTAINS",
         "relatedSpdxElement": "SPDXRef-f-tiff"},
        {"spdxElementId": "SPDXRef-f-webp", "relationshipType": "CONTAINED_BY",
         "relatedSpdxElement": "SPDXRef-webp"},
        {"spdxElementId": 7, "relationshipType": None},
    ],
}


def _tree(tmp_path: Path, files: dict[str, bytes | str]) -> HostFS:
    for rel, data in files.items():
        p = tmp_path / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return HostFS(str(tmp_path))


def _sbom(doc: dict[str, Any], shown: str = "demo-1.0.dist-info/sboms/x.json",
          dist: str | None = "demo") -> ShippedSbom:
    sbom, problems = parse_sbom(json.dumps(doc).encode(), path=f"{SITE}/{shown}", shown=shown,
                                distribution=dist, site=SITE)
    assert sbom is not None, problems
    return sbom


def _names(comps: list[Component]) -> list[tuple[str, str | None, float]]:
    return [(c.name, c.version, max(e.confidence for e in c.evidence)) for c in comps]


# --------------------------------------------------------------------------- reading


def test_read_sboms_all_formats(tmp_path: Path) -> None:
    di = f"{SITE}/demo-1.0.dist-info"
    fs = _tree(tmp_path, {
        f"{di}/METADATA": "Name: demo\n",
        f"{di}/sboms/auditwheel.cdx.json": json.dumps(CDX_12),
        f"{di}/sboms/sub/project.cdx.json": json.dumps(CDX_16),
        f"{di}/sboms/project.spdx.json": json.dumps(SPDX),
        f"{di}/sboms/notes.txt": "not json",
        f"{di}/RECORD": "demo/__init__.py,,\ndemo/bom.json,,\ndemo/other.json,,\n",
        f"{SITE}/demo/bom.json": json.dumps(CDX_17),
        f"{SITE}/demo/other.json": json.dumps(CDX_17),
        f"{SITE}/other-2.0.dist-info/RECORD": "",
    })
    sboms, problems = read_sboms(fs, [SITE])
    by = {s.shown: s for s in sboms}
    assert set(by) == {"demo-1.0.dist-info/sboms/auditwheel.cdx.json",
                       "demo-1.0.dist-info/sboms/sub/project.cdx.json",
                       "demo-1.0.dist-info/sboms/project.spdx.json", "demo/bom.json"}
    assert problems == ["demo-1.0.dist-info/sboms/notes.txt: not a JSON SBOM: "
                        "Expecting value: line 1 column 1 (char 0)"]
    old = by["demo-1.0.dist-info/sboms/auditwheel.cdx.json"]
    assert (old.format, old.spec_version, old.distribution, old.tools) == (
        "cyclonedx", "1.2", "demo", ("oldtool 0.1",))
    comps = {c.name: c for c in old.components}
    assert comps["demo"].subject
    assert not comps["libpng"].subject
    assert comps["libpng"].sha256 == (PNG_SHA,)  # lower-cased; MD5 dropped
    assert comps["libpng"].cpes == ("cpe:2.3:a:libpng:libpng:1.6.58:*:*:*:*:*:*:*",)
    assert "zlib" in comps  # nested component
    new = by["demo-1.0.dist-info/sboms/sub/project.cdx.json"]
    assert new.tools == ("newtool 2",)
    c16 = {c.name: c for c in new.components}
    assert c16["foo"].files == ("demo.libs/libfoo-1a2b3c4d.so.3.2.0",)
    assert c16["bar"].files == ("libbar.so.9",)  # only file-like property names count
    assert c16["libqux.so.1"].files == ("libqux.so.1",)
    c17 = {c.name: c for c in by["demo/bom.json"].components}
    assert c17["Little CMS 2"].purl == "pkg:generic/littlecms2@2.19.1"  # from the bom-ref
    spdx = by["demo-1.0.dist-info/sboms/project.spdx.json"]
    assert (spdx.format, spdx.spec_version, spdx.tools) == ("spdx", "SPDX-2.3", ("spdxgen-1.0",))
    sp = {c.name: c for c in spdx.components}
    assert sp["demo"].subject
    assert sp["demo"].files == ("./demo/_ext.so",)
    assert sp["libtiff"].purl == "pkg:generic/libtiff@4.7.0"
    assert sp["libtiff"].cpes == ("cpe:2.3:a:libtiff:libtiff:4.7.0:*:*:*:*:*:*:*",)
    assert sp["libtiff"].sha256 == ("d" * 64,)
    assert sp["libwebp"].files == ("./demo.libs/libwebp-99887766.so.7",)
    # read_dist_sboms alone gives the same for one distribution
    alone, _ = read_dist_sboms(fs, f"{SITE}/demo-1.0.dist-info")
    assert {s.shown for s in alone} == set(by)


def test_match_by_hash_path_name_and_module() -> None:
    sboms = [_sbom(CDX_12, "demo-1.0.dist-info/sboms/a.cdx.json"), _sbom(CDX_16), _sbom(CDX_17)]
    site_path = f"{SITE}/demo.libs/libpng16-1d1ba958.so.16.58.0"
    member = "demo.libs/libpng16-1d1ba958.so.16.58.0"
    by_hash = match_sbom(site_path, member, PNG_SHA, None, sboms)
    assert _names(by_hash)[0] == ("libpng", "1.6.58", 0.99)
    ev = by_hash[0].evidence
    assert ev[0] == Evidence("sbom", "demo-1.0.dist-info/sboms/a.cdx.json: libpng@1.6.58",
                             0.99, "name")
    assert {e.field for e in ev} == {"name", "version"}
    assert by_hash[0].purl == "pkg:generic/libpng@1.6.58"
    assert by_hash[0].cpes
    # without the hash: the de-hashed name (libpng16 -> libpng) at 0.7
    assert _names(match_sbom(site_path, member, None, None, sboms)) == [
        ("libpng", "1.6.58", 0.7)]
    # an occurrence path, a soname property, a file component
    foo = "demo.libs/libfoo-1a2b3c4d.so.3.2.0"
    assert _names(match_sbom(f"{SITE}/{foo}", foo, None, None, sboms)) == [
        ("foo", "3.2", 0.9)]
    bar = "demo.libs/libbar-0f0f0f0f.so.9.1"
    assert _names(match_sbom(f"{SITE}/{bar}", bar, None, "libbar-0f0f0f0f.so.9", sboms)) == [
        ("bar", "9", 0.85)]
    # a bare file entry does not identify anything, but it records the file
    qux = "demo/libqux.so.1"
    assert match_sbom(f"{SITE}/{qux}", qux, None, None, sboms) == []
    covered = sbom_covers(f"{SITE}/{qux}", qux, None, None, sboms)
    assert covered is not None
    assert covered.confidence == 0.9
    # a Python extension module by its dotted name, never by its name against libraries
    ext = "demo/_speedups.cpython-311-x86_64-linux-gnu.so"
    assert _names(match_sbom(f"{SITE}/{ext}", ext, None, None, sboms)) == [
        ("demo._speedups", "1.0", 0.9)]
    # pillow-style project names, via the DepURL project (liblcms2 -> lcms2 <- littlecms)
    lcms = "demo.libs/liblcms2-88eaba2f.so.2.0.19"
    assert _names(match_sbom(f"{SITE}/{lcms}", lcms, None, None, sboms)) == [
        ("Little CMS 2", "2.19.1", 0.65)]
    jpeg = "demo.libs/libjpeg-6dc8d115.so.62.4.0"
    assert _names(match_sbom(f"{SITE}/{jpeg}", jpeg, None, None, sboms)) == [
        ("libjpeg / libjpeg-turbo", "3.2.0", 0.7)]


def test_match_rpm_packages_and_exclusions() -> None:
    sboms = [_sbom(CDX_16)]
    # an RPM subpackage name (openssl-libs) names the project of libcrypto/libssl
    for lib in ("libcrypto-5409cd36.so.1.1.1k", "libssl-81259c47.so.1.1.1k"):
        got = _names(match_sbom(f"{SITE}/x.libs/{lib}", f"x.libs/{lib}", None, None, sboms))
        assert [g[0] for g in got] == ["openssl-libs"], lib
    # duplicates merged; the exact name beats the prefix; libxcb-shm only by prefix
    assert _names(match_sbom(f"{SITE}/x/libxcb-5ddf6756.so.1.1.0", "x/libxcb-5ddf6756.so.1.1.0",
                             None, None, sboms)) == [("libxcb", "1.13.1-1.el8", 0.7)]
    assert _names(match_sbom(f"{SITE}/x/libxcb-shm-0be6dfbf.so.0", "x/libxcb-shm-0be6dfbf.so.0",
                             None, None, sboms)) == [("libxcb", "1.13.1-1.el8", 0.6)]
    # a Rust crate named openssl is not OpenSSL; build-only components are not shipped
    assert match_sbom(f"{SITE}/x/libopenssl.so.3", "x/libopenssl.so.3", None, None,
                      [_sbom({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [
                          CDX_16["components"][3]]})]) == []
    assert match_sbom(f"{SITE}/x/libcc.so", "x/libcc.so", None, None, sboms) == []
    # the document's subject (the distribution itself) never identifies a vendored file
    assert match_sbom(f"{SITE}/x/libdemo.so", "x/libdemo.so", None, None,
                      [_sbom(CDX_12)]) == []
    # another distribution's SBOM is ignored when the distribution is given
    assert match_sbom(f"{SITE}/x/libxcb.so.1", "x/libxcb.so.1", None, None, sboms,
                      distribution="other") == []
    assert match_sbom(f"{SITE}/x/libxcb.so.1", "x/libxcb.so.1", None, None, sboms,
                      distribution="Demo")


def test_match_spdx_contains() -> None:
    sboms = [_sbom(SPDX)]
    tiff = "demo.libs/libtiff-0a1b2c3d.so.6.1.0"
    assert _names(match_sbom(f"{SITE}/{tiff}", tiff, "d" * 64, None, sboms)) == [
        ("libtiff", "4.7.0", 0.99)]
    webp = "demo.libs/libwebp-99887766.so.7"
    assert _names(match_sbom(f"{SITE}/{webp}", webp, None, None, sboms)) == [
        ("libwebp", "1.5.0", 0.9)]
    # the described package contains the extension: recorded, but it identifies nothing
    assert match_sbom(f"{SITE}/demo/_ext.so", "demo/_ext.so", "1" * 64, None, sboms) == []
    assert sbom_covers(f"{SITE}/demo/_ext.so", "demo/_ext.so", "1" * 64, None, sboms)


def test_identified_component_confirmed() -> None:
    sbom = _sbom({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [
        {"type": "library", "name": "openssl", "version": "4.0.3",
         "purl": "pkg:generic/openssl@4.0.3"},
        {"type": "library", "name": "openssl", "version": "0.10.81",
         "purl": "pkg:cargo/openssl@0.10.81"}]})
    banner = Component("openssl", "4.0.3", evidence=(Evidence("banner", "OpenSSL 4.0.3", 0.9),))
    member = "demo/_rust.abi3.so"
    assert match_sbom(f"{SITE}/{member}", member, None, None, [sbom]) == []
    assert _names(match_sbom(f"{SITE}/{member}", member, None, None, [sbom],
                             identified=[banner])) == [("openssl", "4.0.3", 0.8)]
    older = replace(banner, version="3.0.0")
    got = match_sbom(f"{SITE}/{member}", member, None, None, [sbom], identified=[older])
    assert {e.field: e.confidence for e in got[0].evidence} == {"name": 0.8, "version": 0.4}


def test_vcpkg_port_documents() -> None:
    """vcpkg's SPDX per port: the port is the project ("3.12.4#2": port revision 2 of
    GDAL 3.12.4); the binary package it GENERATES (named after the triplet, versioned by
    its ABI hash) and the source archives it downloaded are not projects of their own."""
    doc = {
        "spdxVersion": "SPDX-2.2", "SPDXID": "SPDXRef-DOCUMENT", "name": "gdal:x64-linux",
        "creationInfo": {"creators": ["Tool: vcpkg-2026-04-08-e0612b42ce44"]},
        "packages": [
            {"SPDXID": "SPDXRef-port", "name": "gdal", "versionInfo": "3.12.4#2"},
            {"SPDXID": "SPDXRef-binary", "name": "gdal:x64-linux-dynamic-release",
             "versionInfo": "bc985f5f898b72d37d250f5d00860985e9a5f3189b93ec590b0aee0492ae1940"},
            {"SPDXID": "SPDXRef-resource-0", "name": "OSGeo/gdal",
             "downloadLocation": "git+https://github.com/OSGeo/gdal@v3.12.4"}],
        "relationships": [{"spdxElementId": "SPDXRef-port", "relationshipType": "GENERATES",
                           "relatedSpdxElement": "SPDXRef-binary"}]}
    sbom = _sbom(doc, shown="demo/gdal_data/vcpkg.spdx.json")
    assert [(c.name, c.version) for c in sbom.components] == [("gdal", "3.12.4")]
    # A "#" in a version means nothing special outside vcpkg's documents.
    doc["creationInfo"] = {"creators": ["Tool: other-1.0"]}
    assert ("gdal", "3.12.4#2") in [(c.name, c.version) for c in _sbom(doc).components]


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(("data", "message"), [
    (b"", "not a JSON SBOM"),
    (b"\xff\xfe\x00garbage", "not a JSON SBOM"),
    (b"[" * 200_000, "not a JSON SBOM"),
    (b"[1, 2]", "not an object"),
    (b'{"bomFormat": "SPDX"}', "not a CycloneDX or SPDX 2.x"),
    (b'{"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"}', "unsupported"),
    (b'{"spdxVersion": "SPDX-3.0"}', "unsupported"),
    (b'{"bomFormat": "CycloneDX", "n": ' + b"9" * 10_000 + b"}", "not a JSON SBOM"),
])
def test_bad_documents_are_problems(data: bytes, message: str) -> None:
    sbom, problems = parse_sbom(data)
    assert sbom is None
    assert len(problems) == 1
    assert message in problems[0]


def test_wrong_types_and_depth() -> None:
    doc: dict[str, Any] = {
        "bomFormat": "CycloneDX", "specVersion": 1.5, "metadata": [],
        "components": [None, 3, "x", {"name": 5}, {"name": "ok", "version": 7,
                                                  "hashes": "nope", "properties": {"a": 1},
                                                  "evidence": {"occurrences": [None, {}]},
                                                  "components": {"name": "x"}},
                       {"name": "h", "hashes": [{"alg": "SHA-256", "content": "zz"}, 5]}]}
    nested: dict[str, Any] = {"name": "leaf"}
    for i in range(100):
        nested = {"name": f"n{i}", "components": [nested]}
    doc["components"].append(nested)
    sbom, problems = parse_sbom(json.dumps(doc).encode())
    assert sbom is not None
    assert sbom.spec_version is None
    assert {c.name for c in sbom.components} >= {"ok", "h", "n99"}
    assert "leaf" not in {c.name for c in sbom.components}
    assert any("nested deeper" in p for p in problems)
    assert next(c for c in sbom.components if c.name == "h").sha256 == ()
    spdx = {"spdxVersion": "SPDX-2.2", "packages": [{"SPDXID": "a", "name": "p",
                                                     "hasFiles": [1, None, "missing"],
                                                     "checksums": {"x": 1},
                                                     "externalRefs": [[], {"referenceType": 1}]},
                                                    "junk"],
            "files": {"a": 1}, "relationships": [1, {"relationshipType": "CONTAINS"}],
            "creationInfo": {"creators": "Tool: x"}}
    sbom, problems = parse_sbom(json.dumps(spdx).encode())
    assert sbom is not None
    assert [c.name for c in sbom.components] == ["p"]
    assert not problems


def test_oversized_and_unreadable_files(tmp_path: Path) -> None:
    di = f"{SITE}/big-1.0.dist-info"
    fs = _tree(tmp_path, {f"{di}/sboms/big.cdx.json": b" " * (MAX_SBOM_BYTES + 1),
                          f"{di}/sboms/ok.cdx.json": json.dumps(CDX_17)})
    os.symlink("loop", tmp_path / di.lstrip("/") / "sboms" / "loop")
    os.mkfifo(tmp_path / di.lstrip("/") / "sboms" / "fifo.cdx.json")
    (tmp_path / di.lstrip("/") / "RECORD").symlink_to("RECORD")  # a symlink loop
    sboms, problems = read_sboms(fs, [SITE, "/nonexistent"])
    assert [s.shown for s in sboms] == ["big-1.0.dist-info/sboms/ok.cdx.json"]
    assert any("larger than" in p for p in problems)
    assert parse_sbom(b" " * (MAX_SBOM_BYTES + 1))[0] is None


def _json() -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(
        max_size=20) | st.sampled_from(["SHA-256", "CONTAINS", "file", "pkg:generic/x@1",
                                        "libz.so.1", "SPDX-2.3", "CycloneDX", "a" * 64])
    keys = st.sampled_from(["name", "version", "purl", "cpe", "hashes", "alg", "content",
                            "components", "evidence", "occurrences", "location", "properties",
                            "value", "type", "scope", "bom-ref", "SPDXID", "fileName",
                            "checksums", "algorithm", "checksumValue", "hasFiles",
                            "relationships", "spdxElementId", "relationshipType",
                            "relatedSpdxElement", "externalRefs", "referenceType",
                            "referenceLocator", "metadata", "tools", "component", "packages",
                            "files"]) | st.text(max_size=8)
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=5)
                        | st.dictionaries(keys, inner, max_size=6), max_leaves=40)


@FUZZ
@given(body=_json(), kind=st.sampled_from(["cdx", "spdx", "raw"]))
def test_random_json_never_raises(body: Any, kind: str) -> None:
    if kind == "cdx":
        doc: Any = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": body,
                    "metadata": body}
    elif kind == "spdx":
        doc = {"spdxVersion": "SPDX-2.3", "packages": body, "files": body,
               "relationships": body, "documentDescribes": body}
    else:
        doc = body
    sbom, problems = parse_sbom(json.dumps(doc).encode())
    assert sbom is not None or problems
    if sbom is not None:
        for lib in ("x/libz-12345678.so.1", "x/mod.cpython-311-x86_64-linux-gnu.so", "x/a.dll"):
            match_sbom(f"{SITE}/{lib}", lib, "a" * 64, "libz.so.1", [sbom],
                       identified=[Component("zlib", "1")])
            sbom_covers(f"{SITE}/{lib}", lib, None, None, [sbom])


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    sbom, problems = parse_sbom(b'{"bomFormat": "CycloneDX", "components": [' + data)
    assert sbom is None
    assert problems


# --------------------------------------------------------------------------- real wheels


def _cached(glob: str) -> Path:
    found = sorted(p for d in ("wheels", "wheels-id") for p in (CACHE / d).glob(glob))
    if not found:
        pytest.skip(f"{glob} not cached (run the -m network tests)")
    return found[0]


@pytest.mark.network
def test_download_cryptography() -> None:
    dest = CACHE / "wheels-id"
    if not list(dest.glob("cryptography-*-manylinux_2_28_x86_64.whl")):
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
                        "--python-version", "3.11", "-d", str(dest), "cryptography"],
                       check=True, capture_output=True, timeout=900)
    assert list(dest.glob("cryptography-*.whl"))


def _wheel_sboms(wheel: Path) -> tuple[list[ShippedSbom], str, zipfile.ZipFile]:
    t = open_target(str(wheel), ScanConfig())
    sboms, problems = read_sboms(t.fs, t.site_packages)
    assert not problems
    return sboms, t.site_packages[0], zipfile.ZipFile(wheel)


def test_pillow_sboms() -> None:
    sboms, site, z = _wheel_sboms(_cached("pillow-*-manylinux*_x86_64.whl"))
    formats = {s.shown.rsplit("/", 1)[-1]: s for s in sboms}
    aw = formats["auditwheel.cdx.json"]
    assert aw.tools[0].startswith("auditwheel ")
    assert aw.distribution == "pillow"
    assert any(c.name == "libXau" and c.purl and c.purl.startswith("pkg:rpm/")
               for c in aw.components)
    libs = [n for n in z.namelist() if n.startswith("pillow.libs/") and ".so" in n]
    matched: dict[str, str] = {}
    for member in libs:
        data = z.read(member)
        got = match_sbom(f"{site}/{member}", member, hashlib.sha256(data).hexdigest(), None,
                         sboms, distribution="pillow")
        if got:
            matched[member.split("/")[1].split("-")[0]] = got[0].name
    # the project SBOM covers most vendored libraries, auditwheel's only libXau; none covers
    # libpng, brotli, lzma or zstd: an SBOM is never complete
    assert len(matched) >= 13, matched
    assert matched["libXau"] == "libXau"
    assert matched["libjpeg"] == "libjpeg / libjpeg-turbo"
    assert matched["liblcms2"] == "Little CMS 2"
    assert matched["libwebpmux"] == "libwebp"
    assert "libpng16" not in matched
    assert "libzstd" not in matched
    exts = [n for n in z.namelist() if n.startswith("PIL/_") and n.endswith(".so")]
    for member in exts:
        got = match_sbom(f"{site}/{member}", member, None, None, sboms)
        assert got, member
        assert got[0].name == "PIL." + member[4:].split(".")[0]


def test_cryptography_sboms() -> None:
    wheel = _cached("cryptography-*-manylinux_2_28_x86_64.whl")
    sboms, site, z = _wheel_sboms(wheel)
    assert len(sboms) >= 2
    ssl = [c for s in sboms for c in s.components if c.name == "openssl"]
    assert {c.purl.split("/")[0] for c in ssl if c.purl} == {"pkg:cargo", "pkg:generic"}
    member = "cryptography/hazmat/bindings/_rust.abi3.so"
    data = z.read(member)
    assert match_sbom(f"{site}/{member}", member, None, None, sboms) == []
    binary, _ = parse_elf(BytesBlob(data))
    found = identify_binary(BytesBlob(data), member, binary)
    got = match_sbom(f"{site}/{member}", member, None, binary.soname, sboms, identified=found)
    if any(c.name == "openssl" for c in found):
        generic = next(c for c in ssl if c.purl and c.purl.startswith("pkg:generic"))
        assert [(c.name, c.version) for c in got] == [("openssl", generic.version)]


# --------------------------------------------------------------------------- declarations


def test_declared_from_metadata_and_pyproject(tmp_path: Path) -> None:
    di = f"{SITE}/demo-1.0.dist-info"
    fs = _tree(tmp_path, {
        f"{di}/METADATA": (
            "Metadata-Version: 2.5\nName: Demo\nVersion: 1.0\n"
            "Requires-Dist: nvidia-cublas-cu12>=12; sys_platform == 'linux'\n"
            "Requires-Dist: Typing_Extensions ; python_version < '3.11'\n"
            "Requires-Dist: bcrypt>=3 ; extra == 'ssh'\n"
            "Requires-External-Dep: dep:generic/zlib@>=1.2\n"
            "Requires-External: libpng (>=1.6)\n"),
        f"{di}/pyproject.toml": (
            "[project]\nname = 'demo'\ndependencies = ['numpy>=2', 7]\n"
            "[project.optional-dependencies]\nx = ['scipy-openblas32']\n"
            "[external]\nhost-requires = ['dep:virtual/interface/blas']\n"),
        f"{di}/sboms/a.cdx.json": json.dumps(CDX_17),
    })
    d = read_wheel_declarations(fs, di)
    assert d.distribution == "Demo"
    assert d.depurls >= {"dep:generic/zlib", "dep:virtual/interface/blas"}
    assert any("png" in u for u in d.depurls)
    assert d.requires_dist == {"nvidia-cublas-cu12", "typing-extensions", "bcrypt", "numpy",
                               "scipy-openblas32"}
    assert len(d.sboms) == 1
    assert not d.problems
    egg = _tree(tmp_path / "e", {"/src/demo.egg-info/PKG-INFO": "Name: eggy\n"})
    assert read_wheel_declarations(egg, "/src/demo.egg-info").distribution == "eggy"
    assert declared_from_text("not = [valid", "x").depurls == frozenset()


# --------------------------------------------------------------------------- phantoms

_ELF = Binary(BinaryFormat.ELF, 100, 64, True, 62, 0, 0, 3)


def _edge(request: str, cls: EdgeClass, *, path: str | None = None,
          location: str | None = None, provider: str | None = None, policy: bool = False,
          rule: Rule | None = None, component: Component | None = None) -> Edge:
    found = cls not in (EdgeClass.MISSING,) and (path is not None or location is not None)
    r = Resolution(f"{SITE}/demo/_ext.so", request, Outcome.FOUND if found else
                   Outcome.NOT_FOUND, path or (f"{SITE}/{location}" if location else None),
                   rule)
    return Edge(r, cls, Location(location, "demo.whl") if location else None, provider,
                policy, component=component)


def _target() -> TargetResult:
    png = "demo.libs/libpng16-1d1ba958.so.16.58.0"
    edges = (
        _edge("libc.so.6", EdgeClass.SYSTEM, path="/lib/x86_64-linux-gnu/libc.so.6"),
        _edge("libstdc++.so.6", EdgeClass.POLICY_SYSTEM, policy=True),
        _edge("python3.dll", EdgeClass.RUNTIME, provider="python"),
        _edge("libpng16-1d1ba958.so.16.58.0", EdgeClass.BUNDLED, location=png),
        _edge("libfoo-12345678.so.1", EdgeClass.BUNDLED,
              location="demo.libs/libfoo-12345678.so.1"),
        _edge("libdemo_core.so", EdgeClass.BUNDLED, location="demo/lib/libdemo_core.so"),
        _edge("libz.so.1", EdgeClass.POLICY_SYSTEM, policy=True),
        _edge("libopenblas.so.0", EdgeClass.SYSTEM, path="/usr/lib/libopenblas.so.0"),
        _edge("libcublas.so.12", EdgeClass.MISSING),
        _edge("libcudnn.so.9", EdgeClass.OTHER_DISTRIBUTION, provider="nvidia/cudnn"),
        _edge("libgomp.so.1", EdgeClass.MISSING),
        _edge("libgfortran.so.5", EdgeClass.SYSTEM, path="/usr/lib/libgfortran.so.5"),
        _edge("libfribidi.so.0", EdgeClass.SYSTEM, path="/usr/lib/libfribidi.so.0",
              component=Component("libfribidi0", "1.0", "pkg:deb/debian/libfribidi0@1.0")),
        _edge("libtorch_cpu.so", EdgeClass.OTHER_DISTRIBUTION, provider="torch"),
    )
    ext = ScannedBinary(Location("demo/_ext.so", "demo.whl"), f"{SITE}/demo/_ext.so", _ELF,
                        Role.EXTENSION, "demo", edges)
    libpng = ScannedBinary(Location(png, "demo.whl"), f"{SITE}/{png}", _ELF, Role.LIBRARY,
                           "demo", (), (Component("libpng", "1.6.58"),), sha256=PNG_SHA)
    other = ScannedBinary(Location("other/_x.so", "demo.whl"), f"{SITE}/other/_x.so", _ELF,
                          Role.EXTENSION, "other",
                          (_edge("libgomp.so.1", EdgeClass.MISSING),))
    site = LoadSite("demo/util.py", 3, "python", "ctypes.CDLL", ("libmagic.so.1", "libmagic.so"),
                    Confidence.HIGH)
    magic = DynamicLoad(site, (replace(_edge("libmagic.so.1", EdgeClass.MISSING),
                                       link=LinkKind.DLOPEN),
                               replace(_edge("libmagic.so", EdgeClass.MISSING),
                                       link=LinkKind.DLOPEN)), "demo")
    site2 = replace(site, names=("libsqlite3.so.0",))
    sqlite = DynamicLoad(site2, (replace(_edge("libsqlite3.so.0", EdgeClass.SYSTEM,
                                               path="/usr/lib/libsqlite3.so.0"),
                                         link=LinkKind.DLOPEN),), "demo")
    return TargetResult("demo.whl", TargetKind.WHEEL, (), (ext, libpng, other), (),
                        (magic, sqlite, DynamicLoad(site, (), "demo")))


def _by_request(findings: list[PhantomFinding]) -> dict[str, Category]:
    return {f.request: f.category for f in findings}


def test_classification() -> None:
    sbom = _sbom(CDX_12)
    declared = Declared(frozenset({"dep:generic/zlib", "dep:virtual/interface/blas",
                                   "dep:generic/fribidi", "dep:generic/sqlite"}),
                        frozenset({"nvidia-cublas-cu12", "nvidia-cudnn-cu12"}), (sbom,), "demo")
    findings = classify_declarations(_target(), declared)
    got = _by_request(findings)
    assert got == {
        "libc.so.6": Category.PLATFORM,
        "libstdc++.so.6": Category.PLATFORM,
        "python3.dll": Category.PLATFORM,
        "libpng16-1d1ba958.so.16.58.0": Category.BUNDLED_RECORDED,
        "libfoo-12345678.so.1": Category.BUNDLED_UNRECORDED,
        "libdemo_core.so": Category.INTERNAL,
        "libz.so.1": Category.DECLARED,
        "libopenblas.so.0": Category.DECLARED,  # provides the declared BLAS interface
        "libcublas.so.12": Category.DECLARED,  # nvidia-cublas-cu12 ships it
        "libcudnn.so.9": Category.DECLARED,
        "libgomp.so.1": Category.PHANTOM,
        "libgfortran.so.5": Category.PHANTOM,
        "libfribidi.so.0": Category.DECLARED,
        "libtorch_cpu.so": Category.PHANTOM,
        "libmagic.so.1": Category.PHANTOM,
        "libsqlite3.so.0": Category.DECLARED,
    }
    assert len(findings) == 16  # the other distribution's binary and the empty load skipped
    rec = next(f for f in findings if f.category is Category.BUNDLED_RECORDED)
    assert rec.reason.endswith("sboms/x.json: libpng@1.6.58")
    gomp = next(f for f in findings if f.request == "libgomp.so.1")
    assert gomp.depurl == "dep:virtual/interface/openmp"
    assert gomp.distribution == "demo"
    magic = next(f for f in findings if f.request == "libmagic.so.1")
    assert magic.link is LinkKind.DLOPEN
    assert magic.requester == "demo/util.py"
    torch = next(f for f in findings if f.request == "libtorch_cpu.so")
    assert "torch" in torch.reason
    # nothing declared: everything from outside is phantom; the platform stays platform;
    # without SBOMs the vendored libpng is unrecorded
    bare = _by_request(classify_declarations(_target(), Declared(distribution="demo")))
    assert bare["libz.so.1"] is bare["libcublas.so.12"] is Category.PHANTOM
    assert bare["libc.so.6"] is bare["libstdc++.so.6"] is Category.PLATFORM
    assert bare["libpng16-1d1ba958.so.16.58.0"] is Category.BUNDLED_UNRECORDED
    # all distributions when none is named
    assert len(classify_declarations(_target(), Declared())) == 17


def test_compiler_runtime_outside_policy() -> None:
    edges = (_edge("libstdc++.so.6", EdgeClass.MISSING),)
    t = TargetResult("x", TargetKind.DIRECTORY, (), (
        ScannedBinary(Location("/x/a.so"), "/x/a.so", _ELF, Role.LIBRARY, None, edges),))
    assert _by_request(classify_declarations(t, Declared()))["libstdc++.so.6"] is (
        Category.PHANTOM)
    declared = Declared(frozenset({"dep:virtual/compiler/cxx"}))
    assert _by_request(classify_declarations(t, declared))["libstdc++.so.6"] is (
        Category.DECLARED)


def test_pillow_scan_classified() -> None:
    from unveil.scan import scan  # noqa: PLC0415 - only this test scans

    wheel = _cached("pillow-*-manylinux*_x86_64.whl")
    result = scan(str(wheel), replace(ScanConfig(), hashes=True)).targets[0]
    t = open_target(str(wheel), ScanConfig())
    dist_info = next(n for n in t.fs.listdir(t.site_packages[0]) if n.endswith(".dist-info"))
    declared = read_wheel_declarations(t.fs, f"{t.site_packages[0]}/{dist_info}")
    assert declared.distribution
    assert len(declared.sboms) == 2
    got = {f.request.split("-")[0]: f.category for f in classify_declarations(result, declared)
           if f.edge.edge_class is EdgeClass.BUNDLED}
    assert got["libXau"] is Category.BUNDLED_RECORDED
    assert got["libjpeg"] is Category.BUNDLED_RECORDED
    assert got["libpng16"] is Category.BUNDLED_UNRECORDED


def test_hostile_names_are_cheap() -> None:
    import time  # noqa: PLC0415

    names = [".so" * 1365 + "!", "-libs" * 800 + "x", ".so" * 80 + "!", "a " * 2000]
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.6",
           "components": [{"name": names[i % len(names)] + str(i), "purl": "pkg:generic/"
                           + "-libs" * 700} for i in range(1500)]}
    start = time.monotonic()
    sbom, _ = parse_sbom(json.dumps(doc).encode())
    assert sbom is not None
    lib = "x/libfoo-1a2b3c4d.so.1"
    match_sbom(f"{SITE}/{lib}", lib, None, "lib" + ".so" * 1000, [sbom])
    assert time.monotonic() - start < 60  # a hang guard, not a speed check
