"""rpm ownership read from the database itself, with rpm as the oracle.

Real packages are built with ``rpmbuild`` and registered with ``rpm --justdb`` into a
temporary root (Debian's ``rpm`` package; its rpm writes sqlite databases).  The Berkeley DB
variant holds the very same header blobs, loaded with ``db_load`` (Debian's ``db-util``) and
read back by rpm's own ``bdb_ro`` backend as the oracle.  rpm on Debian has no ndb backend:
that container is written here from rpm's ``rpmpkg.c`` layout, around real header blobs.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import tempfile
import zipfile
import zlib
from collections import defaultdict
from pathlib import Path

import pytest

from unveil.identify import component_from_owner
from unveil.identify.owners import PackageIndex
from unveil.identify.rpmdb import RpmdbError, parse_header, read_database
from unveil.sources.fs import HostFS, OverlayFS, ZipFS

pytestmark = pytest.mark.skipif(
    shutil.which("rpm") is None or shutil.which("rpmbuild") is None,
    reason="needs rpm and rpmbuild (Debian package 'rpm') to build the packages and as oracle")

needs_db_load = pytest.mark.skipif(shutil.which("db_load") is None,
                                   reason="needs db_load (Debian package 'db-util')")

DBPATH = "/var/lib/rpm"
QF_FILES = ("[%{FILENAMES}\t%{=NAME}\t%|EPOCH?{%{=EPOCH}:}:{}|%{=VERSION}-%{=RELEASE}"
            "\t%{=ARCH}\n]")
QF_PKG = "%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n"

SPECS = {
    "libdemo": """\
Name: libdemo
Version: 1.2.3
Release: 4.fc39
Epoch: 2
Summary: demo library
License: MIT
BuildArch: x86_64
%description
demo
%install
mkdir -p %{buildroot}/usr/lib64 %{buildroot}/usr/share/doc/libdemo
printf 'ELF?' > %{buildroot}/usr/lib64/libdemo.so.1
ln -s libdemo.so.1 %{buildroot}/usr/lib64/libdemo.so
printf 'doc' > %{buildroot}/usr/share/doc/libdemo/README
%files
/usr/lib64/libdemo.so.1
/usr/lib64/libdemo.so
/usr/share/doc/libdemo
""",
    # A subpackage: its source rpm has another name.  400 files make a header of tens of
    # kilobytes (overflow chains over many Berkeley DB pages); one directory is shared
    # with libdemo, and one file name is not ASCII.
    "python-demo": """\
Name: python-demo
Version: 0.9
Release: 1.fc39
Summary: demo
License: MIT
BuildArch: x86_64
%description
demo
%package -n python3-demo-libs
Summary: demo libs
%description -n python3-demo-libs
libs
%install
mkdir -p %{buildroot}/usr/lib64/python3-demo %{buildroot}/usr/share/doc/libdemo
mkdir -p %{buildroot}/usr/share/demo
for i in $(seq 0 399); do printf x > %{buildroot}/usr/lib64/python3-demo/mod_$i.so; done
printf y > %{buildroot}/usr/share/doc/libdemo/NOTES
printf z > "%{buildroot}/usr/share/demo/caf\u00e9.txt"
%files -n python3-demo-libs
/usr/lib64/python3-demo
/usr/share/doc/libdemo
/usr/share/demo
""",
    "demo-empty": """\
Name: demo-empty
Version: 1.0
Release: 1
Epoch: 0
Summary: no files at all
License: MIT
BuildArch: noarch
%description
meta
%files
""",
}


def _run(args: list[str], home: Path | None = None) -> str:
    env = {**os.environ, "LC_ALL": "C"}
    if home is not None:
        env["HOME"] = str(home)  # rpmbuild opens a database at ~/.rpmdb on Debian
    p = subprocess.run(args, capture_output=True, check=False, env=env)
    assert p.returncode == 0, (args, p.stderr.decode(errors="replace"))
    return p.stdout.decode("utf-8", "surrogateescape")


def _rpm(root: Path, *args: str, backend: str = "sqlite") -> str:
    return _run(["rpm", "--root", str(root), "--dbpath", DBPATH,
                 "--define", f"_db_backend {backend}", *args])


@pytest.fixture(scope="module")
def rpms(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    top = tmp_path_factory.mktemp("rpmbuild")
    out = []
    for name, spec in SPECS.items():
        f = top / f"{name}.spec"
        f.write_text(spec)
        _run(["rpmbuild", "--define", f"_topdir {top}", "--quiet", "-bb", str(f)], home=top)
    order = ["libdemo-1", "python3-demo-libs-", "demo-empty-"]
    found = sorted((top / "RPMS").rglob("*.rpm"))
    for prefix in order:
        out += [p for p in found if p.name.startswith(prefix)]
    assert len(out) == 3, found
    return out


@pytest.fixture(scope="module")
def sqlite_root(rpms: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A merged-/usr root (/lib64 -> usr/lib64) with the packages registered in sqlite."""
    root = tmp_path_factory.mktemp("fedora")
    (root / "usr/lib64").mkdir(parents=True)
    (root / "lib64").symlink_to("usr/lib64")
    (root / "usr/lib64/libdemo.so.1").write_bytes(b"ELF?")
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text('NAME="Fedora Linux"\nID=fedora\nVERSION_ID=39\n')
    _rpm(root, "--initdb")
    for pkg in rpms:  # one transaction each: the header numbers follow this order
        _rpm(root, "-i", "--justdb", "--nodeps", "--noscripts", "--notriggers", str(pkg))
    assert (root / "var/lib/rpm/rpmdb.sqlite").is_file()
    return root


def _listing(root: Path, backend: str = "sqlite") -> dict[str, set[tuple[str, str, str]]]:
    """rpm's own answer: every registered path and the packages that list it."""
    owners: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for line in _rpm(root, "-qa", "--qf", QF_FILES, backend=backend).splitlines():
        path, name, evr, arch = line.split("\t")
        if path != "(none)":  # a package without files
            owners[path].add((name, evr, arch))
    return owners


def _compare(root: Path, backend: str) -> int:
    oracle = _listing(root, backend)
    index = PackageIndex(HostFS(str(root)))
    index.preload()
    assert index.problems == []
    assert "rpm" in index.managers
    for path, owners in oracle.items():
        o = index.owner(path)
        assert o is not None, path
        assert (o.name, o.version, o.arch) in owners, (path, o, owners)
    return len(oracle)


# --- sqlite, the format of today's rpm -------------------------------------------------


def test_sqlite_owners_match_rpm(sqlite_root: Path) -> None:
    assert _compare(sqlite_root, "sqlite") == 408


def test_sqlite_headers_match_rpm_query(sqlite_root: Path) -> None:
    db = read_database(HostFS(str(sqlite_root)))
    assert db is not None
    assert (db.path, db.backend, db.problems) == (f"{DBPATH}/rpmdb.sqlite", "sqlite", ())
    got = [f"{h.name}\t{h.evr}\t{h.arch}\t{h.source_rpm}" for h in db.headers]
    assert got == _rpm(sqlite_root, "-qa", "--qf", QF_PKG).splitlines()
    for h in db.headers:
        listed = _rpm(sqlite_root, "-ql", h.name).splitlines()
        assert list(h.files) == ([] if listed == ["(contains no files)"] else listed)
    assert [h.source_name for h in db.headers] == ["libdemo", "python-demo", "demo-empty"]


def test_rpm_qf_as_oracle(sqlite_root: Path) -> None:
    """``rpm -qf`` itself, including the /lib64 spelling through the merged-/usr link and a
    directory two packages own (the first installed is reported)."""
    index = PackageIndex(HostFS(str(sqlite_root)))
    paths = ["/usr/lib64/libdemo.so.1", "/lib64/libdemo.so.1", "/usr/lib64/libdemo.so",
             "/usr/share/doc/libdemo", "/usr/lib64/python3-demo/mod_399.so",
             "/usr/share/demo/caf\u00e9.txt"]
    for path in paths:
        first = _rpm(sqlite_root, "-qf", "--qf", "%{NAME}\n", path).splitlines()[0]
        o = index.owner(path)
        assert o is not None, path
        assert o.name == first, path
    assert index.owner("/usr/lib64/libnothere.so") is None
    o = index.owner("/lib64/libdemo.so.1")
    assert o is not None
    assert (o.manager, o.version, o.source, o.distro) == ("rpm", "2:1.2.3-4.fc39",
                                                          "libdemo", "fedora-39")
    assert component_from_owner(o).purl == (
        "pkg:rpm/fedora/libdemo@1.2.3-4.fc39?arch=x86_64&distro=fedora-39&epoch=2")


def test_sqlite_from_a_zip_is_read_from_a_private_copy(
        sqlite_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    z = tmp_path / "root.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in ("var/lib/rpm/rpmdb.sqlite", "etc/os-release"):
            zf.write(sqlite_root / f, f)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    over = OverlayFS(HostFS(str(sqlite_root)), {"/opt/wheel": ZipFS(str(z), lambda n: None)})
    db = read_database(over)  # a directory of this machine below the overlay: no copy
    assert db is not None
    assert len(db.headers) == 3
    assert list(scratch.iterdir()) == []
    fs = ZipFS(str(z), lambda name: "/" + name)
    index = PackageIndex(fs)
    o = index.owner("/usr/lib64/libdemo.so.1")
    assert o is not None
    assert o.name == "libdemo"
    assert index.problems == []
    assert list(scratch.iterdir()) == []  # the copy is gone


def test_uncheckpointed_write_ahead_log_is_applied(sqlite_root: Path, tmp_path: Path) -> None:
    """A root copied while rpm's last transaction sits in rpmdb.sqlite-wal."""
    root = tmp_path / "root"
    shutil.copytree(sqlite_root, root, symlinks=True)
    db = root / "var/lib/rpm/rpmdb.sqlite"
    live = sqlite3.connect(db)
    try:
        live.execute("PRAGMA journal_mode = WAL")
        live.execute("PRAGMA wal_autocheckpoint = 0")
        live.execute("DELETE FROM Packages WHERE hnum = 1")
        live.commit()
        snap = tmp_path / "snap"
        shutil.copytree(root, snap, symlinks=True)  # while the log is still there
    finally:
        live.close()
    snapdb = snap / "var/lib/rpm"
    assert (snapdb / "rpmdb.sqlite-wal").stat().st_size > 0
    before = sorted(p.name for p in snapdb.iterdir())
    got = read_database(HostFS(str(snap)))
    assert got is not None
    assert [h.name for h in got.headers] == ["python3-demo-libs", "demo-empty"]
    assert sorted(p.name for p in snapdb.iterdir()) == before  # nothing written there
    names = _rpm(snap, "-qa", "--qf", "%{NAME}\n").split()
    assert sorted(names) == sorted(h.name for h in got.headers)


# --- Berkeley DB (CentOS 7, RHEL <= 8) --------------------------------------------------


def _db_load(dest: Path, kind: str, items: list[tuple[bytes, bytes]], lorder: int,
             pagesize: int) -> None:
    lines = ["VERSION=3", "format=bytevalue", f"type={kind}", f"db_pagesize={pagesize}",
             f"db_lorder={lorder}"]
    if kind == "hash":
        lines.append("h_ffactor=4")  # many buckets: exercises the split-point mapping
    lines.append("HEADER=END")
    for k, v in items:
        lines += [" " + k.hex(), " " + v.hex()]
    lines.append("DATA=END")
    subprocess.run(["db_load", str(dest)], input="\n".join(lines) + "\n", text=True,
                   check=True, capture_output=True)


def _bdb_root(src: Path, dest: Path, *, lorder: int, pagesize: int, copies: int) -> Path:
    """The sqlite root's header blobs as a Berkeley DB ``Packages`` (plus the
    ``Basenames`` index that ``rpm -qf`` uses), each package registered ``copies`` times."""
    e = "<" if lorder == 1234 else ">"
    con = sqlite3.connect(f"file:{src}/var/lib/rpm/rpmdb.sqlite?mode=ro&immutable=1", uri=True)
    rows = list(con.execute("SELECT hnum, blob FROM Packages ORDER BY hnum"))
    names = list(con.execute("SELECT key, hnum, idx FROM Basenames ORDER BY hnum, idx"))
    con.close()
    d = dest / "var/lib/rpm"
    d.mkdir(parents=True)
    (dest / "etc").mkdir()
    (dest / "etc/os-release").write_text('ID="centos"\nVERSION_ID="7"\n')
    step = 1000
    pk = [(struct.pack(e + "I", 0), struct.pack(e + "I", copies * step))]
    index: dict[bytes, bytes] = defaultdict(bytes)
    for c in range(copies):
        pk += [(struct.pack(e + "I", h + c * step), bytes(b)) for h, b in rows]
        for key, h, i in names:
            index[key.encode()] += struct.pack(e + "II", h + c * step, i)
    _db_load(d / "Packages", "hash", pk, lorder, pagesize)
    _db_load(d / "Basenames", "btree", sorted(index.items()), lorder, pagesize)
    return dest


@needs_db_load
@pytest.mark.parametrize(("lorder", "pagesize", "copies"),
                         [(1234, 4096, 1), (1234, 4096, 60), (4321, 512, 7)],
                         ids=["little-endian", "many-buckets", "big-endian-small-pages"])
def test_berkeley_db_matches_rpm(sqlite_root: Path, tmp_path: Path, lorder: int, pagesize: int,
                                 copies: int) -> None:
    root = _bdb_root(sqlite_root, tmp_path, lorder=lorder, pagesize=pagesize, copies=copies)
    db = read_database(HostFS(str(root)))
    assert db is not None
    assert (db.backend, db.problems) == ("bdb", ())
    rpm_says = _rpm(root, "-qa", "--qf", QF_PKG, backend="bdb_ro").splitlines()
    ours = [f"{h.name}\t{h.evr}\t{h.arch}\t{h.source_rpm}" for h in db.headers]
    assert len(ours) == 3 * copies
    assert sorted(ours) == sorted(rpm_says)
    assert [h.name for h in db.headers[:3]] == ["libdemo", "python3-demo-libs", "demo-empty"]
    assert _compare(root, "bdb_ro") == 408
    first = _rpm(root, "-qf", "--qf", "%{NAME}\n", "/usr/lib64/libdemo.so.1",
                 backend="bdb_ro").split()
    o = PackageIndex(HostFS(str(root))).owner("/lib64/libdemo.so.1")
    assert o is not None
    assert [o.name] * copies == first
    assert component_from_owner(o).purl == (
        "pkg:rpm/centos/libdemo@1.2.3-4.fc39?arch=x86_64&distro=centos-7&epoch=2")


@needs_db_load
def test_damaged_berkeley_db_is_a_problem_not_an_exception(sqlite_root: Path,
                                                           tmp_path: Path) -> None:
    root = _bdb_root(sqlite_root, tmp_path / "good", lorder=1234, pagesize=512, copies=3)
    pk = root / "var/lib/rpm/Packages"
    good = pk.read_bytes()
    rng = random.Random(7)
    bad = tmp_path / "bad"
    (bad / "var/lib/rpm").mkdir(parents=True)
    target = bad / "var/lib/rpm/Packages"
    cases = [good[:len(good) // 2], good[:512], good[:100], b"\0" * 4096, good[:513]]
    for version, pagesize, crypt, magic in ((7, 512, 0, 0x061561), (9, 600, 0, 0x061561),
                                            (9, 512, 1, 0x061561), (9, 512, 0, 0x053162)):
        b = bytearray(good)
        struct.pack_into("<II", b, 16, version, pagesize)
        struct.pack_into("<I", b, 12, magic)
        b[24] = crypt
        cases.append(bytes(b))
    # The pages that are not overflow pages (meta data, bucket pages with their item index)
    # take most of the damage: that is where the walk over the file is steered.
    structure = [pg for pg in range(len(good) // 512) if good[pg * 512 + 25] != 7]
    for n in range(400):
        b = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            if n % 4:
                pos = rng.choice(structure) * 512 + rng.randrange(64 if n % 2 else 512)
            else:
                pos = rng.randrange(len(b))
            b[pos] = rng.randrange(256)
        cases.append(bytes(b))
    damaged = 0
    for data in cases:
        target.write_bytes(data)
        db = read_database(HostFS(str(bad)))
        assert db is not None
        assert db.backend == "bdb"
        damaged += bool(db.problems)
        for h in db.headers:
            assert h.name
    assert damaged >= 150  # the others were hit in unused space or in header data


# --- ndb (SUSE before sqlite) ------------------------------------------------------------


def _ndb(blobs: list[tuple[int, bytes]], *, corrupt: int | None = None) -> bytes:
    """A Packages.db laid out as rpm's lib/backend/ndb/rpmpkg.c writes it."""
    head = struct.pack("<4sIIII", b"RpmP", 0, 1, 1, max(i for i, _ in blobs) + 1)
    page = bytearray(head.ljust(32, b"\0"))
    data = bytearray()
    for pkgidx, blob in blobs:
        blkoff = (4096 + len(data)) // 16
        blkcnt = (16 + len(blob) + 12 + 15) // 16
        area = bytearray(struct.pack("<4sIII", b"BlbS", pkgidx, 1234, len(blob)) + blob)
        area += b"\0" * (blkcnt * 16 - 12 - len(area))
        area += struct.pack("<II4s", zlib.adler32(area), len(blob), b"BlbE")
        if pkgidx == corrupt:
            area[40] ^= 0xFF
        data += area
        page += struct.pack("<4sIII", b"Slot", pkgidx, blkoff, blkcnt)
    while len(page) < 4096:
        page += struct.pack("<4sIII", b"Slot", 0, 0, 0)
    return bytes(page + data)


def test_ndb(sqlite_root: Path, tmp_path: Path) -> None:
    con = sqlite3.connect(f"file:{sqlite_root}/var/lib/rpm/rpmdb.sqlite?mode=ro&immutable=1",
                          uri=True)
    rows = [(h, bytes(b)) for h, b in con.execute("SELECT hnum, blob FROM Packages")]
    con.close()
    d = tmp_path / "usr/lib/sysimage/rpm"
    d.mkdir(parents=True)
    (tmp_path / "var/lib").mkdir(parents=True)
    (tmp_path / "var/lib/rpm").symlink_to("../../usr/lib/sysimage/rpm")
    (d / "Packages.db").write_bytes(_ndb(list(reversed(rows))))
    db = read_database(HostFS(str(tmp_path)))
    assert db is not None
    assert (db.path, db.backend, db.problems) == ("/var/lib/rpm/Packages.db", "ndb", ())
    assert [h.name for h in db.headers] == ["libdemo", "python3-demo-libs", "demo-empty"]
    (d / "Packages.db").write_bytes(_ndb(rows, corrupt=2))
    db = read_database(HostFS(str(tmp_path)))
    assert db is not None
    assert [h.name for h in db.headers] == ["libdemo", "demo-empty"]
    assert db.problems == ("rpm database /var/lib/rpm/Packages.db: package 2: "
                           "checksum mismatch",)
    good = _ndb(rows)
    rng = random.Random(3)
    cases = [good[:16], good[:4096], good[:5000], b"RpmP" + b"\0" * 4092]
    for n in range(400):
        b = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(4096 if n % 2 else len(b))
            b[pos] = rng.randrange(256)
        cases.append(bytes(b))
    damaged = 0
    for data in cases:
        (d / "Packages.db").write_bytes(data)
        db = read_database(HostFS(str(tmp_path)))
        assert db is not None
        damaged += bool(db.problems)
    assert damaged >= 200


# --- hostile header blobs and databases --------------------------------------------------


@pytest.fixture(scope="module")
def real_blob(sqlite_root: Path) -> bytes:
    con = sqlite3.connect(f"file:{sqlite_root}/var/lib/rpm/rpmdb.sqlite?mode=ro&immutable=1",
                          uri=True)
    (blob,) = con.execute("SELECT blob FROM Packages WHERE hnum = 1").fetchone()
    con.close()
    return bytes(blob)


def _entries(blob: bytes) -> list[tuple[int, int, int, int]]:
    il = struct.unpack_from(">I", blob)[0]
    return [struct.unpack_from(">IIiI", blob, 8 + 16 * i) for i in range(il)]


def _patch(blob: bytes, tag: int, *, typ: int | None = None, off: int | None = None,
           count: int | None = None) -> bytes:
    b = bytearray(blob)
    for i, (t, ty, o, c) in enumerate(_entries(blob)):
        if t == tag:
            struct.pack_into(">IIiI", b, 8 + 16 * i, t, ty if typ is None else typ,
                             o if off is None else off, c if count is None else count)
    return bytes(b)


def test_hostile_header_blobs(real_blob: bytes) -> None:
    h = parse_header(real_blob)
    assert (h.name, h.evr) == ("libdemo", "2:1.2.3-4.fc39")
    il, dl = struct.unpack_from(">II", real_blob)
    bad = [
        b"", b"\0" * 7, b"\0" * 8, real_blob[:8], real_blob[:-1],
        struct.pack(">II", 0xFFFFFFFF, 0xFFFFFFFF) + real_blob[8:],
        struct.pack(">II", il, dl + 1) + real_blob[8:],
        struct.pack(">II", 0x10000, 16) + b"\0" * 64,
        _patch(real_blob, 1000, off=dl + 5),                 # name outside the store
        _patch(real_blob, 1000, off=-4),
        _patch(real_blob, 1000, off=dl - 1),                  # string without its NUL
        _patch(real_blob, 1000, typ=4),                       # name as an integer
        _patch(real_blob, 1117, count=0xFFFFFFFF),            # huge count
        _patch(real_blob, 1117, count=10_000),
        _patch(real_blob, 1116, count=0x3FFFFFFF),
        _patch(real_blob, 1116, count=1),                     # indexes vs names mismatch
        _patch(real_blob, 1118, count=1, off=dl - 2),
        _patch(real_blob, 1003, count=dl),                    # epoch ints past the end
    ]
    for blob in bad:
        with pytest.raises(RpmdbError):
            parse_header(blob)
    # Directory indexes pointing past the directory names:
    dirindexes = next(e for e in _entries(real_blob) if e[0] == 1116)
    b = bytearray(real_blob)
    struct.pack_into(">i", b, 8 + 16 * il + dirindexes[2], 99)
    with pytest.raises(RpmdbError, match="directory index"):
        parse_header(bytes(b))
    # Random garbage and random damage: RpmdbError or a header, nothing else.
    rng = random.Random(1)
    for n in range(3000):
        if n % 3 == 0:
            b = bytearray(rng.randbytes(rng.randrange(200)))
        else:
            b = bytearray(real_blob)
            for _ in range(rng.randint(1, 6)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            if n % 3 == 2:
                b = b[: rng.randrange(len(b))]
        with contextlib.suppress(RpmdbError):
            parse_header(bytes(b))


def test_old_style_file_names(real_blob: bytes) -> None:
    """OLDFILENAMES (1027), used before directory/base-name compression."""
    il, dl = struct.unpack_from(">II", real_blob)
    keep = [e for e in _entries(real_blob) if e[0] not in (1116, 1117, 1118)]
    store = real_blob[8 + 16 * il: 8 + 16 * il + dl]
    names = b"/lib/libold.so.1\0/usr/bin/old\0"
    keep.append((1027, 8, len(store), 2))
    body = b"".join(struct.pack(">IIiI", *e) for e in sorted(keep))
    blob = struct.pack(">II", len(keep), len(store) + len(names)) + body + store + names
    assert parse_header(blob).files == ("/lib/libold.so.1", "/usr/bin/old")


def test_bad_rows_and_files_named_rpmdb_sqlite(sqlite_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(sqlite_root, root, symlinks=True)
    db = root / "var/lib/rpm/rpmdb.sqlite"
    con = sqlite3.connect(db)
    con.execute("INSERT INTO Packages (hnum, blob) VALUES (7, ?)", (b"garbage!" * 3,))
    con.execute("INSERT INTO Packages (hnum, blob) VALUES (8, ?)", (b"\0\0\0\1\0\0\0\0",))
    con.commit()
    con.close()
    index = PackageIndex(HostFS(str(root)))
    o = index.owner("/usr/lib64/libdemo.so.1")
    assert o is not None
    assert o.name == "libdemo"
    assert len(index.problems) == 2
    assert index.problems[0].startswith("rpm database /var/lib/rpm/rpmdb.sqlite: header 7: ")
    for content in (b"this is not a database" * 100, b"", b"SQLite format 3\0" + b"\xff" * 200):
        for f in db.parent.iterdir():
            f.unlink()
        db.write_bytes(content)
        got = read_database(HostFS(str(root)))
        assert got is not None
        assert got.headers == ()
        assert len(got.problems) == 1, got.problems
        assert "rpmdb.sqlite" in got.problems[0]
        index = PackageIndex(HostFS(str(root)))
        assert index.owner("/usr/lib64/libdemo.so.1") is None
        assert index.managers == ["rpm"]
        assert len(index.problems) == 1


def test_too_many_bad_headers(sqlite_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(sqlite_root, root, symlinks=True)
    con = sqlite3.connect(root / "var/lib/rpm/rpmdb.sqlite")
    con.executemany("INSERT INTO Packages (hnum, blob) VALUES (?, ?)",
                    [(n, b"\xff" * n) for n in range(10, 200)])
    con.commit()
    con.close()
    db = read_database(HostFS(str(root)))
    assert db is not None
    assert len(db.headers) == 3
    assert len(db.problems) == 51
    assert db.problems[-1].endswith("too many errors, the rest is not read")


def test_no_database(tmp_path: Path) -> None:
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    assert read_database(HostFS(str(tmp_path))) is None
    index = PackageIndex(HostFS(str(tmp_path)))
    assert index.owner("/usr/lib64/libc.so.6") is None
    assert index.managers == []
    assert index.problems == []
