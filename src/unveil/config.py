"""Everything the host or the user tells a scan.

A scan never reads the host by accident: the root it resolves against, the loader's
environment (``LD_LIBRARY_PATH``), the CPU's hwcaps levels and the working directory all
enter here, explicitly.  :func:`unveil.cli.host.detect_host` fills them in from the machine
unveil runs on, for the CLI and for API users who want exactly that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "MANYLINUX_POLICY_LIBS",
    "MUSLLINUX_POLICY_LIBS",
    "GlibcPlatform",
    "MuslPlatform",
    "ScanConfig",
    "x86_64_legacy_hwcaps",
]

#: The libraries every manylinux policy lets a wheel take from the system (PEP 600 and the
#: auditwheel policy file, common to manylinux1 ... manylinux_2_39 on x86_64).
MANYLINUX_POLICY_LIBS: frozenset[str] = frozenset({
    "libgcc_s.so.1", "libstdc++.so.6", "libm.so.6", "libdl.so.2", "librt.so.1",
    "libc.so.6", "libnsl.so.1", "libutil.so.1", "libpthread.so.0", "libresolv.so.2",
    "libX11.so.6", "libXext.so.6", "libXrender.so.1", "libICE.so.6", "libSM.so.6",
    "libGL.so.1", "libgobject-2.0.so.0", "libgthread-2.0.so.0", "libglib-2.0.so.0",
    "libz.so.1", "libexpat.so.1", "ld-linux-x86-64.so.2", "ld-linux.so.2",
    "ld-linux-aarch64.so.1", "libcrypt.so.1", "libanl.so.1", "libBrokenLocale.so.1",
    "libmvec.so.1", "libnss_compat.so.2", "libnss_dns.so.2", "libnss_files.so.2",
    "libnss_hesiod.so.2", "libthread_db.so.1", "libc_malloc_debug.so.0",
})

#: Musl's loader names, allowed by every musllinux policy.
MUSLLINUX_POLICY_LIBS: frozenset[str] = frozenset({
    "libc.so", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libgcc_s.so.1",
    "libstdc++.so.6", "libz.so.1",
    "ld-musl-x86_64.so.1", "ld-musl-aarch64.so.1", "ld-musl-i386.so.1",
})


def x86_64_legacy_hwcaps(flags: frozenset[str], vendor: str) -> tuple[str, ...]:
    """The legacy hwcaps names glibc < 2.37 derives from the CPU, in its order.

    ``tls`` always; the AT_PLATFORM glibc substitutes (``haswell`` or ``xeon_phi``);
    ``avx512_1`` when AVX-512 F/CD/BW/DQ/VL are usable on an Intel CPU; ``x86_64`` always.
    """
    out = ["tls"]
    platform = x86_64_platform(flags, vendor)
    if platform != "x86_64":
        out.append(platform)
    if vendor == INTEL and platform != "xeon_phi" and {
            "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        out.append("avx512_1")
    out.append("x86_64")
    return tuple(out)


#: the CPUID vendor string of Intel's CPUs (``vendor_id`` in /proc/cpuinfo)
INTEL = "GenuineIntel"


def x86_64_platform(flags: frozenset[str], vendor: str) -> str:
    """``$PLATFORM`` as glibc sets it on x86-64: on an Intel CPU (VENDOR, CPUID's vendor
    string) it replaces the kernel's AT_PLATFORM with ``xeon_phi`` or ``haswell`` by the
    features it has; on any other (AMD, Hygon, Zhaoxin) the kernel's ``x86_64`` stays."""
    if vendor != INTEL:
        return "x86_64"
    if {"avx512cd", "avx512er", "avx512pf"} <= flags:
        return "xeon_phi"
    if {"avx2", "bmi1", "bmi2", "abm", "movbe", "popcnt", "fma"} <= flags:
        return "haswell"
    return "x86_64"


def x86_64_hwcaps_levels(flags: frozenset[str]) -> tuple[str, ...]:
    """glibc-hwcaps subdirectories the CPU supports, best first (x86-64 psABI levels)."""
    v2 = {"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}
    v3 = v2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
    v4 = v3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
    out = []
    for name, need in (("x86-64-v4", v4), ("x86-64-v3", v3), ("x86-64-v2", v2)):
        if need <= flags:
            out.append(name)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class GlibcPlatform:
    """Facts about the target's glibc loader that are not in any file it loads.

    The defaults describe Debian/Ubuntu x86-64 (multiarch) with no hwcaps subdirectories;
    :func:`unveil.cli.host.detect_host` reads the real CPU levels.
    """

    machine: int = 62
    bits: int = 64
    little_endian: bool = True
    lib: str = "lib/x86_64-linux-gnu"
    platform: str = "x86_64"
    trusted_dirs: tuple[str, ...] = (
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib",
    )
    hwcaps: tuple[str, ...] = ()
    legacy_hwcaps: tuple[str, ...] = ()
    cache_flags: tuple[int, ...] = (0x0303,)
    cache_path: str = "/etc/ld.so.cache"
    conf_path: str = "/etc/ld.so.conf"
    interpreter: str = "/lib64/ld-linux-x86-64.so.2"
    vdso: str | None = "linux-vdso.so.1"

    def legacy_subdirs(self) -> tuple[str, ...]:
        """Every legacy hwcaps subdirectory in glibc's search order (all subsets of the
        names, largest mask first), without the empty one."""
        names = self.legacy_hwcaps
        n = len(names)
        out = []
        for mask in range((1 << n) - 1, 0, -1):
            out.append("/".join(names[i] for i in range(n) if mask & (1 << (n - 1 - i))))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class MuslPlatform:
    """Facts about the target's musl loader (``ldso/dynlink.c``)."""

    machine: int = 62
    bits: int = 64
    arch: str = "x86_64"
    ldso: str = "/lib/ld-musl-x86_64.so.1"
    default_path: str = "/lib:/usr/local/lib:/usr/lib"
    #: Names musl resolves to itself: the reserved ``lib{c,pthread,rt,m,dl,util,xnet}.so*``
    #: family, and the libc SONAME Alpine (and the musllinux policy) use, which is a link to
    #: the loader there.
    self_names: tuple[str, ...] = ("libc.musl-x86_64.so.1",)

    @property
    def path_file(self) -> str:
        """``/etc/ld-musl-<arch>.path``, relative to the loader's grandparent directory."""
        parts = self.ldso.split("/")
        prefix = "/".join(parts[:-2]) if len(parts) > 2 else ""
        return f"{prefix}/etc/ld-musl-{self.arch}.path"


#: Linux architectures by ELF ``e_machine`` and class: (Debian multiarch tuple, glibc's
#: ``$PLATFORM``, the ld.so.cache flag word of its libraries (``FLAG_ELF_LIBC6`` and the
#: arch flag from glibc's ``ldconfig.h``), the glibc interpreter, musl's arch name).
LINUX_ARCHES: dict[tuple[int, int], tuple[str, str, int, str, str]] = {
    (62, 64): ("x86_64-linux-gnu", "x86_64", 0x0303, "/lib64/ld-linux-x86-64.so.2", "x86_64"),
    (3, 32): ("i386-linux-gnu", "i686", 0x0003, "/lib/ld-linux.so.2", "i386"),
    (183, 64): ("aarch64-linux-gnu", "aarch64", 0x0A03, "/lib/ld-linux-aarch64.so.1",
                "aarch64"),
    (40, 32): ("arm-linux-gnueabihf", "v7l", 0x0903, "/lib/ld-linux-armhf.so.3", "armhf"),
    (21, 64): ("powerpc64le-linux-gnu", "power8", 0x0503, "/lib64/ld64.so.2", "powerpc64le"),
    (22, 64): ("s390x-linux-gnu", "z13", 0x0403, "/lib/ld64.so.1", "s390x"),
    (243, 64): ("riscv64-linux-gnu", "riscv64", 0x1003, "/lib/ld-linux-riscv64-lp64d.so.1",
                "riscv64"),
}


def glibc_platform_for(machine: int, bits: int, little_endian: bool) -> GlibcPlatform | None:
    """A Debian-style (multiarch) glibc system of another architecture, for binaries built
    for it (an aarch64 wheel scanned on x86-64): no hwcaps subdirectories (the CPU is not
    known), its triplet's directories searched.  None for an unknown architecture."""
    arch = LINUX_ARCHES.get((machine, bits))
    if arch is None:
        return None
    triplet, platform, flag, interp, _musl = arch
    return GlibcPlatform(machine=machine, bits=bits, little_endian=little_endian,
                         lib=f"lib/{triplet}", platform=platform,
                         trusted_dirs=(f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib",
                                       "/usr/lib"),
                         cache_flags=(flag,), interpreter=interp)


def musl_platform_for(machine: int, bits: int) -> MuslPlatform | None:
    """musl's loader facts for another architecture (None: unknown)."""
    arch = LINUX_ARCHES.get((machine, bits))
    if arch is None:
        return None
    name = arch[4]
    return MuslPlatform(machine=machine, bits=bits, arch=name,
                        ldso=f"/lib/ld-musl-{name}.so.1",
                        self_names=(f"libc.musl-{name}.so.1",))


Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """How to scan: the target system and the loader's environment.

    ``root`` is the target system's ``/`` (a container rootfs or sysroot).
    ``ld_library_path`` is ``None`` when the variable is unset (an empty string is the same:
    ld.so ignores it; an empty *entry*, as in ``":/opt"``, is the current directory).
    ``cwd`` is the working directory relative paths are taken from.  ``progress`` is called
    as ``progress(done, total, what)``.
    ``workers`` threads parse binaries (inflating wheel members releases the GIL).
    ``skip_suffixes``: files with these endings are not opened to look for binary magic
    (reading four bytes of each of the 21,000 files of a large environment took 0.36 s);
    pass an empty set to check every file.
    """

    root: str = "/"
    ld_library_path: str | None = None
    #: ``LD_PRELOAD`` as ``unveil ldd`` passes it to the glibc loader (a scan of a package
    #: asks what the package needs, so it preloads nothing).
    ld_preload: str | None = None
    cwd: str = "/"
    glibc: GlibcPlatform = field(default_factory=GlibcPlatform)
    musl: MuslPlatform = field(default_factory=MuslPlatform)
    #: force "glibc" or "musl" for ELF files (None: decided per binary).
    linux_libc: str | None = None
    #: Mach-O slice to resolve (None: from the wheel's platform tag, arm64 for universal2).
    macos_arch: str | None = None
    #: the executable hosting Mach-O images (the Python interpreter for extensions).
    macos_executable: str | None = (
        "/Library/Frameworks/Python.framework/Versions/Current/bin/python3")
    python_version: str = "3.11"
    policy_libs: frozenset[str] = MANYLINUX_POLICY_LIBS
    max_files: int = 1_000_000
    workers: int = 2
    skip_suffixes: frozenset[str] = frozenset({
        ".py", ".pyc", ".pyi", ".pyx", ".pxd", ".txt", ".md", ".rst", ".json", ".toml",
        ".yaml", ".yml", ".cfg", ".ini", ".h", ".hpp", ".hh", ".c", ".cc", ".cpp", ".cu",
        ".cuh", ".html", ".css", ".js", ".csv", ".typed", ".pem", ".png", ".jpg", ".svg",
    })
    #: identify the upstream project and version of binaries (banners, notes, owners).
    identify: bool = True
    #: look for dynamic loading (ctypes, cffi, koffi, ffi_lib, .note.dlopen...).
    dynload: bool = True
    #: compute SHA-256 of every binary (needed for SBOMs; costs reading whole files).
    hashes: bool = False
    progress: Progress | None = None
