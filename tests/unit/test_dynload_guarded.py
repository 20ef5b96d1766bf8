"""A load whose failure the code handles (``try``/``except OSError``, ``contextlib.suppress``)
is optional: the program goes on without the library.  Candidates tried in a loop, and a
handler that raises again, leave the library required."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest

from unveil import scan
from unveil.config import ScanConfig
from unveil.dynload import detect_binding_gyp, detect_javascript, detect_python, detect_ruby
from unveil.model import EdgeClass, LoadSite


def sites(src: str) -> list[LoadSite]:
    found, problems = detect_python(textwrap.dedent(src), "pkg/mod.py")
    assert problems == []
    return found


@pytest.mark.parametrize(("src", "guard"), [
    ("import ctypes\ntry:\n    lib = ctypes.CDLL('libfoo.so.1')\nexcept OSError:\n"
     "    lib = None\n", "try/except OSError"),
    ("import ctypes\ntry:\n    lib = ctypes.CDLL('libfoo.so.1')\nexcept (ImportError, OSError):\n"
     "    HAVE = False\n", "try/except OSError"),
    ("import ctypes\ntry:\n    lib = ctypes.cdll.LoadLibrary('libfoo.so.1')\nexcept:\n"
     "    pass\n", "try/except"),
    ("import ctypes, contextlib\nwith contextlib.suppress(OSError):\n"
     "    lib = ctypes.CDLL('libfoo.so.1')\n", "contextlib.suppress"),
    ("from cffi import FFI\nffi = FFI()\ntry:\n    lib = ffi.dlopen('libfoo.so.1')\n"
     "except Exception:\n    lib = None\n", "try/except Exception"),
    # raised again: the package cannot go on
    ("import ctypes\ntry:\n    lib = ctypes.CDLL('libfoo.so.1')\nexcept OSError as e:\n"
     "    raise ImportError('libfoo is missing') from e\n", None),
    # a handler for something else
    ("import ctypes\ntry:\n    lib = ctypes.CDLL('libfoo.so.1')\nexcept KeyError:\n"
     "    lib = None\n", None),
    # candidates in turn: what follows the loop decides (python-magic raises there)
    ("import ctypes\ndef load():\n    for name in ('libfoo.so.1', 'libfoo.so.2'):\n"
     "        try:\n            return ctypes.CDLL(name)\n        except OSError:\n"
     "            pass\n    raise ImportError('no libfoo')\nlib = load()\n", None),
    # a function defined in the try runs where it is called, outside it
    ("import ctypes\ntry:\n    def load():\n        return ctypes.CDLL('libfoo.so.1')\n"
     "except OSError:\n    load = None\nlib = load()\n", None),
    # the handler that runs is the first that catches OSError
    ("import ctypes\ntry:\n    lib = ctypes.CDLL('libfoo.so.1')\nexcept OSError:\n"
     "    lib = None\nexcept Exception as e:\n    raise RuntimeError('bad') from e\n",
     "try/except OSError"),
    ("import ctypes, os\ntry:\n    lib = ctypes.CDLL('libfoo.so.1')\nexcept os.error:\n"
     "    lib = None\n", "try/except os.error"),
    # handlers that end the program or hand the failure to the caller
    ("import ctypes, sys\ntry:\n    lib = ctypes.CDLL('libfoo.so.1')\nexcept OSError:\n"
     "    sys.exit('libfoo.so.1 is required')\n", None),
    ("import ctypes, os\ntry:\n    lib = ctypes.CDLL('libfoo.so.1')\nexcept OSError:\n"
     "    os._exit(1)\n", None),
    ("import ctypes\ntry:\n    lib = ctypes.CDLL('libfoo.so.1')\nexcept OSError:\n"
     "    assert False, 'no libfoo'\n", None),
    ("import ctypes\ndef _load(name):\n    try:\n        return ctypes.CDLL(name)\n"
     "    except OSError:\n        return None\nlib = _load('libfoo.so.1')\n"
     "if lib is None:\n    raise ImportError('no libfoo')\n", None),
    # find_library answers None instead of raising: nothing to catch
    ("import ctypes, ctypes.util\ntry:\n    lib = ctypes.CDLL(ctypes.util.find_library('foo'))\n"
     "except OSError:\n    lib = None\n", None),
])
def test_what_handles_a_failed_load(src: str, guard: str | None) -> None:
    found = sites(src)
    assert found
    assert {s.guarded for s in found if s.api != "ctypes.util.find_library"} == {guard}


def test_a_handled_load_of_a_missing_library_is_optional(tmp_path: Path) -> None:
    pkg = tmp_path / "site-packages" / "opt"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "import ctypes\n"
        "try:\n"
        "    _accel = ctypes.CDLL('libunveil-accel.so.1')\n"
        "except OSError:\n"
        "    _accel = None\n"
        "_core = ctypes.CDLL('libunveil-core.so.1')\n")
    result = scan(str(tmp_path / "site-packages"), ScanConfig(identify=False))
    by_name = {e.resolution.request: e for t in result.targets for d in t.dynamic_loads
               for e in d.edges}
    accel = by_name["libunveil-accel.so.1"]
    assert accel.edge_class is EdgeClass.OPTIONAL
    assert accel.note is not None
    assert "the code goes on without it: try/except OSError" in accel.note
    assert by_name["libunveil-core.so.1"].edge_class is EdgeClass.MISSING


def test_sources_the_compiler_warns_about_are_read_quietly() -> None:
    """An invalid escape sequence ("\\d" in an old package's regex) makes the compiler warn
    (SyntaxWarning, printed by default from Python 3.12): the scan reads such files without
    a word on the user's terminal, and still under ``-W error``."""
    src = "import ctypes, re\nPAT = re.compile('\\d+')\nlib = ctypes.CDLL('libfoo.so.1')\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = sites(src)
        gyp, problems = detect_binding_gyp("{'targets': [{'libraries': ['-lfoo', '\\/x']}]}",
                                           "binding.gyp")
    assert [s.names for s in found] == [("libfoo.so.1",)]
    assert problems == []
    assert [s.names for s in gyp] == [("foo",)]


@pytest.mark.parametrize(("src", "guarded"), [
    # an addon with a JavaScript fallback: the package goes on without it
    ("let b;\ntry { b = require('./build/Release/fast.node') }\n"
     "catch (e) { b = require('./slow') }\n",
     {"lib/build/Release/fast.node": "try/catch"}),
    ("try {\n  const lib = koffi.load('libfoo.so.1');\n} catch {\n  console.warn('no foo');\n}\n",
     {"libfoo.so.1": "try/catch"}),
    # the handler passes the failure on
    ("try { koffi.load('libfoo.so.1') } catch (e) { throw new Error('libfoo is required') }\n",
     {"libfoo.so.1": None}),
    ("try { koffi.load('libfoo.so.1') } catch (e) { console.error(e); process.exit(1) }\n",
     {"libfoo.so.1": None}),
    ("function load(n) { try { return koffi.load(n) } catch (e) { return null } }\n"
     "const lib = load('libfoo.so.1')\n", {"": None}),
    # candidates in turn
    ("for (const n of ['libfoo.so.1', 'libfoo.so.0']) {\n"
     "  try { lib = koffi.load(n); break } catch (e) {}\n}\n",
     {"libfoo.so.1": None, "libfoo.so.0": None}),
    # a function defined in the try runs where it is called
    ("let f;\ntry { f = function () { return koffi.load('libfoo.so.1') } } catch (e) {}\nf()\n",
     {"libfoo.so.1": None}),
    # try/finally catches nothing
    ("try { koffi.load('libfoo.so.1') } finally { done() }\n", {"libfoo.so.1": None}),
])
def test_javascript_try_catch(src: str, guarded: dict[str, str | None]) -> None:
    found, problems = detect_javascript(src + "\n// koffi .node", "lib/index.js")
    assert problems == []
    got = {n: s.guarded for s in found for n in (s.names or ("",)) if n in guarded}
    assert got == guarded


@pytest.mark.parametrize(("src", "guarded"), [
    # rb-inotify: libinotify only exists on the BSDs; Linux has inotify in its C library
    ("module Native\n  extend FFI::Library\n  begin\n    ffi_lib 'inotify'\n"
     "  rescue LoadError\n  end\nend\n", {"inotify": "rescue LoadError"}),
    # a method's own rescue (libnotify's load_libs)
    ("module N\n  extend FFI::Library\n  def self.load_libs\n    ffi_lib 'notify'\n"
     "  rescue LoadError\n    warn 'no notify'\n  end\nend\n", {"notify": "rescue LoadError"}),
    # a bare rescue catches StandardError, which LoadError is not
    ("module N\n  extend FFI::Library\n  begin\n    ffi_lib 'foo'\n  rescue => e\n"
     "    warn e\n  end\nend\n", {"foo": None}),
    # the handler gives up
    ("module N\n  extend FFI::Library\n  begin\n    ffi_lib 'foo'\n  rescue LoadError\n"
     "    raise 'libfoo is required'\n  end\nend\n", {"foo": None}),
    # candidates in turn
    ("module N\n  extend FFI::Library\n  %w[foo bar].each do |n|\n    begin\n"
     "      ffi_lib n\n      break\n    rescue LoadError\n      next\n    end\n  end\nend\n",
     {"foo": None, "bar": None}),
    # labels, modifiers, symbols and method calls named like keywords do not open blocks
    ("module N\n  extend FFI::Library\n  OPTS = { class: 1, if: 2 }\n  x = :end\n"
     "  y = self.class if true\n  begin\n    ffi_lib 'foo'\n  rescue LoadError\n  end\nend\n",
     {"foo": "rescue LoadError"}),
    # unbalanced ends: the structure is not trusted
    ("module N\n  extend FFI::Library\n  begin\n    ffi_lib 'foo'\n  rescue LoadError\n"
     "  end\nend\nend\n", {"foo": None}),
])
def test_ruby_rescue_load_error(src: str, guarded: dict[str, str | None]) -> None:
    found, problems = detect_ruby(src, "lib/gem.rb")
    assert problems == []
    got = {n: s.guarded for s in found for n in s.names if n in guarded}
    assert got == guarded
