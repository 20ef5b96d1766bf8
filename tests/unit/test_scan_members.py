"""A large wheel's members read in forked workers give what threads give."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.integration.packages import write_wheel
from unveil import scan
from unveil.config import ScanConfig
from unveil.report.json import to_dict

scan_module = sys.modules["unveil.scan"]


def _wheel(tmp_path: Path) -> Path:
    """A wheel of real system libraries (some vendored under hashed names, as auditwheel
    leaves them) and sources that load libraries with ctypes."""
    libs = sorted(p for p in Path("/usr/lib/x86_64-linux-gnu").glob("lib*.so.*")
                  if p.is_file() and not p.is_symlink() and p.stat().st_size < 2 << 20)[:24]
    members = {f"pkg.libs/{p.name}": p.read_bytes() for p in libs}
    members["pkg/__init__.py"] = b"import ctypes\nctypes.CDLL('libz.so.1')\n"
    members.update({f"pkg/m{i}.py": b"import ctypes\nctypes.CDLL('libm.so.6')\n" * 40
                    for i in range(20)})
    members["pkg/data.bin"] = b"\0" * 4096
    return write_wheel(tmp_path / "pkg-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", members)


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    made: list[Any] = []
    real = scan_module._Members.__init__

    def spy(self: Any, *args: Any) -> None:
        made.append(self)
        real(self, *args)

    monkeypatch.setattr(scan_module._Members, "__init__", spy)
    return made


@pytest.mark.parametrize(("identify", "dynload"), [(True, True), (True, False), (False, True)])
def test_forked_members_equal_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      identify: bool, dynload: bool) -> None:
    wheel = str(_wheel(tmp_path))
    cfg = ScanConfig(identify=identify, dynload=dynload, workers=2)
    threads = to_dict(scan(wheel, cfg), "test")
    made = _spy(monkeypatch)
    monkeypatch.setattr(scan_module._Members, "MIN_BYTES", 0)  # so small a wheel: all the same
    monkeypatch.setattr(scan_module._Sources, "MIN_BYTES", 0)  # and its sources too
    forked = to_dict(scan(wheel, cfg), "test")
    assert made
    assert forked == threads
    one = to_dict(scan(wheel, replace(cfg, workers=1)), "test")
    assert forked == one
    binaries = forked["targets"][0]["binaries"]
    assert len(binaries) >= 20
    if identify:
        assert any(b["components"] for b in binaries)


def test_a_dead_worker_is_read_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = str(_wheel(tmp_path))
    cfg = ScanConfig(dynload=False, workers=2)
    expected = to_dict(scan(wheel, cfg), "test")

    def dead(paths: list[str]) -> list[Any]:
        raise MemoryError("worker died")

    monkeypatch.setattr(scan_module, "_worker_load", dead)  # the forked child's too
    monkeypatch.setattr(scan_module._Members, "MIN_BYTES", 0)
    made = _spy(monkeypatch)
    assert to_dict(scan(wheel, cfg), "test") == expected
    assert made


def test_small_wheels_and_bare_scans_stay_on_threads(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = str(_wheel(tmp_path))
    made = _spy(monkeypatch)
    scan(wheel, ScanConfig(workers=2))  # a few MB: forking would cost more than it gains
    monkeypatch.setattr(scan_module._Members, "MIN_BYTES", 0)
    scan(wheel, ScanConfig(identify=False, dynload=False, workers=2))  # inflating only
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(next(Path("/usr/lib/x86_64-linux-gnu").glob("libz.so.1.*")), tree)
    scan(str(tree), ScanConfig(workers=2))  # files on disk: not members
    assert made == []


def test_thread_map_keeps_order_and_hands_errors_back() -> None:
    """The bare scan's member threads: results in the items' order whatever finishes first,
    and an error in one raised to the caller (as a future's would be)."""
    def slow_first(n: int) -> int:
        time.sleep(0.02 if n == 0 else 0)
        return n * n

    assert scan_module._ThreadMap(slow_first, list(range(50)), 2).results() == [
        n * n for n in range(50)]
    assert scan_module._ThreadMap(slow_first, [], 2).results() == []

    def fails(n: int) -> int:
        if n == 7:
            raise ValueError("member 7")
        return n

    with pytest.raises(ValueError, match="member 7"):
        scan_module._ThreadMap(fails, list(range(20)), 3).results()
