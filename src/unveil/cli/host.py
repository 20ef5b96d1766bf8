"""Facts about the machine unveil runs on, read only when asked for.

This is the one module that reads the host (``os.environ``, ``/proc/cpuinfo``): the CLI
calls :func:`detect_host` and passes the result down as an explicit
:class:`~unveil.config.ScanConfig`; API users may call it too, or build their own.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from unveil.config import (
    GlibcPlatform,
    ScanConfig,
    x86_64_hwcaps_levels,
    x86_64_legacy_hwcaps,
    x86_64_platform,
)
from unveil.errors import UnveilError
from unveil.sources.fs import HostFS, Kind, SymlinkLoop

__all__ = ["detect_host", "glibc_version", "cpu_info"]

_GLIBC_BANNER = re.compile(rb"GNU C Library [^\n]*?version (\d+)\.(\d+)")


def cpu_info(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, frozenset[str]]:
    """The CPU's vendor string (``GenuineIntel``, ``AuthenticAMD``) and feature flags, as
    the kernel lists them for its first CPU ('' and none when the file cannot be read)."""
    vendor = ""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    vendor = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    return vendor, frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return vendor, frozenset()


def glibc_version(root: str, lib_dirs: tuple[str, ...]) -> tuple[int, int] | None:
    """The glibc version of the target root, from libc.so.6's banner (read, not run)."""
    fs = HostFS(root)
    for d in lib_dirs:
        try:
            real = fs.resolve(f"{d}/libc.so.6")
            if real is None:
                continue
            blob = fs.open_blob(real)
        except UnveilError:
            continue
        try:
            data = blob.read(0, min(blob.size, 8 << 20))
        except UnveilError:
            continue
        finally:
            blob.close()
        m = _GLIBC_BANNER.search(data)
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


def _kind(fs: HostFS, path: str) -> Kind | None:
    try:
        return fs.kind(path)
    except SymlinkLoop:
        return None


def _platform_for(root: str, machine: str, vendor: str, flags: frozenset[str]
                  ) -> GlibcPlatform:
    fs = HostFS(root)
    if machine in ("x86_64", "amd64"):
        multiarch = _kind(fs, "/usr/lib/x86_64-linux-gnu") is Kind.DIR
        if multiarch:
            base = GlibcPlatform()
        else:
            base = GlibcPlatform(lib="lib64", trusted_dirs=("/lib64", "/usr/lib64"))
        version = glibc_version(root, base.trusted_dirs)
        legacy = x86_64_legacy_hwcaps(flags, vendor) if version and version < (2, 37) else ()
        hw = x86_64_hwcaps_levels(flags) if version is None or version >= (2, 33) else ()
        return GlibcPlatform(
            lib=base.lib, trusted_dirs=base.trusted_dirs, platform=x86_64_platform(flags, vendor),
            hwcaps=hw, legacy_hwcaps=legacy)
    if machine in ("aarch64", "arm64"):
        multiarch = _kind(fs, "/usr/lib/aarch64-linux-gnu") is Kind.DIR
        dirs = (("/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib", "/usr/lib")
                if multiarch else ("/lib64", "/usr/lib64"))
        return GlibcPlatform(machine=183, lib="lib/aarch64-linux-gnu" if multiarch else "lib64",
                             platform="aarch64", trusted_dirs=dirs, cache_flags=(0x0A03,),
                             interpreter="/lib/ld-linux-aarch64.so.1")
    return GlibcPlatform()


def _machine() -> str:
    """This machine's architecture name, as ``uname -m`` prints it (``platform.machine()``
    returns the same on POSIX; importing :mod:`platform` cost ~8 ms of start-up)."""
    uname = getattr(os, "uname", None)
    if uname is not None:
        return str(uname().machine)
    import platform  # noqa: PLC0415 - not POSIX (Windows): only there

    return platform.machine()


def detect_host(
    root: str = "/",
    environ: Mapping[str, str] | None = None,
    *,
    use_ld_library_path: bool = True,
) -> ScanConfig:
    """A configuration describing this machine (CPU, environment, working directory), with
    ``root`` as the target system."""
    env = os.environ if environ is None else environ
    vendor, flags = cpu_info()
    glibc = _platform_for(root, _machine(), vendor, flags)
    llp = env.get("LD_LIBRARY_PATH") if use_ld_library_path else None
    preload = env.get("LD_PRELOAD") if use_ld_library_path else None
    cwd = os.getcwd() if root == "/" else "/"
    return ScanConfig(root=root, ld_library_path=llp, ld_preload=preload, cwd=cwd,
                      glibc=glibc)
