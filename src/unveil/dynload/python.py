"""Static detection of dynamic library loading in Python source.

The source is parsed with :mod:`ast`, never imported or run.  A small abstract interpreter
follows the names that reach a loader call: every assignment of a name in its scope is one
alternative (except those a later straight-line assignment overwrites), loops bind their
target to every element of what they iterate, a function parameter takes the arguments
found at the function's call sites, and a call of a known function takes its
``return``/``yield`` values, evaluated with its parameters bound to that call's arguments.
Strings are kept as sequences of known and unknown parts, so ``'lib' + machine() + '.so'``
becomes the pattern ``lib*.so`` rather than nothing.

Given the other modules of the tree (:class:`PythonModules`), values are followed across
modules too: imported functions are evaluated where they are defined, and a loader whose
library name is a parameter takes the arguments of every call of its function in the same
top-level package, through a few levels of wrappers.  Each such chain of calls is a
*context*: the site is reported once per context, with the call that supplied the name as
evidence, as the program loads one library per call; calls that are fallbacks of each other
(the arms of an ``if`` or a ``try``, two ``return`` values of one function) stay one site
whose names are tried in order.

Everything is bounded: the source size, the nodes walked, the depth of any one evaluation,
the number of evaluation steps per file, the alternatives per value, the hops through
parameters, the frames of a context, the contexts of a site, the modules read per file.
Cycles (``a = b; b = a``, recursive functions, modules importing each other) are cut by
in-progress sets and those bounds.
"""

from __future__ import annotations

import ast
import bisect
import contextlib
import gc
import os
import posixpath
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from unveil._pyparse import parse
from unveil.dynload.guards import Guard, guard_at
from unveil.errors import UnveilError
from unveil.model import Confidence, LoadSite
from unveil.sources.fs import FileSystem, Kind

__all__ = ["MAX_SOURCE_BYTES", "PythonModules", "detect_python"]

#: Larger sources are not analysed (a problem is reported instead): parsing alone costs
#: about a second a megabyte, and Python sources this large are generated tables.
MAX_SOURCE_BYTES = 2 * 1024 * 1024
_MAX_NODES = 1_000_000
_MAX_STEPS = 150_000
_MAX_DEPTH = 40
_MAX_ALTS = 64
_MAX_HOPS = 2
_MAX_NAMES = 64
#: Frames of a context (function entered with its parameters bound to one call's arguments).
_MAX_FRAMES = 6
#: Levels of callers a load site is split over (wrappers of wrappers of the loader).
_MAX_SPLIT = 4
#: Contexts a load site is evaluated in, and calls of one function it is split over.
_MAX_CONTEXTS = 256
_MAX_CALLERS = 256
#: Evidence hints kept on a site reported for several calls.
_MAX_EVIDENCE = 3
#: Modules parsed for one file (count and bytes), and for one :class:`PythonModules`.
_MAX_LOADS_PER_FILE = 400
_MAX_LOAD_BYTES_PER_FILE = 24 * 1024 * 1024
_MAX_MODULES = 4096
#: Bytes of other modules searched for the calls of a function, per file.
_MAX_SEARCH_BYTES_PER_FILE = 256 * 1024 * 1024
#: Evaluation steps one site may spend on its contexts (then the other calls are merged).
_MAX_SPLIT_STEPS = 60_000
#: Top-level modules whose functions the interpreter models: never followed into their
#: definitions (scanning a Python installation must not evaluate ctypes' own find_library).
_MODELLED = frozenset({"ctypes", "_ctypes", "os", "posixpath", "ntpath", "pathlib", "glob",
                       "importlib", "importlib_resources", "cffi", "numpy", "llvmlite", "gi",
                       "sys", "sysconfig", "platform", "builtins"})
#: Files listed per top-level package searched for callers, and directory depth.
_MAX_PACKAGE_FILES = 20_000
_MAX_PACKAGE_DEPTH = 16
#: Sources kept in memory for the caller searches (bytes).
_MAX_CACHED_BYTES = 96 * 1024 * 1024
#: Analyses of larger modules are not kept for other files: a parsed module takes 30-110
#: times its source's size (a 1.8 MB file of one-line assignments: 200 MB), and a wheel
#: of such files, a few kB compressed, would otherwise hold them all.
_MAX_KEPT_SOURCE = 512 * 1024
#: Python's extension module suffixes (importlib.machinery.EXTENSION_SUFFIXES) differ by
#: platform and interpreter; all start with a dot.
_EXTENSION_SUFFIX_HINT = "an extension-module suffix (importlib.machinery.EXTENSION_SUFFIXES)"

#: Substrings one of which every detected call contains; a source without any is skipped
#: before parsing, which keeps the common case (no dynamic loading) cheap.
_TRIGGERS = re.compile(
    r"DLL|cdll|pydll|windll|oledll|LoadLibrary|find_library|dlopen|load_library"
    r"|add_dll_directory|require_version"
)

_LANGUAGE = "python"
_CTYPES_CLASSES = frozenset({"CDLL", "PyDLL", "WinDLL", "OleDLL"})
_CTYPES_LOADERS = frozenset({"cdll", "pydll", "windll", "oledll"})
_LOADER_ATTRS_NOT_LIBS = frozenset({"LoadLibrary", "_dlltype", "_func_flags_"})
_CTYPES_STAR = _CTYPES_CLASSES | _CTYPES_LOADERS | {"LibraryLoader"}
#: The attributes a loader call through an attribute ends with (``ctypes.CDLL(...)``,
#: ``ffi.dlopen(...)``): any other attribute call is no loader, whatever its receiver.
_LOADER_ATTRS = _CTYPES_CLASSES | {
    "LoadLibrary", "dlopen", "_dlopen", "load_library", "load_library_permanently",
    "add_dll_directory", "require_version", "require_versions"}
_IDENTITY_CALLS = frozenset({
    "str", "os.fspath", "os.fsdecode", "os.fsencode", "os.path.abspath", "os.path.realpath",
    "os.path.normpath", "os.path.expanduser", "os.path.normcase",
})
_IDENTITY_METHODS = frozenset({
    "resolve", "absolute", "as_posix", "__fspath__", "encode", "decode", "strip",
    "expanduser", "__enter__",
})
_PATH_CLASSES = frozenset({"Path", "PurePath", "PosixPath", "PurePosixPath", "WindowsPath",
                           "PureWindowsPath"})
_SITE_DIRS = ("site-packages", "dist-packages")
_WRAPPER_NAMES = frozenset({"dlopen", "load_library", "load_lib", "_load_library",
                            "find_and_load_library"})
_WRAPPER_API = "dlopen-wrapper"
_LIBFILE = re.compile(r"(^|/)[^/]*\.(so(\.[\d.]+)?|dylib|dll)$|\.framework/", re.IGNORECASE)
_PATTERN_HINT = "'*' in a name marks a part computed at run time"
_UNKNOWN_HINT = "library name computed at run time"


# --------------------------------------------------------------------------- abstract values

@dataclass(frozen=True, slots=True)
class _Str:
    """A string: known parts and ``None`` for unknown ones.  ``stem`` marks a
    ``find_library`` result (the stem is the only part)."""

    parts: tuple[str | None, ...]
    stem: bool = False
    hints: tuple[str, ...] = ()
    indirect: bool = False

    @property
    def known(self) -> bool:
        return None not in self.parts

    def text(self) -> str:
        return "".join("*" if p is None else p for p in self.parts)


@dataclass(frozen=True, slots=True)
class _Seq:
    """A tuple, list, set, dict or generator: alternatives per position; ``keys`` for dicts."""

    items: tuple[tuple[_AV, ...], ...]
    keys: tuple[str | None, ...] | None = None


@dataclass(frozen=True, slots=True)
class _Unk:
    hints: tuple[str, ...] = ()


_AV = _Str | _Seq | _Unk
_Alts = tuple[_AV, ...]
_UNK: _Alts = (_Unk(),)


def _s(text: str) -> _Str:
    return _Str((text,))


def _merge_hints(*groups: Sequence[str]) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for g in groups:
        for h in g:
            out[h] = None
    return tuple(out)


def _hints_of(alts: _Alts) -> tuple[str, ...]:
    return _merge_hints(*(a.hints for a in alts if not isinstance(a, _Seq)))


def _cap(alts: Sequence[_AV]) -> _Alts:
    seen: dict[_AV, None] = {}
    for a in alts:
        if len(seen) >= _MAX_ALTS:
            break
        seen[a] = None
    return tuple(seen)


def _as_path_part(a: _AV) -> _Str:
    """A value used as part of a larger string: stems and non-strings become unknown."""
    if isinstance(a, _Str) and not a.stem:
        return a
    hints = a.hints if not isinstance(a, _Seq) else ()
    ind = a.indirect if isinstance(a, _Str) else False
    return _Str((None,), hints=hints, indirect=ind)


#: A string value longer than this (parts, characters) names no library: its end becomes
#: unknown (a path is at most 4096 bytes; hostile code doubles strings in a loop).
_MAX_PARTS = 32
_MAX_CHARS = 4096


def _concat_two(x: _Str, y: _Str) -> _Str:
    parts: list[str | None] = list(x.parts)
    for p in y.parts:
        if parts and p is not None and parts[-1] is not None:
            parts[-1] = parts[-1] + p
        elif parts and p is None and parts[-1] is None:
            continue
        else:
            parts.append(p)
        if len(parts) > _MAX_PARTS:
            break
    if len(parts) > _MAX_PARTS or sum(len(p) for p in parts if p) > _MAX_CHARS:
        parts = _clip(parts)
    return _Str(tuple(parts), hints=_merge_hints(x.hints, y.hints),
                indirect=x.indirect or y.indirect)


def _clip(parts: list[str | None]) -> list[str | None]:
    out: list[str | None] = []
    room = _MAX_CHARS
    for p in parts[:_MAX_PARTS - 1]:
        if p is not None:
            if len(p) > room:
                out.append(p[:room])
                break
            room -= len(p)
        out.append(p)
    if out and out[-1] is None:
        return out
    return [*out, None]


def _concat(*operands: _Alts) -> _Alts:
    acc: list[_Str] = [_Str(("",))]
    for alts in operands:
        nxt: list[_Str] = []
        for left in acc:
            for a in alts or _UNK:
                nxt.append(_concat_two(left, _as_path_part(a)))
                if len(nxt) >= _MAX_ALTS:
                    break
        acc = nxt
    return _cap(acc)


def _join_two(x: _Str, y: _Str) -> _Str:
    first = y.parts[0] if y.parts else ""
    if first is not None and first.startswith("/"):
        return y
    if x.parts == ("",) or not x.parts:
        return y
    last = x.parts[-1]
    sep = "" if last is not None and last.endswith("/") else "/"
    return _concat_two(_concat_two(x, _s(sep)), y)


def _path_join(*operands: _Alts) -> _Alts:
    if not operands:
        return _UNK
    acc: list[_Str] = [_as_path_part(a) for a in operands[0] or _UNK]
    for alts in operands[1:]:
        nxt: list[_Str] = []
        for left in acc:
            for a in alts or _UNK:
                nxt.append(_join_two(left, _as_path_part(a)))
        acc = nxt[:_MAX_ALTS]
    return _cap(acc)


def _dirname(a: _AV) -> _AV:
    if not isinstance(a, _Str) or a.stem:
        return _Unk(a.hints if not isinstance(a, _Seq) else ())
    if a.known:
        d = posixpath.dirname(a.text().rstrip("/") or "/")
        return _Str((d or ".",), hints=a.hints, indirect=a.indirect)
    # Keep the parts before the last "/" of the last known part that has one.
    for i in range(len(a.parts) - 1, -1, -1):
        p = a.parts[i]
        if p is not None and "/" in p.rstrip("/"):
            head = p.rstrip("/").rsplit("/", 1)[0]
            return _Str((*a.parts[:i], head or "/"), hints=a.hints, indirect=a.indirect)
    return _Unk(a.hints)


def _basename(a: _AV) -> _AV:
    if isinstance(a, _Str) and not a.stem and a.parts and a.parts[-1] is not None:
        last = a.parts[-1]
        if "/" in last:
            return _Str((last.rsplit("/", 1)[1],), hints=a.hints)
    return _Unk(a.hints if not isinstance(a, _Seq) else ())


def _elements(alts: _Alts) -> _Alts:
    """What iterating over a value yields (dict keys for a dict)."""
    out: list[_AV] = []
    for a in alts:
        if isinstance(a, _Seq):
            if a.keys is not None:
                out.extend(_s(k) if k is not None else _Unk() for k in a.keys)
            else:
                for pos in a.items:
                    out.extend(pos)
        else:
            out.append(_Unk(a.hints))
    return _cap(out) if out else _UNK


def _values(alts: _Alts) -> _Alts:
    out: list[_AV] = []
    for a in alts:
        if isinstance(a, _Seq):
            for pos in a.items:
                out.extend(pos)
        else:
            out.append(_Unk(a.hints))
    return _cap(out) if out else _UNK


def _select(alts: _Alts, path: tuple[int, ...]) -> _Alts:
    for idx in path:
        nxt: list[_AV] = []
        for a in alts:
            if isinstance(a, _Seq) and a.keys is None and 0 <= idx < len(a.items):
                nxt.extend(a.items[idx])
            elif isinstance(a, _Seq):
                nxt.append(_Unk())
            else:
                nxt.append(_Unk(a.hints))
        alts = _cap(nxt)
    return alts


_PCT = re.compile(r"%(?:\((\w+)\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?([diouxXeEfFgGcrsa%])")
_BRACE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def _percent_format(fmt: _Str, args: _Alts, node_is_tuple: bool) -> _Alts:
    if not fmt.known:
        return (_Str((None,), hints=fmt.hints),)
    text = fmt.text()
    pieces: list[_Alts] = []
    pos = 0
    index = 0
    for m in _PCT.finditer(text):
        pieces.append((_s(text[pos:m.start()]),))
        pos = m.end()
        if m.group(2) == "%":
            pieces.append((_s("%"),))
            continue
        if m.group(1) is not None:
            pieces.append(_dict_get(args, m.group(1)))
        elif node_is_tuple:
            pieces.append(_select(args, (index,)))
        else:
            pieces.append(args)
        index += 1
    pieces.append((_s(text[pos:]),))
    return _concat(*pieces)


def _brace_format(fmt: _Str, positional: list[_Alts], named: dict[str, _Alts]) -> _Alts:
    if not fmt.known:
        return (_Str((None,), hints=fmt.hints),)
    text = fmt.text()
    pieces: list[_Alts] = []
    pos = 0
    auto = 0
    for m in _BRACE.finditer(text):
        pieces.append((_s(text[pos:m.start()]),))
        pos = m.end()
        tok = m.group(0)
        if tok in ("{{", "}}"):
            pieces.append((_s(tok[0]),))
            continue
        field_name = (m.group(1) or "").split("!", 1)[0].split(":", 1)[0]
        if field_name == "":
            val = positional[auto] if auto < len(positional) else _UNK
            auto += 1
        elif field_name.isdigit():
            i = int(field_name)
            val = positional[i] if i < len(positional) else _UNK
        elif field_name.isidentifier():
            val = named.get(field_name, _UNK)
        else:
            val = _UNK
        pieces.append(val)
    pieces.append((_s(text[pos:]),))
    return _concat(*pieces)


def _dict_get(alts: _Alts, key: str | None) -> _Alts:
    out: list[_AV] = []
    for a in alts:
        if isinstance(a, _Seq) and a.keys is not None:
            matched = [a.items[i] for i, k in enumerate(a.keys) if k == key] if key else []
            if matched:
                out.extend(matched[-1])
            else:
                for pos in a.items:
                    out.extend(pos)
        elif isinstance(a, _Seq):
            out.append(_Unk())
        else:
            out.append(_Unk(a.hints))
    return _cap(out) if out else _UNK


# --------------------------------------------------------------------------- scopes

#: Leaves and markers that can hold nothing to record: never pushed on the walk's stack.
_LEAVES = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.Name,
           ast.Constant, ast.alias, ast.Pass, ast.Break, ast.Continue)


def _subclasses(*bases: type[ast.AST]) -> frozenset[type[ast.AST]]:
    out: set[type[ast.AST]] = set()
    todo = list(bases)
    while todo:
        t = todo.pop()
        out.add(t)
        todo.extend(t.__subclasses__())
    return frozenset(out)


#: The same, as the exact types the parser makes (a set lookup, not an ``isinstance``).
_LEAF_TYPES = _subclasses(*_LEAVES)
_AST = ast.AST


def _children(node: ast.AST) -> list[ast.AST]:
    """``ast.iter_child_nodes`` without the leaves (about half of all nodes)."""
    out: list[ast.AST] = []
    leaves = _LEAF_TYPES
    for name in node._fields:
        value = getattr(node, name, None)
        if type(value) is list:
            out.extend(v for v in value if type(v) not in leaves and isinstance(v, _AST))
        elif type(value) not in leaves and isinstance(value, _AST):
            out.append(value)
    return out


_Pos = tuple[int, int]


@dataclass(slots=True)
class _Binding:
    kind: str  # assign | iter | enter | param | import | def | class | aug | elem | elems
    #            | opaque
    node: ast.AST | None
    scope: _Scope
    path: tuple[int, ...] = ()
    qual: str | None = None
    #: for ``iter`` bindings: the loop (``for`` statement or comprehension) binding the name.
    loop: ast.AST | None = None
    #: the span of the statement that binds (a parameter: its function's first position),
    #: and whether that statement is directly in the body of the scope it binds in.
    start: _Pos = (0, 0)
    end: _Pos = (0, 0)
    top: bool = False


@dataclass(slots=True, eq=False)
class _Scope:
    node: ast.AST
    parent: _Scope | None
    kind: str  # module | function | class | comprehension
    bindings: dict[str, list[_Binding]] = field(default_factory=dict)
    globals_: set[str] = field(default_factory=set)
    #: ids of the statements directly in this scope's body.
    top_ids: frozenset[int] = frozenset()

    def bind(self, name: str, b: _Binding) -> None:
        target = self
        if name in self.globals_:
            while target.parent is not None:
                target = target.parent
            b.top = False  # bound from a function body: runs whenever it is called
        lst = target.bindings.setdefault(name, [])
        if len(lst) < 256:
            lst.append(b)

    def lookup(self, name: str) -> tuple[_Scope, list[_Binding]] | None:
        scope: _Scope | None = self
        first = True
        while scope is not None:
            if name in scope.globals_:
                root = scope
                while root.parent is not None:
                    root = root.parent
                found = root.bindings.get(name)
                return (root, found) if found else None
            if (first or scope.kind != "class") and name in scope.bindings:
                return scope, scope.bindings[name]
            first = False
            scope = scope.parent
        return None


def _top_ids(node: ast.AST) -> frozenset[int]:
    body = getattr(node, "body", None)
    return frozenset(id(s) for s in body) if isinstance(body, list) else frozenset()


def _pos(node: ast.AST) -> _Pos:
    return getattr(node, "lineno", 0), getattr(node, "col_offset", 0)


def _end(node: ast.AST) -> _Pos:
    return getattr(node, "end_lineno", None) or 0, getattr(node, "end_col_offset", None) or 0


@dataclass(slots=True)
class _Call:
    node: ast.Call
    scope: _Scope
    #: where the call is in the walk of the whole module (see ``_Analysis._collect``).
    order: tuple[int, ...] = ()


@dataclass(slots=True, eq=False)
class _Later:
    """The body of a function not collected yet (see ``_Analysis``): where its statements
    go, and its place in the walk of the whole module."""

    node: ast.FunctionDef | ast.AsyncFunctionDef
    scope: _Scope
    first: int
    last: int
    order: tuple[int, ...] = ()


class _Text:
    """A module's source as searched for words: the lines they occur on (as the parser
    counts lines: ``\\r\\n``, ``\\r`` and ``\\n`` end one)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._starts: list[int] | None = None
        self._lines: dict[tuple[str, bool], list[int]] = {}

    def line_of(self, offset: int) -> int:
        starts = self._starts
        if starts is None:
            raw = self.raw
            if b"\r" in raw:
                starts = [0, *(m.end() for m in _LINE_BREAK.finditer(raw))]
            else:
                starts = [0]
                at = 0
                for line in raw.split(b"\n")[:-1]:
                    at += len(line) + 1
                    starts.append(at)
            self._starts = starts
        return bisect.bisect_right(starts, offset)

    def lines(self, word: str, whole: bool = False) -> list[int]:
        """The lines ``word`` occurs on (as an identifier when ``whole``: not inside a
        longer ASCII name), sorted."""
        got = self._lines.get((word, whole))
        if got is None:
            out: set[int] = set()
            raw = self.raw
            needle = word.encode("utf-8", "surrogateescape")
            n = len(needle)
            i = raw.find(needle)
            while i >= 0:
                if not whole or ((i == 0 or raw[i - 1] not in _NAME_BYTES)
                                 and raw[i + n:i + n + 1] not in _NAME_ENDS):
                    out.add(self.line_of(i))
                i = raw.find(needle, i + 1)
            got = self._lines[(word, whole)] = sorted(out)
        return got


_NAME_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_NAME_ENDS = frozenset(bytes((c,)) for c in _NAME_BYTES)


def _searchable(source: str | bytes) -> bytes | None:
    """A source as the bytes its names can be searched in (as the parser reads them: UTF-8,
    identifiers NFKC-normalised), or None when that is not sure (another encoding)."""
    if isinstance(source, bytes):
        for line in source.split(b"\n", 2)[:2]:
            m = _CODING.match(line)
            if m is not None and m.group(1).lower().replace(b"_", b"-") not in (
                    b"utf-8", b"utf8", b"ascii", b"us-ascii"):
                return None
        if source.isascii():
            return source
        text = source.decode("utf-8", "surrogateescape")
    else:
        if source.isascii():
            return source.encode("ascii")
        text = source
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return text.encode("utf-8", "surrogateescape")


def _has_loader_word(text: str) -> bool:
    return any(w in text for w in _LOADER_WORDS)


def _aliases(b: _Binding, names: set[str]) -> bool:
    """Whether a binding can make its name another name for a loader (what
    ``_Analysis.qual`` and ``_loader_instance`` follow): an import or an assignment of a
    dotted name whose last part has a loader word, of one of ``names``, or of a call of
    ``LibraryLoader``."""
    if b.kind == "import":
        return b.qual is not None and _has_loader_word(b.qual.rsplit(".", 1)[-1])
    if b.kind != "assign":
        return False
    v = b.node
    if isinstance(v, ast.Call):
        v = v.func
        last = v.attr if isinstance(v, ast.Attribute) else v.id if isinstance(v, ast.Name) \
            else ""
        return last == "LibraryLoader" or last in names
    if isinstance(v, ast.Attribute):
        return _has_loader_word(v.attr)
    return isinstance(v, ast.Name) and (v.id in names or _has_loader_word(v.id))


def _order_of_later(later: _Later) -> tuple[int, ...]:
    return later.order


def _order_of(call: _Call) -> tuple[int, ...]:
    return call.order


def _first(item: tuple[tuple[int, ...], ast.expr, _Scope]) -> tuple[int, ...]:
    return item[0]


def _any_within(lines: list[int], first: int, last: int) -> bool:
    i = bisect.bisect_left(lines, first)
    return i < len(lines) and lines[i] <= last


_LINE_BREAK = re.compile(rb"\r\n?|\n")
#: Words one of which every function body holding something a load site can start from
#: contains: a loader's name (``cdll``, ``CDLL``, ``LoadLibrary``, ``dlopen``,
#: ``load_library``, a wrapper's ``load_lib``, ``find_library``, ``require_version``,
#: ``LibraryLoader``), or what changes more than its own scope (``global``, an import of
#: ``cffi``).  Other bodies are collected only when asked about (see ``_Analysis``).
_LOADER_WORDS = ("DLL", "dll", "LoadLibrary", "LibraryLoader", "dlopen", "load_lib",
                 "find_library", "require_version")
_SEED_WORDS = (*_LOADER_WORDS, "global", "cffi")
#: Searches of the source for a name (each a pass over it) before every body is walked,
#: and rounds of names for names (``a = ctypes.CDLL``, ``b = a``, ...) followed.
_MAX_WORD_SEARCHES = 64
_MAX_ALIAS_ROUNDS = 8
#: A coding declaration (PEP 263) in one of the first two lines.
_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


@dataclass(frozen=True, slots=True, eq=False)
class _Caller:
    """One call of a function, with what evaluating its arguments needs: the module
    (analysis) and scope it is in, and how many leading parameters it does not pass
    (1 for ``self`` in a method called through an attribute)."""

    an: _Analysis
    node: ast.Call
    scope: _Scope
    offset: int
    func: str


#: A context: functions entered with their parameters bound to one call's arguments
#: (``(id(function), call)``), outermost first.
_Frame = tuple[int, _Caller]
_Ctx = tuple[_Frame, ...]
_FuncRef = tuple["_Analysis", "ast.FunctionDef | ast.AsyncFunctionDef"]


@dataclass(frozen=True, slots=True)
class _Loader:
    """A recognised loader call: which API, which argument nodes name the library."""

    api: str
    confidence: Confidence


class _Budget(Exception):
    """Raised inside evaluation when the per-file step budget is spent."""


_FuncNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
_DefNode = ast.FunctionDef | ast.AsyncFunctionDef
_CompNode = ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
#: Node types that bind, call or open a scope; every other node is only descended into.
_SPECIAL_NODES: frozenset[type[ast.AST]] = frozenset({
    ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp,
    ast.GeneratorExp, ast.DictComp, ast.Global, ast.Nonlocal, ast.Import, ast.ImportFrom,
    ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr, ast.For, ast.AsyncFor, ast.With,
    ast.AsyncWith, ast.ExceptHandler, ast.Return, ast.Yield, ast.YieldFrom, ast.Call,
    ast.Attribute, ast.Subscript,
})
#: Binding kinds that take effect when their statement completes.
_SEQUENTIAL = frozenset({"assign", "enter", "aug", "import", "def"})


# --------------------------------------------------------------------------- the modules

class PythonModules:
    """The tree around the sources being analysed, so that :func:`detect_python` can
    follow values into the other modules of a package.

    ``read(path)`` returns a file's bytes (``None`` when it cannot be read);
    ``listdir(path)`` the entries of a directory as ``(name, is_directory)`` pairs (none
    when there is no such directory).  Paths are in the namespace of the ``file`` arguments
    given to :func:`detect_python` (their directories, ``__init__.py`` files and siblings).
    The instance caches what it lists, reads and parses: use one per scanned tree, and
    call :func:`detect_python` with it from one thread at a time.
    """

    def __init__(self, read: Callable[[str], bytes | None],
                 listdir: Callable[[str], Iterable[tuple[str, bool]]]) -> None:
        self._read = read
        self._listdir = listdir
        self._program = _Program(self)

    @classmethod
    def host(cls) -> PythonModules:
        """The modules of this machine's file system (paths as the OS takes them)."""

        def read(path: str) -> bytes | None:
            try:
                with open(path or ".", "rb") as f:
                    return f.read(MAX_SOURCE_BYTES + 1)
            except (OSError, ValueError):
                return None

        def listdir(path: str) -> list[tuple[str, bool]]:
            try:
                with os.scandir(path or ".") as it:
                    return [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
            except (OSError, ValueError):
                return []

        return cls(read, listdir)

    @classmethod
    def of(cls, fs: FileSystem) -> PythonModules:
        """The modules of a scanned tree (paths are the tree's loader paths)."""

        def resolve(path: str) -> str | None:
            """``fs.resolve(path)``, the directory resolved once for all its files (the
            callers of a function are searched for in every file of a package)."""
            head, _, name = path.rpartition("/")
            if not head or name in ("", ".", ".."):
                return fs.resolve(path)
            real_dir = fs.resolve(head)
            if real_dir is None:
                return None
            kind = fs.entry(real_dir, name)
            if kind is Kind.FILE:
                return real_dir.rstrip("/") + "/" + name
            return None if kind is None else fs.resolve(path)

        def read(path: str) -> bytes | None:
            try:
                real = resolve(path)
                return fs.head(real, MAX_SOURCE_BYTES + 1) if real is not None else None
            except UnveilError:  # SymlinkLoop included
                return None

        def listdir(path: str) -> list[tuple[str, bool]]:
            try:
                real = fs.resolve(path)
            except UnveilError:
                return []
            if real is None:
                return []
            return [(name, kind is Kind.DIR) for name, kind in fs.listdir(real).items()
                    if kind in (Kind.DIR, Kind.FILE)]

        return cls(read, listdir)

    def read(self, path: str) -> bytes | None:
        try:
            return self._read(path)
        except Exception:  # a reader's failure is a file we cannot see
            return None

    def listdir(self, path: str) -> dict[str, bool]:
        try:
            return {name: bool(is_dir) for name, is_dir in self._listdir(path)}
        except Exception:  # as above
            return {}

    def remember(self, path: str, raw: bytes) -> None:
        """The bytes of a file read already (all of it, as ``read`` would give them):
        kept while the cache has room, so that searching the package for calls does not
        read (or inflate) it again.  Larger files than a source analysed are not kept."""
        prog = self._program
        if len(raw) <= MAX_SOURCE_BYTES and path not in prog.raw_cache and \
                prog.raw_bytes + len(raw) <= _MAX_CACHED_BYTES:
            prog.raw_cache[path] = raw
            prog.raw_bytes += len(raw)

    def remembered(self, path: str) -> bytes | None:
        """All the bytes of a file kept by ``remember`` (or read for a search), if any."""
        raw = self._program.raw_cache.get(path)
        return raw if raw is not None and len(raw) <= MAX_SOURCE_BYTES else None


_TEST_PATH = re.compile(r"(^|/)(tests?|testing)/|(^|/)test_[^/]*\.py$|_tests?\.py$")


def _in_tests(path: str) -> bool:
    return _TEST_PATH.search(path) is not None


def _digest(source: str | bytes) -> int:
    raw = source.encode("utf-8", "surrogateescape") if isinstance(source, str) else source
    return hash((len(raw), raw))


def _parse(source: str | bytes, file: str, prog: _Program) -> _Analysis | None:
    """Parse and collect one module; None when it is not valid Python."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _Analysis(parse(source, filename=file), file, prog, source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    finally:
        if paused:
            gc.enable()


class _Program:
    """What one analysis run shares across modules: the evaluation state of the file being
    analysed (reset for every file) and, with :class:`PythonModules`, the modules read
    and parsed, import resolution and call-site indexes (kept for the whole tree)."""

    def __init__(self, modules: PythonModules | None) -> None:
        self.modules = modules
        # Static caches (valid as long as the tree does not change).
        self.analyses: dict[str, _Analysis | None] = {}
        self.entries_cache: dict[str, dict[str, bool]] = {}
        self.raw_cache: dict[str, bytes | None] = {}
        self.raw_bytes = 0
        self.roots: dict[str, str | None] = {}
        self.resolved: dict[tuple[str, str], list[_FuncRef]] = {}
        self.callers_cache: dict[int, tuple[list[_Caller], bool]] = {}
        self.caller_objs: dict[tuple[int, int], _Caller] = {}
        #: the tuple a ``*args`` parameter takes at one call (call, function)
        self.varargs: dict[tuple[int, int], ast.Tuple] = {}
        self.package_files_cache: dict[str, list[str]] = {}
        #: a package's files outside its tests (package, length of its root's prefix)
        self.untested_cache: dict[tuple[str, int], list[str]] = {}
        self.begin()

    def begin(self) -> None:
        """Start the analysis of one file."""
        self.steps = 0
        self.max_steps = _MAX_STEPS if self.modules is None else 4 * _MAX_STEPS
        self.memo: dict[object, tuple[_Alts, dict[int, _FuncRef]]] = {}
        self.func_memo: dict[object, tuple[_Alts, dict[int, _FuncRef]]] = {}
        self.in_progress: set[object] = set()
        self.consumed: set[int] = set()
        self.touched: dict[int, _FuncRef] = {}
        self.loads = 0
        self.load_bytes = 0
        self.search_bytes = 0
        self.limited = False
        self.problems: list[str] = []

    def note(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    def limit(self, what: str) -> None:
        if not self.limited:
            self.limited = True
            self.problems.append(f"{what}: values from other modules may be missing")

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise _Budget

    # ------------------------------------------------------------------ calls

    def caller(self, an: _Analysis, node: ast.Call, scope: _Scope, offset: int,
               func: str) -> _Caller:
        key = (id(node), offset)
        c = self.caller_objs.get(key)
        if c is None:
            c = self.caller_objs[key] = _Caller(an, node, scope, offset, func)
        return c

    def callee_defs(self, an: _Analysis, fn: ast.expr, scope: _Scope,
                    q: str | None) -> list[_FuncRef]:
        """The functions (every definition) a call's callee names: local ones, or with
        the modules, one defined or re-exported in another module of the tree."""
        if isinstance(fn, ast.Name):
            local = an.local_defs(fn, scope)
            if local:
                return [(an, f) for f in local]
            if q is None:  # ``f = a if cond else b``: either function
                arms = an.chosen(fn, scope)
                if arms:
                    out: list[_FuncRef] = []
                    for arm, s in arms:
                        out.extend(self.callee_defs(an, arm, s, an.qual(arm, s)))
                    return out[:_MAX_ALTS]
        if q is None or self.modules is None:
            return []
        return self.resolve(an, q)

    def callers(self, an: _Analysis, func: _DefNode) -> list[_Caller]:
        """The calls of ``func``: in its module, and with the modules, in the other modules
        of its top-level package that import it."""
        cached = self.callers_cache.get(id(func))
        if cached is not None:
            if cached[1]:
                self.note(f"only the first {_MAX_CALLERS} calls of {func.name}() followed")
            return cached[0]
        out: list[_Caller] = []
        is_method = id(func) in an.methods
        cls = an.method_class.get(id(func))
        if func.name == "__init__" and isinstance(cls, ast.ClassDef):
            # ``Class(args)`` calls ``__init__(self, args)``
            for call in an.calls_named(cls.name):
                node = call.node
                if isinstance(node.func, ast.Name) and an.class_of(node.func, call.scope) is cls:
                    out.append(self.caller(an, node, call.scope, 1, cls.name))
        for call in an.calls_named(func.name):
            node = call.node
            via_attr = isinstance(node.func, ast.Attribute)
            if via_attr and not is_method:
                continue
            if not via_attr and all(f is not func for f in an.local_defs(node.func,
                                                                         call.scope)):
                continue
            offset = _bound_params(func) if via_attr else 0
            out.append(self.caller(an, node, call.scope, offset, func.name))
            if len(out) >= _MAX_CALLERS:
                break
        if (self.modules is not None and len(out) < _MAX_CALLERS
                and (id(func) in an.module_defs or (id(func) in an.module_methods
                                                    and _class_level(func)))):
            out.extend(self._cross_callers(an, func, _MAX_CALLERS - len(out)))
        full = len(out) >= _MAX_CALLERS
        if full:
            self.note(f"only the first {_MAX_CALLERS} calls of {func.name}() followed")
        if not self.limited:
            self.callers_cache[id(func)] = (out, full)
        return out

    def _cross_callers(self, an: _Analysis, func: _DefNode, room: int) -> list[_Caller]:
        """Calls of a module-level function from the other modules of its top-level
        package, under its own name or a name it is imported as (``import f as g``)."""
        mod = self.module_name(an.file)
        root = self.root_of(an.file)
        if mod is None or root is None:
            return []
        top = posixpath.join(root, mod.split(".", 1)[0])
        if not self.entries(top):
            return []  # a top-level module, not a package: no siblings to search
        names = [func.name]
        out: list[_Caller] = []
        seen: set[int] = set()
        # A package's tests call its loaders with made-up names (and test failures):
        # their calls count only for a loader that is itself in the tests.
        skip = len(root.rstrip("/")) + 1 if root else 0
        with_tests = _in_tests(an.file[skip:])
        files = self.package_files(top)
        if not with_tests:
            key = (top, skip)
            kept = self.untested_cache.get(key)
            if kept is None:
                kept = self.untested_cache[key] = [p for p in files if not _in_tests(p[skip:])]
            files = kept
        # A method is called from another module through its class (Class.method(...)):
        # only files naming the class are worth parsing.
        cls = an.method_class.get(id(func))
        also = cls.name.encode() if isinstance(cls, ast.ClassDef) else None
        for name in names:  # grows with the aliases found, up to 8 names
            needle = name.encode()
            word = re.compile(rb"\b" + re.escape(needle) + rb"\b")
            for path in files:
                if path == an.file:
                    continue
                if self.search_bytes >= _MAX_SEARCH_BYTES_PER_FILE:
                    self.limit("search for calls in other modules stopped")
                    return out
                raw = self.raw(path)
                if raw is None:
                    continue
                self.search_bytes += len(raw)
                if needle not in raw or (also is not None and also not in raw) or \
                        not word.search(raw):
                    continue
                other = self.analysis(path)
                if other is None:
                    continue
                for call in other.calls_named(name):
                    fn = call.node.func
                    if id(call.node) in seen:
                        continue
                    defs = self.callee_defs(other, fn, call.scope, other.qual(fn, call.scope))
                    if any(f is func for _, f in defs):
                        seen.add(id(call.node))
                        offset = _bound_params(func) if id(func) in an.methods else 0
                        out.append(self.caller(other, call.node, call.scope, offset, name))
                        if len(out) >= room:
                            return out
                for alias, bindings in other.module.bindings.items():
                    if alias in names or len(names) >= 8:
                        continue
                    if any(b.kind == "import" and b.qual is not None
                           and b.qual.rsplit(".", 1)[-1] == name
                           and any(f is func for _, f in self.resolve(other, b.qual))
                           for b in bindings):
                        names.append(alias)
        return out

    # ------------------------------------------------------------------ modules

    def entries(self, path: str) -> dict[str, bool]:
        got = self.entries_cache.get(path)
        if got is None:
            got = self.modules.listdir(path) if self.modules is not None else {}
            self.entries_cache[path] = got
        return got

    def raw(self, path: str) -> bytes | None:
        if path in self.raw_cache:
            return self.raw_cache[path]
        data = self.modules.read(path) if self.modules is not None else None
        if data is not None and self.raw_bytes + len(data) <= _MAX_CACHED_BYTES:
            self.raw_cache[path] = data
            self.raw_bytes += len(data)
        return data

    def cached(self, file: str, source: str | bytes) -> _Analysis | None:
        """The analysis of a file already parsed as another file's module, if its source
        is the one given (the same nodes, so that calls found from it still match)."""
        an = self.analyses.get(file)
        if an is None or an.digest != _digest(source):
            return None
        return an

    def adopt(self, file: str, an: _Analysis) -> None:
        """The file being analysed is one of the modules too."""
        if self.modules is None:
            return
        if self.analyses.get(file) is not None:
            # Another source under the same path: what was found from the old one is stale.
            self.resolved.clear()
            self.callers_cache.clear()
        if len(self.analyses) < _MAX_MODULES and an.size <= _MAX_KEPT_SOURCE:
            self.analyses[file] = an

    def forget(self, an: _Analysis) -> None:
        """Drop what the caches hold of a module too large to keep (its tree with them)."""
        self.caller_objs = {k: c for k, c in self.caller_objs.items() if c.an is not an}
        self.callers_cache = {k: v for k, v in self.callers_cache.items()
                              if all(c.an is not an for c in v[0])}
        self.resolved = {k: v for k, v in self.resolved.items()
                         if all(ref[0] is not an for ref in v)}
        self.varargs.clear()
        self.memo.clear()
        self.func_memo.clear()

    def analysis(self, path: str) -> _Analysis | None:
        if path in self.analyses:
            return self.analyses[path]
        if len(self.analyses) >= _MAX_MODULES or self.loads >= _MAX_LOADS_PER_FILE or \
                self.load_bytes >= _MAX_LOAD_BYTES_PER_FILE:
            self.limit(f"other modules not parsed after {self.loads}")
            return None
        self.loads += 1
        raw = self.raw(path)
        self.load_bytes += len(raw) if raw is not None else 0
        an = None
        if raw is not None and len(raw) > _MAX_KEPT_SOURCE:
            # Not parsed for another file's sake (it would be again for each file that
            # asks): such modules are generated tables, seldom where a loader's name is.
            if len(raw) <= MAX_SOURCE_BYTES:  # (larger ones are never parsed)
                self.limit(f"{path}: not parsed as another file's module "
                           f"({len(raw)} bytes)")
        elif raw is not None:
            an = _parse(raw, path, self)
            if an is not None:
                an.digest = _digest(raw)
        self.analyses[path] = an
        return an

    def package_files(self, top: str) -> list[str]:
        """The ``.py`` files of a package directory, sorted (bounded)."""
        cached = self.package_files_cache.get(top)
        if cached is not None:
            return cached
        out: list[str] = []
        stack = [(top, 0)]
        while stack and len(out) < _MAX_PACKAGE_FILES:
            d, depth = stack.pop()
            ents = self.entries(d)
            for name in sorted(ents):
                if ents[name]:
                    if depth < _MAX_PACKAGE_DEPTH and name != "__pycache__" \
                            and not name.startswith("."):
                        stack.append((posixpath.join(d, name), depth + 1))
                elif name.endswith(".py"):
                    out.append(posixpath.join(d, name))
        out.sort()
        self.package_files_cache[top] = out
        return out

    def root_of(self, file: str) -> str | None:
        """The directory imports of ``file`` are relative to: the enclosing site-packages,
        else the parent of its outermost package (directories with ``__init__.py``)."""
        if file in self.roots:
            return self.roots[file]
        parts = file.split("/")
        root: str | None = None
        for i in range(len(parts) - 2, -1, -1):
            if parts[i] in _SITE_DIRS:
                root = "/".join(parts[:i + 1])
                break
        if root is None and self.modules is not None:
            d = posixpath.dirname(file)
            for _ in range(64):
                if self.entries(d).get("__init__.py") is not False:
                    break
                up = posixpath.dirname(d)
                if up == d:
                    break
                d = up
            root = d
        self.roots[file] = root
        return root

    def module_name(self, file: str) -> str | None:
        root = self.root_of(file)
        if root is None or not file.endswith(".py"):
            return None
        if root:
            if not file.startswith(root.rstrip("/") + "/"):
                return None
            rel = file[len(root.rstrip("/")) + 1:]
        else:
            rel = file
        parts = rel[:-3].split("/")
        if parts[-1] == "__init__":
            parts.pop()
        if not parts or not all(p.isidentifier() for p in parts):
            return None
        return ".".join(parts)

    def absolute(self, qual: str, an: _Analysis) -> str | None:
        """A dotted name as an absolute one (relative imports resolved against ``an``)."""
        if not qual.startswith("."):
            return qual
        level = len(qual) - len(qual.lstrip("."))
        rest = qual[level:]
        mod = self.module_name(an.file)
        if mod is None:
            return None
        pkg = mod.split(".")
        if not an.file.endswith("/__init__.py") and an.file != "__init__.py":
            pkg = pkg[:-1]
        if level - 1 > len(pkg):
            return None
        pkg = pkg[:len(pkg) - (level - 1)]
        return ".".join([*pkg, rest] if rest else pkg) or None

    def module_path(self, root: str, parts: list[str]) -> str | None:
        d = posixpath.join(root, *parts[:-1]) if len(parts) > 1 else root
        ents = self.entries(d)
        if ents.get(parts[-1] + ".py") is False:
            return posixpath.join(d, parts[-1] + ".py")
        if ents.get(parts[-1]):
            pkg = posixpath.join(d, parts[-1])
            if self.entries(pkg).get("__init__.py") is False:
                return posixpath.join(pkg, "__init__.py")
        return None

    def resolve(self, an: _Analysis, qual: str) -> list[_FuncRef]:
        """The function definitions an imported dotted name refers to, in the tree."""
        absq = self.absolute(qual, an)
        root = self.root_of(an.file)
        if absq is None or root is None or "." not in absq:
            return []
        top = absq.split(".", 1)[0]
        if top in _MODELLED and (self.module_name(an.file) or "").split(".", 1)[0] != top:
            return []  # modelled, unless this is that package's own code calling itself
        return self._resolve(root, absq, 0, frozenset())

    def _resolve(self, root: str, absq: str, depth: int,
                 seen: frozenset[tuple[str, str]]) -> list[_FuncRef]:
        key = (root, absq)
        if key in self.resolved:
            return self.resolved[key]
        parts = absq.split(".")
        if depth > 4 or key in seen or len(parts) < 2 or not all(parts):
            return []
        out: list[_FuncRef] = []
        path = self.module_path(root, parts[:-1])
        mod = self.analysis(path) if path is not None else None
        if mod is not None:
            out = self._lookup(mod, root, parts[-1], depth, seen | {key})
        elif len(parts) >= 3:
            # ``pkg.module.Class.method``: a method of a class defined in the module
            path = self.module_path(root, parts[:-2])
            mod = self.analysis(path) if path is not None else None
            if mod is not None:
                out = mod.methods_of(parts[-2], parts[-1])
        if depth == 0 and not self.limited:
            self.resolved[key] = out
        return out

    def _lookup(self, mod: _Analysis, root: str, name: str, depth: int,
                seen: frozenset[tuple[str, str]]) -> list[_FuncRef]:
        out: list[_FuncRef] = []

        def follow(q: str | None, where: _Analysis) -> None:
            a = self.absolute(q, where) if q else None
            if a is not None:
                out.extend(self._resolve(root, a, depth + 1, seen))

        bindings = mod.module.bindings.get(name)
        for b in bindings or ():
            if b.kind == "def" and isinstance(b.node, _DefNode):
                out.append((mod, b.node))
            elif b.kind == "import":
                follow(b.qual, mod)
            elif b.kind == "assign" and not b.path and isinstance(b.node, ast.Name
                                                                   | ast.Attribute):
                follow(mod.qual(b.node, b.scope), mod)
        if bindings is None:
            for star in sorted(mod.star_modules):
                follow(star + name if star.endswith(".") else f"{star}.{name}", mod)
        return out[:_MAX_ALTS]

    def where(self, file: str, site_file: str, line: int) -> str:
        """A call's place for evidence: the line in the site's file, else the path below
        the import root."""
        if file == site_file:
            return f"line {line}"
        root = self.root_of(file)
        if root and file.startswith(root.rstrip("/") + "/"):
            file = file[len(root.rstrip("/")) + 1:]
        return f"{file}:{line}"


# --------------------------------------------------------------------------- one module

class _Analysis:
    """One module: its scopes, bindings, calls and returns, collected in one walk.

    Given its source, the bodies of functions are walked only when needed: those that hold
    a word a load site starts from (``_SEED_WORDS``) or a name bound to such a thing at
    once, the others when a question is about them (the calls of a name, the assignments
    of an attribute of ``self``, the returns of a function).  What is found keeps the order
    of a walk of the whole module."""

    def __init__(self, tree: ast.Module, file: str, prog: _Program,
                 source: str | bytes | None = None) -> None:
        self.file = file
        self.prog = prog
        self.problems: list[str] = []
        self.module = _Scope(tree, None, "module", top_ids=_top_ids(tree))
        self.scope_of: dict[int, _Scope] = {}
        self.calls: list[_Call] = []
        self.attrs: list[tuple[ast.Attribute | ast.Subscript, _Scope]] = []
        self.calls_by_name: dict[str, list[_Call]] = {}
        self.returns: dict[int, list[tuple[ast.expr, bool, bool]]] = {}
        self.func_scope: dict[int, _Scope] = {}
        self.generators: set[int] = set()
        self.methods: set[int] = set()
        self.module_defs: set[int] = set()
        #: methods of the classes defined at module level, and each class's scope
        self.module_methods: set[int] = set()
        self.class_scope: dict[int, _Scope] = {}
        self.method_class: dict[int, ast.AST] = {}
        #: (scope, name, bindings) -> whether the name holds a ctypes.LibraryLoader
        self.library_loaders: dict[tuple[int, str, int], bool] = {}
        self.defaults: dict[int, dict[str, tuple[ast.expr, _Scope]]] = {}
        self.star_modules: set[str] = set()
        self.cffi_imported = False
        self._located: dict[int, tuple[dict[int, int], int | None]] = {}
        self.digest = 0
        self.size = len(source) if source is not None else 0
        self._self_attrs: dict[str, list[tuple[tuple[int, ...], ast.expr, _Scope]]] = {}
        self._pending: dict[int, _Later] = {}
        self._scopes: list[_Scope] = [self.module]
        self._asked: set[str] = set()
        self._searches = 0
        self._visited = 0
        self._prefix: tuple[int, ...] = ()
        self._count = 0
        self.late = False  # bodies were collected after the first walk
        raw = _searchable(source) if source is not None else None
        self._text = _Text(raw) if raw is not None else None
        self._seed_lines: list[int] = []
        self._guards: list[Guard[_Pos]] | None = None
        if self._text is not None:
            seen: set[int] = set()
            for w in _SEED_WORDS:
                seen.update(self._text.lines(w))
            self._seed_lines = sorted(seen)
        self._collect(tree.body, self.module, None, ())
        if self._pending:
            self._reveal_aliases()

    def guarded(self, node: ast.AST) -> str | None:
        """What handles a failure of the code at ``node`` (a ``try`` whose handler catches
        ``OSError`` and does not raise again, ``with contextlib.suppress(OSError)``), or
        None.  Only lexically: a function defined inside the ``try`` runs outside it."""
        if self._guards is None:
            self._guards = _guards(self.module.node)
        return guard_at(self._guards, (getattr(node, "lineno", 0),
                                       getattr(node, "col_offset", 0)))

    def alternatives(self, a: ast.AST, b: ast.AST) -> bool:
        """Whether two nodes are in different arms of one branch (``if``/``else``, a
        ``try`` body and its handlers, ``x if c else y``, ``x or y``): at most one runs,
        or the second only when the first failed."""
        pa, fa = self._locate(a)
        pb, fb = self._locate(b)
        if any(pb.get(k, i) != i for k, i in pa.items()):
            return True
        # Both returned by one function: once one succeeds the function has returned.
        return fa is not None and fa == fb

    def _locate(self, node: ast.AST) -> tuple[dict[int, int], int | None]:
        """For each branch containing ``node``: which of its arms; and the function whose
        ``return`` value holds ``node`` when it is a call.  Found on the path from the
        module down to the node (only subtrees whose span holds the node's are entered),
        not by walking the whole module."""
        got = self._located.get(id(node))
        if got is None:
            got = self._located[id(node)] = _locate(self.module.node, node)
        return got

    # ------------------------------------------------------------------ collection

    def _collect(self, roots: Sequence[ast.AST], scope: _Scope, func: _FuncNode | None,
                 order: tuple[int, ...]) -> None:
        """Walk a tree (the module's statements, or a function body collected later) in
        source order, without recursion; its nodes are numbered in walk order after
        ``order`` (the place of the tree in the walk of the whole module)."""
        stack: list[tuple[ast.AST | _Later, _Scope, _FuncNode | None]] = [
            (r, scope, func) for r in reversed(roots)]
        pop, extend = stack.pop, stack.extend
        special = _SPECIAL_NODES
        children = _children
        attribute, subscript, attrs = ast.Attribute, ast.Subscript, self.attrs
        room = _MAX_NODES - self._visited
        count = 0
        self._prefix = order
        while stack:
            node, scope, func = pop()
            count += 1
            if count > room:
                self.problems.append(f"stopped after {_MAX_NODES} syntax nodes")
                self._pending.clear()  # and no more bodies
                self._text = None
                break
            t = type(node)
            if t is attribute or t is subscript:  # the commonest: only listed
                attrs.append((node, scope))  # type: ignore[arg-type]
                plain = [(c, scope, func) for c in children(node)]  # type: ignore[arg-type]
                plain.reverse()
                extend(plain)
            elif t in special:
                self._count = count
                kids = self._visit(node, scope, func)  # type: ignore[arg-type]
                kids.reverse()
                extend(kids)
            elif isinstance(node, _Later):
                node.order = (*order, count)
                self._pending[id(node.node)] = node
            else:  # nothing to record: only descend
                plain = [(c, scope, func) for c in children(node)]
                plain.reverse()
                extend(plain)
        self._visited += count

    def _later(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """Whether a function's body can wait: no seed word in it (header included)."""
        return self._text is not None and not _any_within(
            self._seed_lines, node.lineno, node.end_lineno or node.lineno)

    def reveal(self, later: _Later) -> None:
        """Collect a function body that waited."""
        if self._pending.pop(id(later.node), None) is None:
            return
        self.late = True
        self._collect(later.node.body, later.scope, later.node, later.order)

    def body(self, fdef: _DefNode) -> None:
        """Collect the body of a function of this module, if it waited."""
        later = self._pending.get(id(fdef))
        if later is not None:
            self.reveal(later)

    def reveal_all(self) -> None:
        """Collect every function body still waiting (and stop waiting)."""
        while self._pending:
            self.reveal(min(self._pending.values(), key=_order_of_later))
        self._text = None

    def reveal_word(self, word: str) -> bool:
        """Collect every waiting function body a name occurs in."""
        if not self._pending or self._text is None:
            return False
        self._searches += 1
        if self._searches > _MAX_WORD_SEARCHES:  # each is a pass over the source
            self.reveal_all()
            return True
        lines = self._text.lines(word, True)
        revealed = False
        while lines:
            hit = [p for p in self._pending.values() if _any_within(lines, p.first, p.last)]
            if not hit:
                break
            for p in hit:
                self.reveal(p)
            revealed = True
        return revealed

    def _reveal_aliases(self) -> None:
        """Collect the bodies that use another name for a loader, bound where it is
        known: an import of it (``from ctypes import CDLL as C``), an assignment of it or
        of such a name (``load = C``, ``loader = ctypes.LibraryLoader(...)``), until there
        are no more."""
        names: set[str] = set()
        rounds = 0
        while self._pending and self._text is not None:
            found = {name for scope in self._scopes for name, bindings in scope.bindings.items()
                     if name not in names and any(_aliases(b, names) for b in bindings)}
            if not found:
                return
            rounds += 1
            if rounds > _MAX_ALIAS_ROUNDS:  # a long chain of names for names
                self.reveal_all()
                return
            names |= found
            for name in sorted(found):
                if not _has_loader_word(name):  # else no body with it waits
                    self.reveal_word(name)

    def _ask(self, word: str) -> None:
        """Walk, once, the bodies holding ``word`` that have not been walked yet."""
        if word not in self._asked:
            self._asked.add(word)
            self.reveal_word(word)

    def class_of(self, expr: ast.Name, scope: _Scope) -> ast.AST | None:
        """The class of this module a name is bound to, if it is one."""
        found = scope.lookup(expr.id)
        classes = [b.node for b in found[1] if b.kind == "class"] if found else []
        return classes[0] if len(classes) == 1 else None

    def methods_of(self, cls: str, name: str) -> list[_FuncRef]:
        """The definitions of method ``name`` of the module-level class ``cls``."""
        out: list[_FuncRef] = []
        for b in self.module.bindings.get(cls, ()):
            if b.kind == "class" and b.node is not None:
                out.extend(self.methods_of_class(b.node, name))
        return out

    def methods_of_class(self, cls: ast.AST, name: str) -> list[_FuncRef]:
        inner = self.class_scope.get(id(cls))
        if inner is None:
            return []
        return [(self, m.node) for m in inner.bindings.get(name, ())
                if m.kind == "def" and isinstance(m.node, _DefNode)]

    def calls_named(self, name: str) -> list[_Call]:
        """The calls of a name (``name(...)``, ``x.name(...)``) in the module, in order."""
        self._ask(name)
        calls = self.calls_by_name.get(name)
        if not calls:
            return []
        if self.late:
            calls.sort(key=_order_of)
        return list(calls)

    def self_attr(self, attr: str) -> list[tuple[ast.expr, _Scope]]:
        """The values assigned to ``self.attr`` or ``cls.attr`` in the module, in order."""
        self._ask(attr)
        got = self._self_attrs.get(attr)
        if not got:
            return []
        if self.late:
            got.sort(key=_first)
        return [(v, sc) for _, v, sc in got]

    def _visit(self, node: ast.AST, scope: _Scope, func: _FuncNode | None,
               ) -> list[tuple[ast.AST | _Later, _Scope, _FuncNode | None]]:
        """Record what ``node`` binds or calls; return its children with their scopes."""
        kids: list[tuple[ast.AST | _Later, _Scope, _FuncNode | None]] = []

        def add(nodes: Sequence[ast.AST | None], s: _Scope = scope,
                f: _FuncNode | None = func) -> None:
            kids.extend((n, s, f) for n in nodes if n is not None)

        def binding(kind: str, value: ast.AST | None, *, qual: str | None = None,
                    stmt: ast.AST = node) -> _Binding:
            return _Binding(kind, value, scope, qual=qual, start=_pos(stmt), end=_end(stmt),
                            top=id(stmt) in scope.top_ids)

        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            parent = scope
            while parent.kind == "class" and parent.parent is not None:
                parent = parent.parent
            inner = _Scope(node, parent if scope.kind == "class" else scope, "function",
                           top_ids=_top_ids(node) if not isinstance(node, ast.Lambda)
                           else frozenset())
            self.func_scope[id(node)] = inner
            self.returns.setdefault(id(node), [])
            if not isinstance(node, ast.Lambda):
                self._scopes.append(inner)
                scope.bind(node.name, binding("def", node))
                if scope.kind == "class":
                    self.methods.add(id(node))
                    self.method_class[id(node)] = scope.node
                    if scope.parent is not None and scope.parent.kind == "module":
                        self.module_methods.add(id(node))
                elif scope.kind == "module":
                    self.module_defs.add(id(node))
                add(node.decorator_list)
                if self._later(node):
                    kids.append((_Later(node, inner, node.lineno, node.end_lineno or node.lineno),
                                 inner, node))
                else:
                    add(node.body, inner, node)
            else:
                self.returns[id(node)].append((node.body, False, False))
                add([node.body], inner, node)
            a = node.args
            defaults: dict[str, tuple[ast.expr, _Scope]] = {}
            positional = [*a.posonlyargs, *a.args]
            for arg, d in zip(positional[len(positional) - len(a.defaults):], a.defaults,
                              strict=True):
                defaults[arg.arg] = (d, scope)
            for arg, kd in zip(a.kwonlyargs, a.kw_defaults, strict=True):
                if kd is not None:
                    defaults[arg.arg] = (kd, scope)
            self.defaults[id(node)] = defaults
            entry = _pos(node)
            for arg in [*positional, *a.kwonlyargs]:
                inner.bind(arg.arg, _Binding("param", node, inner, qual=arg.arg, start=entry,
                                             end=entry))
            if a.vararg is not None:  # ``*names``: the tuple of a call's extra arguments
                inner.bind(a.vararg.arg, _Binding("param", node, inner, qual=a.vararg.arg,
                                                  start=entry, end=entry))
            if a.kwarg is not None:
                inner.bind(a.kwarg.arg, _Binding("opaque", None, inner, start=entry,
                                                 end=entry))
            add([*a.defaults, *(d for d in a.kw_defaults if d is not None)])
            return kids
        if isinstance(node, ast.ClassDef):
            inner = _Scope(node, scope, "class", top_ids=_top_ids(node))
            self._scopes.append(inner)
            self.class_scope[id(node)] = inner
            scope.bind(node.name, binding("class", node))
            add([*node.bases, *node.keywords, *node.decorator_list])
            add(node.body, inner)
            return kids
        if isinstance(node, _CompNode):
            inner = _Scope(node, scope, "comprehension")
            self.scope_of[id(node)] = inner
            for i, gen in enumerate(node.generators):
                self._bind_target(gen.target, inner, "iter", gen.iter,
                                  scope if i == 0 else inner, loop=node, stmt=node)
                add([gen.iter], scope if i == 0 else inner)
                add(gen.ifs, inner)
            if isinstance(node, ast.DictComp):
                add([node.key, node.value], inner)
            else:
                add([node.elt], inner)
            return kids

        if isinstance(node, ast.Global | ast.Nonlocal):
            if isinstance(node, ast.Global):
                scope.globals_.update(node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    scope.bind(alias.asname, binding("import", None, qual=alias.name))
                else:
                    top = alias.name.split(".", 1)[0]
                    scope.bind(top, binding("import", None, qual=top))
                if alias.name.split(".", 1)[0] == "cffi":
                    self.cffi_imported = True
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            if (node.module or "").split(".", 1)[0] == "cffi":
                self.cffi_imported = True
            for alias in node.names:
                if alias.name == "*":
                    self.star_modules.add(base)
                    continue
                qual = f"{base}.{alias.name}" if base and not base.endswith(".") else \
                    base + alias.name
                scope.bind(alias.asname or alias.name, binding("import", None, qual=qual))
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                self._bind_target(t, scope, "assign", node.value, scope, stmt=node)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self._bind_target(node.target, scope, "assign", node.value, scope, stmt=node)
        elif isinstance(node, ast.AugAssign):
            if isinstance(node.target, ast.Name):
                scope.bind(node.target.id, binding("aug", node))
        elif isinstance(node, ast.NamedExpr):
            self._bind_target(node.target, scope, "assign", node.value, scope, stmt=node)
        elif isinstance(node, ast.For | ast.AsyncFor):
            self._bind_target(node.target, scope, "iter", node.iter, scope, loop=node,
                              stmt=node)
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                if item.optional_vars is not None:
                    # ``with f(x) as v``: v is what entering the call's value gives: for a
                    # @contextmanager function its yield, for as_file() the path.
                    ctx_call = item.context_expr if isinstance(
                        item.context_expr, ast.Call | ast.Name | ast.Attribute) else None
                    self._bind_target(item.optional_vars, scope,
                                      "enter" if ctx_call else "opaque", ctx_call, scope,
                                      stmt=node)
        elif isinstance(node, ast.ExceptHandler):
            if node.name:
                scope.bind(node.name, _Binding("opaque", None, scope, start=_pos(node),
                                               end=_pos(node)))
        elif isinstance(node, ast.Return | ast.Yield | ast.YieldFrom):
            if func is not None and node.value is not None:
                self.returns[id(func)].append(
                    (node.value, not isinstance(node, ast.Return),
                     isinstance(node, ast.YieldFrom)))
            if isinstance(node, ast.Yield | ast.YieldFrom) and func is not None:
                self.generators.add(id(func))
        elif isinstance(node, ast.Call):
            call = _Call(node, scope, (*self._prefix, self._count))
            self.calls.append(call)
            fn = node.func
            key = fn.id if isinstance(fn, ast.Name) else \
                fn.attr if isinstance(fn, ast.Attribute) else None
            if key is not None:
                self.calls_by_name.setdefault(key, []).append(call)
            if (isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name)
                    and fn.attr in ("append", "insert", "extend") and node.args):
                kind = "elems" if fn.attr == "extend" else "elem"
                scope.bind(fn.value.id, _Binding(kind, node.args[-1], scope, start=_pos(node),
                                                 end=_end(node)))
        elif isinstance(node, ast.Attribute | ast.Subscript):
            self.attrs.append((node, scope))

        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                        and t.value.id in ("self", "cls") and node.value is not None):
                    self._self_attrs.setdefault(t.attr, []).append(
                        ((*self._prefix, self._count), node.value, scope))

        add(_children(node))
        return kids

    def _bind_target(self, target: ast.AST, scope: _Scope, kind: str, value: ast.expr | None,
                     value_scope: _Scope, *, path: tuple[int, ...] = (),
                     loop: ast.AST | None = None, stmt: ast.AST) -> None:
        if isinstance(target, ast.Name):
            scope.bind(target.id, _Binding(kind, value, value_scope, path, loop=loop,
                                           start=_pos(stmt), end=_end(stmt),
                                           top=id(stmt) in scope.top_ids))
        elif isinstance(target, ast.Tuple | ast.List):
            starred = False
            for i, elt in enumerate(target.elts):
                if isinstance(elt, ast.Starred):
                    starred = True
                    self._bind_target(elt.value, scope, "opaque", None, value_scope,
                                      stmt=stmt)
                elif starred:
                    self._bind_target(elt, scope, "opaque", None, value_scope, stmt=stmt)
                else:
                    self._bind_target(elt, scope, kind, value, value_scope, path=(*path, i),
                                      loop=loop, stmt=stmt)

    # ------------------------------------------------------------------ qualified names

    def qual(self, expr: ast.expr, scope: _Scope, depth: int = 0) -> str | None:
        """The dotted name an expression refers to, through imports and simple aliases."""
        if depth > 8:
            return None
        if isinstance(expr, ast.Attribute):
            base = self.qual(expr.value, scope, depth + 1)
            return f"{base}.{expr.attr}" if base is not None else None
        if not isinstance(expr, ast.Name):
            return None
        found = scope.lookup(expr.id)
        if found is None:
            for mod in self.star_modules:
                if mod == "ctypes" and expr.id in _CTYPES_STAR:
                    return f"ctypes.{expr.id}"
            return expr.id
        _, bindings = found
        imports = {b.qual for b in bindings if b.kind == "import"}
        if len(imports) == 1:
            # ``try: import x`` / ``except ImportError: x = None`` is still ``x``.
            return imports.pop()
        if len(bindings) == 1:
            b = bindings[0]
            if (b.kind == "assign" and not b.path and
                    isinstance(b.node, ast.Attribute | ast.Name)):
                return self.qual(b.node, b.scope, depth + 1)
        return None

    def chosen(self, name: ast.Name, scope: _Scope) -> list[tuple[ast.Name | ast.Attribute,
                                                                 _Scope]]:
        """The names a name may hold when it was bound to a choice between them
        (``f = a if cond else b``, ``f = a or b``)."""
        found = scope.lookup(name.id)
        if found is None:
            return []
        arms: list[tuple[ast.Name | ast.Attribute, _Scope]] = []
        for b in found[1]:
            if b.kind != "assign" or b.path or not isinstance(b.node, ast.IfExp | ast.BoolOp):
                continue
            todo: list[ast.expr] = [b.node]
            while todo and len(arms) < 8:
                e = todo.pop()
                if isinstance(e, ast.IfExp):
                    todo += [e.orelse, e.body]
                elif isinstance(e, ast.BoolOp):
                    todo += reversed(e.values)
                elif isinstance(e, ast.Name | ast.Attribute) and not (
                        isinstance(e, ast.Name) and e.id == name.id):
                    arms.append((e, b.scope))
        return arms

    def local_defs(self, expr: ast.expr, scope: _Scope) -> list[_DefNode]:
        """Every definition of the function a name refers to in this module (a function
        defined in both branches of a ``try``/``except`` or an ``if`` has two)."""
        if isinstance(expr, ast.Name):
            found = scope.lookup(expr.id)
            if found is not None:
                return [b.node for b in found[1]
                        if b.kind == "def" and isinstance(b.node, _DefNode)]
        return []

    def local_def(self, expr: ast.expr, scope: _Scope) -> _DefNode | None:
        defs = self.local_defs(expr, scope)
        return defs[0] if defs else None

    def find_library_alias(self, name: str, scope: _Scope) -> bool:
        """Whether a name bound to several things (a parameter defaulting to
        ``ctypes.util.find_library``, an assignment of it) is ``find_library``."""
        found = scope.lookup(name)
        if found is None:
            return False
        for b in found[1]:
            value: tuple[ast.expr, _Scope] | None = None
            if b.kind == "param" and isinstance(b.node, _DefNode) and b.qual is not None:
                value = self.defaults.get(id(b.node), {}).get(b.qual)
            elif b.kind == "assign" and not b.path and isinstance(b.node, ast.expr):
                value = (b.node, b.scope)
            if value is not None and isinstance(value[0], ast.Name | ast.Attribute):
                q = self.qual(value[0], value[1])
                if q is not None and q != name and q.rsplit(".", 1)[-1] == "find_library":
                    return True
        return False

    # ------------------------------------------------------------------ evaluation

    def ev(self, expr: ast.AST | None, scope: _Scope, depth: int, hops: int,
           ctx: _Ctx) -> _Alts:
        if expr is None:
            return ()
        self.prog.step()
        if depth > _MAX_DEPTH:
            return _UNK
        d = depth + 1
        if isinstance(expr, ast.Constant):
            v = expr.value
            if isinstance(v, str):
                return (_s(v),)
            if isinstance(v, bytes):
                return (_s(v.decode("latin-1")),)
            if isinstance(v, int) and not isinstance(v, bool):
                return (_s(str(v)),)
            if v is None:
                return ()
            return _UNK
        if isinstance(expr, ast.JoinedStr):
            return _concat(*(self.ev(v, scope, d, hops, ctx) for v in expr.values))
        if isinstance(expr, ast.FormattedValue):
            return self.ev(expr.value, scope, d, hops, ctx) or _UNK
        if isinstance(expr, ast.Name):
            return self.ev_name(expr.id, scope, d, hops, ctx, use=expr)
        if isinstance(expr, ast.BinOp):
            return self.ev_binop(expr, scope, d, hops, ctx)
        if isinstance(expr, ast.IfExp):
            return _cap([*self.ev(expr.body, scope, d, hops, ctx),
                         *self.ev(expr.orelse, scope, d, hops, ctx)])
        if isinstance(expr, ast.BoolOp):
            operands = expr.values if isinstance(expr.op, ast.Or) else expr.values[-1:]
            out: list[_AV] = []
            for operand in operands:
                out.extend(self.ev(operand, scope, d, hops, ctx))
            return _cap(out)
        if isinstance(expr, ast.Tuple | ast.List | ast.Set):
            return (self.ev_seq(expr.elts, scope, d, hops, ctx),)
        if isinstance(expr, ast.Dict):
            keys: list[str | None] = []
            items: list[_Alts] = []
            for key, val in zip(expr.keys, expr.values, strict=True):
                if key is None:
                    continue
                keys.append(key.value if isinstance(key, ast.Constant)
                            and isinstance(key.value, str) else None)
                items.append(self.ev(val, scope, d, hops, ctx))
            return (_Seq(tuple(items), tuple(keys)),)
        if isinstance(expr, _CompNode):
            inner = self.scope_of.get(id(expr), scope)
            elt = expr.key if isinstance(expr, ast.DictComp) else expr.elt
            return (_Seq((self.ev(elt, inner, d, hops, ctx),)),)
        if isinstance(expr, ast.Attribute):
            return self.ev_attribute(expr, scope, d, hops, ctx)
        if isinstance(expr, ast.Subscript):
            return self.ev_subscript(expr, scope, d, hops, ctx)
        if isinstance(expr, ast.Call):
            return self.ev_call(expr, scope, d, hops, ctx)
        if isinstance(expr, ast.NamedExpr):
            return self.ev(expr.value, scope, d, hops, ctx)
        if isinstance(expr, ast.Await | ast.Starred):
            return self.ev(expr.value, scope, d, hops, ctx)
        return _UNK

    def ev_seq(self, elts: Sequence[ast.expr], scope: _Scope, d: int, hops: int,
               ctx: _Ctx) -> _Seq:
        items: list[_Alts] = []
        for e in elts:
            if isinstance(e, ast.Starred):
                for a in self.ev(e.value, scope, d, hops, ctx):
                    if isinstance(a, _Seq) and a.keys is None:
                        items.extend(a.items)
                    else:
                        items.append((_Unk(a.hints if not isinstance(a, _Seq) else ()),))
            else:
                items.append(self.ev(e, scope, d, hops, ctx))
            if len(items) >= _MAX_ALTS:
                break
        return _Seq(tuple(items))

    def ev_binop(self, expr: ast.BinOp, scope: _Scope, d: int, hops: int,
                 ctx: _Ctx) -> _Alts:
        left = self.ev(expr.left, scope, d, hops, ctx)
        if isinstance(expr.op, ast.Mod):
            out: list[_AV] = []
            right = self.ev(expr.right, scope, d, hops, ctx)
            is_tuple = isinstance(expr.right, ast.Tuple)
            for fmt in left:
                if isinstance(fmt, _Str):
                    out.extend(_percent_format(fmt, right, is_tuple))
                else:
                    out.append(_Unk())
            return _cap(out)
        right = self.ev(expr.right, scope, d, hops, ctx)
        if isinstance(expr.op, ast.Add):
            seqs = [a for a in left if isinstance(a, _Seq)]
            if seqs:
                rs = [a for a in right if isinstance(a, _Seq)]
                return _cap([_Seq(x.items + y.items) for x in seqs for y in rs] or seqs)
            return _concat(left, right)
        if isinstance(expr.op, ast.Div):
            return _path_join(left, right)
        return _UNK

    def ev_name(self, name: str, scope: _Scope, d: int, hops: int, ctx: _Ctx, *,
                use: ast.AST | None = None) -> _Alts:
        found = scope.lookup(name)
        if found is None:
            if name == "__file__":
                return (_s(self.file),)
            if name == "__name__" and self.prog.modules is not None:
                mod = self.prog.module_name(self.file)
                return (_s(mod),) if mod else _UNK
            return _UNK
        def_scope, bindings = found
        loop = _innermost_loop(bindings, use)
        if loop is not None:
            bindings = [b for b in bindings if b.loop is loop]
        elif use is not None and def_scope is scope and len(bindings) > 1:
            bindings = _reaching(bindings, scope, use)
        key = (id(def_scope), name, tuple(id(b) for b in bindings), ctx)
        prog = self.prog
        hit = prog.memo.get(key)
        if hit is not None:
            prog.touched.update(hit[1])
            return hit[0]
        if key in prog.in_progress:
            return ()
        prog.in_progress.add(key)
        saved, prog.touched = prog.touched, {}
        try:
            result = self._ev_bindings(bindings, d, hops, ctx)
        finally:
            prog.in_progress.discard(key)
            touched, prog.touched = prog.touched, saved
            saved.update(touched)
        if hops == 0:
            prog.memo[key] = (result, touched)
        return result

    def _ev_bindings(self, bindings: list[_Binding], d: int, hops: int,
                     ctx: _Ctx) -> _Alts:
        base: list[_AV] = []
        extra: list[_AV] = []
        augs: list[_Binding] = []
        for b in bindings:
            if b.kind == "assign":
                base.extend(_select(self.ev(b.node, b.scope, d, hops, ctx), b.path))
            elif b.kind == "enter":
                entered = self.ev_enter(b.node, b.scope, d, ctx)
                if entered is not None:
                    base.extend(_select(entered, b.path))
                    continue
                # a generator's yields come as a sequence: a @contextmanager gives its yield
                for a in _select(self.ev(b.node, b.scope, d, hops, ctx), b.path):
                    base.extend(_elements((a,)) if isinstance(a, _Seq) and a.keys is None
                                else (a,))
            elif b.kind == "iter":
                elems = _elements(self.ev(b.node, b.scope, d, hops, ctx))
                base.extend(_select(elems, b.path) if b.path else elems)
            elif b.kind == "param":
                base.extend(self.ev_param(b, d, hops, ctx))
            elif b.kind == "elem":
                extra.append(_Seq((self.ev(b.node, b.scope, d, hops, ctx),)))
            elif b.kind == "elems":
                extra.extend(self.ev(b.node, b.scope, d, hops, ctx))
            elif b.kind == "aug":
                augs.append(b)
            else:
                base.append(_Unk())
        if extra:
            items: list[_Alts] = []
            for e in extra:
                if isinstance(e, _Seq):
                    items.extend(e.items)
            seqs = [a for a in base if isinstance(a, _Seq)]
            base = [a for a in base if not isinstance(a, _Seq)]
            base.extend(_Seq(s.items + tuple(items)) for s in seqs or [_Seq(())])
        for b in augs:
            assert isinstance(b.node, ast.AugAssign)
            if isinstance(b.node.op, ast.Add):
                rhs = self.ev(b.node.value, b.scope, d, hops, ctx)
                for a in list(base):
                    if isinstance(a, _Seq):
                        for r in rhs:
                            if isinstance(r, _Seq):
                                base.append(_Seq(a.items + r.items))
                    else:
                        base.extend(_concat((a,), rhs))
        return _cap(base)

    def ev_enter(self, node: ast.AST | None, scope: _Scope, d: int,
                 ctx: _Ctx) -> _Alts | None:
        """What ``with Class(...) as v`` binds when ``Class`` is a class of this module with
        an ``__enter__``: the values ``__enter__`` returns (None for anything else)."""
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            return None
        cls = self.class_of(node.func, scope)
        inner = self.class_scope.get(id(cls)) if cls is not None else None
        enters = [b.node for b in inner.bindings.get("__enter__", ())
                  if b.kind == "def" and isinstance(b.node, _DefNode)] if inner else []
        if not enters:
            return None
        caller = self.prog.caller(self, node, scope, 1, "__enter__")
        out: list[_AV] = []
        for fdef in enters:
            out.extend(self.ev_function(fdef, d, ctx, caller))
        return _cap(out)

    def ev_param(self, b: _Binding, d: int, hops: int, ctx: _Ctx) -> _Alts:
        """A parameter: the argument of the call its function was entered from (the
        context), or else every call's argument (and its default)."""
        func = b.node
        pname = b.qual
        assert isinstance(func, _FuncNode)
        assert pname is not None
        default = self.defaults.get(id(func), {}).get(pname)
        for i in range(len(ctx) - 1, -1, -1):
            if ctx[i][0] != id(func) or isinstance(func, ast.Lambda):
                continue
            caller = ctx[i][1]
            arg = _argument(func, pname, caller)
            if arg is not None:
                return _cap([_mark_indirect(a) for a in
                             caller.an.ev(arg, caller.scope, d, hops, ctx[:i])])
            if default is not None:
                return self.ev(default[0], default[1], d, hops, ctx[:i])
            return (_Unk((f"parameter {pname!r} of {func.name}()",)),)
        out: list[_AV] = []
        if default is not None:
            out.extend(self.ev(default[0], default[1], d, hops, ctx))
        if isinstance(func, ast.Lambda):
            return _cap(out) if out else (_Unk((f"parameter {pname!r}",)),)
        self.prog.touched[id(func)] = (self, func)
        if hops >= _MAX_HOPS:
            return _cap(out) if out else (_Unk((f"parameter {pname!r}",)),)
        found_call = False
        for caller in self.prog.callers(self, func):
            arg = _argument(func, pname, caller)
            if arg is None:
                continue
            found_call = True
            for a in caller.an.ev(arg, caller.scope, d, hops + 1, ctx):
                out.append(_mark_indirect(a))
        if not out:
            hint = f"parameter {pname!r} of {func.name}()" + ("" if found_call else
                                                               " (no call site here)")
            return (_Unk((hint,)),)
        return _cap(out)

    def ev_attribute(self, expr: ast.Attribute, scope: _Scope, d: int, hops: int,
                     ctx: _Ctx) -> _Alts:
        if expr.attr == "__file__":
            q = self.module_file_of(expr, scope)
            if q is not None:
                # A module file: a package's __init__.py, a .py or a compiled extension.
                base = self.module_dir(q)
                return (_Str((posixpath.dirname(base) + "/" + posixpath.basename(base), None)),)
            return _UNK
        if expr.attr == "parent" and self.module_file_of(expr.value, scope) is not None:
            return (_s(self.module_dir(self.module_file_of(expr.value, scope) or "")),)
        if expr.attr == "parent":
            return _cap([_dirname(a) for a in self.ev(expr.value, scope, d, hops, ctx)])
        if expr.attr == "name":
            return _cap([_basename(a) for a in self.ev(expr.value, scope, d, hops, ctx)])
        if isinstance(expr.value, ast.Name) and expr.value.id in ("self", "cls"):
            out: list[_AV] = []
            for value, s in self.self_attr(expr.attr)[:16]:
                out.extend(self.ev(value, s, d, hops, ctx))
            # and a class attribute (``_search = {...}`` in a class body of the module)
            for inner in list(self.class_scope.values())[:64]:
                out.extend(self._ev_bindings(
                    [b for b in inner.bindings.get(expr.attr, ()) if b.kind == "assign"],
                    d, hops, ctx))
            return _cap(out) if out else _UNK
        if isinstance(expr.value, ast.Name):  # ``Class.attr`` of a class of the module
            found = scope.lookup(expr.value.id)
            classes = [self.class_scope[id(b.node)] for b in found[1]
                       if b.kind == "class" and id(b.node) in self.class_scope] if found else []
            if classes:
                attrs = [b for c in classes for b in c.bindings.get(expr.attr, ())
                         if b.kind == "assign"]
                return self._ev_bindings(attrs, d, hops, ctx) if attrs else _UNK
        q = self.qual(expr, scope)
        if q in ("os.sep", "os.path.sep", "posixpath.sep"):
            return (_s("/"),)
        if q in ("os.curdir", "os.path.curdir"):
            return (_s("."),)
        if q is not None and q.endswith("machinery.EXTENSION_SUFFIXES"):
            return (_Seq(((_Str((".", None), hints=(_EXTENSION_SUFFIX_HINT,)),),)),)
        return _UNK

    def ev_subscript(self, expr: ast.Subscript, scope: _Scope, d: int, hops: int,
                     ctx: _Ctx) -> _Alts:
        q = self.qual(expr.value, scope)
        if q == "os.environ":
            return (_Unk((self.env_hint(expr.slice, scope, d, hops, ctx),)),)
        base = self.ev(expr.value, scope, d, hops, ctx)
        sl = expr.slice
        idx = _int_const(sl)
        if idx is not None:
            out: list[_AV] = []
            for a in base:
                if isinstance(a, _Seq) and a.keys is None and -len(a.items) <= idx < len(a.items):
                    out.extend(a.items[idx])
                else:
                    out.append(_Unk())
            return _cap(out)
        if isinstance(sl, ast.Slice):
            return _slice(base, sl)
        key = sl.value if isinstance(sl, ast.Constant) and isinstance(sl.value, str) else None
        return _dict_get(base, key)

    def env_hint(self, key_expr: ast.expr | None, scope: _Scope, d: int, hops: int,
                 ctx: _Ctx) -> str:
        keys = [a for a in self.ev(key_expr, scope, d, hops, ctx)
                if isinstance(a, _Str) and a.known]
        if len(keys) == 1:
            return f"overridable by ${keys[0].text()}"
        return "overridable by an environment variable"

    def module_dir(self, qual: str) -> str:
        """The directory of package ``qual`` (what ``dirname(qual.__file__)`` gives)."""
        return posixpath.dirname(self.module_file(qual))

    def module_file_of(self, expr: ast.expr, scope: _Scope) -> str | None:
        """For ``M.__file__`` with ``M`` an imported module: the module's dotted path."""
        if isinstance(expr, ast.Attribute) and expr.attr == "__file__" and \
                not (isinstance(expr.value, ast.Name) and expr.value.id == "__file__"):
            q = self.qual(expr.value, scope)
            if q is not None and (not isinstance(expr.value, ast.Name)
                                  or self._is_module_name(expr.value.id, scope)):
                return q
        return None

    def _is_module_name(self, name: str, scope: _Scope) -> bool:
        found = scope.lookup(name)
        return found is None or any(b.kind == "import" for b in found[1])

    def module_file(self, qual: str) -> str:
        """Where ``import qual`` would find a package's ``__init__.py``, relative to the
        same base as ``self.file``.  Relative imports are exact; absolute ones assume the
        import root is the enclosing site-packages, or else this file's own directory."""
        here = posixpath.dirname(self.file)
        level = len(qual) - len(qual.lstrip("."))
        rest = [p for p in qual.lstrip(".").split(".") if p]
        if level:
            base = here
            for _ in range(level - 1):
                base = posixpath.dirname(base)
        else:
            parts = here.split("/")
            root = self.prog.root_of(self.file) if self.prog.modules is not None else None
            base = root.rstrip("/") if root else here
            for i in range(len(parts) - 1, -1, -1):
                if parts[i] in _SITE_DIRS:
                    base = "/".join(parts[:i + 1])
                    break
        return posixpath.join(base or ".", *rest, "__init__.py")

    def ev_call(self, expr: ast.Call, scope: _Scope, d: int, hops: int,
                ctx: _Ctx) -> _Alts:
        fn = expr.func
        q = self.qual(fn, scope)
        args = expr.args

        def arg(i: int, name: str) -> ast.expr | None:
            for kw in expr.keywords:
                if kw.arg == name:
                    return kw.value
            return args[i] if i < len(args) and not isinstance(args[i], ast.Starred) else None

        defs = self.prog.callee_defs(self, fn, scope, q)
        offset = 0
        if not defs and isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name):
            # ``self.m(...)``, ``cls.m(...)``, ``Class.m(...)``: a method of the module
            if fn.value.id in ("self", "cls"):
                defs = [(self, f) for c in list(self.class_scope.values())[:64]
                        for b in c.bindings.get(fn.attr, ())
                        if b.kind == "def" and isinstance(f := b.node, _DefNode)]
            elif (cls := self.class_of(fn.value, scope)) is not None:
                defs = self.methods_of_class(cls, fn.attr)
            if defs:
                offset = _bound_params(defs[0][1])
        if defs:
            caller = self.prog.caller(self, expr, scope, offset, defs[0][1].name)
            out: list[_AV] = []
            for an, fdef in defs:
                out.extend(an.ev_function(fdef, d, ctx, caller))
            return _cap(out) or _UNK
        if q is None and isinstance(fn, ast.Name) and self.find_library_alias(fn.id, scope):
            q = "find_library"
        if q is not None:
            last = q.rsplit(".", 1)[-1]
            if last == "find_library":
                self.prog.consumed.add(id(expr))
                return _cap([_as_stem(a) for a in self.ev(arg(0, "name"), scope, d, hops, ctx)])
            if q in ("os.path.join", "posixpath.join", "ntpath.join", "path.join") or (
                    q.endswith(".path.join") and q.startswith("os")):
                return _path_join(*(self.ev_join_operand(a, scope, d, hops, ctx)
                                    for a in args))
            if q in ("os.path.dirname", "posixpath.dirname", "path.dirname"):
                target = arg(0, "p")
                mod = self.module_file_of(target, scope) if target is not None else None
                if mod is not None:  # dirname(pkg.__file__): the package directory
                    return (_s(self.module_dir(mod)),)
                return _cap([_dirname(a) for a in self.ev(target, scope, d, hops, ctx)])
            if q in ("os.path.basename", "posixpath.basename", "path.basename"):
                return _cap([_basename(a) for a in self.ev(arg(0, "p"), scope, d, hops, ctx)])
            if q in ("os.path.split", "posixpath.split", "path.split"):
                return _cap([_Seq(((_dirname(a),), (_basename(a),)))
                             for a in self.ev(arg(0, "p"), scope, d, hops, ctx)])
            if q in _IDENTITY_CALLS:
                return self.ev(arg(0, "path"), scope, d, hops, ctx) or _UNK
            if last == "as_file" and q.split(".", 1)[0] in ("importlib", "importlib_resources",
                                                           "resources"):
                return self.ev(arg(0, "path"), scope, d, hops, ctx) or _UNK
            if q in ("importlib.resources.path", "importlib_resources.path",
                     "resources.path") and len(args) >= 2:
                names = self.ev(args[0], scope, d, hops, ctx)
                where = _cap([_s(self.module_dir(a.text()))
                              if isinstance(a, _Str) and a.known else _Unk() for a in names])
                return _path_join(where, self.ev(args[1], scope, d, hops, ctx))
            if q in ("list", "tuple") and len(args) == 1:
                return _cap([a if isinstance(a, _Seq) else _Unk(_hints_of((a,)))
                             for a in self.ev(args[0], scope, d, hops, ctx)]) or _UNK
            if (last in _PATH_CLASSES and (q.startswith("pathlib.") or q == last)
                    and len(args) == 1 and self.module_file_of(args[0], scope) is not None):
                # Path(pkg.__file__): keep the module marker for a following .parent
                return self.ev(args[0], scope, d, hops, ctx)
            if last in _PATH_CLASSES and (q.startswith("pathlib.") or q == last):
                if not args:
                    return (_s("."),)
                return _path_join(*(self.ev(a, scope, d, hops, ctx) for a in args))
            if q in ("os.environ.get", "os.getenv", "os.environ.setdefault", "environ.get",
                     "getenv"):
                return self.ev_env(expr, scope, d, hops, ctx)
            if q in ("glob.glob", "glob.iglob", "glob"):
                pats = [_as_path_part(a)
                        for a in self.ev(arg(0, "pathname"), scope, d, hops, ctx)]
                return (_Seq((_cap(pats),)),)
            if q in ("importlib.resources.files", "importlib_resources.files",
                     "resources.files") and args:
                names = self.ev(args[0], scope, d, hops, ctx)
                return _cap([_s(self.module_dir(a.text()))
                             if isinstance(a, _Str) and a.known else _Unk() for a in names])
        if isinstance(fn, ast.Attribute):
            return self.ev_method(expr, scope, d, hops, ctx)
        return _UNK

    def ev_join_operand(self, a: ast.expr, scope: _Scope, d: int, hops: int,
                        ctx: _Ctx) -> _Alts:
        """An argument of ``os.path.join``; ``*parts`` joins the parts of a sequence."""
        if not isinstance(a, ast.Starred):
            return self.ev(a, scope, d, hops, ctx)
        out: list[_AV] = []
        for v in self.ev(a.value, scope, d, hops, ctx):
            if isinstance(v, _Seq) and v.keys is None and len(v.items) <= 32:
                out.extend(_path_join(*v.items) if v.items else (_s(""),))
            else:
                out.append(_Unk(_hints_of((v,))))
        return _cap(out)

    def ev_env(self, expr: ast.Call, scope: _Scope, d: int, hops: int, ctx: _Ctx) -> _Alts:
        key = expr.args[0] if expr.args else None
        hint = self.env_hint(key, scope, d, hops, ctx)
        default: ast.expr | None = expr.args[1] if len(expr.args) > 1 else None
        for kw in expr.keywords:
            if kw.arg in ("default", "value"):
                default = kw.value
        out: list[_AV] = [_Unk((hint,))]
        for a in self.ev(default, scope, d, hops, ctx):
            if isinstance(a, _Str):
                out.append(_Str(a.parts, a.stem, _merge_hints(a.hints, (hint,)), a.indirect))
            else:
                out.append(a)
        return _cap(out)

    def ev_method(self, expr: ast.Call, scope: _Scope, d: int, hops: int, ctx: _Ctx) -> _Alts:
        fn = expr.func
        assert isinstance(fn, ast.Attribute)
        recv = self.ev(fn.value, scope, d, hops, ctx)
        m = fn.attr
        if m in _IDENTITY_METHODS:
            return recv or _UNK
        if m == "joinpath":
            return _path_join(recv, *(self.ev(a, scope, d, hops, ctx) for a in expr.args))
        if m == "with_name" and expr.args:
            return _path_join(_cap([_dirname(a) for a in recv]),
                              self.ev(expr.args[0], scope, d, hops, ctx))
        if m == "format":
            positional = [self.ev(a, scope, d, hops, ctx) for a in expr.args]
            named = {kw.arg: self.ev(kw.value, scope, d, hops, ctx)
                     for kw in expr.keywords if kw.arg is not None}
            out: list[_AV] = []
            for a in recv:
                if isinstance(a, _Str):
                    out.extend(_brace_format(a, positional, named))
                else:
                    out.append(_Unk())
            return _cap(out)
        if m == "get" and expr.args:
            key = expr.args[0]
            k = key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) \
                else None
            out = list(_dict_get(recv, k))
            if len(expr.args) > 1:
                out.extend(self.ev(expr.args[1], scope, d, hops, ctx))
            return _cap(out)
        if m == "values":
            return (_Seq((_values(recv),)),)
        if m == "keys":
            return (_Seq((_elements(recv),)),)
        if m in _STR_METHODS:
            consts = [c.value for c in expr.args if isinstance(c, ast.Constant)]
            if len(consts) == len(expr.args) and not expr.keywords:
                return _str_method(recv, m, consts)
        if m == "join" and len(expr.args) == 1 and not expr.keywords:
            return _str_join(recv, self.ev(expr.args[0], scope, d, hops, ctx))
        return (_Unk(_hints_of(recv)),)

    def ev_function(self, fdef: _DefNode, d: int, ctx: _Ctx, caller: _Caller) -> _Alts:
        """The values a call of a function can produce (its returns, or a sequence of its
        yields for a generator), with its parameters bound to the call's arguments while
        the context has room for one more frame."""
        fctx: _Ctx = (*ctx, (id(fdef), caller)) if len(ctx) < _MAX_FRAMES else ctx
        key = (id(fdef), fctx)
        prog = self.prog
        hit = prog.func_memo.get(key)
        if hit is not None:
            prog.touched.update(hit[1])
            return hit[0]
        prog.func_memo[key] = ((), {})  # cycle guard
        self.body(fdef)
        inner = self.func_scope[id(fdef)]
        rets = self.returns.get(id(fdef), [])
        generator = id(fdef) in self.generators
        out: list[_AV] = []
        items: list[_Alts] = []
        saved, prog.touched = prog.touched, {}
        try:
            for value, is_yield, is_from in rets:
                vals = self.ev(value, inner, d, 0, fctx)
                if generator and is_yield:
                    if is_from:
                        items.extend(it for a in vals if isinstance(a, _Seq) for it in a.items)
                    elif vals:
                        items.append(vals)
                elif not generator:
                    out.extend(vals)
        finally:
            touched, prog.touched = prog.touched, saved
            saved.update(touched)
        result = (_Seq(tuple(items)),) if generator else (_cap(out) or _UNK)
        prog.func_memo[key] = (result, touched)
        return result


_STR_METHODS = frozenset({"split", "rsplit", "replace", "lower", "upper", "rstrip", "lstrip",
                          "partition", "rpartition"})


def _str_method(recv: _Alts, m: str, args: Sequence[object]) -> _Alts:
    """``str`` methods of known strings (``name.split('.')``); unknown otherwise."""
    out: list[_AV] = []
    for a in recv:
        if not isinstance(a, _Str) or a.stem or not a.known:
            out.append(_Unk(_hints_of((a,))))
            continue
        text = a.text()
        try:
            if m in ("partition", "rpartition"):
                if len(args) != 1 or not isinstance(args[0], str) or not args[0]:
                    raise ValueError
                parted = text.partition(args[0]) if m == "partition" else \
                    text.rpartition(args[0])
                out.append(_Seq(tuple((_Str((p,), hints=a.hints, indirect=a.indirect),)
                                      for p in parted)))
                continue
            if m in ("split", "rsplit"):
                if not all(x is None or isinstance(x, str | int) for x in args) or \
                        (args and args[0] == ""):
                    raise ValueError
                sep = args[0] if args and isinstance(args[0], str) else None
                n = args[1] if len(args) > 1 and isinstance(args[1], int) else -1
                pieces = text.split(sep, n) if m == "split" else text.rsplit(sep, n)
                out.append(_Seq(tuple((_Str((p,), hints=a.hints, indirect=a.indirect),)
                                      for p in pieces[:_MAX_ALTS])))
                continue
            if m == "replace":
                if len(args) < 2 or not isinstance(args[0], str) or \
                        not isinstance(args[1], str):
                    raise ValueError
                text = text.replace(args[0], args[1])
            elif m in ("lower", "upper"):
                text = text.lower() if m == "lower" else text.upper()
            else:
                chars = args[0] if args and isinstance(args[0], str) else None
                text = text.rstrip(chars) if m == "rstrip" else text.lstrip(chars)
        except (ValueError, TypeError):
            out.append(_Unk(a.hints))
            continue
        out.append(_Str((text,), hints=a.hints, indirect=a.indirect))
    return _cap(out) or _UNK


def _str_join(recv: _Alts, arg: _Alts) -> _Alts:
    """``sep.join(seq)`` for a known separator and a sequence of known length."""
    out: list[_AV] = []
    for sep in recv:
        for seq in arg:
            if not (isinstance(sep, _Str) and sep.known and not sep.stem) or \
                    not (isinstance(seq, _Seq) and seq.keys is None and len(seq.items) <= 32):
                out.append(_Unk())
                continue
            pieces: list[_Alts] = []
            for i, item in enumerate(seq.items):
                if i:
                    pieces.append((sep,))
                pieces.append(item)
            out.extend(_concat(*pieces) if pieces else (_s(""),))
    return _cap(out) or _UNK


def _int_const(node: ast.expr) -> int | None:
    """An integer literal, negative ones included (``-1`` is a unary minus in the tree)."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1, node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and \
            not isinstance(node.value, bool):
        return sign * node.value
    return None


def _slice(base: _Alts, sl: ast.Slice) -> _Alts:
    """``x[a:b]`` with constant bounds, of a tuple/list or a known string."""
    bounds: list[int | None] = []
    for bound in (sl.lower, sl.upper):
        value = _int_const(bound) if bound is not None else None
        if bound is not None and value is None:
            return _UNK
        bounds.append(value)
    if sl.step is not None:
        return _UNK
    lo, hi = bounds
    out: list[_AV] = []
    for a in base:
        if isinstance(a, _Seq) and a.keys is None:
            out.append(_Seq(a.items[lo:hi]))
        elif isinstance(a, _Str) and a.known and not a.stem:
            out.append(_Str((a.text()[lo:hi],), hints=a.hints, indirect=a.indirect))
        else:
            out.append(_Unk(_hints_of((a,))))
    return _cap(out)


def _class_level(func: _DefNode) -> bool:
    """A @staticmethod or @classmethod: called through its class, from anywhere (a plain
    method is called through an instance, whose class another module's code does not
    show)."""
    return any((isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod")) or (
        isinstance(d, ast.Attribute) and d.attr in ("staticmethod", "classmethod"))
        for d in func.decorator_list)


def _bound_params(func: _DefNode) -> int:
    """Leading parameters a method call through an attribute does not pass: none for a
    ``@staticmethod``, else one (``self``, or ``cls`` of a ``@classmethod``)."""
    for d in func.decorator_list:
        if (isinstance(d, ast.Name) and d.id == "staticmethod") or (
                isinstance(d, ast.Attribute) and d.attr == "staticmethod"):
            return 0
    return 1


def _argument(func: _DefNode, pname: str, caller: _Caller) -> ast.expr | None:
    """The argument a call passes for a parameter (None: not passed, or not knowable);
    for ``*args``, a tuple of the call's extra positional arguments."""
    node = caller.node
    for kw in node.keywords:
        if kw.arg == pname:
            return kw.value
    positional = [a.arg for a in (*func.args.posonlyargs, *func.args.args)]
    vararg = func.args.vararg
    if vararg is not None and pname == vararg.arg:
        made = caller.an.prog.varargs
        extra = made.get((id(node), id(func)))
        if extra is None:
            first = max(len(positional) - caller.offset, 0)
            extra = made[id(node), id(func)] = ast.Tuple(elts=node.args[first:],
                                                         ctx=ast.Load())
        return extra
    if pname not in positional:
        return None
    i = positional.index(pname) - caller.offset
    if 0 <= i < len(node.args) and not any(isinstance(a, ast.Starred)
                                           for a in node.args[:i + 1]):
        return node.args[i]
    return None


def _reaching(bindings: list[_Binding], scope: _Scope, use: ast.AST) -> list[_Binding]:
    """The bindings of a name that can reach a use in the same scope, as far as straight-line
    code tells: a statement directly in the scope's body runs once, in order, so one that
    ends after the use cannot reach it, and the last such assignment before the use hides
    every binding made before it in that scope."""
    at = _pos(use)
    if at == (0, 0):
        return bindings
    cand = [b for b in bindings
            if not (b.top and b.scope is scope and b.kind in _SEQUENTIAL and b.end > at)]
    killer: _Binding | None = None
    for b in cand:
        if b.top and b.scope is scope and b.kind == "assign" and b.end <= at and (
                killer is None or b.start > killer.start):
            killer = b
    if killer is not None:
        start = killer.start
        cand = [b for b in cand if b.start >= start or b.scope is not scope]
    return cand or bindings


#: exceptions whose handler catches a failed load (ctypes and cffi raise OSError)
_LOAD_ERRORS = frozenset({"OSError", "EnvironmentError", "IOError", "Exception",
                          "BaseException"})


def _catches_load_error(t: ast.expr | None) -> str | None:
    """The name under which a handler of type ``t`` catches OSError, or None."""
    if t is None:
        return "except"
    if isinstance(t, ast.Tuple):
        return next((c for c in map(_catches_load_error, t.elts) if c is not None), None)
    name = t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else ""
    if (name == "error" and isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
            and t.value.id in ("os", "socket", "select")):  # OSError's old names
        return f"except {t.value.id}.error"
    return f"except {name}" if name in _LOAD_ERRORS else None


def _own_nodes(body: Sequence[ast.AST]) -> Iterator[ast.AST]:
    """The nodes of ``body`` that run with it: not those of functions defined there."""
    todo = list(body)
    while todo:
        n = todo.pop()
        yield n
        if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            todo.extend(ast.iter_child_nodes(n))


#: calls that end the program: a handler making them has not handled the failure
_EXITS = frozenset({"exit", "_exit", "quit", "abort"})


def _gives_up(handler: Sequence[ast.AST]) -> bool:
    """Whether a handler passes the failure on instead of going on without the library:
    it raises again (an ImportError saying what is missing), ends the program
    (``sys.exit``, ``os._exit``, ``assert False``), or returns from the function (the
    caller gets None and decides: python-magic-style helpers tried in a loop, or
    ``if lib is None: raise``)."""
    for x in _own_nodes(handler):
        if isinstance(x, ast.Raise | ast.Return | ast.Assert):
            return True
        if isinstance(x, ast.Call):
            f = x.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(
                f, ast.Attribute) else ""
            if name in _EXITS:
                return True
    return False


def _guards(tree: ast.AST) -> list[Guard[_Pos]]:
    """The spans of code whose failure something handles, the spans of the functions
    defined inside them (which run elsewhere), and what handles it.

    A ``try`` inside a loop is left out: ``for name in candidates: try: return CDLL(name)
    except OSError: pass`` tries the next name, and what follows the loop (python-magic's
    ``raise ImportError``) decides whether the library is needed; so is one whose handler
    gives up (see :func:`_gives_up`).  What the code does later with the ``None`` it
    keeps (``lib.init()`` at import) is not followed: such a load is taken as optional."""
    out: list[Guard[_Pos]] = []
    todo: list[tuple[ast.AST, bool]] = [(tree, False)]
    while todo:
        n, in_loop = todo.pop()
        body: list[ast.stmt] = []
        what = None
        if isinstance(n, ast.Try | ast.TryStar) and not in_loop:
            # the handler that runs for an OSError: the first whose type catches it
            runs = next(((h, c) for h in n.handlers
                         if (c := _catches_load_error(h.type)) is not None), None)
            if runs is not None and not _gives_up(runs[0].body):
                body, what = n.body, f"try/{runs[1]}"
        elif isinstance(n, ast.With | ast.AsyncWith) and not in_loop:
            for item in n.items:
                e = item.context_expr
                f = e.func if isinstance(e, ast.Call) else None
                fname = f.id if isinstance(f, ast.Name) else (
                    f.attr if isinstance(f, ast.Attribute) else "")
                if fname == "suppress" and isinstance(e, ast.Call) and any(
                        _catches_load_error(a) not in (None, "except") for a in e.args):
                    body, what = n.body, "contextlib.suppress"
        first = _span(body[0]) if body else None
        last = _span(body[-1]) if body else None
        if what is not None and first is not None and last is not None:
            holes = [sp for x in _own_nodes(body)
                     if isinstance(x, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                     and (sp := _span(x)) is not None]
            out.append((first[0], last[1], holes, what))
        # a function's body runs where it is called: a loop around its definition is not
        # a loop around its code
        inner = (False if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                 else in_loop or isinstance(n, ast.For | ast.AsyncFor | ast.While))
        todo.extend((c, inner) for c in ast.iter_child_nodes(n))
    return out


def _span(node: ast.AST) -> tuple[tuple[int, int], tuple[int, int]] | None:
    end_line = getattr(node, "end_lineno", None)
    end_col = getattr(node, "end_col_offset", None)
    if end_line is None or end_col is None:
        return None
    return (getattr(node, "lineno", 0), getattr(node, "col_offset", 0)), (end_line, end_col)


def _innermost_loop(bindings: list[_Binding], use: ast.AST | None) -> ast.AST | None:
    """The innermost loop that binds the name and contains its use: inside a loop body the
    loop variable means that loop's elements, not those of every loop reusing the name."""
    if use is None:
        return None
    at = _span(use)
    if at is None:
        return None
    best: ast.AST | None = None
    best_span: tuple[tuple[int, int], tuple[int, int]] | None = None
    for b in bindings:
        if b.kind != "iter" or b.loop is None:
            continue
        span = _span(b.loop)
        if span is None or not (span[0] <= at[0] and at[1] <= span[1]):
            continue
        if best_span is None or span[0] >= best_span[0]:
            best, best_span = b.loop, span
    return best


def _arms(node: ast.AST) -> list[tuple[_Pos, _Pos]]:
    """The spans of the arms of a branch (see ``_Analysis.alternatives``); none for other
    nodes."""

    def block(nodes: Sequence[ast.AST]) -> tuple[_Pos, _Pos] | None:
        first, last = _span(nodes[0]) if nodes else None, _span(nodes[-1]) if nodes else None
        return (first[0], last[1]) if first is not None and last is not None else None

    groups: list[Sequence[ast.AST]] = []
    if isinstance(node, ast.If | ast.IfExp):
        body = node.body if isinstance(node.body, list) else [node.body]
        orelse = node.orelse if isinstance(node.orelse, list) else [node.orelse]
        groups = [body, orelse]
    elif isinstance(node, ast.Try | ast.TryStar):
        groups = [[*node.body, *node.orelse], *([h] for h in node.handlers)]
    elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        groups = [[v] for v in node.values]
    return [a for a in (block(g) for g in groups) if a is not None]


def _may_hold(node: ast.AST, span: tuple[_Pos, _Pos]) -> bool:
    """Whether ``node``'s subtree can hold a node with this span (a node without a span,
    or whose span holds it; a definition's decorators come before its own position)."""
    own = _span(node)
    if own is None:
        return True
    start = own[0]
    decorators = getattr(node, "decorator_list", None)
    if decorators:
        first = _span(decorators[0])
        if first is not None and first[0] < start:
            start = first[0]
    return start <= span[0] and span[1] <= own[1]


def _path_to(tree: ast.AST, target: ast.AST) -> list[ast.AST] | None:
    """The nodes from ``tree`` down to ``target`` (both included), or None."""
    span = _span(target)
    if span is None:
        return None
    path: list[ast.AST] = [tree]
    todo: list[Iterator[ast.AST]] = [ast.iter_child_nodes(tree)]
    while todo:
        child = next(todo[-1], None)
        if child is None:
            todo.pop()
            path.pop()
        elif child is target:
            path.append(child)
            return path
        elif not isinstance(child, _LEAVES) and _may_hold(child, span):
            path.append(child)
            todo.append(ast.iter_child_nodes(child))
    return None


def _locate(tree: ast.AST, node: ast.AST) -> tuple[dict[int, int], int | None]:
    """The arm of every branch on the way to ``node`` (id of the branch -> index of the
    arm), and the function returning it when it is a call in a ``return`` value
    (``return load(x)``, ``return load(x), True``; not the returns of nested functions)."""
    path = _path_to(tree, node)
    if path is None:
        return {}, None
    span = _span(node)
    arms: dict[int, int] = {}
    for anc in path[:-1]:
        for i, (start, end) in enumerate(_arms(anc)):
            if span is not None and start <= span[0] and span[1] <= end:
                arms[id(anc)] = i
                break
    returned: int | None = None
    if isinstance(node, ast.Call):
        for k in range(len(path) - 2, -1, -1):
            if isinstance(path[k], ast.Return):
                owner = next((f for f in reversed(path[:k]) if isinstance(f, _DefNode)), None)
                returned = id(owner) if owner is not None else None
                break
            if isinstance(path[k], ast.stmt):
                break  # a statement nearer than any return: not returned
    return arms, returned


def _mark_indirect(a: _AV) -> _AV:
    if isinstance(a, _Str):
        return _Str(a.parts, a.stem, a.hints, True)
    return a


def _as_stem(a: _AV) -> _AV:
    if isinstance(a, _Str) and not a.stem:
        return _Str(a.parts, True, a.hints, a.indirect)
    return _Unk(a.hints if not isinstance(a, _Seq) else ())


def _is_find_library(an: _Analysis, fn: ast.expr, scope: _Scope) -> str | None:
    """The qualified name when a callee is ``find_library`` (not a function of the tree)."""
    if isinstance(fn, ast.Attribute):
        if fn.attr != "find_library":
            return None
    elif not isinstance(fn, ast.Name):
        return None
    q = an.qual(fn, scope)
    if q is None:
        if isinstance(fn, ast.Name) and an.find_library_alias(fn.id, scope):
            return "find_library"
        return None
    if q.rsplit(".", 1)[-1] != "find_library" or an.prog.callee_defs(an, fn, scope, q):
        return None
    return q


# --------------------------------------------------------------------------- loader matching

def _match_loader(an: _Analysis, call: _Call) -> tuple[_Loader, list[ast.expr | None]] | None:
    """Which loader API a call is, and the argument expressions that name the library.

    A call of a function of the tree (found through the modules) is not a loader here,
    even when its name says so: the loader is inside it, where this call is one context.
    """
    m = _match_loader_name(an, call)
    if m is None or an.prog.modules is None:
        return m
    fn = call.node.func
    if an.prog.callee_defs(an, fn, call.scope, an.qual(fn, call.scope)):
        return None
    return m


def _match_loader_name(an: _Analysis, call: _Call,
                       ) -> tuple[_Loader, list[ast.expr | None]] | None:
    node, scope = call.node, call.scope
    fn = node.func
    if isinstance(fn, ast.Attribute):
        if fn.attr not in _LOADER_ATTRS:
            return None  # the last part of its name, whatever the receiver resolves to
    elif not isinstance(fn, ast.Name):
        return None

    def arg(i: int, name: str) -> ast.expr | None:
        for kw in node.keywords:
            if kw.arg == name:
                return kw.value
        if i < len(node.args) and not isinstance(node.args[i], ast.Starred):
            return node.args[i]
        return None

    if an.local_def(fn, scope) is not None:
        return None
    q = an.qual(fn, scope)
    if q is None and isinstance(fn, ast.Name):
        q = _chosen_loader(an, fn, scope)
    parts = q.split(".") if q else []
    last = parts[-1] if parts else (fn.attr if isinstance(fn, ast.Attribute) else None)
    resolved = bool(parts) and parts[0] in ("ctypes", "_ctypes")
    high = Confidence.HIGH
    med = Confidence.MEDIUM

    if q is not None and last in _CTYPES_CLASSES:
        return _Loader(f"ctypes.{last}", high if resolved else med), [arg(0, "name")]
    if last == "LoadLibrary" and isinstance(fn, ast.Attribute):
        recv = _loader_instance(an, fn.value, scope)
        if recv is not None:
            return _Loader(f"ctypes.{recv[0]}.LoadLibrary", recv[1]), [arg(0, "name")]
    if q == "getattr" and len(node.args) >= 2:
        recv = _loader_instance(an, node.args[0], scope)
        if recv is not None:
            return _Loader(f"ctypes.{recv[0]}", recv[1]), [node.args[1]]
    if last == "dlopen" and isinstance(fn, ast.Attribute):
        rq = an.qual(fn.value, scope) or ""
        if rq.split(".", 1)[0] in ("ctypes", "_ctypes"):
            return _Loader("ctypes.dlopen", high), [arg(0, "name")]
        if _is_cffi(an, fn.value, scope):
            conf = high if (an.cffi_imported or _is_ffi_instance(an, fn.value, scope)
                            or rq.rsplit(".", 1)[-1] == "ffi") else med
            return _Loader("cffi.dlopen", conf), [arg(0, "name")]
        return _Loader("dlopen", med), [arg(0, "name")]
    if q is not None and last == "load_library" and (
            q == "numpy.ctypeslib.load_library" or "ctypeslib" in parts):
        conf = high if q == "numpy.ctypeslib.load_library" else med
        return _Loader("numpy.ctypeslib.load_library", conf), [arg(0, "libname"),
                                                               arg(1, "loader_path")]
    if last == "load_library_permanently" and q is not None:
        conf = high if parts[0] == "llvmlite" else med
        return _Loader("llvmlite.load_library_permanently", conf), [arg(0, "filename")]
    if last == "add_dll_directory" and q is not None:
        conf = high if q == "os.add_dll_directory" else med
        return _Loader("os.add_dll_directory", conf), [arg(0, "path")]
    if q in ("gi.require_version", "require_version") or (
            q is not None and q.endswith("gi.require_version")):
        return _Loader("gi.require_version", Confidence.LOW), [arg(0, "namespace"),
                                                               arg(1, "version")]
    if q in ("gi.require_versions",):
        return _Loader("gi.require_version", Confidence.LOW), [arg(0, "requires")]
    if q in ("_ctypes.dlopen", "ctypes._dlopen"):
        return _Loader("ctypes.dlopen", high), [arg(0, "name")]
    if (isinstance(fn, ast.Name) and q is not None and q != fn.id
            and last in _WRAPPER_NAMES):
        # A loader wrapper imported from another module (cairocffi's pixbuf.py calls
        # ``dlopen(ffi, names, filenames)`` from its __init__): its arguments that look
        # like library files are the candidates.
        return _Loader(_WRAPPER_API, Confidence.LOW), list(node.args)
    return None


def _chosen_loader(an: _Analysis, fn: ast.Name, scope: _Scope) -> str | None:
    """The loader class a name holds when it was chosen by a condition
    (``lib_type = ctypes.WinDLL if os.name == "nt" else ctypes.CDLL``): the one of the
    arms that is a ctypes loader class, ``CDLL`` first (the one this platform runs)."""
    arms = [q for e, s in an.chosen(fn, scope) if (q := an.qual(e, s)) is not None
            and q.rsplit(".", 1)[-1] in _CTYPES_CLASSES]
    arms.sort(key=lambda q: not q.endswith(".CDLL"))
    return arms[0] if arms else None


def _loader_instance(an: _Analysis, expr: ast.expr, scope: _Scope,
                     ) -> tuple[str, Confidence] | None:
    if isinstance(expr, ast.Attribute):
        if expr.attr not in _CTYPES_LOADERS:
            return None
    elif not isinstance(expr, ast.Name):
        return None
    q = an.qual(expr, scope)
    if q is not None:
        parts = q.split(".")
        if parts[-1] in _CTYPES_LOADERS:
            ok = len(parts) == 2 and parts[0] == "ctypes"
            return parts[-1], Confidence.HIGH if ok else Confidence.MEDIUM
    if isinstance(expr, ast.Name):
        found = scope.lookup(expr.id)
        if found is not None:
            # Memoised per name and number of bindings: a name assigned 80,000 times, each
            # assignment a getattr() asking this again, made it quadratic.
            key = (id(found[0]), expr.id, len(found[1]))
            known = an.library_loaders.get(key)
            if known is None:
                known = an.library_loaders[key] = any(
                    b.kind == "assign" and isinstance(b.node, ast.Call)
                    and (an.qual(b.node.func, b.scope) or "").rsplit(".", 1)[-1]
                    == "LibraryLoader" for b in found[1])
            if known:
                return "LibraryLoader", Confidence.MEDIUM
    return None


def _is_ffi_instance(an: _Analysis, expr: ast.expr, scope: _Scope) -> bool:
    if isinstance(expr, ast.Name):
        found = scope.lookup(expr.id)
        if found is not None:
            for b in found[1]:
                if b.kind == "assign" and isinstance(b.node, ast.Call):
                    cq = an.qual(b.node.func, b.scope) or ""
                    if cq.rsplit(".", 1)[-1] == "FFI":
                        return True
    return False


def _is_cffi(an: _Analysis, expr: ast.expr, scope: _Scope) -> bool:
    if _is_ffi_instance(an, expr, scope):
        return True
    name = expr.id if isinstance(expr, ast.Name) else \
        expr.attr if isinstance(expr, ast.Attribute) else ""
    return "ffi" in name.lower() or an.cffi_imported



# --------------------------------------------------------------------------- site assembly

def _flatten(alts: _Alts, depth: int = 0) -> Iterator[_Str | _Unk]:
    for a in alts:
        if isinstance(a, _Seq):
            if depth < 4:
                for pos in a.items:
                    yield from _flatten(pos, depth + 1)
        else:
            yield a


_EXT = re.compile(r"\.(so(\.[\d*]+)*|dylib|dll|pyd|lib|a)$", re.IGNORECASE)


def _useful(text: str) -> bool:
    """Whether a name says something: ``*/*.so`` (only an extension known) does not."""
    last = text.rsplit("/", 1)[-1]
    core = _EXT.sub("", last).replace("*", "")
    core = core[3:] if core.startswith("lib") else core
    if "*" not in text and not core.strip("._-"):
        return False  # "lib", "lib.so": a prefix or suffix alone names no library
    if "*" in text and sum(c.isalnum() for c in core) < 2:
        return any(c.isalpha() for c in text.rsplit("/", 1)[0].replace("*", "")) and \
            "/" in text
    return any(c.isalpha() for c in text.replace("*", "").strip("./\\"))


def _normalize(text: str) -> str:
    """``a/b/../c`` as ``a/c`` (``..`` after a computed part is kept); a leading ``./``
    is kept, as the resolver reads such names relative to the site's directory."""
    if "/." not in text:
        return text
    lead = "/" if text.startswith("/") else "./" if text.startswith("./") else ""
    out: list[str] = []
    for seg in text.split("/"):
        if seg in ("", "."):
            continue
        if seg == ".." and out and out[-1] != ".." and "*" not in out[-1]:
            out.pop()
            continue
        out.append(seg)
    return lead + "/".join(out) if out else (lead or ".")


def _sites_from(file: str, line: int | None, loader: _Loader, alts: _Alts,
                extra_hints: tuple[str, ...] = ()) -> list[LoadSite]:
    """Group a loader's candidate names into sites: exact names, stems, and patterns."""
    groups: dict[tuple[bool, bool], dict[str, None]] = {}
    group_hints: dict[tuple[bool, bool], list[str]] = {}
    indirect: dict[tuple[bool, bool], bool] = {}
    unknown_hints: list[str] = []
    any_unknown = False
    for a in _flatten(alts):
        if isinstance(a, _Unk):
            any_unknown = True
            unknown_hints.extend(a.hints)
            continue
        text = _normalize(a.text())
        if not _useful(text) or (a.stem and "/" in text):  # find_library takes no path
            any_unknown = True
            unknown_hints.extend(a.hints)
            continue
        pattern = not a.known or "*" in text
        key = (a.stem, pattern)
        names = groups.setdefault(key, {})
        if len(names) < _MAX_NAMES:
            names[text] = None
        group_hints.setdefault(key, []).extend(a.hints)
        indirect[key] = indirect.get(key, False) or a.indirect
    sites: list[LoadSite] = []
    for key, names in groups.items():
        stem, pattern = key
        hints = [*extra_hints, *group_hints.get(key, []), *unknown_hints]
        conf = loader.confidence
        if pattern:
            hints.append(_PATTERN_HINT)
            conf = Confidence.LOW
        elif (group_hints.get(key) or indirect.get(key)) and conf is Confidence.HIGH:
            conf = Confidence.MEDIUM
        if any_unknown and _UNKNOWN_HINT not in hints:
            hints.append(f"also a {_UNKNOWN_HINT}")
        sites.append(LoadSite(file=file, line=line, language=_LANGUAGE, api=loader.api,
                              names=tuple(names), confidence=conf, stem=stem,
                              hints=_merge_hints(hints)))
    if not sites:
        sites.append(LoadSite(file=file, line=line, language=_LANGUAGE, api=loader.api,
                              names=(), confidence=Confidence.LOW,
                              hints=_merge_hints([*extra_hints, *unknown_hints,
                                                  _UNKNOWN_HINT])))
    return sites


_Evaluate = Callable[[_Ctx], _Alts]


def _contexts(an: _Analysis, evaluate: _Evaluate, line: int,
              ) -> tuple[_Alts, list[tuple[_Ctx, _Alts]]]:
    """Evaluate a site's names once with every parameter merged over all its calls, then,
    while a parameter of a function not yet bound was used, once per call of that
    function (outermost caller first in the context), a few levels up.  Returns the merged
    values and the values per context."""
    prog = an.prog
    leaves: list[tuple[_Ctx, _Alts]] = []
    first_step = prog.steps

    def go(ctx: _Ctx, level: int) -> _Alts:
        saved, prog.touched = prog.touched, {}
        try:
            alts = evaluate(ctx)
        finally:
            touched, prog.touched = prog.touched, saved
        pick: _FuncRef | None = None
        if level < _MAX_SPLIT and len(leaves) < _MAX_CONTEXTS:
            bound = {f for f, _ in ctx}
            pick = next((ref for fid, ref in touched.items() if fid not in bound), None)
        callers = prog.callers(*pick) if pick is not None else []
        if pick is None or not callers:
            leaves.append((ctx, alts))
            return alts
        for c in callers:
            if len(leaves) >= _MAX_CONTEXTS or prog.steps - first_step > _MAX_SPLIT_STEPS:
                leaves.append((ctx, alts))  # the other calls: merged
                prog.note(f"line {line}: calls beyond the first {len(leaves) - 1} merged "
                          "into one load")
                break
            go(((id(pick[1]), c), *ctx), level + 1)
        return alts

    return go((), 0), leaves


def _evidence(an: _Analysis, ctx: _Ctx) -> tuple[str, ...]:
    if not ctx:
        return ()
    c = ctx[0][1]
    return (f"library name from the call of {c.func}() at "
            f"{an.prog.where(c.an.file, an.file, c.node.lineno)}",)


def _alternative_groups(leaves: list[tuple[_Ctx, _Alts]]) -> list[list[tuple[_Ctx, _Alts]]]:
    """Contexts that differ by one call only, where the two calls are in different arms of
    one branch (a fallback in an ``except``, the ``else`` of an ``if``), are one load
    trying several names; the others are separate loads."""
    parent = list(range(len(leaves)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_length: dict[int, list[int]] = {}
    for i, (ctx, _) in enumerate(leaves):
        if ctx:
            by_length.setdefault(len(ctx), []).append(i)
    for members in by_length.values():
        for x, i in enumerate(members):
            ci = leaves[i][0]
            for j in members[x + 1:]:
                cj = leaves[j][0]
                diff = [k for k in range(len(ci)) if ci[k] != cj[k]]
                if len(diff) != 1 or find(i) == find(j):
                    continue
                a, b = ci[diff[0]][1], cj[diff[0]][1]
                if a.an is b.an and a.an.alternatives(a.node, b.node):
                    parent[find(j)] = find(i)
    groups: dict[int, list[tuple[_Ctx, _Alts]]] = {}
    for i, leaf in enumerate(leaves):
        groups.setdefault(find(i), []).append(leaf)
    return list(groups.values())


def _site_list(an: _Analysis, line: int, loader: _Loader, merged: _Alts,
               leaves: list[tuple[_Ctx, _Alts]], *, extra: tuple[str, ...] = (),
               ) -> list[LoadSite]:
    """The sites of one loader call: one per distinct set of names over its contexts (the
    program loads one library per call of the wrappers around it, or per group of calls
    that are fallbacks of each other), each with the calls that supply its names; a
    nameless site only when no context gives a name."""
    if len(leaves) == 1 and not leaves[0][0]:
        return _sites_from(an.file, line, loader, leaves[0][1], extra)
    Key = tuple[str, tuple[str, ...], bool, Confidence]
    sites: dict[Key, LoadSite] = {}
    evidence: dict[Key, list[str]] = {}
    for group in _alternative_groups(leaves):
        why = [h for ctx, _ in group for h in _evidence(an, ctx)]
        alts = _cap([a for _, vals in group for a in vals]) if len(group) > 1 else group[0][1]
        for s in _sites_from(an.file, line, loader, alts, extra):
            if not s.names:
                continue
            key = (s.api, s.names, s.stem, s.confidence)
            if key in sites:
                sites[key] = replace(sites[key], hints=_merge_hints(sites[key].hints, s.hints))
            else:
                sites[key] = s
            evidence.setdefault(key, []).extend(why)
    if not sites:
        return _sites_from(an.file, line, loader, merged, extra)
    out: list[LoadSite] = []
    for key, s in sites.items():
        calls = list(dict.fromkeys(evidence[key]))
        if len(calls) > _MAX_EVIDENCE:
            calls = [*calls[:_MAX_EVIDENCE], f"and {len(calls) - _MAX_EVIDENCE} more calls"]
        out.append(replace(s, hints=_merge_hints(calls, s.hints)))
    return out


def _gi_names(an: _Analysis, loader_args: list[ast.expr | None], scope: _Scope,
              single: bool, ctx: _Ctx) -> _Alts:
    if single:
        out: list[_AV] = []
        for a in an.ev(loader_args[0], scope, 0, 0, ctx):
            if isinstance(a, _Seq) and a.keys is not None:
                for k, vals in zip(a.keys, a.items, strict=True):
                    if k is not None:
                        out.extend(_concat((_s(k + "-"),), vals))
        return _cap(out)
    ns = an.ev(loader_args[0], scope, 0, 0, ctx)
    ver = an.ev(loader_args[1], scope, 0, 0, ctx) if len(loader_args) > 1 else _UNK
    return _concat(ns, (_s("-"),), ver)


def _numpy_names(an: _Analysis, loader_args: list[ast.expr | None], scope: _Scope,
                 ctx: _Ctx) -> _Alts:
    names = an.ev(loader_args[0], scope, 0, 0, ctx)
    where = an.ev(loader_args[1], scope, 0, 0, ctx) if len(loader_args) > 1 else (_s("."),)
    # numpy takes the directory of a loader_path that is not a directory (often __file__).
    where = _cap([_dirname(w) if isinstance(w, _Str) and (
        not w.known or "." in posixpath.basename(w.text())) else w for w in where])
    fixed: list[_AV] = []
    for a in names:
        if isinstance(a, _Str) and a.known and not posixpath.splitext(a.text())[1]:
            fixed.append(_concat_two(a, _s(".so")))
        else:
            fixed.append(a)
    return _path_join(where, tuple(fixed))


def _wrapper_names(an: _Analysis, loader_args: list[ast.expr | None], scope: _Scope,
                   ctx: _Ctx) -> _Alts:
    vals: list[_AV] = []
    for a in loader_args:
        vals.extend(v for v in _flatten(an.ev(a, scope, 0, 0, ctx))
                    if isinstance(v, _Str) and v.known and _LIBFILE.search(v.text()))
    return _cap(vals)


def _evaluator(an: _Analysis, call: _Call, loader: _Loader,
               loader_args: list[ast.expr | None]) -> tuple[_Evaluate, tuple[str, ...]]:
    """How to evaluate a loader call's names in a context, and the hints it always has."""
    scope = call.scope
    if loader.api == "gi.require_version":
        single = len(loader_args) == 1
        return (lambda ctx: _gi_names(an, loader_args, scope, single, ctx),
                ("GObject introspection typelib; the typelib names the shared library",))
    if loader.api == _WRAPPER_API:
        return (lambda ctx: _wrapper_names(an, loader_args, scope, ctx),
                (f"arguments of {ast.unparse(call.node.func)}(), a loader wrapper "
                 "imported from another module",))
    if loader.api == "numpy.ctypeslib.load_library":
        return (lambda ctx: _numpy_names(an, loader_args, scope, ctx),
                ("numpy adds the platform's library suffix to a name without one",))
    first = loader_args[0]
    if loader.api == "cffi.dlopen":
        return (lambda ctx: _cffi_names(an.ev(first, scope, 0, 0, ctx)),
                ("cffi looks up a name without '.' or '/' with find_library()",))
    return (lambda ctx: an.ev(first, scope, 0, 0, ctx)), ()


def _cffi_names(alts: _Alts) -> _Alts:
    """What ``ffi.dlopen(name)`` tries (cffi's ``_load_backend_lib``): a name holding a
    ``.`` or a ``/`` is opened as a file, and failing that, as a name without either is,
    looked up with ``ctypes.util.find_library`` (``ffi.dlopen('pulse')`` loads
    ``libpulse.so.0``).  A path or a library file name is no ``find_library`` name."""
    out: list[_AV] = []
    for a in _flatten(alts):
        if not isinstance(a, _Str) or not a.known or a.stem:
            out.append(a)
            continue
        text = a.text()
        if not any(c in text for c in "./\\"):
            out.append(_as_stem(a))
            continue
        out.append(a)
        if "/" not in text and "\\" not in text and not _LIBFILE.search(text):
            out.append(_as_stem(a))
    return _cap(out)


def _expression(an: _Analysis, expr: ast.expr, scope: _Scope) -> _Evaluate:
    return lambda ctx: an.ev(expr, scope, 0, 0, ctx)


def detect_python(source: str | bytes, file: str, *,
                  modules: PythonModules | None = None) -> tuple[list[LoadSite], list[str]]:
    """Find the places in one Python source file that load a library at run time.

    With ``modules`` (the tree the file is in), values are followed into the other
    modules of its package: imported functions, and the calls of the file's functions
    made from other modules.  Returns the load sites (ordered by line) and the problems
    met (unparsable source, analysis limits reached).  Never raises for bad input.
    """
    with collector_paused():
        return _detect_python(source, file, modules)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Parsing and evaluating make many objects and little garbage: the cyclic collector
    would walk every tree parsed so far (the modules keep them) over and over, a third of
    the time of a package's analysis.  It runs once the analysis is over."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _detect_python(source: str | bytes, file: str,
                   modules: PythonModules | None) -> tuple[list[LoadSite], list[str]]:
    problems: list[str] = []
    size = len(source)
    if size > MAX_SOURCE_BYTES:
        return [], [f"{file}: not analysed: {size} bytes is over the "
                    f"{MAX_SOURCE_BYTES}-byte limit"]
    probe = source if isinstance(source, str) else source.decode("latin-1")
    if not _TRIGGERS.search(probe):
        return [], []
    prog = modules._program if modules is not None else _Program(None)
    prog.begin()
    an = prog.cached(file, source)
    if an is None:
        try:
            tree = parse(source, filename=file)
            an = _Analysis(tree, file, prog, source)
        except (SyntaxError, ValueError) as e:
            return [], [f"{file}: not valid Python: {e}"]
        except (RecursionError, MemoryError) as e:
            return [], [f"{file}: too deeply nested to parse ({type(e).__name__})"]
        an.digest = _digest(source)
        prog.adopt(file, an)
    problems.extend(f"{file}: {p}" for p in an.problems)
    found: list[tuple[int, int, int, LoadSite]] = []
    budget_hit = False

    def emit(node: ast.AST, sites: list[LoadSite]) -> None:
        line = getattr(node, "lineno", 0)
        col = getattr(node, "col_offset", 0)
        guard = an.guarded(node)
        for i, s in enumerate(sites):
            # find_library answers None instead of raising, and ctypes loads the program
            # itself for a None name (CDLL(find_library(...))): no handler sees those fail
            raises = s.api != "ctypes.util.find_library" and not (
                s.stem and s.api.startswith("ctypes."))
            found.append((line, col, i, replace(s, guarded=guard) if guard and raises else s))

    # Calls and attributes of the bodies collected so far: those collected while the sites
    # are evaluated hold no loader (see _Analysis).
    if an.late:
        an.calls.sort(key=_order_of)
    calls, attrs = list(an.calls), list(an.attrs)
    try:
        for call in calls:
            m = _match_loader(an, call)
            if m is None:
                continue
            loader, loader_args = m
            first = loader_args[0]
            if isinstance(first, ast.Constant) and first.value is None:
                continue  # CDLL(None), ffi.dlopen(None): the program itself
            evaluate, extra = _evaluator(an, call, loader, loader_args)
            merged, leaves = _contexts(an, evaluate, call.node.lineno)
            sites = _site_list(an, call.node.lineno, loader, merged, leaves, extra=extra)
            if loader.api == _WRAPPER_API:
                sites = [s for s in sites if s.names]
            emit(call.node, sites)
        for node, scope in attrs:
            recv = _loader_instance(an, node.value, scope)
            if recv is None:
                continue
            loader = _Loader(f"ctypes.{recv[0]}", recv[1])
            if isinstance(node, ast.Attribute):
                if node.attr in _LOADER_ATTRS_NOT_LIBS or node.attr.startswith("__"):
                    continue
                emit(node, _sites_from(file, node.lineno, loader, (_s(node.attr),)))
            else:
                merged, leaves = _contexts(an, _expression(an, node.slice, scope), node.lineno)
                emit(node, _site_list(an, node.lineno, loader, merged, leaves))
        for call in calls:
            cnode = call.node
            if id(cnode) in prog.consumed:
                continue
            q = _is_find_library(an, cnode.func, call.scope)
            if q is None:
                continue
            conf = Confidence.HIGH if q == "ctypes.util.find_library" else Confidence.MEDIUM
            loader = _Loader("ctypes.util.find_library", conf)
            merged, leaves = _contexts(an, _expression(an, cnode, call.scope), cnode.lineno)
            emit(cnode, _site_list(an, cnode.lineno, loader, merged, leaves))
    except _Budget:
        budget_hit = True
    except RecursionError:
        problems.append(f"{file}: analysis stopped: expression nesting too deep")
    if budget_hit:
        problems.append(f"{file}: analysis stopped after {prog.max_steps} evaluation steps; "
                        "load sites may be missing")
    problems.extend(f"{file}: {p}" for p in prog.problems)
    found.sort(key=lambda t: (t[0], t[1], t[2]))
    seen: set[LoadSite] = set()
    out: list[LoadSite] = []
    for *_, site in found:
        if site not in seen:
            seen.add(site)
            out.append(site)
    if an.size > _MAX_KEPT_SOURCE:
        prog.forget(an)
    return out, problems
