"""Parsing untrusted XML from council servers: refusing what is not XML, or is hostile, before and after parsing.

Raises `SourceError` for a response that is not the document it claims to be.
"""

from __future__ import annotations

import re

from lxml import etree

from notifier.sources.base import SourceError

__all__ = ["parse_xml"]

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"
_HTML_START = re.compile(rb"<(?:!doctype\s+html|html|head|body|script|meta|title|div|p|form|table)[\s>/]", re.I)
_SNIPPET_LEN = 40
_UTF16_LABEL = re.compile(rb"""<\?xml[^>]*encoding\s*=\s*["'](?:utf-16|ucs-2|unicode)[^"']*["']""", re.I)


def _snippet(body: bytes) -> str:
    """The start of a body for an error message: its first line, at most 40 characters, then "..."."""
    text = body[:200].decode("utf-8", errors="replace").strip()
    line = "".join(c if c.isprintable() else "?" for c in text.split("\n", 1)[0].strip())
    return line[:_SNIPPET_LEN] + "..."


def _looks_like_html(body: bytes) -> bool:
    head = body[:2000].lower()
    return b"<html" in head or b"<!doctype html" in head or b"<body" in head


def parse_xml(body: bytes, *, what: str) -> etree._Element:
    """Parse an untrusted XML answer and return its root element, or raise `SourceError` naming `what`.

    Refuses empty and whitespace bodies, HTML pages (error pages served with 200), anything declaring entities
    (billion laughs, external entities), truncated or otherwise malformed documents and bytes that are not valid
    in the document's encoding. Entities are never expanded, no DTD is loaded and nothing is fetched. There is no
    size cap here: the fetcher caps response sizes, and a large well-formed document parses.
    """
    if not isinstance(body, bytes | bytearray):
        raise TypeError(f"parse_xml wants bytes, not {type(body).__name__}")
    body, encoding = _xml_bytes(bytes(body), what=what)
    root = _parse_untrusted_xml(body, encoding, what=what)
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and list(dtd.entities()):
        raise SourceError(f"{what} declares a DTD with entities, which is refused")
    if etree.QName(root).localname.lower() == "html":
        raise SourceError(f"{what} is HTML, not XML (starts '{_snippet(body)}')")
    return root


def _xml_bytes(body: bytes, *, what: str) -> tuple[bytes, str | None]:
    """The body as libxml2 should see it and the encoding to force (None: as declared), after the checks that need
    no parsing."""
    utf16_or_32 = body.startswith(_BOMS[1:])
    encoding: str | None = None
    if body.startswith(_UTF8_BOM):
        # A BOM outranks the declaration; and libxml2 refuses whitespace between BOM and declaration.
        body = body[len(_UTF8_BOM) :]
        encoding = "utf-8"
    if not utf16_or_32:
        # Some servers put a newline before the XML declaration; libxml2 rejects that, every browser forgives it.
        body = body.lstrip(b" \t\r\n")
        if not body:
            raise SourceError(f"{what} is empty")
        if _HTML_START.match(body):
            raise SourceError(f"{what} is HTML, not XML (starts '{_snippet(body)}')")
        if not body.startswith(b"<"):
            raise SourceError(f"{what} is not XML (starts '{_snippet(body)}')")
        if _UTF16_LABEL.match(body):
            # .NET serialises an in-memory document with its declaration still saying UTF-16 and writes UTF-8
            # bytes: real UTF-16 could not start with ASCII "<?xml", so the label is wrong, not the bytes.
            encoding = "utf-8"
    # Checked before parsing so a billion-laughs document costs nothing; UTF-16/32 ASCII is ASCII once NULs go.
    if b"<!ENTITY" in (body.replace(b"\x00", b"") if utf16_or_32 else body):
        raise SourceError(f"{what} declares XML entities, which are refused")
    return body, encoding


def _parse_untrusted_xml(body: bytes, encoding: str | None, *, what: str) -> etree._Element:
    """The root element, parsed with nothing expanded, loaded or fetched; `SourceError` if it does not parse."""
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        dtd_validation=False,
        recover=False,
        remove_pis=True,
        encoding=encoding,
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as e:
        if _looks_like_html(body):
            raise SourceError(f"{what} is HTML, not XML (starts '{_snippet(body)}')") from e
        raise SourceError(f"{what} is not well-formed XML: {e}") from e
    except (etree.LxmlError, ValueError, LookupError) as e:
        raise SourceError(f"{what} cannot be read as XML: {e}") from e
    if root is None:
        raise SourceError(f"{what} is empty")
    return root
