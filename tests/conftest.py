"""Shared fixtures: real binaries compiled per test, and glibc's own loader as the oracle."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from unveil.cli.host import detect_host
from unveil.config import ScanConfig
from unveil.loader.glibc import GlibcLoader, load_cache
from unveil.loader.store import BinaryStore
from unveil.sources.fs import HostFS

RTLD = "/lib64/ld-linux-x86-64.so.2"
_ADDR = re.compile(r" \(0x[0-9a-f]+\)$")


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


class Builder:
    """Compiles tiny C programs and libraries into a test's directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def lib(self, path: str, *, soname: str | None = None, needs: Sequence[str] = (),
            rpath: str | None = None, runpath: str | None = None, link: Sequence[str] = (),
            extra: Sequence[str] = (), code: str | None = None) -> Path:
        out = self.root / path
        out.parent.mkdir(parents=True, exist_ok=True)
        src = out.with_suffix(out.suffix + ".c")
        src.write_text(code or f"int f_{abs(hash(path)) % 100000}(void) {{ return 1; }}\n")
        args = ["gcc", "-shared", "-fPIC", "-o", str(out), str(src), "-Wl,--no-as-needed"]
        soname = out.name if soname is None else soname
        if soname:
            args.append(f"-Wl,-soname,{soname}")
        args += self._link(needs, rpath, runpath, link)
        args += list(extra)
        subprocess.run(args, check=True, capture_output=True)
        return out

    def exe(self, path: str, *, needs: Sequence[str] = (), rpath: str | None = None,
            runpath: str | None = None, link: Sequence[str] = (),
            extra: Sequence[str] = ()) -> Path:
        out = self.root / path
        out.parent.mkdir(parents=True, exist_ok=True)
        src = out.with_name(out.name + ".c")
        src.write_text("int main(void) { return 0; }\n")
        args = ["gcc", "-o", str(out), str(src), "-Wl,--no-as-needed"]
        args += self._link(needs, rpath, runpath, link)
        args += list(extra)
        subprocess.run(args, check=True, capture_output=True)
        return out

    @staticmethod
    def _link(needs: Sequence[str], rpath: str | None, runpath: str | None,
              link: Sequence[str]) -> list[str]:
        args: list[str] = []
        for n in needs:
            # Link against an exact file, recording its SONAME (or path) as DT_NEEDED.
            args.append(n)
        args += list(link)
        if rpath is not None:
            args += [f"-Wl,-rpath,{rpath}", "-Wl,--disable-new-dtags"]
        if runpath is not None:
            args += [f"-Wl,-rpath,{runpath}", "-Wl,--enable-new-dtags"]
        if rpath is None and runpath is None:
            args.append("-Wl,--disable-new-dtags")
        args.append("-Wl,--allow-shlib-undefined")
        return args


@pytest.fixture
def build(tmp_path: Path) -> Builder:
    if not have("gcc"):
        pytest.skip("gcc is needed to build fixtures")
    return Builder(tmp_path)


def oracle_ldd(path: str, *, cwd: str | None = None, env: dict[str, str] | None = None) -> \
        tuple[int, list[str], str]:
    """glibc's trace mode (what ldd runs), load addresses stripped."""
    e = {"LD_TRACE_LOADED_OBJECTS": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if env:
        e.update(env)
    p = subprocess.run([RTLD, path], capture_output=True, text=True, env=e, cwd=cwd,
                       timeout=60, check=False)
    lines = [_ADDR.sub("", line) for line in p.stdout.splitlines()]
    return p.returncode, lines, p.stderr


def host_config(*, ld_library_path: str | None = None, cwd: str = "/") -> ScanConfig:
    cfg = detect_host("/", environ={}, use_ld_library_path=False)
    return replace(cfg, ld_library_path=ld_library_path, cwd=cwd)


def unveil_ldd(path: str, *, cwd: str = "/", ld_library_path: str | None = None,
               ld_preload: str | None = None,
               warnings: list[str] | None = None) -> tuple[list[str], str | None]:
    cfg = host_config(ld_library_path=ld_library_path, cwd=cwd)
    fs = HostFS("/")
    store = BinaryStore(fs)
    cache, _ = load_cache(fs, store, cfg.glibc)
    loader = GlibcLoader(fs, cfg.glibc, store, cache=cache, ld_library_path=ld_library_path,
                         cwd=cwd)
    r = loader.load(path, loader.preloads(ld_preload))
    if warnings is not None:
        warnings.extend(r.warnings)
    return r.ldd_lines(), r.fatal


OracleCheck = Callable[..., list[str]]


@pytest.fixture
def agree() -> OracleCheck:
    """Assert unveil and ld.so agree line for line; returns the lines."""

    def check(path: str, *, cwd: str = "/", ld_library_path: str | None = None,
              ld_preload: str | None = None) -> list[str]:
        env = {"LD_LIBRARY_PATH": ld_library_path} if ld_library_path is not None else {}
        if ld_preload is not None:
            env["LD_PRELOAD"] = ld_preload
        rc, expected, stderr = oracle_ldd(path, cwd=cwd, env=env)
        warnings: list[str] = []
        got, fatal = unveil_ldd(path, cwd=cwd, ld_library_path=ld_library_path,
                                ld_preload=ld_preload, warnings=warnings)
        if rc != 0:
            assert fatal is not None, f"ld.so failed ({stderr.strip()}) but unveil did not"
            assert fatal in stderr, (fatal, stderr)
            return []
        assert fatal is None, fatal
        assert got == expected
        # what ld.so prints and goes on after (a preload it cannot load, a symbol version a
        # library lacks), line for line
        assert warnings == stderr.splitlines()
        return got

    return check
