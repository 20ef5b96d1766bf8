"""Where packages point ``os.add_dll_directory``: read from sources, never run."""

from __future__ import annotations

from pathlib import Path

from unveil.sources.dlldirs import dll_directories
from unveil.sources.fs import HostFS

BOOTSTRAP = '''
try:
    import pkg_system32
except ImportError:
    pass
else:
    import os
    for path in pkg_system32.__path__:
        if os.path.isdir(path):
            os.add_dll_directory(path)
            break
'''

DELVEWHEEL = '''
def _delvewheel_patch():
    import os
    libs_dir = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, 'pkg.libs'))
    if os.path.isdir(libs_dir):
        os.add_dll_directory(libs_dir)
_delvewheel_patch()
'''


def _site(tmp_path: Path) -> Path:
    site = tmp_path / "Lib" / "site-packages"
    (site / "pkg_system32").mkdir(parents=True)   # a namespace package: no __init__.py
    (site / "pkg_system32" / "pkgtypes311.dll").write_bytes(b"MZ")
    (site / "win32" / "lib").mkdir(parents=True)
    (site / "win32" / "lib" / "pkg_bootstrap.py").write_text(BOOTSTRAP)
    (site / "pkg.pth").write_text("# comment\nwin32\nwin32\\lib\nmissing_dir\n"
                                  "import pkg_bootstrap\n")
    return site


def test_pth_imports_are_followed_on_the_path_they_extend(tmp_path: Path) -> None:
    site = _site(tmp_path)
    fs = HostFS(str(tmp_path))
    assert dll_directories(fs, ["/Lib/site-packages"]) == ["/Lib/site-packages/pkg_system32"]
    # Without the .pth line that imports it, the bootstrap module never runs.
    (site / "pkg.pth").write_text("win32\nwin32\\lib\n")
    assert dll_directories(fs, ["/Lib/site-packages"]) == []


def test_delvewheel_patch_and_hostile_pth(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg.libs").mkdir()
    (site / "pkg" / "__init__.py").write_text(DELVEWHEEL)
    # .pth lines that leave site-packages, bad imports, binary garbage: ignored
    (site / "evil.pth").write_bytes(b"../../etc\n/abs\nimport os; os.system('x')\n"
                                    b"import a-b, ok_mod\n\xff\xfe\x00")
    (site / "ok_mod.py").write_text("import os\nos.add_dll_directory(undefined_name)\n")
    fs = HostFS(str(tmp_path))
    assert dll_directories(fs, ["/site"]) == ["/site/pkg.libs"]
