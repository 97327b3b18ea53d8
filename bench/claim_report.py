#!/usr/bin/env python3
"""The claim report our own judgments give on the shared ketamine records.

usage: python bench/claim_report.py [--out docs/claim-report-ketamine.md] [--keep-db PATH]

Builds a scratch SQLite database, imports the 46 real records of
../shared/data/pubmed/ketamine/records.jsonl with the importer (`ketamine-evidence import`), loads the
seed article and its claims, and records every judgment of bench/judged_verdicts.json twice, by two
reviewers who agree (the state a blind dual review leaves when both vote alike), through the public
API (db.review.assessments.record_assessment, with the evidence fields). Then writes the claim report
(db.exports.claims, Markdown) and prints one line per claim: verdict, certainty, downgrades.

Nothing is signed off, so every verdict in the report is provisional. Skips with a message when
../shared/data is not there.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RECORDS = ROOT.parent / "shared" / "data" / "pubmed" / "ketamine" / "records.jsonl"
JUDGED = ROOT / "bench" / "judged_verdicts.json"
OUT = ROOT / "docs" / "claim-report-ketamine.md"
REVIEWERS = ("rhea", "ravi")  # two reviewers who agree on every pair


def build(url: str, judged: dict) -> int:
    """Import the records, load the seed claims and record each judgment by both reviewers."""
    from db.engine import init_db, open_session
    from db.review.assessments import record_assessment
    from db.review.claims import get_claim
    from db.review.evidence_fields import EVIDENCE_FIELDS
    from db.review.roles import add_user
    from db.review.sources import ensure_seed_content
    from db.vocab import Role, StudyDesign
    from ingest.importer import import_file

    init_db(url)
    import_file(url, RECORDS)
    recorded = 0
    with open_session(url) as session:
        ensure_seed_content(session)
        admin = add_user(session, None, "ada", Role.ADMIN)
        reviewers = [add_user(session, admin, name, Role.REVIEWER) for name in REVIEWERS]
        for key, pairs in judged["claims"].items():
            claim = get_claim(session, key)
            for pmid, row in pairs.items():
                evidence = {k: row[k] for k in EVIDENCE_FIELDS if k in row}
                for reviewer in reviewers:
                    record_assessment(
                        session,
                        reviewer,
                        claim,
                        int(pmid),
                        row["verdict"],
                        quote=row.get("quote") or "",
                        note=row.get("note") or "",
                        design=StudyDesign(row["design"]),
                        evidence=evidence or None,
                    )
                    recorded += 1
        session.commit()
    return recorded


def report(url: str, out: Path) -> list:
    from db.engine import open_session
    from db.exports.claims import claim_reports, write_claims
    from db.exports.formats import ExportFormat

    with open_session(url) as session:
        reports = claim_reports(session)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        write_claims(reports, ExportFormat.MARKDOWN, handle)
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=OUT, help=f"the Markdown report (default {OUT.relative_to(ROOT)})"
    )
    parser.add_argument(
        "--keep-db",
        type=Path,
        help="build the database at this path and keep it (to open the dashboard on it)",
    )
    args = parser.parse_args()
    if not RECORDS.exists():
        print(f"skipped: {RECORDS} not found (the shared records live in ../shared/data)")
        return
    judged = json.loads(JUDGED.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="ke-claims-") as tmp:
        path = args.keep_db or Path(tmp) / "claims.sqlite3"
        if path.exists():
            raise SystemExit(f"{path} exists already; pass a new path to --keep-db")
        url = f"sqlite:///{path}"
        recorded = build(url, judged)
        reports = report(url, args.out)
        from db.engine import engine_for

        engine_for(url).dispose()  # release the file before the folder is removed
    print(
        f"{recorded} assessments recorded ({recorded // 2} pairs, two agreeing reviewers); report: {args.out}"
    )
    width = max(len(r.key) for r in reports)
    for r in reports:
        downgrades = "; ".join(f"{d['domain']}: {d['reason']}" for d in r.downgrades) or "none"
        print(f"{r.key:<{width}}  {r.verdict:<21}  {r.certainty:<8}  {downgrades}")


if __name__ == "__main__":
    main()
