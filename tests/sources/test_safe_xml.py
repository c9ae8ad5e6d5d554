"""Tests for parsing untrusted XML in notifier.sources.safe_xml."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.sources.base import SourceError
from notifier.sources.safe_xml import parse_xml

FIXTURES = Path(__file__).parent.parent / "fixtures" / "moderngov"
WHAT = "ModernGov GetMeetings response"


# ---- parse_xml -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "tag", "text"),
    [
        (b"<a>x</a>", "a", "x"),
        (b'<?xml version="1.0" encoding="utf-8"?><a>caf\xc3\xa9</a>', "a", "café"),
        (b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?><a>caf\xc3\xa9</a>', "a", "café"),
        (b'<?xml version="1.0" encoding="iso-8859-1"?><a>caf\xe9</a>', "a", "café"),
        (b'<?xml version="1.0" encoding="windows-1252"?><a>\x93quoted\x94</a>', "a", "\u201cquoted\u201d"),
        ('<?xml version="1.0" encoding="utf-16"?><a>café</a>'.encode("utf-16"), "a", "café"),
        (b'\r\n  <?xml version="1.0" encoding="utf-8"?>\r\n<a>x</a>', "a", "x"),
        (b'<?xml version="1.0" encoding="utf-16"?><a>caf\xc3\xa9</a>', "a", "café"),
        (b"<!-- generated --><a>x</a>", "a", "x"),
        (b'<?xml version="1.0"?><!DOCTYPE a SYSTEM "http://example.invalid/a.dtd"><a>x</a>', "a", "x"),
    ],
)
def test_parse_xml_valid(body: bytes, tag: str, text: str) -> None:
    root = parse_xml(body, what=WHAT)
    assert (root.tag, root.text) == (tag, text)


def test_parse_xml_recorded_fixture() -> None:
    root = parse_xml((FIXTURES / "meetings.xml").read_bytes(), what=WHAT)
    assert root.tag == "getmeetings"
    assert [m.findtext("meetingid") for m in root.iter("meeting")] == ["4966", "4967"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", f"{WHAT} is empty"),
        (b"   \r\n\t  ", f"{WHAT} is empty"),
        (b"\xef\xbb\xbf", f"{WHAT} is empty"),
        (
            b'<!DOCTYPE html>\n<html lang="en"><head><title>Sign in</title></head><body></body></html>',
            f"{WHAT} is HTML, not XML (starts '<!DOCTYPE html>...')",
        ),
        (
            b"<html><body>Service unavailable</body></html>",
            f"{WHAT} is HTML, not XML (starts '<html><body>Service unavailable</body></...')",
        ),
        (b"  <HTML>\n<BODY>x</BODY></HTML>", f"{WHAT} is HTML, not XML (starts '<HTML>...')"),
        (
            b"<script>window.location='https://example.invalid/login'</script>",
            f"{WHAT} is HTML, not XML (starts '<script>window.location='https://example...')",
        ),
        (b"Service Unavailable", f"{WHAT} is not XML (starts 'Service Unavailable...')"),
        (b'{"error": "not found"}', f"""{WHAT} is not XML (starts '{{"error": "not found"}}...')"""),
    ],
)
def test_parse_xml_refuses_non_xml(body: bytes, message: str) -> None:
    with pytest.raises(SourceError) as e:
        parse_xml(body, what=WHAT)
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("body", "starts"),
    [
        ((FIXTURES / "meetings.xml").read_bytes()[:400], f"{WHAT} is not well-formed XML: "),
        (b"<getmeetings><committee>", f"{WHAT} is not well-formed XML: "),
        (b"<a></b>", f"{WHAT} is not well-formed XML: "),
        ((FIXTURES / "wrong_encoding.xml").read_bytes(), f"{WHAT} is not well-formed XML: "),
        (b'<?xml version="1.0" encoding="klingon"?><a/>', f"{WHAT} is not well-formed XML: "),
        ((FIXTURES / "billion_laughs.xml").read_bytes(), f"{WHAT} declares XML entities, which are refused"),
        ((FIXTURES / "xxe.xml").read_bytes(), f"{WHAT} declares XML entities, which are refused"),
        (
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY % p SYSTEM "http://example.invalid/x.dtd"> %p;]><a/>',
            f"{WHAT} declares XML entities, which are refused",
        ),
        (
            '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'.encode("utf-16"),
            f"{WHAT} declares XML entities, which are refused",
        ),
        (b"<a>&undeclared;</a>", f"{WHAT} is not well-formed XML: "),
        (
            b'<?xml version="1.0"?><!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "x.dtd">'
            b'<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>',
            f"{WHAT} is HTML, not XML (starts '<?xml version=\"1.0\"?><!DOCTYPE html PUBL...')",
        ),
        ((FIXTURES / "error_page_200.html").read_bytes(), f"{WHAT} is HTML, not XML (starts '<!DOCTYPE html PUBLIC "),
    ],
)
def test_parse_xml_refuses_hostile(body: bytes, starts: str) -> None:
    with pytest.raises(SourceError) as e:
        parse_xml(body, what=WHAT)
    assert str(e.value).startswith(starts), str(e.value)


def test_parse_xml_billion_laughs_is_refused_quickly() -> None:
    # Ten levels of ten: a parser that expanded it would build 10^9 "lol"s.
    start = datetime.now(UTC)
    with pytest.raises(SourceError):
        parse_xml((FIXTURES / "billion_laughs.xml").read_bytes(), what=WHAT)
    assert datetime.now(UTC) - start < timedelta(seconds=1)


def test_parse_xml_xxe_never_reads_the_file() -> None:
    with pytest.raises(SourceError) as e:
        parse_xml((FIXTURES / "xxe.xml").read_bytes(), what=WHAT)
    assert "root:" not in str(e.value)


def _huge_meetings(count: int) -> bytes:
    meeting = (
        "<meeting><meetingid>{n}</meetingid><meetingdate>10/02/2026</meetingdate>"
        "<meetingstatus>Confirmed</meetingstatus><meetingtime>10.00 am</meetingtime>"
        "<iswebcast>False</iswebcast></meeting>\n"
    )
    meetings = "".join(meeting.format(n=n) for n in range(count))
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<getmeetings><committee><committeeid>144</committeeid>'
        f"<committeetitle>Audit Committee</committeetitle><committeemeetings>{meetings}"
        "</committeemeetings></committee></getmeetings>"
    ).encode()


def test_parse_xml_huge_document_parses() -> None:
    body = _huge_meetings(40_000)
    assert len(body) > 6_000_000
    root = parse_xml(body, what=WHAT)
    assert sum(1 for _ in root.iter("meeting")) == 40_000


def test_parse_xml_huge_text_node_fails_cleanly() -> None:
    # One text node past libxml2's 10 MB limit (huge_tree off): a clean SourceError, not a crash.
    body = b"<getmeetings><committeetitle>" + b"a" * 11_000_000 + b"</committeetitle></getmeetings>"
    with pytest.raises(SourceError) as e:
        parse_xml(body, what=WHAT)
    assert str(e.value).startswith(f"{WHAT} is not well-formed XML: ")


def test_parse_xml_rejects_str() -> None:
    with pytest.raises(TypeError):
        parse_xml("<a/>", what=WHAT)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parse_xml_arbitrary_bytes_only_raise_source_error(body: bytes) -> None:
    with contextlib.suppress(SourceError):
        parse_xml(body, what=WHAT)
