"""The CLI end to end: main(argv) on real compiled packages, output checked against the
JSON schema and ldd's own output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.conftest import Builder, oracle_ldd
from tests.integration.packages import install, vendored_wheel, write_wheel
from tests.unit.test_pe import make_pe
from unveil import scan
from unveil.cli.main import main
from unveil.cli.render import _ORDER, _STYLE
from unveil.config import ScanConfig
from unveil.loader.explain import describe_rule
from unveil.model import EdgeClass, Rule


def _schema() -> dict[str, object]:
    text = resources.files("unveil").joinpath("data/scan.schema.json").read_text()
    loaded: dict[str, object] = json.loads(text)
    return loaded


def _scan_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    rc = main(["scan", "--format", "json", *args])
    out = capsys.readouterr().out
    doc: dict[str, object] = json.loads(out)
    jsonschema.validate(doc, _schema())
    return rc, doc


def _deps(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for t in doc["targets"]:  # type: ignore[attr-defined]
        for b in t["binaries"]:
            for d in b["dependencies"]:
                out[d["request"]] = d
    return out


def test_wheel_scan_classifies_every_edge(build: Builder, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    whl = vendored_wheel(build, tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl")
    rc, doc = _scan_json(capsys, str(whl))
    assert rc == 0
    deps = _deps(doc)
    assert deps["libvend-0a1b2c3d.so.1"]["class"] == "bundled"
    assert deps["libvend-0a1b2c3d.so.1"]["rule"] == "rpath"
    assert deps["libvend-0a1b2c3d.so.1"]["location"] == {
        "path": "pkg.libs/libvend-0a1b2c3d.so.1", "container": str(whl)}
    assert deps["libgone.so.3"]["class"] == "missing"
    assert deps["libgone.so.3"]["attempts"], "a missing library lists the paths tried"
    assert deps["libcublas.so.12"]["class"] == "other-distribution"
    assert deps["libcublas.so.12"]["outcome"] == "not-found"
    assert deps["libcublas.so.12"]["provider"] == "nvidia/cublas"
    assert deps["libc.so.6"]["class"] == "policy-system"
    assert doc["summary"]["missing"] == 1  # type: ignore[index]


def test_fail_on_missing_and_strict(build: Builder, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    whl = vendored_wheel(build, tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl")
    assert main(["scan", "--fail-on", "missing", str(whl)]) == 1
    assert main(["scan", "--fail-on", "system", str(whl)]) == 0
    assert main(["scan", "--fail-on", "nonsense", str(whl)]) == 2
    capsys.readouterr()


def test_environment_attributes_other_distribution(build: Builder, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    whl = vendored_wheel(build, tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl")
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    install(whl, site)
    cublas = build.lib("n/libcublas.so.12", soname="libcublas.so.12")
    nv = write_wheel(tmp_path / "nvidia_cublas-12.0-py3-none-manylinux1_x86_64.whl",
                     {"nvidia/cublas/lib/libcublas.so.12": cublas.read_bytes()},
                     dist="nvidia_cublas", version="12.0")
    install(nv, site)
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    rc, doc = _scan_json(capsys, str(tmp_path / "env"))
    assert rc == 0
    t = doc["targets"][0]  # type: ignore[index]
    assert t["kind"] == "environment"
    assert {d["name"] for d in t["distributions"]} == {"pkg", "nvidia_cublas"}
    deps = _deps(doc)
    assert deps["libcublas.so.12"]["class"] == "other-distribution"
    assert deps["libcublas.so.12"]["provider"] == "nvidia_cublas"
    assert deps["libcublas.so.12"]["rule"] == "runpath"
    assert deps["libvend-0a1b2c3d.so.1"]["class"] == "bundled"


def test_text_output(build: Builder, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whl = vendored_wheel(build, tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl")
    assert main(["scan", "-v", str(whl)]) == 0
    out = capsys.readouterr().out
    assert "pkg/_ext.cpython-311-x86_64-linux-gnu.so" in out
    assert "libgone.so.3 not found" in out
    assert "\x1b[" not in out, "no colour when not a terminal"
    # the rule names the RPATH's owner as a member, not the mount point it was resolved under
    assert "via DT_RPATH of pkg/_ext.cpython-311-x86_64-linux-gnu.so" in out
    assert "/__unveil__/" not in out
    assert "already loaded (libc.so.6)" in out


def test_text_output_of_an_environment_is_relative(build: Builder, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The tree names installed files from their distribution's directory (site-packages);
    ``-v`` and the JSON keep whole paths."""
    whl = vendored_wheel(build, tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl")
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    install(whl, site)
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert main(["scan", "--no-identify", str(tmp_path / "env")]) == 0
    out = capsys.readouterr().out
    assert "── pkg/_ext.cpython-311-x86_64-linux-gnu.so" in out
    assert f"{site}/pkg" not in out
    assert "→ pkg.libs/libvend-0a1b2c3d.so.1" in out
    assert main(["scan", "-v", "--no-identify", str(tmp_path / "env")]) == 0
    unwrapped = re.sub(r"\s*\n[\s│]*", "", capsys.readouterr().out)
    assert f"{site}/pkg/_ext.cpython-311-x86_64-linux-gnu.so" in unwrapped


def test_missing_target_is_a_usage_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path / "nope.whl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_ldd_matches_ld_so(build: Builder, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    lib = build.lib("lib/libz1.so")
    exe = build.exe("bin/prog", needs=[str(lib)], rpath="$ORIGIN/../lib")
    assert main(["ldd", str(exe)]) == 0
    got = capsys.readouterr().out.splitlines()
    _rc, expected, _err = oracle_ldd(str(exe))
    assert got == expected


@pytest.mark.skipif(not Path("/usr/bin/ldd").exists(), reason="needs glibc's ldd script")
def test_ldd_says_what_ldd_says(build: Builder, tmp_path: Path) -> None:
    """Files ldd does not trace (text, a static program, another architecture or class, a
    directory, nothing at all), alone and among others: stdout, stderr and the exit code of
    the real ldd script, word for word."""
    (tmp_path / "text").write_text("hello")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "a.c").write_text("int main(void) { return 0; }\n")
    subprocess.run(["gcc", "-static", "-o", str(tmp_path / "static"), str(tmp_path / "a.c")],
                   check=True, capture_output=True)
    (tmp_path / "c.s").write_text(".globl g\ng: ret\n")
    subprocess.run(["as", "--32", "-o", str(tmp_path / "c.o"), str(tmp_path / "c.s")],
                   check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-shared", "-o", str(tmp_path / "lib32.so"),
                    str(tmp_path / "c.o")], check=True)
    aarch64 = bytearray(Path("/bin/true").read_bytes())
    aarch64[18:20] = (183).to_bytes(2, "little")  # e_machine: EM_AARCH64
    (tmp_path / "arm").write_bytes(bytes(aarch64))
    (tmp_path / "dir").mkdir()
    exe = build.exe("bin/prog")
    cases = [["text"], ["empty"], ["static"], ["lib32.so"], ["arm"], ["dir"], ["nothing"],
             [str(exe), "text", "nothing"]]
    for args in cases:
        real = subprocess.run(["ldd", *args], cwd=tmp_path, capture_output=True, text=True,
                              check=False)
        ours = subprocess.run([sys.executable, "-m", "unveil", "ldd", *args], cwd=tmp_path,
                              capture_output=True, text=True, check=False)
        assert (ours.returncode, ours.stderr) == (real.returncode, real.stderr), args
        assert ours.stdout.splitlines() == [re.sub(r" \(0x[0-9a-f]+\)$", "", line)
                                            for line in real.stdout.splitlines()], args


def test_why_explains_missing_and_found(build: Builder, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    lib = build.lib("lib/libwhy.so.58", soname="libwhy.so.58")
    exe = build.exe("bin/prog", needs=[str(lib)], rpath="$ORIGIN/../lib")
    assert main(["why", "libwhy.so.58", "--from", str(exe)]) == 0
    out = capsys.readouterr().out
    assert "found" in out
    assert "DT_RPATH" in out
    lib.rename(lib.with_name("libwhy.so.61"))
    assert main(["why", "libwhy.so.58", "--from", str(exe), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["outcome"] == "not-found"
    assert any(s.endswith("libwhy.so.61") for s in doc["similar"])
    assert any(a["rule"] == "rpath" for a in doc["attempts"])


def test_why_names_each_similar_file_once(build: Builder, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A library with its chain of version links (libwhy.so -> libwhy.so.61 ->
    libwhy.so.61.2.0) is one file, shown once by its versioned name."""
    lib = build.lib("lib/libwhy.so.61.2.0", soname="libwhy.so.61")
    (lib.parent / "libwhy.so.61").symlink_to(lib.name)
    (lib.parent / "libwhy.so").symlink_to("libwhy.so.61")
    old = build.lib("old/libwhy.so.58", soname="libwhy.so.58")
    exe = build.exe("bin/prog", needs=[str(old)], rpath="$ORIGIN/../lib")
    assert main(["why", "libwhy.so.58", "--from", str(exe), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [Path(s).name for s in doc["similar"]] == ["libwhy.so.61"]
    assert sum("exists, but libwhy.so.58 is what is needed" in h for h in doc["hints"]) == 1


def test_why_fix_hints_fit_the_requester(build: Builder, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A repair tool is advice for a Python package's binary, not for a system program;
    the verdict says the cache was searched, since a cache miss leaves no candidate path."""
    gone = build.lib("gone/libgone.so.3", soname="libgone.so.3")
    prog = build.exe("usr/bin/prog", needs=[str(gone)])
    ext = build.lib("venv/lib/python3.11/site-packages/pkg/_ext.cpython-311-x86_64-linux-gnu.so",
                    needs=[str(gone)])
    gone.unlink()
    assert main(["why", "libgone.so.3", "--from", str(prog), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert "/etc/ld.so.cache has no entry for it" in doc["verdict"]
    assert not any("auditwheel" in h for h in doc["hints"])
    assert any("ldconfig" in h and "LD_LIBRARY_PATH" in h for h in doc["hints"])
    assert main(["why", "libgone.so.3", "--from", str(ext), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert any("auditwheel repair" in h for h in doc["hints"])


def test_why_hints_read_what_the_search_found(build: Builder, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Similar files are neither the candidates tried (a wrong-class file's own version
    link) nor non-files; the very library without its SONAME link is named as such; a
    relative --from inside site-packages is a package's binary."""
    real = build.lib("lib/libfoo.so.1.0.0", soname="libfoo.so.1")
    exe = build.exe("bin/prog", needs=[str(real)], rpath=str(real.parent))
    (real.parent / "libfoo.so.7").symlink_to("nowhere")
    (real.parent / "libfoo.so.9").mkdir()
    assert main(["why", "libfoo.so.1", "--from", str(exe), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [Path(s).name for s in doc["similar"]] == ["libfoo.so.1.0.0"]
    assert any("is libfoo.so.1 (its SONAME)" in h and "ldconfig -n" in h
               for h in doc["hints"])
    # a candidate of the wrong class, reached through its version link
    wrong = build.lib("wc/libw.so.1.0", soname="libw.so.1")
    (wrong.parent / "libw.so.1").symlink_to(wrong.name)
    exe2 = build.exe("bin/prog2", needs=[str(wrong.parent / "libw.so.1")],
                     rpath=str(wrong.parent))
    data = bytearray(wrong.read_bytes())
    data[4] = 1  # ELFCLASS32
    wrong.write_bytes(bytes(data))
    assert main(["why", "libw.so.1", "--from", str(exe2), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["similar"] == []
    # relative, from inside site-packages
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    gone = build.lib("gone/libgone.so.3", soname="libgone.so.3")
    build.lib("venv/lib/python3.11/site-packages/pkg/_ext.so", needs=[str(gone)])
    gone.unlink()
    monkeypatch.chdir(site)
    assert main(["why", "libgone.so.3", "--from", "pkg/_ext.so", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert any("auditwheel repair" in h for h in doc["hints"])


def test_why_nodeflib_says_why_an_installed_library_is_passed_over(
        build: Builder, capsys: pytest.CaptureFixture[str]) -> None:
    lib = build.lib("nl/libn.so", link=["-lz"], extra=["-Wl,-z,nodefaultlib"])
    assert main(["why", "libz.so.1", "--from", str(lib), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert any("DF_1_NODEFLIB" in h for h in doc["hints"])
    assert not any("apt-get" in h or "ldconfig" in h for h in doc["hints"])
    assert doc["similar"] == []


def test_why_names_the_debian_package_of_a_missing_library(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Absent from the root, a library Debian ships gets its package as a labelled hint."""
    (tmp_path / "etc").mkdir()
    assert main(["why", "libvips.so.42", "--root", str(tmp_path), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert any(h.startswith("Debian package libvips42 ships libvips.so.42")
               and "apt-get install libvips42" in h for h in doc["hints"])


def test_why_says_runpath_stops_the_rpath_chain(build: Builder,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    leaf = build.lib("deep/libleaf.so")
    mid = build.lib("mid/libmid.so", needs=[str(leaf)], runpath="/nonexistent")
    exe = build.exe("bin/prog", needs=[str(mid)], rpath=f"{mid.parent}:{leaf.parent}")
    assert main(["why", "libleaf.so", "--from", str(exe)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "has DT_RUNPATH, so the DT_RPATH of the objects that loaded it" in out


def test_why_target_after_the_from_option(build: Builder, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`why LIB --from MEMBER TARGET` reads as `why LIB TARGET --from MEMBER` (argparse had
    left TARGET over: "unrecognized arguments"); extra words are still an error."""
    whl = vendored_wheel(build, tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl")
    member = "pkg/_ext.cpython-311-x86_64-linux-gnu.so"
    outs = []
    for argv in (["why", "libvend-0a1b2c3d.so.1", str(whl), "--from", member],
                 ["why", "libvend-0a1b2c3d.so.1", "--from", member, str(whl)]):
        assert main(argv) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]
    assert "found" in outs[0]
    assert main(["why", "libvend-0a1b2c3d.so.1", "--from", member, str(whl), "extra"]) == 2
    assert "unrecognized arguments: extra" in capsys.readouterr().err
    assert main(["scan", "--no-such-option", str(whl)]) == 2


def test_json_is_stable(build: Builder, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whl = vendored_wheel(build, tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl")
    main(["scan", "--format", "json", str(whl)])
    a = capsys.readouterr().out
    main(["scan", "--format", "json", str(whl)])
    assert a == capsys.readouterr().out


def test_every_rule_has_an_explanation() -> None:
    for rule in Rule:
        assert describe_rule(rule, None)


def test_record_formats(build: Builder, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    whl = vendored_wheel(build, tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl")
    assert main(["scan", "--format", "cyclonedx", str(whl)]) == 0
    cdx = capsys.readouterr().out
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(cdx) is None
    assert main(["scan", "--format", "spdx", str(whl)]) == 0
    assert json.loads(capsys.readouterr().out)["spdxVersion"] == "SPDX-2.3"
    assert main(["scan", "--format", "external", str(whl)]) == 0
    assert "[external]" in capsys.readouterr().out
    assert main(["scan", "--format", "upstreams", str(whl)]) == 0
    assert "libgone.so.3" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["sbom", "--inject", str(whl), "-o", str(out)]) == 0
    capsys.readouterr()
    with zipfile.ZipFile(out / whl.name) as z:
        assert "pkg-1.0.dist-info/sboms/unveil.cdx.json" in z.namelist()


def test_phantom_classification_and_fail_on(build: Builder, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    whl = vendored_wheel(build, tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl")
    rc, doc = _scan_json(capsys, str(whl))
    assert rc == 0
    cats = {d["request"]: d["category"] for d in doc["targets"][0]["declarations"]}  # type: ignore[index]
    assert cats["libvend-0a1b2c3d.so.1"] == "bundled-unrecorded"
    assert cats["libgone.so.3"] == "phantom"
    assert cats["libc.so.6"] == "platform"
    assert main(["scan", "--fail-on", "phantom", str(whl)]) == 1
    capsys.readouterr()


def test_text_output_shows_every_edge_class() -> None:
    """A class missing from the text's order vanished from the tree and the summary line
    (Windows' runtime edges did)."""
    assert set(_ORDER) == set(EdgeClass) == set(_STYLE)


def test_sbom_inject_refuses_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that is not a wheel (a program, a directory, text) is refused with its name,
    exit 2, and nothing is created beside it."""
    (tmp_path / "prog").write_bytes(Path("/bin/true").read_bytes())
    (tmp_path / "adir.whl").mkdir()
    (tmp_path / "text.whl").write_text("hello")
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    for arg in ("prog", "adir.whl", "text.whl"):
        assert main(["sbom", "--inject", arg]) == 2
        assert arg in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_why_from_something_not_a_binary_is_an_input_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.so").write_bytes(b"")
    (tmp_path / "text").write_text("hello")
    (tmp_path / "adir").mkdir()
    for name, says in (("empty.so", "not an ELF"), ("text", "not an ELF"),
                       ("adir", "not a regular file")):
        assert main(["why", "libz.so.1", "--from", str(tmp_path / name)]) == 2
        assert says in capsys.readouterr().err
    assert main(["why", "", "--from", "/bin/true"]) == 2
    assert "needs a library name" in capsys.readouterr().err


def test_a_wheelhouse_says_its_wheels_were_not_opened(build: Builder, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    house = tmp_path / "wheelhouse"
    house.mkdir()
    vendored_wheel(build, house / "pkg-1.0-cp311-cp311-linux_x86_64.whl")
    assert main(["scan", "--no-dynload", str(house)]) == 0
    out = capsys.readouterr().out
    assert "1 package archive here (pkg-1.0-cp311-cp311-linux_x86_64.whl) not opened" in out
    assert "0 binaries, 1 problem" in out
    assert main(["scan", "--no-dynload", str(house), str(tmp_path / "nothing.whl")]) == 2
    assert "nothing.whl: no such file or directory" in capsys.readouterr().err


def test_a_library_missing_deeper_in_the_chain_is_said(build: Builder, tmp_path: Path) -> None:
    """A program whose own libraries are all found, but one of them (outside the scanned
    tree) needs a library that is nowhere: no edge of the target is missing, yet ld.so would
    not start the program: a located problem says so."""
    gone = build.lib("gone/libgone.so")
    mid = build.lib("outside/libmid.so", needs=[str(gone)])
    build.exe("target/prog", needs=[str(mid)], rpath=str(mid.parent))
    gone.unlink()
    result = scan(str(tmp_path / "target"), ScanConfig(identify=False, dynload=False))
    assert [e.edge_class for b in result.targets[0].binaries for e in b.edges
            if e.resolution.request == "libmid.so"] == [EdgeClass.SYSTEM]
    assert [(p.kind.value, p.message) for p in result.problems] == [(
        "loader", f"ld.so would stop: libgone.so, needed by {mid} (outside the target), "
                  "is not found")]


def test_why_finds_a_library_by_the_name_before_its_hash(
        build: Builder, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """auditwheel and delvewheel rename what they vendor (libvend-0a1b2c3d.so.1): asked about
    the library by its own name, why finds the hashed request."""
    whl = vendored_wheel(build, tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl")
    assert main(["why", "libvend.so.1", str(whl)]) == 0
    assert "libvend-0a1b2c3d.so.1 for " in capsys.readouterr().out


def test_a_file_that_is_not_a_binary_and_a_zip_that_is_no_wheel_say_so(tmp_path: Path) -> None:
    (tmp_path / "empty.so").write_bytes(b"")
    whl = tmp_path / "nodist-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("pkg/__init__.py", "x = 1\n")
    cfg = ScanConfig(identify=False, dynload=False)
    assert [p.message for p in scan(str(tmp_path / "empty.so"), cfg).problems] == [
        "not an ELF, Mach-O or PE file"]
    assert [p.message for p in scan(str(whl), cfg).problems] == [
        "no .dist-info directory: not a wheel as installers read it (its files are scanned "
        "all the same)"]


def test_a_library_the_package_ships_elsewhere_is_not_sent_to_debian(
        build: Builder, tmp_path: Path) -> None:
    lib = build.lib("w/libshipped.so")
    exe = build.exe("w/prog", needs=[str(lib)], runpath="$ORIGIN")
    whl = write_wheel(tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl", {
        "pkg/bin/prog": exe.read_bytes(), "pkg/lib/libshipped.so": lib.read_bytes()})
    result = scan(str(whl), ScanConfig(dynload=False))
    edge = next(e for e in result.edges if e.resolution.request == "libshipped.so")
    assert edge.edge_class is EdgeClass.MISSING
    assert edge.component is None  # no Debian package suggested
    assert edge.note == ("shipped in the package at pkg/lib/libshipped.so, outside this "
                         "search: add its directory to the requester's RUNPATH")


def test_windows_launchers_in_a_posix_environment_are_a_note(tmp_path: Path) -> None:
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    (site / "pip-23.2.dist-info").mkdir(parents=True)
    (site / "pip-23.2.dist-info" / "METADATA").write_text("Name: pip\nVersion: 23.2\n")
    launcher = make_pe(imports=(("KERNEL32.dll", ("GetLastError",)),), delay=(),
                       characteristics=0x0022, export_name=None).data
    (site / "pip" / "_vendor" / "distlib").mkdir(parents=True)
    (site / "pip" / "_vendor" / "distlib" / "t32.exe").write_bytes(bytes(launcher))
    result = scan(str(tmp_path / "venv"), ScanConfig(identify=False, dynload=False))
    notes = [p.message for p in result.problems if p.kind.value == "note"]
    assert notes == ["1 Windows program (t32.exe) in an environment laid out for POSIX: "
                     "their dependencies are Windows's, never loaded here"]


def test_indent_applies_to_every_json_format(build: Builder, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    whl = vendored_wheel(build, tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl")
    for fmt in ("json", "cyclonedx", "spdx", "upstreams-json"):
        assert main(["scan", "--no-dynload", "--format", fmt, "--indent", "3", str(whl)]) == 0
        text = capsys.readouterr().out
        json.loads(text)
        assert "\n   \"" in text or "\n   {" in text, fmt
    assert main(["scan", "--indent", "-5", str(whl)]) == 2
    assert "indent must be 0 to 16" in capsys.readouterr().err


def test_sboms_are_reproducible_with_source_date_epoch(
        build: Builder, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    whl = vendored_wheel(build, tmp_path / "pkg-1.0-cp311-cp311-linux_x86_64.whl")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    for fmt in ("cyclonedx", "spdx"):
        outs = []
        for _ in range(2):
            assert main(["scan", "--no-dynload", "--format", fmt, str(whl)]) == 0
            outs.append(capsys.readouterr().out)
        assert outs[0] == outs[1], fmt
        assert "2023-11-14T22:13:20" in outs[0]


def test_why_says_an_auxiliary_filtee_is_optional(build: Builder,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    aux = build.lib("lib/libaux.so", extra=["-Wl,--auxiliary=libnone.so"])
    assert main(["why", "libnone.so", "--from", str(aux), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert any("auxiliary filtee (DT_AUXILIARY)" in h for h in doc["hints"])
