"""Run one command and record the shared objects it really loads: the runtime truth.

Everything else in unveil is static.  This module is the one place that runs anything, and it
runs exactly the ``argv`` it is given (no shell, no added arguments), in the environment the
caller passes plus the few variables below.  Nothing it runs is chosen by unveil.

Three observers are used, because none of them sees everything:

1. **glibc's loader debugging**, ``LD_DEBUG=files,libs`` with ``LD_DEBUG_OUTPUT`` pointing
   into a private temporary directory: ``ld.so`` writes ``<prefix>.<pid>`` for every process
   it starts, children included.  ``file=NAME [ns];  needed by REQ`` is a ``DT_NEEDED`` load,
   ``... dynamically loaded by REQ`` a ``dlopen`` (``REQ`` is the object that called
   ``dlopen``); ``trying file=PATH`` lines list the candidates, and the last one before
   ``file=NAME;  generating link map`` is the file loaded.  ``files`` alone names the request
   and the requester but not the file (only objects with constructors print their path, in
   ``calling init``), which is why ``libs`` is asked for too.  A request with no link map is
   either a file already loaded under another name (its path is then one already loaded) or a
   failure (:attr:`~unveil.model.Outcome.NOT_FOUND`).
2. **``/proc/<pid>/maps`` of the main process**, sampled every 20 ms (then every 250 ms): ELF
   files mapped executable.  This catches the program interpreter (``ld-linux``), which the
   loader never reports, and objects mapped by hand or by a loader other than glibc's.  It is
   a sampler: an object mapped and unmapped between two samples, or mapped by a child
   process, is missed.
3. **A CPython audit hook** for Python commands, installed by a ``sitecustomize`` module put
   first on ``PYTHONPATH``: every ``ctypes.dlopen`` audit event is recorded with the Python
   stack, which ties a ``dlopen`` to the ``file:line`` that made it.  cffi's ``ffi.dlopen``
   raises no audit event; its loads are still seen by (1), without a Python call site.  The
   hook removes its directory from ``sys.path`` and then imports any other
   ``sitecustomize``, so the program sees the path it would have seen.  ``python -I``, ``-E``
   or ``-S`` disable it (reported as a problem).

Loading is often lazy: a library may be loaded on first use of an entry point, of an optional
feature or of a code path, not at import.  A trace covers only what this one run exercised;
"predicted but not seen" means "not triggered by this command", not "never loaded".

All files are written inside one :class:`tempfile.TemporaryDirectory`, removed afterwards.
The command runs in a new session (its own process group, no controlling terminal); on timeout
the whole group is stopped (SIGTERM, then SIGKILL) and what was recorded so far is returned
with a problem.  Processes the command leaves running when it exits are stopped the same way.
"""

from __future__ import annotations

import ast
import contextlib
import enum
import os
import posixpath
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from unveil.model import Confidence, LinkKind, LoadSite, Outcome, Problem, ProblemKind

__all__ = [
    "Joined",
    "JoinedLibrary",
    "JoinStatus",
    "LoadKind",
    "MatchedBy",
    "ObservedLoad",
    "PythonDlopen",
    "TraceResult",
    "join_with_static",
    "parse_ld_debug",
    "run_trace",
]

# ------------------------------------------------------------------------------------ model


class LoadKind(enum.Enum):
    """How an object came to be in a process."""

    #: a ``DT_NEEDED`` entry (or ``LD_PRELOAD``, which ``ld.so`` reports the same way).
    NEEDED = "needed"
    #: ``dlopen`` (ctypes, cffi, ``dlopen`` in C, ...): the requester is the caller's object.
    DLOPEN = "dlopen"
    #: seen only in ``/proc/<pid>/maps``: the interpreter, or mapped by other means.
    MAPPED = "mapped"

    @property
    def link(self) -> LinkKind | None:
        """The static model's view of this kind; ``None`` when it has no counterpart."""
        return {LoadKind.NEEDED: LinkKind.DYNAMIC, LoadKind.DLOPEN: LinkKind.DLOPEN}.get(self)


@dataclass(frozen=True, slots=True)
class ObservedLoad:
    """One object requested or mapped in one process.

    ``name`` is the request as written (the ``DT_NEEDED`` string or the ``dlopen`` argument;
    the file's basename for :attr:`LoadKind.MAPPED`).  ``path`` is the file as the loader
    opened it and ``real_path`` the same with symlinks resolved (relative names against the
    command's starting directory); both are ``None`` when nothing was loaded
    (``outcome`` :attr:`~unveil.model.Outcome.NOT_FOUND`).  ``requester`` is spelled as
    ``ld.so`` prints it, which for the main program is its ``argv[0]``
    (``requester_is_program``).  ``call_site`` is the Python line that called ``ctypes``,
    when the audit hook saw it.
    """

    name: str
    kind: LoadKind
    pid: int
    outcome: Outcome
    path: str | None
    real_path: str | None
    requester: str | None = None
    requester_is_program: bool = False
    namespace: int = 0
    call_site: LoadSite | None = None


@dataclass(frozen=True, slots=True)
class PythonDlopen:
    """One ``ctypes.dlopen`` audit event, whether or not it loaded anything new.

    ``name`` is ``None`` for ``CDLL(None)`` (the program itself).  ``stack`` is innermost
    first, as ``file:line in function``; ``call_site`` is its innermost frame outside the
    ``ctypes`` package and the import machinery, as a :class:`~unveil.model.LoadSite` so it
    compares directly with the static detector's findings.
    """

    name: str | None
    pid: int
    call_site: LoadSite | None
    stack: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TraceResult:
    """What one run showed.  ``exit_status`` is the return code (negative: killed by that
    signal), ``None`` when the command could not be started."""

    argv: tuple[str, ...]
    loads: tuple[ObservedLoad, ...]
    python_dlopens: tuple[PythonDlopen, ...]
    exit_status: int | None
    timed_out: bool
    duration: float
    pids: tuple[int, ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def loaded(self) -> tuple[ObservedLoad, ...]:
        """The loads that put a file in a process."""
        return tuple(x for x in self.loads if x.outcome is Outcome.FOUND)


# ----------------------------------------------------------------------------------- limits

_ENV_AUDIT = "UNVEIL_TRACE_AUDIT"
_LD_DEBUG = "files,libs"
_FAST_INTERVAL = 0.02
_FAST_SAMPLES = 500
_SLOW_INTERVAL = 0.25
_GRACE = 1.0
_MAX_MAPS_BYTES = 8 * 1024 * 1024
_MAX_DEBUG_FILES = 4096
_MAX_DEBUG_BYTES = 256 * 1024 * 1024
_MAX_AUDIT_BYTES = 32 * 1024 * 1024
_MAX_AUDIT_LINE = 256 * 1024
_PYTHON_NAME = re.compile(r"python[\w.-]*")

#: Written to ``<tmp>/site/sitecustomize.py``.  Imports nothing new (``sys`` and ``os`` are
#: loaded before ``site`` runs), so the hook itself loads no shared object; written in the
#: plain subset of Python that every 3.x accepts, and silent on every error, because it runs
#: inside the user's program and any Python child it starts.
_SITECUSTOMIZE = '''\
import os
import sys


def _unveil_install():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p != here]
    out = os.environ.get("UNVEIL_TRACE_AUDIT")
    if not out or not hasattr(sys, "addaudithook"):
        return
    getframe = sys._getframe
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)

    def write(record):
        fd = os.open(out + "." + str(os.getpid()), flags, 0o600)
        try:
            os.write(fd, (repr(record) + "\\n").encode("utf-8", "backslashreplace"))
        finally:
            os.close(fd)

    def hook(event, args):
        if event != "ctypes.dlopen":
            return
        try:
            name = args[0] if args else None
            if not isinstance(name, (str, bytes, type(None))):
                name = str(name)
            ct = sys.modules.get("ctypes")
            skip = (os.path.dirname(getattr(ct, "__file__", None) or "/nonexistent") + os.sep,
                    "<frozen importlib.")
            frames = []
            f = getframe(1)
            while f is not None and len(frames) < 64:
                code = f.f_code
                frames.append((code.co_filename, f.f_lineno, code.co_name,
                               code.co_filename.startswith(skip)))
                f = f.f_back
            write(("dlopen", os.getpid(), name, tuple(frames)))
        except Exception:
            pass

    sys.addaudithook(hook)
    try:
        write(("hook", os.getpid()))
    except Exception:
        pass


try:
    _unveil_install()
except Exception:
    pass
del _unveil_install
# Chain to the sitecustomize this one shadows, as if it had been imported directly; with
# none, put this module back (the import system expects to find it in sys.modules).
_unveil_self = sys.modules.pop("sitecustomize", None)
try:
    __import__("sitecustomize")
except ImportError:
    if _unveil_self is not None:
        sys.modules["sitecustomize"] = _unveil_self
del _unveil_self
'''


# ---------------------------------------------------------------------------------- running


def run_trace(argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None = None,
              timeout: float = 300, python_audit: bool = True, stdin: int | None = None,
              stdout: int | None = None, stderr: int | None = None) -> TraceResult:
    """Run ``argv`` (no shell) in ``env`` and report the shared objects it loaded.

    ``env`` is the whole environment of the command (nothing is read from this process's);
    ``LD_DEBUG``, ``LD_DEBUG_OUTPUT`` and, for Python commands, ``PYTHONPATH`` and
    ``UNVEIL_TRACE_AUDIT`` are set on top of it.  ``stdin``/``stdout``/``stderr`` are file
    descriptors (or :data:`subprocess.DEVNULL`) for the command; ``None`` inherits ours.
    Failing to start, a timeout, or missing loader output are problems in the result;
    only misuse of the API raises (:class:`ValueError`).
    """
    args = tuple(argv)
    if not args:
        raise ValueError("run_trace needs a command")
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    if subprocess.PIPE in (stdin, stdout, stderr):
        raise ValueError("subprocess.PIPE is not supported: nothing reads it while tracing")
    start = time.monotonic()
    problems: list[Problem] = []
    where = args[0]
    with tempfile.TemporaryDirectory(prefix="unveil-trace-") as tmp:
        child_env = dict(env)
        child_env["LD_DEBUG"] = _LD_DEBUG
        child_env["LD_DEBUG_OUTPUT"] = os.path.join(tmp, "ld")
        is_python = python_audit and _is_python_command(args, child_env, cwd)
        if is_python:
            site = os.path.join(tmp, "site")
            os.mkdir(site, 0o700)
            with open(os.path.join(site, "sitecustomize.py"), "w", encoding="utf-8") as f:
                f.write(_SITECUSTOMIZE)
            old = child_env.get("PYTHONPATH")
            child_env["PYTHONPATH"] = site + (os.pathsep + old if old else "")
            child_env[_ENV_AUDIT] = os.path.join(tmp, "audit")
        try:
            # Running the user's command, exactly as given, is the point of this module.
            proc = subprocess.Popen(
                args, env=child_env, cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr,
                start_new_session=True)
        except OSError as e:
            problems.append(Problem(where, f"cannot run the command: {e.strerror or e}",
                                    ProblemKind.SOURCE))
            return TraceResult(args, (), (), None, False, time.monotonic() - start,
                               problems=tuple(problems))
        mapped: dict[str, None] = {}
        timed_out = False
        try:
            timed_out = _watch(proc, start + timeout, mapped)
            if timed_out:
                problems.append(Problem(
                    where, f"timed out after {timeout:g} s: the process group was stopped "
                    "and the results are partial", ProblemKind.SOURCE))
            else:
                _settle(proc.pid)
                if _group_members(proc.pid):
                    problems.append(Problem(
                        where, "processes the command left running were stopped when it "
                        "exited; their later loads are not seen", ProblemKind.SOURCE))
        finally:
            _stop_group(proc)
        exit_status = proc.returncode

        loads, pids, debug_problems = _read_ld_debug(tmp, cwd)
        problems += debug_problems
        dlopens, hooked, audit_problems = _read_audit(tmp)
        problems += audit_problems
        loads = _attach_call_sites(loads, dlopens)
        loads += _mapped_only(mapped, loads, proc.pid)
    if not pids:
        problems.append(Problem(
            where, "the dynamic loader wrote no debug output: the program is statically "
            "linked, setuid/setgid or has file capabilities, or does not use glibc's loader "
            "(musl ignores LD_DEBUG); only /proc/<pid>/maps samples are reported",
            ProblemKind.UNSUPPORTED))
    if is_python and not hooked and exit_status is not None:
        problems.append(Problem(
            where, "the Python audit hook did not run (python -I, -E or -S, or no Python "
            "process started): ctypes call sites are unknown", ProblemKind.UNSUPPORTED))
    return TraceResult(args, tuple(loads), tuple(dlopens), exit_status, timed_out,
                       time.monotonic() - start, tuple(sorted(pids)), tuple(problems))


def _is_python_command(argv: tuple[str, ...], env: Mapping[str, str], cwd: str | None) -> bool:
    """``python*`` by name, ``-m`` anywhere, or a script whose ``#!`` line names python."""
    if _PYTHON_NAME.fullmatch(posixpath.basename(argv[0])) or "-m" in argv[1:]:
        return True
    exe: str | None = argv[0]
    if "/" not in argv[0]:
        exe = shutil.which(argv[0], path=env.get("PATH", os.defpath))
    elif cwd is not None:
        exe = os.path.join(cwd, argv[0])
    if exe is None:
        return False
    try:
        with open(exe, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return head.startswith(b"#!") and b"python" in head.split(b"\n", 1)[0]


def _watch(proc: subprocess.Popen[bytes], deadline: float, mapped: dict[str, None]) -> bool:
    """Sample the main process's maps until it exits; ``True`` on timeout."""
    samples = 0
    while proc.poll() is None:
        now = time.monotonic()
        if now >= deadline:
            return True
        _sample_maps(proc.pid, mapped)
        samples += 1
        interval = _FAST_INTERVAL if samples < _FAST_SAMPLES else _SLOW_INTERVAL
        time.sleep(min(interval, max(0.0, deadline - now)))
    return False


def _sample_maps(pid: int, mapped: dict[str, None]) -> None:
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="surrogateescape") as f:
            text = f.read(_MAX_MAPS_BYTES)
    except OSError:
        return
    for line in text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and "x" in parts[1] and parts[5].startswith("/") \
                and parts[5] != exe and not parts[5].startswith("/memfd:"):
            mapped[parts[5]] = None


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from ``/proc``."""
    out: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read(4096)
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) >= 3 and fields[2] == str(pgid).encode() and fields[0] not in b"ZX":
            out.append(int(entry))
    return out


def _settle(pgid: int) -> None:
    """Give children a moment to finish exiting before judging them left running."""
    end = time.monotonic() + 0.2
    while _group_members(pgid) and time.monotonic() < end:
        time.sleep(0.02)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's process group, SIGKILL what is left after a grace period."""
    pgid = proc.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc.poll()
        if proc.returncode is not None and not _group_members(pgid):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        end = time.monotonic() + _GRACE
        while time.monotonic() < end:
            proc.poll()
            if proc.returncode is not None and not _group_members(pgid):
                return
            time.sleep(0.02)
    with contextlib.suppress(subprocess.TimeoutExpired):  # unkillable (D state): give up
        proc.wait(timeout=_GRACE)


# ---------------------------------------------------------------------------------- LD_DEBUG

_PREFIX = re.compile(r"\s*(\d+):\t?(.*)")
_REQUEST = re.compile(r"file=(.+?) \[(\d+)\];  (needed|dynamically loaded) by (.*) \[\d+\]")
_LINK_MAP = re.compile(r"file=(.+?) \[(\d+)\];  generating link map")
_TRYING = re.compile(r"\s*trying file=(.*)")
_INIT = re.compile(r"calling init: (.*)")
_PROGRAM = re.compile(r"(?:initialize program|transferring control): (.*)")


@dataclass(slots=True)
class _Request:
    name: str
    namespace: int
    kind: LoadKind
    requester: str
    tried: list[str] = field(default_factory=list)


class _Parser:
    """State across the lines of one or more debug files (keyed by pid)."""

    def __init__(self, cwd: str | None) -> None:
        self.cwd = cwd
        self.loads: list[ObservedLoad] = []
        self.pending: dict[int, _Request] = {}
        self.real_loaded: defaultdict[int, set[str]] = defaultdict(set)
        self.inits: defaultdict[int, list[str]] = defaultdict(list)
        self.programs: defaultdict[int, set[str]] = defaultdict(set)
        self.pids: set[int] = set()
        self.requested: set[int] = set()

    def feed(self, line: str) -> None:
        m = _PREFIX.fullmatch(line)
        if m is None:
            return
        pid, msg = int(m[1]), m[2]
        self.pids.add(pid)
        if r := _REQUEST.fullmatch(msg):
            self._close(pid)
            kind = LoadKind.NEEDED if r[3] == "needed" else LoadKind.DLOPEN
            if pid not in self.requested:
                self.requested.add(pid)
                self.programs[pid].add(r[4])  # a process's first request is its program's
            self.pending[pid] = _Request(r[1], int(r[2]), kind, r[4])
        elif t := _TRYING.fullmatch(msg):
            if (req := self.pending.get(pid)) is not None:
                req.tried.append(t[1])
        elif lm := _LINK_MAP.fullmatch(msg):
            req = self.pending.get(pid)
            if req is None:
                self.programs[pid].add(lm[1])  # `ld.so PROGRAM`: the program's own map
                return
            if req.name != lm[1]:
                return
            del self.pending[pid]
            path = req.tried[-1] if req.tried else (req.name if "/" in req.name else None)
            self._emit(pid, req, Outcome.FOUND, path)
        elif i := _INIT.fullmatch(msg):
            self.inits[pid].append(i[1])
        elif p := _PROGRAM.fullmatch(msg):
            self.programs[pid].add(p[1])

    def _close(self, pid: int) -> None:
        """A request that ended without a link map: already loaded, or a failure."""
        req = self.pending.pop(pid, None)
        if req is None:
            return
        cand = req.tried[-1] if req.tried else (req.name if "/" in req.name else None)
        if cand is not None and self._real(cand) in self.real_loaded[pid]:
            self._emit(pid, req, Outcome.FOUND, cand)
        else:
            self._emit(pid, req, Outcome.NOT_FOUND, None)

    def _emit(self, pid: int, req: _Request, outcome: Outcome, path: str | None) -> None:
        real = self._real(path) if path is not None else None
        if real is not None:
            self.real_loaded[pid].add(real)
        self.loads.append(ObservedLoad(req.name, req.kind, pid, outcome, path, real,
                                       req.requester, namespace=req.namespace))

    def _real(self, path: str) -> str:
        if self.cwd is not None:
            path = os.path.join(self.cwd, path)
        return os.path.realpath(path)

    def finish(self) -> list[ObservedLoad]:
        for pid in list(self.pending):
            self._close(pid)
        out: list[ObservedLoad] = []
        for x in self.loads:
            if x.outcome is Outcome.FOUND and x.path is None:
                # Only the constructor line named the file: match it by basename.
                path = next((p for p in self.inits[x.pid]
                             if posixpath.basename(p) == x.name), None)
                x = replace(x, path=path, real_path=self._real(path) if path else None)
            out.append(replace(x, requester_is_program=x.requester in self.programs[x.pid]))
        return out


def parse_ld_debug(lines: Iterable[str], *, cwd: str | None = None) -> list[ObservedLoad]:
    """Parse ``LD_DEBUG=files,libs`` output (one or more processes, each line
    ``  PID:\\tmessage``) into loads.  Paths are resolved on this host, relative ones against
    ``cwd`` (default: this process's directory)."""
    parser = _Parser(cwd)
    for line in lines:
        parser.feed(line.rstrip("\n"))
    return parser.finish()


def _debug_files(tmp: str, prefix: str) -> list[tuple[int, str]]:
    out = []
    for entry in os.listdir(tmp):
        head, _, pid = entry.rpartition(".")
        if head == prefix and pid.isdigit():
            out.append((int(pid), os.path.join(tmp, entry)))
    return sorted(out)


def _bounded_lines(path: str, budget: list[int]) -> Iterator[str]:
    """The lines of a file while the shared byte budget lasts (``budget[0]``)."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            budget[0] -= len(line)
            if budget[0] < 0:
                return
            yield line


def _read_ld_debug(tmp: str, cwd: str | None) -> tuple[list[ObservedLoad], set[int],
                                                        list[Problem]]:
    problems: list[Problem] = []
    files = _debug_files(tmp, "ld")
    if len(files) > _MAX_DEBUG_FILES:
        problems.append(Problem("LD_DEBUG", f"{len(files)} processes wrote loader output; "
                                f"only the first {_MAX_DEBUG_FILES} were read",
                                ProblemKind.SOURCE))
        files = files[:_MAX_DEBUG_FILES]
    parser = _Parser(cwd)
    budget = [_MAX_DEBUG_BYTES]
    for _pid, path in files:
        for line in _bounded_lines(path, budget):
            parser.feed(line.rstrip("\n"))
        if budget[0] < 0:
            problems.append(Problem("LD_DEBUG", f"loader output exceeds {_MAX_DEBUG_BYTES} "
                                    "bytes; the rest was not read", ProblemKind.SOURCE))
            break
    return parser.finish(), parser.pids | {pid for pid, _ in files}, problems


# ------------------------------------------------------------------------------- audit hook


def _read_audit(tmp: str) -> tuple[list[PythonDlopen], bool, list[Problem]]:
    out: list[PythonDlopen] = []
    problems: list[Problem] = []
    hooked = False
    budget = [_MAX_AUDIT_BYTES]
    for _pid, path in _debug_files(tmp, "audit"):
        for line in _bounded_lines(path, budget):
            if len(line) > _MAX_AUDIT_LINE:
                continue
            try:
                rec = ast.literal_eval(line)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
            if isinstance(rec, tuple) and rec[:1] == ("hook",):
                hooked = True
            elif isinstance(rec, tuple) and len(rec) == 4 and rec[0] == "dlopen":
                hooked = True
                if (d := _dlopen_record(rec)) is not None:
                    out.append(d)
        if budget[0] < 0:
            problems.append(Problem("audit", f"audit records exceed {_MAX_AUDIT_BYTES} bytes; "
                                    "the rest were not read", ProblemKind.SOURCE))
            break
    return out, hooked, problems


def _dlopen_record(rec: tuple[object, ...]) -> PythonDlopen | None:
    _, pid, raw, frames = rec
    if not isinstance(pid, int) or not isinstance(frames, tuple):
        return None
    name = os.fsdecode(raw) if isinstance(raw, (str, bytes)) else None
    stack: list[str] = []
    site: LoadSite | None = None
    for fr in frames:
        if not (isinstance(fr, tuple) and len(fr) == 4 and isinstance(fr[0], str)
                and isinstance(fr[1], int) and isinstance(fr[2], str)):
            continue
        stack.append(f"{fr[0]}:{fr[1]} in {fr[2]}")
        if site is None and not fr[3]:
            site = LoadSite(fr[0], fr[1], "python", "ctypes.dlopen",
                            (name,) if name else (), Confidence.HIGH)
    return PythonDlopen(name, pid, site, tuple(stack))


def _attach_call_sites(loads: list[ObservedLoad],
                       dlopens: list[PythonDlopen]) -> list[ObservedLoad]:
    """Pair each audit event with the loader's report of the same dlopen (pid, name, order)."""
    queues: defaultdict[tuple[int, str], deque[PythonDlopen]] = defaultdict(deque)
    for d in dlopens:
        if d.name is not None:
            queues[d.pid, d.name].append(d)
    out = []
    for x in loads:
        q = queues.get((x.pid, x.name))
        if x.kind is LoadKind.DLOPEN and q:
            x = replace(x, call_site=q.popleft().call_site)
        out.append(x)
    return out


def _mapped_only(mapped: Mapping[str, None], loads: Sequence[ObservedLoad],
                 pid: int) -> list[ObservedLoad]:
    """Executable ELF mappings the loader did not report."""
    seen = {x.real_path for x in loads if x.real_path is not None}
    out = []
    for path in mapped:
        deleted = path.endswith(" (deleted)")
        real = None if deleted else os.path.realpath(path)
        if real in seen:
            continue
        if real is not None:
            try:
                with open(real, "rb") as f:
                    if f.read(4) != b"\x7fELF":
                        continue
            except OSError:
                continue
            seen.add(real)
        out.append(ObservedLoad(posixpath.basename(path.removesuffix(" (deleted)")),
                                LoadKind.MAPPED, pid, Outcome.FOUND, path, real))
    return out


# ------------------------------------------------------------------------------------- join


class JoinStatus(enum.Enum):
    #: loaded at run time, not predicted: a gap in the static analysis.
    SEEN_NOT_PREDICTED = "seen-not-predicted"
    PREDICTED_AND_SEEN = "predicted-and-seen"
    #: predicted, not loaded by this run (not triggered: loading is often lazy).
    PREDICTED_NOT_SEEN = "predicted-not-seen"


class MatchedBy(enum.Enum):
    PATH = "path"
    NAME = "name"
    STEM = "stem"


@dataclass(frozen=True, slots=True)
class JoinedLibrary:
    """One library in the join.  ``library`` is the real path when seen, else the prediction;
    ``predictions`` the predicted paths and names that matched it; ``note`` says when a
    predicted path matched only by name (static analysis chose another file)."""

    library: str
    status: JoinStatus
    loads: tuple[ObservedLoad, ...] = ()
    predictions: tuple[str, ...] = ()
    matched_by: MatchedBy | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Joined:
    """The join, gaps first."""

    libraries: tuple[JoinedLibrary, ...]

    def with_status(self, status: JoinStatus) -> tuple[JoinedLibrary, ...]:
        return tuple(x for x in self.libraries if x.status is status)

    @property
    def gaps(self) -> tuple[JoinedLibrary, ...]:
        return self.with_status(JoinStatus.SEEN_NOT_PREDICTED)


_STATUS_ORDER = {s: i for i, s in enumerate(JoinStatus)}
_MATCH_ORDER = {m: i for i, m in enumerate(MatchedBy)}
_LIBFILE = re.compile(r"\.so(\.|$)|\.dylib$|\.dll$", re.IGNORECASE)


def _stem_matches(stem: str, basename: str) -> bool:
    """``find_library``-style stem: ``magic`` names ``libmagic.so`` and ``libmagic.so.1``."""
    return re.fullmatch(rf"(?:lib)?{re.escape(stem)}\.so(?:\.\d+)*", basename) is not None


def join_with_static(observed: Iterable[ObservedLoad], predicted_paths: set[str],
                     predicted_names: set[str],
                     predicted_stems: set[str] | None = None,
                     present_paths: set[str] | None = None) -> Joined:
    """Classify each library as predicted-and-seen, seen-not-predicted or predicted-not-seen.

    Seen libraries are the loads that put a file in a process, grouped by real path.  A
    predicted path matches by real path (symlinks resolved on this host) and, failing that,
    by basename, with a note.  A predicted name matches the basename of the request, the
    path or the real path (so a SONAME matches a symlink chain); a ``find_library`` stem
    (``predicted_stems``: ``magic`` matches ``libmagic.so.1``) matches as ``find_library``
    would.  Without ``predicted_stems`` (older callers), a name without ``.so`` and ``/``
    is taken for a stem; with it, such a name is only a file name (``CDLL("pulse")`` does
    not load ``libpulse.so.0``).  ``present_paths`` are files the scan found but predicted
    no load of (a package's extension modules): they count for loads the interpreter made
    (an import), never for one a ``ctypes`` call site made, which a detector had to see.
    """
    groups: dict[str, list[ObservedLoad]] = {}
    for x in observed:
        if x.outcome is Outcome.FOUND and x.path is not None:
            groups.setdefault(x.real_path or x.path, []).append(x)
    names = {k: {posixpath.basename(s) for x in v for s in (x.name, x.path, x.real_path) if s}
             for k, v in groups.items()}
    hits: dict[str, dict[str, MatchedBy]] = {k: {} for k in groups}
    notes: dict[str, list[str]] = {k: [] for k in groups}
    missed: dict[str, list[str]] = {}

    imported = {k for k, v in groups.items() if all(x.call_site is None for x in v)}
    for p in sorted((present_paths or set()) - predicted_paths):
        real = os.path.realpath(p)
        for k in imported:
            if k == real or any(x.path == p for x in groups[k]):
                hits[k].setdefault(p, MatchedBy.PATH)
    for p in sorted(predicted_paths):
        real = os.path.realpath(p)
        found = [k for k, v in groups.items() if k == real or any(x.path == p for x in v)]
        how = MatchedBy.PATH
        if not found:
            base = posixpath.basename(p)
            found = [k for k in groups if base in names[k]]
            how = MatchedBy.NAME
        for k in found:
            hits[k][p] = how
            if how is MatchedBy.NAME:
                notes[k].append(f"predicted {p}, loaded {k}")
        if not found:
            missed[p] = [p]

    stems = predicted_stems
    for n in sorted(predicted_names | (stems or set())):
        found = [k for k in groups if n in names[k]]
        how = MatchedBy.NAME
        maybe_stem = n in stems if stems is not None else (
            "/" not in n and not _LIBFILE.search(n))
        if not found and maybe_stem:
            found = [k for k in groups if any(_stem_matches(n, b) for b in names[k])]
            how = MatchedBy.STEM
        for k in found:
            hits[k].setdefault(n, how)
        if not found:
            owner = next((p for p in missed if posixpath.basename(p) == n
                          or ("/" not in n and _stem_matches(n, posixpath.basename(p)))), None)
            if owner is not None:
                missed[owner].append(n)
            else:
                missed[n] = [n]

    out: list[JoinedLibrary] = []
    for k, v in groups.items():
        if not hits[k]:
            out.append(JoinedLibrary(k, JoinStatus.SEEN_NOT_PREDICTED, tuple(v)))
            continue
        best = min(hits[k].values(), key=_MATCH_ORDER.__getitem__)
        out.append(JoinedLibrary(k, JoinStatus.PREDICTED_AND_SEEN, tuple(v), tuple(hits[k]),
                                 best, "; ".join(notes[k]) or None))
    out += [JoinedLibrary(k, JoinStatus.PREDICTED_NOT_SEEN, predictions=tuple(v))
            for k, v in missed.items()]
    out.sort(key=lambda j: (_STATUS_ORDER[j.status], j.library))
    return Joined(tuple(out))
