"""Documents made for the extraction tests and benchmark: PDFs by fpdf2 or by hand, Word files by python-docx."""

from __future__ import annotations

import io
import random
import zlib
from collections.abc import Sequence

import docx
from fpdf import FPDF
from PIL import Image, ImageDraw

_WORDS = (
    "council", "committee", "report", "budget", "housing", "planning", "application", "transport", "library",
    "consultation", "residents", "officers", "recommendation", "approve", "strategy", "funding", "review", "policy",
    "community", "services", "contract", "highways", "school", "parking", "licensing", "waste", "recycling",
    "scrutiny", "cabinet", "ward", "members", "decision", "capital", "revenue", "risk", "equality",
)


def pdf_pages(pages: Sequence[Sequence[str]], *, line_height: float = 6, paragraph_gap: float = 6) -> bytes:
    """A PDF with one page per entry; each entry a list of paragraphs, written in Helvetica 11 pt.

    A paragraph's own line breaks (`\\n`) are kept as line breaks; wrapping long lines is left to fpdf2.
    """
    pdf = _pdf()
    for paragraphs in pages:
        pdf.add_page()
        for paragraph in paragraphs:
            for line in paragraph.split("\n"):
                pdf.multi_cell(0, line_height, line, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(paragraph_gap)
    return bytes(pdf.output())


def report_pdf(pages: int, *, seed: int = 0, paragraphs_per_page: int = 5) -> bytes:
    """A report-like PDF of `pages` pages: a heading and paragraphs of council words on each."""
    rng = random.Random(seed)
    content = []
    for number in range(1, pages + 1):
        body = [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(40, 90))).capitalize() + "."
                for _ in range(paragraphs_per_page)]  # fmt: skip
        content.append([f"{number}. Section {number}", *body])
    return pdf_pages(content)


def encrypted_pdf(text: str, *, user_password: str | None) -> bytes:
    pdf = _pdf()
    pdf.add_page()
    pdf.multi_cell(0, 6, text)
    pdf.set_encryption(owner_password="owner-secret", user_password=user_password)
    return bytes(pdf.output())


def scanned_pdf(pages: int = 1, *, text_page: str | None = None) -> bytes:
    """A PDF whose pages are only pictures of text (grey bars on white), with no text layer; after a page with
    `text_page` written on it, if given."""
    image = Image.new("L", (600, 800), 255)
    draw = ImageDraw.Draw(image)
    for y in range(60, 740, 24):
        draw.rectangle((50, y, 550 - (y * 7) % 120, y + 10), fill=40)
    png = io.BytesIO()
    image.save(png, "PNG")
    pdf = _pdf()
    if text_page is not None:
        pdf.add_page()
        pdf.multi_cell(0, 6, text_page)
    for _ in range(pages):
        pdf.add_page()
        pdf.image(io.BytesIO(png.getvalue()), x=0, y=0, w=210)
    return bytes(pdf.output())


def blank_pdf(pages: int = 1) -> bytes:
    pdf = _pdf()
    for _ in range(pages):
        pdf.add_page()
    return bytes(pdf.output())


def _pdf() -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_font("helvetica", size=11)
    return pdf


def raw_pdf(objects: Sequence[bytes]) -> bytes:
    """A PDF written by hand: object n+1 is `objects[n]`, object 1 the catalog, with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def page_with_contents(stream: bytes, *, filter_name: bytes = b"/FlateDecode") -> bytes:
    """A one-page PDF whose content stream is `stream`, as given (already encoded with `filter_name`)."""
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter %s >>\nstream\n%s\nendstream" % (len(stream), filter_name, stream),
    ])  # fmt: skip


def zlib_bomb(expanded_bytes: int, *, chunk: int = 1 << 20) -> bytes:
    """A zlib stream of `expanded_bytes` zero bytes (a multiple of `chunk`), made without ever holding them.

    One chunk of zeros is compressed once into self-contained deflate blocks (a full flush), and the blocks are
    repeated; an empty final block and the Adler-32 of all those zeros (a=1, b=n mod 65521) close the stream.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    blocks = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    adler = ((expanded_bytes % 65521) << 16) | 1
    return b"\x78\xda" + blocks * (expanded_bytes // chunk) + b"\x03\x00" + adler.to_bytes(4, "big")


def docx_bytes(blocks: Sequence[str | list[list[str]]], *, heading: str | None = None) -> bytes:
    """A Word document: an optional heading, then each block a paragraph (a string) or a table (rows of cells)."""
    document = docx.Document()
    if heading:
        document.add_heading(heading, level=1)
    for block in blocks:
        if isinstance(block, str):
            document.add_paragraph(block)
            continue
        table = document.add_table(rows=len(block), cols=max(len(row) for row in block))
        for row, cells in zip(table.rows, block, strict=True):
            for cell, text in zip(row.cells, cells, strict=False):
                cell.text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
