"""Which Debian package would provide a library that is missing here.

``unveil/data/debian-sonames.tsv.gz`` (built by ``scripts/build_debian_index.py`` from the
archive's ``Contents-amd64``; its header records the release and date) maps every shared
library name in Debian main to the packages that ship it, so a library absent from the
scanned root still gets "provided by Debian package X" and an install hint.  It describes
Debian for x86-64, not the scanned system: a hint, labelled as one.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources

from packageurl import PackageURL

from unveil.model import Component, Evidence

__all__ = ["debian_packages", "debian_component", "index_source"]


@lru_cache(maxsize=1)
def _index() -> tuple[dict[str, tuple[str, ...]], str]:
    raw = resources.files("unveil").joinpath("data/debian-sonames.tsv.gz").read_bytes()
    out: dict[str, tuple[str, ...]] = {}
    header = []
    for line in gzip.decompress(raw).decode("utf-8").splitlines():
        if line.startswith("#"):
            header.append(line[1:].strip())
            continue
        name, _, pkgs = line.partition("\t")
        out[name] = tuple(pkgs.split(","))
    return out, "; ".join(header[:2])


def index_source() -> str:
    return _index()[1]


def debian_packages(name: str, *, versioned: bool = False) -> tuple[str, ...]:
    """Packages shipping a library of this name.  An unversioned ``libfoo.so`` is the
    development link (``libfoo-dev``); ``versioned=True`` asks instead for the packages
    of every ``libfoo.so.N``, what ``find_library('foo')`` finds at run time."""
    idx = _index()[0]
    if not versioned and name in idx:
        return idx[name]
    if name.endswith(".so"):
        found: list[str] = []
        for key, pkgs in idx.items():
            if key.startswith(name + "."):
                found.extend(p for p in pkgs if p not in found)
        return tuple(found)
    return ()


def debian_component(name: str, *, versioned: bool = False) -> Component | None:
    """The Debian package that ships a library name, as a component whose evidence is the
    index entry and an install hint (``versioned``: see :func:`debian_packages`)."""
    pkgs = debian_packages(name, versioned=versioned)
    if not pkgs:
        return None
    # Prefer the plain package over -extra/-dev variants when several ship the name.
    pkg = sorted(pkgs, key=lambda p: ("extra" in p or p.endswith("-dev"), len(p)))[0]
    purl = PackageURL(type="deb", namespace="debian", name=pkg,
                      qualifiers={"arch": "amd64"}).to_string()
    detail = (f"Debian package {pkg} ships {name} ({index_source()}); install hint: "
              f"apt-get install {pkg}")
    if len(pkgs) > 1:
        detail += f" (also: {', '.join(p for p in pkgs if p != pkg)})"
    return Component(pkg, None, purl, (), (Evidence("debian-index", detail, 0.5, "name"),))
