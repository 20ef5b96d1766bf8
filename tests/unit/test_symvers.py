"""GCC runtime libraries: the release from build information, symbol-version nodes as a lower
bound (never as a version), on real shared libraries built here and on the machine's own."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Builder
from unveil.formats.blob import BytesBlob
from unveil.formats.elf import parse_elf
from unveil.identify import identify_binary
from unveil.identify.symvers import (
    Bound,
    TableError,
    build_claims,
    default_table,
    floor,
    identify_runtime,
    load_table,
    lower_bound,
    runtime_for,
)
from unveil.model import Component

LIBDIR = "/usr/lib/x86_64-linux-gnu"
WHEELS = Path.home() / ".cache" / "unveil-tests" / "venv-wheels" / "lib" / "python3.11" / \
    "site-packages"


def _v(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _gcc_version() -> str:
    return subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True,
                          check=True).stdout.strip()


def _runtime_lib(build: Builder, name: str, nodes: list[str], *, code: str = "",
                 comment: bool = True, debuglink: str | None = None) -> Path:
    """A shared library named like a GCC runtime, defining ``nodes`` (one function each)."""
    script = build.root / f"{name}.map"
    parts, prev = [], None
    for i, node in enumerate(nodes):
        local = " local: *;" if i == 0 else ""
        parts.append(f"{node} {{ global: f{i};{local} }}{' ' + prev if prev else ''};")
        prev = node
    script.write_text("\n".join(parts) + "\n")
    funcs = "".join(f"int f{i}(void) {{ return {i}; }}\n" for i in range(len(nodes)))
    lib = build.lib(name, code=funcs + code, extra=[f"-Wl,--version-script={script}"])
    if not comment:
        subprocess.run(["objcopy", "--remove-section=.comment", str(lib)], check=True)
    if debuglink:
        target = build.root / debuglink
        target.write_bytes(b"")
        subprocess.run(["objcopy", f"--add-gnu-debuglink={target}", str(lib)], check=True,
                       cwd=build.root)
    return lib


def _identify(path: Path, name: str | None = None) -> tuple[Component, ...]:
    data = path.read_bytes()
    binary, _ = parse_elf(BytesBlob(data))
    return identify_binary(BytesBlob(data), name or path.name, binary)


def _needs_objcopy() -> None:
    if shutil.which("objcopy") is None:
        pytest.skip("objcopy is needed")


# ------------------------------------------------------------------------- the table


def test_the_shipped_table_loads_and_is_monotonic() -> None:
    table = default_table()
    assert {rt.project for rt in table.runtimes} >= {
        "libstdc++", "libgcc_s", "libgfortran", "libquadmath", "libgomp", "libatomic", "libitm"}
    for rt in table.runtimes:
        assert rt.sources, rt.project
        by_family: dict[str, list[tuple[tuple[int, ...], tuple[int, ...]]]] = {}
        for node, release in rt.nodes.items():
            m = re.fullmatch(r"([A-Z][A-Z0-9_]*?)_(\d+(?:\.\d+)*)", node)
            assert m is not None, node
            family, number = m.groups()
            by_family.setdefault(family, []).append((_v(number), _v(release)))
        for family, entries in by_family.items():
            releases = [r for _, r in sorted(entries)]
            assert releases == sorted(releases), (rt.project, family)
    doc = json.loads(resources.files("unveil").joinpath("data/symbol-versions.json")
                     .read_text("utf-8"))
    assert doc["licence"]
    assert doc["about"]


def test_libstdcxx_table_matches_the_abi_manual_milestones() -> None:
    (rt,) = [r for r in default_table().runtimes if r.project == "libstdc++"]
    assert rt.nodes["GLIBCXX_3.4.21"] == "5.1.0"
    assert rt.nodes["GLIBCXX_3.4.30"] == "12.1.0"
    assert rt.nodes["GLIBCXX_3.4.32"] == "13.2.0"
    assert rt.nodes["CXXABI_1.3.15"] == "14.1.0"


def _table(nodes: dict[str, str], **extra: Any) -> dict[str, Any]:
    rt = {"project": "libdemo", "files": ["libdemo*"], "source_dir": "libdemo",
          "nodes": nodes, **extra}
    return {"schema": 1, "component": {"purl_name": "gcc", "cpe": "x:{version}",
                                       "homepage": "h", "source": "s"}, "runtimes": [rt]}


@pytest.mark.parametrize(("nodes", "message"), [
    ({"DEMO_1.0": "5.1.0", "DEMO_1.1": "4.9.0"}, "listed before"),
    ({"DEMO_1.0": "5.1"}, "is not X.Y.Z"),
    ({"demo": "5.1.0"}, "is not a FAMILY_number"),
])
def test_bad_tables_are_refused(nodes: dict[str, str], message: str) -> None:
    with pytest.raises(TableError, match=message):
        load_table(json.dumps(_table(nodes)))


def test_table_shape_errors() -> None:
    for text in ("[", "{}", json.dumps({"schema": 1, "component": {}})):
        with pytest.raises(TableError):
            load_table(text)
    with pytest.raises(TableError, match="no runtimes"):
        load_table(json.dumps({**_table({}), "runtimes": []}))
    doc = _table({"DEMO_1": "5.1.0"})
    doc["runtimes"].append(doc["runtimes"][0])
    with pytest.raises(TableError, match="twice"):
        load_table(json.dumps(doc))


@pytest.mark.parametrize(("release", "lowest"), [
    ("12.1.0", (12, 0, 0)),   # trunk builds of GCC 12 call themselves 12.0.x
    ("13.2.0", (13, 1, 1)),   # a gcc-13 branch snapshot after 13.1.0 is 13.1.1
    ("4.8.3", (4, 8, 3)),     # before GCC 5 the branch was renumbered after each release
])
def test_floor(release: str, lowest: tuple[int, ...]) -> None:
    assert floor(release) == lowest


# ------------------------------------------------------------------------- bounds


def _rt(project: str) -> Any:
    return next(r for r in default_table().runtimes if r.project == project)


def test_lower_bound_is_the_newest_known_node() -> None:
    b = lower_bound(_rt("libstdc++"), ["GLIBCXX_3.4", "GLIBCXX_3.4.29", "CXXABI_1.3.13",
                                        "GLIBCXX_3.4.30", "GLIBC_2.2.5"])
    assert b == Bound("GLIBCXX_3.4.30", "12.1.0")
    assert b.text() == "defines GLIBCXX_3.4.30 (GCC \u2265 12.1): lower bound"
    assert lower_bound(_rt("libstdc++"), ["GLIBC_2.34", "FOO_1"]) is None


def test_a_node_newer_than_the_table_keeps_the_newest_bound() -> None:
    b = lower_bound(_rt("libstdc++"), ["GLIBCXX_3.4", "GLIBCXX_3.4.40"])
    assert b is not None
    assert (b.node, b.release, b.beyond) == ("GLIBCXX_3.4.33", "14.1.0", ("GLIBCXX_3.4.40",))
    assert "newer than the table" in b.text()
    # an unlisted node inside the known range (a target-specific one) claims nothing
    assert lower_bound(_rt("libgcc_s"), ["GCC_3.0", "GCC_11.0"]) == Bound("GCC_3.0", "3.0.0")


@pytest.mark.parametrize(("name", "soname", "project"), [
    ("libgfortran-040039e1-0352e75f.so.5.0.0", None, "libgfortran"),
    ("whatever.so", "libstdc++-5d72f927.so.6", "libstdc++"),
    ("libgcc_s.1.1.dylib", None, "libgcc_s"),
    ("libgomp-1.dll", None, "libgomp"),
    ("libatomic.so.1.2.0", None, "libatomic"),
    ("libatomic-1.dll", None, "libatomic"),
    ("libitm-0123abcd.so.1", None, "libitm"),
])
def test_runtime_names(name: str, soname: str | None, project: str) -> None:
    rt = runtime_for(default_table(), name, soname)
    assert rt is not None
    assert rt.project == project


@pytest.mark.parametrize("name", ["libpng16.so.16", "libatomic_ops.so.1", "libitmx.so"])
def test_other_names_are_not_runtimes(name: str) -> None:
    assert runtime_for(default_table(), name, name) is None


def test_build_information_patterns() -> None:
    rt = _rt("libgomp")
    data = (b"\x00GCC: (GNU) 10.2.1 20210130 (Red Hat 10.2.1-11)\x00"
            b"GA$\x05running gcc 8.5.0 20210514\x00"
            b"/tmp/gcc-13.4.0/build/x86_64-apple-darwin23/libgomp/team.c\x00"
            b"libgomp.so.1.0.0-8.5.0-28.el8_10.alma.1.x86_64.debug\x00"
            b"libpng16.so.16.0.0-1.6.34-5.el8.x86_64.debug\x00"
            b"GCC: (x86_64-posix-seh-rev0, Built by MinGW-Builds project) 13.2.0\x00")
    got = {(c.kind, c.version) for c in build_claims(BytesBlob(data), rt)}
    assert got == {("ident", "10.2.1"), ("annobin", "8.5.0"), ("source-tree", "13.4.0"),
                   ("rpm-debuginfo", "8.5.0"), ("ident", "13.2.0")}


# ------------------------------------------------------------------------- real libraries


def test_nodes_alone_give_a_bound_and_no_version(build: Builder) -> None:
    _needs_objcopy()
    lib = _runtime_lib(build, "libstdc++.so.6", ["GLIBCXX_3.4", "GLIBCXX_3.4.30"],
                       comment=False)
    (c,) = _identify(lib, "libstdc++-5d72f927.so.6.0.30")
    assert c.name == "libstdc++"
    assert c.version is None
    assert c.purl == "pkg:generic/gcc"
    assert not c.cpes
    bound = [e for e in c.evidence if e.method == "symbol-version" and e.field == "version"]
    assert [e.detail for e in bound] == ["defines GLIBCXX_3.4.30 (GCC \u2265 12.1): lower bound"]
    assert any(e.method == "symbol-version" and e.field == "name" for e in c.evidence)


def test_the_compiler_ident_gives_the_release(build: Builder) -> None:
    gcc = _gcc_version()
    table = _rt("libstdc++")
    fits = [n for n, r in table.nodes.items() if n.startswith("GLIBCXX_") and floor(r) <= _v(gcc)]
    node = max(fits, key=lambda n: _v(table.nodes[n]))
    lib = _runtime_lib(build, "libstdc++.so.6", ["GLIBCXX_3.4", node])
    (c,) = _identify(lib)
    assert c.version == gcc
    assert c.purl == f"pkg:generic/gcc@{gcc}"
    assert c.cpes == (f"cpe:2.3:a:gnu:gcc:{gcc}:*:*:*:*:*:*:*",)
    versions = [e for e in c.evidence if e.field == "version"]
    assert versions[0].method == "build-info"
    assert "compiled by the GCC release it belongs to" in versions[0].detail
    assert any("lower bound" in e.detail for e in versions)
    assert not c.conflicts


def test_a_bound_above_the_compiler_means_no_version(build: Builder) -> None:
    gcc = _v(_gcc_version())
    table = _rt("libstdc++")
    above = [n for n, r in table.nodes.items() if floor(r) > gcc]
    if not above:
        pytest.skip("the machine's GCC is newer than every node in the table")
    lib = _runtime_lib(build, "libstdc++.so.6", ["GLIBCXX_3.4", min(above)])
    (c,) = _identify(lib)
    assert c.version is None
    assert c.purl == "pkg:generic/gcc"
    assert c.conflicts
    assert "vendor backport" in c.conflicts[0]


def test_source_tree_and_debuglink_on_an_unversioned_runtime(build: Builder) -> None:
    _needs_objcopy()
    lib = _runtime_lib(build, "libgfortran.so.5", ["GFORTRAN_8", "GFORTRAN_10"],
                       code='const char *where(void) { return '
                            '"/build/gcc-10.2.1/libgfortran/runtime/error.c"; }\n',
                       comment=False,
                       debuglink="libgfortran.so.5.0.0-10.2.1-11.el7.x86_64.debug")
    (c,) = _identify(lib)
    assert c.version == "10.2.1"
    methods = [(e.method, e.field) for e in c.evidence]
    assert methods.count(("build-info", "version")) == 2


def test_the_rhel_libgomp_backport_shape(build: Builder) -> None:
    """RHEL 8's gcc 8.5.0 ships a libgomp with GCC 9's nodes: no version, both sides told."""
    _needs_objcopy()
    lib = _runtime_lib(build, "libgomp.so.1", ["OMP_1.0", "GOMP_1.0", "GOMP_5.0"],
                       comment=False,
                       debuglink="libgomp.so.1.0.0-8.5.0-28.el8_10.x86_64.debug")
    (c,) = _identify(lib)
    assert c.version is None
    assert c.conflicts == ("build information says GCC 8.5.0 but it defines GOMP_5.0 "
                           "(GCC \u2265 9.1): sources newer than the compiler that built them "
                           "(a vendor backport)",)


def test_a_runtime_without_a_rule_is_still_named(build: Builder) -> None:
    _needs_objcopy()
    lib = _runtime_lib(build, "libatomic.so.1", ["LIBATOMIC_1.0", "LIBATOMIC_1.2"],
                       comment=False)
    (c,) = _identify(lib, "libatomic-0123abcd.so.1.2.0")
    assert (c.name, c.version) == ("libatomic", None)
    assert c.evidence[0].method == "filename"


def test_one_component_per_runtime_and_it_comes_first(build: Builder) -> None:
    lib = _runtime_lib(build, "libgfortran.so.5", ["GFORTRAN_8"])
    got = _identify(lib, "libgfortran-8f1e9814.so.5.0.0")
    assert [c.name for c in got] == ["libgfortran"]
    assert sum(e.method == "filename" for e in got[0].evidence) == 1


def test_other_libraries_are_left_alone(build: Builder) -> None:
    lib = _runtime_lib(build, "libdemo.so.1", ["GLIBCXX_3.4", "GLIBCXX_3.4.30"])
    data = lib.read_bytes()
    binary, _ = parse_elf(BytesBlob(data))
    assert identify_runtime(BytesBlob(data), "libdemo.so.1", binary) is None
    assert _identify(lib) == ()


def test_truncated_runtimes_never_raise(build: Builder) -> None:
    lib = _runtime_lib(build, "libstdc++.so.6", ["GLIBCXX_3.4", "GLIBCXX_3.4.30"])
    good = lib.read_bytes()
    binary, _ = parse_elf(BytesBlob(good))
    for cut in range(0, len(good), max(1, len(good) // 40)):
        identify_binary(BytesBlob(good[:cut]), "libstdc++.so.6", binary)


# ------------------------------------------------------------------------- this machine


_RUNTIMES = ["libstdc++.so.6", "libgcc_s.so.1", "libgfortran.so.5", "libquadmath.so.0",
             "libgomp.so.1", "libatomic.so.1", "libitm.so.1"]
_PACKAGES = {"libstdc++.so.6": "libstdc++6", "libgcc_s.so.1": "libgcc-s1",
             "libgfortran.so.5": "libgfortran5", "libquadmath.so.0": "libquadmath0",
             "libgomp.so.1": "libgomp1", "libatomic.so.1": "libatomic1", "libitm.so.1": "libitm1"}


def _package_version(name: str) -> tuple[int, ...] | None:
    if shutil.which("dpkg-query") is None:
        return None
    p = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True,
                       text=True, check=False)
    m = re.match(r"(?:\d+:)?(\d+\.\d+\.\d+)", p.stdout)
    return _v(m.group(1)) if m else None


@pytest.mark.parametrize("soname", _RUNTIMES)
def test_the_machines_gcc_runtimes(soname: str) -> None:
    """Debian's own GCC runtimes: the bound never exceeds the packaged GCC release, and each
    listed libstdc++/libgfortran node that release should have is there."""
    path = os.path.join(LIBDIR, soname)
    if not os.path.exists(path):
        pytest.skip(f"no {soname}")
    real = Path(os.path.realpath(path))
    data = real.read_bytes()
    binary, _ = parse_elf(BytesBlob(data))
    rt = runtime_for(default_table(), real.name, binary.soname)
    assert rt is not None
    bound = lower_bound(rt, binary.version_defs)
    assert bound is not None, soname
    assert not bound.beyond or bound.release == max(rt.nodes.values(), key=_v)
    installed = _package_version(_PACKAGES[soname])
    if installed is None:
        pytest.skip("no dpkg to say which GCC this is")
    assert bound.floor <= installed, (soname, bound)
    if rt.project in ("libstdc++", "libgfortran"):
        expected = {n for n, r in rt.nodes.items() if _v(r) <= installed
                    and not n.startswith("CXXABI_TM")}
        assert expected <= set(binary.version_defs), expected - set(binary.version_defs)
    (c, *_) = identify_binary(BytesBlob(data), real.name, binary)
    assert c.name == rt.project
    assert c.version is None or _v(c.version) >= bound.floor


# ------------------------------------------------------------------------- vendored copies


_VENDORED = [
    # manylinux2014 (CentOS 7 devtoolset): stripped, only the nodes speak
    ("numpy.libs/libgfortran-040039e1-0352e75f.so.5.0.0", None, "GFORTRAN_8"),
    ("numpy.libs/libquadmath-96973f99-934c22de.so.0.0.0", None, "QUADMATH_1.0"),
    # manylinux_2_28 (AlmaLinux 8): the rpm debuginfo link names gcc 8.5.0
    ("opencv_python_headless.libs/libgfortran-83c28eba.so.5.0.0", "8.5.0", "GFORTRAN_8"),
    ("opencv_python_headless.libs/libquadmath-2284e583.so.0.0.0", "8.5.0", "QUADMATH_1.1"),
    ("scipy.libs/libgfortran-8f1e9814.so.5.0.0", "8.5.0", "GFORTRAN_8"),
    # RHEL 8's libgomp: compiled by gcc 8.5.0 from GCC 9 sources
    ("torch/lib/libgomp.so.1", None, "OMP_5.0"),
]


@pytest.mark.parametrize(("member", "version", "node"), _VENDORED)
def test_vendored_gcc_runtimes(member: str, version: str | None, node: str) -> None:
    path = WHEELS / member
    if not path.exists():
        pytest.skip("the real-wheel venv is not cached")
    (c, *_) = _identify(path)
    assert c.version == version
    assert any(e.method == "symbol-version" and f"defines {node} " in e.detail
               for e in c.evidence)
