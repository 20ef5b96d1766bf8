"""unveil's ELF reader against pyelftools, over the ELF files actually installed here.

unveil reads the program headers and the dynamic segment only; pyelftools is used the
conventional way (section headers: ``.dynsym``, ``.gnu.version``, ``.gnu.version_r``,
``.gnu.version_d``), so the two readers get to the same facts by different routes.

* default run: a deterministic quick subset (every 15th ELF file, sorted, plus a few large
  named libraries);
* ``-m sweep``: every ELF file under /usr/lib/x86_64-linux-gnu and /usr/bin;
* ``-m network``: every ELF file of the cached real-wheel venv
  (~/.cache/unveil-tests/venv-wheels, built by the network tests; skipped when absent).

The sweep and network variants skip themselves (one placeholder each) unless their marker
is named in ``-m``, which also keeps collection cheap.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection
from elftools.elf.segments import InterpSegment, NoteSegment

from unveil.errors import FormatError
from unveil.formats.blob import BytesBlob
from unveil.formats.elf import ElfFile, parse_elf

SYSTEM_ROOTS = ("/usr/lib/x86_64-linux-gnu", "/usr/bin")
WHEEL_VENV = Path.home() / ".cache" / "unveil-tests" / "venv-wheels"
QUICK_STRIDE = 15
QUICK_NAMED = (
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    "/usr/lib/x86_64-linux-gnu/libcurl.so.4",
    "/usr/lib/x86_64-linux-gnu/libm.so.6",
    "/usr/lib64/ld-linux-x86-64.so.2",
)
VER_FLG_BASE = 0x1
_VER_NDX = {"VER_NDX_LOCAL": 0, "VER_NDX_GLOBAL": 1}

Symbols = Counter[tuple[str, bool, str | None, bool]]


# -- file sets --------------------------------------------------------------------------------
def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


@functools.cache
def elf_files(*roots: str) -> tuple[str, ...]:
    """Regular (non-symlink) files starting with the ELF magic under ``roots``, sorted."""
    out: set[str] = set()
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                p = os.path.join(dirpath, name)
                if not os.path.islink(p) and os.path.isfile(p) and _is_elf(p):
                    out.add(p)
    return tuple(sorted(out))


def quick_files() -> list[str]:
    files = list(elf_files(*SYSTEM_ROOTS)[::QUICK_STRIDE])
    files += [p for p in QUICK_NAMED if Path(p).exists() and p not in files]
    return files


def _selected(config: pytest.Config, mark: str) -> bool:
    expr = str(config.option.markexpr or "")
    return mark in expr and f"not {mark}" not in expr


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "elf_path" not in metafunc.fixturenames:
        return
    d = metafunc.definition
    params: list[Any]
    if d.get_closest_marker("sweep"):
        if not _selected(metafunc.config, "sweep"):
            params = [pytest.param(None, marks=pytest.mark.skip(reason="run with -m sweep"))]
        else:
            params = list(elf_files(*SYSTEM_ROOTS))
    elif d.get_closest_marker("network"):
        if not _selected(metafunc.config, "network"):
            params = [pytest.param(None, marks=pytest.mark.skip(reason="run with -m network"))]
        elif not WHEEL_VENV.is_dir():
            params = [pytest.param(None, marks=pytest.mark.skip(
                reason=f"{WHEEL_VENV} is absent (built by the network tests)"))]
        else:
            params = list(elf_files(str(WHEEL_VENV)))
    else:
        params = quick_files()
    metafunc.parametrize("elf_path", params, ids=[
        p if isinstance(p, str) else "placeholder" for p in params])


# -- pyelftools' view -------------------------------------------------------------------------
def _split(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value.split(":"))


def pyelftools_facts(path: str) -> dict[str, Any]:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        facts: dict[str, Any] = {"needed": [], "soname": None, "rpath": None,
                                 "runpath": None, "interpreter": None, "build_id": None}
        has_dynamic = False
        for seg in elf.iter_segments():
            if isinstance(seg, InterpSegment) and facts["interpreter"] is None:
                facts["interpreter"] = seg.get_interp_name()
            elif isinstance(seg, DynamicSegment) and not has_dynamic:
                has_dynamic = True
                tag: Any  # string-valued tags get .needed/.soname/... set dynamically
                for tag in seg.iter_tags():
                    t = tag.entry.d_tag
                    if t == "DT_NEEDED":
                        facts["needed"].append(tag.needed)
                    elif t == "DT_SONAME":
                        facts["soname"] = tag.soname
                    elif t == "DT_RPATH":
                        facts["rpath"] = _split(tag.rpath)
                    elif t == "DT_RUNPATH":
                        facts["runpath"] = _split(tag.runpath)
            elif isinstance(seg, NoteSegment) and facts["build_id"] is None:
                for note in seg.iter_notes():
                    if note["n_name"] == "GNU" and note["n_type"] == "NT_GNU_BUILD_ID":
                        facts["build_id"] = note["n_desc"]
                        break
        facts["needed"] = tuple(facts["needed"])

        # Versions and symbols, from the sections.
        facts["has_sections"] = elf.num_sections() > 0
        version_needs: list[tuple[str, tuple[str, ...]]] = []
        version_defs: list[str] = []
        names: dict[int, str] = {}
        versym: GNUVerSymSection | None = None
        dynsym: SymbolTableSection | None = None
        for sec in elf.iter_sections():
            if isinstance(sec, GNUVerDefSection):
                for verdef, aux_iter in sec.iter_versions():
                    auxes = list(aux_iter)
                    if not auxes:
                        continue
                    names[verdef["vd_ndx"]] = auxes[0].name
                    if not verdef["vd_flags"] & VER_FLG_BASE:
                        version_defs.append(auxes[0].name)
            elif isinstance(sec, GNUVerNeedSection):
                for verneed, aux_iter in sec.iter_versions():
                    versions = []
                    for aux in aux_iter:
                        names[aux["vna_other"]] = aux.name
                        versions.append(aux.name)
                    version_needs.append((str(verneed.name), tuple(versions)))
            elif isinstance(sec, GNUVerSymSection):
                versym = sec
            elif isinstance(sec, SymbolTableSection) and sec["sh_type"] == "SHT_DYNSYM":
                dynsym = sec
        facts["version_needs"] = tuple(version_needs)
        facts["version_defs"] = tuple(version_defs)
        symbols: Symbols = Counter()
        if dynsym is not None:
            for i, sym in enumerate(dynsym.iter_symbols()):
                if i == 0:
                    continue
                version: str | None = None
                hidden = False
                if versym is not None:
                    ndx = versym.get_symbol(i).entry["ndx"]
                    raw = int(_VER_NDX.get(ndx, ndx) if isinstance(ndx, str) else ndx)
                    hidden = bool(raw & 0x8000)
                    raw &= 0x7FFF
                    version = names.get(raw) if raw > 1 else None
                symbols[(sym.name, sym["st_shndx"] != "SHN_UNDEF", version, hidden)] += 1
        facts["symbols"] = symbols
        return facts


# -- unveil's view ----------------------------------------------------------------------------
def unveil_facts(path: str) -> dict[str, Any]:
    data = Path(path).read_bytes()
    binary, _warnings = parse_elf(BytesBlob(data))
    symbols: Symbols = Counter(
        (s.name, s.defined, s.version, s.version_hidden)
        for s in ElfFile(BytesBlob(data)).symbols())
    return {
        "needed": binary.needed,
        "soname": binary.soname,
        "rpath": binary.rpath,
        "runpath": binary.runpath,
        "interpreter": binary.interpreter,
        "build_id": binary.build_id,
        "version_needs": tuple((v.file, v.versions) for v in binary.version_needs),
        "version_defs": binary.version_defs,
        "symbols": symbols,
    }


def compare(path: str) -> None:
    try:
        expected = pyelftools_facts(path)
    except (ELFError, ValueError, KeyError, AssertionError) as e:
        pytest.skip(f"pyelftools cannot read it: {type(e).__name__}")
    try:
        got = unveil_facts(path)
    except FormatError as e:
        pytest.fail(f"unveil rejected a file pyelftools reads: {e}")
    keys = ["needed", "soname", "rpath", "runpath", "interpreter", "build_id"]
    if expected["has_sections"]:
        keys += ["version_needs", "version_defs"]
    for key in keys:
        assert got[key] == expected[key], key
    if expected["has_sections"]:
        exp_syms: Symbols = expected["symbols"]
        got_syms: Symbols = got["symbols"]
        missing = sorted(map(repr, (exp_syms - got_syms).elements()))
        extra = sorted(map(repr, (got_syms - exp_syms).elements()))
        assert not missing, f"symbols: {len(missing)} missing, e.g. {missing[:5]}"
        assert not extra, f"symbols: {len(extra)} extra, e.g. {extra[:5]}"


# -- tests ------------------------------------------------------------------------------------
def test_quick_subset(elf_path: str) -> None:
    compare(elf_path)


@pytest.mark.sweep
def test_system_sweep(elf_path: str) -> None:
    compare(elf_path)


@pytest.mark.network
def test_wheel_venv(elf_path: str) -> None:
    compare(elf_path)
