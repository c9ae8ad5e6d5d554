"""The topic filter language: a query string → an AST, and the AST → its canonical text.

```
dementia                      a word, stemmed: "dementias" matches
"mental health"               a phrase: consecutive words, stemmed; "mental-health" matches
child*                        a prefix of the folded, unstemmed word (at least MIN_PREFIX_CHARS characters)
social AND care / social care AND (implicit between terms; `&` also works)
housing OR homelessness       OR (`|` also works)
planning -parking / NOT       NOT (`-` or `!` written against the term, or the word NOT)
(respiratory OR asthma) AND "west leicestershire"
```

NOT binds tighter than AND, AND tighter than OR. Operators are case-insensitive; a quoted "and" is a word. Terms
are folded and split by the same tokeniser as documents (`notifier.topics.text`), so a bare term that splits into
several words ("covid-19", "2025/26") is a phrase, and a bare term with no letters or digits at all ("&", "–") is
stray punctuation and ignored. A `-` followed by a space is punctuation, not NOT ("Planning - Parking" is two
words). Inside quotes `*`, `-` and operators are ordinary text. A query that is only negations ("-parking") means
"everything but"; an empty query matches everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, NamedTuple

from notifier.topics.text import MAX_WORD_CHARS, stem, words

MAX_QUERY_CHARS: Final = 1000
MAX_TERMS: Final = 64  # words, phrase words and prefixes together
MAX_DEPTH: Final = 10  # nested parentheses
# A shorter prefix matches a large slice of the vocabulary: costly to match and rarely what anyone means.
MIN_PREFIX_CHARS: Final = 3

_QUOTES = frozenset('"\u201c\u201d\u201e\u201f\u2033\uff02')
_NOT_MARKS = frozenset("-!\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uff0d")
_OPERATORS = {"and": "AND", "&": "AND", "&&": "AND", "or": "OR", "|": "OR", "||": "OR", "not": "NOT"}
_KEYWORDS = frozenset({"and", "or", "not"})


class QueryError(ValueError):
    """A query that cannot be parsed: what was expected, and the 0-based character position of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at {position}")
        self.message = message
        self.position = position


@dataclass(frozen=True, slots=True)
class Word:
    """A single folded word; matches any word with the same English stem."""

    word: str
    stem: str = field(init=False, compare=False, repr=False)
    text: str = field(init=False, compare=False, repr=False)  # canonical text

    def __post_init__(self) -> None:
        object.__setattr__(self, "stem", stem(self.word))
        object.__setattr__(self, "text", f'"{self.word}"' if self.word in _KEYWORDS else self.word)


@dataclass(frozen=True, slots=True)
class Phrase:
    """Two or more words in a row, each compared by stem."""

    words: tuple[str, ...]
    stems: tuple[str, ...] = field(init=False, compare=False, repr=False)
    text: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stems", tuple(stem(w) for w in self.words))
        object.__setattr__(self, "text", '"' + " ".join(self.words) + '"')


@dataclass(frozen=True, slots=True)
class Prefix:
    """The start of a folded, unstemmed word."""

    prefix: str
    text: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", self.prefix + "*")


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Query


@dataclass(frozen=True, slots=True)
class MatchAll:
    """The empty query: matches everything."""


Term = Word | Phrase | Prefix
Query = Word | Phrase | Prefix | And | Or | Not | MatchAll
MATCH_ALL: Final = MatchAll()


# ---- lexer ---------------------------------------------------------------------------------------------------------


class _Tok(NamedTuple):
    kind: str  # "term", "AND", "OR", "NOT", "(", ")"
    pos: int
    term: Term | None = None

    def describe(self) -> str:
        return f"'{self.kind}'" if self.kind in "()" else self.kind


_SPACE = r"\s\x00-\x1f\x7f-\x9f"  # whitespace and control characters
_QUOTE_CLASS = "".join(sorted(_QUOTES))
_BLANK = re.compile(f"[{_SPACE}]*")
# The next token after any space: a parenthesis, an opening quote, or a bare word (up to space, parenthesis, quote).
_NEXT = re.compile(
    rf"[{_SPACE}]*(?:(?P<paren>[()])|(?P<quote>[{_QUOTE_CLASS}])|(?P<bare>[^{_SPACE}(){_QUOTE_CLASS}]+))"
)
_CLOSING_QUOTE = re.compile(f"[{_QUOTE_CLASS}]")
_NOT_PREFIX = "".join(_NOT_MARKS)


def _raws(text: str) -> list[str]:
    return [raw for raw, _ in words(text)]


# One shared leaf per distinct term across all parsed queries: a million stored filters use a few thousand words.
_word = lru_cache(maxsize=1 << 16)(Word)
_phrase = lru_cache(maxsize=1 << 16)(Phrase)
_prefix = lru_cache(maxsize=1 << 14)(Prefix)


def _term(raws: list[str]) -> Term:
    return _word(raws[0]) if len(raws) == 1 else _phrase(tuple(raws))


def _bare(text: str, pos: int) -> Term | None:
    """A term written without quotes, or None when it is only punctuation."""
    if text.endswith("*"):
        body = text.rstrip("*")
        raws = _raws(body)
        if not raws:
            return None
        if len(raws) > 1:
            raise QueryError(f"a prefix must be a single word, but {body!r} is {len(raws)} words", pos)
        if len(raws[0]) < MIN_PREFIX_CHARS:
            raise QueryError(f"a prefix needs at least {MIN_PREFIX_CHARS} letters or digits before '*'", pos)
        return _prefix(raws[0])
    raws = _raws(text)
    return _term(raws) if raws else None


def _count(term: Term) -> int:
    return len(term.words) if isinstance(term, Phrase) else 1


def _lex(query: str) -> list[_Tok]:
    toks: list[_Tok] = []
    terms = 0
    i, n = 0, len(query)
    while (m := _NEXT.match(query, i)) is not None:
        i = m.end()
        term: Term | None
        if (paren := m.group("paren")) is not None:
            toks.append(_Tok(paren, i - 1))
            continue
        start = i - 1 if m.group("quote") is not None else m.start("bare")
        if m.group("quote") is not None:
            closing = _CLOSING_QUOTE.search(query, i)
            if closing is None:
                raise QueryError("unclosed quote", start)
            raws = _raws(query[i : closing.start()])
            if not raws:
                raise QueryError("empty phrase", start)
            term = _term(raws)
            i = closing.end()
        else:
            text = m.group("bare")
            op = _OPERATORS.get(text.casefold())
            if op is not None:
                toks.append(_Tok(op, start))
                continue
            body = text.lstrip(_NOT_PREFIX)
            if body != text:
                # `-parking`, `-"car parks"`, `-(a OR b)`: NOT written against what follows. Several marks are
                # one NOT; marks against nothing but punctuation or space are punctuation themselves.
                if not body and i < n and (query[i] in _QUOTES or query[i] == "("):
                    toks.append(_Tok("NOT", start))
                    continue
                term = _bare(body, start + len(text) - len(body)) if body else None
                if term is not None:
                    toks.append(_Tok("NOT", start))
                    start += len(text) - len(body)
            else:
                term = _bare(text, start)
            if term is None:
                continue
        terms += _count(term)
        if terms > MAX_TERMS:
            raise QueryError(f"too many terms (the limit is {MAX_TERMS} words)", start)
        toks.append(_Tok("term", start, term))
    return toks


# ---- parser --------------------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, toks: list[_Tok]) -> None:
        self.toks = toks
        self.i = 0
        self.depth = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def starts_term(self, tok: _Tok | None) -> bool:
        return tok is not None and tok.kind in ("term", "(", "NOT")

    def need_operand(self, op: _Tok) -> None:
        """After a binary or NOT operator there must be something to apply it to."""
        nxt = self.peek()
        if nxt is None or nxt.kind == ")":
            raise QueryError(f"operator {op.kind} with nothing after it", op.pos)
        if not self.starts_term(nxt):
            raise QueryError(f"expected a word, phrase or '(' after {op.kind}, found {nxt.describe()}", nxt.pos)

    def expression(self) -> Query:
        first = self.peek()
        if first is not None and first.kind in ("AND", "OR"):
            raise QueryError(f"operator {first.kind} with nothing before it", first.pos)
        items = [self.conjunction()]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.i += 1
            self.need_operand(tok)
            items.append(self.conjunction())
        return _combine(Or, items)

    def conjunction(self) -> Query:
        items = [self.unary()]
        while (tok := self.peek()) is not None:
            if tok.kind == "AND":
                self.i += 1
                self.need_operand(tok)
            elif not self.starts_term(tok):
                break
            items.append(self.unary())
        return _combine(And, items)

    def unary(self) -> Query:
        negations = 0
        while (tok := self.peek()) is not None and tok.kind == "NOT":
            self.i += 1
            self.need_operand(tok)
            negations += 1
        item = self.primary()
        if negations % 2 and isinstance(item, Not):
            return item.item
        return Not(item) if negations % 2 else item

    def primary(self) -> Query:
        tok = self.toks[self.i]  # need_operand / the callers' checks guarantee a term or '(' here
        self.i += 1
        if tok.term is not None:
            return tok.term
        if self.depth >= MAX_DEPTH:
            raise QueryError(f"parentheses nested deeper than {MAX_DEPTH}", tok.pos)
        nxt = self.peek()
        if nxt is None:
            raise QueryError("unclosed '('", tok.pos)
        if nxt.kind == ")":
            raise QueryError("empty parentheses", tok.pos)
        self.depth += 1
        item = self.expression()
        self.depth -= 1
        close = self.peek()
        if close is None or close.kind != ")":
            raise QueryError("unclosed '('", tok.pos)
        self.i += 1
        return item


def _combine(kind: type[And] | type[Or], items: list[Query]) -> Query:
    """Flatten nested operators of the same kind and drop repeated items, so equal meanings are equal trees."""
    flat: list[Query] = []
    for item in items:
        for sub in item.items if isinstance(item, kind) else (item,):
            if sub not in flat:
                flat.append(sub)
    return flat[0] if len(flat) == 1 else kind(tuple(flat))


@lru_cache(maxsize=1 << 14)
def parse(query: str) -> Query:
    """Parse a topic query; raises QueryError with the position of the first problem.

    Answers are cached (queries repeat a lot across subscriptions, and the trees are immutable).
    """
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"query is longer than {MAX_QUERY_CHARS} characters", MAX_QUERY_CHARS)
    simple = _parse_simple(query)
    return simple if simple is not None else _parse_full(query)


_ASCII_NOT_MARKS: Final = "".join(sorted(m for m in _NOT_MARKS if m.isascii()))


def _plain_term(part: str) -> Term | None:
    """A bare ASCII term that is one word, digits, or a prefix of letters (already lowercased); else None."""
    if part.isalpha() or part.isdigit():
        # A run of ASCII letters (or of digits) is one word for the tokeniser, folded by lowercasing.
        return _word(part[:MAX_WORD_CHARS])
    if part.endswith("*"):
        body = part.rstrip("*")
        if body.isalpha() and len(body) >= MIN_PREFIX_CHARS:
            return _prefix(body[:MAX_WORD_CHARS])
    return None


def _parse_simple(query: str) -> Query | None:
    """The parse of a query written only with plain ASCII words, `word*` prefixes, `-word` negations and AND / OR
    between them (most stored queries are), without the general lexer and parser; None for anything else.

    Gives the same tree `_parse_full` does (tests hold the two together): terms are made by the same shared leaf
    constructors and combined by `_combine` in the same grouping. Anything unusual (quotes, parentheses,
    punctuation, NOT, an operator out of place, too many terms, an empty query) returns None and is parsed in
    full, so every error is still raised, with its position, by the one parser.
    """
    if not query.isascii():
        return None
    groups: list[list[Query]] = [[]]
    expect_term = True  # at the start or after an operator: a term must come next
    for part in query.lower().split():
        op = _OPERATORS.get(part)
        if op is not None:
            if expect_term or op == "NOT":
                return None
            if op == "OR":
                groups.append([])
            expect_term = True
            continue
        item: Query | None = _plain_term(part)
        if item is None:
            body = part.lstrip(_ASCII_NOT_MARKS)
            if body == part or not body:
                return None
            term = _plain_term(body)
            if term is None:
                return None
            item = Not(term)
        groups[-1].append(item)
        expect_term = False
    if expect_term or sum(map(len, groups)) > MAX_TERMS:
        return None
    return _combine(Or, [_combine(And, items) for items in groups])


def _parse_full(query: str) -> Query:
    """`parse` for any query (after the length check): the lexer and the recursive-descent parser."""
    toks = _lex(query)
    if not toks:
        if _BLANK.fullmatch(query):
            return MATCH_ALL
        raise QueryError("no words to search for", 0)
    if len(toks) == 1 and toks[0].term is not None:
        return toks[0].term
    parser = _Parser(toks)
    if toks[0].kind == ")":
        raise QueryError("')' without '('", toks[0].pos)
    result = parser.expression()
    rest = parser.peek()
    if rest is not None:
        # expression() stops only at ')' or the end: anything left over is an unmatched ')'.
        raise QueryError("')' without '('", rest.pos)
    return result


# ---- canonical text ------------------------------------------------------------------------------------------------


def term_text(term: Term) -> str:
    """The canonical text of one term: `dementia`, `"mental health"`, `child*`."""
    return term.text


def canonical(q: Query) -> str:
    """Canonical text: uppercase operators, minimal parentheses, quoted phrases, folded words.

    `parse(canonical(q)) == q` for every parsed query, so the canonical text can be stored and shown instead of
    what was typed.
    """
    if isinstance(q, MatchAll):
        return ""
    if isinstance(q, Not):
        inner = canonical(q.item)
        return f"NOT ({inner})" if isinstance(q.item, And | Or) else f"NOT {inner}"
    if isinstance(q, And):
        return " AND ".join(f"({canonical(i)})" if isinstance(i, Or) else canonical(i) for i in q.items)
    if isinstance(q, Or):
        return " OR ".join(canonical(i) for i in q.items)
    return term_text(q)
