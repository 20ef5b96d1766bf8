"""Phantom dependencies: what a package needs from outside without declaring it anywhere.

Every binary dependency edge of a scanned target (and every run-time load found statically)
falls in one :class:`Category`, judged in this order:

``platform``
    The platform itself, which no metadata declares: the C library family and the dynamic
    loader (glibc's ``libc``/``libm``/``libpthread``/``libdl``/``librt``/``ld-linux``..., musl),
    operating-system libraries (Windows system DLLs and API sets, the macOS shared cache),
    the language runtime (:attr:`EdgeClass.RUNTIME`: the Python DLL, the VC++ runtime), and
    the compiler runtimes ``libgcc_s``/``libstdc++`` *only* when the wheel's platform policy
    (manylinux, musllinux) guarantees them.  Elsewhere a compiler runtime maps to
    ``dep:virtual/compiler/*`` and is phantom unless declared; ``libgfortran``, ``libgomp``
    and the like are never platform.
``bundled-and-recorded``
    Shipped in the package, and a shipped SBOM records it (:func:`sbom_covers`).
``internal``
    Shipped in the package and the project's own (``libc10.so`` in torch): not vendored by a
    repair tool, not a library the DepURL registry knows, and not identified as a third-party
    project.
``bundled-unrecorded``
    A third-party library shipped in the package that no shipped SBOM records.
``declared``
    Needed from outside and declared: its DepURL (or one it provides, such as the BLAS
    interface) is in the PEP 725 ``[external]`` table or ``Requires-External(-Dep)``, or a
    distribution in ``Requires-Dist`` provides it (found in that distribution, or a library
    such a distribution is known to ship: ``libcublas`` from ``nvidia-cublas-cu12``).
``phantom``
    Needed from outside (system, missing, policy-system, or another distribution not
    required) and declared nowhere: it works only where someone installed it by other means.
"""

from __future__ import annotations

import enum
import functools
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from unveil.errors import UnveilError
from unveil.identify.banners import dehash
from unveil.identify.depurl import depurl_for
from unveil.identify.sboms import DistSbomReader, ShippedSbom, read_dist_sboms, sbom_covers
from unveil.identify.vendoring import vendoring_tool
from unveil.model import (
    Component,
    Edge,
    EdgeClass,
    Evidence,
    LinkKind,
    Location,
    Outcome,
    ScannedBinary,
    TargetResult,
)
from unveil.report.pep725 import core_metadata, is_platform_library, read_declared, toml_or_none
from unveil.sources.fs import FileSystem, Kind

__all__ = [
    "Category",
    "Declared",
    "PhantomFinding",
    "classify_declarations",
    "declared_from_text",
    "read_wheel_declarations",
]

_MAX_TEXT = 16 * 1024 * 1024
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
_COMPILER_RUNTIME = re.compile(r"^(?:libgcc_s\.so\.1|libstdc\+\+\.so\.6)$")

#: Libraries that distributions on PyPI ship for others to link, by file-name stem (hash and
#: ABI number removed) -> the normalised distribution name prefix that provides them.
_PROVIDED_BY: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), d) for p, d in (
        (r"^libcublas(?:lt)?$", "nvidia-cublas"),
        (r"^libcudnn", "nvidia-cudnn"),
        (r"^libcufft", "nvidia-cufft"),
        (r"^libcurand$", "nvidia-curand"),
        (r"^libcusolver", "nvidia-cusolver"),
        (r"^libcusparselt$", "nvidia-cusparselt"),
        (r"^libcusparse$", "nvidia-cusparse"),
        (r"^libnccl$", "nvidia-nccl"),
        (r"^libnvjitlink$", "nvidia-nvjitlink"),
        (r"^libcudart$", "nvidia-cuda-runtime"),
        (r"^libnvrtc", "nvidia-cuda-nvrtc"),
        (r"^libcupti$", "nvidia-cuda-cupti"),
        (r"^libnvtoolsext$", "nvidia-nvtx"),
        (r"^libcufile", "nvidia-cufile"),
        (r"^libnvshmem", "nvidia-nvshmem"),
        (r"^libiomp5(?:md)?$", "intel-openmp"),
        (r"^libmkl_", "mkl"),
        (r"^libtbb", "tbb"),
        (r"^libscipy_openblas", "scipy-openblas"),
        (r"^lib(?:arrow|parquet)", "pyarrow"),
        (r"^lib(?:torch|c10)", "torch"),
    ))


class Category(enum.Enum):
    PLATFORM = "platform"
    BUNDLED_RECORDED = "bundled-and-recorded"
    INTERNAL = "internal"
    BUNDLED_UNRECORDED = "bundled-unrecorded"
    DECLARED = "declared"
    PHANTOM = "phantom"


@dataclass(frozen=True, slots=True)
class Declared:
    """What a distribution declares about its dependencies.

    ``depurls`` are DepURLs without version or marker (PEP 725 ``[external]`` of a source
    tree's or sdist's ``pyproject.toml``, core metadata ``Requires-External-Dep`` and the
    legacy ``Requires-External``); ``requires_dist`` are normalised distribution names from
    ``Requires-Dist`` (or ``[project] dependencies``), extras included; ``sboms`` the SBOMs it
    ships.  With ``distribution`` set, only that distribution's binaries are classified.
    """

    depurls: frozenset[str] = frozenset()
    requires_dist: frozenset[str] = frozenset()
    sboms: tuple[ShippedSbom, ...] = ()
    distribution: str | None = None
    sources: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    def merge(self, other: Declared) -> Declared:
        return Declared(self.depurls | other.depurls, self.requires_dist | other.requires_dist,
                        self.sboms + tuple(s for s in other.sboms if s not in self.sboms),
                        self.distribution or other.distribution,
                        self.sources + other.sources, self.problems + other.problems)


@dataclass(frozen=True, slots=True)
class PhantomFinding:
    """One dependency judged against what the package declares.

    ``requester`` is the binary (or the source file of a run-time load) that needs
    ``request``; ``depurl`` what it maps to; ``reason`` says why the category was chosen.
    """

    category: Category
    requester: str
    request: str
    edge: Edge
    depurl: str | None
    reason: str
    distribution: str | None = None
    link: LinkKind = LinkKind.DYNAMIC
    candidates: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------- declarations


@functools.lru_cache(maxsize=1024)
def _norm_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(values: Iterable[Any]) -> set[str]:
    out: set[str] = set()
    for v in values:
        if isinstance(v, str):
            m = _REQUIREMENT.match(v)
            if m:
                out.add(_norm_dist(m.group(1)))
    return out


def declared_from_text(text: str, source: str = "") -> Declared:
    """The declarations in one ``pyproject.toml`` or core-metadata (METADATA, PKG-INFO)
    text."""
    problems: list[str] = []
    try:
        depurls = {d.lower() for d in read_declared(text)}
    except (ValueError, TypeError) as e:
        depurls = set()
        problems.append(f"{source}: unreadable declarations: {e}")
    requires: set[str] = set()
    name: str | None = None
    data = toml_or_none(text)
    if data is not None:
        project = data.get("project")
        if isinstance(project, dict):
            deps = project.get("dependencies")
            requires |= _requirement_names(deps if isinstance(deps, list) else ())
            optional = project.get("optional-dependencies")
            if isinstance(optional, dict):
                for group in optional.values():
                    requires |= _requirement_names(group if isinstance(group, list) else ())
            if isinstance(project.get("name"), str):
                name = project["name"]
    else:
        fields = core_metadata(text)
        requires |= _requirement_names(fields.get("requires-dist", ()))
        name = next(iter(fields.get("name", ())), None)
    return Declared(frozenset(depurls), frozenset(requires), (),
                    name.strip() if isinstance(name, str) and name.strip() else None,
                    (source,) if source else (), tuple(problems))


def _read_text(fs: FileSystem, path: str) -> tuple[str | None, str | None]:
    try:
        real = fs.resolve(path)
        if real is None or fs.kind(real) is not Kind.FILE:
            return None, None
        if fs.size_hint(real) > _MAX_TEXT:
            return None, f"{path}: larger than {_MAX_TEXT} bytes: skipped"
        blob = fs.open_blob(real)
        try:
            if blob.size > _MAX_TEXT:
                return None, f"{path}: larger than {_MAX_TEXT} bytes: skipped"
            return blob.read(0, blob.size).decode("utf-8", "replace"), None
        finally:
            blob.close()
    except (UnveilError, OSError, ValueError) as e:
        return None, f"{path}: unreadable: {e}"


def read_wheel_declarations(fs: FileSystem, dist_info_dir: str, *,
                            read_sboms: DistSbomReader | None = None) -> Declared:
    """What one installed distribution declares: ``METADATA`` (or ``PKG-INFO``) and any
    ``pyproject.toml`` in ``dist_info_dir``, and the SBOMs it ships (read by ``read_sboms``,
    :func:`~unveil.identify.sboms.read_dist_sboms` unless given).

    ``dist_info_dir`` is a ``*.dist-info`` or ``*.egg-info`` directory, or the top of an
    unpacked sdist or source tree (``pyproject.toml`` and ``PKG-INFO`` beside each other).
    """
    out = Declared()
    problems: list[str] = []
    base = dist_info_dir.rstrip("/")
    for name in ("METADATA", "PKG-INFO", "pyproject.toml"):
        path = f"{base}/{name}"
        text, why = _read_text(fs, path)
        if why:
            problems.append(why)
        if text is not None:
            out = out.merge(declared_from_text(text, path))
    if base.endswith(".dist-info"):
        sboms, why_list = (read_sboms or read_dist_sboms)(fs, base)
        out = out.merge(Declared(sboms=tuple(sboms), problems=tuple(why_list)))
    if out.distribution is None:
        m = re.match(r"^(.+?)(?:-[^-]+)?\.(?:dist|egg)-info$", posixpath.basename(base))
        if m:
            out = out.merge(Declared(distribution=m.group(1)))
    return out.merge(Declared(problems=tuple(problems))) if problems else out


# --------------------------------------------------------------------------- classification


def _urls(names: Iterable[str | None]) -> list[str]:
    """The DepURLs of ``names`` (and those they provide), registry-canonical ones first, then
    in the order given (best source first)."""
    return list(_urls_of(tuple(names)))


@functools.lru_cache(maxsize=4096)
def _urls_of(names: tuple[str | None, ...]) -> tuple[str, ...]:
    canonical: list[str] = []
    other: list[str] = []
    for n in names:
        if not n:
            continue
        try:
            d = depurl_for(n)
        except ValueError:
            continue
        (canonical if d.canonical else other).append(d.url.lower())
        other.extend(p.lower() for p in d.provides)
    return tuple(dict.fromkeys(canonical + other))


def _url(name: str) -> str | None:
    try:
        return depurl_for(posixpath.basename(name) or name).url
    except ValueError:
        return None


_FIND_LIBRARY = re.compile(r"^find_library\((['\"])(?P<stem>[^'\"]+)\1\)")


def _request_name(request: str) -> str:
    """The library a request names: ``find_library('ssl') -> libssl.so.3`` and
    ``find_library('ssl')`` name ``libssl``; a path names its file."""
    m = _FIND_LIBRARY.match(request)
    if m:
        stem = m.group("stem")
        return stem if stem.startswith("lib") else f"lib{stem}"
    return posixpath.basename(request) or request


def _edge_urls(e: Edge, target: ScannedBinary | None) -> list[str]:
    """From the file name first (a distro package name such as ``libfribidi0`` is a worse
    DepURL than ``fribidi``), then who identified the file."""
    names: list[str | None] = [_request_name(e.resolution.request)]
    if e.component is not None:
        names += [e.component.purl, e.component.name]
    if target is not None:
        own = _url(_request_name(e.resolution.request))
        for c in _identified(target):
            if own is not None and _url(c.name) == own:
                names += [c.purl, c.name]
    return _urls(names)


def _declared_urls(declared: Declared) -> set[str]:
    out: set[str] = set()
    for d in declared.depurls:
        out.add(d.lower())
        try:
            out.update(p.lower() for p in depurl_for(d).provides)
        except ValueError:
            continue
    return out


def _generic_core(url: str) -> str | None:
    """``dep:generic/libfribidi`` and ``dep:generic/fribidi`` -> ``fribidi``: a non-canonical
    DepURL made from a file name still matches the project's declared one."""
    if not url.startswith("dep:generic/"):
        return None
    n = re.sub(r"[^a-z0-9+]", "", url[len("dep:generic/"):].lower())
    if n.startswith("lib") and len(n) > 3:
        n = n[3:]
    return n.rstrip("0123456789") or n or None


def _stem(request: str) -> str:
    return dehash(posixpath.basename(request)).split(".", 1)[0].lower()


def _required_provider(request: str, provider: str | None,
                       requires: frozenset[str]) -> str | None:
    """The required distribution that provides ``request``, if any."""
    wanted: list[str] = []
    if provider:
        wanted.append(_norm_dist(provider.replace("/", "-")))
    stem = _stem(request)
    wanted += [d for pattern, d in _PROVIDED_BY if pattern.search(stem)]
    for w in wanted:
        for r in sorted(requires):
            if r == w or (r.startswith(w) and r[len(w)] in "-0123456789") or \
                    w.startswith(r + "-"):
                return r
    return None


def _identified(target: ScannedBinary) -> tuple[Component, ...]:
    """The binary's components that name a project (not the stand-in for a file nothing
    names, which is named after the file and would match its own name)."""
    return tuple(c for c in target.components if not c.unidentified)


def _third_party(e: Edge, target: ScannedBinary | None) -> bool:
    """A bundled library that is not the project's own: vendored by a repair tool, known to
    the DepURL registry, or identified as the project its file name names."""
    loc = e.location
    if loc is not None and vendoring_tool(loc.path) is not None:
        return True
    request = posixpath.basename(e.resolution.request) or e.resolution.request
    try:
        named = depurl_for(request)
    except ValueError:
        return False
    if named.canonical:
        return True
    if target is None:
        return False
    return any(_url(c.name) == named.url for c in _identified(target))


@dataclass(frozen=True, slots=True)
class _Context:
    by_location: dict[Location, ScannedBinary]
    declared: Declared
    declared_urls: set[str]
    declared_cores: frozenset[str]
    #: what only the library an edge reaches decides, asked once per library: a
    #: library a hundred binaries need (libc10.so in torch) is one question, not a hundred
    urls: dict[tuple[str, Location | None, Component | None], list[str]] = field(
        default_factory=dict)
    covered: dict[tuple[str, str, Location | None, str | None], Evidence | None] = field(
        default_factory=dict)


def _classify_edge(e: Edge, requester: str, distribution: str | None,
                   ctx: _Context) -> PhantomFinding:
    r = e.resolution
    declared = ctx.declared
    target = ctx.by_location.get(e.location) if e.location is not None else None
    key = (r.request, e.location, e.component)
    urls = ctx.urls.get(key)
    if urls is None:
        urls = ctx.urls[key] = _edge_urls(e, target)

    def done(category: Category, reason: str) -> PhantomFinding:
        return PhantomFinding(category, requester, r.request, e, urls[0] if urls else None,
                              reason, distribution, e.link, tuple(urls))

    if e.edge_class is EdgeClass.RUNTIME:
        return done(Category.PLATFORM, f"provided by the language runtime ({e.provider})")
    if is_platform_library(e):
        return done(Category.PLATFORM, "the C runtime, its loader or an operating-system "
                                       "library: the platform, not a dependency")
    if e.edge_class is EdgeClass.BUNDLED:
        loc = e.location
        member = loc.path if loc is not None else r.request
        path = r.path or r.request
        owner = (target.distribution if target else None) or distribution
        at = (path, member, loc, owner)
        if at in ctx.covered:
            covered = ctx.covered[at]
        else:
            covered = ctx.covered[at] = sbom_covers(
                path, member, target.sha256 if target else None,
                target.binary.soname if target else None, declared.sboms,
                distribution=owner, identified=_identified(target) if target else ())
        if covered is not None:
            return done(Category.BUNDLED_RECORDED, f"shipped, recorded in {covered.detail}")
        if not _third_party(e, target):
            return done(Category.INTERNAL, "shipped, the project's own library")
        return done(Category.BUNDLED_UNRECORDED,
                    f"shipped as {member}, recorded in no shipped SBOM")
    hit = next((u for u in urls if u in ctx.declared_urls), None) or next(
        (u for u in urls if _generic_core(u) in ctx.declared_cores), None)
    if hit is not None:
        return done(Category.DECLARED, f"declared as {hit}")
    req = _required_provider(r.request, e.provider, declared.requires_dist)
    if req is not None:
        return done(Category.DECLARED, f"provided by {req}, which Requires-Dist names")
    if _COMPILER_RUNTIME.match(posixpath.basename(r.request)) and (
            e.policy_allowed or e.edge_class is EdgeClass.POLICY_SYSTEM):
        return done(Category.PLATFORM, "compiler runtime guaranteed by the platform policy "
                                       "(declare dep:virtual/compiler/* in build-requires)")
    where = {
        EdgeClass.SYSTEM: f"found on the system at {r.path}" if r.path else "system",
        EdgeClass.POLICY_SYSTEM: "left to the system by the platform policy",
        EdgeClass.MISSING: "not found",
        EdgeClass.OPTIONAL: "not found, optional (weak or delay-load import)",
        EdgeClass.OTHER_DISTRIBUTION: f"provided by distribution {e.provider}, which "
                                      "Requires-Dist does not name (maybe transitively)",
    }.get(e.edge_class, e.edge_class.value)
    target_url = f" ({urls[0]})" if urls else ""
    return done(Category.PHANTOM, f"needed from outside{target_url}, {where}; declared nowhere")


def _same_dist(a: str | None, b: str | None) -> bool:
    return a is None or b is None or _norm_dist(a) == _norm_dist(b)


def classify_declarations(result_target: TargetResult, declared: Declared) -> list[PhantomFinding]:
    """One finding per dependency edge of the target's binaries and per run-time load, in scan
    order.  With ``declared.distribution`` set, other distributions' binaries are skipped.

    A run-time load tries names in order: the first name that loads is judged; when none does,
    a declared name makes it declared, else the first name is the phantom.
    """
    urls = _declared_urls(declared)
    cores = frozenset(c for c in map(_generic_core, urls) if c)
    ctx = _Context({b.location: b for b in result_target.binaries}, declared, urls, cores)
    out: list[PhantomFinding] = []
    for b in result_target.binaries:
        if not _same_dist(declared.distribution, b.distribution):
            continue
        out.extend(_classify_edge(e, str(b.location), b.distribution, ctx) for e in b.edges)
    for dl in result_target.dynamic_loads:
        if not dl.edges or not _same_dist(declared.distribution, dl.distribution):
            continue
        found = [e for e in dl.edges if e.resolution.outcome is Outcome.FOUND]
        if not found and all(e.edge_class is EdgeClass.OPTIONAL for e in dl.edges):
            continue  # tests or examples the package ships: not needed when it is used
        chosen = found[:1] or list(dl.edges)
        findings = [_classify_edge(e, dl.site.file, dl.distribution, ctx) for e in chosen]
        best = next((f for f in findings if f.category is not Category.PHANTOM), findings[0])
        out.append(best)
    return out
