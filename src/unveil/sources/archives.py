"""Tar and ar archives as read-only trees, read in one streaming pass and never written out.

Compressed tar streams (gzip, bzip2, xz, zstd) cannot be read at random, so a :class:`TarFS`
reads its archive once, front to back, and keeps in memory only what a scan needs: the whole
bytes of members whose first bytes are ELF, Mach-O or PE, the bytes of the few members whose
names matter to an ecosystem (``package.json``, ``*.gemspec``, ``control``...), and the name,
kind and first bytes of everything else.  Symbolic links and hard links become link entries,
resolved by :class:`~unveil.sources.fs.FileSystem` (so a loop is a value, never a hang).

Headers are parsed here rather than by :mod:`tarfile`: its stream mode keeps every member
header for the archive's lifetime and reads a pax or GNU long-name header whole, whatever
size it declares.  Here every count and size is checked against :class:`ArchiveLimits`: a
member count, the bytes kept in memory, one member's size, and the bytes decompressed in
all (against the compressed bytes read, so a bomb stops early).  Going over a limit is a
located problem and the rest of the archive is left out; memory never grows past the limits.

``ar`` archives (Debian packages) are read by :func:`iter_ar`, whose members can be tar
streams themselves: nesting works on streams, so a ``.deb`` is also read in one pass.
"""

from __future__ import annotations

import bz2
import gzip
import importlib
import io
import lzma
import posixpath
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from unveil.errors import FormatError, SourceError
from unveil.formats import is_binary
from unveil.formats.blob import Blob, BytesBlob
from unveil.model import Location, Problem, ProblemKind
from unveil.sources.fs import FileSystem, Kind

__all__ = [
    "ArchiveLimits",
    "BlobReader",
    "Budget",
    "KeepFn",
    "MountedFS",
    "Readable",
    "StreamMember",
    "TarFS",
    "decompress",
    "clean_name",
    "counted",
    "ecosystem_keep",
    "iter_ar",
    "iter_tar",
    "open_counted",
]

#: Bytes of each regular member always kept, enough for magic-byte checks.
HEAD = 16
_BLOCK = 512
_CHUNK = 1 << 20
#: pax and GNU long-name headers larger than this are skipped (real ones are < 1 KiB).
_MAX_EXT_HEADER = 1 << 20


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Bounds that make tar and zip bombs a located problem instead of a memory blow-up."""

    #: headers read, over the whole archive and the archives nested in it.
    max_members: int = 500_000
    #: the largest member kept in memory; larger binaries are listed but not read.
    max_member_size: int = 1 << 30
    #: bytes kept in memory in all.
    max_kept_bytes: int = 3 << 30
    #: bytes decompressed in all (a bomb costs time even when nothing is kept).
    max_stream_bytes: int = 64 << 30
    #: decompressed bytes per compressed byte read, checked past ``ratio_floor``.
    max_ratio: int = 1000
    ratio_floor: int = 64 << 20
    #: ``.js``/``.py``/``.rb`` sources: the first this many bytes are kept (the scan's
    #: dynamic-load detectors read no more of a file).
    max_source_size: int = 8 << 20
    #: metadata files (``package.json``, ``control``, ``index.json``...) up to this size.
    max_meta_size: int = 32 << 20


class _Stop(SourceError):
    """A limit was reached: the rest of the archive is left out."""


class Budget:
    """Counters shared by an archive and every archive nested in it."""

    def __init__(self, limits: ArchiveLimits | None = None) -> None:
        self.limits = limits or ArchiveLimits()
        self.members = 0
        self.kept = 0
        self.streamed = 0
        self.disk = 0
        self.stopped: str | None = None

    def stream(self, n: int) -> None:
        self.streamed += n
        lim = self.limits
        if self.streamed > lim.max_stream_bytes:
            self._stop(f"archive expands past {lim.max_stream_bytes} bytes; the rest is left out")
        if (self.streamed > lim.ratio_floor and self.disk
                and self.streamed > lim.max_ratio * self.disk):
            self._stop(f"archive expands {self.streamed // self.disk}x: refusing a likely "
                       "archive bomb; the rest is left out")

    def member(self) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            self._stop(f"more than {self.limits.max_members} members; the rest is left out")

    def _stop(self, why: str) -> None:
        self.stopped = why
        raise _Stop(why)


#: Decides, for a member that is not a binary, whether to keep its bytes: ``(name, size)``
#: with ``name`` the member's cleaned path inside the archive.
KeepFn = Callable[[str, int], bool]
#: Maps a cleaned member name to its path in the tree, or ``None`` to leave it out.
PlaceFn = Callable[[str], "str | None"]

_META_NAMES = frozenset({
    "package.json", "package-lock.json", "npm-shrinkwrap.json", ".package-lock.json",
    "binding.gyp", "versions.json", "control", "shlibs", "symbols", "md5sums", "index.json",
    "paths.json", "files", "about.json", "run_exports.json", "metadata", "metadata.gz",
    "MANIFEST.MF", "pom.properties", "METADATA", "RECORD", "WHEEL",
})
_META_SUFFIXES = (".gemspec", ".pc")
_SOURCE_SUFFIXES = (".js", ".cjs", ".mjs", ".py", ".rb")


def ecosystem_keep(limits: ArchiveLimits) -> KeepFn:
    """Keep metadata files and scripting-language sources, within their size caps."""

    def keep(name: str, size: int) -> bool:
        base = posixpath.basename(name)
        if base in _META_NAMES or base.endswith(_META_SUFFIXES):
            return size <= limits.max_meta_size
        return base.endswith(_SOURCE_SUFFIXES) and size <= limits.max_source_size

    return keep


def _is_source(name: str) -> bool:
    return name.endswith(_SOURCE_SUFFIXES)


# ----------------------------------------------------------------------------- streams


class Readable(Protocol):
    """Anything with ``read(n)``: a file, a decompressor, an archive member."""

    def read(self, size: int = -1, /) -> bytes: ...


_DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, ValueError, zlib.error,
                                                   lzma.LZMAError, FormatError)


def _zstd_errors() -> tuple[type[BaseException], ...]:
    try:
        mod: Any = importlib.import_module("zstandard")
    except ImportError:
        return ()
    return (mod.ZstdError,)


_DECODE_ERRORS += _zstd_errors()


class _Raw(io.RawIOBase):
    """A raw stream over anything readable; its bytes count as read from disk (for the
    expansion ratio) when a budget is given."""

    def __init__(self, inner: Readable, budget: Budget | None = None, *,
                 owned: io.RawIOBase | None = None) -> None:
        self._inner = inner
        self._budget = budget
        self._owned = owned

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._inner.read(len(b))
        n = len(data)
        b[:n] = data
        if self._budget is not None:
            self._budget.disk += n
        return n


def counted(stream: Readable, budget: Budget) -> io.BufferedReader:
    """``stream`` with its bytes counted as read from disk (the base of the ratio check)."""
    return io.BufferedReader(_Raw(stream, budget), 1 << 16)


def open_counted(path: str, budget: Budget) -> io.BufferedReader:
    """Open a file on disk for one sequential pass, its bytes counted in ``budget``."""
    try:
        raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
    return io.BufferedReader(_Raw(raw, budget, owned=raw), 1 << 16)


def _peekable(stream: Readable) -> io.BufferedReader:
    if isinstance(stream, io.BufferedReader):
        return stream
    if isinstance(stream, io.RawIOBase):
        return io.BufferedReader(stream, 1 << 16)
    return io.BufferedReader(_Raw(stream), 1 << 16)


def decompress(stream: Readable, where: str) -> Readable:
    """A stream of the decompressed bytes, the compression told by its magic bytes."""
    buf = _peekable(stream)
    try:
        magic = buf.peek(6)[:6]
    except _DECODE_ERRORS as e:
        raise SourceError(f"{where}: cannot read: {e}") from e
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=buf, mode="rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(buf)
    if magic.startswith(b"\xfd7zXZ\x00") or magic.startswith(b"\x5d\x00\x00"):
        return lzma.LZMAFile(buf)
    if magic.startswith(b"\x28\xb5\x2f\xfd"):
        try:
            zstd: Any = importlib.import_module("zstandard")
        except ImportError as e:
            raise SourceError(f"{where} is zstd-compressed: reading it needs the 'zstandard' "
                              "package (pip install zstandard)") from e
        reader: Readable = zstd.ZstdDecompressor().stream_reader(
            buf, read_across_frames=True, closefd=False)
        return reader
    return buf


class BlobReader:
    """Sequential reads over a :class:`Blob` (a zip member holding a tar stream)."""

    def __init__(self, blob: Blob) -> None:
        self._blob = blob
        self._pos = 0

    def read(self, size: int = -1, /) -> bytes:
        left = self._blob.size - self._pos
        n = left if size < 0 else min(size, left)
        if n <= 0:
            return b""
        data = self._blob.read(self._pos, n)
        self._pos += n
        return data


class _Reader:
    """Exact sequential reads from a (decompressing) stream, counted in the budget."""

    def __init__(self, stream: Readable, budget: Budget, where: str) -> None:
        self._s = stream
        self.budget = budget
        self.where = where
        self.pos = 0

    def read(self, n: int) -> bytes:
        """``n`` bytes, or fewer at the end of the stream."""
        pieces: list[bytes] = []
        got = 0
        while got < n:
            try:
                data = self._s.read(min(n - got, _CHUNK))
            except _DECODE_ERRORS as e:
                raise SourceError(f"corrupt or truncated at byte {self.pos + got}: {e}") from e
            if not data:
                break
            pieces.append(data)
            got += len(data)
            self.budget.stream(len(data))
        self.pos += got
        return b"".join(pieces)

    def skip(self, n: int) -> int:
        done = 0
        while done < n:
            piece = self.read(min(n - done, _CHUNK))
            if not piece:
                break
            done += len(piece)
        return done


class StreamMember(io.RawIOBase):
    """One member of a tar or ar stream, readable until the iterator moves on.

    It is a raw stream, so a member that is itself an archive can be read by the same code
    (``decompress(io.BufferedReader(member))``) without holding it in memory.
    """

    def __init__(self, reader: _Reader, name: str, kind: Kind, size: int, *, linkname: str = "",
                 offset: int = 0) -> None:
        self._r = reader
        self.name = name
        self.kind = kind
        self.size = size
        self.linkname = linkname
        #: offset of the member's header in the (decompressed) stream.
        self.offset = offset
        self.remaining = size if kind is Kind.FILE else 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self.remaining)
        if n <= 0:
            return 0
        data = self._r.read(n)
        self.remaining -= len(data)
        b[:len(data)] = data
        return len(data)

    def take(self, n: int) -> bytes:
        data = self._r.read(min(n, self.remaining))
        self.remaining -= len(data)
        return data

    def stream(self) -> io.BufferedReader:
        """The member's bytes as a stream (for an archive nested in an archive)."""
        return io.BufferedReader(self, 1 << 16)


def _number(field: bytes) -> int:
    """A tar numeric field: octal text, or GNU base-256 when the high bit is set."""
    if field and field[0] & 0x80:
        n = field[0] & 0x3F
        for c in field[1:]:
            n = (n << 8) | c
        if field[0] & 0x40:
            raise SourceError("negative size")
        return n
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError as e:
        raise SourceError(f"bad number {text!r}") from e


def _checksum_ok(block: bytes) -> bool:
    try:
        stored = _number(block[148:156])
    except SourceError:
        return False
    hdr = block[:148] + b" " * 8 + block[156:]
    unsigned = sum(hdr)
    signed = sum(c - 256 if c > 127 else c for c in hdr)
    return stored in (unsigned, signed)


def _pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        sp = data.find(b" ", pos)
        if sp < 0:
            break
        try:
            length = int(data[pos:sp])
        except ValueError:
            break
        if length <= sp - pos or pos + length > len(data):
            break
        key, _, value = data[sp + 1:pos + length - 1].partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        pos += length
    return out


_KINDS = {b"0": Kind.FILE, b"\0": Kind.FILE, b"7": Kind.FILE, b"1": Kind.SYMLINK,
          b"2": Kind.SYMLINK, b"5": Kind.DIR, b"3": Kind.OTHER, b"4": Kind.OTHER,
          b"6": Kind.OTHER}


def iter_tar(stream: Readable, where: str, budget: Budget,
             problems: list[Problem]) -> Iterator[StreamMember]:
    """The members of an uncompressed tar stream, in order.

    A hard link is yielded with kind :attr:`Kind.SYMLINK` and ``linkname`` prefixed with
    ``"\\0"`` (its target is a member name, not a link text).  A damaged header ends the
    iteration with a problem; a stream that does not start with a tar header raises
    :class:`SourceError`.
    """
    r = _Reader(stream, budget, where)
    long_name: str | None = None
    long_link: str | None = None
    pax: dict[str, str] = {}
    first = True
    while True:
        offset = r.pos
        block = r.read(_BLOCK)
        if not block:
            if first:
                raise SourceError(f"{where}: empty archive")
            return
        if len(block) < _BLOCK:
            problems.append(Problem(where, "archive ends inside a header", ProblemKind.SOURCE,
                                    offset))
            return
        if block == bytes(_BLOCK):
            return
        if not _checksum_ok(block):
            if first:
                raise SourceError(f"{where}: not a tar archive")
            problems.append(Problem(where, "bad tar header checksum; the rest is left out",
                                    ProblemKind.SOURCE, offset))
            return
        first = False
        budget.member()
        flag = block[156:157]
        size = _number(block[124:136])
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                problems.append(Problem(where, "bad pax size", ProblemKind.SOURCE, offset))
                return
        padded = -(-size // _BLOCK) * _BLOCK
        if flag in (b"L", b"K", b"x", b"g"):
            if size > _MAX_EXT_HEADER:
                problems.append(Problem(where, f"extended header of {size} bytes skipped",
                                        ProblemKind.SOURCE, offset))
                r.skip(padded)
                continue
            data = r.read(padded)[:size]
            if flag == b"L":
                long_name = data.split(b"\0", 1)[0].decode("utf-8", "replace")
            elif flag == b"K":
                long_link = data.split(b"\0", 1)[0].decode("utf-8", "replace")
            elif flag == b"x":
                pax = _pax(data)
            continue
        name = block[0:100].split(b"\0", 1)[0].decode("utf-8", "replace")
        if block[257:263] == b"ustar\x00" and block[345] != 0:
            prefix = block[345:500].split(b"\0", 1)[0].decode("utf-8", "replace")
            name = f"{prefix}/{name}"
        linkname = block[157:257].split(b"\0", 1)[0].decode("utf-8", "replace")
        name = pax.get("path", long_name if long_name is not None else name)
        linkname = pax.get("linkpath", long_link if long_link is not None else linkname)
        sparse = flag == b"S" or any(k.startswith("GNU.sparse.") for k in pax)
        long_name = long_link = None
        pax = {}
        kind = _KINDS.get(flag, Kind.OTHER)
        if sparse:
            kind = Kind.OTHER
            problems.append(Problem(f"{where}!{name}", "sparse member not read",
                                    ProblemKind.UNSUPPORTED, offset))
        if flag == b"1":
            linkname = "\0" + linkname
        member = StreamMember(r, name, kind, size, linkname=linkname, offset=offset)
        if kind is not Kind.FILE:
            member.remaining = 0
        yield member
        # Whatever the consumer left of the data, and the padding.
        left = (member.remaining if kind is Kind.FILE else size) + (padded - size)
        if r.skip(left) < left:
            problems.append(Problem(f"{where}!{name}", "archive ends inside a member",
                                    ProblemKind.SOURCE, offset))
            return


def iter_ar(stream: Readable, where: str, budget: Budget) -> Iterator[StreamMember]:
    """The members of a Unix ``ar`` archive (``.deb``, static libraries), in order."""
    r = _Reader(_peekable(stream), budget, where)
    if r.read(8) != b"!<arch>\n":
        raise SourceError(f"{where}: not an ar archive")
    names: bytes = b""
    while True:
        offset = r.pos
        hdr = r.read(60)
        if not hdr:
            return
        if len(hdr) < 60 or hdr[58:60] != b"`\n":
            raise SourceError(f"{where}: bad ar member header at byte {offset}")
        budget.member()
        raw_name = hdr[0:16].decode("ascii", "replace").rstrip(" ")
        try:
            size = int(hdr[48:58].decode("ascii").strip() or "0")
        except ValueError as e:
            raise SourceError(f"{where}: bad ar member size at byte {offset}") from e
        pad = size & 1
        if raw_name.startswith("#1/"):  # BSD: the name precedes the data
            try:
                nlen = int(raw_name[3:])
            except ValueError as e:
                raise SourceError(f"{where}: bad BSD ar name at byte {offset}") from e
            if nlen > size or nlen > 4096:
                raise SourceError(f"{where}: bad BSD ar name at byte {offset}")
            name = r.read(nlen).split(b"\0", 1)[0].decode("utf-8", "replace")
            size -= nlen
        elif raw_name == "//":  # GNU long-name table
            if size > _MAX_EXT_HEADER:
                raise SourceError(f"{where}: ar name table of {size} bytes")
            names = r.read(size)
            r.skip(pad)
            continue
        elif raw_name.startswith("/") and raw_name[1:].isdigit() and names:
            start = int(raw_name[1:])
            end = names.find(b"/\n", start)
            name = names[start:end if end >= 0 else None].decode("utf-8", "replace")
        else:
            name = raw_name[:-1] if raw_name.endswith("/") and raw_name != "/" else raw_name
        member = StreamMember(r, name, Kind.FILE, size, offset=offset)
        yield member
        left = member.remaining + pad
        if r.skip(left) < left:
            raise SourceError(f"{where}: archive ends inside member {name}")


# -------------------------------------------------------------------------------- trees


def clean_name(name: str) -> str | None:
    """A member name as a relative path; ``None`` when it is absolute or climbs with ``..``.

    ``""`` is the archive's root (``"."`` or ``"./"``).
    """
    if name.startswith("/") or "\0" in name:
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts)


class TarFS(FileSystem):
    """The members of one tar archive (maybe compressed, maybe nested) as a tree.

    The tree's ``/`` is the archive's root (``./usr/lib/x`` is ``/usr/lib/x``); ``place``
    may move or leave out members.  Mount it elsewhere with :class:`MountedFS`.  Absolute
    symbolic link targets are read in the tree's namespace, as a chroot would (a mount keeps
    them inside); a hard link is a symbolic link to its target's absolute tree path.
    ``capture`` picks members whose bytes are wanted but that are not part of the tree
    (an ecosystem's metadata): they land in :attr:`captured`.
    """

    def __init__(self, archive: str, *, stream: Readable | None = None,
                 place: PlaceFn | None = None, keep: KeepFn | None = None,
                 capture: Callable[[str], bool] | None = None,
                 limits: ArchiveLimits | None = None, budget: Budget | None = None) -> None:
        super().__init__()
        self.archive = archive
        self.budget = budget or Budget(limits)
        self.limits = self.budget.limits
        self.problems: list[Problem] = []
        self.captured: dict[str, bytes] = {}
        self._place = place
        self._keep = keep or ecosystem_keep(self.limits)
        self._capture = capture
        self._dirs: dict[str, dict[str, Kind]] = {"/": {}}
        self._data: dict[str, bytes | bytearray] = {}
        self._heads: dict[str, bytes] = {}
        self._sizes: dict[str, int] = {}
        self._unkept: dict[str, str] = {}
        self._links: dict[str, str] = {}
        self._names: dict[str, str] = {}
        if stream is None:
            with open_counted(archive, self.budget) as f:
                self._read(f)
        else:
            self._read(stream)

    # -- building

    def _read(self, stream: Readable) -> None:
        try:
            inner = decompress(stream, self.archive)
            for m in iter_tar(inner, self.archive, self.budget, self.problems):
                self._member(m)
        except _Stop as e:
            if not any(p.message == str(e) for p in self.problems):
                self.problems.append(Problem(self.archive, str(e), ProblemKind.SOURCE))
        except SourceError as e:
            if not self._dirs["/"] and not self.captured:
                raise SourceError(f"{self.archive}: {e}" if self.archive not in str(e)
                                  else str(e)) from e
            self.problems.append(Problem(self.archive, f"{e}; the rest is left out",
                                         ProblemKind.SOURCE))

    def _problem(self, member: str, why: str, kind: ProblemKind = ProblemKind.SOURCE) -> None:
        self.problems.append(Problem(f"{self.archive}!{member}", why, kind))

    def _target(self, name: str) -> str | None:
        rel = clean_name(name)
        if rel is None:
            return None
        if self._place is not None:
            return self._place(rel)
        return "/" + rel if rel else "/"

    def _member(self, m: StreamMember) -> None:
        rel = clean_name(m.name)
        if rel is None:
            self._problem(m.name, "member with an unsafe path left out")
            return
        if not rel:
            return
        if self._capture is not None and m.kind is Kind.FILE and self._capture(rel):
            if m.size > self.limits.max_meta_size:
                self._problem(m.name, f"metadata member of {m.size} bytes not read")
            elif self._room(m.name, m.size):
                self.captured[rel] = m.take(m.size)
                self.budget.kept += m.size
            return
        path = self._target(m.name)
        if path is None or path == "/":
            return
        self._names[path] = m.name
        if m.kind is Kind.DIR:
            self._add(path, Kind.DIR)
            self._dirs.setdefault(path, {})
        elif m.kind is Kind.SYMLINK:
            self._link(m, path)
        elif m.kind is Kind.FILE:
            self._file(m, path, rel)
        else:
            self._add(path, Kind.OTHER)

    def _link(self, m: StreamMember, path: str) -> None:
        target = m.linkname
        if target.startswith("\0"):  # a hard link: its target is a member name
            dest = self._target(target[1:])
            if dest is None or clean_name(target[1:]) in (None, ""):
                self._problem(m.name, f"hard link to unsafe or unplaced {target[1:]!r} left out")
                return
            target = dest
        if not target:
            self._problem(m.name, "symbolic link with an empty target left out")
            return
        self._forget(path)
        self._links[path] = target
        self._add(path, Kind.SYMLINK)

    def _room(self, name: str, size: int) -> bool:
        lim = self.limits
        if size > lim.max_member_size:
            self._problem(name, f"member of {size} bytes is over the {lim.max_member_size}-byte "
                                "limit: listed, not read")
            return False
        if self.budget.kept + size > lim.max_kept_bytes:
            self._problem(name, f"over the {lim.max_kept_bytes}-byte limit on bytes kept in "
                                "memory: listed, not read")
            return False
        return True

    def _file(self, m: StreamMember, path: str, rel: str) -> None:
        self._forget(path)
        head = m.take(HEAD)
        self._sizes[path] = m.size
        self._add(path, Kind.FILE)
        wanted = is_binary(head) or self._keep(rel, m.size)
        if not wanted:
            n = min(m.size, self.limits.max_source_size)
            if _is_source(rel) and n > len(head) and self._room(m.name, n):
                # A large source: its beginning, as much as the detectors would read.
                head += m.take(n - len(head))
                self.budget.kept += len(head)
            self._heads[path] = head
            return
        if not self._room(m.name, m.size):
            self._heads[path] = head
            self._unkept[path] = "over a size limit"
            return
        data = bytearray(m.size)
        data[:len(head)] = head
        pos = len(head)
        while pos < m.size:
            piece = m.take(min(_CHUNK, m.size - pos))
            if not piece:
                break
            data[pos:pos + len(piece)] = piece
            pos += len(piece)
        self.budget.kept += m.size
        if pos < m.size:
            self._problem(m.name, f"member ends after {pos} of {m.size} bytes")
            del data[pos:]
        self._data[path] = data

    def _forget(self, path: str) -> None:
        """A later member with the same name replaces an earlier one (as tar extracts)."""
        old = self._data.pop(path, None)
        if old is not None:
            self.budget.kept -= len(old)
        head = self._heads.pop(path, None)
        if head is not None and len(head) > HEAD:
            self.budget.kept -= len(head)
        self._links.pop(path, None)
        self._unkept.pop(path, None)

    def _add(self, path: str, kind: Kind) -> None:
        # Iterative, from the path up to the first directory already known: a member may
        # be thousands of directories deep.
        chain: list[tuple[str, str, Kind]] = []
        while True:
            parent, name = posixpath.split(path)
            if parent == path:
                break
            chain.append((parent, name, kind))
            if parent in self._dirs:
                break
            path, kind = parent, Kind.DIR
        for parent, name, kind in reversed(chain):
            listing = self._dirs.setdefault(parent, {})
            if listing.get(name) is not Kind.DIR or kind is not Kind.DIR:
                listing[name] = kind

    # -- reading

    @property
    def file_paths(self) -> list[str]:
        """Every regular file of the tree, sorted."""
        return sorted(self._sizes)

    def read_bytes(self, path: str) -> bytes | None:
        """The bytes kept for ``path`` (a regular file), or ``None`` if not kept."""
        data = self._data.get(path)
        return bytes(data) if data is not None else None

    def listdir(self, path: str) -> Mapping[str, Kind]:
        return self._dirs.get(path, {})

    def readlink(self, path: str) -> str:
        target = self._links.get(path)
        if target is None:
            raise SourceError(f"{path} is not a symbolic link")
        return target

    def open_blob(self, path: str) -> Blob:
        data = self._data.get(path)
        if data is None:
            if path not in self._sizes:
                raise SourceError(f"{path} is not in {self.archive}")
            why = self._unkept.get(path, "not a binary")
            raise SourceError(f"{self._names.get(path, path)} in {self.archive} was not kept "
                              f"in memory ({why})")
        return BytesBlob(data)

    def head(self, path: str, n: int) -> bytes:
        data = self._data.get(path)
        if data is not None:
            return bytes(data[:n])
        head = self._heads.get(path)
        if head is None:
            raise SourceError(f"{path} is not in {self.archive}")
        if n > len(head) and self._sizes.get(path, 0) > len(head):
            raise SourceError(f"only the first {len(head)} bytes of {path} were kept")
        return head[:n]

    def size_hint(self, path: str) -> int:
        return self._sizes.get(path, 0)

    def describe(self, path: str) -> Location:
        return Location(self._names.get(path, path.lstrip("/")), container=self.archive)


class MountedFS(FileSystem):
    """``inner``'s tree seen under the prefix ``at``; absolute link targets stay inside.

    For :class:`~unveil.sources.fs.OverlayFS`, which hands mounted trees full paths.
    """

    def __init__(self, inner: FileSystem, at: str) -> None:
        super().__init__()
        self.inner = inner
        self.at = at.rstrip("/")

    def random_access(self) -> bool:
        return self.inner.random_access()

    def inner_path(self, path: str) -> str:
        if path == self.at:
            return "/"
        if path.startswith(self.at + "/"):
            return path[len(self.at):]
        raise SourceError(f"{path} is outside {self.at}")

    def outer_path(self, path: str) -> str:
        return self.at if path == "/" else self.at + path

    def listdir(self, path: str) -> Mapping[str, Kind]:
        return self.inner.listdir(self.inner_path(path))

    def readlink(self, path: str) -> str:
        target = self.inner.readlink(self.inner_path(path))
        return self.at + target if target.startswith("/") else target

    def open_blob(self, path: str) -> Blob:
        return self.inner.open_blob(self.inner_path(path))

    def head(self, path: str, n: int) -> bytes:
        return self.inner.head(self.inner_path(path), n)

    def size_hint(self, path: str) -> int:
        return self.inner.size_hint(self.inner_path(path))

    def describe(self, path: str) -> Location:
        return self.inner.describe(self.inner_path(path))
