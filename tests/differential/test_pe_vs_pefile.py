"""unveil's PE reader against pefile, over every PE file of real Windows wheels.

The wheels (pinned below) are downloaded once with ``pip download --platform win_amd64`` into
``~/.cache/unveil-tests/wheels-windows/``; members are read from the zip in memory and taken
when they start with ``MZ``.  For each file both readers must agree on the machine, the class,
DLL-ness, the import DLLs in table order, the delay-import DLLs, the imported names per DLL
(``#n`` for an import by ordinal), the export DLL name, the exported names and the CodeView
build id.

pefile is run with its size limits raised (it stops at 8192 imports or exports and cuts names
at 512 bytes by default; ``test_pefile_default_limits_cut_long_names`` shows that this is the
only difference left when they are not raised).  Several wheels are repaired by delvewheel,
which renames bundled DLLs (``-<32 hex>.dll``; ``-<8 hex>`` before 1.0) and, when a new name
does not fit where the old one was, writes it into another section; binutils' ``objdump -p``
then stops listing imports, which ``test_objdump_stops_at_relocated_import_names`` pins down.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from unveil.formats.blob import BytesBlob
from unveil.formats.pe import PEFile

pytestmark = pytest.mark.network

WHEELS = Path.home() / ".cache" / "unveil-tests" / "wheels-windows"
#: distribution -> versions; each is a cp311 win_amd64 (or abi3) wheel.
PINS: dict[str, tuple[str, ...]] = {
    "numpy": ("2.4.6",),
    "scipy": ("1.17.1",),
    "pillow": ("13.0.0",),
    "pyzmq": ("27.3.0", "25.1.2"),  # 25.1.2: repaired by delvewheel 0.0.22 (8-hex names)
    "shapely": ("2.2.0",),
    "lxml": ("6.1.3",),
    "opencv-python-headless": ("5.0.0.93",),
    "psycopg2-binary": ("2.9.13",),
    "pywin32": ("312",),  # delay imports, EXEs
    "onnxruntime": ("1.31.1",),  # delay imports
    "debugpy": ("1.8.22",),  # PE32 (x86) DLLs and EXEs
}
DELVEWHEEL = {("numpy", "2.4.6"), ("scipy", "1.17.1"), ("shapely", "2.2.0"),
              ("psycopg2-binary", "2.9.13"), ("pyzmq", "25.1.2")}
MANGLED = re.compile(r"-[0-9a-f]{8}(?:[0-9a-f]{24})?\.dll$")
BIG = 1 << 24
PARAMS = [(d, v) for d, vs in PINS.items() for v in vs]


def _wheel(dist: str, version: str) -> Path:
    stem = re.sub(r"[-_.]+", "_", dist).lower()
    found = sorted(WHEELS.glob(f"{stem}-{version}-*.whl"))
    if not found:
        WHEELS.mkdir(parents=True, exist_ok=True)
        p = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps",
             "--platform", "win_amd64", "--python-version", "3.11", "-d", str(WHEELS),
             f"{dist}=={version}"], capture_output=True, text=True, timeout=900, check=False)
        found = sorted(WHEELS.glob(f"{stem}-{version}-*.whl"))
        if p.returncode != 0 or not found:
            pytest.skip(f"cannot download {dist}=={version}: {p.stderr.strip()[-300:]}")
    return found[0]


def _members(wheel: Path) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            with z.open(info) as f:
                if f.read(2) != b"MZ":
                    continue
            yield info.filename, z.read(info)


@pytest.fixture
def pefile(monkeypatch: pytest.MonkeyPatch) -> Any:
    mod = pytest.importorskip("pefile")
    for limit in ("MAX_IMPORT_SYMBOLS", "MAX_SYMBOL_NAME_LENGTH", "MAX_IMPORT_NAME_LENGTH",
                  "MAX_DLL_LENGTH"):
        monkeypatch.setattr(mod, limit, BIG)
    return mod


# -- the two views ----------------------------------------------------------------------------
def pefile_facts(pefile: Any, data: bytes, max_exports: int = BIG) -> dict[str, Any]:
    pe = pefile.PE(data=data, fast_load=True, max_symbol_exports=max_exports)
    pe.parse_data_directories(directories=[0, 1, 6, 13])

    def names(entry: Any) -> list[str]:
        return [f"#{i.ordinal}" if i.import_by_ordinal else i.name.decode()
                for i in entry.imports]

    exp = getattr(pe, "DIRECTORY_ENTRY_EXPORT", None)
    build_id = None
    for dbg in getattr(pe, "DIRECTORY_ENTRY_DEBUG", []):
        cv = dbg.entry
        if dbg.struct.Type == 2 and cv is not None and cv.CvSignature == b"RSDS":
            build_id = (f"{cv.Signature_Data1:08X}{cv.Signature_Data2:04X}"
                        f"{cv.Signature_Data3:04X}{cv.Signature_Data4:02X}"
                        f"{cv.Signature_Data5:02X}{cv.Signature_Data6.hex().upper()}{cv.Age:X}")
            break
    return {
        "machine": pe.FILE_HEADER.Machine,
        "bits": 64 if pe.PE_TYPE == 0x20B else 32,
        "dll": pe.is_dll(),
        "imports": [(e.dll.decode(), names(e)) for e in
                    getattr(pe, "DIRECTORY_ENTRY_IMPORT", [])],
        "delay": [(e.dll.decode(), names(e)) for e in
                  getattr(pe, "DIRECTORY_ENTRY_DELAY_IMPORT", [])],
        "export_name": exp.name.decode() if exp is not None and exp.name else None,
        "exports": [s.name.decode() for s in exp.symbols if s.name] if exp is not None else [],
        "build_id": build_id,
    }


def unveil_facts(data: bytes) -> tuple[dict[str, Any], list[str]]:
    f = PEFile(BytesBlob(data))
    b = f.binary()
    tables = f.import_tables()
    exports = f.exports()
    return {
        "machine": b.machine,
        "bits": b.bits,
        "dll": b.file_type == 2,
        "imports": [(dll, list(names)) for dll, kind, names in tables if kind == "import"],
        "delay": [(dll, list(names)) for dll, kind, names in tables if kind == "delay"],
        "export_name": b.soname,
        "exports": [s.name for s in exports],
        "build_id": b.build_id,
    }, f.warnings


# -- tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("dist", "version"), PARAMS, ids=[f"{d}-{v}" for d, v in PARAMS])
def test_agrees_with_pefile(pefile: Any, dist: str, version: str) -> None:
    wheel = _wheel(dist, version)
    compared = 0
    disagreements: list[str] = []
    for name, data in _members(wheel):
        ours, warnings = unveil_facts(data)
        theirs = pefile_facts(pefile, data)
        compared += 1
        assert warnings == [], (name, warnings)
        for key, value in theirs.items():
            if ours[key] != value:
                disagreements.append(f"{name}: {key}: pefile {value!r:.300} unveil "
                                     f"{ours[key]!r:.300}")
    assert compared, f"no PE file in {wheel.name}"
    assert not disagreements, "\n".join(disagreements)


@pytest.mark.parametrize(("dist", "version"), PARAMS, ids=[f"{d}-{v}" for d, v in PARAMS])
def test_delvewheel_repairs_are_recognised(dist: str, version: str) -> None:
    """Which pinned wheels delvewheel repaired: a DELVEWHEEL file in the dist-info, bundled
    DLLs under ``<dist>.libs/`` and imports of their mangled names."""
    wheel = _wheel(dist, version)
    with zipfile.ZipFile(wheel) as z:
        marker = any(n.endswith(".dist-info/DELVEWHEEL") for n in z.namelist())
        libs = [n for n in z.namelist() if re.match(r"[^/]+\.libs/[^/]+\.dll$", n)]
    mangled = {d for _n, data in _members(wheel) for d in PEFile(BytesBlob(data)).binary().needed
               if MANGLED.search(d)}
    assert marker == ((dist, version) in DELVEWHEEL)
    if marker:
        assert libs
        assert mangled
        assert mangled <= {n.rsplit("/", 1)[1] for n in libs}


def test_pefile_default_limits_cut_long_names() -> None:
    """With its default limits pefile cuts exported names at 512 bytes (GEOS exports longer
    MSVC-decorated C++ names): unveil reads them whole and is right: each is NUL-terminated
    further on, and pefile's is a prefix of it."""
    mod = pytest.importorskip("pefile")
    wheel = _wheel("shapely", "2.2.0")
    cut = 0
    for _name, data in _members(wheel):
        ours, _ = unveil_facts(data)
        theirs = pefile_facts(mod, data, max_exports=mod.MAX_SYMBOL_EXPORT_COUNT)
        for a, b in zip(theirs["exports"], ours["exports"], strict=True):
            if a != b:
                assert len(a) == mod.MAX_SYMBOL_NAME_LENGTH
                assert b.startswith(a)
                cut += 1
    assert cut


def _objdump_imports(path: Path) -> list[str] | None:
    p = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True,
                       check=False)
    if p.returncode != 0 or "pei-x86-64" not in p.stdout:
        return None
    table = p.stdout.split("The Import Tables", 1)[1] if "The Import Tables" in p.stdout else ""
    table = table.split("The Delay Import Tables", 1)[0].split("\n\n\n", 1)[0]
    return re.findall(r"DLL Name: (\S+)", table)


@pytest.mark.skipif(shutil.which("objdump") is None, reason="binutils objdump needed")
def test_objdump_stops_at_relocated_import_names(tmp_path: Path) -> None:
    """binutils' ``objdump -p`` walks the import descriptors only while each DLL name lies
    in the section that holds the import directory.  delvewheel writes a mangled name that
    is longer than the original elsewhere (often ``.data`` or ``.pdata``), so objdump drops
    that DLL and every later one.  Windows resolves names anywhere in the image, and so do
    pefile and unveil (which agree, above): objdump is the one that is wrong."""
    dropped: list[str] = []
    for dist, version in sorted(DELVEWHEEL):
        for name, data in _members(_wheel(dist, version)):
            path = tmp_path / "x.dll"
            path.write_bytes(data)
            theirs = _objdump_imports(path)
            if theirs is None:
                pytest.skip("this objdump cannot read pei-x86-64")
            f = PEFile(BytesBlob(data))
            b = f.binary()
            ours = [d for d, k in zip(b.needed, b.needed_kinds, strict=True) if k == "import"]
            if theirs == ours:
                continue
            assert ours[:len(theirs)] == theirs, name
            dropped.append(f"{dist}-{version}: {name}")
            # The first DLL objdump missed has its name outside the import directory's
            # section, and it is (or a later one is) a delvewheel-mangled name.
            imp_rva = f.directory(1)[0]
            (name_rva,) = struct.unpack("<I", f.read_rva(imp_rva + 20 * len(theirs) + 12, 4))
            home = next(s for s in f.h.sections if s.va <= imp_rva < s.va + s.span)
            assert not home.va <= name_rva < home.va + home.span, name
            assert any(MANGLED.search(d) for d in ours[len(theirs):]), name
    assert dropped
