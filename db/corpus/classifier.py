"""Study-design classifier: title, abstract, journal, and whatever PubMed types and MeSH a record has.

A linear model (multinomial logistic regression over binary word and word-pair features plus rule
cues) trained on human-labelled abstracts by scripts/train_design_classifier.py; its weights ship
as db/corpus/design_model.npz. PubMed publication types and MeSH enter as fixed, hand-set weights
(`METADATA_WEIGHTS`): the labelled abstracts carry none, so nothing could learn them, and records
get them weeks or months after they appear. Every guess says which features decided it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from db.vocab import StudyDesign

MODEL_PATH = Path(__file__).with_name("design_model.npz")
# Below this confidence a prefilled design waits for a person to confirm it before sign-off.
LOW_CONFIDENCE = 0.6
# Bump when features or weights change: db.corpus.design.reclassify redoes rows of older versions.
CLASSIFIER_VERSION = 2

# The model's classes. Meta-analyses train as systematic reviews (the labelled data does not tell
# them apart) and are split off afterwards by their own cue, see `_refine`.
MODEL_CLASSES: tuple[StudyDesign, ...] = (
    StudyDesign.SYSTEMATIC_REVIEW,
    StudyDesign.RCT,
    StudyDesign.CONTROLLED_TRIAL,
    StudyDesign.OBSERVATIONAL,
    StudyDesign.CASE_REPORT,
    StudyDesign.REVIEW,
    StudyDesign.PRECLINICAL,
    StudyDesign.OTHER,
)

# The tokeniser: one byte table that lower-cases ASCII letters and makes every other ASCII byte but
# the hyphen a space, so that bytes.split() gives the words: one C pass for lower(), the separators and
# the split, with no str objects (bytes hash and compare as fast). UTF-8's non-ASCII bytes stay as
# they are (not lower-cased: the same in training and at import, which is what matters).
# Digits go too: "cohort 1" and "cohort 2" must not differ in design by their numbers' weights.
_WORD_BYTES = bytes(
    code if code >= 128 or chr(code).islower() or code == ord("-") else code + 32 if chr(code).isupper() else ord(" ")
    for code in range(256)
)  # fmt: skip


def _words(text: str) -> bytes:
    """`text` lower-cased (ASCII) with everything but words as spaces: split() gives its words."""
    return text.encode().translate(_WORD_BYTES)


# Rule cues: (feature name, what a reviewer reads, words that raise it, phrases that raise it). The
# model learns how much each weighs; they also make the reasons readable. Word-set tests and plain
# substring searches (in the tokeniser's output), not regular expressions. A phrase is searched only
# in a text that has its guard word (its longest word not in _COMMON) as a word, so most records
# search few: the guard test is a set lookup, a search is a scan of the abstract. Digits are no words
# (see _WORD_BYTES): registration numbers ("NCT01234567") and ages ("45-year-old") leave their letters
# ("nct", "-year-old").
_CUE_SPECS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("randomized", '"randomized"', "randomized randomised randomization randomisation", ("randomly assigned", "randomly allocated")),
    ("placebo", '"placebo"', "placebo placebo-controlled sham sham-controlled", ()),
    ("blind", '"double-blind"', "double-blind double-blinded single-blind triple-blind", ("double blind",)),
    ("meta_analysis", '"meta-analysis"', "meta-analysis meta-analyses meta-analytic", ("meta analysis", "pooled analysis")),
    ("systematic_review", '"systematic review"', "prisma", ("systematic review", "systematically reviewed", "systematic search", "scoping review", "umbrella review", "systematic literature")),
    ("databases", "searched literature databases", "medline embase pubmed cochrane psycinfo cinahl scopus", ("web of science",)),
    ("case_report", '"case report"', "-year-old -year-olds", ("case report", "we report", "we describe", "we present", "case series")),
    ("cohort", '"cohort"', "cohort cohorts longitudinal", ("follow-up study",)),
    ("case_control", '"case-control"', "case-control", ("case control",)),
    ("cross_sectional", '"cross-sectional"', "cross-sectional survey questionnaire questionnaires", ()),
    ("retrospective", '"retrospective"', "retrospective retrospectively registry", ("chart review",)),
    ("prospective", '"prospective"', "prospective prospectively", ()),
    ("protocol", '"protocol"', "", ("study protocol", "trial protocol", "protocol for", "will be")),
    ("open_label", '"open-label"', "open-label single-arm", ("open label", "pilot study", "phase ii", "phase i ")),
    ("animal", "animal terms", "mice mouse rat rats murine rodent rodents zebrafish primate primates monkeys macaques marmosets rabbits pigs piglets dogs sheep drosophila wistar sprague-dawley knockout transgenic", ()),
    ("in_vitro", '"in vitro"', "cultured slices", ("in vitro", "cell line", "cell culture")),
    ("review_word", '"review"', "review reviews reviewed overview", ("we discuss",)),
    ("patients", '"patients"', "patient patients participants subjects volunteers", ()),
    ("trial_registration", "a trial registration number", "isrctn eudract chictr nct actrn drks", ()),
)  # fmt: skip
_CUES: tuple[tuple[str, str, frozenset[str], tuple[str, ...]], ...] = tuple(
    (name, label, frozenset(words.split()), phrases) for name, label, words, phrases in _CUE_SPECS
)
_CUE_WORDS = tuple(("c:" + name, words) for name, _label, words, _phrases in _CUES if words)
# Words too common in abstracts to guard a phrase when it has another (the search would run anyway).
_COMMON = frozenset({"we", "be", "analysis", "control", "present", "report", "study", "cell", "line", "case", "review", "open"})  # fmt: skip
# (feature, the word the text must have for the phrase to be worth a search, the phrase)
_CUE_PHRASES = tuple(
    ("c:" + name, max(phrase.split(), key=lambda word: (word not in _COMMON, len(word))), phrase)
    for name, _label, _words, phrases in _CUES
    for phrase in phrases
)

# PubMed's own metadata, weighed by hand (logit points added to a class): strong for the types
# indexers give from the full text, weak for "Review", which systematic reviews carry as well.
METADATA_WEIGHTS: dict[str, dict[StudyDesign, float]] = {
    "pt:meta-analysis": {StudyDesign.SYSTEMATIC_REVIEW: 6.0},
    "pt:network meta-analysis": {StudyDesign.SYSTEMATIC_REVIEW: 6.0},
    "pt:systematic review": {StudyDesign.SYSTEMATIC_REVIEW: 6.0},
    "pt:randomized controlled trial": {StudyDesign.RCT: 6.0},
    "pt:randomized controlled trial, veterinary": {StudyDesign.PRECLINICAL: 8.0},
    "pt:clinical trial, veterinary": {StudyDesign.PRECLINICAL: 8.0},
    "pt:observational study, veterinary": {StudyDesign.PRECLINICAL: 8.0},
    "pt:controlled clinical trial": {StudyDesign.CONTROLLED_TRIAL: 4.0},
    "pt:clinical trial": {StudyDesign.CONTROLLED_TRIAL: 2.5},
    "pt:clinical trial, phase i": {StudyDesign.CONTROLLED_TRIAL: 2.5},
    "pt:clinical trial, phase ii": {StudyDesign.CONTROLLED_TRIAL: 2.5},
    "pt:clinical trial, phase iii": {StudyDesign.CONTROLLED_TRIAL: 2.5},
    "pt:clinical trial, phase iv": {StudyDesign.CONTROLLED_TRIAL: 2.5},
    "pt:pragmatic clinical trial": {StudyDesign.CONTROLLED_TRIAL: 2.5},
    "pt:equivalence trial": {StudyDesign.CONTROLLED_TRIAL: 2.5},
    "pt:adaptive clinical trial": {StudyDesign.CONTROLLED_TRIAL: 2.5},
    "pt:observational study": {StudyDesign.OBSERVATIONAL: 4.0},
    "pt:case reports": {StudyDesign.CASE_REPORT: 5.0},
    "pt:review": {StudyDesign.REVIEW: 1.5},
    "pt:scoping review": {StudyDesign.SYSTEMATIC_REVIEW: 3.0},
    "pt:clinical trial protocol": {StudyDesign.OTHER: 6.0},
    "pt:editorial": {StudyDesign.OTHER: 5.0},
    "pt:letter": {StudyDesign.OTHER: 4.0},
    "pt:news": {StudyDesign.OTHER: 5.0},
    "pt:guideline": {StudyDesign.OTHER: 4.0},
    "pt:practice guideline": {StudyDesign.OTHER: 4.0},
    "mh:animals-only": {StudyDesign.PRECLINICAL: 9.0},  # preclinical wins: a rat RCT is animal evidence
    "mh:in vitro techniques": {StudyDesign.PRECLINICAL: 2.0},
    "mh:cohort studies": {StudyDesign.OBSERVATIONAL: 2.5},
    "mh:case-control studies": {StudyDesign.OBSERVATIONAL: 2.5},
    "mh:cross-sectional studies": {StudyDesign.OBSERVATIONAL: 2.5},
    "mh:retrospective studies": {StudyDesign.OBSERVATIONAL: 2.5},
    "mh:prospective studies": {StudyDesign.OBSERVATIONAL: 1.5},
    "mh:longitudinal studies": {StudyDesign.OBSERVATIONAL: 2.0},
    "mh:random allocation": {StudyDesign.RCT: 2.0},
    "mh:double-blind method": {StudyDesign.RCT: 1.5},
}
_META_TYPES = frozenset({"meta-analysis", "network meta-analysis"})
# Correspondence PubMed's indexers typed as such. Without an abstract the model sees a title alone,
# which reads like a review's; with no text to say otherwise, the type decides: not a study.
_CORRESPONDENCE_TYPES = frozenset({"letter", "editorial", "comment", "news", "newspaper article"})
_CORRESPONDENCE_OR_PLAIN = _CORRESPONDENCE_TYPES | {"journal article", "english abstract"}
CORRESPONDENCE_CONFIDENCE = 0.9


def _metadata_margin(name: str, design: StudyDesign) -> float:
    # A hand-set weight's margin over its mean across the model's classes, as for learned ones.
    boosts = METADATA_WEIGHTS[name]
    return boosts.get(design, 0.0) - sum(boosts.values()) / len(MODEL_CLASSES)


_META_TITLE = frozenset({"t:meta-analysis", "t:meta-analyses", "t:meta_analysis", "t:meta-analytic"})
# Words of an abstract that pools estimates (single words: see text_features).
_POOLING = frozenset(
    {"pooled", "pooling", "random-effects", "random-effect", "fixed-effect", "fixed-effects", "smd"}
)


# (title, abstract, journal, publication types, MeSH descriptors) of one record.
RecordText = tuple[str, str, str, Sequence[str], Sequence[str]]


@dataclass(frozen=True, slots=True)
class DesignGuess:
    """A suggested design, how sure the model is (0-1), and the features that decided it."""

    design: StudyDesign
    confidence: float
    cues: tuple[str, ...]

    @property
    def needs_confirmation(self) -> bool:
        return self.confidence < LOW_CONFIDENCE


def text_features(title: str, abstract: str = "", journal: str = "") -> set[str]:
    """The learnable features of a record: its words, the title's words and word pairs, journal words, cues.

    The abstract gives single words only: its word pairs added little on the labelled abstracts and
    cost most of the time at import.
    """
    title_text, abstract_text = _words(title), _words(abstract)
    # Split as bytes, then decoded: str.split() would also split at non-ASCII spaces, which the
    # import's bytes.split() (DesignModel.rows_of) leaves inside a word.
    title_words = [word.decode() for word in title_text.split()]
    features = {*title_words, *(word.decode() for word in abstract_text.split())}
    features.discard("-")
    cues = {name for name, words in _CUE_WORDS if not words.isdisjoint(features)}
    for name, guard, phrase in _CUE_PHRASES:
        if (
            name not in cues
            and guard in features
            and (phrase.encode() in title_text or phrase.encode() in abstract_text)
        ):
            cues.add(name)
    features |= cues
    features.update(map("t:".__add__, title_words))
    features.update(map("t:".__add__, map("_".join, zip(title_words, title_words[1:], strict=False))))
    features.update("j:" + word.decode() for word in _words(journal).split())
    return features


def metadata_features(publication_types: Iterable[str], mesh_terms: Iterable[str]) -> list[str]:
    """The hand-weighed features PubMed's types and MeSH give (none for a record not yet indexed)."""
    found = [name for name in (f"pt:{t.lower()}" for t in publication_types) if name in METADATA_WEIGHTS]
    mesh = set(map(str.lower, mesh_terms))
    if mesh:
        found.extend(f"mh:{m}" for m in sorted(_WEIGHED_MESH.intersection(mesh)))
        if not mesh.isdisjoint(("animals", "in vitro techniques")) and "humans" not in mesh:
            found.append("mh:animals-only")
    return found


_WEIGHED_MESH = frozenset(name[3:] for name in METADATA_WEIGHTS if name.startswith("mh:"))
# Publication types as records carry them -> (lower-cased, their weighed features): a few hundred
# combinations cover PubMed, so each is worked out once per process.
_TYPES_SEEN: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}


def _types_and_features(publication_types: Sequence[str]) -> tuple[list[str], list[str]]:
    key = tuple(publication_types)
    seen = _TYPES_SEEN.get(key)
    if seen is None:
        if len(_TYPES_SEEN) > 10_000:
            _TYPES_SEEN.clear()
        seen = _TYPES_SEEN[key] = ([t.lower() for t in key], metadata_features(key, ()))
    return seen


@dataclass(frozen=True)
class DesignModel:
    """The trained weights, one row per feature and one column per class, with the tables that score a record.

    Row 0 is all zeros, and so are the rows after the trained ones: words the cues, their phrases'
    guards and the meta-analysis refinement need to see, whether or not they carry weight themselves.
    """

    features: dict[str, int]  # feature name -> row, the trained features and those extra rows
    weights: np.ndarray  # (1 + n_features + extras, n_classes) float32
    bias: np.ndarray  # (n_classes,)
    classes: tuple[StudyDesign, ...]
    temperature: float
    names: tuple[str, ...]  # the trained features, in row order from row 1
    metadata: np.ndarray  # (len(METADATA_WEIGHTS), n_classes): the hand-set weights as rows
    metadata_rows: dict[str, int]
    vocabulary: frozenset[str]  # the names of `features`, for a set intersection in C
    margins: np.ndarray  # weights minus each feature's mean over the classes: what explains a guess
    tables: _Tables

    @classmethod
    def from_arrays(
        cls,
        names: Sequence[str],
        weights: np.ndarray,
        bias: np.ndarray,
        classes: Sequence[StudyDesign],
        temperature: float = 1.0,
    ) -> DesignModel:
        columns = {design: i for i, design in enumerate(classes)}
        metadata = np.zeros((len(METADATA_WEIGHTS), len(classes)), dtype=np.float32)
        for row, boosts in enumerate(METADATA_WEIGHTS.values()):
            for design, value in boosts.items():
                metadata[row, columns[design]] = value
        features = {name: i + 1 for i, name in enumerate(names)}
        for name in _NEEDED_FEATURES:
            features.setdefault(name, len(features) + 1)
        weights = np.vstack(
            [
                np.zeros((1, weights.shape[1]), dtype=np.float32),
                np.asarray(weights, np.float32),
                np.zeros((len(features) - len(names), weights.shape[1]), dtype=np.float32),
            ]
        )
        return cls(
            features=features,
            weights=weights,
            bias=np.asarray(bias, dtype=np.float32),
            classes=tuple(classes),
            temperature=float(temperature),
            names=tuple(names),
            metadata=metadata,
            metadata_rows={name: i for i, name in enumerate(METADATA_WEIGHTS)},
            vocabulary=frozenset(features),
            margins=weights - weights.mean(axis=1, keepdims=True),
            tables=_Tables.build(features),
        )

    def logits(self, features: Iterable[str], metadata: Sequence[str] = ()) -> tuple[np.ndarray, list[int]]:
        """Scores from a set of feature names (text_features): the reference the fast path matches."""
        known = self.vocabulary.intersection(features)
        rows = list(map(self.features.__getitem__, known))
        scores = self.bias + self.weights[rows].sum(axis=0) if rows else self.bias.copy()
        if metadata:
            scores = scores + self.metadata[[self.metadata_rows[m] for m in metadata]].sum(axis=0)
        return scores, rows

    def rows_of(self, title: str, abstract: str = "", journal: str = "") -> set[int]:
        """The rows of text_features(title, abstract, journal) that the model knows, without their names.

        Word -> row dictionaries built once take the place of building each feature's name: no
        "t:" + word strings, and the cues come from the rows of their words.
        """
        tables = self.tables
        title_text, abstract_text = _words(title), _words(abstract)
        title_words = title_text.split()
        rows = set(map(tables.words.get, abstract_text.split()))
        rows.update(map(tables.words.get, title_words))
        cue_words = tables.cue_words.intersection(rows)
        if cue_words:
            rows.update(map(tables.cue_of.__getitem__, cue_words))
        for guard in tables.guards.intersection(rows):
            for cue, phrase in tables.phrases[guard]:
                if cue not in rows and (phrase in abstract_text or phrase in title_text):
                    rows.add(cue)
        rows.update(map(tables.title.get, title_words))
        rows.update(map(tables.title.get, map(b"_".join, zip(title_words, title_words[1:], strict=False))))
        if journal:
            journal_rows = tables.journals.get(journal)
            if journal_rows is None:
                journal_words = _words(journal).split()
                journal_rows = tables.journals[journal] = frozenset(map(tables.journal.get, journal_words))
                if len(tables.journals) > 10_000:  # a few thousand journals carry most of PubMed
                    tables.journals.clear()
            rows |= journal_rows
        rows.discard(None)
        return rows  # type: ignore[return-value]  # None, the words the model does not know, is gone

    def classify(
        self,
        title: str,
        abstract: str = "",
        journal: str = "",
        publication_types: Sequence[str] = (),
        mesh_terms: Sequence[str] = (),
    ) -> DesignGuess:
        return self.classify_many([(title, abstract, journal, publication_types, mesh_terms)])[0]

    def classify_many(self, records: Sequence[RecordText], explain: bool = True) -> list[DesignGuess]:
        """Guesses for many records with one pass of array operations (the import's batches).

        Without `explain` the guesses carry only rule refinements as cues: a third of the cost.
        """
        if not records:
            return []
        all_rows: list[set[int]] = []
        all_types: list[list[str]] = []
        all_metadata: list[list[str]] = []
        rows: list[int] = []
        metadata_rows: list[int] = []
        metadata_owner: list[int] = []
        lengths: list[int] = []
        rows_of = self.rows_of
        for i, (title, abstract, journal, publication_types, mesh_terms) in enumerate(records):
            record_rows = rows_of(title, abstract, journal)
            record_rows.add(0)  # the zero row: no record without one, which reduceat needs
            rows.extend(record_rows)
            lengths.append(len(record_rows))
            all_rows.append(record_rows)
            if publication_types or mesh_terms:
                types, metadata = _types_and_features(publication_types)
                if mesh_terms:
                    metadata = metadata + metadata_features((), mesh_terms)
                metadata_rows.extend(map(self.metadata_rows.__getitem__, metadata))
                metadata_owner.extend([i] * len(metadata))
            else:
                types, metadata = [], []
            all_types.append(types)
            all_metadata.append(metadata)
        # Each record's rows are contiguous: one sum per segment. take() of whole rows from an int
        # array: a third of the cost of indexing with the list.
        starts = np.zeros(len(records), dtype=np.intp)
        np.cumsum(lengths[:-1], out=starts[1:])
        row_array = np.fromiter(rows, dtype=np.intp, count=len(rows))
        scores = np.add.reduceat(self.weights.take(row_array, axis=0), starts, axis=0)
        scores += self.bias
        if metadata_rows:
            np.add.at(scores, np.asarray(metadata_owner, dtype=np.intp), self.metadata[metadata_rows])
        scaled = scores / self.temperature
        scaled -= scaled.max(axis=1, keepdims=True)
        probabilities = np.exp(scaled)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        best = probabilities.argmax(axis=1)
        confidence = [round(p, 3) for p in probabilities[np.arange(len(records)), best].tolist()]
        cues = (
            self._cues_many(best, rows, np.repeat(np.arange(len(records)), lengths).tolist(), all_metadata)
            if explain
            else [()] * len(records)
        )
        guesses = []
        classes = self.classes
        for i, (chosen, record_rows) in enumerate(zip(best.tolist(), all_rows, strict=True)):
            correspondence = sorted(_CORRESPONDENCE_TYPES.intersection(all_types[i]))
            # Only when no other type names a design ("Letter" and "Randomized Controlled Trial": a
            # research letter, left to the model).
            only_correspondence = correspondence and _CORRESPONDENCE_OR_PLAIN.issuperset(all_types[i])
            if only_correspondence and not records[i][1].strip():
                typed = f"publication type: {correspondence[0].title()}, no abstract"
                guesses.append(DesignGuess(StudyDesign.OTHER, CORRESPONDENCE_CONFIDENCE, (typed,)))
                continue
            design, cue = _refine(classes[chosen], record_rows, all_types[i], self.tables)
            guesses.append(DesignGuess(design, confidence[i], (cue, *cues[i]) if cue else cues[i]))
        return guesses

    def _cues_many(
        self,
        best: np.ndarray,
        rows: list[int],
        owner: list[int],
        metadata: list[list[str]],
        limit: int = 4,
    ) -> list[tuple[str, ...]]:
        # What pushed each winning class above the others: each feature's weight for it minus its mean
        # weight over the classes (precomputed as `margins`), the largest first.
        owners = np.asarray(owner, dtype=np.intp)
        margin = self.margins[rows, best[owners]] if rows else np.zeros(0, dtype=np.float32)
        order = np.lexsort((-margin, owners))
        starts = np.searchsorted(owners[order], np.arange(len(metadata) + 1))
        # Plain lists from here: indexing numpy arrays one element at a time costs more than the work.
        names, margin_list, order_list = self.tables.names, margin.tolist(), order.tolist()
        starts_list, best_list = starts.tolist(), best.tolist()
        found = []
        for i, record_metadata in enumerate(metadata):
            contributions = []
            for position in order_list[starts_list[i] : min(starts_list[i] + limit, starts_list[i + 1])]:
                if margin_list[position] > 0.05:
                    contributions.append((margin_list[position], names[rows[position]]))
            for name in record_metadata:
                value = _metadata_margin(name, self.classes[best_list[i]])
                if value > 0:
                    contributions.append((value, name))
            contributions.sort(key=lambda item: -item[0])
            found.append(tuple(dict.fromkeys(describe_feature(name) for _, name in contributions[:limit])))
        return found


# Features the scoring tables must have a row for, trained or not: the cues, the words that raise
# them or guard their phrases, and what the meta-analysis refinement reads.
_NEEDED_FEATURES: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            *(name for name, _words in _CUE_WORDS),
            *(name for name, _guard, _phrase in _CUE_PHRASES),
            *(word for _name, words in _CUE_WORDS for word in sorted(words)),
            *(guard for _name, guard, _phrase in _CUE_PHRASES),
            *sorted(_POOLING),
            *sorted(_META_TITLE),
        ]
    )
)


@dataclass(frozen=True)
class _Tables:
    """What DesignModel.rows_of looks words up in: built once per model, from the features' names."""

    words: dict[bytes, int]  # a word of title or abstract -> its row
    title: dict[bytes, int]  # a title word or "word_word" pair -> the row of "t:" + it
    journal: dict[bytes, int]  # a journal word -> the row of "j:" + it
    journals: dict[str, frozenset[int | None]]  # a journal's name -> its rows: journals repeat
    cue_words: frozenset[int]  # rows of words that raise a cue
    cue_of: dict[int, int]  # such a word's row -> its cue's row
    guards: frozenset[int]  # rows of phrases' guard words
    phrases: dict[int, tuple[tuple[int, bytes], ...]]  # guard row -> (cue row, phrase) to search for
    meta_title: frozenset[int]
    meta_cue: int
    pooling: frozenset[int]
    names: tuple[str, ...]  # every row's feature name, "" for row 0

    @classmethod
    def build(cls, features: dict[str, int]) -> _Tables:
        words: dict[bytes, int] = {}
        title: dict[bytes, int] = {}
        journal: dict[bytes, int] = {}
        for name, row in features.items():
            kind, colon, value = name.partition(":")
            if not colon:
                words[name.encode()] = row
            elif kind == "t":
                title[value.encode()] = row
            elif kind == "j":
                journal[value.encode()] = row
        cue_of: dict[int, int] = {}
        for cue, cue_words in _CUE_WORDS:
            for word in cue_words:
                if words[word.encode()] in cue_of:
                    raise ValueError(f"{word!r} raises two cues: a word -> cue table cannot say so")
                cue_of[words[word.encode()]] = features[cue]
        phrases: dict[int, list[tuple[int, bytes]]] = {}
        for cue, guard, phrase in _CUE_PHRASES:
            phrases.setdefault(words[guard.encode()], []).append((features[cue], phrase.encode()))
        names = [""] * (len(features) + 1)
        for name, row in features.items():
            names[row] = name
        return cls(
            words=words,
            title=title,
            journal=journal,
            journals={},
            cue_words=frozenset(cue_of),
            cue_of=cue_of,
            guards=frozenset(phrases),
            phrases={guard: tuple(found) for guard, found in phrases.items()},
            meta_title=frozenset(features[name] for name in _META_TITLE),
            meta_cue=features["c:meta_analysis"],
            pooling=frozenset(words[word.encode()] for word in _POOLING),
            names=tuple(names),
        )


def _refine(
    design: StudyDesign, rows: set[int], types: Sequence[str], tables: _Tables
) -> tuple[StudyDesign, str | None]:
    if design is StudyDesign.SYSTEMATIC_REVIEW:
        if _META_TYPES.intersection(types):
            return StudyDesign.META_ANALYSIS, "publication type: Meta-Analysis"
        if not tables.meta_title.isdisjoint(rows):
            return StudyDesign.META_ANALYSIS, 'title: "meta-analysis"'
        # "We excluded meta-analyses" names one without being one: the abstract must pool as well.
        if tables.meta_cue in rows and not tables.pooling.isdisjoint(rows):
            return StudyDesign.META_ANALYSIS, 'text: "meta-analysis" with pooled estimates'
    return design, None


_CUE_LABELS = {name: label for name, label, _words, _phrases in _CUES}


@functools.lru_cache(maxsize=65536)
def describe_feature(name: str) -> str:
    """A feature as a reviewer reads it: 'title: "randomized"', 'publication type: Review', ..."""
    kind, _, value = name.partition(":")
    if not value:
        return f'text: "{name.replace("_", " ")}"'
    if kind == "t":
        return f'title: "{value.replace("_", " ")}"'
    if kind == "j":
        return f'journal: "{value}"'
    if kind == "c":
        return f"cue: {_CUE_LABELS.get(value, value)}"
    if kind == "ct":
        return f"cue in title: {_CUE_LABELS.get(value, value)}"
    if kind == "pt":
        return f"publication type: {value.title()}"
    if name == "mh:animals-only":
        return "MeSH: Animals without Humans"
    if kind == "mh":
        return f"MeSH: {value.title()}"
    return name


def save_model(path: Path, model: DesignModel) -> None:
    """Write the weights as the compressed arrays `load_model` reads (used by the training script)."""
    np.savez_compressed(
        path,
        names=np.asarray(model.names),
        weights=model.weights[1 : 1 + len(model.names)].astype(np.float16),
        bias=model.bias,
        classes=np.asarray([c.value for c in model.classes]),
        temperature=np.asarray(model.temperature),
        version=np.asarray(CLASSIFIER_VERSION),
    )


def load_model(path: Path = MODEL_PATH) -> DesignModel:
    with np.load(path, allow_pickle=False) as data:
        return DesignModel.from_arrays(
            [str(n) for n in data["names"]],
            data["weights"].astype(np.float32),
            data["bias"],
            [StudyDesign(str(c)) for c in data["classes"]],
            float(data["temperature"]),
        )


@functools.cache
def shipped_model() -> DesignModel:
    """The model that ships with the package, loaded once per process (import workers included)."""
    return load_model(MODEL_PATH)


def classify_design(
    title: str,
    abstract: str = "",
    journal: str = "",
    publication_types: Sequence[str] = (),
    mesh_terms: Sequence[str] = (),
) -> DesignGuess:
    """The design the shipped model suggests for a record; a reviewer confirms or corrects it."""
    return shipped_model().classify(title, abstract, journal, publication_types, mesh_terms)
