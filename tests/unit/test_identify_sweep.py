"""Cases a sweep of real wheels found (cramjam, rasterio, llvmlite, faiss-cpu, psycopg):
each is the general rule behind the case, on built fixtures or crafted bytes."""

from __future__ import annotations

import json
import zipfile
from io import StringIO
from pathlib import Path

from rich.console import Console

from tests.conftest import Builder
from unveil import scan
from unveil.cli.render import render_scan
from unveil.config import ScanConfig
from unveil.formats.blob import BytesBlob
from unveil.identify import component_from_owner
from unveil.identify.banners import applicable_rules, identify_bytes
from unveil.identify.owners import Owner
from unveil.identify.rules import Rule, default_rules
from unveil.identify.vendoring import vendoring_tool
from unveil.model import Component, Edge, EdgeClass, Evidence, Outcome, Resolution
from unveil.model import Rule as ModelRule
from unveil.report.cyclonedx import to_cyclonedx
from unveil.report.pep725 import _best
from unveil.report.upstreams import _project_of, upstreams
from unveil.scan import _merge_components


def _found(data: bytes,
           name: str = "_ext.cpython-311-x86_64-linux-gnu.so") -> dict[str, str | None]:
    return {c.name: c.version for c in identify_bytes(BytesBlob(data), name)}


def test_a_crate_registry_path_is_not_the_c_project() -> None:
    """A Rust crate's source path carries the crate's version (bzip2 0.5.2, the binding), not
    the C library's (bzip2 1.0.8)."""
    crate = (b"\x00/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bzip2-0.5.2/src/"
             b"bufread.rs\x00")
    assert "bzip2" not in _found(bytes(64) + crate + bytes(64))
    vendored_c = b"\x00/project/build/bzip2-1.0.8/blocksort.c\x00"
    assert _found(bytes(64) + vendored_c + bytes(64)).get("bzip2") == "1.0.8"


def test_libjpeg_abi_9_is_ijg_not_turbo() -> None:
    names = {r.project for r in applicable_rules_for("libjpeg-799ada35.so.9.6.0")}
    assert names == {"libjpeg"}
    assert {r.project for r in applicable_rules_for("libjpeg-6f1c7d49.so.62.4.0")} == {
        "libjpeg-turbo"}


def applicable_rules_for(file_name: str) -> list[Rule]:
    return list(applicable_rules(default_rules(), file_name))


def test_gdal_and_llvm_version_spellings() -> None:
    assert _found(b"\x00\x00GDAL/3.10.3\x00\x00").get("gdal") == "3.10.3"
    assert _found(b"\x00/project/gdal-3.10.3/port/cpl_conv.cpp\x00").get("gdal") == "3.10.3"
    assert _found(b"\x00llvm-mc (based on LLVM 22.1.0)\x00").get("llvm") == "22.1.0"
    # A binding named after LLVM is not LLVM by its name (it may embed it: then the bytes say).
    assert applicable_rules_for("libllvmlite.so") == []


def test_auditwheel_hash_before_the_first_dot() -> None:
    assert vendoring_tool("faiss_cpu.libs/libopenblaso-r0-d77a1985.3.15.so") == "auditwheel"
    assert vendoring_tool("pkg.libs/libfoo-1234abcd.so.1.2") == "auditwheel"
    assert vendoring_tool("pkg/libfoo-1234abcd.so") is None  # not in a .libs directory


def test_sbom_name_alone_cannot_pick_between_two_abis(tmp_path: Path, build: Builder) -> None:
    """One SBOM entry named like two vendored copies of a library with different ABIs
    describes neither (auditwheel's RPM entry for e2fsprogs' libcom_err.so.2 is not krb5's
    libcom_err.so.3)."""
    two = build.lib("w/pkg.libs/libcom_err-2abe824b.so.2.1", soname="libcom_err-2abe824b.so.2.1")
    three = build.lib("w/pkg.libs/libcom_err-55c5739a.so.3.0", soname="libcom_err-55c5739a.so.3.0")
    one = build.lib("w/pkg.libs/libkeyutils-dfe70bd6.so.1.5", soname="libkeyutils-dfe70bd6.so.1.5")
    sbom = {"bomFormat": "CycloneDX", "specVersion": "1.4", "components": [
        {"type": "library", "name": "libcom_err", "version": "1.42.9-19.el7",
         "purl": "pkg:rpm/centos/libcom_err@1.42.9-19.el7"},
        {"type": "library", "name": "keyutils-libs", "version": "1.5.8-3.el7",
         "purl": "pkg:rpm/centos/keyutils-libs@1.5.8-3.el7"}]}
    wheel = tmp_path / "pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n")
        z.writestr("pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n")
        z.writestr("pkg-1.0.dist-info/sboms/auditwheel.cdx.json", json.dumps(sbom))
        z.writestr("pkg-1.0.dist-info/RECORD", "")
        for lib in (two, three, one):
            z.write(lib, f"pkg.libs/{lib.name}")
    result = scan(str(wheel), ScanConfig(dynload=False))
    versions = {b.location.path.rsplit("/", 1)[-1]: [(c.name, c.version) for c in b.components]
                for t in result.targets for b in t.binaries}
    assert ("libcom_err", "1.42.9") not in versions["libcom_err-2abe824b.so.2.1"]
    assert ("libcom_err", "1.42.9") not in versions["libcom_err-55c5739a.so.3.0"]
    assert any(v == "1.5.8" for _n, v in versions["libkeyutils-dfe70bd6.so.1.5"])


def test_version_function_of_an_embedded_library(build: Builder) -> None:
    """A file not named after a library, carrying it (a presence pattern) and exporting its
    version variable, gets that library's version."""
    lib = build.lib("ext/_binding.cpython-311-x86_64-linux-gnu.so", code=(
        'const char *xmlParserVersion = "21406";\n'
        'const char msg[] = "xmlParseCharRef: invalid xmlChar value %d\\n";\n'
        "const char *use(void) { return msg; }\n"))
    result = scan(str(lib.parent), ScanConfig(dynload=False))
    b = next(b for t in result.targets for b in t.binaries)
    found = {c.name: c.version for c in b.components}
    assert found.get("libxml2") == "2.14.6"


def test_external_names_a_system_library_by_its_project_not_its_distro_package() -> None:
    """[external] wants dep:generic/expat, not the Debian package libexpat1 that owns it."""
    owner = component_from_owner(Owner("dpkg", "libexpat1", "2.5.0-1", "amd64", "expat",
                                       "debian-12"))
    edge = Edge(Resolution("/x/libgdal.so", "libexpat.so.1", Outcome.FOUND,
                           "/lib/x86_64-linux-gnu/libexpat.so.1", ModelRule.CACHE),
                EdgeClass.POLICY_SYSTEM, component=owner)
    assert _best(edge).url == "dep:generic/expat"
    upstream = Component("gdal", "3.10.3", "pkg:generic/gdal@3.10.3")
    vendored = Edge(Resolution("/x/_base.so", "libgdal-c8c9c467.so.36.3.10.3", Outcome.FOUND,
                               "/x/libgdal-c8c9c467.so.36.3.10.3", ModelRule.RPATH),
                    EdgeClass.BUNDLED, component=upstream)
    assert _best(vendored).url == "dep:generic/gdal"


_ZLIB_BANNER = ('const char v[] = " deflate 1.3.1 Copyright 1995-2024 Jean-loup Gailly and '
                'Mark Adler ";\nint f(void) { return v[0]; }\n')


def test_a_file_nothing_names_is_not_what_it_embeds(tmp_path: Path, build: Builder) -> None:
    """libmystery.so.1 holds zlib's banner and nothing names the file itself: its first
    component (the file) is a stand-in, zlib comes after it as embedded, and no record or
    output calls the file zlib (torch/bin/test_jit and protobuf, ruff and rustc)."""
    build.root = tmp_path
    build.lib("tree/libmystery.so.1", code=_ZLIB_BANNER)
    build.lib("tree/libz.so.1", code=_ZLIB_BANNER)  # named by the zlib rule: zlib itself
    result = scan(str(tmp_path / "tree"), ScanConfig(dynload=False))
    by_name = {Path(b.location.path).name: b for b in result.targets[0].binaries}
    mystery = by_name["libmystery.so.1"].components
    assert mystery[0].unidentified
    assert mystery[0].name == "libmystery.so.1"
    assert mystery[0].version is None
    assert [(c.name, c.version) for c in mystery[1:]] == [("zlib", "1.3.1")]
    zlib = by_name["libz.so.1"].components
    assert not zlib[0].unidentified
    assert (zlib[0].name, zlib[0].version) == ("zlib", "1.3.1")

    out = StringIO()
    render_scan(Console(file=out, width=200, no_color=True), result)
    line = next(x for x in out.getvalue().splitlines() if "libmystery.so.1" in x)
    assert "no known project names it" in line
    assert "embedded: zlib 1.3.1" in line

    bom = json.loads(to_cyclonedx(result, "test"))
    comp = next(c for c in bom["components"] if c["name"] == "libmystery.so.1")
    assert comp["type"] == "file"
    assert [c["name"] for c in comp["components"]] == ["zlib"]

    listed = {p["project"]: p for p in upstreams(result)}
    assert "libmystery.so.1" not in listed
    assert listed["zlib"]["how"] == ["bundled", "embedded"]


def test_an_sbom_and_the_rules_spelling_one_project_make_one_component() -> None:
    """pillow's SBOM says "Little CMS 2" and "FreeType", the rules lcms2 and freetype: one
    component each, with the rules' name, the SBOM's version and purl, both evidences, and
    a CPE for the version kept; what the file embeds stays apart."""
    def sbom(name: str, version: str, purl: str) -> Component:
        detail = f"pillow-13.0.0.dist-info/sboms/auditwheel.cdx.json: {name}@{version}"
        return Component(name, version, purl, (), (Evidence("sbom", detail, 0.9, "name"),
                                                    Evidence("sbom", detail, 0.9, "version")))

    ours = Component("lcms2", "2.19", "pkg:generic/lcms2@2.19",
                     ("cpe:2.3:a:littlecms:little_cms:2.19:*:*:*:*:*:*:*",),
                     (Evidence("filename", "liblcms2.so.2.0.19", 0.3, "name"),
                      Evidence("version-symbol", "cmsGetEncodedCMMversion() returns 2190", 0.9,
                               "version")), homepage="https://www.littlecms.com")
    bzip2 = Component("bzip2", "1.0.8", "pkg:generic/bzip2@1.0.8", (),
                      (Evidence("banner", "bzip2/libbzip2 1.0.8", 0.8, "version"),))
    merged = _merge_components([sbom("Little CMS 2", "2.19.1", "pkg:generic/littlecms2@2.19.1")],
                               (ours, bzip2))
    assert [c.name for c in merged] == ["lcms2", "bzip2"]
    lcms = merged[0]
    assert (lcms.version, lcms.purl) == ("2.19.1", "pkg:generic/littlecms2@2.19.1")
    assert lcms.cpes == ("cpe:2.3:a:littlecms:little_cms:2.19.1:*:*:*:*:*:*:*",)
    assert {e.method for e in lcms.evidence} == {"sbom", "filename", "version-symbol"}

    freetype = Component("freetype", None, "pkg:generic/freetype", (),
                         (Evidence("filename", "libfreetype.so.6", 0.3, "name"),),
                         homepage="https://freetype.org")
    merged = _merge_components([sbom("FreeType", "2.14.3", "")], (freetype,))
    assert [(c.name, c.version, c.purl) for c in merged] == [
        ("freetype", "2.14.3", "pkg:generic/freetype@2.14.3")]
    assert merged[0].cpes


def test_upstream_listing_groups_a_distributions_own_modules() -> None:
    """pillow's SBOM names each extension module (``pkg:pypi/pillow@13.0.0#c-ext/PIL._avif``):
    the upstream listing shows pillow once, not one project per module."""
    ext = Component("PIL._avif", "13.0.0", "pkg:pypi/pillow@13.0.0#c-ext/PIL._avif")
    assert _project_of(ext) == "pillow"
    assert _project_of(Component("zlib", "1.3.1", "pkg:generic/zlib@1.3.1")) == "zlib"
    assert _project_of(Component("odd", None, "pkg:pypi/")) == "odd"  # not a purl: its name
