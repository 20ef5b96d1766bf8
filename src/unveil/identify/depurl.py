"""PEP 804 DepURLs for upstream projects and library file names, with the distro packages
that provide them.

The data is an offline copy of the PEP 804 central registry and its per-ecosystem mapping
files (``unveil/data/pep804/``, BSD-3-Clause, see ``SOURCE.txt`` there).  A name the registry
knows gives a *canonical* DepURL; anything else gives ``dep:generic/<name>`` marked
non-canonical, so a maintainer knows to check the spelling before publishing it.

The registry names projects, while a scan sees sonames and identified component names, so
two small tables bridge them: file-name stems (``libz`` -> ``zlib``) and project aliases
(``libjpeg-turbo`` -> ``libjpeg``).  An interface library (``libblas.so.3``) maps to the
registry's virtual DepURL, and a compiler's runtime (``libstdc++.so.6``, ``libgfortran.so.5``)
to the compiler, which is how PEP 725 declares it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Any

from packageurl import PackageURL

from unveil._data import read_text
from unveil.identify.banners import applicable_rules
from unveil.identify.rules import default_rules

__all__ = [
    "ECOSYSTEMS",
    "DepUrl",
    "depurl_for",
    "project_for_filename",
    "registry_ids",
]

#: The mapping files shipped, by ecosystem name (the file is ``<name>.mapping.json``).
ECOSYSTEMS: tuple[str, ...] = ("ubuntu", "fedora", "conda-forge", "homebrew", "arch", "pypi")

#: Library file-name stems (hash, ABI number and extension removed, lower case) -> project.
_STEMS: Mapping[str, str] = MappingProxyType({
    "libz": "zlib", "zlib": "zlib", "libzlib": "zlib",
    "libpng": "libpng",
    "libjpeg": "libjpeg", "libturbojpeg": "libjpeg", "jpeg": "libjpeg",
    "libtiff": "libtiff",
    "libwebp": "libwebp", "libwebpdemux": "libwebp", "libwebpmux": "libwebp",
    "libsharpyuv": "libwebp",
    "libssl": "openssl", "libcrypto": "openssl",
    "libffi": "libffi",
    "libgmp": "gmp",
    "liblcms": "lcms2", "liblcms2": "lcms2",
    "libfreetype": "freetype",
    "libxml": "libxml2", "libxml2": "libxml2",
    "libxslt": "libxslt", "libexslt": "libxslt",
    "libyaml": "libyaml",
    "libpq": "libpq",
    "libsodium": "libsodium",
    "libopenjp": "openjpeg", "libopenjp2": "openjpeg",
    "libxcb": "libxcb",
    "libimagequant": "libimagequant",
    "libraqm": "libraqm",
    "libtk": "tk",
    "libpython": "python",
    "libarrow": "arrow", "libarrow_python": "arrow", "libparquet": "arrow",
    "libllvm": "llvm", "libclang": "clang", "libclang-cpp": "clang",
    "libopenblas": "openblas", "libopenblasp-r": "openblas", "libopenblas64_": "openblas",
    "libscipy_openblas": "openblas", "libscipy_openblas64_": "openblas",
    "libblas": "blas", "libcblas": "blas",
    "liblapack": "lapack", "liblapacke": "lapack",
    "libgomp": "openmp", "libomp": "openmp", "libiomp": "openmp",
    "libmpi": "mpi", "libmpi_cxx": "mpi", "msmpi": "mpi",
    "libstdc++": "c++ runtime", "libc++": "c++ runtime",
    "libgcc_s": "c runtime",
    "libgfortran": "fortran runtime", "libquadmath": "fortran runtime",
    "libbrotlicommon": "brotli", "libbrotlidec": "brotli", "libbrotlienc": "brotli",
})

#: Project names (lower case) -> registry id, where the registry spells it otherwise.
_ALIASES: Mapping[str, str] = MappingProxyType({
    "libjpeg-turbo": "dep:generic/libjpeg", "jpeg-turbo": "dep:generic/libjpeg",
    "jpeg": "dep:generic/libjpeg", "ijg-libjpeg": "dep:generic/libjpeg",
    "lcms": "dep:generic/lcms2", "littlecms": "dep:generic/lcms2",
    "little-cms2": "dep:generic/lcms2",
    "freetype2": "dep:generic/freetype",
    "openjpeg2": "dep:generic/openjpeg", "openjp2": "dep:generic/openjpeg",
    "yaml": "dep:generic/libyaml",
    "postgresql": "dep:generic/libpq",
    "apache-arrow": "dep:generic/arrow",
    "tcl-tk": "dep:generic/tk",
    "cpython": "dep:generic/python",
    "xcb": "dep:generic/libxcb",
    "webp": "dep:generic/libwebp",
    "tiff": "dep:generic/libtiff",
    "ffi": "dep:generic/libffi",
    "scipy-openblas": "dep:generic/openblas",
    "blas": "dep:virtual/interface/blas", "cblas": "dep:virtual/interface/blas",
    "lapack": "dep:virtual/interface/lapack", "lapacke": "dep:virtual/interface/lapack",
    "openmp": "dep:virtual/interface/openmp", "libgomp": "dep:virtual/interface/openmp",
    "llvm-openmp": "dep:virtual/interface/openmp",
    "mpi": "dep:virtual/interface/mpi", "openmpi": "dep:virtual/interface/mpi",
    "mpich": "dep:virtual/interface/mpi",
    "c runtime": "dep:virtual/compiler/c", "libgcc": "dep:virtual/compiler/c",
    "c++ runtime": "dep:virtual/compiler/cxx", "libstdc++": "dep:virtual/compiler/cxx",
    "libc++": "dep:virtual/compiler/cxx",
    "fortran runtime": "dep:virtual/compiler/fortran",
    "libgfortran": "dep:virtual/compiler/fortran",
})

#: Spec prefixes/suffixes of cross-build or compatibility packages (MSYS2, MinGW, conda-forge
#: CDTs) that the mapping files list beside the native package; not what a user installs.
_CROSS = re.compile(r"^(m2-|m2w64-|mingw32-|mingw64-)|-cos[67]-")

_AUDITWHEEL_HASH = re.compile(r"-[0-9a-f]{8}(?=\.so)")
_DELVEWHEEL_HASH = re.compile(r"-[0-9a-f]{32}(?=\.dll$)", re.IGNORECASE)
_FILE = re.compile(r"^(?P<stem>.+?)(?:\.so(?:\.\d+)*|(?:\.\d+)*\.dylib|\.dll|\.pyd)$",
                   re.IGNORECASE)
_ARCH_SUFFIX = re.compile(r"-(x64|x86|arm64|win64|win32)$")
_TRAILING_VERSION = re.compile(r"[-_.]?\d+(?:[._-]\d+)*$")
_SEPARATED_VERSION = re.compile(r"[-_.]\d+(?:[._-]\d+)*$")


@dataclass(frozen=True, slots=True)
class DepUrl:
    """A DepURL with what the registry says about it.

    ``distro_packages`` and ``host_packages`` map an ecosystem (:data:`ECOSYSTEMS`) to the
    package specifiers that provide it at run time and for building against it (headers
    included); an ecosystem without a mapping is absent.  Specifiers are as the mapping files
    write them (conda-forge's can carry a build string: ``libblas * *_openblas``).
    """

    url: str
    canonical: bool
    distro_packages: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False)
    host_packages: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False)
    #: other DepURLs this one satisfies (``dep:generic/openblas`` provides the BLAS interface).
    provides: tuple[str, ...] = ()
    description: str | None = None


#: purl types whose names are an ecosystem's package names.
_PURL_ECOSYSTEM: Mapping[str, str] = MappingProxyType({
    "deb": "ubuntu", "rpm": "fedora", "conda": "conda-forge", "alpm": "arch",
    "brew": "homebrew", "homebrew": "homebrew", "pypi": "pypi",
})


@dataclass(frozen=True, slots=True)
class _Registry:
    ids: frozenset[str]
    descriptions: Mapping[str, str]
    provides: Mapping[str, tuple[str, ...]]
    run: Mapping[str, Mapping[str, tuple[str, ...]]]
    host: Mapping[str, Mapping[str, tuple[str, ...]]]
    #: (ecosystem, package name) -> the DepURL it provides (a concrete one before a virtual).
    packages: Mapping[tuple[str, str], str]
    #: lower-case repository name -> ``dep:github/<org>/<repo>`` (the first in sorted order)
    github: Mapping[str, str]


def _read(name: str) -> Any:
    text = read_text(f"pep804/{name}")
    return json.loads(text)


def _as_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _add(into: dict[str, dict[str, list[str]]], ecosystem: str, dep: str,
         specs: tuple[str, ...]) -> None:
    bucket = into.setdefault(dep, {}).setdefault(ecosystem, [])
    for s in specs:
        if s not in bucket and not _CROSS.search(s):
            bucket.append(s)


def _freeze(d: dict[str, dict[str, list[str]]]) -> Mapping[str, Mapping[str, tuple[str, ...]]]:
    return MappingProxyType({dep: MappingProxyType({eco: tuple(v) for eco, v in m.items() if v})
                             for dep, m in d.items()})


@cache
def _registry() -> _Registry:
    reg = _read("registry.json")
    ids: set[str] = set()
    descriptions: dict[str, str] = {}
    provides: dict[str, tuple[str, ...]] = {}
    for d in reg["definitions"]:
        ids.add(d["id"])
        descriptions[d["id"]] = d.get("description") or ""
        provides[d["id"]] = _as_tuple(d.get("provides"))
    run: dict[str, dict[str, list[str]]] = {}
    host: dict[str, dict[str, list[str]]] = {}
    for eco in ECOSYSTEMS:
        entries = _read(f"{eco}.mapping.json")["mappings"]
        by_id: dict[str, list[dict[str, Any]]] = {}
        for m in entries:
            by_id.setdefault(m["id"], []).append(m)
        for m in entries:
            specs_of = [m]
            if "specs_from" in m:
                specs_of = by_id.get(m["specs_from"], [])
            for source in specs_of:
                specs = source.get("specs")
                if isinstance(specs, dict):
                    _add(run, eco, m["id"], _as_tuple(specs.get("run")))
                    _add(host, eco, m["id"], _as_tuple(specs.get("host")))
                else:
                    _add(run, eco, m["id"], _as_tuple(specs))
                    _add(host, eco, m["id"], _as_tuple(specs))
    packages: dict[tuple[str, str], str] = {}
    for table in (run, host):
        for dep in sorted(table, key=lambda d: (d.startswith("dep:virtual/"), d)):
            for eco, specs in table[dep].items():
                for spec in specs:
                    packages.setdefault((eco, spec.split()[0].lower()), dep)
    github: dict[str, str] = {}
    for dep in sorted(ids):
        if dep.startswith("dep:github/"):
            github.setdefault(dep.rsplit("/", 1)[-1].lower(), dep)
    return _Registry(frozenset(ids), MappingProxyType(descriptions),
                     MappingProxyType(provides), _freeze(run), _freeze(host),
                     MappingProxyType(packages), MappingProxyType(github))


def registry_ids() -> frozenset[str]:
    """Every DepURL the bundled central registry defines."""
    return _registry().ids


def project_for_filename(filename: str) -> str | None:
    """The project a library file name or soname names (``libz.so.1`` -> ``zlib``), or
    ``None`` when it is not a library file name or the stem is unknown.

    Repair-tool hashes (auditwheel ``-<8 hex>``, delvewheel ``-<32 hex>``) are removed first,
    then the ABI number: a name is a hint, never a version.
    """
    return _stem_project(filename)[1]


def _stem_project(filename: str) -> tuple[str | None, str | None]:
    """(stem, project) of a library file name; the stem is ``None`` for non-library names."""
    base = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    base = _DELVEWHEEL_HASH.sub("", base)
    for _ in range(2):  # auditwheel re-vendoring hashes twice
        base = _AUDITWHEEL_HASH.sub("", base)
    m = _FILE.match(base)
    if m is None:
        return None, None
    stem = _ARCH_SUFFIX.sub("", m.group("stem").lower())
    if stem in _STEMS:
        return stem, _STEMS[stem]
    # A version after a separator first (libSDL2-2.0 -> libsdl2), then one run into the name
    # (libpng16 -> libpng, liblcms2 -> liblcms).
    for bare in dict.fromkeys((_SEPARATED_VERSION.sub("", stem),
                               _TRAILING_VERSION.sub("", stem).rstrip("-_"))):
        known = _STEMS.get(bare) or _rule_project(bare, base)
        if known is not None:
            return stem, known
    return stem, None


def _rule_project(bare: str, base: str) -> str | None:
    """The identification rule whose file glob is exactly this library's name: ``libfribidi*``
    names ``libfribidi.so.0``, but ``libSDL2*`` does not name ``libSDL2_image`` nor
    ``libyaml*`` ``libyaml-cpp`` (the globs only choose which banners to try)."""
    for rule in applicable_rules(default_rules(), base):
        for glob in rule.files:
            prefix = glob.split("*", 1)[0].rstrip(".").lower()
            if prefix == bare:
                return rule.project
    return None


def _generic(name: str) -> str:
    return "dep:" + PackageURL(type="generic", name=name).to_string()[len("pkg:"):]


def _make(url: str) -> DepUrl:
    reg = _registry()
    return DepUrl(url=url, canonical=url in reg.ids,
                  distro_packages=reg.run.get(url, MappingProxyType({})),
                  host_packages=reg.host.get(url, MappingProxyType({})),
                  provides=reg.provides.get(url, ()),
                  description=reg.descriptions.get(url))


def _lookup(name: str) -> str | None:
    """The registry id for a project name, or ``None``."""
    ids = _registry().ids
    key = name.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    for candidate in (f"dep:generic/{key}", f"dep:virtual/interface/{key}"):
        if candidate in ids:
            return candidate
    return _registry().github.get(key)  # dep:github/<org>/<repo>: the repository name


@lru_cache(maxsize=4096)  # a scan asks for the same few hundred names thousands of times
def depurl_for(project: str) -> DepUrl:
    """The DepURL for an upstream project name, a library file name/soname, a purl or a
    DepURL.

    ``depurl_for("zlib")`` and ``depurl_for("libz.so.1")`` give the canonical
    ``dep:generic/zlib``; ``depurl_for("libblas.so.3")`` the virtual BLAS interface;
    ``depurl_for("libpng")`` the non-canonical ``dep:generic/libpng`` (not in the registry).
    """
    text = project.strip()
    if not text:
        raise ValueError("empty project name")
    if text.startswith("dep:"):
        base = re.split(r"[@?#]", text, maxsplit=1)[0]
        if base in _registry().ids:
            return _make(base)
        return DepUrl(url=base, canonical=False)
    if text.startswith("pkg:"):
        try:
            purl = PackageURL.from_string(text)
        except ValueError:
            purl = None
        if purl is not None:
            text = purl.name
            eco = _PURL_ECOSYSTEM.get(purl.type)
            if eco is not None:
                # A distro package name (zlib1g, libpng16-16): the mapping files know some.
                known = _registry().packages.get((eco, text.lower()))
                if known is not None:
                    return _make(known)
                bare = _TRAILING_VERSION.sub("", text.lower())
                if purl.type != "pypi" and bare in _STEMS:
                    text = _STEMS[bare]
    stem, from_file = _stem_project(text)
    if from_file is not None:
        dep = _lookup(from_file)
        return _make(dep) if dep else DepUrl(url=_generic(from_file), canonical=False)
    dep = _lookup(text)
    if dep is not None:
        return _make(dep)
    name = stem if stem is not None else text.lower()
    return DepUrl(url=_generic(name), canonical=False)
