"""Which repair tool vendored a file, by the layout it leaves (no heavy imports: the
scanner and every report use it)."""

from __future__ import annotations

import re

__all__ = ["vendoring_tool"]

#: auditwheel puts its hash before the first dot of the soname: libfoo-<hash>.so.1, and
#: libopenblaso-r0-<hash>.3.15.so for libopenblaso-r0.3.15.so.
_AUDITWHEEL = re.compile(r"\.libs/[^/]+-[0-9a-f]{8}\.[^/]*\bso\b[^/]*$")
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
