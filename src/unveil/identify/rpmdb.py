"""The rpm package database of a scanned root, read without rpm and without running anything.

Three on-disk formats hold the same thing — one *header blob* per installed package:

* **sqlite** (``rpmdb.sqlite``: Fedora ≥ 33, RHEL/Alma/Rocky ≥ 9):
  table ``Packages(hnum, blob)``, opened with the standard library's :mod:`sqlite3`
  read-only and immutable; a database that is not a file of this machine (inside an
  archive) or that has a write-ahead log to apply is first copied into a private temporary
  directory, which is removed afterwards.
* **Berkeley DB** (``Packages``: CentOS 7 — the manylinux2014 image —, RHEL ≤ 8): a hash
  database, whose pages we walk ourselves bucket by bucket, following overflow pages for the
  blobs; the key is the header number in the database's byte order.
* **ndb** (``Packages.db``: openSUSE, SLES): slot pages, then blobs framed by a head,
  a tail and an Adler-32 checksum.

The header blob is rpm's header without its 8-byte magic: the number of index entries and
the size of the data store (big-endian 32-bit), the 16-byte entries (tag, type, offset,
count) and the store.  Every count and offset is checked against the blob before use; a bad
blob or page becomes a problem string, never an exception, and the other packages are still
read.
"""

from __future__ import annotations

import contextlib
import pathlib
import struct
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from unveil.errors import UnveilError
from unveil.formats.blob import Blob
from unveil.sources.fs import FileSystem, HostFS, Kind, OverlayFS, SymlinkLoop

__all__ = ["RpmDatabase", "RpmHeader", "RpmdbError", "parse_header", "read_database"]

# Header tags (rpmtag.h) and types.
TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_ARCH = 1022
TAG_OLDFILENAMES = 1027
TAG_SOURCERPM = 1044
TAG_DIRINDEXES = 1116
TAG_BASENAMES = 1117
TAG_DIRNAMES = 1118
_WANTED = frozenset({TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_ARCH,
                     TAG_OLDFILENAMES, TAG_SOURCERPM, TAG_DIRINDEXES, TAG_BASENAMES,
                     TAG_DIRNAMES})

T_INT32 = 4
T_STRING = 6
T_STRING_ARRAY = 8
T_I18NSTRING = 9

MAX_TAGS = 0xFFFF            # rpm's own limit on index entries (hdrchkTags)
MAX_HEADER = 64 << 20        # one package's header; real ones are kilobytes to a few MB
MAX_TOTAL = 1 << 30          # all headers of one database together
MAX_DB_FILE = 4 << 30        # a database file we are willing to look at
MAX_PROBLEMS = 50            # per database; past that the database is given up

# Where rpm keeps its database: %_dbpath is /var/lib/rpm, or /usr/lib/sysimage/rpm on
# Fedora ≥ 36 and openSUSE (each usually a symlink to the other).  Per directory, the file
# names of the backends, in the order rpm itself prefers them.
DB_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
DB_FILES = (("rpmdb.sqlite", "sqlite"), ("Packages.db", "ndb"), ("Packages", "bdb"))


class RpmdbError(UnveilError):
    """A header blob or a database page that cannot be what it claims."""


@dataclass(frozen=True, slots=True)
class RpmHeader:
    """What unveil needs of one installed package's header."""

    name: str
    version: str
    release: str
    epoch: int | None
    arch: str | None
    source_rpm: str | None     # e.g. "glibc-2.17-326.el7_9.src.rpm"
    files: tuple[str, ...]

    @property
    def evr(self) -> str:
        """``[epoch:]version-release``, as rpm prints it."""
        vr = f"{self.version}-{self.release}"
        return f"{self.epoch}:{vr}" if self.epoch is not None else vr

    @property
    def source_name(self) -> str | None:
        """The source package's name: the source rpm without ``-version-release.src.rpm``."""
        s = self.source_rpm
        if not s:
            return None
        for suffix in (".src.rpm", ".nosrc.rpm"):
            if s.endswith(suffix):
                s = s[: -len(suffix)]
                break
        parts = s.rsplit("-", 2)
        return parts[0] if len(parts) == 3 and parts[0] else s


@dataclass(frozen=True, slots=True)
class RpmDatabase:
    path: str                  # the database file, in the target's namespace
    backend: str               # "sqlite", "bdb" or "ndb"
    headers: tuple[RpmHeader, ...]   # in installation order (header number)
    problems: tuple[str, ...]


# --- header blobs -----------------------------------------------------------------------


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


class _Store:
    def __init__(self, data: bytes, entries: dict[int, tuple[int, int, int]]) -> None:
        self.data = data
        self.entries = entries

    def _where(self, tag: int, types: tuple[int, ...]) -> tuple[int, int] | None:
        e = self.entries.get(tag)
        if e is None:
            return None
        typ, off, count = e
        if typ not in types:
            raise RpmdbError(f"tag {tag} has type {typ}, expected one of {types}")
        if not 0 <= off < len(self.data):
            raise RpmdbError(f"tag {tag}: offset {off} lies outside the {len(self.data)}-byte "
                             "data store")
        if count == 0 or count > len(self.data) - off:
            raise RpmdbError(f"tag {tag}: count {count} does not fit the data store")
        return off, count

    def string(self, tag: int) -> str | None:
        w = self._where(tag, (T_STRING, T_I18NSTRING, T_STRING_ARRAY))
        if w is None:
            return None
        off = w[0]
        end = self.data.find(b"\0", off)
        if end < 0:
            raise RpmdbError(f"tag {tag}: string runs past the data store")
        return _text(self.data[off:end])

    def strings(self, tag: int) -> list[str] | None:
        w = self._where(tag, (T_STRING_ARRAY,))
        if w is None:
            return None
        off, count = w
        raw = self.data[off:]
        parts = raw.split(b"\0", count)
        if len(parts) <= count:
            raise RpmdbError(f"tag {tag}: {count} strings run past the data store")
        # One decode for all: a NUL byte is never part of a UTF-8 sequence.
        return _text(raw[:len(raw) - len(parts[-1]) - 1]).split("\0")

    def int32s(self, tag: int) -> tuple[int, ...] | None:
        w = self._where(tag, (T_INT32,))
        if w is None:
            return None
        off, count = w
        if off + 4 * count > len(self.data):
            raise RpmdbError(f"tag {tag}: {count} integers run past the data store")
        return struct.unpack_from(f">{count}i", self.data, off)


def parse_header(blob: bytes) -> RpmHeader:
    """Decode a header blob as stored in the database; :class:`RpmdbError` if malformed."""
    n = len(blob)
    if n < 8:
        raise RpmdbError(f"header of {n} bytes is too short")
    il, dl = struct.unpack_from(">II", blob, 0)
    if il == 0 or il > MAX_TAGS:
        raise RpmdbError(f"header claims {il} index entries")
    start = 8 + 16 * il
    if start + dl > n:
        raise RpmdbError(f"header claims {il} index entries and {dl} bytes of data, "
                         f"but has {n} bytes")
    entries: dict[int, tuple[int, int, int]] = {}
    # Entries appended after the immutable region replace those in it: the last one wins.
    for tag, typ, off, count in struct.iter_unpack(">IIiI", blob[8:start]):
        if tag in _WANTED:
            entries[tag] = (typ, off, count)
    s = _Store(blob[start:start + dl], entries)
    name, version, release = s.string(TAG_NAME), s.string(TAG_VERSION), s.string(TAG_RELEASE)
    if not name or version is None or release is None:
        raise RpmdbError("header without a name, version or release")
    epochs = s.int32s(TAG_EPOCH)
    files: list[str]
    basenames = s.strings(TAG_BASENAMES)
    if basenames is not None:
        dirnames = s.strings(TAG_DIRNAMES)
        dirindexes = s.int32s(TAG_DIRINDEXES)
        if dirnames is None or dirindexes is None or len(dirindexes) != len(basenames):
            raise RpmdbError(f"{name}: file base names without matching directories")
        nd = len(dirnames)
        if dirindexes and (min(dirindexes) < 0 or max(dirindexes) >= nd):
            raise RpmdbError(f"{name}: directory index outside the {nd} directories")
        files = [dirnames[i] + b for i, b in zip(dirindexes, basenames, strict=True)]
    else:
        files = s.strings(TAG_OLDFILENAMES) or []
    return RpmHeader(name, version, release, epochs[0] if epochs else None,
                     s.string(TAG_ARCH), s.string(TAG_SOURCERPM), tuple(files))


# --- Berkeley DB hash -------------------------------------------------------------------

_HASH_MAGIC = 0x061561
_BTREE_MAGIC = 0x053162
_P_HASH_UNSORTED = 2
_P_OVERFLOW = 7
_P_HASH = 13
_H_KEYDATA = 1
_H_OFFPAGE = 3
_PAGE_HEADER = 26


class _BdbHash:
    def __init__(self, blob: Blob) -> None:
        self.blob = blob
        if blob.size < 512:
            raise RpmdbError("too short for a Berkeley DB file")
        meta = blob.read(0, 512)
        for e in ("<", ">"):
            magic = struct.unpack_from(e + "I", meta, 12)[0]
            if magic == _BTREE_MAGIC:
                raise RpmdbError("a Berkeley DB B-tree, not the hash database rpm keeps "
                                 "packages in")
            if magic == _HASH_MAGIC:
                self.e = e
                break
        else:
            raise RpmdbError("not a Berkeley DB hash database")
        version, self.pagesize = struct.unpack_from(e + "II", meta, 16)
        if version not in (8, 9, 10):
            raise RpmdbError(f"unsupported Berkeley DB hash version {version}")
        if meta[24]:
            raise RpmdbError("encrypted Berkeley DB database")
        ps = self.pagesize
        if ps < 512 or ps > 65536 or ps & (ps - 1):
            raise RpmdbError(f"page size {ps} is not a power of two from 512 to 65536")
        last = struct.unpack_from(e + "I", meta, 32)[0]
        self.last = min(last, blob.size // ps - 1)
        self.max_bucket = struct.unpack_from(e + "I", meta, 72)[0]
        self.spares = struct.unpack_from(e + "32I", meta, 96)
        if self.max_bucket > self.last:
            raise RpmdbError(f"{self.max_bucket + 1} buckets in {self.last + 1} pages")
        self.overflow_seen: set[int] = set()

    def page(self, pg: int, types: tuple[int, ...]) -> bytes:
        if not 0 < pg <= self.last:
            raise RpmdbError(f"page {pg} lies outside the file ({self.last + 1} pages)")
        p = self.blob.read(pg * self.pagesize, self.pagesize)
        if struct.unpack_from(self.e + "I", p, 8)[0] != pg:
            raise RpmdbError(f"page {pg} says it is page "
                             f"{struct.unpack_from(self.e + 'I', p, 8)[0]}")
        if p[25] not in types:
            raise RpmdbError(f"page {pg} has type {p[25]}, expected one of {types}")
        return p

    def overflow(self, pg: int, total: int) -> bytes:
        if total == 0 or total > MAX_HEADER:
            raise RpmdbError(f"overflow item of {total} bytes")
        out = bytearray()
        while len(out) < total:
            if not pg:
                raise RpmdbError(f"overflow chain ends after {len(out)} of {total} bytes")
            if pg in self.overflow_seen:
                raise RpmdbError(f"overflow page {pg} used twice")
            self.overflow_seen.add(pg)
            p = self.page(pg, (_P_OVERFLOW,))
            n = struct.unpack_from(self.e + "H", p, 22)[0]
            if _PAGE_HEADER + n > self.pagesize or len(out) + n > total:
                raise RpmdbError(f"overflow page {pg} claims {n} bytes")
            out += p[_PAGE_HEADER:_PAGE_HEADER + n]
            pg = struct.unpack_from(self.e + "I", p, 16)[0]
        return bytes(out)

    def item(self, p: bytes, offs: tuple[int, ...], i: int) -> bytes:
        off = offs[i]
        end = self.pagesize if i == 0 else offs[i - 1]
        if not _PAGE_HEADER + 2 * len(offs) <= off < end <= self.pagesize:
            raise RpmdbError(f"item {i} at offset {off} does not fit its page")
        kind = p[off]
        if kind == _H_KEYDATA:
            return p[off + 1:end]
        if kind == _H_OFFPAGE and end - off >= 12:
            pg, total = struct.unpack_from(self.e + "II", p, off + 4)
            return self.overflow(pg, total)
        raise RpmdbError(f"item {i} has type {kind} (duplicates are not used by rpm)")

    def bucket(self, b: int, seen: set[int]) -> Iterator[tuple[int, bytes]]:
        log2 = b.bit_length()  # pages of bucket b start after the spares of its split point
        pg = b + self.spares[log2] if log2 < 32 else 0
        first = True
        while pg or first:
            first = False
            if pg in seen:
                raise RpmdbError(f"page {pg} is in two bucket chains")
            seen.add(pg)
            p = self.page(pg, (_P_HASH, _P_HASH_UNSORTED))
            n = struct.unpack_from(self.e + "H", p, 20)[0]
            if _PAGE_HEADER + 2 * n > self.pagesize:
                raise RpmdbError(f"page {pg} claims {n} items")
            offs = struct.unpack_from(f"{self.e}{n}H", p, _PAGE_HEADER)
            for i in range(0, n - 1, 2):
                key = self.item(p, offs, i)
                if len(key) != 4:
                    raise RpmdbError(f"page {pg}: key of {len(key)} bytes")
                yield struct.unpack(self.e + "I", key)[0], self.item(p, offs, i + 1)
            pg = struct.unpack_from(self.e + "I", p, 16)[0]


def _bdb_blobs(blob: Blob, problem: Callable[[str], None]) -> Generator[tuple[int, bytes]]:
    db = _BdbHash(blob)
    seen: set[int] = set()
    for b in range(db.max_bucket + 1):
        try:
            yield from db.bucket(b, seen)
        except RpmdbError as e:
            problem(f"bucket {b}: {e}")


# --- ndb --------------------------------------------------------------------------------

_NDB_PAGE = 4096
_NDB_BLK = 16


def _ndb_blobs(blob: Blob, problem: Callable[[str], None]) -> Generator[tuple[int, bytes]]:
    if blob.size < 32:
        raise RpmdbError("too short for an ndb database")
    magic, version, _gen, slotpages = struct.unpack_from("<4sIII", blob.read(0, 32))
    if magic != b"RpmP" or version != 0:
        raise RpmdbError("not an ndb package database (version 0)")
    if slotpages == 0 or slotpages * _NDB_PAGE > blob.size:
        raise RpmdbError(f"{slotpages} slot pages do not fit the file")
    first_blk = slotpages * _NDB_PAGE // _NDB_BLK
    for page in range(slotpages):
        data = blob.read(page * _NDB_PAGE, _NDB_PAGE)
        for o in range(32 if page == 0 else 0, _NDB_PAGE, 16):
            smagic, pkgidx, blkoff, blkcnt = struct.unpack_from("<4sIII", data, o)
            if smagic != b"Slot":
                raise RpmdbError(f"slot {(page * _NDB_PAGE + o) // 16} is corrupt")
            if not blkoff:
                continue
            try:
                yield pkgidx, _ndb_blob(blob, pkgidx, blkoff, blkcnt, first_blk)
            except RpmdbError as e:
                problem(f"package {pkgidx}: {e}")


def _ndb_blob(blob: Blob, pkgidx: int, blkoff: int, blkcnt: int, first_blk: int) -> bytes:
    start, size = blkoff * _NDB_BLK, blkcnt * _NDB_BLK
    if blkoff < first_blk or size < 32 or size > MAX_HEADER or start + size > blob.size:
        raise RpmdbError(f"blob of {blkcnt} blocks at block {blkoff} does not fit the file")
    area = blob.read(start, size)
    hmagic, hidx, _stamp, length = struct.unpack_from("<4sIII", area, 0)
    if hmagic != b"BlbS" or hidx != pkgidx:
        raise RpmdbError(f"no blob head at block {blkoff}")
    if blkcnt != (16 + length + 12 + _NDB_BLK - 1) // _NDB_BLK:
        raise RpmdbError(f"blob of {length} bytes in {blkcnt} blocks")
    adler, tlen, tmagic = struct.unpack_from("<II4s", area, size - 12)
    if tmagic != b"BlbE" or tlen != length:
        raise RpmdbError(f"no blob tail for block {blkoff}")
    if zlib.adler32(area[: size - 12]) != adler:
        raise RpmdbError("checksum mismatch")
    return area[16:16 + length]


# --- sqlite -----------------------------------------------------------------------------


def _host_file(fs: FileSystem, path: str) -> str | None:
    """The path of ``path`` on this machine, when the tree is a directory of it."""
    while isinstance(fs, OverlayFS):
        nxt = fs.owner(path)
        if nxt is fs:
            return None
        fs = nxt
    return fs.host_path(path) if isinstance(fs, HostFS) else None


def _copy(fs: FileSystem, path: str, dest: pathlib.Path) -> None:
    blob = fs.open_blob(path)
    try:
        if blob.size > MAX_DB_FILE:
            raise RpmdbError(f"{blob.size} bytes is too large")
        with dest.open("wb") as out:
            for off in range(0, blob.size, 16 << 20):
                out.write(blob.read(off, min(16 << 20, blob.size - off)))
    finally:
        blob.close()


def _sqlite_blobs(fs: FileSystem, path: str,
                  problem: Callable[[str], None]) -> Generator[tuple[int, bytes]]:
    wal = fs.resolve(path + "-wal")
    wal_size = 0
    if wal is not None and fs.kind(wal) is Kind.FILE:
        b = fs.open_blob(wal)
        wal_size = b.size
        b.close()
    host = _host_file(fs, path)
    import tempfile  # noqa: PLC0415 - an rpm root only: not at every scan's start (7 ms)

    with tempfile.TemporaryDirectory(prefix="unveil-rpmdb-") as tmp:
        if host is not None and not wal_size:
            uri = pathlib.Path(host).as_uri() + "?mode=ro&immutable=1"
        else:
            # Not a file of this machine, or a write-ahead log holds the latest
            # transactions: work on a private copy, which sqlite may then write to.
            local = pathlib.Path(tmp) / "rpmdb.sqlite"
            _copy(fs, path, local)
            if wal_size and wal is not None:
                _copy(fs, wal, pathlib.Path(tmp) / "rpmdb.sqlite-wal")
                uri = local.as_uri()
            else:
                uri = local.as_uri() + "?mode=ro&immutable=1"
        # Imported here: only a root with an rpm database needs it (5 ms of every scan).
        import sqlite3  # noqa: PLC0415

        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as e:
            raise RpmdbError(f"cannot open: {e}") from e
        try:
            conn.execute("PRAGMA trusted_schema = OFF")
            conn.execute("PRAGMA query_only = ON")
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "Packages" not in tables:
                raise RpmdbError("no Packages table")
            for hnum, data in conn.execute("SELECT hnum, blob FROM Packages ORDER BY hnum"):
                if not isinstance(hnum, int) or not isinstance(data, bytes):
                    problem(f"row {hnum!r}: not a header number and a blob")
                    continue
                yield hnum, data
        except sqlite3.Error as e:
            raise RpmdbError(f"not a readable sqlite database: {e}") from e
        finally:
            conn.close()


# --- the database -----------------------------------------------------------------------


def _find(fs: FileSystem) -> tuple[str, str] | None:
    for d in DB_DIRS:
        for name, backend in DB_FILES:
            try:
                if fs.kind(f"{d}/{name}") is Kind.FILE:
                    return f"{d}/{name}", backend
            except SymlinkLoop:
                continue
    return None


def read_database(fs: FileSystem) -> RpmDatabase | None:
    """The root's rpm database, or ``None`` if it has none.  Never raises for bad input."""
    found = _find(fs)
    if found is None:
        return None
    path, backend = found
    problems: list[str] = []
    headers: list[tuple[int, RpmHeader]] = []

    class _TooMany(Exception):
        pass

    def problem(msg: str) -> None:
        problems.append(f"rpm database {path}: {msg}")
        if len(problems) >= MAX_PROBLEMS:
            raise _TooMany

    total = 0
    try:
        real = fs.resolve(path)
        assert real is not None
        with contextlib.ExitStack() as stack:
            if backend == "sqlite":
                blobs = _sqlite_blobs(fs, real, problem)
            else:
                blob = fs.open_blob(real)
                stack.callback(blob.close)
                if blob.size > MAX_DB_FILE:
                    raise RpmdbError(f"{blob.size} bytes is too large")
                blobs = (_bdb_blobs if backend == "bdb" else _ndb_blobs)(blob, problem)
            stack.enter_context(contextlib.closing(blobs))
            for key, data in blobs:
                if backend == "bdb" and key == 0:
                    continue  # Berkeley DB: record 0 holds the next header number
                total += len(data)
                if total > MAX_TOTAL:
                    raise RpmdbError(f"more than {MAX_TOTAL} bytes of headers")
                try:
                    headers.append((key, parse_header(data)))
                except RpmdbError as e:
                    problem(f"header {key}: {e}")
    except _TooMany:
        problems.append(f"rpm database {path}: too many errors, the rest is not read")
    except (UnveilError, OSError, struct.error, ValueError) as e:
        rest = (f"the {len(headers)} packages read before are kept, others are unknown"
                if headers else "which package owns a file is unknown")
        problems.append(f"rpm database {path} ({_NAMES[backend]}): {e}; {rest}")
    headers.sort(key=lambda kh: kh[0])
    return RpmDatabase(path, backend, tuple(h for _, h in headers), tuple(problems))


_NAMES = {"sqlite": "sqlite", "bdb": "Berkeley DB", "ndb": "ndb"}
