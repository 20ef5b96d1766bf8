"""macOS, Windows and musllinux wheels scanned from Linux: synthetic wheels built with the
readers' test writers (default suite) and real wheels from PyPI (``-m network``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import Builder
from tests.integration.packages import write_wheel
from tests.unit.test_macho import MH_BUNDLE, MH_DYLIB, Spec, make_fat, make_macho
from tests.unit.test_pe import make_pe
from unveil import scan
from unveil.cli.main import main
from unveil.config import ScanConfig
from unveil.model import EdgeClass, Outcome, Role, Rule, ScanResult

CACHE = Path.home() / ".cache" / "unveil-tests"
SCHEMA = json.loads(resources.files("unveil").joinpath("data/scan.schema.json").read_text())
ARM64 = 0x0100000C


def _edges(result: ScanResult) -> dict[str, tuple[EdgeClass, Outcome, str | None, str | None]]:
    return {e.resolution.request: (e.edge_class, e.resolution.outcome, e.provider, e.note)
            for e in result.edges}


def test_macos_wheel_delocate_layout(tmp_path: Path) -> None:
    ext = make_macho(Spec(cputype=ARM64, cpusubtype=0, filetype=MH_BUNDLE, dylibs=(
        ("load", "@rpath/libfoo.1.dylib"),
        ("load", "@loader_path/.dylibs/libbar.dylib"),
        ("load", "/usr/lib/libSystem.B.dylib"),
        ("weak", "@rpath/libmaybe.dylib"),
        ("load", "/usr/local/opt/gone/lib/libgone.dylib"),
    ), rpaths=("@loader_path/.dylibs",)))
    foo = make_macho(Spec(cputype=ARM64, cpusubtype=0, id_dylib="@rpath/libfoo.1.dylib",
                          dylibs=(("load", "/usr/lib/libc++.1.dylib"),)))
    bar = make_macho(Spec(cputype=ARM64, cpusubtype=0, filetype=MH_DYLIB,
                          id_dylib="/DLC/pkg/.dylibs/libbar.dylib"))
    whl = write_wheel(tmp_path / "pkg-1.0-cp311-cp311-macosx_11_0_arm64.whl", {
        "pkg/_ext.cpython-311-darwin.so": ext,
        "pkg/.dylibs/libfoo.1.dylib": foo,
        "pkg/.dylibs/libbar.dylib": bar,
    })
    edges = _edges(scan(str(whl)))
    assert edges["@rpath/libfoo.1.dylib"][0] is EdgeClass.BUNDLED
    assert edges["@loader_path/.dylibs/libbar.dylib"][0] is EdgeClass.BUNDLED
    assert edges["/usr/lib/libSystem.B.dylib"][0] is EdgeClass.SYSTEM
    assert edges["/usr/lib/libc++.1.dylib"][0] is EdgeClass.SYSTEM
    # dyld loads the image without a weak import: optional, not missing
    assert edges["@rpath/libmaybe.dylib"][:2] == (EdgeClass.OPTIONAL, Outcome.NOT_FOUND)
    assert "weak import" in (edges["@rpath/libmaybe.dylib"][3] or "")
    assert edges["/usr/local/opt/gone/lib/libgone.dylib"][0] is EdgeClass.MISSING


def test_macos_shared_cache_rpath_and_executable_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The OS's libraries come from the dyld shared cache (rule dyld-shared-cache, and so no
    PEP 725 entry), also through an LC_RPATH that points there (Swift's /usr/lib/swift); a
    program shipped in a package is its own @executable_path."""
    ext = make_macho(Spec(cputype=ARM64, cpusubtype=0, filetype=MH_BUNDLE, dylibs=(
        ("load", "/usr/lib/libz.1.dylib"),
        ("load", "@rpath/libswiftCore.dylib"),
    ), rpaths=("/usr/lib/swift",)))
    tool = make_macho(Spec(cputype=ARM64, cpusubtype=0, filetype=2, dylibs=(
        ("load", "@executable_path/../lib/libhelper.dylib"),
        ("load", "@rpath/libtool.dylib"),
    ), rpaths=("@executable_path/../lib",)))
    helper = make_macho(Spec(cputype=ARM64, cpusubtype=0, id_dylib="@rpath/libhelper.dylib"))
    whl = write_wheel(tmp_path / "pkg-1.0-cp311-cp311-macosx_11_0_arm64.whl", {
        "pkg/_ext.cpython-311-darwin.so": ext,
        "pkg/bin/tool": tool,
        "pkg/lib/libhelper.dylib": helper,
        "pkg/lib/libtool.dylib": helper,
    })
    result = scan(str(whl))
    rules = {e.resolution.request: (e.edge_class, e.resolution.rule) for e in result.edges}
    assert rules["/usr/lib/libz.1.dylib"] == (EdgeClass.SYSTEM, Rule.SHARED_CACHE)
    assert rules["@rpath/libswiftCore.dylib"] == (EdgeClass.SYSTEM, Rule.SHARED_CACHE)
    assert rules["@executable_path/../lib/libhelper.dylib"][0] is EdgeClass.BUNDLED
    assert rules["@rpath/libtool.dylib"][0] is EdgeClass.BUNDLED
    capsys.readouterr()
    main(["scan", "--format", "external", str(whl)])
    external = capsys.readouterr().out
    assert "zlib" not in external
    assert "swift" not in external.lower()


def test_macos_rpath_request_matches_a_loaded_install_name(tmp_path: Path) -> None:
    """dyld loads A's subtree (A -> C -> E, E through C's LC_RPATH) before B's dependents;
    B's @rpath/libE.dylib, which B's own LC_RPATH would not find, is the loaded image of
    that install name (Loader::getLoader), not missing and not a second copy."""
    def dylib(name: str, needs: tuple[str, ...], rpaths: tuple[str, ...] = ()) -> bytes:
        return make_macho(Spec(cputype=ARM64, cpusubtype=0, id_dylib=f"@rpath/{name}",
                               dylibs=tuple(("load", n) for n in needs), rpaths=rpaths))
    ext = make_macho(Spec(cputype=ARM64, cpusubtype=0, filetype=MH_BUNDLE, dylibs=(
        ("load", "@rpath/libA.dylib"), ("load", "@rpath/libB.dylib")),
        rpaths=("@loader_path/a", "@loader_path/b")))
    whl = write_wheel(tmp_path / "pkg-1.0-cp311-cp311-macosx_11_0_arm64.whl", {
        "pkg/_ext.cpython-311-darwin.so": ext,
        "pkg/a/libA.dylib": dylib("libA.dylib", ("@rpath/libC.dylib",), ("@loader_path/../c",)),
        "pkg/b/libB.dylib": dylib("libB.dylib", ("@rpath/libE.dylib",), ("@loader_path/../e2",)),
        "pkg/c/libC.dylib": dylib("libC.dylib", ("@rpath/libE.dylib",), ("@loader_path/../e1",)),
        "pkg/e1/libE.dylib": dylib("libE.dylib", ()),
    })
    result = scan(str(whl))
    e_edges = [e for e in result.edges if e.resolution.request == "@rpath/libE.dylib"]
    assert {e.edge_class for e in e_edges} == {EdgeClass.BUNDLED}
    assert {e.location.path for e in e_edges if e.location} == {"pkg/e1/libE.dylib"}


def test_macos_fat_slice_follows_the_tag(tmp_path: Path) -> None:
    arm = make_macho(Spec(cputype=ARM64, cpusubtype=0, filetype=MH_BUNDLE,
                          dylibs=(("load", "@rpath/libarm.dylib"),)))
    x86 = make_macho(Spec(filetype=MH_BUNDLE, dylibs=(("load", "@rpath/libx86.dylib"),)))
    fat = make_fat([(ARM64, 0, arm), (0x01000007, 3, x86)])
    for tag, want in (("macosx_11_0_universal2", "@rpath/libarm.dylib"),
                      ("macosx_10_9_x86_64", "@rpath/libx86.dylib")):
        whl = write_wheel(tmp_path / f"pkg-1.0-cp311-cp311-{tag}.whl",
                          {"pkg/_ext.cpython-311-darwin.so": fat})
        assert set(_edges(scan(str(whl)))) == {want}


def test_macos_thin_file_outside_a_wheel_and_a_missing_slice(tmp_path: Path) -> None:
    """A thin x86_64 file outside a wheel (an npm prebuild for darwin-x64) is resolved for its
    own architecture; asked for a slice a file lacks, the scan says so instead of showing no
    dependencies."""
    x86 = make_macho(Spec(filetype=MH_BUNDLE, dylibs=(("load", "/usr/lib/libSystem.B.dylib"),)))
    (tmp_path / "prebuilds" / "darwin-x64").mkdir(parents=True)
    (tmp_path / "prebuilds" / "darwin-x64" / "addon.node").write_bytes(x86)
    result = scan(str(tmp_path))
    assert set(_edges(result)) == {"/usr/lib/libSystem.B.dylib"}
    assert not result.problems
    arm = scan(str(tmp_path), ScanConfig(macos_arch="arm64"))
    assert [p.message for p in arm.problems] == [
        "no arm64 slice (it holds x86_64): what it needs on arm64 is unknown"]


def test_windows_wheel_delvewheel_layout(tmp_path: Path) -> None:
    libs = "pkg.libs"
    ext = make_pe(imports=(("libfoo-0123456789abcdef0123456789abcdef.dll", ("foo",)),
                           ("python311.dll", ("PyModule_Create2",)),
                           ("VCRUNTIME140.dll", ("memcpy",)),
                           ("MSVCP140.dll", ("x",)),
                           ("api-ms-win-crt-runtime-l1-1-0.dll", ("_initterm",)),
                           ("KERNEL32.dll", ("GetLastError",)),
                           ("nothere.dll", ("x",))),
                  delay=(("nvcuda.dll", ("cuInit",)), ("pkg_core.dll", ("y",))),
                  export_name="_ext.pyd").data
    foo = make_pe(imports=(("KERNEL32.dll", ("GetLastError",)),), delay=(),
                  export_name="libfoo.dll").data
    vendored = make_pe(imports=(("KERNEL32.dll", ("GetLastError",)),
                                ("VCRUNTIME140.dll", ("memcpy",))), delay=(),
                       export_name="libfoo.dll").data
    init = (b"def _delvewheel_patch_1_11_2():\n    import os\n    if os.path.isdir(libs_dir := "
            b"os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, "
            b"'pkg.libs'))):\n        os.add_dll_directory(libs_dir)\n\n"
            b"_delvewheel_patch_1_11_2()\n")
    tool = make_pe(imports=(("KERNEL32.dll", ("GetLastError",)),), delay=(),
                   characteristics=0x0022, export_name=None).data
    whl = write_wheel(tmp_path / "pkg-1.0-cp311-cp311-win_amd64.whl", {
        "pkg/__init__.py": init,
        "pkg/_ext.cp311-win_amd64.pyd": bytes(ext),
        f"{libs}/libfoo-0123456789abcdef0123456789abcdef.dll": bytes(vendored),
        "pkg-1.0.data/scripts/tool.exe": bytes(tool),
        "pkg/pkg_core.dll": bytes(foo),
        "pkg/libiomp5md.dll": bytes(foo),
        # python.exe loaded its own before any extension: this copy is never used
        "pkg/vcruntime140.dll": bytes(foo),
    })
    result = scan(str(whl))
    # PE's file type 2 is a DLL (ELF's 2 is an executable): a .pyd is an extension module.
    binaries = {b.location.path.rsplit("/", 1)[-1]: b for b in result.targets[0].binaries}
    assert {n: b.role for n, b in binaries.items()} == {
        "_ext.cp311-win_amd64.pyd": Role.EXTENSION,
        "libfoo-0123456789abcdef0123456789abcdef.dll": Role.LIBRARY,
        "tool.exe": Role.EXECUTABLE, "pkg_core.dll": Role.LIBRARY,
        "libiomp5md.dll": Role.LIBRARY, "vcruntime140.dll": Role.LIBRARY}
    # The distribution's own code (a guess): its extension modules, and a DLL named after
    # it; a DLL copied in (no ABI version in a DLL name to tell) is not guessed to be.
    own = {n for n, b in binaries.items() if b.components and b.components[0].name == "pkg"}
    assert own == {"_ext.cp311-win_amd64.pyd", "pkg_core.dll"}
    edges = _edges(result)
    assert edges["libfoo-0123456789abcdef0123456789abcdef.dll"][0] is EdgeClass.BUNDLED
    assert edges["python311.dll"][0] is EdgeClass.RUNTIME
    assert edges["VCRUNTIME140.dll"][0] is EdgeClass.RUNTIME
    assert edges["MSVCP140.dll"][0] is EdgeClass.RUNTIME
    assert edges["MSVCP140.dll"][2] == "vc-redist"
    assert edges["api-ms-win-crt-runtime-l1-1-0.dll"][0] is EdgeClass.SYSTEM
    assert edges["KERNEL32.dll"][0] is EdgeClass.SYSTEM
    assert edges["nothere.dll"][0] is EdgeClass.MISSING
    # The runtime the .pyd loaded is the runtime for the bundled DLL that asks for it after.
    vcrt = {b.location.path: e.edge_class for b in result.targets[0].binaries
            for e in b.edges if e.resolution.request == "VCRUNTIME140.dll"}
    assert vcrt == {"pkg/_ext.cp311-win_amd64.pyd": EdgeClass.RUNTIME,
                    f"{libs}/libfoo-0123456789abcdef0123456789abcdef.dll": EdgeClass.RUNTIME}
    # Delay-load imports: loaded on first use with the standard search order (not the
    # module's directory), and the module loads without them.
    assert edges["nvcuda.dll"][0] is EdgeClass.OPTIONAL
    assert edges["pkg_core.dll"][0] is EdgeClass.OPTIONAL


def test_windows_environment_provides_its_python_dll(tmp_path: Path) -> None:
    """Installed, an extension has no wheel tag to say its Python: whichever python3XY.dll
    it imports is the interpreter's own (beside python.exe), not missing."""
    ext = make_pe(imports=(("python312.dll", ("PyModule_Create2",)),
                           ("KERNEL32.dll", ("GetLastError",))),
                  delay=(), export_name="_ext.pyd").data
    site = tmp_path / "env" / "Lib" / "site-packages"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "_ext.cp312-win_amd64.pyd").write_bytes(bytes(ext))
    (site / "pkg-1.0.dist-info").mkdir()
    (site / "pkg-1.0.dist-info" / "METADATA").write_text("Name: pkg\nVersion: 1.0\n")
    (site / "pkg-1.0.dist-info" / "RECORD").write_text("pkg/_ext.cp312-win_amd64.pyd,,\n")
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = C:\\Python312\n")
    edges = _edges(scan(str(tmp_path / "env")))
    assert edges["python312.dll"][0] is EdgeClass.RUNTIME
    assert edges["KERNEL32.dll"][0] is EdgeClass.SYSTEM


def _as_machine(data: bytes, machine: int) -> bytes:
    return data[:18] + machine.to_bytes(2, "little") + data[20:]


def test_foreign_architecture_wheel_uses_its_own_loader(build: Builder, tmp_path: Path) -> None:
    """An aarch64 wheel scanned on x86-64 resolves as on an aarch64 system: its bundled
    library is found (for its own loader it is of the right machine), not 'missing'.  The
    fixtures are x86-64 builds relabelled EM_AARCH64: the loader reads headers only."""
    vend = build.lib("v/libvend.so.1", soname="libvend.so.1")
    ext = build.lib("v/_ext.so", needs=[str(vend)], rpath="$ORIGIN/../pkg.libs")
    for tag in ("manylinux_2_28_aarch64", "musllinux_1_2_aarch64"):
        whl = write_wheel(tmp_path / f"pkg-1.0-cp311-cp311-{tag}.whl", {
            "pkg/_ext.cpython-311-aarch64-linux-gnu.so": _as_machine(ext.read_bytes(), 183),
            "pkg.libs/libvend.so.1": _as_machine(vend.read_bytes(), 183)})
        edges = _edges(scan(str(whl)))
        assert edges["libvend.so.1"][0] is EdgeClass.BUNDLED, tag


# -- real wheels ---------------------------------------------------------------------------
PLATFORM_WHEELS = {
    "macos": ("wheels-macos", ["numpy", "scipy", "pillow", "pyzmq", "shapely", "lxml",
                               "opencv_python_headless"]),
    "windows": ("wheels-windows", ["numpy", "scipy", "pillow", "pyzmq", "shapely", "lxml",
                                   "opencv_python_headless", "psycopg2_binary"]),
    "musllinux": ("wheels-musl", ["numpy", "scipy", "pillow", "pyzmq", "shapely", "lxml"]),
    # another architecture than this machine's: resolved with that architecture's loader
    "aarch64": ("wheels-aarch64", ["numpy", "pyzmq"]),
}
#: (platform tag, pins) of the wheels downloaded for a platform test on first use
DOWNLOADS = {
    "musllinux": (("musllinux_1_2_x86_64",), ["numpy==2.4.6", "scipy==1.17.1",
                                              "pillow==13.0.0", "pyzmq==27.3.0",
                                              "shapely==2.2.0", "lxml==6.1.3"]),
    "aarch64": (("manylinux_2_28_aarch64", "musllinux_1_2_aarch64"),
                ["numpy==2.4.6", "pyzmq==27.3.0"]),
}


def _ensure_wheels(platform: str, d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    tags, pins = DOWNLOADS[platform]
    for tag in tags:
        for pin in pins:
            name = pin.split("==")[0]
            if not list(d.glob(f"{name}-*{tag.split('_', 1)[0]}*{tag.rsplit('_', 1)[-1]}.whl")):
                subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                                "--only-binary=:all:", "--platform", tag,
                                "--python-version", "3.11", "--implementation", "cp", "-d",
                                str(d), pin], check=True)


@pytest.mark.network
@pytest.mark.parametrize("platform", sorted(PLATFORM_WHEELS))
def test_real_platform_wheels_have_nothing_missing(platform: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    sub, names = PLATFORM_WHEELS[platform]
    d = CACHE / sub
    if platform in DOWNLOADS:
        _ensure_wheels(platform, d)
    wheels = [w for w in sorted(d.glob("*.whl")) if w.name.split("-")[0] in names]
    if not wheels:
        pytest.skip(f"no cached {platform} wheels (the reader tests download them)")
    for w in wheels:
        assert main(["scan", "--format", "json", str(w)]) == 0
        doc = json.loads(capsys.readouterr().out)
        jsonschema.validate(doc, SCHEMA)
        t = doc["targets"][0]
        assert t["problems"] == [], (w.name, t["problems"][:3])
        classes = Counter(d["class"] for b in t["binaries"] for d in b["dependencies"])
        assert classes["missing"] == 0, (w.name, [
            (b["location"]["path"], d["request"]) for b in t["binaries"]
            for d in b["dependencies"] if d["class"] == "missing"])
