"""Scan targets: a wheel, an installed environment, a directory tree or one file.

Each becomes a :class:`Target`: a virtual tree in the target system's namespace, the
candidate files in it, and which distribution owns each file.  A wheel is mounted under a
virtual prefix exactly where an installer would put its members (``purelib``/``platlib``
into site-packages, ``scripts`` into ``bin``...), so its RPATHs resolve as if installed;
nothing is extracted.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
import re
from dataclasses import dataclass, field

from unveil.config import ScanConfig
from unveil.errors import SourceError, TargetError
from unveil.model import Distribution, Problem, ProblemKind, TargetKind
from unveil.sources.fs import (
    FileSystem,
    HostFS,
    Kind,
    OverlayFS,
    PlaceFn,
    SymlinkLoop,
    ZipFS,
)

__all__ = ["Target", "open_target", "VIRTUAL_ROOT"]

#: Where lone wheels are mounted in the target namespace; nothing real lives there.
VIRTUAL_ROOT = "/__unveil__"
_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-"
                         r"(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$")
_DIST_INFO = re.compile(r"^(?P<name>.+?)-(?P<version>[^-]+)\.dist-info$")


@dataclass
class Target:
    """A target opened for scanning (mutable while being built, then read-only)."""

    spec: str
    kind: TargetKind
    fs: FileSystem
    files: list[str]
    site_packages: list[str] = field(default_factory=list)
    owners: dict[str, str] = field(default_factory=dict)
    distributions: list[Distribution] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    inside: tuple[str, ...] = ()
    default_owner: str | None = None
    #: the wheel's platform tag(s), e.g. "manylinux_2_28_x86_64" or "musllinux_1_2_x86_64".
    platform_tag: str | None = None
    #: the wheel's Python tag, e.g. "cp311".
    python_tag: str | None = None
    #: directories Windows packages add with os.add_dll_directory (delvewheel's patch).
    dll_directories: list[str] = field(default_factory=list)

    def owner_of(self, real_path: str) -> str | None:
        o = self.owners.get(real_path)
        if o is None and self.default_owner is not None and self.contains(real_path):
            return self.default_owner
        return o

    def site_packages_dist_info(self) -> bool:
        """Whether a ``*.dist-info`` directory sits in one of the target's site-packages."""
        return any(name.endswith(".dist-info") for sp in self.site_packages
                   for name in self.fs.listdir(sp))

    def contains(self, real_path: str) -> bool:
        return any(real_path == p or real_path.startswith(p.rstrip("/") + "/")
                   for p in self.inside)


def _install_place(prefix: str, site: str, dist_data: str) -> PlaceFn:
    def place(member: str) -> str | None:
        first, _, rest = member.partition("/")
        if first == dist_data and rest:
            scheme, _, sub = rest.partition("/")
            if not sub:
                return None
            if scheme in ("purelib", "platlib"):
                return f"{site}/{sub}"
            if scheme == "scripts":
                return f"{prefix}/bin/{sub}"
            if scheme == "data":
                return f"{prefix}/{sub}"
            if scheme == "headers":
                return f"{prefix}/include/{sub}"
            return None
        return f"{site}/{member}"

    return place


def _open_wheel(path: str, config: ScanConfig, base: FileSystem) -> Target:
    fname = os.path.basename(path)
    m = _WHEEL_NAME.match(fname)
    name, version = (m.group("name"), m.group("version")) if m else (fname[:-4], None)
    pyver = config.python_version
    if m:
        tag = m.group("py").split(".")[0]
        if tag.startswith("cp") and len(tag) > 3 and tag[2:].isdigit():
            pyver = f"{tag[2]}.{tag[3:]}"
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", fname)
    prefix = f"{VIRTUAL_ROOT}/{safe}"
    site = f"{prefix}/lib/python{pyver}/site-packages"
    dist_data = f"{name}-{version}.data" if version else f"{name}.data"
    zfs = ZipFS(path, _install_place(prefix, site, dist_data))
    fs = OverlayFS(base, {prefix: zfs})
    t = Target(path, TargetKind.WHEEL, fs, zfs.file_paths, [site], inside=(prefix,),
               default_owner=name, platform_tag=m.group("plat") if m else None,
               python_tag=m.group("py").split(".")[0] if m else None)
    t.distributions.append(Distribution(name, version, fname, len(zfs.file_paths)))
    for member, why in zfs.problems:
        t.problems.append(Problem(f"{path}!{member}", why, ProblemKind.SOURCE))
    return t


def _kind(fs: FileSystem, path: str) -> Kind | None:
    try:
        return fs.kind(path)
    except SymlinkLoop:
        return None


def _find_site_packages(fs: FileSystem, top: str) -> list[str]:
    """site-packages directories of an environment or prefix (or ``top`` itself)."""
    listing = fs.listdir(top)
    if any(n.endswith(".dist-info") for n in listing):
        return [top]
    out: list[str] = []
    for libdir in ("lib", "lib64", "Lib"):
        if fs.entry(top, libdir) is not Kind.DIR:
            continue
        base = f"{top.rstrip('/')}/{libdir}"
        for n in sorted(fs.listdir(base)):
            if n.startswith("python"):
                sp = f"{base}/{n}/site-packages"
                if _kind(fs, sp) is Kind.DIR and sp not in out:
                    out.append(sp)
        if libdir == "Lib" and _kind(fs, f"{base}/site-packages") is Kind.DIR:
            out.append(f"{base}/site-packages")
    return out


def _read_records(t: Target, fs: FileSystem) -> None:
    for site in t.site_packages:
        for n in sorted(fs.listdir(site)):
            m = _DIST_INFO.match(n)
            if not m:
                continue
            dist = m.group("name")
            record = f"{site}/{n}/RECORD"
            count = 0
            try:
                if _kind(fs, record) is Kind.FILE:
                    blob = fs.open_blob(record)
                    try:
                        text = blob.read(0, min(blob.size, 64 << 20)).decode("utf-8", "replace")
                    finally:
                        blob.close()
                    dirs: dict[str, str] = {}
                    for row in csv.reader(io.StringIO(text)):
                        if not row or not row[0]:
                            continue
                        d, _, b = row[0].rpartition("/")
                        real_dir = dirs.get(d)
                        if real_dir is None:
                            full = posixpath.normpath(posixpath.join(site, d))
                            try:
                                real_dir = fs.resolve(full) or full
                            except SymlinkLoop:
                                real_dir = full
                            dirs[d] = real_dir
                        t.owners[f"{real_dir.rstrip('/')}/{b}"] = dist
                        count += 1
            except (SourceError, csv.Error) as e:
                t.problems.append(Problem(record, f"unreadable RECORD: {e}", ProblemKind.SOURCE))
            t.distributions.append(Distribution(dist, m.group("version"), f"{site}/{n}", count))


_ECOSYSTEM_SUFFIXES = (".tgz", ".gem", ".deb", ".conda", ".tar.bz2", ".jar", ".war", ".aar")
#: the package archives a scan opens as targets (not inside a scanned directory)
PACKAGE_SUFFIXES = (".whl", *_ECOSYSTEM_SUFFIXES)


def _open_ecosystem(full: str, config: ScanConfig, host: HostFS) -> Target | None:
    """npm, RubyGems, Debian, conda and Java artifacts (sources/ecosystems.py, imported only
    for them: it is large, and it imports this module)."""
    if os.path.isfile(full) and not full.endswith(_ECOSYSTEM_SUFFIXES):
        return None
    if os.path.isdir(full) and not any(os.path.exists(os.path.join(full, n)) for n in (
            "node_modules", "conda-meta", "specifications")) and os.path.basename(
            full) != "node_modules":
        return None
    from unveil.sources import ecosystems  # noqa: PLC0415

    if os.path.isfile(full):
        for suffix, opener in ecosystems.OPENERS.items():
            if full.endswith(suffix):
                return opener(full, config, host)
        return None
    if not os.path.isdir(full):
        return None
    if os.path.basename(full) == "node_modules" or os.path.isdir(
            os.path.join(full, "node_modules")):
        return ecosystems.open_npm(full, config, host)
    if os.path.isdir(os.path.join(full, "conda-meta")) and not os.path.exists(
            os.path.join(full, "pyvenv.cfg")):
        return ecosystems.open_conda(full, config, host)
    if os.path.isdir(os.path.join(full, "specifications")) and os.path.isdir(
            os.path.join(full, "gems")):
        return ecosystems.open_gem(full, config, host)
    return None


def open_target(spec: str, config: ScanConfig) -> Target:
    """Open ``spec`` (a path on this machine) as a scan target."""
    host = HostFS(config.root)
    if not os.path.lexists(spec):
        raise TargetError(f"{spec}: no such file or directory")
    full = os.path.abspath(spec)
    other = _open_ecosystem(full, config, host)
    if other is not None:
        return other
    if os.path.isfile(full) and full.endswith(".whl"):
        try:
            return _open_wheel(full, config, host)
        except SourceError as e:
            raise TargetError(f"{spec}: {e}") from e
    tpath = host.target_path(full)
    if tpath is None:
        # Outside the root: see it at its own path, over the root.
        fs: FileSystem = OverlayFS(host, {full: HostFS("/")})
        tpath = full
    else:
        fs = host
    if os.path.isdir(full):
        try:
            real = fs.resolve(tpath) or tpath
        except SymlinkLoop as e:
            raise TargetError(f"{spec}: {e}") from e
        sites = _find_site_packages(fs, real)
        is_env = bool(sites) or os.path.exists(os.path.join(full, "pyvenv.cfg"))
        kind = TargetKind.ENVIRONMENT if is_env else TargetKind.DIRECTORY
        files: list[str] = []
        for f in fs.walk_files(real):
            files.append(f)
            if len(files) >= config.max_files:
                break
        t = Target(spec, kind, fs, files, sites, inside=(real,))
        if kind is TargetKind.ENVIRONMENT:
            _read_records(t, fs)
        if isinstance(host, HostFS):
            for where, why in host.errors:
                t.problems.append(Problem(where, why, ProblemKind.SOURCE))
        return t
    try:
        file_real = fs.resolve(tpath)
    except SymlinkLoop as e:
        raise TargetError(f"{spec}: {e}") from e
    if file_real is None:
        raise TargetError(f"{spec}: cannot resolve (dangling link)")
    return Target(spec, TargetKind.FILE, fs, [file_real], inside=(file_real,))
