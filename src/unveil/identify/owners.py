"""Which package manager of the scanned root owns a file: dpkg, apk, rpm, conda.

Read from the root's own databases — never by running ``dpkg -S`` or ``rpm -qf``; rpm's
binary databases (sqlite, Berkeley DB, ndb) are decoded by :mod:`unveil.identify.rpmdb`.
On merged-/usr systems a file found at ``/usr/lib/...`` may be registered under
``/lib/...`` (and the other way round): both spellings are tried, and so is the path
through symlinked directories.
"""

from __future__ import annotations

import bisect
import json
import posixpath
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from unveil.errors import UnveilError
from unveil.identify.rpmdb import read_database
from unveil.sources.fs import FileSystem, Kind, SymlinkLoop

__all__ = ["Owner", "PackageIndex"]

MAX_DB = 256 << 20


@dataclass(frozen=True, slots=True)
class Owner:
    manager: str            # "dpkg", "apk", "rpm", "conda"
    name: str
    version: str | None     # rpm: "[epoch:]version-release"
    arch: str | None = None
    source: str | None = None  # source package (dpkg "Source:", rpm source rpm's name)
    distro: str | None = None  # e.g. "debian-12"


#: a repacked or renamed upstream tarball (Debian "+dfsg", "+ds", "~really", "+repack")
_REPACK = re.compile(r"[.+~](dfsg|ds|really|repack)\d*.*$")


def upstream_version(version: str) -> str:
    """The upstream part of a distro package's version: RPM ``8.5.0-28.el8``, Debian
    ``1:1.2.13.dfsg-1``, Alpine ``1.3-r2`` give 8.5.0, 1.2.13 and 1.3 (epoch, repack suffix
    and release dropped); the string itself when nothing is left."""
    v = version.split(":", 1)[1] if version.split(":", 1)[0].isdigit() and ":" in version \
        else version
    if "-" in v:
        v = v.rsplit("-", 1)[0]
    return _REPACK.sub("", v) or version


def _read_bytes(fs: FileSystem, path: str) -> bytes | None:
    try:
        real = fs.resolve(path)
        if real is None:
            return None
        return fs.read_file(real, MAX_DB)
    except (UnveilError, SymlinkLoop):
        return None


def _read(fs: FileSystem, path: str) -> str | None:
    raw = _read_bytes(fs, path)
    return None if raw is None else raw.decode("utf-8", "replace")


class _DpkgLists:
    """dpkg's per-package file lists, searched when asked rather than indexed up front.

    A wheel or environment scan asks who owns a handful of system libraries in two or three
    directories; turning every line of every ``info/*.list`` into a dict entry (~120k on a
    small Debian) cost ~0.2 s, more than the rest of identification.  The lists are kept as
    one bytes object and the first question about a directory indexes that directory's
    entries only (one ``find`` pass, a few ms); after :data:`INDEX_AFTER` directories (a
    whole root being scanned) every line is indexed after all.
    """

    INDEX_AFTER = 24

    def __init__(self, lists: list[tuple[str, bytes]], status: bytes,
                 distro: str | None) -> None:
        self._names = [name for name, _ in lists]
        self._starts: list[int] = []
        parts = [b"\n"]
        at = 1
        for _, text in lists:
            if text and not text.endswith(b"\n"):
                text += b"\n"
            self._starts.append(at)
            parts.append(text)
            at += len(text)
        self._text = b"".join(parts)
        self._status = b"\n" + status
        self._distro = distro
        self._owners: dict[str, Owner | None] = {}
        #: package name -> where its Package lines are in ``status`` (read on first need)
        self._package_lines: dict[str, list[tuple[int, int]]] | None = None
        #: directory -> entry name -> the lists naming it, in list order
        self._dirs: dict[bytes, dict[bytes, list[int]]] = {}
        self._index: dict[str, Owner] | None = None

    def owner(self, path: str) -> Owner | None:
        """The installed package whose list comes first (in list-name order) among those
        listing ``path`` exactly."""
        if not path.startswith("/") or "\n" in path:
            return None
        if self._index is None and len(self._dirs) >= self.INDEX_AFTER:
            self._index = self._build_index()
        if self._index is not None:
            return self._index.get(path)
        try:
            raw = path.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate: no list line can spell it
            return None
        d, _, base = raw.rpartition(b"/")
        for i in self._entries(d).get(base, ()):
            found = self._package(i)
            if found is not None:
                return found
        return None

    def _entries(self, d: bytes) -> dict[bytes, list[int]]:
        got = self._dirs.get(d)
        if got is None:
            got = self._dirs[d] = {}
            needle = b"\n" + d + b"/"
            text = self._text
            at = text.find(needle)
            while at >= 0:
                start = at + len(needle)
                end = text.find(b"\n", start)
                name = text[start:end]
                if name and b"/" not in name:  # an entry of d itself, not of a subdirectory
                    got.setdefault(name, []).append(bisect.bisect_right(self._starts, at + 1) - 1)
                at = text.find(needle, end)
        return got

    def _package(self, i: int) -> Owner | None:
        """The installed package whose list is number ``i``, from its stanza in ``status``
        (as dpkg's own reading would have it: the last installed stanza of that name, of the
        list's architecture when the list name has one)."""
        entry = self._names[i]
        if entry not in self._owners:
            name, _, arch = entry.partition(":")  # multi-arch lists are "<name>:<arch>.list"
            if self._package_lines is None:
                self._package_lines = _package_lines(self._status)
            installed = [o for o in (_dpkg_owner(st, self._distro) for st in _stanzas_at(
                self._status, self._package_lines.get(name, ()))) if o]
            same_arch = [o for o in installed if arch and o.arch == arch]
            best = same_arch or installed
            self._owners[entry] = best[-1] if best else None
        return self._owners[entry]

    def _build_index(self) -> dict[str, Owner]:
        # A path listed by two packages (shared directories, diversions) keeps the first
        # package's claim: fill in reverse so earlier lists overwrite later ones.  dict
        # updates run in C: ~4x faster than a setdefault per line.
        files: dict[str, Owner] = {}
        ends = [*self._starts[1:], len(self._text)]
        for i in reversed(range(len(self._names))):
            owner = self._package(i)
            if owner is not None:
                text = self._text[self._starts[i]:ends[i]].decode("utf-8", "surrogateescape")
                files.update(dict.fromkeys(text.split("\n"), owner))
        files.pop("", None)
        return files


_BLANK_LINE = re.compile(rb"\n[ \t\r]*(?:\n|$)")


_PACKAGE_LINE = re.compile(rb"(?m)^Package:[ \t]*([^\s]+)[ \t]*\r?$")


def _package_lines(status: bytes) -> dict[str, list[tuple[int, int]]]:
    """Package name -> the (start, end) of each of its Package lines in ``status``."""
    out: dict[str, list[tuple[int, int]]] = {}
    for m in _PACKAGE_LINE.finditer(status):
        name = m.group(1).decode("utf-8", "surrogateescape")
        out.setdefault(name, []).append((m.start(), m.end()))
    return out


def _stanzas_at(status: bytes, lines: Iterable[tuple[int, int]]) -> list[str]:
    """The stanzas holding these Package lines (which need not come first in them)."""
    out = []
    for line_start, line_end in lines:
        start = line_start
        while start > 0:  # back over the stanza's earlier fields, to a blank line
            prev = status.rfind(b"\n", 0, start - 1)
            if not status[prev + 1:start].strip():
                break
            start = prev + 1
        blank = _BLANK_LINE.search(status, line_end)
        end = blank.start() if blank else len(status)
        out.append(status[start:end].decode("utf-8", "replace"))
    return out


def _stanzas_of(status: bytes, name: str) -> list[str]:
    """The stanzas of ``status`` (which starts with a newline) whose Package field is
    ``name``, in file order."""
    return _stanzas_at(status, _package_lines(status).get(name, ()))


def _dpkg_owner(stanza: str, distro: str | None) -> Owner | None:
    fields: dict[str, str] = {}
    for line in stanza.splitlines():
        if line[:1] in (" ", "\t") or ":" not in line:
            continue
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    name = fields.get("Package")
    # Status is "<want> <flag> <state>": only the state "installed" owns files (not
    # "half-installed", "not-installed" or "config-files").
    if not name or fields.get("Status", "installed").split()[-1:] != ["installed"]:
        return None
    source = fields.get("Source", name).split(" ")[0]
    return Owner("dpkg", name, fields.get("Version"), fields.get("Architecture"), source, distro)


class PackageIndex:
    """File → owning package for one root, read on the first question (or by :meth:`preload`)."""

    def __init__(self, fs: FileSystem) -> None:
        self.fs = fs
        self._files: dict[str, Owner] | None = None
        self._dpkg: _DpkgLists | None = None
        self._answers: dict[str, Owner | None] = {}  # a scan asks once per edge
        self.problems: list[str] = []
        self.managers: list[str] = []
        self._lock = threading.Lock()

    def preload(self) -> None:
        """Read the databases now (a scan does it on a thread while members inflate)."""
        with self._lock:
            if self._files is None:
                self._files = {}
                try:
                    self._load()
                except Exception as e:  # a database shape no reader expected: say so
                    self.problems.append(f"package database not fully read: "
                                         f"{type(e).__name__}: {e}")

    def owner(self, path: str) -> Owner | None:
        if self._files is None or self._lock.locked():
            self.preload()
        assert self._files is not None
        if path in self._answers:
            return self._answers[path]
        found = None
        for p in self._spellings(path):
            # Spelling by spelling: dpkg's claim, then apk, rpm and conda (the order the
            # databases are read in, earlier claims kept).
            with self._lock:
                found = self._dpkg.owner(p) if self._dpkg is not None else None
            found = found or self._files.get(p)
            if found is not None:
                break
        self._answers[path] = found
        return found

    def _spellings(self, path: str) -> list[str]:
        out = [path]
        if path.startswith("/usr/"):
            out.append(path[4:])
        else:
            out.append("/usr" + path)
        d, b = posixpath.split(path)
        try:
            rd = self.fs.resolve(d)
        except SymlinkLoop:
            rd = None
        if rd and rd != d:
            out.append(f"{rd}/{b}")
        return out

    def _load(self) -> None:
        self._load_dpkg()
        self._load_apk()
        self._load_rpm()
        self._load_conda()

    def _distro(self) -> str | None:
        text = _read(self.fs, "/etc/os-release")
        if not text:
            return None
        kv = {}
        for line in text.splitlines():
            k, _, v = line.partition("=")
            kv[k.strip()] = v.strip().strip('"')
        if "ID" in kv and "VERSION_ID" in kv:
            return f"{kv['ID']}-{kv['VERSION_ID']}"
        return kv.get("ID")

    def _load_dpkg(self) -> None:
        status = _read_bytes(self.fs, "/var/lib/dpkg/status")
        if status is None:
            return
        self.managers.append("dpkg")
        info = "/var/lib/dpkg/info"
        try:
            rinfo = self.fs.resolve(info)
        except SymlinkLoop:
            rinfo = None
        lists: list[tuple[str, bytes]] = []
        unreadable: list[str] = []
        if rinfo is not None:
            for entry, kind in sorted(self.fs.listdir(rinfo).items()):
                if kind is not Kind.FILE or not entry.endswith(".list"):
                    continue
                try:  # a regular file of a resolved directory: no path to resolve
                    text = self.fs.read_file(f"{rinfo}/{entry}", MAX_DB)
                except UnveilError:
                    unreadable.append(entry)
                    continue
                lists.append((entry[:-5], text))
        self._dpkg = _DpkgLists(lists, status, self._distro())
        for entry in unreadable:  # a removed package's leftover list is no loss
            name = entry[:-5].partition(":")[0]
            if any(_dpkg_owner(st, None) for st in _stanzas_of(b"\n" + status, name)):
                self.problems.append(f"{info}/{entry}: unreadable")

    def _load_apk(self) -> None:
        text = _read(self.fs, "/lib/apk/db/installed")
        if text is None:
            return
        self.managers.append("apk")
        distro = self._distro()
        assert self._files is not None
        for stanza in text.split("\n\n"):
            name = version = arch = origin = None
            folder = ""
            for line in stanza.splitlines():
                key, _, value = line.partition(":")
                if key == "P":
                    name = value
                elif key == "V":
                    version = value
                elif key == "A":
                    arch = value
                elif key == "o":
                    origin = value
                elif key == "F":
                    folder = value
                elif key == "R" and name:
                    path = f"/{folder}/{value}" if folder else f"/{value}"
                    self._files.setdefault(path, Owner("apk", name, version, arch,
                                                       origin, distro))

    def _load_rpm(self) -> None:
        db = read_database(self.fs)
        if db is None:
            return
        self.managers.append("rpm")
        self.problems.extend(db.problems)
        distro = self._distro()
        assert self._files is not None
        # Headers come in installation order; a path in two packages (shared directories,
        # multilib twins) keeps the first claim, and what dpkg/apk registered stays.
        files: dict[str, Owner] = {}
        for h in reversed(db.headers):
            o = Owner("rpm", h.name, h.evr, h.arch, h.source_name, distro)
            files.update(dict.fromkeys(h.files, o))
        files.update(self._files)
        self._files = files

    def _load_conda(self) -> None:
        # conda environments keep conda-meta/ at their prefix; look at the root's top.
        meta = "/conda-meta"
        try:
            rmeta = self.fs.resolve(meta)
        except SymlinkLoop:
            rmeta = None
        if rmeta is None:
            return
        self.managers.append("conda")
        assert self._files is not None
        for entry in sorted(self.fs.listdir(rmeta)):
            if not entry.endswith(".json"):
                continue
            text = _read(self.fs, f"{rmeta}/{entry}")
            try:
                doc = json.loads(text or "")
            except (ValueError, RecursionError):
                self.problems.append(f"{meta}/{entry}: not valid JSON")
                continue
            if not isinstance(doc, dict):
                continue
            o = Owner("conda", str(doc.get("name")), str(doc.get("version")),
                      str(doc.get("subdir") or "") or None, None, None)
            for f in doc.get("files", []) or []:
                if isinstance(f, str):
                    self._files.setdefault("/" + f.lstrip("/"), o)
