"""Node's resolution of require() in the scanned tree: node-gyp-build's prebuild choice,
the bindings package, bare package names (node_modules, package.json exports/main),
computed package names, and the evaluator's loop variables."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.unit.elfgen import make_elf
from unveil import scan
from unveil.config import GlibcPlatform
from unveil.dynload.javascript import detect_javascript
from unveil.dynload.resolve import resolve_names
from unveil.loader.glibc import GlibcLoader
from unveil.loader.ldcache import CacheEntry, LdCache
from unveil.loader.store import BinaryStore
from unveil.model import Confidence, LoadSite, Outcome, Resolution
from unveil.sources.fs import HostFS


def elf_head(machine: int = 62) -> bytes:
    """The first bytes of a 64-bit little-endian ELF shared object for ``machine``."""
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    return ident + struct.pack("<HH", 3, machine) + bytes(44)


def tree(root: Path, files: dict[str, str | bytes | dict[str, object]]) -> None:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            p.write_text(json.dumps(content))
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)


def resolve_name(site: LoadSite, name: str, loader: GlibcLoader, fs: HostFS, *,
                 site_dir: str, caller: str | None) -> Resolution | None:
    """The one resolution of a name that is not a pkg-config module (None: no edge)."""
    rs = resolve_names(site, name, loader, fs, site_dir=site_dir, caller=caller)
    assert len(rs) <= 1
    return rs[0] if rs else None


def resolved(root: Path, file: str) -> list[tuple[int | None, str | None]]:
    """(line, path loaded) for each site of ``file`` (under ``root``), resolved as a scan
    does: the first name that is found."""
    fs = HostFS(str(root))
    loader = GlibcLoader(fs, GlibcPlatform(), BinaryStore(fs), cache=None)
    path = "/" + file
    # (a scan analyses only sources with a trigger word such as ".node")
    sites, problems = detect_javascript((root / file).read_text() + "\n// .node", path)
    assert not problems
    out: list[tuple[int | None, str | None]] = []
    for site in sites:
        hit: str | None = None
        for name in site.names:
            r = resolve_name(site, name, loader, fs, site_dir=path.rsplit("/", 1)[0],
                             caller=None)
            if r is not None and r.outcome is Outcome.FOUND:
                hit = r.path
                break
        out.append((site.line, hit))
    return out


def found(root: Path, file: str) -> list[str]:
    return [p for _, p in resolved(root, file) if p is not None]


def sites_of(src: str, file: str = "/app/index.js") -> list[LoadSite]:
    sites, problems = detect_javascript(src + "\n// .node", file)
    assert not problems
    return sites


# --------------------------------------------------------------------------- node-gyp-build

GYP = "module.exports = require('node-gyp-build')(__dirname);\n"


def test_node_gyp_build_takes_build_release_first(tmp_path: Path) -> None:
    tree(tmp_path, {"m/index.js": GYP, "m/build/Release/b.node": elf_head(),
                    "m/build/Release/a.node": elf_head(),
                    "m/prebuilds/linux-x64/m.node": elf_head()})
    assert found(tmp_path, "m/index.js") == ["/m/build/Release/a.node"]


@pytest.mark.parametrize(("files", "expected"), [
    # electron builds are for another runtime; node.napi is runtime-agnostic
    (["electron.napi.node", "node.napi.node"], "node.napi.node"),
    # the most specific of the matching tags
    (["m.napi.node", "m.napi.glibc.node", "m.napi.musl.node"], "m.napi.glibc.node"),
    # a musl build never loads with glibc, an armv8 build never on x64
    (["m.musl.node", "m.armv8.node"], None),
    (["node.napi.uv1.node", "node.napi.uv2.node"], "node.napi.uv1.node"),
    # the Node ABI is unknown statically: N-API first, then the newest ABI
    (["node.abi93.node", "node.abi115.node", "node.napi.node"], "node.napi.node"),
    (["node.abi93.node", "node.abi115.node"], "node.abi115.node"),
    (["m.glibc.node", "readme.txt"], "m.glibc.node"),
])
def test_node_gyp_build_prebuild_tags(tmp_path: Path, files: list[str],
                                      expected: str | None) -> None:
    tree(tmp_path, {"m/index.js": GYP, **{f"m/prebuilds/linux-x64/{f}": elf_head()
                                         for f in files}})
    want = [f"/m/prebuilds/linux-x64/{expected}"] if expected else []
    assert found(tmp_path, "m/index.js") == want


def test_node_gyp_build_prefers_single_arch_directories(tmp_path: Path) -> None:
    tree(tmp_path, {"m/lib/load.js": "require('node-gyp-build')(require('path')"
                                     ".join(__dirname, '..'));\n",
                    "m/prebuilds/linux-arm64+x64/m.node": elf_head(),
                    "m/prebuilds/linux-x64/m.node": elf_head(),
                    "m/prebuilds/darwin-x64/m.node": b"\xcf\xfa\xed\xfe",
                    "m/prebuilds/linux-x64-extra/m.node": elf_head()})
    assert found(tmp_path, "m/lib/load.js") == ["/m/prebuilds/linux-x64/m.node"]
    # node-gyp-build looks in the first matching directory only, even when it is empty
    (tmp_path / "m/prebuilds/linux-x64/m.node").unlink()
    assert found(tmp_path, "m/lib/load.js") == []
    (tmp_path / "m/prebuilds/linux-x64").rmdir()
    assert found(tmp_path, "m/lib/load.js") == ["/m/prebuilds/linux-arm64+x64/m.node"]


def test_bindings_searches_under_the_module_root(tmp_path: Path) -> None:
    tree(tmp_path, {"m/package.json": {"name": "m"},
                    "m/lib/deep/index.js": "module.exports = require('bindings')('addon');\n",
                    "m/build/Debug/addon.node": elf_head(),
                    "m/build/Release/addon.node": elf_head()})
    assert found(tmp_path, "m/lib/deep/index.js") == ["/m/build/Debug/addon.node"]
    (tmp_path / "m/build/Debug/addon.node").unlink()
    assert found(tmp_path, "m/lib/deep/index.js") == ["/m/build/Release/addon.node"]
    (tmp_path / "m/build/Release/addon.node").unlink()
    tree(tmp_path, {"m/lib/binding/node-v115-linux-x64/addon.node": elf_head()})
    assert found(tmp_path, "m/lib/deep/index.js") == [
        "/m/lib/binding/node-v115-linux-x64/addon.node"]


# --------------------------------------------------------------------------- require(package)

PLATFORM_PKG = "@scope/tool-linux-x64-gnu"


def test_require_of_a_package_whose_main_is_an_addon(tmp_path: Path) -> None:
    src = ("let b;\ntry { b = require('./tool.linux-x64-gnu.node') }\n"
           f"catch (e) {{ b = require('{PLATFORM_PKG}') }}\n"
           "const other = require('@scope/tool-darwin-arm64');\n")
    tree(tmp_path, {
        "app/node_modules/tool/index.js": src,
        f"app/node_modules/{PLATFORM_PKG}/package.json": {
            "name": PLATFORM_PKG, "main": "tool.linux-x64-gnu.node", "os": ["linux"],
            "cpu": ["x64"], "libc": ["glibc"]},
        f"app/node_modules/{PLATFORM_PKG}/tool.linux-x64-gnu.node": elf_head()})
    got = resolved(tmp_path, "app/node_modules/tool/index.js")
    assert got == [(2, None), (3, f"/app/node_modules/{PLATFORM_PKG}/tool.linux-x64-gnu.node"),
                   (4, None)]


def test_require_main_without_extension_and_index_files(tmp_path: Path) -> None:
    tree(tmp_path, {
        "p/index.js": "require('a-linux-x64'); require('b-linux-x64'); require('c-linux-x64')",
        "p/node_modules/a-linux-x64/package.json": {"main": "./bin/addon"},
        "p/node_modules/a-linux-x64/bin/addon.node": elf_head(),
        "p/node_modules/b-linux-x64/package.json": {"main": "lib"},
        "p/node_modules/b-linux-x64/lib/index.node": elf_head(),
        "p/node_modules/c-linux-x64/index.node": elf_head()})
    assert found(tmp_path, "p/index.js") == [
        "/p/node_modules/a-linux-x64/bin/addon.node", "/p/node_modules/b-linux-x64/lib/index.node",
        "/p/node_modules/c-linux-x64/index.node"]


def test_require_that_ends_in_javascript_is_no_load(tmp_path: Path) -> None:
    tree(tmp_path, {
        "p/index.js": "require('x-linux-x64'); require('y-linux-x64')",
        "p/node_modules/x-linux-x64/package.json": {"main": "index.js"},
        "p/node_modules/x-linux-x64/index.js": "",
        "p/node_modules/x-linux-x64/x.node": elf_head()})
    assert resolved(tmp_path, "p/index.js") == [(1, None), (1, None)]


def test_require_walks_up_node_modules_and_takes_the_nearest(tmp_path: Path) -> None:
    pkg: dict[str, object] = {"name": "n-linux-x64", "main": "n.node"}
    tree(tmp_path, {
        "w/node_modules/dep/lib/index.js": "require('n-linux-x64');\n",
        "w/node_modules/n-linux-x64/package.json": pkg,
        "w/node_modules/n-linux-x64/n.node": elf_head()})
    assert found(tmp_path, "w/node_modules/dep/lib/index.js") == [
        "/w/node_modules/n-linux-x64/n.node"]
    tree(tmp_path, {"w/node_modules/dep/node_modules/n-linux-x64/package.json": pkg,
                    "w/node_modules/dep/node_modules/n-linux-x64/n.node": elf_head()})
    assert found(tmp_path, "w/node_modules/dep/lib/index.js") == [
        "/w/node_modules/dep/node_modules/n-linux-x64/n.node"]


def test_require_skips_packages_and_addons_for_another_platform(tmp_path: Path) -> None:
    tree(tmp_path, {
        "p/index.js": "require('m-linux-arm64-gnu'); require('m-linux-x64-musl');\n"
                      "require('m-linux-x64-gnu'); require('m-linux-x64-any')",
        "p/node_modules/m-linux-arm64-gnu/package.json": {"main": "m.node", "cpu": ["arm64"]},
        "p/node_modules/m-linux-arm64-gnu/m.node": elf_head(183),
        "p/node_modules/m-linux-x64-musl/package.json": {"main": "m.node", "libc": ["musl"]},
        "p/node_modules/m-linux-x64-musl/m.node": elf_head(),
        "p/node_modules/m-linux-x64-gnu/package.json": {"main": "m.node", "os": ["!win32"]},
        "p/node_modules/m-linux-x64-gnu/m.node": elf_head(),
        # no os/cpu fields, but the addon is for AArch64: it would not load here
        "p/node_modules/m-linux-x64-any/package.json": {"main": "m.node"},
        "p/node_modules/m-linux-x64-any/m.node": elf_head(183)})
    assert found(tmp_path, "p/index.js") == ["/p/node_modules/m-linux-x64-gnu/m.node"]


def test_absent_addons_named_for_another_platform_are_no_edge(tmp_path: Path) -> None:
    """napi-rs's generated loader requires ./<name>.<platform>-<arch>[-<abi>].node in
    branches on process.platform and process.arch: the file for another system is absent
    here by design (no edge); the one named for this system, absent, is still missing."""
    names = ["x.android-arm64.node", "x.win32-x64-msvc.node", "x.darwin-universal.node",
             "x.linux-arm64-gnu.node", "x.linux-x64-musl.node", "x-freebsd-x64.node",
             "x.linux-x64-gnu.node", "x.node"]
    tree(tmp_path, {"p/index.js": "".join(f"require('./{n}')\n" for n in names)})
    got = resolved_all(tmp_path, "p/index.js")
    assert got == [(7, "/p/x.linux-x64-gnu.node", Outcome.NOT_FOUND),
                   (8, "/p/x.node", Outcome.NOT_FOUND)]


def resolved_all(root: Path, file: str) -> list[tuple[int | None, str, Outcome]]:
    """(line, name, outcome) of every name of ``file``'s sites that gives an edge."""
    fs = HostFS(str(root))
    loader = GlibcLoader(fs, GlibcPlatform(), BinaryStore(fs), cache=None)
    path = "/" + file
    sites, problems = detect_javascript((root / file).read_text() + "\n// .node", path)
    assert not problems
    out = []
    for site in sites:
        for name in site.names:
            r = resolve_name(site, name, loader, fs, site_dir=path.rsplit("/", 1)[0],
                             caller=None)
            if r is not None:
                out.append((site.line, name, r.outcome))
    return out


def test_exports_conditions_and_subpath_patterns(tmp_path: Path) -> None:
    tree(tmp_path, {
        "p/index.js": ("require('@img/sharp-linux-x64/sharp.node');\n"
                       "require('cond-linux-x64');\n"
                       "require('pat-linux-x64/native/fast.node');\n"
                       "require('hidden-linux-x64/h.node');\n"),
        "p/node_modules/@img/sharp-linux-x64/package.json": {
            "exports": {"./sharp.node": "./lib/sharp-linux-x64.node",
                        "./package": "./package.json"}},
        "p/node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64.node": elf_head(),
        "p/node_modules/cond-linux-x64/package.json": {
            "main": "wrong.node",
            "exports": {"import": "./esm.mjs", "browser": "./b.node",
                        "node": [{"types": "./x.d.ts"}, "./c.node"], "default": "./d.node"}},
        "p/node_modules/cond-linux-x64/c.node": elf_head(),
        "p/node_modules/cond-linux-x64/d.node": elf_head(),
        "p/node_modules/cond-linux-x64/wrong.node": elf_head(),
        "p/node_modules/pat-linux-x64/package.json": {
            "exports": {"./native/*": "./build/*", "./native/*.node": {"require": "./bin/*.node"},
                        "./native/x/*": "./nope/*"}},
        "p/node_modules/pat-linux-x64/bin/fast.node": elf_head(),
        # exports without the subpath: not exported, even though the file is there
        "p/node_modules/hidden-linux-x64/package.json": {"exports": {".": "./i.js"}},
        "p/node_modules/hidden-linux-x64/h.node": elf_head()})
    assert found(tmp_path, "p/index.js") == [
        "/p/node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64.node",
        "/p/node_modules/cond-linux-x64/c.node", "/p/node_modules/pat-linux-x64/bin/fast.node"]


@pytest.mark.parametrize("package_json", [
    "{not json", "", "[1, 2]", '{"main": 42, "exports": 7}', '{"exports": null}',
    '{"exports": {".": {"node": {"node": {"node": ' * 40 + '"./a.node"' + "}}}" * 40 + "}}",
    '{"exports": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"exports": {"./*": "./*", "./a*": "../../*"}}',
    '{"exports": {"./../../x.node": "./../../x.node"}}',
    '{"main": "' + "../" * 50 + 'etc/passwd"}',
])
def test_bad_package_json_never_raises(tmp_path: Path, package_json: str) -> None:
    tree(tmp_path, {"p/index.js": "require('bad-linux-x64'); require('bad-linux-x64/x.node')",
                    "p/node_modules/bad-linux-x64/package.json": package_json,
                    "p/node_modules/bad-linux-x64/a.node": elf_head()})
    for _, path in resolved(tmp_path, "p/index.js"):
        assert path is None or path.startswith("/p/node_modules/bad-linux-x64/")


def test_computed_package_name_matches_installed_packages(tmp_path: Path) -> None:
    src = ("let parts = [process.platform, process.arch];\n"
           "parts.push(family === MUSL ? 'musl' : 'gnu');\n"
           "let native;\n"
           "try {\n  native = require(`css-${parts.join('-')}`);\n} catch (err) {\n"
           "  native = require(`../css.${parts.join('-')}.node`);\n}\n")
    files: dict[str, str | bytes | dict[str, object]] = {"a/node_modules/css/node/index.js": src}
    for name, meta, machine in (("css-darwin-arm64", {"os": ["darwin"], "cpu": ["arm64"]}, 183),
                                ("css-linux-x64-musl", {"libc": ["musl"]}, 62),
                                ("css-linux-x64-gnu", {"os": ["linux"], "libc": ["glibc"]}, 62),
                                ("css-cli", {}, 62)):
        files[f"a/node_modules/{name}/package.json"] = {"main": "c.node", **meta}
        files[f"a/node_modules/{name}/c.node"] = elf_head(machine)
    files["a/node_modules/css-cli/package.json"] = {"main": "cli.js"}
    tree(tmp_path, files)
    assert resolved(tmp_path, "a/node_modules/css/node/index.js") == [
        (5, "/a/node_modules/css-linux-x64-gnu/c.node"), (7, None)]
    site = sites_of(src)[0]
    assert site.names == ("css-*-*",)


def test_sharp_like_loop_over_template_paths(tmp_path: Path) -> None:
    src = ("const { runtimePlatformArch } = require('./libvips');\n"
           "const runtimePlatform = runtimePlatformArch();\n"
           "const paths = [\n"
           "  `../src/build/Release/sharp-${runtimePlatform}.node`,\n"
           "  `@img/sharp-${runtimePlatform}/sharp.node`,\n"
           "  '@img/sharp-wasm32/sharp.node'\n];\n"
           "let path, sharp;\n"
           "for (path of paths) {\n  try {\n    sharp = require(path);\n    break;\n"
           "  } catch (err) {}\n}\n")
    tree(tmp_path, {
        "p/node_modules/sharp/lib/sharp.js": src,
        "p/node_modules/@img/sharp-linux-x64/package.json": {
            "os": ["linux"], "cpu": ["x64"], "libc": ["glibc"],
            "exports": {"./sharp.node": "./lib/sharp-linux-x64.node"}},
        "p/node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64.node": elf_head(),
        # a package the pattern also matches, with no such subpath
        "p/node_modules/@img/sharp-libvips-linux-x64/package.json": {"exports": {
            "./lib": "./lib/index.js"}}})
    got = resolved(tmp_path, "p/node_modules/sharp/lib/sharp.js")
    assert (11, "/p/node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64.node") in got


def test_pattern_paths_match_only_addons_for_this_platform(tmp_path: Path) -> None:
    tree(tmp_path, {
        "m/index.js": "require(`./prebuilds/${process.platform}-${process.arch}/m.node`)",
        "m/prebuilds/darwin-x64/m.node": b"\xcf\xfa\xed\xfe" + bytes(16),
        "m/prebuilds/linux-arm64/m.node": elf_head(183),
        "m/prebuilds/linux-x64/m.node": elf_head()})
    assert found(tmp_path, "m/index.js") == ["/m/prebuilds/linux-x64/m.node"]


def test_an_absent_alternative_is_not_missing(tmp_path: Path) -> None:
    src = ("const one = require('./build/Release/one.node');\n"
           "for (const p of ['./a.node', './b.node']) try { require(p) } catch (e) {}\n")
    tree(tmp_path, {"m/index.js": src})
    fs = HostFS(str(tmp_path))
    loader = GlibcLoader(fs, GlibcPlatform(), BinaryStore(fs), cache=None)
    sites, _ = detect_javascript(src, "/m/index.js")
    outcomes = {s.line: [r.outcome if r else None for r in (
        resolve_name(s, n, loader, fs, site_dir="/m", caller=None) for n in s.names)]
        for s in sites}
    assert outcomes == {1: [Outcome.NOT_FOUND], 2: [None, None]}


def test_extensionless_require_into_a_build_directory(tmp_path: Path) -> None:
    tree(tmp_path, {"m/index.js": "module.exports = require('./build/Release/binding');\n",
                    "m/build/Release/binding.node": elf_head()})
    assert found(tmp_path, "m/index.js") == ["/m/build/Release/binding.node"]


def test_alternatives_for_another_libc_are_skipped(tmp_path: Path) -> None:
    src = ("const BINARIES = {musl: './musl_x64/k.node', glibc: './linux_x64/k.node'};\n"
           "module.exports = require(BINARIES[determineLibc()]);\n")
    tree(tmp_path, {
        "k/index.js": src,
        "k/musl_x64/k.node": make_elf(needed=("libc.musl-x86_64.so.1",)),
        "k/linux_x64/k.node": make_elf(needed=("libm.so.6", "libc.so.6"))})
    assert resolved(tmp_path, "k/index.js") == [(2, "/k/linux_x64/k.node")]


# --------------------------------------------------------------------------- the detector

@pytest.mark.parametrize("src", [
    "require('lodash')", "require('fs')", "require('./lib/x')", "require(`./locale/${l}`)",
    "require(name)", "require(`${dir}/x`)", "require(`@img/sharp-libvips-${p}/package`)",
    "require('@esbuild/linux-x64/bin/esbuild')", "require('node-linux')",
    "require('x-linux-x64/index.js')", "const a = require('./a.json'); // .node",
])
def test_requires_that_load_no_addon_make_no_site(src: str) -> None:
    assert sites_of(src) == []


@pytest.mark.parametrize(("src", "names"), [
    ("require('@napi-rs/canvas-win32-x64-msvc')", ("@napi-rs/canvas-win32-x64-msvc",)),
    ("require(`@esbuild/${process.platform}-${process.arch}`)", ("@esbuild/*-*",)),
    ("require('pkg/sharp.node')", ("pkg/sharp.node",)),
    ("require('./build/Debug/addon')", ("/app/build/Debug/addon",)),
    ("const b = {gnu: 'x-linux-x64-gnu', musl: 'x-linux-x64-musl'};\nrequire(b[libc])",
     ("x-linux-x64-gnu", "x-linux-x64-musl")),
])
def test_requires_that_may_load_an_addon(src: str, names: tuple[str, ...]) -> None:
    sites = sites_of(src)
    assert [n for s in sites for n in s.names] == list(names)
    assert all(s.api == "require" and s.line == src.count("\n") + 1 for s in sites)


def test_require_functions_made_by_create_require() -> None:
    src = ("import { createRequire } from 'node:module';\n"
           "const load = createRequire(import.meta.url);\n"
           "const r2 = module.createRequire(__filename);\n"
           "load('./build/Release/a.node');\nr2('@x/y-linux-x64');\nother('./b.node');\n")
    assert [(s.line, s.names) for s in sites_of(src)] == [
        (4, ("/app/build/Release/a.node",)), (5, ("@x/y-linux-x64",))]


def test_loop_and_callback_variables_are_bound_to_elements() -> None:
    src = ("const files = ['a.node', 'b.node'];\n"
           "for (const f of files) require('./' + f);\n"
           "['c', 'd'].forEach((n) => require(`./${n}.node`));\n"
           "const table = {x: './e.node', y: './f.node'};\n"
           "Object.values(table).map(function (p) { return require(p); });\n"
           "for (const k in table) require(table[k]);\n"
           "Object.keys(table).forEach(k => require('./' + k + '.node'));\n")
    got = {s.line: s.names for s in sites_of(src)}
    assert got == {2: ("/app/a.node", "/app/b.node"), 3: ("/app/c.node", "/app/d.node"),
                   5: ("/app/e.node", "/app/f.node"), 6: ("/app/e.node", "/app/f.node"),
                   7: ("/app/x.node", "/app/y.node")}


def test_appended_names() -> None:
    src = ("let name = `@w/watcher-${process.platform}-${process.arch}`;\n"
           "if (family === MUSL) { name += '-musl'; } else { name += '-glibc'; }\n"
           "binding = require(name);\n")
    assert [s.names for s in sites_of(src)] == [
        ("@w/watcher-*-*", "@w/watcher-*-*-musl", "@w/watcher-*-*-glibc")]


def test_partial_evaluation_keeps_the_known_parts() -> None:
    src = ("const parts = [process.platform, 'x64'];\n"
           "require(`./m.${parts.join('-')}.node`);\n"
           "require(['lib', 'Addon'].join('/').toLowerCase() + '.node');\n"
           "require('./X.node'.replace('X', 'y'));\n"
           "require(['./p.node'].concat(['./q.node'])[1]);\n")
    got = {s.line: s.names for s in sites_of(src)}
    assert got == {2: ("/app/m.*-x64.node",), 3: ("lib/addon.node",), 4: ("/app/y.node",),
                   5: ("/app/q.node",)}


@pytest.mark.parametrize("src", [
    "for (x of x) require(x + '.node')",
    "x += x; x += x + x; require(x + '.node')",
    "a.forEach(a => a.forEach(a => require(a)))",
    "for (const p of " + "[" * 200 + "'a.node'" + "]" * 200 + ") require(p)",
    ")]}.forEach(x => require(x))",
    "const a = [b]; const b = [a];\nfor (const x of a) for (const y of x) require(y);",
    "require(" * 500,
    "x.forEach(function" * 300,
])
def test_hostile_loops_and_requires_terminate(src: str) -> None:
    detect_javascript(src + "\n// .node", "/app/index.js")


# --------------------------------------------------------------------------- a whole scan

def test_scan_predicts_the_addon_of_a_platform_package(tmp_path: Path) -> None:
    tree(tmp_path, {
        "node_modules/tool/package.json": {"name": "tool", "main": "index.js"},
        "node_modules/tool/index.js": ("// loads tool.<platform>.node\n"
                                       "module.exports = require('@t/tool-linux-x64-gnu');\n"),
        "node_modules/@t/tool-linux-x64-gnu/package.json": {
            "name": "@t/tool-linux-x64-gnu", "main": "tool.node", "cpu": ["x64"]},
        "node_modules/@t/tool-linux-x64-gnu/tool.node": elf_head()})
    loads = scan(str(tmp_path)).targets[0].dynamic_loads
    [load] = [d for d in loads if d.site.api == "require"]
    assert load.site.line == 2
    assert load.found
    edge = load.edges[0]
    assert edge.resolution.path == f"{tmp_path}/node_modules/@t/tool-linux-x64-gnu/tool.node"
    assert edge.resolution.requester.endswith("node_modules/tool/index.js:2")


def test_pkg_config_modules_resolve_through_their_pc_files(tmp_path: Path) -> None:
    """``<!@(pkg-config MODULE --libs)`` in a binding.gyp links the ``-l`` libraries of the
    ``Libs`` of MODULE's .pc file (libpng: -lpng16) and of the modules it ``Requires``
    (openssl.pc has none of its own: libssl and libcrypto), each found in pkg-config's search
    path of the root and then as ld.so finds it; without a .pc file (no -dev package) the
    library is guessed from the module's name, API version included (pangocairo:
    libpangocairo-1.0), and the guess says so."""
    lib = "usr/lib/x86_64-linux-gnu"
    tree(tmp_path, {
        f"{lib}/pkgconfig/libfoo.pc": ("prefix=/usr\nlibdir=${prefix}/lib/x86_64-linux-gnu\n"
                                       "Name: foo\nLibs: -L${libdir} -lfoo16 \\\n -lm\n"),
        "usr/share/pkgconfig/headers.pc": "Name: headers\nCflags: -I/usr/include/h\n",
        # Fedora keeps its .pc files in /usr/lib64/pkgconfig
        "usr/lib64/pkgconfig/ssl.pc": "Requires: libfoo >= 1.0, ssl, headers,gone\nLibs:\n",
        f"{lib}/libfoo16.so.16": make_elf(soname="libfoo16.so.16"),
        f"{lib}/libm.so.6": make_elf(soname="libm.so.6"),
        f"{lib}/libbar-1.0.so.0": make_elf(soname="libbar-1.0.so.0"),
    })
    fs = HostFS(str(tmp_path))
    cache = LdCache(tuple(CacheEntry(n, f"/{lib}/{n}", 0x0303, 0)
                          for n in ("libfoo16.so.16", "libm.so.6", "libbar-1.0.so.0")), "test")
    loader = GlibcLoader(fs, GlibcPlatform(), BinaryStore(fs), cache=cache)

    def resolve(module: str) -> list[tuple[str, Outcome, str | None]]:
        site = LoadSite("/pkg/binding.gyp", 3, "gyp", "pkg-config", (module,),
                        Confidence.MEDIUM, stem=True)
        rs = resolve_names(site, module, loader, fs, site_dir="/pkg", caller=None)
        assert all(r.requester == "/pkg/binding.gyp:3" for r in rs)
        return [(r.request, r.outcome, r.path) for r in rs]

    assert resolve("libfoo") == [
        ("pkg-config libfoo -> -lfoo16 -> libfoo16.so.16", Outcome.FOUND,
         f"/{lib}/libfoo16.so.16"),
        ("pkg-config libfoo -> -lm -> libm.so.6", Outcome.FOUND, f"/{lib}/libm.so.6")]
    assert resolve("headers") == []  # no library of its own
    assert resolve("ssl") == [
        ("pkg-config ssl -> gone", Outcome.NOT_FOUND, None),
        ("pkg-config ssl -> libfoo -> -lfoo16 -> libfoo16.so.16", Outcome.FOUND,
         f"/{lib}/libfoo16.so.16"),
        ("pkg-config ssl -> libfoo -> -lm -> libm.so.6", Outcome.FOUND, f"/{lib}/libm.so.6")]
    assert resolve("bar") == [(
        "pkg-config bar (no bar.pc on pkg-config's path; guessed -lbar-*) -> libbar-1.0.so.0",
        Outcome.FOUND, f"/{lib}/libbar-1.0.so.0")]
    assert [o for _, o, _ in resolve("gone")] == [Outcome.NOT_FOUND]


def test_pc_files_that_loop_or_explode_stay_bounded(tmp_path: Path) -> None:
    """Modules that require each other, and variables that double at every expansion, end
    in a bounded answer."""
    doubling = "".join(f"x{i + 1}=${{x{i}}}${{x{i}}}\n" for i in range(40))
    tree(tmp_path, {
        "usr/share/pkgconfig/a.pc": "Requires: b\nLibs: -la\n",
        "usr/share/pkgconfig/b.pc": "Requires: a b\nLibs: -lb\n",
        "usr/share/pkgconfig/boom.pc": f"x0=ab\n{doubling}Libs: -l${{x40}}\n",
    })
    fs = HostFS(str(tmp_path))
    loader = GlibcLoader(fs, GlibcPlatform(), BinaryStore(fs), cache=None)
    for module, want in (("a", ["-la", "-lb"]), ("boom", [])):
        site = LoadSite("/pkg/binding.gyp", 3, "gyp", "pkg-config", (module,),
                        Confidence.MEDIUM, stem=True)
        rs = resolve_names(site, module, loader, fs, site_dir="/pkg", caller=None)
        assert [r.request.rsplit(" ", 1)[-1] for r in rs] == want


def test_pc_files_are_read_as_pkgconf_reads_them(tmp_path: Path) -> None:
    """Comments end at their newline (a backslash in one continues nothing), fields may be
    repeated (they add up) and spelled in any case, words may be quoted, ``-l:file`` and
    paths of shared libraries link those files, and a file of variables that double at
    every step is refused before it is expanded."""
    lib = "usr/lib/x86_64-linux-gnu"
    doubling = "".join(f"x{i + 1}=${{x{i}}}${{x{i}}}\n" for i in range(15))
    tree(tmp_path, {
        "usr/share/pkgconfig/m.pc": (
            "# a comment that ends in a backslash \\\n"
            "Libs: -lone\n"
            "libs: '-ltwo'\n"
            "Libs: -l:libthree.so.3 /usr/lib/x86_64-linux-gnu/libfour.so.4 -Wl,--as-needed\n"),
        "usr/share/pkgconfig/bomb.pc": "x0=ab\n" + doubling + "Libs: " + "${x15}" * 3000 + "\n",
        **{f"{lib}/{n}": make_elf(soname=n) for n in (
            "libone.so.1", "libtwo.so.2", "libthree.so.3", "libfour.so.4")},
    })
    fs = HostFS(str(tmp_path))
    cache = LdCache(tuple(CacheEntry(n, f"/{lib}/{n}", 0x0303, 0) for n in (
        "libone.so.1", "libtwo.so.2", "libthree.so.3", "libfour.so.4")), "test")
    loader = GlibcLoader(fs, GlibcPlatform(), BinaryStore(fs), cache=cache)

    def found(module: str) -> list[str | None]:
        site = LoadSite("/pkg/binding.gyp", 3, "gyp", "pkg-config", (module,),
                        Confidence.MEDIUM, stem=True)
        return [r.path for r in resolve_names(site, module, loader, fs, site_dir="/pkg",
                                              caller=None)]

    assert found("m") == [f"/{lib}/libone.so.1", f"/{lib}/libtwo.so.2",
                          f"/{lib}/libthree.so.3", f"/{lib}/libfour.so.4"]
    assert found("bomb") == []
