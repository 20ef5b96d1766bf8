"""unveil's Mach-O reader against macholib, over every Mach-O member of real macOS wheels.

The wheels (arm64, x86_64 and universal2 builds of projects that vendor dylibs) are fetched
once with ``pip download`` into ``~/.cache/unveil-tests/wheels-macos`` at the versions pinned
in :data:`PINS`; members are read from the zip in memory.  For every slice of every Mach-O
member the two readers must agree on the CPU type and architecture, the install name, the
dylib list in load-command order with the kind of each command, the LC_RPATHs, the UUID, and
the external nlist symbols with the library each import is bound to.  unveil's export-trie
and chained-fixup readers are also checked against its own nlist reading on the same files.

macholib is the independent reader: it parses through ctypes-style structures (and reads
the load commands of slices it is told about by the fat header), unveil through
``struct.Struct`` over a bounded blob.  Network only: ``pytest -m network``.
"""

from __future__ import annotations

import functools
import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from unveil.formats.blob import BytesBlob
from unveil.formats.macho import (
    DYLIB_KINDS,
    LC_ID_DYLIB,
    LC_RPATH,
    LC_UUID,
    MachOFile,
    is_macho,
    parse_macho,
)
from unveil.model import Binary

macholib_macho = pytest.importorskip("macholib.MachO")
macholib_mach_o = pytest.importorskip("macholib.mach_o")
macholib_symtab = pytest.importorskip("macholib.SymbolTable")
macholib_ptypes = pytest.importorskip("macholib.ptypes")

pytestmark = pytest.mark.network

WHEELS = Path.home() / ".cache" / "unveil-tests" / "wheels-macos"

#: wheel file name -> (requirement, pip --platform): what ``pip download`` fetched.
PINS: dict[str, tuple[str, str]] = {
    "numpy-2.4.6-cp311-cp311-macosx_14_0_arm64.whl": ("numpy==2.4.6", "macosx_14_0_arm64"),
    "numpy-2.4.6-cp311-cp311-macosx_14_0_x86_64.whl": ("numpy==2.4.6", "macosx_14_0_x86_64"),
    "scipy-1.17.1-cp311-cp311-macosx_14_0_arm64.whl": ("scipy==1.17.1", "macosx_14_0_arm64"),
    "scipy-1.17.1-cp311-cp311-macosx_14_0_x86_64.whl": ("scipy==1.17.1", "macosx_14_0_x86_64"),
    "pillow-13.0.0-cp311-cp311-macosx_11_0_arm64.whl": ("pillow==13.0.0", "macosx_11_0_arm64"),
    "pillow-13.0.0-cp311-cp311-macosx_10_10_x86_64.whl":
        ("pillow==13.0.0", "macosx_10_10_x86_64"),
    "shapely-2.2.0-cp311-cp311-macosx_11_0_arm64.whl": ("shapely==2.2.0", "macosx_11_0_arm64"),
    "shapely-2.2.0-cp311-cp311-macosx_10_9_x86_64.whl": ("shapely==2.2.0", "macosx_10_9_x86_64"),
    "lxml-6.1.3-cp311-cp311-macosx_10_9_x86_64.whl": ("lxml==6.1.3", "macosx_10_9_x86_64"),
    "lxml-6.1.3-cp311-cp311-macosx_10_9_universal2.whl":
        ("lxml==6.1.3", "macosx_10_9_universal2"),
    "pyzmq-27.3.0-cp311-cp311-macosx_10_15_universal2.whl":
        ("pyzmq==27.3.0", "macosx_10_15_universal2"),
    "opencv_python_headless-5.0.0.93-cp37-abi3-macosx_13_0_arm64.whl":
        ("opencv-python-headless==5.0.0.93", "macosx_13_0_arm64"),
    "opencv_python_headless-5.0.0.93-cp37-abi3-macosx_14_0_x86_64.whl":
        ("opencv-python-headless==5.0.0.93", "macosx_14_0_x86_64"),
}

#: macholib's (CPU type name, subtype name) -> the lipo name unveil gives.
ARCHS = {
    ("x86_64", "CPU_SUBTYPE_X86_64_ALL"): "x86_64",
    ("x86_64", "CPU_SUBTYPE_X86_64_H"): "x86_64h",
    ("ARM64", "CPU_SUBTYPE_ARM64_ALL"): "arm64",
    ("ARM64", "CPU_SUBTYPE_ARM64E"): "arm64e",
    ("i386", "CPU_SUBTYPE_I386_ALL"): "i386",
}
SPECIAL = {0: "@self", 0xFE: "@dynamic_lookup", 0xFF: "@executable"}

Facts = dict[str, Any]


def _wheel(name: str) -> Path:
    path = WHEELS / name
    if not path.exists():
        requirement, platform = PINS[name]
        WHEELS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
             "--no-deps", "--platform", platform, "--python-version", "3.11",
             "-d", str(WHEELS), requirement],
            check=True, timeout=900)
        if not path.exists():
            pytest.fail(f"pip download of {requirement} did not give {name}")
    return path


def macho_members(wheel: Path) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            if info.is_dir() or info.file_size < 8:
                continue
            with z.open(info) as f:
                head = f.read(8)
            if is_macho(head):
                out.append((info.filename, z.read(info)))
    return out


# -- macholib's view ---------------------------------------------------------------------------
def _lc_str(data: bytes, offset: int, lc: Any, cmd: Any) -> str:
    ofs = offset - _sizeof(lc) - _sizeof(cmd)
    return data[ofs:data.find(b"\0", ofs)].decode("utf-8", "backslashreplace")


def _sizeof(obj: Any) -> int:
    return int(macholib_ptypes.sizeof(obj.__class__))


def macholib_facts(name: str, data: bytes) -> list[Facts]:
    m = macholib_macho.MachO.__new__(macholib_macho.MachO)
    m.graphident = m.filename = name
    m.loader_path = ""
    m.fat = None
    m.headers = []
    m.allow_unknown_load_commands = True
    m.load(io.BytesIO(data))
    out: list[Facts] = []
    for h in m.headers:
        cputype, subtype = int(h.header.cputype), int(h.header.cpusubtype)
        facts: Facts = {
            "cputype": cputype & 0xFFFFFFFF,
            "arch": ARCHS.get((macholib_mach_o.CPU_TYPE_NAMES.get(cputype),
                               macholib_mach_o.get_cpu_subtype(cputype, subtype))),
            "filetype": int(h.header.filetype),
            "soname": None, "needed": [], "rpath": [], "uuid": None,
        }
        for lc, cmd, raw in h.commands:
            kind = DYLIB_KINDS.get(lc.cmd)
            if kind is not None:
                facts["needed"].append((_lc_str(raw, cmd.name, lc, cmd), kind))
            elif lc.cmd == LC_ID_DYLIB:
                facts["soname"] = _lc_str(raw, cmd.name, lc, cmd)
            elif lc.cmd == LC_RPATH:
                facts["rpath"].append(_lc_str(raw, cmd.path, lc, cmd))
            elif lc.cmd == LC_UUID and facts["uuid"] is None:
                facts["uuid"] = bytes(cmd.uuid).hex()
        facts["symbols"] = _macholib_symbols(m, h, data, [n for n, _k in facts["needed"]])
        out.append(facts)
    return out


def _macholib_symbols(m: Any, h: Any, data: bytes, dylibs: list[str]) -> list[tuple[
        str, bool, str | None]] | None:
    table = macholib_symtab.SymbolTable(m, header=h,
                                        openfile=lambda _name, _mode: io.BytesIO(data))
    if getattr(table, "dysymtab", None) is None:
        return None
    out: list[tuple[str, bool, str | None]] = []
    for _nl, name in table.extdefsyms:
        out.append((name.decode("utf-8", "backslashreplace"), True, None))
    for nl, name in table.undefsyms:
        ordinal = (int(nl.n_desc) >> 8) & 0xFF
        lib = dylibs[ordinal - 1] if 1 <= ordinal <= len(dylibs) else SPECIAL.get(ordinal)
        if not int(h.header.flags) & 0x80:
            lib = "@dynamic_lookup"
        out.append((name.decode("utf-8", "backslashreplace"), False, lib))
    return out


# -- unveil's view -----------------------------------------------------------------------------
def unveil_facts(data: bytes) -> list[Facts]:
    binary, _warnings = parse_macho(BytesBlob(data))
    f = MachOFile(BytesBlob(data))
    files = f.slices or (f,)
    slices: tuple[Binary, ...] = binary.slices or (binary,)
    out: list[Facts] = []
    for b, mf in zip(slices, files, strict=True):
        out.append({
            "cputype": b.machine,
            "arch": b.arch,
            "filetype": b.file_type,
            "soname": b.soname,
            "needed": list(zip(b.needed, b.needed_kinds, strict=True)),
            "rpath": list(b.rpath or ()),
            "uuid": b.build_id,
            "symbols": [(s.name, s.defined, s.library) for s in mf.symbols()],
            "routes": _routes_agree(mf),
        })
    return out


def _routes_agree(f: MachOFile) -> list[str]:
    """unveil's other two routes to the symbols (export trie, chained-fixup imports) must
    give what the nlist table gives: every export, and the library of every import that is
    not a weak-lookup coalescing entry."""
    dylibs = f._dylibs()
    twolevel = bool(f.h.flags & 0x80)
    nlist = f._nlist_symbols(dylibs, twolevel)
    problems: list[str] = []
    trie = {s.name for s in f._trie_exports(dylibs)}
    defined = {s.name for s in nlist if s.defined}
    if trie and trie != defined:
        problems.append(f"export trie {len(trie - defined)} extra, "
                        f"{len(defined - trie)} missing vs nlist")
    bound = {s.name: s.library for s in nlist if not s.defined}
    for s in f._chained_imports(dylibs, twolevel):
        if s.library != "@weak_lookup" and bound.get(s.name) != s.library:
            problems.append(f"chained import {s.name} -> {s.library}, nlist "
                            f"{bound.get(s.name)}")
    return problems


def compare(name: str, data: bytes) -> list[str]:
    """Disagreements for one member, as readable lines."""
    ours, theirs = unveil_facts(data), macholib_facts(name, data)
    if len(ours) != len(theirs):
        return [f"{name}: {len(ours)} slices vs macholib's {len(theirs)}"]
    problems: list[str] = []
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for key in ("cputype", "filetype", "soname", "needed", "rpath", "uuid"):
            if a[key] != b[key]:
                problems.append(f"{name}[{i}] {key}: {a[key]!r} vs macholib {b[key]!r}")
        problems += [f"{name}[{i}] {p}" for p in a["routes"]]
        if b["arch"] is not None and a["arch"] != b["arch"]:
            problems.append(f"{name}[{i}] arch: {a['arch']} vs macholib {b['arch']}")
        if b["symbols"] is not None:
            # unveil lists the nlist symbols first, then trie/chained-fixup extras.
            head = a["symbols"][:len(b["symbols"])]
            if head != b["symbols"]:
                diff = sorted(set(head) ^ set(b["symbols"]))[:5]
                problems.append(f"{name}[{i}] symbols differ, e.g. {diff}")
    return problems


@functools.cache
def _results(wheel: str) -> tuple[int, int, tuple[str, ...]]:
    members = macho_members(_wheel(wheel))
    problems: list[str] = []
    agree = 0
    for name, data in members:
        p = compare(name, data)
        problems += p
        agree += not p
    return len(members), agree, tuple(problems)


@pytest.mark.parametrize("wheel", sorted(PINS))
def test_wheel_agrees_with_macholib(wheel: str) -> None:
    total, agree, problems = _results(wheel)
    print(f"{wheel}: {total} Mach-O files, {agree} agree")  # shown with -s
    assert total > 0
    assert not problems, "\n".join(problems[:30])


def test_universal2_wheels_have_two_slices() -> None:
    for wheel in (w for w in sorted(PINS) if "universal2" in w):
        archs = {tuple(s.arch for s in parse_macho(BytesBlob(data))[0].slices)
                 for _n, data in macho_members(_wheel(wheel))}
        assert ("x86_64", "arm64") in archs or ("arm64", "x86_64") in archs, (wheel, archs)
