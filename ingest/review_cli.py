"""CLI subcommands of the review workflow: import assessments, exports, users, conflicts, sign-off."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from sqlmodel import Session

from db.engine import init_db, open_session
from db.errors import DatabaseError, ImportRejected, InvalidInputError, ReviewError
from db.exports.assessments import write_assessments
from db.exports.audit import write_audit
from db.exports.claimreview import claimreview_jsonld, write_claimreview
from db.exports.claims import claim_reports, write_claims
from db.exports.formats import ExportFormat, parse_format
from db.models import User
from db.review.assessment_import import AssessmentRow, import_assessments
from db.review.claims import get_claim, list_claims, retire_claim
from db.review.pairs import open_conflicts, resolve_conflict
from db.review.roles import add_user, deactivate_user, get_user, list_users, set_role
from db.review.signoff import editor_queue, sign_off
from db.review.sources import ensure_seed_content
from db.settings import load_settings
from db.vocab import Role, SignOffDecision

ACTOR_ENV = "KETAMINE_EVIDENCE_USER"
DEFAULT_PUBLISHER = "Ketamine Evidence review team"
IMPORT_COLUMNS = ("reviewer", "claim_key", "pmid", "verdict", "quote", "note")
OPTIONAL_IMPORT_COLUMNS = ("design",)

Command = Callable[[argparse.Namespace], int]


# --- plumbing --------------------------------------------------------------------------------------


@contextmanager
def _session() -> Iterator[Session]:
    """A session on DATABASE_URL with the tables and the seed article in place; the command commits."""
    url = load_settings().database_url
    init_db(url)
    with open_session(url) as session:
        ensure_seed_content(session)
        session.commit()  # the seed is its own unit of work; a failing command keeps it
        yield session


def _actor(session: Session, args: argparse.Namespace) -> User:
    name = getattr(args, "actor", None) or os.environ.get(ACTOR_ENV, "").strip()
    if not name:
        raise InvalidInputError(f"Say who is acting: pass --as NAME or set {ACTOR_ENV}=NAME.")
    return get_user(session, name)


def _add_actor(parser: argparse.ArgumentParser, required_help: str = "the user doing this") -> None:
    parser.add_argument("--as", dest="actor", metavar="NAME", help=f"{required_help} (default: ${ACTOR_ENV})")


@contextmanager
def _output(path: str | Path | None) -> Iterator[TextIO]:
    """stdout, or a file written whole: a failed export leaves no half-written file behind."""
    if path is None or str(path) == "-":
        yield sys.stdout
        return
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            yield handle
        partial.replace(target)
    except OSError as exc:
        raise InvalidInputError(
            f"Cannot write {path} ({exc.strerror}); choose a writable path with -o."
        ) from exc
    finally:
        partial.unlink(missing_ok=True)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


# --- import-assessments ----------------------------------------------------------------------------


def read_assessment_csv(path: Path) -> list[AssessmentRow]:
    """Rows of an assessments CSV (Covidence / Rayyan style), each with the line it starts on."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")  # utf-8-sig: Excel writes a BOM
    except OSError as exc:
        raise InvalidInputError(f"Cannot read {path} ({exc.strerror}); check the file name.") from exc
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise InvalidInputError(
                f"{path} is empty; it needs a header row: {','.join(IMPORT_COLUMNS)},design"
            )
        names = [name.strip().lower() for name in header]
        missing = [column for column in IMPORT_COLUMNS if column not in names]
        if missing:
            raise InvalidInputError(
                f"{path} lacks the column(s) {', '.join(missing)}; the header must name "
                f"{', '.join(IMPORT_COLUMNS)} (design optional)."
            )
        rows, line = [], reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num  # a quoted cell may span lines: report the first
            if not any(cell.strip() for cell in cells):
                continue
            values = dict(zip(names, cells, strict=False))
            rows.append(
                AssessmentRow(
                    line=start,
                    **{
                        column: values.get(column, "") or ""
                        for column in IMPORT_COLUMNS + OPTIONAL_IMPORT_COLUMNS
                    },
                )
            )
        return rows


def cmd_import_assessments(args: argparse.Namespace) -> int:
    path = Path(args.file)
    rows = read_assessment_csv(path)
    with _session() as session:
        actor = _actor(session, args)
        try:
            outcome = import_assessments(
                session, actor, rows, source=path.name, create_reviewers=args.create_reviewers
            )
        except ImportRejected as exc:
            # Every bad row, one per line: a one-line error would hide all but the first.
            sys.stderr.write(f"error: {exc}\n")
            return 1
        if args.dry_run:
            session.rollback()
        else:
            session.commit()
    verb = "Would import" if args.dry_run else "Imported"
    created = f"; new reviewers: {', '.join(outcome.reviewers_created)}" if outcome.reviewers_created else ""
    _say(
        f"{verb} {len(rows)} row(s) from {path.name}: {outcome.created} new, {outcome.updated} changed, "
        f"{outcome.unchanged} unchanged{created}."
    )
    return 0


# --- exports ---------------------------------------------------------------------------------------


def _format(args: argparse.Namespace, default: str) -> str:
    # The main CLI's `export` stores --format as `fmt`; this module's own parser as `format`.
    return str(getattr(args, "format", None) or getattr(args, "fmt", None) or default)


def export_claims(args: argparse.Namespace) -> int:
    fmt = parse_format(
        _format(args, "jsonl"), (ExportFormat.JSONL, ExportFormat.CSV, ExportFormat.MARKDOWN), "claims"
    )
    with _session() as session:
        reports = claim_reports(session)
    with _output(getattr(args, "output", None)) as out:
        write_claims(reports, fmt, out)
    return 0


def export_assessments(args: argparse.Namespace) -> int:
    fmt = parse_format(_format(args, "csv"), (ExportFormat.CSV, ExportFormat.JSONL), "assessments")
    with _session() as session, _output(getattr(args, "output", None)) as out:
        write_assessments(session, fmt, out)
    return 0


def export_audit(args: argparse.Namespace) -> int:
    fmt = parse_format(_format(args, "jsonl"), (ExportFormat.JSONL, ExportFormat.CSV), "the audit trail")
    with _session() as session, _output(getattr(args, "output", None)) as out:
        write_audit(session, fmt, out)
    return 0


def export_claimreview(args: argparse.Namespace) -> int:
    fmt = _format(args, "json")
    if fmt not in ("json", "jsonld", "json-ld"):
        raise InvalidInputError(f"ClaimReview is JSON-LD only, not {fmt!r}; drop --format.")
    publisher = getattr(args, "publisher", None) or DEFAULT_PUBLISHER
    with _session() as session:
        export = claimreview_jsonld(session, publisher, getattr(args, "publisher_url", None))
    with _output(getattr(args, "output", None)) as out:
        write_claimreview(export, out)
    if export.skipped:
        sys.stderr.write(
            f"Left out {len(export.skipped)} claim(s) whose evidence changed since sign-off "
            f"({', '.join(export.skipped)}); sign them off again to publish them.\n"
        )
    return 0


# The `export` verb is shared with the lead's `export articles`: these are the review kinds.
EXPORT_KINDS: dict[str, Command] = {
    "claims": export_claims,
    "assessments": export_assessments,
    "audit": export_audit,
    "claimreview": export_claimreview,
}


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """Options the review export kinds read; ones the parser defines already are left as they are."""
    existing = set(parser._option_string_actions)  # argparse has no public lookup of defined options
    if "--format" not in existing:
        parser.add_argument(
            "--format",
            help="claims: jsonl|csv|markdown (default jsonl); assessments: csv|jsonl (default csv); "
            "audit: jsonl|csv (default jsonl)",
        )
    if "-o" not in existing and "--output" not in existing:
        parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    if "--publisher" not in existing:
        parser.add_argument(
            "--publisher", help=f"claimreview: the reviewing organisation (default {DEFAULT_PUBLISHER!r})"
        )
    if "--publisher-url" not in existing:
        parser.add_argument("--publisher-url", help="claimreview: the organisation's web address")


def run_export(args: argparse.Namespace) -> int:
    """Dispatch `export KIND` to the review kinds (for a standalone parser)."""
    return EXPORT_KINDS[args.kind](args)


# --- users -----------------------------------------------------------------------------------------


def cmd_users_add(args: argparse.Namespace) -> int:
    with _session() as session:
        actor = _actor(session, args) if (args.actor or os.environ.get(ACTOR_ENV)) else None
        user = add_user(session, actor, args.name, Role(args.role))
        session.commit()
        _say(f"Added {user.name} as {Role(user.role).value}.")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    with _session() as session:
        for user in list_users(session):
            state = "" if user.active else " (deactivated)"
            _say(f"{user.name}\t{Role(user.role).value}{state}")
    return 0


def cmd_users_set_role(args: argparse.Namespace) -> int:
    with _session() as session:
        user = set_role(session, _actor(session, args), args.name, Role(args.role), args.reason)
        session.commit()
        _say(f"{user.name} is now {Role(user.role).value}.")
    return 0


def cmd_users_deactivate(args: argparse.Namespace) -> int:
    with _session() as session:
        user = deactivate_user(session, _actor(session, args), args.name, args.reason)
        session.commit()
        _say(f"Deactivated {user.name}.")
    return 0


# --- claims, conflicts, sign-off, queue ------------------------------------------------------------


def cmd_claims_list(args: argparse.Namespace) -> int:
    with _session() as session:
        claims = list_claims(session, include_retired=args.all)
        for claim in claims:
            _say(f"{claim.key}\t{claim.status}\t{claim.statement}")
    return 0


def cmd_claims_retire(args: argparse.Namespace) -> int:
    with _session() as session:
        retire_claim(session, _actor(session, args), args.key, args.reason)
        session.commit()
        _say(f"Retired claim {args.key}.")
    return 0


def cmd_conflicts(args: argparse.Namespace) -> int:
    with _session() as session:
        actor = _actor(session, args)
        claim = get_claim(session, args.claim) if args.claim else None
        conflicts = open_conflicts(session, actor, claim)
        if not conflicts:
            _say("No open conflicts.")
        for c in conflicts:
            votes = ", ".join(f"{name}={verdict.value}" for name, verdict in sorted(c.votes.items()))
            _say(f"{c.claim_key}\t{c.pmid}\t{votes}\t{c.title}")
    return 0


def cmd_resolve(args: argparse.Namespace) -> int:
    with _session() as session:
        actor = _actor(session, args)
        resolve_conflict(
            session, actor, get_claim(session, args.claim_key), args.pmid, args.verdict, args.reason
        )
        session.commit()
        _say(f"PMID {args.pmid} is {args.verdict} for {args.claim_key}.")
    return 0


def cmd_signoff(args: argparse.Namespace) -> int:
    with _session() as session:
        actor = _actor(session, args)
        signoff = sign_off(session, actor, get_claim(session, args.claim_key), args.decision, args.rationale)
        session.commit()
        _say(
            f"Signed off {args.claim_key}: {SignOffDecision(signoff.decision).value.replace('_', ' ')} "
            f"(verdict {signoff.verdict}, {signoff.strength})."
        )
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    with _session() as session:
        items = editor_queue(session, _actor(session, args))
        if not items:
            _say("Nothing waits for an editor.")
        for item in items:
            _say(f"{item.kind.value}\t{item.summary}")
    return 0


# --- registration ----------------------------------------------------------------------------------


def add_review_commands(subparsers: argparse._SubParsersAction, *, include_export: bool = False) -> None:  # type: ignore[type-arg]
    """Register the review subcommands; each sets `func(args) -> int`.

    `include_export` also registers an `export` verb with the review kinds only, for a parser
    that has no `export` of its own (the main CLI defines `export` and dispatches to EXPORT_KINDS).
    """
    p = subparsers.add_parser(
        "import-assessments",
        help="import reviewers' assessments from a CSV, all or nothing",
        description="Columns: reviewer, claim_key, pmid, verdict, quote, note, design (optional). "
        "Every bad row is reported with its line number; nothing is written if any row is bad.",
    )
    p.add_argument("file", metavar="FILE.csv", help="the CSV to import (UTF-8, header row)")
    _add_actor(p, "the user importing: an editor for a team's file, or the reviewer of every row")
    p.add_argument(
        "--create-reviewers",
        action="store_true",
        help="add unknown reviewers as users with the reviewer role (needs an admin)",
    )
    p.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    p.set_defaults(func=cmd_import_assessments)

    if include_export:
        p = subparsers.add_parser("export", help="export claims, assessments, the audit trail or ClaimReview")
        p.add_argument("kind", choices=sorted(EXPORT_KINDS), help="what to export")
        add_export_arguments(p)
        p.set_defaults(func=run_export)

    users = subparsers.add_parser("users", help="manage users and their roles").add_subparsers(
        dest="users_command", required=True, metavar="{add,list,set-role,deactivate}"
    )
    p = users.add_parser("add", help="add a user (the first one must be an admin and needs no --as)")
    p.add_argument("name", help="the user's name, as reviewers' CSV rows spell it")
    p.add_argument("--role", required=True, choices=[r.value for r in Role], help="what the user may do")
    _add_actor(p, "the admin adding the user")
    p.set_defaults(func=cmd_users_add)
    p = users.add_parser("list", help="list users and roles")
    p.set_defaults(func=cmd_users_list)
    p = users.add_parser("set-role", help="change a user's role")
    p.add_argument("name", help="the user to change")
    p.add_argument("--role", required=True, choices=[r.value for r in Role], help="the new role")
    p.add_argument("--reason", help="why, for the audit trail")
    _add_actor(p, "the admin changing the role")
    p.set_defaults(func=cmd_users_set_role)
    p = users.add_parser("deactivate", help="stop a user from acting; their work stays attributed")
    p.add_argument("name", help="the user to deactivate")
    p.add_argument("--reason", help="why, for the audit trail")
    _add_actor(p, "the admin deactivating the user")
    p.set_defaults(func=cmd_users_deactivate)

    claims = subparsers.add_parser("claims", help="list or retire claims").add_subparsers(
        dest="claims_command", required=True, metavar="{list,retire}"
    )
    p = claims.add_parser("list", help="list claim keys and statements")
    p.add_argument("--all", action="store_true", help="include retired and merged claims")
    p.set_defaults(func=cmd_claims_list)
    p = claims.add_parser("retire", help="retire a claim; its history stays")
    p.add_argument("key", help="the claim key")
    p.add_argument("--reason", required=True, help="why the claim is retired")
    _add_actor(p, "the editor retiring it")
    p.set_defaults(func=cmd_claims_retire)

    p = subparsers.add_parser("conflicts", help="list pairs whose reviewers disagree (editors)")
    p.add_argument("--claim", metavar="KEY", help="only this claim")
    _add_actor(p, "the editor asking")
    p.set_defaults(func=cmd_conflicts)

    p = subparsers.add_parser("resolve", help="settle a conflict with a final verdict and a reason (editors)")
    p.add_argument("claim_key", help="the claim key")
    p.add_argument("pmid", type=int, help="the study's PMID")
    p.add_argument("--verdict", required=True, help="supported | mixed | unsupported | not_relevant")
    p.add_argument("--reason", required=True, help="why this verdict; kept beside the original votes")
    _add_actor(p, "the editor resolving")
    p.set_defaults(func=cmd_resolve)

    p = subparsers.add_parser("signoff", help="sign a claim off with a decision and rationale (editors)")
    p.add_argument("claim_key", help="the claim key")
    p.add_argument(
        "--decision",
        required=True,
        choices=[d.value.replace("_", "-") for d in SignOffDecision],
        help="ok-to-publish, revise-wording or remove-claim",
    )
    p.add_argument("--rationale", required=True, help="why, in a sentence or two")
    _add_actor(p, "the editor signing off")
    p.set_defaults(func=cmd_signoff)

    p = subparsers.add_parser(
        "queue", help="what waits for an editor: conflicts, changed evidence, sign-offs"
    )
    _add_actor(p, "the editor asking")
    p.set_defaults(func=cmd_queue)


def build_parser() -> argparse.ArgumentParser:
    """A parser with only the review commands (and `export` of the review kinds)."""
    parser = argparse.ArgumentParser(prog="ketamine-evidence", description="Claim review workflow.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_review_commands(subparsers, include_export=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one review command; our errors become a message on stderr and exit code 1."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ReviewError, DatabaseError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
