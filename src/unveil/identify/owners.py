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
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from unveil.errors import UnveilError
from unveil.identify.debian import debian_packages
from unveil.identify.rpmdb import read_database
from unveil.sources.fs import FileSystem, Kind, SymlinkLoop

__all__ = ["Owner", "PackageIndex"]

MAX_DB = 256 << 20
DPKG_INFO = "/var/lib/dpkg/info"


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
    """dpkg's per-package file lists, read and searched when asked rather than indexed
    up front.

    A wheel or environment scan asks who owns a handful of system libraries.  Reading all
    of a small Debian's ~900 ``info/*.list`` files (8 MB) took 30-40 ms and searching them
    for a directory 25 ms more, more than the rest of identifying a small wheel.  So a
    library's owner is first looked for in the lists of the packages the Debian index
    (:mod:`unveil.identify.debian`) says ship its name, only those read; when none of them
    lists the path (another distribution, a renamed package, a file no package owns),
    every list is read.  Then the first question about a directory indexes that
    directory's entries only (one ``find`` pass); after :data:`INDEX_AFTER` directories
    (a whole root being scanned) every line is indexed after all.
    """

    INDEX_AFTER = 24

    def __init__(self, read_list: Callable[[str], bytes | None],
                 list_names: Callable[[], list[str]], status: bytes, distro: str | None, *,
                 problems: list[str],
                 read_diversions: Callable[[], bytes | None] = lambda: None) -> None:
        #: list name -> its bytes, or None when it is absent or cannot be read
        self._read_list = read_list
        self._list_names = list_names
        self._read_diversions = read_diversions
        self._diversions: frozenset[str] | None = None
        #: the list names (``<package>[:<arch>]``) in dpkg's name order, once listed
        self._names: list[str] = []
        self._read: dict[str, bytes | None] = {}
        #: every list, one after another (once read), and where each starts
        self._all: bytes | None = None
        self._starts: list[int] = []
        self._status = b"\n" + status
        self._distro = distro
        self._problems = problems
        self._owners: dict[str, Owner | None] = {}
        #: package name -> where its Package lines are in ``status``: asked name by name,
        #: then (after :data:`LINES_AFTER` names) all at once
        self._lines: dict[str, list[tuple[int, int]]] = {}
        self._all_lines = False
        #: directory -> entry name -> the lists naming it, in list order
        self._dirs: dict[bytes, dict[bytes, list[int]]] = {}
        self._index: dict[str, Owner] | None = None

    LINES_AFTER = 32

    def _list(self, entry: str) -> bytes | None:
        if entry not in self._read:
            self._read[entry] = self._read_list(entry)
        return self._read[entry]

    def likely_owner(self, spellings: list[str]) -> tuple[int, Owner] | None:
        """The first of ``spellings`` (one file's names) that a package Debian ships a file
        of that name in lists, and that package, reading only those packages' lists; None
        when none of them lists any spelling (which :meth:`owner` settles).

        Read every list, a path two installed packages list goes to the one whose list
        sorts first; here only the likely packages' lists are read, so a diverted path
        (``dpkg-divert``: the one way dpkg lets two packages ship a file) is left to
        :meth:`owner`.  One limit remains: a package outside the likely ones that lists an
        earlier spelling (merged-/usr aliasing) is not seen."""
        if self._all is not None or not spellings:
            return None
        lines = []
        for path in spellings:
            if not path.startswith("/") or "\n" in path or path in self._diverted():
                return None
            try:
                lines.append(b"\n" + path.encode("utf-8", "surrogateescape") + b"\n")
            except UnicodeEncodeError:
                return None
        entries: set[str] = set()
        for pkg in debian_packages(spellings[0].rpartition("/")[2]):
            # "<name>:<arch>.list" for a Multi-Arch: same package, else "<name>.list"
            archs = {o.arch for o in self._stanza_owners(pkg) if o.arch}
            entries.update(f"{pkg}:{arch}" for arch in archs)
            entries.add(pkg)
        ordered = sorted(entries, key=lambda e: e + ".list")  # dpkg's list-file order
        texts = [(e, b"\n" + t + b"\n") for e in ordered if (t := self._list(e)) is not None]
        for k, line in enumerate(lines):
            for entry, text in texts:
                if line in text:
                    found = self._package_of(entry)
                    if found is not None:
                        return k, found
        return None

    def _diverted(self) -> frozenset[str]:
        """Every path ``dpkg-divert`` moved, from or to (``info/../diversions``: the
        original path, the new path and the diverting package, a line each)."""
        if self._diversions is None:
            raw = self._read_diversions() or b""
            lines = raw.decode("utf-8", "surrogateescape").split("\n")
            self._diversions = frozenset(
                line for i, line in enumerate(lines) if i % 3 != 2 and line.startswith("/"))
        return self._diversions

    def _text(self) -> bytes:
        if self._all is None:
            self._names = self._list_names()
            parts = [b"\n"]
            at = 1
            for entry in self._names:
                text = self._list(entry)
                if text is None:  # a removed package's leftover list is no loss
                    if self._installed(entry):
                        self._problems.append(f"{DPKG_INFO}/{entry}.list: unreadable")
                    text = b""
                if text and not text.endswith(b"\n"):
                    text += b"\n"
                self._starts.append(at)
                parts.append(text)
                at += len(text)
            self._all = b"".join(parts)
            self._read.clear()
        return self._all

    def _installed(self, entry: str) -> bool:
        return bool(self._stanza_owners(entry.partition(":")[0]))

    def _stanzas(self, name: str) -> list[str]:
        if not self._all_lines and name not in self._lines:
            if len(self._lines) < self.LINES_AFTER:
                self._lines[name] = _package_lines(self._status, name).get(name, [])
            else:
                self._lines = _package_lines(self._status)
                self._all_lines = True
        return _stanzas_at(self._status, self._lines.get(name, ()))

    def _stanza_owners(self, name: str) -> list[Owner]:
        """The installed stanzas of package ``name``, in file order."""
        return [o for o in (_dpkg_owner(st, self._distro) for st in self._stanzas(name)) if o]

    def owner(self, path: str) -> Owner | None:
        """The installed package whose list comes first (in list-name order) among those
        listing ``path`` exactly."""
        if not path.startswith("/") or "\n" in path:
            return None
        self._text()
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
            text = self._text()
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
        return self._package_of(self._names[i])

    def _package_of(self, entry: str) -> Owner | None:
        """The installed package whose list is ``entry``, from its stanza in ``status``
        (as dpkg's own reading would have it: the last installed stanza of that name, of the
        list's architecture when the list name has one)."""
        if entry not in self._owners:
            name, _, arch = entry.partition(":")  # multi-arch lists are "<name>:<arch>.list"
            installed = self._stanza_owners(name)
            same_arch = [o for o in installed if arch and o.arch == arch]
            best = same_arch or installed
            self._owners[entry] = best[-1] if best else None
        return self._owners[entry]

    def _build_index(self) -> dict[str, Owner]:
        # A path listed by two packages (shared directories, diversions) keeps the first
        # package's claim: fill in reverse so earlier lists overwrite later ones.  dict
        # updates run in C: ~4x faster than a setdefault per line.
        files: dict[str, Owner] = {}
        everything = self._text()
        ends = [*self._starts[1:], len(everything)]
        for i in reversed(range(len(self._names))):
            owner = self._package(i)
            if owner is not None:
                text = everything[self._starts[i]:ends[i]].decode("utf-8", "surrogateescape")
                files.update(dict.fromkeys(text.split("\n"), owner))
        files.pop("", None)
        return files


_BLANK_LINE = re.compile(rb"\n[ \t\r]*(?:\n|$)")


#: (``status`` is read with a newline put before it; a literal first lets ``re`` skip ahead
#: to each "\nPackage:" where ``^`` would make it try every position: 16 ms -> 1 ms)
_PACKAGE_LINE = re.compile(rb"\nPackage:[ \t]*([^\s]+)[ \t]*\r?(?=\n|$)")


def _package_lines(status: bytes, name: str | None = None) -> dict[str, list[tuple[int, int]]]:
    """Package name -> the (start, end) of each of its Package lines in ``status`` (only
    those of ``name`` when given: one pass of a regex that looks for it alone)."""
    regex = _PACKAGE_LINE if name is None else re.compile(
        rb"\nPackage:[ \t]*(" + re.escape(name.encode("utf-8", "surrogateescape"))
        + rb")[ \t]*\r?(?=\n|$)")
    out: dict[str, list[tuple[int, int]]] = {}
    for m in regex.finditer(status):
        found = m.group(1).decode("utf-8", "surrogateescape")
        out.setdefault(found, []).append((m.start() + 1, m.end()))
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
        spellings = self._spellings(path)
        if self._dpkg is not None:
            with self._lock:
                likely = self._dpkg.likely_owner(spellings)
            # as below: an earlier spelling another database lists comes first
            if likely is not None and not any(p in self._files for p in spellings[:likely[0]]):
                self._answers[path] = likely[1]
                return likely[1]
        for p in spellings:
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
        try:
            rinfo = self.fs.resolve(DPKG_INFO)
        except SymlinkLoop:
            rinfo = None

        def list_names() -> list[str]:
            if rinfo is None:
                return []
            return [entry[:-5] for entry, kind in sorted(self.fs.listdir(rinfo).items())
                    if kind is Kind.FILE and entry.endswith(".list")]

        def read_list(name: str) -> bytes | None:
            if rinfo is None or "/" in name:
                return None
            path = f"{rinfo}/{name}.list"
            try:  # only a regular file of the directory, as dpkg writes them: not a link
                if self.fs.entry(rinfo, f"{name}.list") is not Kind.FILE:
                    return None
                return self.fs.read_file(path, MAX_DB)
            except (UnveilError, OSError):
                return None

        self._dpkg = _DpkgLists(
            read_list, list_names, status, self._distro(), problems=self.problems,
            read_diversions=lambda: _read_bytes(self.fs, "/var/lib/dpkg/diversions"))

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
