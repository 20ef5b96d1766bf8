"""What identification and dynamic-loading detection add to a scan's time.

Usage: ``python bench/costs.py [-n RUNS] [TARGET ...]`` — scans each target through the API
(``unveil.scan``, in this process, warm: a first scan each way is discarded) four ways, the
four taken in turn in each of N rounds, the median of each:

* ``bare``: ``identify=False, dynload=False`` (what ``bench/compare.py`` sets beside other
  tools);
* ``+identify``: identification only (banners, build info, package databases, SBOMs);
* ``+dynload``: dynamic-loading detection only (sources of every language, dlopen names in
  binaries);
* ``default``: both, as ``unveil scan`` runs.

(``--cpu``: CPU seconds of the process and its workers instead of wall-clock; ``--cli``: the
``unveil scan --format json`` command as a user runs it, start-up, imports and output
included, each run a new process, with the interpreter ``bench/compare.py`` picks: the
``venv-unveil`` of ``bench/setup_tools.sh`` when it holds this checkout) and prints a
Markdown table with each share (``+identify`` / ``bare`` - 1, ...) and what
identification adds to a default scan (``default`` / ``+dynload`` - 1; also that ratio
taken round by round, its median and range), and the part of a
default scan's time that dynamic-loading detection takes (1 - ``+identify`` /
``default``).  Without targets it uses the cached wheels of ``bench/corpus.py`` (scipy,
pyarrow, torch, opencv for Linux and Windows) and the real-wheel virtual environment.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import unveil
from compare import find_project_python
from unveil.cli.host import detect_host
from unveil.config import ScanConfig

CACHE = Path.home() / ".cache" / "unveil-tests"
DEFAULT = ("wheels/scipy-*.whl", "wheels/pyarrow-*.whl", "wheels/torch-*.whl",
           "wheels/opencv_python_headless-*.whl", "wheels-windows/opencv_python_headless-*.whl",
           "venv-wheels")


def _cpu() -> float:
    """CPU seconds of this process and of its children (forked workers: waited for first,
    since only the reaped ones are counted)."""
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.005)
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


#: the command-line flags that give each way of scanning (``--cli``)
FLAGS = {"bare": ["--no-identify", "--no-dynload"], "+identify": ["--no-dynload"],
         "+dynload": ["--no-identify"], "default": []}


def cli_times(target: str, runs: int, python: str) -> dict[str, list[float]]:
    """Wall-clock of ``PYTHON -m unveil scan --format json`` per way and round, the ways
    taken in turn in every round (so that a change in the machine's load hits them all)."""
    times: dict[str, list[float]] = {name: [] for name in FLAGS}
    for _ in range(runs + 1):  # the first round warms the page cache
        for name, flags in FLAGS.items():
            t = time.perf_counter()
            subprocess.run([python, "-m", "unveil", "scan", "--format", "json",
                            *flags, target], stdout=subprocess.DEVNULL, check=False,
                           env={**os.environ, "NO_COLOR": "1"})
            times[name].append(time.perf_counter() - t)
    return {name: v[1:] for name, v in times.items()}


def interleaved(target: str, ways: dict[str, ScanConfig], runs: int,
                cpu: bool = False) -> dict[str, list[float]]:
    """``runs`` scans per way, the ways taken in turn in every round (so that a
    change in the machine's speed, which on a shared VM swings by a third within minutes,
    hits them all alike rather than whichever way ran then)."""
    clock = _cpu if cpu else time.perf_counter
    times: dict[str, list[float]] = {name: [] for name in ways}
    for cfg in ways.values():
        unveil.scan(target, cfg)  # warm: page cache, lazily built tables
    for _ in range(runs):
        for name, cfg in ways.items():
            t = clock()
            unveil.scan(target, cfg)
            times[name].append(clock() - t)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", "--runs", type=int, default=5)
    p.add_argument("--cpu", action="store_true",
                   help="CPU seconds (this process and its workers) instead of wall-clock: "
                        "what the work costs, steadier on a loaded machine")
    p.add_argument("--cli", action="store_true",
                   help="time the command (a new process per run: start-up, imports and JSON "
                        "output included), the four ways taken in turn")
    p.add_argument("targets", nargs="*")
    args = p.parse_args(argv)
    targets = args.targets or [str(m) for pat in DEFAULT for m in sorted(CACHE.glob(pat))[:1]]
    host = detect_host()
    ways = {"bare": replace(host, identify=False, dynload=False),
            "+identify": replace(host, identify=True, dynload=False),
            "+dynload": replace(host, identify=False, dynload=True),
            "default": replace(host, identify=True, dynload=True)}
    python = find_project_python(None) if args.cli else sys.executable
    if args.cli:
        print(f"(the command run with {python})\n")
    print("| target | bare s | +identify s | identify share | +dynload s | dynload share "
          "| default s | identify share of default | same, round by round | "
          "dynload part of default |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for target in targets:
        rounds = (cli_times(target, args.runs, python) if args.cli else
                  interleaved(target, ways, args.runs, args.cpu))
        t = {name: statistics.median(v) for name, v in rounds.items()}
        # default/+dynload within each round, whose ways ran back to back: steadier than
        # the ratio of medians when the machine's speed swings between rounds
        ratios = [d / n - 1 for d, n in zip(rounds["default"], rounds["+dynload"], strict=True)]
        by_round = (f"{statistics.median(ratios):+.0%} "
                    f"({min(ratios):+.0%} to {max(ratios):+.0%})")
        name = Path(target).name
        print(f"| {name[:48]} | {t['bare']:.2f} | {t['+identify']:.2f} | "
              f"{t['+identify'] / t['bare'] - 1:+.0%} | {t['+dynload']:.2f} | "
              f"{t['+dynload'] / t['bare'] - 1:+.0%} | {t['default']:.2f} | "
              f"{t['default'] / t['+dynload'] - 1:+.0%} | {by_round} | "
              f"{1 - t['+identify'] / t['default']:.0%} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
