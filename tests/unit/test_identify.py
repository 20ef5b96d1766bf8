"""Banner and version-symbol identification: the rule table, the engine, and a hand-labelled
truth set of libraries vendored in real wheels (``-m network``)."""

from __future__ import annotations

import fnmatch
import gzip
import json
import os
import random
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import unveil
from tests.conftest import Builder
from tests.integration.packages import write_wheel
from unveil.cli.host import detect_host
from unveil.cli.render import render_scan
from unveil.formats.blob import BytesBlob
from unveil.identify.banners import (
    FILENAME_CONFIDENCE,
    ScanLimits,
    _Keywords,
    applicable_rules,
    dehash,
    identify_bytes,
    keep_regions,
    scan_regions,
)
from unveil.identify.debian import debian_component, debian_packages, index_source
from unveil.identify.rules import (
    POST,
    PRE,
    Pattern,
    Rule,
    RuleError,
    default_rules,
    load_rules,
    parse_rules,
    required_literal,
    shipped_rules_text,
)
from unveil.model import Component

RULES = default_rules()
ALL_PATTERNS = [(r, p) for r in RULES.rules for p in r.patterns]
TRUTH = Path(__file__).parent.parent / "data" / "identify-truth.json"
CACHE = Path.home() / ".cache" / "unveil-tests"

REQUIRED = {
    "zlib", "zlib-ng", "libpng", "libjpeg-turbo", "libtiff", "libwebp", "openjpeg", "giflib",
    "freetype", "harfbuzz", "fribidi", "lcms2", "libavif", "dav1d", "aom", "libde265", "libheif",
    "libxml2", "libxslt", "expat", "openssl", "curl", "nghttp2", "libssh2", "zstd", "xz", "bzip2",
    "brotli", "lz4", "snappy", "c-blosc", "c-blosc2", "openblas", "libgfortran", "libquadmath",
    "libgomp", "libstdc++", "libgcc_s", "hdf5", "netcdf-c", "gdal", "proj", "geos", "sqlite",
    "postgresql-libpq", "krb5", "openldap", "cyrus-sasl", "libffi", "libyaml", "zeromq",
    "libsodium", "librdkafka", "ffmpeg", "sdl2", "libogg", "libvorbis", "flac", "opus", "mpg123",
    "libsndfile", "pcre2", "icu", "glib", "libuv", "protobuf", "abseil", "re2", "grpc", "arrow",
    "tbb", "llvm",
}


def _identify(data: bytes, name: str, soname: str | None = None, **kw: Any) -> list[Component]:
    return identify_bytes(BytesBlob(data), name, soname, RULES, **kw)


def _by_name(components: list[Component]) -> dict[str, Component]:
    return {c.name: c for c in components}


def _sample_name(rule: Rule) -> str:
    """A file name the rule applies to, made from its first glob."""
    return rule.files[0].replace("*", ".so.1") if "*" in rule.files[0] else rule.files[0]


# ------------------------------------------------------------------------- the table


def test_table_covers_the_required_projects() -> None:
    projects = {r.project for r in RULES.rules}
    assert projects >= REQUIRED, sorted(REQUIRED - projects)
    assert len(RULES) >= 70


def test_shipped_table_passes_every_check() -> None:
    """A scan loads the shipped table without compiling its regexes (``check=False``):
    this is where they are checked, each against its example, and the result must be the
    table the scans use."""
    checked = load_rules(shipped_rules_text(), check=True)
    assert checked == RULES
    broken = json.loads(shipped_rules_text())
    broken["rules"][0]["patterns"] = [{"regex": "v(\\d+\\.\\d+", "confidence": 0.9,
                                       "example": "v1.2"}]
    load_rules(json.dumps(broken), check=False)  # not compiled: not seen
    with pytest.raises(RuleError, match="does not compile"):
        load_rules(json.dumps(broken))


def test_every_rule_is_complete() -> None:
    for rule in RULES.rules:
        assert rule.files, rule.project
        assert rule.source.startswith("http"), rule.project
        if rule.cpe:
            cpe = rule.cpe_for("1.2.3")
            assert cpe is not None
            assert cpe.split(":")[5] == "1.2.3"
            assert len(cpe.split(":")) == 13
        # a rule gives a version some way, or says why it cannot
        assert rule.patterns or rule.version_symbols or rule.note, rule.project


@pytest.mark.parametrize(("rule", "pattern"), ALL_PATTERNS,
                         ids=[f"{r.project}-{i}" for i, (r, _) in enumerate(ALL_PATTERNS)])
def test_pattern_is_sound(rule: Rule, pattern: Pattern) -> None:
    assert pattern.regex.groups == (0 if pattern.presence else 1)
    m = pattern.regex.search(pattern.example)
    assert m is not None
    assert pattern.keyword in pattern.example[m.start():m.end()]
    if pattern.scope == "embedded":
        # run on every binary: must be gated by a real literal, never by a lone byte
        assert len(pattern.keyword) >= 3, (rule.project, pattern.keyword)
    if not pattern.presence:
        version = m.group(1).decode()
        assert re.match(r"\d", version)
        # never a soname: the example's version is not one of the rule's ABI numbers
        for soname in rule.sonames:
            assert not soname.endswith("." + version), (rule.project, soname, version)


def _adversarial(pattern: Pattern) -> Iterator[bytes]:
    size = 1 << 20
    rng = random.Random(42)
    kw = pattern.keyword or b"x"
    yield bytes(rng.getrandbits(8) for _ in range(size))
    yield b"1." * (size // 2)
    yield b"\x00" * size
    yield b"a" * size
    yield (kw + b"1.1.1.1.1.1.1.1.1.1 ") * (size // (len(kw) + 20))
    yield (kw + b"9" * 64 + b".") * (size // (len(kw) + 65))
    yield (pattern.example[:-1]) * (size // max(1, len(pattern.example) - 1))


@pytest.mark.parametrize(("rule", "pattern"), ALL_PATTERNS,
                         ids=[f"{r.project}-{i}" for i, (r, _) in enumerate(ALL_PATTERNS)])
def test_pattern_does_not_backtrack_catastrophically(rule: Rule, pattern: Pattern) -> None:
    for data in _adversarial(pattern):
        start = time.perf_counter()
        for n, _ in enumerate(pattern.regex.finditer(data)):
            if n > 100_000:
                break
        elapsed = time.perf_counter() - start
        assert elapsed < 1.0, (rule.project, pattern.source, data[:40], elapsed)


def test_projects_and_purls_are_unique() -> None:
    assert len({r.project for r in RULES.rules}) == len(RULES)
    for rule in RULES.rules:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", rule.purl_name), rule.purl_name


def _doc(**rule: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "project": "demo", "purl_name": "demo", "homepage": "https://example.org/",
        "source": "https://example.org/src", "files": ["libdemo*"],
        "patterns": [{"regex": r"demo version (\d+\.\d+)", "confidence": 0.9,
                      "example": "demo version 1.2"}],
    }
    base.update(rule)
    return {"schema": 1, "rules": [base]}


@pytest.mark.parametrize(("change", "message"), [
    ({"patterns": [{"regex": r"demo (\d+)\.(\d+)", "confidence": 0.9,
                    "example": "demo 1.2"}]}, "capturing group"),
    ({"patterns": [{"regex": r"demo \d+\.\d+", "confidence": 0.9,
                    "example": "demo 1.2"}]}, "capturing group"),
    ({"patterns": [{"regex": r"demo (\d+\.\d+", "confidence": 0.9,
                    "example": "demo 1.2"}]}, "does not compile"),
    ({"patterns": [{"regex": r"demo \xZZversion (\d+\.\d+)", "confidence": 0.9,
                    "example": "demo 1.2"}]}, "does not compile"),
    ({"patterns": [{"regex": r"demo (\d+\.\d+)", "confidence": 1.5,
                    "example": "demo 1.2"}]}, "confidence"),
    ({"patterns": [{"regex": r"demo (\d+\.\d+)", "confidence": 0.9,
                    "example": "other 1.2"}]}, "does not match"),
    ({"patterns": [{"regex": r"demo (\d+\.\d+)", "confidence": 0.9, "scope": "everywhere",
                    "example": "demo 1.2"}]}, "scope"),
    ({"patterns": [{"regex": r"demo (\d+)", "confidence": 0.9,
                    "example": "demo 12"}]}, "mark it literal"),
    ({"patterns": [{"regex": r"(\d+) demo", "confidence": 0.9, "literal": True,
                    "example": "12 demo"}]}, "literal characters"),
    ({"patterns": [{"regex": r"(?P<v>\d+\.\d+)", "confidence": 0.9,
                    "example": "1.2"}]}, "named groups"),
    ({"patterns": [{"regex": "demo (\\d+\\.\\d+)" + "x" * 200, "confidence": 0.9,
                    "example": "demo 1.2" + "x" * 200}]}, "too far"),
    ({"cpe": "cpe:2.3:a:demo:demo:1.0:*:*:*:*:*:*:*"}, "cpe"),
    ({"files": []}, "at least one glob"),
    ({"homepage": "example.org"}, "not a URL"),
    ({"colour": "blue"}, "unknown keys"),
    ({"supersedes": ["nobody"]}, "supersedes unknown"),
    ({"version_symbols": [{"symbol": "demo_version", "kind": "ret-float"}]}, "kind"),
    ({"version_symbols": [{"symbol": "demo_version", "kind": "ret-int"}]}, "needs a format"),
    ({"version_symbols": [{"symbol": "demo_version", "kind": "ret-int",
                           "format": "roman"}]}, "format"),
])
def test_bad_tables_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_rules(_doc(**change))


def test_table_shape_errors() -> None:
    with pytest.raises(RuleError):
        load_rules("{not json")
    with pytest.raises(RuleError):
        parse_rules({"schema": 2, "rules": []})
    doc = _doc()
    doc["rules"].append(dict(doc["rules"][0]))
    with pytest.raises(RuleError, match="two rules"):
        parse_rules(doc)
    assert len(parse_rules(_doc())) == 1


@pytest.mark.parametrize(("regex", "literal"), [
    (r"libpng version (\d+\.\d+\.\d+)", b"libpng version "),
    (r"SSH-2\.0-libssh2_(\d+\.\d+\.\d+)", b"SSH-2.0-libssh2_"),
    (r"(?<![\x20-\x7e])expat_(\d+\.\d+\.\d+)\x00", b"expat_"),
    (r"OpenSSL (\d+)  ?(?:FIPS )?x", b"OpenSSL "),
    (r"[\x00 -](?:de|in)flate (\d+) Copyright 1995-\d{4} ", b" Copyright 1995-"),
    (r"abcd?ef", b"abc"),
    (r"a|bcdef", b""),
    (r"(?:one)?TBB: VERSION\t+(\d+)", b"TBB: VERSION\t"),
])
def test_required_literal(regex: str, literal: bytes) -> None:
    assert required_literal(regex) == literal


# ------------------------------------------------------------------------- file names


@pytest.mark.parametrize(("name", "plain"), [
    ("libpng16-1d1ba958.so.16.58.0", "libpng16.so.16.58.0"),
    ("libgfortran-040039e1-0352e75f.so.5.0.0", "libgfortran.so.5.0.0"),
    ("libscipy_openblas64_-32a4b2a6.so", "libscipy_openblas64_.so"),
    ("libopenblasp-r0-59ffcd50.3.15.so", "libopenblasp-r0.3.15.so"),
    ("libopenblas-9e6d6a4ba5e0bdd0b8a5ac4ffbb1f3ad.dll", "libopenblas.dll"),
    ("msvcp140-0f2ea95580b32bcfc81c235d5751ce78.dll", "msvcp140.dll"),
    ("librdkafka-0cb94173.so.1", "librdkafka.so.1"),
    ("lib/python3.11/site-packages/pillow.libs/libtiff-20b7e810.so.6.3.0", "libtiff.so.6.3.0"),
    ("libz.so.1", "libz.so.1"),
    ("libfoo-bar.so", "libfoo-bar.so"),
    ("libsfparse-e1f35c00.so", "libsfparse.so"),
])
def test_dehash(name: str, plain: str) -> None:
    assert dehash(name) == plain


@pytest.mark.parametrize(("name", "project"), [
    ("libpng16-1d1ba958.so.16.58.0", "libpng"),
    ("libgfortran-040039e1-0352e75f.so.5.0.0", "libgfortran"),
    ("libopenblas-9e6d6a4ba5e0bdd0b8a5ac4ffbb1f3ad.dll", "openblas"),
    ("libscipy_openblas64_-32a4b2a6.so", "openblas"),
    ("libjpeg-6dc8d115.so.62.4.0", "libjpeg-turbo"),
    ("libwebpdemux-9fe2abcc.so.2.0.17", "libwebp"),
    ("libsharpyuv-0066295b.so.0.1.2", "libwebp"),
    ("libcom_err-04a6d4a9.so.3.0", "krb5"),
    ("libhdf5_hl-69da89c9.so.320.0.0", "hdf5"),
    ("libz.so.1", "zlib"),
    ("libzstd.so.1", "zstd"),
    ("LIBCRYPTO-3-X64.DLL".lower(), "openssl"),
    ("libhogweed-006f41d4.so.6.11", "nettle"),
    ("libsz-c6be10dd.so.2.0.1", "libaec"),
    ("libngtcp2_crypto_ossl-741c35a5.so.0.3.1", "ngtcp2"),
    ("libcrypt-bc2db45e.so.1", "libxcrypt"),
    ("libpcre-9513aab5.so.1.2.0", "pcre"),
    ("libx264-d6533a8d.so.165", "x264"),
    ("libx265-f5385bb8.so.216", "x265"),
    ("libSvtAv1Enc.3.0.2.dylib", "svt-av1"),
])
def test_file_names_select_rules(name: str, project: str) -> None:
    assert [r.project for r in applicable_rules(RULES, name)] == [project]


def test_unrelated_names_select_nothing() -> None:
    for name in ("libzmq-2f02442c.so.5.2.5", "libzstd.so.1", "libz-ng.so.2"):
        assert "zlib" not in [r.project for r in applicable_rules(RULES, name)]
    assert applicable_rules(RULES, "_imaging.cpython-311-x86_64-linux-gnu.so") == ()
    # e2fsprogs' com_err (.so.2) is not krb5's (.so.3)
    assert [r.project for r in applicable_rules(RULES, "libcom_err.so.2.1")] == ["e2fsprogs"]
    # libcrypt is not libcrypto, PCRE1 is not PCRE2
    assert [r.project for r in applicable_rules(RULES, "libcrypto.so.3")] == ["openssl"]
    assert [r.project for r in applicable_rules(RULES, "libpcre2-8.so.0")] == ["pcre2"]


def test_soname_hint_selects_a_rule() -> None:
    got = applicable_rules(RULES, "renamed.so", "libpng16-1d1ba958.so.16")
    assert [r.project for r in got] == ["libpng"]


# ------------------------------------------------------------------------- synthetic blobs


def _noise(n: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.getrandbits(8) for _ in range(n))


@pytest.mark.parametrize(("rule", "pattern"), ALL_PATTERNS,
                         ids=[f"{r.project}-{i}" for i, (r, _) in enumerate(ALL_PATTERNS)])
def test_each_example_is_found_in_a_blob(rule: Rule, pattern: Pattern) -> None:
    data = _noise(5000) + b"\x00" + pattern.example + b"\x00" + _noise(5000, 8)
    name = _sample_name(rule) if pattern.scope == "file" else "_ext.cpython-311.so"
    got = _by_name(_identify(data, name))
    assert rule.project in got
    component = got[rule.project]
    m = pattern.regex.search(pattern.example)
    assert m is not None
    if pattern.presence:
        assert component.version is None
    else:
        assert component.version is not None
        assert m.group(1).decode().startswith(component.version)
        assert component.purl == f"pkg:generic/{rule.purl_name}@{component.version}"
        banner = [e for e in component.evidence if e.method == "banner"]
        assert banner
        assert banner[0].field == "version"
        if rule.cpe:
            assert component.cpes


def test_one_pass_keyword_search_finds_what_the_searches_one_by_one_find(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Hyperscan finds the keywords in one pass; without it (``present`` gives None) each
    is searched in turn.  Both must identify the same, for every example in the table,
    keywords with NUL bytes (``\\x00LAME``) and short ones included."""
    pytest.importorskip("hyperscan")
    keywords = _Keywords((b"\x00LAME", b"OpenSSL ", b"-2", b"\x00"))
    assert keywords.always == {b"-2", b"\x00"}
    assert keywords.present(b"x\x00LAME 3.100 OpenSSX") == {b"\x00LAME", b"-2", b"\x00"}
    for rule, pattern in ALL_PATTERNS:
        data = _noise(3000) + b"\x00" + pattern.example + b"\x00" + _noise(3000, 8)
        name = _sample_name(rule) if pattern.scope == "file" else "_ext.cpython-311.so"
        fast = _identify(data, name)
        with monkeypatch.context() as m:
            m.setattr(_Keywords, "present", lambda self, data: None)
            slow = _identify(data, name)
        assert fast == slow, rule.project


def test_file_scoped_patterns_need_the_name() -> None:
    data = _noise(3000) + b"\x001.44.2\x00" + _noise(3000)
    assert _by_name(_identify(data, "libuv-0123abcd.so.1.0.0"))["libuv"].version == "1.44.2"
    assert _identify(data, "unrelated.so") == []


def test_embedded_can_be_switched_off() -> None:
    data = b"\x00libpng version 1.6.58\x00"
    assert [c.name for c in _identify(data, "_ext.so")] == ["libpng"]
    assert _identify(data, "_ext.so", embedded=False) == []
    assert _identify(data, "libpng16.so.16", embedded=False)[0].version == "1.6.58"


def test_component_fields() -> None:
    data = _noise(100) + b"\x00OpenSSL 3.0.19 27 Jan 2026\x00" + _noise(100)
    (c,) = _identify(data, "libcrypto-fa202293.so.3")
    assert c.name == "openssl"
    assert c.version == "3.0.19"
    assert c.purl == "pkg:generic/openssl@3.0.19"
    assert c.cpes == ("cpe:2.3:a:openssl:openssl:3.0.19:*:*:*:*:*:*:*",)
    assert c.homepage == "https://www.openssl.org/"
    assert c.source == "https://github.com/openssl/openssl"
    assert c.conflicts == ()
    methods = [e.method for e in c.evidence]
    assert methods == ["banner", "filename"]
    assert c.evidence[0].detail == "OpenSSL 3.0.19 27 Jan 2026"
    assert c.evidence[1].detail == "libcrypto.so.3"
    assert c.evidence[1].confidence <= 0.3


def test_conflicting_versions_keep_the_best() -> None:
    data = (b"\x00OpenSSL 3.0.19 27 Jan 2026\x00" + _noise(4000) +
            b"\x00OpenSSL 1.1.1k  FIPS 25 Mar 2021\x00" + _noise(4000) +
            b"\x00OpenSSL 3.0.19 27 Jan 2026\x00")
    (c,) = _identify(data, "_ext.so")
    assert c.version == "3.0.19"  # seen twice
    assert c.conflicts == ("1.1.1k",)


def test_weak_patterns_must_be_unambiguous() -> None:
    one = _noise(500) + b"\x001.44.2\x00" + _noise(500)
    two = one + b"\x002.0.7\x00" + _noise(500, 9)
    assert _identify(one, "libuv.so.1")[0].version == "1.44.2"
    (c,) = _identify(two, "libuv.so.1")
    assert c.version is None
    assert c.conflicts == ()


@pytest.mark.parametrize("marker", [b" zlib-ng 2.0.7 forked from zlib\x00",
                                    b" zlib-ng 2.0.7\x00"])
def test_zlib_ng_supersedes_zlibs_compat_banner(marker: bytes) -> None:
    data = (b"\x00 deflate 1.2.11 Copyright 1995-2022 Jean-loup Gailly and Mark Adler \x00"
            + marker)
    for name in ("_ext.so", "libz.1.3.1.zlib-ng.dylib"):
        assert [(c.name, c.version) for c in _identify(data, name)] == [("zlib-ng", "2.0.7")]


def test_banner_straddling_a_chunk_boundary() -> None:
    banner = b"\x00LIBTIFF, Version 4.7.2\x00"
    for cut in range(1, len(banner)):
        data = _noise(4096 - cut) + banner + _noise(5000)
        got = _identify(data, "_ext.so", limits=ScanLimits(chunk=4096))
        assert [(c.name, c.version) for c in got] == [("libtiff", "4.7.2")], cut


def test_large_non_elf_is_scanned_at_both_ends() -> None:
    limits = ScanLimits(whole_file=1 << 16, edge=1 << 14)
    data = (b"\x00libpng version 1.6.1\x00" + _noise(1 << 17) +
            b"\x00LIBTIFF, Version 4.7.2\x00" + _noise(1 << 17, 3) +
            b"\x00libjpeg-turbo version 3.2.0\x00")
    assert scan_regions(BytesBlob(data), limits) == [(0, 1 << 14), (len(data) - (1 << 14),
                                                                   1 << 14)]
    got = {c.name for c in _identify(data, "x.bin", limits=limits)}
    assert got == {"libpng", "libjpeg-turbo"}


@pytest.mark.parametrize(("name", "soname"), [
    ("libtiff.so.6", "libtiff.so.6"),
    ("libjpeg.so.62", "libjpeg.so.62"),
    ("libpng16-1d1ba958.so.16.58.0", "libpng16-1d1ba958.so.16"),
    ("libssl.so.1.1", "libssl.so.1.1"),
    ("libzstd-40ad5e7e.so.1.5.7", "libzstd-40ad5e7e.so.1"),
    ("libicuuc.so.72", "libicuuc.so.72"),
    ("libarrow.so.2600", "libarrow.so.2600"),
    ("libavcodec.so.59.37.100", "libavcodec.so.59"),
])
def test_a_soname_number_is_not_a_version(name: str, soname: str) -> None:
    (c,) = _identify(_noise(2000), name, soname)
    assert c.version is None
    assert c.cpes == ()
    assert c.purl is not None
    assert "@" not in c.purl
    assert [(e.method, e.confidence <= FILENAME_CONFIDENCE) for e in c.evidence] == [
        ("filename", True)]


def test_no_evidence_no_component() -> None:
    assert _identify(_noise(10000), "_ext.cpython-311-x86_64-linux-gnu.so") == []
    assert _identify(b"", "libpng.so") == [] or _identify(b"", "libpng.so")[0].version is None


# ------------------------------------------------------------------------- real ELF files

_VERSION_SYMBOLS_C = r"""
int WebPGetDecoderVersion(void) { return 0x010600; }
const char *hb_version_string(void) { return "14.5.0"; }
void zmq_version(int *a, int *b, int *c) { *a = 4; *b = 3; *c = 5; }
const int xsltLibxsltVersion = 10143;
const char sqlite3_version[] = "3.46.1";
const char *const xmlParserVersion = "21406";
const unsigned int glib_major_version = 2, glib_minor_version = 84, glib_micro_version = 1;
int BrotliDecoderVersion(void) { return 0x1002001; }
unsigned JxlDecoderVersion(void) { return 11002; }
const char *ares_version(int *version) { if (version) *version = 0x012209; return "1.34.9"; }
typedef struct { unsigned char major, minor, patch; } SDL_version;
const SDL_version *IMG_Linked_Version(void) {
    static SDL_version v; v.major = 2; v.minor = 6; v.patch = 3; return &v; }
"""


@pytest.mark.parametrize("opt", ["-O2", "-O0"])
def test_version_symbols_in_a_real_elf(build: Builder, opt: str) -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("version symbols are decoded for x86-64 only")
    lib = build.lib("libdemo.so", code=_VERSION_SYMBOLS_C, extra=[opt])
    data = lib.read_bytes()
    expect = {
        "libwebp.so.7": ("libwebp", "1.6.0"),
        "libharfbuzz.so.0": ("harfbuzz", "14.5.0"),
        "libzmq.so.5": ("zeromq", "4.3.5"),
        "libxslt.so.1": ("libxslt", "1.1.43"),
        "libsqlite3.so.0": ("sqlite", "3.46.1"),
        "libxml2.so.2": ("libxml2", "2.14.6"),
        "libglib-2.0.so.0": ("glib", "2.84.1"),
        "libbrotlidec.so.1": ("brotli", "1.2.1"),
        "libjxl.so.0.11": ("libjxl", "0.11.2"),  # major*10^6 + minor*10^3 + patch
        # the string returned after a guarded store of the number (pycares, gevent)
        "libcares.so.2": ("c-ares", "1.34.9"),
        # a static SDL_version filled with constants, its address returned (pygame)
        "libSDL2_image-2.0.so.0": ("sdl2-image", "2.6.3"),
    }
    if opt == "-O0":  # unoptimised stores go through the stack: not a shape we decode
        del expect["libzmq.so.5"]
        del expect["libcares.so.2"]
        del expect["libSDL2_image-2.0.so.0"]
    for name, (project, version) in expect.items():
        got = _by_name(_identify(data, name))
        assert got[project].version == version, (name, opt)
        assert got[project].evidence[0].method == "version-symbol"


def test_hostile_and_truncated_files_never_raise(build: Builder) -> None:
    lib = build.lib("libz.so.1", code=_VERSION_SYMBOLS_C + 'const char b[] = "\\n deflate '
                    '1.3.1 Copyright 1995-2024 J";\n')
    good = lib.read_bytes()
    rng = random.Random(3)
    cuts = [*range(0, 256, 7), *range(256, len(good), max(1, len(good) // 60))]
    for cut in cuts:
        _identify(good[:cut], "libz.so.1")
    for _ in range(300):
        bad = bytearray(good)
        for _ in range(rng.randint(1, 40)):
            bad[rng.randrange(len(bad))] = rng.getrandbits(8)
        _identify(bytes(bad), "libwebp.so.7")
    for head in (b"MZ" + b"\xff" * 200, b"\xcf\xfa\xed\xfe" + b"\xff" * 200,
                 b"\x7fELF\x02\x01\x01" + b"\xff" * 200, b"\x7fELF\x01\x02\x01" + b"\x00" * 60):
        assert _identify(head, "libpng.so")[0].version is None


def test_regions_skip_code(build: Builder) -> None:
    lib = build.lib("libbanner.so", code='const char b[] = "\\nLIBTIFF, Version 4.7.2";\n'
                    'int f(int x) { return x * 3; }\n')
    data = lib.read_bytes()
    regions = scan_regions(BytesBlob(data))
    text = subprocess.run(["readelf", "-SW", str(lib)], capture_output=True, text=True,
                          check=False).stdout
    m = re.search(r"\.text\s+PROGBITS\s+\S+\s+(\S+)\s+(\S+)", text)
    if m:
        start, size = int(m.group(1), 16), int(m.group(2), 16)
        for off, n in regions:
            assert off + n <= start or off >= start + size
    assert [(c.name, c.version) for c in _identify(data, "_ext.so")] == [("libtiff", "4.7.2")]


@pytest.mark.parametrize("layout", [[], ["-Wl,-z,noseparate-code"]])
def test_keep_regions_cover_the_scanned_regions(build: Builder, layout: list[str]) -> None:
    """Judged from the program headers alone (an inflating member reaches the section
    headers last), the ranges kept for banner scanning cover what is then scanned: the
    read-only segments, or the stretch before .eh_frame_hdr in one executable segment."""
    lib = build.lib("libbanner.so", extra=layout,
                    code='const char b[] = "\\nLIBTIFF, Version 4.7.2";\n'
                         'char d[64] = "data";\nint f(int x) { return x * 3; }\n')
    blob = BytesBlob(lib.read_bytes())
    keep = keep_regions(blob)
    assert keep
    regions = scan_regions(blob)
    assert regions
    for off, n in regions:
        assert any(k <= off and off + n <= k + m for k, m in keep), (off, n, keep)


def test_a_mention_of_a_linked_library_is_not_an_embedded_copy(build: Builder) -> None:
    tiff = build.lib("libtiff.so.6", soname="libtiff.so.6")
    gdal = build.lib("libgdal.so.32", soname="libgdal.so.32", needs=[str(tiff)],
                     code='const char v[] = "LIBTIFF, Version 4.5.0\\nCopyright";\n'
                          'const char *f(void) { return v; }\n')
    assert [c.name for c in _identify(gdal.read_bytes(), "libgdal.so.32")] == ["gdal"]
    alone = build.lib("libalone.so", code='const char v[] = "LIBTIFF, Version 4.5.0\\n";\n'
                      'const char *f(void) { return v; }\n')
    assert [c.name for c in _identify(alone.read_bytes(), "_ext.so")] == ["libtiff"]


def test_system_libraries_when_present() -> None:
    """Debian's own libraries (whatever versions are installed): a version, never an ABI."""
    checked = 0
    for path in ("/usr/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libzstd.so.1",
                 "/usr/lib/x86_64-linux-gnu/liblzma.so.5",
                 "/usr/lib/x86_64-linux-gnu/libexpat.so.1"):
        if not os.path.exists(path):
            continue
        real = os.path.realpath(path)
        (c,) = _identify(Path(real).read_bytes(), os.path.basename(real))
        assert c.version is not None
        assert re.fullmatch(r"\d+\.\d+\.\d+", c.version)
        checked += 1
    if not checked:
        pytest.skip("no system libraries to check")


# ------------------------------------------------------------------------- the truth set


def _truth() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(TRUTH.read_text())["entries"]
    return entries


def test_truth_file_is_well_formed() -> None:
    entries = _truth()
    assert len(entries) >= 40
    projects = {r.project for r in RULES.rules}
    for e in entries:
        # a rule's project, or a vcpkg port named by its build path (no rule needed)
        assert e["project"] in projects or "vcpkg build path" in e["basis"], e
        assert e["basis"]
        assert e["version"] is None or re.match(r"\d", e["version"])
    assert sum(1 for e in entries if e["in_binary"]) >= 40


def _wheel(dist: str, version: str) -> Path:
    stem = re.sub(r"[-_.]+", "_", dist).lower()
    dirs = [CACHE / "wheels", CACHE / "wheels-id"]
    found = sorted(p for d in dirs for p in d.glob(f"{stem}-{version}-*.whl"))
    if not found:
        dest = CACHE / "wheels-id"
        dest.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps",
             "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
             "--platform", "manylinux2014_x86_64", "--python-version", "3.11", "-d", str(dest),
             f"{dist}=={version}"], capture_output=True, text=True, timeout=900, check=False)
        found = sorted(dest.glob(f"{stem}-{version}-*.whl"))
        if proc.returncode != 0 or not found:
            pytest.skip(f"cannot download {dist}=={version}: {proc.stderr.strip()[-300:]}")
    return found[0]


def _version_ok(emitted: str, truth: str) -> bool:
    """Equal, or a true but shorter version (lcms2's binary knows 2.19, not 2.19.1)."""
    return emitted == truth or truth.startswith(emitted + ".")


@pytest.mark.network
def test_truth_set() -> None:
    entries = _truth()
    results: dict[tuple[str, str, str], list[Component]] = {}
    for (dist, version), group in _group(entries).items():
        with zipfile.ZipFile(_wheel(dist, version)) as z:
            for member in sorted({e["member"] for e in group}):
                data = z.read(member)
                results[(dist, version, member)] = identify_bytes(
                    BytesBlob(data), member.rsplit("/", 1)[-1], None, RULES)
    name_hits = version_hits = version_total = partial = 0
    wrong: list[str] = []
    missed: list[str] = []
    for e in entries:
        comps = _by_name(results[(e["wheel"], e["wheel_version"], e["member"])])
        c = comps.get(e["project"])
        where = f"{e['wheel']}:{e['member'].rsplit('/', 1)[-1]}:{e['project']}"
        if c is None:
            missed.append(where)
            continue
        name_hits += 1
        if c.version is not None and e["version"] is not None and not _version_ok(
            c.version, e["version"]
        ):
            wrong.append(f"{where}: {c.version} != {e['version']}")
        if e["in_binary"] and e["version"] is not None:
            version_total += 1
            if c.version is not None and _version_ok(c.version, e["version"]):
                version_hits += 1
                partial += c.version != e["version"]
            elif c.version is None:
                missed.append(f"{where} (version {e['version']})")
    # precision: every component emitted for a labelled member must be labelled, right
    labelled = {(e["wheel"], e["wheel_version"], e["member"], e["project"]) for e in entries}
    for (dist, version, member), found in results.items():
        for comp in found:
            if (dist, version, member, comp.name) not in labelled:
                wrong.append(f"{dist}:{member}: unlabelled {comp.name} {comp.version}")
    emitted_versions = sum(1 for found in results.values() for comp in found if comp.version)
    known = [e for e in entries if e["version"] is not None]
    name_recall = name_hits / len(entries)
    version_recall = version_hits / version_total
    print(f"\ntruth set: {len(entries)} labelled (library, member) pairs, "
          f"{version_total} with a version in the bytes")
    print(f"names:    recall {name_recall:.3f} ({name_hits}/{len(entries)})")
    print(f"versions: recall {version_recall:.3f} ({version_hits}/{version_total})")
    print(f"versions, counting those the bytes do not carry: "
          f"{version_hits / len(known):.3f} ({version_hits}/{len(known)}); "
          f"{partial} shorter than the label (e.g. lcms2 2.19 for 2.19.1)")
    print(f"precision: {1 - len(wrong) / max(1, emitted_versions):.3f} "
          f"({len(wrong)} wrong of {emitted_versions} versions emitted)")
    for line in missed:
        print("  missed:", line)
    for line in wrong:
        print("  WRONG:", line)
    assert not wrong
    assert name_recall >= 0.95
    assert version_recall >= 0.9


def _group(entries: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in entries:
        out.setdefault((e["wheel"], e["wheel_version"]), []).append(e)
    return out


def test_sample_names_match_their_rules() -> None:
    for rule in RULES.rules:
        name = _sample_name(rule)
        assert any(fnmatch.fnmatch(name.lower(), g.lower()) for g in rule.files), rule.project
        assert rule in applicable_rules(RULES, name)


def test_windows_cover_every_example() -> None:
    for rule, pattern in ALL_PATTERNS:
        if pattern.literal:
            continue
        m = pattern.regex.search(pattern.example)
        assert m is not None
        dot = re.search(rb"\.\d", pattern.example[m.start():m.end()])
        assert dot is not None, rule.project
        assert dot.start() <= PRE
        assert m.end() - m.start() - dot.start() <= POST


def test_debian_index_names_the_package() -> None:
    assert "libmagic1" in debian_packages("libmagic.so.1")
    # find_library('magic') finds the runtime library; dlopen("libmagic.so") needs the
    # development link, which only the -dev package ships
    assert "libmagic1" in debian_packages("libmagic.so", versioned=True)
    assert debian_packages("libmagic.so") == ("libmagic-dev",)
    assert debian_packages("libc.so") == ("libc6-dev",)  # not the lib32/libx32 multilibs
    assert debian_packages("libunveil-nothing.so.1") == ()
    c = debian_component("libcairo.so.2")
    assert c is not None
    assert c.name == "libcairo2"
    assert c.version is None  # the index says who ships it, not which version is wanted
    assert "bookworm" in index_source()


def test_debian_index_is_sorted_and_found_by_bisection() -> None:
    """Lookups bisect the shipped table: every name must come back as its line says."""
    raw = resources.files("unveil").joinpath("data/debian-sonames.tsv.gz").read_bytes()
    lines = [ln for ln in gzip.decompress(raw).decode().splitlines() if not ln.startswith("#")]
    assert lines == sorted(lines)
    names = [ln.partition("\t")[0] for ln in lines]
    assert len(set(names)) == len(names)
    for line in lines[:: max(1, len(lines) // 500)] + lines[-1:]:
        name, _, pkgs = line.partition("\t")
        assert debian_packages(name) == tuple(pkgs.split(","))
    assert debian_packages("") == ()
    assert debian_packages("libc.so.6\tx") == ()
    assert debian_packages("\U0010ffff") == ()


def test_sibling_versions_cross_libraries_of_one_release_not_copies(build: Builder) -> None:
    """libcrypto beside a libssl that says OpenSSL 3.0.13 is 3.0.13 (one release); a second,
    re-vendored copy of a library beside the first is another build and gets nothing."""
    banner = 'const char v[] = "OpenSSL 3.0.13 30 Jan 2024";\nconst char *f(void) { return v; }\n'
    build.lib("pkg.libs/libssl-0a1b2c3d.so.3", soname="libssl-0a1b2c3d.so.3", code=banner)
    build.lib("pkg.libs/libcrypto-1a2b3c4d.so.3", soname="libcrypto-1a2b3c4d.so.3")
    zlib = ('const char v[] = " deflate 1.3.1 Copyright 1995-2024 Jean-loup Gailly and Mark '
            'Adler ";\nconst char *f(void) { return v; }\n')
    build.lib("pkg.libs/libz-2a2b3c4d.so.1", soname="libz-2a2b3c4d.so.1", code=zlib)
    build.lib("pkg.libs/libz-3a3b3c4d-4a4b4c4d.so.1", soname="libz-3a3b3c4d-4a4b4c4d.so.1")
    result = unveil.scan(str(build.root), detect_host())
    got = {b.location.path.rsplit("/", 1)[-1]: (b.components[0].name, b.components[0].version)
           for t in result.targets for b in t.binaries if b.components}
    assert got["libcrypto-1a2b3c4d.so.3"] == ("openssl", "3.0.13")
    crypto = next(b.components[0] for t in result.targets for b in t.binaries
                  if b.location.path.endswith("libcrypto-1a2b3c4d.so.3"))
    assert crypto.purl == "pkg:generic/openssl@3.0.13"
    assert crypto.cpes == ("cpe:2.3:a:openssl:openssl:3.0.13:*:*:*:*:*:*:*",)
    assert got["libz-2a2b3c4d.so.1"] == ("zlib", "1.3.1")
    assert got["libz-3a3b3c4d-4a4b4c4d.so.1"] == ("zlib", None)
    # The text output says where an inferred version comes from.
    console = Console(record=True, width=400)
    render_scan(console, result)
    line = next(li for li in console.export_text().splitlines() if "libcrypto" in li)
    assert "openssl 3.0.13 (version from libssl-0a1b2c3d.so.3 beside it)" in line


@pytest.mark.parametrize(("name", "code", "version"), [
    # two functions returning one number each, joined
    ("libnettle.so.8", "int nettle_version_major(void) { return 3; }\n"
                       "int nettle_version_minor(void) { return 10; }\n", "3.10"),
    # GNU names a release without its zero patch level: 0x010200 is 1.2, not 1.2.0
    ("libunistring.so.5", "const int _libunistring_version = 0x010200;\n", "1.2"),
    ("libunistring.so.5", "const int _libunistring_version = 0x010402;\n", "1.4.2"),
])
def test_version_symbols_joined_and_gnu_style(build: Builder, name: str, code: str,
                                              version: str) -> None:
    lib = build.lib(name, code=code, extra=["-O2"])
    got = _identify(lib.read_bytes(), name)
    assert got[0].name == ("nettle" if "nettle" in name else "libunistring")
    assert got[0].version == version


def test_first_party_guess_only_for_the_distributions_own_code(build: Builder,
                                                               tmp_path: Path) -> None:
    """An extension module and an unversioned library in the package are the distribution's
    own code (a labelled guess); a versioned library copied in by hand is not."""
    ext = build.lib("b/_native.cpython-311-x86_64-linux-gnu.so", soname="")
    own = build.lib("b/libfpcore.so")
    copied = build.lib("b/libacl.so.1", soname="libacl.so.1")
    whl = write_wheel(tmp_path / "fp-2.0-py3-none-linux_x86_64.whl", {
        "fp/_native.cpython-311-x86_64-linux-gnu.so": ext.read_bytes(),
        "fp/lib/libfpcore.so": own.read_bytes(),
        "fp/vendor/libacl.so.1": copied.read_bytes()}, dist="fp", version="2.0")
    result = unveil.scan(str(whl), detect_host())
    first = {b.location.path: b.components[0] if b.components else None
             for b in result.targets[0].binaries}
    for member in ("fp/_native.cpython-311-x86_64-linux-gnu.so", "fp/lib/libfpcore.so"):
        c = first[member]
        assert c is not None
        assert (c.name, c.version, c.purl) == ("fp", "2.0", None)
        assert "a guess" in c.evidence[0].detail
    assert first["fp/vendor/libacl.so.1"] is None or first["fp/vendor/libacl.so.1"].name != "fp"


# ------------------------------------------------------------- code embedded and exported


_EMBEDS_ZSTD_AND_LZ4 = r"""
unsigned ZSTD_versionNumber(void) { return 10507; }
int LZ4_versionNumber(void) { return 10904; }
int PyInit__native(void) { return 0; }
"""


def _members(result: unveil.ScanResult) -> dict[str, list[tuple[str, str | None, str]]]:
    return {b.location.path.rsplit("/", 1)[-1]: [
        (c.name, c.version, c.evidence[0].method) for c in b.components]
        for t in result.targets for b in t.binaries}


@pytest.mark.parametrize("far_tail", [False, True])
def test_a_file_that_defines_a_projects_version_function_embeds_it(
        build: Builder, tmp_path: Path, far_tail: bool) -> None:
    """An extension module built with zstd's and lz4's sources exports their version
    functions: both are embedded in it, versions read from the code.  A module that only
    imports them (links the libraries) embeds nothing.  In a wheel whose member has a large
    unloaded tail (debug information), the symbol hash table comes from the dynamic segment."""
    if os.uname().machine != "x86_64":
        pytest.skip("version functions are decoded for x86-64 only")
    ext = build.lib("x/_native.cpython-311-x86_64-linux-gnu.so", soname="",
                    code=_EMBEDS_ZSTD_AND_LZ4, extra=["-O2"])
    user = build.lib("x/_user.cpython-311-x86_64-linux-gnu.so", soname="", code=(
        "unsigned ZSTD_versionNumber(void);\nint LZ4_versionNumber(void);\n"
        "int f(void) { return (int)ZSTD_versionNumber() + LZ4_versionNumber(); }\n"),
        extra=["-Wl,--unresolved-symbols=ignore-all"])
    if far_tail:
        pad = tmp_path / "pad.bin"
        pad.write_bytes(os.urandom(3 << 20))
        subprocess.run(["objcopy", "--add-section", f".debug_pad={pad}", str(ext)], check=True)
    whl = write_wheel(tmp_path / "x-1.0-cp311-cp311-linux_x86_64.whl", {
        "x/_native.cpython-311-x86_64-linux-gnu.so": ext.read_bytes(),
        "x/_user.cpython-311-x86_64-linux-gnu.so": user.read_bytes()}, dist="x")
    got = _members(unveil.scan(str(whl), detect_host()))
    assert ("zstd", "1.5.7", "version-symbol") in got["_native.cpython-311-x86_64-linux-gnu.so"]
    assert ("lz4", "1.9.4", "version-symbol") in got["_native.cpython-311-x86_64-linux-gnu.so"]
    assert not {"zstd", "lz4"} & {n for n, _v, _m in got["_user.cpython-311-x86_64-linux-gnu.so"]}


def test_an_exported_version_function_of_unknown_shape_still_names(build: Builder) -> None:
    lib = build.lib("libthing.so", code=(
        "extern int g(void);\nint LZ4_versionNumber(void) { return g() + 1; }\n"),
        extra=["-O2", "-Wl,--unresolved-symbols=ignore-all"])
    got = _by_name(_identify(lib.read_bytes(), "libthing.so"))
    assert got["lz4"].version is None
    assert got["lz4"].evidence[0].method == "exported-symbol"


def test_vcpkg_build_paths_name_ports_and_versions(build: Builder) -> None:
    """vcpkg compiles each port in buildtrees/<port>/src/<tag>-<hash>.clean: the port and
    its version tag, known to the rules or not; the more precise spelling of a version wins
    without a conflict."""
    code = ('const char a[] = "/v/buildtrees/protobuf/src/v33.6-a416a45959.clean/src/x.cc";\n'
            'const char b[] = "/v/buildtrees/abseil/src/20250814.0-66199c4c73.clean/absl/x.cc";\n'
            'const char c[] = "absl12lts_20250814";\n'
            'const char d[] = "/v/buildtrees/tiff/src/v4.7.1-0123456789.clean/libtiff/x.c";\n'
            'const char *f(int i) { return i ? a : i > 1 ? b : i > 2 ? c : d; }\n')
    lib = build.lib("libonnxthing.so", code=code)
    got = _by_name(_identify(lib.read_bytes(), "libonnxthing.so"))
    assert got["protobuf"].version == "33.6"
    assert got["libtiff"].version == "4.7.1"  # the port "tiff" is the rules' libtiff
    assert got["abseil"].version == "20250814.0"
    assert not got["abseil"].conflicts
    assert any(e.method == "build-path" for e in got["protobuf"].evidence)


def test_a_library_with_a_versioned_soname_is_not_the_distributions_code(
        build: Builder, tmp_path: Path) -> None:
    """rawpy ships LibRaw as rawpy/libraw_r.so whose SONAME is libraw_r.so.25: a library built
    on its own, not the distribution's code, whatever the file is called; an extension module
    whose embedded project's name is a prefix of its own (onnx in onnxruntime) is still the
    distribution's."""
    lib = build.lib("r/libraw_r.so", soname="libraw_r.so.25")
    ext = build.lib("r/libonnxruntime_x.so", soname="",
                    code='const char a[] = "/v/buildtrees/onnx/src/v1.23.2-255a7f7451.clean/x.cc";'
                         '\nconst char *f(void) { return a; }\n')
    whl = write_wheel(tmp_path / "rp-1.0-cp311-cp311-linux_x86_64.whl", {
        "rp/libraw_r.so": lib.read_bytes(), "rp/libonnxruntime_x.so": ext.read_bytes()},
        dist="rp")
    got = _members(unveil.scan(str(whl), detect_host()))
    assert not any(n == "rp" for n, _v, _m in got["libraw_r.so"])
    assert got["libonnxruntime_x.so"][0][:2] == ("rp", "1.0")
    assert ("onnx", "1.23.2", "build-path") in got["libonnxruntime_x.so"]


def test_an_sbom_naming_an_embedded_project_leaves_the_file_first(
        build: Builder, tmp_path: Path) -> None:
    """pyogrio ships PROJ's port SBOM beside GDAL's, and libgdal embeds PROJ: the SBOM entry
    matched by name confirms the embedded copy; the file is still GDAL."""
    lib = build.lib("w/libgdal-253d08a6.so.38", soname="libgdal-253d08a6.so.38", code=(
        'const char a[] = "GDAL 3.12.4";\n'
        'const char b[] = "Rel. 9.8.1, April 10th, 2026";\n'
        'const char *f(int i) { return i ? a : b; }\n'))
    sbom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [
        {"type": "library", "name": "proj", "version": "9.8.1"}]}
    whl = write_wheel(tmp_path / "geo-1.0-cp311-cp311-linux_x86_64.whl", {
        "geo.libs/libgdal-253d08a6.so.38": lib.read_bytes(),
        "geo-1.0.dist-info/sboms/proj.cdx.json": json.dumps(sbom).encode()}, dist="geo")
    got = _members(unveil.scan(str(whl), detect_host()))["libgdal-253d08a6.so.38"]
    assert [(n, v) for n, v, _m in got][:2] == [("gdal", "3.12.4"), ("proj", "9.8.1")]


@pytest.mark.parametrize("flags", [["-Os"], ["-O2", "-fcf-protection"], ["-O3"]])
def test_static_version_struct_in_other_code_shapes(build: Builder, flags: list[str]) -> None:
    """-Os stores after the lea; -fcf-protection adds endbr64 (the window must hold it)."""
    if os.uname().machine != "x86_64":
        pytest.skip("version symbols are decoded for x86-64 only")
    code = ("typedef struct { unsigned char major, minor, patch; } V;\n"
            "const V *IMG_Linked_Version(void) {\n"
            "    static V v; v.major = 2; v.minor = 6; v.patch = 3; return &v; }\n")
    lib = build.lib("libimg.so", code=code, extra=flags)
    got = _by_name(_identify(lib.read_bytes(), "libSDL2_image-2.0.so.0"))
    assert got["sdl2-image"].version == "2.6.3"


def test_a_string_returned_on_another_path_is_not_the_version(build: Builder) -> None:
    """Only guarded stores through the arguments are passed over before ret-str's
    lea; a fallback return further in (here after a tail call) is not the version."""
    if os.uname().machine != "x86_64":
        pytest.skip("version symbols are decoded for x86-64 only")
    code = ("__attribute__((visibility(\"hidden\"))) int inited;\n"
            "__attribute__((noinline)) const char *compute(void) { return \"1.3.1x\"; }\n"
            "const char *zlibVersion(void) {\n"
            "    if (__builtin_expect(inited, 1)) return compute(); return \"1.2.3\"; }\n")
    lib = build.lib("libz.so.1", code=code, extra=["-O2"])
    got = _by_name(_identify(lib.read_bytes(), "libz.so.1"))
    assert "zlib" not in got or got["zlib"].version != "1.2.3"
