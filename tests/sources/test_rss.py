"""The RSS/Atom adapter: ModernGov's "what's new" feed, the feed formats, dates, and bodies that must fail the poll."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from notifier.models import ItemKind
from notifier.sources.base import Record, SourceError, SourceState
from notifier.sources.rss import RssAdapter, parse_feed_date
from tests.sources import fakes
from tests.sources.fakes import Body

FIXTURES = Path(__file__).parent.parent / "fixtures" / "rss"
FEED_URL = "https://democracy.leics.gov.uk/mgRss.aspx?XXR=0"
NOW = datetime(2025, 11, 27, 9, 0, tzinfo=UTC)


def fake_fetch(routes: Mapping[str, Body], **kwargs: Any) -> fakes.FakeFetch:
    """`fakes.FakeFetch` answering with this format's content type unless told otherwise."""
    return fakes.FakeFetch(routes, **{"content_type": "application/rss+xml; charset=utf-8", **kwargs})


def state(**options: Any) -> SourceState:
    return SourceState(now=NOW, timezone="Europe/London", options=options)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def rss(items: str, *, declaration: str = '<?xml version="1.0" encoding="utf-8"?>') -> bytes:
    return (
        f'{declaration}\n<rss version="2.0"><channel><title>Council</title><link>https://council.example/</link>'
        f"<description>What's new</description>{items}</channel></rss>"
    ).encode()


async def collect(body: bytes, **options: Any) -> list[Record]:
    records = await RssAdapter().collect(FEED_URL, fake_fetch({"mgRss": body}), state(**options))
    assert records is not None
    return records


# ---- the ModernGov feed ---------------------------------------------------------------------------------------------


async def test_rss_moderngov_fixture_records() -> None:
    fetch = fake_fetch({r"mgRss\.aspx": fixture("moderngov_mgrss.xml")})

    records = await RssAdapter().collect(FEED_URL, fetch, state())

    assert fetch.asked == [(FEED_URL, True)]
    assert records is not None
    assert [r.external_id for r in records] == [
        "mg-meeting-7654-agenda",
        "mg-meeting-7702",
        "mg-decision-5561",
        "https://democracy.leics.gov.uk/documents/g7588/Printed%20minutes%2005th-Nov-2025%2010.00%20Scrutiny%20"
        "Commission.pdf?T=1",
        "https://democracy.leics.gov.uk/mgConvert2PDF.aspx?ID=91234",
    ]
    assert records[0] == Record(
        kind=ItemKind.DOCUMENT,
        external_id="mg-meeting-7654-agenda",
        title="Cabinet - Tuesday, 2nd December, 2025 2.00 pm",
        committee="Cabinet",
        body="Agenda published for Cabinet on Tuesday, 2nd December, 2025 2.00 pm.\n"
        "Venue: Council Chamber - County Hall, Glenfield",
        starts_at=None,
        status=None,
        url="https://democracy.leics.gov.uk/ieListDocuments.aspx?CId=135&MId=7654",
        published_at=datetime(2025, 11, 26, 16, 0, tzinfo=UTC),
        data={"author": "", "categories": ["Cabinet", "Agenda"], "enclosures": []},
    )


async def test_rss_moderngov_fixture_double_escaped_title_and_cdata_body() -> None:
    records = await collect(fixture("moderngov_mgrss.xml"))

    decision = records[2]
    assert decision.title == "Decision: Chair's Report on the Medium Term Financial Strategy 2026/27 - 2029/30"
    assert decision.body == (
        "Decision made by Cabinet on 25/11/2025.\nStatus: Recommendations Approved\nCall-in deadline: 03/12/2025"
    )
    assert decision.data["categories"] == ["Cabinet", "Decisions"]


async def test_rss_moderngov_fixture_enclosure_relative_link_and_entities() -> None:
    records = await collect(fixture("moderngov_mgrss.xml"))

    minutes, report = records[3], records[4]
    assert minutes.data["enclosures"] == [
        {
            "url": "https://democracy.leics.gov.uk/documents/g7588/Printed%20minutes%2005th-Nov-2025%2010.00%20"
            "Scrutiny%20Commission.pdf?T=1",
            "type": "application/pdf",
        }
    ]
    assert report.url == "https://democracy.leics.gov.uk/mgConvert2PDF.aspx?ID=91234"
    assert report.title == "Report: Dementia & mental health services – commissioning update"
    assert report.body == (
        "Report of the Director of Adults and Communities to the Health Overview and Scrutiny Committee."
    )
    assert report.committee is None
    assert report.published_at == datetime(2025, 11, 21, 12, 0, tzinfo=UTC)


async def test_rss_not_modified_returns_none() -> None:
    fetch = fake_fetch({"mgRss": fixture("moderngov_mgrss.xml")}, not_modified=True)

    assert await RssAdapter().collect(FEED_URL, fetch, state()) is None
    assert fetch.asked == [(FEED_URL, True)]


async def test_rss_empty_channel_is_an_empty_list() -> None:
    assert await collect(rss("")) == []


# ---- meeting feeds --------------------------------------------------------------------------------------------------


async def test_rss_meeting_feed_atom_fixture() -> None:
    records = await collect(fixture("committee_atom.xml"), item_kind="meeting")

    assert records == [
        Record(
            kind=ItemKind.MEETING,
            external_id="tag:democracy.example-council.gov.uk,2025:meeting/8120",
            title="Planning Committee - 9 December 2025",
            committee="Planning Committee",
            body="This meeting has been cancelled as there is no business.",
            starts_at=datetime(2025, 12, 9, 18, 30, tzinfo=UTC),
            status="cancelled",
            url="https://democracy.example-council.gov.uk/ieListDocuments.aspx?CId=140&MId=8120",
            published_at=datetime(2025, 12, 9, 18, 30, tzinfo=UTC),
            data={"author": "Democratic Services", "categories": ["Planning Committee"], "enclosures": []},
        ),
        Record(
            kind=ItemKind.MEETING,
            external_id="tag:democracy.example-council.gov.uk,2025:meeting/8121",
            title="Planning Committee - 13 January 2026",
            committee="Planning Committee",
            body="Agenda to follow.\nVenue: Council Chamber, Town Hall\nContact: Jane Smith",
            starts_at=datetime(2026, 1, 13, 18, 30, tzinfo=UTC),
            status=None,
            url="https://democracy.leics.gov.uk/ieListDocuments.aspx?CId=140&MId=8121",
            published_at=datetime(2026, 1, 13, 18, 30, tzinfo=UTC),
            data={"author": "Planning Team", "categories": ["Planning Committee"], "enclosures": []},
        ),
    ]


@pytest.mark.parametrize(
    ("title", "expected_title", "expected_status"),
    [
        ("Cabinet - 2 December 2025 (Cancelled)", "Cabinet - 2 December 2025", "cancelled"),
        ("CANCELLED: Cabinet - 2 December 2025", "Cabinet - 2 December 2025", "cancelled"),
        ("Cabinet - 2 December 2025 - POSTPONED", "Cabinet - 2 December 2025", "cancelled"),
        ("Cabinet - 2 December 2025", "Cabinet - 2 December 2025", None),
    ],
)
async def test_rss_meeting_feed_cancellation_markers(
    title: str, expected_title: str, expected_status: str | None
) -> None:
    body = rss(f"<item><title>{title}</title><guid>m1</guid><pubDate>Tue, 02 Dec 2025 14:00:00 GMT</pubDate></item>")

    [record] = await collect(body, item_kind="meeting")

    assert (record.title, record.status) == (expected_title, expected_status)
    assert record.starts_at == datetime(2025, 12, 2, 14, 0, tzinfo=UTC)


async def test_rss_document_feed_keeps_cancelled_in_title() -> None:
    body = rss("<item><title>Cabinet (Cancelled)</title><guid>m1</guid></item>")

    [record] = await collect(body)

    assert (record.kind, record.title, record.status, record.starts_at) == (
        ItemKind.DOCUMENT, "Cabinet (Cancelled)", None, None
    )


async def test_rss_meeting_feed_event_module_start_date_in_council_zone() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0" xmlns:ev="http://purl.org/rss/1.0/modules/event/"><channel>'
        b"<title>Meetings</title><item><title>Cabinet</title><guid>m7</guid>"
        b"<pubDate>Mon, 01 Sep 2025 08:00:00 GMT</pubDate><ev:startdate>2025-09-16T14:00:00</ev:startdate>"
        b"</item></channel></rss>"
    )

    [record] = await collect(body, item_kind="meeting")

    assert record.starts_at == datetime(2025, 9, 16, 13, 0, tzinfo=UTC)
    assert record.published_at == datetime(2025, 9, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("kind", ["agenda_item", "minutes", ""])
async def test_rss_item_kind_option_invalid(kind: str) -> None:
    with pytest.raises(SourceError, match="item_kind"):
        await collect(rss(""), item_kind=kind)


async def test_rss_decision_kind_and_committee_option() -> None:
    body = rss("<item><title>Decision: Library hours</title><guid>d1</guid><category>Libraries</category></item>")

    [record] = await collect(body, item_kind="decision", committee="Cabinet")

    assert (record.kind, record.committee, record.data["categories"]) == (
        ItemKind.DECISION, "Cabinet", ["Libraries"]
    )


# ---- formats --------------------------------------------------------------------------------------------------------

RSS_091 = b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>Council news</title><link>https://council.example/</link>
<description>News</description><language>en-gb</language>
<item><title>Budget consultation opens</title><link>https://council.example/news/budget</link>
<description>Have your say on the \xa35m savings.</description></item>
</channel></rss>"""

RSS_10 = b"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://council.example/rss">
    <title>Council</title><link>https://council.example/</link><description>What's new</description>
    <items><rdf:Seq><rdf:li rdf:resource="https://council.example/reports/41"/></rdf:Seq></items>
  </channel>
  <item rdf:about="https://council.example/reports/41">
    <title>Annual audit letter</title><link>https://council.example/reports/41</link>
    <description>The auditor's annual letter.</description>
    <dc:date>2025-10-14T09:30:00+01:00</dc:date><dc:creator>Audit Committee clerk</dc:creator>
    <dc:subject>Audit Committee</dc:subject>
  </item>
</rdf:RDF>"""

RSS_20 = rss(
    "<item><title>Annual audit letter</title><link>https://council.example/reports/41</link>"
    "<guid isPermaLink='true'>https://council.example/reports/41</guid><description>The auditor's annual letter."
    "</description><pubDate>Tue, 14 Oct 2025 09:30:00 +0100</pubDate><author>clerk@council.example (Clerk)</author>"
    "<category>Audit Committee</category></item>"
)

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Council</title><id>urn:council</id>
<updated>2025-10-14T08:30:00Z</updated>
<entry><title>Annual audit letter</title><id>https://council.example/reports/41</id>
<link href="https://council.example/reports/41"/><updated>2025-10-14T08:30:00Z</updated>
<summary>The auditor's annual letter.</summary><category term="Audit Committee"/></entry></feed>"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            RSS_091,
            ("https://council.example/news/budget", "Budget consultation opens", "Have your say on the £5m savings.",
             None, None),
        ),
        (
            RSS_10,
            ("https://council.example/reports/41", "Annual audit letter", "The auditor's annual letter.",
             datetime(2025, 10, 14, 8, 30, tzinfo=UTC), "Audit Committee"),
        ),
        (
            RSS_20,
            ("https://council.example/reports/41", "Annual audit letter", "The auditor's annual letter.",
             datetime(2025, 10, 14, 8, 30, tzinfo=UTC), "Audit Committee"),
        ),
        (
            ATOM,
            ("https://council.example/reports/41", "Annual audit letter", "The auditor's annual letter.",
             datetime(2025, 10, 14, 8, 30, tzinfo=UTC), "Audit Committee"),
        ),
    ],
    ids=["rss091", "rss10", "rss20", "atom10"],
)
async def test_rss_formats(body: bytes, expected: tuple[Any, ...]) -> None:
    [record] = await collect(body)

    assert (record.external_id, record.title, record.body, record.published_at, record.committee) == expected
    assert record.url == expected[0]


# ---- identity -------------------------------------------------------------------------------------------------------


async def test_rss_external_id_falls_back_to_link() -> None:
    [record] = await collect(rss("<item><title>A</title><link>https://council.example/a</link></item>"))

    assert record.external_id == "https://council.example/a"


async def test_rss_external_id_falls_back_to_hash_of_title_and_date() -> None:
    item = "<item><title>{}</title><pubDate>Tue, 14 Oct 2025 09:30:00 GMT</pubDate></item>"
    first = await collect(rss(item.format("Annual audit letter")))
    again = await collect(rss(item.format("Annual audit letter")))
    other = await collect(rss(item.format("Annual audit letter (revised)")))

    assert first[0].external_id == again[0].external_id
    assert re.fullmatch(r"sha256:[0-9a-f]{32}", first[0].external_id)
    assert other[0].external_id != first[0].external_id


async def test_rss_untitled_entry_uses_body_and_non_http_link_is_dropped() -> None:
    body = rss("<item><guid>x</guid><description>Notice of a key decision</description>"
               "<link>javascript:alert(1)</link></item>")  # fmt: skip

    [record] = await collect(body)

    assert (record.title, record.url) == ("Notice of a key decision", None)


# ---- dates ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Tue, 14 Oct 2025 09:30:00 GMT", datetime(2025, 10, 14, 9, 30, tzinfo=UTC)),
        ("Tue, 14 Oct 2025 09:30:00 +0100", datetime(2025, 10, 14, 8, 30, tzinfo=UTC)),
        ("Tue, 14 Oct 2025 09:30:00 -0000", datetime(2025, 10, 14, 9, 30, tzinfo=UTC)),
        # No zone, or one Python does not know (BST): wall-clock time in the council's zone, across DST.
        ("Tue, 14 Oct 2025 09:30:00", datetime(2025, 10, 14, 8, 30, tzinfo=UTC)),
        ("Tue, 14 Oct 2025 09:30:00 BST", datetime(2025, 10, 14, 8, 30, tzinfo=UTC)),
        ("Tue, 02 Dec 2025 09:30:00", datetime(2025, 12, 2, 9, 30, tzinfo=UTC)),
        ("Sun, 30 Mar 2025 01:30:00", datetime(2025, 3, 30, 1, 30, tzinfo=UTC)),
        ("2025-10-14T09:30:00Z", datetime(2025, 10, 14, 9, 30, tzinfo=UTC)),
        ("2025-10-14T09:30:00+02:00", datetime(2025, 10, 14, 7, 30, tzinfo=UTC)),
        ("2025-10-14T09:30:00", datetime(2025, 10, 14, 8, 30, tzinfo=UTC)),
        ("2025-10-14", datetime(2025, 10, 13, 23, 0, tzinfo=UTC)),
        ("not a date", None),
        ("", None),
    ],
)
def test_rss_parse_feed_date(raw: str, expected: datetime | None) -> None:
    assert parse_feed_date(raw, "Europe/London") == expected


async def test_rss_date_feedparser_fallback_for_other_formats() -> None:
    # W3C-DTF with a space separator is read by feedparser, not by the RFC 822 or ISO readers.
    [record] = await collect(rss("<item><guid>a</guid><title>A</title><pubDate>2025-10-14 09:30:00Z</pubDate></item>"))

    assert record.published_at == datetime(2025, 10, 14, 9, 30, tzinfo=UTC)


# ---- encodings ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        # Declared UTF-8, written in Windows-1252.
        (rss("<item><guid>a</guid><title>Council{Q}s {P}5m plan</title></item>")
         .replace(b"{Q}", b"\x92").replace(b"{P}", b"\xa3"), "application/rss+xml"),
        # Declared ISO-8859-1, written in UTF-8.
        (rss("<item><guid>a</guid><title>Council’s £5m plan</title></item>",
             declaration='<?xml version="1.0" encoding="ISO-8859-1"?>'), "text/xml"),
        # UTF-16 with a byte-order mark.
        (rss("<item><guid>a</guid><title>Council’s £5m plan</title></item>",
             declaration='<?xml version="1.0" encoding="UTF-16"?>').decode().encode("utf-16"), "text/xml"),
        # The server's charset is wrong; the body is UTF-8.
        (rss("<item><guid>a</guid><title>Council’s £5m plan</title></item>"), "text/xml; charset=iso-8859-1"),
        # Windows-1252 correctly declared.
        (rss("<item><guid>a</guid><title>Council’s £5m plan</title></item>",
             declaration='<?xml version="1.0" encoding="windows-1252"?>').decode().encode("cp1252"), "text/xml"),
    ],
    ids=["cp1252-declared-utf8", "utf8-declared-latin1", "utf16-bom", "wrong-http-charset", "cp1252-declared"],
)
async def test_rss_wrong_or_unusual_encoding(body: bytes, content_type: str) -> None:
    fetch = fake_fetch({"mgRss": body}, content_type=content_type)

    records = await RssAdapter().collect(FEED_URL, fetch, state())

    assert records is not None
    assert [r.title for r in records] == ["Council’s £5m plan"]


async def test_rss_html_named_entities_are_read() -> None:
    [record] = await collect(rss("<item><guid>a</guid><title>Fees&nbsp;&amp;&nbsp;charges &pound;5 &ndash; "
                                 "&hellip;</title></item>"))  # fmt: skip

    assert record.title == "Fees & charges £5 – …"


async def test_rss_bare_ampersands_are_read() -> None:
    body = rss("<item><guid>a</guid><title>Health & Wellbeing Board</title>"
               "<link>https://council.example/ieListDocuments.aspx?CId=1&MId=2</link></item>")  # fmt: skip

    [record] = await collect(body)

    assert (record.title, record.url) == (
        "Health & Wellbeing Board", "https://council.example/ieListDocuments.aspx?CId=1&MId=2"
    )


# ---- hostile bodies -------------------------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<rss version="2.0"><channel><title>&lol3;</title><item><title>&lol3;</title></item></channel></rss>"""

XXE_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>x</title><item><title>&xxe;</title></item></channel></rss>"""

XXE_NETWORK = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<rss version="2.0"><channel><title>x</title><item><title>x</title></item></channel></rss>"""

FULL_FEED = rss("".join(f"<item><guid>g{i}</guid><title>Item {i}</title></item>" for i in range(5)))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"   \r\n\t ", "empty"),
        (b"<!DOCTYPE html><html><head><title>Error</title></head><body>Server Error in '/' Application."
         b"</body></html>", "HTML"),
        (b"<html><script>window.location='/mgWhatsNew.aspx'</script></html>", "HTML"),
        (b"\n\n<HTML><HEAD><TITLE>SharePoint</TITLE></HEAD><BODY>Sorry, something went wrong</BODY></HTML>", "HTML"),
        (FULL_FEED[: len(FULL_FEED) // 2], "not well-formed"),
        (FULL_FEED[:-30], "not well-formed"),
        (BILLION_LAUGHS, "entities"),
        (XXE_FILE, "entities"),
        (XXE_NETWORK, "entities|DTD|not well-formed"),
        (b'<?xml version="1.0"?><error><message>Service unavailable</message></error>', "not an RSS or Atom"),
        (b'<?xml version="1.0"?><rss version="2.0"></rss>', "no <channel>"),
        (b'{"items": []}', "not XML"),
        (b"/etc/passwd", "not XML"),
        (b"Service Unavailable", "not XML"),
        (rss("<item><title>Broken <b>markup</title><guid>a</guid></item>"), "not well-formed"),
        (rss("<item><title>Undefined &madeup; entity</title></item>"), "not well-formed"),
        (b"\x00\x01\x02\xff\xfe garbage", "not XML|HTML|not well-formed"),
    ],
    ids=[
        "empty", "whitespace", "html-error-page", "html-js-redirect", "html-sharepoint", "truncated-half",
        "truncated-end", "billion-laughs", "xxe-file", "xxe-parameter-entity", "xml-error-document",
        "rss-without-channel", "json", "a-path", "plain-text", "unescaped-markup", "undefined-entity", "binary",
    ],
)
async def test_rss_hostile_body_fails(body: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        await collect(body)


async def test_rss_huge_body_fails_fast() -> None:
    item = "<item><guid>g{}</guid><title>Item</title><description>" + "x" * 1000 + "</description></item>"
    body = rss("".join(item.format(i) for i in range(11_000)))
    assert len(body) > 10 * 1024 * 1024

    started = time.monotonic()
    with pytest.raises(SourceError, match="over the 10485760-byte limit"):
        await collect(body)
    assert time.monotonic() - started < 1.0


async def test_rss_large_feed_parses() -> None:
    body = rss("".join(f"<item><guid>g{i}</guid><title>Item {i}</title></item>" for i in range(2000)))

    records = await collect(body)

    assert len(records) == 2000
    assert (records[-1].external_id, records[-1].title) == ("g1999", "Item 1999")


async def test_rss_max_bytes_option() -> None:
    with pytest.raises(SourceError, match="over the 100-byte limit"):
        await collect(FULL_FEED, max_bytes=100)
