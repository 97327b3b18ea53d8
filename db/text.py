"""Words in text: the one tokenizer, stopword list, stemmer and term-span finder of db/.

The review queue (db.ranking), the highlighter of the Review page (db.read.studies) and the claim-key
suggestion (db.read.choices) all read words through here, so "which words carry meaning" is decided once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

# English words that say nothing about which studies bear on a claim.
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "among",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "however",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "made",
        "make",
        "makes",
        "many",
        "may",
        "me",
        "might",
        "more",
        "most",
        "must",
        "my",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "others",
        "our",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "unlike",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "within",
        "without",
        "would",
        "you",
        "your",
    ]
)

# Words every claim of the review shares (its drug, treatments, time spans): marking them in an
# abstract would mark everything.
CLAIM_DOMAIN_WORDS = frozenset(
    [
        "days",
        "help",
        "helping",
        "helps",
        "hours",
        "ketamine",
        "ketamine's",
        "months",
        "patients",
        "people",
        "person",
        "s",
        "therapy",
        "treatment",
        "treatments",
        "use",
        "used",
        "using",
        "weeks",
        "years",
    ]
)

# The ranking model's word features count these stopwords: its smoothing (db.ranking.model.NB_ALPHA)
# was chosen, and every stored word count (ArticleTerms, db.ranking.corpus.TERMS_VERSION) computed,
# with them in. Dropping them moves the queue's order, so they stay until the model is tuned again.
_FEATURE_WORDS_KEPT = frozenset(
    [
        "a",
        "am",
        "an",
        "do",
        "down",
        "he",
        "her",
        "hers",
        "him",
        "his",
        "i",
        "just",
        "made",
        "make",
        "makes",
        "many",
        "me",
        "my",
        "now",
        "others",
        "she",
        "unlike",
        "without",
        "you",
        "your",
    ]
)
_FEATURE_STOPWORDS = STOPWORDS - _FEATURE_WORDS_KEPT

# The stopwords a claim key drops: only these, so that a key keeps the words that tell two claims
# apart ("more-effective-than-placebo", not "effective-placebo").
KEY_STOPWORDS = STOPWORDS & frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "with",
    ]
)

_WORD = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*")


def words(text: str) -> list[str]:
    """The words of a text, lower-cased, in order: letters and digits, joined by inner hyphens and
    apostrophes ("5-ht", "ketamine's")."""
    return [word.lower() for word in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    """`words` without stopwords, in order."""
    return [word for word in words(text) if word not in STOPWORDS]


# --- the ranking model's features ------------------------------------------------------------------

# Features split what `words` joins ("5-HT" -> "ht") and drop bare numbers: the stored word counts
# (ArticleTerms) are these, so changing the pattern means bumping db.ranking.corpus.TERMS_VERSION.
_FEATURE = re.compile(r"[a-z][a-z0-9]+|[0-9]+[a-z][a-z0-9]*")


def fold(word: str) -> str | None:
    """A lower-case word as a feature: None for stopwords; a plural 's' dropped so 'relapses' counts
    as 'relapse'."""
    if word in _FEATURE_STOPWORDS:
        return None
    if len(word) > 4 and word[-1] == "s" and word[-2] not in "su":
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Lower-case word features of a text, in order (see `fold`)."""
    return [folded for word in _FEATURE.findall(text.lower()) if (folded := fold(word)) is not None]


def feature_word_counts(title: str, abstract: str, extra: str) -> Counter[str]:
    """Unfolded feature words of a study and how often each occurs; title words count twice."""
    found = _FEATURE.findall(title.lower()) * 2
    found += _FEATURE.findall(abstract.lower())
    if extra:
        found += _FEATURE.findall(extra.lower())
    return Counter(found)


# --- highlighting ----------------------------------------------------------------------------------

_SUFFIXES = (
    "ations",
    "ation",
    "ings",
    "ing",
    "ness",
    "ions",
    "ion",
    "ives",
    "ive",
    "ies",
    "ied",
    "es",
    "ed",
    "ly",
    "s",
)  # longest first


def stem(word: str) -> str:
    """A crude prefix stem, so 'depressive' and 'depression' both match 'depress'."""
    word = word.lower().strip("'-")
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def key_terms(texts: Iterable[str | None], extra: Iterable[str] = ()) -> list[str]:
    """Terms to mark: stems of the content words of `texts` (neither stopwords nor words every claim
    shares), then the `extra` phrases as they are; terms under three letters are left out."""
    ignored = STOPWORDS | CLAIM_DOMAIN_WORDS
    stems: dict[str, None] = {}
    for text in texts:
        for word in words(text or ""):
            if word[0].isalpha() and word not in ignored:
                stems.setdefault(stem(word))
    for phrase in extra:
        cleaned = " ".join(phrase.lower().split())
        if cleaned and cleaned not in ignored:
            stems.setdefault(cleaned)
    return [s for s in stems if len(s) >= 3]


def term_spans(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) spans of `text` where a term starts a word (case-insensitive);
    a term matches the whole word it begins ('depress' marks 'depression')."""
    if not terms or not text:
        return []
    ordered = sorted({t for t in terms if t}, key=len, reverse=True)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in ordered) + r")[\w'-]*", re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(text)]
