#!/usr/bin/env python3
"""Study-design classifier on StudyTypeTeller's TEST split: macro-F1, tiers, per-class figures, speed.

usage: python bench/design_classifier.py [--write docs/performance.md]

Reads the shipped model (db/corpus/design_model.npz, made by bench/train_design_classifier.py from
train + val only) and scores it once on the test split, with the class mapping of the training
script. The labelled records carry no publication types or MeSH, so every figure is already what
the classifier does on a record PubMed has not indexed yet. The real ketamine records of
../shared/data/pubmed/ketamine/ (which do carry types) show how far blanking the types moves it.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine import describe_machine  # bench/machine.py: scripts run from bench/
from report import write_section
from train_design_classifier import DATA, macro_f1, read_split, scored_design, tier_accuracy

from db.corpus.classifier import MODEL_PATH, RecordText, classify_design, shipped_model
from db.corpus.design import DESIGN_TIER, suggest_design
from db.corpus.notices import notice_kind
from db.vocab import EvidenceTier, StudyDesign

ROOT = Path(__file__).resolve().parent.parent
KETAMINE = ROOT.parent / "shared" / "data" / "pubmed" / "ketamine" / "elambeth-supplements_ketamine.json"
MARK_START = "<!-- bench/design_classifier.py:start -->"
MARK_END = "<!-- bench/design_classifier.py:end -->"
SCORED = [d for d in StudyDesign if d is not StudyDesign.META_ANALYSIS]

# What was tried and dropped, with the val figures (macro-F1 / tier accuracy of a model trained on
# train only, settings otherwise as shipped) or the cost that decided it. Kept here so that the
# section this script writes carries it; add to it when a change is measured.
TRIED = """\
Tried on train/val only (val macro-F1 / tier accuracy of a model trained on train; the test split is read
only by this script):

- *Kept*: features scaled NBSVM-style (each by its largest log-ratio between a class and the rest,
  folded into the shipped weights: no run-time cost), L2 3e-3: 0.879 / 0.934, against 0.860 / 0.923
  unscaled at the same penalty and 0.862 / 0.925 for the best unscaled penalty (1e-2).
- L2 penalty 1e-3, 3e-3, 1e-2 with and without the scaling (the grid of
  `bench/train_design_classifier.py`); scaled with 1e-3 0.874 / 0.930, with 1e-2 0.876 / 0.932;
  unscaled with 1e-3 0.851 / 0.915.
- The scale squared 0.857 / 0.919, its square root 0.867 / 0.928.
- Twice the optimiser steps (600): 0.852 / 0.917 (3e-3), 0.857 / 0.917 (1e-2), no gain.
- Unbalanced classes: 0.831 / 0.906. Minimum document frequency 2: 0.853 / 0.917, as 3.
- A tier-aware loss (a second cross-entropy on each tier's summed probability, weight 1 or 3):
  0.852 / 0.919 and 0.852 / 0.921 unscaled, 0.876 / 0.932 and 0.875 / 0.934 scaled: no gain.
- An ensemble (the mean of the scaled and the unscaled model's weights, still one linear model):
  0.870 / 0.930 (half each), 0.874 / 0.930 (0.7 scaled).
- Word pairs of the abstract again, with the scaling: 0.854 / 0.925 (pairs in at least 3 records,
  23,950 features) and 0.862 / 0.928 (at least 5), against 0.879 / 0.934 without (no refinement).
- More features: digit-count buckets (at least 5, 20, 60 digits in the abstract), "n = <number>" and
  "<number> patients / participants / subjects ..." statements, abstract-length buckets: 0.871 / 0.930
  against 0.879 / 0.934 without (scored without the meta-analysis refinement).
- Earlier sessions: word pairs of the whole abstract (0.836 / 0.915 with regex cues; dropping them lost
  nothing and halved the import cost), choosing the tier with the largest summed probability before
  the design (0.839 / 0.917), numbers kept as words (0.848 / 0.917; dropped so that "cohort 1" and
  "cohort 2" do not differ).
- Not tried: character n-grams (per-token work at import, the cost this classifier is held to), a
  second model for the tier, fine-tuning a transformer. The experiments above ran while the tokeniser
  was still changing in small ways (the grid's figures are from the final one); differences of 0.005
  or less between lines are within that and within a few val records.

Tried for speed (the classifier's share of the import, `bench/design_import_cost.py`; microseconds per
record of `prefill_many` in blocks of 150 on the loaded machine): 110-119 as on main; word -> row
dictionaries built once instead of feature names per record, 72; one byte table that lower-cases and
blanks separators with `bytes.split()` instead of `str.lower()` + translate + decode + `str.split()`,
58; title and abstract tokenised once each, phrase searches only behind a rare word of the phrase,
journals' rows cached, about 52; the model built once in the importing process before the workers fork.
Dropped: pyarrow's C++ `ascii_split_whitespace` + `index_in` for a block's abstracts (33 µs against 29
for the same step in Python), stopword removal by `str.replace` before the split (38 µs for the replaces alone, more than the
lookups it saves), `frozenset.intersection` + lookups (29 µs against 14 for one `map(dict.get)` into a
set), indexing the weights with a Python list (3.1 µs against 1.8 for `np.fromiter` + `take`); an
earlier session: numpy hashing of tokens, one big regular expression for the cues, reading only the
abstract's first and last sentences (quality)."""
TIERS = [EvidenceTier.DECISIVE, EvidenceTier.SUPPORTING, EvidenceTier.NOT_COUNTED]


def _per_class(truth: list[StudyDesign], predicted: list[StudyDesign]) -> list[str]:
    lines = ["| design | tier | test records | precision | recall | F1 |", "|---|---|---:|---:|---:|---:|"]
    for c in SCORED:
        tp = sum(t is c and p is c for t, p in zip(truth, predicted, strict=True))
        fp = sum(t is not c and p is c for t, p in zip(truth, predicted, strict=True))
        fn = sum(t is c and p is not c for t, p in zip(truth, predicted, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        lines.append(
            f"| {c.value} | {DESIGN_TIER[c].name.lower().replace('_', ' ')} | {tp + fn} "
            f"| {precision:.2f} | {recall:.2f} | {f1:.2f} |"
        )
    return lines


def _tier_confusion(truth: list[StudyDesign], predicted: list[StudyDesign]) -> list[str]:
    pairs = Counter((DESIGN_TIER[t], DESIGN_TIER[p]) for t, p in zip(truth, predicted, strict=True))
    names = [t.name.lower().replace("_", " ") for t in TIERS]
    lines = [
        "| human label's tier \\ predicted | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(TIERS),
    ]
    for t in TIERS:
        lines.append(
            f"| {t.name.lower().replace('_', ' ')} | " + " | ".join(str(pairs[(t, p)]) for p in TIERS) + " |"
        )
    return lines


def _ketamine_rows() -> list[dict[str, Any]]:
    if not KETAMINE.exists():
        return []
    rows = []
    for article in json.loads(KETAMINE.read_text())["articles"]:
        types = article.get("publication_types") or "[]"
        rows.append(
            {**article, "publication_types": ast.literal_eval(types) if isinstance(types, str) else types}
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", type=Path, help="update this Markdown file (docs/performance.md)")
    args = parser.parse_args()
    test = read_split("test", DATA)
    load = os.getloadavg()[0]
    model = shipped_model()
    started = time.process_time()
    guesses = [model.classify(e.title, e.abstract, e.journal) for e in test]
    per_record_ms = (time.process_time() - started) / len(test) * 1000
    records: list[RecordText] = [(e.title, e.abstract, e.journal, (), ()) for e in test]
    started = time.process_time()
    for first in range(0, len(records), 150):
        model.classify_many(records[first : first + 150], explain=False)
    batch_us = (time.process_time() - started) / len(test) * 1e6
    truth = [e.design for e in test]
    predicted = [scored_design(g.design) for g in guesses]
    baseline = [scored_design(suggest_design([])) for _ in test]
    f1, tiers = macro_f1(truth, predicted), tier_accuracy(truth, predicted)
    low = [g.confidence < 0.6 for g in guesses]
    confident = [
        (t, p) for (t, p), flagged in zip(zip(truth, predicted, strict=True), low, strict=True) if not flagged
    ]
    confident_tiers = sum(DESIGN_TIER[t] == DESIGN_TIER[p] for t, p in confident) / max(1, len(confident))
    errors = Counter(
        (e.label, p.value)
        for e, p in zip(test, predicted, strict=True)
        if DESIGN_TIER[e.design] != DESIGN_TIER[p]
    )

    ketamine = _ketamine_rows()
    studies = [a for a in ketamine if notice_kind(a["publication_types"], str(a["title"])) is None]
    with_types = [
        classify_design(
            str(a["title"]), str(a.get("abstract") or ""), str(a.get("journal") or ""), a["publication_types"]
        )
        for a in studies
    ]
    blank = [
        classify_design(str(a["title"]), str(a.get("abstract") or ""), str(a.get("journal") or ""))
        for a in studies
    ]
    old = [suggest_design(a["publication_types"]) for a in studies]
    same = sum(w.design is b.design for w, b in zip(with_types, blank, strict=True))
    same_tier = sum(
        DESIGN_TIER[w.design] == DESIGN_TIER[b.design] for w, b in zip(with_types, blank, strict=True)
    )
    agree_old = sum(w.design is o for w, o in zip(with_types, old, strict=True))

    today = datetime.now(UTC).date().isoformat()
    lines = [
        MARK_START,
        f"### Study-design classifier (test split, {today}, `python bench/design_classifier.py`)",
        "",
        f"Machine: {describe_machine()}. Model: `{MODEL_PATH.relative_to(ROOT)}` "
        f"({MODEL_PATH.stat().st_size / 1024:.0f} KiB, {len(model.names):,} features), trained by "
        "`bench/train_design_classifier.py` on train + val; settings chosen on val; test read once here.",
        "",
        f"StudyTypeTeller test split: {len(test)} human-labelled psychiatry and neurology abstracts, no "
        "publication types or MeSH (as a record PubMed has not indexed yet).",
        "",
        '| measure | classifier | PubMed-types prefill (no types: all "other") | goal |',
        "|---|---:|---:|---:|",
        f"| macro-F1 over our designs | **{f1:.3f}** | {macro_f1(truth, baseline):.3f} | 0.85 |",
        f"| weight-tier accuracy | **{tiers:.3f}** | {tier_accuracy(truth, baseline):.3f} | 0.95 |",
        f"| design accuracy | {sum(t is p for t, p in zip(truth, predicted, strict=True)) / len(test):.3f} | "
        f"{sum(t is p for t, p in zip(truth, baseline, strict=True)) / len(test):.3f} | |",
        f"| flagged for a person (confidence < 0.6) | {sum(low)} of {len(test)} | | |",
        f"| tier accuracy on the unflagged | {confident_tiers:.3f} ({len(confident)} records) | | |",
        f"| CPU per record, one at a time with the cues (as a page explains one) | {per_record_ms:.2f} ms | | |",
        f"| CPU per record in blocks of 150, no cues (as at import; load {load:.1f}) | {batch_us:.0f} µs | | |",
        "",
        "Per design (meta-analyses score as systematic reviews: the labels do not tell them apart):",
        "",
        *_per_class(truth, predicted),
        "",
        "Tiers, human label against prediction (rows sum to the test records of that tier):",
        "",
        *_tier_confusion(truth, predicted),
        "",
        "The most common tier errors (StudyTypeTeller label -> predicted design): "
        + "; ".join(f"{label} -> {design} ({n})" for (label, design), n in errors.most_common(6))
        + ".",
        "",
    ]
    if studies:
        lines += [
            f"Real ketamine records (`shared/data/pubmed/ketamine`, {len(ketamine)} records, "
            f"{len(ketamine) - len(studies)} recognised as notices): with their publication types blanked the "
            f"classifier keeps the same design for {same} of {len(studies)} and the same tier for "
            f"{same_tier}; with types it agrees with the types-only prefill on {agree_old}.",
            "",
        ]
    lines += [TRIED, ""]
    lines.append(MARK_END)
    report = "\n".join(lines)
    print(report)
    if args.write:
        write_section(args.write, report, MARK_START, MARK_END)


if __name__ == "__main__":
    main()
