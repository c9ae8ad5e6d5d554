"""The `notifier` command, run as operators run it: a separate process reading NOTIFIER_ variables.

The commands write to the test database (the `pool` fixture empties it first); polls go to the fake council server,
which runs in the test's event loop, so commands run as asynchronous subprocesses.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from tests.servers import CouncilServer, fixture_bytes

WS = "/mgWebService.asmx"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(database_url: str, redis_url: str, tmp_path: Path, pool: asyncpg.Pool) -> Any:
    """`await cli("councils", "list")`: run the command with the test database, Redis and a fresh data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update({
        "NOTIFIER_DATABASE_URL": database_url,
        "NOTIFIER_REDIS_URL": redis_url,
        "NOTIFIER_DATA_DIR": str(tmp_path / "data"),
        "NOTIFIER_CONTACT_URL": "https://alerts.example.org/about",
        "NOTIFIER_POLL_TOTAL_TIMEOUT": "5",
    })

    async def run(*args: str, stdin: str | None = None) -> Run:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "notifier.cli", *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=tmp_path, env=env,
        )
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), 60)
        assert proc.returncode is not None
        return Run(proc.returncode, out.decode(), err.decode())

    return run


# ---- councils -----------------------------------------------------------------------------------------------------


async def test_cli_councils_add_then_list_json(cli: Any) -> None:
    added = await cli("councils", "add", "leicestershire", "--name", "Leicestershire County Council",
                      "--region", "East Midlands")
    assert (added.code, added.out, added.err) == (0, "added council leicestershire\n", "")
    renamed = await cli("councils", "add", "leicestershire", "--name", "Leicestershire CC", "--website",
                        "https://www.leicestershire.gov.uk")
    assert (renamed.code, renamed.out) == (0, "updated council leicestershire\n")
    await cli("councils", "add", "rutland", "--name", "Rutland County Council", "--region", "East Midlands",
              "--nation", "England")

    listed = await cli("councils", "list", "--json")

    assert listed.code == 0
    assert listed.json() == [
        {"slug": "leicestershire", "name": "Leicestershire CC", "region": "East Midlands", "nation": None,
         "timezone": "Europe/London", "website": "https://www.leicestershire.gov.uk", "sources": 0,
         "enabled_sources": 0, "last_success_at": None, "worst_failure_streak": 0},
        {"slug": "rutland", "name": "Rutland County Council", "region": "East Midlands", "nation": "England",
         "timezone": "Europe/London", "website": None, "sources": 0, "enabled_sources": 0,
         "last_success_at": None, "worst_failure_streak": 0},
    ]
    table = await cli("councils", "list")
    assert table.out.splitlines()[0].split() == [
        "slug", "name", "region", "timezone", "sources", "enabled_sources", "last_success_at",
    ]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["Leics CC", "--name", "Leicestershire"],
         "error: bad council slug 'Leics CC': use lowercase letters, digits and hyphens\n"),
        (["leics", "--name", "Leicestershire", "--timezone", "Europe/Leicester"],
         "error: unknown time zone 'Europe/Leicester'\n"),
    ],
)
async def test_cli_councils_add_refuses_bad_input(cli: Any, pool: asyncpg.Pool, args: list[str], error: str) -> None:
    run = await cli("councils", "add", *args)
    assert (run.code, run.out, run.err) == (1, "", error)
    assert await pool.fetchval("select count(*) from councils") == 0


async def test_cli_councils_import_bundled_registry(cli: Any, pool: asyncpg.Pool) -> None:
    run = await cli("councils", "import")

    assert run.code == 0
    assert run.out.startswith("imported: 197 new council(s), 394 new source(s) (new sources start disabled;")
    assert await pool.fetchval("select count(*) from councils") == 197
    counts = await pool.fetchrow(
        "select count(*) as total, count(*) filter (where enabled) as enabled, count(distinct council) as councils,"
        " count(*) filter (where kind = 'moderngov') as moderngov from sources"
    )
    assert dict(counts) == {"total": 394, "enabled": 0, "councils": 197, "moderngov": 197}
    leics = await pool.fetchrow("select * from councils where slug = 'leicestershire'")
    assert (leics["name"], leics["region"], leics["nation"], leics["timezone"]) == (
        "Leicestershire", "East Midlands", "England", "Europe/London",
    )
    sources = await pool.fetch("select kind, url, enabled from sources where council = 'leicestershire' order by kind")
    assert [tuple(r) for r in sources] == [
        ("moderngov", "https://democracy.leics.gov.uk", False),
        ("moderngov_decisions", "https://democracy.leics.gov.uk", False),
    ]

    # What the operator has done since survives a second import, which adds nothing.
    assert (await cli("sources", "enable", "--council", "leicestershire")).out == "enabled 2 source(s)\n"
    await cli("councils", "add", "leicestershire", "--name", "Leicestershire County Council")
    again = await cli("councils", "import")

    assert again.code == 0
    assert again.out.startswith("imported: 0 new council(s), 0 new source(s)")
    assert await pool.fetchval("select count(*) from sources") == 394
    assert await pool.fetchval("select count(*) from sources where enabled") == 2
    leics = await pool.fetchrow("select name, region from councils where slug = 'leicestershire'")
    assert tuple(leics) == ("Leicestershire County Council", "East Midlands")


async def test_cli_councils_import_custom_csv(cli: Any, pool: asyncpg.Pool, tmp_path: Path) -> None:
    path = tmp_path / "councils.csv"
    # As a spreadsheet saves it: a byte order mark, CRLF line ends, a trailing slash on a URL.
    path.write_bytes(
        "\ufeffname,moderngov_url,nation,region\r\n"
        "Ynys Môn,https://democracy.anglesey.gov.uk/,Wales,Wales\r\n"
        "Test Borough,https://modgov.test-borough.gov.uk,England,\r\n".encode()
    )

    run = await cli("councils", "import", str(path))

    assert run.code == 0
    assert run.out.startswith("imported: 2 new council(s), 4 new source(s)")
    rows = await pool.fetch("select slug, name, region, nation, website from councils order by slug")
    assert [tuple(r) for r in rows] == [
        ("test-borough", "Test Borough", None, "England", "https://modgov.test-borough.gov.uk"),
        ("ynys-mon", "Ynys Môn", "Wales", "Wales", "https://democracy.anglesey.gov.uk"),
    ]
    assert await pool.fetchval("select count(*) from sources where not enabled") == 4


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("council,url\nRutland,https://rutland.moderngov.co.uk\n",
         "error: registry CSV needs the columns ['moderngov_url', 'name'] (and optionally nation, region)\n"),
        ("name,moderngov_url\nRutland,https://rutland.moderngov.co.uk\nMelton,melton.moderngov.co.uk\n",
         "error: line 3: needs a name and an http(s) moderngov_url, got {'name': 'Melton', 'moderngov_url': "
         "'melton.moderngov.co.uk'}\n"),
        ("name,moderngov_url\nRutland,https://rutland.moderngov.co.uk\n,https://melton.moderngov.co.uk\n",
         "error: line 3: needs a name and an http(s) moderngov_url, got {'name': '', 'moderngov_url': "
         "'https://melton.moderngov.co.uk'}\n"),
        ("name,moderngov_url\nRutland,https://rutland.moderngov.co.uk\n!!!,https://melton.moderngov.co.uk\n",
         "error: bad council slug '': use lowercase letters, digits and hyphens\n"),
    ],
)
async def test_cli_councils_import_malformed_csv_imports_nothing(
    cli: Any, pool: asyncpg.Pool, tmp_path: Path, content: str, error: str
) -> None:
    path = tmp_path / "councils.csv"
    path.write_text(content)

    run = await cli("councils", "import", str(path))

    assert (run.code, run.out, run.err) == (1, "", error)
    assert await pool.fetchval("select count(*) from councils") == 0
    assert await pool.fetchval("select count(*) from sources") == 0


async def test_cli_councils_import_unreadable_file(cli: Any, tmp_path: Path) -> None:
    missing = await cli("councils", "import", str(tmp_path / "missing.csv"))
    assert (missing.code, missing.err) == (
        1, f"error: cannot read {tmp_path / 'missing.csv'}: No such file or directory\n",
    )
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(b"name,moderngov_url\nYnys M\xf4n,https://democracy.anglesey.gov.uk\n")
    wrong = await cli("councils", "import", str(latin1))
    assert (wrong.code, wrong.err) == (1, f"error: {latin1} is not UTF-8 text (byte 25): save the CSV as UTF-8\n")


# ---- sources --------------------------------------------------------------------------------------------------------


async def _sources(pool: asyncpg.Pool) -> list[tuple[str, str, bool]]:
    rows = await pool.fetch("select council, kind, enabled from sources order by council, kind")
    return [tuple(r) for r in rows]


async def test_cli_sources_add_enable_disable(cli: Any, pool: asyncpg.Pool, tmp_path: Path) -> None:
    csv = tmp_path / "councils.csv"
    csv.write_text(
        "name,moderngov_url,nation,region\n"
        "Leicestershire,https://democracy.leics.gov.uk,England,East Midlands\n"
        "Rutland,https://rutland.moderngov.co.uk,England,East Midlands\n"
    )
    await cli("councils", "import", str(csv))

    added = await cli("sources", "add", "--council", "leicestershire", "--kind", "rss", "--url",
                      "https://democracy.leics.gov.uk/mgRss.aspx?XXR=0", "--interval", "15")
    assert added.code == 0
    source_id = int(added.out)
    row = await pool.fetchrow("select council, kind, url, enabled, poll_interval from sources where id = $1", source_id)
    assert (row["council"], row["kind"], row["url"], row["enabled"], row["poll_interval"].total_seconds()) == (
        "leicestershire", "rss", "https://democracy.leics.gov.uk/mgRss.aspx?XXR=0", True, 900,
    )
    # The same source again is the same source.
    assert (await cli("sources", "add", "--council", "leicestershire", "--kind", "rss", "--url",
                      "https://democracy.leics.gov.uk/mgRss.aspx?XXR=0")).out == f"{source_id}\n"

    assert (await cli("sources", "enable", "--council", "leicestershire")).out == "enabled 2 source(s)\n"
    assert await _sources(pool) == [
        ("leicestershire", "moderngov", True), ("leicestershire", "moderngov_decisions", True),
        ("leicestershire", "rss", True), ("rutland", "moderngov", False), ("rutland", "moderngov_decisions", False),
    ]
    assert (await cli("sources", "enable", "--all")).out == "enabled 2 source(s)\n"
    assert all(enabled for _, _, enabled in await _sources(pool))
    assert (await cli("sources", "disable", "--id", str(source_id))).out == "disabled 1 source(s)\n"
    assert await pool.fetchval("select enabled from sources where id = $1", source_id) is False
    assert (await cli("sources", "disable", "--council", "rutland")).out == "disabled 2 source(s)\n"
    assert (await cli("sources", "disable", "--all")).out == "disabled 2 source(s)\n"
    assert not any(enabled for _, _, enabled in await _sources(pool))


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["add", "--council", "leicestershire", "--kind", "sharepoint", "--url", "https://example.org"],
         "error: unknown source kind 'sharepoint'; one of moderngov, moderngov_decisions, rss, ical, legistar\n"),
        (["add", "--council", "nowhere", "--kind", "rss", "--url", "https://example.org/feed"],
         "error: no council 'nowhere'; add it first with `notifier councils add`\n"),
        (["add", "--council", "leicestershire", "--kind", "rss", "--url", "ftp://example.org/feed"],
         "error: source URL must be http(s): 'ftp://example.org/feed'\n"),
        (["add", "--council", "leicestershire", "--kind", "rss", "--url", "https://example.org/f", "--interval", "0"],
         "error: interval must be at least 1 minute\n"),
        (["enable", "--council", "nowhere"], "error: no council 'nowhere'\n"),
        (["disable", "--id", "424242"], "error: no source 424242\n"),
    ],
)
async def test_cli_sources_refuses_bad_input(cli: Any, pool: asyncpg.Pool, args: list[str], error: str) -> None:
    await cli("councils", "add", "leicestershire", "--name", "Leicestershire County Council")
    run = await cli("sources", *args)
    assert (run.code, run.out, run.err) == (1, "", error)
    assert await pool.fetchval("select count(*) from sources") == 0


# ---- poll and health ---------------------------------------------------------------------------------------------


def _manchester(server: CouncilServer) -> None:
    server.set(f"{WS}/GetCommittees", fixture_bytes("moderngov/committees.xml"))

    async def meetings(request: web.Request) -> web.Response:
        name = "meetings.xml" if request.query["lCommitteeId"] == "144" else "meetings_empty.xml"
        return web.Response(body=fixture_bytes(f"moderngov/{name}"), content_type="text/xml")

    server.routes[f"{WS}/GetMeetings"] = meetings
    server.set(f"{WS}/GetMeeting?lMeetingId=4966", fixture_bytes("moderngov/meeting_no_minutes.xml"))
    server.set(f"{WS}/GetMeeting?lMeetingId=4967", fixture_bytes("moderngov/meeting_with_minutes.xml"))


async def test_cli_poll_prints_one_json_object(cli: Any, council_server: CouncilServer) -> None:
    _manchester(council_server)
    await cli("councils", "add", "manchester", "--name", "Manchester City Council")
    source_id = (await cli("sources", "add", "--council", "manchester", "--kind", "moderngov", "--url",
                           council_server.url)).out.strip()

    run = await cli("poll", "--source", source_id)

    assert (run.code, run.err) == (0, "")
    result = run.json()
    assert isinstance(result["duration_ms"], int)
    del result["duration_ms"]
    assert result == {
        "source_id": int(source_id), "records": 6, "events": 4, "error": None, "not_modified": False,
        "skipped": None, "http_status": 200,
    }
    assert council_server.requests[0].headers["User-Agent"].endswith("(+https://alerts.example.org/about)")
    again = (await cli("poll", "--source", source_id)).json()
    assert (again["records"], again["events"], again["error"]) == (0, 0, None)


async def test_cli_poll_broken_source_prints_the_error(
    cli: Any, pool: asyncpg.Pool, council_server: CouncilServer
) -> None:
    council_server.set(f"{WS}/GetCommittees", fixture_bytes("moderngov/error_page_200.html"), content_type="text/html")
    await cli("councils", "add", "manchester", "--name", "Manchester City Council")
    source_id = (await cli("sources", "add", "--council", "manchester", "--kind", "moderngov", "--url",
                           council_server.url)).out.strip()
    await cli("sources", "disable", "--id", source_id)  # an operator's poll runs whether or not it is enabled

    run = await cli("poll", "--source", source_id)

    assert run.code == 1
    result = run.json()
    assert result["error"] == (
        "ModernGov GetCommittees response is HTML, not XML (starts '<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML...')"
    )
    assert (result["records"], result["events"], result["http_status"]) == (0, 0, 200)
    assert run.err.endswith(f"\nerror: source {source_id}: the poll failed: {result['error']}\n")

    listed = await cli("sources", "list", "--json")
    (source,) = listed.json()
    assert source["last_error"] == result["error"]
    assert (source["consecutive_failures"], source["last_success_at"], source["items"], source["enabled"]) == (
        1, None, 0, False,
    )
    assert source["last_error_at"] is not None and source["next_poll_at"] > source["last_error_at"]
    table = await cli("sources", "list")
    assert table.out.splitlines()[0].split() == [
        "id", "council", "kind", "enabled", "items", "last_success_at", "consecutive_failures", "stale_max_min",
        "req_per_s", "last_error", "url",
    ]

    missing = await cli("poll", "--source", "424242")
    assert missing.code == 1
    assert missing.json()["skipped"] == "no such source"
    assert missing.err == "error: source 424242: no such source\n"


async def test_cli_sources_list_json_shows_health(cli: Any, pool: asyncpg.Pool, council_server: CouncilServer) -> None:
    _manchester(council_server)
    await cli("councils", "add", "manchester", "--name", "Manchester City Council")
    good = (await cli("sources", "add", "--council", "manchester", "--kind", "moderngov", "--url",
                      council_server.url)).out.strip()
    bad = (await cli("sources", "add", "--council", "manchester", "--kind", "rss", "--url",
                     f"{council_server.url}/missing.rss")).out.strip()
    assert (await cli("poll", "--source", good)).code == 0
    assert (await cli("poll", "--source", bad)).code == 1

    listed = {s["id"]: s for s in (await cli("sources", "list", "--json")).json()}

    ok, broken = listed[int(good)], listed[int(bad)]
    assert (ok["kind"], ok["items"], ok["consecutive_failures"], ok["last_error"], ok["interval"]) == (
        "moderngov", 6, 0, None, 30,
    )
    assert ok["last_success_at"] is not None
    assert (broken["kind"], broken["items"], broken["consecutive_failures"], broken["last_success_at"]) == (
        "rss", 0, 1, None,
    )
    assert broken["last_error"].startswith(f"HTTP 404 Not Found from {council_server.url}/missing.rss")
    # freshness: ModernGov's read plan (its meetings are months past, so none is in the coming weeks), with the
    # budget of the host shared with the feed on the same server; and the feed's interval
    assert (ok["stale_max_min"], ok["freshness"]["poll_every_minutes"], ok["freshness"]["budget_per_second"],
            ok["freshness"]["host_sources"]) == ("12", 4.0, 0.25, 2)
    assert (broken["stale_max_min"], broken["freshness"]["poll_every_minutes"]) == ("30", 30.0)
    table = (await cli("sources", "list")).out
    assert "stale_max_min" in table.splitlines()[0] and "req_per_s" in table.splitlines()[0]
    councils = (await cli("councils", "list", "--json")).json()
    assert [(c["slug"], c["sources"], c["enabled_sources"], c["worst_failure_streak"]) for c in councils] == [
        ("manchester", 2, 2, 1),
    ]


# ---- topics ---------------------------------------------------------------------------------------------------------


async def test_cli_topics_check_matches_lines(cli: Any) -> None:
    run = await cli(
        "topics", "check", 'dementia OR "mental health"',
        stdin="Dementia strategy progress report\nParking charges\nMental Health Act review\n",
    )

    assert run.code == 0
    assert run.err == 'query: dementia OR "mental health"\n'
    assert run.out.splitlines()[1] == "no-match"
    assert [line.split()[0] for line in run.out.splitlines()] == ["match", "no-match", "match"]

    bad = await cli("topics", "check", "social AND (care")
    assert bad.code == 2
    assert bad.err.startswith("invalid query: ")


# ---- partners -----------------------------------------------------------------------------------------------------


async def test_cli_partners_rotate_keeps_the_old_key_for_the_grace_period_then_revoke(
    cli: Any, pool: asyncpg.Pool, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from notifier.web.app import create_app
    from tests.conftest import make_settings

    added = await cli("partners", "add", "Age UK Leicestershire", "--email", "data@ageuk.example")
    assert added.code == 0, added.err
    first = added.out.strip()
    rotated = await cli("partners", "rotate", "age uk leicestershire")
    assert rotated.code == 0, rotated.err
    second = rotated.out.strip()
    assert second.startswith("nk_") and second != first and "24 more hours" in rotated.err
    listed = (await cli("partners", "list", "--json")).json()
    assert [(p["name"], p["status"], p["key_prefix"]) for p in listed] == [
        ("Age UK Leicestershire", "active", second[:9])
    ]
    assert first not in str(listed) and second not in str(listed)

    settings = make_settings(database_url, redis_url, "smtp://127.0.0.1:1", tmp_path)
    async with TestClient(TestServer(create_app(settings))) as client:
        async def status(key: str) -> int:
            resp = await client.get("/api/v1/councils", headers={"Authorization": f"Bearer {key}"})
            if resp.status == 401:
                assert resp.content_type == "application/problem+json"
                assert "revoked or expired" in (await resp.json())["detail"]
            return resp.status

        assert (await status(first), await status(second)) == (200, 200)  # both, during the grace period
        await pool.execute("update partners set previous_key_expires_at = now() - interval '1 second'")
        assert (await status(first), await status(second)) == (401, 200)  # the grace period is over

        third = (await cli("partners", "rotate", "Age UK Leicestershire", "--grace-hours", "0")).out.strip()
        assert (await status(second), await status(third)) == (401, 200)  # no grace: the old key stops at once

        revoked = await cli("partners", "revoke", "Age UK Leicestershire")
        assert revoked.code == 0, revoked.err
        assert await status(third) == 401
    assert (await cli("partners", "list", "--json")).json()[0]["status"] == "revoked"


async def test_cli_partners_refuses_unknown_or_ambiguous_names(cli: Any) -> None:
    assert (await cli("partners", "rotate", "Nobody")).code != 0
    await cli("partners", "add", "Newsroom")
    await cli("partners", "add", "Newsroom")
    ambiguous = await cli("partners", "revoke", "Newsroom")
    assert ambiguous.code != 0 and "give the id instead" in ambiguous.err
    assert (await cli("partners", "revoke", "1")).code == 0
