"""Go build info and cargo-auditable data: statically linked modules and crates.

Real ELF files are built here (gcc, objcopy, rustc) carrying the bytes the Go linker and
cargo-auditable write, assembled per their formats; PE, Mach-O and foreign-class ELF files
are written field by field.  Bad input (truncated headers, absurd lengths, zip bombs,
invalid JSON, cyclic graphs) must become warnings, never exceptions.
"""

from __future__ import annotations

import json
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Builder, have
from unveil.formats.blob import BytesBlob
from unveil.formats.elf import parse_elf
from unveil.identify.buildinfo import (
    GO_MAGIC,
    INFO_END,
    INFO_START,
    MAX_DEP_JSON,
    buildinfo_components,
    go_semver,
    parse_modinfo,
)
from unveil.model import Binary, BinaryFormat, Component

MODINFO = (
    "path\texample.com/tool/cmd/tool\n"
    "mod\texample.com/tool\tv1.2.3\th1:tool=\n"
    "dep\tgolang.org/x/sys\tv0.1.0\th1:sys=\n"
    "dep\tgithub.com/Old/lib\tv1.0.0\th1:old=\n"
    "=>\tgithub.com/new/lib\tv1.1.0\th1:new=\n"
    "dep\tgithub.com/pkg/errors\tv0.9.1\th1:err=\n"
    "=>\t../errors\t\t\n"
    "dep\tgithub.com/BurntSushi/toml\tv1.2.3+incompatible\th1:toml=\n"
    "build\t-compiler=gc\n"
    "build\t-ldflags=\"-s -w -X main.version=1.2.3\"\n"
    "build\tCGO_ENABLED=0\n"
    "build\tGOARCH=amd64\n"
    "build\tGOOS=linux\n"
    "build\tvcs.revision=0123abc\n"
)

PACKAGES = [
    {"name": "tool", "version": "0.3.0", "source": "local", "dependencies": [1, 2, 3],
     "root": True},
    {"name": "serde", "version": "1.0.200", "source": "crates.io", "dependencies": [3]},
    {"name": "cc", "version": "1.0.90", "source": "crates.io", "kind": "build"},
    {"name": "libc", "version": "0.2.150", "source": "crates.io"},
    {"name": "private", "version": "0.1.0", "source": "git"},
]


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def framed(text: str) -> bytes:
    return INFO_START + text.encode() + INFO_END


def go_inline(version: bytes = b"go1.22.4", modinfo: bytes | None = None) -> bytes:
    """The Go 1.18+ build info blob: header with flag 2, then two uvarint-prefixed strings."""
    mod = framed(MODINFO) if modinfo is None else modinfo
    return (GO_MAGIC + bytes([8, 2]) + bytes(16) + uvarint(len(version)) + version
            + uvarint(len(mod)) + mod)


def dep_v0(packages: object = None, *, raw: bytes | None = None) -> bytes:
    doc = {"packages": PACKAGES if packages is None else packages, "format": 1}
    return zlib.compress(json.dumps(doc).encode() if raw is None else raw)


def _binary(fmt: BinaryFormat, size: int = 0) -> Binary:
    return Binary(fmt, size, 64, True, 0, 0, 0, 0)


def scan(data: bytes, fmt: BinaryFormat | None = None
         ) -> tuple[tuple[Component, ...], tuple[str, ...]]:
    blob = BytesBlob(data)
    binary = parse_elf(blob)[0] if fmt is None else _binary(fmt, len(data))
    return buildinfo_components(blob, binary)


def by_name(comps: tuple[Component, ...]) -> dict[str, Component]:
    return {c.name: c for c in comps}


# --------------------------------------------------------------------------- fixtures


def _exe(build: Builder, name: str) -> Path:
    if not have("gcc"):
        pytest.skip("gcc is not installed")
    return build.exe(name)


def add_sections(build: Builder, name: str, sections: dict[str, bytes],
                 flags: str = "alloc,load,readonly,data", update: bool = False) -> bytes:
    """A real gcc executable with ``sections`` added (or, ``update``, replaced) by objcopy."""
    if not have("objcopy"):
        pytest.skip("objcopy is not installed")
    exe = _exe(build, name)
    args = ["objcopy"]
    for sec, data in sections.items():
        payload = build.root / f"{name}{sec}.bin"
        payload.write_bytes(data)
        if update:
            args += ["--update-section", f"{sec}={payload}"]
        else:
            args += ["--add-section", f"{sec}={payload}", "--set-section-flags",
                     f"{sec}={flags}", "--set-section-alignment", f"{sec}=16"]
    subprocess.run([*args, str(exe)], check=True, capture_output=True)
    return exe.read_bytes()


def c_array(name: str, section: str, data: bytes) -> str:
    body = ",".join(str(b) for b in data)
    return (f'__attribute__((section("{section}"), used, aligned(16)))\n'
            f"static const unsigned char {name}[{len(data)}] = {{{body}}};\n")


def gcc(build: Builder, name: str, source: str, *extra: str) -> bytes:
    if not have("gcc"):
        pytest.skip("gcc is not installed")
    src = build.root / f"{name}.c"
    src.write_text(source + "int main(void) { return 0; }\n")
    out = build.root / name
    subprocess.run(["gcc", "-o", str(out), str(src), *extra], check=True, capture_output=True)
    return out.read_bytes()


@pytest.fixture
def build(tmp_path: Path) -> Builder:
    return Builder(tmp_path)


# --------------------------------------------------------------------------- Go


def test_go_inline_build_info_in_a_real_elf(build: Builder) -> None:
    data = gcc(build, "go_inline", c_array("bi", ".go.buildinfo", go_inline()))
    comps, warnings = scan(data)
    assert warnings == ()
    names = [c.name for c in comps]
    # the main module first, then the toolchain, then the modules in file order
    assert names == ["example.com/tool", "stdlib", "golang.org/x/sys", "github.com/new/lib",
                     "github.com/pkg/errors", "github.com/BurntSushi/toml"]
    c = by_name(comps)
    assert c["example.com/tool"].version == "v1.2.3"
    assert c["example.com/tool"].purl == "pkg:golang/example.com/tool@v1.2.3"
    assert "vcs.revision=0123abc" in c["example.com/tool"].evidence[0].detail
    std = c["stdlib"]
    assert (std.version, std.purl) == ("1.22.4", "pkg:golang/stdlib@1.22.4")
    assert std.cpes == ("cpe:2.3:a:golang:go:1.22.4:*:*:*:*:*:*:*",)
    assert "go1.22.4" in std.evidence[0].detail
    assert "GOOS=linux" in std.evidence[0].detail
    assert c["golang.org/x/sys"].purl == "pkg:golang/golang.org/x/sys@v0.1.0"
    # module paths keep their case; "+" is percent-encoded
    assert (c["github.com/BurntSushi/toml"].purl
            == "pkg:golang/github.com/BurntSushi/toml@v1.2.3%2Bincompatible")
    # a replacement is what was compiled
    assert c["github.com/new/lib"].version == "v1.1.0"
    assert "github.com/Old/lib v1.0.0 => github.com/new/lib" in (
        c["github.com/new/lib"].evidence[0].detail)
    # a local replacement: no version, a lower confidence
    errs = c["github.com/pkg/errors"]
    assert errs.version is None
    assert errs.purl == "pkg:golang/github.com/pkg/errors"
    assert errs.evidence[0].confidence < 0.9
    for comp in comps:
        assert {e.method for e in comp.evidence} == {"go-buildinfo"}
        assert comp.evidence[0].confidence >= 0.5
        assert "0x" in comp.evidence[0].detail  # located
        if comp.version:
            assert {e.field for e in comp.evidence} == {"name", "version"}


def test_go_build_info_added_by_objcopy_and_found_by_section(build: Builder) -> None:
    data = add_sections(build, "go_objcopy", {".go.buildinfo": go_inline(b"go1.21rc2")})
    comps, warnings = scan(data)
    assert warnings == ()
    std = by_name(comps)["stdlib"]
    assert (std.version, std.purl, std.cpes) == ("1.21.0-rc.2", "pkg:golang/stdlib@1.21.0-rc.2",
                                                 ())


def test_go_pointer_format_of_go_before_1_18(build: Builder) -> None:
    """Go 1.13-1.17: the header holds the addresses of two Go string headers."""
    text = framed(MODINFO)
    body = ",".join(str(b) for b in text)
    magic = ",".join(str(b) for b in GO_MAGIC)
    source = f"""
        struct gostring {{ const void *data; long len; }};
        static const char vers[] = "go1.16.15";
        static const unsigned char mod[{len(text)}] = {{{body}}};
        static const struct gostring vs = {{ vers, sizeof vers - 1 }};
        static const struct gostring ms = {{ mod, sizeof mod }};
        struct header {{ unsigned char magic[14]; unsigned char ptr, flags;
                         const void *v, *m; }};
        __attribute__((section(".go.buildinfo"), used, aligned(16)))
        static const struct header bi = {{ {{ {magic} }}, 8, 0, &vs, &ms }};
    """
    data = gcc(build, "go_pointers", source, "-no-pie")
    comps, warnings = scan(data)
    assert warnings == ()
    c = by_name(comps)
    assert c["stdlib"].version == "1.16.15"
    assert c["example.com/tool"].version == "v1.2.3"
    assert len(comps) == 6


def test_go_without_modules_is_reported_with_a_warning(build: Builder) -> None:
    mod = framed("path\tgithub.com/restic/restic/cmd/restic\nbuild\t-compiler=gc\n"
                 "build\tCGO_ENABLED=1\n")
    data = add_sections(build, "gopath", {".go.buildinfo": go_inline(b"go1.19.8", mod)})
    comps, warnings = scan(data)
    assert [(c.name, c.version) for c in comps] == [
        ("github.com/restic/restic/cmd/restic", None), ("stdlib", "1.19.8")]
    assert "cgo" in comps[1].evidence[0].detail
    assert len(warnings) == 1
    assert "outside module mode" in warnings[0]


def test_go_devel_main_module_takes_the_ldflags_version(build: Builder) -> None:
    text = MODINFO.replace("example.com/tool\tv1.2.3\th1:tool=", "example.com/tool\t(devel)\t")
    data = add_sections(build, "devel", {".go.buildinfo": go_inline(modinfo=framed(text))})
    comps, _ = scan(data)
    main = comps[0]
    assert (main.name, main.version) == ("example.com/tool", "1.2.3")
    version_ev = [e for e in main.evidence if e.field == "version"]
    assert version_ev
    assert version_ev[0].confidence == 0.5
    assert "-ldflags" in version_ev[0].detail


def test_go_sentinel_fallback_when_the_header_is_stripped(build: Builder) -> None:
    """esbuild's npm binaries have no build info header; the framed module information and
    the runtime's version string are still in the read-only data."""
    data = add_sections(build, "stripped", {
        ".gopclntab": b"\xf1\xff\xff\xff\0\0\x01\x08" + bytes(56),
        ".rodata.go": b"\0\0\0\0go1.26.5\0\0\0\0" + framed(MODINFO) + bytes(16),
    })
    # the read-only data is found by the section's name in a real Go binary: here rename
    data = data.replace(b".rodata.go\0", b".rodata\0\0\0\0")
    comps, warnings = scan(data)
    assert warnings == ()
    c = by_name(comps)
    assert c["example.com/tool"].evidence[0].confidence == 0.85
    assert "no build info header" in c["example.com/tool"].evidence[0].detail
    assert c["stdlib"].version == "1.26.5"
    assert c["stdlib"].evidence[0].confidence == 0.6
    assert c["stdlib"].evidence[0].detail.startswith("guess:")
    assert len(comps) == 6


def test_not_go_costs_nothing_and_says_nothing(build: Builder) -> None:
    data = _exe(build, "plain").read_bytes()
    assert scan(data) == ((), ())


@pytest.mark.parametrize(("bits", "little"), [(64, True), (32, True), (64, False),
                                              (32, False)])
@pytest.mark.parametrize("with_sections", [True, False])
def test_go_in_any_elf_class_and_byte_order(bits: int, little: bool,
                                            with_sections: bool) -> None:
    """Pointer format in 32/64-bit, both byte orders; without section headers the first
    writable load segment is searched, as Go's own reader does."""
    data = elf_with_pointer_buildinfo(bits, little, with_sections)
    comps, warnings = scan(data)
    assert warnings == ()
    assert by_name(comps)["stdlib"].version == "1.17.13"
    assert len(comps) == 6


def elf_with_pointer_buildinfo(bits: int, little: bool, with_sections: bool) -> bytes:
    e = "<" if little else ">"
    ehsize, phentsize, shentsize = (64, 56, 64) if bits == 64 else (52, 32, 40)
    base = 0x400000
    start = (ehsize + phentsize + 15) & ~15
    ptr = "Q" if bits == 64 else "I"
    psize = bits // 8
    vers, mod = b"go1.17.13", framed(MODINFO)
    hdr_size = 32
    vs_at = start + hdr_size
    ms_at = vs_at + 2 * psize
    vers_at = ms_at + 2 * psize
    mod_at = vers_at + len(vers)
    section = (GO_MAGIC + bytes([psize, 0 if little else 1])
               + struct.pack(e + ptr + ptr, base + vs_at, base + ms_at).ljust(16, b"\0")
               + struct.pack(e + ptr + ptr, base + vers_at, len(vers))
               + struct.pack(e + ptr + ptr, base + mod_at, len(mod)) + vers + mod)
    shstrtab = b"\0.go.buildinfo\0.shstrtab\0"
    str_at = start + len(section)
    shoff = (str_at + len(shstrtab) + 7) & ~7
    total = shoff + 3 * shentsize
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1]) + bytes(9)
    fmt = e + ("HHIQQQIHHHHHH" if bits == 64 else "HHIIIIIHHHHHH")
    out = bytearray(total)
    out[:ehsize] = ident + struct.pack(fmt, 2, 62, 1, base, ehsize,
                                       shoff if with_sections else 0, 0, ehsize, phentsize, 1,
                                       shentsize, 3 if with_sections else 0, 2)
    if bits == 64:
        ph = struct.pack(e + "IIQQQQQQ", 1, 6, 0, base, base, total, total, 0x1000)
    else:
        ph = struct.pack(e + "IIIIIIII", 1, 0, base, base, total, total, 6, 0x1000)
    out[ehsize:ehsize + phentsize] = ph
    out[start:start + len(section)] = section
    out[str_at:str_at + len(shstrtab)] = shstrtab
    sfmt = e + ("IIQQQQIIQQ" if bits == 64 else "IIIIIIIIII")
    rows = [struct.pack(sfmt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
            struct.pack(sfmt, 1, 1, 3, base + start, start, len(section), 0, 0, 16, 0),
            struct.pack(sfmt, 15, 3, 0, 0, str_at, len(shstrtab), 0, 0, 1, 0)]
    out[shoff:total] = b"".join(rows)
    return bytes(out)


def test_parse_modinfo_is_lenient_line_by_line() -> None:
    info, warnings = parse_modinfo(
        "path\tx/cmd\nmod\tx\tv1.0.0\th1:x=\ndep\tonly-path\n=>\tstray\tv1\th1:\n"
        "dep\tok.io/m\tv0.1.0\th1:m=\nbuild\tnoequals\nbuild\t\"quoted key\"=\"a b\"\n"
        "weird\tline\n")
    assert info.main is not None
    assert info.main.path == "x"
    assert [d.path for d in info.deps] == ["ok.io/m"]
    assert info.setting("quoted key") == "a b"
    assert len(warnings) == 4


@pytest.mark.parametrize(("raw", "semver"), [
    ("go1.22.4", "1.22.4"), ("go1.20", "1.20.0"), ("go1.21rc2", "1.21.0-rc.2"),
    ("go1.19beta1", "1.19.0-beta.1"), ("go1.22.1 X:boringcrypto", "1.22.1"),
    ("devel go1.23-4b3c2a1 Tue Jan 1 00:00:00 2024 +0000", None), ("", None),
    ("gox", None),
])
def test_go_semver(raw: str, semver: str | None) -> None:
    assert go_semver(raw) == semver


# --------------------------------------------------------------------------- Rust


def test_cargo_auditable_in_a_real_elf(build: Builder) -> None:
    data = gcc(build, "rust_c", c_array("dep", ".dep-v0", dep_v0()))
    comps, warnings = scan(data)
    assert warnings == ()
    assert [c.name for c in comps] == ["tool", "serde", "cc", "libc", "private"]
    c = by_name(comps)
    assert c["serde"].purl == "pkg:cargo/serde@1.0.200"
    assert c["serde"].version == "1.0.200"
    assert c["tool"].purl is None  # local: not necessarily the crate of that name
    assert "own package" in c["tool"].evidence[0].detail
    assert c["private"].purl is None
    assert "from git" in c["private"].evidence[0].detail
    assert c["cc"].evidence[0].confidence == 0.5
    assert "build dependency" in c["cc"].evidence[0].detail
    assert all(e.method == "cargo-auditable" for comp in comps for e in comp.evidence)


def test_cargo_auditable_from_rustc_with_the_toolchain_guess(build: Builder) -> None:
    if not have("rustc"):
        pytest.skip("rustc is not installed")
    payload = dep_v0()
    src = build.root / "aud.rs"
    src.write_text(
        f'#[link_section = ".dep-v0"]\n#[used]\n'
        f"static AUDITABLE: [u8; {len(payload)}] = {list(payload)};\n"
        'fn main() { println!("hi"); }\n')
    out = build.root / "aud"
    subprocess.run(["rustc", "-O", str(src), "-o", str(out)], check=True, capture_output=True)
    rustc = subprocess.run(["rustc", "--version"], check=True, capture_output=True,
                           text=True).stdout.split()[1]
    comps, warnings = scan(out.read_bytes())
    assert warnings == ()
    assert [c.name for c in comps] == ["tool", "serde", "cc", "libc", "private", "rust"]
    rust = comps[-1]
    assert rust.version == rustc
    assert rust.cpes == (f"cpe:2.3:a:rust-lang:rust:{rustc}:*:*:*:*:*:*:*",)
    assert rust.evidence[0].confidence == 0.4
    assert rust.evidence[0].detail.startswith("guess:")


def test_rustc_version_alone_from_the_comment_section(build: Builder) -> None:
    data = add_sections(build, "rustc_only", {
        ".comment": b"GCC: (Debian 12.2.0) 12.2.0\0rustc version 1.80.1 (3f5fd8dd4 2024-08-06)\0"},
        update=True)
    comps, _warnings = scan(data)
    assert [(c.name, c.version) for c in comps] == [("rust", "1.80.1")]
    assert "3f5fd8dd4 2024-08-06" in comps[0].evidence[0].detail


# --------------------------------------------------------------------------- PE and Mach-O


def make_pe(sections: list[tuple[bytes, int, bytes]]) -> bytes:
    """A PE32+ file: (name, characteristics, data) per section, file alignment 0x200."""
    lfanew = 0x80
    opt_size = 240
    table_at = lfanew + 24 + opt_size
    raw = (table_at + 40 * len(sections) + 0x1FF) & ~0x1FF
    headers = bytearray(raw)
    headers[:2] = b"MZ"
    headers[0x3C:0x40] = struct.pack("<I", lfanew)
    headers[lfanew:lfanew + 4] = b"PE\0\0"
    headers[lfanew + 4:lfanew + 24] = struct.pack("<HHIIIHH", 0x8664, len(sections), 0, 0, 0,
                                                  opt_size, 0x22)
    opt = lfanew + 24
    headers[opt:opt + 2] = struct.pack("<H", 0x20B)
    headers[opt + 24:opt + 32] = struct.pack("<Q", 0x140000000)
    headers[opt + 32:opt + 40] = struct.pack("<II", 0x1000, 0x200)
    body = b""
    va = 0x1000
    for i, (name, chars, data) in enumerate(sections):
        size = (len(data) + 0x1FF) & ~0x1FF
        row = struct.pack("<8sIIIIIIHHI", name, len(data), va, size, raw + len(body), 0, 0, 0,
                          0, chars)
        headers[table_at + 40 * i:table_at + 40 * (i + 1)] = row
        body += data.ljust(size, b"\0")
        va += (size + 0xFFF) & ~0xFFF
    return bytes(headers) + body


def make_macho(sections: list[tuple[str, str, bytes]]) -> bytes:
    """A thin 64-bit little-endian Mach-O file, one LC_SEGMENT_64 per section (``__TEXT``
    read-execute, the others read-write)."""
    ncmds = len(sections)
    cmdsize = 72 + 80
    start = 32 + ncmds * cmdsize
    data_at = (start + 15) & ~15
    cmds = b""
    body = b""
    for seg, sect, data in sections:
        off = data_at + len(body)
        prot = 5 if seg == "__TEXT" else 3
        cmds += struct.pack("<II16sQQQQiiII", 0x19, cmdsize, seg.encode(), 0x100000000 + off,
                            len(data), off, len(data), prot, prot, 1, 0)
        cmds += struct.pack("<16s16sQQIIIIIIII", sect.encode(), seg.encode(),
                            0x100000000 + off, len(data), off, 4, 0, 0, 0, 0, 0, 0)
        body += data.ljust((len(data) + 15) & ~15, b"\0")
    header = struct.pack("<7II", 0xFEEDFACF, 0x0100000C, 0, 2, ncmds, len(cmds), 0, 0)
    return (header + cmds).ljust(data_at, b"\0") + body


def make_fat(*slices: bytes) -> bytes:
    out = struct.pack(">II", 0xCAFEBABE, len(slices))
    offset = 0x1000
    table, body = b"", b""
    for s in slices:
        table += struct.pack(">iiIII", 0x0100000C, 0, offset + len(body), len(s), 12)
        body += s.ljust((len(s) + 0xFFF) & ~0xFFF, b"\0")
    return (out + table).ljust(offset, b"\0") + body


def test_pe_go_build_info_in_the_first_writable_data_section() -> None:
    text = b"\xff Go build ID: \"abc\"\n" + bytes(44)
    data = make_pe([(b".text", 0x60000020, text),
                    (b".rdata", 0x40000040, bytes(64)),
                    (b".data", 0xC0000040, go_inline()),
                    (b".dep-v0", 0x40000040, dep_v0())])
    comps, warnings = scan(data, BinaryFormat.PE)
    assert warnings == ()
    names = [c.name for c in comps]
    assert names[:2] == ["example.com/tool", "stdlib"]
    assert "serde" in names
    assert len(comps) == 6 + 5


def test_pe_data_is_not_searched_in_a_file_that_is_not_go() -> None:
    data = make_pe([(b".text", 0x60000020, bytes(64)), (b".data", 0xC0000040, go_inline())])
    assert scan(data, BinaryFormat.PE) == ((), ())


def test_macho_go_buildinfo_and_dep_v0_sections() -> None:
    data = make_macho([("__DATA", "__go_buildinfo", go_inline()),
                       ("__DATA", ".dep-v0", dep_v0())])
    comps, warnings = scan(data, BinaryFormat.MACHO)
    assert warnings == ()
    assert len(comps) == 6 + 5


def test_macho_go_in_the_writable_segment_without_the_section() -> None:
    data = make_macho([("__TEXT", "__gopclntab", bytes(32)),
                       ("__NOPTRDATA", "__noptrdata", go_inline())])
    comps, warnings = scan(data, BinaryFormat.MACHO)
    assert warnings == ()
    assert len(comps) == 6


def test_fat_macho_slices_are_read_and_repeats_dropped() -> None:
    one = make_macho([("__DATA", "__go_buildinfo", go_inline())])
    other = make_macho([("__DATA", "__go_buildinfo", go_inline(b"go1.22.5"))])
    comps, warnings = scan(make_fat(one, other), BinaryFormat.MACHO)
    assert warnings == ()
    assert [c.version for c in comps if c.name == "stdlib"] == ["1.22.4", "1.22.5"]
    assert len(comps) == 7


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("payload", "message"), [
    (GO_MAGIC + bytes([8, 2]), "unreadable"),  # header cut short: the file ends there
    (GO_MAGIC + bytes([8, 2]) + bytes(16) + b"\xff" * 12, "varint"),
    (GO_MAGIC + bytes([8, 2]) + bytes(16) + uvarint(1 << 40), "Go version string of"),
    (GO_MAGIC + bytes([8, 2]) + bytes(16) + uvarint(8) + b"go1.22.4" + uvarint(1 << 60),
     "Go module information of"),
    (GO_MAGIC + bytes([8, 2]) + bytes(16) + uvarint(8) + b"go1.22.4" + uvarint(5000) + b"x",
     "unreadable"),
    (GO_MAGIC + bytes([8, 2]) + bytes(16) + uvarint(0) + uvarint(0), "empty Go version"),
    (GO_MAGIC + bytes([3, 0]) + bytes(16), "pointer size 3"),
    (GO_MAGIC + bytes([8, 0]) + struct.pack("<QQ", 0xDEAD0000, 0xBEEF0000),
     "not in the file"),
])
def test_bad_go_build_info_is_a_located_warning(payload: bytes, message: str) -> None:
    blob_data = make_macho([("__DATA", "__go_buildinfo", payload)])
    if message == "unreadable" and len(payload) == 16:
        blob_data = blob_data[:blob_data.index(GO_MAGIC) + 16]  # truncated magic at EOF
    comps, warnings = scan(blob_data, BinaryFormat.MACHO)
    assert comps == ()
    assert len(warnings) == 1, warnings
    assert message in warnings[0], warnings
    assert "Go build info at 0x" in warnings[0]


def test_go_magic_off_alignment_is_ignored() -> None:
    data = make_macho([("__DATA", "__go_buildinfo", b"\0" * 8 + go_inline())])
    assert scan(data, BinaryFormat.MACHO) == (
        (), ("Go binary without build info: its modules are unknown",))


def test_go_modinfo_without_framing_gives_the_toolchain_only() -> None:
    data = make_macho([("__DATA", "__go_buildinfo", go_inline(modinfo=MODINFO.encode()))])
    comps, warnings = scan(data, BinaryFormat.MACHO)
    assert [c.name for c in comps] == ["stdlib"]
    assert "no modules recorded" in warnings[0]


@pytest.mark.parametrize(("payload", "message"), [
    (b"not zlib at all", "not zlib data"),
    (zlib.compress(b'{"packages": [')[:-6], "truncated"),
    (zlib.compress(b"{not json"), "not valid JSON"),
    (zlib.compress(b"[1, 2]"), "no \"packages\" list"),
    (zlib.compress(b"[" * 100000 + b"]" * 100000), "not valid JSON"),
    (zlib.compress(bytes(MAX_DEP_JSON + 1)), "zip bomb"),
])
def test_bad_dep_v0_is_a_located_warning(payload: bytes, message: str) -> None:
    data = make_pe([(b".dep-v0", 0x40000040, payload)])
    comps, warnings = scan(data, BinaryFormat.PE)
    assert comps == ()
    assert len(warnings) == 1, warnings
    assert message in warnings[0], warnings
    assert ".dep-v0 at 0x" in warnings[0]


def test_zip_bomb_dep_v0_costs_little(build: Builder) -> None:
    """128 MiB of zeros compress to 128 KiB: refused after 8 MiB of output."""
    bomb = zlib.compressobj(1)
    payload = b"".join(bomb.compress(bytes(1 << 24)) for _ in range(8)) + bomb.flush()
    data = add_sections(build, "bomb", {".dep-v0": payload})
    comps, warnings = scan(data)
    assert comps == ()
    assert "zip bomb" in warnings[0]


def test_dep_v0_graph_problems_are_warnings_but_packages_are_kept() -> None:
    cyclic = [{"name": "a", "version": "1.0.0", "source": "crates.io", "dependencies": [1],
               "root": True},
              {"name": "b", "version": "1.0.0", "source": "crates.io", "dependencies": [2, 99]},
              {"name": "c", "version": "1.0.0", "source": "crates.io", "dependencies": [0, -1,
                                                                                       "x"]},
              {"name": "d", "version": "2.0.0", "source": "crates.io", "root": True},
              {"name": 5, "version": "1"}, "junk"]
    data = make_macho([("__DATA", ".dep-v0", dep_v0(cyclic))])
    comps, warnings = scan(data, BinaryFormat.MACHO)
    assert [c.name for c in comps] == ["a", "d", "b", "c"]
    text = "\n".join(warnings)
    assert "cycle" in text
    assert "3 dependency indices" in text
    assert "2 root packages" in text
    assert "2 package entries" in text


def test_dep_v0_self_dependency_is_a_cycle() -> None:
    data = make_macho([("__DATA", ".dep-v0", dep_v0([
        {"name": "a", "version": "1.0.0", "source": "crates.io", "dependencies": [0],
         "root": True}]))])
    comps, warnings = scan(data, BinaryFormat.MACHO)
    assert len(comps) == 1
    assert "cycle" in warnings[0]


def test_unreadable_headers_are_one_warning() -> None:
    comps, warnings = buildinfo_components(BytesBlob(b"MZ" + bytes(10)),
                                           _binary(BinaryFormat.PE))
    assert comps == ()
    assert len(warnings) == 1
    assert "not read" in warnings[0]


def test_hostile_mach_o_load_commands() -> None:
    data = bytearray(make_macho([("__DATA", "__go_buildinfo", go_inline())]))
    data[32 + 4:32 + 8] = struct.pack("<I", 4)  # cmdsize below the minimum
    comps, warnings = scan(bytes(data), BinaryFormat.MACHO)
    assert comps == ()
    assert "load command" in warnings[0]


def _seed() -> bytes:
    return make_macho([("__DATA", "__go_buildinfo", go_inline()),
                       ("__DATA", ".dep-v0", dep_v0())])


SEED = _seed()


@settings(max_examples=150, deadline=10000, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)),
                min_size=1, max_size=8),
       st.integers(64, len(SEED)))
def test_mutated_files_never_raise(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(SEED)
    for at, value in edits:
        data[at] = value
    for fmt in (BinaryFormat.MACHO, BinaryFormat.PE, BinaryFormat.ELF):
        comps, warnings = buildinfo_components(BytesBlob(bytes(data[:cut])), _binary(fmt))
        assert isinstance(comps, tuple)
        assert isinstance(warnings, tuple)
