"""Email composition: words, highlighting, the four templates in both parts, and the MIME message."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, date, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import aiosmtplib.email
import pytest
from lxml import etree, html

from notifier.delivery.email.render import (
    CommitteeGroup,
    CouncilGroup,
    EntryView,
    Following,
    Links,
    Rendered,
    SourceWarning,
    WeeklyCouncil,
    build_message,
    describe_event,
    documents_from_changes,
    email_environment,
    format_range,
    format_when,
    group_entries,
    render_alert,
    render_confirm,
    render_digest,
    render_weekly,
)
from tests.servers import SmtpServer

BASE = "https://alerts.example.org"
LINKS = Links(
    manage=f"{BASE}/manage/TOKEN-M",
    unsubscribe=f"{BASE}/unsubscribe/TOKEN-U",
    unsubscribe_subscription=f"{BASE}/unsubscribe/TOKEN-S",
)
REASON = 'dementia OR "mental health" in East Midlands councils'
FOLLOWING = [Following(REASON, "immediate")]
LEICS = "Leicestershire County Council"
RUTLAND = "Rutland County Council"
HWB = "Health and Wellbeing Board"
MEETING_URL = "https://politics.leics.gov.uk/ieListDocuments.aspx?CId=1038&MId=7424"
AGENDA_URL = "https://politics.leics.gov.uk/documents/g7424/Public%20reports%20pack%2011th-Dec-2025%2010.00.pdf"
STRATEGY_URL = "https://politics.leics.gov.uk/documents/s190312/Dementia%20Strategy.pdf"
DECISION_URL = "https://politics.leics.gov.uk/ieDecisionDetails.aspx?ID=9021"
RUTLAND_URL = "https://rutland.moderngov.co.uk/ieListDocuments.aspx?CId=133&MId=3301"
MENTAL = "mental health"


def rescheduled() -> EntryView:
    changes = {"starts_at": ["2025-12-04T14:00:00+00:00", "2025-12-11T10:00:00+00:00"]}
    return EntryView(
        event_type="meeting.rescheduled",
        council=LEICS,
        committee=HWB,
        title=HWB,
        what=describe_event("meeting.rescheduled", changes),
        summary="Health and Wellbeing Board, 4 Dec 2025 14:00 moved to 11 Dec 2025 10:00",
        url=MEETING_URL,
        when=datetime(2025, 12, 11, 10, 0, tzinfo=UTC),
        matched_terms=("dementia",),
        excerpt="Update on the Leicestershire joint dementia strategy and the Better Care Fund.",
    )


def agenda() -> EntryView:
    changes = {
        "agenda_published": [None, True],
        "documents": [[], [
            {"title": "Agenda frontsheet and reports pack", "url": AGENDA_URL},
            {"title": "Joint Dementia Strategy 2025-2030", "url": STRATEGY_URL},
        ]],
    }
    return EntryView(
        event_type="agenda.published",
        council=LEICS,
        committee=HWB,
        title=HWB,
        what=describe_event("agenda.published", changes),
        summary="Health and Wellbeing Board, 11 Dec 2025 10:00: agenda published (2 documents)",
        url=MEETING_URL,
        when=datetime(2025, 12, 11, 10, 0, tzinfo=UTC),
        documents=documents_from_changes(changes),
        matched_terms=("dementia", '"mental health"'),
        excerpt="Item 6: Mental Health Transformation Programme. Item 7: Joint Dementia Strategy 2025-2030.",
    )


def decision() -> EntryView:
    return EntryView(
        event_type="decision.published",
        council=LEICS,
        committee="Cabinet",
        title="Mental Health Support in Schools: Commissioning",
        what=describe_event("decision.published", {"status": [None, "Recommendations Approved"]}),
        summary="Decision: Mental Health Support in Schools: Commissioning (Recommendations Approved)",
        url=DECISION_URL,
        when=datetime(2025, 12, 9, 14, 0, tzinfo=UTC),
        matched_terms=(MENTAL,),
    )


def cancelled() -> EntryView:
    return EntryView(
        event_type="meeting.cancelled",
        council=RUTLAND,
        committee="Adults and Health Scrutiny Committee",
        title="Adults and Health Scrutiny Committee",
        what=describe_event("meeting.cancelled", {"status": ["confirmed", "cancelled"]}),
        summary="Adults and Health Scrutiny Committee, 9 Dec 2025 19:00: meeting cancelled",
        url=RUTLAND_URL,
        when=datetime(2025, 12, 9, 19, 0, tzinfo=UTC),
    )


WARNING = SourceWarning(RUTLAND, datetime(2025, 12, 3, 9, 0, tzinfo=UTC), "HTTP 503 from rutland.moderngov.co.uk")


def alert() -> Rendered:
    return render_alert(
        [rescheduled(), agenda(), decision(), cancelled()], links=LINKS, following=FOLLOWING, warnings=[WARNING]
    )


def digest() -> Rendered:
    return render_digest(
        [agenda(), decision(), cancelled()], day=date(2025, 12, 4), links=LINKS, following=FOLLOWING,
        warnings=[WARNING],
    )


def weekly() -> Rendered:
    leics = WeeklyCouncil(
        LEICS,
        upcoming=[rescheduled()],
        held=[EntryView("meeting.scheduled", LEICS, "Cabinet", committee="Cabinet",
                        when=datetime(2025, 12, 2, 14, 0, tzinfo=UTC), url=DECISION_URL)],
        decisions=[decision()],
        documents=[EntryView("document.published", LEICS, "Joint Dementia Strategy 2025-2030", committee=HWB,
                             url=STRATEGY_URL, matched_terms=("dementia",))],
        url="https://politics.leics.gov.uk/",
    )
    rutland = WeeklyCouncil(RUTLAND, warning=WARNING)
    return render_weekly(
        [leics, rutland], week_start=date(2025, 12, 1), links=LINKS,
        following=[Following(f"everything at {LEICS}", "weekly"), Following(f"everything at {RUTLAND}", "weekly")],
    )


def confirm() -> Rendered:
    return render_confirm(
        confirm_url=f"{BASE}/confirm/TOKEN-C", following=[Following(REASON, "daily")], expires_days=7,
    )


ALL_KINDS = {"alert": alert, "digest": digest, "weekly": weekly, "confirm": confirm}
LIST_KINDS = ("alert", "digest", "weekly")


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def tree(rendered: Rendered) -> Any:
    return html.document_fromstring(rendered.html)


# ---- words -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "changes", "expected"),
    [
        ("meeting.rescheduled", {"starts_at": ["2025-12-04T14:00:00+00:00", "2025-12-11T10:00:00+00:00"]},
         "moved from 4 Dec 14:00 to 11 Dec 10:00"),
        # British Summer Time: 13:00 UTC is 14:00 in London.
        ("meeting.rescheduled", {"starts_at": ["2025-06-05T13:00:00+00:00", "2025-06-12T09:00:00Z"]},
         "moved from 5 Jun 14:00 to 12 Jun 10:00"),
        ("meeting.rescheduled", {"starts_at": ["2025-12-30T14:00:00+00:00", "2026-01-06T10:00:00+00:00"]},
         "moved from 30 Dec 2025 14:00 to 6 Jan 2026 10:00"),
        ("meeting.rescheduled", {"starts_at": ["2025-12-04T00:00:00+00:00", "2025-12-11T00:00:00+00:00"]},
         "moved from 4 Dec to 11 Dec"),
        ("meeting.rescheduled",
         {"starts_at": ["2025-12-04T10:00:00+00:00", "2025-12-11T10:00:00+00:00"], "time_known": [False, True]},
         "moved from 4 Dec to 11 Dec 10:00"),
        ("meeting.rescheduled", {"starts_at": [None, "2025-12-11T10:00:00+00:00"]}, "moved to 11 Dec 10:00"),
        ("meeting.cancelled", {"status": ["confirmed", "cancelled"]}, "cancelled"),
        ("meeting.cancelled", {"status": [None, "postponed"]}, "postponed"),
        ("meeting.scheduled", {"starts_at": [None, "2025-12-11T10:00:00+00:00"]}, "meeting scheduled"),
        ("meeting.updated", {"location": ["County Hall", "Room 1, County Hall, Glenfield"]},
         "venue changed to Room 1, County Hall, Glenfield"),
        ("meeting.updated", {"status": ["cancelled", "confirmed"]}, "reinstated"),
        ("meeting.updated", {"title": ["Health Board", HWB]}, "renamed (was Health Board)"),
        ("meeting.updated", {"body": ["old", "new"]}, "agenda updated"),
        ("meeting.updated", {"location": ["A", "B"], "body": ["x", "y"]}, "venue and agenda changed"),
        ("agenda.published", {"agenda_published": [None, True]}, "agenda published"),
        ("minutes.published", {"minutes_published": [False, True]}, "minutes published"),
        ("document.published", {"title": [None, "Report"]}, "document published"),
        ("decision.published", {"status": [None, "Recommendations Approved"]},
         "decision published: Recommendations approved"),
        ("decision.published", {}, "decision published"),
        ("decision.updated", {"status": ["For Determination", "Call-in expired"]},
         "decision updated: now Call-in expired"),
        ("something.else", None, "updated"),
    ],
)
def test_describe_event_table(event_type: str, changes: dict[str, Any] | None, expected: str) -> None:
    assert describe_event(event_type, changes) == expected


@pytest.mark.parametrize(
    ("value", "time_known", "expected"),
    [
        (datetime(2025, 12, 4, 14, 0, tzinfo=UTC), True, "Thu 4 Dec 2025, 14:00"),
        (datetime(2025, 6, 5, 13, 0, tzinfo=UTC), True, "Thu 5 Jun 2025, 14:00"),
        (datetime(2025, 12, 4, 9, 30, tzinfo=timezone(timedelta(hours=-5))), True, "Thu 4 Dec 2025, 14:30"),
        (datetime(2025, 12, 4, 14, 0, tzinfo=UTC), False, "Thu 4 Dec 2025"),
        (date(2025, 12, 11), True, "Thu 11 Dec 2025"),
        ("Thursday afternoon", True, "Thursday afternoon"),
        (None, True, ""),
    ],
)
def test_format_when_table(value: Any, time_known: bool, expected: str) -> None:
    assert format_when(value, "Europe/London", time_known=time_known) == expected


def test_format_when_naive_datetime_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_when(datetime(2025, 12, 4, 14, 0), "Europe/London")


def test_format_when_unknown_zone_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        format_when(datetime(2025, 12, 4, 14, 0, tzinfo=UTC), "Europe/Leicester")


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (date(2025, 12, 1), date(2025, 12, 7), "1\u20137 Dec 2025"),
        (date(2025, 11, 24), date(2025, 11, 30), "24\u201330 Nov 2025"),
        (date(2025, 11, 27), date(2025, 12, 3), "27 Nov \u2013 3 Dec 2025"),
        (date(2025, 12, 29), date(2026, 1, 4), "29 Dec 2025 \u2013 4 Jan 2026"),
    ],
)
def test_format_range_table(first: date, last: date, expected: str) -> None:
    assert format_range(first, last) == expected


def test_documents_from_changes_pairs() -> None:
    changes = {"documents": [[], [{"title": "Agenda", "url": AGENDA_URL}, {"title": None, "url": None}, "junk"]]}
    assert documents_from_changes(changes) == (("Agenda", AGENDA_URL), ("Document", ""))
    assert documents_from_changes({}) == ()


# ---- view model ------------------------------------------------------------------------------------------------------


def test_group_entries_by_council_then_committee_in_first_seen_order() -> None:
    a, b, c, d = rescheduled(), decision(), cancelled(), agenda()
    assert group_entries([a, b, c, d]) == (
        CouncilGroup(LEICS, (CommitteeGroup(HWB, (a, d)), CommitteeGroup("Cabinet", (b,)))),
        CouncilGroup(RUTLAND, (CommitteeGroup("Adults and Health Scrutiny Committee", (c,)),)),
    )


def test_entry_view_normalises_lists_and_refuses_naive_times() -> None:
    e = EntryView("document.published", LEICS, "Report", documents=[["Report", AGENDA_URL]],  # type: ignore[list-item]
                  matched_terms="dementia")
    assert e.documents == (("Report", AGENDA_URL),)
    assert e.matched_terms == ("dementia",)
    with pytest.raises(ValueError, match="naive"):
        EntryView("meeting.scheduled", LEICS, HWB, when=datetime(2025, 12, 4, 14, 0))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"manage": "", "unsubscribe": f"{BASE}/u"},
        {"manage": "javascript:alert(1)", "unsubscribe": f"{BASE}/u"},
        {"manage": f"{BASE}/m", "unsubscribe": "/unsubscribe/relative"},
        {"manage": f"{BASE}/m", "unsubscribe": f"{BASE}/u\r\nBcc: victim@example.com"},
        {"manage": f"{BASE}/m", "unsubscribe": f"{BASE}/u", "one_click": "mailto:unsubscribe@example.org"},
    ],
)
def test_links_refuse_bad_urls(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="Links"):
        Links(**kwargs)


# ---- rendering -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(ALL_KINDS))
def test_render_html_is_well_formed_and_self_contained(kind: str) -> None:
    rendered = ALL_KINDS[kind]()
    assert rendered.kind == kind
    # Strictly well-formed: it parses as XML, not only leniently as HTML.
    etree.fromstring(rendered.html.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))
    doc = tree(rendered)
    assert doc.xpath("//script | //img | //iframe | //form | //link | //object") == []
    assert doc.xpath("//@src | //@onload | //@onclick | //@background") == []
    assert doc.xpath('//meta[@name="color-scheme"]/@content') == ["light dark"]
    assert doc.xpath('//meta[@name="viewport"]/@content') == ["width=device-width, initial-scale=1"]
    assert doc.findtext(".//title") == rendered.subject
    style = doc.findtext(".//style")
    assert "@media (prefers-color-scheme: dark)" in style
    assert "url(" not in style and "@import" not in style
    assert "max-width:600px" in doc.xpath('//div[contains(@class, "container")]/@style')[0]
    for href in doc.xpath("//a/@href"):
        assert href.startswith("https://"), href


@pytest.mark.parametrize("kind", sorted(ALL_KINDS))
def test_render_text_wrapped_with_links_on_their_own_lines(kind: str) -> None:
    rendered = ALL_KINDS[kind]()
    for line in rendered.text.splitlines():
        if "https://" in line:
            assert re.fullmatch(r" *https://\S+", line), line
        else:
            assert len(line) <= 78, line
    assert rendered.text.endswith("\n") and "\n\n\n" not in rendered.text


def test_render_alert_text_tells_the_story() -> None:
    text = alert().text
    assert lines(text)[0] == "4 new updates from your council alerts"
    for expected in (
        LEICS, HWB, "Moved from 4 Dec 14:00 to 11 Dec 10:00", "When: Thu 11 Dec 2025, 10:00", "Agenda published",
        "- Agenda frontsheet and reports pack", AGENDA_URL, STRATEGY_URL,
        "Decision published: Recommendations approved",
        RUTLAND, "Cancelled", "When: Tue 9 Dec 2025, 19:00", MEETING_URL, DECISION_URL, RUTLAND_URL,
    ):
        assert expected in lines(text), expected
    assert text.index(f"{LEICS}\n===") < text.index(f"{RUTLAND}\n===")
    assert text.index(f"{HWB}\n---") < text.index("Cabinet\n---")


def test_render_alert_html_tells_the_story() -> None:
    doc = tree(alert())
    assert doc.findtext(".//h1") == "4 new updates from your council alerts"
    assert [h.text_content() for h in doc.iter("h2")] == [LEICS, RUTLAND]
    assert [h.text_content() for h in doc.iter("h3")] == [HWB, "Cabinet", "Adults and Health Scrutiny Committee"]
    body = doc.text_content()
    for expected in ("Moved from 4 Dec 14:00 to 11 Dec 10:00", "Meeting moved \u00b7 Thu 11 Dec 2025, 10:00",
                     "Decision published: Recommendations approved", "Meeting cancelled \u00b7 Tue 9 Dec 2025, 19:00"):
        assert expected in body, expected
    links = {a.text_content(): a.get("href") for a in doc.iter("a")}
    assert links["Agenda frontsheet and reports pack"] == AGENDA_URL
    assert links["Joint Dementia Strategy 2025-2030"] == STRATEGY_URL
    assert links["Mental Health Support in Schools: Commissioning"] == DECISION_URL
    assert links["Adults and Health Scrutiny Committee"] == RUTLAND_URL


def test_render_alert_subject_one_and_many() -> None:
    one = render_alert([rescheduled()], links=LINKS, following=FOLLOWING)
    assert one.subject == f"{LEICS}: Health and Wellbeing Board, 4 Dec 2025 14:00 moved to 11 Dec 2025 10:00"
    assert alert().subject == f"4 updates from {LEICS} and {RUTLAND}"
    third = EntryView("meeting.scheduled", "Leicester City Council", "Executive")
    assert render_alert([rescheduled(), cancelled(), third], links=LINKS, following=FOLLOWING).subject == (
        "3 updates from 3 councils"
    )


def test_render_alert_subject_is_one_clipped_line() -> None:
    hostile = EntryView("meeting.scheduled", LEICS, "x", summary="Line one\r\nBcc: victim@example.com " + "y" * 300)
    subject = render_alert([hostile], links=LINKS, following=FOLLOWING).subject
    assert "\n" not in subject and "\r" not in subject
    assert len(subject) == 150 and subject.endswith("\u2026")


def test_render_escapes_hostile_council_text() -> None:
    hostile = EntryView(
        "document.published", LEICS, "<script>alert('x')</script> Budget <b>2026</b>",
        what="document published", url="javascript:alert(document.cookie)",
        documents=[("<img src=x onerror=alert(1)>", "data:text/html,<script>alert(1)</script>")],
        excerpt='"><svg onload=alert(1)>',
    )
    rendered = render_alert([hostile], links=LINKS, following=FOLLOWING)
    doc = tree(rendered)
    assert doc.xpath("//script | //img | //svg | //b") == []
    assert doc.xpath("//@onerror | //@onload") == []
    body = doc.text_content()
    assert "<script>alert('x')</script> Budget <b>2026</b>" in body
    assert "<img src=x onerror=alert(1)>" in body
    assert all(href.startswith("https://alerts.example.org/") for href in doc.xpath("//a/@href"))
    # Plain text is not HTML: the title appears as written, but the unsafe links do not appear at all.
    assert "* <script>alert('x')</script> Budget <b>2026</b>" in rendered.text
    assert "javascript:" not in rendered.text and "data:text" not in rendered.text


def test_render_highlights_matched_terms() -> None:
    rendered = render_alert([agenda(), decision()], links=LINKS, following=FOLLOWING)
    marks = [m.text_content() for m in tree(rendered).iter("mark")]
    assert marks == [
        "Mental Health", "Dementia",  # the excerpt
        "Dementia",  # the strategy document's title
        "Mental Health",  # the decision's title
    ]
    assert "  Item 6: *Mental Health* Transformation Programme. Item 7: Joint *Dementia*" in rendered.text
    assert "  - Joint *Dementia* Strategy 2025-2030" in rendered.text
    assert "* *Mental Health* Support in Schools: Commissioning" in rendered.text
    assert "Matched: dementia, \"mental health\"" in lines(rendered.text)


@pytest.mark.parametrize("kind", ["alert", "digest", "weekly"])
def test_render_shows_source_warning(kind: str) -> None:
    rendered = ALL_KINDS[kind]()
    sentence = (f"It has been failing since Wed 3 Dec 2025, 09:00, so this email may be missing updates from "
                f"{RUTLAND}.")
    html_text = " ".join(tree(rendered).xpath('//div[contains(@class, "warning")]')[0].text_content().split())
    assert f"We cannot read {RUTLAND}\u2019s website at the moment." in html_text
    assert sentence in html_text
    assert "HTTP 503 from rutland.moderngov.co.uk" in html_text
    assert sentence in " ".join(rendered.text.split())


def test_render_without_warnings_has_no_warning_box() -> None:
    rendered = render_alert([rescheduled()], links=LINKS, following=FOLLOWING)
    assert tree(rendered).xpath('//div[contains(@class, "warning")]') == []
    assert "WARNING" not in rendered.text


@pytest.mark.parametrize("kind", LIST_KINDS)
def test_render_footer_says_why_and_links_out(kind: str) -> None:
    rendered = ALL_KINDS[kind]()
    doc = tree(rendered)
    hrefs = {a.text_content(): a.get("href") for a in doc.iter("a")}
    assert hrefs["Manage your alerts"] == LINKS.manage
    assert hrefs["Stop this alert"] == LINKS.unsubscribe_subscription
    assert hrefs["Unsubscribe from all"] == LINKS.unsubscribe
    assert "You get this email because you follow:" in doc.text_content()
    text_lines = lines(rendered.text)
    sig = rendered.text.splitlines().index("-- ")
    footer = text_lines[sig:]
    assert footer[footer.index("Manage your alerts:") + 1] == LINKS.manage
    assert footer[footer.index("Stop this alert:") + 1] == LINKS.unsubscribe_subscription
    assert footer[footer.index("Unsubscribe from all:") + 1] == LINKS.unsubscribe
    assert footer[1] == "You get this email because you follow:"


def test_render_footer_names_each_subscription_with_its_own_stop_link() -> None:
    following = [
        Following(REASON, "immediate", stop_url=f"{BASE}/unsubscribe/S1"),
        Following(f"everything at {RUTLAND}", "immediate", stop_url=f"{BASE}/unsubscribe/S2"),
    ]
    links = Links(manage=LINKS.manage, unsubscribe=LINKS.unsubscribe)
    rendered = render_alert([rescheduled(), cancelled()], links=links, following=following)
    items = [" ".join(li.text_content().split()) for li in tree(rendered).xpath('//div[contains(@class, "rule")]//li')]
    assert items == [
        f"{REASON} (by email as it happens) \u00b7 stop this one",
        f"everything at {RUTLAND} (by email as it happens) \u00b7 stop this one",
    ]
    assert "Stop this alert" not in rendered.text
    text_lines = lines(rendered.text)
    assert text_lines[text_lines.index(f"- everything at {RUTLAND} (by email as it happens)") + 2] == (
        f"{BASE}/unsubscribe/S2"
    )


def test_render_digest_subject_and_heading() -> None:
    rendered = digest()
    assert rendered.subject == "Your daily digest for Thu 4 Dec 2025: 3 updates"
    assert lines(rendered.text)[:2] == ["Your daily digest", "Thu 4 Dec 2025: 3 updates matching your alerts"]
    assert tree(rendered).findtext(".//h1") == "Your daily digest"


def test_render_weekly_groups_each_council_by_committee() -> None:
    rendered = weekly()
    assert rendered.subject == f"Weekly summary, 1\u20137 Dec 2025: {LEICS} and {RUTLAND}"
    doc = tree(rendered)
    assert [h.text_content() for h in doc.iter("h2")] == [LEICS, RUTLAND]
    assert doc.xpath("//h2/a/@href") == ["https://politics.leics.gov.uk/"]
    assert [h.text_content() for h in doc.iter("h3")] == [HWB, "Cabinet"]
    labels = [p.text_content() for p in doc.xpath('//p[contains(@style, "text-transform:uppercase")]')]
    assert labels == ["Coming up next week", "Documents published", "Meetings held", "Decisions made"]
    text = rendered.text
    assert "What happened 1\u20137 Dec 2025, and the meetings coming up 8\u201314 Dec 2025." in text
    hwb = text.index(f"{HWB}\n---")
    cabinet = text.index("Cabinet\n---")
    assert hwb < text.index("Coming up next week:") < text.index("Documents published:") < cabinet
    assert cabinet < text.index("Meetings held:") < text.index("Decisions made:")
    assert "When: Tue 2 Dec 2025, 14:00" in lines(text)
    assert f"We could not read anything from {RUTLAND} this week." in " ".join(text.split())
    assert "- everything at Rutland County Council (in a weekly summary)" in lines(text)


def test_render_weekly_quiet_council() -> None:
    rendered = render_weekly(
        [WeeklyCouncil(RUTLAND)], week_start=date(2025, 12, 1), links=LINKS, following=[f"everything at {RUTLAND}"]
    )
    sentence = f"Nothing new from {RUTLAND} this week, and no meetings listed for next week."
    assert sentence in " ".join(rendered.text.split())
    assert sentence in tree(rendered).text_content()
    assert tree(rendered).xpath("//h3") == []


def test_render_confirm_asks_once_and_explains() -> None:
    rendered = confirm()
    assert rendered.subject == "Confirm your email alerts from Council alerts"
    text = " ".join(rendered.text.split())
    for expected in (
        "Please confirm you want council alerts", f"- {REASON} (in a daily digest)", "This link expires in 7 days.",
        "If this wasn't you, ignore this email.",
    ):
        assert expected in text, expected
    assert f"{BASE}/confirm/TOKEN-C" in lines(rendered.text)
    doc = tree(rendered)
    assert doc.xpath('//a[contains(@class, "button")]/@href') == [f"{BASE}/confirm/TOKEN-C"]
    assert "This link expires in 7 days." in doc.text_content()
    assert "If this wasn\u2019t you, ignore this email." in doc.text_content()
    assert "unsubscribe" not in rendered.text.lower() and "unsubscribe" not in rendered.html.lower()


def test_render_confirm_one_day_is_singular() -> None:
    rendered = render_confirm(confirm_url=f"{BASE}/confirm/T", following=["planning in every council"], expires_days=1)
    assert "This link expires in 1 day." in " ".join(rendered.text.split())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: render_alert([], links=LINKS, following=FOLLOWING), "at least one entry"),
        (lambda: render_digest([], day=date(2025, 12, 4), links=LINKS, following=FOLLOWING), "at least one entry"),
        (lambda: render_weekly([], week_start=date(2025, 12, 1), links=LINKS, following=FOLLOWING), "one council"),
        (lambda: render_alert([rescheduled()], links=LINKS, following=[]), "what the subscriber follows"),
        (lambda: render_alert([rescheduled()], links=LINKS, following=FOLLOWING, timezone="Mars/Olympus"),
         "unknown time zone"),
        (lambda: render_confirm(confirm_url="ftp://x/confirm", following=[REASON], expires_days=7), "confirm_url"),
        (lambda: render_confirm(confirm_url=f"{BASE}/c", following=[REASON], expires_days=0), "expires_days"),
    ],
)
def test_render_refuses_what_cannot_be_sent(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_render_in_the_subscribers_time_zone() -> None:
    rendered = render_alert([rescheduled()], links=LINKS, following=FOLLOWING, timezone="America/New_York")
    assert "When: Thu 11 Dec 2025, 05:00" in lines(rendered.text)


def test_email_environment_escapes_html_but_not_text(tmp_path: Path) -> None:
    (tmp_path / "t.html").write_text("{{ v }}")
    (tmp_path / "t.txt").write_text("{{ v }}")
    env = email_environment(tmp_path)
    assert env.get_template("t.html").render(v="<a & b>") == "&lt;a &amp; b&gt;"
    assert env.get_template("t.txt").render(v="<a & b>") == "<a & b>"


def test_email_environment_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        email_environment(tmp_path / "nowhere")


def test_email_environment_default_finds_the_templates() -> None:
    env = email_environment()
    names = set(env.list_templates())
    assert {f"{k}.{ext}" for k in ALL_KINDS for ext in ("html", "txt")} <= names


# ---- the message -----------------------------------------------------------------------------------------------------

LONG_TOKEN = "WzQyLDEwN10.aZ3Kk0.x7Qm-8vJ2pLwRk3nT5yHcE1uGd9sBf4oZq6iXaVtNmYe0rUhWlPjKg"


def message(rendered: Rendered | None = None, **overrides: Any) -> EmailMessage:
    kwargs: dict[str, Any] = {
        "to": "jane.doe@example.net",
        "mail_from": "Council alerts <alerts@alerts.example.org>",
        "links": Links(manage=LINKS.manage, unsubscribe=f"{BASE}/unsubscribe/{LONG_TOKEN}"),
        "list_id": "Council alerts <alerts.example.org>",
        "message_id_domain": "alerts.example.org",
        "now": datetime(2025, 12, 4, 14, 5, 9, tzinfo=UTC),
    }
    kwargs.update(overrides)
    return build_message(rendered or alert(), **kwargs)


def wire(msg: EmailMessage) -> EmailMessage:
    """The message as a mail server receives it (flattened the way aiosmtplib sends it) and parsed back."""
    raw = aiosmtplib.email.flatten_message(msg)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_build_message_headers() -> None:
    msg = wire(message(return_path="bounces+amFuZS5kb2VAZXhhbXBsZS5uZXQ.L1ar2IWK@alerts.example.org"))
    assert msg["List-Unsubscribe"] == f"<{BASE}/unsubscribe/{LONG_TOKEN}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] == "Council alerts <alerts.example.org>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"] == "Thu, 04 Dec 2025 14:05:09 +0000"
    assert msg["From"] == "Council alerts <alerts@alerts.example.org>"
    assert msg["To"] == "jane.doe@example.net"
    assert msg["Subject"] == f"4 updates from {LEICS} and {RUTLAND}"
    assert msg["Return-Path"] == "<bounces+amFuZS5kb2VAZXhhbXBsZS5uZXQ.L1ar2IWK@alerts.example.org>"
    assert re.fullmatch(r"<[0-9a-f]{32}@alerts\.example\.org>", msg["Message-ID"])


def test_build_message_parts_text_then_html_in_utf8() -> None:
    rendered = render_alert(
        [EntryView("meeting.scheduled", "Ynys M\u00f4n County Council", "Pwyllgor Cynllunio \u2013 Planning",
                   when=datetime(2025, 12, 4, 14, 0, tzinfo=UTC))],
        links=LINKS, following=FOLLOWING,
    )
    msg = wire(message(rendered))
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in parts] == ["utf-8", "utf-8"]
    assert [p["Content-Transfer-Encoding"] for p in parts] == ["quoted-printable", "quoted-printable"]
    # Lines end in CRLF on the wire.
    assert parts[0].get_content().replace("\r\n", "\n") == rendered.text
    assert parts[1].get_content().replace("\r\n", "\n") == rendered.html
    assert msg["Subject"] == "Ynys M\u00f4n County Council: Pwyllgor Cynllunio \u2013 Planning: New meeting"


def test_build_message_ids_are_unique() -> None:
    rendered = alert()
    ids = {message(rendered)["Message-ID"] for _ in range(50)}
    assert len(ids) == 50


def test_build_message_one_click_url_preferred_for_the_header() -> None:
    links = Links(
        manage=LINKS.manage, unsubscribe=f"{BASE}/unsubscribe/T", one_click=f"{BASE}/unsubscribe/T?one-click=1"
    )
    assert message(links=links)["List-Unsubscribe"] == f"<{BASE}/unsubscribe/T?one-click=1>"


def test_build_message_list_id_gets_angle_brackets() -> None:
    assert message(list_id="alerts.example.org")["List-Id"] == "<alerts.example.org>"


@pytest.mark.parametrize("kind", LIST_KINDS)
def test_build_message_refuses_list_mail_without_unsubscribe_links(kind: str) -> None:
    with pytest.raises(ValueError, match="unsubscribe links"):
        message(ALL_KINDS[kind](), links=None)


def test_build_message_refuses_hand_made_rendering_without_links() -> None:
    with pytest.raises(ValueError, match="unsubscribe links"):
        message(Rendered("Hello", "text\n", "<p>html</p>\n"), links=None)


def test_build_message_confirmation_without_links() -> None:
    msg = message(confirm(), links=None)
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert msg["List-Id"] == "Council alerts <alerts.example.org>"
    assert msg["Auto-Submitted"] == "auto-generated"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"to": "jane@example.net\r\nBcc: everyone@example.org"}, "one line"),
        ({"to": "not-an-address"}, "not an email address"),
        ({"mail_from": "Alerts <a@example.org>\nBcc: x@example.org"}, "one line"),
        ({"message_id_domain": "alerts example.org"}, "message_id_domain"),
        ({"list_id": "Council alerts <not a domain>"}, "list_id"),
        ({"now": datetime(2025, 12, 4, 14, 5)}, "naive"),
        ({"return_path": "bounces"}, "return_path"),
    ],
)
def test_build_message_refuses_bad_input(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        message(**overrides)


async def test_build_message_through_a_real_smtp_server(smtp_server: SmtpServer) -> None:
    msg = message(return_path="bounces+amFuZS5kb2VAZXhhbXBsZS5uZXQ.L1ar2IWK@alerts.example.org")
    await aiosmtplib.send(
        msg, hostname="127.0.0.1", port=smtp_server.port, sender=msg["Return-Path"].strip("<>"),
        recipients=["jane.doe@example.net"],
    )
    [received] = smtp_server.messages
    assert received.mail_from == "bounces+amFuZS5kb2VAZXhhbXBsZS5uZXQ.L1ar2IWK@alerts.example.org"
    got = received.message
    assert got["List-Unsubscribe"] == f"<{BASE}/unsubscribe/{LONG_TOKEN}>"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert got["Message-ID"] == msg["Message-ID"]
    body = got.get_body(("plain",))
    assert body is not None and "Moved from 4 Dec 14:00 to 11 Dec 10:00" in body.get_content()
