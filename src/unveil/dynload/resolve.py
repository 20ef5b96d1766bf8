"""From predicted load sites to edges: which library each name would load, here.

* A ``find_library('magic')`` stem is looked up as CPython's ``ctypes.util`` does on
  glibc Linux: the first ``libmagic.*`` entry of the loader cache (``ldconfig -p`` order),
  whose name is then ``dlopen``-ed.  (Its gcc/ld fallbacks need a compiler at run time
  and are not modelled.)
* A plain name is ``dlopen``-ed as from the Python interpreter (no RPATH/RUNPATH), or from
  the binary holding a ``.note.dlopen`` entry.
* A path (``./_soundfile_data/libsndfile_x86_64.so``) is looked up in the scanned tree;
  a pattern with ``*`` (a name computed at run time) matches files there and is never
  reported missing.
* Names for another platform (``.dll``, ``.dylib`` on Linux) are left out of the edges.
"""

from __future__ import annotations

import fnmatch
import importlib
import posixpath
import re
from collections.abc import Callable

from unveil.loader.glibc import GlibcLoader
from unveil.model import Attempt, LoadSite, Outcome, Resolution, Rule, Verdict
from unveil.sources.fs import FileSystem, SymlinkLoop

__all__ = ["Detector", "detector_for", "detector_kind", "resolve_name"]

Detector = Callable[[str, str], tuple[list[LoadSite], list[str]]]
_OTHER_PLATFORM = re.compile(r"\.(dll|dylib|pyd)$|\.framework/", re.IGNORECASE)


_DETECTORS = {
    "gyp": ("unveil.dynload.javascript", "detect_binding_gyp"),
    "py": ("unveil.dynload.python", "detect_python"),
    "js": ("unveil.dynload.javascript", "detect_javascript"),
    "rb": ("unveil.dynload.ruby", "detect_ruby"),
}


def detector_kind(path: str) -> str | None:
    """Which detector a source needs ("py", "js", "rb", "gyp"), or None."""
    name = posixpath.basename(path)
    if name == "binding.gyp":
        return "gyp"
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    if ext in ("mjs", "cjs"):
        return "js"
    return ext if ext in ("py", "js", "rb") else None


def detector_for(path: str) -> Detector | None:
    """The detector for a source, imported on first use (the detectors are large and most
    scans of binaries never need them: importing all three cost ~130 ms of start-up)."""
    kind = detector_kind(path)
    if kind is None:
        return None
    module, func = _DETECTORS[kind]
    detector: Detector = getattr(importlib.import_module(module), func)
    return detector


def other_platform(name: str) -> bool:
    return bool(_OTHER_PLATFORM.search(name))


def _find_library(stem: str, loader: GlibcLoader) -> str | None:
    if loader.cache is None:
        return None
    pattern = re.compile(rf"lib{re.escape(stem)}\.\S+")
    flags = loader.platform.cache_flags
    for e in loader.cache.entries:
        if e.flags in flags and pattern.fullmatch(e.key):
            return e.key
    return None


_LIBRARY_FILE = re.compile(r"\.(so(\.[0-9]+)*|dylib|dll|node|pyd)$")
_MAX_GLOB = 256


def _glob(fs: FileSystem, pattern: str) -> list[str]:
    """Existing paths matching ``pattern`` (``*`` in any component), library files only."""
    parts = [p for p in pattern.split("/") if p]
    found = ["/"]
    for i, part in enumerate(parts):
        nxt: list[str] = []
        for base in found:
            try:
                real = fs.resolve(base)
            except SymlinkLoop:
                continue
            if real is None:
                continue
            names = fs.listdir(real)
            last = i == len(parts) - 1
            for n in sorted(names) if "*" in part or "?" in part else (
                    [part] if part in names else []):
                if fnmatch.fnmatchcase(n, part) and (not last or _LIBRARY_FILE.search(n)):
                    nxt.append(f"{base.rstrip('/')}/{n}")
                    if len(nxt) >= _MAX_GLOB:
                        break
        found = nxt
        if not found:
            break
    return found


def _addon(fs: FileSystem, directory: str) -> str | None:
    """The native addon node-gyp-build / bindings would load from a package directory:
    a prebuild for linux-x64 (glibc first), else build/Release."""
    for pattern in (f"{directory}/prebuilds/linux-x64/*glibc*.node",
                    f"{directory}/prebuilds/linux-x64/*.node",
                    f"{directory}/build/Release/*.node"):
        hits = [h for h in _glob(fs, pattern) if "musl" not in h or "musl" in pattern]
        if hits:
            return hits[0]
    return None


def resolve_name(site: LoadSite, name: str, loader: GlibcLoader, fs: FileSystem, *,
                 site_dir: str, caller: str | None) -> Resolution | None:
    """The resolution of one candidate name of a site, or None when it does not apply."""
    requester = f"{site.file}:{site.line}" if site.line else site.file
    if other_platform(name):
        return None
    if not site.stem and "/" not in name and ".so" not in name and "*" not in name and (
            site.api not in ("node-gyp-build", "bindings")):
        # A Linux shared library is a file named *.so*; a bare name (windll.kernel32,
        # CDLL("Security")) is another platform's, reached through code guarded by
        # sys.platform: not a dependency here.
        return None
    if site.stem:
        soname = _find_library(name, loader)
        if soname is None:
            return Resolution(requester, f"find_library({name!r})", Outcome.NOT_FOUND,
                              attempts=(Attempt(f"lib{name}.so*", Rule.CACHE, Verdict.ABSENT,
                                                None, None, "no such entry in the loader "
                                                "cache (ldconfig -p)"),))
        r = loader.dlopen(soname, caller)
        return Resolution(requester, f"find_library({name!r}) -> {soname}", r.outcome, r.path,
                          r.rule, r.origin, r.attempts, r.fatal)
    if site.api in ("node-gyp-build", "bindings") and not name.endswith(".node"):
        d = name if name.startswith("/") else posixpath.normpath(posixpath.join(site_dir, name))
        addon = _addon(fs, d)
        if addon is None:
            return None
        return Resolution(requester, name, Outcome.FOUND, addon, Rule.PATH, None,
                          (Attempt(addon, Rule.PATH, Verdict.ACCEPTED, None, None,
                                   "the prebuilt addon for linux-x64, or build/Release"),))
    if "*" in name:
        pattern = name if name.startswith("/") else posixpath.normpath(
            posixpath.join(site_dir, name))
        hits = _glob(fs, pattern)
        if not hits:
            return None  # a guess at a computed name: never reported missing
        path = hits[0]
        return Resolution(requester, name, Outcome.FOUND, path, Rule.PATH, None,
                          (Attempt(path, Rule.PATH, Verdict.ACCEPTED, None, None,
                                   f"matches the pattern {name}"),))
    if "/" in name:
        path = name if name.startswith("/") else posixpath.normpath(
            posixpath.join(site_dir, name))
        try:
            real = fs.resolve(path)
        except SymlinkLoop:
            real = None
        verdict = Verdict.ACCEPTED if real else Verdict.ABSENT
        return Resolution(requester, name, Outcome.FOUND if real else Outcome.NOT_FOUND,
                          path if real else None, Rule.PATH, None,
                          (Attempt(path, Rule.PATH, verdict),))
    r = loader.dlopen(name, caller)
    return Resolution(requester, name, r.outcome, r.path, r.rule, r.origin, r.attempts,
                      r.fatal)
