"""The review workflow's exports: `export claims|assessments|audit|claimreview`."""

from __future__ import annotations

from pathlib import Path

import click

from ingest.cli.options import format_option, output_option
from ingest.cli.output import output, warn
from ingest.cli.session import database_session

DEFAULT_PUBLISHER = "Ketamine Evidence review team"


@click.command(
    "claims",
    short_help="One report per claim (jsonl, csv or markdown).",
    help="One report per claim: verdict, strength, reasoning, agreement, evidence.",
)
@format_option("jsonl, csv or markdown (default jsonl)")
@output_option()
def export_claims(fmt: str | None, output_path: Path | None) -> int:
    from db.exports.claims import ExportFormat, claim_reports, parse_format, write_claims

    formats = (ExportFormat.JSONL, ExportFormat.CSV, ExportFormat.MARKDOWN)
    chosen = parse_format(fmt or "jsonl", formats, "claims")
    with database_session(seed=True) as session:
        reports = claim_reports(session)
    with output(output_path) as out:
        write_claims(reports, chosen, out)
    return 0


@click.command("assessments", help="Every reviewer's vote, one row per assessment.")
@format_option("csv or jsonl (default csv)")
@output_option()
def export_assessments(fmt: str | None, output_path: Path | None) -> int:
    from db.exports.claims import ExportFormat, parse_format, write_assessments

    chosen = parse_format(fmt or "csv", (ExportFormat.CSV, ExportFormat.JSONL), "assessments")
    with database_session(seed=True) as session, output(output_path) as out:
        write_assessments(session, chosen, out)
    return 0


@click.command("audit", help="The audit trail: who did what, when, and why.")
@format_option("jsonl or csv (default jsonl)")
@output_option()
def export_audit(fmt: str | None, output_path: Path | None) -> int:
    from db.exports.claims import ExportFormat, parse_format, write_audit

    chosen = parse_format(fmt or "jsonl", (ExportFormat.JSONL, ExportFormat.CSV), "the audit trail")
    with database_session(seed=True) as session, output(output_path) as out:
        write_audit(session, chosen, out)
    return 0


@click.command(
    "claimreview",
    short_help="Signed-off claims as schema.org ClaimReview JSON-LD.",
    help="Signed-off claims as schema.org ClaimReview JSON-LD; claims whose evidence changed since "
    "sign-off are left out.",
)
@format_option("json (the default; ClaimReview is JSON-LD only)")
@output_option()
@click.option("--publisher", help=f"the reviewing organisation (default {DEFAULT_PUBLISHER!r})")
@click.option("--publisher-url", help="the organisation's web address")
def export_claimreview(
    fmt: str | None, output_path: Path | None, publisher: str | None, publisher_url: str | None
) -> int:
    from db.exports.claims import claimreview_jsonld, write_claimreview

    if (fmt or "json") not in ("json", "jsonld", "json-ld"):
        raise click.ClickException(f"ClaimReview is JSON-LD only, not {fmt!r}; drop --format.")
    with database_session(seed=True) as session:
        export = claimreview_jsonld(session, publisher or DEFAULT_PUBLISHER, publisher_url)
    with output(output_path) as out:
        write_claimreview(export, out)
    if export.skipped:
        warn(
            f"Left out {len(export.skipped)} claim(s) whose evidence changed since sign-off "
            f"({', '.join(export.skipped)}); sign them off again to publish them."
        )
    return 0


EXPORTS = [export_claims, export_assessments, export_audit, export_claimreview]
