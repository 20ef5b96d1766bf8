"""Scan targets from other ecosystems: npm, RubyGems, Debian, conda and Java archives.

Each opener returns a :class:`~unveil.sources.targets.Target` the scanner resolves as it
does a wheel: the package is mounted under a virtual prefix (``/__unveil__/<file>/...``)
where its installer would put it, over the target system's root, so relative RPATHs
resolve between the package's own files and everything else falls through to the system.
Archives are read in place (:mod:`unveil.sources.archives`), never extracted.

The targets are :class:`EcosystemTarget` values, a :class:`Target` with the package
metadata a report needs beside the files: declared dependencies (Debian's ``Depends``,
conda's ``depends``), platform constraints (npm ``os``/``cpu``/``libc``, a JNI library's
OS and architecture from its path) and whether the package fetches or builds its binary at
install time, which no scan of the package can see.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import struct
import zlib
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

from unveil.config import ScanConfig
from unveil.errors import FormatError, SourceError, TargetError
from unveil.formats.elf import ELF_MAGIC, ElfFile
from unveil.formats.macho import MachOFile, is_macho
from unveil.formats.pe import PEFile
from unveil.model import Distribution, Problem, ProblemKind, Symbol, TargetKind
from unveil.sources.archives import (
    ArchiveLimits,
    BlobReader,
    Budget,
    MountedFS,
    TarFS,
    counted,
    decompress,
    iter_ar,
    iter_tar,
    open_counted,
)
from unveil.sources.fs import FileSystem, HostFS, Kind, OverlayFS, SymlinkLoop, ZipFS
from unveil.sources.targets import VIRTUAL_ROOT, Target
from unveil.sources.zipread import ZipArchive

__all__ = [
    "EcosystemTarget",
    "Package",
    "Platform",
    "addon_abi",
    "addon_abis",
    "binary_symbols",
    "open_conda",
    "open_deb",
    "open_gem",
    "open_jar",
    "open_npm",
    "open_npm_packs",
    "path_platform",
    "ruby_extension",
    "ruby_extensions",
]

_META_CAP = 32 << 20


@dataclass(frozen=True, slots=True)
class Platform:
    """Where a package or file runs, as its metadata or its path says (values as written,
    normalised only for architecture names read from paths)."""

    os: str | None = None
    arch: str | None = None
    libc: str | None = None


@dataclass(frozen=True, slots=True)
class Package:
    """One package of an ecosystem, as its own metadata declares it."""

    ecosystem: str
    name: str
    version: str | None
    #: the package's files in the target's namespace.
    root: str
    #: where the metadata was read ("package.json", "control", a path...).
    metadata: str
    #: declared dependencies, as written ("libc6 (>= 2.34)", "libstdcxx >=13").
    depends: tuple[str, ...] = ()
    #: platform constraints: npm os/cpu/libc lists, Debian Architecture, conda subdir.
    platforms: tuple[Platform, ...] = ()
    #: how the package gets native code at install time, when it does ("downloads its
    #: binary (node-pre-gyp binary.host = ...)", "compiles ext/x/extconf.rb"...).
    install_time: str | None = None


@dataclass
class EcosystemTarget(Target):
    """A :class:`Target` with the ecosystem's view of what it holds."""

    ecosystem: str = ""
    packages: list[Package] = field(default_factory=list)
    #: the platform a file is for, read from its path (JNI ``native/<os>/<arch>/``,
    #: npm ``prebuilds/<os>-<arch>/``); only files whose path says so.
    file_platforms: dict[str, Platform] = field(default_factory=dict)


# ---------------------------------------------------------------------------- helpers


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+@-]", "_", name)


def _read(fs: FileSystem, path: str, cap: int = _META_CAP) -> bytes | None:
    try:
        blob = fs.open_blob(path)
    except SourceError:
        return None
    try:
        if blob.size > cap:
            return None
        return blob.read(0, blob.size)
    except (FormatError, SourceError):
        return None
    finally:
        blob.close()


def _json(data: bytes | None, where: str, problems: list[Problem]) -> dict[str, object] | None:
    if data is None:
        return None
    try:
        obj = json.loads(data.decode("utf-8", "replace"))
    except (ValueError, RecursionError) as e:
        problems.append(Problem(where, f"unreadable JSON: {e}", ProblemKind.SOURCE))
        return None
    if not isinstance(obj, dict):
        problems.append(Problem(where, "JSON metadata is not an object", ProblemKind.SOURCE))
        return None
    return obj


def _str(obj: dict[str, object], key: str) -> str | None:
    v = obj.get(key)
    return v if isinstance(v, str) else None


def _strs(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _host_view(path: str, base: FileSystem) -> tuple[FileSystem, str]:
    """A directory on this machine in the target's namespace (mounted at its own path when
    it lies outside the root), as :func:`open_target` sees it."""
    full = os.path.abspath(path)
    if isinstance(base, HostFS):
        tpath = base.target_path(full)
        if tpath is not None:
            return base, tpath
    return OverlayFS(base, {full: HostFS("/")}), full


def _walk(fs: FileSystem, top: str, limit: int, problems: list[Problem]) -> list[str]:
    files: list[str] = []
    for f in fs.walk_files(top):
        files.append(f)
        if len(files) >= limit:
            problems.append(Problem(top, f"more than {limit} files: the rest is left out",
                                    ProblemKind.SOURCE))
            break
    return files


def _resolve_dir(fs: FileSystem, path: str, cache: dict[str, str]) -> str:
    real = cache.get(path)
    if real is None:
        try:
            real = fs.resolve(path) or path
        except SymlinkLoop:
            real = path
        cache[path] = real
    return real


def _absorb(t: Target, problems: Iterable[Problem]) -> None:
    seen = {(p.location, p.message) for p in t.problems}
    for p in problems:
        if (p.location, p.message) not in seen:
            seen.add((p.location, p.message))
            t.problems.append(p)


def _base(config: ScanConfig, base: FileSystem | None) -> FileSystem:
    return base if base is not None else HostFS(config.root)


def _mounted_target(spec: str, ecosystem: str, base: FileSystem,
                    mounts: Sequence[tuple[str, TarFS]], default_owner: str | None, *,
                    installed: bool = False) -> EcosystemTarget:
    """``installed``: the mounts' files are also seen where they install, at ``/``."""
    fs = OverlayFS(base, {at: MountedFS(tfs, at) for at, tfs in mounts},
                   installed=[at for at, _ in mounts] if installed else ())
    files = [at + p for at, tfs in mounts for p in tfs.file_paths]
    t = EcosystemTarget(spec, TargetKind.PACKAGE, fs, files, [],
                        inside=tuple(at for at, _ in mounts), default_owner=default_owner,
                        ecosystem=ecosystem)
    for _, tfs in mounts:
        _absorb(t, tfs.problems)
    return t


# -------------------------------------------------------------------- binaries' symbols


def binary_symbols(fs: FileSystem, path: str) -> tuple[Symbol, ...]:
    """The dynamic symbols of the ELF, Mach-O (first slice) or PE file at ``path``.

    Raises :class:`FormatError` or :class:`SourceError` for what cannot be read.
    """
    blob = fs.open_blob(path)
    try:
        head = blob.read(0, min(8, blob.size))
        if head.startswith(ELF_MAGIC):
            return ElfFile(blob).symbols()
        if is_macho(head):
            return MachOFile(blob).symbols()
        if head[:2] == b"MZ":
            return PEFile(blob).symbols()
        raise FormatError("not an ELF, Mach-O or PE file", 0)
    except struct.error as e:
        raise FormatError(f"truncated structure: {e}") from e
    finally:
        blob.close()


def _bare(name: str) -> str:
    """Mach-O C symbols carry a leading underscore."""
    return name[1:] if name.startswith("_") and not name.startswith("_Z") else name


_V8_ABI = re.compile(r"^_{1,2}Z(N|NK)(2v8|4node)")


def addon_abi(symbols: Iterable[Symbol]) -> str:
    """How a Node.js addon binds to Node: ``"n-api"`` (ABI-stable across Node versions),
    ``"nan"`` (NAN or raw V8: built for one Node ABI version) or ``"unknown"``.

    N-API addons export ``napi_register_module_v1`` (or call ``napi_module_register``);
    NAN ones call ``node_module_register`` and V8's C++ API.  Any V8 or node C++ import
    ties an addon to one ABI, whatever else it uses.
    """
    napi = v8 = False
    for s in symbols:
        name = _bare(s.name)
        if not s.defined and (name == "node_module_register" or _V8_ABI.match(s.name)
                              or "@v8@@" in name or "@node@@" in name):
            v8 = True
        elif s.defined and name.startswith("node_register_module_v"):
            v8 = True  # NODE_MODULE's per-ABI entry point
        elif name == "napi_register_module_v1" if s.defined else name.startswith("napi_"):
            # napi_module_register (the old registration) is one of the napi_ imports.
            napi = True
    if v8:
        return "nan"
    return "n-api" if napi else "unknown"


def addon_abis(fs: FileSystem, paths: Iterable[str]) -> dict[str, str]:
    """:func:`addon_abi` for each ``*.node`` file of ``paths`` that can be read."""
    out: dict[str, str] = {}
    for p in paths:
        if not p.endswith(".node"):
            continue
        try:
            out[p] = addon_abi(binary_symbols(fs, p))
        except (FormatError, SourceError):
            out[p] = "unknown"
    return out


def ruby_extension(symbols: Iterable[Symbol]) -> str | None:
    """The feature name of a Ruby C extension (it exports ``Init_<name>``), or ``None``."""
    for s in symbols:
        name = _bare(s.name)
        if s.defined and name.startswith("Init_") and len(name) > 5:
            return name[5:]
    return None


def ruby_extensions(fs: FileSystem, paths: Iterable[str]) -> dict[str, str]:
    """Ruby C extensions among ``paths`` (``.so``/``.bundle``): path -> feature name."""
    out: dict[str, str] = {}
    for p in paths:
        if not p.endswith((".so", ".bundle", ".dll")):
            continue
        try:
            name = ruby_extension(binary_symbols(fs, p))
        except (FormatError, SourceError):
            continue
        if name is not None:
            out[p] = name
    return out


# ---------------------------------------------------------------------- platform paths

_OS_WORDS = {
    "linux": "linux", "darwin": "darwin", "mac": "darwin", "macos": "darwin", "osx": "darwin",
    "mac_os_x": "darwin", "windows": "windows", "win": "windows", "win32": "windows",
    "win64": "windows", "freebsd": "freebsd", "openbsd": "openbsd", "netbsd": "netbsd",
    "sunos": "sunos", "solaris": "sunos", "aix": "aix", "android": "android",
    "linuxmusl": "linux",
}
_ARCH_WORDS = {
    "x86_64": "x86_64", "x86-64": "x86_64", "amd64": "x86_64", "x64": "x86_64",
    "aarch64": "aarch64", "arm64": "aarch64", "aarch_64": "aarch64", "x86": "x86",
    "i386": "x86", "i686": "x86", "ia32": "x86", "arm": "arm", "armv7": "arm",
    "armhf": "arm", "armv6": "arm", "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x",
    "riscv64": "riscv64", "loongarch64": "loongarch64", "loong64": "loongarch64",
}
_ARCH_RE = re.compile(r"(?<![a-z0-9])(" + "|".join(
    sorted((re.escape(a) for a in _ARCH_WORDS), key=len, reverse=True)) + r")(?![a-z0-9])")
_OS_RE = re.compile(r"(?<![a-z0-9])(" + "|".join(
    sorted((re.escape(o) for o in _OS_WORDS), key=len, reverse=True)) + r")(?![a-z0-9])")
_LIBC_RE = re.compile(r"(?<![a-z0-9])(glibc|gnu|musl|linuxmusl)(?![a-z0-9])")
_NATIVE_SUFFIX = re.compile(r"\.(so(\.\d+)*|dylib|jnilib|dll|node|a)$")


def path_platform(path: str) -> Platform | None:
    """The platform a native file is for, from its path: ``native/Linux/x86_64/``,
    ``linux-x86-64/``, ``prebuilds/linux-x64/x.musl.node``, ``libfoo_x86_64.so``...

    ``None`` unless the path names an OS or an architecture.
    """
    low = path.lower().replace("mac os x", "mac_os_x")
    arch_m = _ARCH_RE.findall(low)
    os_m = _OS_RE.findall(low)
    if not arch_m and not os_m:
        return None
    libc_m = _LIBC_RE.findall(low)
    libc = None
    if libc_m:
        libc = "musl" if libc_m[-1] in ("musl", "linuxmusl") else "glibc"
    osname = _OS_WORDS[os_m[-1]] if os_m else None
    if osname is None:
        base = posixpath.basename(low)
        osname = ("windows" if base.endswith(".dll") else
                  "darwin" if base.endswith((".dylib", ".jnilib")) else None)
    return Platform(osname, _ARCH_WORDS[arch_m[-1]] if arch_m else None, libc)


# ------------------------------------------------------------------------------- npm

_INSTALL_DOWNLOADERS = {
    "prebuild-install": "prebuild-install",
    "@mapbox/node-pre-gyp": "node-pre-gyp",
    "node-pre-gyp": "node-pre-gyp",
    "@discordjs/node-pre-gyp": "node-pre-gyp",
}
_PLATFORM_NAME = re.compile(r"(?<![a-z])(linux|darwin|win32|freebsd|android|sunos|openbsd|"
                            r"netbsd|aix|linuxmusl|wasm32)(?![a-z])")


def _npm_root(name: str) -> str:
    return name if name else "_"


def _strip_package_dir(rel: str) -> str | None:
    """npm installs a tarball's members without their first component (``package/``)."""
    _first, sep, rest = rel.partition("/")
    return "/" + rest if sep and rest else None


def _npm_install_time(pj: dict[str, object], has_gyp: bool, has_binary: bool) -> str | None:
    binary = _dict(pj.get("binary"))
    host = binary.get("host")
    deps = {**_dict(pj.get("dependencies")), **_dict(pj.get("optionalDependencies"))}
    scripts = _dict(pj.get("scripts"))
    install = " ".join(str(scripts.get(k, "")) for k in ("preinstall", "install",
                                                          "postinstall"))
    if isinstance(host, str) and host:
        return f"downloads its binary at install time (binary.host = {host})"
    for dep, tool in _INSTALL_DOWNLOADERS.items():
        if dep in deps or tool in install:
            return f"downloads its binary at install time ({tool})"
    if has_gyp and not has_binary:
        if "node-gyp-build" in install:
            return "builds its addon at install time when no prebuild matches (node-gyp-build)"
        if not install.strip() or "node-gyp" in install:
            return "compiles its addon at install time (node-gyp, binding.gyp)"
    return None


def _npm_package(pj: dict[str, object], root: str, metadata: str, *, has_gyp: bool,
                 has_binary: bool, fallback: str) -> Package:
    name = _str(pj, "name") or fallback
    deps = [f"{k}@{v}" for k, v in _dict(pj.get("dependencies")).items()]
    deps += [f"{k}@{v} (optional)" for k, v in _dict(pj.get("optionalDependencies")).items()]
    oses, cpus, libcs = _strs(pj.get("os")), _strs(pj.get("cpu")), _strs(pj.get("libc"))
    platforms: tuple[Platform, ...] = ()
    if oses or cpus or libcs:
        platforms = tuple(Platform(o, c, lc) for o in (oses or (None,))
                          for c in (cpus or (None,)) for lc in (libcs or (None,)))
    return Package("npm", name, _str(pj, "version"), root, metadata, tuple(deps), platforms,
                   _npm_install_time(pj, has_gyp, has_binary))


def _is_package_dir(d: str, top: str) -> bool:
    if d == top:
        return True
    parent = posixpath.dirname(d)
    if posixpath.basename(parent) == "node_modules":
        return True
    return (posixpath.basename(parent).startswith("@")
            and posixpath.basename(posixpath.dirname(parent)) == "node_modules")


def _platform_text(p: Platform) -> str:
    return " ".join(f"{k}={v}" for k, v in (("os", p.os), ("cpu", p.arch), ("libc", p.libc))
                    if v)


def _describe_npm(t: EcosystemTarget, lock: dict[str, object] | None) -> None:
    """Problems for what a scan of the files cannot see: install-time downloads and builds,
    and the optional platform packages (installed here or not)."""
    by_name = {p.name: p for p in t.packages}
    lock_pkgs = _dict(lock.get("packages")) if lock else {}
    lock_by_name: dict[str, dict[str, object]] = {}
    for key, entry in lock_pkgs.items():
        if "node_modules/" in key:
            lock_by_name.setdefault(key.rsplit("node_modules/", 1)[1], _dict(entry))
    for pkg in t.packages:
        where = f"{pkg.root}/package.json"
        names = [_dep_name(d) for d in pkg.depends if d.endswith(" (optional)")]
        platform_deps = [n for n in names if _PLATFORM_NAME.search(n.lower())]
        here = [n for n in platform_deps if n in by_name]
        if pkg.install_time and not here:
            # (with one of its platform packages installed, that package's binary is the
            # one it loads: nothing is built or downloaded)
            t.problems.append(Problem(where, f"{pkg.name}: {pkg.install_time}; the package "
                                      "holds no binary for it", ProblemKind.UNSUPPORTED))
        if pkg.platforms:
            t.problems.append(Problem(where, f"{pkg.name} is a platform package for "
                                      f"{'; '.join(_platform_text(p) for p in pkg.platforms)}",
                                      ProblemKind.NOTE))
        if not platform_deps:
            continue
        absent = [n for n in platform_deps if n not in by_name]
        parts = [f"installed here: {', '.join(here)}" if here else "none installed here"]
        if absent:
            described = []
            for n in absent[:8]:
                e = lock_by_name.get(n)
                plat = ""
                if e:
                    plat = " ".join(f"{k}={','.join(_strs(e.get(k)))}"
                                    for k in ("os", "cpu", "libc") if _strs(e.get(k)))
                described.append(f"{n} ({plat})" if plat else n)
            more = f" and {len(absent) - 8} more" if len(absent) > 8 else ""
            parts.append(f"not installed: {', '.join(described)}{more}")
        t.problems.append(Problem(where, f"{pkg.name}: {len(platform_deps)} optional platform "
                                  "packages are chosen at install time by os/cpu/libc; "
                                  + "; ".join(parts), ProblemKind.NOTE))


def _dep_name(dep: str) -> str:
    """``@scope/name`` from ``@scope/name@range (optional)``."""
    at = dep.find("@", 1)
    return dep[:at] if at > 0 else dep


def _npm_tree(t: EcosystemTarget, fs: FileSystem, top: str, files: list[str],
              problems: list[Problem]) -> dict[str, str]:
    """Find the packages below ``top`` (by their package.json), attribute files, fill the
    target's packages and distributions; returns package root -> name."""
    roots: dict[str, str] = {}
    gyp_dirs = {posixpath.dirname(f) for f in files if f.endswith("/binding.gyp")}
    pj_paths = [f for f in files if posixpath.basename(f) == "package.json"
                and _is_package_dir(posixpath.dirname(f), top)]
    pkg_dirs = {posixpath.dirname(p) for p in pj_paths}
    binaries_in: dict[str, bool] = {}
    for f in files:
        if f.endswith(".node"):
            d = _owner_dir(posixpath.dirname(f), pkg_dirs)
            # prebuilds for other systems only (node-pty's darwin and win32 ones) leave a
            # Linux install to build the addon from binding.gyp
            plat = path_platform(f[len(d):]) if d is not None else None
            if d is not None and (plat is None or plat.os in (None, "linux")):
                binaries_in[d] = True
    for pj_path in sorted(pj_paths):
        d = posixpath.dirname(pj_path)
        pj = _json(_read(fs, pj_path), str(fs.describe(pj_path)), problems)
        if pj is None:
            continue
        pkg = _npm_package(pj, d, f"npm:{fs.describe(pj_path)}", has_gyp=d in gyp_dirs,
                           has_binary=binaries_in.get(d, False),
                           fallback=posixpath.basename(d))
        roots[d] = pkg.name
        t.packages.append(pkg)
    counts: dict[str, int] = {}
    for f in files:
        d = _owner_dir(posixpath.dirname(f), roots)
        if d is None:
            continue
        t.owners[f] = roots[d]
        counts[d] = counts.get(d, 0) + 1
        plat = path_platform(f[len(d):]) if "/prebuilds/" in f[len(d):] else None
        if plat is not None and _NATIVE_SUFFIX.search(f):
            t.file_platforms[f] = plat
    for pkg in t.packages:
        t.distributions.append(Distribution(pkg.name, pkg.version, pkg.metadata,
                                            counts.get(pkg.root, 0)))
    return roots


def _owner_dir(d: str, roots: Collection[str]) -> str | None:
    """The innermost of ``roots`` holding the directory ``d``."""
    while True:
        if d in roots:
            return d
        if d in ("/", ""):
            return None
        d = posixpath.dirname(d)


def open_npm_packs(paths: Sequence[str], config: ScanConfig,
                   base: FileSystem | None = None, *,
                   limits: ArchiveLimits | None = None) -> EcosystemTarget:
    """``npm pack`` tarballs installed side by side in one virtual ``node_modules``.

    One tarball is mounted at ``/__unveil__/<file>/node_modules/<name>``; several share
    ``/__unveil__/npm/node_modules/``, so a platform package's relative RPATH into a sibling
    (sharp's addon into ``@img/sharp-libvips-*``) resolves, to "another distribution".
    """
    root_fs = _base(config, base)
    if not paths:
        raise TargetError("no npm tarball given")
    opened: list[tuple[str, TarFS, str]] = []
    for p in paths:
        try:
            tfs = TarFS(p, place=_strip_package_dir, limits=limits)
        except SourceError as e:
            raise TargetError(f"{p}: {e}") from e
        pj = _json(tfs.read_bytes("/package.json"), f"{p}!package/package.json", tfs.problems)
        name = (pj and _str(pj, "name")) or re.sub(r"(-\d[^-]*)?\.(tgz|tar\.gz|tar)$", "",
                                                   os.path.basename(p))
        opened.append((p, tfs, name))
    if len(paths) == 1:
        nm = f"{VIRTUAL_ROOT}/{_safe(os.path.basename(paths[0]))}/node_modules"
    else:
        nm = f"{VIRTUAL_ROOT}/npm/node_modules"
    mounts: list[tuple[str, TarFS]] = []
    skipped: list[Problem] = []
    seen: set[str] = set()
    for p, tfs, name in opened:
        if name in seen:
            skipped.append(Problem(p, f"a second package named {name} left out",
                                   ProblemKind.SOURCE))
            continue
        seen.add(name)
        mounts.append((f"{nm}/{_npm_root(name)}", tfs))
    spec = paths[0] if len(paths) == 1 else ", ".join(paths)
    t = _mounted_target(spec, "npm", root_fs, mounts,
                        opened[0][2] if len(opened) == 1 else None)
    _absorb(t, skipped)
    problems: list[Problem] = []
    for at, _tfs in mounts:
        files = [f for f in t.files if f.startswith(at + "/")]
        _npm_tree(t, t.fs, at, files, problems)
    _absorb(t, problems)
    _describe_npm(t, None)
    return t


def _open_node_modules(path: str, config: ScanConfig, base: FileSystem) -> EcosystemTarget:
    fs, top = _host_view(path, base)
    try:
        real = fs.resolve(top) or top
    except SymlinkLoop as e:
        raise TargetError(f"{path}: {e}") from e
    problems: list[Problem] = []
    files = _walk(fs, real, config.max_files, problems)
    t = EcosystemTarget(path, TargetKind.DIRECTORY, fs, files, [], inside=(real,),
                        ecosystem="npm")
    _npm_tree(t, fs, real, files, problems)
    if real in {p.root for p in t.packages}:
        t.default_owner = next(p.name for p in t.packages if p.root == real)
    lock = None
    lock_path = ""
    for cand in (f"{real}/package-lock.json", f"{real}/node_modules/.package-lock.json",
                 f"{posixpath.dirname(real)}/.package-lock.json"):
        if _kind(fs, cand) is Kind.FILE:
            lock = _json(_read(fs, cand), cand, problems)
            lock_path = cand
            break
    if lock is not None:
        installed = {p.name for p in t.packages}
        for key, entry in _dict(lock.get("packages")).items():
            if "node_modules/" not in key:
                continue
            name = key.rsplit("node_modules/", 1)[1]
            info = _dict(entry)
            if name not in installed and not info.get("optional") and not info.get("dev"):
                problems.append(Problem(lock_path, f"{name} is in the lockfile but not "
                                        "installed", ProblemKind.SOURCE))
    _absorb(t, problems)
    _describe_npm(t, lock)
    if isinstance(base, HostFS):
        _absorb(t, (Problem(w, why, ProblemKind.SOURCE) for w, why in base.errors))
    return t


def _kind(fs: FileSystem, path: str) -> Kind | None:
    try:
        return fs.kind(path)
    except SymlinkLoop:
        return None


def open_npm(path: str, config: ScanConfig, base: FileSystem | None = None, *,
             limits: ArchiveLimits | None = None) -> EcosystemTarget:
    """An ``npm pack`` tarball, or an installed ``node_modules`` (or the project holding
    one) on disk.  Distributions are the packages' ``package.json`` names and versions;
    each file is owned by the innermost package directory holding it."""
    if not os.path.lexists(path):
        raise TargetError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        return _open_node_modules(path, config, _base(config, base))
    return open_npm_packs([path], config, base, limits=limits)


# ------------------------------------------------------------------------------ gems

_GEM_FILE = re.compile(r"^(?P<name>.+?)-(?P<version>\d[^-]*)(?:-(?P<platform>.+))?$")


@dataclass(frozen=True, slots=True)
class _GemSpec:
    name: str
    version: str | None
    platform: str | None
    extensions: tuple[str, ...]
    requirements: tuple[str, ...]
    depends: tuple[str, ...]

    @property
    def full_name(self) -> str:
        v = f"{self.name}-{self.version}" if self.version else self.name
        return f"{v}-{self.platform}" if self.platform and self.platform != "ruby" else v


def _yaml_list(text: str, key: str) -> tuple[str, ...]:
    m = re.search(rf"^{key}:[ \t]*(\[\])?[ \t]*\n((?:[ \t]*- .*\n)*)", text, re.M)
    if not m or m.group(1):
        return ()
    return tuple(line.split("- ", 1)[1].strip().strip("'\"")
                 for line in m.group(2).splitlines())


def _gem_metadata(text: str, fallback: str) -> _GemSpec:
    """The fields we need from a gem's ``metadata`` (YAML of a Gem::Specification)."""
    name = re.search(r"^name: (.+)$", text, re.M)
    version = re.search(r"^version: !ruby/object:Gem::Version\s*\n\s+version: (.+)$", text,
                        re.M)
    platform = re.search(r"^platform: (.+)$", text, re.M)
    deps = []
    for block in re.split(r"\n- !ruby/object:Gem::Dependency\n", text)[1:]:
        dn = re.search(r"^\s+name: (.+)$", block, re.M)
        dt = re.search(r"^\s+type: :(\w+)", block, re.M)
        if dn and (dt is None or dt.group(1) == "runtime"):
            deps.append(dn.group(1).strip().strip("'\""))
    fm = _GEM_FILE.match(fallback)
    return _GemSpec(
        name.group(1).strip().strip("'\"") if name else (fm.group("name") if fm else fallback),
        version.group(1).strip().strip("'\"") if version else (fm.group("version") if fm
                                                                else None),
        platform.group(1).strip().strip("'\"") if platform else None,
        _yaml_list(text, "extensions"), _yaml_list(text, "requirements"), tuple(deps))


def _gemspec_ruby(text: str, fallback: str) -> _GemSpec:
    """The fields we need from an installed ``*.gemspec`` (Ruby source)."""

    def field_(key: str) -> str | None:
        m = re.search(rf"\.{key}\s*=\s*[\"']([^\"']+)[\"']", text)
        return m.group(1) if m else None

    fm = _GEM_FILE.match(fallback)
    ext = re.search(r"\.extensions\s*=\s*\[([^\]]*)\]", text)
    deps = re.findall(r"add_(?:runtime_)?dependency(?:\(|\s)\s*%q<([^>]+)>|"
                      r"add_(?:runtime_)?dependency(?:\(|\s)\s*[\"']([^\"']+)[\"']", text)
    return _GemSpec(
        field_("name") or (fm.group("name") if fm else fallback),
        field_("version") or (fm.group("version") if fm else None),
        fm.group("platform") if fm else None,
        tuple(re.findall(r"[\"']([^\"']+)[\"']", ext.group(1))) if ext else (),
        (), tuple(a or b for a, b in deps))


def _gunzip(data: bytes, cap: int) -> bytes:
    d = zlib.decompressobj(wbits=47)
    try:
        out = d.decompress(data, cap)
    except zlib.error as e:
        raise SourceError(f"corrupt gzip data: {e}") from e
    if d.unconsumed_tail:
        raise SourceError(f"expands past {cap} bytes")
    return out


def _open_gem_file(path: str, config: ScanConfig, base: FileSystem,
                   limits: ArchiveLimits | None) -> EcosystemTarget:
    fname = os.path.basename(path)
    budget = Budget(limits)
    problems: list[Problem] = []
    data: TarFS | None = None
    meta: str | None = None
    try:
        with open_counted(path, budget) as f:
            for m in iter_tar(decompress(f, path), path, budget, problems):
                if m.name == "metadata.gz" and m.size <= budget.limits.max_meta_size:
                    try:
                        meta = _gunzip(m.take(m.size), budget.limits.max_meta_size).decode(
                            "utf-8", "replace")
                    except SourceError as e:
                        problems.append(Problem(f"{path}!metadata.gz", str(e),
                                                ProblemKind.SOURCE))
                elif m.name == "data.tar.gz":
                    data = TarFS(f"{path}!data.tar.gz", stream=m.stream(), budget=budget)
    except SourceError as e:
        if data is None:
            raise TargetError(f"{path}: {e}") from e
        problems.append(Problem(path, str(e), ProblemKind.SOURCE))
    if data is None:
        raise TargetError(f"{path}: not a gem (no data.tar.gz)")
    spec = _gem_metadata(meta or "", fname.removesuffix(".gem"))
    root = f"{VIRTUAL_ROOT}/{_safe(fname)}/gems/{spec.full_name}"
    t = _mounted_target(path, "gem", base, [(root, data)], spec.name)
    _absorb(t, problems)
    _gem_package(t, spec, root, "gem:metadata.gz", t.files)
    t.distributions.append(Distribution(spec.name, spec.version, "gem:metadata.gz",
                                        len(t.files)))
    return t


def _gem_package(t: EcosystemTarget, spec: _GemSpec, root: str, metadata: str,
                 files: Sequence[str]) -> None:
    has_ext_binary = any(f.endswith((".so", ".bundle")) for f in files)
    install = None
    if spec.extensions and not has_ext_binary:
        install = f"compiles its C extension at install time ({', '.join(spec.extensions)})"
        t.problems.append(Problem(root, f"{spec.name}: {install}; the gem holds no binary "
                                  "for it", ProblemKind.UNSUPPORTED))
    if spec.requirements:
        t.problems.append(Problem(root, f"{spec.name} declares system requirements: "
                                  f"{', '.join(spec.requirements)}", ProblemKind.SOURCE))
    t.packages.append(Package("gem", spec.name, spec.version, root, metadata, spec.depends,
                              (Platform(spec.platform),) if spec.platform
                              and spec.platform != "ruby" else (), install))


def _open_gem_home(path: str, config: ScanConfig, base: FileSystem) -> EcosystemTarget:
    """A GEM_HOME (``specifications/``, ``gems/``, ``extensions/``), or a tree holding some
    (Debian's ``rubygems-integration`` directories)."""
    fs, top = _host_view(path, base)
    try:
        real = fs.resolve(top) or top
    except SymlinkLoop as e:
        raise TargetError(f"{path}: {e}") from e
    problems: list[Problem] = []
    files = _walk(fs, real, config.max_files, problems)
    t = EcosystemTarget(path, TargetKind.DIRECTORY, fs, files, [], inside=(real,),
                        ecosystem="gem")
    dirs: dict[str, str] = {}
    specs: list[tuple[_GemSpec, str, str]] = []
    for f in files:
        d, name = posixpath.split(f)
        if posixpath.basename(d) != "specifications" or not name.endswith(".gemspec"):
            continue
        home = posixpath.dirname(d)
        raw = _read(fs, f)
        spec = _gemspec_ruby(raw.decode("utf-8", "replace") if raw else "",
                             name.removesuffix(".gemspec"))
        full = name.removesuffix(".gemspec")
        gem_dir = f"{home}/gems/{full}"
        dirs[_resolve_dir(fs, gem_dir, {})] = spec.name
        ext_root = f"{home}/extensions"
        for arch in sorted(fs.listdir(ext_root)):
            for abi in sorted(fs.listdir(f"{ext_root}/{arch}")):
                d2 = f"{ext_root}/{arch}/{abi}/{full}"
                if _kind(fs, d2) is Kind.DIR:
                    dirs[_resolve_dir(fs, d2, {})] = spec.name
        specs.append((spec, gem_dir, f))
    for f in files:
        owner = _owner_dir(posixpath.dirname(f), dirs)
        if owner is not None:
            t.owners[f] = dirs[owner]
    for spec, gem_dir, where in specs:
        owned = [x for x, o in t.owners.items() if o == spec.name]
        _gem_package(t, spec, gem_dir, f"gem:{where}", owned)
        t.distributions.append(Distribution(spec.name, spec.version, f"gem:{where}",
                                            len(owned)))
    _absorb(t, problems)
    return t


def open_gem(path: str, config: ScanConfig, base: FileSystem | None = None, *,
             limits: ArchiveLimits | None = None) -> EcosystemTarget:
    """A ``.gem`` (a tar of ``metadata.gz`` and ``data.tar.gz``), mounted where RubyGems
    installs it (``<GEM_HOME>/gems/<name>-<version>[-<platform>]``), or an installed
    GEM_HOME whose ``specifications/*.gemspec`` attribute ``gems/<full>/`` and
    ``extensions/<arch>/<abi>/<full>/`` to each gem."""
    if not os.path.lexists(path):
        raise TargetError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        return _open_gem_home(path, config, _base(config, base))
    return _open_gem_file(path, config, _base(config, base), limits)


# ---------------------------------------------------------------------------- Debian


def parse_control(text: str) -> dict[str, str]:
    """The first paragraph of a Debian control file (continuation lines joined)."""
    out: dict[str, str] = {}
    key: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if out:
                break
            continue
        if line[0] in " \t" and key is not None:
            out[key] += "\n" + line.strip()
            continue
        k, sep, v = line.partition(":")
        if sep:
            key = k.strip()
            out[key] = v.strip()
    return out


def _relations(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(" ".join(r.split()) for r in value.split(",") if r.strip())


def open_deb(path: str, config: ScanConfig, base: FileSystem | None = None, *,
             limits: ArchiveLimits | None = None) -> EcosystemTarget:
    """A Debian package (``ar`` of ``debian-binary``, ``control.tar.*``, ``data.tar.*``):
    ``data.tar`` is mounted at the virtual root ``/__unveil__/<file>/`` (its absolute
    links stay inside) and seen where dpkg installs it (see :class:`OverlayFS`), and
    ``control``'s Package/Version/Depends are kept as the
    :class:`Package` (``depends`` holds Pre-Depends then Depends, as written)."""
    if not os.path.lexists(path):
        raise TargetError(f"{path}: no such file or directory")
    root_fs = _base(config, base)
    budget = Budget(limits)
    problems: list[Problem] = []
    control: dict[str, str] = {}
    data: TarFS | None = None
    version_ok = False
    try:
        with open_counted(path, budget) as f:
            for m in iter_ar(f, path, budget):
                if m.name == "debian-binary":
                    version_ok = m.take(64).startswith(b"2.")
                elif m.name.startswith("control.tar"):
                    ctl = TarFS(f"{path}!{m.name}", stream=m.stream(), budget=budget,
                                keep=lambda _n, size: size <= _META_CAP)
                    problems += ctl.problems
                    raw = ctl.read_bytes("/control")
                    if raw is None:
                        problems.append(Problem(f"{path}!{m.name}", "no control file",
                                                ProblemKind.SOURCE))
                    else:
                        control = parse_control(raw.decode("utf-8", "replace"))
                elif m.name.startswith("data.tar"):
                    data = TarFS(f"{path}!{m.name}", stream=m.stream(), budget=budget)
    except SourceError as e:
        if data is None:
            raise TargetError(f"{path}: {e}") from e
        problems.append(Problem(path, str(e), ProblemKind.SOURCE))
    if data is None:
        raise TargetError(f"{path}: not a Debian package (no data.tar member)")
    if not version_ok:
        problems.append(Problem(path, "debian-binary is missing or not format 2.x",
                                ProblemKind.SOURCE))
    fname = os.path.basename(path)
    name = control.get("Package") or fname.split("_", 1)[0]
    version = control.get("Version")
    root = f"{VIRTUAL_ROOT}/{_safe(fname)}"
    # A .deb's paths are where dpkg installs them: its RUNPATH /usr/lib/<triplet>/vlc and its
    # libraries in the default directories find its own files, as once installed.
    t = _mounted_target(path, "deb", root_fs, [(root, data)], name, installed=True)
    _absorb(t, problems)
    arch = control.get("Architecture")
    t.packages.append(Package(
        "deb", name, version, root, "deb:control",
        _relations(control.get("Pre-Depends")) + _relations(control.get("Depends")),
        (Platform(arch=arch),) if arch else ()))
    t.distributions.append(Distribution(name, version, "deb:control", len(t.files)))
    # Ruby gems packaged by Debian (rubygems-integration) keep their gemspecs.
    for file in t.files:
        d, base_name = posixpath.split(file)
        if posixpath.basename(d) == "specifications" and base_name.endswith(".gemspec"):
            raw = _read(t.fs, file)
            spec = _gemspec_ruby(raw.decode("utf-8", "replace") if raw else "",
                                 base_name.removesuffix(".gemspec"))
            t.packages.append(Package("gem", spec.name, spec.version,
                                      f"{posixpath.dirname(d)}/gems/{spec.full_name}",
                                      f"gem:{file}", spec.depends))
    return t


# ----------------------------------------------------------------------------- conda

_CONDA_INFO = frozenset({"info/index.json", "info/paths.json", "info/about.json",
                         "info/run_exports.json", "info/files"})


def _conda_package(t: EcosystemTarget, index: dict[str, object] | None, root: str, *,
                   metadata: str, fallback: str, files: int) -> None:
    idx = index or {}
    name = _str(idx, "name") or fallback
    version = _str(idx, "version")
    subdir = _str(idx, "subdir")
    t.packages.append(Package("conda", name, version, root, metadata,
                              _strs(idx.get("depends")),
                              (Platform(_str(idx, "platform"), _str(idx, "arch")),)
                              if subdir and subdir != "noarch" else ()))
    t.distributions.append(Distribution(name, version, metadata, files))
    if t.default_owner is None:
        t.default_owner = name


def _conda_capture(rel: str) -> bool:
    return rel in _CONDA_INFO


def _open_conda_archive(path: str, config: ScanConfig, base: FileSystem,
                        limits: ArchiveLimits | None) -> EcosystemTarget:
    fname = os.path.basename(path)
    stem = re.sub(r"\.(conda|tar\.bz2)$", "", fname)
    root = f"{VIRTUAL_ROOT}/{_safe(fname)}"
    budget = Budget(limits)
    info: dict[str, bytes] = {}
    if fname.endswith(".conda"):
        try:
            z = ZipArchive(path)
        except SourceError as e:
            raise TargetError(f"{path}: {e}") from e
        pkg: TarFS | None = None
        try:
            for member in z.members:
                if not member.name.endswith(".tar.zst"):
                    continue
                where = f"{path}!{member.name}"
                try:
                    stream = counted(BlobReader(z.blob(member)), budget)
                    if member.name.startswith("info-"):
                        tfs = TarFS(where, stream=stream, budget=budget,
                                    capture=_conda_capture, place=lambda _r: None)
                        info.update(tfs.captured)
                    elif member.name.startswith("pkg-"):
                        pkg = TarFS(where, stream=stream, budget=budget)
                except SourceError as e:
                    raise TargetError(f"{path}: {e}") from e
        finally:
            z.close()
        if pkg is None:
            raise TargetError(f"{path}: not a .conda package (no pkg-*.tar.zst)")
    else:
        try:
            pkg = TarFS(path, budget=budget, capture=_conda_capture,
                        place=lambda rel: None if rel.startswith("info/") else "/" + rel)
        except SourceError as e:
            raise TargetError(f"{path}: {e}") from e
        info.update(pkg.captured)
    t = _mounted_target(path, "conda", base, [(root, pkg)], None)
    index = _json(info.get("info/index.json"), f"{path}!info/index.json", t.problems)
    _conda_package(t, index, root, metadata="conda:info/index.json", fallback=stem,
                   files=len(t.files))
    return t


def _open_conda_env(path: str, config: ScanConfig, base: FileSystem) -> EcosystemTarget:
    fs, top = _host_view(path, base)
    try:
        real = fs.resolve(top) or top
    except SymlinkLoop as e:
        raise TargetError(f"{path}: {e}") from e
    problems: list[Problem] = []
    files = _walk(fs, real, config.max_files, problems)
    t = EcosystemTarget(path, TargetKind.DIRECTORY, fs, files, [], inside=(real,),
                        ecosystem="conda")
    meta_dir = f"{real}/conda-meta"
    dirs: dict[str, str] = {}
    for n in sorted(fs.listdir(meta_dir)):
        if not n.endswith(".json"):
            continue
        where = f"{meta_dir}/{n}"
        rec = _json(_read(fs, where), where, problems)
        if rec is None:
            continue
        listed = list(_strs(rec.get("files")))
        if not listed:
            listed = [p for e in _strs_of(_dict(rec.get("paths_data")).get("paths"))
                      if (p := _str(e, "_path"))]
        name = _str(rec, "name") or n.removesuffix(".json")
        for rel in listed:
            d, _, b = rel.rpartition("/")
            real_dir = _resolve_dir(fs, posixpath.normpath(f"{real}/{d}") if d else real, dirs)
            t.owners[f"{real_dir.rstrip('/')}/{b}"] = name
        t.packages.append(Package("conda", name, _str(rec, "version"), real, f"conda:{where}",
                                  _strs(rec.get("depends"))))
        t.distributions.append(Distribution(name, _str(rec, "version"), f"conda:{where}",
                                            len(listed)))
    _absorb(t, problems)
    return t


def _strs_of(value: object) -> list[dict[str, object]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def open_conda(path: str, config: ScanConfig, base: FileSystem | None = None, *,
               limits: ArchiveLimits | None = None) -> EcosystemTarget:
    """A conda package (``.conda``: a zip of ``info-*.tar.zst`` and ``pkg-*.tar.zst``;
    legacy ``.tar.bz2``) mounted as an environment prefix at ``/__unveil__/<file>``, or
    an installed environment whose ``conda-meta/*.json`` ``files`` attribute each file."""
    if not os.path.lexists(path):
        raise TargetError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        return _open_conda_env(path, config, _base(config, base))
    return _open_conda_archive(path, config, _base(config, base), limits)


# ------------------------------------------------------------------------------ Java

def _manifest(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    key: str | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith(" ") and key is not None:
            out[key] += line[1:]
            continue
        if not line:
            if out:
                break
            continue
        k, sep, v = line.partition(": ")
        if sep:
            key = k
            out[k] = v
    return out


def _properties(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        k, _, v = line.partition("=")
        out[k.strip()] = v.strip()
    return out


def open_jar(path: str, config: ScanConfig, base: FileSystem | None = None) -> EcosystemTarget:
    """A Java archive (also ``.war``/``.aar``) read in place, mounted at
    ``/__unveil__/<file>``.  JNI libraries (``META-INF/native/``, ``.../native/<os>/<arch>/``
    and other paths naming a platform) get the OS and architecture their path says in
    :attr:`EcosystemTarget.file_platforms`; Maven ``pom.properties`` (else the manifest)
    names the distribution."""
    if not os.path.lexists(path):
        raise TargetError(f"{path}: no such file or directory")
    root_fs = _base(config, base)
    fname = os.path.basename(path)
    root = f"{VIRTUAL_ROOT}/{_safe(fname)}"
    try:
        zfs = ZipFS(path, lambda m: f"{root}/{m}")
    except SourceError as e:
        raise TargetError(f"{path}: {e}") from e
    fs = OverlayFS(root_fs, {root: zfs})
    files = zfs.file_paths
    t = EcosystemTarget(path, TargetKind.PACKAGE, fs, files, [], inside=(root,),
                        ecosystem="jar")
    for member, why in zfs.problems:
        t.problems.append(Problem(f"{path}!{member}", why, ProblemKind.SOURCE))
    poms: list[dict[str, str]] = []
    manifest: dict[str, str] = {}
    for f in files:
        rel = f[len(root) + 1:]
        if rel.startswith("META-INF/maven/") and rel.endswith("/pom.properties"):
            raw = _read(zfs, f, 1 << 20)
            if raw:
                poms.append(_properties(raw.decode("utf-8", "replace")))
        elif rel == "META-INF/MANIFEST.MF":
            raw = _read(zfs, f, 1 << 20)
            if raw:
                manifest = _manifest(raw.decode("utf-8", "replace"))
        elif rel.endswith((".jar", ".war")):
            t.problems.append(Problem(f"{path}!{rel}", "nested Java archive not scanned",
                                      ProblemKind.UNSUPPORTED))
        if _NATIVE_SUFFIX.search(rel):
            plat = path_platform(rel)
            if plat is not None:
                t.file_platforms[f] = plat
    stem = re.sub(r"\.(jar|war|aar)$", "", fname)
    if poms:
        main = poms[0]
        name = f"{main.get('groupId', '')}:{main.get('artifactId', stem)}".lstrip(":")
        version = main.get("version")
        metadata = "jar:META-INF/maven/pom.properties"
    else:
        name = (manifest.get("Bundle-SymbolicName", "").split(";")[0]
                or manifest.get("Implementation-Title") or manifest.get("Automatic-Module-Name")
                or stem)
        version = manifest.get("Bundle-Version") or manifest.get("Implementation-Version")
        metadata = "jar:META-INF/MANIFEST.MF"
    t.default_owner = name
    t.packages.append(Package("jar", name, version, root, metadata))
    t.distributions.append(Distribution(name, version, metadata, len(files)))
    for extra in poms[1:]:
        t.packages.append(Package("jar", f"{extra.get('groupId', '')}:"
                                  f"{extra.get('artifactId', '')}", extra.get("version"), root,
                                  "jar:META-INF/maven/pom.properties"))
    return t


#: For a caller that dispatches on file names.
OPENERS: dict[str, Callable[..., EcosystemTarget]] = {
    ".tgz": open_npm, ".gem": open_gem, ".deb": open_deb, ".conda": open_conda,
    ".tar.bz2": open_conda, ".jar": open_jar, ".war": open_jar, ".aar": open_jar,
}
