"""Parse each file once per run, keyed by its symlink-free path in the target tree."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from unveil.errors import FormatError, SourceError
from unveil.formats import is_binary, parse_binary
from unveil.formats.blob import Blob
from unveil.model import Binary, Component
from unveil.sources.fs import FileSystem

__all__ = ["BinaryStore", "StoredFile"]

HEAD_SIZE = 64


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file as the loader (and the scan) see it: the first bytes, which the loader's
    header checks use, and the parsed facts or why there are none."""

    head: bytes
    binary: Binary | None
    error: str | None = None
    error_offset: int | None = None
    unreadable: bool = False
    warnings: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    #: library names in the data of a binary that imports dlopen (a low-confidence guess).
    dlopen_names: tuple[str, ...] = ()


#: Called with the still-open bytes of a parsed binary, so that identification reads them
#: in the same pass (re-opening a deflated wheel member would inflate it again).
#: Returns the components and what was malformed in the metadata read for them.
Identify = Callable[[Blob, str, Binary], tuple[tuple[Component, ...], tuple[str, ...]]]
Strings = Callable[[Blob, str, Binary], tuple[str, ...]]
#: Called before parsing with the blob and its path: the ranges identification will read
#: after the parser (:meth:`Blob.keep`), so that a deflated member is inflated once.
Plan = Callable[[Blob, str], Sequence[tuple[int, int]]]


class BinaryStore:
    def __init__(self, fs: FileSystem, identify: Identify | None = None,
                 strings: Strings | None = None, plan: Plan | None = None) -> None:
        self.fs = fs
        self.identify = identify
        self.strings = strings
        self.plan = plan
        self._files: dict[str, StoredFile] = {}

    def get(self, real_path: str) -> StoredFile:
        cached = self._files.get(real_path)
        if cached is None:
            cached = self._load(real_path)
            self._files[real_path] = cached
        return cached

    def put(self, real_path: str, stored: StoredFile) -> None:
        """What another process read for this path (a forked worker of the scan)."""
        self._files[real_path] = stored

    def load(self, real_path: str) -> StoredFile:
        """Read and parse the file without remembering it (a worker's side of :meth:`put`)."""
        return self._load(real_path)

    def peek(self, real_path: str) -> StoredFile | None:
        return self._files.get(real_path)

    def _load(self, real_path: str) -> StoredFile:
        try:
            blob = self.fs.open_blob(real_path)
        except SourceError as e:
            return StoredFile(b"", None, str(e), unreadable=True)
        try:
            head = blob.read(0, min(HEAD_SIZE, blob.size))
            if not is_binary(head):
                return StoredFile(head, None, "not an ELF, Mach-O or PE file")
            if self.plan is not None and blob.sequential:
                blob.keep(self.plan(blob, real_path))
            try:
                binary, warnings = parse_binary(blob, head)
            except FormatError as e:
                return StoredFile(head, None, str(e), e.offset)
            except SourceError as e:
                return StoredFile(head, None, str(e), unreadable=True)
            comps: tuple[Component, ...] = ()
            if self.identify is not None:
                comps, more = self.identify(blob, real_path, binary)
                warnings = (*warnings, *more)
            names = (self.strings(blob, real_path, binary)
                     if self.strings and binary.imports_dlopen else ())
            return StoredFile(head, binary, warnings=warnings, components=comps,
                              dlopen_names=names)
        except (FormatError, SourceError) as e:
            return StoredFile(b"", None, str(e), unreadable=True)
        finally:
            blob.close()
