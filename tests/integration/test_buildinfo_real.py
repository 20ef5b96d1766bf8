"""Go build info and cargo-auditable data in real released binaries (``-m network``).

Downloaded once into ``~/.cache/unveil-tests/buildinfo``:

* go-task-bin 3.54.0 (PyPI; ``task``, Go, module mode) for Linux (ELF) and Windows (PE),
  and 3.44.1 for macOS arm64 (Mach-O), read straight from the wheels (members inflated on
  the fly, as a scan reads them);
* restic 0.14.0 from Debian 12: built in GOPATH mode, so only the toolchain is recorded;
  Debian's ``Built-Using`` field names the toolchain package, an independent oracle;
* @esbuild/linux-x64 0.28.2 (npm): its build info header is stripped, the framed module
  information is not;
* uv 0.13.9 (PyPI; Rust, built with cargo-auditable) and ruff 0.17.6 (Rust, no
  ``.dep-v0``: only the rustc version in ``.comment``).

Oracles are independent of unveil's readers: sections are cut out with pyelftools, pefile
and macholib, and the module lines are read from the raw bytes with a regex (what
``strings`` shows), the crate list by zlib and json directly.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from unveil.formats.blob import Blob, BytesBlob
from unveil.formats.elf import parse_elf
from unveil.formats.macho import parse_macho
from unveil.formats.pe import parse_pe
from unveil.identify.buildinfo import buildinfo_components
from unveil.model import Component
from unveil.sources.zipread import ZipArchive

pytestmark = pytest.mark.network

elffile = pytest.importorskip("elftools.elf.elffile")
pefile = pytest.importorskip("pefile")
macholib_macho = pytest.importorskip("macholib.MachO")
macholib_mach_o = pytest.importorskip("macholib.mach_o")

CACHE = Path.home() / ".cache" / "unveil-tests" / "buildinfo"
WHEELS = {
    "go_task_bin-3.54.0-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl":
        ("go-task-bin==3.54.0", None),
    "go_task_bin-3.54.0-py3-none-win_amd64.whl": ("go-task-bin==3.54.0", "win_amd64"),
    "go_task_bin-3.44.1-py3-none-macosx_11_0_arm64.whl":
        ("go-task-bin==3.44.1", "macosx_11_0_arm64"),
    "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": ("uv==0.13.9", None),
    "ruff-0.17.6-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl":
        ("ruff==0.17.6", None),
}
DEB = "restic=0.14.0-1+b5"
NPM = "@esbuild/linux-x64@0.28.2"
_DEP = re.compile(rb"\ndep\t([^\t\n]+)\t([^\t\n]+)")


def _fetch(cmd: list[str]) -> None:
    if shutil.which(cmd[0]) is None:
        pytest.skip(f"{cmd[0]} is not installed")
    p = subprocess.run(cmd, cwd=CACHE, capture_output=True, text=True, check=False,
                       timeout=600)
    if p.returncode != 0:
        pytest.skip(f"{' '.join(cmd)} failed: {p.stderr[-300:]}")


@pytest.fixture(scope="module")
def cache() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    for name, (req, platform) in WHEELS.items():
        if not (CACHE / name).exists():
            extra = ["--platform", platform] if platform else []
            _fetch(["pip", "download", "--no-deps", "--only-binary=:all:", *extra, "-d",
                    str(CACHE), req])
    if not list(CACHE.glob("restic_*.deb")):
        _fetch(["apt-get", "download", DEB])
    if not list(CACHE.glob("esbuild-linux-x64-*.tgz")):
        _fetch(["npm", "pack", NPM])
    return CACHE


def _member(wheel: Path, suffix: str) -> tuple[Blob, bytes]:
    """The member as a scan reads it (inflated on the fly), and its bytes for the oracle."""
    z = ZipArchive(str(wheel))
    member = next(m for m in z.members if m.name.endswith(suffix))
    blob = z.blob(member)
    return blob, blob.read(0, blob.size)


def _components(blob: Blob) -> tuple[tuple[Component, ...], tuple[str, ...]]:
    head = blob.read(0, 4)
    parse = parse_elf if head == b"\x7fELF" else parse_pe if head[:2] == b"MZ" else parse_macho
    return buildinfo_components(blob, parse(blob)[0])


def _elf_section(data: bytes, name: str) -> bytes:
    sec = elffile.ELFFile(io.BytesIO(data)).get_section_by_name(name)
    assert sec is not None, name
    return bytes(sec.data())


def _pe_section(data: bytes, name: bytes) -> bytes:
    pe = pefile.PE(data=data, fast_load=True)
    sec = next(s for s in pe.sections if s.Name.rstrip(b"\0") == name)
    return bytes(sec.get_data())


def _macho_section(data: bytes, name: bytes) -> bytes:
    with_file = CACHE / "macho-oracle.bin"
    with_file.write_bytes(data)
    m = macholib_macho.MachO(str(with_file))
    for cmd in m.headers[0].commands:
        if cmd[0].cmd == macholib_mach_o.LC_SEGMENT_64:
            for sect in cmd[2]:
                if sect.sectname.rstrip(b"\0") == name:
                    return data[sect.offset:sect.offset + sect.size]
    raise AssertionError(name)


def _go_oracle(section: bytes) -> tuple[str, set[tuple[str, str]]]:
    version = re.search(rb"go1\.\d+(?:\.\d+)?", section)
    assert version is not None
    return version.group().decode(), {(p.decode(), v.decode())
                                      for p, v in _DEP.findall(section)}


def _check_go(comps: tuple[Component, ...], section: bytes, main: tuple[str, str]) -> None:
    version, deps = _go_oracle(section)
    assert (comps[0].name, comps[0].version) == main
    assert comps[1].name == "stdlib"
    assert comps[1].version == version.removeprefix("go")
    assert comps[1].purl == f"pkg:golang/stdlib@{comps[1].version}"
    assert {(c.name, c.version) for c in comps[2:]} == deps
    assert all(c.purl and c.purl.startswith("pkg:golang/") for c in comps)
    assert all(e.method == "go-buildinfo" and e.confidence == 0.95
               for c in comps for e in c.evidence)


def test_go_task_elf_pe_and_macho(cache: Path) -> None:
    blob, data = _member(cache / next(n for n in WHEELS if "3.54.0" in n and "linux" in n),
                         "scripts/task")
    comps, warnings = _components(blob)
    assert warnings == ()
    _check_go(comps, _elf_section(data, ".go.buildinfo"), ("github.com/go-task/task/v3",
                                                            "v3.54.0"))
    assert len(comps) > 100
    names = {c.name for c in comps}
    assert {"mvdan.cc/sh/v3", "gopkg.in/yaml.v3", "golang.org/x/sys"} <= names

    blob, data = _member(cache / next(n for n in WHEELS if "win_amd64" in n), "task.exe")
    win, warnings = _components(blob)
    assert warnings == ()
    _check_go(win, _pe_section(data, b".data"), ("github.com/go-task/task/v3", "v3.54.0"))
    # the same module graph less the modules only Unix builds link
    assert {c.name for c in win} < names

    blob, data = _member(cache / next(n for n in WHEELS if "macosx" in n), "scripts/task")
    mac, warnings = _components(blob)
    assert warnings == ()
    main = mac[0]
    assert main.version is not None
    assert main.version.startswith("v0.0.0-")  # a pseudo-version from the VCS stamp
    _check_go(mac, _macho_section(data, b"__go_buildinfo"),
              ("github.com/go-task/task/v3", main.version))


def test_debian_restic_gopath_build(cache: Path, tmp_path: Path) -> None:
    deb = next(cache.glob("restic_*.deb"))
    _fetch(["dpkg-deb", "-x", str(deb), str(tmp_path)])
    built_using = subprocess.run(["dpkg-deb", "-f", str(deb), "Built-Using"], check=True,
                                 capture_output=True, text=True).stdout
    m = re.search(r"golang-1\.\d+ \(= (\d+\.\d+\.\d+)-", built_using)
    assert m is not None
    data = (tmp_path / "usr/bin/restic").read_bytes()
    comps, warnings = _components(BytesBlob(data))
    assert [(c.name, c.version) for c in comps] == [
        ("github.com/restic/restic/cmd/restic", None), ("stdlib", m.group(1))]
    assert len(warnings) == 1
    assert "outside module mode" in warnings[0]


def test_esbuild_without_build_info_header(cache: Path) -> None:
    tgz = next(cache.glob("esbuild-linux-x64-*.tgz"))
    with tarfile.open(tgz) as t:
        f = t.extractfile("package/bin/esbuild")
        assert f is not None
        data = f.read()
    assert b"\xff Go buildinf:" not in data
    comps, warnings = _components(BytesBlob(data))
    assert warnings == ()
    versions = set(re.findall(rb"\x00go1\.\d+\.\d+\x00", data))
    assert len(versions) == 1
    by = {c.name: c for c in comps}
    assert by["github.com/evanw/esbuild"].version is None  # "(devel)"
    assert by["stdlib"].version == versions.pop().strip(b"\0").decode().removeprefix("go")
    assert by["stdlib"].evidence[0].detail.startswith("guess:")
    _v, deps = _go_oracle(data)
    assert {(c.name, c.version) for c in comps[2:]} == deps
    assert "golang.org/x/sys" in by


def test_uv_cargo_auditable(cache: Path) -> None:
    blob, data = _member(cache / next(n for n in WHEELS if n.startswith("uv-")),
                         "scripts/uv")
    comps, warnings = _components(blob)
    assert warnings == ()
    doc = json.loads(zlib.decompress(_elf_section(data, ".dep-v0")))
    expect = {(p["name"], p["version"]) for p in doc["packages"]}
    crates = [c for c in comps if c.evidence[0].method == "cargo-auditable"]
    assert {(c.name, c.version) for c in crates} == expect
    assert (crates[0].name, crates[0].version) == ("uv", "0.13.9")
    from_crates_io = {p["name"] for p in doc["packages"] if p["source"] == "crates.io"}
    assert {c.name for c in crates if c.purl} == from_crates_io
    assert len(from_crates_io) > 400
    rust = comps[-1]
    assert rust.name == "rust"
    assert f"rustc version {rust.version} " in _elf_section(data, ".comment").decode()


def test_ruff_rustc_only(cache: Path) -> None:
    blob, data = _member(cache / next(n for n in WHEELS if n.startswith("ruff-")),
                         "scripts/ruff")
    comps, warnings = _components(blob)
    assert warnings == ()
    assert b".dep-v0" not in data
    assert [c.name for c in comps] == ["rust"]
    assert f"rustc version {comps[0].version} " in _elf_section(data, ".comment").decode()
    assert comps[0].evidence[0].confidence == 0.4
