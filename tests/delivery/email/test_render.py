"""Rendering the four kinds of email, in both parts, and the templates' environment."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment
from lxml import etree, html

from notifier.delivery.email.render import email_environment, render_alert, render_confirm, render_digest, render_weekly
from notifier.delivery.email.views import EntryView, Following, Links, Rendered, WeeklyCouncil
from tests.delivery.email.samples import (
    AGENDA_URL,
    ALL_KINDS,
    BASE,
    DECISION_URL,
    FOLLOWING,
    HWB,
    LEICS,
    LINKS,
    LIST_KINDS,
    MEETING_URL,
    REASON,
    RUTLAND,
    RUTLAND_URL,
    STRATEGY_URL,
    agenda,
    alert,
    cancelled,
    confirm,
    decision,
    digest,
    rescheduled,
    weekly,
)


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def tree(rendered: Rendered) -> Any:
    return html.document_fromstring(rendered.html)




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


def test_entries_kept_rendered_are_the_entries_rendered_afresh() -> None:
    """An entry is rendered once per worker and kept: what a later email shows must be what a fresh environment
    renders for it, in the recipient's zone, and with the terms that email highlights (not another's)."""
    kept = email_environment()
    plain = replace(rescheduled(), matched_terms=())
    marked = replace(plain, matched_terms=("board",))
    cases = [([plain], "Europe/London"), ([plain, agenda()], "Europe/London"), ([marked], "Europe/London"),
             ([plain], "America/New_York"), ([cancelled(), plain, decision()], "Europe/London")]
    for entries, tz in cases * 2:  # the second time round, every entry comes from what was kept
        for render in (render_alert, render_digest):
            extra: dict[str, Any] = {"day": date(2025, 12, 4)} if render is render_digest else {}
            got = render(entries, links=LINKS, following=FOLLOWING, timezone=tz, env=kept, **extra)
            fresh = render(entries, links=LINKS, following=FOLLOWING, timezone=tz, env=email_environment(), **extra)
            assert got == fresh
    london = render_digest([plain], day=date(2025, 12, 4), links=LINKS, following=FOLLOWING, env=kept)
    new_york = render_digest([plain], day=date(2025, 12, 4), links=LINKS, following=FOLLOWING, env=kept,
                             timezone="America/New_York")
    assert "10:00" in london.text and "05:00" in new_york.text
    highlighted = render_alert([marked], links=LINKS, following=FOLLOWING, env=kept)
    assert "<mark>Board</mark>" in highlighted.html
    assert "<mark>" not in render_alert([plain], links=LINKS, following=FOLLOWING, env=kept).html.split("<h2")[1]


def test_parts_tidied_from_kept_pieces_are_the_parts_tidied_whole() -> None:
    """The entries' lines are tidied once, when kept, and only the rest of each part afresh: the parts must be those
    tidied whole, whatever white space and line breaks the councils' text brings (and the HTML part's runs must
    make it up)."""
    from notifier.delivery.email.render import KeptMacros, _tidy_html, _tidy_text
    from notifier.delivery.email.views import group_entries
    from notifier.delivery.email.words import format_date

    odd = ["trailing   ", "tab\tand\u00a0 ", "line\u2028break", "carriage\rreturn", "form\x0cfeed", "-- ", "\n\n\n"]
    entries = [replace(agenda(), title=f"{HWB} {w}", what=f"agenda {w}", excerpt=w, committee=f"Board {w}")
               for w in odd] + [decision(), cancelled()]
    env = email_environment()
    for _ in range(2):  # the second time round, every piece comes from what was kept
        got = render_digest(entries, day=date(2025, 12, 4), links=LINKS, following=FOLLOWING, env=env)
        context = {"subject": got.subject, "groups": group_entries(entries), "count": len(entries),
                   "day": format_date(date(2025, 12, 4)), "links": LINKS, "following": tuple(FOLLOWING),
                   "warnings": (), "timezone": "Europe/London", "service_name": "Council alerts",
                   "preheader": entries[0].summary or entries[0].title}
        whole = email_environment()
        text = _tidy_text(whole.get_template("digest.txt").render(context))
        assert got.text == text
        assert got.html == _tidy_html(whole.get_template("digest.html").render(context))
        assert got.html_lines and "".join(got.html_lines) == got.html
        assert got.text_lines and "".join(got.text_lines) == got.text
        assert isinstance(env.globals["kept"], KeptMacros)


def test_text_runs_are_the_text_tidied_whole() -> None:
    """A text part's runs (each run's blank lines at its ends, and among its lines made one, when kept) join to the
    part tidied whole: blank lines made one across runs and gone at the part's ends, wherever the runs break."""
    import itertools

    from notifier.delivery.email.render import TextRun, _text_lines, _text_runs, _tidy_text

    lines = ["a", "", " ", "-- ", "c"]
    for n in range(6):
        for chosen in itertools.product(lines, repeat=n):
            text = text_of(chosen)
            for cuts in itertools.combinations_with_replacement(range(n + 1), 3):
                bounds = [0, *cuts, n]  # the lines before the groups, two pieces, the lines after: any may be empty
                runs = [TextRun.of(_text_lines(text_of(chosen[i:j]))) for i, j in itertools.pairwise(bounds)]
                assert ("".join(_text_runs(runs)) or "\n") == _tidy_text(text), (chosen, cuts)


def text_of(lines: tuple[str, ...]) -> str:
    return "".join(line + "\n" for line in lines)


def test_groups_found_in_a_part_by_their_start_are_checked_whole() -> None:
    """The groups are looked for by their first characters: a line before them that begins the same is passed over,
    and a part that does not hold them whole, at a line's start, is tidied whole (no pieces)."""
    from notifier.delivery.email.render import KeptMacros, _tidied

    groups = "Leicestershire County Council " * 4 + "\n-----\nCabinet\n"
    kept = KeptMacros()
    kept.tidied = [(groups, [groups])]
    decoy = groups[:70] + "but then something else\n"
    part = f"Your digest\n{decoy}{groups}Manage your alerts\n"
    assert _tidied(part, kept) == (f"Your digest\n{decoy}", [groups], "Manage your alerts\n")
    assert _tidied(f"Your digest\n{decoy}Manage\n", kept) is None  # the groups are not in the part
    assert _tidied(f"Your digest: {groups}", kept) is None  # not at a line's start
    kept.tidied = [(groups, None)]  # a piece that could not be kept tidied
    assert _tidied(part, kept) is None


def test_environments_share_compiled_templates_and_compile_an_edited_one_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = tmp_path / "note.txt"
    template.write_text("first {{ n }}")
    assert email_environment(tmp_path).get_template("note.txt").render(n=1) == "first 1"

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("the template was parsed again")

    with monkeypatch.context() as m:
        m.setattr(Environment, "_parse", no_parsing)
        assert email_environment(tmp_path).get_template("note.txt").render(n=2) == "first 2"
        template.write_text("second {{ n }}")
        with pytest.raises(AssertionError, match="parsed again"):
            email_environment(tmp_path).get_template("note.txt")
    assert email_environment(tmp_path).get_template("note.txt").render(n=3) == "second 3"
