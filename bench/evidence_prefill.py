#!/usr/bin/env python3
"""Evidence prefill against a reviewer's labels: coverage and accuracy per field, dev and held-out.

usage: python bench/evidence_prefill.py [--write docs/performance.md] [--show dev|heldout]

Reads the labels of bench/evidence_labels.json (one reviewer's reading of 40 real abstracts, split
20 dev / 20 held-out before the extractor existed) and the records themselves from
../shared/data/pubmed/ketamine/records.jsonl. Per field: coverage = suggested where labelled;
accuracy = right among those suggested (exact for codes and participants, within 10% for follow-up
days); false suggestions = suggested where the label is null. Effect text is only counted as
suggested or not. Directness is scored on the records labelled against a claim, with that claim.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from machine import describe_machine  # bench/machine.py: scripts run from bench/
from report import write_section

from db.models import Claim
from db.review.evidence_fields import follow_up_days
from db.review.evidence_prefill import Suggestion, suggest_evidence

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "bench" / "evidence_labels.json"
RECORDS = ROOT.parent / "shared" / "data" / "pubmed" / "ketamine" / "records.jsonl"
CLAIMS = ROOT / "db" / "seed" / "claims.json"
MARK_START = "<!-- bench/evidence_prefill.py:start -->"
MARK_END = "<!-- bench/evidence_prefill.py:end -->"
FIELDS = ("participants", "follow_up", "effect", "population", "intervention", "risk_of_bias", "directness")


@dataclass
class Tally:
    labelled: int = 0
    suggested: int = 0  # suggested where labelled
    right: int = 0
    false: int = 0  # suggested where the label is null
    misses: list[str] = field(default_factory=list)


def claims() -> dict[str, Claim]:
    seed = json.loads(CLAIMS.read_text(encoding="utf-8"))["claims"]
    keep = ("key", "statement", "follow_up_min_days", "follow_up_max_days", "populations", "interventions")
    return {c["key"]: Claim(**{k: c[k] for k in keep}) for c in seed}


def is_right(name: str, label: dict, suggestion: Suggestion) -> bool:
    value = suggestion.value
    if name == "follow_up":
        days = follow_up_days(value)
        expected = label["follow_up_days"]
        return days is not None and abs(days - expected) <= 0.1 * expected
    if name == "effect":
        return True
    return str(getattr(value, "value", value)) == str(label[name])


def score(split: str) -> dict[str, Tally]:
    labels = json.loads(LABELS.read_text(encoding="utf-8"))["labels"]
    records = {r["pmid"]: r for r in map(json.loads, RECORDS.read_text(encoding="utf-8").splitlines())}
    by_key = claims()
    tallies = {name: Tally() for name in FIELDS}
    for pmid, label in labels.items():
        if label["split"] != split:
            continue
        record = records[pmid]
        claim = by_key[label["claim"]] if label["claim"] else None
        found = suggest_evidence(record["title"], record["abstract"], claim)
        for name in FIELDS:
            if name == "directness" and claim is None:
                continue
            tally, suggestion = tallies[name], found.get(name)
            if label[name] is None:
                tally.false += suggestion is not None
                if suggestion is not None:
                    tally.misses.append(f"{pmid}: suggested {suggestion.value!r}, label null")
                continue
            tally.labelled += 1
            if suggestion is None:
                tally.misses.append(f"{pmid}: none, label {label[name]!r}")
                continue
            tally.suggested += 1
            if is_right(name, label, suggestion):
                tally.right += 1
            else:
                tally.misses.append(f"{pmid}: {suggestion.value!r}, label {label[name]!r}")
    return tallies


def _percent(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "n/a"


def table(tallies: dict[str, dict[str, Tally]]) -> list[str]:
    lines = [
        "| field | split | labelled | coverage | accuracy (of suggested) | right of labelled | suggested where null |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in FIELDS:
        for split, by_field in tallies.items():
            t = by_field[name]
            accuracy = "(text: not scored)" if name == "effect" else _percent(t.right, t.suggested)
            right = "" if name == "effect" else _percent(t.right, t.labelled)
            lines.append(
                f"| {name} | {split} | {t.labelled} | {_percent(t.suggested, t.labelled)} | {accuracy} "
                f"| {right} | {t.false} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="update this Markdown file (docs/performance.md)")
    parser.add_argument("--show", choices=["dev", "heldout"], help="list the misses of one split")
    args = parser.parse_args()
    tallies = {split: score(split) for split in ("dev", "heldout")}
    lines = table(tallies)
    print("\n".join(lines))
    if args.show:
        for name, t in tallies[args.show].items():
            for miss in t.misses:
                print(f"{name}: {miss}")
    if args.write:
        today = datetime.now(UTC).date().isoformat()
        report = "\n".join(
            [
                MARK_START,
                "## Evidence prefill from the abstract (bench/evidence_prefill.py)",
                "",
                f"Measured {today}. Machine: {describe_machine()} (speed is not the point: all 40 take well "
                "under a second).",
                "",
                "Labels: `bench/evidence_labels.json`, one reviewer's reading of the 40 abstracts of "
                "`../shared/data/pubmed/ketamine/records.jsonl`, labelled before the extractor was written; "
                "20 dev (the rules were tuned on these) and 20 held out (never looked at while tuning). "
                "Coverage: suggested where the label has a value. Accuracy: right among the suggestions "
                "(codes and participants exact, follow-up within 10% of the labelled days). Suggested where "
                "null: a value the reviewer would not have put there. Directness is scored on the records "
                f"labelled against a seed claim ({tallies['dev']['directness'].labelled} dev, "
                f"{tallies['heldout']['directness'].labelled} held out), and the reviewer's directness also "
                "weighs comparators and outcomes the rule does not read.",
                "",
                *table(tallies),
                "",
                "20 records per split: one record moves a figure by 5 to 20 points. Read the held-out rows "
                "as the estimate and the dev rows as what tuning reached.",
                MARK_END,
            ]
        )
        write_section(args.write, report, MARK_START, MARK_END)


if __name__ == "__main__":
    main()
