"""A load site whose alternatives include another platform's file is that platform's code."""

from __future__ import annotations

from pathlib import Path

import unveil
from unveil.cli.host import detect_host
from unveil.model import Outcome

SOURCE = '''
import ctypes
from ctypes.util import find_library

def load_cdll(name, macos10_16_path):
    path = find_library(name) or macos10_16_path
    return ctypes.CDLL(path)

Security = load_cdll("Security", "/System/Library/Frameworks/Security.framework/Security")
lib = ctypes.CDLL(find_library("unveil_no_such_library_xyz"))
'''


def test_macos_framework_alternative_is_not_missing_here(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "bindings.py").write_text(SOURCE)
    result = unveil.scan(str(tmp_path), detect_host())
    loads = result.targets[0].dynamic_loads
    missing = [e.resolution.request for d in loads for e in d.edges
               if e.resolution.outcome is not Outcome.FOUND]
    assert any("unveil_no_such_library_xyz" in r for r in missing), missing
    assert not any("Security" in r for r in missing), missing
    # the site is still listed, with its names
    assert any("Security" in n for d in loads for n in d.site.names)
