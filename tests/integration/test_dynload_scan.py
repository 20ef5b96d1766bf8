"""Dynamic loading found statically and resolved as dlopen would, in a scan."""

from __future__ import annotations

import json
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import Builder
from tests.integration.packages import write_wheel
from tests.unit.elfgen import make_elf
from unveil import scan
from unveil.cli.main import main
from unveil.model import EdgeClass, LinkKind, Outcome

SCHEMA = json.loads(resources.files("unveil").joinpath("data/scan.schema.json").read_text())

LOADER = b"""
import ctypes
from ctypes.util import find_library as _find
import os

_here = os.path.dirname(__file__)
_bundled = ctypes.CDLL(os.path.join(_here, "_data", "libbundled.so"))
_z = ctypes.CDLL(_find("z") or "libz.so.1")
_gone = ctypes.CDLL("libunveil-does-not-exist.so.7")
"""


def test_python_load_sites_in_a_wheel(build: Builder, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    lib = build.lib("x/libbundled.so")
    whl = write_wheel(tmp_path / "pkg-1.0-py3-none-linux_x86_64.whl", {
        "pkg/__init__.py": LOADER,
        "pkg/_data/libbundled.so": lib.read_bytes(),
    })
    result = scan(str(whl))
    loads = result.targets[0].dynamic_loads
    by_name = {n: d for d in loads for n in d.site.names}
    bundled = by_name["pkg/_data/libbundled.so"]
    assert bundled.edges[0].edge_class is EdgeClass.BUNDLED
    assert bundled.edges[0].link is LinkKind.DLOPEN
    z = by_name["z"]
    assert z.site.stem
    assert z.edges[0].resolution.outcome is Outcome.FOUND
    assert "libz.so.1" in z.edges[0].resolution.request
    gone = by_name["libunveil-does-not-exist.so.7"]
    assert gone.edges[0].edge_class is EdgeClass.MISSING
    assert gone.site.line == 9
    assert main(["scan", "--format", "json", str(whl)]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["summary"]["dlopen-missing"] == 1
    assert main(["scan", "--no-dynload", "--format", "json", str(whl)]) == 0
    assert json.loads(capsys.readouterr().out)["targets"][0]["dynamic_loads"] == []


def test_dlopen_note_is_resolved_from_the_binary(tmp_path: Path) -> None:
    note = json.dumps([{"soname": ["libz.so.1"], "feature": "compression",
                        "priority": "recommended"},
                       {"soname": ["libunveil-fido.so.1"], "priority": "suggested"}]).encode()
    (tmp_path / "libnoted.so").write_bytes(
        make_elf(soname="libnoted.so", notes=((b"FDO", 0x407C0C0A, note + b"\0"),)))
    loads = scan(str(tmp_path)).targets[0].dynamic_loads
    assert [d.site.api for d in loads] == [".note.dlopen", ".note.dlopen"]
    found = {d.site.names[0]: d for d in loads}
    assert found["libz.so.1"].found
    assert "compression" in (found["libz.so.1"].edges[0].note or "")
    assert found["libunveil-fido.so.1"].edges[0].edge_class is EdgeClass.MISSING


def test_names_in_a_binary_that_imports_dlopen(build: Builder, tmp_path: Path) -> None:
    src = tmp_path / "prog.c"
    src.write_text('#include <dlfcn.h>\nint main(void) { return dlopen("libz.so.1", 2) == 0 '
                   '&& dlopen("libunveil-ghost.so.3", 2) == 0; }\n')
    (tmp_path / "bin").mkdir()
    subprocess.run(["gcc", "-o", str(tmp_path / "bin" / "prog"), str(src)], check=True)
    loads = scan(str(tmp_path / "bin")).targets[0].dynamic_loads
    site = next(d for d in loads if d.site.api == "bytes")
    assert "libz.so.1" in site.site.names
    assert "libunveil-ghost.so.3" in site.site.names
    # A low-confidence guess: what exists is shown, what does not is never "missing".
    assert [e.resolution.request for e in site.edges] == ["libz.so.1"]


def test_a_partly_computed_stem_matches_the_cache_as_a_glob(tmp_path: Path) -> None:
    """Wand: find_library('MagickWand' + suffix) with the suffix unknown is the stem
    pattern 'MagickWand*', matched against the loader cache like find_library would (here
    'ffi*': libffi is in every Debian cache); and a prefix alone ('lib') is no library
    name."""
    whl = write_wheel(tmp_path / "pkg-1.0-py3-none-any.whl", {"pkg/__init__.py": b"""
import ctypes, ctypes.util, sys
suffix = sys.argv[1]
path = ctypes.util.find_library("ffi" + suffix)
lib = ctypes.CDLL(path)
prefix = ctypes.CDLL(("lib", "x")[0])
"""})
    loads = scan(str(whl)).targets[0].dynamic_loads
    stems = [d for d in loads if d.site.stem and d.site.names == ("ffi*",)]
    assert stems
    assert any(e.resolution.outcome is Outcome.FOUND for d in stems for e in d.edges)
    assert not any("lib" in d.site.names for d in loads)


def test_tests_and_examples_load_optionally(tmp_path: Path) -> None:
    """A library loaded only by the tests or examples a package ships (numpy's
    random/_examples) is optional and no phantom; the package's own code's is missing."""
    gone = b"import ctypes\nctypes.CDLL('libunveil-gone-%d.so.1')\n"
    whl = write_wheel(tmp_path / "pkg-1.0-py3-none-linux_x86_64.whl", {
        "pkg/__init__.py": gone % 1,
        "pkg/tests/test_load.py": gone % 2,
        "pkg/_examples/numba/extending.py": gone % 3,
        "pkg/conftest.py": gone % 4,
    })
    result = scan(str(whl))
    classes = {d.site.names[0]: d.edges[0].edge_class for d in result.targets[0].dynamic_loads}
    assert classes == {"libunveil-gone-1.so.1": EdgeClass.MISSING,
                       "libunveil-gone-2.so.1": EdgeClass.OPTIONAL,
                       "libunveil-gone-3.so.1": EdgeClass.OPTIONAL,
                       "libunveil-gone-4.so.1": EdgeClass.OPTIONAL}
    phantoms = [d.request for d in result.targets[0].declarations if d.category == "phantom"]
    assert phantoms == ["libunveil-gone-1.so.1"]
