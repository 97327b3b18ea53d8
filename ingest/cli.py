"""The `ketamine-evidence` console script: harvest, import, export, runs, info, dashboard."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from db.corpus.articles import corpus_summary
from db.corpus.runs import recent_runs
from db.engine import describe_operational_error, init_db, open_session
from db.errors import DatabaseError, ReviewError
from db.exports.articles import EXPORT_FORMATS, write_articles
from db.review.sources import ensure_seed_content
from db.settings import load_settings
from ingest import ops_cli, rank_cli, review_cli
from ingest.eutils import ConfigurationError, EutilsError
from ingest.harvest import DEFAULT_BATCH_SIZE, DEFAULT_QUERY, harvest
from ingest.importer import DEFAULT_IMPORT_BATCH, import_file
from ingest.progress import ProgressBar
from ingest.pubmed_xml import PubmedFormatError

log = logging.getLogger("ketamine_evidence")

# Exceptions whose message is already a one-line explanation for the user.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ReviewError,
    PubmedFormatError,
    EutilsError,
    ConfigurationError,
    DatabaseError,
    ValueError,
    FileNotFoundError,
    PermissionError,
)


def _date(text: str) -> date:
    for pattern in ("%Y-%m-%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(f"{text!r} is not a date; write it as YYYY-MM-DD, e.g. 2024-01-31")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ketamine-evidence",
        description="Harvest PubMed on ketamine for depression, review claims against it, export the evidence.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request and batch")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    init = commands.add_parser("init-db", help="create the tables and load the seed article (safe to repeat)")
    init.set_defaults(func=cmd_init_db)

    harvest_cmd = commands.add_parser(
        "harvest",
        help="fetch new and revised PubMed records into the database",
        description="Search PubMed through NCBI E-utilities and store every matching record. "
        "A repeated harvest of the same query asks only for records added or revised since the last "
        "successful run (less a day of overlap).",
    )
    harvest_cmd.add_argument(
        "--query",
        default=DEFAULT_QUERY,
        help="PubMed query (default: the documented ketamine/depression query)",
    )
    harvest_cmd.add_argument(
        "--since", type=_date, help="only records added or revised on or after this date (YYYY-MM-DD)"
    )
    harvest_cmd.add_argument(
        "--full",
        action="store_true",
        help="ask for every matching record, not only what changed since the last run",
    )
    harvest_cmd.add_argument("--max", dest="max_records", type=_positive, help="stop after this many records")
    harvest_cmd.add_argument(
        "--batch-size",
        type=_positive,
        default=DEFAULT_BATCH_SIZE,
        help=f"records per efetch request and per commit (default {DEFAULT_BATCH_SIZE})",
    )
    harvest_cmd.set_defaults(func=cmd_harvest)

    import_cmd = commands.add_parser(
        "import",
        help="import PubMed XML (.xml, .xml.gz) or MEDLINE text (.nbib, .txt) files",
        description="Import PubMed files; the format is recognised from the content. Each batch is one transaction.",
    )
    import_cmd.add_argument(
        "files", nargs="+", type=Path, metavar="FILE", help="PubMed XML, .xml.gz, .nbib or MEDLINE .txt"
    )
    import_cmd.add_argument(
        "--batch-size",
        type=_positive,
        default=DEFAULT_IMPORT_BATCH,
        help=f"records per commit (default {DEFAULT_IMPORT_BATCH})",
    )
    import_cmd.set_defaults(func=cmd_import)

    export = commands.add_parser("export", help="export data (articles, and the review data where available)")
    export.add_argument("kind", choices=sorted(EXPORT_KINDS), help="what to export")
    export.add_argument("--format", dest="fmt", help=f"output format (articles: {', '.join(EXPORT_FORMATS)})")
    export.add_argument("-o", "--output", type=Path, help="write to this file instead of standard output")
    review_cli.add_export_arguments(export)
    export.set_defaults(func=cmd_export)

    runs = commands.add_parser("runs", help="list recent harvests and imports with their outcome")
    runs.add_argument("--limit", type=_positive, default=20, help="how many runs to show (default 20)")
    runs.set_defaults(func=cmd_runs)

    info = commands.add_parser("info", help="show which database is used and what it holds")
    info.set_defaults(func=cmd_info)

    review_cli.add_review_commands(commands)
    rank_cli.add_rank_commands(commands)
    ops_cli.add_ops_commands(commands)

    dashboard = commands.add_parser("dashboard", help="start the Streamlit dashboard")
    dashboard.add_argument("--port", type=_positive, default=8501, help="port to serve on (default 8501)")
    dashboard.set_defaults(func=cmd_dashboard)
    return parser


def cmd_init_db(args: argparse.Namespace) -> int:
    settings = load_settings()
    init_db(settings.database_url)
    with open_session(settings.database_url) as session:
        document = ensure_seed_content(session)  # the article under review, on first start
        session.commit()
    print(f"Database ready: {_display_url(settings.database_url)} (article under review: {document.title!r})")
    return 0


def cmd_harvest(args: argparse.Namespace) -> int:
    settings = load_settings()
    bar = ProgressBar("harvest")
    try:
        run = harvest(
            settings,
            query=args.query,
            since=args.since,
            full=args.full,
            max_records=args.max_records,
            batch_size=args.batch_size,
            progress=bar,
        )
    finally:
        bar.close()
    since = f" since {run.since.isoformat()}" if run.since else ""
    print(
        f"Harvest {run.id} {run.status}{since}: {run.count or 0:,} matching, {run.records_new:,} new, "
        f"{run.records_updated:,} updated, {run.records_unchanged:,} unchanged, {run.records_deleted:,} deleted, "
        f"{run.records_failed:,} missing from NCBI's answers; {run.requests_made:,} requests to E-utilities."
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    settings = load_settings()
    for path in args.files:
        bar = ProgressBar(f"import {path.name}")
        try:
            run = import_file(settings.database_url, path, batch_size=args.batch_size, progress=bar)
        finally:
            bar.close()
        print(
            f"{path}: {run.count or 0:,} records, {run.records_new:,} new, {run.records_updated:,} updated, "
            f"{run.records_unchanged:,} unchanged, {run.records_deleted:,} deleted (run {run.id})."
        )
    return 0


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8", newline="") as handle:
        yield handle


def export_articles(args: argparse.Namespace) -> int:
    fmt = args.fmt or "jsonl"
    if fmt not in EXPORT_FORMATS:
        raise ValueError(
            f"Articles export as {' or '.join(EXPORT_FORMATS)}, not {fmt!r}; pass --format jsonl or --format csv."
        )
    settings = load_settings()
    init_db(settings.database_url)
    with open_session(settings.database_url) as session, _output(args.output) as out:
        count = write_articles(session, out, fmt)
    if args.output:
        print(f"Wrote {count:,} articles to {args.output}", file=sys.stderr)
    return 0


# Export kinds by name: articles here, the review workflow's own (claims, assessments, audit, claimreview).
EXPORT_KINDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "articles": export_articles,
    **review_cli.EXPORT_KINDS,
}


def cmd_export(args: argparse.Namespace) -> int:
    return EXPORT_KINDS[args.kind](args)


def cmd_runs(args: argparse.Namespace) -> int:
    settings = load_settings()
    init_db(settings.database_url)
    with open_session(settings.database_url) as session:
        runs = recent_runs(session, args.limit)
    if not runs:
        print(
            "No harvests or imports yet; run `ketamine-evidence harvest` or `ketamine-evidence import FILE`."
        )
        return 0
    for run in runs:
        started = run["started_at"].strftime("%Y-%m-%d %H:%M")
        error = f"  error: {run['error']}" if run["error"] else ""
        print(
            f"#{run['id']:<4} {run['kind']:<7} {run['status']:<11} {started}  "
            f"new {run['records_new']:,} upd {run['records_updated']:,} same {run['records_unchanged']:,} "
            f"req {run['requests_made']:,}  {run['query'][:60]}{error}"
        )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    settings = load_settings()
    init_db(settings.database_url)
    with open_session(settings.database_url) as session:
        summary = corpus_summary(session)
    years = f"{summary.oldest_year}-{summary.newest_year}" if summary.newest_year else "none"
    print(f"Database: {_display_url(settings.database_url)}")
    print(
        f"Articles: {summary.articles:,} ({summary.with_abstract:,} with abstract, {summary.retracted:,} retracted or under concern; years {years})"
    )
    print(
        f"E-utilities: {settings.eutils_base_url} as {settings.ncbi_email or '(NCBI_EMAIL not set)'}{' with API key' if settings.ncbi_api_key else ''}"
    )
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    app = Path(__file__).resolve().parent.parent / "app.py"
    if not app.exists():
        raise FileNotFoundError(
            f"The dashboard's app.py is not beside the package ({app}); run `streamlit run app.py` from a clone of the project."
        )
    init_db(load_settings().database_url)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
    ]
    return subprocess.call(command)


def _display_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except USER_ERRORS as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except OperationalError as exc:
        print(f"error: {describe_operational_error(load_settings().database_url, exc)}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"error: database error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`| head`): not an error of ours; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(
            "interrupted: committed batches are kept; run the same command again to finish.", file=sys.stderr
        )
        return 130


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
