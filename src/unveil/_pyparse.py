"""Python's parser on text unveil scans, without the warnings it emits about that text.

The compiler warns about what it reads (an invalid escape sequence such as ``"\\d"``: a
DeprecationWarning, a SyntaxWarning printed by default from Python 3.12); a scan reads
thousands of other people's files, and no warning about them may reach a user's terminal,
nor become a SyntaxError under ``-W error``.
"""

from __future__ import annotations

import ast
import warnings
from typing import Literal, overload

__all__ = ["literal_eval", "parse"]


@overload
def parse(source: str | bytes, filename: str = ..., mode: Literal["exec"] = ...) -> ast.Module:
    ...


@overload
def parse(source: str | bytes, filename: str = ..., *,
          mode: Literal["eval"]) -> ast.Expression:
    ...


def parse(source: str | bytes, filename: str = "<unknown>",
          mode: Literal["exec", "eval"] = "exec") -> ast.Module | ast.Expression:
    """:func:`ast.parse`, with the compiler's warnings about ``source`` silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mode == "eval":
            return ast.parse(source, filename=filename, mode="eval")
        return ast.parse(source, filename=filename)


def literal_eval(text: str) -> object:
    """:func:`ast.literal_eval`, with the compiler's warnings about ``text`` silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.literal_eval(text)
