"""Time unveil side by side with the tools people would otherwise run.

For every wheel (the corpus from ``bench/corpus.py`` by default, or the
wheels named on the command line) this runs, each in its own subprocess:

``unveil``
    ``PYTHON -m unveil scan --format json WHEEL`` with the project's Python
    (``--python``, ``$UNVEIL_PYTHON``, ``<repo>/.venv/bin/python``, the
    ``venv-unveil`` that ``bench/setup_tools.sh`` installs this checkout into, or this
    interpreter, in that order; ``<repo>/src`` is put on ``PYTHONPATH`` if
    unveil is not installed).  Skipped when unveil cannot be imported.
``auditwheel``
    ``auditwheel show WHEEL`` (reads the wheel directly).
``lddtree``
    pax-utils' ``lddtree`` over every ELF file of the wheel, in one
    invocation, after extracting the wheel to a temporary directory.  The
    extraction is not timed as part of lddtree; its time is reported in the
    ``extract s`` column.
``elfdeps``
    ``elfdeps WHEEL`` (elfdeps opens ``.whl``/zip archives itself).
``floor``
    ``PYTHON bench/floor.py WHEEL``: no tool, the least work any Python tool must do
    (inflate each ELF member up to its dynamic segment with isal on two threads, nothing
    else).  The ``<tool>/floor`` columns are the best ratio any Python tool could reach
    against that tool on this machine.  Wheels only.

Wall time is the best of ``--runs`` runs (default 3), the tools taken in turn in each
round (one tool's runs back to back put it in another phase of this machine's speed
swings than the next tool's).  Peak RSS comes from
``os.wait4`` on each run's child, i.e. the child's own ``ru_maxrss``
(including any grandchildren it waited for), so it is per run, not the
running maximum ``RUSAGE_CHILDREN`` would give; the table shows the highest
peak over the runs.

``--env`` instead times the tools on the installed environment
``~/.cache/unveil-tests/venv-wheels``: ``unveil scan --format json VENV``,
``elfdeps VENV`` (it walks directories) and ``lddtree`` over every ELF in
the venv, each run once to warm the page cache and then best of N.

The Markdown table goes to stdout and to ``bench/results/compare-<date>.md``
(``compare-env-<date>.md`` for ``--env``), raw numbers to a ``.json`` next
to it.  Tools are installed by ``bench/setup_tools.sh``.

Usage::

    python bench/compare.py                       # whole corpus, N=3
    python bench/compare.py -n 5 path/to/x.whl    # chosen wheels
    python bench/compare.py --tools auditwheel,lddtree,elfdeps numpy
    python bench/compare.py --env
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import corpus

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
TOOLS = ("unveil", "auditwheel", "lddtree", "elfdeps", "floor")
LDDTREE = ("/usr/bin/python3", "/usr/bin/lddtree")
#: Keep each lddtree command line well below ARG_MAX.
ARGV_BUDGET = 512 * 1024


@dataclass
class Run:
    """One timed child process."""

    seconds: float
    maxrss_kib: int
    returncode: int


@dataclass
class Measurement:
    """Best-of-N summary of one tool on one target."""

    tool: str
    command: list[str]
    runs: list[Run] = field(default_factory=list)
    skipped: str | None = None
    stderr_tail: str = ""

    @property
    def best_seconds(self) -> float | None:
        """Fastest wall time, or None if nothing ran."""
        return min((r.seconds for r in self.runs), default=None)

    @property
    def peak_mib(self) -> float | None:
        """Highest peak RSS over the runs, in MiB."""
        peak = max((r.maxrss_kib for r in self.runs), default=None)
        return None if peak is None else peak / 1024

    @property
    def failed(self) -> bool:
        """Whether any run exited non-zero."""
        return any(r.returncode != 0 for r in self.runs)


@dataclass
class Row:
    """All measurements for one target (a wheel or the venv)."""

    name: str
    size_mb: float
    elf_count: int
    extract_seconds: float | None
    results: dict[str, Measurement]



#: The job the other tools do: resolve dependencies.  Identification and dynamic-loading
#: detection (on by default in unveil) are extra work none of them does; set
#: UNVEIL_BENCH_FULL=1 to time the default scan instead.
UNVEIL_ARGS: list[str] = ([] if os.environ.get("UNVEIL_BENCH_FULL")
                          else ["--no-identify", "--no-dynload"])

def run_once(cmd: Sequence[str], env: dict[str, str] | None, timeout: float) -> tuple[Run, str]:
    """Run ``cmd`` in its own process; return timing, peak RSS and stderr tail."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=err, env=env)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read()[-2000:].decode(errors="replace")
    # Linux reports ru_maxrss in KiB.
    return Run(elapsed, int(usage.ru_maxrss), proc.returncode), tail


def measure(
    commands: dict[str, tuple[list[str], dict[str, str] | None]],
    *,
    runs: int,
    warmup: bool,
    timeout: float,
) -> dict[str, Measurement]:
    """Time each tool's command ``runs`` times (after an optional untimed warm-up round),
    the tools in turn in every round: this machine's speed swings by a third within minutes,
    and auditwheel's runs take a minute each, so timing one tool's N runs and then the
    next's put the tools in different phases of the swing (best-of ratios drifted by 30 %)."""
    out = {tool: Measurement(tool, cmd) for tool, (cmd, _env) in commands.items()}
    if warmup:
        for tool, (cmd, env) in commands.items():
            _, out[tool].stderr_tail = run_once(cmd, env, timeout)
    live = set(commands)
    for _ in range(runs):
        for tool, (cmd, env) in commands.items():
            if tool not in live:
                continue
            m = out[tool]
            run, tail = run_once(cmd, env, timeout)
            m.runs.append(run)
            if run.returncode != 0:
                m.stderr_tail = tail
            if run.seconds > timeout:
                live.discard(tool)
    for tool, m in out.items():
        status = f"FAILED rc={m.runs[-1].returncode}" if m.failed else "ok"
        print(
            f"  {tool:10} best {m.best_seconds:8.3f} s  peak {m.peak_mib:7.1f} MiB  {status}",
            file=sys.stderr,
            flush=True,
        )
        if m.failed and m.stderr_tail:
            print("    " + m.stderr_tail.strip().replace("\n", "\n    ")[-800:],
                  file=sys.stderr)
    return out


# ---------------------------------------------------------------- tool setup


def tools_venv() -> Path:
    """Return the venv holding auditwheel and elfdeps."""
    return corpus.default_cache_dir() / "venv-tools"


def tool_bin(name: str) -> Path:
    """Path of a console script in the tools venv."""
    return tools_venv() / "bin" / name


def _runs_this_checkout(python: Path) -> bool:
    """Whether ``python`` imports unveil from this checkout's ``src`` (an editable install)."""
    code = "import importlib.util as u; print(u.find_spec('unveil').origin)"
    res = subprocess.run([str(python), "-c", code], check=False, capture_output=True, text=True)
    return res.returncode == 0 and Path(res.stdout.strip()).is_relative_to(REPO_DIR / "src")


def find_project_python(explicit: str | None) -> str:
    """Pick the interpreter that runs unveil: the one asked for, else a venv of this
    checkout (``bench/setup_tools.sh`` makes ``venv-unveil``: a clean venv, as the other
    Python tools run in), else this interpreter."""
    for c in (explicit, os.environ.get("UNVEIL_PYTHON")):
        if c and Path(c).exists():
            return c
    for venv in (REPO_DIR / ".venv", corpus.default_cache_dir() / "venv-unveil"):
        python = venv / "bin" / "python"
        if python.exists() and _runs_this_checkout(python):
            return str(python)
    return sys.executable


def unveil_env(python: str) -> tuple[dict[str, str] | None, str | None]:
    """Return (env, None) if unveil is importable by ``python``, else (None, why)."""
    # find_spec, not import: importing unveil.__main__ would run the CLI.
    code = "import importlib.util as u, sys; sys.exit(u.find_spec('unveil.__main__') is None)"
    probe = [python, "-c", code]
    base = dict(os.environ)
    if subprocess.run(probe, check=False, capture_output=True, env=base).returncode == 0:
        return base, None
    src = REPO_DIR / "src"
    with_src = dict(base)
    with_src["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), base.get("PYTHONPATH", "")) if p)
    res = subprocess.run(probe, check=False, capture_output=True, env=with_src, text=True)
    if res.returncode == 0:
        return with_src, None
    last = (res.stderr.strip().splitlines() or ["?"])[-1]
    return None, f"unveil not importable by {python}: {last}"


def check_tool(tool: str) -> str | None:
    """Return why ``tool`` cannot run, or None if it can."""
    if tool == "lddtree":
        ok = (
            Path(LDDTREE[1]).exists()
            and subprocess.run(
                [LDDTREE[0], "-c", "import elftools"], check=False, capture_output=True
            ).returncode
            == 0
        )
        return None if ok else "pax-utils lddtree missing (bench/setup_tools.sh)"
    if tool in ("auditwheel", "elfdeps"):
        return None if tool_bin(tool).exists() else f"{tool} missing (bench/setup_tools.sh)"
    return None


def tool_versions(python: str, uenv: dict[str, str] | None) -> dict[str, str]:
    """Versions of everything being compared, for the report header."""

    def out(cmd: list[str], env: dict[str, str] | None = None) -> str:
        try:
            res = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
        except OSError:
            return "n/a"
        return res.stdout.strip() if res.returncode == 0 else "n/a"

    meta = "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))"
    tpy = str(tools_venv() / "bin" / "python")
    versions = {
        "auditwheel": out([tpy, "-c", meta, "auditwheel"]),
        "elfdeps": out([tpy, "-c", meta, "elfdeps"]),
        "lddtree": "pax-utils " + out(["dpkg-query", "-W", "-f=${Version}", "pax-utils"]),
        "unveil": "n/a",
        "floor": "bench/floor.py",
    }
    if uenv is not None:
        versions["unveil"] = out(
            [python, "-c", "import unveil; print(getattr(unveil, '__version__', '?'))"],
            uenv,
        )
    return versions


# ------------------------------------------------------------------ targets


def zip_elf_members(wheel: Path) -> list[str]:
    """Names of wheel members that start with the ELF magic."""
    names = []
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir() or info.file_size < 4:
                continue
            with zf.open(info) as f:
                if f.read(4) == corpus.ELF_MAGIC:
                    names.append(info.filename)
    return names


def elf_files(root: Path) -> list[Path]:
    """Regular ELF files under ``root`` (symlinks not followed)."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if corpus.is_elf(path):
                found.append(path)
    return sorted(found)


def lddtree_commands(files: Sequence[Path]) -> Iterator[list[str]]:
    """Split ``files`` into lddtree command lines that fit in ARGV_BUDGET."""
    chunk: list[str] = []
    size = 0
    for f in files:
        if chunk and size + len(str(f)) + 1 > ARGV_BUDGET:
            yield [*LDDTREE, *chunk]
            chunk, size = [], 0
        chunk.append(str(f))
        size += len(str(f)) + 1
    if chunk:
        yield [*LDDTREE, *chunk]


def lddtree_cmd(files: Sequence[Path]) -> list[str]:
    """One command running lddtree over all ``files`` (via sh if chunked)."""
    cmds = list(lddtree_commands(files))
    if len(cmds) == 1:
        return cmds[0]
    script = " && ".join(" ".join(map(_sh_quote, c)) for c in cmds)
    return ["/bin/sh", "-c", script]


def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


def bench_wheel(
    wheel: Path,
    tools: Sequence[str],
    *,
    runs: int,
    timeout: float,
    python: str,
    uenv: dict[str, str] | None,
    skip: dict[str, str],
) -> Row:
    """Measure every tool on one wheel."""
    print(f"{wheel.name}", file=sys.stderr, flush=True)
    results: dict[str, Measurement] = {}
    elf_names = zip_elf_members(wheel)
    extract_seconds: float | None = None
    commands: dict[str, Callable[[], list[str]]] = {
        "unveil": lambda: [python, "-m", "unveil", "scan", "--format", "json", *UNVEIL_ARGS,
                           str(wheel)],
        "auditwheel": lambda: [str(tool_bin("auditwheel")), "show", str(wheel)],
        "elfdeps": lambda: [str(tool_bin("elfdeps")), str(wheel)],
        "floor": lambda: [python, str(BENCH_DIR / "floor.py"), str(wheel)],
    }
    with tempfile.TemporaryDirectory(prefix="unveil-bench-") as tmp:
        timed: dict[str, tuple[list[str], dict[str, str] | None]] = {}
        for tool in tools:
            if tool in skip:
                continue
            if tool == "lddtree":
                start = time.perf_counter()
                with zipfile.ZipFile(wheel) as zf:
                    zf.extractall(tmp)
                extract_seconds = time.perf_counter() - start
                timed[tool] = (lddtree_cmd([Path(tmp, n) for n in elf_names]), None)
            else:
                env = uenv if tool in ("unveil", "floor") else None
                timed[tool] = (commands[tool](), env)
        measured = measure(timed, runs=runs, warmup=False, timeout=timeout)
    for tool in tools:
        results[tool] = (Measurement(tool, [], skipped=skip[tool]) if tool in skip
                         else measured[tool])
    return Row(
        wheel.name,
        wheel.stat().st_size / 1e6,
        len(elf_names),
        extract_seconds,
        results,
    )


def bench_env(
    venv: Path,
    tools: Sequence[str],
    *,
    runs: int,
    timeout: float,
    python: str,
    uenv: dict[str, str] | None,
    skip: dict[str, str],
) -> Row:
    """Measure the tools that accept a directory tree on the installed venv."""
    print(f"{venv} (warm)", file=sys.stderr, flush=True)
    files = elf_files(venv)
    size = sum(f.stat().st_size for f in files)
    results: dict[str, Measurement] = {}
    commands = {
        "unveil": [python, "-m", "unveil", "scan", "--format", "json", *UNVEIL_ARGS, str(venv)],
        "elfdeps": [str(tool_bin("elfdeps")), str(venv)],
        "lddtree": lddtree_cmd(files),
    }
    timed = {tool: (commands[tool], uenv if tool == "unveil" else None)
             for tool in tools if tool not in skip}
    measured = measure(timed, runs=runs, warmup=True, timeout=timeout)
    for tool in tools:
        results[tool] = (Measurement(tool, [], skipped=skip[tool]) if tool in skip
                         else measured[tool])
    return Row(f"{venv.name} (installed)", size / 1e6, len(files), None, results)


# ------------------------------------------------------------------- report


def fmt(value: float | None, spec: str = ".2f") -> str:
    """Format a number, or an dash for missing values."""
    return "-" if value is None else format(value, spec)


def cell_seconds(m: Measurement | None) -> str:
    """Seconds cell; marks failures with '!'."""
    if m is None or m.skipped:
        return "skip"
    return fmt(m.best_seconds, ".3f") + ("!" if m.failed else "")


def ratio(m: Measurement | None, base: Measurement | None) -> str:
    """tool/unveil wall-time ratio cell."""
    if m is None or base is None or m.skipped or base.skipped:
        return "-"
    a, b = m.best_seconds, base.best_seconds
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.1f}x"


def round_ratios(m: Measurement | None, base: Measurement | None) -> str:
    """``m``'s time over ``base``'s, round by round: median [lowest-highest]."""
    if m is None or base is None or m.skipped or base.skipped:
        return ""
    pairs = [a.seconds / b.seconds for a, b in zip(m.runs, base.runs, strict=False)
             if b.seconds > 0]
    if not pairs:
        return ""
    return f"{statistics.median(pairs):.1f}x [{min(pairs):.1f}-{max(pairs):.1f}]"


def short_name(name: str) -> str:
    """``numpy-2.4.6-cp311-...whl`` -> ``numpy-2.4.6``; other names unchanged."""
    if not name.endswith(".whl"):
        return name
    return "-".join(name.split("-")[:2])


def render(
    rows: Sequence[Row],
    tools: Sequence[str],
    *,
    runs: int,
    env_mode: bool,
    versions: dict[str, str],
    python: str,
) -> str:
    """Build the Markdown report."""
    now = dt.datetime.now().astimezone()
    lines = [
        f"# unveil vs. other tools{' — installed venv, warm' if env_mode else ''}",
        "",
        f"- date: {now:%Y-%m-%d %H:%M %Z}",
        f"- machine: {platform.node()}, {platform.platform()}, {os.cpu_count()} CPUs",
        "- load average at the end (1/5/15 min): "
        + " / ".join(f"{x:.2f}" for x in os.getloadavg())
        + " (anything well above 0 means other work competed with the runs)",
        f"- best of {runs} runs{' after one warm-up run' if env_mode else ''}, the tools in "
        "turn in each round; peak = highest ru_maxrss of the runs (MiB); `!` = a run exited "
        "non-zero",
        "- versions: " + ", ".join(f"{t} {versions.get(t, '?')}" for t in tools),
        f"- unveil python: `{python}`",
        "",
    ]
    head = ["target", "MB", "ELFs"]
    if "lddtree" in tools and not env_mode:
        head.append("extract s")
    for t in tools:
        head += [f"{t} s", f"{t} MiB"]
    others = [t for t in tools if t not in ("unveil", "floor")]
    if "unveil" in tools:
        head += [f"{t}/unveil" for t in others]
    if "floor" in tools:
        head += [f"{t}/floor" for t in tools if t != "floor"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|")
    for row in rows:
        cells = [f"`{short_name(row.name)}`", fmt(row.size_mb, ".1f"), str(row.elf_count)]
        if "lddtree" in tools and not env_mode:
            cells.append(fmt(row.extract_seconds, ".3f"))
        for t in tools:
            m = row.results.get(t)
            cells += [cell_seconds(m), "-" if m is None or m.skipped else fmt(m.peak_mib, ".0f")]
        if "unveil" in tools:
            base = row.results.get("unveil")
            cells += [ratio(row.results.get(t), base) for t in others]
        if "floor" in tools:
            floor = row.results.get("floor")
            cells += [ratio(row.results.get(t), floor) for t in tools if t != "floor"]
        lines.append("| " + " | ".join(cells) + " |")
    if "unveil" in tools and others and runs > 1:
        lines += ["", "Per round (each tool's time over unveil's in the same round): median "
                  "[lowest-highest]. This machine's speed swings within minutes; a ratio of "
                  "best times pairs runs from different moments, these do not.", ""]
        for row in rows:
            parts = [f"{t} {spread}" for t in others
                     if (spread := round_ratios(row.results.get(t), row.results.get("unveil")))]
            if parts:
                lines.append(f"- `{short_name(row.name)}`: " + "; ".join(parts))
    skipped = {m.skipped for row in rows for m in row.results.values() if m.skipped}
    if skipped:
        lines += ["", "Skipped: " + "; ".join(sorted(skipped))]
    lines += ["", "Commands (first target):", ""]
    if rows:
        for t, m in rows[0].results.items():
            if m.command:
                shown = " ".join(m.command)
                if len(shown) > 200:
                    shown = shown[:200] + " …"
                lines.append(f"- {t}: `{shown}`")
    return "\n".join(lines) + "\n"


def resolve_wheels(names: Sequence[str]) -> list[Path]:
    """Turn CLI arguments (paths or pinned names) into wheel paths."""
    wdir = corpus.wheel_dir(corpus.default_cache_dir())
    if not names:
        wheels = sorted(wdir.glob("*.whl"), key=lambda p: p.stat().st_size)
        if not wheels:
            raise SystemExit(f"no wheels in {wdir}; run bench/corpus.py first")
        return wheels
    out = []
    for n in names:
        p = Path(n).expanduser()
        if p.suffix == ".whl" and p.exists():
            out.append(p)
            continue
        version = corpus.PINS.get(n)
        hit = corpus.find_wheel(wdir, n, version) if version else None
        if hit is None:
            raise SystemExit(f"not a wheel file or pinned corpus name: {n}")
        out.append(hit)
    return out


PRECOMPILE = ("import compileall, os, unveil; "
              "compileall.compile_dir(os.path.dirname(unveil.__file__), quiet=1)")


def precompile(python: str, env: dict[str, str] | None = None) -> None:
    """Write unveil's bytecode, as ``pip install`` does: an editable checkout run with
    ``PYTHONDONTWRITEBYTECODE=1`` would otherwise compile every module on every run
    (~0.3 s of each CLI timing)."""
    subprocess.run([python, "-c", PRECOMPILE], env=env, check=False, capture_output=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "wheels", nargs="*", help="wheel files or corpus names (default: whole corpus)"
    )
    parser.add_argument("-n", "--runs", type=int, default=3, help="best of N (default 3)")
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help=f"comma list from {','.join(TOOLS)}"
    )
    parser.add_argument("--python", help="interpreter that has unveil")
    parser.add_argument("--env", action="store_true", help="time the installed venv instead")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--out", type=Path, help="report path (default bench/results/...)")
    args = parser.parse_args(argv)

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    python = find_project_python(args.python)
    skip: dict[str, str] = {}
    uenv: dict[str, str] | None = None
    if "unveil" in tools:
        uenv, why = unveil_env(python)
        if why:
            skip["unveil"] = why
            print(f"skipping unveil: {why}", file=sys.stderr)
        else:
            precompile(python, uenv)
    for t in tools:
        why = check_tool(t)
        if why:
            skip[t] = why
            print(f"skipping {t}: {why}", file=sys.stderr)

    if args.env:
        # auditwheel and the inflation floor are about wheel files only.
        tools = [t for t in tools if t not in ("auditwheel", "floor")]
        venv = corpus.venv_dir(corpus.default_cache_dir())
        if not venv.exists():
            raise SystemExit(f"{venv} missing; run bench/corpus.py first")
        rows = [
            bench_env(
                venv,
                tools,
                runs=args.runs,
                timeout=args.timeout,
                python=python,
                uenv=uenv,
                skip=skip,
            )
        ]
    else:
        rows = [
            bench_wheel(
                w,
                tools,
                runs=args.runs,
                timeout=args.timeout,
                python=python,
                uenv=uenv,
                skip=skip,
            )
            for w in resolve_wheels(args.wheels)
        ]

    report = render(
        rows,
        tools,
        runs=args.runs,
        env_mode=args.env,
        versions=tool_versions(python, uenv),
        python=python,
    )
    sys.stdout.write(report)
    out: Path = args.out or RESULTS_DIR / (
        f"compare-{'env-' if args.env else ''}{dt.date.today():%Y-%m-%d}.md"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    raw = [
        {
            **{k: v for k, v in asdict(r).items() if k != "results"},
            "results": {
                t: {**asdict(m), "best_seconds": m.best_seconds, "peak_mib": m.peak_mib}
                for t, m in r.results.items()
            },
        }
        for r in rows
    ]
    out.with_suffix(".json").write_text(json.dumps(raw, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
