"""Identification of a tree's binaries in forked worker processes.

Identification is pure Python (banner regexes, section tables, build metadata) and costs
more than parsing and resolving the same files.  For a tree on disk (an environment, a
directory, a root) a worker maps each file as cheaply as the scan does, so the files are
identified there while the scan parses and resolves them here.  Archive members are not
sent to workers: each would be inflated a second time.
"""

from __future__ import annotations

import gc
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor

from unveil.errors import FormatError, SourceError
from unveil.formats import is_binary, parse_binary
from unveil.identify import identify_file
from unveil.model import Component
from unveil.sources.fs import FileSystem

__all__ = ["Identified", "IdentifyPool", "identify_paths"]

#: path -> (components, warnings about malformed build metadata)
Identified = dict[str, tuple[tuple[Component, ...], tuple[str, ...]]]

#: In a worker process only: the tree it reads (set by :func:`_init_worker`).
_WORKER: list[FileSystem] = []


def identify_paths(fs: FileSystem, paths: list[str]) -> Identified:
    """Parse and identify each binary among ``paths``; unreadable or malformed files are
    left out (the scan reports them from its own parse)."""
    out: Identified = {}
    for path in paths:
        try:
            blob = fs.open_blob(path)
        except SourceError:
            continue
        try:
            head = blob.read(0, min(64, blob.size))
            if not is_binary(head):
                continue
            binary, _warnings = parse_binary(blob, head)
            out[path] = identify_file(blob, path, binary)
        except (FormatError, SourceError):
            continue
        finally:
            blob.close()
    return out


def _init_worker(fs: FileSystem) -> None:
    gc.freeze()  # what the worker inherited is never walked (nor its pages copied)
    _WORKER[:] = [fs]


def _worker_identify(paths: list[str]) -> Identified:
    return identify_paths(_WORKER[0], paths)


class IdentifyPool:
    """Identification of ``paths`` started in ``workers`` forked processes; create it
    before the scan starts any thread."""

    BATCH = 8

    def __init__(self, fs: FileSystem, paths: list[str], workers: int) -> None:
        self.fs = fs
        self.paths = paths
        # fork: the workers inherit the tree and the loaded rule tables, not a copy
        ctx = multiprocessing.get_context("fork")
        self.pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(fs,))
        try:
            self.futures: list[tuple[list[str], Future[Identified]]] = [
                (paths[i:i + self.BATCH],
                 self.pool.submit(_worker_identify, paths[i:i + self.BATCH]))
                for i in range(0, len(paths), self.BATCH)]
        except BaseException:
            self.close()
            raise

    def results(self) -> Identified:
        """Every path's result; a batch whose worker failed is identified here instead."""
        out: Identified = {}
        for batch, future in self.futures:
            try:
                out.update(future.result())
            except Exception:  # a dead worker (killed, out of memory): identify here
                out.update(identify_paths(self.fs, batch))
        return out

    def close(self) -> None:
        if self.pool is not None:
            # Joined: with wait=False, CPython 3.11's executor manager thread closes its
            # wake-up pipe while the executor, dropped here, wakes it from its weakref
            # callback, and a write to the closed descriptor printed an EBADF traceback
            # (seen once in ~60 scans).  The workers are idle once results() has run.
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
