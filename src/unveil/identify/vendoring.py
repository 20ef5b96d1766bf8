"""Which repair tool vendored a file, by the layout it leaves (no heavy imports: the
scanner and every report use it)."""

from __future__ import annotations

import re

__all__ = ["vendoring_tool"]

_AUDITWHEEL = re.compile(r"\.libs/[^/]+-[0-9a-f]{8}\.so")
_DELVEWHEEL = re.compile(r"\.libs/[^/]+-[0-9a-f]{32}\.dll$", re.IGNORECASE)


def vendoring_tool(member: str) -> str | None:
    """Which repair tool vendored a file, by the layout it leaves."""
    if _DELVEWHEEL.search(member):
        return "delvewheel"
    if _AUDITWHEEL.search(member):
        return "auditwheel"
    if "/.dylibs/" in f"/{member}":
        return "delocate"
    return None
