"""Identification in forked workers gives what identification in the scan gives."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from unveil import scan
from unveil.config import ScanConfig
from unveil.identify import pool as pool_module
from unveil.identify.pool import IdentifyPool, identify_paths
from unveil.model import ScanResult
from unveil.report.json import to_dict
from unveil.sources.fs import HostFS
from unveil.sources.targets import open_target


def _libs(tmp_path: Path, n: int = 24) -> Path:
    """A directory of real shared libraries (the system's), copied so they are the target's."""
    src = sorted(p for p in Path("/usr/lib/x86_64-linux-gnu").glob("lib*.so.*")
                 if p.is_file() and not p.is_symlink() and p.stat().st_size < 4 << 20)
    tree = tmp_path / "tree"
    tree.mkdir()
    for p in src[:n]:
        shutil.copy(p, tree / p.name)
    (tree / "notes.txt").write_text("not a binary")
    return tree


def _as_dicts(result: ScanResult) -> dict[str, Any]:
    return to_dict(result, "test")  # the whole result, as users get it


def test_pool_equals_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = _libs(tmp_path)
    cfg = ScanConfig(dynload=False)
    one = scan(str(tree), replace(cfg, workers=1))
    made: list[IdentifyPool] = []
    real_init = IdentifyPool.__init__

    def spy(self: IdentifyPool, *args: Any) -> None:
        made.append(self)
        real_init(self, *args)

    monkeypatch.setattr(IdentifyPool, "__init__", spy)
    two = scan(str(tree), replace(cfg, workers=2))
    assert made  # the second scan identified in workers
    assert _as_dicts(one) == _as_dicts(two)
    assert any(b.components for t in two.targets for b in t.binaries)


def test_a_failed_worker_is_redone_here(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    tree = _libs(tmp_path, 20)
    paths = sorted(str(p) for p in tree.iterdir())
    expected = identify_paths(HostFS("/"), paths)

    def broken(batch: list[str]) -> pool_module.Identified:
        raise MemoryError("worker died")

    monkeypatch.setattr(pool_module, "_worker_identify", broken)  # the forked child's too
    p = IdentifyPool(HostFS("/"), paths, 2)
    try:
        got = p.results()
    finally:
        p.close()
    assert got == expected
    assert "notes.txt" not in " ".join(got)


def test_random_access_trees_only(tmp_path: Path) -> None:
    tree = _libs(tmp_path, 2)
    assert open_target(str(tree), ScanConfig()).fs.random_access()
