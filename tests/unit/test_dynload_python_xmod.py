"""The Python detector across modules: values followed through the other modules of a
package (``PythonModules``), per calling context.

Each test builds a small synthetic package in a temporary directory, in the shapes real
packages use (a loader defined in both branches of a ``try``/``except``, candidates passed
in by backends in other modules, a ``find_library`` wrapper imported from another module,
paths built from a dotted module name), then hostile trees: cycles, unreadable and invalid
modules, many callers.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unveil.dynload.python import PythonModules, detect_python
from unveil.model import Confidence, LoadSite


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, src in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(src))
    return root


def detect(root: Path, rel: str, modules: PythonModules | None = None,
           ) -> list[LoadSite]:
    path = root / rel
    sites, problems = detect_python(path.read_bytes(), str(path),
                                    modules=modules or PythonModules.host())
    assert problems == []
    return sites


def by_names(sites: Iterable[LoadSite]) -> dict[tuple[str, ...], LoadSite]:
    return {s.names: s for s in sites if s.names}


def line_of(root: Path, rel: str, needle: str) -> int:
    text = (root / rel).read_text()
    return text.count("\n", 0, text.index(needle)) + 1


# --------------------------------------------------------------------------- one module

def test_every_definition_of_a_function_counts(tmp_path: Path) -> None:
    # pycryptodome's _raw_api.py: load_lib() defined in the cffi branch and again in the
    # ctypes branch; the call binds the parameter of both (no modules needed).
    src = textwrap.dedent('''
        try:
            import cffi
            ffi = cffi.FFI()
            def load_lib(name):
                return ffi.dlopen(name)
        except ImportError:
            from ctypes import CDLL
            def load_lib(name):
                return CDLL(name)
        lib = load_lib('libfoo.so.1')
    ''')
    sites, problems = detect_python(src, "pkg/raw.py")
    assert problems == []
    assert [(s.api, s.names) for s in sites] == [("cffi.dlopen", ("libfoo.so.1",)),
                                                  ("ctypes.CDLL", ("libfoo.so.1",))]
    assert all("library name from the call of load_lib() at line 11" in s.hints
               for s in sites)


def test_each_call_of_a_wrapper_is_its_own_load_but_fallbacks_are_one(tmp_path: Path) -> None:
    src = textwrap.dedent('''
        import ctypes
        def _load(name):
            return ctypes.CDLL(name)
        try:
            a = _load('libbundled.so.1')
        except OSError:
            a = _load('libsystem.so.1')
        b = _load('libother.so.2')
        c = _load('liby.so.1') if X else _load('libz.so.1')
    ''')
    sites, _ = detect_python(src, "pkg/m.py")
    assert [s.names for s in sites] == [("libbundled.so.1", "libsystem.so.1"),
                                        ("libother.so.2",), ("liby.so.1", "libz.so.1")]
    other = sites[1]
    assert other.hints[0] == "library name from the call of _load() at line 9"
    assert other.confidence is Confidence.MEDIUM


def test_straight_line_reassignment_hides_earlier_values() -> None:
    src = textwrap.dedent('''
        import ctypes
        name = 'libold.so.1'
        name = 'libnew.so.2'
        ctypes.CDLL(name)
        lib = 'liba.so.1'
        if X:
            lib = 'libb.so.1'
        ctypes.CDLL(lib)
        def f(p):
            p = p + '.so.3'
            return ctypes.CDLL(p)
        f('libfixed')
    ''')
    sites, _ = detect_python(src, "m.py")
    assert [s.names for s in sites] == [("libnew.so.2",), ("liba.so.1", "libb.so.1"),
                                        ("libfixed.so.3",)]


def test_string_methods_slices_and_join() -> None:
    src = textwrap.dedent('''
        import ctypes, os
        parts = 'pkg.native._core'.split('.')
        ctypes.CDLL(os.path.join('/opt', *parts[1:-1], parts[-1] + '.so'))
        ctypes.CDLL('-'.join(['libx', 'y']).replace('x', 'z') + '.so.1')
        ctypes.CDLL('LIBQ.SO.1'.lower())
    ''')
    sites, _ = detect_python(src, "m.py")
    assert [s.names for s in sites] == [("/opt/native/_core.so",), ("libz-y.so.1",),
                                        ("libq.so.1",)]


# --------------------------------------------------------------------------- across modules

PYUSB_LIKE = {
    "site-packages/pkg/__init__.py": "",
    "site-packages/pkg/backend/__init__.py": "",
    "site-packages/pkg/loader.py": '''
        import ctypes
        import ctypes.util

        def locate(candidates, find_library=ctypes.util.find_library):
            if find_library is None:
                find_library = ctypes.util.find_library
            for candidate in candidates:
                found = find_library(candidate)
                if found:
                    return found
            return None

        def load(candidates, name=None):
            lib = locate(candidates)
            return ctypes.CDLL(lib)
    ''',
    "site-packages/pkg/backend/one.py": '''
        import pkg.loader
        _lib = pkg.loader.load(('foo-1.0', 'foo'), 'Foo')
    ''',
    "site-packages/pkg/backend/two.py": '''
        from ..loader import load
        lib = load(['bar'])
    ''',
    "site-packages/pkg/backend/three.py": '''
        from pkg import loader as L
        def get():
            return L.load(candidates=('baz',))
    ''',
}


def test_parameters_bound_by_calls_in_other_modules(tmp_path: Path) -> None:
    root = write(tmp_path, PYUSB_LIKE)
    sp = "site-packages/pkg/loader.py"
    sites = detect(root, sp)
    line = line_of(root, sp, "ctypes.CDLL(lib)")
    assert all(s.line == line and s.stem for s in sites)
    got = by_names(sites)
    assert set(got) == {("foo-1.0", "foo"), ("bar",), ("baz",)}
    assert "library name from the call of load() at pkg/backend/one.py:3" in \
        got["foo-1.0", "foo"].hints
    assert "library name from the call of load() at pkg/backend/two.py:3" in got["bar",].hints
    assert "library name from the call of load() at pkg/backend/three.py:4" in \
        got["baz",].hints
    # One module alone: the site, no name, and why.
    alone, _ = detect_python((root / sp).read_text(), str(root / sp))
    assert [s.names for s in alone] == [()]
    assert any("no call site here" in h for h in alone[0].hints)


def test_return_value_of_a_find_library_wrapper_in_another_module(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "proj/ossl/__init__.py": "def config():\n    return {}\n",
        "proj/ossl/_ffi.py": '''
            import sys
            from ctypes.util import find_library

            def get_library(name, dylib_name, version):
                library = find_library(name)
                if sys.platform == 'darwin':
                    library = '/usr/lib/%s' % dylib_name
                return library
        ''',
        "proj/ossl/_openssl/__init__.py": "",
        "proj/ossl/_openssl/_crypto.py": '''
            from ctypes import CDLL
            from .. import config
            from .._ffi import get_library

            path = config().get('libcrypto_path')
            if path is None:
                path = get_library('crypto', 'libcrypto.dylib', '42')
            libcrypto = CDLL(path, use_errno=True)
        ''',
        "proj/ossl/_openssl/_ssl.py": '''
            from ctypes import CDLL
            from .._ffi import get_library
            libssl = CDLL(get_library('ssl', 'libssl.dylib', '44'))
        ''',
    })
    mods = PythonModules.host()
    crypto = detect(root, "proj/ossl/_openssl/_crypto.py", mods)
    assert [(s.names, s.stem) for s in crypto] == [(("crypto",), True),
                                                   (("/usr/lib/libcrypto.dylib",), False)]
    ssl = detect(root, "proj/ossl/_openssl/_ssl.py", mods)
    assert [s.names for s in ssl] == [("ssl",), ("/usr/lib/libssl.dylib",)]
    # The wrapper's own find_library takes the names of every call, one site each.
    ffi = detect(root, "proj/ossl/_ffi.py", mods)
    got = by_names(ffi)
    assert set(got) == {("crypto",), ("ssl",)}
    assert any(h.startswith("library name from the call of get_library() at "
                            "ossl/_openssl/_crypto.py:") for h in got["crypto",].hints)


PYCRYPTODOME_LIKE = {
    "site-packages/pkg/__init__.py": "",
    "site-packages/pkg/util/__init__.py": "",
    "site-packages/pkg/util/_files.py": '''
        import os

        def pkg_filename(dir_comps, filename):
            if dir_comps[0] != "pkg":
                raise ValueError("only modules under 'pkg'")
            dir_comps = list(dir_comps[1:]) + [filename]
            util_lib, _ = os.path.split(os.path.abspath(__file__))
            root_lib = os.path.join(util_lib, "..")
            return os.path.join(root_lib, *dir_comps)
    ''',
    "site-packages/pkg/util/_raw.py": '''
        import os
        from importlib import machinery
        from pkg.util._files import pkg_filename

        suffixes = machinery.EXTENSION_SUFFIXES

        try:
            import cffi
            ffi = cffi.FFI()

            def load_lib(name, cdecl):
                return ffi.dlopen(name)
        except ImportError:
            from ctypes import CDLL

            def load_lib(name, cdecl):
                return CDLL(name)

        def load_raw_lib(name, cdecl):
            split = name.split(".")
            dir_comps, basename = split[:-1], split[-1]
            for ext in suffixes:
                full_name = pkg_filename(dir_comps, basename + ext)
                if os.path.isfile(full_name):
                    return load_lib(full_name, cdecl)
            raise OSError(name)
    ''',
    "site-packages/pkg/cipher/__init__.py": "",
    "site-packages/pkg/cipher/aes.py": '''
        from pkg.util._raw import load_raw_lib
        _lib = load_raw_lib("pkg.cipher._raw_aes", "int f(void);")
    ''',
    "site-packages/pkg/hash/__init__.py": "",
    "site-packages/pkg/hash/sha.py": '''
        from pkg.util import _raw
        _lib = _raw.load_raw_lib("pkg.hash._sha256", "")
    ''',
    "site-packages/pkg/hash/optional.py": '''
        from pkg.util._raw import load_raw_lib

        def load_optional(name):
            try:
                return load_raw_lib(name, "")
            except OSError:
                return None

        _ni = load_optional("pkg.hash._sha_ni")
    ''',
}


def test_paths_built_from_dotted_names_passed_by_other_modules(tmp_path: Path) -> None:
    root = write(tmp_path, PYCRYPTODOME_LIKE)
    sp = root / "site-packages"
    sites = detect(root, "site-packages/pkg/util/_raw.py")
    for api in ("cffi.dlopen", "ctypes.CDLL"):
        got = by_names(s for s in sites if s.api == api)
        assert set(got) == {(f"{sp}/pkg/cipher/_raw_aes.*",), (f"{sp}/pkg/hash/_sha256.*",),
                            (f"{sp}/pkg/hash/_sha_ni.*",)}, api
        aes = got[f"{sp}/pkg/cipher/_raw_aes.*",]
        assert aes.confidence is Confidence.LOW  # a pattern: the suffix is the platform's
        assert aes.hints[0] == ("library name from the call of load_raw_lib() at "
                                "pkg/cipher/aes.py:3")
        assert any("EXTENSION_SUFFIXES" in h for h in aes.hints)
        # Through one more wrapper, in a third module.
        assert got[f"{sp}/pkg/hash/_sha_ni.*",].hints[0] == (
            "library name from the call of load_optional() at pkg/hash/optional.py:10")


def test_relative_imports_reexports_and_star_imports(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "lib/pkg/__init__.py": "from ._impl import load as load_library_file\n",
        "lib/pkg/_impl.py": '''
            import ctypes
            def load(path):
                return ctypes.CDLL(path)
        ''',
        "lib/pkg/user.py": "from . import load_library_file\nload_library_file('libre.so.1')\n",
        "lib/pkg/sub/__init__.py": "from .._impl import *\n",
        "lib/pkg/sub/user2.py": "from . import load\nload('libstar.so.2')\n",
        "lib/pkg/sub/user3.py": "import pkg._impl as impl\nimpl.load(path='libkw.so.3')\n",
    })
    sites = detect(root, "lib/pkg/_impl.py")
    assert set(by_names(sites)) == {("libre.so.1",), ("libstar.so.2",), ("libkw.so.3",)}
    # The callers' files are not load sites themselves.
    for rel in ("lib/pkg/user.py", "lib/pkg/sub/user2.py"):
        path = root / rel
        assert detect_python(path.read_bytes(), str(path), modules=PythonModules.host()) \
            == ([], [])


def test_a_modelled_library_function_is_never_followed_into(tmp_path: Path) -> None:
    # Scanning a Python installation: ctypes/util.py is in the tree, but find_library is
    # still find_library, not a function whose body is evaluated.
    root = write(tmp_path, {
        "py/ctypes/__init__.py": "class CDLL:\n    pass\n",
        "py/ctypes/util.py": "def find_library(name):\n    return None\n",
        "py/uuid.py": "from ctypes.util import find_library\nlib = find_library('uuid')\n",
    })
    sites = detect(root, "py/uuid.py")
    assert [(s.names, s.stem) for s in sites] == [(("uuid",), True)]


def test_modules_from_any_reader(tmp_path: Path) -> None:
    # A tree that is not on disk (a wheel, an image): read and list through callables.
    files = {
        "/w/app/__init__.py": b"",
        "/w/app/native.py": b"import ctypes\ndef open_lib(n):\n    return ctypes.CDLL(n)\n",
        "/w/app/main.py": b"from .native import open_lib\nopen_lib('libapp.so.1')\n",
    }

    def listdir(path: str) -> list[tuple[str, bool]]:
        prefix = path.rstrip("/") + "/"
        names = {p[len(prefix):].split("/", 1)[0]: "/" in p[len(prefix):]
                 for p in files if p.startswith(prefix)}
        return list(names.items())

    mods = PythonModules(files.get, listdir)
    sites, problems = detect_python(files["/w/app/native.py"], "/w/app/native.py",
                                    modules=mods)
    assert problems == []
    assert [s.names for s in sites] == [("libapp.so.1",)]
    assert sites[0].hints[0] == "library name from the call of open_lib() at app/main.py:2"


def test_a_changed_source_under_the_same_path_is_not_stale(tmp_path: Path) -> None:
    root = write(tmp_path, dict(PYUSB_LIKE))
    mods = PythonModules.host()
    loader = root / "site-packages/pkg/loader.py"
    first, _ = detect_python(loader.read_bytes(), str(loader), modules=mods)
    assert len(by_names(first)) == 3
    changed = loader.read_text().replace("return ctypes.CDLL(lib)",
                                         "return ctypes.CDLL('libfixed.so.1')")
    second, _ = detect_python(changed, str(loader), modules=mods)
    assert [s.names for s in second if s.api == "ctypes.CDLL"] == [("libfixed.so.1",)]
    # find_library's result no longer reaches the loader: a site of its own.
    assert {s.names for s in second if s.api == "ctypes.util.find_library"} == {
        ("foo-1.0", "foo"), ("bar",), ("baz",)}
    again, _ = detect_python(loader.read_bytes(), str(loader), modules=mods)
    assert set(by_names(again)) == set(by_names(first))


# --------------------------------------------------------------------------- hostile trees

def test_cycles_terminate(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "site-packages/cyc/__init__.py": "from .c import h\n",
        "site-packages/cyc/a.py": '''
            import ctypes
            from .b import g

            def f(x):
                if x.endswith('.so'):
                    return ctypes.CDLL(x)
                return g(x)

            def rec(x):
                return rec(x + 'a') if x else ctypes.CDLL(x)
        ''',
        "site-packages/cyc/b.py": '''
            from .a import f, rec
            from . import a

            def g(x):
                return f(x + '.so')

            f('libcycle')
            a.rec('libr')
        ''',
        # Re-exports that point at each other, and a module importing itself.
        "site-packages/cyc/c.py": "from .d import h\nfrom .c import h\n",
        "site-packages/cyc/d.py": "from .c import h\n",
        "site-packages/cyc/e.py": '''
            import ctypes
            from . import h
            from .e import loop

            def loop(n):
                return loop(n)

            ctypes.CDLL(h('x'))
            ctypes.CDLL(loop('liby.so'))
        ''',
    })
    mods = PythonModules.host()
    start = time.monotonic()
    for rel in ("a.py", "b.py", "c.py", "e.py"):
        path = root / "site-packages/cyc" / rel
        sites, problems = detect_python(path.read_bytes(), str(path), modules=mods)
        assert all("not valid" not in p for p in problems)
        if rel == "a.py":
            assert ("libcycle.so",) in by_names(sites)
    assert time.monotonic() - start < 60  # a hang guard, not a speed check


def test_unreadable_invalid_and_failing_modules_are_skipped(tmp_path: Path) -> None:
    root = write(tmp_path, dict(PYUSB_LIKE))
    backend = root / "site-packages/pkg/backend"
    (backend / "broken.py").write_text("from pkg.loader import load\nload(('x',)\n")
    (backend / "binary.py").write_bytes(b"load(\x00\xff\xfe" * 100)
    (backend / "huge.py").write_text("# load\n" + "x = 1\n" * 400_000)

    host = PythonModules.host()

    def read(path: str) -> bytes | None:
        if path.endswith("two.py"):
            raise PermissionError(path)
        return host.read(path)

    def listdir(path: str) -> list[tuple[str, bool]]:
        if path.endswith("/nowhere"):
            raise OSError(path)
        return list(host.listdir(path).items())

    sites = detect(root, "site-packages/pkg/loader.py", PythonModules(read, listdir))
    # two.py could not be read: its call is missing, the others are found.
    assert set(by_names(sites)) == {("foo-1.0", "foo"), ("baz",)}


def test_many_callers_are_bounded(tmp_path: Path) -> None:
    files = {"site-packages/many/__init__.py": "",
             "site-packages/many/core.py": "import ctypes\n"
                                           "def load(n):\n    return ctypes.CDLL(n)\n"}
    for i in range(300):
        files[f"site-packages/many/m{i:03}.py"] = (
            "from .core import load\n" + "".join(f"load('lib{i}_{j}.so')\n" for j in range(3)))
    root = write(tmp_path, files)
    path = root / "site-packages/many/core.py"
    start = time.monotonic()
    sites, problems = detect_python(path.read_bytes(), str(path),
                                    modules=PythonModules.host())
    assert time.monotonic() - start < 60  # a hang guard, not a speed check
    assert len(sites) == 256  # one per call followed, each its own load
    assert all(len(s.names) == 1 for s in sites)
    assert len(problems) == 1
    assert "only the first 256 calls of load() followed" in problems[0]


@pytest.mark.parametrize("depth", [3, 12])
def test_deep_wrapper_chains_are_bounded(tmp_path: Path, depth: int) -> None:
    files = {"site-packages/deep/__init__.py": "",
             "site-packages/deep/w0.py": "import ctypes\ndef w0(n):\n"
                                         "    return ctypes.CDLL(n)\n"}
    for i in range(1, depth + 1):
        files[f"site-packages/deep/w{i}.py"] = (
            f"from .w{i - 1} import w{i - 1}\ndef w{i}(n):\n    return w{i - 1}(n)\n")
    files["site-packages/deep/use.py"] = f"from .w{depth} import w{depth}\n" \
        f"w{depth}('libdeep.so.1')\n"
    root = write(tmp_path, files)
    sites = detect(root, "site-packages/deep/w0.py")
    if depth <= 3:
        assert [s.names for s in sites] == [("libdeep.so.1",)]
    else:
        assert len(sites) == 1  # too many wrappers up: the site, with what is known


def test_calls_in_the_package_tests_do_not_name_its_loads(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "site-packages/pkg/__init__.py": "",
        "site-packages/pkg/core.py": "import ctypes\ndef load(n):\n    return ctypes.CDLL(n)\n",
        "site-packages/pkg/use.py": "from .core import load\nload('libreal.so.1')\n",
        "site-packages/pkg/tests/__init__.py": "",
        "site-packages/pkg/tests/test_core.py": "from pkg.core import load\n"
                                                "load('libc.so.6')\n",
        "site-packages/pkg/tests/helpers.py": '''
            import ctypes
            from pkg.tests import fake
            def open_fake(n):
                return ctypes.CDLL(n)
        ''',
        "site-packages/pkg/tests/fake.py": "from .helpers import open_fake\n"
                                           "open_fake('libfake.so.0')\n",
    })
    assert [s.names for s in detect(root, "site-packages/pkg/core.py")] == [("libreal.so.1",)]
    # A loader in the tests takes the tests' calls.
    assert [s.names for s in detect(root, "site-packages/pkg/tests/helpers.py")] == [
        ("libfake.so.0",)]


def test_calls_returned_by_one_function_are_one_load(tmp_path: Path) -> None:
    # The optimised build first, the portable one when it is missing: whichever loads,
    # the function has returned.
    root = write(tmp_path, {
        "site-packages/pkg/__init__.py": "",
        "site-packages/pkg/core.py": "import ctypes\ndef load(n):\n    return ctypes.CDLL(n)\n",
        "site-packages/pkg/ec.py": '''
            from .core import load
            def ec_lib(fast):
                if fast:
                    try:
                        return load('libec_fast.so.1'), True
                    except OSError:
                        pass
                return load('libec.so.1'), False
            _other = load('libother.so.1')
        ''',
    })
    assert [s.names for s in detect(root, "site-packages/pkg/core.py")] == [
        ("libec_fast.so.1", "libec.so.1"), ("libother.so.1",)]


_PIECES = ["from .core import load\n", "from . import core\n", "import pkg.core as c\n",
           "load(", "core.load(", "c.load(", "'libx.so.1'", "n", ")", "\n", "def load(n):\n",
           "    return load(n)\n", "from .other import *\n", "x = load\n", "x(", "*a", ", ",
           "name=", "if n:\n    ", "try:\n    ", "except OSError:\n    pass\n", "lambda n: ",
           "\x00", "\\", '"""']


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join),
       st.lists(st.sampled_from(_PIECES), max_size=40).map("".join))
def test_arbitrary_neighbour_modules_never_raise(caller: str, other: str) -> None:
    files = {
        "/t/pkg/__init__.py": b"",
        "/t/pkg/core.py": b"import ctypes\ndef load(n):\n    return ctypes.CDLL(n)\n",
        "/t/pkg/user.py": caller.encode(),
        "/t/pkg/other.py": other.encode(),
    }

    def listdir(path: str) -> list[tuple[str, bool]]:
        prefix = path.rstrip("/") + "/"
        return list({p[len(prefix):].split("/", 1)[0]: "/" in p[len(prefix):]
                     for p in files if p.startswith(prefix)}.items())

    mods = PythonModules(files.get, listdir)
    for path in ("/t/pkg/core.py", "/t/pkg/user.py", "/t/pkg/other.py"):
        sites, problems = detect_python(files[path], path, modules=mods)
        assert all(isinstance(s, LoadSite) for s in sites)
        assert all(isinstance(p, str) for p in problems)


def test_static_method_called_from_another_module(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/loader.py": '''
            import ctypes, ctypes.util
            class ExternalLibrary:
                @staticmethod
                def load(name):
                    return ctypes.CDLL(ctypes.util.find_library(name))
        ''',
        "pkg/ogg.py": '''
            from .loader import ExternalLibrary
            libogg = ExternalLibrary.load("ogg")
        ''',
    })
    site = by_names(detect(root, "pkg/loader.py"))[("ogg",)]
    assert site.stem


def test_resource_path_through_a_context_manager(tmp_path: Path) -> None:
    """llvmlite: ``with wrapper(as_file(files(pkg) / get_library_name())) as p:
    CDLL(str(p))``, the name from a function of another module, the wrapper a class
    whose ``__enter__`` enters what it wraps."""
    root = write(tmp_path, {
        "llv/__init__.py": "",
        "llv/utils.py": '''
            import os
            def get_library_name():
                return 'llv.dll' if os.name == 'nt' else 'libllv.so'
        ''',
        "llv/binding/__init__.py": "",
        "llv/binding/ffi.py": '''
            import ctypes, sys
            import importlib.resources as _impres
            from llv.utils import get_library_name
            class _suppress:
                def __init__(self, context):
                    self._context = context
                def __enter__(self):
                    return self._context.__enter__()
                def __exit__(self, *exc):
                    return self._context.__exit__(*exc)
            def _repl(package, resource):
                return _impres.as_file(_impres.files(package) / resource)
            _path = _repl if sys.version_info >= (3, 10) else _impres.path
            def load():
                with _suppress(_path(__name__.rpartition(".")[0], get_library_name())) as p:
                    return ctypes.CDLL(str(p))
        ''',
    })
    sites = detect(root, "llv/binding/ffi.py")
    assert f"{root}/llv/binding/libllv.so" in [n for s in sites for n in s.names]
