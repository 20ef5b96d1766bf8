"""Bad input becomes a located problem: never a traceback, a hang, or a file written.

Truncated and mutated ELF files (hypothesis over the header fields of real binaries),
hostile wheels (not a zip, ``../`` members, zip bombs, bad CRCs, corrupt or encrypted
members), symlink loops in trees and roots, FIFOs, garbage ``ld.so.cache`` files and
unreadable files.  Each must give a :class:`~unveil.model.Problem` located at the file (or
a clean :class:`~unveil.errors.UnveilError` for an unusable *target*), and the scan goes on.

Tests that could hang or eat memory when they fail run in a forked child with a time and
address-space limit (:func:`_bounded`), so a regression fails the test instead of the run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import struct
import tarfile
import time
import traceback
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unveil
from tests.conftest import Builder, have
from unveil.cli.host import detect_host
from unveil.cli.main import main
from unveil.config import ScanConfig
from unveil.dynload.javascript import detect_javascript
from unveil.dynload.ruby import detect_ruby
from unveil.errors import FormatError, TargetError, UnveilError
from unveil.formats import elfsections
from unveil.formats.blob import BytesBlob
from unveil.formats.elf import ElfFile, parse_elf
from unveil.identify.banners import identify_bytes
from unveil.loader.ldcache import parse_ld_cache, read_ld_so_conf
from unveil.model import Edge, Outcome, ProblemKind, ScanResult, Verdict
from unveil.sources import fs as fs_module
from unveil.sources.zipread import InflateBlob

LIBZ = Path("/lib/x86_64-linux-gnu/libz.so.1")
HOST_CACHE = Path("/etc/ld.so.cache")

PT_LOAD, PT_DYNAMIC, PT_NOTE = 1, 2, 4
DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SYMENT = 1, 5, 10, 11
DT_GNU_HASH, DT_VERSYM, DT_VERDEF, DT_VERNEED, DT_VERNEEDNUM = (
    0x6FFFFEF5, 0x6FFFFFF0, 0x6FFFFFFC, 0x6FFFFFFE, 0x6FFFFFFF)

#: A hostile input may cost at most this much wall time: generous, since whole-wheel scans
#: run per example and CI machines may be loaded; real hangs are caught by _bounded too.
DEADLINE_MS = 10000
FUZZ = settings(max_examples=100, deadline=DEADLINE_MS, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_LIB_C = r"""
#include <math.h>
#define DLOPEN_JSON "[{\"feature\":\"x\",\"description\":\"d\",\"priority\":\"required\"," \
                    "\"soname\":[\"libfoo.so.1\",\"libbar.so.2\"]}]"
#define PKG_JSON "{\"type\":\"deb\",\"name\":\"bad\",\"version\":\"1.0\"}"
struct note_dl { unsigned n, d, t; char name[4]; char desc[(sizeof(DLOPEN_JSON) + 3) & ~3]; };
struct note_pk { unsigned n, d, t; char name[4]; char desc[(sizeof(PKG_JSON) + 3) & ~3]; };
__attribute__((section(".note.dlopen"), used, aligned(4)))
static const struct note_dl dl = {4, sizeof(dl.desc), 0x407c0c0a, "FDO", DLOPEN_JSON};
__attribute__((section(".note.package"), used, aligned(4)))
static const struct note_pk pk = {4, sizeof(pk.desc), 0xcafe1a7e, "FDO", PKG_JSON};
double bad_f(double x) { return sin(x); }
"""


# -- real ELF files -------------------------------------------------------------------------


@dataclass(frozen=True)
class Elves:
    """Real ELF files to mutate: a versioned library with JSON notes, an executable with a
    RUNPATH that needs it, and the system's libz."""

    dir: Path
    lib: bytes
    exe: bytes
    libz: bytes

    def all(self) -> dict[str, bytes]:
        return {"lib": self.lib, "exe": self.exe, "libz": self.libz}


@pytest.fixture(scope="module")
def elves(tmp_path_factory: pytest.TempPathFactory) -> Elves:
    if not have("gcc"):
        pytest.skip("gcc is needed to build fixtures")
    if not LIBZ.is_file():
        pytest.skip(f"{LIBZ} is needed")
    root = tmp_path_factory.mktemp("elves")
    b = Builder(root)
    vmap = root / "v.map"
    vmap.write_text("V1 { global: bad_f; local: *; };\n")
    lib = b.lib("libbad.so", code=_LIB_C, link=["-lm"], extra=[f"-Wl,--version-script={vmap}"])
    exe = b.exe("prog", needs=[str(lib)], runpath="$ORIGIN", link=["-lm"])
    return Elves(root, lib.read_bytes(), exe.read_bytes(), LIBZ.read_bytes())


@dataclass(frozen=True)
class Site:
    """One field of an ELF file: where it is, how wide, and what it means."""

    offset: int
    width: int
    what: str


@dataclass(frozen=True)
class _Seg:
    type: int
    offset: int
    vaddr: int
    filesz: int
    align: int


def _segments(data: bytes) -> tuple[int, list[_Seg]]:
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phnum, = struct.unpack_from("<H", data, 0x38)
    segs = []
    for i in range(phnum):
        ptype, _fl, off, vaddr, _pa, filesz, _memsz, align = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + 56 * i)
        segs.append(_Seg(ptype, off, vaddr, filesz, align))
    return phoff, segs


def _to_offset(segs: list[_Seg], vaddr: int) -> int | None:
    for s in segs:
        if s.type == PT_LOAD and s.vaddr <= vaddr < s.vaddr + s.filesz:
            return vaddr - s.vaddr + s.offset
    return None


def elf_sites(data: bytes) -> list[Site]:
    """Every field the reader uses in a (well-formed, 64-bit LSB) ELF file."""
    sites = [Site(i, 1, f"e_ident[{i}]") for i in range(4, 16)]
    sites += [Site(o, w, n) for o, w, n in (
        (0x10, 2, "e_type"), (0x12, 2, "e_machine"), (0x14, 4, "e_version"),
        (0x20, 8, "e_phoff"), (0x28, 8, "e_shoff"), (0x36, 2, "e_phentsize"),
        (0x38, 2, "e_phnum"), (0x3A, 2, "e_shentsize"), (0x3C, 2, "e_shnum"))]
    phoff, segs = _segments(data)
    for i, s in enumerate(segs):
        base = phoff + 56 * i
        sites += [Site(base + o, w, f"phdr[{i}].{n}") for o, w, n in (
            (0, 4, "p_type"), (8, 8, "p_offset"), (16, 8, "p_vaddr"), (32, 8, "p_filesz"),
            (40, 8, "p_memsz"), (48, 8, "p_align"))]
        if s.type == PT_NOTE:
            pos = 0
            while pos + 12 <= s.filesz:
                namesz, descsz, _t = struct.unpack_from("<III", data, s.offset + pos)
                sites += [Site(s.offset + pos, 4, "n_namesz"), Site(s.offset + pos + 4, 4,
                          "n_descsz"), Site(s.offset + pos + 8, 4, "n_type")]
                pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
                # the JSON text of the notes, a few bytes of it
                sites += [Site(s.offset + pos - k, 1, "note byte") for k in (2, 5, 9)]
    dyn = next((s for s in segs if s.type == PT_DYNAMIC), None)
    tags: dict[int, int] = {}
    if dyn is not None:
        for j in range(dyn.filesz // 16):
            tag, val = struct.unpack_from("<qQ", data, dyn.offset + 16 * j)
            sites += [Site(dyn.offset + 16 * j, 8, f"d_tag[{j}]"),
                      Site(dyn.offset + 16 * j + 8, 8, f"d_val[{tag:#x}]")]
            tags.setdefault(tag, val)
            if tag == 0:
                break
    vn = _to_offset(segs, tags[DT_VERNEED]) if DT_VERNEED in tags else None
    while vn is not None:
        sites += [Site(vn + o, w, n) for o, w, n in (
            (2, 2, "vn_cnt"), (4, 4, "vn_file"), (8, 4, "vn_aux"), (12, 4, "vn_next"))]
        cnt, _file, aux, nxt = struct.unpack_from("<HIII", data, vn + 2)
        a = vn + aux
        for _ in range(cnt):
            sites += [Site(a + o, w, n) for o, w, n in (
                (6, 2, "vna_other"), (8, 4, "vna_name"), (12, 4, "vna_next"))]
            a += struct.unpack_from("<I", data, a + 12)[0]
        vn = vn + nxt if nxt else None
    vd = _to_offset(segs, tags[DT_VERDEF]) if DT_VERDEF in tags else None
    while vd is not None:
        sites += [Site(vd + o, w, n) for o, w, n in (
            (4, 2, "vd_ndx"), (6, 2, "vd_cnt"), (12, 4, "vd_aux"), (16, 4, "vd_next"))]
        aux, nxt = struct.unpack_from("<II", data, vd + 12)
        sites.append(Site(vd + aux, 4, "vda_name"))
        vd = vd + nxt if nxt else None
    gh = _to_offset(segs, tags[DT_GNU_HASH]) if DT_GNU_HASH in tags else None
    if gh is not None:
        sites += [Site(gh + 4 * k, 4, n) for k, n in enumerate(
            ("nbuckets", "symoffset", "bloom_size", "bloom_shift"))]
        nb, _so, bloom, _sh = struct.unpack_from("<IIII", data, gh)
        buckets = gh + 16 + 8 * bloom
        sites += [Site(buckets + 4 * k, 4, "bucket") for k in range(min(nb, 4))]
        sites += [Site(buckets + 4 * nb + 4 * k, 4, "chain") for k in range(2)]
    vs = _to_offset(segs, tags[DT_VERSYM]) if DT_VERSYM in tags else None
    if vs is not None:
        sites += [Site(vs + 2 * k, 2, "versym") for k in range(1, 6)]
    return [s for s in sites if s.offset + s.width <= len(data)]


def _values(data: bytes, site: Site) -> st.SearchStrategy[int]:
    top = (1 << (8 * site.width)) - 1
    orig = int.from_bytes(data[site.offset:site.offset + site.width], "little")
    extremes = sorted({v & top for v in (
        0, 1, 2, 3, 7, 8, 16, 24, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000, top, top >> 1,
        (top >> 1) + 1, len(data), len(data) - 1, len(data) + 1, len(data) // 2, 1 << 20,
        orig + 1, orig - 1, orig * 2, orig + 0x1000, site.offset, site.offset - 16)})
    return st.one_of(st.sampled_from(extremes), st.integers(0, top),
                     st.integers(max(orig - 64, 0), min(orig + 64, top)))


@st.composite
def mutations(draw: st.DrawFn, data: bytes, sites: Sequence[Site]) -> bytes:
    """``data`` with one to four of its fields overwritten by hostile values."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        site = draw(st.sampled_from(sites))
        value = draw(_values(data, site))
        out[site.offset:site.offset + site.width] = value.to_bytes(site.width, "little")
    return bytes(out)


def _only_format_errors(data: bytes) -> None:
    """The reader's whole contract: a result or a FormatError, quickly."""
    with contextlib.suppress(FormatError):
        parse_elf(BytesBlob(data))
    with contextlib.suppress(FormatError):
        ElfFile(BytesBlob(data)).symbols()


def _set_dyn(data: bytes, tag: int, value: int) -> bytes:
    """``data`` with the value of its first ``tag`` dynamic entry replaced."""
    _phoff, segs = _segments(data)
    dyn = next(s for s in segs if s.type == PT_DYNAMIC)
    out = bytearray(data)
    for j in range(dyn.filesz // 16):
        t, = struct.unpack_from("<q", data, dyn.offset + 16 * j)
        if t == tag:
            struct.pack_into("<Q", out, dyn.offset + 16 * j + 8, value)
            return bytes(out)
    raise AssertionError(f"no dynamic tag {tag:#x}")


class TestElfTruncated:
    def test_every_length_of_a_real_library(self, elves: Elves) -> None:
        for n in range(len(elves.lib) + 1):
            _only_format_errors(elves.lib[:n])

    @FUZZ
    @given(data=st.data())
    def test_random_lengths(self, elves: Elves, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(elves.all())))
        whole = elves.all()[name]
        _only_format_errors(whole[:data.draw(st.integers(0, len(whole)))])

    def test_real_files_parse(self, elves: Elves) -> None:
        b, warnings = parse_elf(BytesBlob(elves.lib))
        assert b.soname == "libbad.so"
        assert b.version_defs == ("V1",)
        assert not warnings
        assert b.dlopen_notes
        assert b.package_note
        assert b.version_needs
        assert parse_elf(BytesBlob(elves.exe))[0].runpath == ("$ORIGIN",)
        assert ElfFile(BytesBlob(elves.libz)).symbols()


class TestElfMutated:
    @FUZZ
    @given(data=st.data())
    def test_header_fields(self, elves: Elves, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(elves.all())))
        whole = elves.all()[name]
        sites = [s for s in elf_sites(whole) if s.what != "d_val[0xb]"]  # see test_small_syment
        _only_format_errors(data.draw(mutations(whole, sites)))

    @FUZZ
    @given(data=st.data())
    def test_random_bytes(self, elves: Elves, data: st.DataObject) -> None:
        whole = elves.lib
        out = bytearray(whole)
        for _ in range(data.draw(st.integers(1, 8))):
            at = data.draw(st.integers(0, len(whole) - 1))
            chunk = data.draw(st.binary(min_size=1, max_size=16))
            out[at:at + len(chunk)] = chunk
        _only_format_errors(bytes(out[:len(whole)]))

    @FUZZ
    @given(data=st.data())
    def test_header_fields_through_synthesized_sections(self, elves: Elves,
                                                        data: st.DataObject) -> None:
        """A compressed member read through stand-in sections (every member treated as
        having a far tail): hostile program headers and dynamic entries give a table, the
        real one or nothing, and identification runs on it without an escaping error."""
        name = data.draw(st.sampled_from(sorted(elves.all())))
        whole = elves.all()[name]
        mutated = data.draw(mutations(whole, elf_sites(whole)))
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        packed = z.compress(mutated) + z.flush()
        saved = elfsections.FAR_TAIL
        elfsections.FAR_TAIL = -1
        try:
            member = InflateBlob(packed, 0, len(packed), len(mutated))
            with contextlib.suppress(FormatError):
                elfsections.elf_sections(member)
                identify_bytes(member, "libz.so.1")
        finally:
            elfsections.FAR_TAIL = saved

    @pytest.mark.parametrize("syment", [1, 8])
    def test_small_syment(self, elves: Elves, syment: int) -> None:
        _only_format_errors(_set_dyn(elves.lib, DT_SYMENT, syment))

    @pytest.mark.parametrize("tag", [DT_STRTAB, DT_STRSZ, DT_VERNEED, DT_VERDEF, DT_GNU_HASH,
                                     DT_VERSYM])
    @pytest.mark.parametrize("value", [0, 1, 0x7FFFFFFF, 2**63, 2**64 - 1])
    def test_extreme_dynamic_values(self, elves: Elves, tag: int, value: int) -> None:
        _only_format_errors(_set_dyn(elves.lib, tag, value))

    def test_needed_offsets_out_of_range(self, elves: Elves) -> None:
        for value in (0xFFFF, 2**32, 2**64 - 1):
            with pytest.raises(FormatError):
                parse_elf(BytesBlob(_set_dyn(elves.lib, DT_NEEDED, value)))


# -- hand-made hostile ELF files ------------------------------------------------------------


def synth_elf(*, data: bytes, data_off: int, dyn: Sequence[tuple[int, int]] = (),
              extra_phdrs: Sequence[tuple[int, int, int, int]] = ()) -> bytes:
    """A 64-bit LSB x86-64 shared object: one PT_LOAD mapping the whole file at address 0
    (so addresses are offsets), a PT_DYNAMIC with ``dyn`` (then DT_NULL), ``extra_phdrs``
    as (type, offset, filesz, align), and ``data`` at ``data_off``."""
    phdrs = [(PT_LOAD, 0, 0, 0x1000), (PT_DYNAMIC, 0, 16 * (len(dyn) + 1), 8), *extra_phdrs]
    dyn_off = 64 + 56 * len(phdrs)
    assert dyn_off + 16 * (len(dyn) + 1) <= data_off
    total = data_off + len(data)
    out = bytearray(total)
    out[0:16] = b"\x7fELF\x02\x01\x01" + bytes(9)
    struct.pack_into("<HHIQQQIHHHHHH", out, 16, 3, 62, 1, 0, 64, 0, 0, 64, 56, len(phdrs),
                     64, 0, 0)
    for i, (ptype, off, filesz, align) in enumerate(phdrs):
        if ptype == PT_LOAD:
            off, filesz = 0, total
        elif ptype == PT_DYNAMIC:
            off = dyn_off
        struct.pack_into("<IIQQQQQQ", out, 64 + 56 * i, ptype, 4, off, off, off, filesz,
                         filesz, align)
    for j, (tag, val) in enumerate(dyn):
        struct.pack_into("<qQ", out, dyn_off + 16 * j, tag, val)
    out[data_off:] = data
    return bytes(out)


#: The limits below catch hangs and runaway loops, not slowness: a loaded 2-core CI machine
#: running under branch coverage is several times slower than a quiet one.
SLACK = 3


def _bounded(fn: Callable[[], object], *, seconds: float, memory: int = 1 << 30) -> str:
    """Run ``fn`` in a forked child limited to ``seconds`` and ``memory`` more bytes of
    address space.  Returns ``"ok: <repr of the result>"``, ``"raised <Type>: <message>"``,
    ``"timeout"`` or ``"died <status>"``."""
    read_end, write_end = os.pipe()
    with open("/proc/self/status", encoding="ascii") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.close(read_end)
            resource.setrlimit(resource.RLIMIT_AS, (vm + memory, vm + memory))
            try:
                msg = f"ok: {fn()!r}"[:2000]
            except BaseException as e:
                msg = f"raised {type(e).__name__}: {e}"[:2000]
                if not isinstance(e, UnveilError):
                    msg += "\n" + traceback.format_exc()[-3000:]
            os.write(write_end, msg.encode("utf-8", "replace"))
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    os.close(write_end)
    end = time.monotonic() + seconds * SLACK
    status = None
    while time.monotonic() < end:
        done, st_ = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st_
            break
        time.sleep(0.02)
    if status is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
        return "timeout"
    with os.fdopen(read_end, "rb") as r:
        msg = r.read().decode("utf-8", "replace")
    return msg or f"died {status}"


def _parse_summary(data: bytes) -> str:
    try:
        b, _w = parse_elf(BytesBlob(data))
    except FormatError as e:
        return f"FormatError: {e}"
    return f"parsed: {len(b.version_needs)} needs"


class TestElfHostileCost:
    """Files crafted so that naive loops cost minutes or gigabytes."""

    def test_bounded_helper_reports_timeouts(self) -> None:
        assert _bounded(lambda: time.sleep(5), seconds=0.3) == "timeout"
        assert _bounded(lambda: 1 + 1, seconds=3) == "ok: 2"

    def test_verneed_chains_multiply(self) -> None:
        n = 1 << 14
        base = 0x1000
        strtab = b"\0libx.so\0".ljust(16, b"\0")
        vn_at = base + len(strtab)
        aux_at = vn_at + 16 * n
        vn = b"".join(struct.pack("<HHIII", 1, 0xFFFF, 1, aux_at - (vn_at + 16 * i), 16)
                      for i in range(n))
        aux = struct.pack("<IHHII", 0, 0, 2, 0, 16) * n
        data = synth_elf(data=strtab + vn + aux, data_off=base, dyn=[
            (DT_STRTAB, base), (DT_STRSZ, len(strtab)), (DT_VERNEED, vn_at),
            (DT_VERNEEDNUM, n)])
        outcome = _bounded(lambda: _parse_summary(data), seconds=2)
        assert outcome.startswith("ok:"), outcome

    def test_many_note_segments(self) -> None:
        n = 65535
        data_off = 64 + 56 * (n + 2) + 16
        data_off = (data_off + 0xFFF) & ~0xFFF
        notes = [(PT_NOTE, data_off + i, 1 << 20, 4) for i in range(n - 2)]
        elf = synth_elf(data=bytes((1 << 20) + n), data_off=data_off, extra_phdrs=notes)
        outcome = _bounded(lambda: _parse_summary(elf), seconds=2)
        assert outcome.startswith("ok:"), outcome
        _b, warnings = parse_elf(BytesBlob(elf))
        assert any("notes beyond the first" in w for w in warnings), warnings


# -- scans of trees -------------------------------------------------------------------------


def _problems_at(result: ScanResult, name: str) -> list[str]:
    return [p.message for p in result.problems if p.location.endswith("/" + name)]


def _files_under(top: Path) -> set[str]:
    return {str(p) for p in top.rglob("*")}


@pytest.fixture
def bad_tree(build: Builder, tmp_path: Path) -> Path:
    """A directory of good binaries among bad files."""
    root = tmp_path / "tree"
    lib = build.lib("tree/libgood.so")
    build.lib("tree/liba.so")
    build.exe("tree/prog", needs=[str(lib), str(root / "liba.so")], runpath="$ORIGIN")
    good = lib.read_bytes()
    (root / "libcorrupt.so").write_bytes(b"\x7fELF" + bytes(range(256)) * 8)
    (root / "libtrunc.so").write_bytes(good[:100])
    (root / "libempty.so").write_bytes(b"")
    (root / "libmagic.so").write_bytes(b"\x7fELF")
    # liba.so, which prog needs, becomes a loop: liba.so -> libb.so -> liba.so
    (root / "liba.so").unlink()
    (root / "liba.so").symlink_to("libb.so")
    (root / "libb.so").symlink_to("liba.so")
    (root / "self.so").symlink_to("self.so")
    (root / "up").symlink_to("..")
    (root / "sub").mkdir()
    (root / "sub" / "parent").symlink_to("../sub")
    os.mkfifo(root / "libfifo.so")
    return root


class TestTree:
    def test_scan_locates_problems_and_goes_on(self, bad_tree: Path) -> None:
        outcome = _bounded(lambda: _summarise(unveil.scan(str(bad_tree))), seconds=20)
        assert outcome.startswith("ok:"), outcome
        result = unveil.scan(str(bad_tree))
        scanned = _summarise_names(result)
        assert {"prog", "libgood.so"} <= scanned
        assert not scanned & {"libcorrupt.so", "libtrunc.so", "libmagic.so", "libfifo.so"}
        for bad in ("libcorrupt.so", "libtrunc.so", "libmagic.so"):
            msgs = _problems_at(result, bad)
            assert msgs, (bad, result.problems)
        for p in result.problems:
            assert p.location.startswith(str(bad_tree)), p
            if p.location.endswith(("libtrunc.so", "libmagic.so", "libcorrupt.so")):
                assert p.kind is ProblemKind.FORMAT
        edge = _edge(result, "prog", "liba.so")
        assert edge.resolution.outcome is Outcome.NOT_FOUND
        assert any(a.verdict is Verdict.LOOP for a in edge.resolution.attempts)
        assert _edge(result, "prog", "libgood.so").resolution.outcome is Outcome.FOUND

    def test_cli_exit_codes(self, bad_tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["scan", str(bad_tree)]) == 0
        assert main(["scan", "--strict", str(bad_tree)]) == 2
        assert main(["scan", "--format", "json", str(bad_tree)]) == 0
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        doc = json.loads(out[out.index("{"):])
        assert doc

    def test_json_report_locates_problems(self, bad_tree: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
        capsys.readouterr()
        assert main(["scan", "--format", "json", "--strict", str(bad_tree)]) == 2
        text = capsys.readouterr().out
        assert "libtrunc.so" in text
        assert "libcorrupt.so" in text

    def test_huge_sparse_file(self, build: Builder, tmp_path: Path) -> None:
        lib = build.lib("huge/libhuge.so")
        with lib.open("r+b") as f:
            f.truncate(3 << 30)  # 3 GiB, sparse: only the real library's pages are data
        start = time.monotonic()
        result = unveil.scan(str(lib.parent))
        assert time.monotonic() - start < 60  # a hang guard, not a speed check
        assert [b.binary.size for t in result.targets for b in t.binaries] == [3 << 30]

    def test_symlink_loop_target(self, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
        loop = tmp_path / "loop"
        loop.symlink_to("loop")
        with pytest.raises(TargetError):
            unveil.scan(str(loop))
        assert main(["scan", str(loop)]) == 2
        assert "Traceback" not in capsys.readouterr().err

    def test_fifo_target_does_not_hang(self, tmp_path: Path) -> None:
        fifo = tmp_path / "libfifo.so"
        os.mkfifo(fifo)
        outcome = _bounded(lambda: _summarise(unveil.scan(str(fifo))), seconds=2)
        assert outcome.startswith(("ok:", "raised TargetError", "raised SourceError")), outcome

    def test_environment_with_looping_python_dir(self, build: Builder, tmp_path: Path) -> None:
        env = tmp_path / "env"
        build.lib("env/lib/libok.so")
        (env / "lib" / "python3.11").symlink_to("python3.11")
        result = unveil.scan(str(env))
        assert [b.location.path for t in result.targets for b in t.binaries]

    def test_rpath_into_looping_site_packages_entry(self, build: Builder,
                                                    tmp_path: Path) -> None:
        site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
        (site / "pkg-1.0.dist-info").mkdir(parents=True)
        (site / "pkg-1.0.dist-info" / "RECORD").write_text("pkg/_ext.so,,\n")
        dep = build.lib("deps/libgone.so")
        build.lib("env/lib/python3.11/site-packages/pkg/_ext.so", needs=[str(dep)],
                  runpath="$ORIGIN/../loopy/lib", soname="")
        (site / "loopy").symlink_to("loopy")
        result = unveil.scan(str(tmp_path / "env"))
        edge = _edge(result, "_ext.so", "libgone.so")
        assert edge.resolution.outcome is Outcome.NOT_FOUND

    def test_non_utf8_file_name_in_report(self, build: Builder, tmp_path: Path) -> None:
        lib = build.lib("names/libok.so")
        os.rename(lib, os.fsdecode(str(lib.parent).encode() + b"/lib\xff.so"))
        out = tmp_path / "report.json"
        assert main(["scan", "--format", "json", "-o", str(out), str(lib.parent)]) == 0
        assert json.loads(out.read_text(encoding="utf-8"))


def _summarise(result: ScanResult) -> str:
    return (f"{sum(len(t.binaries) for t in result.targets)} binaries, "
            f"{len(result.problems)} problems")


def _edge(result: ScanResult, binary: str, request: str) -> Edge:
    for t in result.targets:
        for b in t.binaries:
            if b.location.path.endswith("/" + binary):
                for e in b.edges:
                    if e.resolution.request == request:
                        return e
    raise AssertionError(f"no edge {binary} -> {request}")


# -- unreadable files -----------------------------------------------------------------------


class TestUnreadable:
    @pytest.fixture
    def tree(self, build: Builder, tmp_path: Path) -> Path:
        build.lib("u/libok.so")
        build.lib("u/libsecret.so")
        (tmp_path / "u" / "deny").mkdir()
        build.lib("u/deny/libhidden.so")
        return tmp_path / "u"

    def test_head_permission_denied(self, tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        real_open = os.open

        def deny(path: Any, flags: int, *args: Any, **kw: Any) -> int:
            if str(path).endswith("libsecret.so"):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, *args, **kw)

        monkeypatch.setattr(os, "open", deny)
        result = unveil.scan(str(tree))
        assert _problems_at(result, "libsecret.so")
        assert [p.kind for p in result.problems] == [ProblemKind.SOURCE]
        assert "libok.so" in _summarise_names(result)

    def test_open_permission_denied(self, tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The magic bytes are readable, the file is not when it is opened to parse."""
        opened: list[str] = []
        real_os_open = os.open

        def check(path: Any) -> None:
            if str(path).endswith("libsecret.so"):
                opened.append(str(path))
                if len(opened) > 1:
                    raise PermissionError(13, "Permission denied", str(path))

        def deny(path: Any, *args: Any, **kw: Any) -> Any:
            check(path)
            return open(path, *args, **kw)

        def os_deny(path: Any, *args: Any, **kw: Any) -> Any:
            check(path)
            return real_os_open(path, *args, **kw)

        monkeypatch.setattr(fs_module, "open", deny, raising=False)
        monkeypatch.setattr(os, "open", os_deny)
        result = unveil.scan(str(tree))
        msgs = _problems_at(result, "libsecret.so")
        assert msgs
        assert "Permission denied" in msgs[0]
        assert "libok.so" in _summarise_names(result)

    def test_directory_permission_denied(self, tree: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
        real_scandir = os.scandir

        def deny(path: Any = ".") -> Any:
            if str(path).endswith("/deny"):
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", deny)
        result = unveil.scan(str(tree))
        assert [p.location for p in result.problems] == [str(tree / "deny")]
        assert "libhidden.so" not in _summarise_names(result)
        assert main(["scan", "--strict", str(tree)]) == 2

    def test_unreadable_wheel(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
        whl = tmp_path / "pkg-1.0-py3-none-any.whl"
        _wheel(whl, {"pkg/__init__.py": b""})
        real_open, real_os_open = open, os.open

        def deny(path: Any, *args: Any, **kw: Any) -> Any:
            if str(path) == str(whl):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kw)

        def os_deny(path: Any, *args: Any, **kw: Any) -> Any:
            if str(path) == str(whl):
                raise PermissionError(13, "Permission denied", str(path))
            return real_os_open(path, *args, **kw)

        monkeypatch.setattr("builtins.open", deny)
        monkeypatch.setattr(os, "open", os_deny)
        with pytest.raises(TargetError):
            unveil.scan(str(whl))
        assert main(["scan", str(whl)]) == 2
        assert "Traceback" not in capsys.readouterr().err


def _summarise_names(result: ScanResult) -> set[str]:
    return {b.location.path.rsplit("/", 1)[1] for t in result.targets for b in t.binaries}


# -- wheels ---------------------------------------------------------------------------------


def _wheel(path: Path, members: dict[str, bytes],
           compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as z:
        z.writestr("pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: pkg\n")
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            z.writestr(info, data)
    return path


def _patch_member(path: Path, name: str, patch: Callable[[bytearray, int, int], None]) -> None:
    """Apply ``patch(raw, local_header_offset, central_header_offset)`` for one member."""
    raw = bytearray(path.read_bytes())
    central = raw.find(b"PK\x01\x02")
    while central >= 0:
        nlen, = struct.unpack_from("<H", raw, central + 28)
        if raw[central + 46:central + 46 + nlen] == name.encode():
            break
        central = raw.find(b"PK\x01\x02", central + 4)
    assert central >= 0
    local, = struct.unpack_from("<I", raw, central + 42)
    assert raw[local:local + 4] == b"PK\x03\x04"
    patch(raw, local, central)
    path.write_bytes(bytes(raw))


EXT = "pkg/_ext.cpython-311-x86_64-linux-gnu.so"
WHEEL = "pkg-1.0-cp311-cp311-linux_x86_64.whl"


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("wheels")
    (d / "m").mkdir()
    return d


def _fuzz_wheel(directory: Path, elves: Elves) -> bytes:
    """A wheel with a deflated and a stored extension module (built once per module)."""
    whl = directory / WHEEL
    if not whl.exists():
        with zipfile.ZipFile(whl, "w") as z:
            z.writestr("pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: pkg\n")
            z.writestr(zipfile.ZipInfo(EXT), elves.lib, compress_type=zipfile.ZIP_DEFLATED)
            z.writestr(zipfile.ZipInfo("pkg/libstored.so"), elves.lib,
                       compress_type=zipfile.ZIP_STORED)
    return whl.read_bytes()


def _zip_sites(raw: bytes) -> list[Site]:
    """The fields of every local header, central directory entry and the end record."""
    sites: list[Site] = []
    layouts = {
        b"PK\x03\x04": ((6, 2, "flags"), (8, 2, "method"), (18, 4, "csize"), (22, 4, "usize"),
                        (26, 2, "nlen"), (28, 2, "elen")),
        b"PK\x01\x02": ((8, 2, "flags"), (10, 2, "method"), (20, 4, "csize"),
                        (24, 4, "usize"), (28, 2, "nlen"), (30, 2, "elen"), (32, 2, "clen"),
                        (38, 4, "external_attr"), (42, 4, "lho")),
        b"PK\x05\x06": ((8, 2, "n_here"), (10, 2, "count"), (12, 4, "cd_size"),
                        (16, 4, "cd_off"), (20, 2, "comment_len")),
    }
    for sig, fields in layouts.items():
        at = raw.find(sig)
        while at >= 0:
            sites += [Site(at + o, w, f"{sig[2:].hex()}.{n}") for o, w, n in fields]
            at = raw.find(sig, at + 4)
    return [s for s in sites if s.offset + s.width <= len(raw)]


class TestWheels:
    @pytest.mark.parametrize("content", [b"", b"not a zip at all\n", b"PK\x03\x04" + bytes(40),
                                         b"PK\x05\x06" + bytes(10),
                                         b"x" * 10 + b"PK\x05\x06" + bytes(10)])
    def test_not_a_zip(self, tmp_path: Path, content: bytes,
                       capsys: pytest.CaptureFixture[str]) -> None:
        whl = tmp_path / "bad-1.0-py3-none-any.whl"
        whl.write_bytes(content)
        with pytest.raises(TargetError):
            unveil.scan(str(whl))
        assert main(["scan", str(whl)]) == 2
        err = capsys.readouterr().err
        assert "unveil:" in err
        assert "Traceback" not in err

    @pytest.mark.parametrize("cut", [1, 10, 21, 22, 30, 1000, -10, -100])
    def test_truncated_zip(self, elves: Elves, tmp_path: Path, cut: int) -> None:
        whl = _wheel(tmp_path / WHEEL, {EXT: elves.lib})
        whole = whl.read_bytes()
        whl.write_bytes(whole[:cut] if cut < 0 else whole[:len(whole) - cut])
        with pytest.raises(TargetError):
            unveil.scan(str(whl))

    def test_zip64_extra_shorter_than_it_claims(self, elves: Elves, tmp_path: Path) -> None:
        whl = tmp_path / WHEEL
        with zipfile.ZipFile(whl, "w") as z:
            z.writestr("pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: pkg\n")
            info = zipfile.ZipInfo(EXT)
            info.extra = struct.pack("<HH", 1, 24) + bytes(8)
            z.writestr(info, elves.lib)

        def zip64_sizes(raw: bytearray, local: int, central: int) -> None:
            struct.pack_into("<I", raw, central + 20, 0xFFFFFFFF)

        _patch_member(whl, EXT, zip64_sizes)
        try:
            result = unveil.scan(str(whl))
        except TargetError:
            return
        assert all(p.location == f"{whl}!{EXT}" for p in result.problems), result.problems

    def test_unsafe_member_names(self, elves: Elves, tmp_path: Path) -> None:
        work = tmp_path / "w"
        work.mkdir()
        whl = _wheel(work / WHEEL, {
            "../evil.so": elves.lib, "/abs.so": elves.lib, "pkg/../../evil2.so": elves.lib,
            "pkg\\..\\..\\evil3.so": elves.lib, EXT: elves.lib})
        before = _files_under(tmp_path)
        cwd_before = set(os.listdir("."))
        result = unveil.scan(str(whl))
        assert main(["scan", str(whl)]) == 0
        assert main(["scan", "--strict", str(whl)]) == 2
        assert _files_under(tmp_path) == before
        assert set(os.listdir(".")) == cwd_before
        for bad in ("/evil.so", "/abs.so", "/evil2.so"):
            assert not Path(bad).exists()
        located = {p.location for p in result.problems}
        for name in ("../evil.so", "/abs.so", "pkg/../../evil2.so", "pkg\\..\\..\\evil3.so"):
            assert f"{whl}!{name}" in located
        assert all(p.kind is ProblemKind.SOURCE for p in result.problems)
        assert _summarise_names(result) == {"_ext.cpython-311-x86_64-linux-gnu.so"}

    def test_declared_size_bomb(self, elves: Elves, tmp_path: Path) -> None:
        whl = _wheel(tmp_path / WHEEL, {EXT: elves.lib, "pkg/libok.so": elves.lib})

        def declare_huge(raw: bytearray, local: int, central: int) -> None:
            struct.pack_into("<I", raw, local + 22, 0xF0000000)
            struct.pack_into("<I", raw, central + 24, 0xF0000000)

        _patch_member(whl, EXT, declare_huge)
        result = unveil.scan(str(whl))
        msgs = [p.message for p in result.problems if p.location.endswith(EXT)]
        assert msgs, result.problems
        assert "zip bomb" in msgs[0]
        assert _summarise_names(result) == {"libok.so"}

    def test_high_ratio_member(self, elves: Elves, tmp_path: Path) -> None:
        """64 MiB of (mostly) zeros deflates about 1000:1, right at the ratio limit: refused
        as a bomb or read lazily, but quickly and in bounded memory either way."""
        whl = tmp_path / WHEEL
        size = 64 << 20
        with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            info = zipfile.ZipInfo(EXT)
            info.compress_type = zipfile.ZIP_DEFLATED
            with z.open(info, "w") as f:
                f.write(elves.lib)
                zeros = bytes(1 << 20)
                for _ in range(size // len(zeros) - 1):
                    f.write(zeros)
                f.write(bytes(len(zeros) - len(elves.lib)))
            info = z.getinfo(EXT)
        assert info.file_size == size
        assert info.file_size > 900 * info.compress_size

        def run() -> str:
            result = unveil.scan(str(whl))
            msgs = [p.message for p in result.problems if p.location.endswith(EXT)]
            names = _summarise_names(result)
            assert msgs or names == {EXT.rsplit("/", 1)[1]}, result.problems
            return "bomb refused" if msgs else "parsed"

        outcome = _bounded(run, seconds=5, memory=512 << 20)
        assert outcome.startswith("ok:"), outcome

    @pytest.mark.parametrize("size", [0, 17 << 20])
    def test_bad_crc(self, elves: Elves, tmp_path: Path, size: int) -> None:
        """CRCs are not verified by design (only the ranges a parser needs are inflated):
        a wrong CRC must at least never be a traceback, even when the reader reaches the
        member's end."""
        data = bytearray(elves.lib) + bytes(max(size - len(elves.lib), 0))
        if size:
            phoff, segs = _segments(elves.lib)
            note = next(i for i, s in enumerate(segs) if s.type == PT_NOTE)
            # the note segment at the member's last bytes, so the reader reaches its end
            struct.pack_into("<QQQQQ", data, phoff + 56 * note + 8, size - 32, 0, 0, 32, 32)
        for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            whl = _wheel(tmp_path / WHEEL, {EXT: bytes(data), "pkg/libok.so": elves.lib},
                         compression=method)

            def flip_crc(raw: bytearray, local: int, central: int) -> None:
                raw[local + 14] ^= 0xFF
                raw[central + 16] ^= 0xFF

            _patch_member(whl, EXT, flip_crc)
            result = unveil.scan(str(whl))
            names = _summarise_names(result)
            assert "libok.so" in names
            assert EXT.rsplit("/", 1)[1] in names or [p.location for p in result.problems] == [
                f"{whl}!{EXT}"]

    def test_size_mismatch_member(self, elves: Elves, tmp_path: Path) -> None:
        whl = _wheel(tmp_path / WHEEL, {EXT: elves.lib}, compression=zipfile.ZIP_STORED)

        def shrink(raw: bytearray, local: int, central: int) -> None:
            for at in (local + 22, central + 24):
                struct.pack_into("<I", raw, at, len(elves.lib) - 100)

        _patch_member(whl, EXT, shrink)
        result = unveil.scan(str(whl))
        assert [p.location for p in result.problems] == [f"{whl}!{EXT}"]

    def test_member_past_the_end(self, elves: Elves, tmp_path: Path) -> None:
        whl = _wheel(tmp_path / WHEEL, {EXT: elves.lib, "pkg/libok.so": elves.lib})

        def grow(raw: bytearray, local: int, central: int) -> None:
            for at in (local + 18, central + 20):
                struct.pack_into("<I", raw, at, 0x7FFFFFF)

        _patch_member(whl, EXT, grow)
        result = unveil.scan(str(whl))
        assert [p.location for p in result.problems] == [f"{whl}!{EXT}"]
        assert _summarise_names(result) == {"libok.so"}

    def test_unsupported_compression(self, elves: Elves, tmp_path: Path) -> None:
        whl = _wheel(tmp_path / WHEEL, {EXT: elves.lib})

        def method_99(raw: bytearray, local: int, central: int) -> None:
            struct.pack_into("<H", raw, local + 8, 99)
            struct.pack_into("<H", raw, central + 10, 99)

        _patch_member(whl, EXT, method_99)
        result = unveil.scan(str(whl))
        assert [p.location for p in result.problems] == [f"{whl}!{EXT}"]

    @pytest.mark.parametrize("where", [2, 200, 1500])
    def test_corrupt_deflate_stream(self, elves: Elves, tmp_path: Path, where: int) -> None:
        whl = _wheel(tmp_path / WHEEL, {EXT: elves.lib, "pkg/libok.so": elves.lib})

        def garble(raw: bytearray, local: int, central: int) -> None:
            nlen, xlen = struct.unpack_from("<HH", raw, local + 26)
            start = local + 30 + nlen + xlen + where
            for k in range(start, start + 40):
                raw[k] ^= 0xA5

        _patch_member(whl, EXT, garble)
        result = unveil.scan(str(whl))
        names = _summarise_names(result)
        assert "libok.so" in names
        assert EXT.rsplit("/", 1)[1] in names or [p.location for p in result.problems] == [
            f"{whl}!{EXT}"]

    def test_members_sniffed_on_threads_as_in_one(self, elves: Elves, tmp_path: Path) -> None:
        """A wheel's members are sniffed on the inflating threads when there are workers:
        the same binaries and the same located problems as one member at a time."""
        whl = _wheel(tmp_path / WHEEL, {EXT: elves.lib, "pkg/libok.so": elves.lib,
                                        "pkg/libenc.so": elves.lib, "pkg/NOTES": b"plain text",
                                        "pkg/empty.bin": b""})

        def garble(raw: bytearray, local: int, central: int) -> None:
            nlen, xlen = struct.unpack_from("<HH", raw, local + 26)
            start = local + 30 + nlen + xlen
            for k in range(start, start + 40):
                raw[k] ^= 0xA5

        def encrypt_flag(raw: bytearray, local: int, central: int) -> None:
            raw[local + 6] |= 1
            raw[central + 8] |= 1

        _patch_member(whl, EXT, garble)
        _patch_member(whl, "pkg/libenc.so", encrypt_flag)
        seen = []
        for workers in (1, 2):
            result = unveil.scan(str(whl), ScanConfig(workers=workers))
            seen.append((_summarise_names(result),
                         sorted((p.location, p.kind) for p in result.problems)))
        assert seen[0] == seen[1]
        assert seen[0][0] == {"libok.so"}
        assert [loc for loc, _kind in seen[0][1]] == sorted(
            [f"{whl}!pkg/libenc.so", f"{whl}!{EXT}"])

    def test_encrypted_member(self, elves: Elves, tmp_path: Path) -> None:
        whl = _wheel(tmp_path / WHEEL, {EXT: elves.lib, "pkg/libok.so": elves.lib})

        def encrypt_flag(raw: bytearray, local: int, central: int) -> None:
            raw[local + 6] |= 1
            raw[central + 8] |= 1

        _patch_member(whl, EXT, encrypt_flag)
        result = unveil.scan(str(whl))
        assert [p.location for p in result.problems] == [f"{whl}!{EXT}"]
        assert _summarise_names(result) == {"libok.so"}

    @FUZZ
    @given(data=st.data())
    def test_mutated_archive_structures(self, elves: Elves, wheel_dir: Path,
                                        data: st.DataObject) -> None:
        whole = _fuzz_wheel(wheel_dir, elves)
        sites = _zip_sites(whole)
        out = bytearray(whole)
        for _ in range(data.draw(st.integers(1, 3))):
            site = data.draw(st.sampled_from(sites))
            value = data.draw(_values(whole, site))
            out[site.offset:site.offset + site.width] = value.to_bytes(site.width, "little")
        whl = wheel_dir / "m" / WHEEL
        whl.write_bytes(bytes(out))
        try:
            result = unveil.scan(str(whl), ScanConfig(workers=1))
        except TargetError:
            return
        for p in result.problems:
            # inside the wheel, or the wheel itself (a mangled name can leave it no
            # .dist-info directory)
            assert p.location.startswith(f"{whl}!") or p.location == str(whl), p

    def test_backward_reads_in_a_large_deflated_member(self, tmp_path: Path) -> None:
        n = 1 << 14
        base = 0x1000
        strtab = b"\0libx.so\0V1\0".ljust(16, b"\0")
        vn_at = 40 << 20       # past the retained prefix
        aux_at = vn_at + (4 << 20)  # far enough ahead to leave the inflate window
        body = bytearray(aux_at + 16 - base)
        body[:16] = strtab
        for i in range(n):
            struct.pack_into("<HHIII", body, vn_at - base + 16 * i, 1, 1, 1,
                             aux_at - (vn_at + 16 * i), 16)
        struct.pack_into("<IHHII", body, aux_at - base, 0, 0, 2, 9, 0)
        body[1 << 20:(1 << 20) + 65536] = os.urandom(65536)  # keep the ratio below 1000
        elf = synth_elf(data=bytes(body), data_off=base, dyn=[
            (DT_STRTAB, base), (DT_STRSZ, len(strtab)), (DT_VERNEED, vn_at),
            (DT_VERNEEDNUM, n)])
        whl = _wheel(tmp_path / WHEEL, {EXT: elf})
        outcome = _bounded(lambda: _summarise(unveil.scan(str(whl))), seconds=4)
        assert outcome.startswith("ok:"), outcome


# -- roots ----------------------------------------------------------------------------------


@pytest.fixture
def root(build: Builder, tmp_path: Path) -> Path:
    """A sysroot with the multiarch layout and an executable needing a library in it."""
    r = tmp_path / "root"
    lib = build.lib("root/usr/lib/x86_64-linux-gnu/libdep.so.1")
    build.exe("root/opt/prog", needs=[str(lib)])
    (r / "etc").mkdir()
    (r / "lib").symlink_to("usr/lib")
    return r


def _scan_root(r: Path, target: str = "/opt/prog") -> ScanResult:
    return unveil.scan(str(r) + target, ScanConfig(root=str(r)))


class TestRoots:
    @pytest.mark.parametrize("content", [b"", b"garbage" * 10, b"glibc-ld.so.cache1.1",
                                         b"glibc-ld.so.cache1.1" + struct.pack("<II", 1000, 0)
                                         + bytes(20)])
    def test_garbage_cache(self, root: Path, content: bytes) -> None:
        (root / "etc" / "ld.so.cache").write_bytes(content)
        result = _scan_root(root)
        cache = [p for p in result.problems if "ld.so.cache" in p.location]
        assert [p.kind for p in cache] == [ProblemKind.LOADER]
        # (this root has no libc: libdep's own need is not found, and that is said too)
        assert all("libc.so.6" in p.message for p in result.problems if p not in cache)
        assert _edge(result, "prog", "libdep.so.1").resolution.outcome is Outcome.FOUND

    @pytest.mark.parametrize("db", ["var/lib/rpm/rpmdb.sqlite", "var/lib/rpm/Packages"])
    def test_garbage_rpm_database_is_a_problem(self, root: Path, db: str) -> None:
        (root / db).parent.mkdir(parents=True)
        (root / db).write_bytes(b"not a database" * 100)
        result = _scan_root(root)
        assert _edge(result, "prog", "libdep.so.1").resolution.outcome is Outcome.FOUND
        assert any("rpm" in p.message for p in result.problems), result.problems

    def test_cache_with_entries_beyond_the_file(self, root: Path) -> None:
        (root / "etc" / "ld.so.cache").write_bytes(b"ld.so-1.7.0\0" + struct.pack("<I", 5))
        result = _scan_root(root)
        assert any("ld.so.cache" in p.location for p in result.problems)

    def test_truncated_host_cache(self) -> None:
        if not HOST_CACHE.is_file():
            pytest.skip("no host ld.so.cache")
        whole = HOST_CACHE.read_bytes()
        for n in range(len(whole) + 1):
            with contextlib.suppress(FormatError):
                parse_ld_cache(BytesBlob(whole[:n]), "ld.so.cache")

    @FUZZ
    @given(data=st.data())
    def test_mutated_host_cache_header(self, data: st.DataObject) -> None:
        if not HOST_CACHE.is_file():
            pytest.skip("no host ld.so.cache")
        whole = bytearray(HOST_CACHE.read_bytes()[:4096])
        for _ in range(data.draw(st.integers(1, 3))):
            at = data.draw(st.sampled_from([20, 24, 28, 32, 48, 52, 56, 60, 72, 76, 80]))
            value = data.draw(st.sampled_from([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 64, 4096, 2048]))
            struct.pack_into("<I", whole, at, value)
        with contextlib.suppress(FormatError):
            parse_ld_cache(BytesBlob(bytes(whole)), "ld.so.cache")

    def test_looping_cache_path(self, root: Path) -> None:
        (root / "etc" / "ld.so.cache").symlink_to("ld.so.cache")
        result = _scan_root(root)
        assert any("ld.so.cache" in p.location for p in result.problems)
        assert _edge(result, "prog", "libdep.so.1").resolution.outcome is Outcome.FOUND

    @pytest.mark.parametrize("loop", ["dir", "entry"])
    def test_looping_library_dir_in_ld_so_conf(self, root: Path, loop: str) -> None:
        (root / "etc" / "ld.so.conf").write_text("/opt/lib\n")
        (root / "opt" / "lib").mkdir()
        if loop == "dir":
            (root / "opt" / "lib").rmdir()
            (root / "opt" / "lib").symlink_to("lib")
        else:
            (root / "opt" / "lib" / "libloop.so").symlink_to("libloop.so")
        result = _scan_root(root)
        assert _edge(result, "prog", "libdep.so.1").resolution.outcome is Outcome.FOUND

    def test_looping_library_in_trusted_dir(self, root: Path) -> None:
        libdir = root / "usr" / "lib" / "x86_64-linux-gnu"
        (libdir / "libdep.so.1").rename(libdir / "libdep.so.1.0")
        (libdir / "libdep.so.1").symlink_to("libdep.so.1")
        result = _scan_root(root)
        edge = _edge(result, "prog", "libdep.so.1")
        assert edge.resolution.outcome is Outcome.NOT_FOUND
        assert any(a.verdict is Verdict.LOOP for a in edge.resolution.attempts)

    def test_cache_pointing_into_a_loop(self, root: Path) -> None:
        if not HOST_CACHE.is_file():
            pytest.skip("no host ld.so.cache")
        (root / "etc" / "ld.so.cache").write_bytes(HOST_CACHE.read_bytes())
        libdir = root / "usr" / "lib" / "x86_64-linux-gnu"
        (libdir / "libc.so.6").symlink_to("libc.so.6")
        result = _scan_root(root)
        edge = _edge(result, "prog", "libc.so.6")
        assert edge.resolution.outcome is Outcome.NOT_FOUND

    def test_fifo_cache(self, root: Path) -> None:
        os.mkfifo(root / "etc" / "ld.so.cache")
        outcome = _bounded(lambda: _summarise(_scan_root(root)), seconds=2)
        assert outcome.startswith("ok:"), outcome

    def test_cli_root_with_looping_usr(self, root: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
        prog = root / "opt" / "prog"
        os.rename(root / "usr", root / "usr.real")
        (root / "usr").symlink_to("usr")
        assert main(["scan", "--root", str(root), str(prog)]) in (0, 2)
        assert "Traceback" not in capsys.readouterr().err

    def test_detect_host_with_fifo_libc(self, root: Path) -> None:
        os.mkfifo(root / "usr" / "lib" / "x86_64-linux-gnu" / "libc.so.6")
        outcome = _bounded(lambda: detect_host(str(root)).glibc.lib, seconds=2)
        assert outcome.startswith("ok:"), outcome


# -- a scan over mutated binaries -----------------------------------------------------------


@pytest.fixture(scope="module")
def scan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutated")


def _scan_pair(directory: Path, lib: bytes, exe: bytes) -> ScanResult:
    (directory / "libbad.so").write_bytes(lib)
    (directory / "prog").write_bytes(exe)
    start = time.monotonic()
    result = unveil.scan(str(directory))
    assert time.monotonic() - start < DEADLINE_MS / 1000
    names = _summarise_names(result)
    for name in ("libbad.so", "prog"):
        assert name in names or _problems_at(result, name), (name, result.problems)
    for p in result.problems:
        assert p.location.startswith(str(directory)), p
    return result


class TestScanOfMutatedBinaries:
    def test_unmutated(self, elves: Elves, scan_dir: Path) -> None:
        result = _scan_pair(scan_dir, elves.lib, elves.exe)
        assert not result.problems
        assert _edge(result, "prog", "libbad.so").resolution.outcome is Outcome.FOUND

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def test_scan_never_raises(self, elves: Elves, scan_dir: Path,
                               data: st.DataObject) -> None:
        lib = data.draw(mutations(elves.lib, elf_sites(elves.lib)))
        exe = data.draw(mutations(elves.exe, elf_sites(elves.exe)))
        _scan_pair(scan_dir, lib, exe)


# --------------------------------------------------------------- found by an outside fuzzing run

def test_member_thousands_of_directories_deep(tmp_path: Path) -> None:
    whl = _wheel(tmp_path / WHEEL, {"/".join(["d"] * 3000) + "/x.so": b"\x7fELF" + bytes(60)})
    assert _bounded(lambda: len(unveil.scan(str(whl), detect_host()).problems) >= 0,
                    seconds=30).startswith("ok")


def test_deeply_nested_json_is_a_problem(tmp_path: Path) -> None:
    """package.json / conda index.json nested beyond the JSON parser's recursion limit."""
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    tgz = tmp_path / "pkg.tgz"
    with tarfile.open(tgz, "w:gz") as t:
        info = tarfile.TarInfo("package/package.json")
        info.size = len(deep)
        t.addfile(info, io.BytesIO(deep))
    got = _bounded(lambda: [p.message for p in unveil.scan(str(tgz), detect_host()).problems],
                   seconds=30)
    assert got.startswith("ok"), got


def test_overlapping_zip_members_are_left_out(tmp_path: Path) -> None:
    """Central-directory entries pointing at one compressed stream (an overlap zip bomb)."""
    whl = _wheel(tmp_path / WHEEL, {"pkg/a.so": b"\x7fELF" + bytes(1 << 20)})
    raw = bytearray(whl.read_bytes())
    central = raw.find(b"PK\x01\x02")
    nlen, elen, clen = struct.unpack_from("<HHH", raw, central + 28)
    entry = bytes(raw[central:central + 46 + nlen + elen + clen])
    copies = b"".join(entry.replace(b"pkg/a.so", f"pkg/{i}.so".encode()) for i in range(50))
    eocd = raw.rfind(b"PK\x05\x06")
    count, = struct.unpack_from("<H", raw, eocd + 10)
    cd_size, = struct.unpack_from("<I", raw, eocd + 12)
    new = raw[:eocd] + copies
    tail = bytearray(raw[eocd:])
    struct.pack_into("<HHI", tail, 8, count + 50, count + 50, cd_size + len(copies))
    whl.write_bytes(bytes(new + tail))
    result = unveil.scan(str(whl), detect_host())
    overlaps = [p for p in result.problems if "overlaps another member" in p.message]
    assert len(overlaps) == 50


def test_nested_loader_calls_in_ruby_and_js_are_fast() -> None:
    rb = "ffi_lib(" * 3000 + "'x'" + ")" * 3000 + "\n"
    js = "koffi.load(" * 3000 + "'x'" + ")" * 3000 + ";\n"
    assert _bounded(lambda: len(detect_ruby(rb, "a.rb")[0]), seconds=20).startswith("ok")
    assert _bounded(lambda: len(detect_javascript(js, "a.js")[0]), seconds=20).startswith("ok")


def test_ld_so_conf_with_many_directories(tmp_path: Path) -> None:
    text = "\n".join(f"/d{i}" for i in range(60_000))

    def read(path: str) -> str:
        return text

    got = _bounded(lambda: len(read_ld_so_conf(read, lambda d: [])), seconds=10)
    assert got == "ok: 60000"


def test_sbom_inject_refuses_fifos_and_bad_names(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "f-1.0-py3-none-any.whl"
    os.mkfifo(fifo)
    assert _bounded(lambda: main(["sbom", "--inject", str(fifo), "-o", str(tmp_path / "o")]),
                    seconds=30) in ("ok: 2", "ok: 1")
    bad = _wheel(tmp_path / WHEEL, {"pkg/\xff.so": b"x"})
    raw = bytearray(bad.read_bytes())
    raw = raw.replace("pkg/\xff.so".encode(), b"pkg/\xff\xfe.so"[:len("pkg/\xff.so".encode())])
    bad.write_bytes(bytes(raw))
    got = _bounded(lambda: main(["sbom", "--inject", str(bad), "-o", str(tmp_path / "o")]),
                   seconds=30)
    assert got in ("ok: 2", "ok: 1"), got
    got = _bounded(lambda: main(["sbom", "--inject", str(bad), "-o", "/dev/null"]), seconds=30)
    assert got in ("ok: 2", "ok: 1"), got


def test_cli_errors_are_messages_not_tracebacks(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--root", str(tmp_path / "nowhere"), "/bin/true"]) == 2
    assert main(["scan", "--format", "json", "-o", str(tmp_path / "no/x.json"),
                 "/bin/true"]) == 2
    assert main(["trace", "--timeout", "0", "--", "true"]) == 2
    assert main(["trace", "--timeout", "nan", "--", "true"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "not a directory" in err


def test_one_unreadable_target_among_several(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    good = _wheel(tmp_path / WHEEL, {"pkg/x.py": b""})
    bad = tmp_path / "bad-1.0-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    assert main(["scan", "--format", "json", str(good), str(bad)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [t["target"] for t in doc["targets"]] == [str(good), str(bad)]
    assert "not a zip" in doc["targets"][1]["problems"][0]["message"]
    assert main(["scan", "--format", "json", str(bad)]) == 2  # alone: an input error


def test_duplicate_member_names(tmp_path: Path) -> None:
    whl = tmp_path / WHEEL
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("pkg-1.0.dist-info/METADATA", "Name: pkg\n")
        z.writestr("pkg-1.0.dist-info/RECORD", "")
        z.writestr("pkg/a.so", b"one")
        with pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("pkg/a.so", b"two")
    result = unveil.scan(str(whl), detect_host())
    assert any("appears twice" in p.message for p in result.problems)
    assert main(["sbom", "--inject", str(whl), "-o", str(tmp_path / "out")]) == 2


def test_attempts_per_resolution_are_capped(build: Builder) -> None:
    """A RUNPATH of 3,000 directories and a missing library: the search goes through all
    of them, the report keeps the first attempts, a count of the rest, and the last."""
    gone = build.lib("g/libgone.so")
    dirs = ":".join(f"/nonexistent/d{i}" for i in range(3000))
    exe = build.exe("bin/prog", needs=[str(gone)], runpath=dirs)
    gone.unlink()
    result = unveil.scan(str(exe), detect_host())
    r = _edge(result, "prog", "libgone.so").resolution
    assert r.outcome is Outcome.NOT_FOUND
    assert len(r.attempts) == 256
    assert "more candidates" in r.attempts[-2].path
