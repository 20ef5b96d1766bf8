"""The upstream C/C++ projects a scan depends on, aggregated: where to support them.

For each identified project: the versions seen, where to find it (homepage, source
repository), how many binaries carry or load it and from which distributions, and how it
arrives (vendored, statically embedded, from the system).  Unidentified libraries are
listed by name at the end, so the list says what it does not know.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from packageurl import PackageURL

from unveil.identify.owners import upstream_version
from unveil.model import Component, EdgeClass, ScanResult

__all__ = ["upstreams", "upstreams_json", "upstreams_text"]


@dataclass
class _Project:
    name: str
    versions: set[str] = field(default_factory=set)
    homepage: str | None = None
    source: str | None = None
    files: set[str] = field(default_factory=set)
    distributions: set[str] = field(default_factory=set)
    how: set[str] = field(default_factory=set)


def _project_of(c: Component) -> str:
    """A component its package's SBOM records as part of a Python distribution
    (``pkg:pypi/pillow@13.0.0#c-ext/PIL._avif``) is that distribution's code: one project,
    not one per extension module."""
    if c.purl and c.purl.startswith("pkg:pypi/"):
        try:
            return PackageURL.from_string(c.purl).name
        except ValueError:
            pass
    return c.name


def _upstream_version(c: Component) -> str | None:
    """A package manager's version reduced to the upstream release (zlib 1.2.13, not
    ``1:1.2.13.dfsg-1``); the component's purl and evidence keep the full string."""
    if not c.version or not {e.method for e in c.evidence} & {"dpkg", "rpm", "apk"}:
        return c.version
    return upstream_version(c.version)


def upstreams(result: ScanResult) -> list[dict[str, Any]]:
    projects: dict[str, _Project] = {}

    def add(name: str, version: str | None, homepage: str | None, source: str | None, *,
            file: str, dist: str | None, how: str) -> None:
        p = projects.setdefault(name, _Project(name))
        if version:
            p.versions.add(version)
        p.homepage = p.homepage or homepage
        p.source = p.source or source
        p.files.add(file)
        if dist:
            p.distributions.add(dist)
        p.how.add(how)

    unknown: dict[str, set[str]] = defaultdict(set)
    for t in result.targets:
        for b in t.binaries:
            for i, c in enumerate(b.components):
                if c.unidentified:  # the file itself, no project named
                    continue
                add(_project_of(c), c.version, c.homepage, c.source, file=b.location.path,
                    dist=b.distribution, how="embedded" if i else "bundled")
            for e in b.edges:
                if e.edge_class in (EdgeClass.SYSTEM, EdgeClass.POLICY_SYSTEM) and e.component:
                    c = e.component
                    add(c.source or c.name, _upstream_version(c), c.homepage, None,
                        file=e.resolution.path or e.resolution.request, dist=b.distribution,
                        how="system")
                elif e.edge_class is EdgeClass.MISSING:
                    unknown[e.resolution.request].add(b.location.path)
    out: list[dict[str, Any]] = [
        {"project": p.name, "versions": sorted(p.versions), "homepage": p.homepage,
         "source": p.source, "how": sorted(p.how), "files": len(p.files),
         "distributions": sorted(p.distributions)}
        for p in sorted(projects.values(), key=lambda p: (-len(p.files), p.name))]
    for name, files in sorted(unknown.items()):
        out.append({"project": None, "library": name, "how": ["missing"],
                    "files": len(files), "versions": [], "homepage": None, "source": None,
                    "distributions": []})
    return out


def upstreams_json(result: ScanResult) -> str:
    return json.dumps(upstreams(result), indent=2) + "\n"


def upstreams_text(result: ScanResult) -> str:
    lines = ["project\tversions\thow\tbinaries\twhere to support it"]
    for u in upstreams(result):
        name = u["project"] or f"(unidentified) {u['library']}"
        lines.append(f"{name}\t{', '.join(u['versions']) or '?'}\t{','.join(u['how'])}\t"
                     f"{u['files']}\t{u['source'] or u['homepage'] or ''}")
    return "\n".join(lines) + "\n"
