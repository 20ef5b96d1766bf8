"""Where a Windows package's ``__init__.py`` points ``os.add_dll_directory`` — read with
:mod:`ast`, never imported or run.

delvewheel patches a package's ``__init__.py`` with code like::

    libs_dir = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, 'pkg.libs'))
    if os.path.isdir(libs_dir):
        os.add_dll_directory(libs_dir)

Older delvewheel versions preload each DLL listed in ``<dist>.libs/.load-order-*`` instead,
which makes the directory's DLLs found by name just the same.  This module evaluates the
small expression language such patches use (string constants, names bound to them,
``os.path.join/abspath/normpath/realpath/dirname``, ``__file__``, ``os.pardir``,
f-strings of constants) and returns the directories.
"""

from __future__ import annotations

import ast
import posixpath

from unveil.errors import UnveilError
from unveil.sources.fs import FileSystem, Kind, SymlinkLoop

__all__ = ["dll_directories"]

MAX_SOURCE = 1 << 20


class _Eval:
    def __init__(self, file_path: str, tree: ast.AST) -> None:
        self.file = file_path
        self.names: dict[str, ast.expr] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                    node.targets[0], ast.Name):
                self.names[node.targets[0].id] = node.value
            elif isinstance(node, ast.NamedExpr):
                self.names[node.target.id] = node.value

    def __call__(self, e: ast.expr, depth: int = 0) -> str | None:
        if depth > 20:
            return None
        if isinstance(e, ast.Constant) and isinstance(e.value, str):
            return e.value
        if isinstance(e, ast.Name):
            if e.id == "__file__":
                return self.file
            bound = self.names.get(e.id)
            return self(bound, depth + 1) if bound is not None else None
        if isinstance(e, ast.Attribute) and e.attr in ("pardir", "curdir"):
            return ".." if e.attr == "pardir" else "."
        if isinstance(e, ast.JoinedStr):
            parts = []
            for v in e.values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    parts.append(v.value)
                elif isinstance(v, ast.FormattedValue):
                    inner = self(v.value, depth + 1)
                    if inner is None:
                        return None
                    parts.append(inner)
                else:
                    return None
            return "".join(parts)
        if isinstance(e, ast.Call):
            fn = e.func
            name = fn.attr if isinstance(fn, ast.Attribute) else (
                fn.id if isinstance(fn, ast.Name) else None)
            args = [self(a, depth + 1) for a in e.args]
            if any(a is None for a in args):
                return None
            vals = [a for a in args if a is not None]
            if name == "join" and vals:
                return posixpath.join(*[v.replace("\\", "/") for v in vals])
            if name in ("abspath", "normpath", "realpath") and len(vals) == 1:
                return posixpath.normpath(vals[0])
            if name == "dirname" and len(vals) == 1:
                return posixpath.dirname(vals[0])
            if name in ("fspath", "str") and len(vals) == 1:
                return vals[0]
        return None


def _constants(e: ast.expr) -> list[str]:
    return [n.value for n in ast.walk(e) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)]


def _from_source(path: str, text: str, site: str) -> list[str]:
    """Directories passed to add_dll_directory in ``text``.  When an argument cannot be
    evaluated (it depends on ``site.getsitepackages()``, say), a string constant in it that
    names a directory of site-packages is taken instead — a guess, but the one such code
    means (pywin32's ``pywin32_system32``)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    ev = _Eval(path, tree)
    out: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        fn = node.func
        name = fn.attr if isinstance(fn, ast.Attribute) else (
            fn.id if isinstance(fn, ast.Name) else None)
        if name != "add_dll_directory":
            continue
        d = ev(node.args[0])
        if d is None:
            arg = node.args[0]
            if isinstance(arg, ast.Name) and arg.id in ev.names:
                arg = ev.names[arg.id]
            consts = [c for c in _constants(arg) if c and "/" not in c and "\\" not in c]
            d = f"{site}/{consts[-1]}" if consts else None
        if d is not None:
            d = posixpath.normpath(d)
            if d not in out:
                out.append(d)
    return out


def dll_directories(fs: FileSystem, site_packages: list[str]) -> list[str]:
    """Directories the packages in ``site_packages`` add to the DLL search."""
    out: list[str] = []
    for site in site_packages:
        sources: list[str] = []
        for name, kind in sorted(fs.listdir(site).items()):
            d = f"{site}/{name}"
            if kind is Kind.FILE and name.endswith(".py"):
                sources.append(d)  # top-level modules, e.g. pywin32_bootstrap.py
                continue
            if kind is not Kind.DIR:
                continue
            if name.endswith(".libs") and any(
                    n.startswith(".load-order") for n in fs.listdir(d)):
                out.append(d)
            if fs.entry(d, "__init__.py") is Kind.FILE:
                sources.append(f"{d}/__init__.py")
        for init in sources:
            try:
                blob = fs.open_blob(init)
                try:
                    text = blob.read(0, min(blob.size, MAX_SOURCE)).decode("utf-8", "replace")
                finally:
                    blob.close()
            except UnveilError:  # unreadable source: nothing to learn from it
                continue
            if "add_dll_directory" not in text:
                continue
            for found in _from_source(init, text, site):
                try:
                    is_dir = fs.kind(found) is Kind.DIR
                except SymlinkLoop:
                    is_dir = False
                if is_dir and found not in out:
                    out.append(found)
    return out
