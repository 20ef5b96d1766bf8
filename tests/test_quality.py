"""The engineering standards as tests: ruff clean and mypy --strict clean."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_ruff_clean() -> None:
    p = subprocess.run(["ruff", "check", "src", "tests", "bench"], cwd=ROOT,
                       capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def test_mypy_strict_clean() -> None:
    p = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True,
                       check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def test_every_data_file_is_packaged() -> None:
    """A data file the package-data globs miss works from a checkout and breaks installs."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["unveil"]
    base = ROOT / "src" / "unveil"
    for f in (base / "data").rglob("*"):
        if f.is_file():
            rel = f.relative_to(base).as_posix()
            assert any(fnmatch.fnmatch(rel, g) for g in globs), f"{rel} is not package data"
