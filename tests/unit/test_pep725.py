"""Reading declared metadata without the email and TOML parsers' import cost."""

from __future__ import annotations

from email.parser import HeaderParser
from importlib.metadata import distributions

from unveil.report.pep725 import core_metadata, toml_or_none


def test_core_metadata_reads_what_the_email_parser_reads() -> None:
    """The header reader against :mod:`email.parser` on every installed distribution's
    METADATA, and on folded, repeated and body-ending lines."""
    texts = [d.read_text("METADATA") or "" for d in distributions()]
    texts.append("Metadata-Version: 2.4\nName: demo\nRequires-Dist: a>=1;\n  extra == 'x'\n"
                 "requires-dist: b\nRequires-External-Dep: dep:generic/zlib\n\n"
                 "Requires-Dist: not-a-header (the description)\n")
    assert len(texts) > 10
    for text in texts:
        msg = HeaderParser().parsestr(text, headersonly=True)
        fields = core_metadata(text)
        for key in ("Name", "Version", "Requires-Dist", "Requires-External",
                    "Requires-External-Dep"):
            want = [" ".join(v.split()) for v in msg.get_all(key) or ()]
            assert [" ".join(v.split()) for v in fields.get(key.lower(), ())] == want, key
    assert core_metadata(texts[-1])["requires-dist"] == ["a>=1; extra == 'x'", "b"]


def test_toml_or_none() -> None:
    assert toml_or_none("Metadata-Version: 2.1\nName: x\n") is None
    assert toml_or_none("not = [toml") is None
    assert toml_or_none('[external]\nhost-requires = ["dep:generic/zlib"]\n') == {
        "external": {"host-requires": ["dep:generic/zlib"]}}
