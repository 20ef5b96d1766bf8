"""Each ld.so(8) rule, checked on compiled fixtures against glibc's own trace mode."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import RTLD, Builder, OracleCheck, have, host_config, unveil_ldd
from unveil import scan
from unveil.formats import parse_binary
from unveil.formats.blob import BytesBlob


def test_direct_rpath(build: Builder, agree: OracleCheck) -> None:
    lib = build.lib("a/libone.so")
    exe = build.exe("bin/prog", needs=[str(lib)], rpath=str(lib.parent))
    lines = agree(str(exe))
    assert f"\tlibone.so => {lib}" in lines


def test_rpath_is_inherited_down_the_loader_chain(build: Builder, agree: OracleCheck) -> None:
    # prog (RPATH=deep) -> libmid (no RPATH/RUNPATH) -> libleaf found via prog's RPATH.
    leaf = build.lib("deep/libleaf.so")
    mid = build.lib("mid/libmid.so", needs=[str(leaf)])
    exe = build.exe("bin/prog", needs=[str(mid)], rpath=f"{mid.parent}:{leaf.parent}")
    lines = agree(str(exe))
    assert f"\tlibleaf.so => {leaf}" in lines
    # Inspected alone, libmid cannot find libleaf: ld.so agrees.
    alone = agree(str(mid))
    assert "\tlibleaf.so => not found" in alone


def test_runpath_is_not_inherited(build: Builder, agree: OracleCheck) -> None:
    leaf = build.lib("deep/libleaf.so")
    mid = build.lib("mid/libmid.so", needs=[str(leaf)])
    exe = build.exe("bin/prog", needs=[str(mid)], runpath=f"{mid.parent}:{leaf.parent}")
    lines = agree(str(exe))
    assert "\tlibleaf.so => not found" in lines


def test_object_with_runpath_ignores_its_rpath_and_the_chain(build: Builder,
                                                             agree: OracleCheck) -> None:
    leaf = build.lib("deep/libleaf.so")
    # mid has RUNPATH pointing nowhere: the executable's RPATH is not consulted for it.
    mid = build.lib("mid/libmid.so", needs=[str(leaf)], runpath="/nonexistent")
    exe = build.exe("bin/prog", needs=[str(mid)], rpath=f"{mid.parent}:{leaf.parent}")
    lines = agree(str(exe))
    assert "\tlibleaf.so => not found" in lines


def test_ld_library_path_between_rpath_and_runpath(build: Builder, agree: OracleCheck) -> None:
    a = build.lib("a/libx.so")
    b = build.lib("b/libx.so")
    c = build.lib("c/libx.so")
    exe_rpath = build.exe("bin/rp", needs=[str(a)], rpath=str(a.parent))
    exe_runpath = build.exe("bin/run", needs=[str(a)], runpath=str(c.parent))
    assert f"\tlibx.so => {a}" in agree(str(exe_rpath), ld_library_path=str(b.parent))
    assert f"\tlibx.so => {b}" in agree(str(exe_runpath), ld_library_path=str(b.parent))
    assert f"\tlibx.so => {c}" in agree(str(exe_runpath))


def test_ld_library_path_empty_entry_is_cwd(build: Builder, agree: OracleCheck) -> None:
    lib = build.lib("w/libcwd.so")
    exe = build.exe("bin/prog", needs=[str(lib)])
    lines = agree(str(exe), cwd=str(lib.parent), ld_library_path=":/nonexistent")
    assert "\tlibcwd.so" in lines


def test_origin_keeps_the_spelling_and_symlinks(build: Builder, agree: OracleCheck,
                                                 tmp_path: Path) -> None:
    lib = build.lib("pkg/lib/liborig.so")
    exe = build.exe("pkg/bin/prog", needs=[str(lib)], rpath="$ORIGIN/../lib")
    lines = agree(str(exe))
    assert f"\tliborig.so => {tmp_path}/pkg/bin/../lib/liborig.so" in lines
    # Reached through a symlink in another directory: $ORIGIN is the link's directory.
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "elsewhere" / "prog"
    link.symlink_to(exe)
    lines = agree(str(link))
    assert "\tliborig.so => not found" in lines
    # Relative spelling of the main program, as ldd is usually run.
    agree("./prog", cwd=str(exe.parent))
    agree("pkg/bin/prog", cwd=str(tmp_path))


def test_origin_of_a_library_found_through_a_symlinked_dir(build: Builder, agree: OracleCheck,
                                                           tmp_path: Path) -> None:
    inner = build.lib("real/sub/libinner.so")
    outer = build.lib("real/libouter.so", needs=[str(inner)], rpath="$ORIGIN/sub")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    exe = build.exe("bin/prog", needs=[str(outer)], rpath=str(tmp_path / "alias"))
    lines = agree(str(exe))
    assert f"\tlibinner.so => {tmp_path}/alias/sub/libinner.so" in lines


def test_lib_and_platform_tokens(build: Builder, agree: OracleCheck, tmp_path: Path) -> None:
    g = host_config().glibc
    lib = build.lib(f"t/{g.lib}/libtok.so")
    plat = build.lib(f"t/{g.platform}/libplat.so")
    exe = build.exe("bin/prog", needs=[str(lib), str(plat)],
                    rpath=f"{tmp_path}/t/$LIB:{tmp_path}/t/${{PLATFORM}}")
    lines = agree(str(exe))
    assert f"\tlibtok.so => {lib}" in lines
    assert f"\tlibplat.so => {plat}" in lines


def test_glibc_hwcaps_subdirectory_first(build: Builder, agree: OracleCheck) -> None:
    levels = host_config().glibc.hwcaps
    if not levels:
        pytest.skip("this CPU/glibc has no glibc-hwcaps levels")
    plain = build.lib("h/libhw.so")
    best = build.lib(f"h/glibc-hwcaps/{levels[-1]}/libhw.so")
    exe = build.exe("bin/prog", needs=[str(plain)], rpath=str(plain.parent))
    lines = agree(str(exe))
    assert f"\tlibhw.so => {best}" in lines


def test_legacy_hwcaps_subdirectory(build: Builder, agree: OracleCheck) -> None:
    g = host_config().glibc
    if not g.legacy_hwcaps:
        pytest.skip("glibc >= 2.37 has no legacy hwcaps subdirectories")
    plain = build.lib("h/liblegacy.so")
    best = build.lib("h/tls/liblegacy.so")
    exe = build.exe("bin/prog", needs=[str(plain)], rpath=str(plain.parent))
    lines = agree(str(exe))
    assert f"\tliblegacy.so => {best}" in lines


def test_soname_match_reuses_loaded_object(build: Builder, agree: OracleCheck) -> None:
    # The file is libreal.so.1 but its SONAME is libalias.so.1; a second object asks
    # for the SONAME and must get the loaded one, not a search.
    real = build.lib("a/libreal.so.1", soname="libalias.so.1")
    user = build.lib("b/libuser.so", needs=[str(real)])
    # prog needs libalias.so.1 through an explicit path first, then libuser.
    exe = build.exe("bin/prog", needs=[str(user)], rpath=f"{real.parent}:{user.parent}")
    agree(str(exe))


def test_first_loaded_wins(build: Builder, agree: OracleCheck) -> None:
    a = build.lib("first/libdup.so")
    b = build.lib("second/libdup.so")
    user = build.lib("u/libuser.so", needs=[str(b)], runpath=str(b.parent))
    exe = build.exe("bin/prog", needs=[str(a), str(user)],
                    rpath=f"{a.parent}:{user.parent}")
    lines = agree(str(exe))
    assert f"\tlibdup.so => {a}" in lines
    assert str(b) not in "\n".join(lines)


def test_missing_twice(build: Builder, agree: OracleCheck, tmp_path: Path) -> None:
    gone = build.lib("gone/libgone.so")
    u1 = build.lib("u/libu1.so", needs=[str(gone)])
    u2 = build.lib("u/libu2.so", needs=[str(gone)])
    exe = build.exe("bin/prog", needs=[str(u1), str(u2)], rpath=str(u1.parent))
    gone.unlink()
    lines = agree(str(exe))
    assert lines.count("\tlibgone.so => not found") >= 1


def test_name_with_slash(build: Builder, agree: OracleCheck, tmp_path: Path) -> None:
    lib = build.lib("abs/libabs.so", soname="")
    exe = build.exe("bin/prog", needs=[str(lib)])
    lines = agree(str(exe))
    assert f"\t{lib}" in lines


def test_nodeflib_skips_cache_and_defaults(build: Builder, agree: OracleCheck) -> None:
    # ld spells it -z nodefaultlib.
    lib = build.lib("n/libnodef.so", link=["-lz"], extra=["-Wl,-z,nodefaultlib"])
    exe = build.exe("bin/prog", needs=[str(lib)], rpath=str(lib.parent))
    lines = agree(str(exe))
    assert "\tlibz.so.1 => not found" in lines


def test_wrong_machine_is_skipped(build: Builder, agree: OracleCheck) -> None:
    good = build.lib("good/libmach.so")
    bad_dir = good.parent.parent / "bad"
    bad_dir.mkdir()
    data = bytearray(good.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # EM_AARCH64
    (bad_dir / "libmach.so").write_bytes(bytes(data))
    exe = build.exe("bin/prog", needs=[str(good)], rpath=f"{bad_dir}:{good.parent}")
    lines = agree(str(exe))
    assert f"\tlibmach.so => {good}" in lines


@pytest.mark.skipif(not (have("as") and have("ld")), reason="binutils needed")
def test_wrong_class_is_skipped(build: Builder, agree: OracleCheck, tmp_path: Path) -> None:
    good = build.lib("good/libcls.so")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "c.s").write_text(".globl g\ng: ret\n")
    subprocess.run(["as", "--32", "-o", str(bad / "c.o"), str(bad / "c.s")], check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-shared", "-soname", "libcls.so", "-o",
                    str(bad / "libcls.so"), str(bad / "c.o")], check=True)
    exe = build.exe("bin/prog", needs=[str(good)], rpath=f"{bad}:{good.parent}")
    lines = agree(str(exe))
    assert f"\tlibcls.so => {good}" in lines


@pytest.mark.parametrize(("offset", "value", "message"), [
    (None, None, "invalid ELF header"),
    (5, 2, "ELF file data encoding not little-endian"),
    (7, 9, "ELF file OS ABI invalid"),
    (10, 1, "nonzero padding in e_ident"),
])
def test_invalid_candidate_is_fatal(build: Builder, agree: OracleCheck, tmp_path: Path,
                                    offset: int | None, value: int | None,
                                    message: str) -> None:
    good = build.lib("good/libbad.so")
    bad = tmp_path / "bad"
    bad.mkdir()
    if offset is None:
        (bad / "libbad.so").write_bytes(b"this is not an ELF file at all, but long enough" * 4)
    else:
        data = bytearray(good.read_bytes())
        data[offset] = value or 0
        (bad / "libbad.so").write_bytes(bytes(data))
    exe = build.exe("bin/prog", needs=[str(good)], rpath=f"{bad}:{good.parent}")
    agree(str(exe))
    _lines, fatal = unveil_ldd(str(exe))
    assert fatal is not None
    assert message in fatal


def test_short_file_is_fatal(build: Builder, agree: OracleCheck, tmp_path: Path) -> None:
    good = build.lib("good/libshort.so")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "libshort.so").write_bytes(b"\x7fELF")
    exe = build.exe("bin/prog", needs=[str(good)], rpath=f"{bad}:{good.parent}")
    agree(str(exe))


def test_directory_named_like_the_library(build: Builder, agree: OracleCheck,
                                          tmp_path: Path) -> None:
    good = build.lib("good/libdir.so")
    (tmp_path / "bad" / "libdir.so").mkdir(parents=True)
    exe = build.exe("bin/prog", needs=[str(good)], rpath=f"{tmp_path}/bad:{good.parent}")
    agree(str(exe))


def test_symlink_loop_candidate(build: Builder, agree: OracleCheck, tmp_path: Path) -> None:
    good = build.lib("good/libloop.so")
    bad = tmp_path / "bad"
    bad.mkdir()
    os.symlink("libloop.so", bad / "libloop.so")
    exe = build.exe("bin/prog", needs=[str(good)], rpath=f"{bad}:{good.parent}")
    agree(str(exe))


def test_shared_library_without_needed_is_statically_linked(build: Builder,
                                                           agree: OracleCheck) -> None:
    lib = build.lib("n/libnone.so", extra=["-nostdlib"])
    assert agree(str(lib)) == ["\tstatically linked"]


def test_system_binaries_agree(agree: OracleCheck) -> None:
    for p in ("/usr/bin/curl", "/usr/bin/python3", "/usr/bin/git", "/usr/bin/gcc"):
        if os.path.exists(p):
            agree(p)


def test_copy_of_system_binary_in_tmp(agree: OracleCheck, tmp_path: Path) -> None:
    src = "/usr/bin/curl"
    if not os.path.exists(src):
        pytest.skip("curl not installed")
    shutil.copy(src, tmp_path / "curl")
    agree(str(tmp_path / "curl"))


def _stub(build: Builder, name: str) -> str:
    """A library whose SONAME is ``name``: linking it records ``name`` verbatim as
    DT_NEEDED (a dynamic string token, an unusual number spelling...)."""
    return str(build.lib(f"stubs/{abs(hash(name))}.so", soname=name))


def test_dst_in_needed_is_expanded_before_matching(build: Builder, agree: OracleCheck) -> None:
    """dl-deps.c expands $ORIGIN in a DT_NEEDED entry before anything else: two
    libraries each needing "$ORIGIN/libx.so" load their own libx.so, printed expanded;
    "lib$PLATFORM.so" (no slash) is searched under its expanded name."""
    build.lib("a/libx.so")
    build.lib("b/libx.so")
    stub = _stub(build, "$ORIGIN/libx.so")
    liba = build.lib("a/liba.so", soname="", needs=[stub])
    libb = build.lib("b/libb.so", soname="", needs=[stub])
    lines = agree(str(build.exe("bin/prog", needs=[str(liba), str(libb)])))
    assert f"\t{build.root}/a/libx.so" in lines
    assert f"\t{build.root}/b/libx.so" in lines
    plat = host_config().glibc.platform
    build.lib(f"p/lib{plat}.so")
    exe = build.exe("bin/plat", needs=[_stub(build, "lib$PLATFORM.so")],
                    rpath=str(build.root / "p"))
    assert f"\tlib{plat}.so => {build.root}/p/lib{plat}.so" in agree(str(exe))


def test_ld_library_path_origin_and_empty(build: Builder, agree: OracleCheck) -> None:
    """$ORIGIN in LD_LIBRARY_PATH is the main program's directory; an empty
    LD_LIBRARY_PATH is ignored (not the current directory)."""
    lib = build.lib("l2/libt.so")
    exe = build.exe("bin/prog", needs=[str(lib)])
    assert f"\tlibt.so => {build.root}/bin/../l2/libt.so" in agree(
        str(exe), ld_library_path="$ORIGIN/../l2")
    assert "\tlibt.so => not found" in agree(str(exe), cwd=str(lib.parent), ld_library_path="")


def test_a_name_that_finds_a_loaded_file_names_it(build: Builder, agree: OracleCheck) -> None:
    """add_name_to_object: libalias.so found as a symlink to the loaded libreal.so becomes
    a name of that object; a later request for it matches without searching again."""
    real = build.lib("d1/libreal.so")
    (real.parent / "libalias.so").symlink_to("libreal.so")
    other = build.lib("d2/libalias.so")
    alias_stub = _stub(build, "libalias.so")
    m1 = build.lib("d1/libm1.so", needs=[alias_stub])
    m2 = build.lib("d1/libm2.so", needs=[alias_stub], runpath=str(other.parent))
    exe = build.exe("bin/prog", needs=[str(real), str(m1), str(m2)], rpath=str(real.parent))
    lines = agree(str(exe))
    assert not any("libalias.so" in line for line in lines)


def test_cache_names_compare_numbers_by_value(build: Builder, agree: OracleCheck) -> None:
    """_dl_cache_libcmp: libz.so.01 is libz.so.1."""
    lines = agree(str(build.exe("bin/prog", needs=[_stub(build, "libz.so.01")])))
    assert any(line.startswith("\tlibz.so.01 => /") for line in lines)


def test_interpreter_line_names_pt_interp(build: Builder, agree: OracleCheck) -> None:
    """The ld.so that runs prints itself under the program's PT_INTERP name."""
    for interp in ("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/nonexistent/ld.so"):
        exe = build.exe(f"bin/p{len(interp)}", extra=[f"-Wl,--dynamic-linker={interp}"])
        assert f"\t{interp} => /lib64/ld-linux-x86-64.so.2" in agree(str(exe))


def test_empty_rpath_and_needed_are_ignored(build: Builder, agree: OracleCheck) -> None:
    """An empty DT_RPATH string adds no directory (not the current one); an empty DT_NEEDED
    name loads nothing."""
    lib = build.lib("w/libt.so")
    exe = build.exe("bin/prog", needs=[str(lib), _stub(build, "")], rpath="")
    assert "\tlibt.so => not found" in agree(str(exe), cwd=str(lib.parent))


def test_names_that_are_not_utf8(build: Builder) -> None:
    """A library whose name is not UTF-8: ld.so compares the bytes and finds it; unveil's
    ldd finds it too and prints the same bytes (it said "not found")."""
    lib = build.lib(os.fsdecode(b"w/libb\xffd.so"))
    exe = build.exe("w/prog", needs=[str(lib)], runpath="$ORIGIN")
    env = {"LD_TRACE_LOADED_OBJECTS": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    want = subprocess.run([RTLD, str(exe)], capture_output=True, env=env, check=True).stdout
    got = subprocess.run([sys.executable, "-m", "unveil", "ldd", str(exe)],
                         capture_output=True, check=True).stdout
    assert got.splitlines() == [re.sub(rb" \(0x[0-9a-f]+\)$", b"", line)
                                for line in want.splitlines()]
    assert b"\tlibb\xffd.so => " + os.fsencode(lib) in got.splitlines()


def test_ld_preload(build: Builder, agree: OracleCheck, tmp_path: Path) -> None:
    """LD_PRELOAD objects load before the program's dependencies, searched as its own
    (LD_LIBRARY_PATH, RPATH, cache...); their dependencies come after the program's; a name
    already loaded loads nothing; one not found is said on stderr and ignored; tabs do not
    separate."""
    dep = build.lib("p/libpdep.so")
    pre = build.lib("p/libpre.so", needs=[str(dep)], rpath=str(dep.parent))
    other = build.lib("q/libother.so")
    mine = build.lib("m/libmine.so")
    exe = build.exe("bin/prog", needs=[str(mine)], rpath=str(mine.parent))
    lines = agree(str(exe), ld_preload=f"{pre} libother.so:libnothere.so  {pre}:libc.so.6",
                  ld_library_path=str(other.parent))
    assert lines[1:4] == [f"\t{pre}", f"\tlibother.so => {other}",
                          "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6"]
    assert lines.index(f"\tlibmine.so => {mine}") < lines.index(f"\tlibpdep.so => {dep}")
    agree(str(exe), ld_preload=f"{other}\t{pre}")  # one name, not found
    agree(str(exe), ld_preload=f"{RTLD} libmine.so")  # ld.so itself; libmine: not found yet
    agree(str(exe), ld_preload="::")


def test_ld_preload_wrong_class(build: Builder, agree: OracleCheck, tmp_path: Path) -> None:
    (tmp_path / "c.s").write_text(".globl g\ng: ret\n")
    subprocess.run(["as", "--32", "-o", str(tmp_path / "c.o"), str(tmp_path / "c.s")],
                   check=True)
    bad = tmp_path / "lib32.so"
    subprocess.run(["ld", "-m", "elf_i386", "-shared", "-o", str(bad), str(tmp_path / "c.o")],
                   check=True)
    exe = build.exe("bin/prog")
    agree(str(exe), ld_preload=str(bad))
    lib = tmp_path / "w"
    lib.mkdir()
    shutil.copy(bad, lib / "lib32.so")
    agree(str(exe), ld_preload="lib32.so", ld_library_path=str(lib))  # searched: same


def test_ldd_reads_ld_preload(build: Builder, tmp_path: Path) -> None:
    pre = build.lib("p/libpre.so")
    exe = build.exe("bin/prog")
    env = {**os.environ, "LD_PRELOAD": str(pre)}
    got = subprocess.run([sys.executable, "-m", "unveil", "ldd", str(exe)], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert got.splitlines()[1] == f"\t{pre}"


def test_symbol_versions_a_library_lacks(build: Builder, agree: OracleCheck,
                                         tmp_path: Path) -> None:
    """A library rebuilt without the symbol version a program was linked against: ld.so's
    trace goes on and says so on stderr (the program itself would not start); a library with
    no versions at all only gets a note."""
    (tmp_path / "v2.map").write_text("FOO_2.0 { global: foo; local: *; };\n")
    (tmp_path / "v1.map").write_text("FOO_1.0 { global: foo; local: *; };\n")
    code = "int foo(void) { return 1; }\n"
    lib = build.lib("v/libfoo.so", code=code, extra=[f"-Wl,--version-script={tmp_path}/v2.map"])
    (tmp_path / "m.c").write_text("int foo(void);\nint main(void) { return foo(); }\n")
    exe = tmp_path / "prog"
    subprocess.run(["gcc", "-o", str(exe), str(tmp_path / "m.c"), str(lib),
                    f"-Wl,-rpath,{lib.parent}", "-Wl,--disable-new-dtags"], check=True)
    agree(str(exe))  # nothing to say
    build.lib("v/libfoo.so", code=code, extra=[f"-Wl,--version-script={tmp_path}/v1.map"])
    warnings: list[str] = []
    agree(str(exe))
    unveil_ldd(str(exe), warnings=warnings)
    assert warnings == [f"{exe}: {lib}: version `FOO_2.0' not found (required by {exe})"]
    # A scan says the program would not start, once, where it is.
    shutil.copy(exe, lib.parent / "prog")
    result = scan(str(lib.parent), replace(host_config(), identify=False, dynload=False))
    problems = [(p.location, p.kind.value, p.message) for p in result.problems]
    assert problems == [(str(lib.parent / "prog"), "loader",
                         "ld.so would stop: needs symbol version FOO_2.0 of libfoo.so, which "
                         f"{lib} does not define (version `FOO_2.0' not found)")]
    build.lib("v/libfoo.so", code=code)  # no versions at all
    warnings.clear()
    agree(str(exe))
    unveil_ldd(str(exe), warnings=warnings)
    assert warnings == [f"{exe}: {lib}: no version information available (required by {exe})"]


# DT_FILTER / DT_AUXILIARY (dl-deps.c): the filtee is loaded with the filter object and put
# just before it in the search list and the link map, so ldd lists it first.

def test_filtee_listed_before_its_filter(build: Builder, agree: OracleCheck) -> None:
    impl = build.lib("lib/libimpl.so")
    dep = build.lib("lib/libfdep.so")
    flt = build.lib("lib/libflt.so", needs=[str(dep)], runpath="$ORIGIN",
                    extra=["-Wl,--filter=libimpl.so"])
    exe = build.exe("bin/prog", needs=[str(flt)], rpath=str(flt.parent))
    lines = agree(str(exe))
    at = {line.split(" =>")[0].strip(): i for i, line in enumerate(lines)}
    assert at["libimpl.so"] < at["libflt.so"] < at["libfdep.so"]
    assert impl.exists()


def test_missing_filtee_and_auxiliary_are_listed_not_found(build: Builder,
                                                           agree: OracleCheck) -> None:
    flt = build.lib("lib/libflt.so", extra=["-Wl,--filter=libnone.so"])
    aux = build.lib("lib/libaux.so",
                    extra=["-Wl,--auxiliary=libgone.so", "-Wl,--auxiliary=libgone2.so"])
    exe = build.exe("bin/prog", needs=[str(flt), str(aux)], rpath=str(flt.parent))
    lines = agree(str(exe))
    assert "\tlibnone.so => not found" in lines
    assert "\tlibgone2.so => not found" in lines


def test_filtee_loaded_later_moves_before_the_filter(build: Builder,
                                                     agree: OracleCheck) -> None:
    """A filtee the program also needs, after the filter: it moves up (both lists); one
    needed before the filter stays where it is."""
    impl = build.lib("lib/libimpl.so")
    early = build.lib("lib/libearly.so")
    flt = build.lib("lib/libflt.so", runpath="$ORIGIN",
                    extra=["-Wl,--filter=libimpl.so", "-Wl,--auxiliary=libearly.so"])
    exe = build.exe("bin/prog", needs=[str(early), str(flt), str(impl)],
                    rpath=str(flt.parent))
    agree(str(exe))


def test_filtee_that_is_itself_a_filter(build: Builder, agree: OracleCheck) -> None:
    inner = build.lib("lib/libinner.so")
    build.lib("lib/libmid.so", runpath="$ORIGIN", needs=[str(build.lib("lib/libmdep.so"))],
              extra=["-Wl,--filter=libinner.so"])
    outer = build.lib("lib/libouter.so", runpath="$ORIGIN",
                      needs=[str(build.lib("lib/libodep.so"))],
                      extra=["-Wl,--auxiliary=libmid.so", "-Wl,--filter=libnone.so"])
    exe = build.exe("bin/prog", needs=[str(outer)], rpath=str(outer.parent))
    agree(str(exe))
    assert inner.exists()


def test_scan_classes_filtees(build: Builder, tmp_path: Path) -> None:
    """An auxiliary filtee that is absent is optional; a filter's is missing, and a program
    whose closure holds such a filter outside the target is reported as one ld.so stops."""
    outside = build.lib("outside/libsysflt.so", extra=["-Wl,--filter=libnone.so"])
    build.lib("outside/libsysaux.so", extra=["-Wl,--auxiliary=libgone.so"])
    aux = build.lib("pkg/libaux.so", extra=["-Wl,--auxiliary=libgone.so",
                                            "-Wl,--filter=libc.so.6"])
    build.exe("pkg/prog", needs=[str(aux), str(outside.parent / "libsysaux.so")],
              rpath=f"$ORIGIN:{outside.parent}")
    build.exe("pkg/stops", needs=[str(outside)], rpath=str(outside.parent))
    result = scan(str(tmp_path / "pkg"), host_config())
    (t,) = result.targets
    by_name = {Path(b.location.path).name: b for b in t.binaries}
    facts = by_name["libaux.so"].binary.filtees
    assert {f.name: f.auxiliary for f in facts} == {"libgone.so": True, "libc.so.6": False}
    edges = {e.resolution.request: e for e in by_name["libaux.so"].edges}
    assert edges["libgone.so"].edge_class.value == "optional"
    assert edges["libc.so.6"].resolution.outcome.value == "found"
    stops = [p for p in t.problems if "ld.so would stop" in p.message]
    assert [Path(p.location).name for p in stops] == ["stops"]
    assert "libnone.so" in stops[0].message


def test_filtees_agree_with_readelf(build: Builder) -> None:
    lib = build.lib("lib/libf.so", needs=[str(build.lib("lib/libn.so"))],
                    extra=["-Wl,--auxiliary=liba.so", "-Wl,--filter=libb.so",
                           "-Wl,--auxiliary=libc2.so"])
    out = subprocess.run(["readelf", "-dW", str(lib)], capture_output=True, text=True,
                         check=True).stdout
    expected = [(m.group(2), m.group(1) == "Auxiliary")
                for m in re.finditer(r"(Auxiliary|Filter) library: \[([^\]]+)\]", out)]
    data = lib.read_bytes()
    binary, _ = parse_binary(BytesBlob(data), data[:64])
    assert [(f.name, f.auxiliary) for f in binary.filtees] == expected
    assert len(expected) == 3


def test_filtees_of_the_object_given_are_not_listed(build: Builder, agree: OracleCheck) -> None:
    """ldd of a filter library: its filtees are linked in before it, where rtld.c's trace
    (which starts after the program) never looks; their own dependencies are listed."""
    build.lib("lib/libimpl.so", needs=[str(build.lib("lib/libideep.so"))])
    flt = build.lib("lib/libflt.so", runpath="$ORIGIN",
                    extra=["-Wl,--filter=libimpl.so", "-Wl,--auxiliary=libnone.so"])
    lines = agree(str(flt))
    assert not any("libimpl.so" in line or "libnone.so" in line for line in lines)
    assert any("libideep.so" in line for line in lines)


def test_auxiliary_filtee_not_loadable_is_skipped(build: Builder, agree: OracleCheck,
                                                  tmp_path: Path) -> None:
    """dl-deps.c drops any error loading an auxiliary filtee: a first candidate that is not
    an ELF file ends its search without a line (a filter's would stop the load)."""
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "libw.so").write_text("INPUT(-lc)\n")
    build.lib("good/libw.so")
    aux = build.lib("lib/libaux.so", extra=["-Wl,--auxiliary=libw.so"])
    exe = build.exe("bin/prog", needs=[str(aux)],
                    rpath=f"{tmp_path}/txt:{tmp_path}/good:{aux.parent}")
    lines = agree(str(exe))
    assert not any("libw.so" in line for line in lines)


def test_filtee_named_as_the_vdso_moves_it(build: Builder, agree: OracleCheck) -> None:
    a = build.lib("lib/liba.so")
    fv = build.lib("lib/libfv.so", extra=["-Wl,--filter=linux-vdso.so.1"])
    agree(str(build.exe("bin/prog", needs=[str(a), str(fv)], rpath=str(a.parent))))


def test_mutual_filters_stop_the_load(build: Builder, tmp_path: Path) -> None:
    """Two libraries that are each other's filtee: dl-deps.c swaps them for ever and ld.so
    crashes (trace mode too); unveil reports the load as one that cannot happen."""
    build.lib("lib/libB.so")
    build.lib("lib/libA.so", extra=[f"-L{tmp_path}/lib", "-Wl,--filter=libB.so"])
    build.lib("lib/libB.so", extra=["-Wl,--filter=libA.so"])
    exe = build.exe("bin/prog", needs=[str(tmp_path / "lib" / "libA.so")],
                    rpath=str(tmp_path / "lib"))
    real = subprocess.run([RTLD, str(exe)], env={"LD_TRACE_LOADED_OBJECTS": "1"},
                          capture_output=True, check=False)
    assert real.returncode != 0
    _lines, fatal = unveil_ldd(str(exe))
    assert fatal is not None
    assert "each other's filtees" in fatal


def test_a_hard_link_is_the_same_object(build: Builder, agree: OracleCheck) -> None:
    """dl-load.c matches a file already loaded by device and inode: a hard link of it under
    another name (and no SONAME to tell) loads nothing more, as a filtee too."""
    lib = build.lib("lib/libq.so", soname="")
    os.link(lib, lib.parent / "libqh.so")
    exe = build.exe("bin/prog", needs=[str(lib), str(lib.parent / "libqh.so")],
                    rpath=str(lib.parent))
    lines = agree(str(exe))
    assert not any("libqh.so" in line for line in lines)
    flt = build.lib("lib/libflt.so", extra=["-Wl,--filter=libqh.so"])
    agree(str(build.exe("bin/prog2", needs=[str(lib), str(flt)], rpath=str(lib.parent))))
