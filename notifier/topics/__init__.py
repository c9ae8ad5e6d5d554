"""The topic filter language: parse queries, tokenise text, match events in memory and compile to tsquery."""

from notifier.topics.evaluate import Document, EventFacts, Filter, evaluate, matched_terms
from notifier.topics.index import Match, Percolator
from notifier.topics.parse import (
    MATCH_ALL,
    And,
    MatchAll,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    QueryError,
    Word,
    canonical,
    parse,
)
from notifier.topics.text import Token, tokenize, tsvector_literal
from notifier.topics.tsquery import to_tsquery

__all__ = [
    "MATCH_ALL", "And", "Document", "EventFacts", "Filter", "Match", "MatchAll", "Not", "Or", "Percolator",
    "Phrase", "Prefix", "Query", "QueryError", "Token", "Word", "canonical", "evaluate", "matched_terms", "parse",
    "to_tsquery", "tokenize", "tsvector_literal",
]
