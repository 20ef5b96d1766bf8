"""``unveil why``: one dependency explained in plain language, with hints to fix it."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from unveil.loader.glibc import GlibcLoader
from unveil.model import Binary, Outcome, Resolution, Rule, Verdict
from unveil.sources.fs import FileSystem, SymlinkLoop

__all__ = ["Explanation", "describe_rule", "explain", "explain_resolution", "similar_files"]

_RULE_TEXT = {
    Rule.PATH: "the name contains a slash, so it is opened as a path",
    Rule.LOADED: "an object of that name or SONAME was already loaded",
    Rule.RPATH: "DT_RPATH",
    Rule.LD_LIBRARY_PATH: "LD_LIBRARY_PATH",
    Rule.RUNPATH: "DT_RUNPATH",
    Rule.CACHE: "/etc/ld.so.cache",
    Rule.DEFAULT: "a trusted default directory",
    Rule.LOADER_PATH: "@loader_path (the directory of the image with the load command)",
    Rule.EXECUTABLE_PATH: "@executable_path (the main executable's directory)",
    Rule.DYLD_LIBRARY_PATH: "DYLD_LIBRARY_PATH",
    Rule.DYLD_FALLBACK: "DYLD_FALLBACK_LIBRARY_PATH",
    Rule.SHARED_CACHE: "the macOS dyld shared cache",
    Rule.DLL_DIR: "the extension module's own directory",
    Rule.APP_DIR: "the application (Python installation) directory",
    Rule.DLL_DIRECTORY: "a directory added with os.add_dll_directory",
    Rule.KNOWN_DLLS: "Windows KnownDLLs",
    Rule.SYSTEM32: "System32",
    Rule.API_SET: "a Windows API-set contract",
}


@dataclass(frozen=True, slots=True)
class Explanation:
    request: str
    requester: str | None
    resolution: Resolution | None
    first: Resolution | None
    verdict: str
    hints: tuple[str, ...]
    similar: tuple[str, ...]


def describe_rule(rule: Rule | None, origin: str | None) -> str:
    if rule is None:
        return "no rule"
    text = _RULE_TEXT[rule]
    if rule in (Rule.RPATH, Rule.RUNPATH) and origin:
        return f"{text} of {origin}"
    if rule is Rule.LOADED and origin:
        return f"{text} ({origin})"
    if rule is Rule.CACHE and origin:
        return origin
    return text


def _stem(name: str) -> str:
    base = posixpath.basename(name)
    i = base.find(".so")
    return base[: i + 3] if i >= 0 else base


def similar_files(fs: FileSystem, r: Resolution, extra_dirs: tuple[str, ...] = (),
                  cache_keys: tuple[tuple[str, str], ...] = (), cwd: str = "/") -> tuple[str, ...]:
    """Files whose names share the request's stem (``libavcodec.so``), in the directories
    the loader searched and ``extra_dirs``, and in the cache (key, path) pairs."""
    stem = _stem(r.request)
    dirs: list[str] = []
    for a in r.attempts:
        d = posixpath.dirname(a.path) or "."
        if d not in dirs:
            dirs.append(d)
    for d in extra_dirs:
        if d not in dirs:
            dirs.append(d)
    out: list[str] = []
    low = stem.lower()
    for d in dirs:
        full = d if d.startswith("/") else posixpath.join(cwd, d)
        try:
            real = fs.resolve(full)
        except SymlinkLoop:
            continue
        if real is None:
            continue
        for n in sorted(fs.listdir(real)):
            if n.lower().startswith(low) and n != posixpath.basename(r.request):
                p = f"{d.rstrip('/')}/{n}"
                if p not in out:
                    out.append(p)
    for key, value in cache_keys:
        if key.startswith(stem) and key != r.request and value not in out:
            out.append(value)
    return tuple(out[:20])


_FIX_HINTS = {
    "glibc": ("if the library ships beside {req}, add its directory to its RUNPATH "
              "(e.g. patchelf --add-rpath '$ORIGIN/<dir>'), or bundle it with auditwheel "
              "repair; or install it in a directory of /etc/ld.so.conf and run ldconfig"),
    "musl": ("if the library ships beside {req}, add its directory to its RUNPATH; or list "
             "its directory in /etc/ld-musl-<arch>.path, or bundle it with auditwheel repair"),
    "dyld": ("bundle it next to {req} and reference it as @loader_path/... or @rpath/... "
             "with an LC_RPATH (install_name_tool -add_rpath), e.g. with delocate"),
    "windows": ("put the DLL next to {req}, or in a directory the package adds with "
                "os.add_dll_directory (delvewheel repair does both); PATH is not searched "
                "for extension modules since Python 3.8"),
}


def explain_resolution(r: Resolution, *, fs: FileSystem, flavor: str = "glibc",
                       first: Resolution | None = None, extra_dirs: tuple[str, ...] = (),
                       cache_keys: tuple[tuple[str, str], ...] = (),
                       cwd: str = "/") -> Explanation:
    """Verdict and hints for one resolution, whichever loader made it."""
    request = r.request
    hints: list[str] = []
    similar: tuple[str, ...] = ()
    if r.outcome is Outcome.FOUND:
        verdict = f"found: {r.path}, by {describe_rule(r.rule, r.origin)}"
        if r.rule is Rule.RPATH and r.origin and r.origin != r.requester:
            hints.append(f"it is found only through the RPATH of {r.origin}, inherited "
                         f"down the loader chain: {r.requester} loaded on its own would not "
                         "find it")
        if r.rule in (Rule.LD_LIBRARY_PATH, Rule.DYLD_LIBRARY_PATH):
            hints.append("it is found only because the library path variable is set")
        if r.rule is Rule.LOADED and first is not None:
            verdict += (f"; first loaded for {first.requester} from {first.path}, by "
                        f"{describe_rule(first.rule, first.origin)}")
    elif r.outcome is Outcome.FATAL:
        verdict = f"the loader would abort the whole program: {r.fatal}"
        hints.append("remove or rename that file, or put the intended library in a directory "
                     "searched before it")
    else:
        tried = sum(1 for a in r.attempts if a.detail != "directory does not exist")
        verdict = f"not found ({tried} candidate paths tried)"
        similar = similar_files(fs, r, extra_dirs, cache_keys, cwd)
        for a in r.attempts:
            if a.verdict in (Verdict.WRONG_CLASS, Verdict.WRONG_MACHINE):
                other = ("class (32/64-bit)" if a.verdict is Verdict.WRONG_CLASS
                         else "machine or architecture")
                hints.append(f"{a.path} exists but is for another {other}: install the "
                             "library built for this platform")
            elif a.verdict is Verdict.INVALID and a.detail:
                hints.append(f"{a.path} exists but cannot be loaded: {a.detail}")
        for s in similar[:5]:
            hints.append(f"{s} exists, but {request} is what is needed: a different ABI "
                         "version; install the package that provides the needed one, or "
                         "rebuild against the one present")
        req = r.requester if r.requester and not r.requester.startswith("(") else "the binary"
        hints.append(_FIX_HINTS.get(flavor, _FIX_HINTS["glibc"]).format(req=req))
    return Explanation(request, r.requester, r, first, verdict, tuple(hints), similar)


def explain(loader: GlibcLoader, request: str, from_path: str | None) -> Explanation:
    """Explain how ``request`` is resolved for ``from_path`` (or for a program with no
    RPATH/RUNPATH when ``from_path`` is ``None``, as a ``dlopen`` from it would be)."""
    first: Resolution | None = None
    if from_path is not None:
        result = loader.load(from_path)
        matches = [r for r in result.resolutions
                   if r.request == request or posixpath.basename(r.request) == request]
        if not matches:
            return Explanation(request, from_path, None, None,
                               f"{from_path} does not load {request}, directly or through "
                               "its dependencies" + (f" (the load stopped: {result.fatal})"
                                                     if result.fatal else ""),
                               (), ())
        r = matches[0]
        first = next((m for m in result.resolutions
                      if m.request == r.request and m.rule is not Rule.LOADED), None)
    else:
        try:
            path, _real, rule, origin, attempts = loader.search(request, None, None)
            outcome = Outcome.FOUND if path else Outcome.NOT_FOUND
            r = Resolution("(a program without RPATH or RUNPATH)", request, outcome, path, rule,
                           origin, tuple(attempts))
        except Exception as e:
            fatal_res = getattr(e, "resolution", None)
            if fatal_res is None:
                raise
            r = fatal_res
    cache = tuple((e.key, e.value) for e in loader.cache.entries) if loader.cache else ()
    ex = explain_resolution(r, fs=loader.fs, flavor="glibc", first=first,
                            extra_dirs=loader.platform.trusted_dirs, cache_keys=cache,
                            cwd=loader.cwd)
    hints = ex.hints
    if r.outcome is Outcome.NOT_FOUND and from_path is not None and r.requester:
        requester = _binary(loader, r.requester)
        if requester is not None and requester.runpath is not None and r.requester != from_path:
            # The rule people trip over: the chain of RPATHs stops at an object with RUNPATH.
            hints = (f"{r.requester} has DT_RUNPATH, so the DT_RPATH of the objects that "
                     "loaded it (and the executable's) was not searched for its "
                     "dependencies, and RUNPATH is not inherited: give it the directory in "
                     "its own RUNPATH", *hints)
    return Explanation(ex.request, from_path, ex.resolution, ex.first, ex.verdict, hints,
                       ex.similar)


def _binary(loader: GlibcLoader, path: str) -> Binary | None:
    try:
        real = loader.fs.resolve(path if path.startswith("/") else
                                 posixpath.join(loader.cwd, path))
    except SymlinkLoop:
        return None
    return loader.store.get(real).binary if real else None
