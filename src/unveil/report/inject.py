"""Put an SBOM into a wheel (PEP 770): ``<name>.dist-info/sboms/<file>``, listed in RECORD.

The new wheel is the old one byte for byte except for the added member and RECORD: every
other member's local header, compressed data, data descriptor and central-directory record are
copied raw (only the central record's offset field changes), so compression, timestamps,
attributes and order are kept and signatures over member contents stay valid.  The new members
are placed just before RECORD and take RECORD's timestamp, attributes and compression.

Only what wheels use is supported: a single-disk archive without ZIP64 records and without
data before the first member.  Anything else is refused rather than rewritten.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import itertools
import os
import re
import stat
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from unveil.errors import SourceError, UnveilError

__all__ = ["InjectError", "SbomExistsError", "inject_sbom", "record_line"]

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<4sHHHHIIH")
_LOCAL_SIG = b"PK\x03\x04"
_CENTRAL_SIG = b"PK\x01\x02"
_EOCD_SIG = b"PK\x05\x06"
_ZIP64_LOCATOR_SIG = b"PK\x06\x07"
_DESCRIPTOR_SIG = b"PK\x07\x08"
#: where a central record keeps the offset of its member's local header (its last 4 bytes).
_OFFSET_FIELD = _CENTRAL.size - 4
_MAX32 = 0xFFFFFFFF
_MAX16 = 0xFFFF
_RECORD = re.compile(r"^[^/]+\.dist-info/RECORD$")
_CHUNK = 1 << 20


class InjectError(UnveilError):
    """The SBOM cannot be added to this wheel as asked (nothing was written)."""


class SbomExistsError(InjectError):
    """The wheel already carries an SBOM of that name."""


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    offset: int  # of the local header
    length: int  # local header + data + data descriptor
    central: bytes  # the raw central-directory record


def record_line(path: str, data: bytes) -> str:
    """A RECORD row for ``data`` stored at ``path`` (sha256, urlsafe base64 without padding)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([path, f"sha256={digest}", str(len(data))])
    return out.getvalue()


def _read_at(f: BinaryIO, offset: int, n: int) -> bytes:
    f.seek(offset)
    data = f.read(n)
    if len(data) != n:
        raise SourceError(f"truncated archive: wanted {n} bytes at offset {offset}")
    return data


def _members(f: BinaryIO, size: int) -> tuple[list[_Member], bytes]:
    """The members in central-directory order, and the archive comment."""
    tail_len = min(size, _EOCD.size + _MAX16)
    tail = _read_at(f, size - tail_len, tail_len)
    pos = tail.rfind(_EOCD_SIG)
    while pos >= 0:
        (_, _, _, _, _, _, _, comment_len) = _EOCD.unpack_from(tail, pos)
        if pos + _EOCD.size + comment_len == len(tail):
            break
        pos = tail.rfind(_EOCD_SIG, 0, pos)
    if pos < 0:
        raise SourceError("not a zip archive: no end-of-central-directory record")
    eocd_at = size - tail_len + pos
    (_, disk, cd_disk, n_disk, n_total, cd_size, cd_offset,
     comment_len) = _EOCD.unpack_from(tail, pos)
    comment = tail[pos + _EOCD.size:pos + _EOCD.size + comment_len]
    if eocd_at >= 20 and _read_at(f, eocd_at - 20, 4) == _ZIP64_LOCATOR_SIG:
        raise InjectError("ZIP64 archives are not supported")
    if disk or cd_disk or n_disk != n_total:
        raise InjectError("multi-disk archives are not supported")
    if cd_offset + cd_size != eocd_at:
        raise InjectError("unsupported layout: data between the central directory and its end")
    cd = _read_at(f, cd_offset, cd_size)
    members: list[_Member] = []
    names: set[str] = set()
    at = 0
    for _ in range(n_total):
        if cd[at:at + 4] != _CENTRAL_SIG or at + _CENTRAL.size > len(cd):
            raise SourceError(f"corrupt central directory at offset {cd_offset + at}")
        fields = _CENTRAL.unpack_from(cd, at)
        flags, csize, usize = fields[3], fields[8], fields[9]
        n, m, k, offset = fields[10], fields[11], fields[12], fields[16]
        if _MAX32 in (csize, usize, offset):
            raise InjectError("ZIP64 members are not supported")
        raw_name = cd[at + _CENTRAL.size:at + _CENTRAL.size + n]
        try:
            name = raw_name.decode("utf-8" if flags & 0x800 else "cp437")
        except UnicodeDecodeError as e:
            raise SourceError(f"corrupt archive: member name {raw_name!r} is not UTF-8 "
                              "as its flags say") from e
        central = cd[at:at + _CENTRAL.size + n + m + k]
        at += len(central)
        local = _LOCAL.unpack(_read_at(f, offset, _LOCAL.size))
        if local[0] != _LOCAL_SIG:
            raise SourceError(f"corrupt archive: no local header for {name!r} at {offset}")
        if _read_at(f, offset + _LOCAL.size, local[9]) != raw_name:
            raise SourceError(f"corrupt archive: local and central names differ for {name!r}")
        end = offset + _LOCAL.size + local[9] + local[10] + csize
        if flags & 0x08:
            end += 16 if end + 4 <= cd_offset and _read_at(f, end, 4) == _DESCRIPTOR_SIG \
                else 12
        if end > cd_offset:
            raise SourceError(f"corrupt archive: {name!r} runs into the central directory")
        if name in names:
            raise InjectError(f"member {name!r} appears twice: rewriting it would corrupt it")
        names.add(name)
        members.append(_Member(name, offset, end - offset, central))
    if at != len(cd):
        raise SourceError("corrupt central directory: size does not match its records")
    spans = sorted((m.offset, m.offset + m.length) for m in members)
    if spans and spans[0][0] != 0:
        raise InjectError("unsupported layout: data before the first member")
    if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
        raise InjectError("unsupported layout: members overlap")
    return members, comment


def _record_of(members: list[_Member], wheel: str) -> str:
    records = [m.name for m in members if _RECORD.match(m.name)]
    if len(records) > 1:
        stem = os.path.basename(wheel).split("-")
        prefix = f"{stem[0]}-{stem[1]}.dist-info/" if len(stem) > 1 else ""
        records = [r for r in records if r.lower().startswith(prefix.lower())]
    if len(records) != 1:
        raise InjectError(f"{wheel}: cannot tell which *.dist-info/RECORD is the wheel's")
    return records[0]


def _new_record(text: str, record: str, row: str) -> str:
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    at = len(lines)
    for i, line in enumerate(lines):
        first = next(csv.reader([line]), [""])
        if first and first[0] == record:
            at = i
            break
    lines.insert(at, row)
    return newline.join(lines) + newline


def _build(record: zipfile.ZipInfo, entries: list[tuple[str, bytes]]) -> list[tuple[bytes,
                                                                                     bytes]]:
    """Local and central records for new members, made by :mod:`zipfile` with RECORD's
    timestamp, attributes and compression."""
    buf = io.BytesIO()
    method = record.compress_type if record.compress_type in (
        zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, record.date_time)
            info.compress_type = method
            info.external_attr = record.external_attr
            info.create_system = record.create_system
            z.writestr(info, data)
    members, _ = _members(buf, buf.getbuffer().nbytes)
    raw = buf.getvalue()
    return [(raw[m.offset:m.offset + m.length], m.central) for m in members]


def _same(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _copy(src: BinaryIO, dst: BinaryIO, offset: int, length: int) -> None:
    src.seek(offset)
    while length:
        chunk = src.read(min(_CHUNK, length))
        if not chunk:
            raise SourceError("archive changed while copying")
        dst.write(chunk)
        length -= len(chunk)


def _write(src: BinaryIO, dst: BinaryIO, *, members: list[_Member], comment: bytes,
           record: str, sbom_path: str, sbom: tuple[bytes, bytes],
           new_record: tuple[bytes, bytes]) -> None:
    """The archive: members copied raw in their physical order, the SBOM and the new RECORD
    where RECORD was; then the central directory in its order, offsets updated."""
    new_offset: dict[str, int] = {}
    for m in sorted(members, key=lambda m: m.offset):
        if m.name == record:
            new_offset[sbom_path] = dst.tell()
            dst.write(sbom[0])
            new_offset[record] = dst.tell()
            dst.write(new_record[0])
            continue
        new_offset[m.name] = dst.tell()
        _copy(src, dst, m.offset, m.length)
    cd_start = dst.tell()
    count = 0
    for m in members:
        entries = ([(sbom_path, sbom[1]), (record, new_record[1])] if m.name == record
                   else [(m.name, m.central)])
        for entry_name, central in entries:
            offset = new_offset[entry_name]
            if offset > _MAX32:
                raise InjectError("the new wheel would need ZIP64")
            dst.write(central[:_OFFSET_FIELD] + struct.pack("<I", offset)
                      + central[_OFFSET_FIELD + 4:])
            count += 1
    cd_size = dst.tell() - cd_start
    if count > _MAX16 or cd_start > _MAX32:
        raise InjectError("the new wheel would need ZIP64")
    dst.write(_EOCD.pack(_EOCD_SIG, 0, 0, count, count, cd_size, cd_start, len(comment))
              + comment)


#: A RECORD larger than this is refused (it is read whole; a bomb inflates to gigabytes).
_MAX_RECORD = 64 << 20


def inject_sbom(wheel: str, sbom_json: str, out: str, *, name: str = "unveil.cdx.json") -> str:
    """Write ``out``: ``wheel`` plus ``<dist-info>/sboms/<name>`` holding ``sbom_json``,
    with RECORD listing it.  Returns ``out``.

    Raises :class:`SbomExistsError` when the wheel has an SBOM of that name,
    :class:`InjectError` when ``out`` is the wheel itself or the archive uses what this
    writer does not support, :class:`~unveil.errors.SourceError` when it is not a readable
    zip.  ``out`` is written to a temporary file beside it and renamed into place.
    """
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise InjectError(f"not a plain file name for an SBOM: {name!r}")
    if _same(wheel, out):
        raise InjectError(f"refusing to overwrite the input wheel {wheel}")
    try:
        if not stat.S_ISREG(os.stat(wheel).st_mode):  # a FIFO would block the open
            raise SourceError(f"{wheel} is not a regular file")
        src = open(wheel, "rb")  # noqa: SIM115 - closed below, after the rename
    except OSError as e:
        raise SourceError(f"cannot read {wheel}: {e.strerror or e}") from e
    with src:
        size = os.fstat(src.fileno()).st_size
        members, comment = _members(src, size)
        record = _record_of(members, wheel)
        sbom_path = f"{record.rsplit('/', 1)[0]}/sboms/{name}"
        if any(m.name == sbom_path for m in members):
            raise SbomExistsError(f"{wheel} already has {sbom_path}")
        try:
            with zipfile.ZipFile(src) as z:
                record_info = z.getinfo(record)
                if record_info.file_size > _MAX_RECORD:
                    raise SourceError(f"{wheel}: {record} claims {record_info.file_size} "
                                      f"bytes (over {_MAX_RECORD})")
                record_text = z.read(record).decode("utf-8")
        except (zipfile.BadZipFile, UnicodeDecodeError, OSError, NotImplementedError,
                RuntimeError) as e:
            raise SourceError(f"{wheel}: unreadable {record}: {e}") from e
        data = sbom_json.encode("utf-8")
        try:
            if any(row and row[0] == sbom_path
                   for row in csv.reader(record_text.splitlines())):
                raise SbomExistsError(f"{wheel}: RECORD already lists {sbom_path}")
            new_record = _new_record(record_text, record, record_line(sbom_path, data))
        except csv.Error as e:
            raise SourceError(f"{wheel}: unreadable {record}: {e}") from e
        (sbom_local, sbom_central), (rec_local, rec_central) = _build(
            record_info, [(sbom_path, data), (record, new_record.encode("utf-8"))])

        directory = os.path.dirname(os.path.abspath(out))
        try:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(out)}.",
                                       suffix=".tmp")
        except OSError as e:
            raise InjectError(f"cannot write beside {out}: {e.strerror or e}") from e
        try:
            with os.fdopen(fd, "wb") as dst:
                _write(src, dst, members=members, comment=comment, record=record,
                       sbom_path=sbom_path, sbom=(sbom_local, sbom_central),
                       new_record=(rec_local, rec_central))
                dst.flush()
                os.fsync(dst.fileno())
            os.chmod(tmp, stat.S_IMODE(os.fstat(src.fileno()).st_mode))
            os.replace(tmp, out)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OSError):
                raise InjectError(f"cannot write {out}: {e.strerror or e}") from e
            raise
    return out
