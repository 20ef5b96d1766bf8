"""Which Debian package would provide a library that is missing here.

``unveil/data/debian-sonames.tsv.gz`` (built by ``scripts/build_debian_index.py`` from the
archive's ``Contents-amd64``; its header records the release and date) maps every shared
library name in Debian main to the packages that ship it, so a library absent from the
scanned root still gets "provided by Debian package X" and an install hint.  It describes
Debian for x86-64, not the scanned system: a hint, labelled as one.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from functools import lru_cache

from packageurl import PackageURL

from unveil._data import read_bytes
from unveil.model import Component, Evidence

__all__ = ["debian_packages", "debian_component", "index_source"]


class _Index:
    """The table as one string of sorted lines, searched by bisection over line starts.

    Splitting its 24,000 lines into a dict took ~30 ms, more than a scan of a small wheel
    spends on everything else it identifies; one lookup here is ~17 string probes.  The
    lines are sorted by ``scripts/build_debian_index.py`` (a test checks it); a TAB sorts
    before every character a name holds, so whole lines sort as their names do.
    """

    def __init__(self, text: str) -> None:
        header: list[str] = []
        at = 0
        while text.startswith("#", at):
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
            header.append(text[at + 1:end].strip())
            at = end + 1
        self.source = "; ".join(header[:2])
        self._text = text
        self._start = at

    def _line_at(self, pos: int) -> int:
        """The start of the line holding ``pos``."""
        return max(self._start, self._text.rfind("\n", self._start, pos) + 1)

    def _first_at_least(self, key: str) -> int:
        """The start of the first line whose text is not below ``key`` (or the end)."""
        text = self._text
        lo, hi = self._start, len(text)
        while lo < hi:
            mid = self._line_at((lo + hi) // 2)
            end = text.find("\n", mid)
            end = len(text) if end < 0 else end
            if mid < lo or text[mid:end] < key:
                lo = end + 1
            else:
                hi = mid
        return lo

    def lines(self, prefix: str) -> Iterator[tuple[str, tuple[str, ...]]]:
        """The (name, packages) of every name starting with ``prefix``, in order."""
        text = self._text
        at = self._first_at_least(prefix)
        while at < len(text) and text.startswith(prefix, at):
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
            name, _, pkgs = text[at:end].partition("\t")
            yield name, tuple(pkgs.split(","))
            at = end + 1

    def get(self, name: str) -> tuple[str, ...] | None:
        return next((pkgs for _, pkgs in self.lines(name + "\t")), None)


@lru_cache(maxsize=1)
def _index() -> _Index:
    raw = read_bytes("debian-sonames.tsv.gz")
    return _Index(gzip.decompress(raw).decode("utf-8"))


def index_source() -> str:
    return _index().source


def debian_packages(name: str, *, versioned: bool = False) -> tuple[str, ...]:
    """Packages shipping a library of this name.  An unversioned ``libfoo.so`` is the
    development link (``libfoo-dev``); ``versioned=True`` asks instead for the packages
    of every ``libfoo.so.N``, what ``find_library('foo')`` finds at run time."""
    if "\n" in name or "\t" in name:
        return ()
    idx = _index()
    if not versioned:
        exact = idx.get(name)
        if exact is not None:
            return exact
    if name.endswith(".so"):
        found: list[str] = []
        for _, pkgs in idx.lines(name + "."):
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
