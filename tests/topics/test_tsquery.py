"""The tsquery compiler, held to the same answers as the in-memory matcher by PostgreSQL itself."""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.topics.evaluate import Document, evaluate
from notifier.topics.parse import And, Not, Or, Phrase, Prefix, Query, Word, canonical, parse
from notifier.topics.text import RAW_MARK, postings, quote_lexeme, tokenize, tsvector_literal
from notifier.topics.tsquery import to_tsquery

FIXTURES = Path(__file__).parent.parent / "fixtures" / "moderngov"


@pytest.fixture(scope="module")
async def pg_conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A PostgreSQL connection for comparing answers (no tables: only casts and @@); the harness's server, embedded
    when no other answers."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


def _fixture_texts() -> list[str]:
    """The visible text of the recorded ModernGov pages and web-service answers (escaped HTML unescaped)."""
    texts = []
    for path in sorted(FIXTURES.glob("*")):
        if path.suffix in (".xml", ".html"):
            text = path.read_text(encoding="utf-8", errors="replace")
            for _ in range(3):  # agenda text is escaped Word HTML, sometimes twice
                text = html.unescape(re.sub(r"<[^>]+>", " ", text))
            texts.append(text)
    return texts


FIXTURE_TEXTS = _fixture_texts()
_counts = Counter(t.raw for text in FIXTURE_TEXTS for t in tokenize(text))
# The commonest council words (so generated queries often hit), and a few that repeat inside phrases.
VOCAB = sorted([w for w, _ in _counts.most_common(45)] + ["dementia", "mental", "health", "asthma", "parking"])
JOINERS = [" ", " ", " ", "-", ", ", "'s ", ". ", "/"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("dementia", "'dementia'"),
        ("Dementias", "'dementia'"),
        ('"mental health"', "'mental' <-> 'health'"),
        ("child*", "'=child':*"),
        ("social care", "'social' & 'care'"),
        ("housing OR homelessness", "'hous' | 'homeless'"),
        ("planning -parking", "'plan' & !'park'"),
        ("-parking", "!'park'"),
        ('-"car park"', "!('car' <-> 'park')"),
        ("NOT (a OR b)", "!('a' | 'b')"),
        (
            '(respiratory OR asthma) AND "west leicestershire"',
            "('respiratori' | 'asthma') & ('west' <-> 'leicestershir')",
        ),
        ("a b OR c -d", "('a' & 'b') | ('c' & !'d')"),
        ('"and"', "'and'"),
    ],
)
def test_to_tsquery_table(query: str, expected: str) -> None:
    assert to_tsquery(parse(query)) == expected


def test_to_tsquery_match_all_is_none() -> None:
    assert to_tsquery(parse("  ")) is None


def _words(n: int) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(VOCAB), min_size=1, max_size=n)


_leaf = st.one_of(
    st.sampled_from(VOCAB).map(Word),
    _words(3).filter(lambda ws: len(ws) > 1).map(lambda ws: Phrase(tuple(ws))),
    st.sampled_from([w[:n] for w in VOCAB for n in (3, 4) if len(w) >= n]).map(Prefix),
)
_tree = st.recursive(
    _leaf,
    lambda kids: st.one_of(
        st.lists(kids, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(kids, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
        kids.map(Not),
    ),
    max_leaves=6,
)
_synthetic = st.lists(st.tuples(st.sampled_from(VOCAB), st.sampled_from(JOINERS)), max_size=40).map(
    lambda pairs: "".join(w.upper() if i % 7 == 3 else w + j for i, (w, j) in enumerate(pairs))
)
documents = st.lists(st.one_of(_synthetic, _synthetic, st.sampled_from(FIXTURE_TEXTS)), min_size=1, max_size=4)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tree.map(lambda q: parse(canonical(q))), documents)
async def test_to_tsquery_agrees_with_evaluate(pg_conn: asyncpg.Connection, q: Query, texts: list[str]) -> None:
    tsquery = to_tsquery(q)
    assert tsquery is not None
    answers = await pg_conn.fetchval(
        """
        select array_agg(v::tsvector @@ $2::tsquery order by i)
        from unnest($1::text[]) with ordinality as t (v, i)
        """,
        [tsvector_literal(text) for text in texts],
        tsquery,
    )
    assert answers == [evaluate(q, Document.from_text(text)) for text in texts]


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ('"a a"', "a b a", False),
        ('"a a"', "b a a", True),
        ('"a b a"', "a b a", True),
        ('"a b a"', "a b b a", False),
        ("-parking", "", True),
        ("child*", "Children's services", True),
        ("=child*", "Children's services", True),
        ('"mental health"', "filler " * 16_400 + "mental health", False),
        ('"filler filler"', "filler " * 300, True),
        ('"filler late"', "filler " * 300 + "late", False),  # 'filler' keeps only its first 256 positions
    ],
)
async def test_to_tsquery_edge_cases(pg_conn: asyncpg.Connection, query: str, text: str, expected: bool) -> None:
    q = parse(query)
    assert evaluate(q, Document.from_text(text)) is expected
    sql = "select $1::tsvector @@ $2::tsquery"
    assert await pg_conn.fetchval(sql, tsvector_literal(text), to_tsquery(q)) is expected


HOSTILE_TEXTS = [
    "",
    "it's a 'quoted' \\ back\\slash: \"double\" 'x'':1 & | ! <-> :*",
    "x" * 10_000,
    "Ångström ﬁnance Straße ＦＵＬＬ ǆ ℌ 三 ① ½ x²",
    "filler " * 17_000 + "tail words after the limit",
    "repeated " * 1_000,
    " ".join(f"w{i:05d}" for i in range(20_000)),
    "\x00\x01 control \u202e bidi \ufeff bom \u00ad soft",
    *FIXTURE_TEXTS[:5],
]


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
async def test_tsvector_literal_postgres_reads_it_back(pg_conn: asyncpg.Connection, text: str) -> None:
    rows = await pg_conn.fetch("select lexeme, positions from unnest($1::tsvector)", tsvector_literal(text))
    p = postings(text)
    expected = {s: pos for s, pos in p.stems.items()} | {RAW_MARK + r: pos for r, pos in p.raws.items()}
    assert {r["lexeme"]: list(r["positions"]) for r in rows} == expected


async def test_tsvector_literal_budget_accepted(pg_conn: asyncpg.Connection) -> None:
    words = ["".join(chr(97 + (i // 26**k) % 26) for k in range(4)) + "q" * 96 for i in range(12_000)]
    text = " ".join(words)
    count = await pg_conn.fetchval("select length($1::tsvector)", tsvector_literal(text))
    p = postings(text)
    assert count == len(p.stems) + len(p.raws)


@pytest.mark.parametrize(
    "query",
    ["it's", "a\\b", "Ångström*", "三", "x" * 500, '"o\'neill \\ x"', "ǆem* OR ℌello", "and*"],
)
async def test_to_tsquery_quoting_accepted(pg_conn: asyncpg.Connection, query: str) -> None:
    q = parse(query)
    text = "it's a\\b Ångström 三 ǆemal hello O'Neill \\ X and andante " + "x" * 500
    assert await pg_conn.fetchval("select $1::tsvector @@ $2::tsquery", tsvector_literal(text), to_tsquery(q)) is True
    assert evaluate(q, Document.from_text(text)) is True


@pytest.mark.parametrize("lexeme", ["it's", "back\\slash", "'", "\\", "a b", "x:1 & y", "'='", "三"])
async def test_quote_lexeme_postgres_reads_it_back(pg_conn: asyncpg.Connection, lexeme: str) -> None:
    """Folded words are letters and digits only, but the quoting holds for any lexeme."""
    sql = "select array_to_string(tsvector_to_array($1::tsvector), '')"
    assert await pg_conn.fetchval(sql, quote_lexeme(lexeme)) == lexeme
    assert await pg_conn.fetchval("select $1::tsvector @@ $1::text::tsquery", quote_lexeme(lexeme)) is True
