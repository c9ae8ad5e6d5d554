"""The `notifier` command. Each subcommand reads the same Settings and calls into the modules that do the work."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg

from notifier import councils as registry
from notifier.logs import setup_logging
from notifier.settings import Settings, SettingsError, load_settings

EXIT_USAGE = 2


class CommandError(Exception):
    """A command could not do what it was asked; the message is for the operator."""


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A migrated database pool for one command (starting the embedded server if none is configured)."""
    from notifier.db import create_pool, migrate
    from notifier.service import runtime

    async with runtime(settings, smtp=False) as rt:
        await migrate(rt.settings.database_url)
        pool = await create_pool(rt.settings.database_url, min_size=1, max_size=4)
        try:
            yield pool
        finally:
            await pool.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _print_json(data: Any) -> None:
    print(json.dumps(data, default=_json_default, indent=2))


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        print("(none)")
        return
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v[:80].ljust(w) for v, w in zip(row, widths, strict=True)))


# ---- commands ----


async def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    from notifier.service import serve

    command = args.command
    await serve(
        settings,
        web_server=command in ("run", "web"),
        worker=command in ("run", "worker"),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        demo=bool(getattr(args, "demo", False) or settings.demo),
    )


async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> None:
    from notifier.db import migrate
    from notifier.service import runtime

    async with runtime(settings, smtp=False) as rt:
        applied = await migrate(rt.settings.database_url)
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))


def _read_registry_file(file: str | None) -> str:
    """The registry CSV to import: the bundled one, or the operator's file (read before touching the database)."""
    if file is None or file == "-bundled":
        return registry.bundled_registry()
    try:
        return Path(file).read_text("utf-8-sig")
    except OSError as e:
        raise CommandError(f"cannot read {file}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise CommandError(f"{file} is not UTF-8 text (byte {e.start}): save the CSV as UTF-8") from e


async def cmd_councils(settings: Settings, args: argparse.Namespace) -> None:
    text = _read_registry_file(args.file) if args.action == "import" else ""
    async with database(settings) as pool:
        if args.action == "add":
            new = await registry.add_council(
                pool,
                args.slug,
                args.name,
                region=args.region,
                nation=args.nation,
                timezone=args.timezone,
                website=args.website,
            )
            print(f"{'added' if new else 'updated'} council {args.slug}")
        elif args.action == "list":
            rows = await registry.list_councils(pool)
            if args.json:
                _print_json(rows)
            else:
                _table(rows, ["slug", "name", "region", "timezone", "sources", "enabled_sources", "last_success_at"])
        elif args.action == "import":
            councils, sources = await registry.import_registry(pool, text)
            print(
                f"imported: {councils} new council(s), {sources} new source(s) (new sources start disabled; "
                "enable with `notifier sources enable --council SLUG` or `--all`)"
            )


async def cmd_sources(settings: Settings, args: argparse.Namespace) -> None:
    async with database(settings) as pool:
        if args.action == "add":
            options = json.loads(args.options) if args.options else None
            source_id = await registry.add_source(
                pool, args.council, args.kind, args.url, interval_minutes=args.interval, options=options
            )
            print(source_id)
        elif args.action in ("enable", "disable"):
            n = await registry.set_sources_enabled(
                pool, args.action == "enable", council=args.council, source_id=args.id, all_sources=args.all
            )
            print(f"{args.action}d {n} source(s)")
        elif args.action == "list":
            from notifier.ingest.freshness import source_freshness

            rows = await registry.list_sources(pool)
            # the worst-case staleness its read plan and request budget give (minutes), and its requests a second
            fresh = await source_freshness(pool, now=datetime.now(UTC))
            for row in rows:
                row["freshness"] = f = fresh.get(row["id"], {})
                row["stale_max_min"] = f.get("error") or _or_never(f.get("hot_staleness_minutes"))
                row["req_per_s"] = f.get("requests_per_second")
            if args.json:
                _print_json(rows)
            else:
                _table(
                    rows,
                    [
                        "id",
                        "council",
                        "kind",
                        "enabled",
                        "items",
                        "last_success_at",
                        "consecutive_failures",
                        "stale_max_min",
                        "req_per_s",
                        "last_error",
                        "url",
                    ],
                )


def _or_never(minutes: float | None) -> str:
    return "never (over budget)" if minutes is None else f"{minutes:g}"


async def cmd_poll(settings: Settings, args: argparse.Namespace) -> None:
    from notifier.ingest.fetch import Fetcher, client_session
    from notifier.ingest.poll import poll_source

    async with database(settings) as pool, client_session(settings) as session:
        result = await poll_source(pool, Fetcher(session, settings), args.source, force=True)
    _print_json(result.as_dict())
    if result.skipped:
        raise CommandError(f"source {args.source}: {result.skipped}")
    if result.error:
        raise CommandError(f"source {args.source}: the poll failed: {result.error}")


async def cmd_partners(settings: Settings, args: argparse.Namespace) -> None:
    from datetime import timedelta

    from notifier import partners

    async with database(settings) as pool:
        if args.action == "add":
            partner_id, key = await partners.create_partner(pool, args.name, contact_email=args.email)
            print(f"partner {partner_id} created; its API key (shown once, keep it safe):", file=sys.stderr)
            print(key)
            return
        if args.action == "list":
            rows = await partners.list_partners(pool)
            if args.json:
                _print_json(rows)
            else:
                _table(rows, ["id", "name", "status", "key_prefix", "key_rotated_at", "old_key_expires_at",
                              "endpoints", "subscribers", "contact_email"])
            return
        try:
            partner_id = await partners.find_partner(pool, args.name)
        except partners.PartnerNotFound as e:
            raise CommandError(str(e)) from e
        if args.action == "rotate":
            hours = settings.api_key_grace_hours if args.grace_hours is None else args.grace_hours
            key = await partners.rotate_key(pool, partner_id, grace=timedelta(hours=hours))
            print(f"partner {partner_id}: new API key (shown once); the old one works for {hours} more hours",
                  file=sys.stderr)
            print(key)
        else:
            await partners.revoke(pool, partner_id)
            print(f"partner {partner_id}: every API key revoked", file=sys.stderr)


async def cmd_bounces(settings: Settings, args: argparse.Namespace) -> None:
    from notifier.delivery.email.bounce_processing import process_bounces

    path = Path(args.path)
    if not path.exists():
        raise CommandError(f"no such file or directory: {path}")
    async with database(settings) as pool:
        summary = await process_bounces(
            pool, path, secret=settings.ensure_secret_key().encode(), trust_unverified=args.trust_unverified
        )
    if args.json:
        _print_json(summary.as_dict())
    else:
        print("\n".join(summary.lines()))


def cmd_topics_check(settings: Settings, args: argparse.Namespace) -> int:
    from notifier.topics.evaluate import Document, matched_terms
    from notifier.topics.parse import QueryError, canonical, parse

    try:
        query = parse(args.query)
    except QueryError as e:
        print(f"invalid query: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"query: {canonical(query)}", file=sys.stderr)
    for line in sys.stdin:
        text = line.rstrip("\n")
        terms = matched_terms(query, Document.from_text(text))
        if terms is None:
            print("no-match")
        else:
            print("match" + (" " + " ".join(terms) if terms else ""))
    return 0


# ---- parser ----


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="notifier", description="Council meeting and decision notifications.")
    sub = p.add_subparsers(dest="command", required=True)
    _add_process_commands(sub)
    _add_council_commands(sub)
    _add_source_commands(sub)
    _add_partner_commands(sub)
    _add_bounce_commands(sub)
    _add_topic_commands(sub)
    return p


# What `add_subparsers` returns; each `_add_..._commands` below adds one group of commands to it.
_Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _add_process_commands(sub: _Commands) -> None:
    run = sub.add_parser("run", help="web + worker + scheduler in one process")
    run.add_argument("--demo", action="store_true", help="also serve and register the bundled demo councils")
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    web = sub.add_parser("web", help="the web server only")
    web.add_argument("--host")
    web.add_argument("--port", type=int)
    sub.add_parser("worker", help="the worker (jobs and the cron schedule) only")
    sub.add_parser("migrate", help="apply pending database migrations")


def _add_council_commands(sub: _Commands) -> None:
    councils = sub.add_parser("councils", help="the council registry").add_subparsers(dest="action", required=True)
    add = councils.add_parser("add")
    add.add_argument("slug")
    add.add_argument("--name", required=True)
    add.add_argument("--region")
    add.add_argument("--nation")
    add.add_argument("--timezone", default="Europe/London")
    add.add_argument("--website")
    lst = councils.add_parser("list")
    lst.add_argument("--json", action="store_true")
    imp = councils.add_parser("import", help="load a registry CSV (default: the bundled 197 ModernGov councils)")
    imp.add_argument("file", nargs="?")


def _add_source_commands(sub: _Commands) -> None:
    sources = sub.add_parser("sources", help="council data sources").add_subparsers(dest="action", required=True)
    sadd = sources.add_parser("add")
    sadd.add_argument("--council", required=True)
    sadd.add_argument("--kind", required=True)
    sadd.add_argument("--url", required=True)
    sadd.add_argument("--interval", type=int, default=30, help="minutes between polls")
    sadd.add_argument("--options", help="adapter options as JSON")
    for action in ("enable", "disable"):
        s = sources.add_parser(action)
        g = s.add_mutually_exclusive_group(required=True)
        g.add_argument("--council")
        g.add_argument("--id", type=int)
        g.add_argument("--all", action="store_true")
    slist = sources.add_parser("list")
    slist.add_argument("--json", action="store_true")

    poll = sub.add_parser(
        "poll", help="poll one source now (even if disabled) and print what it found; exit status 1 if the poll failed"
    )
    poll.add_argument("--source", type=int, required=True)


def _add_partner_commands(sub: _Commands) -> None:
    partners = sub.add_parser("partners", help="partner organisations").add_subparsers(dest="action", required=True)
    padd = partners.add_parser("add")
    padd.add_argument("name")
    padd.add_argument("--email")
    plist = partners.add_parser("list", help="partners with their key prefix, status and counts")
    plist.add_argument("--json", action="store_true")
    protate = partners.add_parser(
        "rotate", help="print a new API key; the old one keeps working for the grace period, then stops"
    )
    protate.add_argument("name", help="the partner's name or id")
    protate.add_argument(
        "--grace-hours", type=int, default=None, help="hours the old key keeps working (default: "
        "NOTIFIER_API_KEY_GRACE_HOURS, 24); 0 ends it at once"
    )
    prevoke = partners.add_parser("revoke", help="stop every API key of the partner at once")
    prevoke.add_argument("name", help="the partner's name or id")


def _add_bounce_commands(sub: _Commands) -> None:
    bounces = sub.add_parser("bounces", help="bounce and complaint reports").add_subparsers(
        dest="action", required=True
    )
    bprocess = bounces.add_parser(
        "process", help="read DSN bounces and ARF complaints (a file, a directory of .eml files or a maildir); "
        "suppress addresses that hard-bounced or complained"
    )
    bprocess.add_argument("path")
    bprocess.add_argument(
        "--trust-unverified", action="store_true",
        help="also act on reports that did not come back through our VERP return path (they can be forged)",
    )
    bprocess.add_argument("--json", action="store_true", help="print the summary as JSON")


def _add_topic_commands(sub: _Commands) -> None:
    topics = sub.add_parser("topics", help="the topic filter language").add_subparsers(dest="action", required=True)
    check = topics.add_parser("check", help="match lines of standard input against a query")
    check.add_argument("query")


AsyncCommand = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, None]]

ASYNC_COMMANDS: dict[str, AsyncCommand] = {
    "run": cmd_serve,
    "web": cmd_serve,
    "worker": cmd_serve,
    "migrate": cmd_migrate,
    "councils": cmd_councils,
    "sources": cmd_sources,
    "poll": cmd_poll,
    "partners": cmd_partners,
    "bounces": cmd_bounces,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    if args.command == "topics":
        return cmd_topics_check(settings, args)
    quiet = args.command not in ("run", "web", "worker")
    setup_logging(settings.log_format, "WARNING" if quiet else settings.log_level)
    from notifier.service import run_loop

    loop = settings.worker_event_loop if args.command == "worker" else "asyncio"
    try:
        run_loop(ASYNC_COMMANDS[args.command](settings, args), loop)
    except (CommandError, registry.RegistryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
