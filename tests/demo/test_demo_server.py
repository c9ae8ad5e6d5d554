"""The demo council system: ModernGov's shapes, the fixed Health and Wellbeing Board meeting, and serving them."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from lxml import etree
from lxml import html as lxml_html
from pypdf import PdfReader

from notifier.demo import DEMO_COUNCILS, DemoCouncils, start_demo_server
from notifier.demo.data import Document
from notifier.demo.formats import word_html
from notifier.demo.reports import report_pdf
from notifier.demo.setup import demo_source_options
from notifier.documents.extract import extract
from notifier.sources.moderngov import DEFAULT_DAYS_BACK
from tests.demo.helpers import HWB_SUBSTANTIVE_ITEMS, Clock, css, get_html, get_xml, meetings_listed, tags, text, words

HWB = "/leicestershire/mgWebService.asmx/GetMeeting?lMeetingId=7581"

# Element layouts of the recorded ModernGov payloads (tests/fixtures/moderngov/ in the shared fixtures).
COMMITTEE_FIELDS = ["committeeid", "committeetitle", "committeedeleted", "committeeexpired", "committeecategory"]
GETMEETINGS_COMMITTEE_FIELDS = ["committeeid", "committeetitle", "committeemeetingcount", "committeemeetings"]
GETMEETINGS_MEETING_FIELDS = ["meetingid", "meetingdate", "meetingstatus", "meetingtime", "iswebcast"]
MEETING_FIELDS = [
    "meetingid", "meetingdate", "meetingstatus", "isdisplayallowed", "meetingtime", "meetingactualstarttime",
    "meetingplannedfinishtime", "meetingactualfinishtime", "meetinglocation", "iswebcast", "agendaid",
    "agendapublished", "decisionpublished", "minutepublished", "meetingroom", "agendaitems", "attendees",
]
AGENDA_ITEM_FIELDS = [
    "agendaitemid", "agendaitemtitle", "agendatext", "actualmeetingdate", "agendaitemnumber", "agendaitemsubnumber",
    "fulldisplaynumberformat", "authorusername", "commentlabel1", "commenttext1", "commentlabel2", "commenttext2",
    "minutesnonemptyhtmlbody", "declarationcount", "iscallin", "iscomment", "isdecision", "isdecisionpublished",
    "isminutepublished", "ispubliccanspeak", "isrestricted", "isdisplayallowed", "meetingdate", "meetingtime",
    "minutesitemnumber", "minutesitemsubnumber", "preferreddate", "refertocommittee", "linkeddocuments",
]
LINKED_DOC_FIELDS = [
    "attachmentid", "title", "isurl", "url", "isrestricted", "restrictionsRef", "itemnum", "publicationdate",
    "meetingdate", "decisiondate", "committeetitle", "isdecisionattachment", "ownertitle",
]


# ---- the web service ------------------------------------------------------------------------------------------


async def test_committees_shape(client: TestClient[Any, Any]) -> None:
    response = await client.get("/leicestershire/mgWebService.asmx/GetCommittees?lCommitteeId=0")
    body = await response.read()
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<committees>\n  <committeescount> 6</')
    root = etree.fromstring(body)
    assert tags(root) == ["committeescount"] + ["committee"] * 6
    assert all(tags(c) == COMMITTEE_FIELDS for c in root.iter("committee"))
    assert [(text(c, "committeeid"), text(c, "committeetitle"), text(c, "committeeexpired"))
            for c in root.iter("committee")] == [
        ("135", "Cabinet", "False"),
        ("148", "Scrutiny Commission", "False"),
        ("1041", "Adults and Communities Overview and Scrutiny Committee", "False"),
        ("1040", "Children and Families Overview and Scrutiny Committee", "False"),
        ("1038", "Health and Wellbeing Board", "False"),
        ("1207", "COVID-19 Local Outbreak Engagement Board", "True"),
    ]


async def test_meetings_shape(client: TestClient[Any, Any]) -> None:
    root = await get_xml(
        client, "/leicestershire/mgWebService.asmx/GetMeetings?lCommitteeId=148&sFromDate=01/01/2026&sToDate=31/03/2026"
    )
    assert root.tag == "getmeetings"
    assert tags(root) == ["meetingscount", "committeescount", "committee"]
    assert root.findtext("meetingscount") == " 2"
    committee = root.find("committee")
    assert committee is not None
    assert tags(committee) == GETMEETINGS_COMMITTEE_FIELDS
    assert committee.findtext("committeemeetingcount") == " 2"
    assert all(tags(m) == GETMEETINGS_MEETING_FIELDS for m in root.iter("meeting"))
    assert meetings_listed(root) == [
        ("7598", "04/02/2026", "10.00 am", "Confirmed"),
        ("7612", "11/03/2026", "10.00 am", "Confirmed"),
    ]


@pytest.mark.parametrize(
    ("council", "committee", "start", "end", "expected"),
    [
        ("leicestershire", 1038, "01/12/2025", "31/12/2025", ["7581"]),
        ("leicestershire", 1038, "05/12/2025", "31/12/2025", []),
        ("leicestershire", 148, "02/03/2026", "31/03/2026", ["7612"]),
        ("leicestershire", 148, "04/02/2026", "04/02/2026", ["7598"]),
        ("leicestershire", 148, "2026-02-04", "2026-03-11", ["7598", "7612"]),
        ("leicestershire", 0, "09/03/2026", "09/03/2026", ["7618"]),
        ("leicester", 528, "01/02/2026", "31/03/2026", ["13897", "13902"]),
        ("rutland", 234, "01/03/2026", "31/03/2026", ["3341"]),
        ("rutland", 999, "01/01/2020", "31/12/2030", []),
    ],
)
async def test_meetings_window_filter(
    client: TestClient[Any, Any], council: str, committee: int, start: str, end: str, expected: list[str]
) -> None:
    root = await get_xml(
        client, f"/{council}/mgWebService.asmx/GetMeetings?lCommitteeId={committee}&sFromDate={start}&sToDate={end}"
    )
    assert [m[0] for m in meetings_listed(root)] == expected
    assert root.findtext("meetingscount") == f" {len(expected)}"


async def test_meetings_unknown_committee_empty(client: TestClient[Any, Any]) -> None:
    response = await client.get(
        "/rutland/mgWebService.asmx/GetMeetings?lCommitteeId=999&sFromDate=01/01/2026&sToDate=31/12/2026"
    )
    assert await response.text() == (
        '<?xml version="1.0" encoding="utf-8"?>\n<getmeetings>\n  <meetingscount> 0</meetingscount>\n'
        "  <committeescount> 0</committeescount>\n</getmeetings>\n"
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("GetMeetings?lCommitteeId=148&sFromDate=01/01/2026", "Missing parameter: sToDate."),
        ("GetMeetings?lCommitteeId=148&sFromDate=yesterday&sToDate=01/01/2026", "not recognized as a valid DateTime"),
        ("GetMeeting?lMeetingId=abc", "Cannot convert abc to System.Int32."),
        ("GetMeeting", "Missing parameter: lMeetingId."),
    ],
)
async def test_web_service_bad_parameters_error(client: TestClient[Any, Any], path: str, message: str) -> None:
    response = await client.get(f"/leicestershire/mgWebService.asmx/{path}")
    assert response.status == 500
    assert response.content_type == "text/plain"
    assert message in await response.text()


async def test_meeting_hwb_4_december_2025(client: TestClient[Any, Any]) -> None:
    response = await client.get(HWB)
    body = await response.read()
    root = etree.fromstring(body)
    assert tags(root) == MEETING_FIELDS
    assert [text(root, t) for t in ("meetingid", "meetingdate", "meetingtime", "meetingstatus", "meetinglocation")] == [
        "7581", "04/12/2025", "2.00 pm", "Confirmed", "Sparkenhoe Committee Room, County Hall, Glenfield",
    ]
    assert [text(root, t) for t in ("agendapublished", "minutepublished", "decisionpublished")] == [
        "True", "True", "False",
    ]
    assert root.findtext("meetingactualstarttime") == "\n  "
    items = list(root.iter("agendaitem"))
    assert all(tags(item) == AGENDA_ITEM_FIELDS for item in items)
    assert [(text(i, "fulldisplaynumberformat"), text(i, "agendaitemtitle")) for i in items] == [
        ("1.", "Minutes of the previous meeting"),
        ("2.", "Declarations of interest"),
        *[(f"{n}.", title) for n, title in enumerate(HWB_SUBSTANTIVE_ITEMS, start=3)],
        ("10.", "Date of next meeting"),
    ]
    assert all(text(i, "isminutepublished") == "True" and text(i, "minutesnonemptyhtmlbody") for i in items)
    documents = [
        (text(d, "attachmentid"), text(d, "title"), text(d, "url"), text(d, "publicationdate"), text(d, "ownertitle"))
        for d in root.iter("linkeddoc")
    ]
    base = str(client.make_url("/leicestershire"))
    assert documents == [
        ("191470", "Minutes , 25/09/2025 Health and Wellbeing Board", f"{base}/mgConvert2PDF.aspx?ID=191470",
         "26/11/2025", "Minutes of the previous meeting"),
        ("191471", "Joint Health and Wellbeing Strategy review report", f"{base}/mgConvert2PDF.aspx?ID=191471",
         "26/11/2025", HWB_SUBSTANTIVE_ITEMS[0]),
        ("191472", "SEND Alliance update", f"{base}/mgConvert2PDF.aspx?ID=191472", "26/11/2025",
         HWB_SUBSTANTIVE_ITEMS[1]),
        ("191473", "Pandemic planning report", f"{base}/mgConvert2PDF.aspx?ID=191473", "26/11/2025",
         HWB_SUBSTANTIVE_ITEMS[2]),
        ("191474", "Dementia Strategy progress report", f"{base}/mgConvert2PDF.aspx?ID=191474", "26/11/2025",
         HWB_SUBSTANTIVE_ITEMS[3]),
        ("191475", "Better Care Fund Q2 report", f"{base}/mgConvert2PDF.aspx?ID=191475", "26/11/2025",
         HWB_SUBSTANTIVE_ITEMS[6]),
    ]
    assert all(tags(d) == LINKED_DOC_FIELDS for d in root.iter("linkeddoc"))
    # Agenda text is Word HTML, escaped once in the XML, hard-wrapped as Word writes it.
    assert b'<agendatext>&lt;div class="WordSection1"&gt;\n&lt;p class="MsoNormal"&gt;&lt;span style=""&gt;' in body
    dementia = lxml_html.fromstring(items[5].findtext("agendatext") or "")
    assert words(dementia.text_content()).startswith(
        "The Board will receive a progress report on the delivery of the Leicester, Leicestershire and Rutland "
        "Joint Living Well with Dementia Strategy 2024-2028"
    )


async def test_meeting_titles_escaped_twice(client: TestClient[Any, Any]) -> None:
    response = await client.get("/leicester/mgWebService.asmx/GetMeeting?lMeetingId=13881")
    body = await response.read()
    assert b"<agendaitemtitle>Director of Public Health&amp;#39;s Annual Report</agendaitemtitle>" in body
    assert b"<title>Director of Public Health&amp;#39;s Annual Report</title>" in body


async def test_meeting_unknown_id_empty(client: TestClient[Any, Any]) -> None:
    response = await client.get("/leicestershire/mgWebService.asmx/GetMeeting?lMeetingId=999999")
    assert response.status == 200
    assert await response.text() == '<?xml version="1.0" encoding="utf-8"?>\n<meeting>\n</meeting>\n'


async def test_meeting_without_agenda_empty_items(client: TestClient[Any, Any]) -> None:
    root = await get_xml(client, "/leicestershire/mgWebService.asmx/GetMeeting?lMeetingId=7618")
    assert tags(root) == MEETING_FIELDS
    assert text(root, "agendapublished") == "False"
    assert list(root.iter("agendaitem")) == []


async def test_paths_and_parameters_case_insensitive(client: TestClient[Any, Any]) -> None:
    root = await get_xml(client, "/leicestershire/MGWEBSERVICE.ASMX/getmeeting?LMEETINGID=7581")
    assert text(root, "meetingdate") == "04/12/2025"


@pytest.mark.parametrize(
    "path",
    ["/lincolnshire/mgWebService.asmx/GetCommittees", "/leicestershire/mgNoSuchPage.aspx",
     "/leicestershire/ieDecisionDetails.aspx?ID=1", "/leicestershire/ieListDocuments.aspx?CId=1038&MId=1",
     "/leicestershire/mgConvert2PDF.aspx?ID=1"],
)
async def test_unknown_things_not_found(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path)
    assert response.status == 404


# ---- pages and documents --------------------------------------------------------------------------------------


async def test_meeting_page_hwb_4_december_2025(client: TestClient[Any, Any]) -> None:
    page = await get_html(client, "/leicestershire/ieListDocuments.aspx?CId=1038&MId=7581")
    assert words(css(page, "h1.mgMainTitleTxt")[0].text_content()) == "Agenda and minutes"
    assert words(css(page, "h2.mgSubTitleTxt")[0].text_content()) == (
        "Health and Wellbeing Board - Thursday, 4th December, 2025 2.00 pm"
    )
    papers = [(a.get("href"), words(a.text_content())) for a in css(page, "ul.mgActionList a")]
    assert [(href, title.split(" PDF ")[0]) for href, title in papers] == [
        ("mgConvert2PDF.aspx?ID=191476", "Agenda frontsheet 04th-Dec-2025 14.00 Health and Wellbeing Board"),
        ("mgConvert2PDF.aspx?ID=191477", "Public reports pack 04th-Dec-2025 14.00 Health and Wellbeing Board"),
        ("mgConvert2PDF.aspx?ID=192318", "Printed minutes 04th-Dec-2025 14.00 Health and Wellbeing Board"),
    ]
    numbered = [words(p.text_content()) for p in css(page, "p.mgAiTitleTxt")]
    assert numbered[0::2] == [f"{n}." for n in range(1, 11)]
    assert numbered[1::2][2:9] == HWB_SUBSTANTIVE_ITEMS
    assert len(css(page, "ul.mgBulletList a")) == 6


@pytest.mark.parametrize(
    "path",
    ["/leicestershire/mgConvert2PDF.aspx?ID=191474",
     "/leicestershire/documents/s191474/Dementia Strategy progress report.pdf"],
)
async def test_document_pdf_valid(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "application/pdf"
    body = await response.read()
    reader = PdfReader(io.BytesIO(body), strict=True)  # a well-formed file, cross-reference table and all
    assert reader.metadata is not None and reader.metadata.title == "Dementia Strategy progress report"
    # A paper of four numbered pages whose last one says what its title does not.
    pages = extract(body).pages
    assert pages[0].split("\n")[:4] == [
        "Dementia Strategy progress report", "", "Leicestershire County Council", "Published 26/11/2025"]
    assert [page.endswith(f"Page {n} of 4") for n, page in enumerate(pages, 1)] == [True] * 4
    assert [("respite centre" in page) for page in pages] == [False, False, False, True]
    # the same paper each time: the service downloads a document again only when its bytes change
    assert await (await client.get(path)).read() == body


def test_report_pdf_writes_what_its_font_cannot_show_plainly() -> None:
    doc = Document(1, "Report (draft) \\ 2026 \u2013 the council\u2019s \u201cplan\u201d \u2192", date(2026, 1, 5), 10)
    [cover, *_] = extract(report_pdf(doc, "Rutland County Council", ())).pages
    assert cover.startswith("Report (draft) \\ 2026 - the council's \"plan\" ?\n")


@pytest.mark.parametrize(
    ("paragraphs", "span", "expected"),
    [
        (["Short & plain."], True,
         '<div class="WordSection1">\n<p class="MsoNormal"><span style="">Short &amp; plain.</span></p>\n</div>\n'),
        (["To approve as a correct record the minutes of the meeting held on 25 November 2025."], False,
         '<div class="WordSection1">\n<p class="MsoNormal">To approve as a correct record the minutes of the\n'
         "meeting held on 25 November 2025.</p>\n</div>\n"),
    ],
)
def test_word_html_wraps_outside_tags(paragraphs: list[str], span: bool, expected: str) -> None:
    assert word_html(paragraphs, span=span) == expected


async def test_decisions_register_shape(client: TestClient[Any, Any]) -> None:
    page = await get_html(client, "/leicestershire/mgDelegatedDecisions.aspx?XXR=0&ACT=Find&DS=2")
    table = css(page, "table.mgTabTable")[0]
    assert words(css(table, "caption.mgSectionTitle")[0].text_content()) == "Decisions published"
    assert [th.get("abbr") for th in css(table, "thead th")] == ["Title", "Published", "Applies", "Call-ins"]
    rows = css(table, "tbody tr")
    assert all(len(css(row, "td.mgMainTxt")) == 4 for row in rows)
    assert [(css(row, "a")[0].get("href"), words(css(row, "td")[1].text_content())) for row in rows] == [
        ("mgIssueHistoryHome.aspx?IId=6640&Opt=0", "27/02/2026"),
        ("ieDecisionDetails.aspx?ID=5831", "20/02/2026"),
        ("ieDecisionDetails.aspx?ID=5830", "04/02/2026"),
    ]
    raw = await (await client.get("/leicestershire/mgDelegatedDecisions.aspx")).text()
    assert '<span  class="mgHide" > ref&#58; 5830</span></a>' in raw
    assert ">04&#47;02&#47;2026</td>" in raw


@pytest.mark.parametrize(
    ("dr", "expected"),
    [
        ("01%2f02%2f2026-10%2f02%2f2026", ["5830"]),
        ("15/02/2026-02/03/2026", ["6640", "5831"]),
        ("04/02/2026-20/02/2026", ["5831", "5830"]),
        ("01/01/2025-31/01/2026", []),
        ("not-a-range", ["6640", "5831", "5830"]),
    ],
)
async def test_decisions_register_window(client: TestClient[Any, Any], dr: str, expected: list[str]) -> None:
    page = await get_html(client, f"/leicestershire/mgDelegatedDecisions.aspx?XXR=0&DR={dr}&ACT=Find&DS=2")
    links = [a.get("href") for a in css(page, "table.mgTabTable tbody a")]
    assert [re.sub(r"\D", "", link.split("=", 1)[1].split("&")[0]) for link in links] == expected


async def test_officer_decisions_list_shape(client: TestClient[Any, Any]) -> None:
    page = await get_html(client, "/leicester/mgListOfficerDecisions.aspx?XXR=0&FULL=1&DR=01/01/2026-02/03/2026")
    assert [th.get("abbr") for th in css(page, "table.mgTabTable thead th")] == ["Title", "Published"]
    rows = [[words(td.text_content()) for td in css(tr, "td")] for tr in css(page, "tbody tr")]
    assert rows == [
        ["Homelessness Prevention: Supported Accommodation Contract - Aylestone", "18/02/2026"],
        ["Residents' Parking Scheme - Aylestone", "30/01/2026"],
    ]


async def test_decision_detail_shape(client: TestClient[Any, Any]) -> None:
    page = await get_html(client, "/leicestershire/ieDecisionDetails.aspx?ID=5830")
    assert words(css(page, "h2.mgSubTitleTxt")[0].text_content()) == (
        "Traffic Regulation Order: Waiting Restrictions in Coalville"
    )
    labels = {
        words(span.text_content()): words(span.getparent().text_content())[len(words(span.text_content())):].strip()
        for span in css(page, "span.mgLabel")
    }
    assert labels == {
        "Decision Maker:": "Director of Environment and Transport",
        "Decision status:": "Recommendations Approved",
        "Is Key decision?:": "No",
        "Is subject to call in?:": "No",
        "Publication date:": "04/02/2026",
        "Date of decision:": "03/02/2026",
    }
    assert [words(h.text_content()) for h in css(page, "h3.mgSubSubTitleTxt")] == ["Purpose:", "Decision:"]
    documents = css(page, "ul.mgBulletList a")
    assert [d.get("href") for d in documents] == [
        "documents/s193426/Officer decision notice - Traffic Regulation Order Waiting Restrictions in Coalville.pdf"
    ]


async def test_rss_shape(client: TestClient[Any, Any]) -> None:
    response = await client.get("/leicestershire/mgRss.aspx?XXR=0")
    assert response.status == 200
    assert response.content_type == "application/rss+xml"
    root = etree.fromstring(await response.read())
    assert root.tag == "rss"
    assert root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None
    assert channel.findtext("title") == "Leicestershire County Council - What's new"
    items = channel.findall("item")
    assert all(tags(item) == ["title", "link", "description", "pubDate", "guid"] for item in items)
    base = str(client.make_url("/leicestershire"))
    assert len(items) == 10
    assert [(item.findtext("title"), item.findtext("description"), item.findtext("pubDate")) for item in items[:2]] == [
        ("Adults and Communities Overview and Scrutiny Committee - Monday, 16th February, 2026 2.00 pm",
         "Minutes published", "Tue, 24 Feb 2026 12:00:00 GMT"),
        ("Decision: Award of Grants to Dementia Support Groups - Coalville",
         "Decision published by Director of Adults and Communities", "Fri, 20 Feb 2026 11:00:00 GMT"),
    ]
    published = [parsedate_to_datetime(item.findtext("pubDate") or "") for item in items]
    assert published == sorted(published, reverse=True)
    assert published[-1] == datetime(2025, 11, 26, 9, 0, tzinfo=UTC)
    assert all((item.findtext("link") or "").startswith(f"{base}/") for item in items)


# ---- serving --------------------------------------------------------------------------------------------------


def test_demo_councils_listed() -> None:
    assert DEMO_COUNCILS == [
        ("leicestershire", "Leicestershire County Council", "East Midlands", "England", "/leicestershire"),
        ("leicester", "Leicester City Council", "East Midlands", "England", "/leicester"),
        ("rutland", "Rutland County Council", "East Midlands", "England", "/rutland"),
    ]


async def test_index_lists_councils(client: TestClient[Any, Any], clock: Clock) -> None:
    clock.advance(1)
    page = await get_html(client, "/")
    origin = str(client.make_url("/")).rstrip("/")
    assert [words(code.text_content()) for code in css(page, "code")] == [
        f"{origin}/leicestershire", f"{origin}/leicester", f"{origin}/rutland",
    ]
    assert [words(li.text_content()) for li in css(page, "ul")[1]] == [
        "09:03 Health and Wellbeing Board, 16 April 2026 2.00 pm scheduled",
    ]


async def test_start_demo_server_real_socket(councils: DemoCouncils) -> None:
    runner, base = await start_demo_server("127.0.0.1", 0, councils)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
        async with aiohttp.ClientSession() as session:
            for info in DEMO_COUNCILS:
                async with session.get(f"{base}{info.path}/mgWebService.asmx/GetCommittees?lCommitteeId=0") as r:
                    assert r.status == 200
                    assert etree.fromstring(await r.read()).tag == "committees"
    finally:
        await runner.cleanup()


def test_demo_sources_look_back_far_enough_for_the_fixed_meeting() -> None:
    # The Health and Wellbeing Board of 4 December 2025 stays in the polled window however long ago that was.
    year_on = demo_source_options("leicestershire", date(2026, 12, 4))
    assert year_on == {"detail_refresh_minutes": 1, "seconds_per_request": 1, "days_back": 366}
    assert date(2026, 12, 4) - timedelta(days=year_on["days_back"]) <= date(2025, 12, 4)
    # ... and never shorter than the usual window; councils with no fixed meetings keep the default.
    assert demo_source_options("leicestershire", date(2025, 12, 10))["days_back"] == DEFAULT_DAYS_BACK
    assert demo_source_options("rutland", date(2026, 12, 4)) == {"detail_refresh_minutes": 1, "seconds_per_request": 1}
