"""Per-byte scan speed of macOS, Windows and musllinux wheels beside the Linux ones.

Usage: ``python bench/platforms.py [-n RUNS]`` — times ``python -m unveil scan --format json``
on every cached wheel of ``~/.cache/unveil-tests/wheels{,-macos,-windows,-musl}`` (best of N,
wall clock) and prints a Markdown table with MB/s of wheel bytes.  No other tool reads
Mach-O or PE wheels on Linux, so there is nothing to put beside it but the Linux wheels.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path.home() / ".cache" / "unveil-tests"
DIRS = {"manylinux": "wheels", "musllinux": "wheels-musl", "macos": "wheels-macos",
        "windows": "wheels-windows"}


def best(wheel: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "unveil", "scan", "--format", "json", str(wheel)],
                       stdout=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", "--runs", type=int, default=3)
    args = p.parse_args(argv)
    # Bytecode written once, as pip install does (see compare.precompile).
    subprocess.run([sys.executable, "-c", "import compileall, os, unveil; "
                    "compileall.compile_dir(os.path.dirname(unveil.__file__), quiet=1)"],
                   check=False, capture_output=True)
    print("| platform | wheel | MB | s | MB/s |")
    print("|---|---|--:|--:|--:|")
    totals: dict[str, tuple[float, float]] = {}
    for platform, sub in DIRS.items():
        for w in sorted((CACHE / sub).glob("*.whl")):
            if "torch" in w.name:
                continue
            mb = w.stat().st_size / 1e6
            s = best(w, args.runs)
            tmb, ts = totals.get(platform, (0.0, 0.0))
            totals[platform] = (tmb + mb, ts + s)
            print(f"| {platform} | `{w.name.split('-')[0]} {w.name.split('-')[1]}` | "
                  f"{mb:.1f} | {s:.3f} | {mb / s:.0f} |")
    for platform, (mb, s) in totals.items():
        print(f"| **{platform}, all** | | {mb:.1f} | {s:.2f} | **{mb / s:.0f}** |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
