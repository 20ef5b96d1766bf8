"""The textual prefilter a source passes before it is parsed for dynamic loading
(``unveil.scan._worth_parsing``): cheap, and never in the way of a load site the Python
detector would find."""

from __future__ import annotations

import importlib
import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unveil.dynload.python import detect_python
from unveil.literals import LiteralSearch
from unveil.sources.fs import HostFS

scan = importlib.import_module("unveil.scan")


def worth(src: str, path: str = "pkg/mod.py") -> bool:
    return bool(scan._worth_parsing(path, textwrap.dedent(src).encode()))


@pytest.mark.parametrize("src", [
    "import ctypes\nlib = ctypes.CDLL('libfoo.so.1')\n",
    "from ctypes import CDLL as C\nlib = C('libfoo.so.1')\n",
    "import ctypes\nlib = getattr(\n    ctypes.cdll, 'libfoo')\n",
    "import ctypes\nctypes.CDLL(None, use_errno=True)\n",
    "from numpy import ctypeslib\nctypeslib.load_library('libfoo', '.')\n",
    "import numpy as np\nnp.ctypeslib.load_library('libfoo', '.')\n",
    "from .util import load_library\nload_library('libfoo.so')\n",
    "import os\nos.add_dll_directory(d)  # comment after code\n",
    "# a comment\rimport ctypes\rctypes.CDLL('libfoo.so')\r",
    "x = 1; import ctypes; ctypes.CDLL('libfoo.so')\n",
])
def test_sources_with_a_loader_pass(src: str) -> None:
    assert worth(src)


@pytest.mark.parametrize("src", [
    "x = 1\n",
    "# ctypes.CDLL('libfoo.so') in a comment\n",
    "    # os.add_dll_directory(d)\n",
    "import ctypes\nprocess = ctypes.CDLL(None)\n",
    "import ctypes\nprocess = ctypes.CDLL( None )\n",
    "import torch\ntorch.ops.load_library(path)\n",
])
def test_sources_without_one_do_not(src: str) -> None:
    assert not worth(src)


_LINES = [
    "import ctypes\n",
    "import numpy as np\n",
    "from ctypes import CDLL as C, cdll\n",
    "# ctypes.CDLL('libcomment.so')\n",
    "x = ctypes.CDLL(None)\n",
    "y = ctypes.CDLL('liby.so')\n",
    "z = C('libz.so')\n",
    "w = cdll.libw\n",
    "v = np.ctypeslib.load_library('libv', '.')\n",
    "u = torch.ops.load_library('libu.so')\n",
    "t = ctypes.util.find_library('t')\n",
    "s = ctypes.CDLL(None, mode=ctypes.RTLD_GLOBAL)\n",
    "def f(n):\n    return ctypes.WinDLL(n)\n",
    "f('libf.dll')\n",
    "q = '''\n# CDLL('in a string')\n'''\n",
]


@settings(max_examples=200, deadline=10_000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_LINES), max_size=8), st.sampled_from(["\n", "\r\n", "\r"]))
def test_never_in_the_way_of_a_load_site(lines: list[str], newline: str) -> None:
    src = "".join(lines).replace("\n", newline)
    sites, _ = detect_python(src, "pkg/mod.py")
    if sites:
        assert scan._worth_parsing("pkg/mod.py", src.encode())


def test_worker_rounds_give_what_one_process_gives(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # _Sources with workers: a first round reads and prefilters, a second analyses a
    # package's sources together; the results (order included) are those of one process.
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    files = {
        "pkg/__init__.py": "from ._load import load_it\n",
        "pkg/_load.py": "import ctypes\ndef load_it(name):\n    return ctypes.CDLL(name)\n",
        "pkg/a.py": "from ._load import load_it\ndef go():\n    load_it('libpkg-a.so.1')\n",
        "pkg/b.py": "from . import _load\ndef go():\n    _load.load_it('libpkg-b.so.2')\n",
        "pkg/c.py": "x = 1\n",
        "other/__init__.py": "import ctypes\nlib = ctypes.CDLL('libother.so.3')\n",
        "other/win.py": "import ctypes\nk = ctypes.windll.kernel32\n",
        "other/bad.py": "import ctypes\nctypes.CDLL('libbad.so' \n",
        "single.py": "from ctypes.util import find_library\nfind_library('m')\n",
        "node_modules/x/index.js": "const koffi = require('koffi');\nkoffi.load('libjs.so');\n",
    }
    for rel, src in files.items():
        p = site / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(src)
    fs = HostFS("/")
    paths = [*sorted(str(site / rel) for rel in files), str(site / "pkg" / "gone.py")]

    one = scan._Sources(fs, paths, 1).results()
    monkeypatch.setattr(scan._Sources, "MIN_FILES", 8)  # so few files: workers all the same
    sources = scan._Sources(fs, paths, 2)
    assert sources.pool is not None
    two = sources.results()
    assert two == one
    by_path = {p: (sites, problems) for p, sites, problems in one}
    names = {n for sites, _ in by_path.values() for s in sites for n in s.names}
    assert {"libpkg-a.so.1", "libpkg-b.so.2", "libother.so.3", "kernel32", "libjs.so"} <= names
    assert by_path[str(site / "pkg" / "gone.py")][1]  # unreadable: said so
    assert by_path[str(site / "other" / "bad.py")][1]  # not valid Python: said so
    assert str(site / "pkg" / "c.py") not in by_path  # nothing to parse
    assert [p for p, _, _ in one] == sorted(by_path, key=paths.index)


def test_little_source_is_analysed_here(tmp_path: Path) -> None:
    for i in range(10):
        (tmp_path / f"m{i}.py").write_text("import ctypes\nctypes.CDLL('libm.so.6')\n")
    paths = sorted(str(p) for p in tmp_path.iterdir())
    sources = scan._Sources(HostFS("/"), paths, 2)
    assert sources.pool is None  # ten small files: no workers to fork
    assert len(sources.results()) == 10


def _py_calls_per_word(raw: bytes) -> bool:
    """The prefilter as one pass per word (what scan._py_calls does with fewer passes)."""
    for w in (b"DLL", b"dll", b"LoadLibrary", b"d_library", b"dlopen", b"require_version"):
        i = raw.find(w)
        while i >= 0:
            start = raw.rfind(b"\n", 0, max(0, raw.rfind(b"\n", 0, i))) + 1
            end = raw.find(b"\n", i + len(w))
            end = len(raw) if end < 0 else end
            nxt = raw.find(b"\n", end + 1)
            for m in scan._PY_CALLS.finditer(raw, start, len(raw) if nxt < 0 else nxt):
                if scan._py_call_counts(raw, m):
                    return True
            i = raw.find(w, end)
    return False


_FRAGMENTS = [b"LoadLibrary", b"CDLL", b"dlopen", b"find_library", b"load_library", b"cdll",
              b"dl", b"DL", b"L", b"ibrary", b"Load", b"find_", b"load_", b"d_l", b"open",
              b"ll", b"cdll", b"win", b"require_version", b"(", b")", b".", b"[", b" ", b"\n",
              b"\r", b"# ", b"None", b"from x import ", b"getattr(", b"ctypes.", b"x",
              b"ctypeslib", b"add_dll_directory", b"handle", b"_permanently", b"s"]


@pytest.mark.parametrize("raw", [
    w + tail for w in (b"CDLL", b"PyDLL", b"WinDLL", b"OleDLL", b"LoadLibrary", b"LoadLibraryEx",
                       b"find_library", b"dlopen", b"load_library", b"load_library_permanently",
                       b"add_dll_directory", b"require_version", b"require_versions",
                       b"cdll", b"windll", b"x.cdll", b"import cdll", b"from y import CDLL")
    for tail in (b"(x)", b" (x)", b"\n(x)", b".foo", b"[0]", b"(None)", b"")])
def test_each_word_same_verdict(raw: bytes) -> None:
    assert scan._py_calls(raw) == _py_calls_per_word(raw)


@settings(max_examples=400, deadline=10_000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=30))
def test_fewer_passes_same_verdict(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    assert scan._py_calls(raw) == _py_calls_per_word(raw)


def test_analysis_tasks_share_the_work() -> None:
    sources = scan._Sources(HostFS("/"), [], 2)
    big = [(f"/sp/big/m{i}.py", None, 100) for i in range(8)]
    small = [(f"/sp/small{i}.py", None, 50) for i in range(4)]
    sources.split = True  # a directory: the big package goes to both workers
    tasks = sources._tasks([big, small])
    assert sorted(p for t in tasks for p, _, _ in t) == sorted(p for p, _, _ in big + small)
    assert max(sum(size for _, _, size in t) for t in tasks) <= 500
    assert all(len({"big" in p for p, _, _ in t}) == 1 for t in tasks)  # one group each
    sources.split = False  # an archive: a package in one task (searched once)
    assert [len(t) for t in sources._tasks([big, small])] == [8, 4]


def _die(sources: list[object]) -> list[object]:
    os._exit(3)  # a worker killed mid-analysis


def _many_sources(tmp_path: Path) -> list[str]:
    for i in range(10):
        (tmp_path / f"m{i}.py").write_text(f"import ctypes\nctypes.CDLL('libm{i}.so')\n")
    return sorted(str(p) for p in tmp_path.iterdir())


def test_a_dead_worker_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _many_sources(tmp_path)
    monkeypatch.setattr(scan._Sources, "MIN_FILES", 8)
    monkeypatch.setattr(scan, "_worker_analyse", _die)
    results = scan._Sources(HostFS("/"), paths, 2).results()
    assert results
    assert all(not sites for _, sites, _ in results)
    assert any("failed" in pr for _, _, problems in results for pr in problems)


def test_a_failing_round_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _many_sources(tmp_path)
    monkeypatch.setattr(scan._Sources, "MIN_FILES", 8)

    def broken(self: object, groups: object) -> object:
        raise RuntimeError("no tasks")

    monkeypatch.setattr(scan._Sources, "_tasks", broken)
    results = scan._Sources(HostFS("/"), paths, 2).results()
    assert any("no tasks" in pr for _, _, problems in results for pr in problems)


_WORDS = st.sampled_from(["dll", "DLL", "CDLL(", "cdll.", "dlopen(", "find_library(",
                          "LoadLibrary(", "load_library(", "require_version(", "import ",
                          "from ctypes ", "ctypes.CDLL", "None)", "# ", "\n", "\r", " ",
                          "x", "(", ")", ".", "d", "l", "ibrary"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_WORDS, max_size=40))
def test_hyperscan_word_pass_agrees_with_bytes_find(words: list[str]) -> None:
    """With Hyperscan installed, one pass finds the words the four bytes.find passes find:
    the verdict on any text is the same."""
    if scan._word_scanner().db is None:
        pytest.skip("hyperscan is not installed here")
    raw = "".join(words).encode()
    assert scan._py_calls(raw) == scan._py_calls(raw, fast=False)


def test_hyperscan_agrees_on_real_sources() -> None:
    """... and on every source of this project and of the standard library's ctypes."""
    if scan._word_scanner().db is None:
        pytest.skip("hyperscan is not installed here")
    roots = [Path(str(scan.__file__)).parents[1], Path(str(os.__file__)).parent / "ctypes"]
    for root in roots:
        for f in root.rglob("*.py"):
            raw = f.read_bytes()
            assert scan._py_calls(raw) == scan._py_calls(raw, fast=False), f


def test_literal_search_without_a_database_asks_callers_to_search_themselves() -> None:
    """No words, or words Hyperscan refuses (an empty literal): no database, ``scan``
    returns False without calling back, and each caller falls back to its own searches."""
    calls: list[int] = []

    def on(ident: int, _from: int, _to: int, _flags: int, _ctx: object) -> None:
        calls.append(ident)

    for words in ((), (b"",)):
        search = LiteralSearch(words)
        assert search.db is None
        assert search.scan(b"anything", on) is False
    assert calls == []
    if LiteralSearch((b"abc",)).db is not None:  # with Hyperscan: one call per match
        assert LiteralSearch((b"abc",)).scan(b"abc abc", on) is True
        assert calls == [0, 0]
