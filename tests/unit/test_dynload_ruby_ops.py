"""The Ruby evaluator's partial evaluation: array sums, ``Array()``, ``Dir[]`` globs, loop
and block variables, methods that keep what is known."""

from __future__ import annotations

from pathlib import Path

import pytest

from unveil import scan
from unveil.dynload.ruby import detect_ruby
from unveil.model import Confidence, EdgeClass, LoadSite, Outcome


def rb(src: str, file: str = "/gems/g/lib/g.rb") -> list[LoadSite]:
    sites, problems = detect_ruby(src, file)
    assert not problems
    return sites


def by_line(src: str) -> dict[int | None, list[str]]:
    out: dict[int | None, list[str]] = {}
    for s in rb(src):
        out.setdefault(s.line, []).extend(s.names)
    return out


GLOB = "/{opt,usr}/{,local/}lib{,64}/libmagic.{1.dylib,so.1*,so.4}"
MAGIC = f"""module Magic
  module Api
    extend FFI::Library

    lib_paths = Array(ENV["MAGIC_LIB"] || Dir["{GLOB}"])
    fallback_names = %w(libmagic.1.dylib libmagic.so.1 magic1.dll)
    ffi_lib(lib_paths + fallback_names)
  end
end
"""


def test_array_sum_keeps_the_known_literals() -> None:
    sites = [s for s in rb(MAGIC) if s.line == 7]
    exact = [s for s in sites if s.confidence is not Confidence.LOW]
    assert len(exact) == 1
    assert exact[0].names == ("libmagic.1.dylib", "libmagic.so.1", "magic1.dll")
    assert "overridable by $MAGIC_LIB" in exact[0].hints
    [glob] = [s for s in sites if s.confidence is Confidence.LOW]
    assert len(glob.names) == 24  # 2 x 2 x 2 x 3 brace alternatives
    assert "/usr/lib64/libmagic.so.1*" in glob.names
    assert "/usr/local/lib/libmagic.so.4" in glob.names  # listed only if it exists


@pytest.mark.parametrize(("src", "names"), [
    ("ffi_lib [ENV['X'], 'libb.so.1'] + ['libc.so.2']", ["libb.so.1", "libc.so.2"]),
    ("ffi_lib(unknown_call() + %w[liba.so.1])", ["liba.so.1"]),
    ("ffi_lib Array('liba.so.1') + Array(nil) + Array(['libb.so.2'])",
     ["liba.so.1", "libb.so.2"]),
    ("LIBS = %w[liba.so.1 libb.so.2].freeze\nffi_lib LIBS.compact.uniq", ["liba.so.1",
                                                                       "libb.so.2"]),
    ("ffi_lib ENV['A'] || other || 'libq.so.3'", ["libq.so.3"]),
    ("ffi_lib %w[lib64 libx.so.1].join('/')", ["lib64/libx.so.1"]),
    ("ffi_lib ['LIBY.SO.1', 'q'].first.downcase", ["liby.so.1", "q"]),
    ("@lib ||= 'libr.so.1'\nffi_lib @lib", ["libr.so.1"]),
])
def test_partial_evaluation(src: str, names: list[str]) -> None:
    got = by_line(src)
    assert got[src.count("\n") + 1] == names


def test_splats_interpolations_and_platform_constants() -> None:
    src = ("module X\n  extend FFI::Library\n  LIBS = %w[libfoo.so.1 libbar.so.2]\n"
           "  ffi_lib *LIBS\n"
           "  ffi_lib FFI.map_library_name('sodium'), FFI.map_library_name('libz.so.1')\n"
           "  ffi_lib \"/opt/lib/libq.#{RbConfig::CONFIG['DLEXT']}\"\n"
           "  ffi_lib \"libw.#{FFI::Platform::LIBSUFFIX}\"\n"
           "  ffi_lib \"#{LIBS.first}\"\n"
           "  v = 'libv'\n  ffi_lib \"#{v + '.so.1'}\"\n"
           "  ffi_lib \"#{RbConfig::CONFIG['libdir']}/libr.so.1\"\n"
           "end\n")
    sites = rb(src)
    got = by_line(src)
    assert got[4] == ["libfoo.so.1", "libbar.so.2"]
    assert len([s for s in sites if s.line == 4]) == 2  # each argument is loaded
    assert got[5] == ["libsodium.so", "libz.so.1"]
    assert got[6] == ["/opt/lib/libq.so"]
    assert got[7] == ["libw.so"]
    assert got[8] == ["libfoo.so.1", "libbar.so.2"]
    assert got[10] == ["libv.so.1"]
    assert got[11] == ["*/libr.so.1"]
    assert not any(s.stem for s in sites)


def test_loop_and_block_variables_are_elements() -> None:
    src = ("module L\n  extend FFI::Library\n"
           "  NAMES = %w[liba.so.1 libb.so.2]\n"
           "  for n in NAMES\n    ffi_lib n\n  end\n"
           "  ['libc.so.3', 'libd.so.4'].each do |lib|\n    ffi_lib lib\n  end\n"
           "  %w[libe.so.5].each_with_index { |x, i| ffi_lib(x) }\n"
           "  Foo::BAR.each { |y| ffi_lib y }\n"
           "end\n")
    got = by_line(src)
    assert got[5] == ["liba.so.1", "libb.so.2"]
    assert got[8] == ["libc.so.3", "libd.so.4"]
    assert got[10] == ["libe.so.5"]
    assert got[11] == []  # unknown, still a site with its line


@pytest.mark.parametrize("src", [
    "a = a + a\nffi_lib a",
    "for x in x\n ffi_lib x\nend",
    "x = [x] + x\nx.each { |x| ffi_lib x }",
    "ffi_lib Dir['" + "{a,b}" * 40 + "']",
    "ffi_lib Array(" * 200 + "'x'" + ")" * 200,
    "ffi_lib " + " + ".join(["[" * 30 + "'l.so'" + "]" * 30] * 30),
    ")].each do |x| ffi_lib x end",
    "ffi_lib Dir[",
    "ffi_lib Array(",
    ".each { |",
    'a = "#{a}#{a}"\nffi_lib "#{a}"',
    'ffi_lib "#{"#{"#{"#{x}"}"}"}"',
    "ffi_lib *" * 100,
])
def test_hostile_expressions_terminate(src: str) -> None:
    sites, _ = detect_ruby(src, "/g.rb")
    for s in sites:
        assert len(s.names) <= 64


def test_dir_glob_is_never_reported_missing(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "vendor").mkdir()
    (lib / "vendor" / "libbundled.so").write_bytes(b"\x7fELF")
    (lib / "g.rb").write_text(
        "module G\n  extend FFI::Library\n"
        "  ffi_lib Dir[File.join(__dir__, '{vendor,nope}', 'lib{bundled,gone}.so')] +\n"
        "          Dir.glob('/unveil-nowhere/lib*.so')\n"
        "end\n")
    loads = [d for d in scan(str(tmp_path)).targets[0].dynamic_loads if d.site.language == "ruby"]
    assert loads
    for d in loads:
        assert d.site.line == 3
        assert d.site.confidence is Confidence.LOW
        assert all(e.edge_class is not EdgeClass.MISSING for e in d.edges)
    found = [e.resolution.path for d in loads for e in d.edges
             if e.resolution.outcome is Outcome.FOUND]
    assert found == [f"{lib}/vendor/libbundled.so"]
