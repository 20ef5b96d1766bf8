"""Binary readers: bytes in, :class:`~unveil.model.Binary` out."""

from __future__ import annotations

from unveil.errors import FormatError
from unveil.formats.blob import Blob
from unveil.formats.elf import ELF_MAGIC, parse_elf
from unveil.formats.macho import is_macho, parse_macho
from unveil.formats.pe import parse_pe
from unveil.model import Binary

__all__ = ["is_binary", "parse_binary"]


def _is_pe(head: bytes) -> bool:
    return head[:2] == b"MZ"


def is_binary(head: bytes) -> bool:
    """Whether the first bytes of a file are those of a format unveil reads."""
    return head.startswith(ELF_MAGIC) or is_macho(head[:8]) or _is_pe(head)


def parse_binary(blob: Blob, head: bytes) -> tuple[Binary, tuple[str, ...]]:
    """Parse by magic bytes (never by file name)."""
    if head.startswith(ELF_MAGIC):
        return parse_elf(blob)
    if is_macho(head[:8]):
        return parse_macho(blob)
    if _is_pe(head):
        return parse_pe(blob)
    raise FormatError("not a binary format unveil reads", 0)
