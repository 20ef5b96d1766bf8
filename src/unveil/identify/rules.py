"""The identification table: which upstream project a library file belongs to, and how to
read its version out of the bytes.

The table is data (``unveil/data/identify-rules.json``); this module loads it into frozen
values and refuses a table that could mislead or stall the scan: every regex must compile, carry
exactly one version group (none for a *presence* pattern), match its own example, and be cheap
to find (see :mod:`unveil.identify.banners` for how patterns are prefiltered).

One rule per upstream project::

    {"project": "libpng", "purl_name": "libpng",
     "cpe": "cpe:2.3:a:libpng:libpng:{version}:*:*:*:*:*:*:*",
     "homepage": "...", "source": "https://github.com/pnggroup/libpng",
     "files": ["libpng*"],                 # globs on the de-hashed file name
     "sonames": ["libpng16.so.16"],        # hints: an ABI number is never a version
     "patterns": [{"regex": "libpng version (\\d+\\.\\d+\\.\\d+)", "confidence": 0.95,
                   "scope": "embedded", "example": "libpng version 1.6.39"}],
     "version_symbols": [{"symbol": "WebPGetDecoderVersion", "kind": "ret-int",
                          "format": "hex-8-8-8"}],
     "symbols": ["png_create_read_struct"], "supersedes": [], "note": "..."}

``scope`` is ``"file"`` (the default: the pattern runs only on files the rule names) or
``"embedded"`` (it runs on every binary, to find statically linked copies).  A ``literal``
pattern starts with a literal of at least four bytes and is searched on its own instead of
through the ``\\.\\d`` prefilter; keep those few (each costs a pass over the data).  Only a
literal pattern with ``"names": true`` also searches the symbol-name table.  A pattern below
confidence 0.6 (a bare version string) must be unambiguous in a file: two versions read by
it cancel out.

``version_symbols`` read a version the library reports about itself through an exported
symbol (x86-64 ELF only): ``kind`` says what the symbol is and ``format`` how an integer
encodes the version (see :data:`INT_FORMATS`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from unveil._data import read_text
from unveil.errors import UnveilError

__all__ = [
    "INT_FORMATS",
    "SYMBOL_KINDS",
    "Pattern",
    "Rule",
    "RuleError",
    "RuleSet",
    "VersionSymbol",
    "default_rules",
    "load_rules",
    "parse_rules",
]

#: How a version-reporting symbol is laid out (x86-64 code shapes, or data).
SYMBOL_KINDS = frozenset({
    "ret-int",       # [endbr64] mov eax, imm32; ret; several symbols are joined with "."
    "ret-str",       # [endbr64] lea rax, [rip+disp32]; ret  -> C string
    "ret-int3",      # movl $a,(%rdi); movl $b,(%rsi); movl $c,(%rdx); ret (any order)
    "ret-bytes3",    # fills a static {major, minor, patch} of bytes with constant stores,
                     # then lea rax, [rip+disp32]; ret (SDL's *_Linked_Version())
    "data-str",      # a char array
    "data-ptr-str",  # a pointer (R_X86_64_RELATIVE) to a C string
    "data-int",      # a 32-bit int; several symbols (space-separated) are joined with "."
})

#: How an integer encodes a version.
INT_FORMATS = frozenset({
    "hex-8-8-8",  # major<<16 | minor<<8 | patch            (libwebp 0x010600 = 1.6.0)
    "gnu-hex",    # as hex-8-8-8, a zero patch left out as GNU releases are named
                  # (libunistring 0x010200 = 1.2, 0x010402 = 1.4.2)
    "brotli",     # major<<24 | minor<<12 | patch           (0x1002000 = 1.2.0)
    "dec-2-2",    # major*10000 + minor*100 + patch         (zstd 10507, libxml2 21405)
    "dec-3-3",    # major*1000000 + minor*1000 + patch      (libjxl 11002, libarchive 3008009)
    "lzma",       # major*10^7 + minor*10^4 + patch*10 + s  (50080042 = 5.8.4)
    "lcms",       # major*1000 + minor*10                   (2190 = 2.19)
    "pg",         # major*10000 + minor                     (150010 = 15.10)
    "rdkafka",    # major<<24 | minor<<16 | patch<<8 | pre  (0x020002ff = 2.0.2)
})

SCOPES = frozenset({"file", "embedded"})

#: A prefiltered pattern must match within this many bytes before the first ``<digit>.<digit>`` of
#: the match, and end within POST bytes after it (the scan looks at no more than that).
PRE = 96
POST = 64

#: a version's ``<digit>.<digit>``, found at its dot: a literal-led search (memchr speed), and
#: the dots of format strings and file names (``%.2f``, ``.1``) are passed over
ANCHOR = re.compile(rb"\.(?<=\d\.)\d")
_LITERAL_PREFIX = re.compile(r"^(?:[A-Za-z0-9_/ :,=-]|\\[./ ]){4,}")
_CPE = re.compile(r"^cpe:2\.3:a:[^:]+:[^:]+:\{version\}(?::\*){7}$")
_RULE_KEYS = frozenset({
    "project", "purl_name", "cpe", "homepage", "source", "files", "sonames", "patterns",
    "version_symbols", "symbols", "supersedes", "note",
})
_PATTERN_KEYS = frozenset({
    "regex", "confidence", "scope", "literal", "presence", "example", "names",
})
_VSYM_KEYS = frozenset({"symbol", "kind", "format"})


class RuleError(UnveilError):
    """The identification table is malformed (a bug in the shipped data or a user table)."""


#: compiled regexes by their text, compiled on first use: the engine tries a pattern's
#: regex only where its keyword occurs, so most of the table's are never compiled in a
#: scan (compiling all of them at load took ~10 ms of every run)
_REGEXES: dict[str, re.Pattern[bytes]] = {}


@dataclass(frozen=True, slots=True)
class Pattern:
    """One bytes regex.  ``regex.groups`` is 1 (the version) or 0 for a presence pattern."""

    #: the regex's text (latin-1: one character per byte)
    source: str
    confidence: float
    scope: str = "file"
    literal: bool = False
    presence: bool = False
    example: bytes = b""
    #: the longest literal every match contains (the engine looks for it before matching)
    keyword: bytes = b""
    #: also search symbol-name tables (``.dynstr``), for names such as ``absl12lts_2024...``
    names: bool = False

    @property
    def regex(self) -> re.Pattern[bytes]:
        got = _REGEXES.get(self.source)
        if got is None:  # two threads may both compile it: the same regex either way
            got = _REGEXES[self.source] = re.compile(self.source.encode("latin-1"))
        return got


@dataclass(frozen=True, slots=True)
class VersionSymbol:
    """An exported symbol through which a library reports its own version."""

    symbols: tuple[str, ...]
    kind: str
    format: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    project: str
    purl_name: str
    homepage: str
    source: str
    files: tuple[str, ...]
    sonames: tuple[str, ...] = ()
    patterns: tuple[Pattern, ...] = ()
    version_symbols: tuple[VersionSymbol, ...] = ()
    symbols: tuple[str, ...] = ()
    cpe: str | None = None
    supersedes: tuple[str, ...] = ()
    note: str | None = None

    def cpe_for(self, version: str | None) -> str | None:
        if self.cpe is None or version is None:
            return None
        return self.cpe.replace("{version}", _cpe_escape(version))


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]

    def __len__(self) -> int:
        return len(self.rules)

    def by_project(self, project: str) -> Rule:
        for rule in self.rules:
            if rule.project == project:
                return rule
        raise KeyError(project)


def _cpe_escape(value: str) -> str:
    """Escape a CPE 2.3 formatted-string component (``\\`` before punctuation but ``._-``)."""
    return re.sub(r"([^A-Za-z0-9._-])", r"\\\1", value)


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise RuleError(f"{where}: '{key}' must be a non-empty string")
    return value


def _opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    return None if obj.get(key) is None else _str(obj, key, where)


def _strs(obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RuleError(f"{where}: '{key}' must be a list of non-empty strings")
    return tuple(value)


def _pattern(obj: object, where: str, check: bool) -> Pattern:
    if not isinstance(obj, dict):
        raise RuleError(f"{where}: a pattern must be an object")
    unknown = set(obj) - _PATTERN_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown keys {sorted(unknown)}")
    text = _str(obj, "regex", where)
    confidence = obj.get("confidence")
    if not isinstance(confidence, int | float) or isinstance(confidence, bool) or not (
        0 < confidence <= 1
    ):
        raise RuleError(f"{where}: confidence must be in (0, 1]")
    scope = obj.get("scope", "file")
    if scope not in SCOPES:
        raise RuleError(f"{where}: scope must be one of {sorted(SCOPES)}")
    literal = obj.get("literal", False)
    presence = obj.get("presence", False)
    names = obj.get("names", False)
    if not all(isinstance(v, bool) for v in (literal, presence, names)):
        raise RuleError(f"{where}: 'literal', 'presence' and 'names' are booleans")
    if names and not literal:
        raise RuleError(f"{where}: only a literal pattern searches symbol names")
    example_text = _str(obj, "example", where)
    try:
        example = example_text.encode("latin-1")
    except UnicodeEncodeError as e:
        raise RuleError(f"{where}: example {example_text!r} is not latin-1: {e}") from e
    try:
        keyword = required_literal(text)
    except ValueError as e:  # a malformed \x escape
        raise RuleError(f"{where}: regex {text!r} does not compile: {e}") from e
    pattern = Pattern(text, float(confidence), scope, literal, presence, example, keyword,
                      names)
    if check:
        _check_pattern(pattern, where)
    return pattern


def _check_pattern(pattern: Pattern, where: str) -> None:
    """What only compiling and running the regex can tell: its groups, and that it matches
    its example within the window the engine reads around a keyword or ``<digit>.<digit>``."""
    text, example, keyword = pattern.source, pattern.example, pattern.keyword
    try:
        regex = pattern.regex
    except (re.error, UnicodeEncodeError) as e:
        raise RuleError(f"{where}: regex {text!r} does not compile: {e}") from e
    want = 0 if pattern.presence else 1
    if regex.groups != want:
        raise RuleError(f"{where}: regex {text!r} must have {want} capturing group(s), "
                        f"has {regex.groups}")
    if regex.groupindex:
        raise RuleError(f"{where}: named groups are reserved for the engine")
    m = regex.search(example)
    if m is None:
        raise RuleError(f"{where}: regex {text!r} does not match its example "
                        f"{example.decode('latin-1')!r}")
    if not pattern.presence and not re.fullmatch(rb"\d+(?:\.\d+)*[0-9A-Za-z._-]*", m.group(1)):
        raise RuleError(f"{where}: the version group captured {m.group(1)!r}")
    if pattern.literal:
        if not _LITERAL_PREFIX.match(text):
            raise RuleError(f"{where}: a literal pattern must start with 4 literal characters")
    else:
        anchor = ANCHOR.search(example, m.start(), m.end())
        if anchor is None:
            raise RuleError(f"{where}: the match holds no '<digit>.<digit>'; mark it literal")
        if anchor.start() - m.start() > PRE - 16 or m.end() - anchor.start() > POST - 16:
            raise RuleError(f"{where}: the match reaches too far from its first '<digit>.<digit>'")
    at = example.find(keyword, m.start(), m.end()) if keyword else m.start()
    if at < 0:
        raise RuleError(f"{where}: derived keyword {keyword!r} is not in the example's match")
    if at - m.start() > PRE - 16 or m.end() - (at + len(keyword)) > POST - 16:
        raise RuleError(f"{where}: the match reaches too far from its keyword {keyword!r}")


_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "0": "\x00"}


def required_literal(regex: str) -> bytes:
    """The longest run of literal characters outside any group, class or alternation.

    Only top-level runs count, and a character made optional by a following quantifier is
    dropped, so every match of ``regex`` contains the result.  A pattern with a top-level
    ``|`` has none (``b""``).
    """
    runs: list[str] = []
    run: list[str] = []
    depth = 0
    i = 0
    n = len(regex)
    top_alternation = False

    def close() -> None:
        if run:
            runs.append("".join(run))
            run.clear()

    while i < n:
        c = regex[i]
        lit: str | None = None
        if c == "\\" and i + 1 < n:
            e = regex[i + 1]
            if e == "x" and i + 3 < n:
                lit = chr(int(regex[i + 2:i + 4], 16))
                i += 4
            elif e in _ESCAPES:
                lit = _ESCAPES[e]
                i += 2
            elif e.isalnum():
                close()  # \d, \w, \s, \b...: not a literal
                i += 2
                continue
            else:
                lit = e
                i += 2
        elif c == "[":
            close()
            j = i + 1
            if j < n and regex[j] == "^":
                j += 1
            if j < n and regex[j] == "]":
                j += 1
            while j < n and regex[j] != "]":
                j += 2 if regex[j] == "\\" else 1
            i = j + 1
            continue
        elif c == "(":
            close()
            depth += 1
            i += 1
            continue
        elif c == ")":
            close()
            depth -= 1
            i += 1
            continue
        elif c == "|":
            close()
            if depth == 0:
                top_alternation = True
            i += 1
            continue
        elif c in "?*{":
            if run:
                run.pop()  # the character before is optional
            close()
            if c == "{":
                while i < n and regex[i] != "}":
                    i += 1
            i += 1
            continue
        elif c in ".^$+":
            if c == "+":
                close()  # x+ keeps one x, but a run cannot continue past it
            else:
                close()
            i += 1
            continue
        else:
            lit = c
            i += 1
        if depth == 0 and lit is not None:
            run.append(lit)
        elif lit is not None:
            close()
    close()
    if top_alternation or not runs:
        return b""
    return max(runs, key=len).encode("latin-1")


def _version_symbol(obj: object, where: str) -> VersionSymbol:
    if not isinstance(obj, dict):
        raise RuleError(f"{where}: a version symbol must be an object")
    unknown = set(obj) - _VSYM_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown keys {sorted(unknown)}")
    symbol = _str(obj, "symbol", where)
    kind = _str(obj, "kind", where)
    fmt = _opt_str(obj, "format", where)
    if kind not in SYMBOL_KINDS:
        raise RuleError(f"{where}: kind {kind!r} is not one of {sorted(SYMBOL_KINDS)}")
    if fmt is not None and fmt not in INT_FORMATS:
        raise RuleError(f"{where}: format {fmt!r} is not one of {sorted(INT_FORMATS)}")
    if kind in {"ret-int", "data-int"} and fmt is None and len(symbol.split()) == 1:
        raise RuleError(f"{where}: an integer needs a format")
    return VersionSymbol(tuple(symbol.split()), kind, fmt)


def _rule(obj: object, index: int, check: bool) -> Rule:
    if not isinstance(obj, dict):
        raise RuleError(f"rule {index}: must be an object")
    where = f"rule {index} ({obj.get('project')!r})"
    unknown = set(obj) - _RULE_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown keys {sorted(unknown)}")
    project = _str(obj, "project", where)
    purl_name = _str(obj, "purl_name", where)
    homepage = _str(obj, "homepage", where)
    source = _str(obj, "source", where)
    cpe = _opt_str(obj, "cpe", where)
    note = _opt_str(obj, "note", where)
    if cpe is not None and not _CPE.match(cpe):
        raise RuleError(f"{where}: cpe must look like cpe:2.3:a:VENDOR:PRODUCT:{{version}}:*...")
    for url in (homepage, source):
        if not url.startswith("https://") and not url.startswith("http://"):
            raise RuleError(f"{where}: {url!r} is not a URL")
    files = _strs(obj, "files", where)
    if not files:
        raise RuleError(f"{where}: 'files' must name at least one glob")
    raw_patterns = obj.get("patterns", [])
    raw_symbols = obj.get("version_symbols", [])
    if not isinstance(raw_patterns, list) or not isinstance(raw_symbols, list):
        raise RuleError(f"{where}: 'patterns' and 'version_symbols' are lists")
    patterns = tuple(_pattern(p, f"{where} pattern {i}", check)
                     for i, p in enumerate(raw_patterns))
    vsyms = tuple(_version_symbol(s, f"{where} symbol {i}") for i, s in enumerate(raw_symbols))
    return Rule(
        project=project, purl_name=purl_name, homepage=homepage, source=source, files=files,
        sonames=_strs(obj, "sonames", where), patterns=patterns, version_symbols=vsyms,
        symbols=_strs(obj, "symbols", where), cpe=cpe,
        supersedes=_strs(obj, "supersedes", where), note=note,
    )


def parse_rules(doc: object, *, check: bool = True) -> RuleSet:
    """Validate a decoded table (``{"schema": 1, "rules": [...]}``) into a :class:`RuleSet`.

    ``check=False`` leaves out what needs each regex compiled and run on its example: for
    the shipped table, which the test suite checks in full (``tests/unit/test_identify.py``),
    its regexes are then compiled only when a scan first needs them."""
    if not isinstance(doc, dict) or doc.get("schema") != 1 or not isinstance(
        doc.get("rules"), list
    ):
        raise RuleError('the table must be {"schema": 1, "rules": [...]}')
    rules = tuple(_rule(r, i, check) for i, r in enumerate(doc["rules"]))
    seen: set[str] = set()
    for rule in rules:
        if rule.project in seen:
            raise RuleError(f"project {rule.project!r} has two rules")
        seen.add(rule.project)
    for rule in rules:
        for other in rule.supersedes:
            if other not in seen:
                raise RuleError(f"{rule.project!r} supersedes unknown project {other!r}")
    return RuleSet(rules)


def load_rules(text: str | bytes, *, check: bool = True) -> RuleSet:
    """Parse and validate a table given as JSON text (``check``: see :func:`parse_rules`)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise RuleError(f"the table is not JSON: {e}") from e
    return parse_rules(doc, check=check)


def shipped_rules_text() -> str:
    return read_text("identify-rules.json")


@cache
def default_rules() -> RuleSet:
    """The table shipped with unveil (loaded once; its regexes compiled when first used,
    the full check left to the test suite)."""
    return load_rules(shipped_rules_text(), check=False)

