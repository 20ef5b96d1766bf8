"""Static detection of dynamic library loading in Ruby source.

A tokenizer skips comments (``#``, ``=begin``/``=end``, everything after ``__END__``), reads
string literals with ``#{}`` interpolation, ``%w[]``/``%i[]``/``%q()`` literals, heredocs,
symbols and regular expressions, then matchers look for:

* ruby-ffi: ``ffi_lib 'curl'``, ``ffi_lib ['libcurl.so.4', 'curl']`` (each argument is one
  library, an array lists alternatives), ``FFI::DynamicLibrary.open(name, flags)``;
* Fiddle: ``Fiddle.dlopen('x')``, ``Fiddle::Handle.new('x')``, ``dlload 'x'`` (Importer),
  and the older ``DL`` equivalents.

Names are evaluated through constants and variables assigned in the file, string
concatenation and interpolation, ``File.join``/``File.expand_path`` with ``__dir__``, ternaries,
and ``ENV['X'] || 'default'`` / ``ENV.fetch('X', 'default')`` (the default, with the hint
"overridable by $X").  ruby-ffi tries a bare name both as written and as ``lib<name>.so``, so
a name without a directory or library suffix is reported as a stem.
"""

from __future__ import annotations

import bisect
import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from unveil.dynload.brackets import group_ends
from unveil.dynload.guards import Guard, guard_at
from unveil.model import Confidence, LoadSite

__all__ = ["MAX_SOURCE_CHARS", "detect_ruby"]

#: Larger sources are not analysed (a problem is reported instead).  Ruby sources are small;
#: the tokenizer runs about half a megabyte a second, so this bounds a file to ~2 s.
MAX_SOURCE_CHARS = 1024 * 1024
_MAX_TOKENS = 2_000_000
_MAX_DEPTH = 24
_MAX_ALTS = 64
_MAX_STEPS = 100_000
_LANGUAGE = "ruby"

_TRIGGERS = re.compile(r"ffi_lib|DynamicLibrary|dlopen|Handle|dlload")
_LIB_SUFFIX = re.compile(r"\.(so(\.[\w.]+)?|dylib|dll|bundle)$|/", re.IGNORECASE)
_PATTERN_HINT = "'*' in a name marks a part computed at run time"
_UNKNOWN_HINT = "library name computed at run time"
_STEM_HINT = "ruby-ffi tries the name as written and as lib<name>.so"
_LIBC_HINT = "FFI::Library::LIBC: the C library (libc.so.6 with glibc)"


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # id | const | str | words | sym | num | punct | nl | regex | ivar
    value: str
    pos: int
    #: for strings: literal parts and the source text of each interpolation (``None``
    #: marks where an interpolation sits in ``parts``).
    parts: tuple[str | None, ...] = ()
    interp: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    space_before: bool = False


_BASIC = re.compile(r"""
    (?P<ws>[ \t\r\f\v]+|\\\n)
  | (?P<nl>\n)
  | (?P<comment>\#[^\n]*)
  | (?P<ivar>@@?[A-Za-z_]\w*|\$[A-Za-z_]\w*|\$.)
  | (?P<const>[A-Z]\w*)
  | (?P<id>[a-z_\u0080-\uffff][\w\u0080-\uffff]*[?!]?)
  | (?P<num>[0-9][0-9_]*(?:\.[0-9_]+)?(?:[eE][-+]?[0-9]+)?)
  | (?P<sym>:(?:[A-Za-z_]\w*[?!=]?|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'))
  | (?P<punct>\*\*|::|=>|==|!=|\|\|=|&&=|\|\||&&|<=>|<=|>=|\+=|-=|\.\.\.?|->
              |[-+*/%=<>!&|^~?:;,.(){}\[\]])
  | (?P<other>[\s\S])
""", re.VERBOSE)

_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}
_HEREDOC = re.compile(r"<<([~-]?)(['\"`]?)([A-Za-z_]\w*)\2")
_REGEX_AFTER = frozenset({"if", "unless", "when", "and", "or", "not", "return", "puts",
                          "elsif", "while", "until", "then", "do"})


class _Limit(Exception):
    pass


class _Lexer:
    """Ruby tokens, enough to find string arguments of known calls."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.toks: list[_Tok] = []
        self.pending_heredocs: list[tuple[str, bool]] = []

    def add(self, tok: _Tok) -> None:
        self.toks.append(tok)
        if len(self.toks) > _MAX_TOKENS:
            raise _Limit(f"more than {_MAX_TOKENS} tokens")

    def run(self) -> list[_Tok]:
        src = self.src
        n = len(src)
        pos = 0
        line_start = True
        space = False
        while pos < n:
            if line_start:
                if src.startswith("=begin", pos) and (pos + 6 == n or src[pos + 6] in " \t\r\n"):
                    m = re.compile(r"^=end\b[^\n]*\n?", re.MULTILINE).search(src, pos)
                    pos = m.end() if m else n
                    continue
                if src.startswith("__END__", pos) and src[pos + 7:pos + 8] in ("", "\n", "\r"):
                    break
            line_start = False
            c = src[pos]
            if c in "'\"`":
                pos = self.string(pos, c, c, interpolate=c != "'", space=space)
            elif c == "%" and self.percent_ok(pos, space):
                pos = self.percent(pos, space)
            elif c == "<" and src.startswith("<<", pos) and self.heredoc_ok(pos, space):
                m = _HEREDOC.match(src, pos)
                assert m is not None
                self.pending_heredocs.append((m.group(3), m.group(1) in ("~", "-")))
                self.add(_Tok("str", "", pos, parts=("",), space_before=space))
                pos = m.end()
            elif c == "/" and self.regex_ok(pos, space):
                pos = self.delimited(pos + 1, "/", "/")
                self.add(_Tok("regex", "", pos))
            else:
                m = _BASIC.match(src, pos)
                assert m is not None
                kind = m.lastgroup or "other"
                end = m.end()
                if kind == "ws":
                    space = True
                    pos = end
                    continue
                if kind == "comment":
                    pos = end
                    continue
                if kind == "nl":
                    self.add(_Tok("nl", "\n", pos))
                    pos = end
                    if self.pending_heredocs:
                        pos = self.skip_heredocs(pos)
                    line_start = True
                    space = True
                    continue
                if kind == "sym":
                    value = m.group()[1:].strip("\"'")
                    self.add(_Tok("sym", value, pos, space_before=space))
                elif kind != "other":
                    self.add(_Tok(kind, m.group(), pos, space_before=space))
                pos = end
            space = False
        return self.toks

    # --------------------------------------------------------------- context tests

    def prev(self) -> _Tok | None:
        return self.toks[-1] if self.toks else None

    def value_ended(self) -> bool:
        """Whether the previous token ends an operand (so an operator may follow)."""
        p = self.prev()
        if p is None or p.kind == "nl":
            return False
        if p.kind == "punct":
            return p.value in (")", "]", "}")
        if p.kind == "id":
            return p.value not in _REGEX_AFTER
        return True

    def percent_ok(self, pos: int, space: bool) -> bool:
        nxt = self.src[pos + 1:pos + 2]
        if not nxt:
            return False
        if not self.value_ended():
            return nxt in "wWiIqQrsx" or (not nxt.isalnum() and not nxt.isspace())
        p = self.prev()
        # `puts %w[a b]` (command argument) but `a % b` (modulo).
        return bool(space and p is not None and p.kind == "id"
                    and not self.src[pos + 1:pos + 2].isspace() and nxt in "wWiIqQ([{")

    def heredoc_ok(self, pos: int, space: bool) -> bool:
        m = _HEREDOC.match(self.src, pos)
        if m is None:
            return False
        if m.group(1) or m.group(2):
            return True
        p = self.prev()
        return not self.value_ended() or (space and p is not None and p.kind == "id")

    def regex_ok(self, pos: int, space: bool) -> bool:
        if not self.value_ended():
            return True
        p = self.prev()
        nxt = self.src[pos + 1:pos + 2]
        return bool(space and p is not None and p.kind == "id" and nxt and not nxt.isspace())

    # --------------------------------------------------------------- literals

    def delimited(self, pos: int, opener: str, closer: str) -> int:
        """Index after the closing delimiter, honouring escapes and nesting."""
        src = self.src
        n = len(src)
        depth = 0
        while pos < n:
            c = src[pos]
            if c == "\\":
                pos += 2
                continue
            if c == closer and depth == 0:
                return pos + 1
            if opener != closer:
                if c == opener:
                    depth += 1
                elif c == closer:
                    depth -= 1
            pos += 1
        return n

    def string(self, pos: int, opener: str, closer: str, *, interpolate: bool,
               space: bool) -> int:
        src = self.src
        n = len(src)
        start = pos
        pos += 1
        parts: list[str | None] = []
        interp: list[str] = []
        buf: list[str] = []
        depth = 0
        while pos < n:
            c = src[pos]
            if c == "\\" and pos + 1 < n:
                e = src[pos + 1]
                if interpolate:
                    buf.append({"n": "\n", "t": "\t", "0": "\0", "s": " ",
                                "\n": ""}.get(e, e))
                else:
                    buf.append(e if e in (closer, "\\") else "\\" + e)
                pos += 2
                continue
            if c == closer and depth == 0:
                pos += 1
                break
            if opener != closer:
                if c == opener:
                    depth += 1
                elif c == closer:
                    depth -= 1
            if interpolate and c == "#" and src.startswith("#{", pos):
                end = self.interpolation_end(pos + 2)
                parts.append("".join(buf))
                buf = []
                parts.append(None)
                interp.append(src[pos + 2:end - 1])
                pos = end
                continue
            buf.append(c)
            pos += 1
        parts.append("".join(buf))
        self.add(_Tok("str", "", start, parts=tuple(parts), interp=tuple(interp),
                      space_before=space))
        return pos

    def interpolation_end(self, pos: int) -> int:
        src = self.src
        n = len(src)
        depth = 0
        while pos < n:
            c = src[pos]
            if c in "'\"":
                pos = self.delimited(pos + 1, c, c)
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                if depth == 0:
                    return pos + 1
                depth -= 1
            pos += 1
        return n

    def percent(self, pos: int, space: bool) -> int:
        src = self.src
        kind = src[pos + 1]
        if kind.isalpha():
            opener = src[pos + 2:pos + 3]
            body = pos + 2
        else:
            opener = kind
            kind = "Q"
            body = pos + 1
        if not opener or opener.isalnum() or opener.isspace():
            self.add(_Tok("punct", "%", pos, space_before=space))
            return pos + 1
        closer = _PAIRS.get(opener, opener)
        if kind in "wWiI":
            end = self.delimited(body + 1, opener, closer)
            words = tuple(src[body + 1:end - 1].split())
            self.add(_Tok("words", "", pos, words=words, space_before=space))
            return end
        if kind in "qQ":
            return self.string(body, opener, closer, interpolate=kind == "Q", space=space)
        end = self.delimited(body + 1, opener, closer)
        self.add(_Tok("regex" if kind == "r" else "str", "", pos, parts=(None,),
                      space_before=space))
        return end

    def skip_heredocs(self, pos: int) -> int:
        src = self.src
        n = len(src)
        for ident, indented in self.pending_heredocs:
            while pos < n:
                eol = src.find("\n", pos)
                line = src[pos:eol if eol >= 0 else n]
                pos = eol + 1 if eol >= 0 else n
                if (line.strip() if indented else line.rstrip("\r")) == ident:
                    break
        self.pending_heredocs = []
        return pos


# --------------------------------------------------------------------------- values

@dataclass(frozen=True, slots=True)
class _Str:
    parts: tuple[str | None, ...]
    hints: tuple[str, ...] = ()
    stem: bool | None = None  # None: decide by the name's shape
    #: a file name ``Dir[...]`` would list only if it exists: a guess, never "missing"
    glob: bool = False


@dataclass(frozen=True, slots=True)
class _Arr:
    items: tuple[tuple[_V, ...], ...]


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


def _as_str(v: _V) -> _Str:
    if isinstance(v, _Str):
        return v
    return _Str((None,), () if isinstance(v, _Arr) else v.hints)


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


def _join(ops: Sequence[Sequence[_V]]) -> tuple[_V, ...]:
    acc: list[_Str] = [_Str(("",))]
    for alts in ops:
        nxt: list[_Str] = []
        for x in acc:
            for y0 in alts or _UNK:
                y = _as_str(y0)
                first = y.parts[0] if y.parts else ""
                if x.parts in ((), ("",)) or (first is not None and first.startswith("/")):
                    nxt.append(y)
                    continue
                last = x.parts[-1]
                sep = "" if last is not None and last.endswith("/") else "/"
                nxt.append(_cat2(_cat2(x, _Str((sep,))), y))
        acc = nxt[:_MAX_ALTS]
    return _uniq([_Str((posixpath.normpath(_text(s)),), s.hints)
                  if None not in s.parts and _text(s) else s for s in acc])


# --------------------------------------------------------------------------- analysis

@dataclass(frozen=True, slots=True)
class _Found:
    pos: int
    api: str
    alts: tuple[_V, ...]
    confidence: Confidence
    hints: tuple[str, ...] = ()


class _Analysis:
    def __init__(self, toks: list[_Tok], file: str, parent: _Analysis | None = None) -> None:
        self.t = toks
        self._ends: dict[int, int] | None = None
        self.file = file
        self.dir = posixpath.dirname(file) or "."
        #: name -> (index of an expression, whether the name is bound to one of its
        #: elements: ``for x in e``, ``e.each do |x|``) for each binding.
        self.values: dict[str, list[tuple[int, bool]]] = {}
        self.steps: int = parent.steps if parent is not None else 0
        self.in_progress: set[str] = set()
        self._openers: dict[int, int] | None = None
        #: the file's analysis, for an interpolation's (names are looked up there)
        self.parent = parent
        if parent is not None:
            return
        for i, tok in enumerate(toks):
            if tok.kind in ("id", "const", "ivar") and (
                    self.is_p(i + 1, "=") or self.is_p(i + 1, "||=")) and \
                    not self.is_p(i - 1, ".") and not self.is_p(i - 1, "::"):
                self.bind(tok.value, i + 2)
            elif tok.kind == "id" and tok.value == "for" and self.is_k(i + 1, "id") and \
                    self.is_k(i + 2, "id", "in"):
                self.bind(toks[i + 1].value, i + 3, element=True)
            elif tok.kind == "id" and tok.value in _BLOCK_ELEMENT and self.is_p(i - 1, "."):
                self.block_param(i)

    def bind(self, name: str, start: int, *, element: bool = False) -> None:
        lst = self.values.setdefault(name, [])
        if len(lst) < 16:
            lst.append((start, element))

    def block_param(self, i: int) -> None:
        """``recv.each do |x|`` / ``recv.map { |x, i| ... }``: ``x`` is an element of
        ``recv`` (one binding for every iteration, not an unrolled loop)."""
        j = i + 1
        if self.is_p(j, "(") and not self.t[j].space_before:
            j = self.skip_balanced(j)
        if not (self.is_k(j, "id", "do") or self.is_p(j, "{")) or not self.is_p(j + 1, "|") \
                or not self.is_k(j + 2, "id"):
            return
        start = self.chain_start(i - 1)
        if start is not None:
            self.bind(self.t[j + 2].value, start, element=True)

    def opener(self, close: int) -> int | None:
        """Index of the bracket that the one at ``close`` closes (one pass, on first use)."""
        if self._openers is None:
            self._openers = {}
            stack: list[int] = []
            pairs = {")": "(", "]": "[", "}": "{"}
            for k, tok in enumerate(self.t):
                if tok.kind != "punct":
                    continue
                if tok.value in ("(", "[", "{"):
                    stack.append(k)
                elif tok.value in pairs and stack and \
                        self.t[stack[-1]].value == pairs[tok.value]:
                    self._openers[k] = stack.pop()
        return self._openers.get(close)

    def chain_start(self, dot: int) -> int | None:
        """Start of the receiver chain ending before ``dot`` (``A::B.libs(x)`` in
        ``A::B.libs(x).each``), or ``None`` (not one, or over 8 links)."""
        j = dot - 1
        for _ in range(8):
            tok = self.at(j)
            if tok is None:
                return None
            if tok.kind == "punct" and tok.value in (")", "]"):
                k = self.opener(j)
                if k is None:
                    return None
                j = k
                prev = self.at(j - 1)
                if prev is None or self.t[j].space_before or not (
                        prev.kind in ("id", "const") or (prev.kind == "punct"
                                                        and prev.value in (")", "]"))):
                    return j  # an array literal, or an expression in parentheses
                j -= 1
                continue
            if tok.kind in ("id", "const", "ivar", "words", "str", "sym"):
                if self.is_p(j - 1, ".") or self.is_p(j - 1, "::"):
                    j -= 2
                    continue
                return j
            return None
        return None

    def at(self, i: int) -> _Tok | None:
        return self.t[i] if 0 <= i < len(self.t) else None

    def is_p(self, i: int, v: str) -> bool:
        tok = self.at(i)
        return tok is not None and tok.kind == "punct" and tok.value == v

    def is_k(self, i: int, kind: str, v: str | None = None) -> bool:
        tok = self.at(i)
        return tok is not None and tok.kind == kind and (v is None or tok.value == v)

    def skip_balanced(self, i: int) -> int:
        if self._ends is None:
            self._ends = group_ends([t.value if t.kind == "punct" else "" for t in self.t])
        end = self._ends.get(i)
        if end is not None:
            return end
        depth = 0
        n = len(self.t)
        j = i
        while j < n:
            tok = self.t[j]
            if tok.kind == "punct":
                if tok.value in ("(", "[", "{"):
                    depth += 1
                elif tok.value in (")", "]", "}"):
                    depth -= 1
                    if depth <= 0:
                        return j + 1
            j += 1
        return n

    def expr_end(self, i: int, stop_nl: bool = True) -> int:
        n = len(self.t)
        j = i
        while j < n:
            tok = self.t[j]
            if tok.kind == "punct":
                if tok.value in ("(", "[", "{"):
                    j = self.skip_balanced(j)
                    continue
                if tok.value in (")", "]", "}", ",", ";"):
                    return j
            if tok.kind == "nl" and stop_nl:
                return j
            if tok.kind == "id" and tok.value in ("do", "if", "unless", "end") and j > i:
                return j
            j += 1
        return n

    # --------------------------------------------------------------- evaluation

    def ev(self, i: int, d: int = 0) -> tuple[tuple[_V, ...], int]:
        self.steps += 1
        if d > _MAX_DEPTH or self.steps > _MAX_STEPS:
            return _UNK, self.expr_end(i)
        vals, j = self.ev_or(i, d + 1)
        if self.is_p(j, "?"):
            a, j = self.ev(j + 1, d + 1)
            if self.is_p(j, ":"):
                b, j = self.ev(j + 1, d + 1)
                return _uniq([*a, *b]), j
            return a, j
        return vals, j

    def ev_or(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        vals, j = self.ev_add(i, d)
        out = list(vals)
        while self.is_p(j, "||") or self.is_k(j, "id", "or"):
            more, j = self.ev_add(j + 1, d)
            out.extend(more)
        return _uniq(out), j

    def ev_add(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        vals, j = self.ev_postfix(i, d)
        ops = [vals]
        while self.is_p(j, "+"):
            more, j = self.ev_postfix(j + 1, d)
            ops.append(more)
        if len(ops) == 1:
            return vals, j
        if any(isinstance(v, _Arr) for v in ops[0]) or any(
                op and all(isinstance(v, _Arr) for v in op) for op in ops):
            return (_array_sum(ops),), j
        return _concat(*ops), j

    def args(self, i: int, d: int) -> tuple[list[tuple[_V, ...]], int]:
        """Arguments in parentheses at ``i`` or, without them, up to the end of line."""
        paren = self.is_p(i, "(")
        j = i + 1 if paren else i
        out: list[tuple[_V, ...]] = []
        n = len(self.t)
        while j < n:
            if paren and self.is_p(j, ")"):
                return out, j + 1
            if not paren and (self.is_k(j, "nl") or self.is_p(j, ";")):
                return out, j
            if self.is_k(j, "nl"):
                j += 1
                continue
            if self.is_p(j, "*") and not self.is_p(j + 1, ","):  # a splat: its elements
                vals, k = self.ev(j + 1, d)
                for v in vals:
                    out.extend(v.items if isinstance(v, _Arr) else [(v,)])
            else:
                vals, k = self.ev(j, d)
                out.append(vals)
            if k <= j:
                k = self.expr_end(j, stop_nl=not paren)
            if self.is_p(k, ","):
                k += 1
                while self.is_k(k, "nl"):
                    k += 1
            elif not (paren and self.is_p(k, ")")):
                k = self.expr_end(k, stop_nl=not paren)
                if self.is_p(k, ","):
                    k += 1
                elif k <= j:
                    return out, k + 1
                elif not paren:
                    return out, k
            j = k
        return out, n

    def ev_postfix(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        vals, j = self.ev_primary(i, d)
        return self.postfix_tail(vals, j, d)

    def const_path(self, i: int) -> tuple[list[str], int]:
        names: list[str] = []
        j = i
        if self.is_p(j, "::"):
            j += 1
        while self.is_k(j, "const"):
            names.append(self.t[j].value)
            if self.is_p(j + 1, "::") and self.is_k(j + 2, "const"):
                j += 2
                continue
            j += 1
            break
        return names, j

    def ev_primary(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        tok = self.at(i)
        if tok is None:
            return _UNK, i
        if tok.kind == "str":
            ops: list[tuple[_V, ...]] = []
            k = 0
            for p in tok.parts:
                if p is None:
                    src = tok.interp[k] if k < len(tok.interp) else ""
                    k += 1
                    ops.append(self.ev_source(src, d))
                else:
                    ops.append((_Str((p,)),))
            vals = _concat(*ops)
            # Adjacent literals concatenate: "lib" "foo"
            j = i + 1
            while self.is_k(j, "str"):
                more, j = self.ev_primary(j, d)
                vals = _concat(vals, more)
            return vals, j
        if tok.kind == "words":
            return (_Arr(tuple((_Str((w,)),) for w in tok.words)),), i + 1
        if tok.kind == "num":
            return (_Str((tok.value,)),), i + 1
        if tok.kind == "sym":
            return (_Str((tok.value,)),), i + 1
        if tok.kind == "punct" and tok.value == "[":
            end = self.skip_balanced(i)
            items: list[tuple[_V, ...]] = []
            j = i + 1
            while j < end - 1:
                if self.is_p(j, ",") or self.is_k(j, "nl"):
                    j += 1
                    continue
                if self.is_p(j, "*"):
                    vals, k = self.ev(j + 1, d)
                    for v in vals:
                        if isinstance(v, _Arr):
                            items.extend(v.items)
                else:
                    vals, k = self.ev(j, d)
                    items.append(vals)
                j = max(k, j + 1)
                if not self.is_p(j, ",") and j < end - 1:
                    j = self.expr_end(j, stop_nl=False)
                if len(items) >= _MAX_ALTS:
                    break
            return (_Arr(tuple(items)),), end
        if tok.kind == "punct" and tok.value == "(":
            vals, _ = self.ev(i + 1, d)
            return vals, self.skip_balanced(i)
        if tok.kind == "const" or (tok.kind == "punct" and tok.value == "::"):
            return self.ev_const(i, d)
        if tok.kind in ("id", "ivar"):
            return self.ev_name(i, d)
        return _UNK, i + 1

    def ev_source(self, src: str, d: int) -> tuple[_V, ...]:
        """An interpolation ``#{...}``: a literal, a constant or a variable directly, any
        other expression through its own tokens (names are the file's)."""
        src = src.strip()
        if re.fullmatch(r"\d+", src):
            return (_Str((src,)),)
        lit = re.fullmatch(r"'([^'\\]*)'|\"([^\"\\#]*)\"", src)
        if lit:
            return (_Str((lit.group(1) if lit.group(1) is not None else lit.group(2),)),)
        if re.fullmatch(r"(?:::)?[A-Z]\w*(?:::[A-Z]\w*)*|@?[a-z_]\w*", src):
            name = src.rsplit("::", 1)[-1]
            if name == "__dir__":
                return (_Str((self.dir,)),)
            if "::" not in src and not src.startswith("@") and src[0].islower():
                return self.lookup(name, d)
        if not src or len(src) > 4096 or d > _MAX_DEPTH:
            return _UNK
        try:
            toks = _Lexer(src).run()
        except _Limit:
            return _UNK
        sub = _Analysis(toks, self.file, parent=self)
        vals, _ = sub.ev(0, d + 1)
        self.steps = max(self.steps, sub.steps)
        return vals

    def lookup(self, name: str, d: int) -> tuple[_V, ...]:
        if self.parent is not None:
            return self.parent.lookup(name, d)
        if name not in self.values or name in self.in_progress:
            return _UNK
        self.in_progress.add(name)
        try:
            out: list[_V] = []
            for start, element in self.values[name]:
                vals, _ = self.ev(start, d + 1)
                out.extend(_elements(vals) if element else vals)
        finally:
            self.in_progress.discard(name)
        return _uniq(out) or _UNK

    def ev_const(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        names, j = self.const_path(i)
        if not names:
            return _UNK, i + 1
        last = names[-1]
        if names[-2:] == ["FFI", "CURRENT_PROCESS"] or last == "CURRENT_PROCESS":
            return (), j
        if last == "LIBC" and ("Library" in names or "Platform" in names or len(names) == 1):
            return (_Str(("c",), (_LIBC_HINT,), stem=True),), j
        if last == "ENV":
            return self.ev_env(j, d)
        if last in _PLATFORM_CONSTANTS and names[0] in ("FFI", "Platform"):
            return self.postfix_tail((_Str((_PLATFORM_CONSTANTS[last],)),), j, d)
        if names[-2:] == ["RbConfig", "CONFIG"] or names == ["CONFIG"]:
            if not self.is_p(j, "["):
                return _UNK, j
            key, _ = self.ev(j + 1, d)
            k = self.skip_balanced(j)
            known = {_text(x) for x in key if isinstance(x, _Str) and None not in x.parts}
            vals = tuple(_Str((_RBCONFIG[x],)) for x in sorted(known) if x in _RBCONFIG)
            return self.postfix_tail(vals or _UNK, k, d)
        if names[-1] == "FFI" and self.is_p(j, ".") and self.is_k(j + 1, "id",
                                                                 "map_library_name"):
            ops, k = self.args(j + 2, d) if self.is_p(j + 2, "(") or (
                self.at(j + 2) is not None and self.t[j + 2].space_before
                and not self.is_k(j + 2, "nl")) else ([], j + 2)
            mapped = tuple(_map_library_name(v) for v in (ops[0] if ops else _UNK))
            return self.postfix_tail(_uniq(mapped), k, d)
        if names == ["Array"] and self.is_p(j, "(") and not self.t[j].space_before:
            ops, k = self.args(j, d)
            return self.postfix_tail(_to_array(ops[0] if ops else ()), k, d)
        if last == "Dir" and (self.is_p(j, "[") or (self.is_p(j, ".") and self.is_k(
                j + 1, "id", "glob"))):
            if self.is_p(j, "["):
                ops, k = self.args_in(j, d)
            else:
                k = j + 2
                ops = []
                if self.is_p(k, "(") or (self.at(k) is not None and self.t[k].space_before
                                         and not self.is_k(k, "nl")):
                    ops, k = self.args(k, d)
            return self.postfix_tail(_dir_glob(ops), k, d)
        if last == "File" and self.is_p(j, ".") and self.is_k(j + 1, "id"):
            fn = self.t[j + 1].value
            k = j + 2
            if self.is_p(k, "(") or (self.at(k) is not None and self.t[k].space_before
                                     and not self.is_k(k, "nl")):
                ops, k = self.args(k, d)
            else:
                ops = []
            if fn == "join":
                return self.postfix_tail(_join(ops), k, d)
            if fn == "expand_path" and ops:
                base = ops[1] if len(ops) > 1 else ((_Str((".",)),))
                return self.postfix_tail(_join([base, ops[0]]), k, d)
            if fn == "dirname" and ops:
                out = [_Str((posixpath.dirname(_text(v)) or ".",), v.hints)
                       if isinstance(v, _Str) and None not in v.parts else _Unk()
                       for v in ops[0]]
                return self.postfix_tail(_uniq(out), k, d)
            return _UNK, k
        if self.is_p(j, "("):
            return _UNK, self.expr_end(j)
        if self.is_p(j, "."):
            return self.postfix_tail(self.lookup(last, d), j, d)
        return self.lookup(last, d), j

    def postfix_tail(self, vals: tuple[_V, ...], j: int,
                     d: int) -> tuple[tuple[_V, ...], int]:
        """Method calls after a value: those that keep what is known of a string or an
        array (:func:`_method`); any other gives an unknown value."""
        while self.is_p(j, ".") and self.is_k(j + 1, "id"):
            name = self.t[j + 1].value
            j += 2
            args: list[tuple[_V, ...]] = []
            if self.is_p(j, "(") and not self.t[j].space_before:
                args, j = self.args(j, d)
            vals = _method(vals, name, args)
        return vals, j

    def args_in(self, i: int, d: int) -> tuple[list[tuple[_V, ...]], int]:
        """The comma-separated values inside the brackets at ``i`` (``Dir[a, b]``)."""
        end = self.skip_balanced(i)
        out: list[tuple[_V, ...]] = []
        j = i + 1
        while j < end - 1:
            if self.is_p(j, ",") or self.is_k(j, "nl"):
                j += 1
                continue
            vals, k = self.ev(j, d)
            out.append(vals)
            j = max(k, j + 1)
            if not self.is_p(j, ",") and j < end - 1:
                j = self.expr_end(j, stop_nl=False)
            if len(out) >= _MAX_ALTS:
                break
        return out, end

    def ev_env(self, j: int, d: int) -> tuple[tuple[_V, ...], int]:
        var: str | None = None
        default: tuple[_V, ...] = ()
        if self.is_p(j, "["):
            key, _ = self.ev(j + 1, d)
            var = next((_text(k) for k in key if isinstance(k, _Str) and None not in k.parts),
                       None)
            j = self.skip_balanced(j)
        elif self.is_p(j, ".") and self.is_k(j + 1, "id", "fetch"):
            ops, j = self.args(j + 2, d)
            if ops:
                var = next((_text(k) for k in ops[0]
                            if isinstance(k, _Str) and None not in k.parts), None)
            if len(ops) > 1:
                default = ops[1]
        hint = f"overridable by ${var}" if var else "overridable by an environment variable"
        out: list[_V] = [_Unk((hint,))]
        if self.is_p(j, "||"):
            default, j = self.ev_add(j + 1, d)
        out.extend(_mark(v, hint) for v in default)
        return _uniq(out), j

    def ev_name(self, i: int, d: int) -> tuple[tuple[_V, ...], int]:
        name = self.t[i].value
        if name == "__dir__":
            return (_Str((self.dir,)),), i + 1
        if name == "__FILE__":
            return (_Str((self.file,)),), i + 1
        if name == "nil":
            return (), i + 1
        if self.is_p(i + 1, "(") and not self.t[i + 1].space_before:
            _, j = self.args(i + 1, d)
            return _UNK, j
        return self.lookup(name, d), i + 1

    # --------------------------------------------------------------- detection

    def detect(self) -> Iterator[_Found]:
        t = self.t
        for i, tok in enumerate(t):
            if tok.kind == "id" and tok.value in ("ffi_lib", "dlload") and \
                    not self.is_p(i + 1, "=") and not self.is_k(i - 1, "id", "def"):
                lib_api = "ffi_lib" if tok.value == "ffi_lib" else "Fiddle::Importer.dlload"
                lib_args, _ = self.args(i + 1, 0)
                for arg in lib_args:
                    yield _Found(tok.pos, lib_api, arg, Confidence.HIGH)
                continue
            if tok.kind != "const":
                continue
            if self.is_p(i - 1, "::") and self.is_k(i - 2, "const"):
                continue  # handled at the start of the path
            names, j = self.const_path(i)
            if not (self.is_p(j, ".") or self.is_p(j, "::")) or not self.is_k(j + 1, "id"):
                continue
            method = self.t[j + 1].value
            k = j + 2
            api: str | None = None
            conf = Confidence.HIGH
            if names[-1] == "DynamicLibrary" and method == "open":
                api = "FFI::DynamicLibrary.open"
                conf = Confidence.HIGH if names[0] == "FFI" else Confidence.MEDIUM
            elif names[-1] in ("Fiddle", "DL") and method == "dlopen":
                api = f"{names[-1]}.dlopen"
            elif names[-1] == "Handle" and method == "new" and (
                    len(names) == 1 or names[-2] in ("Fiddle", "DL")):
                api = f"{'::'.join(names)}.new"
                conf = Confidence.HIGH if len(names) > 1 else Confidence.MEDIUM
            if api is None:
                continue
            args, _ = self.args(k, 0)
            if not args:
                continue  # Handle.new with no name: the process itself
            yield _Found(tok.pos, api, args[0], conf)


#: ``FFI::Platform`` constants on Linux.
_PLATFORM_CONSTANTS = {"LIBSUFFIX": "so", "LIBPREFIX": "lib"}
#: ``RbConfig::CONFIG`` entries that are the same on every Linux Ruby.
_RBCONFIG = {"DLEXT": "so", "SOEXT": "so", "LIBEXT": "a"}
_SO_NAME = re.compile(r"\.so($|\.[0-9]+)")


def _map_library_name(v: _V) -> _V:
    """ruby-ffi's ``FFI.map_library_name`` on Linux: ``c`` is the C library; a bare file
    name gets the ``lib`` prefix and the ``.so`` suffix when it lacks them."""
    if not isinstance(v, _Str):
        return v
    text = _text(v)
    if text == "c":
        return _Str(("c",), (*v.hints, _LIBC_HINT), stem=True)
    if "/" in text:
        return _Str(v.parts, v.hints, False, v.glob)
    parts = list(v.parts)
    if not text.startswith("lib"):
        parts.insert(0, "lib")
    if not _SO_NAME.search(text):
        parts.append(".so")
    merged = _cat2(_Str(("",)), _Str(tuple(parts)))
    return _Str(merged.parts, v.hints, False)


#: Methods whose block's first parameter is an element of the receiver.
_BLOCK_ELEMENT = frozenset({"each", "each_with_index", "each_with_object", "map", "collect",
                            "flat_map", "select", "filter", "reject", "find", "detect",
                            "find_all", "any?", "all?", "each_entry", "filter_map"})
#: Methods that keep the receiver's value (or, on an array, a subset of its elements).
_KEEP = frozenset({"freeze", "to_s", "to_str", "dup", "clone", "strip", "to_a", "to_ary",
                   "compact", "uniq", "flatten", "sort", "reverse", "select", "filter",
                   "reject", "each", "each_with_index", "find_all", "to_path", "itself"})
_MAX_GLOB_EXPANSIONS = 64


def _elements(vals: Sequence[_V]) -> list[_V]:
    """What ``for x in v`` binds ``x`` to: any element of an array; unknown otherwise."""
    out: list[_V] = []
    for v in vals:
        if isinstance(v, _Arr):
            for item in v.items:
                out.extend(item)
        else:
            out.append(_Unk(v.hints))
    return list(_uniq(out)) or list(_UNK)


def _to_array(vals: Sequence[_V]) -> tuple[_V, ...]:
    """``Array(x)``: an array stays one, ``nil`` gives ``[]``, another value ``[x]``."""
    if not vals:
        return (_Arr(()),)
    return _uniq([v if isinstance(v, _Arr) else _Arr(((v,),)) for v in vals])


def _array_sum(ops: Sequence[Sequence[_V]]) -> _V:
    """``a + b`` of arrays: the elements of each in order.  An operand that is not known to
    be an array (a variable computed at run time) is an unknown element, so what is known
    of the others is kept; alternatives of one operand contribute all their elements."""
    items: list[tuple[_V, ...]] = []
    for op in ops:
        for v in op or _UNK:
            if isinstance(v, _Arr):
                items.extend(v.items)
            else:
                items.append((v,))
    return _Arr(tuple(items[:_MAX_ALTS]))


def _braces(pattern: str) -> list[str]:
    """Ruby's glob brace expansion (``{a,b}``, nested), bounded."""
    if len(pattern) > 4096:
        return [re.sub(r"[{}]", "*", pattern)]
    out: list[str] = []
    todo = [pattern]
    for _ in range(16 * _MAX_GLOB_EXPANSIONS):
        if not todo or len(out) >= _MAX_GLOB_EXPANSIONS:
            break
        p = todo.pop(0)
        m = re.search(r"\{([^{}]*)\}", p)
        if m is None:
            out.append(p)
            continue
        for alt in m.group(1).split(","):
            if len(todo) + len(out) >= _MAX_GLOB_EXPANSIONS:
                break
            todo.append(p[:m.start()] + alt + p[m.end():])
    return out


def _dir_glob(ops: Sequence[Sequence[_V]]) -> tuple[_V, ...]:
    """``Dir[pattern]`` / ``Dir.glob(pattern)``: the existing files matching it, as patterns
    with ``*`` for any part (braces expanded, ``**``, ``?`` and ``[...]`` as ``*``); the
    resolver matches them against the scanned tree."""
    items: list[tuple[_V, ...]] = []
    for op in ops[:1]:
        for v in op:
            strs = [x for x in _flatten([v]) if isinstance(x, _Str)]
            for s in strs:
                text = re.sub(r"\*+|\?|\[[^\]/]*\]", "*", _text(s))
                for p in _braces(text):
                    items.append((_Str(tuple(
                        q for n, piece in enumerate(p.split("*"))
                        for q in ((None, piece) if n else (piece,)) if q != ""), s.hints,
                        glob=True),))
                    if len(items) >= _MAX_ALTS:
                        return (_Arr(tuple(items)),)
            if not strs:
                items.append((_Unk(),))
    return (_Arr(tuple(items)),)


def _method(vals: Sequence[_V], name: str, args: list[tuple[_V, ...]]) -> tuple[_V, ...]:
    """A method call on the values, keeping what is known where Ruby's semantics allow."""
    out: list[_V] = []
    for v in vals:
        if name in _KEEP:
            out.append(v)
        elif isinstance(v, _Arr) and name in ("first", "last", "sample", "find", "detect",
                                              "fetch", "at"):
            out.extend(_elements([v]))
        elif isinstance(v, _Arr) and name == "join":
            sep = next((_text(x) for x in (args[0] if args else ())
                        if isinstance(x, _Str) and None not in x.parts), "" if not args else None)
            acc: list[_Str] = [_Str(("",))]
            for n, item in enumerate(v.items[:16]):
                if n:
                    acc = [_cat2(x, _Str((sep,))) for x in acc]
                acc = [_cat2(x, _as_str(y)) for x in acc for y in (item or _UNK)][:_MAX_ALTS]
            out.extend(acc)
        elif isinstance(v, _Str) and name in ("downcase", "upcase"):
            low = name == "downcase"
            out.append(_Str(tuple(p if p is None else p.lower() if low else p.upper()
                                  for p in v.parts), v.hints, v.stem, v.glob))
        else:
            out.append(_Unk(() if isinstance(v, _Arr) else v.hints))
    return _uniq(out) or _UNK


def _mark(v: _V, hint: str) -> _V:
    if isinstance(v, _Str):
        return _Str(v.parts, (*v.hints, hint), v.stem, v.glob)
    return v


def _flatten(vals: Sequence[_V], depth: int = 0) -> Iterator[_Str | _Unk]:
    for v in vals:
        if isinstance(v, _Arr):
            if depth < 4:
                for pos in v.items:
                    yield from _flatten(pos, depth + 1)
        else:
            yield v


def _sites(file: str, line: int, f: _Found) -> list[LoadSite]:
    groups: dict[tuple[bool, bool], dict[str, None]] = {}
    hints: dict[tuple[bool, bool], list[str]] = {}
    unknown: list[str] = []
    any_unknown = False
    process_only = not f.alts
    for v in _flatten(f.alts):
        if isinstance(v, _Unk):
            any_unknown = True
            unknown.extend(v.hints)
            continue
        text = _text(v)
        if not any(c.isalpha() for c in text.replace("*", "")):
            any_unknown = True
            continue
        pattern = None in v.parts or "*" in text or v.glob
        stem = v.stem if v.stem is not None else not _LIB_SUFFIX.search(text)
        key = (stem, pattern)
        groups.setdefault(key, {})[text] = None
        hints.setdefault(key, []).extend(v.hints)
    out: list[LoadSite] = []
    for key, names in groups.items():
        stem, pattern = key
        hs = [*f.hints, *hints.get(key, []), *unknown]
        conf = f.confidence
        if stem and f.api == "ffi_lib":
            hs.append(_STEM_HINT)
        if pattern:
            hs.append(_PATTERN_HINT)
            conf = Confidence.LOW
        elif any(h.startswith("overridable") for h in hs) and conf is Confidence.HIGH:
            conf = Confidence.MEDIUM
        if any_unknown:
            hs.append(f"also a {_UNKNOWN_HINT}")
        out.append(LoadSite(file, line, _LANGUAGE, f.api, tuple(names)[:64], conf, stem=stem,
                            hints=tuple(dict.fromkeys(hs))))
    if not out and not process_only:
        out.append(LoadSite(file, line, _LANGUAGE, f.api, (), Confidence.LOW,
                            hints=tuple(dict.fromkeys([*f.hints, *unknown, _UNKNOWN_HINT]))))
    return out


#: keywords that open a block closed by ``end`` (``if`` and its kin only at a statement's
#: start: ``x if y`` is a modifier)
_OPENERS = frozenset({"begin", "def", "class", "module", "case", "for", "do"})
_CONDITIONALS = frozenset({"if", "unless", "while", "until"})
#: what may stand before a statement (or an expression whose value a block gives)
_STATEMENT_AFTER = frozenset({"then", "else", "elsif", "do", "return", "and", "or", "not",
                              "begin", "in", "when", "ensure", "rescue"})
#: exception classes whose rescue catches a failed ffi_lib (LoadError; a bare rescue and
#: StandardError do not)
_CATCH_LOAD = frozenset({"LoadError", "ScriptError", "Exception"})
_GIVES_UP = frozenset({"raise", "fail", "exit", "exit!", "abort", "return"})


@dataclass(slots=True)
class _Block:
    kind: str
    start: int  # token index of the keyword
    rescue: int | None = None  # token index of the first rescue catching LoadError


def _statement_start(toks: Sequence[_Tok], i: int) -> bool:
    if i == 0:
        return True
    p = toks[i - 1]
    if p.kind == "nl" or (p.kind == "punct" and p.value not in (")", "]", "}", ".", "&.")):
        return True
    return p.kind == "id" and p.value in _STATEMENT_AFTER


def _guards(toks: Sequence[_Tok]) -> list[Guard[int]]:
    """The spans (positions) of code before a ``rescue LoadError`` (of ``begin``, of a
    method, of a ``do`` block) whose handler goes on (no ``raise``, ``exit``, ``abort``,
    ``return``), each with the method bodies defined inside (they run elsewhere).  Code in
    a loop or block around it is left out (candidates tried in turn).  None at all when the
    file's ``end``s do not match its openers: the structure was not read right."""
    out: list[Guard[int]] = []
    stack: list[_Block] = []
    defs: list[tuple[int, int]] = []
    n = len(toks)
    for i, t in enumerate(toks):
        if t.kind != "id" or (i and toks[i - 1].kind == "punct" and toks[i - 1].value in
                              (".", "&.", "::")):
            continue
        if i + 1 < n and toks[i + 1].kind == "punct" and toks[i + 1].value == ":" and (
                not toks[i + 1].space_before):
            continue  # a label (class: 1)
        v = t.value
        if v == "do" and stack and stack[-1].kind in ("while", "until", "for") and (
                not any(x.kind == "nl" for x in toks[stack[-1].start:i])):
            continue  # while cond do ... end: one block
        if v in _OPENERS or (v in _CONDITIONALS and _statement_start(toks, i)):
            stack.append(_Block(v, i))
        elif v == "rescue" and stack and _statement_start(toks, i):
            b = stack[-1]
            classes = []
            for x in toks[i + 1:]:
                if x.kind == "nl" or (x.kind == "punct" and x.value == "=>") or (
                        x.kind == "id" and x.value == "then"):
                    break
                if x.kind == "const":
                    classes.append(x.value)
            if b.rescue is None and b.kind in ("begin", "def", "do") and (
                    _CATCH_LOAD.intersection(classes)):
                b.rescue = i
        elif v == "end":
            if not stack:
                return []
            b = stack.pop()
            if b.kind == "def":
                defs.append((toks[b.start].pos, t.pos))
            if b.rescue is None:
                continue
            handler = toks[b.rescue + 1:i]
            if any(h.kind == "id" and h.value in _GIVES_UP for h in handler):
                continue
            around = []
            for outer in reversed(stack):  # the blocks around it, up to its method
                if outer.kind == "def":
                    break
                around.append(outer.kind)
            if b.kind == "do" or (b.kind != "def" and any(
                    k in ("while", "until", "for", "do") for k in around)):
                continue
            lo, hi = toks[b.start].pos, toks[b.rescue].pos
            out.append((lo, hi, [d for d in defs if lo < d[0] < hi], "rescue LoadError"))
    if stack:
        return []
    return out


def detect_ruby(source: str | bytes, file: str) -> tuple[list[LoadSite], list[str]]:
    """Find the places in one Ruby file that load a library at run time.

    ``source`` may be bytes: undecodable UTF-8 becomes a problem (the text is then read
    with replacement characters), and a file with NUL bytes is reported as binary and
    skipped.  Never raises for bad input.
    """
    problems: list[str] = []
    if isinstance(source, bytes):
        if b"\0" in source:
            return [], [f"{file}: not analysed: binary content (NUL bytes)"]
        try:
            text = source.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(f"{file}: not valid UTF-8 ({e.reason} at byte {e.start}); "
                            "read with replacement characters")
            text = source.decode("utf-8", errors="replace")
    else:
        text = source
        if "\0" in text:
            return [], [f"{file}: not analysed: binary content (NUL characters)"]
    if len(text) > MAX_SOURCE_CHARS:
        return [], [*problems, f"{file}: not analysed: {len(text)} characters is over the "
                               f"{MAX_SOURCE_CHARS}-character limit"]
    if not _TRIGGERS.search(text):
        return [], problems
    try:
        toks = _Lexer(text).run()
    except _Limit as e:
        return [], [*problems, f"{file}: not analysed: {e}"]
    an = _Analysis(toks, file)
    newlines = [m.start() for m in re.finditer("\n", text)]
    sites: list[LoadSite] = []
    guards = _guards(toks)
    try:
        for f in an.detect():
            line = bisect.bisect_right(newlines, f.pos - 1) + 1
            made = _sites(file, line, f)
            guard = guard_at(guards, f.pos)
            sites.extend(replace(site, guarded=guard) if guard else site for site in made)
    except RecursionError:
        problems.append(f"{file}: analysis stopped: nesting too deep")
    if an.steps > _MAX_STEPS:
        problems.append(f"{file}: analysis stopped after {_MAX_STEPS} evaluation steps; "
                        "load sites may be missing")
    return list(dict.fromkeys(sites)), problems
