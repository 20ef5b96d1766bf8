"""Binary readers: bytes in, :class:`~unveil.model.Binary` out."""

from __future__ import annotations

from unveil.errors import FormatError
from unveil.formats.blob import Blob
from unveil.formats.elf import ELF_MAGIC, parse_elf
from unveil.model import Binary

# The Mach-O and PE readers are imported on first use: a Linux scan never needs them, and
# importing them was a tenth of the command's start-up (``python -X importtime``).

__all__ = ["is_binary", "parse_binary"]


def _is_pe(head: bytes) -> bool:
    return head[:2] == b"MZ"


#: the first four bytes of Mach-O files, thin and fat, in either byte order (the reader,
#: imported only for these, tells a fat Mach-O from a Java class file)
_MACHO_MAGICS = frozenset(m.to_bytes(4, o) for m in (0xFEEDFACE, 0xFEEDFACF, 0xCAFEBABE,
                                                       0xCAFEBABF) for o in ("big", "little"))


def _is_macho(head: bytes) -> bool:
    if head[:4] not in _MACHO_MAGICS:
        return False
    from unveil.formats.macho import is_macho

    return is_macho(head[:8])


def is_binary(head: bytes) -> bool:
    """Whether the first bytes of a file are those of a format unveil reads."""
    return head.startswith(ELF_MAGIC) or _is_pe(head) or _is_macho(head)


def parse_binary(blob: Blob, head: bytes) -> tuple[Binary, tuple[str, ...]]:
    """Parse by magic bytes (never by file name)."""
    if head.startswith(ELF_MAGIC):
        return parse_elf(blob)
    if _is_macho(head):
        from unveil.formats.macho import parse_macho

        return parse_macho(blob)
    if _is_pe(head):
        from unveil.formats.pe import parse_pe

        return parse_pe(blob)
    raise FormatError("not a binary format unveil reads", 0)
