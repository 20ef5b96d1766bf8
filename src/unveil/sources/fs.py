"""Virtual file trees: the target system as the loader sees it.

A :class:`FileSystem` answers for absolute POSIX paths *in the target's namespace*: ``/`` is
the ``--root`` directory for a :class:`HostFS`, and a wheel is mounted, as if installed, under
a virtual prefix by :class:`ZipFS` inside an :class:`OverlayFS`.  Symlinks are followed by
our own resolver (chroot semantics: an absolute link target stays inside the root), with
the kernel's limit of 40 links, so a loop is a value and never a hang.  Directory listings
are read once and cached: the loader asks about thousands of candidate paths, almost all
in a handful of directories.
"""

from __future__ import annotations

import enum
import mmap
import os
import posixpath
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from unveil.errors import SourceError
from unveil.formats.blob import Blob, BytesBlob
from unveil.model import Location
from unveil.sources.zipread import Member, ZipArchive

__all__ = ["FileSystem", "HostFS", "Kind", "OverlayFS", "SymlinkLoop", "ZipFS", "ZipLimits"]

MAX_SYMLINKS = 40


class Kind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    OTHER = "other"


class SymlinkLoop(SourceError):
    """More than 40 symbolic links while resolving a path (the kernel's ELOOP)."""


class FileSystem(ABC):
    """A read-only tree addressed by absolute POSIX paths."""

    def random_access(self) -> bool:
        """Whether any file can be opened and read anywhere cheaply (memory maps of files on
        disk), so that another process may read it again instead of being sent its bytes."""
        return False

    def __init__(self) -> None:
        self._resolved: dict[str, str | None] = {}

    @abstractmethod
    def listdir(self, path: str) -> Mapping[str, Kind]:
        """Entries of the directory at ``path`` (symlink-free), empty if there is none."""

    @abstractmethod
    def readlink(self, path: str) -> str: ...

    @abstractmethod
    def open_blob(self, path: str) -> Blob:
        """The bytes of the regular file at the symlink-free ``path``."""

    @abstractmethod
    def describe(self, path: str) -> Location:
        """Where the file at ``path`` really is, for reports."""

    def head(self, path: str, n: int) -> bytes:
        """The first ``n`` bytes of the regular file at ``path`` (cheap: no mapping)."""
        blob = self.open_blob(path)
        try:
            return blob.read(0, min(n, blob.size))
        finally:
            blob.close()

    def read_file(self, path: str, limit: int) -> bytes:
        """The first ``limit`` bytes of the regular file at ``path``: all of a small file
        (package databases, metadata) without mapping it."""
        blob = self.open_blob(path)
        try:
            return blob.read(0, min(limit, blob.size))
        finally:
            blob.close()

    def chunks(self, path: str, size: int = 1 << 20) -> Iterator[bytes]:
        """The bytes of the regular file at ``path``, in pieces (hashing a whole file)."""
        blob = self.open_blob(path)
        try:
            yield from blob.pieces(size)
        finally:
            blob.close()

    def entry(self, directory: str, name: str) -> Kind | None:
        return self.listdir(directory).get(name)

    def file_id(self, path: str) -> tuple[int, int] | None:
        """(device, inode) of the file at the symlink-free ``path``, where the tree has
        them (ld.so tells two names of one file apart by these: a hard link is the same
        object); None for archive members and unreadable files."""
        return None

    def size_hint(self, path: str) -> int:
        """The file's size when cheaply known (used to schedule work), else 0."""
        return 0

    def resolve(self, path: str) -> str | None:
        """The symlink-free absolute path ``path`` names, or ``None`` if it does not exist.

        Raises :class:`SymlinkLoop` after :data:`MAX_SYMLINKS` links.
        """
        if path in self._resolved:
            return self._resolved[path]
        parts = [p for p in path.split("/") if p not in ("", ".")]
        parts.reverse()
        current = "/"
        links = 0
        result: str | None = current
        while parts:
            comp = parts.pop()
            if comp == "..":
                current = posixpath.dirname(current)
                continue
            kind = self.entry(current, comp)
            candidate = current.rstrip("/") + "/" + comp
            if kind is None:
                result = None
                break
            if kind is Kind.SYMLINK:
                links += 1
                if links > MAX_SYMLINKS:
                    raise SymlinkLoop(f"too many levels of symbolic links: {path}")
                target = self.readlink(candidate)
                if target.startswith("/"):
                    current = "/"
                parts.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
                continue
            if parts and kind is not Kind.DIR:
                result = None
                break
            current = candidate
        else:
            result = current
        self._resolved[path] = result
        return result

    def kind(self, path: str) -> Kind | None:
        """Kind of what ``path`` names after following symlinks."""
        real = self.resolve(path)
        if real is None:
            return None
        if real == "/":
            return Kind.DIR
        parent, name = posixpath.split(real)
        return self.entry(parent, name)

    def walk_files(self, top: str) -> Iterator[str]:
        """Every regular file below ``top`` (symlinks are not followed: no loops)."""
        stack = [top]
        while stack:
            d = stack.pop()
            entries = self.listdir(d)
            for name in sorted(entries, reverse=True):
                p = d.rstrip("/") + "/" + name
                k = entries[name]
                if k is Kind.DIR:
                    stack.append(p)
                elif k is Kind.FILE:
                    yield p


class HostFS(FileSystem):
    """A directory of this machine seen as the target's ``/`` (``root="/"`` is the host)."""

    def random_access(self) -> bool:
        return True

    def __init__(self, root: str = "/") -> None:
        super().__init__()
        self.root = os.path.abspath(root)
        self._prefix = "" if self.root == "/" else self.root
        self._lists: dict[str, dict[str, Kind]] = {}
        self.errors: list[tuple[str, str]] = []

    def host_path(self, path: str) -> str:
        return self._prefix + path

    def target_path(self, host_path: str) -> str | None:
        """The target path of a host path, or ``None`` if it lies outside the root."""
        hp = os.path.abspath(host_path)
        if not self._prefix:
            return hp
        if hp == self._prefix:
            return "/"
        if hp.startswith(self._prefix + "/"):
            return hp[len(self._prefix):]
        return None

    def listdir(self, path: str) -> Mapping[str, Kind]:
        cached = self._lists.get(path)
        if cached is not None:
            return cached
        out: dict[str, Kind] = {}
        try:
            with os.scandir(self.host_path(path)) as it:
                for e in it:
                    try:
                        if e.is_symlink():
                            k = Kind.SYMLINK
                        elif e.is_dir(follow_symlinks=False):
                            k = Kind.DIR
                        elif e.is_file(follow_symlinks=False):
                            k = Kind.FILE
                        else:
                            k = Kind.OTHER
                    except OSError:
                        k = Kind.OTHER
                    out[e.name] = k
        except (NotADirectoryError, FileNotFoundError):
            pass
        except OSError as e:
            self.errors.append((path, f"cannot list directory: {e.strerror or e}"))
        self._lists[path] = out
        return out

    def readlink(self, path: str) -> str:
        try:
            return os.readlink(self.host_path(path))
        except OSError as e:
            raise SourceError(f"cannot read link {path}: {e.strerror}") from e

    def file_id(self, path: str) -> tuple[int, int] | None:
        try:
            st = os.stat(self.host_path(path))
        except (OSError, ValueError):
            return None
        return st.st_dev, st.st_ino

    def _open_regular(self, path: str) -> tuple[int, os.stat_result]:
        """Open without blocking (a FIFO would block ``open``) and only regular files."""
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.host_path(path), flags)
        except OSError as e:
            raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
        try:
            st = os.fstat(fd)
        except OSError as e:
            os.close(fd)
            raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise SourceError(f"{path} is not a regular file")
        return fd, st

    def open_blob(self, path: str) -> Blob:
        fd, st = self._open_regular(path)
        try:
            if st.st_size == 0:
                return BytesBlob(b"")
            return BytesBlob(mmap.mmap(fd, 0, access=mmap.ACCESS_READ))
        except (OSError, ValueError) as e:
            raise SourceError(f"cannot map {path}: {e}") from e
        finally:
            os.close(fd)

    def describe(self, path: str) -> Location:
        return Location(self.host_path(path))

    def chunks(self, path: str, size: int = 1 << 20) -> Iterator[bytes]:
        # Plain reads, not a map: a whole file mapped stays resident (an 8 GiB file: 8 GiB
        # of RSS), and a file truncated meanwhile would kill the process with SIGBUS.
        fd, _st = self._open_regular(path)
        try:
            while True:
                piece = os.read(fd, size)
                if not piece:
                    return
                yield piece
        except OSError as e:
            raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
        finally:
            os.close(fd)

    def read_file(self, path: str, limit: int) -> bytes:
        # Plain reads: mapping and unmapping ~900 dpkg lists cost more than reading them.
        fd, st = self._open_regular(path)
        try:
            want = min(st.st_size, limit)
            parts: list[bytes] = []
            got = 0
            while got < want:
                piece = os.read(fd, want - got)
                if not piece:
                    break
                parts.append(piece)
                got += len(piece)
            return b"".join(parts)
        except OSError as e:
            raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
        finally:
            os.close(fd)

    def head(self, path: str, n: int) -> bytes:
        fd, _st = self._open_regular(path)
        try:
            return os.read(fd, n)
        except OSError as e:
            raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
        finally:
            os.close(fd)


#: Maps a zip member name to its target path, or ``None`` to leave it out.
PlaceFn = Callable[[str], "str | None"]


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """Bounds that make zip bombs a located problem instead of a memory blow-up."""

    max_member_size: int = 8 * 1024**3
    max_ratio: int = 1000


def _overlapping(members: list[Member], archive_size: int) -> set[int]:
    """Members whose data starts inside an earlier member's (by local header offset): a
    zip whose central directory points several entries at one compressed stream inflates
    it once per entry.  The first of each overlapping run is kept; a member that claims
    more data than the archive holds is broken itself (its read fails) and hides none."""
    out: set[int] = set()
    end = -1
    for m in sorted(members, key=lambda m: m.header_offset):
        if m.header_offset < end:
            out.add(id(m))
            continue
        # the local header's name and extra fields are not counted: a lower bound of the
        # end, so that only a certain overlap is reported
        claimed = m.header_offset + 30 + m.compress_size
        if claimed <= archive_size:
            end = claimed
    return out


class ZipFS(FileSystem):
    """The members of a zip archive, mapped to absolute paths by ``place``.

    ``place(member)`` returns the target path of a member or ``None`` to leave it out; the
    archive is read in place (nothing is extracted).  Unsafe member names (absolute, with
    ``..``) are left out and reported in ``problems``.  Members are regular files, as an
    installer would write them (pip does not create symlinks from wheels).  CRCs are not
    verified: only the ranges a parser needs are inflated.
    """

    def __init__(self, archive: str, place: PlaceFn, limits: ZipLimits | None = None) -> None:
        super().__init__()
        self.archive = archive
        self._zip = ZipArchive(archive)
        self.problems: list[tuple[str, str]] = []
        self.limits = limits or ZipLimits()
        self._files: dict[str, Member] = {}
        self._dirs: dict[str, dict[str, Kind]] = {"/": {}}
        overlapping = _overlapping(self._zip.members, self._zip.size)
        for info in self._zip.members:
            name = info.name
            if name.endswith("/"):
                continue
            if id(info) in overlapping:
                self.problems.append((name, "member data overlaps another member's (a zip "
                                            "bomb technique): left out"))
                continue
            parts = name.split("/")
            if name.startswith("/") or "\\" in name or ".." in parts or "" in parts:
                self.problems.append((name, "member with an unsafe path left out"))
                continue
            target = place(name)
            if target is None:
                continue
            if target in self._files:
                self.problems.append((name, "member name appears twice (or two undecodable "
                                            "names decode alike): the last one is used"))
            self._files[target] = info
            self._add(target, Kind.FILE)

    def _add(self, path: str, kind: Kind) -> None:
        # Iterative: a member path may be thousands of directories deep.
        while path != "/":
            cut = path.rfind("/")
            parent, name = (path[:cut] if cut > 0 else "/"), path[cut + 1:]
            known = parent in self._dirs
            if not known:
                self._dirs[parent] = {}
            self._dirs[parent].setdefault(name, kind)
            if known:
                return
            path, kind = parent, Kind.DIR

    def member(self, path: str) -> Member | None:
        return self._files.get(path)

    @property
    def file_paths(self) -> list[str]:
        return sorted(self._files)

    def listdir(self, path: str) -> Mapping[str, Kind]:
        return self._dirs.get(path, {})

    def readlink(self, path: str) -> str:
        raise SourceError(f"{path} is not a symbolic link")

    def _checked(self, path: str) -> Member:
        info = self._files.get(path)
        if info is None:
            raise SourceError(f"{path} is not in {self.archive}")
        lim = self.limits
        if info.file_size > lim.max_member_size:
            raise SourceError(f"member {info.name} declares {info.file_size} bytes")
        if info.file_size > 1024**2 and info.file_size > lim.max_ratio * max(info.compress_size, 1):
            raise SourceError(
                f"member {info.name} expands {info.file_size // max(info.compress_size, 1)}x:"
                " refusing a likely zip bomb"
            )
        return info

    def head(self, path: str, n: int) -> bytes:
        return self._zip.head(self._checked(path), n)

    def size_hint(self, path: str) -> int:
        info = self._files.get(path)
        return info.file_size if info else 0

    def open_blob(self, path: str) -> Blob:
        return self._zip.blob(self._checked(path))

    def describe(self, path: str) -> Location:
        info = self._files.get(path)
        return Location(info.name if info else path, container=self.archive)

    def close(self) -> None:
        self._zip.close()


class OverlayFS(FileSystem):
    """``base`` with other trees mounted over it at path prefixes (longest prefix wins).

    A mount listed in ``installed`` is also seen where its files would be installed, at
    ``/`` (a Debian package's ``/usr/lib/...``): in the base's directories its entries are
    links to where it is mounted, so the loader searching an absolute RUNPATH or a default
    directory finds the package's own file there, under the name searched, as it would
    once the package is installed.  A file of the package replaces the base's; a directory
    of both is merged; a directory the base has as a symlink (merged ``/usr``'s ``/lib``)
    stays the base's (dpkg follows it; the package's files under it are not seen there)."""

    def __init__(self, base: FileSystem, mounts: Mapping[str, FileSystem],
                 installed: Sequence[str] = ()) -> None:
        super().__init__()
        self.base = base
        self.mounts = dict(sorted(mounts.items(), key=lambda kv: -len(kv[0])))
        self.installed = tuple(installed)
        self._union: dict[str, dict[str, Kind]] = {}
        #: base path -> where the installed package's entry of that name is mounted
        self._links: dict[str, str] = {}
        self._synthetic: dict[str, dict[str, Kind]] = {}
        for prefix in self.mounts:
            p = prefix
            while p != "/":
                parent, name = posixpath.split(p)
                self._synthetic.setdefault(parent, {})[name] = Kind.DIR
                p = parent

    def random_access(self) -> bool:
        return self.base.random_access() and all(m.random_access() for m in self.mounts.values())

    def _fs(self, path: str) -> FileSystem:
        for prefix, fs in self.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                return fs
        return self.base

    def listdir(self, path: str) -> Mapping[str, Kind]:
        fs = self._fs(path)
        listing = fs.listdir(path)
        if fs is not self.base:
            return listing
        extra = self._synthetic.get(path)
        if extra:
            merged = dict(listing)
            merged.update(extra)
            listing = merged
        if self.installed:
            listing = self._installed_listing(path, listing)
        return listing

    def _installed_listing(self, path: str, listing: Mapping[str, Kind]) -> Mapping[str, Kind]:
        got = self._union.get(path)
        if got is not None:
            return got
        merged = dict(listing)
        for at in self.installed:
            inside = at if path == "/" else at + path
            for name, kind in self._fs(inside).listdir(inside).items():
                mine = merged.get(name)
                if mine is Kind.DIR or (mine is Kind.SYMLINK and kind is Kind.DIR):
                    continue  # merged deeper; or a directory symlink dpkg follows
                merged[name] = Kind.SYMLINK
                entry = inside.rstrip("/") + "/" + name
                if kind is Kind.SYMLINK:
                    # the package's own link, read where it is installed: its target (a
                    # file of the root's, libdep.so.1 -> libdep.so.1.0) is looked up there
                    try:
                        entry = self._fs(entry).readlink(entry)
                    except SourceError:
                        pass
                    else:
                        if entry.startswith(at + "/"):
                            entry = entry[len(at):]
                self._links[(path.rstrip("/") or "") + "/" + name] = entry
        self._union[path] = merged
        return merged

    def readlink(self, path: str) -> str:
        if self.installed and self._fs(path) is self.base:
            self.listdir(posixpath.dirname(path) or "/")
            target = self._links.get(path)
            if target is not None:
                return target
        return self._fs(path).readlink(path)

    def open_blob(self, path: str) -> Blob:
        return self._fs(path).open_blob(path)

    def describe(self, path: str) -> Location:
        return self._fs(path).describe(path)

    def head(self, path: str, n: int) -> bytes:
        return self._fs(path).head(path, n)

    def read_file(self, path: str, limit: int) -> bytes:
        return self._fs(path).read_file(path, limit)

    def size_hint(self, path: str) -> int:
        return self._fs(path).size_hint(path)

    def file_id(self, path: str) -> tuple[int, int] | None:
        return self._fs(path).file_id(path)

    def owner(self, path: str) -> FileSystem:
        return self._fs(path)
