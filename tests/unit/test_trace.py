"""``unveil trace``: real programs compiled per test, run under the loader's own debugging.

Each mechanism is shown catching what only it can: ``LD_DEBUG`` the ``DT_NEEDED`` and
``dlopen`` edges with their requester, ``/proc/<pid>/maps`` the interpreter and a library
mapped by hand, the audit hook the Python line that called ctypes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import Builder
from unveil.cli.main import main
from unveil.model import Confidence, LinkKind, LoadSite, Outcome, ProblemKind
from unveil.trace import (
    JoinStatus,
    LoadKind,
    MatchedBy,
    ObservedLoad,
    TraceResult,
    join_with_static,
    parse_ld_debug,
    run_trace,
)

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds the fixtures")

MAIN_C = r"""
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
int fa(void);
int main(int argc, char **argv) {
    void *b = dlopen("libb.so.1", RTLD_NOW);        /* found through the program's RPATH */
    void *again = dlopen("libb.so", RTLD_NOW);      /* a symlink to the file already loaded */
    void *none = dlopen("libnope.so.9", RTLD_NOW);  /* fails */
    int fd = open(argv[1], O_RDONLY);               /* mapped by hand: no loader involved */
    void *m = mmap(0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    if (argc < 2 || !b || !again || none || fd < 0 || m == MAP_FAILED) return 3;
    usleep(300000);                                  /* long enough to be sampled */
    return fa() == 1 ? 0 : 4;
}
"""


def gcc(*args: str | Path) -> None:
    subprocess.run(["gcc", *map(str, args)], check=True, capture_output=True)


def shlib(out: Path, soname: str | None = None) -> Path:
    src = out.with_name(out.name + ".c")
    src.write_text(f"int f{abs(hash(out.name)) % 9999}(void) {{ return 1; }}\n"
                   "int fa(void) { return 1; }\n")
    gcc("-shared", "-fPIC", "-o", out, src, f"-Wl,-soname,{soname or out.name}")
    return out


def one(result: TraceResult, name: str) -> ObservedLoad:
    hits = [x for x in result.loads if x.name == name]
    assert len(hits) == 1, (name, result.loads)
    return hits[0]


@pytest.fixture
def program(tmp_path: Path) -> tuple[Path, Path]:
    lib = tmp_path / "lib"
    lib.mkdir()
    shlib(lib / "liba.so.1")
    shlib(lib / "libb.so.1")
    (lib / "libb.so").symlink_to("libb.so.1")
    hand = shlib(tmp_path / "libhand.so")
    src = tmp_path / "main.c"
    src.write_text(MAIN_C)
    exe = tmp_path / "main"
    gcc("-o", exe, src, lib / "liba.so.1", "-ldl", f"-Wl,-rpath,{lib}",
        "-Wl,--disable-new-dtags")
    return exe, hand


@needs_gcc
def test_needed_dlopen_and_mapped(program: tuple[Path, Path]) -> None:
    exe, hand = program
    lib = exe.parent / "lib"
    r = run_trace([str(exe), str(hand)], env=ENV)
    assert r.exit_status == 0, r
    assert r.problems == ()
    assert r.pids
    assert not r.timed_out

    a = one(r, "liba.so.1")  # LD_DEBUG: "needed by"
    assert (a.kind, a.outcome, a.path) == (LoadKind.NEEDED, Outcome.FOUND, str(lib / "liba.so.1"))
    assert a.requester == str(exe)
    assert a.requester_is_program
    assert a.kind.link is LinkKind.DYNAMIC

    b = one(r, "libb.so.1")  # LD_DEBUG: "dynamically loaded by", path from "trying file="
    assert (b.kind, b.path, b.requester) == (LoadKind.DLOPEN, str(lib / "libb.so.1"), str(exe))
    assert b.kind.link is LinkKind.DLOPEN
    assert b.call_site is None

    again = one(r, "libb.so")  # no link map: the same file, already loaded
    assert again.outcome is Outcome.FOUND
    assert again.real_path == str(lib / "libb.so.1")
    nope = one(r, "libnope.so.9")  # no link map and no such file: a failed dlopen
    assert (nope.kind, nope.outcome, nope.path) == (LoadKind.DLOPEN, Outcome.NOT_FOUND, None)
    assert nope not in r.loaded

    libc = one(r, "libc.so.6")
    assert libc.real_path is not None
    assert libc.requester_is_program

    mapped = {x.name: x for x in r.loads if x.kind is LoadKind.MAPPED}  # /proc/<pid>/maps
    assert mapped["libhand.so"].real_path == str(hand)
    assert mapped["libhand.so"].kind.link is None
    assert any(n.startswith("ld-linux") for n in mapped), mapped  # the interpreter
    assert str(exe) not in {x.path for x in r.loads}


@needs_gcc
def test_missing_needed_library(tmp_path: Path) -> None:
    lib = shlib(tmp_path / "libgone.so.1")
    (tmp_path / "main.c").write_text("int fa(void);\nint main(void) { return fa(); }\n")
    exe = tmp_path / "main"
    gcc("-o", exe, tmp_path / "main.c", lib, f"-Wl,-rpath,{tmp_path}")
    lib.unlink()
    r = run_trace([str(exe)], env=ENV, stderr=subprocess.DEVNULL)
    assert r.exit_status == 127
    gone = one(r, "libgone.so.1")
    assert (gone.kind, gone.outcome, gone.requester_is_program) == \
        (LoadKind.NEEDED, Outcome.NOT_FOUND, True)


@needs_gcc
@pytest.mark.parametrize("launch", ["interpreter", "shebang"])
def test_python_ctypes_call_site(tmp_path: Path, launch: str) -> None:
    lib = shlib(tmp_path / "libpy.so")
    user_site = tmp_path / "usersite"
    user_site.mkdir()
    (user_site / "sitecustomize.py").write_text("MARK = 1\n")
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import ctypes, sys
        import sitecustomize

        handle = ctypes.CDLL({str(lib)!r})
        # The hook's directory is gone from sys.path, and the user's sitecustomize still ran.
        sys.exit(0 if sitecustomize.MARK == 1 and
                 not any("unveil-trace" in p for p in sys.path) else 5)
        """))
    script.chmod(0o755)
    argv = [sys.executable, str(script)] if launch == "interpreter" else [str(script)]
    r = run_trace(argv, env={**ENV, "PYTHONPATH": str(user_site)})
    assert r.exit_status == 0, r.problems
    assert r.problems == ()

    load = one(r, str(lib))
    assert load.kind is LoadKind.DLOPEN
    assert load.path == str(lib)
    assert load.requester is not None
    assert "ctypes" in load.requester
    assert load.call_site is not None
    assert (load.call_site.file, load.call_site.line) == (str(script), 5)
    assert load.call_site.api == "ctypes.dlopen"
    assert load.call_site.names == (str(lib),)

    (event,) = [d for d in r.python_dlopens if d.name == str(lib)]
    assert event.call_site == load.call_site
    assert event.stack[0].split(":")[0].endswith("ctypes/__init__.py")
    assert f"{script}:5 in <module>" in event.stack


def test_python_audit_disabled_is_a_problem() -> None:
    r = run_trace([sys.executable, "-I", "-c", "pass"], env=ENV)
    assert r.exit_status == 0
    assert [p.kind for p in r.problems] == [ProblemKind.UNSUPPORTED]
    assert "audit hook" in r.problems[0].message


def test_timeout_stops_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    r = run_trace(["sh", "-c", f'sleep 30 & echo $! > "{pidfile}"; wait'], env=ENV,
                  timeout=0.5)
    assert r.timed_out
    assert r.exit_status is not None
    assert r.exit_status < 0
    assert r.duration < 5
    assert any("timed out" in p.message for p in r.problems)
    # Partial results survive, from the shell and from its child.
    libc = [x for x in r.loaded if x.name == "libc.so.6"]
    assert {x.requester for x in libc} == {"sh", "sleep"}
    assert len(r.pids) == 2
    assert not _alive(int(pidfile.read_text()))


def test_processes_left_running_are_stopped(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    r = run_trace(["sh", "-c", f'sleep 30 & echo $! > "{pidfile}"'], env=ENV)
    assert r.exit_status == 0
    assert not r.timed_out
    assert any("left running" in p.message for p in r.problems)
    assert not _alive(int(pidfile.read_text()))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def test_missing_command_is_a_problem() -> None:
    r = run_trace(["/nonexistent/unveil-no-such-command"], env=ENV)
    assert r.exit_status is None
    assert r.loads == ()
    assert [p.kind for p in r.problems] == [ProblemKind.SOURCE]
    assert "cannot run" in r.problems[0].message


def test_api_misuse_raises() -> None:
    with pytest.raises(ValueError, match="command"):
        run_trace([], env=ENV)
    with pytest.raises(ValueError, match="timeout"):
        run_trace(["true"], env=ENV, timeout=0)
    with pytest.raises(ValueError, match="PIPE"):
        run_trace(["true"], env=ENV, stdout=subprocess.PIPE)


def test_parse_init_fallback_and_explicit_loader() -> None:
    text = (
        "  7:\tfile=./prog [0];  generating link map\n"  # `ld.so ./prog`: no request line
        "  7:\tfile=libq.so [0];  needed by ./prog [0]\n"
        "  7:\tfile=libq.so [0];  generating link map\n"
        "  7:\tcalling init: /opt/q/libq.so\n"
        "  7:\tgarbage without a pid\n"
        "  8:\tfile=libr.so [0];  dynamically loaded by /opt/q/libq.so [0]\n"
    )
    loads = parse_ld_debug(text.splitlines(), cwd="/")
    q, r = loads
    assert (q.path, q.requester_is_program, q.kind) == ("/opt/q/libq.so", True, LoadKind.NEEDED)
    assert (r.pid, r.outcome, r.kind, r.requester_is_program) == \
        (8, Outcome.NOT_FOUND, LoadKind.DLOPEN, True)


def _load(name: str, path: str | None, real: str | None = None,
          outcome: Outcome = Outcome.FOUND) -> ObservedLoad:
    return ObservedLoad(name, LoadKind.NEEDED, 1, outcome, path, real or path, "prog")


def test_join_with_static(tmp_path: Path) -> None:
    real = tmp_path / "libx.so.1.2"
    real.write_bytes(b"")
    link = tmp_path / "libx.so.1"
    link.symlink_to(real.name)
    observed = [
        _load("libx.so.1", str(link), str(real)),
        _load("libx.so.1", str(link), str(real)),  # a second process: one library
        _load("libmagic.so.1", "/usr/lib/libmagic.so.1"),
        _load("libz.so.1", "/usr/lib/libz.so.1"),
        _load("libgap.so", "/opt/libgap.so"),
        _load("libfail.so", None, outcome=Outcome.NOT_FOUND),
    ]
    joined = join_with_static(
        observed,
        predicted_paths={str(link), "/vendored/libz.so.1", "/opt/lazy/libplugin.so"},
        predicted_names={"libx.so.1", "magic", "libplugin.so", "libfail.so", "libtls.so.3"},
    )
    by = {j.library: j for j in joined.libraries}

    assert [j.library for j in joined.gaps] == ["/opt/libgap.so"]
    assert joined.libraries[0].status is JoinStatus.SEEN_NOT_PREDICTED  # gaps come first

    x = by[str(real)]  # the predicted symlink matches by real path; its soname by name
    assert (x.status, x.matched_by, len(x.loads)) == \
        (JoinStatus.PREDICTED_AND_SEEN, MatchedBy.PATH, 2)
    assert set(x.predictions) == {str(link), "libx.so.1"}
    assert by["/usr/lib/libmagic.so.1"].matched_by is MatchedBy.STEM

    z = by["/usr/lib/libz.so.1"]  # predicted elsewhere: seen by name, with a note
    assert (z.matched_by, z.note) == \
        (MatchedBy.NAME, "predicted /vendored/libz.so.1, loaded /usr/lib/libz.so.1")

    unseen = joined.with_status(JoinStatus.PREDICTED_NOT_SEEN)
    assert {j.library: j.predictions for j in unseen} == {
        "/opt/lazy/libplugin.so": ("/opt/lazy/libplugin.so", "libplugin.so"),  # one library
        "libfail.so": ("libfail.so",),  # a failed load is not a sighting
        "libtls.so.3": ("libtls.so.3",),
    }
    assert [j.status for j in joined.libraries] == sorted(
        (j.status for j in joined.libraries), key=list(JoinStatus).index)


def test_join_stems_and_present_files() -> None:
    """A name the scan used as a file name is no find_library stem (CDLL("pulse") loads no
    libpulse.so.0); a file the scan merely found counts for an import, not for a load a
    ctypes call site made."""
    site = LoadSite("pkg/x.py", 3, "python", "ctypes.CDLL", ("x",), Confidence.HIGH)
    observed = [_load("libpulse.so.0", "/usr/lib/libpulse.so.0"),
                _load("libmagic.so.1", "/usr/lib/libmagic.so.1"),
                replace(_load("/pkg/libown.so", "/pkg/libown.so"), call_site=site),
                _load("/pkg/_ext.so", "/pkg/_ext.so")]
    joined = join_with_static(observed, set(), {"pulse"}, {"magic"},
                              present_paths={"/pkg/libown.so", "/pkg/_ext.so"})
    status = {j.library: j.status for j in joined.libraries}
    assert status == {"/usr/lib/libpulse.so.0": JoinStatus.SEEN_NOT_PREDICTED,
                      "/usr/lib/libmagic.so.1": JoinStatus.PREDICTED_AND_SEEN,
                      "/pkg/libown.so": JoinStatus.SEEN_NOT_PREDICTED,
                      "/pkg/_ext.so": JoinStatus.PREDICTED_AND_SEEN,
                      "pulse": JoinStatus.PREDICTED_NOT_SEEN}


def test_join_empty() -> None:
    assert join_with_static([], set(), set()).libraries == ()


def test_compare_predicts_a_binarys_whole_closure(build: Builder, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """prog needs libmid, which needs libleaf: the scan's edges name only libmid (prog's own
    request), yet libleaf is predicted too (ld.so loads the closure), not a gap."""
    leaf = build.lib("l/libleaf.so")
    mid = build.lib("m/libmid.so", needs=[str(leaf)], rpath=str(leaf.parent))
    exe = build.exe("bin/prog", needs=[str(mid)], rpath=str(mid.parent))
    assert main(["trace", "--format", "json", "--compare", str(exe.parent), "--", str(exe)]) == 0
    doc = json.loads(capsys.readouterr().out)
    gaps = [j["library"] for j in doc["join"] if j["status"] == "seen-not-predicted"]
    assert not [g for g in gaps if "libleaf" in g or "libmid" in g], gaps
