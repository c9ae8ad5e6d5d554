"""Reading a ModernGov web service (`mgWebService.asmx`) answer: the XML inside any `<string>` wrapper, element names
folded to lower case, and error documents refused.

`moderngov.py` turns what this reads into committees, meetings and records.
"""

from __future__ import annotations

import re

from lxml import etree

from notifier.sources.base import SourceError
from notifier.sources.common import clean_line
from notifier.sources.safe_xml import parse_xml

__all__ = ["read_answer"]

_ERROR_TAGS = frozenset({"error", "errors", "errormessage", "exception", "fault"})


def read_answer(body: bytes, *, what: str, root_tags: frozenset[str]) -> etree._Element:
    """Parse a web service answer, check it is the document asked for, and fold tag names to lower case."""
    root = parse_xml(body, what=what)
    # ASMX can wrap a method's XML as escaped text in a <string> element.
    if _local(root) == "string" and (root.text or "").lstrip().startswith("<"):
        inner = re.sub(r"^\s*<\?xml[^>]*\?>", "", root.text or "")
        body = inner.encode("utf-8")
        root = parse_xml(body, what=what)
    for el in _to_rename(root, body):
        tag = el.tag
        local = (tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag).lower()
        if local != tag:
            el.tag = local
    tag = root.tag
    if tag in _ERROR_TAGS:
        raise SourceError(f"{what} is an error: {clean_line(' '.join(root.itertext()))[:300]!r}")
    if tag not in root_tags:
        raise SourceError(f"{what} has root element <{tag}>, expected <{'> or <'.join(sorted(root_tags))}>")
    for child in root:
        if child.tag in _ERROR_TAGS:
            raise SourceError(f"{what} reports an error: {clean_line(' '.join(child.itertext()))[:300]!r}")
    return root


# Elements in a namespace, or whose name has any character other than lower-case ASCII letters, digits, "_", "-" and
# ".": a superset of those `read_answer` renames (upper case, and the rest of Unicode, is left to str.lower to decide).
_NEEDS_RENAME = etree.XPath(
    "descendant-or-self::*[namespace-uri() != '' or "
    "translate(local-name(), 'abcdefghijklmnopqrstuvwxyz0123456789_-.', '') != '']"
)
# What follows a "<" in the raw bytes: every element's name is among these (with comments, CDATA and the like).
_START_TAG = re.compile(rb"<([^\s>/!?]+)")
_PLAIN_NAME = re.compile(rb"[A-Za-z0-9_.-]+")
_IN_A_NAMESPACE = etree.XPath("boolean(descendant-or-self::*[namespace-uri() != ''])")


def _to_rename(root: etree._Element, body: bytes) -> list[etree._Element]:
    """The elements whose names `read_answer` may have to fold: a superset, usually a handful or none.

    ModernGov answers are lower-case and namespace-free but for a few names (`restrictionsRef`), so the names are
    read off the raw bytes (a regex, in C) and only elements of names that need folding are visited, rather than
    every element in Python. Namespaces, non-ASCII names and bodies in an encoding that is not ASCII-compatible
    (UTF-16/32) take the XPath, which looks at every element in C and is still far cheaper than a walk in Python.
    """
    ascii_markup = body.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<") and b"\x00" not in body
    # "xmlns" is often only in escaped Word HTML in a text; whether anything is in a namespace is asked of the tree.
    if not ascii_markup or (b"xmlns" in body and _IN_A_NAMESPACE(root)):
        return list(_NEEDS_RENAME(root))
    odd = {n for n in set(_START_TAG.findall(body)) if n != n.lower() or not _PLAIN_NAME.fullmatch(n)}
    if not odd:
        return []
    if not all(_PLAIN_NAME.fullmatch(n) for n in odd):
        return list(_NEEDS_RENAME(root))
    return list(root.iter(*(n.decode("ascii") for n in odd)))


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""
