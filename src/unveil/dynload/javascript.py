"""Static detection of dynamic library loading in JavaScript, and of libraries in binding.gyp.

No JavaScript parser is available offline, so the source goes through a tokenizer that gets
the hard parts right (comments, string escapes, template literals with nested ``${}``, regular
expression literals versus division), then small pattern matchers run over the tokens:

* koffi ``koffi.load(name)``, ffi-napi/ffi ``ffi.Library(name, {...})`` and
  ``new ffi.DynamicLibrary(name)``, ffi-rs ``open({library, path})``, ``process.dlopen(m, path)``;
* native addons: ``require('bindings')('addon')``, ``require('node-gyp-build')(dir)`` and
  ``require('./x.node')``.

Names are evaluated by a tiny expression evaluator: string and template literals, ``+``,
``path.join``/``path.resolve``, ``__dirname``, ``cond ? a : b``, ``a || b``, array and object
literals (an object indexed by an unknown key gives all its values), and file-wide
``const``/``let``/``var`` bindings.  ``process.env.X || 'default'`` gives the default and the
hint "overridable by $X".
"""

from __future__ import annotations

import ast
import bisect
import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from unveil._pyparse import literal_eval, parse
from unveil.dynload.brackets import group_ends
from unveil.dynload.guards import Guard, guard_at
from unveil.model import Confidence, LoadSite

__all__ = ["FULL_LEX_CHARS", "MAX_SOURCE_CHARS", "detect_binding_gyp", "detect_javascript"]

#: Larger sources are not analysed (a problem is reported instead).
MAX_SOURCE_CHARS = 5 * 1024 * 1024
#: Up to this size a file is tokenized whole; beyond it only windows around trigger words
#: are (tokenizing costs about a microsecond a token, seconds for a large bundle).
FULL_LEX_CHARS = 1024 * 1024
_WINDOW = 16 * 1024
_MAX_WINDOWS_CHARS = 1024 * 1024
_MAX_TEMPLATE_DEPTH = 16
_MAX_EVAL_DEPTH = 24
_MAX_ALTS = 64
_MAX_STEPS = 100_000
_LANGUAGE = "javascript"

_TRIGGERS = re.compile(r"koffi|\bffi\b|ffi-napi|ffi-rs|dlopen|DynamicLibrary|Library\("
                       r"|\bbindings\b|node-gyp-build|\.node\b")

_FFI_NAPI = frozenset({"ffi-napi", "ffi", "node-ffi", "@makeomatic/ffi-napi", "@2060.io/ffi-napi",
                       "node-ffi-napi", "@breush/ffi-napi", "@lwahonen/ffi-napi"})
_KOFFI = frozenset({"koffi"})
_FFI_RS = frozenset({"ffi-rs", "@yuuang/ffi-rs"})
_BINDINGS = frozenset({"bindings"})
_GYP_BUILD = frozenset({"node-gyp-build", "node-gyp-build-optional-packages"})
_PATH_MODULES = frozenset({"path", "node:path", "path/posix", "node:path/posix"})

_PATTERN_HINT = "'*' in a name marks a part computed at run time"
_PACKAGE_HINT = ("a package is resolved as Node does (node_modules up from the file, "
                 "package.json exports or main); a load only where that ends at a .node addon "
                 "for this platform")
#: Words of npm package names built for one platform (``@scope/pkg-linux-x64-gnu``): Node's
#: ``process.platform`` and ``process.arch`` values and their usual spellings.
_OS_WORDS = frozenset({"linux", "darwin", "win32", "freebsd", "openbsd", "netbsd", "sunos",
                       "android", "aix", "linuxmusl", "macos", "windows", "haiku", "cygwin"})
_ARCH_WORDS = frozenset({"x64", "ia32", "arm", "arm64", "armv6", "armv7", "ppc64", "ppc64le",
                         "s390x", "riscv64", "loong64", "mips", "mipsel", "mips64el",
                         "universal", "x86", "x86_64", "aarch64"})
_BUILD_DIR = re.compile(r"(?:^|/)build/(?:Release|Debug)/[^/]+$")
_SCRIPT = re.compile(r"\.(?:c|m)?js$|\.json$")
_UNKNOWN_HINT = "library name computed at run time"

_KEYWORD_PARENS = frozenset({"if", "while", "for", "with"})
#: Array methods whose callback's first parameter is an element of the array.
_ELEMENT_METHODS = frozenset({"forEach", "map", "flatMap", "filter", "find", "findLast",
                              "some", "every"})
# Keywords after which a '/' starts a regular expression rather than a division.
_REGEX_AFTER_WORDS = frozenset({
    "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case",
    "do", "else", "yield", "await",
})


# --------------------------------------------------------------------------- tokens

#: A token: (kind, value, position).  Kinds: id, str, tpl, num, punct, regex.  For a
#: template (``tpl``) the value is empty and :attr:`_Lexer.templates` holds its parts.
_Tok = tuple[str, str, int]
#: A template literal: its literal parts and the tokens of each ``${}`` between them.
_Template = tuple[tuple[str, ...], tuple[list[_Tok], ...]]

# Ordered by frequency in real code; "/" is decided in code (comment, regex or division).
_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n\f\v\u00a0\u2028\u2029\ufeff]+)
  | (?P<id>[A-Za-z_$\u0080-\uffff\\][\w$\u0080-\uffff\\]*)
  | (?P<num>\.?[0-9][0-9A-Za-z_.]*)
  | (?P<punct>=>|\.\.\.|===|!==|\?\?=|\?\.(?![0-9])|\*\*=?|<<=?|>>>=?|>>=?|&&=?|\|\|=?|\?\?
              |[-+*%&|^<>=!]=?|\+\+|--|[{}()\[\];,.:?~@#])
  | (?P<sq>'(?:[^'\\\n]|\\[\s\S])*(?:'|(?=\n)|\Z))
  | (?P<dq>"(?:[^"\\\n]|\\[\s\S])*(?:"|(?=\n)|\Z))
  | (?P<lc>//[^\n]*)
  | (?P<bc>/\*(?:[^*]|\*(?!/))*(?:\*/|\Z))
  | (?P<slash>/)
  | (?P<bt>`)
  | (?P<other>[\s\S])
""", re.VERBOSE)

_REGEX_BODY = re.compile(r"/(?:[^/\\\[\n]|\\.|\[(?:[^\]\\\n]|\\.)*\])+/[A-Za-z]*")
_TEMPLATE_CHUNK = re.compile(r"(?:[^`\\$]|\\[\s\S]|\$(?!\{))*")
_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|\r\n|[\s\S])")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v",
                   "0": "\0", "\n": "", "\r\n": "", "\u2028": "", "\u2029": ""}


def _unescape(body: str) -> str:
    if "\\" not in body:
        return body

    def repl(m: re.Match[str]) -> str:
        e = m.group(1)
        if e in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[e]
        if e[0] in "ux" and len(e) > 1:
            digits = e[2:-1] if e.startswith("u{") else e[1:]
            try:
                return chr(int(digits, 16))
            except (ValueError, OverflowError):
                return "?"
        return e

    return _ESCAPE.sub(repl, body)


class _LexLimit(Exception):
    """The nesting budget was exceeded."""


class _Lexer:
    """Tokens for a whole file.  The master pattern runs under ``finditer`` (one C-level scan)
    and is restarted only after the context-dependent cases: template literals and regular
    expression literals."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.templates: dict[int, _Template] = {}

    def lex(self, pos: int, depth: int, until_brace: bool,
            endpos: int | None = None) -> tuple[list[_Tok], int]:
        """Tokens from ``pos`` to ``endpos``; with ``until_brace``, stop at the ``}`` closing
        a ``${``."""
        src = self.src
        stop = len(src) if endpos is None else endpos
        toks: list[_Tok] = []
        append = toks.append
        braces = 0
        # For "/" after ")": a regex when the parentheses were those of if/while/for/with.
        parens: list[bool] = []
        closed_kw = False
        while True:
            restart = -1
            for m in _TOKEN.finditer(src, pos, stop):
                kind = m.lastgroup
                if kind in {"ws", "lc", "bc"}:
                    continue
                at = m.start()
                if kind == "id":
                    append(("id", m.group(), at))
                elif kind == "punct":
                    v = m.group()
                    if v == "(":
                        parens.append(bool(toks) and toks[-1][0] == "id"
                                      and toks[-1][1] in _KEYWORD_PARENS)
                    elif v == ")":
                        closed_kw = parens.pop() if parens else False
                    if until_brace and v in {"{", "}"}:
                        if v == "{":
                            braces += 1
                        elif braces == 0:
                            return toks, m.end()
                        else:
                            braces -= 1
                    append(("punct", v, at))
                elif kind in {"sq", "dq"}:
                    raw = m.group()
                    body = raw[1:-1] if len(raw) > 1 and raw[-1] == raw[0] else raw[1:]
                    append(("str", _unescape(body), at))
                elif kind == "num":
                    append(("num", m.group(), at))
                elif kind == "slash":
                    if _regex_allowed(toks, closed_kw):
                        r = _REGEX_BODY.match(src, at)
                        if r is not None:
                            append(("regex", r.group(), at))
                            restart = r.end()
                            break
                        append(("punct", "/", at))
                    elif src.startswith("/=", at):
                        append(("punct", "/=", at))
                        restart = at + 2
                        break
                    else:
                        append(("punct", "/", at))
                elif kind == "bt":
                    restart = self.template(at, depth)
                    append(("tpl", "", at))
                    break
            if restart < 0 or restart >= stop:
                return toks, stop
            pos = restart

    def template(self, start: int, depth: int) -> int:
        """Read the template literal at ``start`` into :attr:`templates`; return its end."""
        if depth >= _MAX_TEMPLATE_DEPTH:
            raise _LexLimit(f"template literals nested more than {_MAX_TEMPLATE_DEPTH} deep")
        src = self.src
        n = len(src)
        pos = start + 1
        parts: list[str] = []
        exprs: list[list[_Tok]] = []
        while True:
            m = _TEMPLATE_CHUNK.match(src, pos)
            assert m is not None
            parts.append(_unescape(m.group()))
            pos = m.end()
            if pos >= n:
                break
            if src[pos] == "`":
                pos += 1
                break
            inner, pos = self.lex(pos + 2, depth + 1, True, n)  # after "${"
            exprs.append(inner)
        self.templates[start] = (tuple(parts), tuple(exprs))
        return pos


def _regex_allowed(toks: list[_Tok], closed_kw: bool) -> bool:
    if not toks:
        return True
    kind, value, _ = toks[-1]
    if kind in ("str", "tpl", "num", "regex"):
        return False
    if kind == "id":
        return value in _REGEX_AFTER_WORDS
    if value == ")":
        return closed_kw
    return value not in ("]", "}")


# --------------------------------------------------------------------------- values

@dataclass(frozen=True, slots=True)
class _Str:
    parts: tuple[str | None, ...]
    hints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Arr:
    items: tuple[tuple[_V, ...], ...]
    keys: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class _Unk:
    hints: tuple[str, ...] = ()


_V = _Str | _Arr | _Unk
_UNK: tuple[_V, ...] = (_Unk(),)


def _text(s: _Str) -> str:
    return "".join("*" if p is None else p for p in s.parts)


def _uniq(xs: Sequence[_V]) -> tuple[_V, ...]:
    out: dict[_V, None] = {}
    for x in xs:
        if len(out) >= _MAX_ALTS:
            break
        out[x] = None
    return tuple(out)


def _hints(v: _V) -> tuple[str, ...]:
    return () if isinstance(v, _Arr) else v.hints


def _as_str(v: _V) -> _Str:
    return v if isinstance(v, _Str) else _Str((None,), _hints(v))


def _cat2(a: _Str, b: _Str) -> _Str:
    parts = list(a.parts)
    for p in b.parts:
        if parts and p is not None and parts[-1] is not None:
            parts[-1] += p
        elif parts and p is None and parts[-1] is None:
            continue
        else:
            parts.append(p)
    return _Str(tuple(parts), tuple(dict.fromkeys(a.hints + b.hints)))


def _concat(*ops: Sequence[_V]) -> tuple[_V, ...]:
    acc: list[_Str] = [_Str(("",))]
    for alts in ops:
        acc = [_cat2(x, _as_str(y)) for x in acc for y in (alts or _UNK)][:_MAX_ALTS]
    return _uniq(acc)


def _join(resolve: bool, ops: Sequence[Sequence[_V]]) -> tuple[_V, ...]:
    acc: list[_Str] = [_Str(("",))]
    for alts in ops:
        nxt: list[_Str] = []
        for x in acc:
            for y0 in alts or _UNK:
                y = _as_str(y0)
                first = y.parts[0] if y.parts else ""
                if (first is not None and first.startswith("/")) or x.parts in ((), ("",)):
                    nxt.append(y if resolve or x.parts in ((), ("",)) else _cat2(x, y))
                    continue
                last = x.parts[-1]
                sep = "" if last is not None and last.endswith("/") else "/"
                nxt.append(_cat2(_cat2(x, _Str((sep,))), y))
        acc = nxt[:_MAX_ALTS]
    out: list[_Str] = []
    for s in acc:
        if all(p is not None for p in s.parts):
            out.append(_Str((_normjoin(_text(s)),), s.hints))
        elif any("*" in p for p in s.parts if p is not None):
            out.append(s)
        else:  # normalised with each unknown part as a '*' that stays one
            norm = _normjoin(_text(s))
            pieces: list[str | None] = []
            for n, piece in enumerate(norm.split("*")):
                if n:
                    pieces.append(None)
                if piece:
                    pieces.append(piece)
            out.append(_Str(tuple(pieces), s.hints) if norm.count("*") == s.parts.count(None)
                        else s)
    return _uniq(out)


def _elements(vals: Sequence[_V]) -> list[_V]:
    """What ``for (x of v)`` binds ``x`` to: any element of an array (or value of an
    object); unknown for anything else."""
    out: list[_V] = []
    for v in vals:
        if isinstance(v, _Arr):
            for item in v.items:
                out.extend(item)
        else:
            out.append(_Unk(v.hints))
    return list(_uniq(out)) or list(_UNK)


def _keys(vals: Sequence[_V]) -> list[_V]:
    """What ``for (x in v)`` binds ``x`` to: a key of an object, an index of an array."""
    out: list[_V] = []
    for v in vals:
        if isinstance(v, _Arr):
            keys = v.keys if v.keys is not None else tuple(map(str, range(len(v.items))))
            out.extend(_Str((k,)) if k else _Unk() for k in keys)
        else:
            out.append(_Unk(v.hints))
    return list(_uniq(out)) or list(_UNK)


def _object_fn(fn: str, vals: Sequence[_V]) -> tuple[_V, ...]:
    """``Object.keys``/``values``/``entries`` of object (or array) literals."""
    out: list[_V] = []
    for v in vals:
        if not isinstance(v, _Arr):
            out.append(_Unk(v.hints))
            continue
        keys = v.keys if v.keys is not None else tuple(map(str, range(len(v.items))))
        ks = [(_Str((k,)) if k else _Unk(),) for k in keys]
        if fn == "keys":
            out.append(_Arr(tuple(ks)))
        elif fn == "values":
            out.append(_Arr(v.items))
        else:
            out.append(_Arr(tuple((_Arr((k, item)),) for k, item in zip(ks, v.items,
                                                                           strict=True))))
    return _uniq(out) or _UNK


def _const(vals: Sequence[_V] | None, default: str | None = None) -> str | None:
    """The one known string among ``vals`` (``default`` when there is no argument)."""
    if vals is None:
        return default
    texts = {_text(v) for v in vals if isinstance(v, _Str) and None not in v.parts}
    return texts.pop() if len(texts) == 1 and len(vals) == 1 else None


def _join_items(arr: _Arr, sep: str | None) -> list[_V]:
    """``arr.join(sep)``: every combination of the elements' alternatives; an unknown
    element (or separator) becomes a ``*`` part, keeping what is known around it."""
    acc: list[_Str] = [_Str(("",))]
    for n, item in enumerate(arr.items[:16]):
        if n:
            acc = [_cat2(x, _Str((sep,))) for x in acc]
        acc = [_cat2(x, _as_str(y)) for x in acc for y in (item or _UNK)][:_MAX_ALTS]
    return list(acc)


def _method(vals: Sequence[_V], name: str, args: list[tuple[_V, ...]]) -> tuple[_V, ...]:
    """A method call on the values: the string and array methods that keep what is known
    (``join``, ``concat``, case changes, ``replace`` with constants, element pickers);
    any other call gives an unknown value that keeps the hints."""
    out: list[_V] = []
    first = args[0] if args else None
    for v in vals:
        if isinstance(v, _Arr) and v.keys is None:
            if name == "join":
                out.extend(_join_items(v, _const(first, ",")))
            elif name == "concat":
                items = list(v.items)
                for a in args:
                    arrays = [x for x in a if isinstance(x, _Arr)]
                    if arrays:
                        for x in arrays:
                            items.extend(x.items)
                    else:
                        items.append(a)
                out.append(_Arr(tuple(items[:_MAX_ALTS])))
            elif name in ("filter", "slice", "reverse", "sort", "toSorted", "toReversed"):
                out.append(v)
            elif name in ("find", "findLast", "at", "pop", "shift"):
                out.extend(_elements([v]))
            else:
                out.append(_Unk())
        elif isinstance(v, _Str) and name in ("toString", "trim", "valueOf", "normalize"):
            out.append(v)
        elif isinstance(v, _Str) and name in ("toLowerCase", "toUpperCase"):
            low = name == "toLowerCase"
            out.append(_Str(tuple(p if p is None else p.lower() if low else p.upper()
                                  for p in v.parts), v.hints))
        elif isinstance(v, _Str) and name == "concat":
            out.extend(_concat((v,), *args))
        elif (isinstance(v, _Str) and name in ("replace", "replaceAll") and None not in v.parts
              and len(args) == 2 and _const(args[0]) is not None
              and _const(args[1]) is not None):
            old, new = _const(args[0]) or "", _const(args[1]) or ""
            text = _text(v)
            out.append(_Str((text.replace(old, new, -1 if name == "replaceAll" else 1),),
                            v.hints))
        else:
            out.append(_Unk(_hints(v)))
    return _uniq(out) or _UNK


def _normjoin(path: str) -> str:
    norm = posixpath.normpath(path) if path else path
    if path.startswith("./") and not norm.startswith(("/", "..")):
        norm = "./" + norm if norm != "." else "."
    return norm


# --------------------------------------------------------------------------- analysis

@dataclass(frozen=True, slots=True)
class _Found:
    pos: int
    api: str
    alts: tuple[_V, ...]
    confidence: Confidence
    hints: tuple[str, ...] = ()


class _Shared:
    """What every view of one file shares: bindings, templates and the step budget."""

    def __init__(self, file: str, templates: dict[int, _Template]) -> None:
        self.file = file
        self.dirname = posixpath.dirname(file) or "."
        self.templates = templates
        #: local name -> module it was required/imported from.
        self.modules: dict[str, str] = {}
        #: local name -> (module, member) for destructured or aliased members.
        self.members: dict[str, tuple[str, str]] = {}
        #: local name -> (token list, index, how) of each expression bound to it: ``=``
        #: (its value), ``+=`` (appended to it), ``of`` (an element of it: ``for (x of e)``,
        #: ``e.forEach(x => ...)``) or ``in`` (a key of it: ``for (x in e)``).
        self.values: dict[str, list[tuple[list[_Tok], int, str]]] = {}
        self.steps = 0
        self.in_progress: set[str] = set()
        self.memo: dict[str, tuple[_V, ...]] = {}
        #: names of require functions: ``require`` and ``createRequire(...)`` results.
        self.requires: set[str] = {"require"}


class _Analysis:
    """Matchers and the evaluator over one token list (the file, or one ``${}``)."""

    def __init__(self, toks: list[_Tok], shared: _Shared) -> None:
        self.t = toks
        self._ends: dict[int, int] | None = None
        self.sh = shared
        self.file = shared.file
        self.dirname = shared.dirname
        self.modules = shared.modules
        self.members = shared.members
        self.values = shared.values
        self._openers: dict[int, int] | None = None

    # --------------------------------------------------------------- helpers

    def at(self, i: int) -> _Tok | None:
        return self.t[i] if 0 <= i < len(self.t) else None

    def is_p(self, i: int, value: str) -> bool:
        tok = self.at(i)
        return tok is not None and tok[0] == "punct" and tok[1] == value

    def is_id(self, i: int, value: str | None = None) -> bool:
        tok = self.at(i)
        return tok is not None and tok[0] == "id" and (value is None or tok[1] == value)

    def const_str(self, i: int) -> str | None:
        tok = self.at(i)
        if tok is None:
            return None
        if tok[0] == "str":
            return tok[1]
        if tok[0] == "tpl":
            parts, exprs = self.sh.templates.get(tok[2], ((), ()))
            if not exprs:
                return parts[0] if parts else ""
        return None

    def skip_balanced(self, i: int) -> int:
        """Index after the bracketed group opening at ``i``."""
        if self._ends is None:
            self._ends = group_ends([t[1] if t[0] == "punct" else "" for t in self.t])
        end = self._ends.get(i)
        if end is not None:
            return end
        depth = 0
        j = i
        n = len(self.t)
        while j < n:
            tok = self.t[j]
            if tok[0] == "punct":
                if tok[1] in "([{":
                    depth += 1
                elif tok[1] in ")]}":
                    depth -= 1
                    if depth <= 0:
                        return j + 1
            j += 1
        return n

    def expr_end(self, i: int) -> int:
        """Index of the first token after an expression starting at ``i`` (stops at a
        ``,``, ``;`` or closing bracket at depth 0)."""
        n = len(self.t)
        j = i
        while j < n:
            tok = self.t[j]
            if tok[0] == "punct":
                if tok[1] in ("(", "[", "{"):
                    j = self.skip_balanced(j)
                    continue
                if tok[1] in (")", "]", "}", ",", ";"):
                    return j
            elif tok[0] == "id" and j > i and tok[1] in ("const", "let", "var",
                                                               "function", "class", "import",
                                                               "export", "return", "if"):
                return j
            j += 1
        return n

    def member_alias(self, i: int) -> tuple[str, str] | None:
        """``ffi.DynamicLibrary`` (a member of a required module) ending an expression."""
        if (self.is_id(i) and self.is_p(i + 1, ".") and self.is_id(i + 2)
                and self.expr_end(i) == i + 3):
            mod = self.modules.get(self.t[i][1])
            if mod is not None:
                return mod, self.t[i + 2][1]
        return None

    def require_at(self, i: int) -> tuple[str, int] | None:
        """``require('m')`` or ``await import('m')`` at ``i``: the module and the end."""
        if self.is_id(i) and self.t[i][1] in self.sh.requires and self.is_p(i + 1, "("):
            mod = self.const_str(i + 2)
            if mod is not None and self.is_p(i + 3, ")"):
                return mod, i + 4
        return None

    # --------------------------------------------------------------- bindings

    def scan_bindings(self) -> None:
        t = self.t
        n = len(t)
        for i in range(n):
            tok = t[i]
            if tok[0] != "id":
                continue
            v = tok[1]
            if v in ("const", "let", "var"):
                self._declaration(i + 1)
            elif v == "import" and not self.is_p(i + 1, "("):
                self._import(i + 1)
            elif v == "for":
                self._for_loop(i + 1)
            elif v in _ELEMENT_METHODS and self.is_p(i - 1, ".") and self.is_p(i + 1, "("):
                self._callback(i - 1, i + 2)
            elif ((self.is_p(i + 1, "=") or self.is_p(i + 1, "+="))
                  and not self.is_p(i - 1, ".") and not self.is_id(i - 1)):
                self.values.setdefault(v, []).append((self.t, i + 2, t[i + 1][1]))

    def _declaration(self, i: int) -> None:
        while True:
            tok = self.at(i)
            if tok is None:
                return
            if tok[0] == "id":
                name = tok[1]
                if self.is_p(i + 1, "="):
                    start = i + 2
                    k = start + 2 if self.is_id(start) and self.is_p(start + 1, ".") else start
                    if self.is_id(k, "createRequire") and self.is_p(k + 1, "("):
                        self.sh.requires.add(name)
                    req = self.require_at(start)
                    alias = self.member_alias(start)
                    if alias is not None:
                        self.members[name] = alias
                    if req is not None:
                        self.modules[name] = req[0]
                        # const x = require('m').member
                        if self.is_p(req[1], ".") and self.is_id(req[1] + 1):
                            del self.modules[name]
                            self.members[name] = (req[0], self.t[req[1] + 1][1])
                    self.values.setdefault(name, []).append((self.t, start, "="))
                    i = self.expr_end(start)
                else:
                    i += 1
            elif tok[0] == "punct" and tok[1] in ("{", "["):
                if tok[1] == "{":
                    self._destructure(i)
                i = self.skip_balanced(i)
                if self.is_p(i, "="):
                    i = self.expr_end(i + 1)
            else:
                return
            if not self.is_p(i, ","):
                return
            i += 1

    def _for_loop(self, i: int) -> None:
        """``for ([const|let|var] x of e)`` / ``for (x in e)``: ``x`` is an element (a key)
        of ``e``: one binding for all iterations, not an unrolled loop."""
        if self.is_id(i, "await"):
            i += 1
        if not self.is_p(i, "("):
            return
        j = i + 1
        if self.is_id(j, "const") or self.is_id(j, "let") or self.is_id(j, "var"):
            j += 1
        if self.is_id(j) and (self.is_id(j + 1, "of") or self.is_id(j + 1, "in")):
            self.values.setdefault(self.t[j][1], []).append(
                (self.t, j + 2, self.t[j + 1][1]))

    def _callback(self, dot: int, arg: int) -> None:
        """``e.forEach((x) => ...)``, ``e.map(function (x) {...})``...: the callback's first
        parameter is an element of ``e`` (the receiver is re-read from its own tokens)."""
        j = arg
        if self.is_id(j, "async"):
            j += 1
        if self.is_id(j, "function"):
            j += 1
            if self.is_id(j):
                j += 1
        if self.is_p(j, "("):
            j += 1
        elif not (self.is_id(j) and self.is_p(j + 1, "=>")):
            return
        if not self.is_id(j) or not (self.is_p(j + 1, ")") or self.is_p(j + 1, ",")
                                     or self.is_p(j + 1, "=>")):
            return
        start = self.chain_start(dot)
        bound = self.values.setdefault(self.t[j][1], [])
        if start is not None and dot - start <= 2048 and len(bound) < 16:
            bound.append((self.t[start:dot], 0, "of"))

    def opener(self, close: int) -> int | None:
        """Index of the bracket that the one at ``close`` closes (one pass over the tokens,
        on first use)."""
        if self._openers is None:
            self._openers = {}
            stack: list[int] = []
            pairs = {")": "(", "]": "[", "}": "{"}
            for k, tok in enumerate(self.t):
                if tok[0] != "punct":
                    continue
                if tok[1] in ("(", "[", "{"):
                    stack.append(k)
                elif tok[1] in pairs and stack and self.t[stack[-1]][1] == pairs[tok[1]]:
                    self._openers[k] = stack.pop()
        return self._openers.get(close)

    def chain_start(self, dot: int) -> int | None:
        """Start of the member chain ending before ``dot`` (``a.b[c](d)`` in
        ``a.b[c](d).forEach``), or ``None`` when it is not one (or is over 16 links)."""
        j = dot - 1
        for _ in range(8):
            tok = self.at(j)
            if tok is None:
                return None
            if tok[0] == "punct" and tok[1] in (")", "]"):
                k = self.opener(j)
                if k is None:
                    return None
                j = k
                if not (self.is_id(j - 1) or self.is_p(j - 1, ")") or self.is_p(j - 1, "]")):
                    return j  # an array literal, or an expression in parentheses
                j -= 1
                continue
            if tok[0] in ("id", "str", "tpl"):
                if self.is_p(j - 1, ".") or self.is_p(j - 1, "?."):
                    j -= 2
                    continue
                return j
            return None
        return None

    def _destructure(self, i: int) -> None:
        """``{ a, b: c } = require('m')``: bind members."""
        end = self.skip_balanced(i)
        if not self.is_p(end, "="):
            return
        req = self.require_at(end + 1)
        if req is not None:
            self._bind_members(i + 1, end - 1, req[0])

    def _bind_members(self, i: int, end: int, module: str) -> None:
        while i < end:
            if self.is_id(i):
                member = self.t[i][1]
                local = member
                if (self.is_p(i + 1, ":") or self.is_id(i + 1, "as")) and self.is_id(i + 2):
                    local = self.t[i + 2][1]
                    i += 2
                self.members[local] = (module, member)
            i += 1

    def _import(self, i: int) -> None:
        # import x from 'm'; import * as x from 'm'; import { a, b as c } from 'm';
        # import x, { a } from 'm'
        j = i
        default: str | None = None
        star: str | None = None
        named: tuple[int, int] | None = None
        while j < len(self.t) and not self.is_id(j, "from"):
            if self.is_p(j, "*") and self.is_id(j + 1, "as") and self.is_id(j + 2):
                star = self.t[j + 2][1]
                j += 3
                continue
            if self.is_p(j, "{"):
                end = self.skip_balanced(j)
                named = (j + 1, end - 1)
                j = end
                continue
            if self.is_id(j) and default is None and star is None and named is None:
                default = self.t[j][1]
            elif not self.is_p(j, ","):
                return
            j += 1
            if j - i > 200:
                return
        mod = self.const_str(j + 1)
        if mod is None:
            return
        for local in (default, star):
            if local is not None:
                self.modules[local] = mod
        if named is not None:
            self._bind_members(named[0], named[1], mod)

    def module_of(self, name: str) -> str | None:
        return self.modules.get(name)

    # --------------------------------------------------------------- evaluation

    def ev(self, i: int, depth: int = 0) -> tuple[tuple[_V, ...], int]:
        """Evaluate the expression at ``i``; return its values and the index after it."""
        self.sh.steps += 1
        if depth > _MAX_EVAL_DEPTH or self.sh.steps > _MAX_STEPS:
            return _UNK, self.expr_end(i)
        vals, j = self.ev_ternary(i, depth + 1)
        return vals, j

    def ev_ternary(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        vals, j = self.ev_or(i, d)
        if self.is_p(j, "?"):
            a, j = self.ev(j + 1, d)
            if self.is_p(j, ":"):
                b, j = self.ev(j + 1, d)
                return _uniq([*a, *b]), j
            return _uniq(a), j
        return vals, j

    def ev_or(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        """``a || b`` and ``a ?? b`` may give either; ``a && b`` gives ``b`` when it
        matters (a falsy ``a`` is no library name)."""
        vals, j = self.ev_cmp(i, d)
        out = list(vals)
        while True:
            if self.is_p(j, "||") or self.is_p(j, "??"):
                more, j = self.ev_cmp(j + 1, d)
                out.extend(more)
            elif self.is_p(j, "&&"):
                more, j = self.ev_cmp(j + 1, d)
                out = list(more)
            else:
                return _uniq(out), j

    def ev_cmp(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        """Comparisons give booleans: read past them."""
        vals, j = self.ev_add(i, d)
        while (self.is_p(j, "===") or self.is_p(j, "!==") or self.is_p(j, "==")
               or self.is_p(j, "!=") or self.is_p(j, "<") or self.is_p(j, ">")
               or self.is_p(j, "<=") or self.is_p(j, ">=") or self.is_id(j, "instanceof")
               or self.is_id(j, "in")):
            _, j = self.ev_add(j + 1, d)
            vals = _UNK
        return vals, j

    def ev_add(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        vals, j = self.ev_postfix(i, d)
        ops = [vals]
        while self.is_p(j, "+"):
            more, j = self.ev_postfix(j + 1, d)
            ops.append(more)
        if len(ops) == 1:
            return vals, j
        return _concat(*ops), j

    def args(self, i: int, d: int) -> tuple[list[tuple[_V, ...]], int]:
        """Arguments of a call whose ``(`` is at ``i``."""
        out: list[tuple[_V, ...]] = []
        j = i + 1
        while j < len(self.t) and not self.is_p(j, ")"):
            vals, k = self.ev(j, d)
            out.append(vals)
            k = k if k > j else self.expr_end(j)
            if self.is_p(k, ","):
                k += 1
            elif not self.is_p(k, ")"):
                k = self.expr_end(k)
                if self.is_p(k, ","):
                    k += 1
            if k <= j:
                break
            j = k
        return out, j + 1

    def ev_postfix(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        tok = self.at(i)
        if tok is None:
            return _UNK, i
        # path.join(...) / path.resolve(...) / require('path').join(...)
        callee = self.path_fn(i)
        if callee is not None:
            fn, k = callee
            ops, j = self.args(k, d)
            if fn in ("join", "resolve"):
                vals = _join(fn == "resolve", ops)
            elif fn == "dirname" and ops:
                vals = _uniq([_Str((posixpath.dirname(_text(v)) or ".",), v.hints)
                              if isinstance(v, _Str) and None not in v.parts else _Unk()
                              for v in ops[0]])
            else:
                vals = _UNK
            return self.member_tail(vals, j, d)
        vals, j = self.ev_primary(i, d)
        return self.member_tail(vals, j, d)

    def member_tail(self, vals: tuple[_V, ...], j: int,
                    d: int) -> tuple[tuple[_V, ...], int]:
        while True:
            if self.is_p(j, "[") :
                key, k = self.ev(j + 1, d)
                end = self.skip_balanced(j)
                vals = self.index(vals, key)
                j = end
                del k
            elif (self.is_p(j, ".") or self.is_p(j, "?.")) and self.is_id(j + 1):
                name = self.t[j + 1][1]
                j += 2
                if self.is_p(j, "("):
                    args, j = self.args(j, d)
                    vals = _method(vals, name, args)
                else:
                    vals = self.index(vals, ((_Str((name,))),))
            elif self.is_p(j, "("):
                _, j = self.args(j, d)
                vals = _UNK
            else:
                return vals, j

    def index(self, base: tuple[_V, ...], key: tuple[_V, ...]) -> tuple[_V, ...]:
        known = [_text(k) for k in key if isinstance(k, _Str) and None not in k.parts]
        out: list[_V] = []
        for b in base:
            if not isinstance(b, _Arr):
                out.append(_Unk(_hints(b)))
                continue
            if b.keys is not None and len(known) == len(key) and known:
                hits = [b.items[n] for n, k in enumerate(b.keys) if k in known]
                if hits:
                    for h in hits:
                        out.extend(h)
                    continue
            if b.keys is None and len(known) == 1 and known[0].isdigit():
                n = int(known[0])
                if n < len(b.items):
                    out.extend(b.items[n])
                    continue
            for pos in b.items:
                out.extend(pos)
        return _uniq(out) or _UNK

    def path_fn(self, i: int) -> tuple[str, int] | None:
        """``path.join(`` (with ``path`` required from 'path') or ``join(`` (destructured)."""
        if (self.is_id(i) and self.is_p(i + 1, ".") and self.is_id(i + 2)
                and self.is_p(i + 3, "(")
                and (self.modules.get(self.t[i][1]) in _PATH_MODULES
                     or self.t[i][1] == "path")):
            return self.t[i + 2][1], i + 3
        req = self.require_at(i)
        if req is not None and req[0] in _PATH_MODULES and self.is_p(req[1], ".") \
                and self.is_id(req[1] + 1) and self.is_p(req[1] + 2, "("):
            return self.t[req[1] + 1][1], req[1] + 2
        if self.is_id(i) and self.is_p(i + 1, "("):
            mem = self.members.get(self.t[i][1])
            if mem is not None and mem[0] in _PATH_MODULES:
                return mem[1], i + 1
        return None

    def ev_primary(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        tok = self.t[i]
        if tok[0] == "str":
            return (_Str((tok[1],)),), i + 1
        if tok[0] == "num":
            return (_Str((tok[1],)),), i + 1
        if tok[0] == "tpl":
            ops: list[tuple[_V, ...]] = []
            parts, exprs = self.sh.templates.get(tok[2], ((), ()))
            for n, part in enumerate(parts):
                ops.append((_Str((part,)),))
                if n < len(exprs):
                    ops.append(_Analysis(exprs[n], self.sh).ev(0, d)[0] if exprs[n] else _UNK)
            return _concat(*ops), i + 1
        if tok[0] == "punct":
            if tok[1] == "(":
                vals, _ = self.ev(i + 1, d)
                return vals, self.skip_balanced(i)
            if tok[1] == "[":
                return self.ev_array(i, d)
            if tok[1] == "{":
                return self.ev_object(i, d)
            return _UNK, self.expr_end(i)
        if tok[0] == "id":
            return self.ev_identifier(i, d)
        return _UNK, i + 1

    def ev_array(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        end = self.skip_balanced(i)
        items: list[tuple[_V, ...]] = []
        j = i + 1
        while j < end - 1:
            if self.is_p(j, ","):
                j += 1
                continue
            if self.is_p(j, "..."):
                vals, k = self.ev(j + 1, d)
                for v in vals:
                    if isinstance(v, _Arr):
                        items.extend(v.items)
            else:
                vals, k = self.ev(j, d)
                items.append(vals)
            k = max(k, j + 1)
            if not self.is_p(k, ",") and k < end - 1:
                k = self.expr_end(k)
            j = k
            if len(items) >= _MAX_ALTS:
                break
        return (_Arr(tuple(items)),), end

    def ev_object(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        end = self.skip_balanced(i)
        keys: list[str] = []
        items: list[tuple[_V, ...]] = []
        j = i + 1
        while j < end - 1:
            tok = self.t[j]
            key: str | None = None
            if tok[0] in ("id", "str", "num") and self.is_p(j + 1, ":"):
                key = tok[1]
                vals, k = self.ev(j + 2, d)
                keys.append(key)
                items.append(vals)
            elif self.is_p(j, "["):  # computed key
                k = self.skip_balanced(j)
                if self.is_p(k, ":"):
                    vals, k = self.ev(k + 1, d)
                    keys.append("")
                    items.append(vals)
            else:
                k = self.expr_end(j)
            k = max(k, j + 1)
            if not self.is_p(k, ",") and k < end - 1:
                k = self.expr_end(k)
            j = k + 1 if self.is_p(k, ",") else k
            if len(items) >= _MAX_ALTS:
                break
        return (_Arr(tuple(items), tuple(keys)),), end

    def ev_identifier(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        name = self.t[i][1]
        if name == "__dirname":
            return (_Str((self.dirname,)),), i + 1
        if name == "__filename":
            return (_Str((self.file,)),), i + 1
        if name == "process" and self.is_p(i + 1, ".") and self.is_id(i + 2, "env"):
            j = i + 3
            var: str | None = None
            if self.is_p(j, ".") and self.is_id(j + 1):
                var, j = self.t[j + 1][1], j + 2
            elif self.is_p(j, "["):
                var = self.const_str(j + 1)
                j = self.skip_balanced(j)
            hint = f"overridable by ${var}" if var else "overridable by an environment variable"
            # `process.env.X || 'default'`: the default carries the hint too.
            if self.is_p(j, "||") or self.is_p(j, "??"):
                more, k = self.ev_add(j + 1, d)
                marked = [_Str(v.parts, (*v.hints, hint)) if isinstance(v, _Str) else v
                          for v in more]
                return _uniq([_Unk((hint,)), *marked]), k
            return (_Unk((hint,)),), j
        if name in ("new", "await", "typeof", "void"):
            return self.ev_postfix(i + 1, d)
        if (name == "Object" and self.is_p(i + 1, ".") and self.is_p(i + 3, "(")
                and self.is_id(i + 2) and self.t[i + 2][1] in ("keys", "values", "entries")):
            args, j = self.args(i + 3, d)
            return self.member_tail(_object_fn(self.t[i + 2][1], args[0] if args else _UNK),
                                    j, d)
        if name in self.sh.memo:
            return self.sh.memo[name], i + 1
        if name in self.values and name not in self.sh.in_progress:
            self.sh.in_progress.add(name)
            try:
                out: list[_V] = []
                appended: list[tuple[_V, ...]] = []
                for toks, start, how in self.values[name][:16]:
                    view = self if toks is self.t else _Analysis(toks, self.sh)
                    vals, _ = view.ev(start, d)
                    if how == "+=":
                        appended.append(vals)
                    else:
                        out.extend(vals if how == "=" else
                                   _elements(vals) if how == "of" else _keys(vals))
                # `x += y`: the value before (any assigned one) followed by y, once.
                base = tuple(out) or _UNK
                for vals in appended:
                    out.extend(_concat(base, vals))
            finally:
                self.sh.in_progress.discard(name)
            result = _uniq(out) or _UNK
            self.sh.memo[name] = result
            return result, i + 1
        return _UNK, i + 1

    # --------------------------------------------------------------- detection

    def detect(self) -> Iterator[_Found]:
        t = self.t
        n = len(t)
        for i in range(n):
            tok = t[i]
            if tok[0] != "id":
                continue
            yield from self._detect_at(i, tok[1])

    def _detect_at(self, i: int, v: str) -> Iterator[_Found]:
        prev_dot = self.is_p(i - 1, ".") or self.is_p(i - 1, "?.")
        # receiver.method( ... )
        if self.is_p(i + 1, ".") and self.is_id(i + 2) and self.is_p(i + 3, "(") and not prev_dot:
            mod = self.module_of(v)
            method = self.t[i + 2][1]
            kind = _module_kind(mod) if mod is not None else None
            if kind is None and v in ("koffi", "ffi", "ffi_napi", "ffiNapi"):
                kind = "koffi" if v == "koffi" else "ffi"
                conf = Confidence.MEDIUM
            else:
                conf = Confidence.HIGH
            if kind == "koffi" and method == "load":
                yield self.call(i + 3, "koffi.load", 0, conf)
            elif kind == "ffi" and method in ("Library", "DynamicLibrary"):
                yield self.call(i + 3, f"ffi.{method}", 0, conf)
            elif kind == "ffi-rs" and method == "open":
                yield self.ffi_rs_open(i + 3, conf)
            elif v == "process" and method == "dlopen":
                yield self.call(i + 3, "process.dlopen", 1, Confidence.HIGH)
        # member( ... ) imported by destructuring or named import
        if self.is_p(i + 1, "(") and not prev_dot:
            mem = self.members.get(v)
            kind = _module_kind(mem[0]) if mem is not None else None
            member = mem[1] if mem is not None else v
            if kind == "koffi" and member == "load":
                yield self.call(i + 1, "koffi.load", 0, Confidence.HIGH)
            elif kind == "ffi" and member in ("Library", "DynamicLibrary"):
                yield self.call(i + 1, f"ffi.{member}", 0, Confidence.HIGH)
            elif kind == "ffi-rs" and member == "open":
                yield self.ffi_rs_open(i + 1, Confidence.HIGH)
            elif kind is None and member == "DynamicLibrary":
                # ffi-napi's DynamicLibrary reached through a relative or unknown module.
                yield self.call(i + 1, "ffi.DynamicLibrary", 0, Confidence.MEDIUM)
            mod = self.module_of(v)
            if mod is not None and _module_kind(mod) in ("bindings", "node-gyp-build"):
                yield self.addon(i + 1, _module_kind(mod) or "")
        # require('bindings')( ... ) / require('node-gyp-build')( ... ) / require('x.node')
        if v in self.sh.requires and not prev_dot:
            req = self.require_at(i)
            if req is not None:
                kind = _module_kind(req[0])
                if kind in ("bindings", "node-gyp-build") and self.is_p(req[1], "("):
                    yield self.addon(req[1], kind or "")
            if self.is_p(i + 1, "(") and not self.is_p(i + 2, ")") and (
                    req is None or _native_require(_Str((req[0],)))):
                vals, _ = self.ev(i + 2)
                picked = [x for x in _flatten(vals) if isinstance(x, _Str) and _native_require(x)]
                if picked:
                    addon = any(_text(x).endswith(".node") for x in picked)
                    hints = []
                    if any(x.parts[0] and x.parts[0].startswith(".") for x in picked):
                        hints.append("a relative path is resolved against the requiring "
                                     "file's directory")
                    if any(not _text(x).startswith((".", "/")) for x in picked):
                        hints.append(_PACKAGE_HINT)
                    yield _Found(self.t[i][2], "require",
                                 _uniq([self.relative(x) for x in picked]),
                                 Confidence.HIGH if addon else Confidence.MEDIUM,
                                 tuple(hints))

    def relative(self, v: _V) -> _V:
        """A ``require`` path starting with ``./`` or ``../``, made relative to the same base
        as the file's own path."""
        if isinstance(v, _Str) and v.parts and v.parts[0] is not None and \
                v.parts[0].startswith(("./", "../")):
            joined = _join(False, [(_Str((self.dirname,)),), (v,)])
            return joined[0] if joined else v
        return v

    def call(self, paren: int, api: str, arg: int, conf: Confidence) -> _Found:
        args, _ = self.args(paren, 0)
        vals = args[arg] if arg < len(args) else ()
        return _Found(self.t[paren][2], api, vals, conf)

    def ffi_rs_open(self, paren: int, conf: Confidence) -> _Found:
        args, _ = self.args(paren, 0)
        paths: list[_V] = []
        keys: list[str] = []
        for a in args[:1]:
            for v in a:
                if isinstance(v, _Arr) and v.keys is not None:
                    for k, vals in zip(v.keys, v.items, strict=True):
                        if k == "path":
                            paths.extend(vals)
                        elif k == "library":
                            keys.extend(_text(x) for x in vals if isinstance(x, _Str))
        hints = tuple(f"opened under the key {k!r}" for k in dict.fromkeys(keys))
        return _Found(self.t[paren][2], "ffi-rs.open", _uniq(paths), conf, hints)

    def addon(self, paren: int, kind: str) -> _Found:
        args, _ = self.args(paren, 0)
        vals: list[_V] = []
        for v in args[0] if args else ():
            if isinstance(v, _Arr) and v.keys is not None:  # bindings({ bindings: 'x' })
                for k, item in zip(v.keys, v.items, strict=True):
                    if k == "bindings":
                        vals.extend(item)
            else:
                vals.append(v)
        if kind == "bindings":
            named = [_cat2(x, _Str((".node",))) if isinstance(x, _Str) and
                     not _text(x).endswith(".node") else x for x in vals]
            if not args:
                named = [_Str(("bindings.node",))]
            hint = ("found by 'bindings' under build/Release, build/Debug, out/Release... "
                    "of the package root",)
            return _Found(self.t[paren][2], "bindings", _uniq(named), Confidence.HIGH, hint)
        hint = ("node-gyp-build loads prebuilds/<platform>-<arch>/*.node or "
                "build/Release/*.node under this directory",)
        dirs = [_Str((posixpath.normpath(_text(v)),), v.hints)
                if isinstance(v, _Str) and None not in v.parts and _text(v) else v for v in vals]
        return _Found(self.t[paren][2], "node-gyp-build", _uniq(dirs), Confidence.HIGH, hint)


def _module_kind(mod: str | None) -> str | None:
    if mod is None:
        return None
    if mod in _KOFFI:
        return "koffi"
    if mod in _FFI_NAPI:
        return "ffi"
    if mod in _FFI_RS:
        return "ffi-rs"
    if mod in _BINDINGS:
        return "bindings"
    if mod in _GYP_BUILD:
        return "node-gyp-build"
    return None


# --------------------------------------------------------------------------- sites

def _flatten(vals: Sequence[_V], depth: int = 0) -> Iterator[_Str | _Unk]:
    for v in vals:
        if isinstance(v, _Arr):
            if depth < 4:
                for pos in v.items:
                    yield from _flatten(pos, depth + 1)
        else:
            yield v


def _package_part(text: str) -> str:
    """``@scope/name`` or ``name`` of a bare specifier."""
    parts = text.split("/")
    return "/".join(parts[:2] if text.startswith("@") else parts[:1])


def _native_require(s: _Str) -> bool:
    """Whether ``require(s)`` may load a native addon, so is worth a site: a name ending in
    ``.node``; an extensionless path into node-gyp's build/Release or build/Debug; a package
    (its main file, no subpath) whose name is computed in part (``lightningcss-${platform}``)
    or names a platform and an architecture (``@scope/pkg-linux-x64-gnu``).  Whether it really
    is an addon is decided by the resolver, which follows Node's resolution in the scanned
    tree."""
    text = _text(s)
    if text.endswith(".node"):
        return True
    first = s.parts[0] if s.parts else None
    if not first or _SCRIPT.search(text):
        return False
    if first.startswith((".", "/")):
        return bool(_BUILD_DIR.search(text))
    pkg = _package_part(text)
    if pkg != text:
        return False  # a file of a package other than a .node one: JavaScript or data
    if "*" in pkg:
        return any(c.isalnum() for c in first)
    words = set(re.split(r"[-._/@+]", pkg.lower()))
    return bool(words & _OS_WORDS) and bool(words & _ARCH_WORDS)


def _useful(text: str) -> bool:
    return any(c.isalpha() for c in text.replace("*", ""))


def _make_sites(file: str, line: int, found: _Found) -> list[LoadSite]:
    """Group candidate names into sites: exact names first, then patterns (low confidence)."""
    api, vals, confidence, hints = found.api, found.alts, found.confidence, found.hints
    exact: dict[str, None] = {}
    patterns: dict[str, None] = {}
    extra: list[str] = list(hints)
    unknown = False
    for v in _flatten(vals):
        extra.extend(v.hints)
        if isinstance(v, _Unk):
            unknown = True
            continue
        text = _text(v)
        if not text or (not _useful(text) and api != "node-gyp-build"):
            unknown = True
        elif None in v.parts or "*" in text:
            patterns[text] = None
        else:
            exact[text] = None
    env = any(h.startswith("overridable") for h in extra)
    sites: list[LoadSite] = []
    tail = [f"also a {_UNKNOWN_HINT}"] if unknown else []
    if exact:
        conf = Confidence.MEDIUM if env and confidence is Confidence.HIGH else confidence
        sites.append(LoadSite(file, line, _LANGUAGE, api, tuple(exact)[:64], conf,
                              hints=tuple(dict.fromkeys([*extra, *tail]))))
    if patterns:
        sites.append(LoadSite(file, line, _LANGUAGE, api, tuple(patterns)[:64], Confidence.LOW,
                              hints=tuple(dict.fromkeys([*extra, _PATTERN_HINT, *tail]))))
    if not sites:
        sites.append(LoadSite(file, line, _LANGUAGE, api, (), Confidence.LOW,
                              hints=tuple(dict.fromkeys([*extra, _UNKNOWN_HINT]))))
    return sites


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def _lex_spans(lexer: _Lexer, spans: list[tuple[int, int]], problems: list[str],
               file: str) -> list[_Tok]:
    src = lexer.src
    toks: list[_Tok] = []
    total = 0
    for n, (lo, hi) in enumerate(spans):
        if total >= _MAX_WINDOWS_CHARS:
            problems.append(f"{file}: analysed only {n} of {len(spans)} regions around "
                            "trigger words; load sites may be missing")
            break
        start = lo
        if lo > 0:
            nl = src.find("\n", lo, min(hi, lo + 4096))
            semi = src.find(";", lo, min(hi, lo + 4096))
            cut = nl if nl >= 0 else semi
            start = cut + 1 if cut >= 0 else lo
        total += hi - start
        part, _ = lexer.lex(start, 0, False, hi)
        toks.extend(part)
        toks.append(("punct", ";", hi))
    return toks


def _lex_windows(lexer: _Lexer, problems: list[str], file: str) -> list[_Tok]:
    """Tokens of the windows around trigger words of a large file, joined by ``;``.

    Each window starts at a line start (or after a ``;`` in minified code) so that the
    tokenizer usually starts outside any string or comment; one that does not only garbles
    its own window.  A second pass adds windows around every use of the names bound to a
    loader module in the first (``const k = require('koffi')`` ... ``k.load(...)``)."""
    src = lexer.src
    spans = _merge([(max(0, m.start() - _WINDOW), min(len(src), m.end() + _WINDOW))
                    for m in _TRIGGERS.finditer(src)])
    scratch: list[str] = []
    first = _Analysis(_lex_spans(lexer, spans, scratch, file), _Shared(file, {}))
    first.scan_bindings()
    names = sorted({n for n, mod in first.modules.items() if _module_kind(mod)}
                   | {n for n, (mod, _) in first.members.items() if _module_kind(mod)})
    if names:
        uses = re.compile(r"(?<![\w$])(?:" + "|".join(map(re.escape, names[:64]))
                          + r")(?![\w$])")
        more = [(max(0, m.start() - _WINDOW // 8), min(len(src), m.end() + _WINDOW // 8))
                for _, m in zip(range(10_000), uses.finditer(src), strict=False)]
        spans = _merge(spans + more)
    lexer.templates.clear()
    toks = _lex_spans(lexer, spans, problems, file)
    problems.append(f"{file}: large file ({len(src)} characters): tokenized only around "
                    "trigger words and the names bound to loader modules")
    return toks


def _line_index(src: str) -> list[int]:
    return [m.start() for m in re.finditer("\n", src)]


def _decode(source: str | bytes, file: str, problems: list[str]) -> str | None:
    """Text to analyse, or ``None`` for binary content (NUL bytes)."""
    if isinstance(source, bytes):
        if b"\0" in source:
            problems.append(f"{file}: not analysed: binary content (NUL bytes)")
            return None
        try:
            return source.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(f"{file}: not valid UTF-8 ({e.reason} at byte {e.start}); "
                            "read with replacement characters")
            return source.decode("utf-8", errors="replace")
    if "\0" in source:
        problems.append(f"{file}: not analysed: binary content (NUL characters)")
        return None
    return source


#: identifiers in a catch block that pass the failure on (or end the program)
_GIVES_UP = frozenset({"throw", "return", "exit", "abort", "reallyExit"})
#: what may stand before ``(...) {``: a block's head, a loop's, else a function's
_BLOCK_HEADS = frozenset({"if", "switch", "catch", "with"})
_LOOP_HEADS = frozenset({"for", "while"})


def _guards(toks: list[_Tok]) -> list[Guard[int]]:
    """The spans (positions) of ``try`` blocks whose ``catch`` goes on without what failed
    (no ``throw``, ``return`` or ``process.exit`` in it), each with the spans of the
    function bodies inside it (they run where they are called).  A ``try`` inside a loop is
    left out (candidates tried in turn: what follows the loop decides)."""
    n = len(toks)
    puncts = [v if k == "punct" else "" for k, v, _ in toks]
    ends = group_ends(puncts)
    opener = {end - 1: start for start, end in ends.items() if end <= n}
    # What each "{" opens: a loop's body, a function's, or another block.
    kind: dict[int, str] = {}
    for j, p in enumerate(puncts):
        if p != "{" or j == 0:
            continue
        before = toks[j - 1]
        if before[:2] == ("punct", "=>"):
            kind[j] = "function"
        elif before[:2] == ("id", "do"):
            kind[j] = "loop"
        elif before[:2] == ("punct", ")") and j - 1 in opener:
            head = toks[opener[j - 1] - 1] if opener[j - 1] > 0 else ("", "", 0)
            kind[j] = ("loop" if head[1] in _LOOP_HEADS else
                       "block" if head[0] == "id" and head[1] in _BLOCK_HEADS else "function")
    out: list[Guard[int]] = []
    enclosing: list[int] = []  # the open braces around the current token
    for i, (k, v, _pos) in enumerate(toks):
        while enclosing and ends.get(enclosing[-1], n) <= i:
            enclosing.pop()
        if puncts[i] == "{":
            enclosing.append(i)
        if not (k == "id" and v == "try" and i + 1 < n and puncts[i + 1] == "{"):
            continue
        body_end = ends.get(i + 1, n)
        j = body_end
        if j >= n or toks[j][:2] != ("id", "catch"):
            continue  # try/finally: nothing is caught
        j += 1
        if j < n and puncts[j] == "(":
            j = ends.get(j, n)
        if j >= n or puncts[j] != "{":
            continue
        handler = toks[j + 1:ends.get(j, n) - 1]
        if any(t[0] == "id" and t[1] in _GIVES_UP for t in handler):
            continue
        around = [kind.get(b, "block") for b in enclosing]
        inner = around[len(around) - around[::-1].index("function"):] if (
            "function" in around) else around
        if "loop" in inner:
            continue
        holes = [(toks[b][2], toks[ends.get(b, n) - 1][2]) for b in range(i + 2, body_end)
                 if kind.get(b) == "function" and ends.get(b, n) - 1 < n]
        out.append((toks[i + 1][2], toks[body_end - 1][2], holes, "try/catch"))
    return out


def detect_javascript(source: str | bytes, file: str) -> tuple[list[LoadSite], list[str]]:
    """Find the places in one JavaScript (or TypeScript) file that load native code.

    Returns the load sites (ordered by position) and the problems met.  Never raises for bad
    input: binary content and files over :data:`MAX_SOURCE_CHARS` are reported, not
    analysed; files over :data:`FULL_LEX_CHARS` are analysed around trigger words only.
    """
    problems: list[str] = []
    decoded = _decode(source, file, problems)
    if decoded is None:
        return [], problems
    source = decoded
    if len(source) > MAX_SOURCE_CHARS:
        return [], [*problems, f"{file}: not analysed: {len(source)} characters is over the "
                               f"{MAX_SOURCE_CHARS}-character limit"]
    if not _TRIGGERS.search(source):
        return [], problems
    lexer = _Lexer(source)
    try:
        if len(source) <= FULL_LEX_CHARS:
            toks, _ = lexer.lex(0, 0, False)
        else:
            toks = _lex_windows(lexer, problems, file)
    except _LexLimit as e:
        return [], [*problems, f"{file}: not analysed: {e}"]
    except RecursionError:
        return [], [*problems, f"{file}: not analysed: nesting too deep"]
    an = _Analysis(toks, _Shared(file, lexer.templates))
    an.scan_bindings()
    newlines = _line_index(source)
    sites: list[LoadSite] = []
    # (only what was lexed whole: a window of a huge file may cut a try from its catch)
    guards = _guards(toks) if len(source) <= FULL_LEX_CHARS else []
    try:
        for f in an.detect():
            line = bisect.bisect_right(newlines, f.pos - 1) + 1
            made = _make_sites(file, line, f)
            guard = guard_at(guards, f.pos)
            sites.extend(replace(site, guarded=guard) if guard else site for site in made)
    except RecursionError:
        problems.append(f"{file}: analysis stopped: nesting too deep")
    if an.sh.steps > _MAX_STEPS:
        problems.append(f"{file}: analysis stopped after {_MAX_STEPS} evaluation steps; "
                        "load sites may be missing")
    return list(dict.fromkeys(sites)), problems


# --------------------------------------------------------------------------- binding.gyp

_PKG_CONFIG = re.compile(r"pkg-config\b([^)`|;]*)")
_GYP_VAR = re.compile(r"<[!@]*\(([^()]*)\)")


#: gyp's variables as node-gyp sets them for a build on this system (Linux); any other
#: variable is unknown, and a condition on it keeps both branches.
_GYP_VARIABLES = {"OS": "linux"}


def _gyp_condition(expr: str) -> bool | None:
    """A gyp condition (a Python expression over gyp variables: ``OS=="win"``,
    ``OS in ("linux", "mac") and target_arch=="x64"``) for a Linux build: True, False, or
    None when it depends on something else."""
    try:
        tree = parse(expr.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    return _gyp_truth(_gyp_value(tree, 0))


_UNKNOWN = object()


def _gyp_value(node: ast.AST, depth: int) -> object:
    if depth > 32:
        return _UNKNOWN
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        # gyp expands "<(var)" in a condition before evaluating it
        text = node.value
        for var, value in _GYP_VARIABLES.items():
            text = text.replace(f"<({var})", value).replace(f"<@({var})", value)
        return _UNKNOWN if ("<(" in text or "<@(" in text or "<!" in text) else text
    if isinstance(node, ast.Constant) and isinstance(node.value, int | bool):
        return node.value
    if isinstance(node, ast.Name):
        return _GYP_VARIABLES.get(node.id, _UNKNOWN)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        items = [_gyp_value(e, depth + 1) for e in node.elts]
        return _UNKNOWN if _UNKNOWN in items else tuple(items)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _gyp_truth(_gyp_value(node.operand, depth + 1))
        return _UNKNOWN if inner is None else not inner
    if isinstance(node, ast.BoolOp):
        truths = [_gyp_truth(_gyp_value(v, depth + 1)) for v in node.values]
        if isinstance(node.op, ast.And):
            return False if False in truths else (_UNKNOWN if None in truths else True)
        return True if True in truths else (_UNKNOWN if None in truths else False)
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        a, b = _gyp_value(node.left, depth + 1), _gyp_value(node.comparators[0], depth + 1)
        if a is _UNKNOWN or b is _UNKNOWN:
            return _UNKNOWN
        op = node.ops[0]
        if isinstance(op, ast.Eq | ast.NotEq):
            return (a == b) is isinstance(op, ast.Eq)
        if isinstance(op, ast.In | ast.NotIn) and isinstance(b, tuple):
            return (a in b) is isinstance(op, ast.In)
    return _UNKNOWN


def _gyp_truth(value: object) -> bool | None:
    return None if value is _UNKNOWN else bool(value)


def _gyp_branches(entry: object) -> Iterator[object]:
    """The parts of one ``conditions`` entry (``[cond, then]``, ``[cond, then, else]`` or
    gyp's chained ``[cond1, d1, cond2, d2, ..., else]``) a Linux build merges in; both
    sides of a condition that cannot be decided."""
    if not isinstance(entry, list | tuple):
        return
    i = 0
    while i + 1 < len(entry):
        cond, branch = entry[i], entry[i + 1]
        truth = _gyp_condition(cond) if isinstance(cond, str) else None
        if truth is not False:
            yield branch
        if truth is True:
            return
        i += 2
    if i < len(entry):
        yield entry[i]  # the else part


def _gyp_strings(node: object, key: str | None, depth: int = 0) -> Iterator[tuple[str, str]]:
    """(key, string) for every string under a ``libraries``/``ldflags`` key, anywhere, but
    in the branches of ``conditions`` a Linux build does not take (``OS=="win"``)."""
    if depth > 64:
        return
    if isinstance(node, dict):
        for k, v in node.items():
            if (isinstance(k, str) and k.rstrip("+=!/?%") in ("conditions", "target_conditions")
                    and isinstance(v, list | tuple)):
                for entry in v:
                    for branch in _gyp_branches(entry):
                        yield from _gyp_strings(branch, key, depth + 1)
                continue
            yield from _gyp_strings(v, k if isinstance(k, str) else key, depth + 1)
    elif isinstance(node, list | tuple):
        for v in node:
            yield from _gyp_strings(v, key, depth + 1)
    elif isinstance(node, str) and key is not None:
        base = key.rstrip("+=!/?%")
        if base in ("libraries", "ldflags", "xcode_settings", "OTHER_LDFLAGS",
                    "AdditionalDependencies"):
            yield base, node


def _gyp_literal_strings(text: str) -> Iterator[tuple[str, str]]:
    """Fallback when the file is not a Python literal: every quoted string on a line that
    mentions libraries or ldflags, or that looks like a linker flag."""
    for m in re.finditer(r"'((?:[^'\\\n]|\\.)*)'|\"((?:[^\"\\\n]|\\.)*)\"", text):
        s = m.group(1) if m.group(1) is not None else m.group(2) or ""
        if s.startswith("-l") or "pkg-config" in s:
            yield "libraries", s


def detect_binding_gyp(text: str, file: str) -> tuple[list[LoadSite], list[str]]:
    """Libraries named by a node-gyp ``binding.gyp``: ``-lfoo`` (a stem), ``-l:libfoo.so.1``
    and paths (exact names), and ``pkg-config`` modules (stems, with a hint)."""
    problems: list[str] = []
    if len(text) > MAX_SOURCE_CHARS:
        return [], [f"{file}: not analysed: {len(text)} characters is over the "
                    f"{MAX_SOURCE_CHARS}-character limit"]
    try:
        tree = literal_eval(text.replace("\r\n", "\n"))
        entries = list(_gyp_strings(tree, None))
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as e:
        problems.append(f"{file}: not a Python-literal gyp file ({type(e).__name__}); "
                        "scanned its strings instead")
        entries = list(_gyp_literal_strings(text))
    sites: list[LoadSite] = []
    seen: set[tuple[str, bool, str]] = set()
    for _key, value in entries:
        for name, stem, hint in _gyp_entry(value):
            if (name, stem, hint) in seen:
                continue
            seen.add((name, stem, hint))
            idx = text.find(value)
            line = text.count("\n", 0, idx) + 1 if idx >= 0 else None
            unresolved = "<(" in name or "<!" in name or "$(" in name
            conf = Confidence.LOW if unresolved else (
                Confidence.MEDIUM if hint else Confidence.HIGH)
            hints: tuple[str, ...] = (hint,) if hint else ()
            if unresolved:
                hints = (*hints, "contains a gyp variable resolved at build time")
            # a pkg-config module is resolved by its .pc file's Libs, not as a stem
            api = "pkg-config" if hint.startswith("pkg-config") else "binding.gyp"
            sites.append(LoadSite(file, line, "gyp", api, (name,), conf,
                                  stem=stem, hints=hints))
    return sites, problems


def _gyp_entry(value: str) -> Iterator[tuple[str, bool, str]]:
    """(name, stem, hint) for each library one gyp string names."""
    for m in _PKG_CONFIG.finditer(value):
        words = m.group(1).split()
        mods = [w for w in words if not w.startswith("-") and re.fullmatch(r"[\w.+-]+", w)]
        for mod in mods:
            yield (mod, True, "pkg-config module: the library its .pc file's Libs name")
    if "pkg-config" in value:
        return
    for word in value.split():
        if word.startswith("-l:") and len(word) > 3:
            yield word[3:], False, ""
        elif word.startswith("-l") and len(word) > 2:
            lib = word[2:]
            if "/" in lib or "\\" in lib or lib.lower().endswith(".lib"):
                yield lib, False, ""
            else:
                yield lib, True, ""
        elif word.startswith("-") or _GYP_VAR.fullmatch(word):
            continue
        elif re.search(r"\.(so(\.\d+)*|a|dylib|lib|dll|tbd)$", word, re.IGNORECASE):
            yield word, False, ""
