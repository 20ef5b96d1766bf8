"""os.add_dll_directory only extends Windows' DLL search: on Linux it is no load, found or
missing (rasterio and PySide6 call it under a platform check)."""

from __future__ import annotations

from pathlib import Path

from unveil import scan
from unveil.config import ScanConfig
from unveil.model import EdgeClass


def test_add_dll_directory_is_not_a_missing_load(tmp_path: Path) -> None:
    pkg = tmp_path / "site-packages" / "rasterish"
    (pkg / ".libs").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "import os, platform\n"
        "if platform.system() == 'Windows':\n"
        "    libs = os.path.join(os.path.dirname(__file__), '.libs')\n"
        "    os.add_dll_directory(libs)\n"
        "    os.add_dll_directory(os.environ['GDAL_HOME'])\n")
    result = scan(str(tmp_path / "site-packages"), ScanConfig(identify=False))
    loads = [d for t in result.targets for d in t.dynamic_loads]
    assert loads  # the call sites are still shown
    assert all(d.site.api == "os.add_dll_directory" for d in loads)
    edges = [e for d in loads for e in d.edges]
    assert not [e for e in edges if e.edge_class is EdgeClass.MISSING]
    assert not edges
