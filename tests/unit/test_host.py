"""Host facts that decide the glibc loader's search: ``$PLATFORM`` and the legacy hwcaps
subdirectories come from the CPU's vendor and flags, as glibc's ``init_cpu_features``
derives them (it rewrites AT_PLATFORM for Intel CPUs only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from unveil.cli.host import cpu_info
from unveil.config import x86_64_legacy_hwcaps, x86_64_platform

HASWELL = frozenset({"avx2", "bmi1", "bmi2", "abm", "movbe", "popcnt", "fma"})
AVX512 = frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})
PHI = frozenset({"avx512f", "avx512cd", "avx512er", "avx512pf"})


@pytest.mark.parametrize(("vendor", "flags", "platform", "legacy"), [
    ("GenuineIntel", HASWELL, "haswell", ("tls", "haswell", "x86_64")),
    ("GenuineIntel", HASWELL | AVX512, "haswell", ("tls", "haswell", "avx512_1", "x86_64")),
    ("GenuineIntel", HASWELL | PHI, "xeon_phi", ("tls", "xeon_phi", "x86_64")),
    ("GenuineIntel", HASWELL - {"movbe"}, "x86_64", ("tls", "x86_64")),
    # AMD (and Hygon, Zhaoxin, ...) keep the kernel's AT_PLATFORM whatever they support
    ("AuthenticAMD", HASWELL | AVX512, "x86_64", ("tls", "x86_64")),
    ("", HASWELL, "x86_64", ("tls", "x86_64")),
])
def test_platform_follows_glibc(vendor: str, flags: frozenset[str], platform: str,
                                legacy: tuple[str, ...]) -> None:
    assert x86_64_platform(flags, vendor) == platform
    assert x86_64_legacy_hwcaps(flags, vendor) == legacy


def test_cpu_info_reads_the_first_cpu(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 bmi2\n\n"
                    "processor\t: 1\nvendor_id\t: GenuineIntel\nflags\t\t: fpu\n")
    assert cpu_info(str(info)) == ("AuthenticAMD", frozenset({"fpu", "avx2", "bmi2"}))
    assert cpu_info(str(tmp_path / "gone")) == ("", frozenset())
