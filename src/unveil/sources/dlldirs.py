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
from collections.abc import Callable

from unveil._pyparse import parse
from unveil.errors import UnveilError
from unveil.sources.fs import FileSystem, Kind, SymlinkLoop

__all__ = ["dll_directories"]

MAX_SOURCE = 1 << 20


class _Eval:
    def __init__(self, file_path: str, tree: ast.AST,
                 find_dir: Callable[[str], str | None] = lambda _m: None) -> None:
        self.file = file_path
        #: a top-level package's directory on the installation's sys.path
        self.find_dir = find_dir
        self.names: dict[str, ast.expr] = {}
        #: names bound by ``for NAME in ITER`` (the first item is taken)
        self.loops: dict[str, ast.expr] = {}
        self.modules: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                    node.targets[0], ast.Name):
                self.names[node.targets[0].id] = node.value
            elif isinstance(node, ast.NamedExpr):
                self.names[node.target.id] = node.value
            elif isinstance(node, ast.For) and isinstance(node.target, ast.Name):
                self.loops[node.target.id] = node.iter
            elif isinstance(node, ast.Import):
                self.modules.update(a.name for a in node.names if a.asname is None)

    def __call__(self, e: ast.expr, depth: int = 0) -> str | None:
        if depth > 20:
            return None
        if isinstance(e, ast.Constant) and isinstance(e.value, str):
            return e.value
        if isinstance(e, ast.Name):
            if e.id == "__file__":
                return self.file
            bound = self.names.get(e.id)
            if bound is None and e.id in self.loops:
                return self._first_item(self.loops[e.id])
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

    def _first_item(self, it: ast.expr) -> str | None:
        """``for d in pkg.__path__``: an imported package's directory on sys.path (a
        namespace package such as pywin32's ``pywin32_system32`` has no ``__init__.py``)."""
        if (isinstance(it, ast.Attribute) and it.attr == "__path__"
                and isinstance(it.value, ast.Name) and it.value.id in self.modules):
            return self.find_dir(it.value.id)
        return None


def _constants(e: ast.expr) -> list[str]:
    return [n.value for n in ast.walk(e) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)]


def _from_source(path: str, text: str, site: str,
                 find_dir: Callable[[str], str | None] = lambda _m: None) -> list[str]:
    """Directories passed to add_dll_directory in ``text``.  When an argument cannot be
    evaluated (it depends on ``site.getsitepackages()``, say), a string constant in it that
    names a directory of site-packages is taken instead — a guess, but the one such code
    means (pywin32's ``pywin32_system32``)."""
    try:
        tree = parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    ev = _Eval(path, tree, find_dir)
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


def _pth(fs: FileSystem, site: str) -> tuple[list[str], list[str]]:
    """What ``site`` does with the ``.pth`` files of ``site``: the directories they add to
    sys.path and the modules their ``import`` lines import at every start-up."""
    dirs: list[str] = []
    imports: list[str] = []
    for name, kind in sorted(fs.listdir(site).items()):
        if kind is not Kind.FILE or not name.endswith(".pth"):
            continue
        text = _text(fs, f"{site}/{name}")
        for line in (text or "").splitlines()[:1000]:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(("import ", "import\t")):
                imports += [m.strip() for m in line[7:].split(";")[0].split(",")
                            if m.strip().isidentifier()]
                continue
            entry = line.replace(chr(92), "/")
            d = posixpath.normpath(entry if entry.startswith("/") else f"{site}/{entry}")
            if d.startswith(site + "/") and d not in dirs:
                dirs.append(d)
    return dirs, imports


def _text(fs: FileSystem, path: str) -> str | None:
    try:
        blob = fs.open_blob(path)
        try:
            return blob.read(0, min(blob.size, MAX_SOURCE)).decode("utf-8", "replace")
        finally:
            blob.close()
    except (UnveilError, SymlinkLoop):  # unreadable: nothing to learn from it
        return None


def _kind(fs: FileSystem, path: str) -> Kind | None:
    try:
        return fs.kind(path)
    except SymlinkLoop:
        return None


def dll_directories(fs: FileSystem, site_packages: list[str]) -> list[str]:
    """Directories the packages in ``site_packages`` add to the DLL search: from the
    ``__init__.py`` of each package, top-level modules, and the modules ``.pth`` files
    import at start-up (found on sys.path as the ``.pth`` files extend it)."""
    out: list[str] = []
    for site in site_packages:
        sources: list[str] = []
        for name, kind in sorted(fs.listdir(site).items()):
            d = f"{site}/{name}"
            if kind is Kind.FILE and name.endswith(".py"):
                sources.append(d)  # top-level modules
                continue
            if kind is not Kind.DIR:
                continue
            if name.endswith(".libs") and any(
                    n.startswith(".load-order") for n in fs.listdir(d)):
                out.append(d)
            if fs.entry(d, "__init__.py") is Kind.FILE:
                sources.append(f"{d}/__init__.py")
        pth_dirs, pth_imports = _pth(fs, site)
        sys_path = [site, *pth_dirs]

        def find_dir(module: str, sys_path: list[str] = sys_path) -> str | None:
            for base in sys_path:
                if _kind(fs, f"{base}/{module}") is Kind.DIR:
                    return f"{base}/{module}"
            return None

        for module in pth_imports:
            for base in sys_path:
                for cand in (f"{base}/{module}.py", f"{base}/{module}/__init__.py"):
                    if cand not in sources and _kind(fs, cand) is Kind.FILE:
                        sources.append(cand)
        for init in sources:
            text = _text(fs, init)
            if text is None or "add_dll_directory" not in text:
                continue
            for found in _from_source(init, text, site, find_dir):
                if _kind(fs, found) is Kind.DIR and found not in out:
                    out.append(found)
    return out
