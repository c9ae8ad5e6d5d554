"""Key phrases of a meeting's papers: stop-word-bounded phrases of one to three words, ranked by TF-IDF.

A candidate is a run of one to three content words inside a clause: punctuation, numbers and stop words (English
function words and the vocabulary every council paper shares, such as "council" or "recommendation") end a run.
Words are folded by the project's tokeniser (`notifier.topics.text.words`), so phrases are lower-cased and free of
accents and apostrophes, and match how topic filters see the same text. A phrase is counted by its stems ("working
group" and "working groups" are one phrase) and shown in its most frequent form.

`phrase_candidates` gives the set of candidates of one document, to count a corpus's document frequencies;
`key_phrases` ranks the candidates of a meeting's texts by term frequency times smoothed inverse document
frequency, longer phrases weighted up a little (a two-word phrase that recurs says more than either word), and
keeps the best few that do not repeat one another ("mental health" leaves out "health").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence

from notifier.topics.text import stem, words

MAX_WORDS = 3
MIN_CHARS = 3
# Each extra word in a phrase multiplies its score by this much.
LENGTH_BONUS = 1.0
_CLAUSE = re.compile(r"[.,;:!?()\[\]{}\"“”‘’'/|•·\n\r\f\t]+|\s[-–—]\s")

_STOP_WORDS = """
    a about above after again against all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each either else etc ever every few for from further had
    has have having he her here hers herself him himself his how however i if in into is it its itself just least
    less may me might more most much must my myself neither no nor not now of off on once only or other our ours
    ourselves out over own per same shall she should since so some such than that the their theirs them themselves
    then there these they this those through thus to too under until up upon us very via was we were what when where
    whether which while who whom whose why will with within without would yet you your yours yourself
    one two three four five six seven eight nine ten first second third new also following
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday
    am pm noted note notes receive received receives report reports reporting paper papers item items agenda
    minutes meeting meetings council councils councillor councillors cllr committee committees board cabinet
    recommendation recommendations recommend recommended recommends resolution resolutions resolve resolved
    moved seconded motion carried approve approved approves approval decision decisions officer officers
    purpose summary page pages appendix attachment attachments section sections part att
    concerning regarding including include includes included relating related provide provides provided update
    updates updated detailed details consider considered consideration proposed
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())


def _runs(text: str) -> Iterator[list[str]]:
    """Runs of folded content words, split at punctuation, numbers and stop words."""
    for clause in _CLAUSE.split(text):
        run: list[str] = []
        for raw, _stem in words(clause):
            if raw.isdigit() or raw in STOP_WORDS or len(raw) == 1:
                if run:
                    yield run
                run = []
            else:
                run.append(raw)
        if run:
            yield run


def _ngrams(text: str) -> Iterator[tuple[str, str]]:
    """(key, shown form) of every candidate: the key is the phrase's stems, the form its folded words."""
    for run in _runs(text):
        stems = [stem(word) for word in run]
        for n in range(1, MAX_WORDS + 1):
            for i in range(len(run) - n + 1):
                phrase = " ".join(run[i : i + n])
                # A word said twice in a row ("budget budget", from a table) is not a phrase.
                if len(phrase) >= MIN_CHARS and len(set(stems[i : i + n])) == n:
                    yield " ".join(stems[i : i + n]), phrase


def phrase_candidates(text: str) -> set[str]:
    """The distinct candidate phrase keys (stems) of one text, for counting document frequencies over a corpus."""
    return {key for key, _form in _ngrams(text)}


def _overlaps(a: str, b: str) -> bool:
    """Whether one phrase is the other or lies inside it, word for word."""
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    return f" {short} " in f" {long} "


def key_phrases(
    texts: Sequence[str], document_frequency: Mapping[str, int], total_documents: int, *, limit: int = 5
) -> list[str]:
    """The `limit` best key phrases of some texts, by TF-IDF against a corpus's document frequencies.

    `document_frequency` maps a phrase key to the number of the corpus's `total_documents` documents that have it
    (counted with `phrase_candidates`); a key missing from it counts as in no document. Ties go to the longer
    phrase, then alphabetically, so the answer is stable.
    """
    counts: Counter[str] = Counter()
    forms: dict[str, Counter[str]] = {}
    for text in texts:
        for key, form in _ngrams(text):
            counts[key] += 1
            forms.setdefault(key, Counter())[form] += 1
    scored = []
    for key, tf in counts.items():
        idf = math.log((1 + total_documents) / (1 + document_frequency.get(key, 0))) + 1
        n = key.count(" ") + 1
        scored.append((-tf * idf * (1 + LENGTH_BONUS * (n - 1)), -n, key))
    scored.sort()
    chosen: list[str] = []
    for _score, _n, key in scored:
        if len(chosen) >= limit:
            break
        if not any(_overlaps(key, other) for other in chosen):
            chosen.append(key)
    # The most frequent form of each phrase; on a tie, the first in alphabetical order.
    return [min(forms[key].items(), key=lambda item: (-item[1], item[0]))[0] for key in chosen]
