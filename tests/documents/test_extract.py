"""Document text extraction: PDFs (made here by fpdf2 or by hand, and real council agendas), Word, HTML, plain text,
and the hostile cases, in this process and in the limited child process."""

from __future__ import annotations

import asyncio
import io
import os
import random
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import docx
import pytest

from notifier.documents.child import _child_environment, _child_result, extract_in_subprocess
from notifier.documents.extract import (
    CorruptDocument,
    EmptyInput,
    EncryptedDocument,
    ExtractedText,
    ExtractionError,
    NoTextLayer,
    OutOfMemory,
    TimedOut,
    TooLarge,
    TooManyPages,
    UnsupportedType,
    detect_kind,
    extract,
)
from notifier.documents.text import tidy
from tests.documents.makers import (
    blank_pdf,
    docx_bytes,
    encrypted_pdf,
    page_with_contents,
    pdf_pages,
    raw_pdf,
    report_pdf,
    scanned_pdf,
    zlib_bomb,
)

REPORTS = Path(__file__).resolve().parent.parent / "fixtures" / "reports"
SCANNED = REPORTS / "la_metro_board_minutes_2024-09-26_p1_scanned_no_text_layer.pdf"
MIB = 1024 * 1024


# --- PDF text, pages and paragraphs --------------------------------------------------------------------------------


def test_pdf_word_only_on_a_late_page_is_found_on_that_page() -> None:
    pages = [[f"Section {n}", "The committee noted the budget and the housing strategy."] for n in range(1, 13)]
    pages[10].append("Members discussed the dementia care contract.")
    result = extract(pdf_pages(pages))
    assert result.kind == "pdf"
    assert len(result.pages) == 12
    assert [i for i, page in enumerate(result.pages) if "dementia" in page] == [10]
    assert result.pages[0].startswith("Section 1\n\n")
    assert result.chars == sum(len(page) for page in result.pages)
    assert not result.truncated


def test_pdf_paragraphs_are_separated_by_one_blank_line_and_lines_kept() -> None:
    paragraphs = ["Purpose of Report", "The report asks the committee\nto approve the budget.", "Next."]
    result = extract(pdf_pages([paragraphs]))
    assert result.pages == ("Purpose of Report\n\nThe report asks the committee\nto approve the budget.\n\nNext.",)


def test_pdf_double_spaced_text_still_breaks_only_between_paragraphs() -> None:
    first = "\n".join(f"line {n} of the first paragraph" for n in range(1, 10))
    result = extract(pdf_pages([[first, "the second\nparagraph"]], line_height=12, paragraph_gap=12))
    assert result.pages == (first + "\n\nthe second\nparagraph",)


def test_pdf_line_end_hyphenation_joined_only_when_safe() -> None:
    text = ("We read the recom-\nmendation on well-\nbeing, with COVID-\n19 figures and the well-being board, at a "
            "not-to-\nexceed sum.")
    result = extract(pdf_pages([[text]]))
    assert result.pages == (
        "We read the recommendation on well-being, with COVID-19 figures and the well-being board, at a not-to-exceed "
        "sum.",
    )


def test_pdf_blank_pages_are_an_empty_document_not_a_scan() -> None:
    result = extract(blank_pdf(3))
    assert result == ExtractedText(pages=("", "", ""), kind="pdf", chars=0)


def test_pdf_image_only_has_no_text_layer() -> None:
    with pytest.raises(NoTextLayer, match="2 page"):
        extract(scanned_pdf(pages=2))


def test_pdf_real_scan_has_no_text_layer() -> None:
    with pytest.raises(NoTextLayer) as caught:
        extract(SCANNED.read_bytes())
    assert caught.value.reason == "no_text_layer"


def test_pdf_scanned_page_among_text_pages_is_an_empty_page() -> None:
    result = extract(scanned_pdf(2, text_page="Appendix B follows as a scan."))
    assert result.pages == ("Appendix B follows as a scan.", "", "")


def test_pdf_encrypted_with_user_password_is_refused() -> None:
    with pytest.raises(EncryptedDocument, match="password"):
        extract(encrypted_pdf("Confidential annex on the library closures.", user_password="reader"))


def test_pdf_encrypted_with_owner_password_only_is_read() -> None:
    result = extract(encrypted_pdf("Library closures consultation.", user_password=None))
    assert result.pages == ("Library closures consultation.",)


@pytest.mark.parametrize("fraction", [0.001, 0.1, 0.5, 0.9, 0.999])
def test_pdf_truncated_is_corrupt(fraction: float) -> None:
    data = (REPORTS / "ca_rosemead_city_council_agenda_2022-11-08.pdf").read_bytes()
    with pytest.raises(CorruptDocument):
        extract(data[: int(len(data) * fraction)])


def test_pdf_generated_and_truncated_is_corrupt() -> None:
    data = report_pdf(3)
    with pytest.raises(CorruptDocument):
        extract(data[: len(data) // 2])


CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"


@pytest.mark.parametrize(
    "objects",
    [
        pytest.param([CATALOG, b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>", PAGE], id="kids-include-self"),
        pytest.param(
            [CATALOG, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] >>"],
            id="kids-cycle",
        ),
        pytest.param([CATALOG, b"<< /Type /Pages /Kids [2 0 R 2 0 R] /Count 99999999 >>"], id="count-lies"),
    ],
)
def test_pdf_self_referencing_page_tree_is_corrupt(objects: list[bytes]) -> None:
    with pytest.raises(CorruptDocument):
        extract(raw_pdf(objects))


ONE_PAGE = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
DRAWS_X = (
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /XObject << /X 5 0 R >> >> >>"
)
SELF_DRAWING_FORM = (
    b"<< /Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << /XObject << /X 5 0 R >> >> /Length 5 >>"
    b"\nstream\n/X Do\nendstream"
)


def test_pdf_contents_array_that_holds_itself_is_an_empty_page() -> None:
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>"
    assert extract(raw_pdf([CATALOG, ONE_PAGE, page, b"[4 0 R 4 0 R]"])).pages == ("",)


def test_pdf_catalog_that_is_its_own_page_tree_is_an_empty_page() -> None:
    # PDFium reads it as one blank page.
    assert extract(raw_pdf([b"<< /Type /Catalog /Pages 1 0 R >>"])).pages == ("",)


def test_pdf_form_that_draws_itself_ends_as_a_page_without_text() -> None:
    # The page draws an object (the form), so it is not blank: a page with drawing and no text has no text layer.
    data = raw_pdf([CATALOG, ONE_PAGE, DRAWS_X, b"<< /Length 5 >>\nstream\n/X Do\nendstream", SELF_DRAWING_FORM])
    with pytest.raises(NoTextLayer):
        extract(data)


def test_pdf_text_in_a_hand_written_content_stream() -> None:
    stream = b"BT /F1 12 Tf 72 700 Td (Hand made agenda) Tj ET"
    data = raw_pdf([
        CATALOG,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])  # fmt: skip
    assert extract(data).pages == ("Hand made agenda",)


# --- real council PDFs ---------------------------------------------------------------------------------------------

REAL = [
    ("ca_hermosa_beach_city_council_agenda_2023-01-10.pdf", 12, 3,
     "Recommendation: Staff recommends City Council receive and file the written communication."),
    ("ca_palos_verdes_estates_planning_commission_agenda_2022-12-20.pdf", 7, 2, "Adopt Resolution No. PCR-2022"),
    ("ca_rancho_palos_verdes_city_council_agenda_2022-12-06.pdf", 8, 2,
     "Recommendation: Adopt a motion to waive reading in full"),
    ("ca_rosemead_city_council_agenda_2022-11-08.pdf", 7, 2,
     "The purpose of this report is to provide the City Council"),
    ("ca_san_diego_planning_commission_agenda_2022-09-29.pdf", 4, 3, "DEPARTMENT RECOMMENDATION"),
    ("chi_ssa21_lincoln_square_commission_minutes_2018-01-29.pdf", 2, 0, "2017/18 Financials approved"),
    ("il_finance_authority_special_meeting_notice_2020-12-08.pdf", 3, 1, "RESOLUTION"),
    ("la_metro_executive_management_committee_agenda_2017-06-15.pdf", 7, 0, "Executive Management Committee"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "pages", "page", "phrase"), REAL, ids=[row[0].split("_2")[0] for row in REAL])
def test_real_council_pdf(name: str, pages: int, page: int, phrase: str) -> None:
    result = extract((REPORTS / name).read_bytes(), "application/pdf", filename=name)
    assert result.kind == "pdf"
    assert len(result.pages) == pages
    assert phrase in result.pages[page]
    assert all(page.strip() for page in result.pages)
    # Words as printed, not run together (pypdf gives "Recommendation:StaffrecommendsCityCouncil..." on Hermosa
    # Beach): long tokens are web addresses and file names, not prose.
    words = [word for text in result.pages for word in text.split()]
    long_words = [word for word in words if len(word) > 25 and not any(c in word for c in "/@._")]
    assert len(long_words) <= len(words) // 200, long_words[:10]
    assert result == tidy_pages(result)


def tidy_pages(result: ExtractedText) -> ExtractedText:
    """The same result with each page tidied again: extraction output is already a fixed point of `tidy`."""
    return ExtractedText.of([tidy(page) for page in result.pages], result.kind, truncated=result.truncated)


def test_real_pdf_hermosa_beach_keeps_its_spaces() -> None:
    result = extract((REPORTS / "ca_hermosa_beach_city_council_agenda_2023-01-10.pdf").read_bytes())
    assert "STRAND PEDESTRIAN SAFETY PRESENTATION" in result.pages[3]
    assert "RecommendationStaff" not in result.pages[3].replace(":", "")


# --- Word, HTML, text ----------------------------------------------------------------------------------------------


def test_docx_paragraphs_and_tables_in_order() -> None:
    data = docx_bytes(
        ["The report sets out the housing strategy.", [["Option", "Cost"], ["Build", "£2m"]], "Members agreed."],
        heading="Housing Strategy",
    )
    result = extract(data, filename="report.docx")
    assert result == ExtractedText.of(
        ["Housing Strategy\n\nThe report sets out the housing strategy.\n\nOption | Cost\n\nBuild | £2m\n\n"
         "Members agreed."],
        "docx",
    )  # fmt: skip


def test_docx_merged_cells_and_line_breaks() -> None:
    word = docx.Document(io.BytesIO(docx_bytes([[["Ward", "Cllr"], ["North", "Smith"]]])))
    table = word.tables[0]
    table.cell(0, 0).merge(table.cell(0, 1)).text = "Ward and member"
    paragraph = word.add_paragraph("First line")
    paragraph.add_run().add_break()
    paragraph.add_run("second line\tafter a tab")
    out = io.BytesIO()
    word.save(out)
    result = extract(out.getvalue())
    assert result.pages == ("Ward and member\n\nNorth | Smith\n\nFirst line\nsecond line after a tab",)


def test_docx_document_xml_too_large_unpacked() -> None:
    data = docx_bytes(["word " * 50_000])
    with pytest.raises(TooLarge, match="unpacks"):
        extract(data, max_bytes=200_000)


def test_docx_damaged_document_xml_is_corrupt() -> None:
    source = zipfile.ZipFile(io.BytesIO(docx_bytes(["Fine text."])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            body = source.read(item)
            target.writestr(item, b"<w:document><w:body><w:p>" if item.filename == "word/document.xml" else body)
    with pytest.raises(CorruptDocument, match="Word"):
        extract(out.getvalue())


def test_html_document_blocks_become_paragraphs() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>Ignored</title><script>var x = 'dementia';</script></head><body>"
        b"<h1>Adult Social Care</h1><p>The board noted the\n   dementia strategy.</p><ul><li>One</li><li>Two</li></ul>"
        b"</body></html>"
    )
    result = extract(page, "text/html; charset=utf-8")
    assert result == ExtractedText.of(
        ["Adult Social Care\n\nThe board noted the dementia strategy.\n\nOne\n\nTwo"], "html"
    )


def test_html_charset_from_meta_and_sniffed_without_content_type() -> None:
    page = '<html><head><meta charset="windows-1252"></head><body><p>Caf\xe9 licence</p></body></html>'
    result = extract(page.encode("cp1252"))
    assert result.pages == ("Café licence",)


def test_plain_text_keeps_paragraphs() -> None:
    result = extract(b"Item 1\r\nApologies\r\n\r\n\r\n\r\nItem 2  \t Minutes\x0c", "text/plain")
    assert result == ExtractedText.of(["Item 1\nApologies\n\nItem 2 Minutes"], "text")


@pytest.mark.parametrize(
    ("raw", "tidied"),
    [
        ("a\u00a0 b\u2003c", "a b c"),
        ("\ufb01nance of\ufb02ats", "finance offlats"),
        ("demen\u00adtia\u200b", "dementia"),
        ("\n\n  one \n\n\n\n two\n\n", "one\n\ntwo"),
        ("one\u2029two\u2028three", "one\n\ntwo\nthree"),
        ("", ""),
    ],
)
def test_tidy(raw: str, tidied: str) -> None:
    assert tidy(raw) == tidied


# --- what the bytes are --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type", "filename", "kind"),
    [
        (b"%PDF-1.7\n...", "text/html", None, "pdf"),
        (b"junk before the header %PDF-1.4\n", None, None, "pdf"),
        (b"<!doctype html><p>Not found</p>", "application/pdf", "agenda.pdf", "html"),
        (b"\xef\xbb\xbf<html><body>x</body></html>", None, None, "html"),
        (b"Minutes of the meeting", "text/plain; charset=utf-8", None, "text"),
        (b"Minutes of the meeting", None, "minutes.txt", "text"),
        (b"Minutes of the meeting", "application/octet-stream", None, "text"),
        (b"<p>Fragment</p>", None, None, "html"),
        (b"Minutes", "TEXT/HTML", None, "html"),
    ],
)
def test_detect_kind(data: bytes, content_type: str | None, filename: str | None, kind: str) -> None:
    assert detect_kind(data, content_type, filename) == kind


def test_detect_docx_by_magic_whatever_it_is_called() -> None:
    assert detect_kind(docx_bytes(["x"]), "application/octet-stream", "download.bin") == "docx"


@pytest.mark.parametrize(
    ("data", "content_type", "error"),
    [
        (b"", None, EmptyInput),
        (b"", "application/pdf", EmptyInput),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "application/msword", UnsupportedType),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00", "image/gif", UnsupportedType),
        (b"not a pdf at all", "application/pdf", CorruptDocument),
        (b"PK\x03\x04 broken", None, CorruptDocument),
    ],
)
def test_detect_kind_refuses(data: bytes, content_type: str | None, error: type[ExtractionError]) -> None:
    with pytest.raises(error):
        extract(data, content_type)


def test_zip_that_is_not_a_word_document_is_unsupported() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(UnsupportedType, match="ZIP"):
        extract(out.getvalue())


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_give_a_clean_error(seed: int) -> None:
    data = random.Random(seed).randbytes(4096)
    with pytest.raises((UnsupportedType, CorruptDocument)):
        extract(data)
    with pytest.raises(CorruptDocument):
        extract(b"%PDF-1.4\n" + data)


# --- caps ----------------------------------------------------------------------------------------------------------


def test_too_many_pages() -> None:
    with pytest.raises(TooManyPages, match="12 pages"):
        extract(blank_pdf(12), max_pages=10)


def test_too_many_bytes() -> None:
    with pytest.raises(TooLarge):
        extract(b"x" * 1001, "text/plain", max_bytes=1000)


def test_character_cap_cuts_at_a_word_and_flags_the_result() -> None:
    data = report_pdf(6)
    whole = extract(data)
    capped = extract(data, max_chars=whole.chars // 3)
    assert capped.truncated
    assert capped.chars <= whole.chars // 3
    assert len(capped.pages) < len(whole.pages)
    assert capped.pages[:-1] == whole.pages[: len(capped.pages) - 1]
    last = capped.pages[-1]
    assert whole.pages[len(capped.pages) - 1].startswith(last)
    assert whole.pages[len(capped.pages) - 1][len(last)].isspace()


def test_character_cap_on_a_one_page_kind() -> None:
    result = extract(b"alpha beta gamma delta", "text/plain", max_chars=13)
    assert result == ExtractedText(pages=("alpha beta",), kind="text", chars=10, truncated=True)


def test_extracted_text_chars_must_match_its_pages() -> None:
    with pytest.raises(ValueError, match="chars"):
        ExtractedText(pages=("abc",), kind="text", chars=2)


# --- in a child process --------------------------------------------------------------------------------------------


async def test_subprocess_gives_the_same_text_as_in_process() -> None:
    data = (REPORTS / "ca_hermosa_beach_city_council_agenda_2023-01-10.pdf").read_bytes()
    assert await extract_in_subprocess(data) == extract(data)


async def test_subprocess_passes_errors_and_caps_through() -> None:
    with pytest.raises(NoTextLayer):
        await extract_in_subprocess(SCANNED.read_bytes())
    with pytest.raises(EncryptedDocument):
        await extract_in_subprocess(encrypted_pdf("Secret.", user_password="reader"))
    with pytest.raises(TooManyPages):
        await extract_in_subprocess(blank_pdf(3), max_pages=2)
    with pytest.raises(EmptyInput):
        await extract_in_subprocess(b"")
    result = await extract_in_subprocess(docx_bytes(["one two three four"]), max_chars=8)
    assert result == ExtractedText(pages=("one two",), kind="docx", chars=7, truncated=True)


async def test_subprocess_decompression_bomb_stops_at_the_memory_limit() -> None:
    # 4 GiB of zeros in a 4 MB page content stream; the child may use 256 MiB.
    data = page_with_contents(zlib_bomb(4 * 1024 * MIB))
    assert len(data) < 8 * MIB
    with pytest.raises(OutOfMemory, match="memory limit"):
        await extract_in_subprocess(data, memory_bytes=256 * MIB)
    assert (await extract_in_subprocess(report_pdf(2), memory_bytes=256 * MIB)).kind == "pdf"


async def test_subprocess_timeout_kills_the_child_and_the_next_call_works() -> None:
    with pytest.raises(TimedOut, match="took more than 0 s"):
        await extract_in_subprocess(report_pdf(2), timeout=0)
    assert extraction_children() == []
    result = await extract_in_subprocess(report_pdf(2))
    assert len(result.pages) == 2


async def test_subprocess_cancelled_call_kills_its_child() -> None:
    task = asyncio.ensure_future(extract_in_subprocess(report_pdf(2)))
    while not (children := extraction_children()):
        assert not task.done(), "the child ended before it was seen"
        await asyncio.sleep(0.001)
    # Frozen, it cannot finish on its own: only the cancelled call can end it.
    os.kill(children[0], signal.SIGSTOP)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert extraction_children() == []


def extraction_children() -> list[int]:
    """The ids of this process's live children running the extraction module (from /proc)."""
    children = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids = (task / "children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread (of the default executor, say) that ended while the list was read
        for pid in pids:
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"notifier.documents.child" in command:
                children.append(int(pid))
    return children


@pytest.mark.parametrize(
    ("returncode", "stderr", "error", "message"),
    [
        (-signal.SIGKILL, b"", OutOfMemory, "SIGKILL"),
        (-signal.SIGABRT, b"", OutOfMemory, "memory limit of 1000 bytes"),
        (-signal.SIGXCPU, b"", TimedOut, "SIGXCPU"),
        (-signal.SIGSEGV, b"", CorruptDocument, "SIGSEGV"),
        (1, b"Traceback ...\nMemoryError", OutOfMemory, "exit status 1"),
        (2, b"usage: ...", ExtractionError, "usage"),
        (0, b"", ExtractionError, "unreadable answer"),
    ],
)
def test_subprocess_child_that_died_is_a_clean_error(
    returncode: int, stderr: bytes, error: type[ExtractionError], message: str
) -> None:
    # How a child that ended without its answer is reported: killed by the kernel (SIGKILL), refused memory by its
    # allocator (SIGABRT), past its CPU backstop (SIGXCPU), crashed, or failed before writing.
    with pytest.raises(ExtractionError, match=message) as caught:
        _child_result(returncode, b"", stderr, 1000)
    assert type(caught.value) is error


def test_subprocess_answers_are_read_strictly() -> None:
    assert _child_result(0, b'{"kind": "text", "pages": ["a"], "truncated": false}', b"", 1000).pages == ("a",)
    with pytest.raises(ExtractionError, match="unknown kind"):
        _child_result(0, b'{"kind": "exe", "pages": ["a"], "truncated": false}', b"", 1000)
    with pytest.raises(EncryptedDocument, match="needs a password"):
        _child_result(0, b'{"error": "encrypted", "message": "needs a password"}', b"", 1000)


async def test_subprocess_hostile_page_trees_are_corrupt() -> None:
    data = raw_pdf([CATALOG, b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>", PAGE])
    with pytest.raises(CorruptDocument):
        await extract_in_subprocess(data)


def test_subprocess_child_gets_no_secrets_in_its_environment() -> None:
    environment = {"PATH": "/usr/bin", "LANG": "en_GB.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONPATH": "/srv/app",
                   "NOTIFIER_DATABASE_URL": "postgresql://u:p@db/notifier", "NOTIFIER_SMTP_URL": "smtp://u:p@mail",
                   "API_KEY": "x", "PYTHONSTARTUP": "/tmp/a.py", "MYPATH": "x", "PATH_TOKEN": "x"}  # fmt: skip
    assert _child_environment(environment) == {
        "PATH": "/usr/bin", "LANG": "en_GB.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONPATH": "/srv/app",
    }  # fmt: skip


def test_child_module_runs_with_python_m() -> None:
    # The child's command line, as an operator would run it by hand on a file that broke a worker.
    limits = ["--memory-bytes", str(512 * MIB), "--cpu-seconds", "30", "--max-pages", "10", "--max-chars", "100",
              "--max-bytes", str(MIB)]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "notifier.documents.child", *limits, "--content-type", "text/plain"],
        input=b"Agenda item one", capture_output=True, check=True, env=os.environ.copy(),
    )  # fmt: skip
    assert done.stdout == b'{"kind": "text", "pages": ["Agenda item one"], "truncated": false}'
