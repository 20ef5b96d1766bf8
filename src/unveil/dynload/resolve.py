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
import posixpath
import re
from collections.abc import Callable

from unveil.dynload.javascript import detect_binding_gyp, detect_javascript
from unveil.dynload.python import detect_python
from unveil.dynload.ruby import detect_ruby
from unveil.loader.glibc import GlibcLoader
from unveil.model import Attempt, LoadSite, Outcome, Resolution, Rule, Verdict
from unveil.sources.fs import FileSystem, SymlinkLoop

__all__ = ["Detector", "detector_for", "resolve_name"]

Detector = Callable[[str, str], tuple[list[LoadSite], list[str]]]
_OTHER_PLATFORM = re.compile(r"\.(dll|dylib|pyd)$|\.framework/", re.IGNORECASE)


def detector_for(path: str) -> Detector | None:
    name = posixpath.basename(path)
    if name == "binding.gyp":
        return detect_binding_gyp
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    if ext == "py":
        return detect_python
    if ext in ("js", "mjs", "cjs"):
        return detect_javascript
    if ext == "rb":
        return detect_ruby
    return None


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


def resolve_name(site: LoadSite, name: str, loader: GlibcLoader, fs: FileSystem, *,
                 site_dir: str, caller: str | None) -> Resolution | None:
    """The resolution of one candidate name of a site, or None when it does not apply."""
    requester = f"{site.file}:{site.line}" if site.line else site.file
    if other_platform(name):
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
    if "*" in name:
        d, pat = posixpath.split(name if name.startswith("/") else
                                 posixpath.normpath(posixpath.join(site_dir, name)))
        try:
            real = fs.resolve(d)
        except SymlinkLoop:
            real = None
        hits = sorted(n for n in fs.listdir(real)) if real else []
        hits = [n for n in hits if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            return None  # a guess at a computed name: never reported missing
        path = f"{d}/{hits[0]}"
        return Resolution(requester, name, Outcome.FOUND, path, Rule.PATH, None,
                          (Attempt(path, Rule.PATH, Verdict.ACCEPTED, None, None,
                                   f"matches the pattern {pat}"),))
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
