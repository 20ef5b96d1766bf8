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
from collections.abc import Iterator, Sequence

from unveil.errors import FormatError

__all__ = ["MAX_READ", "Blob", "BytesBlob"]

#: The largest single range a parser may ask for (string tables of huge C++ libraries are
#: tens of MB; nothing legitimate comes close to this).
MAX_READ = 256 * 1024 * 1024


class Blob(ABC):
    """Read-only, bounds-checked access to ``size`` bytes."""

    size: int
    #: Whether reading is cheap only forwards (an inflating archive member): then a reader
    #: should say with :meth:`keep` what it will come back to.
    sequential: bool = False

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

    def pieces(self, size: int = 1 << 20) -> Iterator[bytes]:
        """Every byte, in order, ``size`` at a time (hashing a whole file or member)."""
        for off in range(0, self.size, size):
            yield self.read(off, min(size, self.size - off))

    def keep(self, ranges: Sequence[tuple[int, int]]) -> None:  # noqa: B027 - optional hook
        """Say which ``(offset, size)`` ranges will be read again later, so that a blob that
        can only be read forward (an inflating archive member) retains them as it passes
        them instead of starting over.  A hint: blobs with random access ignore it."""

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
