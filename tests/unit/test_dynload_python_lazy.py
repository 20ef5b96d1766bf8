"""The Python detector walks a function body only when it can matter (a loader word or
another name for a loader in it, or a question about it: the calls of a name, the
assignments of an attribute, a function's returns).  These tests check that the load
sites are those of a walk of every body: each way a body is reached, then the same
results with and without the lazy walk over snippets, a package and this project's own
sources.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unveil
from unveil.dynload import python as dp
from unveil.dynload.python import PythonModules, detect_python
from unveil.model import LoadSite
from unveil.sources.fs import HostFS

SNIPPETS = {
    "alias imported": '''
        from ctypes import CDLL as C
        def helper():
            return 1
        def load():
            return C("libalias.so.1")
    ''',
    "alias chain and loader instance": '''
        from ctypes import cdll as _c
        loader = _c
        def get():
            return loader.libchain
    ''',
    "LibraryLoader": '''
        from ctypes import LibraryLoader as LL, CDLL
        mylibs = LL(CDLL)
        def get():
            return mylibs.libll
    ''',
    "closure alias": '''
        import ctypes
        def outer():
            L = ctypes.CDLL
            def inner():
                return L("libclosure.so.2")
            return inner
    ''',
    "callers in other bodies": '''
        import ctypes
        def load(name):
            return ctypes.CDLL(name)
        def first():
            return load("libfirst.so.1")
        class Backend:
            def open(self):
                load("libsecond.so.2")
        def third():
            try:
                return load("libthird.so.3")
            except OSError:
                return load("libthird.so")
    ''',
    "returns of another function": '''
        import ctypes, os
        def where():
            return os.path.join("/opt/x/lib", "libret.so.4")
        def name(v):
            if v:
                return "libv%d.so" % v
            return "libv.so"
        def load():
            ctypes.CDLL(where())
            ctypes.CDLL(name(2))
    ''',
    "self attributes": '''
        import ctypes
        class A:
            def __init__(self):
                self.path = "libself.so.5"
            def other(self):
                self.path = "libself-alt.so"
            def load(self):
                return ctypes.CDLL(self.path)
    ''',
    "global set in a function": '''
        import ctypes
        _name = None
        def init():
            global _name
            _name = "libglobal.so.6"
        def load():
            return ctypes.CDLL(_name)
    ''',
    "find_library passed as a default": '''
        from ctypes.util import find_library as fl
        import ctypes
        def locate(n, finder=fl):
            return finder(n)
        def load():
            return ctypes.CDLL(locate("m"))
    ''',
    "wrapper imported under another name": '''
        from .util import dlopen as dl
        def use():
            return dl("libwrapped.so.7", "libwrapped.so")
    ''',
    "decorated, nested and async": '''
        import ctypes, functools
        def deco(f):
            return f
        @deco
        async def names():
            return "libasync.so"
        class K:
            @functools.lru_cache
            def get(self):
                def pick():
                    return "libnested.so.8"
                return ctypes.CDLL(pick())
    ''',
    "comprehensions and lambdas": '''
        import ctypes
        def names():
            return [n for n in ("libcomp1.so", "libcomp2.so")]
        pick = lambda: "liblambda.so"
        def load():
            for n in names():
                ctypes.CDLL(n)
            ctypes.CDLL(pick())
    ''',
}


def detect(src: str, file: str = "pkg/mod.py",
           modules: PythonModules | None = None) -> tuple[list[LoadSite], list[str]]:
    return detect_python(textwrap.dedent(src), file, modules=modules)


def eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Walk every body at once, as before the lazy walk."""
    monkeypatch.setattr(dp, "_searchable", lambda source: None)


def names(sites: list[LoadSite]) -> set[str]:
    return {n for s in sites for n in s.names}


@pytest.mark.parametrize("key", sorted(SNIPPETS))
def test_each_way_a_body_is_reached(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lazy = detect(SNIPPETS[key])
    assert lazy[0], key  # every snippet has a load site with a name
    eager(monkeypatch)
    assert detect(SNIPPETS[key]) == lazy


def test_names_found_through_waiting_bodies() -> None:
    found = {k: names(detect(src)[0]) for k, src in SNIPPETS.items()}
    assert "libalias.so.1" in found["alias imported"]
    assert "libchain" in found["alias chain and loader instance"]
    assert "libll" in found["LibraryLoader"]
    assert "libclosure.so.2" in found["closure alias"]
    assert {"libfirst.so.1", "libsecond.so.2", "libthird.so.3", "libthird.so"} <= \
        found["callers in other bodies"]
    assert {"/opt/x/lib/libret.so.4", "libv2.so"} <= found["returns of another function"]
    assert {"libself.so.5", "libself-alt.so"} <= found["self attributes"]
    assert "libglobal.so.6" in found["global set in a function"]
    assert "libwrapped.so.7" in found["wrapper imported under another name"]
    assert "libnested.so.8" in found["decorated, nested and async"]
    assert {"libcomp1.so", "libcomp2.so"} <= found["comprehensions and lambdas"]


def test_caller_order_is_that_of_the_source(monkeypatch: pytest.MonkeyPatch) -> None:
    # Callers in bodies walked at once (a loader word in them) and later (found by name):
    # their order, hence the order of the sites and of their evidence, is the source's.
    src = '''
        import ctypes
        def a():
            load("liba.so")
        def load(name):
            return ctypes.CDLL(name)
        def b():
            load("libb.so")  # CDLL
        def c():
            x = [load(n) for n in ("libc1.so", "libc2.so")] if True else load("libc3.so")
            return x
        def d(v=load("libd.so")):
            return load("libe.so")
    '''
    lazy = detect(src)
    eager(monkeypatch)
    assert detect(src) == lazy
    assert [s.names for s in lazy[0]][:2] == [("liba.so",), ("libb.so",)]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_ends(newline: str, monkeypatch: pytest.MonkeyPatch) -> None:
    src = textwrap.dedent(SNIPPETS["callers in other bodies"]).replace("\n", newline)
    lazy = detect_python(src.encode(), "pkg/mod.py")
    assert "libsecond.so.2" in names(lazy[0])
    eager(monkeypatch)
    assert detect_python(src.encode(), "pkg/mod.py") == lazy


def test_names_spelled_in_compatibility_characters() -> None:
    # The parser NFKC-normalises identifiers: a fullwidth c (U+FF43) is c.
    wide_c = "\uff43"
    wide_name = "".join(chr(0xFEE0 + ord(ch)) for ch in "name")
    src = f'''
        from ctypes import CDLL as {wide_c}
        def load():
            return c("libwide.so.1")
        def name():
            return "libwide2.so"
        def load2():
            return {wide_c}({wide_name}())
    '''
    assert {"libwide.so.1", "libwide2.so"} <= names(detect(src)[0])


def test_other_encoding_walks_every_body() -> None:
    src = ('# -*- coding: latin-1 -*-\nimport ctypes\n'
           'def n():\n    return "libl\xe4tin.so"\n'
           'def load():\n    return ctypes.CDLL(n())\n').encode("latin-1")
    sites, problems = detect_python(src, "pkg/mod.py")
    assert problems == []
    assert names(sites) == {"libl\xe4tin.so"}


def test_a_package_across_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "site-packages" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "_load.py").write_text(textwrap.dedent('''
        import ctypes
        def load_it(name):
            return ctypes.CDLL(name)
    '''))
    (pkg / "a.py").write_text(textwrap.dedent('''
        from ._load import load_it
        def unrelated():
            return 1
        class Backend:
            def start(self):
                return load_it(name())
        def name():
            return "libpkg-a.so.1"
    '''))
    (pkg / "b.py").write_text(textwrap.dedent('''
        from . import _load
        def go():
            _load.load_it("libpkg-b.so.2")
    '''))
    target = pkg / "_load.py"

    def run() -> tuple[list[LoadSite], list[str]]:
        return detect_python(target.read_bytes(), str(target), modules=PythonModules.host())

    lazy = run()
    assert {"libpkg-a.so.1", "libpkg-b.so.2"} <= names(lazy[0])
    eager(monkeypatch)
    assert run() == lazy


def own_sources() -> list[Path]:
    return sorted(Path(unveil.__file__).parent.rglob("*.py"))


def test_same_sites_over_this_projects_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    # Real modules, loader words in docstrings and code alike (the detectors' own).
    files = own_sources()
    assert files
    lazy = [detect_python(f.read_bytes(), str(f), modules=PythonModules.host()) for f in files]
    eager(monkeypatch)
    assert [detect_python(f.read_bytes(), str(f), modules=PythonModules.host())
            for f in files] == lazy


_PARTS = [
    "import ctypes\n",
    "from ctypes import CDLL as C\n",
    "L = ctypes.cdll\n",
    "def load(n):\n    return ctypes.CDLL(n)\n",
    "def a():\n    load('liba.so')\n",
    "def b():\n    return C(name())\n",
    "def name():\n    return 'libn.so'\n",
    "class K:\n    def __init__(self):\n        self.p = 'libk.so'\n"
    "    def go(self):\n        return load(self.p)\n",
    "def g():\n    global G\n    G = 'libg.so'\n",
    "def h():\n    return ctypes.CDLL(G)\n",
    "def i():\n    return L.libi\n",
    "def j():\n    def k():\n        return C('libj.so')\n    return k\n",
    "x = load('libx.so') if ctypes else None\n",
]


@settings(max_examples=60, deadline=10_000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PARTS), max_size=10))
def test_any_mix_gives_the_same_sites(parts: list[str]) -> None:
    src = "".join(parts)
    lazy = detect_python(src, "pkg/mod.py")
    with pytest.MonkeyPatch.context() as mp:
        eager(mp)
        assert detect_python(src, "pkg/mod.py") == lazy


def test_tree_reads_resolve_like_the_file_system(tmp_path: Path) -> None:
    # PythonModules.of resolves a file's directory once for all its files: the same file
    # (or none) as resolving the whole path, through linked directories and files too.
    root = tmp_path / "root"
    lib = root / "venv" / "lib" / "site-packages" / "pkg"
    lib.mkdir(parents=True)
    (lib / "a.py").write_text("A = 1\n")
    (lib / "sub").mkdir()
    (lib / "sub" / "b.py").write_text("B = 2\n")
    (root / "venv" / "lib64").symlink_to("lib")
    (lib / "link.py").symlink_to("a.py")
    (lib / "abs.py").symlink_to("/venv/lib/site-packages/pkg/sub/b.py")
    (lib / "dangling.py").symlink_to("nowhere.py")
    (lib / "loop1.py").symlink_to("loop2.py")
    (lib / "loop2.py").symlink_to("loop1.py")
    (lib / "dirlink").symlink_to("sub")
    fs = HostFS(str(root))
    modules = PythonModules.of(fs)
    paths = [f"/venv/{d}/site-packages/pkg/{f}"
             for d in ("lib", "lib64")
             for f in ("a.py", "sub/b.py", "link.py", "abs.py", "dangling.py", "loop1.py",
                       "dirlink", "dirlink/b.py", "missing.py", "a.py/x", "sub", "sub/..",
                       "./a.py", "sub/../a.py")]
    for path in [*paths, "a.py", "/", ""]:
        try:
            real = fs.resolve(path)
            expected = fs.head(real, 1 << 20) if real is not None else None
        except Exception:
            expected = None
        assert modules.read(path) == expected, path


def test_long_chains_of_names_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Names for names for a loader, and functions handing a name down: past a few rounds
    # or searches every body is walked, with the same sites.
    chain = "import ctypes\na0 = ctypes.CDLL\n" + "".join(
        f"a{i} = a{i - 1}\n" for i in range(1, 300)) + "".join(
        f"def f{i}():\n    return a{i}('lib{i}.so')\n" for i in range(0, 300, 37))
    forward = "import ctypes\ndef g0(n):\n    return ctypes.CDLL(n)\n" + "".join(
        f"def g{i}(n):\n    return g{i - 1}(n)\n" for i in range(1, 200)) + "".join(
        f"def h{i}():\n    g{i}('libh{i}.so')\n" for i in range(0, 200, 3))
    def attrs(r: range) -> str:
        return "(" + ", ".join(f"self.a{i}" for i in r) + ")"

    many = ("import ctypes\nclass K:\n    def load(self):\n"
            f"        for n in {attrs(range(50))}:\n            ctypes.CDLL(n)\n"
            f"        for m in {attrs(range(50, 100))}:\n            ctypes.CDLL(m)\n"
            + "".join(f"    def s{i}(self):\n        self.a{i} = 'libx{i}.so'\n"
                      for i in range(100)))
    sources = (chain, forward, many)
    lazy = [detect_python(src, "pkg/mod.py") for src in sources]
    assert [len(s.names) for s in lazy[2][0]] == [50, 50]
    eager(monkeypatch)
    assert [detect_python(src, "pkg/mod.py") for src in sources] == lazy
