"""musl's dynamic loader (``ldso/dynlink.c``, ``load_library``), emulated.

Differences from glibc that matter here, each checked against musl's own loader in
tests/differential/test_musl.py:

* ``LD_LIBRARY_PATH`` comes first, then the RPATH *or* RUNPATH (RUNPATH wins when both
  exist; they are treated alike) of the requester and of every object up the chain that
  first needed it — inherited, unlike glibc's RUNPATH — then ``/etc/ld-musl-<arch>.path``
  (colon or newline separated) or ``/lib:/usr/local/lib:/usr/lib``;
* no cache, no hwcaps, only ``$ORIGIN`` among the tokens;
* an already-loaded library matches by the name it was found under (not by SONAME), or by
  file identity (device and inode: a hard link is the same library);
* the first file found is taken: if it is not loadable (not ELF, wrong machine) the library
  fails to load — the search does not go on — and musl reports it and continues;
* ``lib{c,pthread,rt,m,dl,util,xnet}.*`` and the loader's own names are musl itself (listed
  once per family, under the first name asked for).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from unveil.config import MuslPlatform
from unveil.errors import SourceError
from unveil.loader.glibc import ByFile, LoadedObject, LoadResult
from unveil.loader.store import BinaryStore
from unveil.model import Attempt, Binary, Outcome, Resolution, Rule, Verdict
from unveil.sources.fs import FileSystem, Kind, SymlinkLoop

__all__ = ["MuslLoader", "is_musl_self"]

#: dynlink.c: "lib" and one of these, then a dot (libc.so, libc.musl-x86_64.so.1, libm.so.6)
_RESERVED = re.compile(r"^lib(c|pthread|rt|m|dl|util|xnet)\.")
_ORIGIN = re.compile(r"\$(\{ORIGIN\}|ORIGIN)")
_OTHER_DST = re.compile(r"\$(?!ORIGIN|\{ORIGIN\})")


def is_musl_self(name: str, platform: MuslPlatform) -> str | None:
    """The reserved family a request belongs to when it names musl itself."""
    m = _RESERVED.match(name)
    if m:
        return m.group(1)
    if name == platform.ldso or name == posixpath.basename(platform.ldso):
        return "ldso"
    if name in platform.self_names:
        return name
    return None


@dataclass(eq=False, slots=True)
class _Obj:
    name: str
    path: str
    real: str
    binary: Binary | None
    needed_by: _Obj | None
    shortname: str | None


class MuslLoader:
    def __init__(self, fs: FileSystem, platform: MuslPlatform, store: BinaryStore, *,
                 ld_library_path: str | None = None, cwd: str = "/") -> None:
        self.fs = fs
        self.platform = platform
        self.store = store
        self.cwd = cwd
        self._env = ld_library_path
        self._sys_path: str | None = None

    def _abs(self, path: str) -> str:
        return path if path.startswith("/") else posixpath.join(self.cwd, path)

    def sys_path(self) -> str:
        if self._sys_path is None:
            try:
                real = self.fs.resolve(self.platform.path_file)
            except SymlinkLoop:
                real = None
            text = None
            if real is not None:
                try:
                    blob = self.fs.open_blob(real)
                    try:
                        text = blob.read(0, min(blob.size, 1 << 16)).decode("utf-8", "replace")
                    finally:
                        blob.close()
                except SourceError:
                    text = ""
            self._sys_path = text if text is not None else self.platform.default_path
        return self._sys_path

    def _search_path(self, o: _Obj) -> tuple[str | None, Rule]:
        b = o.binary
        if b is None:
            return None, Rule.RPATH
        if b.runpath is not None:
            raw, rule = ":".join(b.runpath), Rule.RUNPATH
        elif b.rpath is not None:
            raw, rule = ":".join(b.rpath), Rule.RPATH
        else:
            return None, Rule.RPATH
        if "$" in raw and _OTHER_DST.search(raw):
            # fixup_rpath: a '$' that does not start $ORIGIN/${ORIGIN} drops the object's
            # whole RPATH/RUNPATH (the search goes on up the chain).
            return None, rule
        if _ORIGIN.search(raw):
            # The directory of the name it was opened by, as given; "." for a bare name.
            origin = (o.path[: o.path.rfind("/")] or "/") if "/" in o.path else "."
            raw = _ORIGIN.sub(lambda _m: origin, raw)
        return raw, rule

    def _path_open(self, name: str, paths: str, rule: Rule, origin: str | None,
                   attempts: list[Attempt]) -> tuple[str, str] | bool | None:
        """musl's ``path_open``: the first existing file, ``None`` if none, ``False`` when
        the search must stop (an error other than ENOENT/ENOTDIR/EACCES)."""
        for d in re.split(r"[:\n]+", paths):
            if not d:
                continue
            cand = f"{d}/{name}"
            try:
                real = self.fs.resolve(self._abs(cand))
            except SymlinkLoop:
                attempts.append(Attempt(cand, rule, Verdict.LOOP, origin))
                return False
            if real is None:
                attempts.append(Attempt(cand, rule, Verdict.ABSENT, origin))
                continue
            parent, base = posixpath.split(real)
            if self.fs.entry(parent, base) is Kind.DIR:
                attempts.append(Attempt(cand, rule, Verdict.INVALID, origin, None,
                                        "Is a directory"))
                return False
            attempts.append(Attempt(cand, rule, Verdict.ACCEPTED, origin))
            return cand, real
        return None

    def _verify(self, real: str) -> str | None:
        stored = self.store.get(real)
        if stored.unreadable:
            return stored.error or "unreadable"
        b = stored.binary
        if b is None or not stored.head.startswith(b"\x7fELF"):
            return "Exec format error"
        if b.machine != self.platform.machine or b.bits != self.platform.bits:
            return "Exec format error"
        return None

    def _preload(self, name: str, chain: list[_Obj], by_real: ByFile[_Obj],
                 objects: list[LoadedObject], reported: set[str]) -> None:
        """dynlink.c ``load_preload``: ``load_library(name, 0)`` — a path is opened as
        given, a bare name searched in LD_LIBRARY_PATH then the system path (no RPATH: no
        object asked for it); whatever fails is skipped without a word."""
        family = is_musl_self(name, self.platform)
        if family is not None:
            if family != "ldso" and family not in reported:
                # musl itself, listed under the name asked for, once per name family
                reported.add(family)
                objects.append(LoadedObject(name, self.platform.ldso, None, "dependency"))
            return
        if any(o.shortname == name for o in chain):
            return
        found: tuple[str, str] | None = None
        attempts: list[Attempt] = []
        if "/" in name:
            try:
                real = self.fs.resolve(self._abs(name))
            except SymlinkLoop:
                real = None
            found = (name, real) if real else None
        else:
            res = (self._path_open(name, self._env, Rule.LD_LIBRARY_PATH, None, attempts)
                   if self._env is not None else None)
            if res is None:
                res = self._path_open(name, self.sys_path(), Rule.DEFAULT,
                                      self.platform.path_file, attempts)
            found = res if isinstance(res, tuple) else None
        if found is None or found[1] in by_real or self._verify(found[1]) is not None:
            return
        path, real_dep = found
        new = _Obj(name, path, real_dep, self.store.get(real_dep).binary, None,
                   posixpath.basename(path) if path != name else None)
        by_real[real_dep] = new
        chain.append(new)
        objects.append(LoadedObject(name, path, real_dep, "preload"))

    def load(self, main_path: str, preload: str | None = None) -> LoadResult:
        """The closure of ``main_path``, after the libraries ``preload`` names (the value
        of ``LD_PRELOAD``: names split at white space and colons, as musl splits them)."""
        real = self.fs.resolve(self._abs(main_path))
        main_bin = self.store.get(real).binary if real else None
        app = _Obj(main_path, main_path, real or main_path, main_bin, None, None)
        chain: list[_Obj] = [app]
        ldso_obj: _Obj | None = None
        reported: set[str] = set()
        by_real: ByFile[_Obj] = ByFile(self.fs.file_id)
        by_real[app.real] = app
        resolutions: list[Resolution] = []
        errors: list[str] = []
        objects: list[LoadedObject] = [LoadedObject(main_path, main_path, app.real, "main"),
                                       LoadedObject(self.platform.ldso, self.platform.ldso,
                                                    None, "rtld")]
        for name in re.split(r"[ \t\n\v\f\r:]+", preload or ""):  # C's isspace, and ':'
            if name:
                self._preload(name, chain, by_real, objects, reported)
        i = 0
        while i < len(chain):
            obj = chain[i]
            i += 1
            if obj.binary is None:
                continue
            for need in obj.binary.needed:
                family = is_musl_self(need, self.platform)
                if family is not None:
                    resolutions.append(Resolution(obj.path, need, Outcome.FOUND,
                                                  self.platform.ldso, Rule.LOADED,
                                                  "musl itself"))
                    if family not in reported:
                        reported.add(family)
                        objects.append(LoadedObject(need, self.platform.ldso, None,
                                                    "dependency"))
                    if ldso_obj is None:
                        ldso_obj = _Obj(self.platform.ldso, self.platform.ldso, "<ldso>", None,
                                        obj, "libc.so")
                    continue
                attempts: list[Attempt] = []
                found: tuple[str, str] | None = None
                rule: Rule | None = None
                origin: str | None = None
                if "/" in need:
                    try:
                        r = self.fs.resolve(self._abs(need))
                    except SymlinkLoop:
                        r = None
                    attempts.append(Attempt(need, Rule.PATH,
                                            Verdict.ACCEPTED if r else Verdict.ABSENT))
                    found, rule = ((need, r), Rule.PATH) if r else (None, None)
                else:
                    loaded = next((o for o in chain if o.shortname == need), None)
                    if loaded is not None:
                        resolutions.append(Resolution(obj.path, need, Outcome.FOUND,
                                                      loaded.path, Rule.LOADED, loaded.name))
                        continue
                    stop = False
                    if self._env is not None:
                        res = self._path_open(need, self._env, Rule.LD_LIBRARY_PATH, None,
                                              attempts)
                        stop = res is False
                        if isinstance(res, tuple):
                            found, rule = res, Rule.LD_LIBRARY_PATH
                    p: _Obj | None = obj
                    while found is None and not stop and p is not None:
                        paths, prule = self._search_path(p)
                        if paths is not None:
                            res = self._path_open(need, paths, prule, p.path, attempts)
                            stop = res is False
                            if isinstance(res, tuple):
                                found, rule, origin = res, prule, p.path
                        p = p.needed_by
                    if found is None and not stop:
                        res = self._path_open(need, self.sys_path(), Rule.DEFAULT,
                                              self.platform.path_file, attempts)
                        if isinstance(res, tuple):
                            found, rule = res, Rule.DEFAULT
                if found is None:
                    errors.append(f"Error loading shared library {need}: No such file or "
                                  f"directory (needed by {obj.path})")
                    resolutions.append(Resolution(obj.path, need, Outcome.NOT_FOUND,
                                                  attempts=tuple(attempts)))
                    objects.append(LoadedObject(need, None, None, "missing"))
                    continue
                path, real_dep = found
                same = by_real.get(real_dep)
                if same is not None:
                    if same.shortname is None and path != need:
                        same.shortname = posixpath.basename(same.path)
                    resolutions.append(Resolution(obj.path, need, Outcome.FOUND, same.path,
                                                  rule, origin, tuple(attempts)))
                    continue
                problem = self._verify(real_dep)
                if problem is not None:
                    if attempts and attempts[-1].verdict is Verdict.ACCEPTED:
                        last = attempts[-1]  # the file the search stopped at
                        attempts[-1] = Attempt(last.path, last.rule, Verdict.INVALID,
                                               last.origin, None, problem)
                    else:
                        attempts.append(Attempt(path, rule or Rule.PATH, Verdict.INVALID,
                                                origin, None, problem))
                    errors.append(f"Error loading shared library {need}: {problem} "
                                  f"(needed by {obj.path})")
                    resolutions.append(Resolution(obj.path, need, Outcome.NOT_FOUND,
                                                  attempts=tuple(attempts)))
                    objects.append(LoadedObject(need, None, None, "missing"))
                    continue
                if not attempts or attempts[-1].verdict is not Verdict.ACCEPTED:
                    attempts.append(Attempt(path, rule or Rule.PATH, Verdict.ACCEPTED, origin))
                new = _Obj(need, path, real_dep, self.store.get(real_dep).binary, obj,
                           posixpath.basename(path) if path != need else None)
                by_real[real_dep] = new
                chain.append(new)
                objects.append(LoadedObject(need, path, real_dep, "dependency"))
                resolutions.append(Resolution(obj.path, need, Outcome.FOUND, path, rule, origin,
                                              tuple(attempts)))
        return LoadResult(main_path, tuple(objects), tuple(resolutions), None, main_bin,
                          flavor="musl", errors=tuple(errors))
