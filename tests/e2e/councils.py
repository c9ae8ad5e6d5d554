"""Several councils' ModernGov web services played by one HTTP server in the test process, changed by the test.

Each council is the demo's data model (committees, meetings, agenda items) rendered as ModernGov's web service
writes it, at `/c{n}/mgWebService.asmx/...`. The test reschedules, cancels and adds meetings between polls, and can
make a council answer badly: an HTML error page with status 200, truncated XML, or a response far over the size
cap.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta
from itertools import count
from zoneinfo import ZoneInfo

from aiohttp import web

from notifier.demo.data import AgendaItem, Committee, Council, IdSeq, Meeting
from notifier.demo.webservice import render_committees, render_meeting, render_meetings

LONDON = ZoneInfo("Europe/London")
REGIONS = ["East Midlands", "East Midlands", "North West"]
COMMITTEES = ["Cabinet", "Health and Wellbeing Board", "Planning Committee"]


def _council(n: int, today: date, ids: count[int], regions: list[str]) -> Council:
    committees = tuple(Committee(100 + c, f"{name} ({n})", "Committees", "County Hall")
                       for c, name in enumerate(COMMITTEES))
    meetings = []
    for c, committee in enumerate(committees):
        for k in range(3):
            mid = next(ids)
            topic = "dementia services" if (c + k + n) % 3 == 0 else "highways maintenance"
            item = AgendaItem(next(ids), 1, f"Report on {topic} ({n}-{mid})", (f"A report about {topic}.",))
            meetings.append(Meeting(mid, committee.id, today + timedelta(days=7 + 14 * k + c), time(10),
                                    time(12), "County Hall", agenda_published=True, items=(item,)))
    return Council(slug=f"e2e-council-{n}", name=f"E2E Council {n}", region=regions[n % len(regions)],
                   nation="England", website="", committees=committees, meetings=tuple(meetings), decisions=(),
                   issues=(), news=(), ids=IdSeq(0, 0, 0, 0))


class FakeCouncils:
    def __init__(self, councils: int = 3, regions: list[str] | None = None) -> None:
        self.today = datetime.now(LONDON).date()
        self._ids = count(5000)
        self.councils = [_council(n, self.today, self._ids, regions or REGIONS) for n in range(councils)]
        self.faults: dict[int, str] = {}  # council number → "html", "truncated" or "huge"
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self._ports: list[int] = []

    def base(self, n: int) -> str:
        return f"http://127.0.0.1:{self._ports[n]}/c{n}"

    # ---- changes ----

    def _replace_meeting(self, n: int, meeting_id: int, **changes: object) -> Meeting:
        council = self.councils[n]
        meetings = list(council.meetings)
        i = next(i for i, m in enumerate(meetings) if m.id == meeting_id)
        meetings[i] = dataclasses.replace(meetings[i], **changes)  # type: ignore[arg-type]
        self.councils[n] = dataclasses.replace(council, meetings=tuple(meetings))
        return meetings[i]

    def reschedule(self, n: int, meeting_id: int, days: int) -> Meeting:
        meeting = self.councils[n].meeting(meeting_id)
        assert meeting is not None
        return self._replace_meeting(n, meeting_id, day=meeting.day + timedelta(days=days))

    def cancel(self, n: int, meeting_id: int) -> Meeting:
        return self._replace_meeting(n, meeting_id, status="Cancelled")

    def add_meeting(self, n: int, committee_index: int, days_ahead: int, topic: str = "dementia services") -> Meeting:
        council = self.councils[n]
        committee = council.committees[committee_index]
        mid = next(self._ids)
        item = AgendaItem(next(self._ids), 1, f"Report on {topic} ({n}-{mid})", ("New report.",))
        meeting = Meeting(mid, committee.id, self.today + timedelta(days=days_ahead), time(14), time(16),
                          "County Hall", agenda_published=True, items=(item,))
        self.councils[n] = dataclasses.replace(council, meetings=(*council.meetings, meeting))
        return meeting

    def meetings(self, n: int) -> list[Meeting]:
        return list(self.councils[n].meetings)

    # ---- serving ----

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        n = int(request.match_info["n"])
        fault = self.faults.get(n)
        if fault == "html":
            return web.Response(text="<html><body><h1>Service unavailable</h1></body></html>",
                                content_type="text/html")
        page = request.match_info["page"].lower().removeprefix("mgwebservice.asmx/")
        query = {k.lower(): v for k, v in request.query.items()}
        council = self.councils[n]
        if page == "getcommittees":
            body = render_committees(council)
        elif page == "getmeetings":
            start = datetime.strptime(query["sfromdate"], "%d/%m/%Y").date()
            end = datetime.strptime(query["stodate"], "%d/%m/%Y").date()
            body = render_meetings(council, int(query["lcommitteeid"]), start, end)
        else:
            body = render_meeting(council, int(query["lmeetingid"]), self.base(n))
        if fault == "truncated":
            body = body[: len(body) // 2]
        elif fault == "huge":
            body = body.replace("</committees>", "<!--" + "x" * (30 * 1024 * 1024) + "--></committees>")
        return web.Response(text=body, content_type="text/xml")

    async def start(self) -> None:
        """Each council on a port of its own: its own host to the service's per-host limits and request budget, as
        real councils are."""
        app = web.Application()
        app.router.add_get(r"/c{n:\d+}/{page:.+}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for _ in self.councils:
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self._ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
