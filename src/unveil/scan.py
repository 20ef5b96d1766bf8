"""Orchestration: open targets, find binaries, resolve them as the loader would, classify.

Every binary of a target is resolved in the context the real loader gives it: executables
and Python extension modules are the roots; a library they load is resolved within their
closure (so it inherits their DT_RPATH, as ld.so does), and only libraries that nothing in
the target loads are resolved on their own.
"""

from __future__ import annotations

import functools
import posixpath
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from unveil.config import (
    LINUX_ARCHES,
    MUSLLINUX_POLICY_LIBS,
    ScanConfig,
    glibc_platform_for,
    musl_platform_for,
)
from unveil.errors import SourceError, UnveilError
from unveil.formats import is_binary
from unveil.formats.blob import Blob
from unveil.literals import LiteralSearch
from unveil.loader.store import BinaryStore, StoredFile
from unveil.model import (
    Binary,
    BinaryFormat,
    Component,
    Confidence,
    Declaration,
    Distribution,
    DynamicLoad,
    Edge,
    EdgeClass,
    Evidence,
    LinkKind,
    LoadSite,
    Outcome,
    Problem,
    ProblemKind,
    Resolution,
    Role,
    Rule,
    ScannedBinary,
    ScanResult,
    TargetKind,
    TargetResult,
)

if TYPE_CHECKING:
    # Imported where used: a wheel scan forks no process and hashes nothing by default,
    # and these imports (multiprocessing, sockets, hashlib) cost ~20 ms of its start-up;
    # nor does it need the Mach-O and Windows loaders, the dynamic-loading resolver or
    # ``why``'s explainer (another ~15 ms).
    from concurrent.futures import Future, ProcessPoolExecutor

    from unveil.dynload.python import PythonModules
    from unveil.identify.owners import PackageIndex
    from unveil.identify.pool import IdentifyPool
    from unveil.identify.sboms import ShippedSbom
    from unveil.loader.dyld import DyldLoader
    from unveil.loader.explain import Explanation
    from unveil.loader.glibc import GlibcLoader, LoadResult
    from unveil.loader.ldcache import LdCache
    from unveil.loader.musl import MuslLoader
    from unveil.loader.windows import WindowsLoader
from unveil.sources.fs import FileSystem, Kind, SymlinkLoop
from unveil.sources.targets import PACKAGE_SUFFIXES, VIRTUAL_ROOT, Target, open_target

__all__ = ["Scanner", "scan"]

#: Cheap filters before a source is parsed for dynamic loading (an environment has
#: thousands of sources and a few dozen loaders): words one of which must occur, then a
#: regex for a call or an import of a loader (measured: 4,875 sources of the real-wheel
#: venv -> 77 with a word -> 41 with a call, none of the others having a load site).
_WORDS = {
    # each word is one pass over the file, so fewer words is faster (Python: _PY_NEEDLES)
    "js": (b"koffi", b"ffi", b"dlopen", b"bindings", b"gyp-build", b".node"),
    "rb": (b"ffi_lib", b"Fiddle", b"dlopen", b"dlload", b"DynamicLibrary"),
}
_PY_CALLS = re.compile(
    rb"(?P<call>CDLL|PyDLL|WinDLL|OleDLL|LoadLibrary(?:Ex)?|find_library|dlopen"
    rb"|load_library(?:_permanently)?|add_dll_directory|require_versions?)\s*\("
    rb"|\b(?:cdll|pydll|windll|oledll)\s*[.\[]|getattr\(\s*(?:ctypes\.)?(?:cdll|windll)"
    rb"|\bctypes\s*\.\s*(?:CDLL|PyDLL|WinDLL|OleDLL)\b(?!\s*\()"  # kept: x = ctypes.CDLL
    rb"|(?:from|import)\s[^\n]*\b(?:CDLL|PyDLL|WinDLL|OleDLL|find_library|cdll|windll"
    rb"|load_library|LoadLibrary)\b")
_NONE_ARG = re.compile(rb"\s*None\s*\)")


def _py_call_counts(raw: bytes, m: re.Match[bytes]) -> bool:
    """Whether a match of ``_PY_CALLS`` can be a load site: not in a comment line, not a
    loader given ``None`` alone (the program itself), not ``x.load_library(...)`` in a
    file that never names numpy's ``ctypeslib`` (the only such loader)."""
    at = m.start()
    line = max(raw.rfind(b"\n", 0, at), raw.rfind(b"\r", 0, at)) + 1
    if raw[line:at].lstrip()[:1] == b"#":
        return False
    call = m.group("call")
    if call is None:
        return True
    if call != b"find_library" and _NONE_ARG.match(raw, m.end()):
        return False
    return not (call == b"load_library" and raw[at - 1:at] == b"."
                and b"ctypeslib" not in raw)


#: What a word of a loader call or import (``_PY_CALLS``) holds, found in one pass each
#: over a source: (needle, [(word, where the needle is in it)]).  Two-letter needles
#: cover several words in one pass ("dl": dll, dlopen), which beats a pass per word
#: though they occur more often ("handle"): an occurrence costs a comparison.
_PY_NEEDLES: tuple[tuple[bytes, tuple[tuple[bytes, int], ...]], ...] = (
    (b"dl", ((b"dll", 0), (b"dlopen", 0))),
    (b"DLL", ((b"DLL", 0),)),
    (b"ibrary", ((b"d_library", 3), (b"LoadLibrary", 5))),
    (b"require_version", ((b"require_version", 0),)),
)


class _WordScanner(LiteralSearch):
    """The words of ``_PY_NEEDLES`` found in one pass by Hyperscan, when it is installed:
    the four ``bytes.find`` passes over an environment's 92 MB of sources took 0.30 s, one
    Hyperscan pass 0.05 s (``bench/costs.py``)."""

    def __init__(self) -> None:
        super().__init__(tuple(dict.fromkeys(w for _n, ws in _PY_NEEDLES for w, _at in ws)))
        self.lengths = tuple(len(w) for w in self.words)

    def starts(self, raw: bytes) -> list[int]:
        """Sorted positions where a word starts."""
        hits: list[int] = []
        lengths = self.lengths

        def on(ident: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
            hits.append(to - lengths[ident])

        self.scan(raw, on)
        hits.sort()
        return hits


@functools.cache
def _word_scanner() -> _WordScanner:
    """Made on first use: a scan without sources never imports Hyperscan."""
    return _WordScanner()


def _call_near(raw: bytes, i: int) -> tuple[bool, int]:
    """Whether a loader call or import is on the lines around position ``i`` (the line
    before, its own, the one after); and where its line ends."""
    size = len(raw)
    # from the line before (``getattr(\n    ctypes.cdll, name)``) to the one after
    start = raw.rfind(b"\n", 0, max(0, raw.rfind(b"\n", 0, i))) + 1
    end = raw.find(b"\n", i)
    end = size if end < 0 else end
    # up to the next line too: a call's parenthesis may follow a line break
    nxt = raw.find(b"\n", end + 1)
    for m in _PY_CALLS.finditer(raw, start, size if nxt < 0 else nxt):
        if _py_call_counts(raw, m):
            return True, end
    return False, end


def _py_calls(raw: bytes, *, fast: bool = True) -> bool:
    """Whether a line with one of the words of ``_PY_CALLS`` (cdll, CDLL, dlopen,
    find_library, LoadLibrary, ...) holds a loader call or import.  The regex runs on those
    lines only: over whole files its alternation of words with no common first byte is
    tried at every position (1.8 s for torch's sources, 0.03 s this way).  ``fast=False``
    uses the pure-Python word passes even when Hyperscan is there (tests compare both)."""
    scanner = _word_scanner() if fast else None
    if scanner is not None and scanner.db is not None:
        end = -1
        for i in scanner.starts(raw):
            if i < end:
                continue  # on lines already looked at
            found, end = _call_near(raw, i)
            if found:
                return True
        return False
    for needle, words in _PY_NEEDLES:
        i = raw.find(needle)
        while i >= 0:
            for w, at in words:
                if i >= at and raw.startswith(w, i - at):
                    break
            else:
                i = raw.find(needle, i + 1)
                continue
            found, end = _call_near(raw, i)
            if found:
                return True
            i = raw.find(needle, end)
    return False


def _worth_parsing(path: str, raw: bytes) -> bool:
    ext = path.rsplit(".", 1)[-1]
    if ext == "py":
        return _py_calls(raw)
    words = _WORDS.get("js" if ext in ("mjs", "cjs") else ext)
    if words is None:
        return True  # binding.gyp
    return any(w in raw for w in words)


def _detect(job: tuple[str, str, str],
            modules: PythonModules | None = None) -> tuple[list[LoadSite], list[str]]:
    """Run one source detector; Python sources with ``modules`` (the tree around them, so
    that library names are followed into the other modules of a package)."""
    from unveil.dynload.resolve import detector_for, detector_kind

    path, text, shown = job
    if modules is not None and detector_kind(path) == "py":
        from unveil.dynload.python import detect_python

        return detect_python(text, shown, modules=modules)
    detect = detector_for(path)
    return detect(text, shown) if detect is not None else ([], [])


SourceResult = tuple[str, list[LoadSite], list[str]]


#: A source worth parsing, or unreadable: (path, why not or None, size).
_Prefiltered = tuple[str, str | None, int]


def _prefilter_sources(fs: FileSystem, paths: list[str],
                       modules: PythonModules) -> list[_Prefiltered]:
    """Read and prefilter sources, in order: those worth parsing, and those unreadable.
    What is read is kept (``PythonModules.remember``): the search of a package for the
    calls of a function then reads (or inflates) none of it again."""
    out: list[_Prefiltered] = []
    for path in paths:
        try:
            raw = fs.head(path, 8 << 20)  # plain reads: a map per file costs more
        except UnveilError as err:
            out.append((path, str(err), 0))
            continue
        modules.remember(path, raw)
        if _worth_parsing(path, raw):
            out.append((path, None, len(raw)))
    return out


def _analyse_sources(fs: FileSystem, sources: list[_Prefiltered],
                     modules: PythonModules) -> list[SourceResult]:
    """Analyse prefiltered sources: (path, load sites, problems) for each."""
    from unveil.dynload.python import collector_paused

    with collector_paused():
        return _analyse(fs, sources, modules)


#: Source bytes analysed between two collections of the cyclic garbage the analysis of a
#: large module leaves (the collector is paused meanwhile: see collector_paused).
_COLLECT_EVERY = 8 << 20


def _analyse(fs: FileSystem, sources: list[_Prefiltered],
             modules: PythonModules) -> list[SourceResult]:
    import gc

    out: list[SourceResult] = []
    since = 0
    for path, error, size in sources:
        since += size
        if since > _COLLECT_EVERY or size > (512 << 10):
            gc.collect()
            since = 0
        raw = modules.remembered(path) if error is None else None
        if error is None and raw is None:
            try:
                raw = fs.head(path, 8 << 20)
            except UnveilError as err:
                error = str(err)
        if error is not None or raw is None:
            out.append((path, [], [error or f"{path}: unreadable"]))
            continue
        # The detector sees the loader path, so paths it builds from __file__ are
        # loader paths too; they are shown as member paths afterwards.
        job = (path, raw.decode("utf-8", "surrogateescape"), path)
        sites, problems = _detect(job, modules)
        out.append((path, sites, problems))
    return out


def _detect_sources(fs: FileSystem, paths: list[str],
                    modules: PythonModules) -> list[SourceResult]:
    """Read, prefilter and analyse sources: (path, load sites, problems) for each path
    worth parsing or unreadable (all read before any is analysed)."""
    return _analyse_sources(fs, _prefilter_sources(fs, paths, modules), modules)


def _package_of(path: str) -> str:
    """The top-level package (or module) a source is in, for sharing out the analysis."""
    for marker in ("/site-packages/", "/dist-packages/"):
        i = path.rfind(marker)
        if i >= 0:
            end = i + len(marker)
            return path[:end] + path[end:].split("/", 1)[0]
    return posixpath.dirname(path)


#: In a worker process only: the tree it analyses and its reader of the tree's modules (set
#: by :func:`_init_worker` in the child, so concurrent scans in the parent never share it).
_WORKER: list[tuple[FileSystem, PythonModules | None]] = []
#: In a worker process only: the store whose files it reads for the scan (see _Members).
_WORKER_STORE: list[BinaryStore] = []


def _init_worker(fs: FileSystem, store: BinaryStore | None = None) -> None:
    import gc

    # What the worker inherited stays as it is: the collector never walks it (nor copies
    # its pages, shared with the parent until written).
    gc.freeze()
    _WORKER[:] = [(fs, None)]
    _WORKER_STORE[:] = [store] if store is not None else []


def _worker_sources() -> tuple[FileSystem, PythonModules]:
    """The tree and its module reader, made on a worker's first source task: a worker that
    only reads members (an identifying scan without dynamic-loading detection) would
    otherwise import the Python detector (~40 ms) for nothing."""
    from unveil.dynload.python import PythonModules

    fs, modules = _WORKER[0]
    if modules is None:
        modules = PythonModules.of(fs)
        _WORKER[0] = (fs, modules)
    return fs, modules


def _fork_pool(fs: FileSystem, workers: int,
               store: BinaryStore | None = None) -> ProcessPoolExecutor:
    """Worker processes forked from this one: they inherit the tree (open archives
    included) and the imported modules, not a copy.  Create it before the scan starts any
    thread."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=_init_worker, initargs=(fs, store))


def _worker_load(paths: list[str]) -> list[StoredFile]:
    store = _WORKER_STORE[0]
    return [store.load(p) for p in paths]


_In = TypeVar("_In")
_Out = TypeVar("_Out")


class _ThreadMap(Generic[_In, _Out]):
    """``fn`` over ``items`` on ``workers`` threads, each taking the next item as it frees
    up; :meth:`results` waits and gives them in order (or raises the first error).

    Not ``ThreadPoolExecutor``: importing :mod:`concurrent.futures` (it imports
    :mod:`logging`) took 6-10 ms of a bare wheel scan's ~0.3 s, and a bare scan needs no
    futures, only these threads."""

    def __init__(self, fn: Callable[[_In], _Out], items: Sequence[_In], workers: int) -> None:
        self._fn = fn
        self._items = items
        self._out: list[_Out | None] = [None] * len(items)
        self._errors: list[BaseException] = []
        self._next = iter(range(len(items)))
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, name="unveil-members",
                                          daemon=True)
                         for _ in range(max(1, min(workers, len(items))))]
        for t in self._threads:
            t.start()

    def _work(self) -> None:
        while not self._errors:
            with self._lock:
                i = next(self._next, None)
            if i is None:
                return
            try:
                self._out[i] = self._fn(self._items[i])
            except BaseException as e:  # handed to the caller, as a future would
                self._errors.append(e)
                return

    def results(self) -> list[_Out]:
        for t in self._threads:
            t.join()
        if self._errors:
            raise self._errors[0]
        return cast("list[_Out]", self._out)


class _Members:
    """A wheel's members read, parsed and identified in forked worker processes.

    Inflating releases the GIL, so threads suffice for a bare scan; identification and the
    search of binaries for dlopen names are Python, and on threads they wait for each other
    and for this process.  In a worker each member is inflated once, by the worker that
    parses and identifies it, and only its small :class:`StoredFile` comes back (scipy's
    121: 61 kB pickled, ~5 ms each way).  Forking and the round trips cost ~25 ms: worth it
    only for a wheel with much to read (:data:`MIN_BYTES`)."""

    #: Members of at least this many bytes (inflated, as the zip records) all together.
    MIN_BYTES = 64 << 20
    #: Members under this size are handed out together, up to it in total or BATCH files.
    SMALL = 1 << 20
    BATCH = 32

    def __init__(self, store: BinaryStore, paths: list[str], sizes: dict[str, int],
                 pool: ProcessPoolExecutor) -> None:
        self.store = store
        batches: list[list[str]] = []
        small: list[str] = []
        small_size = 0
        # Largest first: the biggest member is the critical path.
        for path in sorted(paths, key=lambda p: -sizes[p]):
            if sizes[path] >= self.SMALL:
                batches.append([path])
                continue
            small.append(path)
            small_size += sizes[path]
            if len(small) >= self.BATCH or small_size >= self.SMALL:
                batches.append(small)
                small, small_size = [], 0
        if small:
            batches.append(small)
        self.futures = [(b, pool.submit(_worker_load, b)) for b in batches]

    @classmethod
    def worth(cls, sizes: dict[str, int]) -> bool:
        return sum(sizes.values()) >= cls.MIN_BYTES

    def results(self) -> dict[str, StoredFile]:
        """Every member's stored file; a batch whose worker failed is read here instead."""
        out: dict[str, StoredFile] = {}
        for batch, future in self.futures:
            try:
                out.update(zip(batch, future.result(), strict=True))
            except Exception:  # a dead worker (killed, out of memory): read them here
                out.update((p, self.store.load(p)) for p in batch)
        return out


def _import_member_work(identify: bool, dynload: bool, sources: list[str]) -> None:
    """Import what forked workers run on a wheel's members and sources, for them to inherit
    (each would otherwise import, and compile without bytecode caches, its own)."""
    if identify:
        from unveil import identify as _identify  # noqa: F401
        from unveil.identify.banners import prepare_default_rules

        prepare_default_rules()
    if dynload:
        from unveil.dynload import binary as _binary  # noqa: F401

        _import_detectors(sources)


def _import_detectors(paths: list[str]) -> None:
    """Import the detectors the sources need (Python's always: its module reader too)."""
    from unveil.dynload import python  # noqa: F401
    from unveil.dynload.resolve import detector_for, detector_kind

    seen: set[str | None] = {"py"}
    for path in paths:
        kind = detector_kind(path)
        if kind not in seen:
            seen.add(kind)
            detector_for(path)
            if len(seen) >= 4:
                break


def _worker_prefilter(paths: list[str]) -> list[_Prefiltered]:
    fs, modules = _worker_sources()
    return _prefilter_sources(fs, paths, modules)


def _worker_analyse(sources: list[_Prefiltered]) -> list[SourceResult]:
    import gc

    fs, modules = _worker_sources()
    try:
        return _analyse_sources(fs, sources, modules)
    finally:
        gc.freeze()  # the modules read stay till the worker ends: never walk them again


class _Sources:
    """Dynamic-loading analysis of a target's sources, started before its binaries are
    parsed: with more than one worker it runs in forked processes meanwhile (source analysis
    is pure Python; parsing mapped ELF files holds this process's GIL), so an environment's
    thousands of .py files add to the scan's CPU time, not to its wall time.

    Two rounds: the workers read and prefilter every source (batches handed out as they
    free up), then analyse those worth it, the sources of one package together: the worker
    searching a package for the calls of a function does so once, and finds most of its
    files in what it read in the first round instead of reading (inflating) them again."""

    #: Sources read and prefiltered per task at most (and a quarter of a worker's share).
    BATCH = 256
    #: Sources of one package analysed in one task at most.
    GROUP = 32
    #: Less source than this (bytes, when the tree knows sizes; else files) is analysed in
    #: this process: forking and stopping workers would cost more than reading it here.
    MIN_BYTES = 4 << 20
    MIN_FILES = 64

    def __init__(self, fs: FileSystem, paths: list[str], workers: int,
                 shared: ProcessPoolExecutor | None = None,
                 worth: tuple[bool, bool] | None = None) -> None:
        self.fs = fs
        self.paths = paths
        self.workers = max(1, workers)
        #: the scan's pool, when its workers were forked for the members already (it is
        #: the scan's to shut down)
        self.shared = shared
        #: whether the tree is a directory, not an archive: a package's analysis may
        #: then be split between workers (see _tasks)
        self.split = False
        self.pool: ProcessPoolExecutor | None = None
        self.first: list[tuple[int, Future[list[_Prefiltered]]]] = []
        self.second: list[tuple[list[int], Future[list[SourceResult]]]] = []
        #: what the first round found unreadable and the batches that failed, by position
        self.early: list[tuple[int, SourceResult]] = []
        self.thread: threading.Thread | None = None
        worth_it, self.split = worth or self.worth_workers(fs, paths)
        if workers > 1 and worth_it:
            try:
                # The detectors are imported here, once: a forked worker inherits them
                # instead of importing (compiling, without bytecode caches) its own.
                if shared is None:
                    _import_detectors(paths)
                self.pool = shared or _fork_pool(fs, workers)
                step = max(1, min(self.BATCH, len(paths) // (4 * workers) or 1))
                self.first = [(i, self.pool.submit(_worker_prefilter, paths[i:i + step]))
                              for i in range(0, len(paths), step)]
                # The second round is handed out by a thread of this process as soon as
                # the first ends (the workers exist already: nothing forks from it).
                self.thread = threading.Thread(target=self._second_round, args=(self.pool,),
                                               name="unveil-sources", daemon=True)
                self.thread.start()
            except BaseException:
                self.close()
                raise

    @classmethod
    def worth_workers(cls, fs: FileSystem, paths: list[str]) -> tuple[bool, bool]:
        """Whether the sources are worth forking workers for, and whether they are a
        directory's (sizes unknown cheaply: a package's analysis may then be split)."""
        if len(paths) < 8:
            return False, False
        size = 0
        for path in paths:
            size += fs.size_hint(path)
            if size >= cls.MIN_BYTES:
                return True, False
        # No size known cheaply: a directory's files (an archive lists its sizes).
        split = size == 0
        return split and len(paths) >= cls.MIN_FILES, split

    def _tasks(self, groups: list[list[_Prefiltered]]) -> list[list[_Prefiltered]]:
        """The analysis tasks: a package's sources together (its files are then searched
        for callers once); in a directory none over a worker's share of the work (bytes
        to parse), lest one worker be left with most of it: a second worker searching the
        package reads its files again from the page cache, cheap, where an archive's
        would be inflated again.  The longest first."""
        total = sum(size for g in groups for _, _, size in g)
        share = -(-total // self.workers) if self.split else total
        tasks: list[list[_Prefiltered]] = []
        for group in groups:
            task: list[_Prefiltered] = []
            size = 0
            for item in group:
                if task and (len(task) >= self.GROUP or size + item[2] > share):
                    tasks.append(task)
                    task, size = [], 0
                task.append(item)
                size += item[2]
            if task:
                tasks.append(task)
        tasks.sort(key=lambda t: -sum(size for _, _, size in t))
        return tasks

    @staticmethod
    def _failed(what: str, e: BaseException) -> str:
        return f"source analysis of {what} failed: {type(e).__name__}: {e}"

    def _second_round(self, pool: ProcessPoolExecutor) -> None:
        try:
            self._hand_out(pool)
        except BaseException as e:  # never a silent gap in the results
            self.early.append((0, (self.paths[0], [], [self._failed("the sources", e)])))

    def _hand_out(self, pool: ProcessPoolExecutor) -> None:
        index = {p: i for i, p in enumerate(self.paths)}
        groups: dict[str, list[_Prefiltered]] = {}
        for first, f in self.first:
            try:
                found = f.result()
            except BaseException as e:  # a worker died, or the scan ended: say so, go on
                self.early.append((first, (self.paths[first], [],
                                           [self._failed("a batch from here on", e)])))
                continue
            for item in found:
                if item[1] is not None:
                    self.early.append((index[item[0]], (item[0], [], [item[1]])))
                else:
                    groups.setdefault(_package_of(item[0]), []).append(item)
        tasks = self._tasks(list(groups.values()))
        for task in tasks:
            where = [index[path] for path, _, _ in task]
            try:
                self.second.append((where, pool.submit(_worker_analyse, task)))
            except BaseException as e:
                self.early.append((where[0], (task[0][0], [],
                                              [self._failed("the sources from here", e)])))

    def results(self) -> list[SourceResult]:
        try:
            if self.pool is None or self.thread is None:
                from unveil.dynload.python import PythonModules

                return _detect_sources(self.fs, self.paths, PythonModules.of(self.fs))
            self.thread.join()
            found = list(self.early)
            for where, f in self.second:
                try:
                    found.extend(zip(where, f.result(), strict=True))
                except Exception as e:  # a worker died: say so, go on
                    found.append((where[0], (self.paths[where[0]], [],
                                             [self._failed("the sources from here", e)])))
            found.sort(key=lambda t: t[0])
            return [r for _, r in found]
        finally:
            self.close()

    def close(self) -> None:
        if self.pool is not None and self.pool is not self.shared:
            self.pool.shutdown(cancel_futures=True)
        self.pool = None
        if self.thread is not None:
            self.thread.join()
            self.thread = None


_TEST_DIRS = frozenset({"tests", "test", "testing", "_examples", "examples", "example",
                        "benchmarks", "benchmark"})
_TEST_FILE = re.compile(r"^(?:test_.*|.*_test|conftest)\.py$")


def _test_or_example(path: str) -> bool:
    """Whether a source is a package's tests or examples (numpy/random/_examples/...,
    numpy/tests/test_public_api.py), judged from the path inside its package."""
    for marker in ("/site-packages/", "/dist-packages/", "/node_modules/"):
        cut = path.rfind(marker)
        if cut >= 0:
            path = path[cut + len(marker):]
            break
    parts = path.split("/")
    return bool(_TEST_DIRS.intersection(parts[:-1])) or bool(_TEST_FILE.match(parts[-1]))


_TAGGED_EXTENSION = re.compile(r"\.(cpython-[^.]+|abi3|pypy[^.]*)\.so$")
_PLAIN_EXTENSION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.so$")


def _role(path: str, binary: Binary, site_packages: list[str]) -> Role:
    name = posixpath.basename(path)
    if binary.format is BinaryFormat.PE:
        # PE's file_type is its own (1 program, 2 DLL: see formats.pe), not ELF's ET_EXEC.
        if binary.file_type == 1:
            return Role.EXECUTABLE
        if binary.file_type != 2:
            return Role.OTHER
        return Role.EXTENSION if name.lower().endswith(".pyd") else Role.LIBRARY
    if binary.interpreter is not None and binary.soname is None:
        return Role.EXECUTABLE
    if binary.file_type == 2:
        return Role.EXECUTABLE
    if _TAGGED_EXTENSION.search(name):
        return Role.EXTENSION
    in_site = any(path.startswith(s + "/") for s in site_packages)
    if (in_site and binary.soname is None and _PLAIN_EXTENSION.match(name)
            and not name.startswith("lib")):
        return Role.EXTENSION
    if binary.soname is not None or ".so" in name:
        return Role.LIBRARY
    return Role.OTHER


if TYPE_CHECKING:
    Loader = GlibcLoader | MuslLoader | DyldLoader | WindowsLoader


def _macos_arch(tag: str | None) -> str:
    if tag and "x86_64" in tag and "universal" not in tag:
        return "x86_64"
    return "arm64"


def _python_dll(tag: str | None) -> str:
    """The CPython DLL of a wheel's Python tag; ``""`` (any version's) when the target has
    no tag (an installed environment: its interpreter provides its own)."""
    if tag and tag.startswith("cp") and tag[2:].isdigit():
        return f"python{tag[2:]}.dll"
    return "" if tag is None else "python3.dll"


def _upstream_version(c: Component) -> Component:
    """A distro package version (RPM ``8.5.0-28.el8``, Debian ``1:1.2.13.dfsg-1``, Alpine
    ``1.3-r2``) carries the upstream version before its release part; the purl keeps the
    full distro version."""
    from unveil.identify.owners import upstream_version

    if not c.version or not c.purl or not c.purl.startswith(("pkg:rpm/", "pkg:deb/",
                                                             "pkg:apk/")):
        return c
    return replace(c, version=upstream_version(c.version))


def _merge_components(first: list[Component] | tuple[Component, ...],
                      then: tuple[Component, ...]) -> tuple[Component, ...]:
    """Components from a stronger source first; the same project from a weaker one (however
    it is spelled: pillow's SBOM says ``FreeType`` and ``Little CMS 2``, the rules
    ``freetype`` and ``lcms2``) adds its evidence, and a different version is recorded as a
    conflict.  The merged component keeps the stronger source's version and purl and the
    rule table's name when the rules know the project."""
    from unveil.identify.sboms import same_project

    out = list(first)
    for c in then:
        same = next((i for i, x in enumerate(out) if same_project(x, c)), None)
        if same is None:
            out.append(c)
            continue
        x = out[same]
        conflicts = x.conflicts
        if x.version and c.version and x.version != c.version and not x.version.startswith(
                c.version + "."):
            conflicts = (*conflicts, f"{c.evidence[0].method if c.evidence else 'other'} "
                                     f"evidence says {c.version}")
        version = x.version or c.version
        purl, cpes = x.purl, x.cpes
        if not purl and c.purl:  # the weaker source's names, for the version kept
            purl = c.purl if c.version == version else _purl_at(c.purl, version)
        if not cpes:
            cpes = c.cpes if c.cpes and c.version == version else (
                _cpes(c.name, version) if version else ())
        # The rule table's name for a project it knows (lcms2, not "Little CMS 2"): one
        # spelling across packages; the SBOM's stays in its evidence.
        name = c.name if x.name != c.name and (c.homepage or c.source) else x.name
        out[same] = replace(x, name=name, version=version, purl=purl, cpes=cpes,
                            homepage=x.homepage or c.homepage,
                            source=x.source or c.source, conflicts=conflicts,
                            evidence=(*x.evidence, *c.evidence))
    return tuple(out)


#: Evidence methods that identify the file itself (a banner alone may be an embedded copy).
#: Evidence that a component is the file itself (a version function it exports may be an
#: embedded library's: xmlsec exports libxml2's xmlParserVersion).
_OWN_IDENTITY = frozenset({"filename", "sbom", "package-note", "dpkg", "apk", "conda", "rpm",
                           "symbol-version", "build-info", "go-buildinfo", "cargo-auditable"})


def _own_first(components: tuple[Component, ...], before: tuple[Component, ...]) -> tuple[
        Component, ...]:
    """``components`` with the file's own project (``before[0]``) first again when an SBOM
    entry matched by name put first a project found embedded in the file (``before[1:]``)."""
    from unveil.identify.sboms import same_project

    own = before[0]
    if (not any(e.method in _OWN_IDENTITY for e in own.evidence)
            or not any(same_project(components[0], c) for c in before[1:])):
        return components
    at = next((i for i, c in enumerate(components) if same_project(c, own)), None)
    if not at:
        return components
    return (components[at], *components[:at], *components[at + 1:])


def _by_file(c: Component) -> bool:
    """Whether an SBOM matched this file by its path or hash (not by a project's name)."""
    from unveil.identify.sboms import IDENTIFIED_CONFIDENCE

    return any(e.method == "sbom" and e.confidence > IDENTIFIED_CONFIDENCE for e in c.evidence)


def _name_only(c: Component) -> bool:
    """Whether an SBOM match rests on the library's name alone (no hash, no path)."""
    from unveil.identify.sboms import NAME_CONFIDENCE

    return all(e.method == "sbom" and e.confidence <= NAME_CONFIDENCE for e in c.evidence)


def _stem(soname: str) -> str:
    """``libcom_err.so.3.0`` -> ``libcom_err`` (the name without its ABI and version)."""
    return soname.split(".so", 1)[0].split(".dylib", 1)[0].split(".dll", 1)[0]


def _first_party(binaries: list[ScannedBinary],
                 distributions: Iterable[Distribution]) -> list[ScannedBinary]:
    """A binary of a distribution that no known upstream project claims and that no repair
    tool vendored (torch/lib/libc10.so, an extension module) is taken for the distribution's
    own code: a guess, labelled so, put first (``components[0]`` is the file itself) and
    without a purl (the distribution has one).  What its bytes embed stays after it."""
    from unveil.identify.vendoring import vendoring_tool

    versions = {d.name: d.version for d in distributions}
    out = []
    for b in binaries:
        own = b.components and any(e.method in _OWN_IDENTITY
                                   for e in b.components[0].evidence)
        name = b.distribution
        base = posixpath.basename(b.location.path).lower()
        if (own or name is None or name not in versions or vendoring_tool(b.location.path)
                or not _could_be_own_code(b, base, name)
                # (an extension module is the binding, whatever it embeds: python-xxhash's
                # _xxhash holds xxHash, Brotli's _brotli the C library)
                or (b.role is not Role.EXTENSION
                    and any(_names_file(c.name, base) for c in b.components))):
            out.append(b)
            continue
        version = versions[name]
        detail = (f"{posixpath.basename(b.location.path)} is in {name} {version or ''}'s own "
                  "files, not in a repair tool's vendoring directory, and no known upstream "
                  "project names it: taken for the distribution's own code (a guess)")
        c = Component(name, version, None, (), (Evidence("distribution", detail, 0.5, "name"),
                                                 Evidence("distribution", detail, 0.5,
                                                          "version")))
        out.append(replace(b, components=(c, *b.components)))
    return out


def _unidentified(binaries: list[ScannedBinary]) -> list[ScannedBinary]:
    """A binary whose components were all found embedded in it (a banner, a rustc
    ``.comment``), nothing naming the file itself: a stand-in first, so that
    ``components[0]`` (the file) is not taken for zlib or LLVM (``torch/bin/test_jit``
    embeds protobuf; ruff's executable records the rustc that built it)."""
    out = []
    for b in binaries:
        first = b.components[0] if b.components else None
        if first is None or any(e.method in _OWN_IDENTITY or e.method == "distribution"
                                for e in first.evidence):
            out.append(b)
            continue
        base = posixpath.basename(b.location.path)
        embedded = ", ".join(sorted({c.name for c in b.components}))
        stand_in = Component(base, None, None, (), (Evidence(
            "unidentified", f"no known project names {base}; what its bytes hold "
            f"({embedded}) is embedded in it, not what it is", 0.0, "name"),))
        out.append(replace(b, components=(stand_in, *b.components)))
    return out


_VERSIONED_LIBRARY = re.compile(r"\.so\.\d|\.\d+\.dylib$")


def _names_file(project: str, base: str) -> bool:
    """Whether a project's name is a word of the file's name (``libopenblas64_.so`` is
    openblas's, ``_brotli.so`` brotli's; ``libonnxruntime.so`` is not onnx's)."""
    name = re.escape(project.lower())
    return re.search(rf"(?<![a-z]){name}(?![a-z])", base) is not None or re.search(
        rf"(?<![a-z])lib{name}(?![a-z])", base) is not None


def _could_be_own_code(b: ScannedBinary, base: str, dist: str) -> bool:
    """Extension modules are the distribution's code; a library is only when unversioned
    (``libc10.so``: built with the package) or named after it. A versioned library
    (``libacl.so.1``, ``libcudart.so.12``) was built elsewhere and copied in by hand, and so
    was one whose SONAME carries an ABI version whatever its file is called (rawpy's
    ``libraw_r.so`` is ``libraw_r.so.25``: LibRaw's); executables are often other projects'
    tools shipped for convenience."""
    if b.role is Role.EXTENSION:
        return True
    if b.role is not Role.LIBRARY:
        return False
    key = re.sub(r"[-_.]+", "", dist.lower())
    soname = (b.binary.soname or "").lower()
    if _VERSIONED_LIBRARY.search(soname) and key not in re.sub(r"[-_.]+", "", soname):
        return False
    if b.binary.format is BinaryFormat.PE:
        # A DLL name carries no ABI version to tell a copied-in library (libiomp5md.dll,
        # libcrypto-3-x64.dll) from one built with the package: only its name can.
        return key in re.sub(r"[-_.]+", "", base)
    return not _VERSIONED_LIBRARY.search(base) or key in re.sub(r"[-_.]+", "", base)


def _with_version(purl: str | None, version: str) -> str | None:
    """A versionless purl given ``version`` (a purl that names one is left alone)."""
    from packageurl import PackageURL

    if not purl:
        return purl
    try:
        named = PackageURL.from_string(purl).version
    except ValueError:
        return purl
    return purl if named else _purl_at(purl, version)


def _purl_at(purl: str, version: str | None) -> str | None:
    """``purl`` naming ``version`` instead of its own (``None``: no version)."""
    from packageurl import PackageURL

    try:
        p = PackageURL.from_string(purl)
    except ValueError:
        return purl
    return PackageURL(p.type, p.namespace, p.name, version, p.qualifiers, p.subpath).to_string()


def _cpes(project: str, version: str) -> tuple[str, ...]:
    from unveil.identify.rules import default_rules

    try:
        cpe = default_rules().by_project(project).cpe_for(version)
    except KeyError:
        return ()
    return (cpe,) if cpe else ()


def _propagate_sibling_versions(binaries: list[ScannedBinary]) -> list[ScannedBinary]:
    """Libraries of one project shipped side by side (libssl beside libcrypto, libparquet
    beside libarrow) are one release: when exactly one version of a project is seen in a
    directory, the files of that project there without a version of their own get it, with
    evidence saying where it came from.  Another copy of the same library (re-vendored
    ``libgfortran-<hash>-<hash>.so.5`` beside ``libgfortran-<hash>.so.5``) is another build,
    not the same release, and lends nothing."""
    if not any(b.components for b in binaries):
        return binaries  # nothing identified (--no-identify): nothing to lend
    from unveil.identify.banners import dehash

    versions: dict[tuple[str, str], dict[str, list[str]]] = {}
    for b in binaries:
        if b.components and b.components[0].version:
            c = b.components[0]
            d = posixpath.dirname(b.location.path)
            versions.setdefault((d, c.name), {}).setdefault(c.version or "", []).append(
                b.location.path)
    out = []
    for b in binaries:
        if b.components and not b.components[0].version and not b.components[0].unidentified:
            c = b.components[0]
            own = dehash(posixpath.basename(b.location.path))
            seen = {v: [p for p in paths if dehash(posixpath.basename(p)) != own]
                    for v, paths in versions.get(
                        (posixpath.dirname(b.location.path), c.name), {}).items()}
            seen = {v: paths for v, paths in seen.items() if paths}
            if len(seen) == 1:
                (version, sources), = seen.items()
                ev = Evidence("sibling", f"{posixpath.basename(sources[0])} beside it is "
                              f"{c.name} {version}", 0.6, "version")
                c = replace(c, version=version, evidence=(*c.evidence, ev),
                            purl=_with_version(c.purl, version),
                            cpes=c.cpes or _cpes(c.name, version))
                b = replace(b, components=(c, *b.components[1:]))
        out.append(b)
    return out


#: Package formats that ship one package's native files for several platforms side by
#: side (npm addons for each os/arch/libc, a jar's JNI libraries), each loaded only on its
#: own: a file for another platform is not broken here.
_MULTI_PLATFORM = frozenset({"npm", "jar", "gem"})
_ELFOSABI_NONE, _ELFOSABI_GNU = 0, 3
_OS_ABIS = {1: "hpux", 2: "netbsd", 6: "solaris", 7: "aix", 8: "irix", 9: "freebsd",
            12: "openbsd"}
#: (machine, bits) of the files a system of each (machine, bits) runs besides its own
_RUNS_ON = {(62, 64): ((3, 32),), (183, 64): ((40, 32),)}


def flavor_of(b: Binary, platform_tag: str | None = None) -> str:
    """Which Linux loader a binary is for: its PT_INTERP, its libc, or the wheel's tag."""
    if b.interpreter is not None:
        return "musl" if "ld-musl" in b.interpreter else "glibc"
    if any(n == "libc.so" or n.startswith("libc.musl-") for n in b.needed):
        return "musl"
    if platform_tag is not None and "musllinux" in platform_tag:
        return "musl"
    return "glibc"


class _TargetScan:
    def __init__(self, scanner: Scanner, target: Target) -> None:
        self.s = scanner
        self.t = target
        self.fs: FileSystem = target.fs
        self.store = BinaryStore(self.fs, self._identify if scanner.config.identify else None,
                                 self._dlopen_names if scanner.config.dynload else None,
                                 self._keep if scanner.config.identify
                                 or scanner.config.dynload else None)
        self._packages: PackageIndex | None = None
        self._glibc: GlibcLoader | None = None
        self._musl: MuslLoader | None = None
        self._dyld: DyldLoader | None = None
        self._dyld_by_arch: dict[str, DyldLoader] = {}
        self._windows: WindowsLoader | None = None
        self._foreign_loaders: dict[tuple[str, int, int], Loader] = {}
        self._flavor_of: dict[str, str] = {}
        self._sbom_memo: dict[str, tuple[list[ShippedSbom], list[str]]] = {}

    @property
    def loader(self) -> GlibcLoader:
        """The glibc loader, made on first use: macOS and Windows targets never parse the
        root's ld.so.cache."""
        if self._glibc is None:
            from unveil.loader.glibc import GlibcLoader, load_cache

            cfg = self.s.config
            cache, problem = load_cache(self.fs, self.store, cfg.glibc)
            if problem:
                self.t.problems.append(Problem(problem, "ld.so.cache unreadable",
                                               ProblemKind.LOADER))
            self._glibc = GlibcLoader(self.fs, cfg.glibc, self.store, cache=cache,
                                      ld_library_path=cfg.ld_library_path, cwd=cfg.cwd)
        return self._glibc

    @property
    def cache(self) -> LdCache | None:
        return self.loader.cache

    @property
    def packages(self) -> PackageIndex:
        if self._packages is None:
            from unveil.identify.owners import PackageIndex

            self._packages = PackageIndex(self.fs)
        return self._packages

    def _dlopen_names(self, blob: Blob, path: str, b: Binary) -> tuple[str, ...]:
        from unveil.dynload.binary import dlopen_names

        return dlopen_names(blob, path, b) if self.t.contains(path) else ()

    def _keep(self, blob: Blob, path: str) -> list[tuple[int, int]]:
        from unveil.identify.banners import keep_regions

        return keep_regions(blob) if self.t.contains(path) else []

    def _identify(self, blob: Blob, path: str,
                  b: Binary) -> tuple[tuple[Component, ...], tuple[str, ...]]:
        # Only the target's own files: system libraries are identified by their owner.
        if not self.t.contains(path):
            return (), ()
        from unveil.identify import identify_file

        return identify_file(blob, path, b)

    def loader_for(self, b: Binary) -> Loader:
        """The loader of the binary's platform: dyld for Mach-O, Windows for PE, and for ELF
        glibc unless the binary (or the wheel's platform tag) says musl."""
        if b.format is BinaryFormat.MACHO:
            cfg = self.s.config
            arch = self.macho_arch(b)
            loader = self._dyld_by_arch.get(arch)
            if loader is None:
                from unveil.loader.dyld import DyldLoader, DyldPlatform

                loader = self._dyld_by_arch[arch] = DyldLoader(self.fs, DyldPlatform(
                    arch=arch, executable_path=cfg.macos_executable), self.store)
                if self._dyld is None:
                    self._dyld = loader
            return loader
        if b.format is BinaryFormat.PE:
            if self._windows is None:
                from unveil.loader.windows import WindowsLoader, WindowsPlatform
                from unveil.sources.dlldirs import dll_directories

                def added() -> tuple[str, ...]:
                    if not self.t.dll_directories:
                        self.t.dll_directories = dll_directories(self.fs, self.t.site_packages)
                    return tuple(self.t.dll_directories)

                self._windows = WindowsLoader(
                    self.fs, WindowsPlatform(python_dll=_python_dll(self.t.python_tag)),
                    self.store, dll_directories=added)
            return self._windows
        cfg = self.s.config
        libc = cfg.linux_libc or flavor_of(b, self.t.platform_tag)
        if libc == "musl":
            if (b.machine, b.bits) != (cfg.musl.machine, cfg.musl.bits):
                return self._foreign(b, "musl")
            if self._musl is None:
                from unveil.loader.musl import MuslLoader

                self._musl = MuslLoader(self.fs, cfg.musl, self.store,
                                        ld_library_path=cfg.ld_library_path, cwd=cfg.cwd)
            return self._musl
        if (b.machine, b.bits) != (cfg.glibc.machine, cfg.glibc.bits):
            return self._foreign(b, "glibc")
        return self.loader

    @functools.cached_property
    def _target_files_by_name(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for f in self.t.files:  # (rpartition: a third of basename's time, 21k files)
            out.setdefault(f.rpartition("/")[2], []).append(f)
        return out

    def _in_target(self, request: str) -> list[str]:
        """The target's own files named like a request that was not found."""
        if "/" in request or not request:
            return []
        return self._target_files_by_name.get(request, [])

    def _prebuilt_elsewhere(self, path: str) -> str | None:
        """``os-arch`` of a prebuilt addon (``prebuilds/linux-arm64/...``) made for another
        platform than the configured Linux machine, else None."""
        plat = getattr(self.t, "file_platforms", {}).get(path)
        if plat is None:
            return None
        cfg = self.s.config
        arch = LINUX_ARCHES.get((cfg.glibc.machine, cfg.glibc.bits))
        here = arch[4] if arch else None  # "x86_64", "aarch64", ...
        libc = self._target_libc
        same = (plat.os in (None, "linux") and plat.arch in (None, here)
                and (plat.libc is None or libc is None or plat.libc == libc))
        if same:
            return None
        return f"{plat.os or '?'}-{plat.arch or '?'}" + (f" ({plat.libc})" if plat.libc else "")

    def _loaded_by_sibling_programs(self, found: list[tuple[str, Binary]],
                                    edges_of: dict[str, tuple[Resolution, ...]]) -> set[str]:
        """The files that the target's programs for the machine's 32-bit sibling (i386 on
        x86-64) load: such a program runs here, and ld.so loads its libraries with it."""
        cfg = self.s.config
        siblings = _RUNS_ON.get((cfg.glibc.machine, cfg.glibc.bits), ())
        todo = [p for p, b in found if b.interpreter and (b.machine, b.bits) in siblings]
        seen: set[str] = set()
        while todo:
            for r in edges_of.get(todo.pop(), ()):
                real = self._real(r.path) if r.path else None
                if real is not None and real not in seen:
                    seen.add(real)
                    todo.append(real)
        return seen

    def _built_elsewhere(self, b: Binary) -> str | None:
        """``os-arch`` (and C library) an ELF file is built for, when the configured system
        would not load it: another operating system (its ELF OS ABI), another machine (a
        64-bit x86 or Arm system runs its 32-bit sibling's programs too, but a library, an
        addon or JNI library, is loaded into the runtime's own 64-bit process), or another
        C library than the root's; None when it loads here, and for other formats."""
        if b.format is not BinaryFormat.ELF:
            return None
        cfg = self.s.config
        here = (cfg.glibc.machine, cfg.glibc.bits)
        arch = LINUX_ARCHES.get((b.machine, b.bits))
        arch_name = arch[4] if arch else f"machine {b.machine}"
        if b.osabi not in (_ELFOSABI_NONE, _ELFOSABI_GNU):
            return f"{_OS_ABIS.get(b.osabi, f'OS ABI {b.osabi}')}-{arch_name}"
        if (b.machine, b.bits) != here and (b.interpreter is None or (
                b.machine, b.bits) not in _RUNS_ON.get(here, ())):
            return f"linux-{arch_name}"
        # The runtime that picks one of the files (node, the JVM) is the system's own,
        # built for its C library: a file for the other is never the one it loads.
        libc = self.s.config.linux_libc or flavor_of(b, self.t.platform_tag)  # as loader_for
        if self._target_libc not in (None, libc):
            return f"linux-{arch_name} ({libc})"
        return None

    @property
    def _target_libc(self) -> str | None:
        """The C library the target system's programs use: ``--libc``, else the root's."""
        return self.s.config.linux_libc or self._root_libc

    @functools.cached_property
    def _root_libc(self) -> str | None:
        """The C library of the configured root: the one its shell runs on, else the one
        whose dynamic loader it has; None if neither."""
        cfg = self.s.config
        try:
            sh = self.fs.resolve("/bin/sh")
            glibc = self.fs.resolve(cfg.glibc.interpreter)
            musl = self.fs.resolve(cfg.musl.ldso)
        except SymlinkLoop:
            return None
        # The system's own programs run on its C library: the loader its shell names (on
        # Alpine busybox's ld-musl, whatever glibc-named loader gcompat adds beside it).
        shell = self.store.get(sh).binary if sh else None
        if shell is not None and shell.interpreter:
            return flavor_of(shell)
        if glibc and musl:
            # No shell to ask: Alpine with libc6-compat or gcompat has a file at glibc's
            # loader path too, a shim over musl (or musl itself); Debian's musl package
            # adds musl's loader beside a real glibc.  The shim is known by what it is
            # when it can be: musl's loader, or a library that needs musl's C library (a
            # static-pie gcompat shim cannot be told from glibc's this way).
            if glibc == musl:
                return "musl"
            shim = self.store.get(glibc).binary
            return flavor_of(shim) if shim is not None else "glibc"
        return "glibc" if glibc else "musl" if musl else None

    def macho_arch(self, b: Binary) -> str:
        """The slice a Mach-O file is resolved for: ``--macos-arch``, else the wheel tag's
        (arm64 for universal2), else, for a thin file outside a wheel (an npm prebuild for
        darwin-x64), its own."""
        cfg = self.s.config
        if cfg.macos_arch:
            return cfg.macos_arch
        arch = _macos_arch(self.t.platform_tag)
        own = [s.arch for s in b.slices] if b.slices else [b.arch]
        if arch not in own and len(own) == 1 and own[0] and self.t.kind is not TargetKind.WHEEL:
            return own[0]
        return arch

    def _foreign(self, b: Binary, libc: str) -> Loader:
        """The loader of a binary built for another architecture than the configured one
        (an aarch64 wheel scanned on x86-64): that architecture's loader, over the same
        root; the configured one when the architecture is unknown (its candidates are then
        all of the wrong machine, as ld.so would find them)."""
        key = (libc, b.machine, b.bits)
        made = self._foreign_loaders.get(key)
        if made is not None:
            return made
        from unveil.loader.glibc import GlibcLoader, load_cache
        from unveil.loader.musl import MuslLoader

        cfg = self.s.config
        loader: Loader
        if libc == "musl":
            mp = musl_platform_for(b.machine, b.bits)
            loader = MuslLoader(self.fs, mp, self.store, ld_library_path=cfg.ld_library_path,
                                cwd=cfg.cwd) if mp is not None else self.loader
        else:
            gp = glibc_platform_for(b.machine, b.bits, b.little_endian)
            if gp is None:
                loader = self.loader
            else:
                cache, _problem = load_cache(self.fs, self.store, gp)
                loader = GlibcLoader(self.fs, gp, self.store, cache=cache,
                                     ld_library_path=cfg.ld_library_path, cwd=cfg.cwd)
        self._foreign_loaders[key] = loader
        return loader

    def run(self) -> TargetResult:
        t, cfg = self.t, self.s.config
        # A wheel's members are sniffed on the inflating threads, in the pass that parses
        # them: sniffing here first inflated each member's first block twice, serially.
        candidates = self._candidates(sniff=not self._threaded())
        # Worker processes first, before this scan starts any thread: they fork.
        sources = identifying = members = pool = None
        try:
            sizes = {p: self.fs.size_hint(p) for p in candidates} if self._threaded() else {}
            source_paths = self._source_paths() if cfg.dynload else []
            if (cfg.identify or cfg.dynload) and sizes and _Members.worth(sizes):
                # A large wheel, read with Python work per member: in worker processes.
                # What they run is imported here first, once, for both to inherit.
                _import_member_work(cfg.identify, cfg.dynload, source_paths)
                pool = _fork_pool(self.fs, cfg.workers, self.store)
                members = _Members(self.store, candidates, sizes, pool)
            worth = (_Sources.worth_workers(self.fs, source_paths) if cfg.dynload
                     else (False, False))
            if (cfg.identify and cfg.workers > 1 and self.fs.random_access()
                    and not (pool is None and worth[0])):
                # Files on disk: identified in other processes while they are parsed and
                # resolved here (archive members are not: they would inflate twice) -- unless
                # the sources will keep the workers busy: identifying here then costs less
                # (no second parse of every file, nor a second set of processes competing
                # for the cores: an environment's default scan, 0.95 s instead of 1.0).
                from unveil.identify.pool import IdentifyPool

                mine = [p for p in candidates if t.contains(p)]
                if len(mine) >= 2 * IdentifyPool.BATCH:
                    _import_member_work(True, False, [])  # for the workers to inherit
                    identifying = IdentifyPool(self.fs, mine, cfg.workers)
                    self.store.identify = None
            if cfg.dynload:
                sources = _Sources(self.fs, source_paths, cfg.workers, shared=pool,
                                   worth=worth)
            return self._run(candidates, sources, identifying, members)
        finally:
            if sources is not None:
                sources.close()
            if pool is not None:
                # Joined, not left to exit on their own: a worker outliving this process
                # would hold every descriptor it inherited open (a caller's pipe never ends).
                pool.shutdown(wait=True, cancel_futures=True)
            if identifying is not None:
                identifying.close()

    def _ecosystem(self) -> str | None:
        """The packaging ecosystem of the target: its own for another ecosystem's package or
        tree, "pypi" for a wheel or an environment of Python distributions."""
        own = getattr(self.t, "ecosystem", "")
        if own:
            return str(own)
        if self.t.kind is TargetKind.WHEEL or (self.t.site_packages and self.t.distributions):
            return "pypi"
        return None

    def _source_paths(self) -> list[str]:
        """The target's files a dynamic-loading detector reads (sources of every language)."""
        from unveil.dynload.resolve import detector_kind

        return [p for p in self.t.files if detector_kind(p) is not None]

    def _threaded(self) -> bool:
        """Whether members are inflated and parsed on threads (inflating releases the GIL;
        parsing mapped files would not gain)."""
        return self.s.config.workers > 1 and self.t.kind is TargetKind.WHEEL

    def _glibc_wheel(self, tag: str) -> bool:
        """Whether a wheel's tag says its binaries are for the configured glibc loader."""
        cfg = self.s.config
        arch = LINUX_ARCHES.get((cfg.glibc.machine, cfg.glibc.bits))
        return (cfg.linux_libc in (None, "glibc") and arch is not None
                and tag.startswith(("manylinux", "linux_")) and tag.endswith("_" + arch[4]))

    def _candidates(self, *, sniff: bool = True) -> list[str]:
        """The target's files that start like a binary (skipped suffixes aside); with
        ``sniff`` false, every file not skipped by its suffix (the caller sniffs)."""
        t, cfg = self.t, self.s.config
        candidates: list[str] = []
        total = len(t.files)
        skip = cfg.skip_suffixes
        for i, path in enumerate(t.files):
            if cfg.progress and (i % 256 == 0 or i == total - 1):
                cfg.progress(i + 1, total, path)
            dot = path.rfind(".")
            if skip and dot > path.rfind("/") and path[dot:] in skip:
                continue
            if not sniff:
                candidates.append(path)
                continue
            try:
                head = self.fs.head(path, 8)
            except SourceError as e:
                t.problems.append(Problem(str(self.fs.describe(path)), str(e), ProblemKind.SOURCE))
                continue
            if is_binary(head):
                candidates.append(path)
        return candidates

    def _run(self, candidates: list[str], sources: _Sources | None,
             identifying: IdentifyPool | None, members: _Members | None) -> TargetResult:
        t, cfg = self.t, self.s.config
        preload = None
        tag = t.platform_tag or ""
        if (cfg.identify and candidates and not tag.startswith(("macosx", "win"))
                and t.kind is TargetKind.WHEEL and cfg.workers > 1):
            # System libraries are identified by their package manager's database: read it
            # on a thread while members inflate (isal and file reads release the GIL).  A
            # tree on disk has nothing to overlap with: read it on the first question.
            preload = threading.Thread(target=self.packages.preload, daemon=True)
            preload.start()
        if self._threaded():
            if members is not None:
                if self._glibc_wheel(tag):
                    _ = self.loader  # meanwhile, as below
                done = members.results()
                for path, stored in done.items():
                    self.store.put(path, stored)
            else:
                # Largest first: the biggest member (libtorch_cpu.so) is the critical path.
                by_size = sorted(candidates, key=lambda p: -self.fs.size_hint(p))
                pending = _ThreadMap(self.store.get, by_size, cfg.workers)
                if self._glibc_wheel(tag):
                    # Meanwhile, on this thread: the glibc loader the resolution needs
                    # first (its import, the root's ld.so.cache), while workers inflate.
                    _ = self.loader
                done = dict(zip(by_size, pending.results(), strict=True))
            stored_list = []
            sniffed = []
            for path in candidates:
                stored = done[path]
                if stored.binary is None and not is_binary(stored.head):
                    if not stored.unreadable:
                        continue  # not a binary
                    t.problems.append(Problem(str(self.fs.describe(path)),
                                              stored.error or "unreadable",
                                              ProblemKind.SOURCE))
                    continue
                sniffed.append(path)
                stored_list.append(stored)
            candidates = sniffed
        else:
            stored_list = [self.store.get(p) for p in candidates]
        if preload is not None:
            preload.join()
        found: list[tuple[str, Binary]] = []
        components = {p: st.components for p, st in zip(candidates, stored_list, strict=True)}
        #: where each file's identification warnings go when they come from other processes
        slots: list[tuple[int, str, str]] = []
        for path, stored in zip(candidates, stored_list, strict=True):
            loc = str(self.fs.describe(path))
            if stored.binary is None:
                t.problems.append(Problem(loc, stored.error or "unreadable", ProblemKind.FORMAT,
                                          stored.error_offset))
                continue
            for w in stored.warnings:
                t.problems.append(Problem(loc, w, ProblemKind.FORMAT))
            slots.append((len(t.problems), path, loc))
            found.append((path, stored.binary))
        roles = {p: _role(p, b, t.site_packages) for p, b in found}
        order = sorted(found, key=lambda pb: (roles[pb[0]] not in (Role.EXECUTABLE,
                                                                   Role.EXTENSION), pb[0]))
        edges_of: dict[str, tuple[Resolution, ...]] = {}
        fatal_of: dict[str, str] = {}
        #: requester -> (library, version) -> the file that lacks it
        versions_of: dict[str, dict[tuple[str, str], str]] = {}
        for path, _b in order:
            if path in edges_of:
                continue
            result = self.loader_for(_b).load(path)
            for r in result.resolutions:
                self._flavor_of.setdefault(r.requester, result.flavor)
            if _b.format is BinaryFormat.MACHO:
                arch = self.macho_arch(_b)
                own = [s.arch for s in _b.slices] if _b.slices else [_b.arch]
                if arch not in own:
                    t.problems.append(Problem(str(self.fs.describe(path)), (
                        f"no {arch} slice (it holds {', '.join(a or '?' for a in own)}): what "
                        f"it needs on {arch} is unknown"), ProblemKind.UNSUPPORTED))
            self._collect(result, edges_of, fatal_of, versions_of)
        if identifying is not None:
            # Resolution ran meanwhile; the results slot in as if identified here.
            identified = identifying.results()
            for at, path, loc in reversed(slots):
                components[path], more = identified.get(path, ((), ()))
                t.problems[at:at] = [Problem(loc, w, ProblemKind.FORMAT) for w in more]
        binaries = []
        multi = self._ecosystem() in _MULTI_PLATFORM
        sibling_loaded = self._loaded_by_sibling_programs(found, edges_of) if multi else set()
        for path, b in sorted(found):
            res = edges_of.get(path, ())
            dist = t.owner_of(path)
            edges = tuple(self._classify(r, path, dist) for r in res)
            elsewhere = self._prebuilt_elsewhere(path)
            note = f"a prebuild for {elsewhere}, loaded only there"
            if not elsewhere and multi and path not in sibling_loaded:
                elsewhere = self._built_elsewhere(b)
                note = f"built for {elsewhere}: this system does not load it"
            if elsewhere:
                # node-gyp-build loads only the prebuild of the running platform (a jar's
                # JNI loader only its own): what one for another platform lacks here is not
                # missing here
                edges = tuple(replace(e, edge_class=EdgeClass.OPTIONAL, note=note)
                              if e.edge_class is EdgeClass.MISSING else e for e in edges)
            digest = self._sha256(path) if cfg.hashes else None
            binaries.append(ScannedBinary(self.fs.describe(path), path, b, roles[path], dist,
                                          edges, components[path],
                                          sha256=digest))
            if path in fatal_of:
                t.problems.append(Problem(str(self.fs.describe(path)),
                                          f"ld.so would stop: {fatal_of[path]}",
                                          ProblemKind.LOADER))
            for (library, version), provider in versions_of.get(path, {}).items():
                t.problems.append(Problem(
                    str(self.fs.describe(path)),
                    f"ld.so would stop: needs symbol version {version} of {library}, which "
                    f"{provider} does not define (version `{version}' not found)",
                    ProblemKind.LOADER))
        if cfg.identify and found and not tag.startswith(("macosx", "win")):
            # Read (if no system library asked yet) so that a damaged database is reported
            # (dpkg's lists are read when a question needs them: one that cannot be read is
            # reported then).
            self.packages.preload()
        if self._packages is not None:
            # A package database that could not be read: which package owns a file is unknown.
            root = str(self.fs.describe("/"))
            t.problems.extend(Problem(root, p, ProblemKind.SOURCE)
                              for p in self._packages.problems)
        if cfg.identify:
            binaries = self._with_shipped_sboms(binaries)
            binaries = _unidentified(_first_party(binaries, t.distributions))
        binaries = _propagate_sibling_versions(binaries)
        dynamic = self._dynamic_loads(found, sources) if sources is not None else ()
        posix = t.kind is TargetKind.ENVIRONMENT and any("/lib/python" in sp
                                                         for sp in t.site_packages)
        foreign = [p for p, b in found if b.format is BinaryFormat.PE] if posix else []
        if foreign:
            # pip's and setuptools' Windows launchers (t32.exe, cli-64.exe) ship in every
            # environment: resolved as Windows would, but never loaded on this one
            names = ", ".join(self.fs.describe(p).path.rsplit("/", 1)[-1] for p in foreign[:3])
            rest = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
            t.problems.append(Problem(t.spec, (
                f"{len(foreign)} Windows program{'s' if len(foreign) > 1 else ''} "
                f"({names}{rest}) in an environment laid out for POSIX: their dependencies are "
                "Windows's, never loaded here"), ProblemKind.NOTE))
        if t.kind is TargetKind.FILE and not found and not t.problems:
            # the one file asked about: "0 binaries" alone would not say why
            t.problems.append(Problem(t.spec, "not an ELF, Mach-O or PE file",
                                      ProblemKind.FORMAT))
        if t.kind is TargetKind.WHEEL and not t.site_packages_dist_info():
            t.problems.append(Problem(t.spec, "no .dist-info directory: not a wheel as "
                                      "installers read it (its files are scanned all the same)",
                                      ProblemKind.SOURCE))
        if t.kind is TargetKind.DIRECTORY and not binaries:
            # A wheelhouse or a directory of .debs: the archives are not opened when their
            # directory is scanned, and "0 binaries" alone would read as "nothing to see".
            archives = [f for f in t.files if f.endswith(PACKAGE_SUFFIXES)]
            if archives:
                names = ", ".join(posixpath.basename(a) for a in archives[:3])
                rest = f" and {len(archives) - 3} more" if len(archives) > 3 else ""
                t.problems.append(Problem(t.spec, (
                    f"{len(archives)} package archive{'s' if len(archives) > 1 else ''} here "
                    f"({names}{rest}) not opened: a directory is scanned as files on disk; "
                    f"pass archives as targets ({t.spec.rstrip('/')}/*.whl)"),
                    ProblemKind.SOURCE))
        target_result = TargetResult(t.spec, t.kind,
                                     tuple(sorted(t.distributions, key=lambda d: d.name)),
                                     tuple(binaries), tuple(t.problems), dynamic,
                                     ecosystem=self._ecosystem())
        if cfg.identify and t.site_packages:
            target_result = replace(target_result,
                                    declarations=self._declarations(target_result),
                                    problems=tuple(t.problems))
        return target_result

    def _with_shipped_sboms(self, binaries: list[ScannedBinary]) -> list[ScannedBinary]:
        """SBOMs the packages ship (PEP 770 and others) as the strongest identity evidence,
        merged with what the bytes say; a disagreement is kept, not resolved silently."""
        from unveil.identify.banners import dehash
        from unveil.identify.sboms import match_sbom, read_sboms

        sboms, problems = read_sboms(self.fs, self.t.site_packages, read=self._dist_sboms)
        for pr in problems:
            self.t.problems.append(Problem(self.t.spec, pr, ProblemKind.SOURCE))
        if not sboms:
            return binaries
        matched: list[list[Component]] = []
        for b in binaries:
            matched.append([_upstream_version(c) for c in match_sbom(
                b.loader_path, b.location.path, b.sha256, b.binary.soname, sboms,
                distribution=b.distribution, identified=b.components)]
                if self.t.contains(b.loader_path) else [])
        # An entry matched by name alone to two copies of one library with different ABIs
        # (libcom_err.so.2 from e2fsprogs, libcom_err.so.3 from krb5) cannot say which it
        # describes: it describes neither.
        by_name: dict[tuple[str, str | None], set[str]] = {}
        for b, found in zip(binaries, matched, strict=True):
            for c in found:
                if _name_only(c):
                    by_name.setdefault((c.name, c.version), set()).add(
                        dehash(b.binary.soname or posixpath.basename(b.location.path)))
        ambiguous = {k for k, names in by_name.items()
                     if len({_stem(n) for n in names}) < len(names)}
        out = []
        for b, found in zip(binaries, matched, strict=True):
            found = [c for c in found if not (_name_only(c) and (c.name, c.version) in ambiguous)]
            if found:
                merged = _merge_components(found, b.components)
                if b.components and not any(_by_file(c) for c in found):
                    # Matched by name, not by the file's path or hash: the file is still
                    # what it was taken for (pyogrio's libgdal embeds PROJ, whose port SBOM
                    # sits beside GDAL's).
                    merged = _own_first(merged, b.components)
                b = replace(b, components=merged)
            out.append(b)
        return out

    def _dist_sboms(self, fs: FileSystem,
                    dist_info: str) -> tuple[list[ShippedSbom], list[str]]:
        """One distribution's SBOMs, read once per scan (records and declarations both ask)."""
        from unveil.identify.sboms import read_dist_sboms

        got = self._sbom_memo.get(dist_info)
        if got is None:
            got = self._sbom_memo[dist_info] = read_dist_sboms(fs, dist_info)
        return got

    def _declarations(self, result: TargetResult) -> tuple[Declaration, ...]:
        from unveil.identify.phantom import classify_declarations, read_wheel_declarations

        out: list[Declaration] = []
        for site in self.t.site_packages:
            for name, kind in sorted(self.fs.listdir(site).items()):
                if kind is not Kind.DIR or not name.endswith(".dist-info"):
                    continue
                declared = read_wheel_declarations(self.fs, f"{site}/{name}",
                                                   read_sboms=self._dist_sboms)
                where = (f"{self.t.spec}!{self.display(f'{site}/{name}')}"
                         if self.t.kind is TargetKind.WHEEL else f"{site}/{name}")
                for pr in declared.problems:
                    self.t.problems.append(Problem(where, pr, ProblemKind.SOURCE))
                for f in classify_declarations(result, declared):
                    out.append(Declaration(f.category.value, self.display(f.requester),
                                           f.request, f.reason, f.depurl, f.distribution,
                                           f.link))
        return tuple(out)

    def _dynamic_loads(self, found: list[tuple[str, Binary]],
                       sources: _Sources) -> tuple[DynamicLoad, ...]:
        """Load sites in sources and ``.note.dlopen`` entries, resolved as dlopen would."""
        t = self.t
        out: list[DynamicLoad] = []
        sites: list[tuple[LoadSite, str, str | None, str | None]] = []
        for path, found_sites, problems in sources.results():
            for pr in problems:
                t.problems.append(Problem(str(self.fs.describe(path)), pr, ProblemKind.SOURCE))
            for site in found_sites:
                sites.append((site, posixpath.dirname(path), None, t.owner_of(path)))
        for path, b in found:
            if b.format is not BinaryFormat.ELF:
                continue
            names = self.store.get(path).dlopen_names
            if names:
                sites.append((LoadSite(self.display(path), None, "elf", "bytes", names,
                                       Confidence.LOW, hints=(
                                           "library names in the data of a binary that "
                                           "imports dlopen: a guess",)),
                              posixpath.dirname(path), path, t.owner_of(path)))
            for dl in b.dlopen_notes:
                hints = tuple(x for x in (dl.feature, dl.description,
                                          f"priority: {dl.priority}" if dl.priority
                                          else None) if x)
                conf = Confidence.HIGH if dl.priority in (None, "required") else (
                    Confidence.MEDIUM)
                site = LoadSite(self.display(path), None, "elf", ".note.dlopen",
                                dl.sonames, conf, hints=hints)
                sites.append((site, posixpath.dirname(path), path, t.owner_of(path)))
        # One call (same file, line and calling context) the detector reports as a site per
        # kind of name (find_library stems apart from paths): alternatives of one load.
        # Code for another platform names its files only (find_library('Security') or
        # Security.framework); a list that also names this platform's *.so is meant here too.
        from unveil.dynload.resolve import other_platform, resolve_names

        calls: dict[tuple[str, int | None, tuple[str, ...]], list[bool]] = {}
        for st, _d, _c, _o in sites:
            kinds = calls.setdefault((st.file, st.line, st.hints), [False, False])
            kinds[0] |= any(other_platform(n) for n in st.names)
            kinds[1] |= not st.stem and any(".so" in n.rsplit("/", 1)[-1] and not
                                            other_platform(n) for n in st.names)
        other_os = {k for k, (other, here) in calls.items() if other and not here}
        for site, site_dir, caller, dist in sites:
            shown = replace(site, file=self.display(site.file),
                            names=tuple(self.display(n) if n.startswith("/") else n
                                        for n in site.names))
            edges: list[Edge] = []
            for name in site.names:
                loads = False
                for r in resolve_names(site, name, self.loader, self.fs, site_dir=site_dir,
                                       caller=caller, libc=self._target_libc or "glibc"):
                    if site.api == "bytes" and r.outcome is not Outcome.FOUND:
                        continue  # independent guesses: only what exists is worth showing
                    e = self._classify(r, caller or site.file, dist)
                    note = f"{site.api} ({site.confidence.value} confidence)"
                    if site.hints:
                        note += "; " + "; ".join(site.hints)
                    edges.append(replace(e, link=LinkKind.DLOPEN, note=note))
                    loads |= r.outcome is Outcome.FOUND
                if loads and site.api not in ("bytes", "pkg-config"):
                    break  # the program stops at the first name that loads
            if not any(e.resolution.outcome is Outcome.FOUND for e in edges) and (
                    site.confidence is Confidence.LOW
                    or (site.file, site.line, site.hints) in other_os):
                # A weak guess is shown, but never claimed missing; so is a site whose
                # alternatives include another platform's file (find_library('Security')
                # or /System/Library/Frameworks/Security.framework/Security): code for that
                # platform, which nothing here satisfies.
                edges = []
            if site.guarded and not any(e.resolution.outcome is Outcome.FOUND for e in edges):
                # The code handles the failure (try/except OSError) and goes on without it.
                edges = [replace(e, edge_class=EdgeClass.OPTIONAL, note=(
                    f"{e.note}; the code goes on without it: {site.guarded}"))
                    if e.edge_class is EdgeClass.MISSING else e for e in edges]
            if caller is None and _test_or_example(site.file):
                # Tests and examples the package ships are not run when it is used: a library
                # they load and nobody provides is optional, not a phantom the package needs.
                edges = [replace(e, edge_class=EdgeClass.OPTIONAL, note=(
                    f"{e.note}; in test or example code, not loaded in normal use"))
                    if e.edge_class is EdgeClass.MISSING else e for e in edges]
            edges = [replace(e, resolution=replace(e.resolution,
                                                   requester=self.display(e.resolution.requester),
                                                   request=self.display(e.resolution.request)))
                     for e in edges]
            out.append(DynamicLoad(shown, tuple(edges), dist))
        # The sites of one call are alternatives (``find_library("c") or "libc.so"``): once
        # one of them loads, the names of the others are fallbacks that never run.
        loaded = {(d.site.file, d.site.line, d.site.hints) for d in out
                  if any(e.resolution.outcome is Outcome.FOUND for e in d.edges)}
        return tuple(replace(d, edges=()) if d.edges and (d.site.file, d.site.line,
                                                          d.site.hints) in loaded
                     and not any(e.resolution.outcome is Outcome.FOUND for e in d.edges)
                     else d for d in out)

    def _sha256(self, path: str) -> str | None:
        import hashlib

        h = hashlib.sha256()
        try:
            for piece in self.fs.chunks(path):
                h.update(piece)
        except UnveilError as e:
            self.t.problems.append(Problem(str(self.fs.describe(path)),
                                           f"cannot hash: {e}", ProblemKind.SOURCE))
            return None
        return h.hexdigest()

    def display(self, path: str) -> str:
        """A loader path as people know it: inside a wheel, the member path; inside another
        mounted archive, the path below its mount point."""
        if not path.startswith(VIRTUAL_ROOT + "/"):
            return path
        for site in self.t.site_packages:
            if self.t.kind is TargetKind.WHEEL and path.startswith(site + "/"):
                return posixpath.normpath(path[len(site) + 1:])
        for top in self.t.inside:
            if path.startswith(top.rstrip("/") + "/"):
                return posixpath.normpath(path[len(top.rstrip("/")) + 1:])
        return path

    def for_display(self, ex: Explanation) -> Explanation:
        r = ex.resolution
        if r is None:
            return ex
        d = self.display
        attempts = tuple(replace(a, path=d(a.path), origin=d(a.origin) if a.origin else None)
                         for a in r.attempts)
        r2 = replace(r, requester=d(r.requester), path=d(r.path) if r.path else None,
                     origin=d(r.origin) if r.origin else None, attempts=attempts)
        verdict = ex.verdict.replace(r.path, d(r.path)) if r.path else ex.verdict
        return replace(ex, resolution=r2, verdict=verdict,
                       hints=tuple(h.replace(r.requester, d(r.requester)) for h in ex.hints))

    @staticmethod
    def _debian_hint(request: str) -> Component | None:
        name = request
        stem = name.startswith("find_library(")
        if stem:
            inner = name.split("'")[1] if "'" in name else ""
            name = f"lib{inner}.so"
        from unveil.identify.debian import debian_component

        return debian_component(name.rsplit("/", 1)[-1], versioned=stem)

    def _need_kind(self, requester: str, request: str) -> str | None:
        """How the requester imports a name (Mach-O ``weak``, PE ``delay``...), if known."""
        b = self.store.get(requester).binary
        if b is None:
            return None
        if b.format is BinaryFormat.MACHO:
            from unveil.loader.dyld import pick_slice

            arch = self.s.config.macos_arch or _macos_arch(self.t.platform_tag)
            b = pick_slice(b, arch) or b
        return next((k for n, k in zip(b.needed, b.needed_kinds, strict=False)
                     if n == request), None)

    def _auxiliary(self, requester: str, request: str) -> bool:
        """Whether the requester asks for the library only as a DT_AUXILIARY filtee."""
        b = self.store.get(requester).binary
        return b is not None and b.only_auxiliary(request)

    def flavor(self, requester: str) -> str:
        return self._flavor_of.get(requester, "glibc")

    def _collect(self, result: LoadResult, edges_of: dict[str, tuple[Resolution, ...]],
                 fatal_of: dict[str, str],
                 versions_of: dict[str, dict[tuple[str, str], str]]) -> None:
        by_requester: dict[str, list[Resolution]] = {}
        for r in result.resolutions:
            by_requester.setdefault(r.requester, []).append(r)
        real_of = {o.path: o.real for o in result.objects if o.path and o.real}
        real_of[result.main] = self.fs.resolve(result.main) or result.main
        for requester, rs in by_requester.items():
            real = real_of.get(requester)
            if real is None or real in edges_of or not self.t.contains(real):
                continue
            edges_of[real] = tuple(rs)
        if result.fatal:
            real = real_of.get(result.main)
            if real:
                fatal_of.setdefault(real, result.fatal)
                edges_of.setdefault(real, ())
        for m in result.missing_versions:
            real = real_of.get(m.requester)
            if m.stops and real is not None and self.t.contains(real):
                versions_of.setdefault(real, {}).setdefault((m.library, m.version), m.provider)
        main_real = real_of.get(result.main)
        if main_real is not None and self.t.contains(main_real) and not result.fatal:
            # A library the closure needs, not found, requested by a file outside the target
            # (a system library's own dependency): no edge of the target's says so, yet ld.so
            # would not start this binary.
            # (a wheel is judged as installed on a system its tag allows, which provides the
            # platform policy's libraries, as for its own edges)
            policy = self.s.config.policy_libs if self.t.kind is TargetKind.WHEEL else ()
            for r in result.resolutions:
                by = real_of.get(r.requester) or r.requester
                if (r.outcome is not Outcome.FOUND and r.request not in policy
                        and not self.t.contains(by) and not self._auxiliary(by, r.request)):
                    fatal_of.setdefault(main_real, f"{r.request}, needed by {r.requester} "
                                                   "(outside the target), is not found")

    def _real(self, path: str) -> str | None:
        try:
            return self.fs.resolve(path if path.startswith("/") else
                                   posixpath.join(self.s.config.cwd, path))
        except SymlinkLoop:
            return None

    def _classify(self, r: Resolution, requester: str, dist: str | None) -> Edge:
        cfg = self.s.config
        flavor = self._flavor_of.get(r.requester)
        libs = MUSLLINUX_POLICY_LIBS if flavor == "musl" else (
            cfg.policy_libs if flavor in ("glibc", None) else frozenset())
        policy = r.request in libs
        if flavor == "windows":
            from unveil.loader.windows import runtime_label

            label = runtime_label(r.request, self._windows.platform.python_dll
                                  if self._windows else "python3.dll")
            loaded = self._real(r.path) if r.rule is Rule.LOADED and r.path else None
            if label is not None and (
                    r.outcome is not Outcome.FOUND or r.rule is Rule.APP_DIR
                    # the runtime, already loaded for the .pyd: the same answer for a bundled
                    # DLL that asks for it after (not "system" at the application directory)
                    or (r.rule is Rule.LOADED and not (loaded and self.t.contains(loaded)))):
                note = ("shipped with CPython" if label == "python" else
                        "not shipped with CPython: needs the Microsoft Visual C++ "
                        "Redistributable, or bundle it")
                return Edge(r, EdgeClass.RUNTIME, None, label, False, note=note)
            if r.rule is Rule.API_SET:
                return Edge(r, EdgeClass.SYSTEM, None, None, False,
                            note="API-set contract, mapped by Windows")
            if r.rule in (Rule.KNOWN_DLLS, Rule.SYSTEM32):
                return Edge(r, EdgeClass.SYSTEM, None, None, False)
        if flavor == "dyld" and r.rule is Rule.SHARED_CACHE:
            return Edge(r, EdgeClass.SYSTEM, None, None, False,
                        note="provided by the macOS dyld shared cache")
        if r.outcome is not Outcome.FOUND or r.path is None:
            provider = self._expected_provider(r)
            if provider is not None:
                return Edge(r, EdgeClass.OTHER_DISTRIBUTION, None, provider, policy,
                            note="expected from another distribution, which is not present")
            kind = self._need_kind(requester, r.request) if flavor in ("dyld",
                                                                        "windows") else None
            if flavor in ("glibc", None) and self._auxiliary(requester, r.request):
                return Edge(r, EdgeClass.OPTIONAL, None, None, False,
                            note="auxiliary filtee (DT_AUXILIARY): ld.so loads the filter "
                                 "without it")
            if kind == "weak":
                return Edge(r, EdgeClass.OPTIONAL, None, None, False,
                            note="weak import (LC_LOAD_WEAK_DYLIB): dyld loads the image "
                                 "without it")
            if kind == "delay":
                return Edge(r, EdgeClass.OPTIONAL, None, None, False,
                            note="delay-load import: loaded on first use (LoadLibraryEx, "
                                 "standard search order); the module loads without it")
            inside = self._in_target(r.request)
            if inside:
                # The package ships it, where this requester's search does not look (torch's
                # bin/test_shim with RUNPATH $ORIGIN, its libtorch.so in torch/lib): a Debian
                # package would be the wrong advice.
                shown = ", ".join(self.fs.describe(p).path for p in inside[:3])
                return Edge(r, EdgeClass.MISSING, None, None, policy, note=(
                    f"shipped in the package at {shown}, outside this search: add its "
                    "directory to the requester's RUNPATH"))
            hint = self._debian_hint(r.request) if cfg.identify else None
            if policy and self.t.kind is TargetKind.WHEEL and r.outcome is Outcome.NOT_FOUND:
                # A wheel is judged as if installed on a system its platform tag allows,
                # and the policy says such a system provides this library.
                return Edge(r, EdgeClass.POLICY_SYSTEM, None, None, True,
                            note="on the platform policy's list, so the target system "
                                 "provides it; not found under this root", component=hint)
            return Edge(r, EdgeClass.MISSING, None, None, policy, component=hint,
                        note=(f"provided by Debian package {hint.name} "
                              f"(apt-get install {hint.name})") if hint else None)
        real = self._real(r.path)
        loc = self.fs.describe(real) if real else None
        if real is not None and self.t.contains(real):
            owner = self.t.owner_of(real)
            if owner is None or owner == dist:
                return Edge(r, EdgeClass.BUNDLED, loc, owner, policy)
            return Edge(r, EdgeClass.OTHER_DISTRIBUTION, loc, owner, policy)
        cls = EdgeClass.POLICY_SYSTEM if policy else EdgeClass.SYSTEM
        component = None
        if cfg.identify and real is not None:
            pkg = self.packages.owner(real)
            if pkg is not None:
                from unveil.identify import component_from_owner

                component = component_from_owner(pkg)
        return Edge(r, cls, loc, None, policy, component=component)

    def _expected_provider(self, r: Resolution) -> str | None:
        """For a library not found: did an RPATH/RUNPATH point into site-packages, outside
        what is present?  Then another distribution was meant to provide it."""
        for a in r.attempts:
            if a.rule not in (Rule.RPATH, Rule.RUNPATH):
                continue
            p = posixpath.normpath(posixpath.dirname(
                a.path if a.path.startswith("/") else posixpath.join(self.s.config.cwd, a.path)))
            if "/node_modules/" in p:
                # npm: an RPATH into a package directory that is not installed.
                _, _, rest = p.rpartition("/node_modules/")
                parts = rest.split("/")
                pkg = "/".join(parts[:2]) if parts[0].startswith("@") else parts[0]
                top = p[: p.rindex("/node_modules/") + len("/node_modules/")] + pkg
                try:
                    present = self.fs.kind(top) is not None
                except SymlinkLoop:
                    present = False
                if not present:
                    return pkg
            for site in self.t.site_packages:
                if p.startswith(site + "/"):
                    rel = p[len(site) + 1:].split("/")
                    top = rel[0]
                    try:
                        present = self.fs.kind(f"{site}/{top}") is not None
                    except SymlinkLoop:
                        present = False
                    if not present:
                        return "/".join(x for x in rel[:2] if x not in ("lib", "lib64"))
        return None


class Scanner:
    """Scans targets with one configuration.  Reusable; not thread-safe."""

    def __init__(self, config: ScanConfig | None = None) -> None:
        self.config = config or ScanConfig()

    def scan(self, *targets: str) -> ScanResult:
        """Scan each target.  One target that cannot be opened raises
        :class:`~unveil.errors.UnveilError`; among several, it becomes a target with that
        problem and the others are scanned."""
        results = []
        for spec in targets:
            try:
                target = open_target(spec, self.config)
            except UnveilError as e:
                if len(targets) == 1:
                    raise
                kind = TargetKind.WHEEL if spec.endswith(".whl") else TargetKind.FILE
                # (located at the target: the message need not name it again)
                results.append(TargetResult(spec, kind, problems=(
                    Problem(spec, str(e).removeprefix(f"{spec}: "), ProblemKind.SOURCE),),
                    ecosystem="pypi" if kind is TargetKind.WHEEL else None))
                continue
            results.append(_TargetScan(self, target).run())
        g = self.config.glibc
        platform = (("loader", "glibc"), ("machine", str(g.machine)), ("lib", g.lib),
                    ("platform", g.platform), ("hwcaps", ",".join(g.hwcaps)),
                    ("root", self.config.root))
        return ScanResult(tuple(results), platform)

    def why(self, library: str, target: str, requester: str | None = None) -> list[Explanation]:
        """Explain every edge of ``target`` that requests ``library`` (matched by the name
        as written or its basename, else by the name a repair tool hashed: ``libpq.dll`` finds
        delvewheel's ``libpq-<32 hex>.dll``), optionally only from binaries whose location
        ends with ``requester``."""
        from unveil.identify.banners import dehash
        from unveil.loader.explain import cache_name, explain_resolution, store_soname

        opened = open_target(target, self.config)
        ts = _TargetScan(self, opened)
        result = ts.run()
        out: list[Explanation] = []
        cache = tuple((e.key, e.value) for e in ts.cache.entries) if ts.cache else ()
        for b in result.binaries:
            if requester is not None and not (b.location.path.endswith(requester)
                                              or b.loader_path.endswith(requester)):
                continue
            flavor = ts.flavor(b.loader_path)
            edges = [e for e in b.edges if library in (e.resolution.request,
                                                      posixpath.basename(e.resolution.request))]
            if not edges and not any(library in (e.resolution.request, posixpath.basename(
                    e.resolution.request)) for bb in result.binaries for e in bb.edges):
                edges = [e for e in b.edges
                         if dehash(posixpath.basename(e.resolution.request)) == library]
            for e in edges:
                r = e.resolution
                first = None
                if r.rule is Rule.LOADED:
                    first = next((x.resolution for bb in result.binaries for x in bb.edges
                                  if x.resolution.request == r.request
                                  and x.resolution.rule is not Rule.LOADED), None)
                ex = explain_resolution(
                    r, fs=ts.fs, flavor=flavor, first=first, cwd=self.config.cwd,
                    extra_dirs=self.config.glibc.trusted_dirs if flavor == "glibc" else (),
                    cache_keys=cache if flavor == "glibc" else (),
                    cache_name=cache_name(ts.cache) if flavor == "glibc" else None,
                    soname_of=store_soname(ts.store))
                if e.note:
                    ex = replace(ex, hints=(e.note, *ex.hints))
                out.append(ts.for_display(replace(ex, requester=str(b.location))))
        return out


def scan(target: str, config: ScanConfig | None = None) -> ScanResult:
    """Scan one target (a wheel, environment, directory or file) and return the result."""
    return Scanner(config).scan(target)
