"""Exception hierarchy: one root, one base per layer.

Errors never cross :func:`unveil.scan` as exceptions for bad *input*: the scan turns them into
:class:`unveil.model.Problem` values located at the file that caused them.  Exceptions reach a
caller only for misuse of the API (a target that does not exist, a bad configuration).
"""

from __future__ import annotations

__all__ = [
    "FormatError",
    "LoaderError",
    "SourceError",
    "TargetError",
    "UnveilError",
]


class UnveilError(Exception):
    """Root of every error unveil raises."""


class FormatError(UnveilError):
    """A binary could not be parsed: truncated, corrupt or hostile.

    ``offset`` is the file offset at which parsing failed, when known.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class SourceError(UnveilError):
    """A package, archive or tree could not be read (not a zip, unreadable, a zip bomb...)."""


class LoaderError(UnveilError):
    """The loader emulation was given inconsistent facts (e.g. an unreadable ld.so.cache)."""


class TargetError(UnveilError):
    """The scan target itself is unusable (does not exist, unknown kind)."""
