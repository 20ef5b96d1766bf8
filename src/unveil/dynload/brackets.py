"""Matching brackets of a token list, found once.

The JavaScript and Ruby detectors skip a bracketed group many times while they evaluate
expressions (every call site, every argument); scanning forward each time made deeply
nested input quadratic (a 10 kB gem of nested ``ffi_lib(ffi_lib(...))`` ran for minutes).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["group_ends"]

_OPEN = frozenset({"(", "[", "{"})
_CLOSE = frozenset({")", "]", "}"})


def group_ends(puncts: Sequence[str]) -> dict[int, int]:
    """For each opening bracket (``puncts[i]`` one of ``([{``; anything else for tokens
    that are not punctuation), the index after the bracket that closes it, counting any
    of ``)]}`` as a closer, as a forward scan counting depth would; ``len(puncts)`` when
    it is never closed."""
    n = len(puncts)
    ends: dict[int, int] = {}
    stack: list[int] = []
    for j, p in enumerate(puncts):
        if p in _OPEN:
            stack.append(j)
        elif p in _CLOSE and stack:
            ends[stack.pop()] = j + 1
    for j in stack:
        ends[j] = n
    return ends
