"""PEP 725 ``[external]`` metadata: suggest the table a maintainer should declare, and read
the one a project or a wheel already declares.

A suggestion lists what the scanned binaries need from outside the package, each entry with
the evidence (which binary needs which library, and how the scan classed it):

* ``host-requires``: libraries the project's own binaries link to: those the package does not
  ship (system, missing, policy-system), plus those a repair tool vendored into the wheel
  (auditwheel, delocate, delvewheel), since building from source needs them.  What a vendored
  library itself links to is that library's business, not a direct need of the project.
* ``dependencies``: what the installed package needs at run time from outside: the same
  non-vendored libraries (including what vendored libraries need), plus those only loaded
  with ``dlopen``.
* ``build-requires``: the compilers whose runtime libraries the project's binaries link
  (``libstdc++`` means a C++ compiler), which is how PEP 725 declares a compiler runtime.

The C library and its loader (glibc, musl) and the operating system's own libraries (Windows
system DLLs, the macOS shared cache) are the platform, not dependencies, and are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from unveil.identify.depurl import DepUrl, depurl_for
from unveil.identify.vendoring import vendoring_tool
from unveil.model import (
    Component,
    Edge,
    EdgeClass,
    LinkKind,
    Outcome,
    Rule,
    ScannedBinary,
    ScanResult,
)

__all__ = ["GROUPS", "is_platform_library", "read_declared", "suggest_external"]

#: The array keys of ``[external]`` and the tables of optional groups beside them.
GROUPS: tuple[str, ...] = ("build-requires", "host-requires", "dependencies")
_OPTIONAL = ("optional-build-requires", "optional-host-requires", "optional-dependencies")

_LIBC = re.compile(
    r"^(?:libc\.so\.6|libm\.so\.6|libdl\.so\.2|librt\.so\.1|libpthread\.so\.0|libutil\.so\.1"
    r"|libanl\.so\.1|libmvec\.so\.1|libresolv\.so\.2|libnsl\.so\.1|libBrokenLocale\.so\.1"
    r"|libthread_db\.so\.1|libc_malloc_debug\.so\.0|libnss_[a-z]+\.so\.2"
    r"|ld-linux(?:-[a-z0-9_-]+)?\.so\.\d+|ld64\.so\.\d+|ld\.so\.\d+"
    r"|libc\.so|libc\.musl-[a-z0-9_]+\.so\.1|ld-musl-[a-z0-9_]+\.so\.1)$")
_OS_RULES = frozenset({Rule.API_SET, Rule.KNOWN_DLLS, Rule.SYSTEM32, Rule.SHARED_CACHE})
_OUTSIDE = (EdgeClass.SYSTEM, EdgeClass.MISSING, EdgeClass.POLICY_SYSTEM)
_MAX_EVIDENCE = 3
_COMPILER = "dep:virtual/compiler/"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_platform_library(e: Edge) -> bool:
    """The C runtime (libc, libm, the dynamic loader...) or an operating-system library: the
    platform itself, which ``[external]`` does not declare."""
    r = e.resolution
    name = r.request.rsplit("/", 1)[-1]
    if _LIBC.match(name):
        return True
    # find_library('pthread') is resolved to a file: judge that file's name
    if r.request.startswith("find_library(") and r.path and _LIBC.match(
            r.path.rsplit("/", 1)[-1]):
        return True
    if r.rule in _OS_RULES:
        return True
    return r.request.startswith(("/usr/lib/libSystem", "/System/Library/"))


#: Evidence methods of a component that is an installed package, not an upstream project.
_PACKAGE_MANAGERS = frozenset({"dpkg", "rpm", "apk", "conda"})


@dataclass
class _Entry:
    dep: DepUrl
    evidence: list[str] = field(default_factory=list)


def _pick(names: list[str | None], fallback: str) -> DepUrl:
    """The first canonical DepURL among ``names``, else the one for ``fallback``."""
    for n in names:
        if n:
            d = depurl_for(n)
            if d.canonical:
                return d
    return depurl_for(fallback)


def _best(e: Edge, ident: Component | None = None) -> DepUrl:
    """The DepURL for an edge: from what identified the library, else its file name."""
    c = ident or e.component
    request = e.resolution.request
    if c is None:
        return depurl_for(request)
    if any(ev.method in _PACKAGE_MANAGERS for ev in c.evidence):
        # A distro package name (libexpat1, libfribidi0) is a worse DepURL than the
        # library's own name (expat): the file name first.
        return _pick([c.purl, request, c.name], request)
    return _pick([c.purl, c.name, request], c.name)


def _own_component(e: Edge, target: ScannedBinary | None) -> Component | None:
    """Who the vendored file is: the component its file name names when there is one
    (``components[0]`` may be a library embedded in it), else the first, unless nothing
    names the file (then what it embeds is not who it is)."""
    if target is None or not target.components:
        return None
    named = depurl_for(e.resolution.request).url
    first = target.components[0]
    return next((c for c in target.components
                 if not c.unidentified and depurl_for(c.name).url == named),
                None if first.unidentified else first)


def _clean(text: str) -> str:
    return _CONTROL.sub("?", text)


def _evidence(b: ScannedBinary, e: Edge) -> str:
    r = e.resolution
    how = e.edge_class.value
    if e.link is LinkKind.DLOPEN:
        how += ", dlopen"
    elif e.link is LinkKind.STATIC:
        how += ", static"
    if r.outcome is Outcome.FOUND and r.path:
        how += f": {r.path}"
    elif e.edge_class is EdgeClass.MISSING:
        how += ": not found"
    return f"{b.location.path} needs {r.request} ({how})"


def suggest_external(result: ScanResult) -> str:
    """The ``[external]`` table (TOML text) for the scanned packages, with a comment per
    entry giving the evidence.  Parse it with :mod:`tomllib` to use the values."""
    groups: dict[str, dict[str, _Entry]] = {g: {} for g in GROUPS}

    def add(group: str, dep: DepUrl, why: str) -> None:
        entry = groups[group].setdefault(dep.url, _Entry(dep))
        if why not in entry.evidence:
            entry.evidence.append(why)

    for t in result.targets:
        by_location = {x.location: x for x in t.binaries}
        for b in t.binaries:
            # A library a repair tool vendored was built elsewhere: what it needs is a run-time
            # need of this wheel, but not something this project's own build links.
            vendored = vendoring_tool(b.location.path) is not None
            for e in b.edges:
                if e.edge_class in _OUTSIDE:
                    if is_platform_library(e):
                        continue
                    dep = _best(e)
                    why = _evidence(b, e)
                    if dep.url.startswith(_COMPILER):
                        if not vendored:
                            add("build-requires", dep, why)
                        continue
                    if e.link is not LinkKind.DLOPEN and not vendored:
                        add("host-requires", dep, why)
                    if e.link is not LinkKind.STATIC:
                        add("dependencies", dep, why)
                elif e.edge_class is EdgeClass.BUNDLED and e.location is not None \
                        and not vendored:
                    tool = vendoring_tool(e.location.path)
                    if tool is None:
                        continue
                    target = by_location.get(e.location)
                    dep = _best(e, _own_component(e, target))
                    add("build-requires" if dep.url.startswith(_COMPILER) else "host-requires",
                        dep, f"{b.location.path} needs {e.resolution.request} "
                             f"(vendored by {tool} as {e.location.path})")

    names = sorted({d.name for t in result.targets for d in t.distributions})
    lines = [f"# [external] (PEP 725) suggested by unveil for {', '.join(names) or 'the scan'}.",
             "# DepURLs come from the PEP 804 central registry where it has the library;",
             "# review every entry, especially those marked non-canonical.",
             "[external]"]
    if not any(groups.values()):
        lines.append("# no library from outside the package was found")
    for g in GROUPS:
        entries = groups[g]
        if not entries:
            continue
        lines.append(f"{g} = [")
        for url in sorted(entries):
            entry = entries[url]
            shown = entry.evidence[:_MAX_EVIDENCE]
            lines.extend(f"    # {_clean(w)}" for w in shown)
            if len(entry.evidence) > len(shown):
                lines.append(f"    # ... and {len(entry.evidence) - len(shown)} more")
            if not entry.dep.canonical:
                lines.append("    # non-canonical: not in the PEP 804 registry; check the name")
            lines.append(f"    {_toml_string(url)},")
        lines.append("]")
    return "\n".join(lines) + "\n"


def _toml_string(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", out) + '"'


_VERSION = re.compile(r"@[^?#]*")
_LEGACY_VERSION = re.compile(r"\s*\(.*\)\s*$")


def _strip(spec: str) -> str:
    """A declared DepURL without its environment marker and version."""
    return _VERSION.sub("", spec.split(";", 1)[0].strip(), count=1)


def _from_table(data: dict[str, Any]) -> set[str]:
    ext = data.get("external")
    out: set[str] = set()
    if not isinstance(ext, dict):
        return out
    lists: list[Any] = [ext.get(g) for g in GROUPS]
    for opt in _OPTIONAL:
        table = ext.get(opt)
        if isinstance(table, dict):
            lists.extend(table.values())
    for items in lists:
        if isinstance(items, list):
            out.update(_strip(s) for s in items if isinstance(s, str) and s.strip())
    return out


def read_declared(text: str) -> set[str]:
    """The DepURLs declared in a ``pyproject.toml`` ``[external]`` table (every group,
    optional ones included) or in wheel/sdist core metadata (``Requires-External-Dep``, and
    the legacy ``Requires-External``, whose names are mapped to DepURLs with
    :func:`~unveil.identify.depurl.depurl_for`).

    Versions and environment markers are removed, so the set compares with a suggestion.
    """
    data = toml_or_none(text)
    if data is not None:
        return _from_table(data)
    fields = core_metadata(text)
    out = {_strip(v) for v in fields.get("requires-external-dep", ()) if v.strip()}
    for v in fields.get("requires-external", ()):
        name = _LEGACY_VERSION.sub("", v.split(";", 1)[0]).strip()
        if name:
            out.add(depurl_for(name).url)
    return out


def toml_or_none(text: str) -> dict[str, Any] | None:
    """``text`` parsed as TOML, or ``None`` when it is not TOML (core metadata is not: its
    first line, ``Metadata-Version: 2.4``, is not a TOML key, which is checked first)."""
    if text.lstrip("\ufeff \t\r\n")[:17].lower() == "metadata-version:":
        return None
    import tomllib  # noqa: PLC0415 - only sources and sdists carry pyproject.toml

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


_HEADER = re.compile(r"([!-9;-~]+):[ \t]*(.*)")
#: the line breaks of email.parser (str.splitlines also breaks at \x0b, \x0c, \x85, \u2028...)
_LINES = re.compile(r"\r\n|\r|\n")


def core_metadata(text: str) -> dict[str, list[str]]:
    """The header fields of core metadata (METADATA, PKG-INFO), by lower-case name, values in
    order: ``Name: value`` lines, a line starting with white space continuing the previous
    value, the headers ending at the first line that is neither (the description body).

    This is what :class:`email.parser.HeaderParser` reads from such a file, written here
    because importing :mod:`email` took 10-12 ms of every wheel scan (``python -X
    importtime``), more than reading every METADATA of an environment."""
    out: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in _LINES.split(text):
        if line[:1] in (" ", "\t"):
            if last is not None:  # (a first line that continues nothing is skipped)
                last[-1] = f"{last[-1]} {line.strip()}".strip()
            continue
        m = _HEADER.fullmatch(line.rstrip())
        if m is None:
            break
        last = out.setdefault(m.group(1).lower(), [])
        last.append(m.group(2))
    return out
