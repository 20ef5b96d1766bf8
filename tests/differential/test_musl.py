"""musl rules on fixtures built with musl-gcc, against musl's own loader (``--list``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from unveil.config import MuslPlatform
from unveil.loader.musl import MuslLoader
from unveil.loader.store import BinaryStore
from unveil.sources.fs import HostFS

LDSO = "/lib/ld-musl-x86_64.so.1"
pytestmark = pytest.mark.skipif(
    not (shutil.which("musl-gcc") and os.path.exists(LDSO)),
    reason="musl and musl-tools are needed (.ci/run installs them)")


class Musl:
    def __init__(self, root: Path) -> None:
        self.root = root

    def lib(self, path: str, *, needs: tuple[Path, ...] = (), rpath: str | None = None,
            runpath: str | None = None) -> Path:
        return self._cc(path, True, needs, rpath, runpath)

    def exe(self, path: str, *, needs: tuple[Path, ...] = (), rpath: str | None = None,
            runpath: str | None = None) -> Path:
        return self._cc(path, False, needs, rpath, runpath)

    def _cc(self, path: str, shared: bool, needs: tuple[Path, ...], rpath: str | None,
            runpath: str | None) -> Path:
        out = self.root / path
        out.parent.mkdir(parents=True, exist_ok=True)
        src = out.with_name(out.name + ".c")
        src.write_text("int main(void){return 0;}\n" if not shared else
                       f"int f{abs(hash(path)) % 10000}(void){{return 0;}}\n")
        args = ["musl-gcc", "-o", str(out), str(src), "-Wl,--no-as-needed"]
        if shared:
            args += ["-shared", "-fPIC", f"-Wl,-soname,{out.name}"]
        args += [str(n) for n in needs]
        if rpath is not None:
            args += [f"-Wl,-rpath,{rpath}", "-Wl,--disable-new-dtags"]
        if runpath is not None:
            args += [f"-Wl,-rpath,{runpath}", "-Wl,--enable-new-dtags"]
        subprocess.run(args, check=True, capture_output=True)
        return out


@pytest.fixture
def musl(tmp_path: Path) -> Musl:
    return Musl(tmp_path)


def _oracle(path: str, cwd: str, env: dict[str, str] | None = None) -> tuple[list[str], str]:
    p = subprocess.run([LDSO, "--list", path], capture_output=True, text=True, cwd=cwd,
                       env=env or {}, check=False, timeout=60)
    lines = [line.split(" (0x")[0] for line in p.stdout.splitlines()]
    return lines, p.stderr


def _agree(path: str, cwd: str = "/", llp: str | None = None,
           preload: str | None = None) -> list[str]:
    env = {"LD_LIBRARY_PATH": llp} if llp is not None else {}
    if preload is not None:
        env["LD_PRELOAD"] = preload
    expected, stderr = _oracle(path, cwd, env)
    fs = HostFS("/")
    r = MuslLoader(fs, MuslPlatform(), BinaryStore(fs), ld_library_path=llp,
                   cwd=cwd).load(path, preload)
    assert r.ldd_lines() == expected
    for e in r.errors:
        assert e in stderr
    return expected


def test_runpath_is_inherited(musl: Musl) -> None:
    leaf = musl.lib("deep/libleaf.so")
    mid = musl.lib("mid/libmid.so", needs=(leaf,))
    exe = musl.exe("bin/prog", needs=(mid,), runpath=f"{mid.parent}:{leaf.parent}")
    assert f"\tlibleaf.so => {leaf}" in _agree(str(exe))


def test_ld_library_path_first(musl: Musl) -> None:
    a = musl.lib("a/libx.so")
    b = musl.lib("b/libx.so")
    exe = musl.exe("bin/prog", needs=(a,), rpath=str(a.parent))
    assert f"\tlibx.so => {b}" in _agree(str(exe), llp=str(b.parent))


def test_origin_relative_main(musl: Musl) -> None:
    lib = musl.lib("pkg/lib/libo.so")
    exe = musl.exe("pkg/bin/prog", needs=(lib,), runpath="$ORIGIN/../lib")
    _agree("./prog", cwd=str(exe.parent))
    _agree(str(exe))


def test_missing_and_invalid_stop_the_search(musl: Musl, tmp_path: Path) -> None:
    good = musl.lib("good/libg.so")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "libg.so").write_text("not an ELF file")
    gone = musl.lib("gone/libgone.so")
    exe = musl.exe("bin/prog", needs=(good, gone), rpath=f"{bad}:{good.parent}")
    gone.unlink()
    lines = _agree(str(exe))
    assert not any("libg.so" in line for line in lines)


def test_reserved_names_are_musl(musl: Musl) -> None:
    exe = musl.exe("bin/prog")
    assert _agree(str(exe)) == [f"\t{LDSO}", f"\tlibc.so => {LDSO}"]


def test_rpath_with_another_token_is_dropped_whole(musl: Musl) -> None:
    """fixup_rpath: a '$' that does not start $ORIGIN drops the whole RPATH, its literal
    directories too."""
    lib = musl.lib("b/libx.so")
    exe = musl.exe("bin/prog", needs=(lib,), rpath=f"$LIB/nowhere:{lib.parent}")
    assert not any(line.startswith("\tlibx.so => /") for line in _agree(str(exe)))


def test_attempts_put_each_verdict_on_its_candidate(musl: Musl, tmp_path: Path) -> None:
    """The trail ``unveil why`` shows: the absent directory absent, the file found accepted
    (and a file that cannot load marked invalid, not the candidate before it)."""
    lib = musl.lib("b/libx.so")
    exe = musl.exe("bin/prog", needs=(lib,), rpath=f"{tmp_path}/nonexist:{lib.parent}")
    fs = HostFS("/")
    r = MuslLoader(fs, MuslPlatform(), BinaryStore(fs)).load(str(exe))
    res = next(x for x in r.resolutions if x.request == "libx.so")
    assert [(a.path, a.verdict.value) for a in res.attempts] == [
        (f"{tmp_path}/nonexist/libx.so", "absent"), (f"{lib.parent}/libx.so", "accepted")]
    (lib.parent / "libx.so").write_text("not an ELF file")
    r = MuslLoader(fs, MuslPlatform(), BinaryStore(fs)).load(str(exe))
    res = next(x for x in r.resolutions if x.request == "libx.so")
    assert [(a.path, a.verdict.value) for a in res.attempts] == [
        (f"{tmp_path}/nonexist/libx.so", "absent"), (f"{lib.parent}/libx.so", "invalid")]


def test_ld_preload(musl: Musl, tmp_path: Path) -> None:
    """load_preload: names split at white space and colons, each loaded as load_library(name,
    0) — a path as given, a bare name in LD_LIBRARY_PATH then the system path, never an
    RPATH — listed after the loader line; what fails is skipped silently, what is loaded
    already loads nothing more."""
    pre = musl.lib("pre/libp.so", needs=(musl.lib("pre/libpdep.so"),))
    other = musl.lib("other/libq.so")
    exe = musl.exe("bin/prog", needs=(other,), rpath=f"{other.parent}:{pre.parent}")
    lines = _agree(str(exe), preload=f"{pre} libnone.so:libq.so", llp=str(other.parent))
    assert lines[1] == f"\t{pre} => {pre}"
    _agree(str(exe), preload="libp.so", llp=str(pre.parent))
    _agree(str(exe), preload="libp.so")  # not in LD_LIBRARY_PATH nor the system path
    bad = tmp_path / "bad.so"
    bad.write_text("not ELF")
    _agree(str(exe), preload=f"{bad} {pre}")


def test_ld_preload_of_musl_itself_and_of_a_hard_link(musl: Musl, tmp_path: Path) -> None:
    """A preload that names musl (any lib{c,m,...}. name) is listed there, under that name,
    once per family; a hard link of a loaded library is that library (st_dev/st_ino)."""
    lib = musl.lib("lib/libfoo.so")
    (tmp_path / "hl").mkdir()
    os.link(lib, tmp_path / "hl" / "libfoo.so")
    exe = musl.exe("bin/prog", needs=(lib,), rpath=str(lib.parent))
    lines = _agree(str(exe), preload="libc.musl-x86_64.so.1:libm.so.6")
    assert lines[1] == f"\tlibc.musl-x86_64.so.1 => {LDSO}"
    _agree(str(exe), preload=f"libc.so:{lib}")
    _agree(str(exe), preload=f"{lib}:{tmp_path}/hl/libfoo.so")
    _agree(str(exe), preload=f"{lib}\x1fX")  # not white space to C's isspace: one name
