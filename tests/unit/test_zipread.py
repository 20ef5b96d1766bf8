"""The in-place zip reader: random ranges of deflated members equal the original bytes,
whatever the order of reads (forward, backward, across the retained prefix)."""

from __future__ import annotations

import os
import random
import zipfile
import zlib
from pathlib import Path

import pytest

from unveil.errors import SourceError
from unveil.sources.zipread import InflateBlob, ZipArchive


def _deflate(data: bytes, level: int = 6) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize("retain", [0, 1 << 16, 4 << 20])
def test_random_ranges(retain: int) -> None:
    rng = random.Random(retain)
    data = os.urandom(1 << 20) + bytes(6 << 20) + os.urandom(1 << 19) + b"x" * 300_000
    comp = _deflate(data)
    for i in range(40):
        if i % InflateBlob.MAX_RESTARTS == 0:  # backward reads are capped per member
            blob = InflateBlob(comp, 0, len(comp), len(data), retain=retain)
        off = rng.randrange(len(data))
        n = min(rng.randrange(0, 3 << 20), len(data) - off)
        assert blob.read(off, n) == data[off:off + n]


def test_highly_compressible_tail_is_not_cut_short() -> None:
    # Output the decompressor holds back at max_length must be drained at end of input.
    data = os.urandom(100_000) + bytes(2_000_000)
    comp = _deflate(data, 9)
    blob = InflateBlob(comp, 0, len(comp), len(data), retain=0)
    assert blob.read(len(data) - 10, 10) == bytes(10)


def test_archive_members(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    payload = os.urandom(70_000) + bytes(500_000)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("stored.bin", payload, compress_type=zipfile.ZIP_STORED)
        z.writestr("deflated.bin", payload, compress_type=zipfile.ZIP_DEFLATED)
    arch = ZipArchive(str(path))
    try:
        for m in arch.members:
            blob = arch.blob(m)
            assert blob.read(0, blob.size) == payload
            assert blob.read(blob.size - 5, 5) == payload[-5:]
    finally:
        arch.close()


@pytest.mark.parametrize("zip64", [False, True])
def test_data_before_the_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 zip64: bool) -> None:
    """An executable jar (a launcher script before the zip) or a self-extracting stub: every
    offset the archive records is off by the prefix; it reads as zipfile reads it."""
    if zip64:  # zipfile writes zip64 end records past this many entries
        monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
    payload = os.urandom(70_000) + bytes(200_000)
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("a/stored.bin", payload, compress_type=zipfile.ZIP_STORED)
        z.writestr("a/deflated.bin", payload, compress_type=zipfile.ZIP_DEFLATED)
    assert (b"PK\x06\x06" in plain.read_bytes()) is zip64
    prefixed = tmp_path / "run.jar"
    prefixed.write_bytes(b"#!/bin/sh\nexec java -jar \"$0\" \"$@\"\n" + bytes(5000)
                         + plain.read_bytes())
    arch = ZipArchive(str(prefixed))
    try:
        assert [m.name for m in arch.members] == zipfile.ZipFile(prefixed).namelist()
        for m in arch.members:
            blob = arch.blob(m)
            assert blob.read(0, blob.size) == payload
    finally:
        arch.close()
    # A directory that claims to lie past the end is still refused.
    raw = bytearray(plain.read_bytes())
    eocd = raw.rfind(b"PK\x05\x06")
    raw[eocd + 16:eocd + 20] = (len(raw)).to_bytes(4, "little")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(raw))
    if not zip64:
        with pytest.raises(SourceError, match="outside the archive"):
            ZipArchive(str(bad))


def test_kept_ranges_are_served_without_inflating_again() -> None:
    rng = random.Random(7)
    data = rng.randbytes(20 << 20)
    comp = _deflate(data, 1)
    blob = InflateBlob(comp, 0, len(comp), len(data), retain=1 << 16)
    # Most wanted first; the second range overlaps the first and is trimmed to what is new.
    blob.keep([(4 << 20, 1 << 20), (4 << 20, 2 << 20), (15 << 20, 100)])
    assert blob.read(len(data) - 8, 8) == data[-8:]       # the parser's forward read
    restarts = blob._restarts
    assert blob.read(4 << 20, 2 << 20) == data[4 << 20:6 << 20]  # kept: no restart
    assert blob.read(15 << 20, 100) == data[15 << 20:(15 << 20) + 100]
    assert blob._restarts == restarts
    assert blob.read(8 << 20, 10) == data[8 << 20:(8 << 20) + 10]  # not kept: starts over
    assert blob._restarts == restarts + 1
    assert blob.read(4 << 20, 16) == data[4 << 20:(4 << 20) + 16]  # kept across restarts


def test_keep_is_capped() -> None:
    data = bytes(1 << 20)
    comp = _deflate(data)
    blob = InflateBlob(comp, 0, len(comp), len(data), retain=0)
    blob.KEEP = 1000
    blob.keep([(0, 600), (10_000, 600), (20_000, 600)])
    assert [(s, e) for s, e, _ in blob._keep] == [(0, 600), (10_000, 10_400)]
    blob.read(0, len(data))
    assert blob.read(10_000, 400) == bytes(400)
    assert blob.read(20_000, 10) == bytes(10)  # beyond the cap: inflated again, still right


def test_member_names_decode_as_zipfile_decodes_them(tmp_path: Path) -> None:
    """Names without the UTF-8 flag are cp437, with it UTF-8; ASCII reads alike in both."""
    path = tmp_path / "names.zip"
    names = ["plain/ascii.so", "caf\u00e9/\u00fcber.so", "\u65e5\u672c.so"]
    with zipfile.ZipFile(path, "w") as z:
        for n in names:
            z.writestr(n, b"x")
        z.writestr("old/X.so", b"y")  # ASCII: the UTF-8 flag stays clear
    # an old archiver's name: byte 0x81 with the UTF-8 flag clear is cp437's u-umlaut
    path.write_bytes(path.read_bytes().replace(b"old/X.so", b"old/\x81.so"))
    arch = ZipArchive(str(path))
    try:
        got = [m.name for m in arch.members]
    finally:
        arch.close()
    assert got == zipfile.ZipFile(path).namelist()
    assert got[-1] == "old/\u00fc.so"
