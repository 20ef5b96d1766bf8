"""macOS ``dyld`` emulation for Mach-O images (``man dyld``, ``man dlopen``).

For each dylib a load command names:

* ``@rpath/...`` is tried against the LC_RPATHs of the image that has the load command, then
  of every image up the chain that loaded it, to the executable (rpaths may themselves start
  with ``@loader_path`` or ``@executable_path``, relative to the image that has them);
* ``@loader_path/...`` is the directory of the image with the load command (its real path);
* ``@executable_path/...`` is the main executable's directory: for a program (MH_EXECUTE)
  its own; for a Python extension module the interpreter's, which is not in a wheel — it
  comes from the configuration;
* ``DYLD_LIBRARY_PATH`` (leaf name) is tried first when set; then the path itself; then
  ``DYLD_FALLBACK_LIBRARY_PATH`` (leaf name; default ``/usr/local/lib:/usr/lib``);
* the OS's own libraries (``/usr/lib/``, ``/System/Library/``) live in the dyld shared cache,
  not on disk, since macOS 11: an install name or an LC_RPATH entry there is system (rule
  ``dyld-shared-cache``), never missing; the fallback search only finds files on disk;
* a weak import (LC_LOAD_WEAK_DYLIB) that is absent does not stop loading;
* a request matches an image already loaded under that install name or load path before
  any search ("already loaded by @rpath"), and dependents load depth-first: an image's
  direct dependents, then each one's whole subtree in turn.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from unveil.loader.glibc import LoadedObject, LoadResult
from unveil.loader.store import BinaryStore
from unveil.model import Attempt, Binary, Outcome, Resolution, Rule, Verdict
from unveil.sources.fs import FileSystem, SymlinkLoop

__all__ = ["DyldLoader", "DyldPlatform", "in_shared_cache"]

#: Prefixes of the libraries macOS provides from its shared cache (documented in
#: docs/platforms.md).  /usr/local/lib is not one of them.
SHARED_CACHE_PREFIXES = ("/usr/lib/", "/System/Library/", "/System/iOSSupport/")
MH_EXECUTE = 2


def in_shared_cache(path: str) -> bool:
    return path.startswith(SHARED_CACHE_PREFIXES)


@dataclass(frozen=True, slots=True)
class DyldPlatform:
    """Facts about the macOS target: the architecture slice to load, the executable that
    hosts the images (the Python interpreter for extension modules), and dyld's
    environment."""

    arch: str = "arm64"
    executable_path: str | None = (
        "/Library/Frameworks/Python.framework/Versions/Current/bin/python3")
    executable_rpaths: tuple[str, ...] = ()
    dyld_library_path: str | None = None
    fallback_library_path: str = "/usr/local/lib:/usr/lib"
    shared_cache_prefixes: tuple[str, ...] = field(default=SHARED_CACHE_PREFIXES)


@dataclass(eq=False, slots=True)
class _Img:
    name: str
    path: str
    real: str
    binary: Binary | None
    loader: _Img | None


def pick_slice(b: Binary, arch: str) -> Binary | None:
    """The slice of a fat file for ``arch`` (a thin file is its own slice)."""
    if not b.slices:
        return b if b.arch in (None, arch) or arch == "any" else None
    for s in b.slices:
        if s.arch == arch:
            return s
    if arch == "arm64":
        return next((s for s in b.slices if s.arch == "arm64e"), None)
    return None


def _rule(attempts: list[Attempt], asked: Rule) -> Rule:
    """The rule that found a library: the shared cache when it answered the last attempt."""
    return Rule.SHARED_CACHE if attempts and attempts[-1].rule is Rule.SHARED_CACHE else asked


class DyldLoader:
    def __init__(self, fs: FileSystem, platform: DyldPlatform, store: BinaryStore) -> None:
        self.fs = fs
        self.platform = platform
        self.store = store
        #: the main executable of the load in progress (``@executable_path``)
        self._exe = platform.executable_path

    def _binary(self, real: str) -> Binary | None:
        b = self.store.get(real).binary
        return pick_slice(b, self.platform.arch) if b is not None else None

    def _expand(self, path: str, img: _Img) -> str | None:
        if path.startswith("@loader_path"):
            return posixpath.dirname(img.real) + path[len("@loader_path"):]
        if path.startswith("@executable_path"):
            exe = self._exe
            if exe is None:
                return None
            return posixpath.dirname(exe) + path[len("@executable_path"):]
        return path

    def _try(self, cand: str, rule: Rule, origin: str | None,
             attempts: list[Attempt]) -> str | None:
        # An install name written as an OS path, or an LC_RPATH the developer pointed at
        # one (/usr/lib/swift), is taken from the shared cache; a fallback search is not:
        # the cache holds Apple's libraries, not whatever a leaf name finds there.
        if rule in (Rule.PATH, Rule.RPATH) and in_shared_cache(cand):
            attempts.append(Attempt(cand, Rule.SHARED_CACHE, Verdict.ACCEPTED, origin, None,
                                    "provided by the dyld shared cache"))
            return cand
        try:
            real = self.fs.resolve(cand)
        except SymlinkLoop:
            attempts.append(Attempt(cand, rule, Verdict.LOOP, origin))
            return None
        if real is None:
            attempts.append(Attempt(cand, rule, Verdict.ABSENT, origin))
            return None
        stored = self.store.get(real)
        if stored.binary is None:
            attempts.append(Attempt(cand, rule, Verdict.INVALID, origin, None,
                                    stored.error or "not a Mach-O file"))
            return None
        if pick_slice(stored.binary, self.platform.arch) is None:
            attempts.append(Attempt(cand, rule, Verdict.WRONG_MACHINE, origin, None,
                                    f"no {self.platform.arch} slice"))
            return None
        attempts.append(Attempt(cand, rule, Verdict.ACCEPTED, origin))
        return real

    def search(self, name: str, img: _Img) -> tuple[str | None, str | None, Rule | None,
                                                    str | None, list[Attempt]]:
        attempts: list[Attempt] = []
        leaf = posixpath.basename(name)
        if self.platform.dyld_library_path:
            for d in self.platform.dyld_library_path.split(":"):
                if d:
                    cand = f"{d.rstrip('/')}/{leaf}"
                    real = self._try(cand, Rule.DYLD_LIBRARY_PATH, None, attempts)
                    if real:
                        return cand, real, Rule.DYLD_LIBRARY_PATH, None, attempts
        if name.startswith("@rpath/"):
            rest = name[len("@rpath"):]
            chain: _Img | None = img
            while chain is not None:
                b = chain.binary
                for rp in (b.rpath or ()) if b is not None else ():
                    base = self._expand(rp, chain)
                    if base is None:
                        continue
                    cand = base.rstrip("/") + rest
                    real = self._try(cand, Rule.RPATH, chain.path, attempts)
                    if real:
                        return cand, real, _rule(attempts, Rule.RPATH), chain.path, attempts
                chain = chain.loader
            for rp in self.platform.executable_rpaths:
                cand = rp.rstrip("/") + rest
                real = self._try(cand, Rule.RPATH, self._exe, attempts)
                if real:
                    return cand, real, _rule(attempts, Rule.RPATH), self._exe, attempts
        else:
            rule = (Rule.LOADER_PATH if name.startswith("@loader_path") else
                    Rule.EXECUTABLE_PATH if name.startswith("@executable_path") else Rule.PATH)
            cand_or_none = self._expand(name, img)
            if cand_or_none is not None:
                real = self._try(cand_or_none, rule, img.path if rule is Rule.LOADER_PATH
                                 else None, attempts)
                if real:
                    return cand_or_none, real, _rule(attempts, rule), None, attempts
        for d in self.platform.fallback_library_path.split(":"):
            if d:
                cand = f"{d.rstrip('/')}/{leaf}"
                real = self._try(cand, Rule.DYLD_FALLBACK, None, attempts)
                if real:
                    return cand, real, Rule.DYLD_FALLBACK, None, attempts
        return None, None, None, None, attempts

    def load(self, main_path: str) -> LoadResult:
        real = self.fs.resolve(main_path) or main_path
        main_bin = self._binary(real)
        # A program (MH_EXECUTE) is its own main executable; a bundle or dylib is loaded
        # by the configured one (the Python interpreter, for extension modules).
        self._exe = main_path if main_bin is not None and main_bin.file_type == MH_EXECUTE \
            else self.platform.executable_path
        main = _Img(main_path, main_path, real, main_bin, None)
        by_real: dict[str, _Img] = {real: main}
        # Images by the names a request can match before any search (dyld's getLoader and
        # loadDependents quick check): their install name (LC_ID_DYLIB) and the load path.
        by_name: dict[str, _Img] = {main_path: main}
        if main_bin is not None and main_bin.soname:
            by_name.setdefault(main_bin.soname, main)
        objects = [LoadedObject(main_path, main_path, real, "main")]
        resolutions: list[Resolution] = []
        # dyld loads all of an image's direct dependents, then recurses into each in turn
        # (JustInTimeLoader::loadDependents): depth-first, each image's whole subtree before
        # its next sibling's.
        stack = [main]
        while stack:
            img = stack.pop()
            b = img.binary
            if b is None:
                continue
            kinds = b.needed_kinds or ("load",) * len(b.needed)
            loaded_here: list[_Img] = []
            for need, kind in zip(b.needed, kinds, strict=False):
                known = by_name.get(need)
                if known is not None:
                    resolutions.append(Resolution(img.path, need, Outcome.FOUND, known.path,
                                                  Rule.LOADED, known.name))
                    continue
                path, real_dep, rule, origin, attempts = self.search(need, img)
                if path is None or real_dep is None:
                    resolutions.append(Resolution(img.path, need, Outcome.NOT_FOUND,
                                                  attempts=tuple(attempts)))
                    objects.append(LoadedObject(need, None, None,
                                                "weak-missing" if kind == "weak" else "missing"))
                    continue
                resolutions.append(Resolution(img.path, need, Outcome.FOUND, path, rule, origin,
                                              tuple(attempts)))
                if rule is Rule.SHARED_CACHE or in_shared_cache(path):
                    if real_dep not in by_real:
                        by_real[real_dep] = _Img(need, path, real_dep, None, img)
                        objects.append(LoadedObject(need, path, None, "shared-cache"))
                    by_name.setdefault(need, by_real[real_dep])
                    continue
                if real_dep in by_real:
                    by_name.setdefault(need, by_real[real_dep])
                    continue
                new = _Img(need, path, real_dep, self._binary(real_dep), img)
                by_real[real_dep] = new
                by_name.setdefault(need, new)
                if new.binary is not None and new.binary.soname:
                    by_name.setdefault(new.binary.soname, new)
                loaded_here.append(new)
                objects.append(LoadedObject(need, path, real_dep, "dependency"))
            stack.extend(reversed(loaded_here))
        return LoadResult(main_path, tuple(objects), tuple(resolutions), None, main_bin,
                          flavor="dyld")
