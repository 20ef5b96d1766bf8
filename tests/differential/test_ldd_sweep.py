"""unveil's ld.so emulation against ld.so itself, over the ELF files installed here.

Every regular ELF executable or shared library (ET_EXEC/ET_DYN with a PT_DYNAMIC segment)
is resolved by unveil and by glibc's trace mode (what ``ldd`` runs) and the lines must be
identical.  When ld.so fails (exit status != 0), unveil must report a fatal error whose
message appears in ld.so's stderr.  Files on which the oracle itself crashes (static-pie
programs run their own startup code and die under trace mode) or hangs are skipped, with
one shared reason each so ``-ra`` counts them.

* default run: a deterministic quick subset (every 15th file, sorted, plus a few named
  libraries);
* ``-m sweep``: every such file under /usr/bin and /usr/lib/x86_64-linux-gnu;
* ``-m network``: every such file under site-packages of the cached real-wheel venv
  (~/.cache/unveil-tests/venv-wheels; skipped when absent).

The sweep and network variants skip themselves (one placeholder each) unless their marker
is named in ``-m``, which also keeps collection cheap.
"""

from __future__ import annotations

import functools
import os
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import oracle_ldd, unveil_ldd

SYSTEM_ROOTS = ("/usr/bin", "/usr/lib/x86_64-linux-gnu")
WHEEL_VENV = Path.home() / ".cache" / "unveil-tests" / "venv-wheels"
QUICK_STRIDE = 15
QUICK_NAMED = (
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    "/usr/lib/x86_64-linux-gnu/libcurl.so.4",
    "/usr/bin/python3",
)
ET_EXEC, ET_DYN, PT_DYNAMIC = 2, 3, 2


# -- file sets --------------------------------------------------------------------------------
def is_dynamic_elf(path: str) -> bool:
    """ET_EXEC or ET_DYN with a PT_DYNAMIC program header (read with ``struct`` alone, so
    the file set does not depend on the reader under test)."""
    try:
        with open(path, "rb") as f:
            ident = f.read(16)
            if len(ident) < 16 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or \
                    ident[5] not in (1, 2):
                return False
            e = "<" if ident[5] == 1 else ">"
            is64 = ident[4] == 2
            hdr = f.read(48 if is64 else 36)
            fields = struct.unpack(e + ("HHIQQQIHHHHHH" if is64 else "HHIIIIIHHHHHH"), hdr)
            etype, phoff, phentsize, phnum = fields[0], fields[4], fields[8], fields[9]
            if etype not in (ET_EXEC, ET_DYN) or not phnum or phentsize < 8:
                return False
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            return any(
                struct.unpack_from(e + "I", table, i * phentsize)[0] == PT_DYNAMIC
                for i in range(min(phnum, len(table) // phentsize)))
    except (OSError, struct.error):
        return False


@functools.cache
def dynamic_elf_files(*roots: str) -> tuple[str, ...]:
    out: set[str] = set()
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                p = os.path.join(dirpath, name)
                if not os.path.islink(p) and os.path.isfile(p) and is_dynamic_elf(p):
                    out.add(p)
    return tuple(sorted(out))


def quick_files() -> list[str]:
    files = list(dynamic_elf_files(*SYSTEM_ROOTS)[::QUICK_STRIDE])
    files += [p for p in QUICK_NAMED if Path(p).exists() and p not in files]
    return files


def wheel_files() -> tuple[str, ...]:
    roots = sorted(str(p) for p in (WHEEL_VENV / "lib").glob("python*/site-packages"))
    return dynamic_elf_files(*roots)


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
            params = list(dynamic_elf_files(*SYSTEM_ROOTS))
    elif d.get_closest_marker("network"):
        if not _selected(metafunc.config, "network"):
            params = [pytest.param(None, marks=pytest.mark.skip(reason="run with -m network"))]
        elif not WHEEL_VENV.is_dir():
            params = [pytest.param(None, marks=pytest.mark.skip(
                reason=f"{WHEEL_VENV} is absent (built by the network tests)"))]
        else:
            params = list(wheel_files())
    else:
        params = quick_files()
    metafunc.parametrize("elf_path", params, ids=[
        p if isinstance(p, str) else "placeholder" for p in params])


# -- the comparison ---------------------------------------------------------------------------
def compare(path: str) -> None:
    try:
        rc, expected, stderr = oracle_ldd(path, cwd="/")
    except subprocess.TimeoutExpired:
        pytest.skip("oracle (ld.so trace mode) timed out")
    if rc < 0 or rc >= 128:
        pytest.skip("oracle (ld.so trace mode) crashed, e.g. a static-pie program")
    warnings: list[str] = []
    got, fatal = unveil_ldd(path, cwd="/", warnings=warnings)
    if rc != 0:
        assert fatal is not None, f"ld.so failed (rc {rc}: {stderr.strip()}) but unveil " \
                                  f"did not; unveil printed {got}"
        assert fatal in stderr, (fatal, stderr)
        return
    assert fatal is None, f"unveil failed ({fatal}) but ld.so printed {expected}"
    assert got == expected
    # what ld.so says on stderr and goes on (symbol versions a library lacks), word for word
    assert warnings == stderr.splitlines()


# -- tests ------------------------------------------------------------------------------------
def test_quick_subset(elf_path: str) -> None:
    compare(elf_path)


@pytest.mark.sweep
def test_system_sweep(elf_path: str) -> None:
    compare(elf_path)


@pytest.mark.network
def test_wheel_venv(elf_path: str) -> None:
    compare(elf_path)
