"""Static detectors of dynamic loading: Python, JavaScript, binding.gyp and Ruby.

The snippets are written in the style of real packages (python-magic's loader, cairocffi's
``dlopen`` over tuples, soundfile's bundled library with a system fallback, pyzbar, koffi,
ffi-napi, ffi-rs, ruby-ffi gems such as ethon), then hostile inputs, a property test, and an
opt-in test over the real packages (``-m network``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import textwrap
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unveil.dynload import detect_binding_gyp, detect_javascript, detect_python, detect_ruby
from unveil.dynload.javascript import FULL_LEX_CHARS, MAX_SOURCE_CHARS, _gyp_condition
from unveil.model import Confidence, LoadSite


def py(src: str, file: str = "pkg/mod.py") -> list[LoadSite]:
    sites, problems = detect_python(textwrap.dedent(src), file)
    assert problems == []
    return sites


def js(src: str, file: str = "lib/index.js") -> list[LoadSite]:
    sites, problems = detect_javascript(textwrap.dedent(src), file)
    assert problems == []
    return sites


def rb(src: str, file: str = "lib/gem.rb") -> list[LoadSite]:
    sites, problems = detect_ruby(textwrap.dedent(src), file)
    assert problems == []
    return sites


def names(sites: Iterable[LoadSite], *, stem: bool | None = None,
          api: str | None = None) -> list[str]:
    return [n for s in sites if (stem is None or s.stem == stem) and (api is None or s.api == api)
            for n in s.names]


def line_of(src: str, needle: str) -> int:
    """1-based line of the first occurrence of ``needle`` in dedented ``src``."""
    text = textwrap.dedent(src)
    return text.count("\n", 0, text.index(needle)) + 1


def one(sites: list[LoadSite]) -> LoadSite:
    assert len(sites) == 1, sites
    return sites[0]


# =========================================================================== Python

MAGIC_LOADER = '''
from ctypes.util import find_library
import ctypes
import sys
import glob
import os.path

def _lib_candidates():
    yield find_library('magic')
    if sys.platform == 'darwin':
        paths = ['/opt/local/lib', '/usr/local/lib'] + glob.glob('/usr/local/Cellar/libmagic/*/lib')
        for i in paths:
            yield os.path.join(i, 'libmagic.dylib')
    elif sys.platform in ('win32', 'cygwin'):
        prefixes = ['libmagic', 'magic1', 'msys-magic-1']
        for i in prefixes:
            yield './%s.dll' % (i,)
            yield find_library(i)
    elif sys.platform == 'linux':
        yield 'libmagic.so.1'

def load_lib():
    for lib in _lib_candidates():
        if lib is None:
            continue
        try:
            return ctypes.CDLL(lib)
        except OSError:
            pass
    raise ImportError('failed to find libmagic')
'''


def test_python_magic_generator_of_candidates() -> None:
    sites = py(MAGIC_LOADER, "magic/loader.py")
    assert {s.api for s in sites} == {"ctypes.CDLL"}
    assert {s.line for s in sites} == {line_of(MAGIC_LOADER, "ctypes.CDLL(lib)")}
    assert names(sites, stem=True) == ["magic", "libmagic", "magic1", "msys-magic-1"]
    exact = names(sites, stem=False)
    assert "libmagic.so.1" in exact
    assert "./libmagic.dll" in exact
    assert "/opt/local/lib/libmagic.dylib" in exact
    # A loop variable inside a loop means that loop's elements only.
    assert not any("/opt/local/lib.dll" in n for n in exact)
    glob_site = next(s for s in sites if "/usr/local/Cellar/libmagic/*/lib/libmagic.dylib"
                     in s.names)
    assert glob_site.confidence is Confidence.LOW


CAIRO_INIT = '''
import os
from ctypes.util import find_library
from .ffi import ffi

dll_directories = os.getenv('CAIROCFFI_DLL_DIRECTORIES')
if dll_directories and hasattr(os, 'add_dll_directory'):
    for path in dll_directories.split(';'):
        os.add_dll_directory(path)

def dlopen(ffi, library_names, filenames):
    """Try various names for the same library, for different platforms."""
    exceptions = []
    for library_name in library_names:
        library_filename = find_library(library_name)
        if library_filename:
            filenames = (library_filename, *filenames)
        else:
            exceptions.append('no library called "{}" was found'.format(library_name))
    for filename in filenames:
        try:
            return ffi.dlopen(filename)
        except OSError as exception:
            exceptions.append(exception)
    raise OSError('\\n'.join(str(e) for e in exceptions))

cairo = dlopen(
    ffi, ('cairo-2', 'cairo', 'libcairo-2'),
    ('libcairo.so.2', 'libcairo.2.dylib', 'libcairo-2.dll'))
'''


def test_cairocffi_wrapper_over_tuples() -> None:
    sites = py(CAIRO_INIT, "cairocffi/__init__.py")
    dl = [s for s in sites if s.api == "cffi.dlopen"]
    assert names(dl, stem=False) == ["libcairo.so.2", "libcairo.2.dylib", "libcairo-2.dll"]
    assert names(dl, stem=True) == ["cairo-2", "cairo", "libcairo-2"]
    assert {s.line for s in dl} == {line_of(CAIRO_INIT, "ffi.dlopen(filename)")}
    # Names reached through a wrapper's parameter are a step less certain.
    assert {s.confidence for s in dl} == {Confidence.MEDIUM}
    env = one([s for s in sites if s.api == "os.add_dll_directory"])
    assert env.names == ()
    assert "overridable by $CAIROCFFI_DLL_DIRECTORIES" in env.hints


def test_cairocffi_pixbuf_wrapper_from_another_module() -> None:
    sites = py('''
        from . import Context, dlopen
        from .ffi import ffi_pixbuf as ffi
        gdk_pixbuf = dlopen(
            ffi, ('gdk_pixbuf-2.0', 'libgdk_pixbuf-2.0-0'),
            ('libgdk_pixbuf-2.0.so.0', 'libgdk_pixbuf-2.0.0.dylib', 'libgdk_pixbuf-2.0-0.dll'))
    ''', "cairocffi/pixbuf.py")
    site = one(sites)
    assert site.api == "dlopen-wrapper"
    assert site.confidence is Confidence.LOW
    assert site.names[0] == "libgdk_pixbuf-2.0.so.0"
    assert "gdk_pixbuf-2.0" not in site.names


SOUNDFILE = '''
import os as _os
import sys as _sys
from ctypes.util import find_library as _find_library
from _soundfile import ffi as _ffi

try:  # packaged lib (in _soundfile_data which should be on python path)
    if _sys.platform == 'darwin':
        from platform import machine as _machine
        _packaged_libname = 'libsndfile_' + _machine() + '.dylib'
    elif _sys.platform == 'win32':
        _packaged_libname = 'libsndfile_x64.dll'
    elif _sys.platform == 'linux':
        from platform import machine as _machine
        if _machine() in ["aarch64", "armv8l"]:
            _packaged_libname = 'libsndfile_arm64.so'
        else:
            _packaged_libname = 'libsndfile_' + _machine() + '.so'
    else:
        raise OSError('no packaged library for this platform')
    import _soundfile_data
    _path = _os.path.dirname(_soundfile_data.__file__)
    _full_path = _os.path.join(_path, _packaged_libname)
    _snd = _ffi.dlopen(_full_path)
except (OSError, ImportError, TypeError):
    try:  # system-wide libsndfile:
        _libname = _find_library('sndfile')
        if _libname is None:
            raise OSError('sndfile library not found using ctypes.util.find_library')
        _snd = _ffi.dlopen(_libname)
    except OSError:
        _explicit_libname = 'libsndfile.dylib' if _sys.platform == 'darwin' else 'libsndfile.so'
        _snd = _ffi.dlopen(_explicit_libname)
'''


def test_soundfile_bundled_then_system() -> None:
    sites = py(SOUNDFILE, "site-packages/soundfile.py")
    bundled = [s for s in sites if s.line == line_of(SOUNDFILE, "_ffi.dlopen(_full_path)")]
    assert "site-packages/_soundfile_data/libsndfile_arm64.so" in names(bundled)
    pattern = next(s for s in bundled if s.confidence is Confidence.LOW)
    assert "site-packages/_soundfile_data/libsndfile_*.so" in pattern.names
    system = one([s for s in sites if s.line == line_of(SOUNDFILE, "_ffi.dlopen(_libname)")])
    assert system.stem
    assert system.names == ("sndfile",)
    assert system.confidence is Confidence.HIGH
    assert system.api == "cffi.dlopen"
    explicit = one([s for s in sites
                    if s.line == line_of(SOUNDFILE, "_ffi.dlopen(_explicit")])
    assert explicit.names == ("libsndfile.dylib", "libsndfile.so")


def test_pyzbar_find_library_into_loadlibrary() -> None:
    sites = py('''
        import platform
        from ctypes import cdll
        from ctypes.util import find_library
        from pathlib import Path

        def load():
            if 'Windows' == platform.system():
                fname = 'libzbar-64.dll'
                def load_objects(directory):
                    return cdll.LoadLibrary(str(directory.joinpath(fname)))
                try:
                    libzbar = load_objects(Path(''))
                except OSError:
                    libzbar = load_objects(Path(__file__).parent)
            else:
                path = find_library('zbar')
                if not path:
                    raise ImportError('Unable to find zbar shared library')
                libzbar = cdll.LoadLibrary(path)
            return libzbar
    ''', "pyzbar/zbar_library.py")
    zbar = one([s for s in sites if s.stem])
    assert (zbar.api, zbar.names, zbar.line) == ("ctypes.cdll.LoadLibrary", ("zbar",), 20)
    assert zbar.confidence is Confidence.HIGH
    dll = one([s for s in sites if s.line == 11])
    assert dll.names == ("libzbar-64.dll", "pyzbar/libzbar-64.dll")


@pytest.mark.parametrize(("src", "api", "expected"), [
    ("import ctypes as C\nC.CDLL('libfoo.so.1')", "ctypes.CDLL", "libfoo.so.1"),
    ("from ctypes import CDLL\nCDLL('libfoo.so.1')", "ctypes.CDLL", "libfoo.so.1"),
    ("from ctypes import *\nPyDLL('libfoo.so.1')", "ctypes.PyDLL", "libfoo.so.1"),
    ("import ctypes\nctypes.WinDLL('user32')", "ctypes.WinDLL", "user32"),
    ("import ctypes\nctypes.OleDLL('ole32')", "ctypes.OleDLL", "ole32"),
    ("import ctypes\nctypes.cdll.LoadLibrary('libc.so.6')", "ctypes.cdll.LoadLibrary",
     "libc.so.6"),
    ("from ctypes import cdll\ncdll.msvcrt.printf", "ctypes.cdll", "msvcrt"),
    ("from ctypes import windll\nwindll.kernel32.GetLastError()", "ctypes.windll", "kernel32"),
    ("from ctypes import cdll\nlibc = cdll['libc.so.6']", "ctypes.cdll", "libc.so.6"),
    ("from ctypes import cdll\nNAME = 'libssl.so.3'\nlib = getattr(cdll, NAME)", "ctypes.cdll",
     "libssl.so.3"),
    ("import ctypes\nctypes.CDLL(name='libfoo.so.1', mode=ctypes.RTLD_GLOBAL)", "ctypes.CDLL",
     "libfoo.so.1"),
    ("import _ctypes\n_ctypes.dlopen('libfoo.so.1')", "ctypes.dlopen", "libfoo.so.1"),
    ("from cffi import FFI\nffi = FFI()\nlib = ffi.dlopen('libz.so.1')", "cffi.dlopen",
     "libz.so.1"),
    ("import cffi\nF = cffi.FFI()\nF.dlopen('libz.so.1')", "cffi.dlopen", "libz.so.1"),
    ("from llvmlite import binding as llvm\nllvm.load_library_permanently('libsvml.so')",
     "llvmlite.load_library_permanently", "libsvml.so"),
    ("import os\nos.add_dll_directory('C:/Program Files/Foo/bin')", "os.add_dll_directory",
     "C:/Program Files/Foo/bin"),
])
def test_python_apis_and_aliases(src: str, api: str, expected: str) -> None:
    site = one(py(src))
    assert site.api == api
    assert site.names == (expected,)
    assert site.line is not None
    assert site.confidence is Confidence.HIGH


def test_find_library_aliases_and_fallback_literal() -> None:
    sites = py('''
        import ctypes
        from ctypes.util import find_library as _find_library
        libname = _find_library('magic') or 'libmagic.so.1'
        lib = ctypes.CDLL(libname)
    ''')
    assert names(sites, stem=True) == ["magic"]
    assert names(sites, stem=False) == ["libmagic.so.1"]
    assert {s.line for s in sites} == {5}


def test_find_library_alone_is_its_own_site() -> None:
    site = one(py("import ctypes.util\npath = ctypes.util.find_library('ssl')\nprint(path)"))
    assert (site.api, site.names, site.stem) == ("ctypes.util.find_library", ("ssl",), True)


def test_constant_propagation_strings() -> None:
    sites = py('''
        import ctypes
        SONAME = 'libfoo.so'
        VERSION = 3
        MAJOR = '2'

        def load(debug):
            suffix = '_d' if debug else ''
            ctypes.CDLL(f'libbar{suffix}.so.{MAJOR}')
            ctypes.CDLL('libbaz.so.%d' % VERSION)
            ctypes.CDLL('libqux.so.{}'.format(MAJOR))
            ctypes.CDLL('libqux-{major}.dll'.format(major=MAJOR))
            ctypes.CDLL(SONAME + '.' + str(VERSION))
    ''')
    assert names(sites) == ["libbar_d.so.2", "libbar.so.2", "libbaz.so.3", "libqux.so.2",
                            "libqux-2.dll", "libfoo.so.3"]


def test_loops_lists_dicts_and_appends() -> None:
    sites = py('''
        import sys
        from cffi import FFI
        ffi = FFI()
        NAMES = ('libgdal.so.34', 'libgdal.so.33')
        for name in NAMES:
            try:
                lib = ffi.dlopen(name)
                break
            except OSError:
                pass
        PER_OS = {'linux': 'libsodium.so.23', 'darwin': 'libsodium.dylib', 'win32': 'libsodium.dll'}
        sodium = ffi.dlopen(PER_OS[sys.platform])
        candidates = []
        if sys.platform == 'win32':
            candidates.append('zstd.dll')
        else:
            candidates.extend(['libzstd.so.1', 'libzstd.so'])
        for c in candidates:
            ffi.dlopen(c)
    ''')
    assert names([s for s in sites if s.line == 8]) == ["libgdal.so.34", "libgdal.so.33"]
    assert names([s for s in sites if s.line == 13]) == ["libsodium.so.23", "libsodium.dylib",
                                                         "libsodium.dll"]
    assert names([s for s in sites if s.line == 20]) == ["zstd.dll", "libzstd.so.1",
                                                         "libzstd.so"]


def test_paths_relative_to_the_file() -> None:
    sites = py('''
        import os, ctypes, pathlib
        HERE = os.path.dirname(os.path.abspath(__file__))
        ctypes.CDLL(os.path.join(HERE, 'libs', 'libfoo.so'))
        ctypes.CDLL(pathlib.Path(__file__).parent / 'libbar.so')
        ctypes.CDLL(str(pathlib.Path(__file__).resolve().parent.joinpath('.libs', 'libqux.so')))
    ''', "pkg/sub/mod.py")
    assert names(sites) == ["pkg/sub/libs/libfoo.so", "pkg/sub/libbar.so",
                            "pkg/sub/.libs/libqux.so"]
    top = py("import os, ctypes\nctypes.CDLL(os.path.join(os.path.dirname(__file__), 'x.so'))",
             "mod.py")
    assert names(top) == ["./x.so"]  # not the bare name "x.so", which would be searched


def test_package_data_module_and_relative_import_roots() -> None:
    sites = py('''
        import os, ctypes
        from . import _libs
        import vendored_data
        ctypes.CDLL(os.path.join(os.path.dirname(_libs.__file__), 'libfoo.so'))
        ctypes.CDLL(os.path.join(os.path.dirname(vendored_data.__file__), 'libbar.so'))
    ''', "venv/lib/python3.11/site-packages/pkg/core.py")
    assert names(sites) == ["venv/lib/python3.11/site-packages/pkg/_libs/libfoo.so",
                            "venv/lib/python3.11/site-packages/vendored_data/libbar.so"]


def test_environment_overrides() -> None:
    sites = py('''
        import os, ctypes
        ctypes.CDLL(os.environ.get('FOO_LIBRARY', 'libfoo.so.1'))
        ctypes.CDLL(os.getenv('BAR_LIB') or 'libbar.so.2')
        ctypes.CDLL(os.environ['BAZ_LIB'])
    ''')
    foo, bar, baz = sites
    assert foo.names == ("libfoo.so.1",)
    assert "overridable by $FOO_LIBRARY" in foo.hints
    assert foo.confidence is Confidence.MEDIUM
    assert bar.names == ("libbar.so.2",)
    assert "overridable by $BAR_LIB" in bar.hints
    assert baz.names == ()
    assert baz.confidence is Confidence.LOW
    assert "overridable by $BAZ_LIB" in baz.hints


def test_patterns_for_partly_known_names() -> None:
    site, vague = py('''
        import ctypes, platform, sysconfig
        ctypes.CDLL('libfoo_' + platform.machine() + '.so')
        ctypes.CDLL('lib' + sysconfig.get_config_var('SHLIB_SUFFIX'))
    ''')
    assert site.names == ("libfoo_*.so",)
    assert site.confidence is Confidence.LOW
    assert any("'*'" in h for h in site.hints)
    # Nothing but a prefix and an unknown: no name worth giving, still a load site.
    assert vague.names == ()
    assert vague.confidence is Confidence.LOW


def test_wrapper_functions_and_methods() -> None:
    sites = py('''
        import ctypes

        def _load(name, mode=ctypes.DEFAULT_MODE):
            return ctypes.CDLL(name, mode)

        class Backend:
            def __init__(self, soname='libdefault.so.0'):
                self._lib = self._open(soname)

            def _open(self, path):
                return ctypes.cdll.LoadLibrary(path)

        libcrypto = _load('libcrypto.so.3')
        libssl = _load(name='libssl.so.3')
        other = Backend('libother.so.1')
    ''')
    assert names([s for s in sites if s.api == "ctypes.CDLL"]) == ["libcrypto.so.3",
                                                                  "libssl.so.3"]
    # Backend('libother.so.1') runs __init__ with that argument (the default is not used)
    assert names([s for s in sites if s.api == "ctypes.cdll.LoadLibrary"]) == [
        "libother.so.1"]


def test_unknown_names_still_give_a_site() -> None:
    site = one(py("import ctypes\ndef load(p):\n    return ctypes.CDLL(p)\n"))
    assert site.names == ()
    assert site.confidence is Confidence.LOW
    assert any("parameter 'p'" in h for h in site.hints)


def test_cdll_none_is_the_program_itself() -> None:
    assert py("import ctypes\nctypes.CDLL(None)\nctypes.pydll.LoadLibrary(None)") == []


def test_numpy_ctypeslib_and_gi() -> None:
    sites = py('''
        import numpy as np, os
        import gi
        gi.require_version('Gtk', '3.0')
        from gi.repository import Gtk
        _lib = np.ctypeslib.load_library('libmtrand', os.path.dirname(__file__))
        _lib2 = np.ctypeslib.load_library('_helper', __file__)
    ''', "pkg/random.py")
    gtk = one([s for s in sites if s.api == "gi.require_version"])
    assert gtk.names == ("Gtk-3.0",)
    assert gtk.confidence is Confidence.LOW
    assert names(sites, api="numpy.ctypeslib.load_library") == ["pkg/libmtrand.so",
                                                                "pkg/_helper.so"]


def test_cffi_like_dlopen_without_cffi_import() -> None:
    sites = py('''
        from ._ffi import ffi
        import dl
        lib = ffi.dlopen('libgit2.so.1.7')
        h = dl.dlopen('libold.so')
    ''')
    assert [(s.api, s.names, s.confidence) for s in sites] == [
        ("cffi.dlopen", ("libgit2.so.1.7",), Confidence.HIGH),
        ("dlopen", ("libold.so",), Confidence.MEDIUM)]


def test_bytes_input_with_coding_cookie() -> None:
    src = b"# -*- coding: latin-1 -*-\nimport ctypes\nX = '\xe9'\nctypes.CDLL('libfoo.so.1')\n"
    sites, problems = detect_python(src, "m.py")
    assert problems == []
    assert names(sites) == ["libfoo.so.1"]


# --------------------------------------------------------------------------- hostile Python

def test_python_syntax_errors_are_problems() -> None:
    sites, problems = detect_python("import ctypes\nctypes.CDLL('x'\n", "bad.py")
    assert sites == []
    assert len(problems) == 1
    assert "not valid Python" in problems[0]


def test_python_without_trigger_words_is_not_parsed() -> None:
    assert detect_python("this is ( not python", "x.py") == ([], [])


@pytest.mark.parametrize("src", [
    "import ctypes\nx = " + "(" * 3000 + "1" + ")" * 3000 + "\nctypes.CDLL(x)",
    "import ctypes\nx = 'a'" + " + 'a'" * 40000 + "\nctypes.CDLL(x)",
    "import ctypes\nx = " + "[" * 3000 + "]" * 3000 + "\nctypes.CDLL(x)",
    "CDLL\0",
    b"CDLL \xff\xfe\x00garbage",
    b"\xff\xfe CDLL(",
], ids=["parens", "binop-chain", "lists", "nul", "nul-bytes", "bad-utf8"])
def test_python_hostile_sources_become_problems(src: str | bytes) -> None:
    sites, problems = detect_python(src, "evil.py")
    assert sites == []
    assert len(problems) == 1


def test_python_cyclic_constants_terminate() -> None:
    sites = py('''
        import ctypes
        a = b
        b = a
        c = a + b + 'x.so'
        ctypes.CDLL(a)
        ctypes.CDLL(c)
        n = 'lib'
        n = n + 'foo'
        n += '.so'
        ctypes.CDLL(n)
    ''')
    assert len(sites) >= 3


def test_python_work_is_bounded() -> None:
    # 300 names each doubling the previous: 2**300 strings if nothing were capped.
    src = "import ctypes\nv0 = 'a'\n" + "\n".join(
        f"v{i} = v{i - 1} + v{i - 1} if x else v{i - 1} + 'b'" for i in range(1, 300))
    src += "\nctypes.CDLL(v299)\n"
    src += "".join(f"def f{i}(x):\n    return f{i + 1}(x)\n" for i in range(500))
    src += "def f500(x):\n    return ctypes.CDLL(x)\nf0('libdeep.so')\n"
    start = time.monotonic()
    sites, _ = detect_python(src, "big.py")
    assert time.monotonic() - start < 60  # a hang guard (2**300 strings uncapped), not speed
    assert sites


def test_python_oversized_source() -> None:
    sites, problems = detect_python("# CDLL\n" + "x = 1\n" * 1_000_000, "huge.py")
    assert sites == []
    assert "limit" in problems[0]


# =========================================================================== JavaScript

def test_koffi_load_with_aliases() -> None:
    sites = js('''
        const koffi = require('koffi');
        const k2 = require("koffi");
        import koffi3 from 'koffi';
        const { load } = require('koffi');

        // Load the shared library
        const lib = koffi.load('libc.so.6');
        const user32 = k2.load("user32.dll");
        const z = koffi3.load(`libz.so.1`);
        const m = load('libm.so.6', { lazy: true });
    ''')
    assert [(s.api, s.names, s.line) for s in sites] == [
        ("koffi.load", ("libc.so.6",), 8), ("koffi.load", ("user32.dll",), 9),
        ("koffi.load", ("libz.so.1",), 10), ("koffi.load", ("libm.so.6",), 11)]
    assert {s.confidence for s in sites} == {Confidence.HIGH}


def test_koffi_platform_table_env_and_templates() -> None:
    sites = js('''
        const koffi = require('koffi');
        const path = require('node:path');
        const LIBS = {
            win32: 'libmagic-1.dll',
            darwin: 'libmagic.1.dylib',
            linux: 'libmagic.so.1',
        };
        const magic = koffi.load(LIBS[process.platform]);
        const ver = '3';
        const ssl = koffi.load(process.env.LIBSSL_PATH || `libssl.so.${ver}`);
        const bundled = koffi.load(path.join(__dirname, '..', 'vendor', 'libfoo.so'));
    ''')
    magic, ssl, bundled = sites
    assert magic.names == ("libmagic-1.dll", "libmagic.1.dylib", "libmagic.so.1")
    assert ssl.names == ("libssl.so.3",)
    assert "overridable by $LIBSSL_PATH" in ssl.hints
    assert ssl.confidence is Confidence.MEDIUM
    assert bundled.names == ("vendor/libfoo.so",)


def test_ffi_napi_library_and_dynamic_library() -> None:
    sites = js('''
        var ffi = require('ffi-napi');
        var ref = require('ref-napi');
        var libm = ffi.Library('libm', {
          'ceil': [ 'double', [ 'double' ] ]
        });
        const { Library, DynamicLibrary } = require('@makeomatic/ffi-napi');
        const sqlite = new Library('libsqlite3', { 'sqlite3_open': ['int', ['string']] });
        const handle = new DynamicLibrary('libcrypto.so.3', DynamicLibrary.FLAGS.RTLD_NOW);
        const h2 = new ffi.DynamicLibrary(process.platform === 'win32' ? 'foo.dll' : 'libfoo.so');
    ''')
    assert [(s.api, s.names) for s in sites] == [
        ("ffi.Library", ("libm",)), ("ffi.Library", ("libsqlite3",)),
        ("ffi.DynamicLibrary", ("libcrypto.so.3",)),
        ("ffi.DynamicLibrary", ("foo.dll", "libfoo.so"))]


def test_ffi_rs_open() -> None:
    site = one(js('''
        const { platform } = require('os')
        const { equal } = require('assert')
        const { load, open, close, DataType } = require('ffi-rs')
        const dynamicLib = platform === 'win32' ? './sum.dll' : "./libsum.so"
        // First open dynamic library with key for close
        open({
            library: 'libsum', // key
            path: dynamicLib // path
        })
        const r = load({ library: "libsum", funcName: 'sum', retType: DataType.I32 })
    '''))
    assert (site.api, site.names, site.line) == ("ffi-rs.open", ("./sum.dll", "./libsum.so"), 7)
    assert "opened under the key 'libsum'" in site.hints


def test_native_addons() -> None:
    sites = js('''
        const path = require('path');
        const binding = require('bindings')('better_sqlite3.node');
        const b2 = require('bindings')({ bindings: 'canvas' });
        const gyp = require('node-gyp-build')(path.join(__dirname, '..'));
        const direct = require('../build/Release/addon.node');
        const m = { exports: {} };
        process.dlopen(m, path.resolve(__dirname, 'prebuilds', 'linux-x64', 'node.napi.node'));
        const bindings = require('bindings');
        const zmq = bindings('zmq');
        const build = require('node-gyp-build');
        module.exports = build(__dirname + '/..');
    ''', "pkg/lib/index.js")
    assert [(s.api, s.names) for s in sites] == [
        ("bindings", ("better_sqlite3.node",)), ("bindings", ("canvas.node",)),
        ("node-gyp-build", ("pkg",)), ("require", ("pkg/build/Release/addon.node",)),
        ("process.dlopen", ("pkg/lib/prebuilds/linux-x64/node.napi.node",)),
        ("bindings", ("zmq.node",)), ("node-gyp-build", ("pkg",))]


def test_javascript_tokenizer_skips_comments_strings_and_regexes() -> None:
    sites = js(r'''
        const koffi = require('koffi');
        // koffi.load('comment.so')
        /* koffi.load('block.so') */
        const s = "koffi.load('string.so')";
        const t = `koffi.load('template.so') ${ "}" + `${'}'}` } koffi.load('still-template.so')`;
        const re = /koffi.load\('regex.so'\)/g;
        const d = 10 / 2 / koffi.load('after-division.so').x;
        const esc = 'it\'s koffi.load("escaped.so")';
        if (x) /koffi.load('regex2')/.test(y);
        koffi.load('real.so');
    ''')
    assert names(sites) == ["after-division.so", "real.so"]


def test_typescript_imports() -> None:
    sites = js('''
        import * as koffi from 'koffi';
        import { open as openLib } from 'ffi-rs';
        const lib: koffi.IKoffiLib = koffi.load('libfoo.so.2');
        openLib({ library: 'x', path: '/usr/lib/libx.so.1' });
    ''', "src/index.ts")
    assert names(sites) == ["libfoo.so.2", "/usr/lib/libx.so.1"]


def test_javascript_unknown_names_and_unrelated_calls() -> None:
    sites = js('''
        const koffi = require('koffi');
        function open(p) { return koffi.load(p); }
        const loader = { load() {} };
        loader.load('not-a-library');
        const open2 = require('fs').open;
    ''')
    site = one(sites)
    assert site.names == ()
    assert site.confidence is Confidence.LOW


# --------------------------------------------------------------------------- hostile JS

def test_javascript_minified_5mb_is_bounded() -> None:
    body = "function f(b){return b/2+/re[/]x/g.test('`${x}`')};var q=`a${b}c`;"
    src = "var k=require('koffi');" + body * ((MAX_SOURCE_CHARS - 100) // len(body))
    src += "k.load('libx.so.1');"
    assert FULL_LEX_CHARS < len(src) <= MAX_SOURCE_CHARS
    start = time.monotonic()
    sites, problems = detect_javascript(src, "dist/bundle.min.js")
    assert time.monotonic() - start < 60  # a hang guard (2**300 strings uncapped), not speed
    assert names(sites) == ["libx.so.1"]
    assert len(problems) == 1
    assert "large file" in problems[0]


def test_javascript_over_the_size_limit() -> None:
    sites, problems = detect_javascript("koffi " + "x" * MAX_SOURCE_CHARS, "big.js")
    assert sites == []
    assert "limit" in problems[0]


@pytest.mark.parametrize("src", [
    "koffi " + "`${" * 5000 + "}`" * 5000,
    b"koffi\x00\x01\x02",
], ids=["template-nesting", "binary"])
def test_javascript_hostile_inputs_are_problems(src: str | bytes) -> None:
    sites, problems = detect_javascript(src, "evil.js")
    assert sites == []
    assert len(problems) == 1


@pytest.mark.parametrize("src", [
    "const k = require('koffi'); k.load('unterminated.so",
    "const k = require('koffi'); /* never closed koffi.load('x')",
    "const k = require('koffi'); k.load(`never ${closed",
    "const k = require('koffi'); k.load(" + "(" * 20000 + "'x'" + ")" * 20000 + ")",
    "const k = require('koffi'); k.load(" + "[" * 20000 + "'x'" + "]" * 20000 + ")",
    "const k=require('koffi');const a=b;const b=a+'x';k.load(a)",
], ids=["string", "comment", "template", "parens", "arrays", "cycle"])
def test_javascript_malformed_sources_do_not_raise(src: str) -> None:
    sites, _ = detect_javascript(src, "m.js")
    assert all(s.api == "koffi.load" for s in sites)


def test_javascript_non_utf8_is_a_problem_but_analysed() -> None:
    src = b"const koffi = require('koffi'); // caf\xe9\nkoffi.load('libfoo.so.1');"
    sites, problems = detect_javascript(src, "m.js")
    assert names(sites) == ["libfoo.so.1"]
    assert "UTF-8" in problems[0]


# --------------------------------------------------------------------------- binding.gyp

CANVAS_GYP = '''
{
  'conditions': [
    ['OS=="win"', {
      'variables': { 'GTK_Root%': 'C:/GTK' }  # Set the location of GTK all-in-one bundle
    }]
  ],
  'targets': [
    {
      'target_name': 'canvas',
      'include_dirs': ["<!(node -p \\"require('node-addon-api').include_dir\\")"],
      'conditions': [
        ['OS=="win"', {
          'libraries': [ '-l<(GTK_Root)/lib/cairo.lib' ]
        }, {
          'libraries': [
            '<!@(pkg-config pixman-1 --libs)',
            '<!@(pkg-config cairo --libs)',
          ],
          'link_settings': {
            'libraries': ['-ljpeg', '-l:libgif.so.7', '<(module_root_dir)/deps/libfoo.a'],
            'ldflags': ['-Wl,-rpath,$ORIGIN', '-lpthread'],
          }
        }]
      ]
    }
  ]
}
'''


def test_binding_gyp() -> None:
    sites, problems = detect_binding_gyp(CANVAS_GYP, "binding.gyp")
    assert problems == []
    got = {(s.names[0], s.stem, s.confidence) for s in sites}
    # (the OS=="win" branch is not what a build here links: cairo.lib is left out)
    assert {("pixman-1", True, Confidence.MEDIUM), ("cairo", True, Confidence.MEDIUM),
            ("jpeg", True, Confidence.HIGH), ("libgif.so.7", False, Confidence.HIGH),
            ("pthread", True, Confidence.HIGH),
            ("<(module_root_dir)/deps/libfoo.a", False, Confidence.LOW)} == got
    assert all(s.line for s in sites)
    assert {s.names[0] for s in sites if s.api == "pkg-config"} == {"pixman-1", "cairo"}
    assert all(s.api == "binding.gyp" for s in sites if s.names[0] not in ("pixman-1", "cairo"))
    cairo = next(s for s in sites if s.names == ("cairo",))
    assert cairo.line == line_of(CANVAS_GYP, "pkg-config cairo")
    assert "pkg-config" in cairo.hints[0]


@pytest.mark.parametrize(("condition", "linux"), [
    ('OS=="win"', False), ('OS!="win"', True), ('OS=="linux"', True),
    ('OS in ("linux", "mac")', True), ('OS not in ["linux"]', False),
    ('OS=="mac" or OS=="win"', False), ('not OS=="win"', True),
    ('OS=="linux" and target_arch=="x64"', None), ('OS=="win" and target_arch=="x64"', False),
    ('node_shared_openssl=="false"', None), ("OS==", None), ("__import__('os')", None),
    ('"<(target_arch)"=="x64"', None), ('"<(OS)"=="linux"', True), ('"<(OS)"=="win"', False),
])
def test_gyp_conditions_for_a_linux_build(condition: str, linux: bool | None) -> None:
    assert _gyp_condition(condition) is linux


def test_binding_gyp_branches_a_linux_build_does_not_take() -> None:
    """gyp merges the branch of each condition that holds: an OS=="win" or "mac" branch
    is not linked here; gyp's chained form takes the first branch that holds; a condition
    on a variable the scan does not know keeps both sides."""
    gyp = """{'targets': [{'target_name': 'x', 'conditions': [
        ['OS=="win"', {'libraries': ['-lshlwapi']}, {'libraries': ['-lutil']}],
        ['OS=="mac"', {'libraries': ['-lmaconly']}, 'OS=="linux"', {'libraries': ['-llin']},
         {'libraries': ['-lelse']}],
        ['use_system_ssl=="true"', {'libraries': ['-lssl']}, {'libraries': ['-lbundled']}],
        ['OS=="linux"', {'conditions': [['OS!="linux"', {'libraries': ['-lnever']}]],
                        'link_settings': {'libraries': ['-lnested']}}],
    ]}]}"""
    sites, problems = detect_binding_gyp(gyp, "binding.gyp")
    assert problems == []
    assert sorted(s.names[0] for s in sites) == ["bundled", "lin", "nested", "ssl", "util"]


def test_binding_gyp_that_is_not_a_literal() -> None:
    sites, problems = detect_binding_gyp("{ 'libraries': ['-lfoo', ] oops", "binding.gyp")
    assert names(sites) == ["foo"]
    assert len(problems) == 1
    sites, problems = detect_binding_gyp("[" * 100_000, "binding.gyp")
    assert sites == []
    assert len(problems) == 1


# =========================================================================== Ruby

def test_ethon_ffi_lib_array() -> None:
    sites = rb('''
        module Ethon
          module Curls
            module Settings
              callback :callback, [:pointer, :size_t, :size_t, :pointer], :size_t
              ffi_lib_flags :now, :global
              ffi_lib ['libcurl', 'libcurl.so.4']
            end
          end
        end
    ''', "lib/ethon/curls/settings.rb")
    assert [(s.api, s.names, s.stem, s.line) for s in sites] == [
        ("ffi_lib", ("libcurl",), True, 7), ("ffi_lib", ("libcurl.so.4",), False, 7)]


def test_ruby_ffi_forms() -> None:
    sites = rb('''
        require 'ffi'
        module Sodium
          extend FFI::Library
          LIB_NAMES = %w[libsodium.so.23 sodium].freeze
          ffi_lib LIB_NAMES
          ffi_lib FFI::Library::LIBC
          ffi_lib FFI::CURRENT_PROCESS
          ffi_lib ENV.fetch('SODIUM_LIB', 'libsodium.so.26')
          ffi_lib(ENV['ZSTD_LIB'] || "libzstd.so.1", 'z')
          VENDOR = File.expand_path('../vendor/libfoo.so', __dir__)
          ffi_lib VENDOR
          base.ffi_lib 'ws2_32'
        end
        handle = FFI::DynamicLibrary.open('libbar.so.2', FFI::DynamicLibrary::RTLD_LAZY)
    ''', "gems/sodium/lib/sodium.rb")
    got = [(s.line, s.names, s.stem) for s in sites]
    assert got == [
        (6, ("libsodium.so.23",), False), (6, ("sodium",), True),
        (7, ("c",), True),
        (9, ("libsodium.so.26",), False),
        (10, ("libzstd.so.1",), False), (10, ("z",), True),
        (12, ("gems/sodium/vendor/libfoo.so",), False),
        (13, ("ws2_32",), True),
        (15, ("libbar.so.2",), False)]
    assert "overridable by $SODIUM_LIB" in sites[3].hints
    assert sites[3].confidence is Confidence.MEDIUM
    assert sites[-1].api == "FFI::DynamicLibrary.open"


def test_ruby_fiddle() -> None:
    sites = rb('''
        require 'fiddle'
        require 'fiddle/import'
        libm = Fiddle.dlopen('libm.so.6')
        h = Fiddle::Handle.new("libz.so.#{1}")
        process = Fiddle::Handle.new
        module LibC
          extend Fiddle::Importer
          dlload 'libc.so.6'
        end
    ''')
    assert [(s.api, s.names) for s in sites] == [
        ("Fiddle.dlopen", ("libm.so.6",)), ("Fiddle::Handle.new", ("libz.so.1",)),
        ("Fiddle::Importer.dlload", ("libc.so.6",))]


def test_ruby_lexer_skips_comments_heredocs_and_strings() -> None:
    sites = rb('''
        # ffi_lib 'comment'
        =begin
        ffi_lib 'block-comment'
        =end
        doc = <<~EOS
          ffi_lib 'heredoc'
        EOS
        s = "ffi_lib 'string'"
        r = %r{ffi_lib 'regex'}
        x = a / 2; y = b / 3
        ffi_lib 'real'
        __END__
        ffi_lib 'data'
    ''')
    assert names(sites) == ["real"]


@pytest.mark.parametrize("src", [
    bytes(range(256)) * 100,
    b"ffi_lib \xff\xfe\x00 garbage",
], ids=["all-bytes", "nul"])
def test_ruby_binary_garbage_is_a_problem(src: bytes) -> None:
    sites, problems = detect_ruby(src, "evil.rb")
    assert sites == []
    assert len(problems) == 1
    assert "binary" in problems[0]


def test_ruby_non_utf8_is_a_problem_but_analysed() -> None:
    sites, problems = detect_ruby(b"# caf\xe9\nffi_lib 'curl'\n", "x.rb")
    assert names(sites) == ["curl"]
    assert "UTF-8" in problems[0]


@pytest.mark.parametrize("src", [
    "ffi_lib " + "[" * 20000 + "'x'" + "]" * 20000,
    'ffi_lib "' + '#{"' * 5000 + '"}' * 5000 + '"',
    "A = B\nB = A + 'x'\nffi_lib A",
    "ffi_lib 'unterminated",
    "ffi_lib <<~EOS\nnever ends",
    "ffi_lib %w[a b",
], ids=["arrays", "interpolation", "cycle", "string", "heredoc", "words"])
def test_ruby_malformed_sources_do_not_raise(src: str) -> None:
    sites, _ = detect_ruby(src, "m.rb")
    assert all(s.api == "ffi_lib" for s in sites)


# =========================================================================== properties

_FRAGMENTS = [
    "import ctypes\n", "ctypes.CDLL(", "cdll.LoadLibrary(", "find_library(", "ffi.dlopen(",
    "koffi.load(", "require('koffi')", "require('bindings')(", "ffi.Library(", "ffi_lib ",
    "Fiddle.dlopen(", "'libx.so'", '"a', "`${", "}", "`", "(", ")", "[", "]", "{", "/", "*",
    "#", "\n", " ", "=", "+", "x", "%w[", "<<~E\n", "E\n", "def f(a):\n    ", "for n in N:",
    ":", ",", "\\", "\0", "\ud800", "é",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=400),
                 st.lists(st.sampled_from(_FRAGMENTS), max_size=60).map("".join)))
def test_arbitrary_text_never_raises(text: str) -> None:
    for detect in (detect_python, detect_javascript, detect_ruby, detect_binding_gyp):
        sites, problems = detect(text, "f")
        assert all(isinstance(s, LoadSite) for s in sites)
        assert all(isinstance(p, str) for p in problems)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    for detect in (detect_python, detect_javascript, detect_ruby):
        detect(data, "f")


# =========================================================================== real packages

CACHE = Path.home() / ".cache" / "unveil-tests" / "dynload"
PYPI = ["python-magic==0.4.27", "cairocffi==1.7.1", "soundfile==0.14.0", "pyzbar==0.1.9"]
NPM = ["koffi@3.3.4", "ffi-napi@4.0.3", "ffi-rs@1.3.7", "canvas@3.2.3"]
DEBIAN = ["ruby-ethon=0.16.0-1", "ruby-ffi=1.15.5+dfsg-1+b1"]


def _fetch(cmd: list[str], cwd: Path) -> None:
    if shutil.which(cmd[0]) is None:
        pytest.skip(f"{cmd[0]} is not installed")
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=300)
    if p.returncode != 0:
        pytest.skip(f"{' '.join(cmd)} failed: {p.stderr[-300:]}")


@pytest.fixture(scope="module")
def real_packages() -> Path:
    """The pinned packages, downloaded once and unpacked under ``CACHE/unpacked``."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / "unpacked"
    for req in PYPI:
        dist, ver = req.split("==")
        if not list(CACHE.glob(f"{dist.replace('-', '_')}-{ver}-*.whl")):
            _fetch(["pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(CACHE),
                    req], CACHE)
    for spec in NPM:
        name, ver = spec.rsplit("@", 1)
        if not (CACHE / f"{name}-{ver}.tgz").exists():
            _fetch(["npm", "pack", spec], CACHE)
    for pkg in DEBIAN:
        name, ver = pkg.split("=")
        if not list(CACHE.glob(f"{name}_{ver}_*.deb")):
            _fetch(["apt-get", "download", pkg], CACHE)
    for archive in CACHE.iterdir():
        dest = out / archive.name
        if dest.exists() or not archive.is_file():
            continue
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as z:
                z.extractall(dest)
        elif archive.suffix == ".tgz":
            with tarfile.open(archive) as t:
                t.extractall(dest, filter="data")
        elif archive.suffix == ".deb":
            _fetch(["dpkg-deb", "-x", str(archive), str(dest)], CACHE)
    return out


def _scan_tree(root: Path) -> list[LoadSite]:
    sites: list[LoadSite] = []
    for f in sorted(root.rglob("*")):
        if not f.is_file():
            continue
        rel = str(f.relative_to(root))
        data = f.read_bytes()
        if f.suffix == ".py":
            sites += detect_python(data, rel)[0]
        elif f.suffix in (".js", ".cjs", ".mjs"):
            sites += detect_javascript(data, rel)[0]
        elif f.suffix == ".rb":
            sites += detect_ruby(data, rel)[0]
        elif f.name == "binding.gyp":
            sites += detect_binding_gyp(data.decode("utf-8", "replace"), rel)[0]
        elif f.suffix == ".md":  # documentation code blocks: real usage examples
            for block in re.findall(r"```(?:js|javascript)\n(.*?)```", data.decode(), re.S):
                sites += detect_javascript(block, rel)[0]
    return sites


def _tree(base: Path, prefix: str) -> Path:
    found = sorted(base.glob(prefix + "*"))
    if not found:
        pytest.skip(f"{prefix} was not downloaded")
    return found[0]


@pytest.mark.network
def test_real_python_packages(real_packages: Path) -> None:
    magic = _scan_tree(_tree(real_packages, "python_magic-0.4.27"))
    assert "magic" in names(magic, stem=True)
    assert "libmagic.so.1" in names(magic, stem=False)
    cairo = _scan_tree(_tree(real_packages, "cairocffi-1.7.1"))
    assert "libcairo.so.2" in names(cairo, api="cffi.dlopen")
    assert "libgdk_pixbuf-2.0.so.0" in names(cairo)
    sf = _scan_tree(_tree(real_packages, "soundfile-0.14.0"))
    assert "sndfile" in names(sf, stem=True)
    assert "./_soundfile_data/libsndfile_*.so" in names(sf)
    zbar = _scan_tree(_tree(real_packages, "pyzbar-0.1.9"))
    assert "zbar" in names(zbar, stem=True)


@pytest.mark.network
def test_real_npm_packages(real_packages: Path) -> None:
    koffi = _scan_tree(_tree(real_packages, "koffi-3.3.4"))
    assert {"libc.so.6", "user32.dll"} <= set(names(koffi, api="koffi.load"))
    ffi = _scan_tree(_tree(real_packages, "ffi-napi-4.0.3"))
    assert "libsqlite3" in names(ffi, api="ffi.Library")
    assert "msvcrt.dll" in names(ffi, api="ffi.DynamicLibrary")
    assert "package" in names(ffi, api="node-gyp-build")
    rs = _scan_tree(_tree(real_packages, "ffi-rs-1.3.7"))
    assert "package/ffi-rs.linux-x64-gnu.node" in names(rs, api="require")
    assert "./libsum.so" in names(rs, api="ffi-rs.open")
    canvas = _scan_tree(_tree(real_packages, "canvas-3.2.3"))
    assert {"cairo", "pangocairo"} <= set(names(canvas, api="pkg-config", stem=True))
    assert "gif" in names(canvas, api="binding.gyp", stem=True)


@pytest.mark.network
def test_real_ruby_gems(real_packages: Path) -> None:
    ethon = _scan_tree(_tree(real_packages, "ruby-ethon_0.16.0-1"))
    assert "libcurl" in names(ethon, api="ffi_lib", stem=True)
    assert "libcurl.so.4" in names(ethon, api="ffi_lib", stem=False)
    assert "c" in names(ethon, api="ffi_lib", stem=True)  # FFI::Library::LIBC
    ffi = _scan_tree(_tree(real_packages, "ruby-ffi_1.15.5"))
    # ruby-ffi's own loader: the name is computed, but the site is there.
    assert any(s.api == "FFI::DynamicLibrary.open" for s in ffi)


def test_varargs_wrapper_loops_over_its_arguments() -> None:
    """weasyprint: ``def _dlopen(ffi, *names)`` tries each name in turn."""
    sites = py('''
        import ctypes
        def _dlopen(*names):
            for name in names:
                try:
                    return ctypes.CDLL(name)
                except OSError:
                    pass
        lib = _dlopen('libfoo.so.9', 'libbar.so.1')
    ''')
    assert names(sites) == ["libfoo.so.9", "libbar.so.1"]


def test_cffi_dlopen_of_a_bare_name_is_find_library() -> None:
    """cffi's _load_backend_lib: a name without '.' or '/' goes to find_library(); a
    dotted name that is no library file is tried as a file, then with find_library()."""
    sites = py('''
        import cffi
        ffi = cffi.FFI()
        pulse = ffi.dlopen('pulse')
        gobject = ffi.dlopen('gobject-2.0')
        exact = ffi.dlopen('libexact.so.3')
    ''')
    assert names(sites, stem=True) == ["pulse", "gobject-2.0"]
    assert names(sites, stem=False) == ["gobject-2.0", "libexact.so.3"]


def test_static_and_class_methods_take_their_callers_arguments() -> None:
    """PyOgg: ``ExternalLibrary.load("ogg")`` -> a @staticmethod's first parameter."""
    sites = py('''
        import ctypes, ctypes.util
        class L:
            @staticmethod
            def load(name):
                return L.load_other("lib" + name)
            @classmethod
            def load_other(cls, name):
                return ctypes.CDLL(ctypes.util.find_library(name))
        ogg = L.load("ogg")
    ''')
    assert names(sites, stem=True) == ["libogg"]


def test_a_loader_chosen_by_a_condition_and_a_class_attribute() -> None:
    """pymediainfo: ``lib_type = WinDLL if nt else CDLL; lib_type(path)``; pylibftdi: a
    class-level dict read through ``self``."""
    sites = py('''
        import ctypes, os
        lib_type = ctypes.WinDLL if os.name == 'nt' else ctypes.CDLL
        info = lib_type('libmediainfo.so.0')
        class D:
            _search = {"ftdi": ["libftdi1.so.2"]}
            def _load(self, name):
                for dll in self._search.get(name, []):
                    return ctypes.cdll.LoadLibrary(dll)
            def open(self):
                return self._load("ftdi")
    ''')
    assert [(s.api, s.names) for s in sites] == [
        ("ctypes.CDLL", ("libmediainfo.so.0",)),
        ("ctypes.cdll.LoadLibrary", ("libftdi1.so.2",))]


def test_class_instantiation_calls_init() -> None:
    """PySDL2: ``DLL("SDL2", [...])`` runs ``__init__(self, name, candidates)``."""
    sites = py('''
        import ctypes, ctypes.util
        class DLL:
            def __init__(self, libinfo, libnames):
                for n in libnames:
                    p = ctypes.util.find_library(n)
                    if p:
                        self._dll = ctypes.CDLL(p)
        dll = DLL("SDL2", ["SDL2", "SDL2-2.0"])
    ''')
    assert names(sites, stem=True) == ["SDL2", "SDL2-2.0"]
