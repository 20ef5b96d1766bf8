"""Reading declared metadata without the email and TOML parsers' import cost."""

from __future__ import annotations

from email.parser import HeaderParser
from importlib.metadata import distributions

from unveil.model import Edge, EdgeClass, LinkKind, Outcome, Resolution, Rule
from unveil.report.pep725 import core_metadata, is_platform_library, toml_or_none


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


def test_core_metadata_breaks_lines_as_email_does() -> None:
    """Only CR, LF and CRLF end a line: a U+2028, form feed or NEL inside a value (a summary)
    does not end the headers before Requires-Dist."""
    for odd in ("\u2028", "\x0c", "\x85", "\x0b"):
        text = (f"Metadata-Version: 2.1\nName: foo\nSummary: fast{odd}thing\n"
                "Requires-Dist: numpy\nRequires-External: libpng\n\n")
        msg = HeaderParser().parsestr(text, headersonly=True)
        fields = core_metadata(text)
        assert fields["requires-dist"] == msg.get_all("Requires-Dist") == ["numpy"]
        assert fields["requires-external"] == ["libpng"]
    # No space before the colon of a header name; a first line that continues nothing is
    # skipped, as email.parser does.
    assert "name" not in core_metadata("Name : foo\n")
    assert core_metadata(" stray\nName: foo\n")["name"] == ["foo"]


def test_find_library_of_a_libc_part_is_the_platform() -> None:
    """find_library('pthread') resolved to libpthread.so.0 is glibc: never a phantom or an
    [external] entry."""
    def edge(request: str, path: str) -> Edge:
        return Edge(Resolution("pkg/x.py:3", request, Outcome.FOUND, path, Rule.CACHE),
                    EdgeClass.SYSTEM, None, None, False, link=LinkKind.DLOPEN)

    assert is_platform_library(edge("find_library('pthread')",
                                    "/lib/x86_64-linux-gnu/libpthread.so.0"))
    assert not is_platform_library(edge("find_library('magic')",
                                        "/lib/x86_64-linux-gnu/libmagic.so.1"))
