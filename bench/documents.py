"""Benchmark: document text extraction, PDFium (the extractor's library) against pypdf, in the same run.

Run as `.venv/bin/python bench/documents.py [--rounds 3] [--out bench/results/documents.md]`.

The workload: the real council agendas and minutes in tests/fixtures/reports (9 PDFs, 51 pages, 2.4 MB, one of
them a scan with no text layer) and report-like PDFs made by fpdf2 (tests/documents/makers.py): one of 20 pages and
one of 100 pages. Each set is read by:

- `extract()`: the extractor as the service runs it (PDFium, paragraphs from line geometry, hyphenation, tidying);
- PDFium alone: pypdfium2's page text, nothing else (the library's own cost);
- pypdf alone: `PdfReader(...).pages[i].extract_text()`, the other candidate;
- `extract_in_subprocess()`: the extractor in its limited child process, one child per document (the real fixtures
  only), which adds the cost of starting a Python process.

For each it prints pages a second and MB (of PDF) a second, the best of `--rounds` rounds (wall time; the CPU time,
of the child processes too, is printed beside it, as the machine may be shared), and on the
real fixtures a fidelity check: how many of the extracted words are "run together" (longer than 25 characters and
not a web address or file name), the failure pypdf shows on the Hermosa Beach agenda. Results are also written as
markdown to bench/results/documents.md.

Then what a document's text adds to matching (`--subscriptions`, default 1,000,000; `0` skips it): the percolator
is loaded with that many filters from bench/match.py's workload (its vocabulary, query shapes and places), and
events of 200 words are matched alone (the baseline, as before this text was read) and with a 20-page report's
text (500 words a page from the same vocabulary) joined to them, as the matcher joins a `document.published`
event's paper. For each: building the event's `Document`, matching it (p50 / p99), matches per event, and finding
the page snippets of every matched term (`EventDocuments.snippets`).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts bench/ (not the repository root) on sys.path: put the project there too, so it
# imports without being installed.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import io  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import date  # noqa: E402

import match as match_bench  # noqa: E402  # bench/match.py, beside this file
import pypdf  # noqa: E402
import pypdfium2 as pdfium  # noqa: E402

from notifier.documents.child import extract_in_subprocess  # noqa: E402
from notifier.documents.extract import ExtractedText, ExtractionError, extract  # noqa: E402
from notifier.matching.documents import DocumentText, EventDocuments  # noqa: E402
from notifier.matching.matcher import LOAD_CHUNK, FilterLoader  # noqa: E402
from notifier.topics.evaluate import Document as TextDocument  # noqa: E402
from notifier.topics.evaluate import EventFacts  # noqa: E402
from notifier.topics.index import Percolator  # noqa: E402
from tests.documents.makers import report_pdf  # noqa: E402

REPORTS = ROOT / "tests" / "fixtures" / "reports"
MB = 1_000_000
# A word longer than this that is not an address or a file name is several words run together.
LONG_WORD = 25


@dataclass(frozen=True)
class Document:
    name: str
    data: bytes


@dataclass(frozen=True)
class Row:
    workload: str
    reader: str
    documents: int
    pages: int
    megabytes: float
    seconds: float
    cpu_seconds: float
    words: int | None = None
    run_together: int | None = None

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds

    @property
    def megabytes_per_second(self) -> float:
        return self.megabytes / self.seconds


# A reader turns a PDF into its pages' texts (empty for a page without text, or for a document it refuses).
Reader = Callable[[bytes], list[str]]


def read_with_extract(data: bytes) -> list[str]:
    try:
        return list(extract(data).pages)
    except ExtractionError:
        return []


def read_with_pdfium(data: bytes) -> list[str]:
    document = pdfium.PdfDocument(data)
    try:
        texts = []
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return texts
    finally:
        document.close()


def read_with_pypdf(data: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]


READERS: dict[str, Reader] = {
    "extract() (PDFium + layout)": read_with_extract,
    "PDFium alone (pypdfium2)": read_with_pdfium,
    "pypdf alone": read_with_pypdf,
}


def page_count(data: bytes) -> int:
    document = pdfium.PdfDocument(data)
    try:
        return len(document)
    finally:
        document.close()


def run_together(texts: Sequence[str]) -> tuple[int, int]:
    """(words, words run together) over the texts."""
    words = [word for text in texts for word in text.split()]
    long_words = [w for w in words if len(w) > LONG_WORD and not any(c in w for c in "/@._")]
    return len(words), len(long_words)


def measure(workload: str, documents: Sequence[Document], reader: str, rounds: int, *, fidelity: bool) -> Row:
    read = READERS[reader]
    best = best_cpu = float("inf")
    texts: list[str] = []
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), time.process_time()
        texts = [text for document in documents for text in read(document.data)]
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - started_cpu)
    words, joined = run_together(texts) if fidelity else (None, None)
    return Row(workload, reader, len(documents), sum(page_count(d.data) for d in documents),
               sum(len(d.data) for d in documents) / MB, best, best_cpu, words, joined)  # fmt: skip


def measure_subprocess(workload: str, documents: Sequence[Document], rounds: int) -> Row:
    async def once() -> list[ExtractedText | None]:
        results: list[ExtractedText | None] = []
        for document in documents:
            try:
                results.append(await extract_in_subprocess(document.data))
            except ExtractionError:
                results.append(None)
        return results

    best = best_cpu = float("inf")
    texts: list[str] = []
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), _cpu_with_children()
        results = asyncio.run(once())
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, _cpu_with_children() - started_cpu)
        texts = [page for result in results if result is not None for page in result.pages]
    words, joined = run_together(texts)
    return Row(workload, "extract_in_subprocess(), one child each", len(documents),
               sum(page_count(d.data) for d in documents), sum(len(d.data) for d in documents) / MB, best, best_cpu,
               words, joined)  # fmt: skip


def _cpu_with_children() -> float:
    """CPU time (user + system) of this process and of its children that have ended."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


REPORT_PAGES = 20
WORDS_A_PAGE = 500
EVENT_WORDS = 200


def _percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def load_percolator(size: int, w: match_bench.Workload) -> tuple[Percolator, float]:
    """A percolator over `size` filters of bench/match.py's workload, as the worker loads it; and the seconds."""
    rows = []
    for i in range(size):
        spec = match_bench.make_spec(w)
        rows.append({"id": i, "query": spec.query, "councils": list(spec.councils), "regions": list(spec.regions),
                     "committees": list(spec.committees), "kinds": list(spec.kinds),
                     "event_types": list(spec.event_types)})  # fmt: skip
    started = time.perf_counter()
    perc = Percolator()
    for _ in range(500):
        perc.observe(match_bench.make_event(w, EVENT_WORDS)[0])
    loader = FilterLoader()
    with perc.bulk():
        for first in range(0, len(rows), LOAD_CHUNK):
            for row in rows[first : first + LOAD_CHUNK]:
                perc.add(row["id"], loader.filter(row))
    return perc, time.perf_counter() - started


@dataclass(frozen=True)
class MatchFigures:
    what: str
    build_ms: float
    match_p50_ms: float
    match_p99_ms: float
    matches: float
    snippets_ms: float


def measure_matching(perc: Percolator, w: match_bench.Workload, events: int, *, with_report: bool) -> MatchFigures:
    builds, matches, counts, snippet_times = [], [], [], []
    for _ in range(events):
        ev, text = match_bench.make_event(w, EVENT_WORDS)
        pages = tuple(w.text(WORDS_A_PAGE) for _ in range(REPORT_PAGES)) if with_report else ()
        docs = EventDocuments([DocumentText("Report", pages)])
        started = time.perf_counter()
        doc = TextDocument.from_text(text + "\n" + docs.text if with_report else text)
        builds.append(time.perf_counter() - started)
        facts = EventFacts(ev.council, ev.event_type, ev.kind, doc, ev.region, ev.committee, ev.committee_id)
        best = float("inf")
        for _ in range(3):  # the best of three: the machine's noise, not the index's
            started = time.perf_counter()
            found = perc.matches(facts)  # as the worker reads it: ids in chunks of equal terms
            ids = found.ids()
            best = min(best, time.perf_counter() - started)
        matches.append(best)
        counts.append(len(ids))
        started = time.perf_counter()
        if with_report:
            for terms, _ in found.by_terms():  # the worker looks snippets up once per distinct terms
                docs.snippets(terms)
        snippet_times.append(time.perf_counter() - started)
    what = f"{EVENT_WORDS}-word event" + (f" + {REPORT_PAGES}-page report ({REPORT_PAGES * WORDS_A_PAGE:,} words)"
                                          if with_report else " alone (baseline)")  # fmt: skip
    return MatchFigures(what, 1000 * sorted(builds)[len(builds) // 2], 1000 * sorted(matches)[len(matches) // 2],
                        1000 * _percentile(matches, 0.99), sum(counts) / len(counts),
                        1000 * sorted(snippet_times)[len(snippet_times) // 2])  # fmt: skip


def matching_lines(size: int, events: int) -> list[str]:
    """What a 20-page report's text adds to matching one event against `size` subscriptions, as markdown."""
    if size <= 0:
        return []
    w = match_bench.make_workload(1)
    perc, load_seconds = load_percolator(size, w)
    print(f"... {size:,} subscriptions loaded in {load_seconds:.1f} s", flush=True)
    figures = []
    for flag in (False, True):
        figures.append(measure_matching(perc, w, events, with_report=flag))
        print(f"... {figures[-1]}", flush=True)
    lines = [
        f"### Matching a document's text against {size:,} subscriptions",
        "",
        f"Percolator loaded with {size:,} filters of bench/match.py's workload in {load_seconds:.1f} s. {events} "
        "events each; medians, match time the best of 3 per event.",
        "",
        "| event | build Document ms | match p50 ms | match p99 ms | matches per event | snippets ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for f in figures:
        lines.append(f"| {f.what} | {f.build_ms:.2f} | {f.match_p50_ms:.2f} | {f.match_p99_ms:.2f} | "
                     f"{f.matches:,.0f} | {f.snippets_ms:.2f} |")  # fmt: skip
    base, report = figures
    added = report.build_ms + report.match_p50_ms + report.snippets_ms - base.build_ms - base.match_p50_ms
    lines += ["", f"The report adds {added:.1f} ms to matching one event (build + match p50 + snippets).", ""]
    return lines


def workloads() -> dict[str, list[Document]]:
    real = [Document(path.name, path.read_bytes()) for path in sorted(REPORTS.glob("*.pdf"))]
    return {
        "real council PDFs": real,
        "generated report, 20 pages": [Document("report-20", report_pdf(20, seed=20))],
        "generated report, 100 pages": [Document("report-100", report_pdf(100, seed=100))],
    }


def table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| workload | reader | docs | pages | MB | wall s | CPU s | pages/s | MB/s | words run together |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        fidelity = "" if row.words is None else f"{row.run_together:,} of {row.words:,}"
        lines.append(
            f"| {row.workload} | {row.reader} | {row.documents} | {row.pages} | {row.megabytes:.2f} | "
            f"{row.seconds:.3f} | {row.cpu_seconds:.3f} | {row.pages_per_second:,.0f} | "
            f"{row.megabytes_per_second:.1f} | {fidelity} |"
        )
    return lines


def speedups(rows: Sequence[Row]) -> list[str]:
    lines = []
    for workload in dict.fromkeys(row.workload for row in rows):
        by_reader = {row.reader: row for row in rows if row.workload == workload}
        pdfium_row, pypdf_row = by_reader.get("PDFium alone (pypdfium2)"), by_reader.get("pypdf alone")
        chosen = by_reader.get("extract() (PDFium + layout)")
        if pdfium_row and pypdf_row and chosen:
            lines.append(f"- {workload}: PDFium alone is {pypdf_row.cpu_seconds / pdfium_row.cpu_seconds:.1f}x as fast "
                         f"as pypdf; extract() (with layout and tidying) "
                         f"{pypdf_row.cpu_seconds / chosen.cpu_seconds:.1f}x (CPU time).")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per reader; the best is kept (default 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "documents.md")
    parser.add_argument("--subscriptions", type=int, default=1_000_000,
                        help="subscriptions to match a document's text against (0: skip)")
    parser.add_argument("--events", type=int, default=50, help="events timed with and without a report")
    args = parser.parse_args()
    # pypdf logs every damaged cross-reference it works around; the figures are what matters here.
    logging.getLogger("pypdf").setLevel(logging.ERROR)

    sets = workloads()
    rows: list[Row] = []
    for workload, documents in sets.items():
        fidelity = workload.startswith("real")
        rows += [measure(workload, documents, reader, args.rounds, fidelity=fidelity) for reader in READERS]
    rows.append(measure_subprocess("real council PDFs", sets["real council PDFs"], args.rounds))
    matching = matching_lines(args.subscriptions, args.events)

    machine = f"{platform.machine()}, Python {platform.python_version()}, pypdfium2 {pdfium.version.PYPDFIUM_INFO}, " \
              f"PDFium {pdfium.version.PDFIUM_INFO}, pypdf {pypdf.__version__}"  # fmt: skip
    report = [
        f"## Documents: PDF text extraction, PDFium against pypdf ({date.today().isoformat()})",
        "",
        f"Command: `.venv/bin/python bench/documents.py --rounds {args.rounds} --subscriptions {args.subscriptions} "
        f"--events {args.events}`. {machine}, {os.cpu_count()} "
        f"cores, load average {os.getloadavg()[0]:.1f} at the start. Best of {args.rounds} rounds, one process, "
        "one document at a time. On a shared machine compare the CPU times: wall times move with the load.",
        "",
        *table(rows),
        "",
        *speedups(rows),
        "",
        *matching,
    ]
    print("\n".join(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(report))
    print(f"written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
