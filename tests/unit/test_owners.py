"""Which dpkg package owns a file: a synthetic dpkg root, and the host's dpkg as oracle."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from unveil import scan
from unveil.config import ScanConfig
from unveil.errors import SourceError
from unveil.identify.owners import PackageIndex, _DpkgLists
from unveil.sources.fs import HostFS

STATUS = """\
Package: libfoo1
Status: install ok installed
Architecture: amd64
Source: foo (1.2-3)
Version: 1.2-3

Package: libfoo1
Status: install ok installed
Architecture: i386
Source: foo
Version: 1.2-3

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 0.1

Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4
Description: two
 continuation lines
 Package: not-a-stanza
"""


@pytest.fixture
def dpkg_root(tmp_path: Path) -> Path:
    info = tmp_path / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(STATUS)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    # Lists are read in name order; a path in two lists keeps the first claim.
    (info / "base-files.list").write_text("/.\n/usr\n/usr/lib\n/etc/shared.conf\n")
    (info / "libfoo1:amd64.list").write_text(
        "/.\n/usr\n/usr/lib\n/lib/x86_64-linux-gnu/libfoo.so.1\n/etc/shared.conf")
    (info / "libfoo1:i386.list").write_text("/lib/i386-linux-gnu/libfoo.so.1\n")
    (info / "gone.list").write_text("/lib/x86_64-linux-gnu/libgone.so.0\n")
    return tmp_path


def test_owner_by_list_and_status(dpkg_root: Path) -> None:
    index = PackageIndex(HostFS(str(dpkg_root)))
    # merged /usr: registered under /lib, found under /usr/lib
    o = index.owner("/usr/lib/x86_64-linux-gnu/libfoo.so.1")
    assert o is not None
    assert (o.name, o.arch, o.version, o.source, o.distro) == (
        "libfoo1", "amd64", "1.2-3", "foo", "debian-12")
    o32 = index.owner("/lib/i386-linux-gnu/libfoo.so.1")
    assert o32 is not None
    assert o32.arch == "i386"
    shared = index.owner("/etc/shared.conf")
    assert shared is not None
    assert shared.name == "base-files"
    assert index.owner("/lib/x86_64-linux-gnu/libgone.so.0") is None  # not installed
    assert index.owner("/lib/x86_64-linux-gnu/libfoo.so") is None  # a prefix, not a line
    assert index.managers == ["dpkg"]


def test_many_questions_build_the_same_index(dpkg_root: Path) -> None:
    """After questions about enough directories the lists become one dict; the answers
    must not change."""
    paths = ["/usr/lib/x86_64-linux-gnu/libfoo.so.1", "/lib/i386-linux-gnu/libfoo.so.1",
             "/etc/shared.conf", "/lib/x86_64-linux-gnu/libgone.so.0", "/nowhere"]
    lazy = PackageIndex(HostFS(str(dpkg_root)))
    expected = [lazy.owner(p) for p in paths]
    eager = PackageIndex(HostFS(str(dpkg_root)))
    for i in range(_DpkgLists.INDEX_AFTER + 1):  # questions about that many directories
        eager.owner(f"/nowhere/{i}/x")
    assert [eager.owner(p) for p in paths] == expected


def test_odd_database_is_not_fatal(tmp_path: Path) -> None:
    info = tmp_path / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_bytes(b"\xff\xfe garbage\n\nPackage:\n\n")
    (info / "x.list").write_bytes(b"\xff/odd\x00name\n/usr/lib/libx.so.1")
    (info / "dir.list").mkdir()
    index = PackageIndex(HostFS(str(tmp_path)))
    assert index.owner("/usr/lib/libx.so.1") is None  # no installed stanza for x


@pytest.mark.skipif(shutil.which("dpkg-query") is None
                    or not Path("/var/lib/dpkg/status").exists(), reason="not a dpkg system")
def test_agrees_with_dpkg_query() -> None:
    """The host's own dpkg is the oracle: for a sample of shared libraries, the package
    ``dpkg-query -S`` names (first of several) is the one unveil names."""
    libs = sorted(str(p) for p in Path("/usr/lib/x86_64-linux-gnu").glob("*.so*")
                  if p.is_file() and not p.is_symlink())
    sample = random.Random(7).sample(libs, min(60, len(libs)))
    index = PackageIndex(HostFS("/"))
    # dpkg-query matches the registered spelling: ask for both halves of merged /usr.
    asked = [*sample, *(p.removeprefix("/usr") for p in sample)]
    out = subprocess.run(["dpkg-query", "-S", *asked], capture_output=True, text=True,
                         check=False).stdout
    owners: dict[str, list[str]] = {}
    for line in out.splitlines():
        if ": " in line and not line.startswith("diversion"):
            pkgs, _, path = line.partition(": ")
            owners.setdefault(path, []).extend(p.split(":")[0] for p in pkgs.split(", "))
    checked = 0
    for path in sample:
        names = owners.get(path, []) + owners.get(path.removeprefix("/usr"), [])
        o = index.owner(path)
        if not names:
            assert o is None, path
            continue
        assert o is not None, (path, names)
        assert o.name in names, (path, o, names)
        checked += 1
    assert checked > 10


def _root(tmp_path: Path, status: str, lists: dict[str, str]) -> Path:
    info = tmp_path / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_bytes(status.encode())
    for name, text in lists.items():
        (info / f"{name}.list").write_text(text)
    return tmp_path


def test_status_stanzas_as_dpkg_writes_and_reads_them(tmp_path: Path) -> None:
    status = ("Status: install ok installed\r\nPackage: early\r\nVersion: 1\r\n\r\n"
              "Package: dup\nStatus: install ok installed\nVersion: 1\n\n"
              "Package: dup\nStatus: install ok installed\nVersion: 2\n \n"
              "Package: half\nStatus: install reinstreq half-installed\nVersion: 3\n\n"
              "Package:tight\nStatus: install ok installed\nVersion: 4")
    root = _root(tmp_path, status, {"early": "/lib/libearly.so\n", "dup": "/lib/libdup.so\n",
                                    "half": "/lib/libhalf.so\n", "tight": "/lib/libt.so\n"})
    index = PackageIndex(HostFS(str(root)))
    early = index.owner("/lib/libearly.so")  # Status before Package, CRLF line ends
    assert early is not None
    assert (early.name, early.version) == ("early", "1")
    dup = index.owner("/lib/libdup.so")  # two stanzas: the later one, as dpkg's reader keeps
    assert dup is not None
    assert dup.version == "2"
    assert index.owner("/lib/libhalf.so") is None  # half-installed owns nothing
    tight = index.owner("/lib/libt.so")  # no space after the colon, last line of the file
    assert tight is not None
    assert tight.version == "4"


def test_managers_by_spelling_then_database(tmp_path: Path) -> None:
    """The first spelling any database lists wins, whichever database lists it."""
    root = _root(tmp_path, "Package: deb-x\nStatus: install ok installed\nVersion: 1\n",
                 {"deb-x": "/lib/libx.so\n"})
    apk = root / "lib/apk/db"
    apk.mkdir(parents=True)
    (apk / "installed").write_text("P:apk-x\nV:2\nA:x86_64\nF:usr/lib\nR:libx.so\n\n")
    o = PackageIndex(HostFS(str(root))).owner("/usr/lib/libx.so")
    assert o is not None
    assert (o.manager, o.name) == ("apk", "apk-x")


def test_unreadable_list_of_removed_package_is_no_problem(tmp_path: Path) -> None:
    status = ("Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n"
              "Package: here\nStatus: install ok installed\nVersion: 1\n")
    root = _root(tmp_path, status, {"gone": "/lib/libgone.so\n", "here": "/lib/libhere.so\n"})

    class Refusing(HostFS):
        def read_file(self, path: str, limit: int) -> bytes:
            if path.endswith(".list"):
                raise SourceError(f"cannot read {path}")
            return super().read_file(path, limit)

    index = PackageIndex(Refusing(str(root)))
    index.preload()
    assert index.problems == []  # lists are read when a question needs them
    assert index.owner("/lib/libhere.so") is None
    assert index.problems == ["/var/lib/dpkg/info/here.list: unreadable"]


def test_scan_reports_a_damaged_database_without_system_edges(tmp_path: Path) -> None:
    (tmp_path / "conda-meta").mkdir()
    (tmp_path / "conda-meta/bad.json").write_text("{bad")
    (tmp_path / "app").mkdir()
    lib = next(p for p in sorted(Path("/usr/lib/x86_64-linux-gnu").glob("libz.so.1*"))
               if p.is_file())
    shutil.copy(lib, tmp_path / "app/libz.so.1")
    result = scan(str(tmp_path / "app"), ScanConfig(root=str(tmp_path), dynload=False))
    assert any("bad.json" in p.message for t in result.targets for p in t.problems)


def test_library_owner_read_from_the_lists_of_likely_packages(tmp_path: Path) -> None:
    """A library's owner is looked for first in the lists of the packages Debian ships its
    name in; the other lists are read only when none of those lists the path."""
    status = "".join(f"Package: {p}\nStatus: install ok installed\nArchitecture: amd64\n"
                     f"Version: 1\n\n" for p in ("aaa-local", "libc6", "zlib1g", "zzz"))
    root = _root(tmp_path, status, {
        "libc6:amd64": "/lib/x86_64-linux-gnu/libm.so.6\n/lib/x86_64-linux-gnu/libc.so.6\n",
        # an installed package Debian does not know, owning a file of a name Debian ships
        "aaa-local": "/opt/lib/libz.so.1\n",
        "zlib1g:amd64": "/lib/x86_64-linux-gnu/libz.so.1\n",
        "zzz": "/usr/share/zzz\n",
    })
    read: list[str] = []

    class Counting(HostFS):
        def read_file(self, path: str, limit: int) -> bytes:
            got = super().read_file(path, limit)  # (raises for an absent one)
            if path.endswith(".list"):
                read.append(Path(path).name)
            return got

    index = PackageIndex(Counting(str(root)))
    o = index.owner("/usr/lib/x86_64-linux-gnu/libm.so.6")  # merged /usr spelling
    assert o is not None
    assert (o.name, o.arch) == ("libc6", "amd64")
    assert read == ["libc6:amd64.list"]
    z = index.owner("/lib/x86_64-linux-gnu/libz.so.1")
    assert z is not None
    assert z.name == "zlib1g"
    assert read == ["libc6:amd64.list", "zlib1g:amd64.list"]
    # zlib1g does not list this one: every list is read, and the real owner found
    local = index.owner("/opt/lib/libz.so.1")
    assert local is not None
    assert local.name == "aaa-local"
    assert sorted(set(read)) == ["aaa-local.list", "libc6:amd64.list", "zlib1g:amd64.list",
                                 "zzz.list"]
    assert index.owner("/usr/share/zzz") is not None
    assert index.owner("/lib/x86_64-linux-gnu/libnothing.so.1") is None
    # the same answers from a reading of every list
    eager = PackageIndex(HostFS(str(root)))
    for i in range(_DpkgLists.INDEX_AFTER + 1):
        eager.owner(f"/nowhere/{i}/x")
    for p in ("/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib/x86_64-linux-gnu/libz.so.1",
              "/opt/lib/libz.so.1"):
        assert eager.owner(p) == index.owner(p)


def test_likely_owner_keeps_the_rules_of_reading_every_list(tmp_path: Path) -> None:
    """What the shortcut through the likely packages' lists must not change (an outside
    review's cases): a diverted file goes to the list that sorts first, an earlier
    spelling another database lists comes first, and a list that is a symlink (out of
    the root) is not read."""
    status = "".join(f"Package: {p}\nStatus: install ok installed\nArchitecture: amd64\n"
                     f"Version: 1\n\n" for p in ("glx-diversions", "libgl1", "zlib1g"))
    gl = "/usr/lib/x86_64-linux-gnu/libGL.so.1"
    root = _root(tmp_path / "root", status, {
        "glx-diversions": f"{gl}\n",
        "libgl1:amd64": f"{gl}\n",
    })
    (root / "var/lib/dpkg/diversions").write_text(
        f"{gl}\n/usr/lib/mesa-diverted/libGL.so.1\nglx-diversions\n")
    outside = tmp_path / "outside.list"
    outside.write_text("/lib/x86_64-linux-gnu/libz.so.1\n")
    (root / "var/lib/dpkg/info/zlib1g:amd64.list").symlink_to(outside)
    index = PackageIndex(HostFS(str(root)))
    o = index.owner(gl)
    assert o is not None
    assert o.name == "glx-diversions"
    assert index.owner("/lib/x86_64-linux-gnu/libz.so.1") is None

    apk_root = _root(tmp_path / "apk", "Package: zlib1g\nStatus: install ok installed\n"
                     "Architecture: amd64\nVersion: 1\n", {
                         "zlib1g:amd64": "/lib/x86_64-linux-gnu/libz.so.1\n"})
    (apk_root / "lib/apk/db").mkdir(parents=True)
    (apk_root / "lib/apk/db/installed").write_text(
        "P:apk-z\nV:2\nA:x86_64\nF:usr/lib/x86_64-linux-gnu\nR:libz.so.1\n\n")
    first = PackageIndex(HostFS(str(apk_root))).owner("/usr/lib/x86_64-linux-gnu/libz.so.1")
    assert first is not None
    assert (first.manager, first.name) == ("apk", "apk-z")
