"""Code whose failure to load a library the program handles, as the detectors find it.

Each detector (Python ``try``/``except OSError``, JavaScript ``try``/``catch``, Ruby
``rescue LoadError``) gives the spans of such code, each with the spans of the functions
defined inside it (their bodies run where they are called, outside the handler) and what
handles it; :func:`guard_at` says which span holds a load site.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

__all__ = ["Guard", "guard_at"]

P = TypeVar("P", int, tuple[int, int])
#: (start, end, holes, what): a half-open span of positions (offsets, or (line, column)),
#: the spans inside it that do not count, and what handles a failure there
Guard = tuple[P, P, list[tuple[P, P]], str]


def guard_at(guards: Sequence[Guard[P]], at: P) -> str | None:
    """What handles a failure of the code at ``at``, or None."""
    for start, end, holes, what in guards:
        if start <= at < end and not any(a <= at < b for a, b in holes):
            return what
    return None
