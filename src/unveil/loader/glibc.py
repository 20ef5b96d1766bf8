"""glibc ``ld.so`` emulation: which file each DT_NEEDED entry loads, and why.

This follows ``elf/dl-load.c`` and ``elf/dl-deps.c`` of glibc 2.3x (see docs/loader.md):

* objects are loaded breadth-first; a request first matches an already loaded object by
  the name it was requested by, its path or its SONAME (first loaded wins), then, after a
  file was found, by file identity;
* a name with a slash is a path (dynamic string tokens expanded);
* otherwise: the DT_RPATH of the requester and of each object up the loader chain, then
  the executable's (skipped entirely when the requester has DT_RUNPATH; an object with
  DT_RUNPATH contributes no DT_RPATH), ``LD_LIBRARY_PATH``, the requester's own DT_RUNPATH,
  ``ld.so.cache`` and the trusted directories (both skipped under DF_1_NODEFLIB);
* in each directory, glibc-hwcaps subdirectories and (glibc < 2.37) the legacy hwcaps
  subdirectories are tried first;
* a candidate of the wrong class or machine is skipped; one whose header is invalid
  (not ELF, wrong byte order, bad OS ABI...) aborts the whole load, as ld.so does.

Paths are kept spelled as the loader builds them (``$ORIGIN/../lib`` stays un-normalised),
which is what ``ldd`` prints.
"""

from __future__ import annotations

import posixpath
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, Literal, TypeVar

from unveil.config import GlibcPlatform
from unveil.errors import FormatError, LoaderError, SourceError
from unveil.loader.ldcache import CacheEntry, LdCache, parse_ld_cache, read_ld_so_conf
from unveil.loader.store import BinaryStore
from unveil.model import Attempt, Binary, Filtee, Outcome, Resolution, Rule, Verdict
from unveil.sources.fs import FileSystem, Kind, SymlinkLoop

__all__ = ["GlibcLoader", "LoadResult", "LoadedObject", "load_cache", "verify_header"]

ET_EXEC, ET_DYN = 2, 3
ELFOSABI_SYSV, ELFOSABI_GNU = 0, 3
LIBC_ABI_MAX = 4
DF_1_PIE = 0x08000000

_DST = re.compile(r"\$(\{(ORIGIN|PLATFORM|LIB)\}|(ORIGIN|PLATFORM|LIB)(?![A-Za-z0-9_]))")


_DIGITS = re.compile(r"\d+")
#: the origin of a cache hit when the root has no ld.so.cache and unveil built one
EMULATED_CACHE = "ld.so.conf (no ld.so.cache in the root: the cache ldconfig would build)"


def _libcmp_key(name: str) -> str:
    """A name as ``_dl_cache_libcmp`` compares it: digit runs by value (``libz.so.01`` is
    ``libz.so.1``)."""
    return _DIGITS.sub(lambda m: str(int(m.group())), name) if "0" in name else name


#: Attempts kept per resolution: a RUNPATH of thousands of directories times a thousand
#: missing libraries made gigabytes of attempts (and of JSON) from a 110 kB file.
MAX_ATTEMPTS = 256


def _kept(attempts: list[Attempt]) -> tuple[Attempt, ...]:
    """The attempts of one search as reported: all of them, or the first ones, a marker
    saying how many are not listed, and the last (the one that decided)."""
    if len(attempts) <= MAX_ATTEMPTS:
        return tuple(attempts)
    omitted = len(attempts) - MAX_ATTEMPTS + 2
    last = attempts[-1]
    return (*attempts[:MAX_ATTEMPTS - 2],
            Attempt(f"({omitted} more candidates)", last.rule, Verdict.ABSENT, last.origin,
                    None, f"{omitted} candidates tried here are not listed"), last)


def verify_header(head: bytes, platform: GlibcPlatform) -> tuple[Verdict, str | None]:
    """ld.so's ``open_verify``: is this file loadable here, skipped, or fatal?"""
    ehdr_size = 64 if platform.bits == 64 else 52
    if len(head) < ehdr_size:
        return Verdict.INVALID, "file too short"
    if head[:4] != b"\x7fELF":
        return Verdict.INVALID, "invalid ELF header"
    if head[4] != (2 if platform.bits == 64 else 1):
        return Verdict.WRONG_CLASS, None
    if head[5] != (1 if platform.little_endian else 2):
        return Verdict.INVALID, (
            "ELF file data encoding not little-endian" if platform.little_endian
            else "ELF file data encoding not big-endian")
    if head[6] != 1:
        return Verdict.INVALID, "ELF file version ident does not match current one"
    osabi, abiversion = head[7], head[8]
    if osabi not in (ELFOSABI_SYSV, ELFOSABI_GNU):
        return Verdict.INVALID, "ELF file OS ABI invalid"
    if (osabi == ELFOSABI_SYSV and abiversion != 0) or (
            osabi == ELFOSABI_GNU and abiversion >= LIBC_ABI_MAX):
        return Verdict.INVALID, "ELF file ABI version invalid"
    if any(head[9:16]):
        return Verdict.INVALID, "nonzero padding in e_ident"
    e: Literal["little", "big"] = "little" if platform.little_endian else "big"
    etype = int.from_bytes(head[16:18], e)
    machine = int.from_bytes(head[18:20], e)
    version = int.from_bytes(head[20:24], e)
    if version != 1:
        return Verdict.INVALID, "ELF file version does not match current one"
    if machine != platform.machine:
        return Verdict.WRONG_MACHINE, None
    if etype not in (ET_DYN, ET_EXEC):
        return Verdict.INVALID, "only ET_DYN and ET_EXEC can be loaded"
    phentsize = int.from_bytes(head[54:56] if platform.bits == 64 else head[42:44], e)
    if phentsize != (56 if platform.bits == 64 else 32):
        return Verdict.INVALID, "ELF file's phentsize not the expected size"
    return Verdict.ACCEPTED, None


def load_cache(fs: FileSystem, store: BinaryStore, platform: GlibcPlatform) -> tuple[
        LdCache | None, str | None]:
    """The root's ld.so.cache, or what ldconfig would build from ld.so.conf when there is
    none.  Returns the cache and a problem message (or ``None``)."""
    try:
        real = fs.resolve(platform.cache_path)
    except SymlinkLoop as e:
        return None, f"{platform.cache_path}: {e}"
    if real is not None:
        try:
            blob = fs.open_blob(real)
            try:
                return parse_ld_cache(blob, platform.cache_path), None
            finally:
                blob.close()
        except (FormatError, SourceError, struct.error) as e:
            return None, f"{platform.cache_path}: {e}"

    def read_text(path: str) -> str:
        r = fs.resolve(path)
        if r is None:
            raise SourceError(f"{path} does not exist")
        blob = fs.open_blob(r)
        try:
            return blob.read(0, min(blob.size, 1 << 20)).decode("utf-8", "replace")
        finally:
            blob.close()

    def glob(d: str) -> list[str]:
        try:
            r = fs.resolve(d)
        except SymlinkLoop:
            return []
        return list(fs.listdir(r)) if r else []

    try:
        dirs = read_ld_so_conf(read_text, glob, platform.conf_path)
    except (LoaderError, SourceError) as e:
        return None, f"{platform.conf_path}: {e}"
    if not dirs:
        return None, None
    entries: list[CacheEntry] = []
    seen: set[str] = set()
    for d in dirs:
        try:
            rd = fs.resolve(d)
        except SymlinkLoop:
            continue
        if rd is None:
            continue
        for name in sorted(fs.listdir(rd)):
            if not name.startswith("lib") or ".so" not in name:
                continue
            try:
                real_lib = fs.resolve(rd + "/" + name)
            except SymlinkLoop:
                continue
            if real_lib is None:
                continue
            stored = store.get(real_lib)
            soname = stored.binary.soname if stored.binary else None
            if soname and soname not in seen:
                seen.add(soname)
                entries.append(CacheEntry(soname, f"{d}/{soname}", platform.cache_flags[0], 0))
    return LdCache(tuple(entries), platform.conf_path, emulated=True), None


@dataclass(eq=False, slots=True)
class _Obj:
    name: str
    path: str
    real: str
    binary: Binary | None
    loader: _Obj | None
    names: set[str] = field(default_factory=set)
    role: str = "dependency"
    referenced: bool = False
    rpath_dirs: list[str] | None = None
    runpath_dirs: list[str] | None = None
    expanded: bool = False


_T = TypeVar("_T")


class ByFile(Generic[_T]):
    """The objects of one load by the file they were read from: by symlink-free path, and
    by (device, inode) where the tree has them, as the loaders match a file already loaded
    (glibc's ``_dl_file_id_match_p``, musl's ``st_dev``/``st_ino``): a hard link under
    another name is the same object."""

    def __init__(self, file_id: Callable[[str], tuple[int, int] | None]) -> None:
        self._file_id = file_id
        self._by_path: dict[str, _T] = {}
        self._by_id: dict[tuple[int, int], _T] = {}

    def get(self, real: str) -> _T | None:
        found = self._by_path.get(real)
        if found is None and self._by_id:
            fid = self._file_id(real)
            found = self._by_id.get(fid) if fid is not None else None
        return found

    def __contains__(self, real: str) -> bool:
        return self.get(real) is not None

    def __getitem__(self, real: str) -> _T:
        found = self.get(real)
        if found is None:
            raise KeyError(real)
        return found

    def __setitem__(self, real: str, obj: _T) -> None:
        self._by_path[real] = obj
        fid = self._file_id(real)
        if fid is not None:
            self._by_id.setdefault(fid, obj)


@dataclass(frozen=True, slots=True)
class MissingVersion:
    """A symbol version an object needs (DT_VERNEED) that the object providing the library
    does not define (DT_VERDEF): ``version `GLIBC_2.38' not found``.  ``provider_versioned``
    is false when the provider defines no versions at all (ld.so only warns then)."""

    requester: str
    provider: str
    library: str
    version: str
    weak: bool = False
    provider_versioned: bool = True

    @property
    def stops(self) -> bool:
        """Whether ld.so refuses to run the program for it."""
        return self.provider_versioned and not self.weak

    def message(self, program: str) -> str:
        """ld.so's words for it (dl-version.c), as its trace prints them on stderr."""
        if not self.provider_versioned:
            what = "no version information available"
        else:
            what = f"{'weak ' if self.weak else ''}version `{self.version}' not found"
        return f"{program}: {self.provider}: {what} (required by {self.requester})"


@dataclass(frozen=True, slots=True)
class LoadedObject:
    """One entry of the link map, in load order: ``path`` is ``None`` when not found."""

    name: str
    path: str | None
    real: str | None
    role: str


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A closure in load order.  ``flavor`` is the loader ("glibc" or "musl"), whose ``ldd``
    prints differently; ``errors`` are the messages a loader prints on stderr while going on
    (musl reports each library it cannot load there)."""

    main: str
    objects: tuple[LoadedObject, ...]
    resolutions: tuple[Resolution, ...]
    fatal: str | None = None
    main_binary: Binary | None = None
    flavor: str = "glibc"
    errors: tuple[str, ...] = ()
    #: what ld.so's trace prints on stderr and goes on after (a preload it cannot load, a
    #: symbol version a library does not define)
    warnings: tuple[str, ...] = ()
    #: symbol versions the loaded objects need and their providers do not define: outside
    #: trace mode, ld.so stops on each that is not weak
    missing_versions: tuple[MissingVersion, ...] = ()

    def ldd_lines(self) -> list[str]:
        """The lines ``ldd`` prints (without load addresses)."""
        if self.flavor == "musl":
            return [f"\t{o.name}" if o.role == "rtld" else f"\t{o.name} => {o.path}"
                    for o in self.objects if o.role not in ("main", "missing")]
        if self.main_binary is not None and not self.main_binary.needed:
            return ["\tstatically linked"]
        lines = []
        # rtld.c prints the link map from the program's successor on: filtees of the
        # program itself, linked in before it, are loaded but never printed
        after_main = False
        for o in self.objects:
            if o.role == "main":
                after_main = True
                continue
            if not after_main:
                continue
            if o.path is None:
                lines.append(f"\t{o.name} => not found")
            elif o.name == o.path:
                lines.append(f"\t{o.name}")
            else:
                lines.append(f"\t{o.name} => {o.path}")
        return lines


#: ld.so's system-wide preload list
PRELOAD_FILE = "/etc/ld.so.preload"
#: names this long or longer are rejected (rtld.c: SECURE_PATH_LIMIT, PATH_MAX)
_PATH_MAX = 4096


def _split_preload(value: str) -> list[str]:
    """``LD_PRELOAD`` as rtld.c's handle_preload_list reads it: split at spaces and colons
    (not tabs); empty and over-long names are rejected."""
    return [n for n in re.split("[ :]", value) if n and len(n.encode(errors="surrogateescape"))
            < _PATH_MAX]


def _preload_file_names(data: bytes) -> list[str]:
    """``/etc/ld.so.preload`` as rtld.c reads it, quirks included: ``#`` blanks the rest of
    its line, but each search for the next ``#`` starts again at the beginning of the file
    and looks only as far as the bytes still unaccounted for, so a later comment can be
    read as names; names are separated by ``: \t\n`` and end at a NUL byte."""
    buf = bytearray(data)
    size = len(buf)
    if not size:
        return []  # ld.so maps the file: an empty one is not read
    rest = size
    while rest > 0:
        at = buf.find(b"#", 0, rest)
        if at < 0:
            break
        rest -= at
        while True:
            buf[at] = 0x20
            rest -= 1
            if rest <= 0:
                break
            at += 1
            if buf[at] == 0x0A:
                break
    seps = b" \t\n:"
    last: bytes | None = None
    if buf[-1] not in seps:
        start = size
        while start > 0 and buf[start - 1] not in seps:
            start -= 1
        last = bytes(buf[start:])
        if start == 0:
            body = b""
        else:
            body = bytes(buf[:start - 1])
    else:
        body = bytes(buf[:-1])
    body = body.split(b"\0", 1)[0]
    names = [n for n in re.split(rb"[: \t\n]", body) if n]
    if last is not None:
        last = last.split(b"\0", 1)[0]
        names.append(last)  # (an empty one is rejected below, as do_preload's lookup is)
    return [n.decode("utf-8", "surrogateescape") for n in names if n]


class _Known:
    """Loaded objects by the names a request can match, first loaded winning: the names it
    was requested by and its path, then (checked after those, as ld.so adds it lazily) its
    DT_SONAME."""

    def __init__(self) -> None:
        self._names: dict[str, _Obj] = {}
        self._sonames: dict[str, _Obj] = {}
        self._order: list[_Obj] = []

    def add(self, o: _Obj) -> None:
        self._order.append(o)
        for n in (*o.names, o.path):
            self._names.setdefault(n, o)
        if o.binary is not None and o.binary.soname:
            self._sonames.setdefault(o.binary.soname, o)

    def add_name(self, name: str, o: _Obj) -> None:
        """A request that found an object already loaded (same file) names it too."""
        o.names.add(name)
        self._names.setdefault(name, o)

    def match(self, name: str) -> _Obj | None:
        by_name = self._names.get(name)
        by_soname = self._sonames.get(name)
        if by_name is None or by_soname is None:
            return by_name or by_soname
        # Both match: ld.so walks the link map in order and takes the first that matches.
        return min(by_name, by_soname, key=self._order.index)


class _Fatal(Exception):
    def __init__(self, message: str, resolution: Resolution) -> None:
        super().__init__(message)
        self.resolution = resolution


class GlibcLoader:
    """Resolve the dependency closure of one object at a time over a virtual tree."""

    def __init__(
        self,
        fs: FileSystem,
        platform: GlibcPlatform,
        store: BinaryStore,
        *,
        cache: LdCache | None,
        ld_library_path: str | None = None,
        cwd: str = "/",
    ) -> None:
        self.fs = fs
        self.platform = platform
        self.store = store
        self.cache = cache
        self.cwd = cwd
        self._subdirs = tuple(f"glibc-hwcaps/{h}" for h in platform.hwcaps) + (
            platform.legacy_subdirs())
        self._existing: dict[str, tuple[str, ...] | None] = {}
        self._dir_names: dict[str, frozenset[str]] = {}
        self._verified: dict[str, tuple[Verdict, str | None]] = {}
        #: the version names each file defines (by symlink-free path), for _check_versions
        self._defined: dict[str, frozenset[str]] = {}
        self._file_ids: dict[str, tuple[int, int] | None] = {}
        # ld.so ignores an empty LD_LIBRARY_PATH (``*llp != '\0'``); its $ORIGIN is the
        # main program's directory, so the list is decomposed per program (_env_for).
        self._llp = ld_library_path or None
        self._env_dirs_by_main: dict[str | None, list[str]] = {}
        # ld.so.cache names compare with digit runs as numbers (_dl_cache_libcmp)
        self._cache_index: dict[str, list[CacheEntry]] = {}
        for key, entries in (cache.index() if cache else {}).items():
            self._cache_index.setdefault(_libcmp_key(key), []).extend(entries)

    def _file_id(self, real: str) -> tuple[int, int] | None:
        """(device, inode) of a file, asked of the tree once per run."""
        if real not in self._file_ids:
            self._file_ids[real] = self.fs.file_id(real)
        return self._file_ids[real]

    # -- paths ------------------------------------------------------------------------------
    def _abs(self, path: str) -> str:
        return path if path.startswith("/") else posixpath.join(self.cwd, path)

    def origin_of(self, path: str) -> str:
        """``$ORIGIN``: the directory of the path the object was opened by (unresolved)."""
        full = path if path.startswith("/") else self.cwd.rstrip("/") + "/" + path
        d = full[: full.rfind("/")]
        return d or "/"

    def expand(self, text: str, obj_path: str | None) -> str | None:
        """Expand $ORIGIN, $LIB, $PLATFORM; ``None`` when $ORIGIN is needed but unknown."""
        if "$" not in text:
            return text
        unknown = False

        def sub(m: re.Match[str]) -> str:
            nonlocal unknown
            token = m.group(2) or m.group(3)
            if token == "ORIGIN":
                if obj_path is None:
                    unknown = True
                    return ""
                return self.origin_of(obj_path)
            if token == "LIB":
                return self.platform.lib
            return self.platform.platform

        out = _DST.sub(sub, text)
        return None if unknown else out

    def _decompose(self, value: str | tuple[str, ...], obj_path: str | None,
                   seps: str = ":") -> list[str]:
        items = list(value) if isinstance(value, tuple) else re.split(f"[{seps}]", value)
        out: list[str] = []
        for item in items:
            d = item
            if d:
                exp = self.expand(d, obj_path)
                if exp is None or not exp:
                    continue
                d = exp.rstrip("/") or "/"
                if d != "/":
                    d += "/"
            if d not in out:
                out.append(d)
        return out

    def _subdirs_of(self, d: str) -> tuple[str, ...] | None:
        """Existing search subdirectories of ``d`` (hwcaps first, then ``d`` itself as
        ``""``), or ``None`` when ``d`` does not exist: ld.so skips such directories."""
        if d in self._existing:
            return self._existing[d]
        base = self._abs(d or ".")
        result: tuple[str, ...] | None
        if self._is_dir(base):
            subs = [s for s in self._subdirs if self._is_dir(base.rstrip("/") + "/" + s)]
            result = (*subs, "")
        else:
            result = None
        self._existing[d] = result
        return result

    def _is_dir(self, path: str) -> bool:
        try:
            return self.fs.kind(path) is Kind.DIR
        except SymlinkLoop:
            return False

    # -- candidates -------------------------------------------------------------------------
    def _try(self, candidate: str, rule: Rule, origin: str | None,
             hwcaps: str | None) -> tuple[Attempt, str | None]:
        """Open one candidate as ``open_verify`` would; returns the attempt and the
        symlink-free path when accepted."""
        try:
            real = self.fs.resolve(self._abs(candidate))
        except SymlinkLoop:
            return Attempt(candidate, rule, Verdict.LOOP, origin, hwcaps,
                           "too many levels of symbolic links"), None
        if real is None:
            return Attempt(candidate, rule, Verdict.ABSENT, origin, hwcaps), None
        verdict = self._verified.get(real)
        if verdict is None:
            parent, base = posixpath.split(real)
            kind = self.fs.entry(parent, base) if real != "/" else Kind.DIR
            if kind is Kind.DIR:
                verdict = (Verdict.INVALID, "cannot read file data: Error 21")
            elif kind is not Kind.FILE:
                verdict = (Verdict.UNREADABLE, "not a regular file")
            else:
                stored = self.store.get(real)
                if stored.unreadable:
                    verdict = (Verdict.UNREADABLE, stored.error)
                else:
                    verdict = verify_header(stored.head, self.platform)
                    if verdict[0] is Verdict.ACCEPTED and stored.binary is None:
                        verdict = (Verdict.INVALID, f"cannot map: {stored.error}")
                    elif verdict[0] is Verdict.ACCEPTED and stored.binary is not None and (
                            stored.binary.file_type == ET_EXEC):
                        verdict = (Verdict.INVALID, "cannot dynamically load executable")
                    elif verdict[0] is Verdict.ACCEPTED and stored.binary is not None and (
                            stored.binary.flags_1 & DF_1_PIE):
                        verdict = (Verdict.INVALID,
                                   "cannot dynamically load position-independent executable")
            self._verified[real] = verdict
        v, msg = verdict
        return Attempt(candidate, rule, v, origin, hwcaps, msg), (
            real if v is Verdict.ACCEPTED else None)

    def _open_path(self, name: str, dirs: list[str], rule: Rule, origin: str | None,
                   attempts: list[Attempt]) -> tuple[str, str] | None:
        for d in dirs:
            subs = self._subdirs_of(d)
            if subs is None:
                attempts.append(Attempt(d + name, rule, Verdict.ABSENT, origin, None,
                                        "directory does not exist"))
                continue
            for sub in subs:
                cand = f"{d}{sub}/{name}" if sub else d + name
                att, real = self._try(cand, rule, origin, sub or None)
                attempts.append(att)
                if real is not None:
                    return cand, real
                if att.verdict is Verdict.INVALID:
                    raise _Fatal(f"{cand}: {att.detail}", Resolution(
                        "", name, Outcome.FATAL, cand, rule, origin, _kept(attempts),
                        f"{cand}: {att.detail}"))
                if att.verdict is Verdict.LOOP:
                    return None
        return None

    def _rpath(self, o: _Obj) -> list[str] | None:
        self._expand_obj(o)
        return o.rpath_dirs

    def _expand_obj(self, o: _Obj) -> None:
        if o.expanded:
            return
        o.expanded = True
        b = o.binary
        if b is None:
            return
        # An empty string is ignored ("Ignore empty rpaths" in decompose_rpath); an empty
        # RUNPATH still disables the RPATH chain.
        if b.runpath is not None:
            o.runpath_dirs = self._decompose(b.runpath, o.path) if b.runpath != ("",) else []
        elif b.rpath is not None:
            o.rpath_dirs = self._decompose(b.rpath, o.path) if b.rpath != ("",) else []

    def _env_for(self, main: _Obj | None) -> list[str] | None:
        """LD_LIBRARY_PATH's directories, $ORIGIN being the main program's directory."""
        if self._llp is None:
            return None
        key = main.path if main is not None else None
        dirs = self._env_dirs_by_main.get(key)
        if dirs is None:
            dirs = self._env_dirs_by_main[key] = self._decompose(self._llp, key, ":;")
        return dirs

    def _cache_lookup(self, name: str) -> CacheEntry | None:
        entries = self._cache_index.get(_libcmp_key(name))
        if not entries:
            return None
        flags = self.platform.cache_flags
        best: CacheEntry | None = None
        best_prio = len(self.platform.hwcaps)
        for e in entries:
            if e.flags not in flags:
                continue
            if e.hwcaps_subdir is not None:
                if e.hwcaps_subdir in self.platform.hwcaps:
                    prio = self.platform.hwcaps.index(e.hwcaps_subdir)
                    if prio < best_prio:
                        best, best_prio = e, prio
                continue
            if e.hwcap == 0 and best is None:
                best = e
        return best

    # -- search -----------------------------------------------------------------------------
    def search(self, name: str, loader: _Obj | None, main: _Obj | None) -> tuple[
            str | None, str | None, Rule | None, str | None, list[Attempt]]:
        """Where ld.so finds ``name`` requested by ``loader``; raises :class:`_Fatal`."""
        attempts: list[Attempt] = []
        if "/" in name:
            path = self.expand(name, loader.path if loader else None)
            if path is None:
                return None, None, None, None, attempts
            att, real = self._try(path, Rule.PATH, None, None)
            attempts.append(att)
            if att.verdict is Verdict.INVALID:
                raise _Fatal(f"{path}: {att.detail}", Resolution(
                    "", name, Outcome.FATAL, path, Rule.PATH, None, _kept(attempts),
                    f"{path}: {att.detail}"))
            return (path, real, Rule.PATH, None, attempts) if real else (
                None, None, None, None, attempts)

        def hit(r: tuple[str, str] | None, rule: Rule, origin: str | None) -> tuple[
                str | None, str | None, Rule | None, str | None, list[Attempt]] | None:
            return (r[0], r[1], rule, origin, attempts) if r else None

        if loader is None or loader.binary is None or loader.binary.runpath is None:
            did_main = False
            chain = loader
            while chain is not None:
                dirs = self._rpath(chain)
                if dirs is not None:
                    found = hit(self._open_path(name, dirs, Rule.RPATH, chain.path, attempts),
                                Rule.RPATH, chain.path)
                    if found:
                        return found
                    did_main |= chain is main
                chain = chain.loader
            if main is not None and not did_main:
                dirs = self._rpath(main)
                if dirs is not None:
                    found = hit(self._open_path(name, dirs, Rule.RPATH, main.path, attempts),
                                Rule.RPATH, main.path)
                    if found:
                        return found
        env_dirs = self._env_for(main)
        if env_dirs is not None:
            found = hit(self._open_path(name, env_dirs, Rule.LD_LIBRARY_PATH, None,
                                        attempts), Rule.LD_LIBRARY_PATH, None)
            if found:
                return found
        if loader is not None:
            self._expand_obj(loader)
            if loader.runpath_dirs is not None:
                found = hit(self._open_path(name, loader.runpath_dirs, Rule.RUNPATH,
                                            loader.path, attempts), Rule.RUNPATH, loader.path)
                if found:
                    return found
        flags_obj = loader or main
        nodeflib = bool(flags_obj and flags_obj.binary and flags_obj.binary.nodeflib)
        dirs = [d.rstrip("/") + "/" for d in self.platform.trusted_dirs]
        entry = self._cache_lookup(name)
        if entry is not None and nodeflib and any(entry.value.startswith(d) for d in dirs):
            # DF_1_NODEFLIB: a cache entry in a system directory is not used; one in
            # another ld.so.conf directory still is.
            attempts.append(Attempt(entry.value, Rule.CACHE, Verdict.REJECTED, None,
                                    entry.hwcaps_subdir, "in a system directory, and the "
                                    "requester has DF_1_NODEFLIB"))
            entry = None
        if entry is not None:
            # a cache built here from ld.so.conf (the root has none) says so as its origin
            origin = EMULATED_CACHE if self.cache is not None and self.cache.emulated else None
            att, real = self._try(entry.value, Rule.CACHE, origin, entry.hwcaps_subdir)
            attempts.append(att)
            if att.verdict is Verdict.INVALID:
                raise _Fatal(f"{entry.value}: {att.detail}", Resolution(
                    "", name, Outcome.FATAL, entry.value, Rule.CACHE, origin,
                    _kept(attempts), f"{entry.value}: {att.detail}"))
            if real is not None:
                return entry.value, real, Rule.CACHE, origin, attempts
        if not nodeflib:
            found = hit(self._open_path(name, dirs, Rule.DEFAULT, None, attempts),
                        Rule.DEFAULT, None)
            if found:
                return found
        return None, None, None, None, attempts

    def dlopen(self, name: str, caller: str | None) -> Resolution:
        """Where ``dlopen(name)`` called from the object at ``caller`` finds ``name``: the
        caller's RPATH (unless it has RUNPATH), ``LD_LIBRARY_PATH``, its RUNPATH, the cache and
        the default directories.  ``caller=None`` is a program with neither (the Python
        interpreter, for ctypes and cffi)."""
        obj = None
        if caller is not None:
            real = self.fs.resolve(self._abs(caller))
            b = self.store.get(real).binary if real else None
            obj = _Obj(caller, caller, real or caller, b, None, {caller})
        requester = caller or "(dlopen from a program without RPATH or RUNPATH)"
        try:
            path, _real, rule, origin, attempts = self.search(name, obj, obj)
        except _Fatal as f:
            r = f.resolution
            return Resolution(requester, name, Outcome.FATAL, r.path, r.rule, r.origin,
                              r.attempts, r.fatal)
        if path is None:
            return Resolution(requester, name, Outcome.NOT_FOUND, attempts=_kept(attempts))
        return Resolution(requester, name, Outcome.FOUND, path, rule, origin, _kept(attempts))

    # -- preloading --------------------------------------------------------------------------
    def preloads(self, ld_preload: str | None) -> list[tuple[str, str]]:
        """What ld.so preloads before a program's dependencies, in order, each with where it
        comes from: ``LD_PRELOAD`` (split at spaces and colons), then the root's
        ``/etc/ld.so.preload`` (names separated by white space or colons, ``#`` comments)."""
        out = [(name, "LD_PRELOAD") for name in _split_preload(ld_preload or "")]
        try:
            real = self.fs.resolve(PRELOAD_FILE)
            raw = self.fs.read_file(real, 1 << 20) if real else b""
        except (SourceError, SymlinkLoop):  # unreadable: ld.so's access(R_OK) skips it too
            raw = b""
        out.extend((name, PRELOAD_FILE) for name in _preload_file_names(raw))
        return out

    # -- closure ----------------------------------------------------------------------------
    def load(self, main_path: str, preload: Sequence[tuple[str, str]] = ()) -> LoadResult:
        """The breadth-first closure of ``main_path`` (spelled as the user gave it), after
        the ``preload`` objects (see :meth:`preloads`: ``unveil ldd`` passes them, a scan
        does not)."""
        real = self.fs.resolve(self._abs(main_path))
        main_bin = self.store.get(real).binary if real else None
        main = _Obj(main_path, main_path, real or main_path, main_bin, None, {main_path},
                    role="main")
        if main_bin is not None and main_bin.soname:
            pass  # matched lazily below, as ld.so adds the SONAME on first match
        chain: list[_Obj] = [main]
        pending_rtld: _Obj | None = None
        vdso: _Obj | None = None
        if self.platform.vdso:
            vdso = _Obj(self.platform.vdso, self.platform.vdso, "<vdso>", None, None,
                        {self.platform.vdso}, role="vdso")
            chain.append(vdso)
        # The ld.so that runs is the platform's (what ldd invokes); it goes by the name the
        # program's PT_INTERP gives it, printed "PT_INTERP => the running ld.so" when the two
        # differ.
        interp = (main_bin.interpreter if main_bin and main_bin.interpreter
                  else self.platform.interpreter)
        rtld_path = self.platform.interpreter
        rtld_real = None
        try:
            rtld_real = self.fs.resolve(rtld_path)
        except SymlinkLoop:
            rtld_real = None
        rtld_bin = self.store.get(rtld_real).binary if rtld_real else None
        pending_rtld = _Obj(interp, rtld_path, rtld_real or rtld_path, rtld_bin, None,
                            {interp, rtld_path}, role="rtld")
        by_real: ByFile[_Obj] = ByFile(self._file_id)
        by_real[main.real] = main
        if rtld_real:
            by_real[rtld_real] = pending_rtld
        known = _Known()
        for o in (main, vdso, pending_rtld):
            if o is not None:
                known.add(o)
        resolutions: list[Resolution] = []
        queue = [main]
        fatal: str | None = None
        errors: list[str] = []
        for name, where in preload:
            # rtld.c do_preload: each is mapped as a dependency of the program, before any
            # of its DT_NEEDED; a failure is printed and ignored, an object already loaded
            # is not loaded again.
            # (dl-load.c expands dynamic string tokens in a name with a slash only: search
            # does; the object keeps the name as given, printed "name => path")
            want = name
            problem = "cannot open shared object file"
            if known.match(want) is not None:
                continue
            try:
                path, real_dep, _rule, _origin, tried = self.search(want, main, main)
            except _Fatal as f:
                path = real_dep = None
                tried = []
                problem = str(f).removeprefix(f"{f.resolution.path}: ")
            if path is None and any(a.verdict is Verdict.WRONG_CLASS for a in tried):
                # dl-load.c: nothing found, but a file of the other class was
                other = 32 if self.platform.bits == 64 else 64
                problem = f"wrong ELF class: ELFCLASS{other}"
            if path is None or real_dep is None:
                errors.append(f"ERROR: ld.so: object '{name}' from {where} cannot be "
                              f"preloaded ({problem}): ignored.")
                continue
            if real_dep in by_real:
                known.add_name(want, by_real[real_dep])
                continue
            new = _Obj(want, path, real_dep, self.store.get(real_dep).binary, main,
                       {want, path}, role="preload")
            by_real[real_dep] = new
            known.add(new)
            self._reference(new, chain, queue)
        i = 0
        #: objects whose entries were read already (a filter, put back behind its filtees)
        done: set[int] = set()
        try:
            while i < len(queue):
                obj = queue[i]
                i += 1
                if obj.binary is None or id(obj) in done:
                    continue
                filtees = obj.binary.filtees
                inserted = 0
                for k, need in enumerate((*obj.binary.needed, None)):
                    while filtees and filtees[0].after <= k:
                        # dl-deps.c: DT_FILTER/DT_AUXILIARY entries are read in the dynamic
                        # array's order with the DT_NEEDED ones
                        inserted += self._filtee(filtees[0], obj, main=main, queue=queue,
                                                 chain=chain, by_real=by_real, known=known,
                                                 resolutions=resolutions, done=done)
                        filtees = filtees[1:]
                    if not need:
                        continue  # an empty name (or the end): ld.so has nothing to load
                    want = need
                    if "$" in need and _DST.search(need):
                        # dl-deps.c expands dynamic string tokens before anything else: the
                        # expanded name is what is matched, searched and printed.
                        expanded = self.expand(need, obj.path)
                        if not expanded:
                            message = f"{need}: empty dynamic string token substitution"
                            resolutions.append(Resolution(obj.path, need, Outcome.FATAL,
                                                          fatal=message))
                            raise _Fatal(message, resolutions[-1])
                        want = expanded
                    dep = self._obtain(want, need, obj, main=main, by_real=by_real,
                                       known=known, resolutions=resolutions)
                    if dep is None:
                        chain.append(_Obj(want, "", "", None, obj, {want}, role="missing"))
                    else:
                        self._reference(dep, chain, queue)
                if inserted:
                    # The filtees now stand before the filter in the search list: they are
                    # read next, and the filter, read already, is passed over.
                    done.add(id(obj))
                    i = queue.index(obj) - inserted
        except _Fatal as f:
            fatal = str(f)
        chain = self._place_rtld(chain, queue, pending_rtld)
        missing = () if fatal else self._check_versions(chain, main_path)
        errors.extend(m.message(main_path) for m in missing)
        objects = tuple(
            LoadedObject(o.name, o.path if o.role != "missing" else None,
                         o.real if o.role not in ("missing", "vdso") else None, o.role)
            for o in chain)
        return LoadResult(main_path, objects, tuple(resolutions), fatal, main_bin,
                          warnings=tuple(errors), missing_versions=missing)

    def _check_versions(self, chain: list[_Obj], program: str) -> tuple[MissingVersion, ...]:
        """dl-version.c: for each object in link-map order, each version it needs from each
        library, looked for among the versions the object that library names defines (the
        first in the link map matching the name; one not found was reported already)."""
        out: list[MissingVersion] = []
        #: each name to the first object in the link map that goes by it (or has it as its
        #: SONAME), as dl-version.c's match_object finds it
        first: dict[str, _Obj] | None = None
        for o in chain:
            b = o.binary
            if b is None or o.role == "missing" or not b.version_needs:
                continue
            if first is None:
                first = {}
                for p in chain:
                    for n in p.names:
                        first.setdefault(n, p)
                    if p.binary is not None and p.binary.soname:
                        first.setdefault(p.binary.soname, p)
            requester = program if o.role == "main" else o.path
            for need in b.version_needs:
                provider = first.get(need.file)
                if provider is None or provider.role == "missing" or provider.binary is None:
                    continue
                pb = provider.binary
                name = program if provider.role == "main" else provider.path
                if pb.version_base is None:
                    out.extend(MissingVersion(requester, name, need.file, v, v in need.weak,
                                              provider_versioned=False)
                               for v in need.versions)
                    continue
                defined = self._defined.get(provider.real)
                if defined is None:
                    defined = self._defined[provider.real] = frozenset(
                        (*pb.version_defs, pb.version_base))
                if defined.issuperset(need.versions):
                    continue
                out.extend(MissingVersion(requester, name, need.file, v, v in need.weak)
                           for v in need.versions if v not in defined)
        return tuple(out)

    def _obtain(self, want: str, request: str, obj: _Obj, *, main: _Obj,
                by_real: ByFile[_Obj], known: _Known,
                resolutions: list[Resolution]) -> _Obj | None:
        """The object ``obj``'s request (``want``, tokens expanded) loads: one loaded
        already (by name, SONAME or file), or a new one; None when not found.  The
        resolution is recorded; a fatal search error is recorded and raised."""
        dep = known.match(want)
        if dep is not None:
            resolutions.append(Resolution(obj.path, request, Outcome.FOUND, dep.path,
                                          Rule.LOADED, dep.name))
            return dep
        try:
            path, real_dep, rule, origin, attempts = self.search(want, obj, main)
        except _Fatal as f:
            r = f.resolution
            resolutions.append(Resolution(obj.path, request, Outcome.FATAL, r.path, r.rule,
                                          r.origin, r.attempts, r.fatal))
            raise
        if path is None or real_dep is None:
            resolutions.append(Resolution(obj.path, request, Outcome.NOT_FOUND,
                                          attempts=_kept(attempts)))
            return None
        dep = by_real.get(real_dep)
        if dep is not None:
            known.add_name(want, dep)
        else:
            dep = _Obj(want, path, real_dep, self.store.get(real_dep).binary, obj, {want, path})
            by_real[real_dep] = dep
            known.add(dep)
        resolutions.append(Resolution(obj.path, request, Outcome.FOUND, dep.path, rule, origin,
                                      _kept(attempts)))
        return dep

    def _filtee(self, f: Filtee, obj: _Obj, *, main: _Obj, queue: list[_Obj],
                chain: list[_Obj], by_real: ByFile[_Obj], known: _Known,
                resolutions: list[Resolution], done: set[int]) -> int:
        """dl-deps.c on a DT_FILTER/DT_AUXILIARY entry of ``obj``: the filtee is loaded (or,
        in trace mode, faked as not found) and placed just before ``obj`` in the search list
        and the link map, unless it is in the search list before ``obj`` already.  Returns
        how many objects now stand before ``obj`` in the search list for it (0 or 1)."""
        want = f.name
        if "$" in want and _DST.search(want):
            want = self.expand(want, obj.path) or want
        try:
            dep = self._obtain(want, f.name, obj, main=main, by_real=by_real, known=known,
                               resolutions=resolutions)
        except _Fatal:
            if not f.auxiliary:
                raise
            # dl-deps.c discards any error loading an auxiliary filtee: no line, no
            # placeholder, no search further on
            r = resolutions.pop()
            resolutions.append(replace(r, outcome=Outcome.NOT_FOUND, path=None, rule=None,
                                       origin=None))
            return 0
        if dep is None:
            # trace mode fakes a link map for it, moved before the filter's
            chain.insert(chain.index(obj) if obj in chain else len(chain),
                         _Obj(want, "", "", None, obj, {want}, role="missing"))
            return 0
        if dep is obj:
            return 0
        if dep in queue:
            if queue.index(dep) < queue.index(obj):
                return 0  # found earlier in the search list already: nothing moves
            if id(dep) in done:
                # A filter waiting behind its filtees, named as a filtee by one of them:
                # dl-deps.c moves the two in front of each other for ever, on the stack,
                # until ld.so crashes (trace mode too).
                message = (f"{dep.path} and {obj.path} are each other's filtees: ld.so "
                           "swaps them without end and crashes")
                resolutions.append(Resolution(obj.path, f.name, Outcome.FATAL, dep.path,
                                              fatal=message))
                raise _Fatal(message, resolutions[-1])
            queue.remove(dep)
        queue.insert(queue.index(obj), dep)
        dep.referenced = True
        if dep.role not in ("main", "rtld"):
            if dep in chain:
                chain.remove(dep)
            chain.insert(chain.index(obj) if obj in chain else len(chain), dep)
        return 1

    @staticmethod
    def _reference(o: _Obj, chain: list[_Obj], queue: list[_Obj]) -> None:
        if o.referenced or o.role in ("main", "vdso"):
            return
        o.referenced = True
        if o.role != "rtld":
            chain.append(o)
        queue.append(o)

    @staticmethod
    def _place_rtld(chain: list[_Obj], searchlist: list[_Obj], rtld: _Obj) -> list[_Obj]:
        """ld.so moves itself in the link map to just after the object that precedes it in
        the breadth-first search list (objects not found are in the map but not in the
        search list), and leaves itself out when nothing needs it."""
        if rtld not in searchlist or searchlist.index(rtld) == 0:
            return chain
        before = searchlist[searchlist.index(rtld) - 1]
        if before not in chain:
            return chain
        at = chain.index(before) + 1
        return [*chain[:at], rtld, *chain[at:]]
