"""The labelled brief set (tests/fixtures/briefs) and how a brief is scored against it; shared with bench/briefs.py.

An extracted sentence matches a labelled one in the same field and on the same page when their texts agree after
folding whitespace and setting aside a leading list marker and trailing punctuation or "and"/"or"; a sentence
cut with "…" matches a label that starts with the part before the ellipsis (and the other way round). Each label
is matched at most once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from notifier.documents.briefs import FIELDS, Brief, BriefSentence
from notifier.documents.sentences import ELLIPSIS, fold, strip_marker

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "briefs"
_TAIL = re.compile(r"(?:[\s;,.:]|\band\b|\bor\b)+$")


@dataclass(frozen=True)
class Document:
    name: str
    pages: tuple[str, ...]
    labels: dict[str, tuple[BriefSentence, ...]]


def documents() -> list[Document]:
    """Every labelled document, sorted by name."""
    out = []
    for path in sorted(FIXTURES.glob("*.labels.json")):
        name = path.name.removesuffix(".labels.json")
        raw = json.loads(path.read_text("utf-8"))
        labels = {f: tuple(BriefSentence(e["text"], e["page"]) for e in raw[f]) for f in FIELDS}
        pages = tuple((FIXTURES / f"{name}.txt").read_text("utf-8").split("\f"))
        out.append(Document(name, pages, labels))
    return out


def _key(text: str) -> str:
    return _TAIL.sub("", strip_marker(fold(text)))


def same(found: BriefSentence, label: BriefSentence) -> bool:
    """Whether an extracted sentence is the labelled one (see the module docstring)."""
    if found.page != label.page:
        return False
    a, b = _key(found.text.removesuffix(ELLIPSIS)), _key(label.text.removesuffix(ELLIPSIS))
    if found.text.endswith(ELLIPSIS) and b.startswith(a):
        return True
    if label.text.endswith(ELLIPSIS) and a.startswith(b):
        return True
    return a == b


def verbatim(sentence: BriefSentence, pages: Sequence[str]) -> bool:
    """Whether the sentence (before any ellipsis) is in the page text, whitespace folded, starting on its page."""
    text = fold(sentence.text.removesuffix(ELLIPSIS))
    whole = fold(" ".join(pages[sentence.page - 1 :]))
    return text in whole and text[: min(len(text), 40)] in fold(pages[sentence.page - 1])


@dataclass
class Score:
    """Counts over one or more documents: labels, extracted sentences, and matches, per field."""

    labelled: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))
    found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))
    matched: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))
    misses: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)

    def add(self, doc: Document, brief: Brief) -> None:
        for name in FIELDS:
            labels = list(doc.labels[name])
            found: tuple[BriefSentence, ...] = getattr(brief, name)
            self.labelled[name] += len(labels)
            self.found[name] += len(found)
            for sentence in found:
                hit = next((x for x in labels if same(sentence, x)), None)
                if hit is None:
                    self.extras.append(f"{doc.name} {name} p{sentence.page}: {sentence.text}")
                else:
                    labels.remove(hit)
                    self.matched[name] += 1
            self.misses.extend(f"{doc.name} {name} p{x.page}: {x.text}" for x in labels)

    def recall(self, names: Iterable[str] = FIELDS) -> float:
        names = list(names)
        total = sum(self.labelled[n] for n in names)
        return sum(self.matched[n] for n in names) / total if total else 1.0

    def precision(self, names: Iterable[str] = FIELDS) -> float:
        names = list(names)
        total = sum(self.found[n] for n in names)
        return sum(self.matched[n] for n in names) / total if total else 1.0
