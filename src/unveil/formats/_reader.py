"""What every format reader shares: turning a short read deep inside ``struct`` (bounds
were checked already, so it means a structure the file cut short) into a FormatError."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Protocol

from unveil.errors import FormatError
from unveil.formats.blob import Blob
from unveil.model import Binary

__all__ = ["read_binary"]


class Reader(Protocol):
    warnings: list[str]

    def binary(self) -> Binary: ...


def read_binary(make: Callable[[Blob], Reader], blob: Blob) -> tuple[Binary, tuple[str, ...]]:
    """Parse ``blob`` with a reader class; its facts and any non-fatal warnings."""
    try:
        f = make(blob)
        return f.binary(), tuple(f.warnings)
    except struct.error as e:
        raise FormatError(f"truncated structure: {e}") from e
