"""The review workflow's exports: `export claims|assessments|audit|claimreview`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ingest.cli.options import actor_option, format_option, output_option
from ingest.cli.output import output, warn
from ingest.cli.session import acting_user, database_session

if TYPE_CHECKING:
    from db.exports.formats import ExportFormat

DEFAULT_PUBLISHER = "Ketamine Evidence review team"


@click.command(
    "claims",
    short_help="One report per claim (jsonl, csv or markdown).",
    help="One report per claim: verdict, strength, reasoning, agreement, evidence.",
)
@format_option("jsonl, csv or markdown (default jsonl)")
@output_option()
@actor_option("whose view of the votes: blind mode applies to reviewers")
def export_claims(fmt: str | None, output_path: Path | None, actor: str | None) -> int:
    from db.exports.claims import claim_reports, write_claims

    chosen = _format(fmt, ("jsonl", "csv", "markdown"), "claims")
    with database_session(seed=True) as session:
        reports = claim_reports(session, viewer=acting_user(session, actor))
    with output(output_path) as out:
        write_claims(reports, chosen, out)
    return 0


@click.command("assessments", help="Every reviewer's vote, one row per assessment.")
@format_option("csv or jsonl (default csv)")
@output_option()
@actor_option("whose view of the votes: blind mode applies to reviewers")
def export_assessments(fmt: str | None, output_path: Path | None, actor: str | None) -> int:
    from db.exports.assessments import write_assessments

    _write_from_session(write_assessments, _format(fmt, ("csv", "jsonl"), "assessments"), output_path, actor)
    return 0


@click.command("audit", help="The audit trail: who did what, when, and why.")
@format_option("jsonl or csv (default jsonl)")
@output_option()
@actor_option("whose view of the votes: blind mode applies to reviewers")
def export_audit(fmt: str | None, output_path: Path | None, actor: str | None) -> int:
    from db.exports.audit import write_audit

    _write_from_session(write_audit, _format(fmt, ("jsonl", "csv"), "the audit trail"), output_path, actor)
    return 0


def _format(fmt: str | None, allowed: tuple[str, ...], what: str) -> ExportFormat:
    """`--format`, or the first of `allowed`; a format the kind does not take is an error (exit 1)."""
    from db.exports.formats import ExportFormat, parse_format

    return parse_format(fmt or allowed[0], tuple(ExportFormat(name) for name in allowed), what)


def _write_from_session(
    write: Callable[..., object], fmt: ExportFormat, output_path: Path | None, actor: str | None
) -> None:
    """Individual votes are shown as the acting user may see them (blind mode): hence `--as`."""
    with database_session(seed=True) as session:
        viewer = acting_user(session, actor)
        with output(output_path) as out:
            write(session, fmt, out, viewer=viewer)


@click.command(
    "claimreview",
    short_help="Claims signed off as OK to publish, as schema.org ClaimReview JSON-LD.",
    help="Claims whose latest sign-off is OK to publish, with the editor's rating, as schema.org "
    "ClaimReview JSON-LD. Provisional verdicts never appear: claims whose evidence changed since "
    "sign-off, and sign-offs made before ratings, are left out and named on standard error.",
)
@format_option("json (the default; ClaimReview is JSON-LD only)")
@output_option()
@click.option("--publisher", help=f"the reviewing organisation (default {DEFAULT_PUBLISHER!r})")
@click.option("--publisher-url", help="the organisation's web address")
@click.option(
    "--publisher-type",
    type=click.Choice(["organization", "person"], case_sensitive=False),
    default="organization",
    show_default=True,
    help="whether the reviewer named by --publisher is an organisation or a person",
)
def export_claimreview(
    fmt: str | None,
    output_path: Path | None,
    publisher: str | None,
    publisher_url: str | None,
    publisher_type: str,
) -> int:
    from db.exports.claimreview import claimreview_jsonld, write_claimreview

    if (fmt or "json") not in ("json", "jsonld", "json-ld"):
        raise click.ClickException(f"ClaimReview is JSON-LD only, not {fmt!r}; drop --format.")
    with database_session(seed=True) as session:
        export = claimreview_jsonld(
            session,
            publisher or DEFAULT_PUBLISHER,
            publisher_url,
            author_type="Person" if publisher_type.lower() == "person" else "Organization",
        )
    with output(output_path) as out:
        write_claimreview(export, out)
    if export.skipped:
        warn(
            f"Left out {len(export.skipped)} claim(s) whose evidence changed since sign-off "
            f"({', '.join(export.skipped)}); sign them off again to publish them."
        )
    if export.unrated:
        warn(
            f"Left out {len(export.unrated)} claim(s) signed off before ratings "
            f"({', '.join(export.unrated)}); sign them off again with --rating to publish them."
        )
    if export.empty:
        warn(export.why_empty())
    return 0


EXPORTS = [export_claims, export_assessments, export_audit, export_claimreview]
