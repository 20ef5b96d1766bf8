"""Static detection of dynamic library loading in Python source.

The source is parsed with :mod:`ast`, never imported or run.  A small, flow-insensitive
abstract interpreter follows the names that reach a loader call: every assignment of a name
in its scope is one alternative, loops bind their target to every element of what they
iterate, a function parameter takes the arguments found at the function's call sites in the
same module, and a call of a module-local function takes its ``return``/``yield`` values.
Strings are kept as sequences of known and unknown parts, so ``'lib' + machine() + '.so'``
becomes the pattern ``lib*.so`` rather than nothing.

Everything is bounded: the source size, the nodes walked, the depth of any one evaluation,
the number of evaluation steps per file, the alternatives per value, and the hops through
parameters.  Cycles (``a = b; b = a``) are cut by an in-progress set.
"""

from __future__ import annotations

import ast
import gc
import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from unveil.model import Confidence, LoadSite

__all__ = ["MAX_SOURCE_BYTES", "detect_python"]

#: Larger sources are not analysed (a problem is reported instead): parsing alone costs
#: about a second a megabyte, and Python sources this large are generated tables.
MAX_SOURCE_BYTES = 2 * 1024 * 1024
_MAX_NODES = 1_000_000
_MAX_STEPS = 150_000
_MAX_DEPTH = 40
_MAX_ALTS = 64
_MAX_HOPS = 2
_MAX_NAMES = 64

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
_IDENTITY_CALLS = frozenset({
    "str", "os.fspath", "os.fsdecode", "os.fsencode", "os.path.abspath", "os.path.realpath",
    "os.path.normpath", "os.path.expanduser", "os.path.normcase",
})
_IDENTITY_METHODS = frozenset({
    "resolve", "absolute", "as_posix", "__fspath__", "encode", "decode", "strip",
    "expanduser",
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


def _concat_two(x: _Str, y: _Str) -> _Str:
    parts: list[str | None] = list(x.parts)
    for p in y.parts:
        if parts and p is not None and parts[-1] is not None:
            parts[-1] = parts[-1] + p
        elif parts and p is None and parts[-1] is None:
            continue
        else:
            parts.append(p)
    return _Str(tuple(parts), hints=_merge_hints(x.hints, y.hints),
                indirect=x.indirect or y.indirect)


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


def _children(node: ast.AST) -> list[ast.AST]:
    """``ast.iter_child_nodes`` without the leaves (about half of all nodes)."""
    out: list[ast.AST] = []
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, list):
            out.extend(v for v in value if isinstance(v, ast.AST) and not isinstance(v, _LEAVES))
        elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
            out.append(value)
    return out


@dataclass(slots=True)
class _Binding:
    kind: str  # assign | iter | param | import | aug | elem | elems | opaque
    node: ast.AST | None
    scope: _Scope
    path: tuple[int, ...] = ()
    qual: str | None = None
    #: for ``iter`` bindings: the loop (``for`` statement or comprehension) binding the name.
    loop: ast.AST | None = None


@dataclass(slots=True, eq=False)
class _Scope:
    node: ast.AST
    parent: _Scope | None
    kind: str  # module | function | class | comprehension
    bindings: dict[str, list[_Binding]] = field(default_factory=dict)
    globals_: set[str] = field(default_factory=set)

    def bind(self, name: str, b: _Binding) -> None:
        target = self
        if name in self.globals_:
            while target.parent is not None:
                target = target.parent
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


@dataclass(slots=True)
class _Call:
    node: ast.Call
    scope: _Scope


@dataclass(frozen=True, slots=True)
class _Loader:
    """A recognised loader call: which API, which argument nodes name the library."""

    api: str
    confidence: Confidence


class _Budget(Exception):
    """Raised inside evaluation when the per-file step budget is spent."""


_FuncNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
_CompNode = ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
#: Node types that bind, call or open a scope; every other node is only descended into.
_SPECIAL_NODES: frozenset[type[ast.AST]] = frozenset({
    ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp,
    ast.GeneratorExp, ast.DictComp, ast.Global, ast.Nonlocal, ast.Import, ast.ImportFrom,
    ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr, ast.For, ast.AsyncFor, ast.With,
    ast.AsyncWith, ast.ExceptHandler, ast.Return, ast.Yield, ast.YieldFrom, ast.Call,
    ast.Attribute, ast.Subscript,
})


class _Analysis:
    def __init__(self, tree: ast.Module, file: str) -> None:
        self.file = file
        self.problems: list[str] = []
        self.module = _Scope(tree, None, "module")
        self.scope_of: dict[int, _Scope] = {}
        self.calls: list[_Call] = []
        self.attrs: list[tuple[ast.Attribute | ast.Subscript, _Scope]] = []
        self.calls_by_name: dict[str, list[_Call]] = {}
        self.returns: dict[int, list[tuple[ast.expr, bool, bool]]] = {}
        self.func_scope: dict[int, _Scope] = {}
        self.generators: set[int] = set()
        self.methods: set[int] = set()
        self.defaults: dict[int, dict[str, tuple[ast.expr, _Scope]]] = {}
        self.self_attrs: dict[str, list[tuple[ast.expr, _Scope]]] = {}
        self.star_modules: set[str] = set()
        self.cffi_imported = False
        self.memo: dict[tuple[int, str, int], _Alts] = {}
        self.in_progress: set[tuple[int, str, int]] = set()
        self.func_memo: dict[int, _Alts] = {}
        self.steps = 0
        self.consumed: set[int] = set()
        self._collect(tree)

    # ------------------------------------------------------------------ collection

    def _collect(self, tree: ast.Module) -> None:
        """Walk the tree once, in source order, without recursion."""
        stack: list[tuple[ast.AST, _Scope, _FuncNode | None]] = [(tree, self.module, None)]
        pop, extend = stack.pop, stack.extend
        special = _SPECIAL_NODES
        children = _children
        visited = 0
        while stack:
            node, scope, func = pop()
            visited += 1
            if visited > _MAX_NODES:
                self.problems.append(f"stopped after {_MAX_NODES} syntax nodes")
                return
            if type(node) in special:
                kids = self._visit(node, scope, func)
                kids.reverse()
                extend(kids)
            else:  # nothing to record: only descend
                plain = [(c, scope, func) for c in children(node)]
                plain.reverse()
                extend(plain)

    def _visit(self, node: ast.AST, scope: _Scope,
               func: _FuncNode | None) -> list[tuple[ast.AST, _Scope, _FuncNode | None]]:
        """Record what ``node`` binds or calls; return its children with their scopes."""
        kids: list[tuple[ast.AST, _Scope, _FuncNode | None]] = []

        def add(nodes: Sequence[ast.AST | None], s: _Scope = scope,
                f: _FuncNode | None = func) -> None:
            kids.extend((n, s, f) for n in nodes if n is not None)

        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            parent = scope
            while parent.kind == "class" and parent.parent is not None:
                parent = parent.parent
            inner = _Scope(node, parent if scope.kind == "class" else scope, "function")
            self.func_scope[id(node)] = inner
            self.returns.setdefault(id(node), [])
            if not isinstance(node, ast.Lambda):
                scope.bind(node.name, _Binding("def", node, scope))
                if scope.kind == "class":
                    self.methods.add(id(node))
                add(node.decorator_list)
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
            for arg in [*positional, *a.kwonlyargs]:
                inner.bind(arg.arg, _Binding("param", node, inner, qual=arg.arg))
            for star in (a.vararg, a.kwarg):
                if star is not None:
                    inner.bind(star.arg, _Binding("opaque", None, inner))
            add([*a.defaults, *(d for d in a.kw_defaults if d is not None)])
            return kids
        if isinstance(node, ast.ClassDef):
            inner = _Scope(node, scope, "class")
            scope.bind(node.name, _Binding("opaque", None, scope))
            add([*node.bases, *node.keywords, *node.decorator_list])
            add(node.body, inner)
            return kids
        if isinstance(node, _CompNode):
            inner = _Scope(node, scope, "comprehension")
            self.scope_of[id(node)] = inner
            for i, gen in enumerate(node.generators):
                self._bind_target(gen.target, inner, "iter", gen.iter,
                                  scope if i == 0 else inner, loop=node)
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
                    scope.bind(alias.asname, _Binding("import", None, scope, qual=alias.name))
                else:
                    top = alias.name.split(".", 1)[0]
                    scope.bind(top, _Binding("import", None, scope, qual=top))
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
                scope.bind(alias.asname or alias.name, _Binding("import", None, scope,
                                                                qual=qual))
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                self._bind_target(t, scope, "assign", node.value, scope)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self._bind_target(node.target, scope, "assign", node.value, scope)
        elif isinstance(node, ast.AugAssign):
            if isinstance(node.target, ast.Name):
                scope.bind(node.target.id, _Binding("aug", node, scope))
        elif isinstance(node, ast.NamedExpr):
            self._bind_target(node.target, scope, "assign", node.value, scope)
        elif isinstance(node, ast.For | ast.AsyncFor):
            self._bind_target(node.target, scope, "iter", node.iter, scope, loop=node)
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                if item.optional_vars is not None:
                    self._bind_target(item.optional_vars, scope, "opaque", None, scope)
        elif isinstance(node, ast.ExceptHandler):
            if node.name:
                scope.bind(node.name, _Binding("opaque", None, scope))
        elif isinstance(node, ast.Return | ast.Yield | ast.YieldFrom):
            if func is not None and node.value is not None:
                self.returns[id(func)].append(
                    (node.value, not isinstance(node, ast.Return),
                     isinstance(node, ast.YieldFrom)))
            if isinstance(node, ast.Yield | ast.YieldFrom) and func is not None:
                self.generators.add(id(func))
        elif isinstance(node, ast.Call):
            call = _Call(node, scope)
            self.calls.append(call)
            fn = node.func
            key = fn.id if isinstance(fn, ast.Name) else \
                fn.attr if isinstance(fn, ast.Attribute) else None
            if key is not None:
                self.calls_by_name.setdefault(key, []).append(call)
            if (isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name)
                    and fn.attr in ("append", "insert", "extend") and node.args):
                kind = "elems" if fn.attr == "extend" else "elem"
                scope.bind(fn.value.id, _Binding(kind, node.args[-1], scope))
        elif isinstance(node, ast.Attribute | ast.Subscript):
            self.attrs.append((node, scope))

        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                        and t.value.id in ("self", "cls") and node.value is not None):
                    self.self_attrs.setdefault(t.attr, []).append((node.value, scope))

        add(_children(node))
        return kids

    def _bind_target(self, target: ast.AST, scope: _Scope, kind: str, value: ast.expr | None,
                     value_scope: _Scope, *, path: tuple[int, ...] = (),
                     loop: ast.AST | None = None) -> None:
        if isinstance(target, ast.Name):
            scope.bind(target.id, _Binding(kind, value, value_scope, path, loop=loop))
        elif isinstance(target, ast.Tuple | ast.List):
            starred = False
            for i, elt in enumerate(target.elts):
                if isinstance(elt, ast.Starred):
                    starred = True
                    self._bind_target(elt.value, scope, "opaque", None, value_scope)
                elif starred:
                    self._bind_target(elt, scope, "opaque", None, value_scope)
                else:
                    self._bind_target(elt, scope, kind, value, value_scope, path=(*path, i),
                                      loop=loop)

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

    def local_def(self, expr: ast.expr, scope: _Scope) -> _FuncNode | None:
        if isinstance(expr, ast.Name):
            found = scope.lookup(expr.id)
            if found is not None:
                for b in found[1]:
                    if b.kind == "def" and isinstance(b.node,
                                                      ast.FunctionDef | ast.AsyncFunctionDef):
                        return b.node
        return None

    # ------------------------------------------------------------------ evaluation

    def ev(self, expr: ast.AST | None, scope: _Scope, depth: int, hops: int) -> _Alts:
        if expr is None:
            return ()
        self.steps += 1
        if self.steps > _MAX_STEPS:
            raise _Budget
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
            return _concat(*(self.ev(v, scope, d, hops) for v in expr.values))
        if isinstance(expr, ast.FormattedValue):
            return self.ev(expr.value, scope, d, hops) or _UNK
        if isinstance(expr, ast.Name):
            return self.ev_name(expr.id, scope, d, hops, expr)
        if isinstance(expr, ast.BinOp):
            return self.ev_binop(expr, scope, d, hops)
        if isinstance(expr, ast.IfExp):
            return _cap([*self.ev(expr.body, scope, d, hops),
                         *self.ev(expr.orelse, scope, d, hops)])
        if isinstance(expr, ast.BoolOp):
            operands = expr.values if isinstance(expr.op, ast.Or) else expr.values[-1:]
            out: list[_AV] = []
            for operand in operands:
                out.extend(self.ev(operand, scope, d, hops))
            return _cap(out)
        if isinstance(expr, ast.Tuple | ast.List | ast.Set):
            return (self.ev_seq(expr.elts, scope, d, hops),)
        if isinstance(expr, ast.Dict):
            keys: list[str | None] = []
            items: list[_Alts] = []
            for key, val in zip(expr.keys, expr.values, strict=True):
                if key is None:
                    continue
                keys.append(key.value if isinstance(key, ast.Constant)
                            and isinstance(key.value, str) else None)
                items.append(self.ev(val, scope, d, hops))
            return (_Seq(tuple(items), tuple(keys)),)
        if isinstance(expr, _CompNode):
            inner = self.scope_of.get(id(expr), scope)
            elt = expr.key if isinstance(expr, ast.DictComp) else expr.elt
            return (_Seq((self.ev(elt, inner, d, hops),)),)
        if isinstance(expr, ast.Attribute):
            return self.ev_attribute(expr, scope, d, hops)
        if isinstance(expr, ast.Subscript):
            return self.ev_subscript(expr, scope, d, hops)
        if isinstance(expr, ast.Call):
            return self.ev_call(expr, scope, d, hops)
        if isinstance(expr, ast.NamedExpr):
            return self.ev(expr.value, scope, d, hops)
        if isinstance(expr, ast.Await | ast.Starred):
            return self.ev(expr.value, scope, d, hops)
        return _UNK

    def ev_seq(self, elts: Sequence[ast.expr], scope: _Scope, d: int, hops: int) -> _Seq:
        items: list[_Alts] = []
        for e in elts:
            if isinstance(e, ast.Starred):
                for a in self.ev(e.value, scope, d, hops):
                    if isinstance(a, _Seq) and a.keys is None:
                        items.extend(a.items)
                    else:
                        items.append((_Unk(a.hints if not isinstance(a, _Seq) else ()),))
            else:
                items.append(self.ev(e, scope, d, hops))
            if len(items) >= _MAX_ALTS:
                break
        return _Seq(tuple(items))

    def ev_binop(self, expr: ast.BinOp, scope: _Scope, d: int, hops: int) -> _Alts:
        left = self.ev(expr.left, scope, d, hops)
        if isinstance(expr.op, ast.Mod):
            out: list[_AV] = []
            right = self.ev(expr.right, scope, d, hops)
            is_tuple = isinstance(expr.right, ast.Tuple)
            for fmt in left:
                if isinstance(fmt, _Str):
                    out.extend(_percent_format(fmt, right, is_tuple))
                else:
                    out.append(_Unk())
            return _cap(out)
        right = self.ev(expr.right, scope, d, hops)
        if isinstance(expr.op, ast.Add):
            seqs = [a for a in left if isinstance(a, _Seq)]
            if seqs:
                rs = [a for a in right if isinstance(a, _Seq)]
                return _cap([_Seq(x.items + y.items) for x in seqs for y in rs] or seqs)
            return _concat(left, right)
        if isinstance(expr.op, ast.Div):
            return _path_join(left, right)
        return _UNK

    def ev_name(self, name: str, scope: _Scope, d: int, hops: int,
                use: ast.AST | None = None) -> _Alts:
        found = scope.lookup(name)
        if found is None:
            if name == "__file__":
                return (_s(self.file),)
            return _UNK
        def_scope, bindings = found
        loop = _innermost_loop(bindings, use)
        if loop is not None:
            bindings = [b for b in bindings if b.loop is loop]
        key = (id(def_scope), name, id(loop) if loop is not None else 0)
        if key in self.memo:
            return self.memo[key]
        if key in self.in_progress:
            return ()
        self.in_progress.add(key)
        try:
            result = self._ev_bindings(name, bindings, d, hops)
        finally:
            self.in_progress.discard(key)
        if hops == 0:
            self.memo[key] = result
        return result

    def _ev_bindings(self, name: str, bindings: list[_Binding], d: int, hops: int) -> _Alts:
        base: list[_AV] = []
        extra: list[_AV] = []
        augs: list[_Binding] = []
        for b in bindings:
            if b.kind == "assign":
                base.extend(_select(self.ev(b.node, b.scope, d, hops), b.path))
            elif b.kind == "iter":
                elems = _elements(self.ev(b.node, b.scope, d, hops))
                base.extend(_select(elems, b.path) if b.path else elems)
            elif b.kind == "param":
                base.extend(self.ev_param(b, d, hops))
            elif b.kind == "elem":
                extra.append(_Seq((self.ev(b.node, b.scope, d, hops),)))
            elif b.kind == "elems":
                extra.extend(self.ev(b.node, b.scope, d, hops))
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
                rhs = self.ev(b.node.value, b.scope, d, hops)
                for a in list(base):
                    if isinstance(a, _Seq):
                        for r in rhs:
                            if isinstance(r, _Seq):
                                base.append(_Seq(a.items + r.items))
                    else:
                        base.extend(_concat((a,), rhs))
        return _cap(base)

    def ev_param(self, b: _Binding, d: int, hops: int) -> _Alts:
        func = b.node
        pname = b.qual
        assert isinstance(func, _FuncNode)
        assert pname is not None
        out: list[_AV] = []
        default = self.defaults.get(id(func), {}).get(pname)
        if default is not None:
            out.extend(self.ev(default[0], default[1], d, hops))
        if isinstance(func, ast.Lambda) or hops >= _MAX_HOPS:
            return _cap(out) if out else (_Unk((f"parameter {pname!r}",)),)
        positional = [a.arg for a in (*func.args.posonlyargs, *func.args.args)]
        index = positional.index(pname) if pname in positional else None
        is_method = id(func) in self.methods
        found_call = False
        for call in self.calls_by_name.get(func.name, []):
            node = call.node
            via_attr = isinstance(node.func, ast.Attribute)
            if via_attr and not is_method:
                continue
            if not via_attr and self.local_def(node.func, call.scope) is not func:
                continue
            i = index
            if i is not None and is_method and via_attr:
                i -= 1
            arg: ast.expr | None = None
            for kw in node.keywords:
                if kw.arg == pname:
                    arg = kw.value
            if (arg is None and i is not None and 0 <= i < len(node.args)
                    and not any(isinstance(a, ast.Starred) for a in node.args[:i + 1])):
                arg = node.args[i]
            if arg is None:
                continue
            found_call = True
            for a in self.ev(arg, call.scope, d, hops + 1):
                out.append(_mark_indirect(a))
        if not out:
            hint = f"parameter {pname!r} of {func.name}()" + ("" if found_call else
                                                               " (no call site here)")
            return (_Unk((hint,)),)
        return _cap(out)

    def ev_attribute(self, expr: ast.Attribute, scope: _Scope, d: int, hops: int) -> _Alts:
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
            return _cap([_dirname(a) for a in self.ev(expr.value, scope, d, hops)])
        if expr.attr == "name":
            return _cap([_basename(a) for a in self.ev(expr.value, scope, d, hops)])
        if isinstance(expr.value, ast.Name) and expr.value.id in ("self", "cls"):
            out: list[_AV] = []
            for value, s in self.self_attrs.get(expr.attr, [])[:16]:
                out.extend(self.ev(value, s, d, hops))
            return _cap(out) if out else _UNK
        q = self.qual(expr, scope)
        if q in ("os.sep", "os.path.sep", "posixpath.sep"):
            return (_s("/"),)
        if q in ("os.curdir", "os.path.curdir"):
            return (_s("."),)
        return _UNK

    def ev_subscript(self, expr: ast.Subscript, scope: _Scope, d: int, hops: int) -> _Alts:
        q = self.qual(expr.value, scope)
        if q == "os.environ":
            return (_Unk((self.env_hint(expr.slice, scope, d, hops),)),)
        base = self.ev(expr.value, scope, d, hops)
        sl = expr.slice
        if isinstance(sl, ast.Constant) and isinstance(sl.value, int) and \
                not isinstance(sl.value, bool):
            idx = sl.value
            out: list[_AV] = []
            for a in base:
                if isinstance(a, _Seq) and a.keys is None and -len(a.items) <= idx < len(a.items):
                    out.extend(a.items[idx])
                else:
                    out.append(_Unk())
            return _cap(out)
        if isinstance(sl, ast.Slice):
            return _UNK
        key = sl.value if isinstance(sl, ast.Constant) and isinstance(sl.value, str) else None
        return _dict_get(base, key)

    def env_hint(self, key_expr: ast.expr | None, scope: _Scope, d: int, hops: int) -> str:
        keys = [a for a in self.ev(key_expr, scope, d, hops) if isinstance(a, _Str) and a.known]
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
            base = here
            for i in range(len(parts) - 1, -1, -1):
                if parts[i] in _SITE_DIRS:
                    base = "/".join(parts[:i + 1])
                    break
        return posixpath.join(base or ".", *rest, "__init__.py")

    def ev_call(self, expr: ast.Call, scope: _Scope, d: int, hops: int) -> _Alts:
        fn = expr.func
        q = self.qual(fn, scope)
        args = expr.args

        def arg(i: int, name: str) -> ast.expr | None:
            for kw in expr.keywords:
                if kw.arg == name:
                    return kw.value
            return args[i] if i < len(args) and not isinstance(args[i], ast.Starred) else None

        if q is not None:
            last = q.rsplit(".", 1)[-1]
            if last == "find_library" and self.local_def(fn, scope) is None:
                self.consumed.add(id(expr))
                return _cap([_as_stem(a) for a in self.ev(arg(0, "name"), scope, d, hops)])
            if q in ("os.path.join", "posixpath.join", "ntpath.join", "path.join") or (
                    q.endswith(".path.join") and q.startswith("os")):
                return _path_join(*(self.ev(a, scope, d, hops) for a in args))
            if q in ("os.path.dirname", "posixpath.dirname", "path.dirname"):
                target = arg(0, "p")
                mod = self.module_file_of(target, scope) if target is not None else None
                if mod is not None:  # dirname(pkg.__file__): the package directory
                    return (_s(self.module_dir(mod)),)
                return _cap([_dirname(a) for a in self.ev(target, scope, d, hops)])
            if q in ("os.path.basename", "posixpath.basename", "path.basename"):
                return _cap([_basename(a) for a in self.ev(arg(0, "p"), scope, d, hops)])
            if q in _IDENTITY_CALLS:
                return self.ev(arg(0, "path"), scope, d, hops) or _UNK
            if (last in _PATH_CLASSES and (q.startswith("pathlib.") or q == last)
                    and len(args) == 1 and self.module_file_of(args[0], scope) is not None):
                # Path(pkg.__file__): keep the module marker for a following .parent
                return self.ev(args[0], scope, d, hops)
            if last in _PATH_CLASSES and (q.startswith("pathlib.") or q == last):
                if not args:
                    return (_s("."),)
                return _path_join(*(self.ev(a, scope, d, hops) for a in args))
            if q in ("os.environ.get", "os.getenv", "os.environ.setdefault", "environ.get",
                     "getenv"):
                return self.ev_env(expr, scope, d, hops)
            if q in ("glob.glob", "glob.iglob", "glob"):
                pats = [_as_path_part(a) for a in self.ev(arg(0, "pathname"), scope, d, hops)]
                return (_Seq((_cap(pats),)),)
            if q in ("importlib.resources.files", "importlib_resources.files",
                     "resources.files") and args:
                names = self.ev(args[0], scope, d, hops)
                return _cap([_s(self.module_dir(a.text()))
                             if isinstance(a, _Str) and a.known else _Unk() for a in names])
        fdef = self.local_def(fn, scope)
        if fdef is not None:
            return self.ev_function(fdef, d)
        if isinstance(fn, ast.Attribute):
            return self.ev_method(expr, fn, scope, d, hops)
        return _UNK

    def ev_env(self, expr: ast.Call, scope: _Scope, d: int, hops: int) -> _Alts:
        key = expr.args[0] if expr.args else None
        hint = self.env_hint(key, scope, d, hops)
        default: ast.expr | None = expr.args[1] if len(expr.args) > 1 else None
        for kw in expr.keywords:
            if kw.arg in ("default", "value"):
                default = kw.value
        out: list[_AV] = [_Unk((hint,))]
        for a in self.ev(default, scope, d, hops):
            if isinstance(a, _Str):
                out.append(_Str(a.parts, a.stem, _merge_hints(a.hints, (hint,)), a.indirect))
            else:
                out.append(a)
        return _cap(out)

    def ev_method(self, expr: ast.Call, fn: ast.Attribute, scope: _Scope, d: int,
                  hops: int) -> _Alts:
        recv = self.ev(fn.value, scope, d, hops)
        m = fn.attr
        if m in _IDENTITY_METHODS:
            return recv or _UNK
        if m == "joinpath":
            return _path_join(recv, *(self.ev(a, scope, d, hops) for a in expr.args))
        if m == "with_name" and expr.args:
            return _path_join(_cap([_dirname(a) for a in recv]),
                              self.ev(expr.args[0], scope, d, hops))
        if m == "format":
            positional = [self.ev(a, scope, d, hops) for a in expr.args]
            named = {kw.arg: self.ev(kw.value, scope, d, hops)
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
                out.extend(self.ev(expr.args[1], scope, d, hops))
            return _cap(out)
        if m == "values":
            return (_Seq((_values(recv),)),)
        if m == "keys":
            return (_Seq((_elements(recv),)),)
        return (_Unk(_hints_of(recv)),)

    def ev_function(self, fdef: _FuncNode, d: int) -> _Alts:
        """The values a call of a local function can produce (its returns, or a sequence
        of its yields for a generator).  Parameters are bound context-insensitively."""
        key = id(fdef)
        if key in self.func_memo:
            return self.func_memo[key]
        self.func_memo[key] = ()  # cycle guard
        inner = self.func_scope[key]
        rets = self.returns.get(key, [])
        generator = key in self.generators
        out: list[_AV] = []
        items: list[_Alts] = []
        for value, is_yield, is_from in rets:
            vals = self.ev(value, inner, d, 0)
            if generator and is_yield:
                if is_from:
                    items.extend(it for a in vals if isinstance(a, _Seq) for it in a.items)
                elif vals:
                    items.append(vals)
            elif not generator:
                out.extend(vals)
        result = (_Seq(tuple(items)),) if generator else (_cap(out) or _UNK)
        self.func_memo[key] = result
        return result


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


def _mark_indirect(a: _AV) -> _AV:
    if isinstance(a, _Str):
        return _Str(a.parts, a.stem, a.hints, True)
    return a


def _as_stem(a: _AV) -> _AV:
    if isinstance(a, _Str) and not a.stem:
        return _Str(a.parts, True, a.hints, a.indirect)
    return _Unk(a.hints if not isinstance(a, _Seq) else ())


# --------------------------------------------------------------------------- loader matching

def _match_loader(an: _Analysis, call: _Call) -> tuple[_Loader, list[ast.expr | None]] | None:
    """Which loader API a call is, and the argument expressions that name the library."""
    node, scope = call.node, call.scope
    fn = node.func

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


def _loader_instance(an: _Analysis, expr: ast.expr, scope: _Scope,
                     ) -> tuple[str, Confidence] | None:
    q = an.qual(expr, scope)
    if q is not None:
        parts = q.split(".")
        if parts[-1] in _CTYPES_LOADERS:
            ok = len(parts) == 2 and parts[0] == "ctypes"
            return parts[-1], Confidence.HIGH if ok else Confidence.MEDIUM
    if isinstance(expr, ast.Name):
        found = scope.lookup(expr.id)
        if found is not None:
            for b in found[1]:
                if b.kind == "assign" and isinstance(b.node, ast.Call):
                    cq = an.qual(b.node.func, b.scope) or ""
                    if cq.rsplit(".", 1)[-1] == "LibraryLoader":
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
    if "*" in text and sum(c.isalnum() for c in core) < 2:
        return any(c.isalpha() for c in text.rsplit("/", 1)[0].replace("*", "")) and \
            "/" in text
    return any(c.isalpha() for c in text.replace("*", "").strip("./\\"))


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
        text = a.text()
        if not _useful(text):
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


def _gi_names(an: _Analysis, loader_args: list[ast.expr | None], scope: _Scope,
              single: bool) -> _Alts:
    if single:
        out: list[_AV] = []
        for a in an.ev(loader_args[0], scope, 0, 0):
            if isinstance(a, _Seq) and a.keys is not None:
                for k, vals in zip(a.keys, a.items, strict=True):
                    if k is not None:
                        out.extend(_concat((_s(k + "-"),), vals))
        return _cap(out)
    ns = an.ev(loader_args[0], scope, 0, 0)
    ver = an.ev(loader_args[1], scope, 0, 0) if len(loader_args) > 1 else _UNK
    return _concat(ns, (_s("-"),), ver)


def _numpy_names(an: _Analysis, loader_args: list[ast.expr | None], scope: _Scope) -> _Alts:
    names = an.ev(loader_args[0], scope, 0, 0)
    where = an.ev(loader_args[1], scope, 0, 0) if len(loader_args) > 1 else (_s("."),)
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


def detect_python(source: str | bytes, file: str) -> tuple[list[LoadSite], list[str]]:
    """Find the places in one Python source file that load a library at run time.

    Returns the load sites (ordered by line) and the problems met (unparsable source,
    analysis limits reached).  Never raises for bad input.
    """
    problems: list[str] = []
    size = len(source)
    if size > MAX_SOURCE_BYTES:
        return [], [f"{file}: not analysed: {size} bytes is over the "
                    f"{MAX_SOURCE_BYTES}-byte limit"]
    probe = source if isinstance(source, str) else source.decode("latin-1")
    if not _TRIGGERS.search(probe):
        return [], []
    # A large tree is millions of new objects: the cyclic collector would run over and over
    # while it is built (it more than halves the time of a big file), and none is garbage.
    paused = gc.isenabled()
    gc.disable()
    try:
        tree = ast.parse(source, filename=file)
        an = _Analysis(tree, file)
    except (SyntaxError, ValueError) as e:
        return [], [f"{file}: not valid Python: {e}"]
    except (RecursionError, MemoryError) as e:
        return [], [f"{file}: too deeply nested to parse ({type(e).__name__})"]
    finally:
        if paused:
            gc.enable()
    problems.extend(f"{file}: {p}" for p in an.problems)
    found: list[tuple[int, int, int, LoadSite]] = []
    budget_hit = False

    def emit(node: ast.AST, sites: list[LoadSite]) -> None:
        line = getattr(node, "lineno", 0)
        col = getattr(node, "col_offset", 0)
        for i, s in enumerate(sites):
            found.append((line, col, i, s))

    try:
        for call in an.calls:
            m = _match_loader(an, call)
            if m is None:
                continue
            loader, loader_args = m
            if loader.api == "gi.require_version":
                alts = _gi_names(an, loader_args, call.scope, len(loader_args) == 1)
                extra: tuple[str, ...] = ("GObject introspection typelib; the typelib names "
                                          "the shared library",)
            elif loader.api == _WRAPPER_API:
                vals: list[_AV] = []
                for a in loader_args:
                    vals.extend(v for v in _flatten(an.ev(a, call.scope, 0, 0))
                                if isinstance(v, _Str) and v.known and _LIBFILE.search(v.text()))
                if not vals:
                    continue
                alts = _cap(vals)
                extra = (f"arguments of {ast.unparse(call.node.func)}(), a loader wrapper "
                         "imported from another module",)
            elif loader.api == "numpy.ctypeslib.load_library":
                alts = _numpy_names(an, loader_args, call.scope)
                extra = ("numpy adds the platform's library suffix to a name without one",)
            else:
                alts = an.ev(loader_args[0], call.scope, 0, 0)
                extra = ()
            first = loader_args[0]
            if isinstance(first, ast.Constant) and first.value is None:
                continue  # CDLL(None), ffi.dlopen(None): the program itself
            emit(call.node, _sites_from(file, call.node.lineno, loader, alts, extra))
        for node, scope in an.attrs:
            if isinstance(node, ast.Attribute):
                if node.attr in _LOADER_ATTRS_NOT_LIBS or node.attr.startswith("__"):
                    continue
                recv = _loader_instance(an, node.value, scope)
                if recv is None:
                    continue
                loader = _Loader(f"ctypes.{recv[0]}", recv[1])
                emit(node, _sites_from(file, node.lineno, loader, (_s(node.attr),)))
            else:
                recv = _loader_instance(an, node.value, scope)
                if recv is None:
                    continue
                loader = _Loader(f"ctypes.{recv[0]}", recv[1])
                emit(node, _sites_from(file, node.lineno, loader,
                                       an.ev(node.slice, scope, 0, 0)))
        for call in an.calls:
            cnode = call.node
            q = an.qual(cnode.func, call.scope)
            if (q is None or q.rsplit(".", 1)[-1] != "find_library"
                    or id(cnode) in an.consumed or an.local_def(cnode.func, call.scope)):
                continue
            conf = Confidence.HIGH if q == "ctypes.util.find_library" else Confidence.MEDIUM
            loader = _Loader("ctypes.util.find_library", conf)
            alts = an.ev(cnode, call.scope, 0, 0)
            emit(cnode, _sites_from(file, cnode.lineno, loader, alts))
    except _Budget:
        budget_hit = True
    except RecursionError:
        problems.append(f"{file}: analysis stopped: expression nesting too deep")
    if budget_hit:
        problems.append(f"{file}: analysis stopped after {_MAX_STEPS} evaluation steps; "
                        "load sites may be missing")
    found.sort(key=lambda t: (t[0], t[1], t[2]))
    seen: set[LoadSite] = set()
    out: list[LoadSite] = []
    for *_, site in found:
        if site not in seen:
            seen.add(site)
            out.append(site)
    return out, problems
