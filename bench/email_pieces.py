"""Benchmark: what one personal digest costs, piece by piece, without the database or the network.

Run from the repository root as `.venv/bin/python bench/email_pieces.py [--digests 1000] [--rounds 3]`.

The messages are bench/email_send.py's personal digests (5-20 entries each, every message its own content, drawn
from 400 events), taken through the steps the mailer takes for a content it has not seen: group the entries,
render the text part and the HTML part (with the kept macro renderings cleared before each message, "cold", and
kept, as a worker runs), tidy both, make the merge template, and merge one recipient's message. Each step is timed
on its own (CPU time, the best of the rounds) in microseconds a message. The baseline of the same run is the road
the template took before: `build_message` (an `EmailMessage` with the default policy) flattened by the email
package's generator for every content, against `MergeTemplate.assemble` on a skeleton kept per subject.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from aiosmtplib.email import flatten_message

from notifier.delivery.email.merge import MergeTemplate, Placeholders, Skeleton, link_holes
from notifier.delivery.email.message import build_message
from notifier.delivery.email.render import _tidy_html, _tidy_text, email_environment, render_digest
from notifier.delivery.email.views import EntryView, Following, group_entries
from notifier.delivery.email.words import format_date

sys.path.insert(0, str(Path(__file__).resolve().parent))
from email_send import COMMITTEES, DIGEST_EVENTS, EVENT_TYPES, TOPICS, digest_picks

DOMAIN = "alerts.example.org"
MAIL_FROM = f"Council alerts <alerts@{DOMAIN}>"
LIST_ID = f"Council alerts <alerts.{DOMAIN}>"


def views() -> list[EntryView]:
    now = datetime.now(UTC)
    return [
        EntryView(
            event_type=EVENT_TYPES[i % len(EVENT_TYPES)], council="Leicestershire County Council",
            title=f"{TOPICS[i % len(TOPICS)].title()} strategy: progress report {i}", what="agenda published",
            summary=f"{COMMITTEES[i % len(COMMITTEES)]}: report {i}", committee=COMMITTEES[i % len(COMMITTEES)],
            url=f"https://democracy.leics.gov.uk/ieListDocuments.aspx?MId={7000 + i}", when=now,
            documents=[(f"Agenda item {k}", f"https://x.example/{i}/{k}.pdf") for k in range(i % 3)],
        )
        for i in range(DIGEST_EVENTS)
    ]


def timed(n: int, rounds: int, step: Callable[[int], object], before: Callable[[], object] | None = None) -> float:
    """Microseconds of CPU a call of `step`, the best of `rounds` rounds of `n` calls (`before` runs before each)."""
    best = float("inf")
    for _ in range(rounds):
        if before is not None:
            before()
        start = time.process_time()
        for k in range(n):
            step(k)
        best = min(best, time.process_time() - start)
    return best / n * 1e6


def main(args: argparse.Namespace) -> None:
    env = email_environment()
    holes = Placeholders()
    links, _ = link_holes(lambda p: f"https://{DOMAIN}{p}", holes, 1)
    entries = views()
    following = [Following("everything at Leicestershire County Council", "daily")]
    day = datetime.now(UTC).date()
    n, rounds = args.digests, args.rounds
    picks = [[entries[e] for e in digest_picks(k)] for k in range(n)]

    def context(k: int) -> dict[str, object]:
        return {"subject": "s", "groups": group_entries(picks[k]), "count": len(picks[k]), "day": format_date(day),
                "links": links, "following": following, "warnings": (), "timezone": "Europe/London",
                "service_name": "Council alerts", "preheader": picks[k][0].summary}

    def cold() -> None:
        env.globals["kept"].clear()

    def digest(k: int) -> MergeTemplate:
        return render_digest(picks[k], day=day, links=links, following=following, env=env)

    contexts = [context(k) for k in range(n)]
    text_t, html_t = env.get_template("digest.txt"), env.get_template("digest.html")
    texts = [text_t.render(c) for c in contexts]
    htmls = [html_t.render(c) for c in contexts]
    rendered = [digest(k) for k in range(n)]
    skeleton = Skeleton.of(build_message(MergeTemplate.holes(rendered[0]), to=MergeTemplate.TO, mail_from=MAIL_FROM,
                                         links=links, list_id=LIST_ID, message_id_domain=DOMAIN), holes.hole)
    templates = [MergeTemplate.assemble(r, links, skeleton, hole=holes.hole, split=holes.split) for r in rendered]
    values = {"manage": "WzEyMzQ1XQ.axL_aw.Qmad5yBB_Yok4fHkn0TaG5D1ofI", "all": "WzEyMzQ1XQ.axL_aw.abc",
              "one": "WzEsMl0.axL_aw.x-y_z", "to": "resident@example.org", "msgid": f"<0123abcd@{DOMAIN}>"}

    def old_build(k: int) -> bytes:
        message = build_message(MergeTemplate.holes(rendered[k]), to=MergeTemplate.TO, mail_from=MAIL_FROM,
                                links=links, list_id=LIST_ID, message_id_domain=DOMAIN)
        return flatten_message(message, cte_type="7bit")

    results = {
        "grouping the entries (context)": timed(n, rounds, context),
        "render text part, entries cold": timed(n, rounds, lambda k: (cold(), text_t.render(contexts[k]))),
        "render HTML part, entries cold": timed(n, rounds, lambda k: (cold(), html_t.render(contexts[k]))),
        "render text part, entries kept": timed(n, rounds, lambda k: text_t.render(contexts[k])),
        "render HTML part, entries kept": timed(n, rounds, lambda k: html_t.render(contexts[k])),
        "tidy both parts": timed(n, rounds, lambda k: (_tidy_text(texts[k]), _tidy_html(htmls[k]))),
        "render_digest, entries cold": timed(n, rounds, lambda k: (cold(), digest(k))),
        "render_digest, entries kept": timed(n, rounds, digest),
        "MIME: EmailMessage (build_message)": timed(n, rounds, lambda k: build_message(
            MergeTemplate.holes(rendered[k]), to=MergeTemplate.TO, mail_from=MAIL_FROM, links=links, list_id=LIST_ID,
            message_id_domain=DOMAIN)),
        "MIME: EmailMessage + generator": timed(n, rounds, old_build),
        "template: from EmailMessage (make)": timed(n, rounds, lambda k: MergeTemplate.make(
            rendered[k], links, build_message(MergeTemplate.holes(rendered[k]), to=MergeTemplate.TO,
                                              mail_from=MAIL_FROM, links=links, list_id=LIST_ID,
                                              message_id_domain=DOMAIN), hole=holes.hole, split=holes.split)),
        "template: on a kept skeleton (assemble)": timed(n, rounds, lambda k: MergeTemplate.assemble(
            rendered[k], links, skeleton, hole=holes.hole, split=holes.split)),
        "merge one recipient": timed(n, rounds, lambda k: templates[k].merge(values)),
    }
    size = sum(len(t.merge(values)) for t in templates) // n
    print(f"{n} personal digests of 5-20 entries ({DIGEST_EVENTS} events), {size} bytes a message; "
          f"CPU time a message, best of {rounds} rounds")
    print(f"{'piece':<44}{'us':>8}")
    for label, us in results.items():
        print(f"{label:<44}{us:>8.0f}")
    for label, parts in (
        ("before: render + make from EmailMessage", ("render_digest, entries cold",
                                                     "template: from EmailMessage (make)")),
        ("after, entries cold: render + assemble", ("render_digest, entries cold",
                                                    "template: on a kept skeleton (assemble)")),
        ("after, entries kept: render + assemble", ("render_digest, entries kept",
                                                    "template: on a kept skeleton (assemble)")),
    ):
        print(f"{label:<44}{sum(results[p] for p in parts) + results['merge one recipient']:>8.0f}  (+ merge)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    main(parser.parse_args())
