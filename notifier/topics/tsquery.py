"""Compile a topic query to a PostgreSQL tsquery over a column built by `text.tsvector_literal`.

Words become their stem (`'dementia'`), phrases a chain of stems (`'mental' <-> 'health'`), prefixes a prefix
match on the marked unstemmed word (`'=child':*`), and NOT, AND, OR become `!`, `&`, `|`.

Use the text as `$1::tsquery`, not `to_tsquery('simple', $1)`: `to_tsquery` runs every lexeme through the text
search parser again, which strips the `=` mark and would turn `'=child':*` into `'child':*` (a prefix of stems).
The lexemes are already folded and stemmed here, exactly as the matcher sees them, and
`$1::tsvector @@ $2::tsquery` gives the same answer as `match.evaluate` (held to it by tests/topics/test_tsquery.py),
including phrases whose words repeat and queries of negations only. The limits PostgreSQL puts on a tsvector
(positions, positions per lexeme, total size) are applied when the document is built, on both sides.
"""

from __future__ import annotations

from notifier.topics.parse import And, MatchAll, Not, Or, Phrase, Prefix, Query, Word
from notifier.topics.text import RAW_MARK, quote_lexeme


def to_tsquery(q: Query) -> str | None:
    """The tsquery text for a query, or None for the empty query (which matches everything)."""
    if isinstance(q, MatchAll):
        return None
    return _compile(q)


def _operand(q: Query) -> str:
    # `!` binds tighter than `<->`, `<->` than `&`, `&` than `|`: bracket every compound operand, for clarity too.
    text = _compile(q)
    return f"({text})" if isinstance(q, And | Or | Phrase) else text


def _compile(q: Query) -> str:
    if isinstance(q, Word):
        return quote_lexeme(q.stem)
    if isinstance(q, Prefix):
        return quote_lexeme(RAW_MARK + q.prefix) + ":*"
    if isinstance(q, Phrase):
        return " <-> ".join(quote_lexeme(s) for s in q.stems)
    if isinstance(q, Not):
        return "!" + _operand(q.item)
    if isinstance(q, And):
        return " & ".join(_operand(i) for i in q.items)
    if isinstance(q, Or):
        return " | ".join(_operand(i) for i in q.items)
    raise TypeError(f"a MatchAll can only stand alone, not inside {q!r}")
