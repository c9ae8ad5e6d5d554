"""Document bytes to text, page by page: PDF, Word (.docx), HTML and plain text.

`extract` does the work in the calling process; `notifier.documents.child.extract_in_subprocess` runs it in a child
process with a time and a memory limit, so that one hostile or broken file (a decompression bomb, a parser stuck in
a loop, a crash in C code) costs one child, never the worker. Every failure is an `ExtractionError` with a `reason`
code.

The type is found from the bytes first (`%PDF-`, a ZIP holding `word/document.xml`, HTML markup), then from the
declared content type, then from the file name: servers label documents wrongly more often than files lie.

PDFs are read with PDFium (pypdfium2) rather than pypdf, for speed and for fidelity. On the real council agendas
in tests/fixtures/reports, PDFium alone took 19 to 31 times less CPU time than pypdf over three runs of
bench/documents.py, and this whole extractor, its layout work included, 15 to 27 times less; on plain generated
reports, 3 to 5 and 2 to 4 times less. And PDFium reads them better: on the Hermosa Beach agenda pypdf runs the
words together ("Recommendation:StaffrecommendsCityCouncil..."), elsewhere it drops the space after item numbers
("1.November") or doubles spaces, while PDFium gives the words as printed. PDFium also gives each character's
position, from which paragraphs are found (`notifier.documents.pdf`), and marks words hyphenated at a line end.
Being C, it can crash or exhaust memory on a hostile file; the child process contains that (pypdf, pure Python,
would need the same containment for its slowness and its loops).
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from notifier.documents.pdf import join_hyphenated, page_has_objects, page_text
from notifier.documents.text import tidy

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_CHARS",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_MEMORY_BYTES",
    "DEFAULT_TIMEOUT",
    "CorruptDocument",
    "EmptyInput",
    "EncryptedDocument",
    "ExtractedText",
    "ExtractionError",
    "Kind",
    "NoTextLayer",
    "OutOfMemory",
    "TimedOut",
    "TooLarge",
    "TooManyPages",
    "UnsupportedType",
    "detect_kind",
    "extract",
]

DEFAULT_MAX_PAGES = 2_000
DEFAULT_MAX_CHARS = 2_000_000
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_TIMEOUT = 60.0
DEFAULT_MEMORY_BYTES = 1024 * 1024 * 1024

Kind = Literal["pdf", "docx", "html", "text"]


@dataclass(frozen=True, slots=True)
class ExtractedText:
    """A document's text: one string per page (a format without pages is one page), tidied as
    `notifier.documents.text.tidy` describes. `truncated` is set when the character cap cut it short."""

    pages: tuple[str, ...]
    kind: Kind
    chars: int
    truncated: bool = False

    def __post_init__(self) -> None:
        if self.chars != sum(len(page) for page in self.pages):
            raise ValueError(f"chars is {self.chars}, but the pages hold {sum(len(page) for page in self.pages)}")

    @classmethod
    def of(cls, pages: Sequence[str], kind: Kind, *, truncated: bool = False) -> ExtractedText:
        return cls(tuple(pages), kind, sum(len(page) for page in pages), truncated)


class ExtractionError(Exception):
    """A document whose text could not be extracted; `reason` says why, as a stable code."""

    reason: ClassVar[str] = "failed"


class UnsupportedType(ExtractionError):
    """Not a PDF, Word .docx, HTML or plain-text document."""

    reason = "unsupported_type"


class EmptyInput(ExtractionError):
    """No bytes at all. (A document whose pages are blank is not an error: it has no text.)"""

    reason = "empty"


class EncryptedDocument(ExtractionError):
    """A document that needs a password to open, or uses an encryption scheme that cannot be read."""

    reason = "encrypted"


class NoTextLayer(ExtractionError):
    """A PDF whose pages draw something (scanned images, text as outlines) but hold no text at all."""

    reason = "no_text_layer"


class CorruptDocument(ExtractionError):
    """A document of a known type that is damaged or truncated, or that crashed its parser."""

    reason = "corrupt"


class TooLarge(ExtractionError):
    """More bytes (or, unpacked, more XML) than the limit."""

    reason = "too_large"


class TooManyPages(ExtractionError):
    """More pages than the limit."""

    reason = "too_many_pages"


class TimedOut(ExtractionError):
    """The extraction ran past its time limit and was stopped."""

    reason = "timed_out"


class OutOfMemory(ExtractionError):
    """The extraction ran out of memory (its limit in a child process) and was stopped."""

    reason = "out_of_memory"


ERRORS_BY_REASON: dict[str, type[ExtractionError]] = {
    cls.reason: cls
    for cls in (ExtractionError, UnsupportedType, EmptyInput, EncryptedDocument, NoTextLayer, CorruptDocument,
                TooLarge, TooManyPages, TimedOut, OutOfMemory)
}  # fmt: skip


def extract(
    data: bytes,
    content_type: str | None = None,
    *,
    filename: str | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ExtractedText:
    """The text of a document, in this process and without a time or memory limit (see `extract_in_subprocess`).

    Raises an `ExtractionError`. Text past `max_chars` is cut off and the result marked `truncated`; a document with
    more than `max_pages` pages or more than `max_bytes` bytes is refused.
    """
    if len(data) > max_bytes:
        raise TooLarge(f"{len(data)} bytes, more than the limit of {max_bytes}")
    kind = detect_kind(data, content_type, filename)
    if kind == "pdf":
        pages, stopped = _pdf_pages(data, max_pages=max_pages, max_chars=max_chars)
        return _capped(pages, kind, max_chars, truncated=stopped)
    if kind == "docx":
        text = _docx_text(data, max_bytes=max_bytes)
    elif kind == "html":
        text = _html_text(data, content_type)
    else:
        text = tidy(_decode_text(data, content_type))
    return _capped([text], kind, max_chars)


# --- what the bytes are --------------------------------------------------------------------------------------------

_PDF_MAGIC = b"%PDF-"
# PDF readers accept a header anywhere in the first kilobyte (some servers prepend junk).
_PDF_HEADER_WINDOW = 1024
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_DOCX_MAIN = "word/document.xml"
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_HTML_START = re.compile(
    rb"\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|meta|title|div|p|table|h[1-6])[\s>/]",
    re.I | re.S,
)
_CONTENT_TYPES: dict[str, Kind] = {
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "text",
}
_EXTENSIONS: dict[str, Kind] = {".pdf": "pdf", ".docx": "docx", ".htm": "html", ".html": "html", ".txt": "text"}
_BINARY = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_TEXT_SAMPLE = 8192


def detect_kind(data: bytes, content_type: str | None = None, filename: str | None = None) -> Kind:
    """The document's kind from its first bytes, else its declared content type, else its file name's extension.

    Raises `EmptyInput`, `UnsupportedType`, or `CorruptDocument` for bytes that are declared one kind but are
    not it (a "PDF" without a PDF header, a damaged ZIP).
    """
    if not data:
        raise EmptyInput("the document has no bytes")
    if _PDF_MAGIC in data[:_PDF_HEADER_WINDOW]:
        return "pdf"
    if data.startswith(_ZIP_MAGIC):
        return _zip_kind(data)
    if data.startswith(_OLE_MAGIC):
        raise UnsupportedType("a legacy Office file (.doc, .xls, .ppt): only .docx is read")
    body = data[3:] if data.startswith(_BOMS[0]) else data
    if _HTML_START.match(body[:4096]):
        return "html"
    declared = _declared_kind(content_type, filename)
    if declared in ("pdf", "docx"):
        raise CorruptDocument(f"declared a {declared.upper()} file, but its bytes are not one")
    if declared is not None:
        return declared
    if _looks_like_text(data):
        return "text"
    raise UnsupportedType(f"an unknown kind of file ({content_type or 'no content type'})")


def _zip_kind(data: bytes) -> Kind:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
        raise CorruptDocument(f"a damaged ZIP archive: {e}") from e
    if _DOCX_MAIN not in names:
        raise UnsupportedType("a ZIP archive that is not a Word .docx document")
    return "docx"


def _declared_kind(content_type: str | None, filename: str | None) -> Kind | None:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in _CONTENT_TYPES:
        return _CONTENT_TYPES[media_type]
    name = (filename or "").lower()
    extension = name[name.rfind(".") :] if "." in name else ""
    return _EXTENSIONS.get(extension)


def _looks_like_text(data: bytes) -> bool:
    head = data[:_TEXT_SAMPLE]
    if head.startswith(_BOMS):
        return True
    try:
        # Not final unless it is the whole: the sample may end inside a character.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=len(data) <= _TEXT_SAMPLE)
    except UnicodeDecodeError:
        return False
    return bool(text.strip()) and not _BINARY.search(text)


# --- PDF -----------------------------------------------------------------------------------------------------------


def _pdf_pages(data: bytes, *, max_pages: int, max_chars: int) -> tuple[list[str], bool]:
    """Each page's tidied text, and whether the character cap stopped the reading before the last page."""
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        raise _pdfium_error(e) from e
    try:
        count = len(document)
        if count == 0:
            raise CorruptDocument("a PDF without pages")
        if count > max_pages:
            raise TooManyPages(f"{count} pages, more than the limit of {max_pages}")
        pages: list[str] = []
        drawn = False
        total = 0
        for index in range(count):
            text, has_objects = _read_page(document, index)
            pages.append(text)
            drawn = drawn or has_objects
            total += len(text)
            if total > max_chars and index + 1 < count:
                return join_hyphenated(pages), True
    finally:
        document.close()
    if not any(pages) and drawn:
        raise NoTextLayer(f"{count} page(s) with no text on any: a scan, or text drawn as shapes")
    return join_hyphenated(pages), False


def _read_page(document: pdfium.PdfDocument, index: int) -> tuple[str, bool]:
    """One page's tidied text, and whether a page without text draws anything."""
    try:
        page = document[index]
    except pdfium.PdfiumError as e:
        raise CorruptDocument(f"page {index + 1} cannot be read: {e}") from e
    try:
        text = tidy(page_text(page))
        return text, bool(text) or page_has_objects(page)
    finally:
        page.close()


def _pdfium_error(error: pdfium.PdfiumError) -> ExtractionError:
    code = getattr(error, "err_code", None)
    if code == pdfium_c.FPDF_ERR_PASSWORD:
        return EncryptedDocument("the PDF needs a password to open")
    if code == pdfium_c.FPDF_ERR_SECURITY:
        return EncryptedDocument("the PDF is encrypted with a scheme that cannot be read")
    return CorruptDocument(f"not a readable PDF: {error}")


# --- Word, HTML, text ------------------------------------------------------------------------------------------------


def _docx_text(data: bytes, *, max_bytes: int) -> str:
    # Imported here, not at the top: the extraction child starts for every document, and most are PDFs.
    import docx

    from notifier.documents.word import docx_text

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        unpacked = archive.getinfo(_DOCX_MAIN).file_size
    if unpacked > max_bytes:
        # The declared size is what the ZIP reader stops at, so it bounds what python-docx will unpack.
        raise TooLarge(f"{_DOCX_MAIN} unpacks to {unpacked} bytes, more than the limit of {max_bytes}")
    try:
        document = docx.Document(io.BytesIO(data))
        return tidy(docx_text(document))
    except MemoryError:
        raise
    except Exception as e:  # python-docx and lxml raise many kinds on a damaged package; all mean the same here
        raise CorruptDocument(f"a damaged Word document: {type(e).__name__}: {e}") from e


def _html_text(data: bytes, content_type: str | None) -> str:
    from notifier.sources.common import decode_html, html_to_text  # see _docx_text for why here

    lines = html_to_text(decode_html(data, content_type or "")).split("\n")
    # html_to_text gives one line per block (paragraph, heading, list item, table row): each is a paragraph here.
    return tidy("\n\n".join(lines))


def _decode_text(data: bytes, content_type: str | None) -> str:
    from notifier.sources.common import decode_html  # see _docx_text for why here

    # The same order as for a page: BOM, declared charset, UTF-8, then Windows-1252.
    return decode_html(data, content_type or "")


# --- caps ----------------------------------------------------------------------------------------------------------


def _capped(pages: list[str], kind: Kind, max_chars: int, *, truncated: bool = False) -> ExtractedText:
    kept: list[str] = []
    total = 0
    for page in pages:
        if total + len(page) > max_chars:
            kept.append(_cut(page, max_chars - total))
            truncated = True
            break
        kept.append(page)
        total += len(page)
    return ExtractedText.of(kept, kind, truncated=truncated)


# How far back from the cap a cut may move to end at a space rather than inside a word.
_CUT_SLACK = 100


def _cut(text: str, room: int) -> str:
    """`text` cut to at most `room` characters, at a space where one is near, so no word is left half."""
    cut = text[:room]
    if room < len(text) and not text[room].isspace():
        space = max(cut.rfind(" "), cut.rfind("\n"))
        if space >= room - _CUT_SLACK:
            cut = cut[:space]
    return cut.rstrip()
