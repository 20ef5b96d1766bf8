"""Build metadata reaches a scan's components, the tree and the CycloneDX document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

import unveil
from tests.conftest import Builder, have
from tests.unit.test_buildinfo import c_array, dep_v0, gcc, go_inline
from unveil.cli.host import detect_host
from unveil.report.cyclonedx import to_cyclonedx


@pytest.fixture
def build(tmp_path: Path) -> Builder:
    if not have("gcc"):
        pytest.skip("gcc is needed to build fixtures")
    return Builder(tmp_path)


def test_go_modules_and_rust_crates_are_components_of_the_binary(build: Builder) -> None:
    gcc(build, "gotool", c_array("bi", ".go.buildinfo", go_inline()))
    gcc(build, "rusttool", c_array("dep", ".dep-v0", dep_v0()))
    result = unveil.scan(str(build.root), detect_host())
    by_file = {b.location.path.rsplit("/", 1)[-1]: b for t in result.targets
               for b in t.binaries}
    go = by_file["gotool"].components
    assert any(c.purl == "pkg:golang/stdlib@1.22.4" for c in go)
    rust = by_file["rusttool"].components
    assert any(c.purl == "pkg:cargo/serde@1.0.200" for c in rust)
    doc = to_cyclonedx(result, unveil.__version__)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(doc) is None
    nested = {n["purl"] for c in json.loads(doc)["components"]
              for n in c.get("components", []) if "purl" in n}
    assert {"pkg:golang/stdlib@1.22.4", "pkg:cargo/serde@1.0.200"} <= nested
