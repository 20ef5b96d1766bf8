"""SBOM files named in RECORD: every RECORD spelling csv allows, and problems said once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from unveil.identify.sboms import _json_rows, read_sboms
from unveil.sources.fs import HostFS

CDX = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [
    {"type": "library", "name": "zlib", "version": "1.3.1"}]})


def _site(tmp_path: Path, record: bytes, files: dict[str, str]) -> str:
    site = tmp_path / "site"
    (site / "pkg-1.0.dist-info").mkdir(parents=True)
    (site / "pkg-1.0.dist-info/RECORD").write_bytes(record)
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    return str(site)


@pytest.mark.parametrize("record", [
    b"pkg/__init__.py,,\npkg/x.cdx.json,sha256=abc,10\n",           # pip's \n rows
    b"pkg/__init__.py,,\r\npkg/x.cdx.json,sha256=abc,10\r\n",       # pip's installed \r\n
    b'"pkg/a,b.py",,\npkg/x.cdx.json,,\n',                            # a quoted field
    b"pkg/x.cdx.json,,",                                              # no final newline
], ids=["lf", "crlf", "quoted", "no-newline"])
def test_record_spellings(tmp_path: Path, record: bytes) -> None:
    site = _site(tmp_path, record, {"pkg/x.cdx.json": CDX})
    sboms, problems = read_sboms(HostFS("/"), [site])
    assert [Path(s.path).name for s in sboms] == ["x.cdx.json"]
    assert problems == []


def test_quoted_path_with_a_newline(tmp_path: Path) -> None:
    record = b'pkg/__init__.py,,\n"pkg/we\nird.cdx.json",,\n'
    site = _site(tmp_path, record, {"pkg/we\nird.cdx.json": CDX})
    sboms, _ = read_sboms(HostFS("/"), [site])
    assert [Path(s.path).name for s in sboms] == ["we\nird.cdx.json"]


def test_bare_carriage_returns_are_a_problem(tmp_path: Path) -> None:
    site = _site(tmp_path, b"pkg/__init__.py,,\rpkg/x.cdx.json,,\r", {"pkg/x.cdx.json": CDX})
    _, problems = read_sboms(HostFS("/"), [site])
    assert any("unreadable RECORD" in p for p in problems)


def test_shared_broken_sbom_reported_once(tmp_path: Path) -> None:
    """Two distributions' RECORDs name one SBOM that does not parse: one problem."""
    site = tmp_path / "site"
    for dist in ("a-1.dist-info", "b-1.dist-info"):
        (site / dist).mkdir(parents=True)
        (site / dist / "RECORD").write_text("shared/x.cdx.json,,\n")
    (site / "shared").mkdir()
    (site / "shared/x.cdx.json").write_text("{not json")
    sboms, problems = read_sboms(HostFS("/"), [str(site)])
    assert sboms == []
    assert len(problems) == 1


def test_json_rows_are_the_lines_naming_json() -> None:
    old = re.compile(r"(?im)^[^\r\n]*\.json\b[^\r\n]*")
    texts = [
        "a.py,sha256=x,1\npkg/sboms/x.cdx.json,,\nb.JSON,,\n",
        "a.py,,\rpkg/x.spdx.json,,\rc.py,,\r",  # CR-only lines
        "one.json two.json,,\r\nlast.json",
    ]
    for text in texts:
        assert set(_json_rows(text)) >= {m.group(0) for m in old.finditer(text)}
    # A RECORD where every row names a .json file (the first version searched to the end
    # of the text for a CR on every row: 16 s for this one).
    big = "".join(f"pkg/data/file{i}.json,sha256=abc,{i}\n" for i in range(60_000))
    assert len(_json_rows(big)) == 60_000
