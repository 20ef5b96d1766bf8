"""Identification coverage per wheel, and precision/recall against the labelled truth set.

Usage: ``python bench/identification.py`` — scans every cached wheel of
``~/.cache/unveil-tests/{wheels,wheels-id}`` (``bench/corpus.py`` and the identification
tests download them) and prints Markdown: per wheel, the vendored libraries found (files
in the wheel that are not Python extension modules), how many are identified by name,
how many with a version, and which evidence methods named them; then the truth-set scores
from ``tests/data/identify-truth.json``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from unveil import scan
from unveil.config import ScanConfig
from unveil.model import Role

CACHE = Path.home() / ".cache" / "unveil-tests"
TRUTH = Path(__file__).resolve().parent.parent / "tests" / "data" / "identify-truth.json"


def main() -> int:
    cfg = ScanConfig(dynload=False)
    wheels = sorted({w.name: w for d in ("wheels", "wheels-id")
                     for w in (CACHE / d).glob("*.whl")}.values())
    print("| wheel | vendored libraries | named | with version | evidence (methods) |")
    print("|---|--:|--:|--:|---|")
    results = {}
    for w in wheels:
        r = scan(str(w), cfg)
        results[w.name] = r
        libs = [b for b in r.targets[0].binaries if b.role is not Role.EXTENSION
                and b.role is not Role.EXECUTABLE]
        named = [b for b in libs if b.components]
        versioned = [b for b in named if b.components[0].version]
        methods: Counter[str] = Counter()
        for b in named:
            methods.update({e.method for e in b.components[0].evidence})
        # ties by name: the methods come from a set, in no fixed order
        mix = ", ".join(f"{m} {n}" for m, n in sorted(methods.items(),
                                                      key=lambda mn: (-mn[1], mn[0])))
        print(f"| {w.name.split('-')[0]} {w.name.split('-')[1]} | {len(libs)} | {len(named)} | "
              f"{len(versioned)} | {mix} |")
    truth = json.loads(TRUTH.read_text())["entries"]
    tp_name = fn_name = tp_ver = fn_ver = fp_ver = 0
    by_project = {n.split("-")[0].lower().replace("_", "-"): r for n, r in results.items()}
    for entry in truth:
        found = by_project.get(entry["wheel"].lower().replace("_", "-"))
        if found is None:
            continue
        sb = next((x for x in found.targets[0].binaries
                   if x.location.path == entry["member"]), None)
        got = {c.name: c.version for c in sb.components} if sb else {}
        if entry["project"] in got:
            tp_name += 1
            want = entry.get("version")
            have = got[entry["project"]]
            if want and have:
                if have == want or want.startswith(have + "."):
                    tp_ver += 1
                else:
                    fp_ver += 1
            elif want and entry.get("in_binary", True):
                fn_ver += 1
        else:
            fn_name += 1
    print()
    print(f"truth set: names {tp_name}/{tp_name + fn_name} found; versions {tp_ver} right, "
          f"{fp_ver} wrong, {fn_ver} not found (of those whose bytes carry one)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
