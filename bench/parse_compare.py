"""Benchmark: the CPU of parsing ModernGov meetings, this tree's code against an older commit's, in one process.

Run as `.venv/bin/python bench/parse_compare.py [--rev 228afee] [--rounds 16]`. The older commit's `notifier` package
is taken out of git (`git archive`) into a temporary folder under another name (`notifier_old`), so both import side
by side. First every record the two parse is compared field by field (types too): the answers of `bench/ingest.py`'s
workloads, first sight and moved, and every GetMeeting fixture of tests/fixtures/moderngov under two summaries and
two zones (an error must be the same error). Then each workload's answers (`--sources` x 10 meetings x 40 items) are
parsed by old and new code in turn, alternating which goes first, `--rounds` times; the best CPU time
(`time.process_time`) an item of each is printed, with the next best four.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import io
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ingest  # noqa: E402

from notifier.demo.data import LONDON  # noqa: E402
from notifier.sources import moderngov as new  # noqa: E402

_IMPORT = re.compile(r"\b(from|import) notifier(\.| import|\b)")


def old_package(rev: str, into: Path) -> ModuleType:
    """`notifier.sources.moderngov` as of `rev`, imported from a copy of its package named `notifier_old`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "notifier"], check=True, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    (into / "notifier").rename(into / "notifier_old")
    for path in (into / "notifier_old").rglob("*.py"):
        path.write_text(_IMPORT.sub(r"\1 notifier_old\2", path.read_text("utf-8")), "utf-8")
    sys.path.insert(0, str(into))
    return importlib.import_module("notifier_old.sources.moderngov")


def fields(record: Any) -> list[tuple[str, Any]]:
    """A record's fields with their types, enums as their values (the two packages' enums are different classes)."""
    out: list[tuple[str, Any]] = []
    for name in ("kind", "external_id", "title", "committee", "committee_id", "body", "starts_at", "status", "url",
                 "parent", "published_at", "data"):
        value = getattr(record, name)
        if name == "kind":
            value = value.value
        elif name == "parent" and value is not None:
            value = (value[0].value, value[1], type(value[1]).__name__)
        elif isinstance(value, datetime):
            value = (value.isoformat(), repr(value.tzinfo))
        elif name == "data":
            value = [(k, type(v).__name__, v) for k, v in value.items()]
        else:
            value = (type(value).__name__, value)
        out.append((name, value))
    return out


def parse_all(module: ModuleType, answers: Sequence[ingest.Answers], now: datetime) -> list[Any]:
    records: list[Any] = []
    for source in answers:
        for summary, body in source.meetings:
            records.extend(module.parse_meeting(body, summary=summary, base=ingest.SITE, tz="Europe/London",
                                                fetched_at=now))
    return records


def outcome(module: ModuleType, body: bytes, summary: Any, tz: str, now: datetime) -> Any:
    try:
        return [fields(r) for r in module.parse_meeting(body, summary=summary, base="https://x.gov.uk/mg", tz=tz,
                                                        fetched_at=now)]
    except Exception as e:  # an error is an outcome to compare too
        return ("error", type(e).__name__, str(e))


def compare(old: ModuleType, now: datetime) -> int:
    """How many records (or errors) the two gave alike; AssertionError at the first difference."""
    today = now.astimezone(LONDON).date()
    alike = 0
    for workload in ingest.WORKLOADS.values():
        for moved in (False, True):
            answers = ingest.build_answers(workload, 3, 4, 40, today, moved=moved)
            a, b = parse_all(old, answers, now), parse_all(new, answers, now)
            assert len(a) == len(b), (workload.name, len(a), len(b))
            for x, y in zip(a, b, strict=True):
                assert fields(x) == fields(y), (fields(x), fields(y))
                alike += 1
    for path in sorted((ROOT / "tests" / "fixtures" / "moderngov").glob("meeting*.xml")):
        body = path.read_bytes()
        for mid in sorted({m.decode() for m in re.findall(rb"<meetingid>(\d+)</meetingid>", body, re.I)}):
            for summary in (new.MeetingSummary(mid, "501", "Health and Wellbeing Board", "24/09/2026", "2.00 pm",
                                               "Confirmed", ""),
                            new.MeetingSummary(mid, "77", "", "", "", "", "Special (Cancelled)")):
                for tz in ("Europe/London", "America/New_York"):
                    a, b = outcome(old, body, summary, tz, now), outcome(new, body, summary, tz, now)
                    assert a == b, (path.name, a, b)
                    alike += len(b) if isinstance(b, list) else 1
    return alike


def timing(old: ModuleType, now: datetime, sources: int, rounds: int) -> None:
    today = now.astimezone(LONDON).date()
    for workload in ingest.WORKLOADS.values():
        answers = ingest.build_answers(workload, sources, 10, 40, today)
        items = len(parse_all(new, answers, now))
        per_item: dict[str, list[float]] = {"old": [], "new": []}
        for r in range(rounds):
            order = (("old", old), ("new", new)) if r % 2 == 0 else (("new", new), ("old", old))
            for name, module in order:
                gc.collect()
                started = time.process_time()
                parse_all(module, answers, now)
                per_item[name].append((time.process_time() - started) / items * 1e6)
        best = {name: sorted(values) for name, values in per_item.items()}
        gain = (best["old"][0] - best["new"][0]) / best["old"][0] * 100
        print(f"{workload.name}: {items:,} items; CPU µs an item, best (next four): "
              f"old {best['old'][0]:.1f} ({', '.join(f'{v:.1f}' for v in best['old'][1:5])}), "
              f"new {best['new'][0]:.1f} ({', '.join(f'{v:.1f}' for v in best['new'][1:5])}); {gain:+.1f}% less")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rev", default="228afee", help="the older commit")
    p.add_argument("--rounds", type=int, default=16)
    p.add_argument("--sources", type=int, default=2, help="sources of 10 meetings of 40 items parsed a round")
    args = p.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as folder:
        old = old_package(args.rev, Path(folder))
        print(f"records alike, old ({args.rev}) and new: {compare(old, now):,}")
        timing(old, now, args.sources, args.rounds)


if __name__ == "__main__":
    main()
