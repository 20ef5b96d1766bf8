"""Package URLs of the distributions a scan found, shared by every record format."""

from __future__ import annotations

import re

from packageurl import PackageURL

from unveil.model import Distribution

__all__ = ["distribution_purl"]

#: a valid distribution name (PEP 508); anything else has no place on PyPI
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes of a file name or metadata
        return False
    return True


def distribution_purl(d: Distribution) -> PackageURL | None:
    """``pkg:pypi/<name>@<version>``, or ``None`` for a name that is not a
    distribution name (undecodable bytes in a ``.dist-info`` directory or its METADATA: a
    purl could neither name a PyPI project nor be written as UTF-8).  A version that cannot
    be written is left out."""
    if not _NAME.match(d.name):
        return None
    version = d.version if d.version and _encodable(d.version) else None
    # packageurl normalises a pypi name as the purl spec says: lower case, "_" -> "-"
    return PackageURL(type="pypi", name=d.name, version=version)
