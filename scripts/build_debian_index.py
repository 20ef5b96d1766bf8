"""Build ``src/unveil/data/debian-sonames.tsv.gz``: which Debian package ships each shared
library name, for the whole archive (not just what is installed).

Source: Debian's ``Contents-amd64`` index of the release apt is configured for, as
``apt-file update`` (or ``apt-get update`` with Contents targets) downloads it into
``/var/lib/apt/lists``; decompressed with apt's own ``apt-helper cat-file``.  Usage::

    apt-get install -y apt-file && apt-file update
    python scripts/build_debian_index.py [--lists /var/lib/apt/lists] [--out PATH]

Kept: file names in the x86-64 library directories (not the lib32/libx32 multilib ones)
that look like a shared library with an ABI number (``libz.so.1``,
``libavcodec.so.59.37.100``, the loader ``ld-linux-x86-64.so.2``) or a plain ``lib*.so``,
the development link ``-dev`` packages ship (what ``dlopen("libz.so")`` needs).
Each line is ``name<TAB>package[,package...]`` (source section stripped), sorted; header
lines start with ``#`` and record the source and its date.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import re
import subprocess
import sys
from collections import defaultdict

LIBDIR = re.compile(r"^(?:usr/)?lib(?:64)?/(?:x86_64-linux-gnu/)?([^/]+)$")
#: ``lib*.so[.N...]``, and the dynamic loaders (``ld-linux-x86-64.so.2``): every glibc
#: program needs one, and a scan asks who ships it
SONAME = re.compile(r"^(?:lib[^/]*|ld-linux[^/]*)\.so(?:\.\d+)*$")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lists", default="/var/lib/apt/lists")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "src",
                                                 "unveil", "data", "debian-sonames.tsv.gz"))
    args = p.parse_args(argv)
    files = sorted(f for f in glob.glob(os.path.join(args.lists, "*_main_Contents-amd64*"))
                   if "-updates_" not in f and "-security" not in f)
    if not files:
        sys.stderr.write("no Contents-amd64 index: run 'apt-file update' first\n")
        return 2
    release = glob.glob(os.path.join(args.lists, "*_InRelease"))
    date = "unknown"
    for r in release:
        with open(r, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Date:"):
                    date = line.split(":", 1)[1].strip()
                    break
        break
    names: dict[str, set[str]] = defaultdict(set)
    for path in files:
        proc = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", path],
                              capture_output=True, check=True)
        for raw in proc.stdout.splitlines():
            line = raw.decode("utf-8", "replace")
            fpath, _, pkgs = line.rpartition(" ")
            m = LIBDIR.match(fpath.strip())
            if not m or not SONAME.match(m.group(1)):
                continue
            for pkg in pkgs.split(","):
                names[m.group(1)].add(pkg.rsplit("/", 1)[-1])
    lines = [f"# source: Debian {os.path.basename(files[0]).split('_dists_')[-1]}",
             f"# date: {date}",
             f"# built by scripts/build_debian_index.py; {len(names)} names"]
    lines += [f"{n}\t{','.join(sorted(p))}" for n, p in sorted(names.items())]
    with gzip.open(args.out, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write("\n".join(lines) + "\n")
    sys.stdout.write(f"{args.out}: {len(names)} names\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
