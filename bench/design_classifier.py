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
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from machine import describe_machine  # bench/machine.py: scripts run from bench/
from report import write_section
from train_design_classifier import DATA, macro_f1, read_split, scored_design, tier_accuracy

from db.corpus.classifier import MODEL_PATH, classify_design, shipped_model
from db.corpus.design import DESIGN_TIER, suggest_design
from db.corpus.notices import notice_kind
from db.vocab import EvidenceTier, StudyDesign

ROOT = Path(__file__).resolve().parent.parent
KETAMINE = ROOT.parent / "shared" / "data" / "pubmed" / "ketamine" / "elambeth-supplements_ketamine.json"
MARK_START = "<!-- bench/design_classifier.py:start -->"
MARK_END = "<!-- bench/design_classifier.py:end -->"
SCORED = [d for d in StudyDesign if d is not StudyDesign.META_ANALYSIS]
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


def _ketamine_rows() -> list[dict[str, object]]:
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
    model = shipped_model()
    started = time.perf_counter()
    guesses = [model.classify(e.title, e.abstract, e.journal) for e in test]
    per_record_ms = (time.perf_counter() - started) / len(test) * 1000
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
        f"| time per record (one process) | {per_record_ms:.2f} ms | | |",
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
    lines.append(MARK_END)
    report = "\n".join(lines)
    print(report)
    if args.write:
        write_section(args.write, report, MARK_START, MARK_END)


if __name__ == "__main__":
    main()
