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
from typing import Any

import numpy as np

from db.vocab import StudyDesign

MODEL_PATH = Path(__file__).with_name("design_model.npz")
# Below this confidence a prefilled design waits for a person to confirm it before sign-off.
LOW_CONFIDENCE = 0.6
# Bump when features or weights change: db.corpus.design.reclassify redoes rows of older versions.
CLASSIFIER_VERSION = 1

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

# Everything but letters and hyphens becomes a space, so that str.split() tokenises the
# abstract: a third of the cost of a regular expression's findall, the bulk of the classifier's time.
# A byte table (bytes.translate is a C table lookup; str.translate with a dict is not): ASCII
# separators become spaces, UTF-8's non-ASCII bytes stay as they are.
# Digits go too: "cohort 1" and "cohort 2" must not differ in design by their numbers' weights.
_SEPARATORS = bytes(
    code if code >= 128 or chr(code).isalpha() or chr(code) == "-" else ord(" ") for code in range(256)
)

# Rule cues: (feature name, what a reviewer reads, words that raise it, phrases that raise it). The
# model learns how much each weighs; they also make the reasons readable. Word-set tests and plain
# substring searches, not regular expressions: each costs a microsecond or less per abstract, which
# matters at import (see docs/performance.md).
_CUE_SPECS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("randomized", '"randomized"', "randomized randomised randomization randomisation", ("randomly assigned", "randomly allocated")),
    ("placebo", '"placebo"', "placebo placebo-controlled sham sham-controlled", ()),
    ("blind", '"double-blind"', "double-blind double-blinded single-blind triple-blind", ("double blind",)),
    ("meta_analysis", '"meta-analysis"', "meta-analysis meta-analyses meta-analytic", ("meta analysis", "pooled analysis")),
    ("systematic_review", '"systematic review"', "prisma", ("systematic review", "systematically reviewed", "systematic search", "scoping review", "umbrella review", "systematic literature")),
    ("databases", "searched literature databases", "medline embase pubmed cochrane psycinfo cinahl scopus", ("web of science",)),
    ("case_report", '"case report"', "", ("case report", "we report", "we describe", "we present", "case series", "-year-old")),
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
    ("trial_registration", "a trial registration number", "isrctn eudract chictr", ("nct0", "actrn", "drks0")),
)  # fmt: skip
_CUES: tuple[tuple[str, str, frozenset[str], tuple[str, ...]], ...] = tuple(
    (name, label, frozenset(words.split()), phrases) for name, label, words, phrases in _CUE_SPECS
)
_CUE_WORDS = tuple(("c:" + name, words) for name, _label, words, _phrases in _CUES if words)
# (feature, a word the text must have for the phrase to be worth a search or None, the phrase)
_CUE_PHRASES = tuple(
    ("c:" + name, phrase.split()[0] if " " in phrase.strip() and phrase[0].isalpha() else None, phrase)
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


def _metadata_margin(name: str, design: StudyDesign) -> float:
    # A hand-set weight's margin over its mean across the model's classes, as for learned ones.
    boosts = METADATA_WEIGHTS[name]
    return boosts.get(design, 0.0) - sum(boosts.values()) / len(MODEL_CLASSES)


_META_TITLE = frozenset({"t:meta-analysis", "t:meta-analyses", "t:meta_analysis", "t:meta-analytic"})
# Words of an abstract that pools estimates (unigrams: see text_features).
_POOLING = frozenset(
    {"pooled", "random-effects", "random_effects", "random-effect", "fixed-effect", "fixed-effects",
     "smd", "forest_plot", "i2", "standardized_mean", "standardised_mean", "pooling"}
)  # fmt: skip


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
    title_lower = title.lower()
    text = f"{title_lower}\n{abstract.lower()}"
    title_words = title_lower.encode().translate(_SEPARATORS).decode().split()
    features = set(text.encode().translate(_SEPARATORS).decode().split())
    features.discard("-")
    cues = {name for name, words in _CUE_WORDS if not words.isdisjoint(features)}
    for name, guard, phrase in _CUE_PHRASES:
        if name not in cues and (guard is None or guard in features) and phrase in text:
            cues.add(name)
    features |= cues
    # map/zip/str.join run in C: several times cheaper than a comprehension building each pair.
    features.update(map("t:".__add__, title_words))
    features.update(map("t:".__add__, map("_".join, zip(title_words, title_words[1:], strict=False))))
    features.update(map("j:".__add__, journal.lower().encode().translate(_SEPARATORS).decode().split()))
    return features


def metadata_features(publication_types: Iterable[str], mesh_terms: Iterable[str]) -> list[str]:
    """The hand-weighed features PubMed's types and MeSH give (none for a record not yet indexed)."""
    mesh = {m.lower() for m in mesh_terms}
    found = [f"pt:{t.lower()}" for t in publication_types]
    found.extend(f"mh:{m}" for m in mesh)
    if mesh & {"animals", "in vitro techniques"} and "humans" not in mesh:
        found.append("mh:animals-only")
    return [f for f in found if f in METADATA_WEIGHTS]


@dataclass(frozen=True)
class DesignModel:
    """The trained weights: one row per feature, one column per class in `classes` order."""

    features: dict[str, int]
    weights: np.ndarray  # (n_features, n_classes) float32
    bias: np.ndarray  # (n_classes,)
    classes: tuple[StudyDesign, ...]
    temperature: float
    names: tuple[str, ...]
    metadata: np.ndarray  # (len(METADATA_WEIGHTS), n_classes): the hand-set weights as rows
    metadata_rows: dict[str, int]
    vocabulary: frozenset[str]  # the features' names, for a set intersection in C
    margins: np.ndarray  # weights minus each feature's mean over the classes: what explains a guess

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
        weights = np.vstack(
            [np.zeros((1, weights.shape[1]), dtype=np.float32), np.asarray(weights, np.float32)]
        )
        return cls(
            features={name: i + 1 for i, name in enumerate(names)},
            weights=weights,
            bias=np.asarray(bias, dtype=np.float32),
            classes=tuple(classes),
            temperature=float(temperature),
            names=tuple(names),
            metadata=metadata,
            metadata_rows={name: i for i, name in enumerate(METADATA_WEIGHTS)},
            vocabulary=frozenset(names),
            margins=weights - weights.mean(axis=1, keepdims=True),
        )

    def logits(self, features: Iterable[str], metadata: Sequence[str] = ()) -> tuple[np.ndarray, list[int]]:
        known = self.vocabulary.intersection(features)
        rows = list(map(self.features.__getitem__, known))
        scores = self.bias + self.weights[rows].sum(axis=0) if rows else self.bias.copy()
        if metadata:
            scores = scores + self.metadata[[self.metadata_rows[m] for m in metadata]].sum(axis=0)
        return scores, rows

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
        all_features: list[Any] = []
        all_types: list[Any] = []
        all_metadata: list[Any] = []
        rows: list[int] = []
        metadata_rows: list[int] = []
        row_owner, metadata_owner = [], []
        for i, (title, abstract, journal, publication_types, mesh_terms) in enumerate(records):
            types = [t.lower() for t in publication_types]
            metadata = metadata_features(types, mesh_terms)
            features = text_features(title, abstract, journal)
            known = list(map(self.features.__getitem__, self.vocabulary.intersection(features)))
            rows.extend(known)
            row_owner.extend([i] * len(known))
            metadata_rows.extend(self.metadata_rows[m] for m in metadata)
            metadata_owner.extend([i] * len(metadata))
            all_features.append(features)
            all_types.append(types)
            all_metadata.append(metadata)
        scores = np.tile(self.bias, (len(records), 1))
        if rows:
            # Each record's rows are contiguous: sums per segment, for the records that have any.
            owners = np.asarray(row_owner, dtype=np.intp)
            firsts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
            scores[owners[firsts]] += np.add.reduceat(self.weights[rows], firsts, axis=0)
        if metadata_rows:
            np.add.at(scores, np.asarray(metadata_owner, dtype=np.intp), self.metadata[metadata_rows])
        scaled = scores / self.temperature
        scaled -= scaled.max(axis=1, keepdims=True)
        probabilities = np.exp(scaled)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        best = probabilities.argmax(axis=1)
        confidence = [round(p, 3) for p in probabilities[np.arange(len(records)), best].tolist()]
        cues = (
            self._cues_many(best, rows, row_owner, all_metadata, self.classes)
            if explain
            else [()] * len(records)
        )
        guesses = []
        for i, features in enumerate(all_features):
            design, cue = _refine(self.classes[best[i]], features, all_types[i])
            guesses.append(DesignGuess(design, confidence[i], (cue, *cues[i]) if cue else cues[i]))
        return guesses

    def _cues_many(
        self,
        best: np.ndarray,
        rows: list[int],
        owner: list[int],
        metadata: list[list[str]],
        classes: Sequence[StudyDesign],
        limit: int = 4,
    ) -> list[tuple[str, ...]]:
        # What pushed each winning class above the others: each feature's weight for it minus its mean
        # weight over the classes (precomputed as `margins`), the largest first.
        owners = np.asarray(owner, dtype=np.intp)
        margin = self.margins[rows, best[owners]] if rows else np.zeros(0, dtype=np.float32)
        order = np.lexsort((-margin, owners))
        starts = np.searchsorted(owners[order], np.arange(len(metadata) + 1))
        # Plain lists from here: indexing numpy arrays one element at a time costs more than the work.
        names, margin_list, order_list = self.names, margin.tolist(), order.tolist()
        starts_list, best_list = starts.tolist(), best.tolist()
        found = []
        for i, record_metadata in enumerate(metadata):
            contributions = []
            for position in order_list[starts_list[i] : min(starts_list[i] + limit, starts_list[i + 1])]:
                if margin_list[position] > 0.05:
                    contributions.append((margin_list[position], names[rows[position] - 1]))
            for name in record_metadata:
                value = _metadata_margin(name, classes[best_list[i]])
                if value > 0:
                    contributions.append((value, name))
            contributions.sort(key=lambda item: -item[0])
            found.append(tuple(dict.fromkeys(describe_feature(name) for _, name in contributions[:limit])))
        return found


def _refine(design: StudyDesign, features: set[str], types: Sequence[str]) -> tuple[StudyDesign, str | None]:
    if design is StudyDesign.SYSTEMATIC_REVIEW:
        if _META_TYPES.intersection(types):
            return StudyDesign.META_ANALYSIS, "publication type: Meta-Analysis"
        if not _META_TITLE.isdisjoint(features):
            return StudyDesign.META_ANALYSIS, 'title: "meta-analysis"'
        # "We excluded meta-analyses" names one without being one: the abstract must pool as well.
        if "c:meta_analysis" in features and not _POOLING.isdisjoint(features):
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
        weights=model.weights[1:].astype(np.float16),
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
