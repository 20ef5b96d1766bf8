"""From predicted load sites to edges: which library each name would load, here.

* A ``find_library('magic')`` stem is looked up as CPython's ``ctypes.util`` does on
  glibc Linux: the first ``libmagic.*`` entry of the loader cache (``ldconfig -p`` order),
  whose name is then ``dlopen``-ed.  (Its gcc/ld fallbacks need a compiler at run time
  and are not modelled.)
* A plain name is ``dlopen``-ed as from the Python interpreter (no RPATH/RUNPATH), or from
  the binary holding a ``.note.dlopen`` entry.
* A path (``./_soundfile_data/libsndfile_x86_64.so``) is looked up in the scanned tree;
  a pattern with ``*`` (a name computed at run time) matches files there and is never
  reported missing.
* Names for another platform (``.dll``, ``.dylib`` on Linux) are left out of the edges.
* Node: ``require(x)`` is resolved as Node does (``node_modules`` of each parent directory,
  package.json ``exports`` with the ``require`` conditions and subpath patterns, ``main``,
  the .js/.json/.node extensions and index files; ``*`` in a package name matches the
  installed packages) and gives an edge only when it ends at a ``.node`` addon for this
  platform (npm's ``os``/``cpu``/``libc`` fields, the ELF machine).  ``node-gyp-build``
  picks build/Release, then ``prebuilds/<platform>-<arch>`` by its tag rules; ``bindings``
  searches its fixed list of build directories under the module root.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import posixpath
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from unveil.errors import UnveilError
from unveil.loader.glibc import GlibcLoader
from unveil.loader.store import BinaryStore
from unveil.model import Attempt, LoadSite, Outcome, Resolution, Rule, Verdict
from unveil.sources.fs import FileSystem, Kind, SymlinkLoop

__all__ = ["Detector", "detector_for", "detector_kind", "resolve_names"]

Detector = Callable[[str, str], tuple[list[LoadSite], list[str]]]
_OTHER_PLATFORM = re.compile(r"\.(dll|dylib|pyd)$|\.framework/", re.IGNORECASE)


_DETECTORS = {
    "gyp": ("unveil.dynload.javascript", "detect_binding_gyp"),
    "py": ("unveil.dynload.python", "detect_python"),
    "js": ("unveil.dynload.javascript", "detect_javascript"),
    "rb": ("unveil.dynload.ruby", "detect_ruby"),
}


def detector_kind(path: str) -> str | None:
    """Which detector a source needs ("py", "js", "rb", "gyp"), or None."""
    name = posixpath.basename(path)
    if name == "binding.gyp":
        return "gyp"
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    if ext in ("mjs", "cjs"):
        return "js"
    return ext if ext in ("py", "js", "rb") else None


def detector_for(path: str) -> Detector | None:
    """The detector for a source, imported on first use (the detectors are large and most
    scans of binaries never need them: importing all three cost ~130 ms of start-up)."""
    kind = detector_kind(path)
    if kind is None:
        return None
    module, func = _DETECTORS[kind]
    detector: Detector = getattr(importlib.import_module(module), func)
    return detector


def other_platform(name: str) -> bool:
    return bool(_OTHER_PLATFORM.search(name))


def _find_library(stem: str, loader: GlibcLoader) -> str | None:
    if loader.cache is None:
        return None
    # a stem computed in part (``'MagickWand' + suffix``: ``MagickWand*``) matches as a glob
    pattern = re.compile(r"lib" + re.escape(stem).replace(r"\*", r"[^/\s]*") + r"\.\S+")
    flags = loader.platform.cache_flags
    for e in loader.cache.entries:
        if e.flags in flags and pattern.fullmatch(e.key):
            return e.key
    return None


_LIBRARY_FILE = re.compile(r"\.(so(\.[0-9]+)*|dylib|dll|node|pyd)$")
_MAX_GLOB = 256


def _glob(fs: FileSystem, pattern: str) -> list[str]:
    """Existing paths matching ``pattern`` (``*`` in any component), library files only."""
    parts = [p for p in pattern.split("/") if p]
    found = ["/"]
    for i, part in enumerate(parts):
        nxt: list[str] = []
        for base in found:
            try:
                real = fs.resolve(base)
            except SymlinkLoop:
                continue
            if real is None:
                continue
            names = fs.listdir(real)
            last = i == len(parts) - 1
            for n in sorted(names) if "*" in part or "?" in part else (
                    [part] if part in names else []):
                if fnmatch.fnmatchcase(n, part) and (not last or _LIBRARY_FILE.search(n)):
                    nxt.append(f"{base.rstrip('/')}/{n}")
                    if len(nxt) >= _MAX_GLOB:
                        break
        found = nxt
        if not found:
            break
    return found


# --------------------------------------------------------------------------- Node.js

#: ELF ``e_machine`` -> Node's ``process.arch``.
_NODE_ARCH = {3: "ia32", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390x", 40: "arm", 62: "x64",
              183: "arm64", 243: "riscv64", 258: "loong64"}
_MAX_JSON = 1 << 20
_MAX_TARGET_DEPTH = 32
_MAX_TARGET_STEPS = 512
_MAX_PACKAGES = 64
_MAX_ENTRIES = 64
#: The conditions ``require()`` matches in a package.json ``exports`` map.
_REQUIRE_CONDITIONS = frozenset({"node", "require", "node-addons", "default"})
#: Magic numbers of native code for another platform: Mach-O (thin, both orders, and fat),
#: PE and WebAssembly.
_FOREIGN_MAGIC = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
                  b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"MZ", b"\0asm")


@dataclass(frozen=True, slots=True)
class NodeHost:
    """What a Node program sees of the scanned platform: ``process.platform``,
    ``process.arch`` and the C library (as npm's ``libc`` field names it)."""

    platform: str = "linux"
    arch: str = "x64"
    libc: str = "glibc"
    machine: int = 62
    #: parses binaries (to tell a musl build from a glibc one), when there is one
    store: BinaryStore | None = field(default=None, compare=False)


#: an addon's file name tagged with the platform it is built for, as napi-rs
#: (``<name>.<platform>-<arch>[-<abi>].node``) and others (``<name>-linux-arm64.node``)
#: name them
_PLATFORM_TAGGED = re.compile(
    r"[.-](?P<os>android|darwin|freebsd|linux|openbsd|netbsd|sunos|win32|openharmony|aix)"
    r"-(?P<arch>x64|arm64|ia32|arm|riscv64|s390x|ppc64|loong64|mips64el|universal)"
    r"(?:-(?P<abi>gnu|musl|msvc|gnueabihf|musleabihf|eabi|androideabi|gnux32))?\.node$")


def _named_for_elsewhere(base: str, host: NodeHost) -> bool:
    """Whether an addon's file name says it is for another system than ``host``."""
    m = _PLATFORM_TAGGED.search(base)
    if m is None:
        return False
    abi = m.group("abi") or ""
    libc = "musl" if abi.startswith("musl") else "glibc" if abi.startswith("gnu") else None
    return (m.group("os") != host.platform or m.group("arch") != host.arch
            or (libc is not None and libc != host.libc))


def node_host(loader: GlibcLoader, libc: str = "glibc") -> NodeHost:
    """The Node host of a Linux target: the loader's machine, LIBC (the target's C library,
    as a scan knows it from ``--libc`` or the root's dynamic loader)."""
    m = loader.platform.machine
    return NodeHost("linux", _NODE_ARCH.get(m, f"machine-{m}"), libc, m, loader.store)


def _kind(fs: FileSystem, path: str) -> Kind | None:
    try:
        return fs.kind(path)
    except SymlinkLoop:
        return None


def _listdir(fs: FileSystem, path: str) -> Mapping[str, Kind]:
    try:
        real = fs.resolve(path)
    except SymlinkLoop:
        return {}
    return fs.listdir(real) if real is not None else {}


def _is_file(fs: FileSystem, path: str) -> bool:
    return _kind(fs, path) is Kind.FILE


def _read_json(fs: FileSystem, path: str) -> object:
    """A JSON file, or ``None`` when it is missing, too large or not JSON."""
    try:
        real = fs.resolve(path)
        if real is None or fs.kind(real) is not Kind.FILE:
            return None
        data = fs.head(real, _MAX_JSON + 1)
    except (UnveilError, OSError):
        return None
    if len(data) > _MAX_JSON:
        return None
    try:
        return json.loads(data.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None


def _package_json(fs: FileSystem, directory: str) -> dict[str, object]:
    pj = _read_json(fs, f"{directory}/package.json")
    return pj if isinstance(pj, dict) else {}


def _wild(pattern: str) -> re.Pattern[str]:
    """``*`` in a name matches any run of characters but ``/``; nothing else is special."""
    return re.compile("[^/]*".join(re.escape(p) for p in pattern.split("*")))


def _addon_here(fs: FileSystem, path: str, host: NodeHost) -> bool:
    """Whether Node would ``process.dlopen`` this file here: a ``.node`` file that is not
    native code for another machine or system (a file of unknown content is accepted)."""
    if not path.endswith(".node"):
        return False
    try:
        head = fs.head(path, 20)
    except (UnveilError, OSError):
        return False
    if head.startswith(b"\x7fELF") and len(head) >= 20:
        order: Literal["little", "big"] = "big" if head[5] == 2 else "little"
        if int.from_bytes(head[18:20], order) != host.machine:
            return False
        return _libc_of(fs, path, host) in (None, host.libc)
    return not head.startswith(_FOREIGN_MAGIC)


def _libc_of(fs: FileSystem, path: str, host: NodeHost) -> str | None:
    """``musl`` or ``glibc`` for an ELF file whose interpreter or needed libc says which."""
    if host.store is None:
        return None
    try:
        real = fs.resolve(path)
        b = host.store.get(real).binary if real else None
    except (UnveilError, OSError):
        return None
    if b is None:
        return None
    if b.interpreter is not None:
        return "musl" if "ld-musl" in b.interpreter else "glibc"
    if any(n.startswith("libc.musl-") for n in b.needed):
        return "musl"
    if "libc.so.6" in b.needed:
        return "glibc"
    return None


def _platform_ok(pj: dict[str, object], host: NodeHost) -> bool:
    """npm's ``os``/``cpu``/``libc`` fields (``!x`` excludes) allow this platform."""
    for key, value in (("os", host.platform), ("cpu", host.arch), ("libc", host.libc)):
        field = pj.get(key)
        items = [field] if isinstance(field, str) else field if isinstance(field, list) else []
        words = [x for x in items if isinstance(x, str)]
        allowed = [x for x in words if not x.startswith("!")]
        if value in (x[1:] for x in words if x.startswith("!")):
            return False
        if allowed and value not in allowed:
            return False
    return True


# ------------------------------------------------------------------ node-gyp-build, bindings

@dataclass(frozen=True, slots=True)
class _Tags:
    """node-gyp-build's reading of a prebuild's file name (``node.napi.glibc.node``)."""

    file: str
    runtime: str | None = None
    napi: bool = False
    abi: str | None = None
    uv: str | None = None
    armv: str | None = None
    libc: str | None = None
    specificity: int = 0


def _parse_tags(file: str) -> _Tags | None:
    words = file.split(".")
    if words.pop() != "node":
        return None
    tags: dict[str, object] = {}
    spec = 0
    for w in words:
        if w in ("node", "electron", "node-webkit"):
            tags["runtime"] = w
        elif w == "napi":
            tags["napi"] = True
        elif w.startswith("abi"):
            tags["abi"] = w[3:]
        elif w.startswith("uv"):
            tags["uv"] = w[2:]
        elif w.startswith("armv"):
            tags["armv"] = w[4:]
        elif w in ("glibc", "musl"):
            tags["libc"] = w
        else:
            continue
        spec += 1
    return _Tags(file, specificity=spec, **tags)  # type: ignore[arg-type]


def _tags_match(t: _Tags, host: NodeHost) -> bool:
    """node-gyp-build's ``matchTags`` for Node (runtime ``node``, libuv 1); the ABI of the
    Node that will run is unknown here, so ABI-specific builds all match."""
    armv = "8" if host.arch == "arm64" else None if host.arch == "arm" else ""
    if t.runtime and t.runtime != "node":
        return False
    if t.uv and t.uv != "1":
        return False
    if t.armv and armv is not None and t.armv != armv:
        return False
    return not (t.libc and t.libc != host.libc)


def _tags_rank(t: _Tags) -> tuple[int, int, int, int]:
    """node-gyp-build's ``compareTags`` (runtime ``node`` first, then by specificity), except
    that a build for one Node ABI only comes after those that load on any (N-API): which
    ABI will run is not known statically.  Among ABI builds, the newest first."""
    abi_only = bool(t.abi) and not t.napi
    abi = int(t.abi) if t.abi and t.abi.isdigit() else 0
    return (1 if abi_only else 0, 0 if t.runtime == "node" else 1, -t.specificity, -abi)


def _node_gyp_build(fs: FileSystem, directory: str, host: NodeHost) -> tuple[str, str] | None:
    """The addon ``require('node-gyp-build')(directory)`` loads, and why: the first
    ``*.node`` of build/Release or build/Debug, else the best-tagged prebuild of
    ``prebuilds/<platform>-<arch>`` (single-architecture directories first)."""
    for sub in ("build/Release", "build/Debug"):
        names = sorted(n for n, k in _listdir(fs, f"{directory}/{sub}").items()
                       if n.endswith(".node") and k is not Kind.DIR)
        if names:
            return f"{directory}/{sub}/{names[0]}", f"the first *.node in {sub}"
    prebuilds = f"{directory}/prebuilds"
    tuples: list[tuple[int, str]] = []
    for n in sorted(_listdir(fs, prebuilds)):
        parts = n.split("-")
        if len(parts) != 2 or not parts[0]:
            continue
        archs = parts[1].split("+")
        if all(archs) and parts[0] == host.platform and host.arch in archs:
            tuples.append((len(archs), n))
    if not tuples:
        return None
    tuples.sort(key=lambda x: x[0])
    tdir = f"{prebuilds}/{tuples[0][1]}"
    cands = [t for t in (_parse_tags(n) for n in sorted(_listdir(fs, tdir)))
             if t is not None and _tags_match(t, host)]
    if not cands:
        return None
    cands.sort(key=_tags_rank)
    return (f"{tdir}/{cands[0].file}",
            f"the prebuild of prebuilds/{tuples[0][1]} node-gyp-build picks for Node "
            f"({host.platform}-{host.arch}, {host.libc}, N-API or any ABI)")


#: Where the ``bindings`` package looks for ``<name>.node`` under the module root, in order.
_BINDINGS_TRIES = (
    "build/{n}", "build/Debug/{n}", "build/Release/{n}", "out/Debug/{n}", "Debug/{n}",
    "out/Release/{n}", "Release/{n}", "build/default/{n}", "compiled/*/{p}/{a}/{n}",
    "addon-build/release/install-root/{n}", "addon-build/debug/install-root/{n}",
    "addon-build/default/install-root/{n}", "lib/binding/node-v*-{p}-{a}/{n}",
)


def _bindings(fs: FileSystem, site_dir: str, name: str, host: NodeHost) -> str | None:
    """``require('bindings')(name)``: the module root is the nearest directory up from the
    calling file with a package.json or a node_modules; then the fixed list of places."""
    d = site_dir
    root: str | None = None
    for _ in range(64):
        if _kind(fs, f"{d}/package.json") is not None or _kind(fs, f"{d}/node_modules"):
            root = d
            break
        if d in ("/", "", "."):
            break
        d = posixpath.dirname(d)
    if root is None:
        return None
    for t in _BINDINGS_TRIES:
        p = f"{root.rstrip('/')}/" + t.format(n=name, p=host.platform, a=host.arch)
        if "*" in p:
            hits = _glob(fs, p)
            if hits:
                return hits[0]
        elif _is_file(fs, p):
            return p
    return None


# --------------------------------------------------------------------------- require()

def _load_as_file(fs: FileSystem, x: str) -> str | None:
    for cand in (x, f"{x}.js", f"{x}.json", f"{x}.node"):
        if _is_file(fs, cand):
            return cand
    return None


def _load_index(fs: FileSystem, x: str) -> str | None:
    for ext in (".js", ".json", ".node"):
        if _is_file(fs, f"{x}/index{ext}"):
            return f"{x}/index{ext}"
    return None


def _load_as_directory(fs: FileSystem, x: str) -> tuple[str | None, str]:
    main = _package_json(fs, x).get("main")
    if isinstance(main, str) and main:
        m = posixpath.normpath(f"{x}/{main}")
        found = _load_as_file(fs, m) or _load_index(fs, m)
        if found:
            return found, f"package.json main {main!r}"
    return _load_index(fs, x), "index"


_UNDEFINED = object()


def _exports_target(pkg: str, target: object, star: str | None, depth: int,
                    budget: list[int]) -> object:
    """Node's PACKAGE_TARGET_RESOLVE for ``require``: a path, ``None`` (excluded) or
    :data:`_UNDEFINED` (no condition matched)."""
    budget[0] -= 1
    if depth > _MAX_TARGET_DEPTH or budget[0] < 0:
        return None
    if isinstance(target, str):
        if not target.startswith("./"):
            return None
        if star is not None:
            target = target.replace("*", star)
        path = posixpath.normpath(f"{pkg}/{target[2:]}")
        return path if path == pkg or path.startswith(pkg.rstrip("/") + "/") else None
    if isinstance(target, list):
        for item in target[:_MAX_ENTRIES]:
            r = _exports_target(pkg, item, star, depth + 1, budget)
            if isinstance(r, str):
                return r
        return None
    if isinstance(target, dict):
        for key, value in list(target.items())[:_MAX_ENTRIES]:
            if key in _REQUIRE_CONDITIONS:
                r = _exports_target(pkg, value, star, depth + 1, budget)
                if r is not _UNDEFINED:
                    return r
        return _UNDEFINED
    return None


def _exports(pkg: str, exports: object, subpath: str) -> list[tuple[str, str]]:
    """Node's PACKAGE_EXPORTS_RESOLVE: the file(s) a subpath maps to, with the key used.
    A subpath with ``*`` (a name computed at run time) gets every key it matches."""
    if not isinstance(exports, dict) or not any(
            isinstance(k, str) and k.startswith(".") for k in exports):
        exports = {".": exports}
    budget = [_MAX_TARGET_STEPS]
    out: list[tuple[str, str]] = []
    if "*" in subpath:
        rx = _wild(subpath)
        keys = [k for k in exports if "*" not in k and rx.fullmatch(k)]
    elif subpath in exports:
        keys = [subpath]
    else:
        best: tuple[str, str] | None = None
        for key in exports:
            if key.count("*") != 1:
                continue
            prefix, suffix = key.split("*")
            matches = (subpath.startswith(prefix) and subpath != prefix
                       and subpath.endswith(suffix) and len(subpath) >= len(key))
            # PATTERN_KEY_COMPARE: the longest prefix, then the longest key.
            if matches and (best is None or (len(prefix), len(key)) > (
                    best[0].index("*"), len(best[0]))):
                best = (key, subpath[len(prefix):len(subpath) - len(suffix)])
        if best is None:
            return []
        r = _exports_target(pkg, exports[best[0]], best[1], 0, budget)
        return [(r, best[0])] if isinstance(r, str) else []
    for key in keys[:_MAX_ENTRIES]:
        r = _exports_target(pkg, exports[key], None, 0, budget)
        if isinstance(r, str):
            out.append((r, key))
    return out


def _split_specifier(spec: str) -> tuple[str, str] | None:
    """``@scope/name/sub/path`` -> (``@scope/name``, ``./sub/path``)."""
    if spec.startswith("@"):
        scope, _, rest = spec.partition("/")
        base, _, sub = rest.partition("/")
        if len(scope) < 2 or not base:
            return None
        name = f"{scope}/{base}"
    else:
        name, _, sub = spec.partition("/")
    if not name or name.startswith(".") or "\\" in name or "%" in name:
        return None
    return name, f"./{sub}" if sub else "."


def _node_modules_paths(start: str) -> list[str]:
    """Node's NODE_MODULES_PATHS: ``node_modules`` in the directory and each parent."""
    parts = [p for p in start.split("/") if p]
    return ["/" + "/".join([*parts[:i], "node_modules"])
            for i in range(len(parts), -1, -1) if not (i and parts[i - 1] == "node_modules")]


def _installed(fs: FileSystem, start: str, name: str) -> Iterator[tuple[str, str]]:
    """(package name, directory) of the packages ``name`` (``*`` for a computed part) names,
    nearest ``node_modules`` first; a name is yielded once."""
    seen: set[str] = set()
    scope, _, base = name.partition("/") if name.startswith("@") else ("", "", name)
    base_rx = _wild(base)
    for nm in _node_modules_paths(start):
        if "*" not in name:
            if _kind(fs, f"{nm}/{name}") is Kind.DIR:
                yield name, f"{nm}/{name}"
            continue
        if "*" in scope:
            rx = _wild(scope)
            scopes = [s for s in sorted(_listdir(fs, nm)) if s.startswith("@") and rx.fullmatch(s)]
        else:
            scopes = [scope]
        for sc in scopes:
            parent = f"{nm}/{sc}" if sc else nm
            for n in sorted(_listdir(fs, parent)):
                full = f"{sc}/{n}" if sc else n
                if n.startswith((".", "@")) or full in seen or not base_rx.fullmatch(n):
                    continue
                if _kind(fs, f"{parent}/{n}") is not Kind.DIR:
                    continue
                seen.add(full)
                yield full, f"{parent}/{n}"
                if len(seen) >= _MAX_PACKAGES:
                    return


def _in_package(fs: FileSystem, pkg: str, subpath: str,
                pj: dict[str, object]) -> tuple[list[tuple[str, str]], bool]:
    """Files a subpath of an installed package resolves to, with how; and whether the lookup
    ends here (a package with ``exports`` answers for itself)."""
    exports = pj.get("exports")
    if exports is not None:
        return [(p, f"package.json exports {key!r}") for p, key in _exports(pkg, exports, subpath)
                if _is_file(fs, p)], True
    x = pkg if subpath == "." else f"{pkg}/{subpath[2:]}"
    if "*" in x:
        return [(h, "matches the pattern") for h in _glob(fs, x)], False
    found = _load_as_file(fs, x)
    if found:
        return [(found, "the file")], False
    found, how = _load_as_directory(fs, x)
    return ([(found, how)] if found else []), False


def _require(fs: FileSystem, site_dir: str, name: str, host: NodeHost
             ) -> tuple[str, str] | None:
    """The native addon ``require(name)`` loads from a file in ``site_dir``, and how it was
    found, or ``None`` when it resolves to no addon for this platform (JavaScript, JSON, a
    package not installed or for another platform).  Node's algorithm: for a bare name,
    the ``node_modules`` of the directory and of each parent; in a package, ``exports``
    (conditions node, require, node-addons, default; subpath patterns) or else ``main``,
    the extensions .js/.json/.node and index files."""
    if name.startswith("/") and "*" in name:
        hits = [h for h in _glob(fs, name) if _addon_here(fs, h, host)]
        return (hits[0], f"matches the pattern {name}") if hits else None
    if name.startswith("/"):
        found = _load_as_file(fs, name)
        how = "the file"
        if found is None:
            found, how = _load_as_directory(fs, name)
        return (found, how) if found and _addon_here(fs, found, host) else None
    split = _split_specifier(name)
    if split is None:
        return None
    pkg_name, subpath = split
    try:
        start = fs.resolve(site_dir) or site_dir
    except SymlinkLoop:
        start = site_dir
    for full, pkg in _installed(fs, start, pkg_name):
        pj = _package_json(fs, pkg)
        if not _platform_ok(pj, host):
            continue  # npm's os/cpu/libc: for another platform
        files, final = _in_package(fs, pkg, subpath, pj)
        for path, how in files:
            if _addon_here(fs, path, host):
                return path, f"{full}: {how}"
        if (files or final) and "*" not in pkg_name:
            return None  # require() stops at the first package that answers
    return None


def _cache_miss(stem: str) -> Attempt:
    """The attempt that finds no ``lib<stem>.so*`` in the loader cache (find_library's
    answer None, or a pkg-config library nothing provides)."""
    return Attempt(f"lib{stem}.so*", Rule.CACHE, Verdict.ABSENT, None, None,
                   "no such entry in the loader cache (ldconfig -p)")


def _found(requester: str, name: str, path: str, why: str) -> Resolution:
    return Resolution(requester, name, Outcome.FOUND, path, Rule.PATH, None,
                      (Attempt(path, Rule.PATH, Verdict.ACCEPTED, None, None, why),))


#: ``${name}`` in a .pc file
_PC_VAR = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")


def _pc_dirs(loader: GlibcLoader) -> list[str]:
    """pkg-config's default search path (``pc_path``): Debian's multiarch directories, then
    the ``lib64`` of Fedora-style systems, then the plain ones every build of it has."""
    triplet = loader.platform.lib.rsplit("/", 1)[-1]
    return [f"/usr/local/lib/{triplet}/pkgconfig", "/usr/local/lib/pkgconfig",
            "/usr/local/share/pkgconfig", f"/usr/lib/{triplet}/pkgconfig",
            "/usr/lib64/pkgconfig", "/usr/lib/pkgconfig", "/usr/share/pkgconfig"]


#: a module name in a .pc file's ``Requires`` (version comparisons are dropped)
_PC_MODULE = re.compile(r"[A-Za-z0-9_.+-]+")
#: how many .pc files one module may pull in through ``Requires``
_PC_MAX_MODULES = 64


#: how large a .pc value, and all of a file's variables together, may grow by expansion
_PC_VALUE_MAX = 1 << 16
_PC_VARIABLES_MAX = 1 << 20


def _pc_expand(value: str, variables: dict[str, str]) -> str | None:
    """``${name}`` replaced by the variable's value (an undefined one is empty, as in
    pkgconf); None when the result would pass :data:`_PC_VALUE_MAX` (measured before it
    is built: doubling variables make a small file expand to gigabytes)."""
    size = len(value)
    for m in _PC_VAR.finditer(value):
        size += len(variables.get(m.group(1), "")) - len(m.group(0))
        if size > _PC_VALUE_MAX:
            return None
    return _PC_VAR.sub(lambda m: variables.get(m.group(1), ""), value)


def _pc_lines(text: str) -> Iterator[str]:
    """A .pc file's logical lines as pkgconf reads them: a ``#`` comment ends at its
    newline (even one after a backslash), and a backslash at the end of a line joins the
    next to it."""
    pending = ""
    for raw in text.splitlines()[:4096]:
        body, hash_, _comment = raw.partition("#")
        if not hash_ and body.endswith("\\"):
            pending += body[:-1]
            continue
        yield pending + body
        pending = ""
    if pending:
        yield pending


def _pc_words(value: str) -> list[str]:
    """A field's words, shell-quoted as pkgconf reads them (``'-lfoo'`` is -lfoo)."""
    try:
        return shlex.split(value)
    except ValueError:  # an unbalanced quote
        return value.split()


def _pc_fields(text: str) -> tuple[list[str], list[str]]:
    """What a .pc file's ``Libs`` link (``-lname``, ``-l:file`` as ``:file``, and paths of
    shared libraries) and the modules its ``Requires`` names, read as pkgconf reads them:
    comments, continued lines, keywords in any case, repeated fields added up, quoted
    words, and variables expanded where they are defined; a file whose expansions grow
    too large gives nothing."""
    variables: dict[str, str] = {}
    kept = 0
    libs: list[str] = []
    requires: list[str] = []
    for logical in _pc_lines(text):
        line = logical.strip()
        key, sep, value = line.partition("=")
        is_var = bool(sep) and re.fullmatch(r"[A-Za-z0-9_.]+", key.strip()) is not None
        if not is_var:
            key, sep, value = line.partition(":")
            if not sep or key.strip().lower() not in ("libs", "requires"):
                continue
        expanded = _pc_expand(value.strip(), variables)
        if expanded is None:
            return [], []
        if is_var:
            kept += len(expanded)
            if kept > _PC_VARIABLES_MAX:
                return [], []
            variables[key.strip()] = expanded
        elif key.strip().lower() == "libs":
            for w in _pc_words(expanded):
                if w.startswith("-l") and len(w) > 2:
                    libs.append(w[2:])
                elif w.startswith("/") and re.search(r"\.so(\.\d+)*$", w):
                    libs.append(w)
        else:  # "glib-2.0 >= 2.50, gobject-2.0": names, each maybe with a comparison
            words = re.sub(r"([<>!]?=|[<>])", r" \1 ", expanded.replace(",", " ")).split()
            requires += [w for i, w in enumerate(words) if _PC_MODULE.fullmatch(w)
                         and not (i and words[i - 1] in ("=", "<", ">", "<=", ">=", "!="))]
    return libs, requires


def _pc_file(module: str, loader: GlibcLoader, fs: FileSystem,
             tried: list[Attempt]) -> tuple[str, str] | None:
    """(path, text) of MODULE's .pc file on pkg-config's path; misses are added to TRIED."""
    for d in _pc_dirs(loader):
        path = f"{d}/{module}.pc"
        try:
            real = fs.resolve(path)
        except SymlinkLoop:
            real = None
        if real is None or _kind(fs, real) is not Kind.FILE:
            tried.append(Attempt(path, Rule.DEFAULT, Verdict.ABSENT, None, None,
                                 "pkg-config's search path"))
            continue
        try:
            return path, fs.read_file(real, 1 << 16).decode("utf-8", "replace")
        except UnveilError:
            tried.append(Attempt(path, Rule.DEFAULT, Verdict.UNREADABLE))
    return None


def _pkg_config(requester: str, module: str, loader: GlibcLoader,
                fs: FileSystem) -> tuple[Resolution, ...]:
    """What ``pkg-config --libs MODULE`` makes a node-gyp build link: each ``-l`` library
    of the ``Libs`` of MODULE's .pc file and of the modules it ``Requires`` (openssl.pc
    names none of its own: it requires libssl and libcrypto), found as ld.so finds it; not
    found when no .pc file is on pkg-config's path (the -dev package is not installed: the
    build would fail)."""
    tried: list[Attempt] = []
    first = _pc_file(module, loader, fs, tried)
    if first is None:
        return _pkg_config_guess(requester, module, loader, tried)
    out: list[Resolution] = []
    seen_libs: set[str] = set()
    queue: list[tuple[str, tuple[str, str]]] = [(module, first)]
    seen_modules = {module}
    while queue:
        chain, (path, text) = queue.pop(0)
        libs, requires = _pc_fields(text)
        for lib in libs:
            if lib in seen_libs:
                continue
            seen_libs.add(lib)
            want = f"pkg-config {chain} -> {lib if lib.startswith('/') else '-l' + lib}"
            if lib.startswith(("/", ":")):
                # a file by name (-l:libfoo.so.1) or by path: linked as it is
                r = loader.dlopen(lib.removeprefix(":"), None)
                out.append(Resolution(requester, want, r.outcome, r.path, r.rule, r.origin,
                                      (*tried, Attempt(path, Rule.DEFAULT, Verdict.ACCEPTED),
                                       *r.attempts), r.fatal))
                continue
            soname = _find_library(lib, loader)
            if soname is None:
                out.append(Resolution(requester, want, Outcome.NOT_FOUND, attempts=(
                    *tried, Attempt(path, Rule.DEFAULT, Verdict.ACCEPTED),
                    _cache_miss(lib))))
                continue
            r = loader.dlopen(soname, None)
            out.append(Resolution(requester, f"{want} -> {soname}", r.outcome, r.path, r.rule,
                                  r.origin, r.attempts, r.fatal))
        for req in requires:
            if req in seen_modules or len(seen_modules) >= _PC_MAX_MODULES:
                continue
            seen_modules.add(req)
            missed: list[Attempt] = []
            found = _pc_file(req, loader, fs, missed)
            if found is None:  # pkg-config itself would stop here: the build fails
                out.append(Resolution(requester, f"pkg-config {chain} -> {req}",
                                      Outcome.NOT_FOUND, attempts=tuple(missed)))
                continue
            queue.append((f"{chain} -> {req}", found))
    return tuple(out)  # empty: a module of headers and flags, with no library


def _pkg_config_guess(requester: str, module: str, loader: GlibcLoader,
                      tried: list[Attempt]) -> tuple[Resolution, ...]:
    """No .pc file (no -dev package: a build here would stop at pkg-config).  What it would
    link is then guessed from the module's name (cairo: -lcairo), and said to be a guess (a
    module named with its API version, pangocairo or librsvg-2.0, has its library named
    with one too: libpangocairo-1.0, librsvg-2)."""
    lib = module.removeprefix("lib") or module
    soname = None
    for guess in (lib, re.sub(r"-[\d.]+$", "", lib) + "-*"):
        soname = _find_library(guess, loader)
        if soname is not None:
            lib = guess
            break
    want = f"pkg-config {module} (no {module}.pc on pkg-config's path; guessed -l{lib})"
    if soname is None:
        return (Resolution(requester, want, Outcome.NOT_FOUND, attempts=(
            *tried, _cache_miss(lib))),)
    r = loader.dlopen(soname, None)
    return (Resolution(requester, f"{want} -> {soname}", r.outcome, r.path, r.rule, r.origin,
                       (*tried, *r.attempts), r.fatal),)


def resolve_names(site: LoadSite, name: str, loader: GlibcLoader, fs: FileSystem, *,
                  site_dir: str, caller: str | None,
                  libc: str = "glibc") -> tuple[Resolution, ...]:
    """What one candidate name of a site loads: one resolution, none when the name does not
    apply here, several for a pkg-config module (every library its build links).  LIBC is
    the target's C library, which picks among Node addons built for glibc and musl."""
    if site.api == "pkg-config":
        requester = f"{site.file}:{site.line}" if site.line else site.file
        return _pkg_config(requester, name, loader, fs)
    r = _resolve_name(site, name, loader, fs, site_dir=site_dir, caller=caller,
                      host=node_host(loader, libc))
    return () if r is None else (r,)


def _resolve_name(site: LoadSite, name: str, loader: GlibcLoader, fs: FileSystem, *,
                  site_dir: str, caller: str | None, host: NodeHost) -> Resolution | None:
    requester = f"{site.file}:{site.line}" if site.line else site.file
    if other_platform(name) or site.api.endswith("add_dll_directory"):
        # os.add_dll_directory only adds a directory to Windows' DLL search (the Windows
        # loader's search path takes it from the sources); it loads nothing, anywhere.
        return None
    if site.api == "require" and not (name.startswith("/") and name.endswith(".node")
                                      and "*" not in name):
        # A package name, a pattern, or a path without the .node extension: Node's
        # resolution, and an edge only when it ends at a native addon for this platform.
        target = name
        if name.startswith(("./", "../")):
            target = posixpath.normpath(posixpath.join(site_dir, name))
        hit = _require(fs, site_dir, target, host)
        return _found(requester, name, *hit) if hit else None
    if not site.stem and "/" not in name and ".so" not in name and "*" not in name and (
            site.api not in ("node-gyp-build", "bindings")):
        # A Linux shared library is a file named *.so*; a bare name (windll.kernel32,
        # CDLL("Security")) is another platform's, reached through code guarded by
        # sys.platform: not a dependency here.
        return None
    if site.stem:
        soname = _find_library(name, loader)
        if soname is None:
            return Resolution(requester, f"find_library({name!r})", Outcome.NOT_FOUND,
                              attempts=(_cache_miss(name),))
        r = loader.dlopen(soname, caller)
        return Resolution(requester, f"find_library({name!r}) -> {soname}", r.outcome, r.path,
                          r.rule, r.origin, r.attempts, r.fatal)
    if site.api == "node-gyp-build" and not name.endswith(".node"):
        d = name if name.startswith("/") else posixpath.normpath(posixpath.join(site_dir, name))
        picked = _node_gyp_build(fs, d, host)
        if picked is None:
            return None
        return _found(requester, name, *picked)
    if site.api == "bindings" and "/" not in name and "*" not in name:
        path = _bindings(fs, site_dir, name, host)
        if path is None:
            return None
        return _found(requester, name, path, "found by 'bindings' under the module root")
    if "*" in name:
        pattern = name if name.startswith("/") else posixpath.normpath(
            posixpath.join(site_dir, name))
        hits = _glob(fs, pattern)
        if not hits:
            return None  # a guess at a computed name: never reported missing
        path = hits[0]
        return Resolution(requester, name, Outcome.FOUND, path, Rule.PATH, None,
                          (Attempt(path, Rule.PATH, Verdict.ACCEPTED, None, None,
                                   f"matches the pattern {name}"),))
    if "/" in name and name.endswith(".node") and site.api in ("require", "process.dlopen"):
        # Alternatives for several systems (koffi's {musl: ..., glibc: ...}): a file that
        # exists but is native code for another machine or C library is not the one that
        # loads here; the next name is.
        path = name if name.startswith("/") else posixpath.normpath(
            posixpath.join(site_dir, name))
        kind = _kind(fs, path)
        if kind is not None and not _addon_here(fs, path, host):
            return None
        if kind is None and _named_for_elsewhere(posixpath.basename(path), host):
            # napi-rs's loader names one addon per platform (skia.android-arm64.node,
            # x.linux-x64-musl.node) in branches on process.platform/arch: the one for
            # another system is absent here by design
            return None
        if kind is None and site.api == "require" and len(site.names) > 1:
            return None  # one of several alternatives the code tries: absent is no error
    if "/" in name:
        path = name if name.startswith("/") else posixpath.normpath(
            posixpath.join(site_dir, name))
        try:
            real = fs.resolve(path)
        except SymlinkLoop:
            real = None
        verdict = Verdict.ACCEPTED if real else Verdict.ABSENT
        return Resolution(requester, name, Outcome.FOUND if real else Outcome.NOT_FOUND,
                          path if real else None, Rule.PATH, None,
                          (Attempt(path, Rule.PATH, verdict),))
    r = loader.dlopen(name, caller)
    return Resolution(requester, name, r.outcome, r.path, r.rule, r.origin, r.attempts,
                      r.fatal)
