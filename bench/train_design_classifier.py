#!/usr/bin/env python3
"""Train the study-design classifier on StudyTypeTeller's human labels; writes db/corpus/design_model.npz.

usage: python bench/train_design_classifier.py [--data ../shared/data/pubmed/labeled/studytypeteller]

Tunes the L2 penalty, class weighting and feature pruning on the train/val splits only, fits the
temperature that calibrates confidences on val, then refits on train + val with the chosen settings.
The test split is never read here: bench/design_classifier.py reports it.

The model is multinomial logistic regression in numpy (full-batch Adam on dense binary features):
1,600-2,100 abstracts and a few tens of thousands of features fit in memory, and it needs no
dependency beyond numpy.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from db.corpus.classifier import MODEL_CLASSES, MODEL_PATH, DesignModel, save_model, text_features
from db.corpus.design import DESIGN_TIER
from db.vocab import StudyDesign

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "pubmed" / "labeled" / "studytypeteller"

# StudyTypeTeller's 14 classes onto our vocabulary (documented in docs/performance.md).
LABEL_MAP: dict[str, StudyDesign] = {
    "Human-systematic-review": StudyDesign.SYSTEMATIC_REVIEW,  # meta-analyses included: see _refine
    "Human-RCT-drug-intervention": StudyDesign.RCT,
    "Human-RCT-non-drug-intervention": StudyDesign.RCT,
    "Human-RCT-non-intervention": StudyDesign.RCT,
    "Human-non-RCT-drug-intervention": StudyDesign.CONTROLLED_TRIAL,
    "Human-non-RCT-non-drug-intervention": StudyDesign.CONTROLLED_TRIAL,
    "Remaining": StudyDesign.OBSERVATIONAL,  # human research without an intervention: cohorts, surveys, ...
    "Human-case-report": StudyDesign.CASE_REPORT,
    "Non-systematic-review": StudyDesign.REVIEW,
    "Animal-drug-intervention": StudyDesign.PRECLINICAL,
    "Animal-non-drug-intervention": StudyDesign.PRECLINICAL,
    "Animal-other": StudyDesign.PRECLINICAL,
    "In-vitro-study": StudyDesign.PRECLINICAL,
    "Clinical-study-protocol": StudyDesign.OTHER,  # a plan, not evidence yet
}


@dataclass(frozen=True)
class Example:
    pmid: str
    title: str
    abstract: str
    journal: str
    label: str  # StudyTypeTeller's class
    design: StudyDesign


def read_split(name: str, folder: Path = DATA) -> list[Example]:
    with gzip.open(folder / f"{name}.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        return [
            Example(
                row["pmid"],
                row["title"],
                row["abstract"],
                row["journal_name"],
                row["accepted_label"],
                LABEL_MAP[row["accepted_label"]],
            )
            for row in csv.DictReader(handle)
        ]


def scored_design(design: StudyDesign) -> StudyDesign:
    """The labels do not tell meta-analyses from systematic reviews: both score as systematic_review."""
    return StudyDesign.SYSTEMATIC_REVIEW if design is StudyDesign.META_ANALYSIS else design


@dataclass(frozen=True)
class Settings:
    l2: float
    balanced: bool
    min_df: int
    steps: int = 300
    rate: float = 0.05
    # Scale each feature by how well it tells one class from the rest (the largest absolute log-ratio
    # of its smoothed rates in and out of a class, over the mean), as in NBSVM (Wang & Manning 2012):
    # the penalty then holds back weak features more than telling ones. The scale folds into the
    # shipped weights, so it costs nothing at run time.
    nb_scaled: bool = False


def _matrix(feature_sets: Sequence[set[str]], index: dict[str, int]) -> np.ndarray:
    x = np.zeros((len(feature_sets), len(index)), dtype=np.float32)
    for row, features in enumerate(feature_sets):
        columns = [index[f] for f in features if f in index]
        x[row, columns] = 1.0
    return x


def fit(
    feature_sets: Sequence[set[str]], designs: Sequence[StudyDesign], settings: Settings
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Vocabulary (features in at least min_df records), weights and bias of a multinomial LR."""
    counts = Counter(f for features in feature_sets for f in features)
    names = sorted(f for f, n in counts.items() if n >= settings.min_df)
    index = {name: i for i, name in enumerate(names)}
    x = _matrix(feature_sets, index)
    columns = {design: i for i, design in enumerate(MODEL_CLASSES)}
    y = np.array([columns[d] for d in designs])
    n, k = len(y), len(MODEL_CLASSES)
    onehot = np.zeros((n, k), dtype=np.float32)
    onehot[np.arange(n), y] = 1.0
    per_class = onehot.sum(axis=0)
    sample_weight = (n / (k * per_class[y])) if settings.balanced else np.ones(n)
    sample_weight = (sample_weight / sample_weight.sum()).astype(np.float32)[:, None]
    scale = np.ones(x.shape[1], dtype=np.float32)
    if settings.nb_scaled:
        inside = (x.T @ onehot + 1) / (per_class + 2)
        outside = (x.T @ (1 - onehot) + 1) / (n - per_class + 2)
        ratio = np.abs(np.log(inside / outside)).max(axis=1)
        scale = (ratio / ratio.mean()).astype(np.float32)
        x *= scale
    w = np.zeros((x.shape[1], k), dtype=np.float32)
    b = np.zeros(k, dtype=np.float32)
    # Adam on the weighted mean cross-entropy plus an L2 penalty on the weights.
    m_w, v_w, m_b, v_b = np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, settings.steps + 1):
        logits = x @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) * sample_weight
        grad_w = x.T @ g + settings.l2 * w
        grad_b = g.sum(axis=0)
        for param, grad, m, v in ((w, grad_w, m_w, v_w), (b, grad_b, m_b, v_b)):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            param -= settings.rate * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + eps)
    return names, w * scale[:, None], b


def fit_temperature(
    model: DesignModel, feature_sets: Sequence[set[str]], designs: Sequence[StudyDesign]
) -> float:
    """The temperature that minimises the negative log-likelihood on held-out records."""
    columns = {design: i for i, design in enumerate(model.classes)}
    logits = np.stack([model.logits(f)[0] for f in feature_sets])
    y = np.array([columns[d] for d in designs])
    best, best_nll = 1.0, float("inf")
    for t in np.arange(0.3, 3.01, 0.05):
        z = logits / t
        z -= z.max(axis=1, keepdims=True)
        nll = float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean())
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


def macro_f1(truth: Sequence[StudyDesign], predicted: Sequence[StudyDesign]) -> float:
    classes = sorted(set(truth) | set(predicted))
    scores = []
    for c in classes:
        tp = sum(t is c and p is c for t, p in zip(truth, predicted, strict=True))
        fp = sum(t is not c and p is c for t, p in zip(truth, predicted, strict=True))
        fn = sum(t is c and p is not c for t, p in zip(truth, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def tier_accuracy(truth: Sequence[StudyDesign], predicted: Sequence[StudyDesign]) -> float:
    return sum(DESIGN_TIER[t] == DESIGN_TIER[p] for t, p in zip(truth, predicted, strict=True)) / len(truth)


def predict(model: DesignModel, examples: Sequence[Example]) -> list[StudyDesign]:
    return [scored_design(model.classify(e.title, e.abstract, e.journal).design) for e in examples]


GRID = [  # min_df 2 did no better than 3 on val (earlier runs), nor did unbalanced classes
    Settings(l2=l2, balanced=True, min_df=3, nb_scaled=nb_scaled)
    for nb_scaled in (False, True)
    for l2 in (1e-3, 3e-3, 1e-2)
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA, help="folder with train/val/test .csv.gz")
    parser.add_argument("--out", type=Path, default=MODEL_PATH, help="where to write the model")
    parser.add_argument("--quick", action="store_true", help="skip the grid: train with the chosen settings")
    args = parser.parse_args()
    if not (args.data / "train.csv.gz").exists():
        sys.exit(f"No StudyTypeTeller data in {args.data}; pass --data.")
    train, val = read_split("train", args.data), read_split("val", args.data)
    train_features = [text_features(e.title, e.abstract, e.journal) for e in train]
    val_features = [text_features(e.title, e.abstract, e.journal) for e in val]
    best: tuple[float, Settings] | None = None
    for settings in [CHOSEN] if args.quick else GRID:
        started = time.perf_counter()
        names, w, b = fit(train_features, [e.design for e in train], settings)
        model = DesignModel.from_arrays(names, w, b, MODEL_CLASSES)
        predicted = predict(model, val)
        truth = [e.design for e in val]
        f1, tiers = macro_f1(truth, predicted), tier_accuracy(truth, predicted)
        print(
            f"{settings}: val macro-F1 {f1:.3f}, tier accuracy {tiers:.3f}, "
            f"{len(names)} features, {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        if best is None or f1 + tiers > best[0]:
            best = (f1 + tiers, settings)
    assert best is not None
    chosen = best[1]
    names, w, b = fit(train_features, [e.design for e in train], chosen)
    temperature = fit_temperature(
        DesignModel.from_arrays(names, w, b, MODEL_CLASSES), val_features, [e.design for e in val]
    )
    # Refit on everything but test with the chosen settings; keep the temperature found on val.
    names, w, b = fit(train_features + val_features, [e.design for e in train + val], chosen)
    keep = np.abs(w).max(axis=1) >= 0.01  # features that move no class are dead weight in the file
    names = [n for n, k in zip(names, keep, strict=True) if k]
    model = DesignModel.from_arrays(names, w[keep], b, MODEL_CLASSES, temperature)
    save_model(args.out, model)
    print(
        f"chose {chosen}, temperature {temperature:.2f}; {len(names)} features -> {args.out}", file=sys.stderr
    )


CHOSEN = Settings(l2=3e-3, balanced=True, min_df=3, nb_scaled=True)  # what the grid chose on val

if __name__ == "__main__":
    main()
