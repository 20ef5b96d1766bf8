"""``unveil why``: one dependency explained in plain language, with hints to fix it."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from unveil.identify.debian import debian_component
from unveil.loader.glibc import GlibcLoader
from unveil.loader.ldcache import LdCache
from unveil.loader.store import BinaryStore
from unveil.model import Binary, Outcome, Resolution, Rule, Verdict
from unveil.sources.fs import FileSystem, Kind, SymlinkLoop

__all__ = ["Explanation", "cache_name", "describe_rule", "explain", "explain_resolution",
           "in_package", "similar_files", "store_soname"]

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


#: What may follow the stem in a library's file name: version numbers (not ``.c``, ``.debug``).
_VERSION_TAIL = re.compile(r"(?:\.[0-9][0-9A-Za-z_]*)*")


def _versioned_first(name: str) -> tuple[bool, int]:
    """Which of several names of one file to show: a versioned one (``libz.so.1``, as a
    SONAME reads), the shortest, before the development link ``libz.so``."""
    return (name.endswith(".so"), len(name))


def similar_files(fs: FileSystem, r: Resolution, extra_dirs: tuple[str, ...] = (),
                  cache_keys: tuple[tuple[str, str], ...] = (), cwd: str = "/") -> tuple[str, ...]:
    """Files whose names share the request's stem (``libavcodec.so``), in the directories
    the loader searched and ``extra_dirs``, and in the cache (key, path) pairs: one name per
    file (merged-/usr spellings and the chain of version links name the same file)."""
    stem = _stem(r.request)
    dirs: list[str] = []
    for a in r.attempts:
        d = posixpath.dirname(a.path) or "."
        if d not in dirs:
            dirs.append(d)
    for d in extra_dirs:
        if d not in dirs:
            dirs.append(d)
    found: list[str] = []
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
            if (n.lower().startswith(low) and n != posixpath.basename(r.request)
                    and _VERSION_TAIL.fullmatch(n, len(stem))):
                p = f"{d.rstrip('/')}/{n}"
                if p not in found:
                    found.append(p)
    for key, value in cache_keys:
        if key.startswith(stem) and key != r.request and value not in found:
            found.append(value)
    # One entry per file: the first directory's spelling, by its versioned name; not the
    # files the search tried already (a wrong-class libz.so.1's own libz.so.1.2.13), nor
    # what is no file (a dangling link, a loop, a directory).
    tried = {_real_file(fs, a.path, cwd) for a in r.attempts}
    by_file: dict[str, list[str]] = {}
    for p in found:
        real = _real_file(fs, p, cwd)
        if real is not None and real not in tried:
            by_file.setdefault(real, []).append(p)
    out = []
    for names in by_file.values():
        first_dir = posixpath.dirname(names[0])
        out.append(min((n for n in names if posixpath.dirname(n) == first_dir),
                       key=lambda n: _versioned_first(posixpath.basename(n))))
    return tuple(out[:20])


def _real_file(fs: FileSystem, path: str, cwd: str) -> str | None:
    """The symlink-free path of a regular file, else None."""
    full = path if path.startswith("/") else posixpath.join(cwd, path)
    try:
        real = fs.resolve(full)
    except SymlinkLoop:
        return None
    return real if real is not None and fs.kind(real) is Kind.FILE else None


def in_package(path: str | None, cwd: str = "/") -> bool:
    """Whether a requester lies inside a Python package (an environment's site-packages, or a
    wheel, which a scan mounts under one), where repair tools are the fix rather than the
    system's."""
    if not path or path.startswith("("):
        return False
    full = path if path.startswith("/") else posixpath.join(cwd, path)
    return "/site-packages/" in full or "/dist-packages/" in full


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
#: For a requester outside any Python package (a system program or library): no repair tool.
_SYSTEM_FIX_HINTS = {
    "dyld": ("install the library it was built against, or put it next to {req} and "
             "reference it as @loader_path/... or @rpath/... (install_name_tool -change, "
             "-add_rpath)"),
    "windows": ("put the DLL next to {req} or in a directory on the search path (PATH, "
                "the application's directory), or install the redistributable that ships it"),
    "glibc": ("install the package that provides it; if a copy is installed in a directory "
              "ld.so does not search, list that directory in a file under /etc/ld.so.conf.d/ "
              "and run ldconfig (which adds it to /etc/ld.so.cache), or, if it ships beside "
              "{req}, add its directory to {req}'s RUNPATH (patchelf --add-rpath "
              "'$ORIGIN/<dir>'); LD_LIBRARY_PATH=<dir> finds it for one run"),
    "musl": ("install the package that provides it (on Alpine: apk add so:{request}); if a "
             "copy is installed in a directory musl does not search, list that directory in "
             "/etc/ld-musl-<arch>.path, or add it to {req}'s RUNPATH; LD_LIBRARY_PATH=<dir> "
             "finds it for one run"),
}


def explain_resolution(r: Resolution, *, fs: FileSystem, flavor: str = "glibc",
                       first: Resolution | None = None, extra_dirs: tuple[str, ...] = (),
                       cache_keys: tuple[tuple[str, str], ...] = (),
                       cwd: str = "/", cache_name: str | None = None,
                       soname_of: Callable[[str], str | None] | None = None) -> Explanation:
    """Verdict and hints for one resolution, whichever loader made it.  ``cache_name``
    names the cache a glibc search consulted (a miss leaves no attempt: say so);
    ``soname_of`` reads a file's SONAME (a similar file may be the very library, its
    SONAME link missing)."""
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
        verdict = f"not found ({tried} candidate paths tried"
        if (cache_name and flavor == "glibc" and "/" not in request
                and not any(a.rule is Rule.CACHE for a in r.attempts)):
            verdict += f"; {cache_name} has no entry for it"
        verdict += ")"
        similar = similar_files(fs, r, extra_dirs, cache_keys, cwd)
        for a in r.attempts:
            if a.verdict in (Verdict.WRONG_CLASS, Verdict.WRONG_MACHINE):
                other = ("class (32/64-bit)" if a.verdict is Verdict.WRONG_CLASS
                         else "machine or architecture")
                hints.append(f"{a.path} exists but is for another {other}: install the "
                             "library built for this platform")
            elif a.verdict is Verdict.INVALID and a.detail:
                hints.append(f"{a.path} exists but cannot be loaded: {a.detail}")
        rejected = [a for a in r.attempts if a.verdict is Verdict.REJECTED]
        req = r.requester if r.requester and not r.requester.startswith("(") else "the binary"
        for a in rejected[:1]:
            hints.append(f"{a.path} is there, but {req} has DF_1_NODEFLIB: ld.so takes no "
                         "library of the system directories for it, from the cache or "
                         "searched; name the directory in its RUNPATH, or LD_LIBRARY_PATH")
        for s in similar[:5]:
            real = _real_file(fs, s, cwd)
            if soname_of is not None and real is not None and soname_of(real) == request:
                hints.append(f"{s} is {request} (its SONAME), but no file of that name "
                             f"points to it: ldconfig -n {posixpath.dirname(s) or '.'} "
                             "makes the link (ldconfig does for directories it knows)")
                continue
            hints.append(f"{s} exists, but {request} is what is needed: a different ABI "
                         "version; install the package that provides the needed one, or "
                         "rebuild against the one present")
        if not rejected:
            table = (_FIX_HINTS if in_package(r.requester, cwd)
                     else {**_FIX_HINTS, **_SYSTEM_FIX_HINTS})
            hints.append(table.get(flavor, table["glibc"]).format(req=req, request=request))
    return Explanation(request, r.requester, r, first, verdict, tuple(hints), similar)


def store_soname(store: BinaryStore) -> Callable[[str], str | None]:
    """A file's SONAME, read through the loader's store (parsed once per run)."""
    def soname(real: str) -> str | None:
        b = store.get(real).binary
        return b.soname if b is not None else None
    return soname


def cache_name(cache: LdCache | None) -> str | None:
    """How a glibc search's cache is named in a verdict (None: there was none to search)."""
    if cache is None:
        return None
    if cache.emulated:
        return ("the cache ldconfig would build from /etc/ld.so.conf (the root has no "
                "/etc/ld.so.cache)")
    return "/etc/ld.so.cache"


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
                            cwd=loader.cwd, cache_name=cache_name(loader.cache),
                            soname_of=store_soname(loader.store))
    hints = ex.hints
    requester = _binary(loader, r.requester) if r.requester else None
    if (r.outcome is Outcome.NOT_FOUND and requester is not None
            and requester.only_auxiliary(request)):
        hints = (f"an auxiliary filtee (DT_AUXILIARY) of {r.requester}: ld.so loads it "
                 "without it", *hints)
    if (r.outcome is Outcome.NOT_FOUND and "/" not in request
            and not any(a.verdict is Verdict.REJECTED for a in r.attempts)):
        # Absent from this root: which Debian package ships that name (a scan says it in
        # the edge's note; here there is no scan).
        known = debian_component(request)
        if known is not None:
            hints = (known.evidence[0].detail, *hints)
    if (r.outcome is Outcome.NOT_FOUND and from_path is not None and requester is not None
            and requester.runpath is not None and r.requester != from_path):
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
