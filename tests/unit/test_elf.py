"""The ELF reader on real compiled files (checked against readelf) and on synthetic files of
every class and byte order."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Builder, have
from tests.unit.elfgen import make_elf
from unveil.errors import FormatError
from unveil.formats.blob import BytesBlob
from unveil.formats.elf import ElfFile, parse_elf


def _readelf_dynamic(path: Path) -> dict[str, list[str]]:
    out = subprocess.run(["readelf", "-dW", str(path)], capture_output=True, text=True,
                         check=True).stdout
    got: dict[str, list[str]] = {}
    for tag, val in re.findall(r"\((NEEDED|SONAME|RPATH|RUNPATH)\)\s+\S+ \S+: \[(.*)\]", out):
        got.setdefault(tag, []).append(val)
    return got


@pytest.mark.skipif(not have("readelf"), reason="readelf needed")
@pytest.mark.parametrize("dtags", ["rpath", "runpath"])
def test_compiled_library_matches_readelf(build: Builder, dtags: str) -> None:
    a = build.lib("x/liba.so.1")
    kw = {dtags: "$ORIGIN/../x:/opt/lib"}
    lib = build.lib("y/libb.so.2", needs=[str(a)], link=["-lz"], **kw)
    b, warnings = parse_elf(BytesBlob(lib.read_bytes()))
    assert warnings == ()
    ref = _readelf_dynamic(lib)
    assert list(b.needed) == ref["NEEDED"]
    assert b.soname == "libb.so.2"
    key = dtags.upper()
    got = b.rpath if dtags == "rpath" else b.runpath
    assert got is not None
    assert ":".join(got) == ref[key][0]
    assert (b.runpath if dtags == "rpath" else b.rpath) is None
    assert b.build_id is not None
    assert b.bits == 64
    assert b.little_endian


def test_executable_interpreter_and_versions(build: Builder) -> None:
    exe = build.exe("bin/prog")
    b, _ = parse_elf(BytesBlob(exe.read_bytes()))
    assert b.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert any(v.file == "libc.so.6" for v in b.version_needs)
    syms = ElfFile(BytesBlob(exe.read_bytes())).symbols()
    assert any(s.name == "__libc_start_main" and not s.defined and
               (s.version or "").startswith("GLIBC_") for s in syms)


@pytest.mark.skipif(not (have("as") and have("ld")), reason="binutils needed")
def test_elf32_from_binutils(tmp_path: Path) -> None:
    (tmp_path / "a.s").write_text(".globl g\ng: ret\n")
    subprocess.run(["as", "--32", "-o", str(tmp_path / "a.o"), str(tmp_path / "a.s")],
                   check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-shared", "-soname", "libthirty.so.2",
                    "-rpath", "/x", "-o", str(tmp_path / "lib.so"), str(tmp_path / "a.o")],
                   check=True)
    b, _ = parse_elf(BytesBlob((tmp_path / "lib.so").read_bytes()))
    assert (b.bits, b.machine, b.soname) == (32, 3, "libthirty.so.2")
    assert b.runpath == ("/x",) or b.rpath == ("/x",)


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("little", [True, False])
def test_synthetic_any_class_and_byte_order(bits: int, little: bool) -> None:
    data = make_elf(bits=bits, little=little, machine=22, needed=("libz.so.1", "libm.so.6"),
                    soname="libs390.so.1", runpath="$ORIGIN", interp="/lib/ld64.so.1")
    b, warnings = parse_elf(BytesBlob(data))
    assert warnings == ()
    assert (b.bits, b.little_endian, b.machine) == (bits, little, 22)
    assert b.needed == ("libz.so.1", "libm.so.6")
    assert b.soname == "libs390.so.1"
    assert b.runpath == ("$ORIGIN",)
    assert b.rpath is None
    assert b.interpreter == "/lib/ld64.so.1"


def test_package_and_dlopen_notes() -> None:
    pkg = json.dumps({"type": "deb", "os": "debian", "name": "zlib", "version": "1.3"}).encode()
    dl = json.dumps([{"soname": ["libfido2.so.1"], "feature": "fido2",
                      "priority": "suggested"}]).encode()
    data = make_elf(notes=((b"FDO", 0xCAFE1A7E, pkg + b"\0"), (b"FDO", 0x407C0C0A, dl + b"\0"),
                           (b"GNU", 3, bytes.fromhex("deadbeef"))))
    b, warnings = parse_elf(BytesBlob(data))
    assert warnings == ()
    assert dict(b.package_note or ()) == {"type": "deb", "os": "debian", "name": "zlib",
                                          "version": "1.3"}
    assert b.dlopen_notes[0].sonames == ("libfido2.so.1",)
    assert b.dlopen_notes[0].priority == "suggested"
    assert b.build_id == "deadbeef"


def test_invalid_note_json_is_a_warning() -> None:
    data = make_elf(notes=((b"FDO", 0x407C0C0A, b"[{not json\0"),))
    b, warnings = parse_elf(BytesBlob(data))
    assert b.dlopen_notes == ()
    assert any("not valid JSON" in w for w in warnings)


def test_static_file_has_no_dynamic(tmp_path: Path) -> None:
    data = bytearray(make_elf())
    b, _ = parse_elf(BytesBlob(bytes(data)))
    assert b.has_dynamic


@pytest.mark.parametrize("cut", [0, 3, 10, 40, 63, 100])
def test_truncated_is_a_format_error(cut: int) -> None:
    data = make_elf(needed=("libz.so.1",))[:cut]
    with pytest.raises(FormatError):
        parse_elf(BytesBlob(data))


def test_real_system_library_symbols_versions() -> None:
    path = Path("/lib/x86_64-linux-gnu/libz.so.1")
    if not path.exists():
        pytest.skip("libz not installed")
    f = ElfFile(BytesBlob(path.read_bytes()))
    b = f.binary()
    assert b.soname == "libz.so.1"
    syms = f.symbols()
    assert any(s.name == "deflate" and s.defined for s in syms)
    assert any(s.defined and (s.version or "").startswith("ZLIB_1.2") for s in syms)
    assert any(v.startswith("ZLIB_1.2") for v in b.version_defs)


def test_library_exporting_nothing_still_lists_its_imports(build: Builder) -> None:
    # GNU hash with no hashed symbol cannot count the undefined ones after symoffset.
    lib = build.lib("h/libhidden.so", code="static int f(void) { return 1; }\n"
                    "int (*keep)(void) = f;\n", extra=["-fvisibility=hidden"])
    f = ElfFile(BytesBlob(lib.read_bytes()))
    out = subprocess.run(["readelf", "--dyn-syms", "-W", str(lib)], capture_output=True,
                         text=True, check=True).stdout
    m = re.search(r"contains (\d+) entries", out)
    assert m is not None
    assert len(f.symbols()) == int(m.group(1)) - 1
