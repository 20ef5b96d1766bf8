"""Bounded random access to the bytes of one file, wherever they live.

Parsers ask for ``(offset, size)`` ranges and never see where the bytes come from: a memory
map of a file on disk, bytes in memory, or a member of a zip archive that is inflated on the
fly (only up to the highest offset asked for, never to disk).  Every read is bounds-checked
and raises :class:`~unveil.errors.FormatError`, so a hostile size field cannot make a parser
read past the end or allocate without limit.
"""

from __future__ import annotations

import mmap
from abc import ABC, abstractmethod
from typing import IO

from unveil.errors import FormatError

__all__ = ["Blob", "BytesBlob", "StreamBlob", "MAX_READ"]

#: The largest single range a parser may ask for (string tables of huge C++ libraries are
#: tens of MB; nothing legitimate comes close to this).
MAX_READ = 256 * 1024 * 1024


class Blob(ABC):
    """Read-only, bounds-checked access to ``size`` bytes."""

    size: int

    @abstractmethod
    def _read(self, offset: int, size: int) -> bytes: ...

    def read(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise FormatError(
                f"range {offset:#x}+{size:#x} lies outside the file ({self.size} bytes)", offset
            )
        if size > MAX_READ:
            raise FormatError(f"refusing to read {size} bytes at once", offset)
        return self._read(offset, size)

    def read_upto(self, offset: int, size: int) -> bytes:
        """Read ``size`` bytes, or fewer when the file ends first."""
        if offset < 0 or offset >= self.size:
            raise FormatError(f"offset {offset:#x} lies outside the file", offset)
        return self.read(offset, min(size, self.size - offset))

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release any resource held (memory maps are closed here)."""


class BytesBlob(Blob):
    """A blob over bytes, a bytearray or an ``mmap``."""

    def __init__(self, data: bytes | bytearray | mmap.mmap | memoryview) -> None:
        self._data = data
        self.size = len(data)

    def _read(self, offset: int, size: int) -> bytes:
        return bytes(self._data[offset : offset + size])

    def close(self) -> None:
        if isinstance(self._data, mmap.mmap):
            self._data.close()


class StreamBlob(Blob):
    """A blob over a forward-seekable stream, such as a deflated zip member.

    Seeking backwards in a deflated member restarts inflation from the start, so ranges are
    served from a small cache of recently read windows; parsers read mostly in ascending
    order, which keeps inflation to about one pass up to the last byte needed.
    """

    _WINDOW = 64 * 1024

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self._stream = stream
        self.size = size
        self._cache: dict[int, bytes] = {}

    def _window(self, index: int) -> bytes:
        cached = self._cache.get(index)
        if cached is None:
            self._stream.seek(index * self._WINDOW)
            cached = self._stream.read(self._WINDOW)
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[index] = cached
        return cached

    def _read(self, offset: int, size: int) -> bytes:
        if size > 4 * self._WINDOW:
            self._stream.seek(offset)
            data = self._stream.read(size)
        else:
            first, last = offset // self._WINDOW, (offset + size - 1) // self._WINDOW
            chunks = [self._window(i) for i in range(first, last + 1)] if size else []
            joined = b"".join(chunks)
            start = offset - first * self._WINDOW
            data = joined[start : start + size]
        if len(data) != size:
            raise FormatError(f"archive member ended early at {offset + len(data):#x}", offset)
        return data

    def close(self) -> None:
        self._stream.close()
