"""``unveil why``: one dependency explained in plain language, with hints to fix it."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from unveil.loader.glibc import GlibcLoader
from unveil.model import Outcome, Resolution, Rule, Verdict
from unveil.sources.fs import SymlinkLoop

__all__ = ["Explanation", "explain"]

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
    return text


def _stem(name: str) -> str:
    base = posixpath.basename(name)
    i = base.find(".so")
    return base[: i + 3] if i >= 0 else base


def _similar(loader: GlibcLoader, r: Resolution) -> tuple[str, ...]:
    stem = _stem(r.request)
    dirs: list[str] = []
    for a in r.attempts:
        d = posixpath.dirname(a.path) or "."
        if d not in dirs:
            dirs.append(d)
    for d in loader.platform.trusted_dirs:
        if d not in dirs:
            dirs.append(d)
    out: list[str] = []
    for d in dirs:
        full = d if d.startswith("/") else posixpath.join(loader.cwd, d)
        try:
            real = loader.fs.resolve(full)
        except SymlinkLoop:
            continue
        if real is None:
            continue
        for n in sorted(loader.fs.listdir(real)):
            if n.startswith(stem) and n != posixpath.basename(r.request):
                p = f"{d.rstrip('/')}/{n}"
                if p not in out:
                    out.append(p)
    if loader.cache is not None:
        for e in loader.cache.entries:
            if e.key.startswith(stem) and e.key != r.request and e.value not in out:
                out.append(e.value)
    return tuple(out[:20])


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
    hints: list[str] = []
    similar: tuple[str, ...] = ()
    if r.outcome is Outcome.FOUND:
        verdict = f"found: {r.path}, by {describe_rule(r.rule, r.origin)}"
        if r.rule is Rule.RPATH and r.origin and r.origin != r.requester:
            hints.append(f"it is found only through the DT_RPATH of {r.origin}, inherited "
                         f"down the loader chain: {r.requester} loaded on its own would not "
                         "find it")
        if r.rule is Rule.LD_LIBRARY_PATH:
            hints.append("it is found only because LD_LIBRARY_PATH is set")
        if r.rule is Rule.LOADED and first is not None:
            verdict += f"; first loaded for {first.requester} from {first.path}, by " \
                       f"{describe_rule(first.rule, first.origin)}"
    elif r.outcome is Outcome.FATAL:
        verdict = f"ld.so would abort the whole program: {r.fatal}"
        hints.append("remove or rename that file, or put the intended library in a directory "
                     "searched before it")
    else:
        tried = sum(1 for a in r.attempts if a.verdict is not Verdict.ABSENT or a.detail is None)
        verdict = f"not found ({tried} candidate paths tried)"
        similar = _similar(loader, r)
        for a in r.attempts:
            if a.verdict in (Verdict.WRONG_CLASS, Verdict.WRONG_MACHINE):
                other = ("class (32/64-bit)" if a.verdict is Verdict.WRONG_CLASS
                         else "machine")
                hints.append(f"{a.path} exists but is for another {other}: install the "
                             "library built for this platform")
        for s in similar[:5]:
            hints.append(f"{s} exists, but {request} is what is needed: a different ABI "
                         "version; install the package that provides the needed one, or "
                         "rebuild against the one present")
        if r.requester and not r.requester.startswith("("):
            hints.append(f"if the library ships beside {r.requester}, add its directory to its "
                         "RUNPATH (e.g. patchelf --add-rpath '$ORIGIN/<dir>')")
        hints.append("or install it in a directory of /etc/ld.so.conf and run ldconfig")
    return Explanation(request, from_path, r, first, verdict, tuple(hints), similar)
