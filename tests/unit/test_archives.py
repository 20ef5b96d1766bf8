"""Tar/ar/zip package sources: archives built here around real compiled ELF files, opened
in place and handed to the scanner as it is.

The opt-in ``-m network`` test runs the same openers over real npm tarballs (sharp and its
libvips package, @swc/core, lightningcss, esbuild, bcrypt, koffi), Debian packages of Ruby
gems and libzstd, and an installed node_modules, cached under
``~/.cache/unveil-tests/ecosystems``.
"""

from __future__ import annotations

import gzip
import importlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Builder, host_config
from tests.unit.elfgen import make_elf
from unveil.errors import SourceError, TargetError
from unveil.model import EdgeClass, Problem, ProblemKind, TargetKind, TargetResult
from unveil.scan import Scanner, _TargetScan
from unveil.sources.archives import ArchiveLimits, Budget, TarFS, iter_ar
from unveil.sources.ecosystems import (
    EcosystemTarget,
    Platform,
    addon_abi,
    addon_abis,
    binary_symbols,
    open_conda,
    open_deb,
    open_gem,
    open_jar,
    open_npm,
    open_npm_packs,
    path_platform,
    ruby_extension,
    ruby_extensions,
)
from unveil.sources.fs import HostFS, Kind, SymlinkLoop
from unveil.sources.targets import Target

NAPI_ADDON = "void napi_register_module_v1(void) {}\nint napi_create_object(void);\n" \
             "int use(void) { return napi_create_object(); }\n"
NAN_ADDON = ("extern void node_module_register(void *);\n"
             "extern void hs(void *) __asm__(\"_ZN2v811HandleScopeC1EPNS_7IsolateE\");\n"
             "void init(void) { node_module_register(0); hs(0); }\n")
RUBY_EXT = "void Init_foo(void) {}\n"

Member = tuple[str, Any]  # (name, bytes | ("symlink"|"hardlink", target) | ("dir",))


def _tar(path: Path, members: Sequence[Member], mode: str = "w:gz",
         fmt: int = tarfile.GNU_FORMAT) -> Path:
    with tarfile.open(path, mode, format=fmt) as t:  # type: ignore[call-overload]
        _add(t, members)
    return path


def _tar_bytes(members: Sequence[Member], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:  # type: ignore[call-overload]
        _add(t, members)
    return buf.getvalue()


def _add(t: tarfile.TarFile, members: Sequence[Member]) -> None:
    for name, what in members:
        info = tarfile.TarInfo(name)
        if isinstance(what, bytes):
            info.size = len(what)
            info.mode = 0o755
            t.addfile(info, io.BytesIO(what))
            continue
        if what[0] == "symlink":
            info.type = tarfile.SYMTYPE
            info.linkname = what[1]
        elif what[0] == "hardlink":
            info.type = tarfile.LNKTYPE
            info.linkname = what[1]
        else:
            info.type = tarfile.DIRTYPE
        t.addfile(info)


def _ar(path: Path, members: Sequence[tuple[str, bytes]]) -> Path:
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    path.write_bytes(bytes(out))
    return path


def _run(target: Target) -> TargetResult:
    return _TargetScan(Scanner(host_config()), target).run()


def _edges(result: TargetResult, suffix: str) -> dict[str, EdgeClass]:
    b = next(b for b in result.binaries if b.loader_path.endswith(suffix))
    return {e.resolution.request: e.edge_class for e in b.edges}


def _messages(problems: Sequence[Problem]) -> str:
    return "\n".join(f"{p.location}: {p.message}" for p in problems)


# ------------------------------------------------------------------------------- tar


def test_tarfs_keeps_binaries_and_metadata_only(build: Builder, tmp_path: Path) -> None:
    lib = build.lib("libfoo.so.1").read_bytes()
    text = b"x" * 5000
    arc = _tar(tmp_path / "a.tar.gz", [
        ("./usr/lib/libfoo.so.1", lib), ("./usr/share/doc/README", text),
        ("./pkg/package.json", b'{"name": "p"}'), ("./pkg/index.js", b"require('x')"),
        ("./usr/lib/libfoo.so", ("symlink", "libfoo.so.1")), ("./usr/empty", ("dir",)),
    ])
    before = sorted(os.listdir(tmp_path))
    fs = TarFS(str(arc))
    assert sorted(os.listdir(tmp_path)) == before  # nothing extracted
    assert fs.file_paths == ["/pkg/index.js", "/pkg/package.json", "/usr/lib/libfoo.so.1",
                             "/usr/share/doc/README"]
    assert fs.read_bytes("/usr/lib/libfoo.so.1") == lib
    assert fs.read_bytes("/pkg/package.json") == b'{"name": "p"}'
    assert fs.read_bytes("/pkg/index.js") == b"require('x')"
    assert fs.read_bytes("/usr/share/doc/README") is None
    assert fs.head("/usr/share/doc/README", 8) == b"x" * 8
    with pytest.raises(SourceError, match="not kept"):
        fs.open_blob("/usr/share/doc/README")
    assert fs.resolve("/usr/lib/libfoo.so") == "/usr/lib/libfoo.so.1"
    assert fs.kind("/usr/empty") is Kind.DIR
    assert str(fs.describe("/usr/lib/libfoo.so.1")) == f"{arc}!./usr/lib/libfoo.so.1"
    assert fs.budget.kept == len(lib) + len(b'{"name": "p"}') + len(b"require('x')")
    assert not fs.problems


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_every_compression(build: Builder, tmp_path: Path, mode: str) -> None:
    lib = build.lib("libc1.so").read_bytes()
    arc = _tar(tmp_path / "a.tar", [("libc1.so", lib)], mode)
    assert TarFS(str(arc)).read_bytes("/libc1.so") == lib


def test_pax_long_names_and_hardlinks(build: Builder, tmp_path: Path) -> None:
    lib = build.lib("libl.so").read_bytes()
    long = "d/" + "x" * 150 + "/libl.so"
    arc = _tar(tmp_path / "p.tar", [(long, lib), ("h/libh.so", ("hardlink", long))], "w",
               tarfile.PAX_FORMAT)
    fs = TarFS(str(arc))
    assert fs.read_bytes("/" + long) == lib
    assert fs.entry("/h", "libh.so") is Kind.SYMLINK
    assert fs.resolve("/h/libh.so") == "/" + long
    gnu = _tar(tmp_path / "g.tar", [(long, lib)], "w", tarfile.GNU_FORMAT)
    assert TarFS(str(gnu)).file_paths == ["/" + long]


def test_hostile_names_are_left_out(build: Builder, tmp_path: Path) -> None:
    lib = build.lib("libh.so").read_bytes()
    arc = _tar(tmp_path / "h.tar.gz", [
        ("../evil.so", lib), ("/etc/abs.so", lib), ("a/../../up.so", lib), ("ok/lib.so", lib),
        ("ok/hl.so", ("hardlink", "../../etc/passwd")),
    ])
    fs = TarFS(str(arc))
    assert fs.file_paths == ["/ok/lib.so"]
    msgs = _messages(fs.problems)
    for bad in ("../evil.so", "/etc/abs.so", "a/../../up.so"):
        assert f"!{bad}: member with an unsafe path left out" in msgs
    assert "hard link to unsafe" in msgs
    assert fs.entry("/ok", "hl.so") is None


def test_large_sources_keep_their_beginning(tmp_path: Path) -> None:
    src = b"require('koffi').load('libz.so.1')\n" + b"//" * 2000
    arc = _tar(tmp_path / "s.tgz", [("big.js", src), ("small.js", src[:500])])
    fs = TarFS(str(arc), limits=ArchiveLimits(max_source_size=1000))
    assert fs.read_bytes("/small.js") == src[:500]
    assert fs.head("/big.js", 1000) == src[:1000]
    with pytest.raises(SourceError, match="only the first 1000 bytes"):
        fs.head("/big.js", 2000)
    assert fs.budget.kept == 1500


def test_later_member_replaces_earlier(build: Builder, tmp_path: Path) -> None:
    lib = build.lib("libd.so").read_bytes()
    arc = _tar(tmp_path / "d.tar", [("x.so", lib), ("x.so", b"text now")], "w")
    fs = TarFS(str(arc))
    assert fs.read_bytes("/x.so") is None
    assert fs.head("/x.so", 8) == b"text now"
    assert fs.budget.kept == 0


def test_symlink_loops_do_not_hang(build: Builder, tmp_path: Path) -> None:
    exe = build.exe("bin/app", needs=[str(build.lib("lib/liba.so.1"))],
                    rpath="$ORIGIN/../loop:$ORIGIN/../lib").read_bytes()
    liba = (tmp_path / "lib/liba.so.1").read_bytes()
    arc = _tar(tmp_path / "npm.tgz", [
        ("package/package.json", b'{"name": "loopy", "version": "1.0.0"}'),
        ("package/bin/app", exe), ("package/lib/liba.so.1", liba),
        ("package/loop", ("symlink", "loop2")), ("package/loop2", ("symlink", "loop")),
        ("package/self/up", ("symlink", "..")),
        ("package/abs", ("symlink", "/etc")),
    ])
    t = open_npm(str(arc), host_config())
    root = t.inside[0]
    with pytest.raises(SymlinkLoop):
        t.fs.resolve(f"{root}/loop/x")
    # An absolute link target stays inside the mounted package.
    assert t.fs.resolve(f"{root}/abs") is None
    start = time.monotonic()
    result = _run(t)
    assert time.monotonic() - start < 60  # a hang guard, not a speed check
    assert _edges(result, "/bin/app")["liba.so.1"] is EdgeClass.BUNDLED


def test_member_count_cap(tmp_path: Path) -> None:
    arc = _tar(tmp_path / "many.tar.gz", [(f"f{i}", b"x") for i in range(100)])
    fs = TarFS(str(arc), limits=ArchiveLimits(max_members=30))
    assert len(fs.file_paths) == 30
    assert "more than 30 members" in _messages(fs.problems)


def test_size_caps_list_but_do_not_keep(build: Builder, tmp_path: Path) -> None:
    lib = build.lib("libbig.so", extra=["-Wl,-z,max-page-size=65536"]).read_bytes()
    arc = _tar(tmp_path / "caps.tar", [("a.so", lib), ("b.so", lib), ("c.so", lib)], "w")
    fs = TarFS(str(arc), limits=ArchiveLimits(max_kept_bytes=2 * len(lib)))
    assert fs.read_bytes("/a.so") == lib
    assert fs.read_bytes("/b.so") == lib
    assert fs.read_bytes("/c.so") is None
    assert fs.head("/c.so", 4) == b"\x7fELF"  # still a candidate, unreadable with a reason
    with pytest.raises(SourceError, match="size limit"):
        fs.open_blob("/c.so")
    assert "limit on bytes kept in memory" in _messages(fs.problems)
    fs2 = TarFS(str(arc), limits=ArchiveLimits(max_member_size=len(lib) - 1))
    assert fs2.budget.kept == 0
    assert _messages(fs2.problems).count("over the") == 3


def test_compression_bomb_stops_early(tmp_path: Path) -> None:
    arc = _tar(tmp_path / "bomb.tar.gz", [("zeros", bytes(8 << 20)), ("after", b"x")])
    assert arc.stat().st_size < 64 << 10
    fs = TarFS(str(arc), limits=ArchiveLimits(ratio_floor=1 << 20, max_ratio=100))
    assert "refusing a likely archive bomb" in _messages(fs.problems)
    assert "/after" not in fs.file_paths
    fs2 = TarFS(str(arc), limits=ArchiveLimits(max_stream_bytes=1 << 20))
    assert "expands past" in _messages(fs2.problems)


def test_huge_extended_header_is_skipped(tmp_path: Path) -> None:
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type = tarfile.XHDTYPE
    payload = b"9999 path=" + b"a" * (2 << 20)
    pax.size = len(payload)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        t.addfile(pax, io.BytesIO(payload))
        info = tarfile.TarInfo("real")
        info.size = 1
        t.addfile(info, io.BytesIO(b"r"))
    (tmp_path / "x.tar").write_bytes(buf.getvalue())
    fs = TarFS(str(tmp_path / "x.tar"))
    assert fs.file_paths == ["/real"]
    assert "extended header of" in _messages(fs.problems)


def test_corrupt_and_truncated_archives(build: Builder, tmp_path: Path) -> None:
    (tmp_path / "junk.tar").write_bytes(b"not a tar" * 100)
    with pytest.raises(SourceError, match="not a tar archive"):
        TarFS(str(tmp_path / "junk.tar"))
    (tmp_path / "empty.tar").write_bytes(b"")
    with pytest.raises(SourceError):
        TarFS(str(tmp_path / "empty.tar"))
    lib = build.lib("libt.so").read_bytes()
    whole = _tar_bytes([("a.so", lib), ("b", os.urandom(200_000)), ("c.so", lib)])
    (tmp_path / "cut.tgz").write_bytes(whole[: len(whole) * 2 // 3])
    fs = TarFS(str(tmp_path / "cut.tgz"))
    assert fs.read_bytes("/a.so") == lib
    assert "/c.so" not in fs.file_paths
    assert fs.problems
    plain = _tar_bytes([("a.so", lib), ("b.so", lib)], "w")
    bad = bytearray(plain)
    second = 512 + -(-len(lib) // 512) * 512
    bad[second + 10] ^= 0xFF  # break the second header's checksum
    (tmp_path / "bad.tar").write_bytes(bytes(bad))
    fs = TarFS(str(tmp_path / "bad.tar"))
    assert fs.file_paths == ["/a.so"]
    assert "bad tar header checksum" in _messages(fs.problems)


def test_zstd_needs_zstandard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.tar.zst").write_bytes(b"\x28\xb5\x2f\xfd" + bytes(100))
    real = importlib.import_module

    def fake(name: str, package: str | None = None) -> Any:
        if name == "zstandard":
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(SourceError, match=r"needs the 'zstandard' package"):
        TarFS(str(tmp_path / "a.tar.zst"))


def test_ar_reader(tmp_path: Path) -> None:
    arc = _ar(tmp_path / "x.a", [("debian-binary", b"2.0\n"), ("odd/", b"abc"),
                                 ("#1/12", b"long.name.ozpayload")])
    with open(arc, "rb") as f:
        got = [(m.name, m.take(100)) for m in iter_ar(f, str(arc), Budget())]
    assert got == [("debian-binary", b"2.0\n"), ("odd", b"abc"), ("long.name.oz", b"payload")]
    (tmp_path / "no.a").write_bytes(b"garbage!")
    with open(tmp_path / "no.a", "rb") as f, pytest.raises(SourceError, match="not an ar"):
        list(iter_ar(f, "no.a", Budget()))


# ------------------------------------------------------------------------------- npm


def _npm_pack(build: Builder, tmp_path: Path, name: str, extra: Sequence[Member] = (),
              package: dict[str, Any] | None = None) -> Path:
    dep = build.lib(f"{name}/lib/libdep.so.1")
    addon = build.lib(f"{name}/build/Release/addon.node", soname="", needs=[str(dep)],
                      rpath="$ORIGIN/../../lib", code=NAPI_ADDON)
    pj = {"name": name, "version": "1.2.3", **(package or {})}
    return _tar(tmp_path / f"{name.replace('/', '-').lstrip('@')}-1.2.3.tgz", [
        ("package/package.json", json.dumps(pj).encode()),
        ("package/build/Release/addon.node", addon.read_bytes()),
        ("package/lib/libdep.so.1", dep.read_bytes()),
        ("package/lib/index.js", b"module.exports = require('../build/Release/addon.node')"),
        *extra,
    ])


def test_npm_pack_is_scanned_as_bundled(build: Builder, tmp_path: Path) -> None:
    arc = _npm_pack(build, tmp_path, "native-thing", package={
        "optionalDependencies": {"native-thing-linux-x64": "1.2.3",
                                 "native-thing-darwin-arm64": "1.2.3"},
        "dependencies": {"prebuild-install": "^7"}})
    t = open_npm(str(arc), host_config())
    assert isinstance(t, EcosystemTarget)
    assert t.ecosystem == "npm"
    root = f"/__unveil__/{arc.name}/node_modules/native-thing"
    assert t.inside == (root,)
    assert f"{root}/build/Release/addon.node" in t.files
    assert t.default_owner == "native-thing"
    assert [(d.name, d.version, d.metadata_path.split(":")[0]) for d in t.distributions] == \
        [("native-thing", "1.2.3", "npm")]
    result = _run(t)
    assert (result.kind, result.ecosystem) == (TargetKind.PACKAGE, "npm")
    edges = _edges(result, "addon.node")
    assert edges["libdep.so.1"] is EdgeClass.BUNDLED
    assert edges["libc.so.6"] in (EdgeClass.SYSTEM, EdgeClass.POLICY_SYSTEM)
    msgs = _messages(result.problems)
    assert "downloads its binary at install time (prebuild-install)" in msgs
    assert "2 optional platform packages are chosen at install time" in msgs
    # facts about the package, not faults: notes, which --strict does not count
    kinds = {p.kind for p in result.problems if "optional platform packages" in p.message}
    assert kinds == {ProblemKind.NOTE}
    assert {p.kind for p in result.problems if "at install time (" in p.message} == {
        ProblemKind.UNSUPPORTED}
    assert addon_abis(t.fs, t.files) == {f"{root}/build/Release/addon.node": "n-api"}


def test_npm_packs_side_by_side_resolve_across_packages(build: Builder,
                                                        tmp_path: Path) -> None:
    # (sharp's libvips-cpp.so.42 under a soname no machine has: a host with libvips
    # installed would satisfy it from the system, as ld.so would)
    vips = build.lib("v/lib/libvips-cpp.so.99")
    addon = build.lib("s/lib/sharp-linux-x64.node", needs=[str(vips)],
                      rpath="$ORIGIN/../../sharp-libvips-linux-x64/lib", code=NAPI_ADDON)
    a = _tar(tmp_path / "a.tgz", [
        ("package/package.json", json.dumps({
            "name": "@img/sharp-linux-x64", "version": "0.1.0", "os": ["linux"],
            "cpu": ["x64"], "libc": ["glibc"]}).encode()),
        ("package/lib/sharp-linux-x64.node", addon.read_bytes())])
    b = _tar(tmp_path / "b.tgz", [
        ("package/package.json", b'{"name": "@img/sharp-libvips-linux-x64", "version": "1"}'),
        ("package/lib/libvips-cpp.so.99", vips.read_bytes())])
    alone = _run(open_npm(str(a), host_config()))
    # Alone, the RPATH into a missing node_modules package says which package should
    # provide it: expected from another distribution, not plainly missing.
    assert _edges(alone, ".node")["libvips-cpp.so.99"] is EdgeClass.OTHER_DISTRIBUTION
    t = open_npm_packs([str(a), str(b)], host_config())
    result = _run(t)
    sharp = next(x for x in result.binaries if x.loader_path.endswith(".node"))
    edge = next(e for e in sharp.edges if e.resolution.request == "libvips-cpp.so.99")
    assert edge.edge_class is EdgeClass.OTHER_DISTRIBUTION
    assert edge.provider == "@img/sharp-libvips-linux-x64"
    assert sharp.distribution == "@img/sharp-linux-x64"
    pkg = next(p for p in t.packages if p.name == "@img/sharp-linux-x64")
    assert pkg.platforms == (Platform("linux", "x64", "glibc"),)
    assert "platform package for os=linux cpu=x64 libc=glibc" in _messages(result.problems)


def test_installed_node_modules(build: Builder, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    nm = proj / "node_modules"
    (nm / "a").mkdir(parents=True)
    (proj / "package.json").write_text('{"name": "app", "version": "0.0.1"}')
    (nm / "a/package.json").write_text(json.dumps({
        "name": "a", "version": "2.0.0", "binary": {"host": "https://example.invalid/"}}))
    (nm / "a/binding.gyp").write_text("{}")
    plat = nm / "@s/b-linux-x64"
    plat.mkdir(parents=True)
    (plat / "package.json").write_text(json.dumps({
        "name": "@s/b-linux-x64", "version": "3.0.0", "os": ["linux"], "cpu": ["x64"]}))
    addon = build.lib("nan/b.node", soname="", code=NAN_ADDON)
    shutil.copy(addon, plat / "b.node")
    (nm / "@s/b").mkdir()
    # builds its addon at install time when none of its platform packages is there: one is
    (nm / "@s/b/binding.gyp").write_text("{}")
    (nm / "@s/b/package.json").write_text(json.dumps({
        "name": "@s/b", "version": "3.0.0", "scripts": {"install": "node-gyp-build"},
        "optionalDependencies": {"@s/b-linux-x64": "3.0.0", "@s/b-darwin-arm64": "3.0.0"}}))
    (nm / "@s/b/node_modules/c").mkdir(parents=True)
    (nm / "@s/b/node_modules/c/package.json").write_text('{"name": "c", "version": "1"}')
    (nm / "@s/b/node_modules/c/x.js").write_text("")
    (proj / "package-lock.json").write_text(json.dumps({"packages": {
        "": {}, "node_modules/a": {"version": "2.0.0"},
        "node_modules/@s/b-darwin-arm64": {"version": "3.0.0", "optional": True,
                                           "os": ["darwin"], "cpu": ["arm64"]},
        "node_modules/gone": {"version": "1.0.0"}}}))
    t = open_npm(str(proj), host_config())
    real = str(proj)
    assert t.inside == (real,)
    assert t.default_owner == "app"
    assert sorted((d.name, d.version) for d in t.distributions) == [
        ("@s/b", "3.0.0"), ("@s/b-linux-x64", "3.0.0"), ("a", "2.0.0"), ("app", "0.0.1"),
        ("c", "1")]
    assert t.owner_of(f"{real}/node_modules/@s/b-linux-x64/b.node") == "@s/b-linux-x64"
    assert t.owner_of(f"{real}/node_modules/@s/b/node_modules/c/x.js") == "c"
    msgs = _messages(t.problems)
    assert "a: downloads its binary at install time (binary.host = https://example.invalid/)" \
        in msgs
    assert "@s/b-darwin-arm64 (os=darwin cpu=arm64)" in msgs
    assert "gone is in the lockfile but not installed" in msgs
    assert "@s/b: builds its addon" not in msgs  # its platform package is installed
    assert addon_abis(t.fs, t.files) == {f"{real}/node_modules/@s/b-linux-x64/b.node": "nan"}
    result = _run(t)
    assert any(b.distribution == "@s/b-linux-x64" for b in result.binaries)


def test_addon_abi_and_ruby_init(build: Builder) -> None:
    fs = HostFS("/")
    napi = build.lib("napi.node", soname="", code=NAPI_ADDON)
    nan = build.lib("nan.node", soname="", code=NAN_ADDON)
    plain = build.lib("plain.so")
    ruby = build.lib("foo.so", code=RUBY_EXT)
    assert addon_abi(binary_symbols(fs, str(napi))) == "n-api"
    assert addon_abi(binary_symbols(fs, str(nan))) == "nan"
    assert addon_abi(binary_symbols(fs, str(plain))) == "unknown"
    assert ruby_extension(binary_symbols(fs, str(ruby))) == "foo"
    assert ruby_extension(binary_symbols(fs, str(plain))) is None


@pytest.mark.parametrize(("path", "expected"), [
    ("org/sqlite/native/Linux/x86_64/libsqlitejdbc.so", Platform("linux", "x86_64")),
    ("org/sqlite/native/Mac/aarch64/libsqlitejdbc.dylib", Platform("darwin", "aarch64")),
    ("org/sqlite/native/Windows/x86/sqlitejdbc.dll", Platform("windows", "x86")),
    ("com/sun/jna/linux-x86-64/libjnidispatch.so", Platform("linux", "x86_64")),
    ("META-INF/native/libnetty_transport_native_epoll_aarch_64.so",
     Platform(None, "aarch64")),
    ("META-INF/native/netty_tcnative_windows_x86_64.dll", Platform("windows", "x86_64")),
    ("prebuilds/linux-x64/bcrypt.musl.node", Platform("linux", "x86_64", "musl")),
    ("prebuilds/darwin-arm64/bcrypt.node", Platform("darwin", "aarch64")),
    ("lib/libfoo.so", None),
])
def test_path_platform(path: str, expected: Platform | None) -> None:
    assert path_platform(path) == expected


# ------------------------------------------------------------------------------- gem


_GEM_META = """--- !ruby/object:Gem::Specification
name: foo
version: !ruby/object:Gem::Version
  version: 1.2.0
platform: x86_64-linux
dependencies:
- !ruby/object:Gem::Dependency
  name: mini_portile2
  requirement: !ruby/object:Gem::Requirement
  type: :runtime
- !ruby/object:Gem::Dependency
  name: rake
  type: :development
extensions:
- ext/foo/extconf.rb
requirements:
- libxml2
"""


def _gem(build: Builder, tmp_path: Path, meta: str, with_binary: bool) -> Path:
    data: list[Member] = [("lib/foo.rb", b"require 'foo/foo'"),
                          ("ext/foo/extconf.rb", b"create_makefile('foo')")]
    if with_binary:
        data.append(("lib/foo/3.1/foo.so", build.lib("foo.so", code=RUBY_EXT).read_bytes()))
    return _tar(tmp_path / "foo-1.2.0-x86_64-linux.gem", [
        ("metadata.gz", gzip.compress(meta.encode())),
        ("data.tar.gz", _tar_bytes(data)),
        ("checksums.yaml.gz", gzip.compress(b"{}")),
    ], "w")


def test_gem_file(build: Builder, tmp_path: Path) -> None:
    t = open_gem(str(_gem(build, tmp_path, _GEM_META, True)), host_config())
    root = "/__unveil__/foo-1.2.0-x86_64-linux.gem/gems/foo-1.2.0-x86_64-linux"
    assert t.inside == (root,)
    assert f"{root}/lib/foo/3.1/foo.so" in t.files
    pkg = t.packages[0]
    assert (pkg.ecosystem, pkg.name, pkg.version, pkg.depends) == \
        ("gem", "foo", "1.2.0", ("mini_portile2",))
    assert pkg.install_time is None
    assert "declares system requirements: libxml2" in _messages(t.problems)
    assert ruby_extensions(t.fs, t.files) == {f"{root}/lib/foo/3.1/foo.so": "foo"}
    result = _run(t)
    assert result.binaries[0].distribution == "foo"
    source = open_gem(str(_gem(build, tmp_path, _GEM_META, False)), host_config())
    assert source.packages[0].install_time is not None
    assert "compiles its C extension at install time" in _messages(source.problems)


def test_gem_home(build: Builder, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "specifications").mkdir(parents=True)
    (home / "specifications/foo-1.2.0.gemspec").write_text(
        'Gem::Specification.new do |s|\n  s.name = "foo".freeze\n  s.version = "1.2.0"\n'
        '  s.extensions = ["ext/foo/extconf.rb".freeze]\n'
        '  s.add_runtime_dependency(%q<bar>.freeze, [">= 0"])\nend\n')
    (home / "gems/foo-1.2.0/lib").mkdir(parents=True)
    (home / "gems/foo-1.2.0/lib/foo.rb").write_text("")
    ext = home / "extensions/x86_64-linux/3.1.0/foo-1.2.0/foo"
    ext.mkdir(parents=True)
    shutil.copy(build.lib("foo.so", code=RUBY_EXT), ext / "foo.so")
    t = open_gem(str(home), host_config())
    assert [(d.name, d.version, d.files) for d in t.distributions] == [("foo", "1.2.0", 2)]
    assert t.owner_of(f"{home}/extensions/x86_64-linux/3.1.0/foo-1.2.0/foo/foo.so") == "foo"
    assert t.packages[0].depends == ("bar",)
    assert t.packages[0].install_time is None


# ------------------------------------------------------------------------------- deb


def _deb(build: Builder, tmp_path: Path, data_mode: str = "w:xz") -> Path:
    libfoo = build.lib("deb/libfoo.so.1.0", soname="libfoo.so.1")
    tool = build.exe("deb/tool", needs=[str(libfoo)])
    app = build.exe("deb/app", needs=[str(libfoo)], runpath="$ORIGIN/../lib/x86_64-linux-gnu")
    control = (b"Package: foo-tools\nVersion: 1.0-1\nArchitecture: amd64\n"
               b"Pre-Depends: dpkg (>= 1.17)\nDepends: libc6 (>= 2.34),\n libbar1 | libbaz1\n"
               b"Description: test\n more\n")
    lib_dir = "./usr/lib/x86_64-linux-gnu"
    return _ar(tmp_path / "foo-tools_1.0-1_amd64.deb", [
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", _tar_bytes([("./control", control), ("./md5sums", b"")])),
        ("data.tar.xz", _tar_bytes([
            ("./", ("dir",)), ("./usr/bin/tool", tool.read_bytes()),
            ("./usr/bin/app", app.read_bytes()),
            (f"{lib_dir}/libfoo.so.1.0", libfoo.read_bytes()),
            (f"{lib_dir}/libfoo.so.1", ("symlink", "libfoo.so.1.0")),
            ("./usr/lib/libfoo-abs.so", ("symlink", "/usr/lib/x86_64-linux-gnu/libfoo.so.1.0")),
        ], data_mode)),
    ])


def test_deb(build: Builder, tmp_path: Path) -> None:
    deb = _deb(build, tmp_path)
    t = open_deb(str(deb), host_config())
    root = f"/__unveil__/{deb.name}"
    assert t.inside == (root,)
    assert t.default_owner == "foo-tools"
    pkg = t.packages[0]
    assert (pkg.name, pkg.version, pkg.metadata) == ("foo-tools", "1.0-1", "deb:control")
    assert pkg.depends == ("dpkg (>= 1.17)", "libc6 (>= 2.34)", "libbar1 | libbaz1")
    assert pkg.platforms == (Platform(arch="amd64"),)
    assert t.fs.resolve(f"{root}/usr/lib/libfoo-abs.so") == \
        f"{root}/usr/lib/x86_64-linux-gnu/libfoo.so.1.0"
    result = _run(t)
    # As installed: the default directory /usr/lib/x86_64-linux-gnu holds the package's own
    # libfoo (dpkg puts it there), found under the name searched.
    assert _edges(result, "/usr/bin/tool")["libfoo.so.1"] is EdgeClass.BUNDLED
    assert _edges(result, "/usr/bin/app")["libfoo.so.1"] is EdgeClass.BUNDLED
    tool_edge = next(e for b in result.binaries if b.location.path.endswith("/usr/bin/tool")
                     for e in b.edges)
    # (in the first default directory: /lib/<triplet>, through merged /usr's link)
    assert (tool_edge.resolution.path or "").endswith("/x86_64-linux-gnu/libfoo.so.1")
    assert tool_edge.location is not None
    assert tool_edge.location.path.endswith("usr/lib/x86_64-linux-gnu/libfoo.so.1.0")
    assert {b.distribution for b in result.binaries} == {"foo-tools"}
    assert (result.kind, result.ecosystem) == (TargetKind.PACKAGE, "deb")


def test_deb_files_are_seen_where_they_install(build: Builder, tmp_path: Path) -> None:
    """A plug-in whose RUNPATH is an absolute directory only the package creates (VLC's
    /usr/lib/x86_64-linux-gnu/vlc) finds the package's library there, as installed; a
    library of the package replaces the system's of the same name; the system's other
    files are still seen."""
    libpx = build.lib("px/libpx.so.0", soname="libpx.so.0")
    own_z = build.lib("px/libz.so.1", soname="libz.so.1")
    plugin = build.lib("px/plugin.so", needs=[str(libpx)],
                       runpath="/usr/lib/x86_64-linux-gnu/px")
    tool = build.exe("px/tool", needs=[str(own_z)])
    deb = _ar(tmp_path / "px_1.0_amd64.deb", [
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", _tar_bytes([("./control", b"Package: px\nVersion: 1.0\n")])),
        ("data.tar.gz", _tar_bytes([
            ("./usr/lib/x86_64-linux-gnu/px/libpx.so.0", libpx.read_bytes()),
            ("./usr/lib/x86_64-linux-gnu/px/plugins/plugin.so", plugin.read_bytes()),
            ("./usr/lib/x86_64-linux-gnu/libz.so.1", own_z.read_bytes()),
            ("./usr/bin/tool", tool.read_bytes()),
        ])),
    ])
    t = open_deb(str(deb), host_config())
    result = _run(t)
    assert _edges(result, "plugins/plugin.so")["libpx.so.0"] is EdgeClass.BUNDLED
    assert _edges(result, "/usr/bin/tool")["libz.so.1"] is EdgeClass.BUNDLED
    assert _edges(result, "/usr/bin/tool")["libc.so.6"] is not EdgeClass.MISSING
    root = f"/__unveil__/{deb.name}"
    assert t.fs.resolve("/usr/lib/x86_64-linux-gnu/px/libpx.so.0") == \
        f"{root}/usr/lib/x86_64-linux-gnu/px/libpx.so.0"
    assert t.fs.resolve("/usr/lib/x86_64-linux-gnu/libc.so.6") is not None
    # a link of the package to a file of the system's is read where it is installed
    link = _ar(tmp_path / "ln_1.0_amd64.deb", [
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", _tar_bytes([("./control", b"Package: ln\nVersion: 1.0\n")])),
        ("data.tar.gz", _tar_bytes([
            ("./usr/lib/x86_64-linux-gnu/libunveil-c.so", ("symlink", "libc.so.6"))]))])
    lt = open_deb(str(link), host_config())
    assert lt.fs.resolve("/usr/lib/x86_64-linux-gnu/libunveil-c.so") == \
        lt.fs.resolve("/usr/lib/x86_64-linux-gnu/libc.so.6")


def test_deb_errors(build: Builder, tmp_path: Path) -> None:
    bad = _ar(tmp_path / "bad.deb", [("debian-binary", b"2.0\n")])
    with pytest.raises(TargetError, match=r"no data\.tar"):
        open_deb(str(bad), host_config())
    (tmp_path / "junk.deb").write_bytes(b"junk" * 10)
    with pytest.raises(TargetError, match="not an ar archive"):
        open_deb(str(tmp_path / "junk.deb"), host_config())
    with pytest.raises(TargetError, match="no such file"):
        open_deb(str(tmp_path / "none.deb"), host_config())


# ----------------------------------------------------------------------------- conda


def _conda_members(build: Builder) -> tuple[list[Member], list[Member]]:
    lib = build.lib("conda/libfoo.so.2")
    exe = build.exe("conda/foo", needs=[str(lib)], rpath="$ORIGIN/../lib")
    index = {"name": "foo", "version": "2.0", "build": "h123_0", "subdir": "linux-64",
             "platform": "linux", "arch": "x86_64", "depends": ["libgcc-ng >=12", "zlib"]}
    info: list[Member] = [("info/index.json", json.dumps(index).encode()),
                          ("info/paths.json", b'{"paths": []}'),
                          ("info/recipe/meta.yaml", b"x")]
    pkg: list[Member] = [("lib/libfoo.so.2", lib.read_bytes()), ("bin/foo", exe.read_bytes())]
    return info, pkg


def test_conda_package(build: Builder, tmp_path: Path) -> None:
    zstd = pytest.importorskip("zstandard")
    info, pkg = _conda_members(build)
    path = tmp_path / "foo-2.0-h123_0.conda"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("metadata.json", '{"conda_pkg_format_version": 2}')
        for prefix, members in (("info", info), ("pkg", pkg)):
            z.writestr(f"{prefix}-foo-2.0-h123_0.tar.zst",
                       zstd.ZstdCompressor().compress(_tar_bytes(members, "w")))
    t = open_conda(str(path), host_config())
    root = f"/__unveil__/{path.name}"
    assert sorted(t.files) == [f"{root}/bin/foo", f"{root}/lib/libfoo.so.2"]
    p = t.packages[0]
    assert (p.name, p.version, p.depends) == ("foo", "2.0", ("libgcc-ng >=12", "zlib"))
    assert p.platforms == (Platform("linux", "x86_64"),)
    assert t.distributions[0].metadata_path == "conda:info/index.json"
    result = _run(t)
    assert _edges(result, "/bin/foo")["libfoo.so.2"] is EdgeClass.BUNDLED
    assert (result.kind, result.ecosystem) == (TargetKind.PACKAGE, "conda")


def test_conda_legacy_and_env(build: Builder, tmp_path: Path) -> None:
    info, pkg = _conda_members(build)
    legacy = _tar(tmp_path / "foo-2.0-h123_0.tar.bz2", [*info, *pkg], "w:bz2")
    t = open_conda(str(legacy), host_config())
    assert not any("/info/" in f for f in t.files)
    assert t.packages[0].name == "foo"
    assert _edges(_run(t), "/bin/foo")["libfoo.so.2"] is EdgeClass.BUNDLED
    env = tmp_path / "env"
    (env / "conda-meta").mkdir(parents=True)
    (env / "lib").mkdir()
    shutil.copy(build.lib("conda/libfoo.so.2"), env / "lib/libfoo.so.2")
    (env / "conda-meta/foo-2.0-h123_0.json").write_text(json.dumps({
        "name": "foo", "version": "2.0", "depends": ["zlib"], "files": ["lib/libfoo.so.2"]}))
    (env / "conda-meta/history").write_text("")
    e = open_conda(str(env), host_config())
    assert e.owner_of(f"{env}/lib/libfoo.so.2") == "foo"
    assert (_run(e).kind, _run(e).ecosystem) == (TargetKind.DIRECTORY, "conda")
    assert [(d.name, d.files) for d in e.distributions] == [("foo", 1)]


# ------------------------------------------------------------------------------- jar


def test_jar_with_jni_library(build: Builder, tmp_path: Path) -> None:
    so = build.lib("jni/libsqlitejdbc.so")
    jar = tmp_path / "sqlite-jdbc-3.0.jar"
    with zipfile.ZipFile(jar, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n"
                   "Implementation-Title: SQLite JDBC\r\n\r\n")
        z.writestr("META-INF/maven/org.xerial/sqlite-jdbc/pom.properties",
                   "groupId=org.xerial\nartifactId=sqlite-jdbc\nversion=3.0\n")
        z.writestr("org/sqlite/JDBC.class", b"\xca\xfe\xba\xbe\x00\x00")
        z.write(so, "org/sqlite/native/Linux/x86_64/libsqlitejdbc.so")
        z.writestr("BOOT-INF/lib/inner.jar", b"PK")
        z.writestr("../escape.so", b"x")
    t = open_jar(str(jar), host_config())
    root = f"/__unveil__/{jar.name}"
    native = f"{root}/org/sqlite/native/Linux/x86_64/libsqlitejdbc.so"
    assert t.file_platforms == {native: Platform("linux", "x86_64")}
    assert (t.packages[0].name, t.packages[0].version) == ("org.xerial:sqlite-jdbc", "3.0")
    msgs = _messages(t.problems)
    assert "nested Java archive not scanned" in msgs
    assert "unsafe path" in msgs
    result = _run(t)
    assert [b.loader_path for b in result.binaries] == [native]
    assert (result.kind, result.ecosystem) == (TargetKind.PACKAGE, "jar")
    assert result.binaries[0].distribution == "org.xerial:sqlite-jdbc"
    assert _edges(result, ".so")["libc.so.6"] in (EdgeClass.SYSTEM, EdgeClass.POLICY_SYSTEM)


def test_executable_jar(build: Builder, tmp_path: Path) -> None:
    """A "fully executable" jar (Spring Boot's launch script before the zip): read as java
    and zipfile read it (it was refused: "bad central directory entry")."""
    so = build.lib("jni/libexec.so")
    plain = tmp_path / "plain.jar"
    with zipfile.ZipFile(plain, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
        z.write(so, "META-INF/native/libexec.so")
    jar = tmp_path / "app-1.0.jar"
    jar.write_bytes(b"#!/bin/bash\n# launch script\nexec java -jar \"$0\" \"$@\"\n"
                    + plain.read_bytes())
    result = _run(open_jar(str(jar), host_config()))
    assert [b.loader_path for b in result.binaries] == [
        f"/__unveil__/{jar.name}/META-INF/native/libexec.so"]
    assert not result.problems


# ----------------------------------------------------------------------- real packages

CACHE = Path.home() / ".cache" / "unveil-tests" / "ecosystems"
NPM = ["sharp@0.34.5", "@img/sharp-linux-x64@0.34.5", "@img/sharp-libvips-linux-x64@1.2.4",
       "@swc/core-linux-x64-gnu@1.16.22", "lightningcss-linux-x64-gnu@1.33.0",
       "@esbuild/linux-x64@0.28.2", "bcrypt@6.0.0", "koffi@3.3.4"]
DEBIAN = ["ruby-nokogiri=1.13.10+dfsg-2+b1", "ruby-ffi=1.15.5+dfsg-1+b1",
          "ruby-sqlite3=1.4.2-4+b3", "libzstd1=1.5.4+dfsg2-5"]


def _fetch(cmd: list[str], cwd: Path) -> None:
    if shutil.which(cmd[0]) is None:
        pytest.skip(f"{cmd[0]} is not installed")
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=300)
    if p.returncode != 0:
        pytest.skip(f"{' '.join(cmd)} failed: {p.stderr[-300:]}")


def _pack_file(spec: str) -> Path:
    name, ver = spec.rsplit("@", 1)
    return CACHE / f"{name.lstrip('@').replace('/', '-')}-{ver}.tgz"


@pytest.fixture(scope="module")
def real_artifacts() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    for spec in NPM:
        if not _pack_file(spec).exists():
            _fetch(["npm", "pack", spec], CACHE)
    missing = [d for d in DEBIAN
               if not list(CACHE.glob(f"{d.split('=')[0]}_{d.split('=')[1].split(':')[-1]}_*"))]
    if missing:
        _fetch(["apt-get", "update", "-qq"], CACHE)
        _fetch(["apt-get", "download", *missing], CACHE)
    proj = CACHE / "node-project"
    if not (proj / "node_modules/@img/sharp-linux-x64").exists():
        proj.mkdir(exist_ok=True)
        (proj / "package.json").write_text('{"name": "unveil-fixture", "version": "1.0.0"}')
        _fetch(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                "sharp@0.34.5", "bcrypt@6.0.0"], proj)
    return CACHE


def _classes(result: TargetResult) -> dict[str, set[EdgeClass]]:
    return {b.loader_path.rsplit("/", 1)[-1]: {e.edge_class for e in b.edges}
            for b in result.binaries}


@pytest.mark.network
def test_real_npm_packages(real_artifacts: Path) -> None:
    cfg = host_config()
    sharp = open_npm_packs([str(_pack_file(s)) for s in NPM[:3]], cfg)
    result = _run(sharp)
    edges = _edges(result, "sharp-linux-x64.node")
    assert edges["libvips-cpp.so.8.17.3"] is EdgeClass.OTHER_DISTRIBUTION
    assert EdgeClass.MISSING not in _classes(result)["libvips-cpp.so.8.17.3"]
    abis = addon_abis(sharp.fs, sharp.files)
    assert set(abis.values()) == {"n-api"}
    assert "24 optional platform packages" in _messages(result.problems)
    for spec, binary in [(NPM[3], "swc.linux-x64-gnu.node"),
                         (NPM[4], "lightningcss.linux-x64-gnu.node"), (NPM[5], "esbuild")]:
        t = open_npm(str(_pack_file(spec)), cfg)
        r = _run(t)
        classes = _classes(r)
        assert EdgeClass.MISSING not in classes[binary], (spec, classes)
        assert t.packages[0].platforms, spec
        if binary.endswith(".node"):
            assert set(addon_abis(t.fs, t.files).values()) == {"n-api"}
    bcrypt = open_npm(str(_pack_file(NPM[6])), cfg)
    linux = [f for f, p in bcrypt.file_platforms.items()
             if p == Platform("linux", "x86_64", "glibc")]
    assert [f.rsplit("/", 1)[-1] for f in linux] == ["bcrypt.glibc.node"]
    r = _run(bcrypt)
    assert _edges(r, "linux-x64/bcrypt.glibc.node")["libc.so.6"] is EdgeClass.POLICY_SYSTEM
    koffi = open_npm(str(_pack_file(NPM[7])), cfg)
    assert "optional platform packages are chosen at install time" in _messages(koffi.problems)
    installed = open_npm(str(real_artifacts / "node-project"), cfg)
    r = _run(installed)
    edge = _edges(r, "sharp-linux-x64.node")["libvips-cpp.so.8.17.3"]
    assert edge is EdgeClass.OTHER_DISTRIBUTION
    assert {"sharp", "@img/sharp-linux-x64", "bcrypt"} <= {d.name for d in r.distributions}


@pytest.mark.network
def test_real_debian_packages(real_artifacts: Path, tmp_path: Path) -> None:
    cfg = host_config()
    expect = {"ruby-nokogiri": ("nokogiri.so", "nokogiri", "libruby3.1"),
              "ruby-ffi": ("ffi_c.so", "ffi", "libffi8"),
              "ruby-sqlite3": ("sqlite3_native.so", "sqlite3", "libsqlite3-0"),
              "libzstd1": ("libzstd.so.1.5.4", None, "libc6")}
    for name, (binary, gem, dep) in expect.items():
        deb = next(real_artifacts.glob(f"{name}_*.deb"))
        t = open_deb(str(deb), cfg)
        assert t.packages[0].name == name
        assert any(d.startswith(dep) for d in t.packages[0].depends), t.packages[0].depends
        r = _run(t)
        assert binary in _classes(r), _classes(r)
        if gem is not None:
            assert gem in [p.name for p in t.packages if p.ecosystem == "gem"]
            feature = binary.removesuffix(".so")
            assert feature in ruby_extensions(t.fs, t.files).values()
    # The same gem, installed (Debian's rubygems-integration is a GEM_HOME).
    deb = next(real_artifacts.glob("ruby-ffi_*.deb"))
    _fetch(["dpkg-deb", "-x", str(deb), str(tmp_path / "root")], tmp_path)
    home = tmp_path / "root/usr/lib/x86_64-linux-gnu/rubygems-integration/3.1.0"
    t = open_gem(str(home), cfg)
    assert ("ffi", "1.15.5") in [(d.name, d.version) for d in t.distributions]
    so = next(f for f in t.files if f.endswith("ffi_c.so"))
    assert t.owner_of(so) == "ffi"


def test_prebuilds_for_other_platforms_are_not_missing_here(build: Builder,
                                                           tmp_path: Path) -> None:
    """node-gyp-build loads only the prebuild of the running platform: what an arm64 or a
    musl prebuild lacks on this glibc x86-64 root is optional, not missing; the prebuild for
    this platform is judged as usual."""
    gone = ("libunveil-gone.so.1",)
    members: list[Member] = [
        ("package/package.json", json.dumps({"name": "pb", "version": "1.0.0"}).encode()),
        ("package/prebuilds/linux-arm64/pb.glibc.node", make_elf(machine=183, needed=gone)),
        ("package/prebuilds/linux-x64/pb.musl.node", make_elf(needed=gone)),
        ("package/prebuilds/linux-x64/pb.glibc.node", make_elf(needed=gone)),
    ]
    arc = _tar(tmp_path / "pb-1.0.0.tgz", members)
    result = _run(open_npm(str(arc), host_config()))
    classes = {b.location.path.split("prebuilds/")[1]: [e.edge_class for e in b.edges]
               for b in result.binaries}
    assert classes == {"linux-arm64/pb.glibc.node": [EdgeClass.OPTIONAL],
                       "linux-x64/pb.musl.node": [EdgeClass.OPTIONAL],
                       "linux-x64/pb.glibc.node": [EdgeClass.MISSING]}
    arm = next(b for b in result.binaries if "arm64" in b.location.path)
    assert arm.edges[0].note == "a prebuild for linux-aarch64 (glibc), loaded only there"


def test_addons_built_for_other_platforms_are_not_missing_here(tmp_path: Path) -> None:
    """Packages that ship one addon per platform in any layout (farmhash's
    build/farmhash-<os>-<arch>.node, a jar's JNI libraries): the file's own ELF facts say
    which system loads it.  What an aarch64, a 32-bit x86 (node is a 64-bit process), a
    musl or a FreeBSD build lacks on this glibc x86-64 root is optional; a 32-bit x86
    program runs here, and a wheel (one platform by its tag) is judged as usual."""
    gone = ("libunveil-gone.so.1",)
    freebsd = bytearray(make_elf(needed=gone))
    freebsd[7] = 9  # EI_OSABI: FreeBSD
    members: list[Member] = [
        ("package/package.json", json.dumps({"name": "fh", "version": "1.0.0"}).encode()),
        ("package/build/fh-linux-arm64.node", make_elf(machine=183, needed=gone)),
        ("package/build/fh-linuxmusl-x64.node",
         make_elf(needed=("libc.musl-x86_64.so.1", *gone))),
        ("package/build/fh-freebsd-x64.node", bytes(freebsd)),
        ("package/build/fh-linux-ia32.node", make_elf(bits=32, machine=3, needed=gone)),
        ("package/bin/fh-ia32", make_elf(bits=32, machine=3, needed=gone,
                                         interp="/lib/ld-linux.so.2")),
        # a 32-bit program's own 32-bit library is loaded with it, where the program runs
        ("package/bin/fh-ia32-tool", make_elf(bits=32, machine=3, needed=("libfh32.so.1",),
                                              interp="/lib/ld-linux.so.2",
                                              runpath="$ORIGIN")),
        ("package/bin/libfh32.so.1", make_elf(bits=32, machine=3, soname="libfh32.so.1",
                                              needed=gone)),
        ("package/build/fh-linux-x64.node", make_elf(needed=("libc.so.6", *gone))),
    ]
    arc = _tar(tmp_path / "fh-1.0.0.tgz", members)
    result = _run(open_npm(str(arc), host_config()))
    gone_edge = {b.location.path.rsplit("/", 1)[1]: e for b in result.binaries
                 for e in b.edges if e.resolution.request == gone[0]}
    assert {k: e.edge_class for k, e in gone_edge.items()} == {
        "fh-linux-arm64.node": EdgeClass.OPTIONAL,
        "fh-linuxmusl-x64.node": EdgeClass.OPTIONAL,
        "fh-freebsd-x64.node": EdgeClass.OPTIONAL,
        "fh-linux-ia32.node": EdgeClass.OPTIONAL,
        "fh-ia32": EdgeClass.MISSING,
        "libfh32.so.1": EdgeClass.MISSING,
        "fh-linux-x64.node": EdgeClass.MISSING}
    assert gone_edge["fh-linux-arm64.node"].note == (
        "built for linux-aarch64: this system does not load it")
    assert gone_edge["fh-linuxmusl-x64.node"].note == (
        "built for linux-x86_64 (musl): this system does not load it")
    assert gone_edge["fh-freebsd-x64.node"].note == (
        "built for freebsd-x86_64: this system does not load it")
    # --libc musl: every file is taken as musl's and the system as musl: the musl build
    # is not one for another C library.
    cfg = replace(host_config(), linux_libc="musl")
    musl = _TargetScan(Scanner(cfg), open_npm(str(arc), cfg)).run()
    by_name = {b.location.path.rsplit("/", 1)[1]: b for b in musl.binaries}
    assert next(e for e in by_name["fh-linuxmusl-x64.node"].edges
                if e.resolution.request == gone[0]).edge_class is not EdgeClass.OPTIONAL
    # In a wheel, a file for another machine is a packaging fault: still missing.
    wheel = tmp_path / "w-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("w/_arm.so", make_elf(machine=183, needed=gone))
        z.writestr("w-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    scanned = Scanner(host_config()).scan(str(wheel)).targets[0]
    assert [e.edge_class for b in scanned.binaries for e in b.edges] == [EdgeClass.MISSING]


_MUSL_SH = ("/lib/ld-musl-x86_64.so.1", ("libc.musl-x86_64.so.1",))
_GLIBC_SH = ("/lib64/ld-linux-x86-64.so.2", ("libc.so.6",))


@pytest.mark.parametrize(("loaders", "libc"), [
    ({"lib64/ld-linux-x86-64.so.2": ()}, "glibc"),
    ({"lib/ld-musl-x86_64.so.1": ()}, "musl"),
    # Debian with its musl package: a real glibc loader beside musl's
    ({"lib64/ld-linux-x86-64.so.2": (), "lib/ld-musl-x86_64.so.1": ()}, "glibc"),
    ({"lib64/ld-linux-x86-64.so.2": (), "lib/ld-musl-x86_64.so.1": (), "bin/sh": _GLIBC_SH},
     "glibc"),
    # Alpine with libc6-compat: glibc's loader path holds a library over musl's C library
    ({"lib64/ld-linux-x86-64.so.2": ("libc.musl-x86_64.so.1",),
      "lib/ld-musl-x86_64.so.1": ()}, "musl"),
    # Alpine with gcompat: its loader is a static-pie shim (nothing needed); the shell
    # (busybox) runs on musl
    ({"lib64/ld-linux-x86-64.so.2": (), "lib/ld-musl-x86_64.so.1": (), "bin/sh": _MUSL_SH},
     "musl"),
    ({}, None),
])
def test_the_roots_c_library_is_told_by_its_loaders(
        tmp_path: Path, loaders: dict[str, tuple[str, ...] | tuple[str, tuple[str, ...]]],
        libc: str | None) -> None:
    """A root's C library, which decides what a file built for the other one is and which
    prebuild node-gyp-build picks, is the one its shell runs on, else the one whose dynamic
    loader it has (a glibc-named shim over musl is musl's)."""
    root = tmp_path / "root"
    for rel, spec in loaders.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if rel == "bin/sh":
            interp, needed = spec
            assert isinstance(interp, str)
            assert isinstance(needed, tuple)
            (root / rel).write_bytes(make_elf(etype=3, interp=interp, needed=needed))
        else:
            (root / rel).write_bytes(make_elf(needed=tuple(str(n) for n in spec)))
    root.mkdir(exist_ok=True)
    arc = _tar(tmp_path / "p-1.0.0.tgz", [
        ("package/package.json", json.dumps({"name": "p", "version": "1.0.0"}).encode()),
        ("package/index.js", b"module.exports = require('node-gyp-build')(__dirname)\n"),
        ("package/prebuilds/linux-x64/p.musl.node", make_elf()),
        ("package/prebuilds/linux-x64/p.glibc.node", make_elf()),
    ])
    cfg = replace(host_config(), root=str(root))
    scan = _TargetScan(Scanner(cfg), open_npm(str(arc), cfg))
    assert scan._root_libc == libc
    [load] = [d for d in scan.run().dynamic_loads if d.site.api == "node-gyp-build"]
    assert [e.resolution.path.rsplit(".", 2)[1] for e in load.edges
            if e.resolution.path] == [libc or "glibc"]


def test_prebuilds_only_for_other_systems_leave_a_build_here(tmp_path: Path) -> None:
    """A package with a binding.gyp and prebuilt addons for macOS and Windows only (as
    node-pty ships them) compiles its addon when installed on Linux: the scan says so,
    since none of its binaries is the one that loads here."""
    pj = {"name": "pty", "version": "1.0.0",
          "scripts": {"install": "node scripts/prebuild.js || node-gyp rebuild"}}
    members: list[Member] = [
        ("package/package.json", json.dumps(pj).encode()),
        ("package/binding.gyp", b"{'targets': [{'target_name': 'pty'}]}"),
        ("package/prebuilds/darwin-arm64/pty.node", b"\xcf\xfa\xed\xfe" + bytes(60)),
        ("package/prebuilds/win32-x64/pty.node", b"MZ" + bytes(62)),
    ]
    msgs = _messages(open_npm(str(_tar(tmp_path / "pty-1.0.0.tgz", members)),
                              host_config()).problems)
    assert "pty: compiles its addon at install time (node-gyp, binding.gyp)" in msgs
    linux = _tar(tmp_path / "pty-1.0.1.tgz", [
        *members, ("package/prebuilds/linux-x64/pty.node", make_elf())])
    assert "compiles its addon" not in _messages(open_npm(str(linux), host_config()).problems)
