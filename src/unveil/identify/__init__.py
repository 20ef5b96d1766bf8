"""Who is behind a binary: upstream project, version, and the evidence for the claim.

Sources, strongest first: SBOMs shipped in a package (not yet wired), a ``.note.package``
ELF note, the package manager owning the file (:mod:`unveil.identify.owners`), version
banners and version functions in the bytes (:mod:`unveil.identify.banners`, rules in
``unveil/data/identify-rules.json``), the build information of GCC's runtime libraries with
their symbol-version nodes as a lower bound (:mod:`unveil.identify.symvers`), and the file
name.  A soname's ABI number is never reported as a version.
"""

from __future__ import annotations

import functools
import posixpath
from dataclasses import replace

from packageurl import PackageURL

from unveil.errors import FormatError, SourceError
from unveil.formats.blob import Blob
from unveil.identify.banners import identify_bytes
from unveil.identify.buildinfo import buildinfo_components
from unveil.identify.owners import Owner
from unveil.identify.symvers import identify_runtime, merge_runtime
from unveil.model import Binary, Component, Evidence

__all__ = ["component_from_note", "component_from_owner", "identify_binary", "identify_file"]


def component_from_note(note: tuple[tuple[str, str], ...]) -> Component | None:
    """The ``.note.package`` (FDO packaging metadata) as a component."""
    d = dict(note)
    name = d.get("name")
    if not name:
        return None
    kind = d.get("type") or "generic"
    qualifiers = {}
    if d.get("architecture"):
        qualifiers["arch"] = d["architecture"]
    if d.get("os") and d.get("osVersion"):
        qualifiers["distro"] = f"{d['os']}-{d['osVersion']}"
    try:
        purl = PackageURL(type=kind if kind in ("deb", "rpm", "apk", "alpm") else "generic",
                          namespace=d.get("os") if kind in ("deb", "rpm", "apk") else None,
                          name=name, version=d.get("version"),
                          qualifiers=qualifiers or None).to_string()
    except ValueError:
        purl = None
    cpes = tuple(v for k, v in d.items() if k in ("appCpe", "osCpe") and v)
    return Component(name, d.get("version"), purl, cpes, (
        Evidence("package-note", f".note.package: {name} {d.get('version', '')}".strip(),
                 0.95, "name"),
        Evidence("package-note", f"version {d.get('version')}", 0.95, "version"),
    ))


@functools.lru_cache(maxsize=4096)
def component_from_owner(owner: Owner) -> Component:
    """The package owning a file, as a component with a distro purl (memoised: a scan asks
    for the same few system packages once per edge, and building a purl is not cheap)."""
    qualifiers = {}
    if owner.arch:
        qualifiers["arch"] = owner.arch
    if owner.distro:
        qualifiers["distro"] = owner.distro
    ns = owner.distro.split("-")[0] if owner.distro else None
    version = owner.version
    if owner.manager == "rpm" and version and ":" in version:
        qualifiers["epoch"], _, version = version.partition(":")  # purl-spec: a qualifier
    purl = PackageURL(type={"dpkg": "deb", "apk": "apk", "rpm": "rpm",
                            "conda": "conda"}[owner.manager],
                      namespace=ns if owner.manager != "conda" else None, name=owner.name,
                      version=version, qualifiers=qualifiers or None).to_string()
    detail = f"owned by {owner.manager} package {owner.name} {owner.version or ''}".strip()
    if owner.source and owner.source != owner.name:
        detail += f" (source package {owner.source})"
    return Component(owner.name, owner.version, purl, (), (
        Evidence(owner.manager, detail, 0.9, "name"),
        Evidence(owner.manager, detail, 0.9, "version"),
    ), source=owner.source)


def identify_binary(blob: Blob, path: str, binary: Binary) -> tuple[Component, ...]:
    """Components for one binary file, best first; never raises for bad bytes."""
    out: list[Component] = []
    if binary.package_note:
        c = component_from_note(binary.package_note)
        if c is not None:
            out.append(c)
    try:
        found = identify_bytes(blob, posixpath.basename(path), binary.soname)
    except (FormatError, SourceError):
        found = []
    names = {c.name for c in out}
    # The file's own identity first (the project its name says it is), then what is
    # embedded in it: model.ScannedBinary.components[0] is the file itself.
    found.sort(key=lambda c: not any(e.method == "filename" for e in c.evidence))
    found = [_banner_names(c) for c in found]
    try:
        runtime = identify_runtime(blob, path, binary)
    except (FormatError, SourceError):
        runtime = None
    if runtime is not None:
        # A GCC runtime library: its release from build information, a lower bound from its
        # symbol-version nodes.  The banner rules name most of them too: one component.
        same = next((i for i, c in enumerate(found) if c.name == runtime.name), None)
        if same is None:
            found.insert(0, runtime)
        else:
            found[same] = merge_runtime(found[same], runtime)
    out.extend(c for c in found if c.name not in names)
    return tuple(out)


def identify_file(blob: Blob, path: str,
                  binary: Binary) -> tuple[tuple[Component, ...], tuple[str, ...]]:
    """Everything identification reads in one file's bytes: :func:`identify_binary`, then the
    Go modules and Rust crates its toolchain recorded.  Returns (components, warnings about
    malformed build metadata); never raises for bad bytes."""
    comps = identify_binary(blob, path, binary)
    built, warnings = buildinfo_components(blob, binary)
    names = {c.name for c in comps}
    return (*comps, *(c for c in built if c.name not in names)), warnings


def _banner_names(c: Component) -> Component:
    """A banner that gives a version names the project too: say so in the name evidence."""
    if any(e.field == "name" and e.method != "filename" for e in c.evidence):
        return c
    extra = tuple(Evidence(e.method, e.detail, e.confidence, "name") for e in c.evidence
                  if e.field == "version" and e.method != "filename")
    return replace(c, evidence=extra + c.evidence) if extra else c
