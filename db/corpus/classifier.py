"""Study-design classifier: title, abstract, journal, and whatever PubMed types and MeSH a record has.

A linear model (multinomial logistic regression over binary word and word-pair features plus rule
cues) trained on human-labelled abstracts by scripts/train_design_classifier.py; its weights ship
as db/corpus/design_model.npz. PubMed publication types and MeSH enter as fixed, hand-set weights
(`METADATA_WEIGHTS`): the labelled abstracts carry none, so nothing could learn them, and records
get them weeks or months after they appear. Every guess says which features decided it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

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

_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

# Rule cues: (feature name, what a reviewer reads, words or word pairs that raise it). The model learns
# how much each weighs; they also make the reasons readable. Word sets, not regular expressions: a set
# test costs a fraction of a regex pass over the abstract, which matters at import (see docs).
_CUE_WORDS: tuple[tuple[str, str, str], ...] = (
    (
        "randomized",
        '"randomized"',
        "randomized randomised randomization randomisation randomly_assigned randomly_allocated",
    ),
    ("placebo", '"placebo"', "placebo placebo-controlled sham sham-controlled"),
    ("blind", '"double-blind"', "double-blind double-blinded single-blind triple-blind double_blind"),
    (
        "meta_analysis",
        '"meta-analysis"',
        "meta-analysis meta-analyses meta-analytic meta_analysis meta_analyses pooled_analysis",
    ),
    (
        "systematic_review",
        '"systematic review"',
        "systematic_review systematically_reviewed systematic_search prisma scoping_review umbrella_review",
    ),
    (
        "databases",
        "searched literature databases",
        "medline embase pubmed cochrane psycinfo cinahl scopus web_of",
    ),
    (
        "case_report",
        '"case report"',
        "case_report case_reports we_report we_describe we_present case_series a_case",
    ),
    ("cohort", '"cohort"', "cohort cohorts longitudinal follow-up_study"),
    ("case_control", '"case-control"', "case-control case_control"),
    ("cross_sectional", '"cross-sectional"', "cross-sectional survey questionnaire questionnaires"),
    ("retrospective", '"retrospective"', "retrospective retrospectively chart_review registry"),
    ("prospective", '"prospective"', "prospective prospectively"),
    ("protocol", '"protocol"', "study_protocol trial_protocol protocol_for will_be"),
    ("open_label", '"open-label"', "open-label open_label single-arm pilot_study phase_ii phase_i"),
    (
        "animal",
        "animal terms",
        "mice mouse rat rats murine rodent rodents zebrafish primate primates monkeys macaques marmosets rabbits pigs piglets dogs sheep drosophila wistar sprague-dawley knockout transgenic",
    ),
    ("in_vitro", '"in vitro"', "in_vitro cell_line cell_lines cultured cell_culture cell_cultures slices"),
    ("review_word", '"review"', "review reviews reviewed overview we_discuss"),
    ("patients", '"patients"', "patient patients participants subjects volunteers"),
)
_CUES: tuple[tuple[str, str, frozenset[str]], ...] = tuple(
    (name, label, frozenset(words.split())) for name, label, words in _CUE_WORDS
)
# The two cues that words cannot spell: a trial registration number and "a 45-year-old ...".
_PATTERN_CUES = re.compile(
    r"\b(?P<trial_registration>nct\d{8}|isrctn\d|chictr|actrn\d|eudract|drks\d|irct\d|ctri/)"
    r"|\b(?P<aged_patient>\d+-(?:year|month)-old (?:man|woman|boy|girl|male|female|patient|child))"
)
_PATTERN_LABELS = {
    "trial_registration": "a trial registration number",
    "aged_patient": '"a N-year-old patient"',
}

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
_META_TITLE = frozenset({"t:meta-analysis", "t:meta-analyses", "t:meta_analysis", "t:meta-analytic"})
_POOLING = frozenset(
    {"pooled", "random-effects", "random_effects", "random-effect", "fixed-effect", "fixed-effects",
     "smd", "forest_plot", "i2", "standardized_mean", "standardised_mean", "pooling"}
)  # fmt: skip


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
    """The learnable features of a record: words and word pairs (title ones marked), journal words, cues."""
    title_lower = title.lower()
    text = f"{title_lower}\n{abstract.lower()}"
    title_words = _TOKEN.findall(title_lower)
    words = _TOKEN.findall(text)
    # map/zip/str.join run in C: several times cheaper than a comprehension building each pair.
    title_features = set(map("t:".__add__, title_words))
    title_features.update(map("t:".__add__, map("_".join, zip(title_words, title_words[1:], strict=False))))
    features = set(words)
    features.update(map("_".join, zip(words, words[1:], strict=False)))
    cues = ["c:" + name for name, _label, keys in _CUES if not keys.isdisjoint(features)]
    cues.extend("c:" + m.lastgroup for m in _PATTERN_CUES.finditer(text) if m.lastgroup)
    features.update(cues)
    features |= title_features
    features.update(map("j:".__add__, _TOKEN.findall(journal.lower())))
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
        weights = np.asarray(weights, dtype=np.float32)
        return cls(
            features={name: i + 1 for i, name in enumerate(names)},
            weights=np.vstack([np.zeros((1, weights.shape[1]), dtype=np.float32), weights]),
            bias=np.asarray(bias, dtype=np.float32),
            classes=tuple(classes),
            temperature=float(temperature),
            names=tuple(names),
            metadata=metadata,
            metadata_rows={name: i for i, name in enumerate(METADATA_WEIGHTS)},
        )

    def logits(self, features: Iterable[str], metadata: Sequence[str] = ()) -> tuple[np.ndarray, list[int]]:
        # Row 0 of `weights` is zeros: unknown features map there, all in C (no Python-level test).
        rows = [r for r in map(self.features.get, features, repeat(0)) if r]
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
        types = [t.lower() for t in publication_types]
        metadata = metadata_features(types, mesh_terms)
        features = text_features(title, abstract, journal)
        scores, rows = self.logits(features, metadata)
        scaled = scores / self.temperature
        probabilities = np.exp(scaled - scaled.max())
        probabilities /= probabilities.sum()
        best = int(probabilities.argmax())
        design = self.classes[best]
        cues = self._cues(best, rows, metadata)
        design, cue = _refine(design, features, types)
        if cue:
            cues = (cue, *cues)
        return DesignGuess(design, round(float(probabilities[best]), 3), cues)

    def _cues(self, best: int, rows: list[int], metadata: Sequence[str], limit: int = 4) -> tuple[str, ...]:
        # What pushed the winning class above the others: each feature's weight for it minus its
        # mean weight over the classes.
        contributions: list[tuple[float, str]] = []
        if rows:
            block = self.weights[rows]
            margin = block[:, best] - block.mean(axis=1)
            for i in np.argsort(-margin)[:limit]:
                if margin[i] > 0.05:
                    contributions.append((float(margin[i]), describe_feature(self.names[rows[i] - 1])))
        for name in metadata:
            row = self.metadata[self.metadata_rows[name]]
            margin = float(row[best] - row.mean())
            if margin > 0:
                contributions.append((margin, describe_feature(name)))
        contributions.sort(key=lambda item: -item[0])
        return tuple(dict.fromkeys(label for _, label in contributions[:limit]))


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


_CUE_LABELS = {name: label for name, label, _ in _CUES} | _PATTERN_LABELS


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
