"""The literature: init-db, harvest (once or daily), import, export articles, runs, info, dashboard."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import date, time
from pathlib import Path

import click

from ingest import schedule
from ingest.batch_sizes import DEFAULT_BATCH_SIZE, DEFAULT_IMPORT_BATCH
from ingest.cli.errors import explain
from ingest.cli.options import CLOCK_TIME, DAY, POSITIVE, format_option, output_option
from ingest.cli.output import output, say, warn
from ingest.cli.session import database_session, database_url, display_url

APP = Path(__file__).resolve().parents[2] / "app.py"


@click.command(
    "init-db",
    short_help="Create the tables and load the seed article (safe to repeat).",
    help="Create the tables and load the seed article (safe to repeat; every command does it too).",
)
def init_db_command() -> int:
    from db.review.sources import ensure_seed_content

    with database_session() as session:
        document = ensure_seed_content(session)  # the article under review, on first start
        session.commit()
    say(f"Database ready: {display_url(database_url())} (article under review: {document.title!r})")
    return 0


@click.command(
    "harvest",
    short_help="Fetch new and revised PubMed records into the database.",
    help="Search PubMed through NCBI E-utilities and store every matching record. A repeated harvest of "
    "the same query asks only for records added or revised since the last successful run (less a day of "
    "overlap).",
)
@click.option("--query", help="PubMed query (default: the documented ketamine/depression query)")
@click.option("--since", type=DAY, help="only records added or revised on or after this date (YYYY-MM-DD)")
@click.option(
    "--full", is_flag=True, help="ask for every matching record, not only what changed since the last run"
)
@click.option("--max", "max_records", type=POSITIVE, help="stop after this many records")
@click.option(
    "--batch-size",
    type=POSITIVE,
    default=DEFAULT_BATCH_SIZE,
    help=f"records per efetch request and per commit (default {DEFAULT_BATCH_SIZE})",
)
@click.option(
    "--schedule",
    "every",
    type=click.Choice(["daily"]),
    help="keep running in the foreground and harvest incrementally every day (see --at); "
    "a failed run is logged and the next day's run goes ahead",
)
@click.option(
    "--at",
    type=CLOCK_TIME,
    default=schedule.DEFAULT_AT,
    metavar="HH:MM",
    help=f"with --schedule: the local time of day to harvest (default {schedule.DEFAULT_AT:%H:%M}; "
    "NCBI asks for large jobs at night or at weekends, US Eastern time)",
)
def harvest_command(
    query: str | None,
    since: date | None,
    full: bool,
    max_records: int | None,
    batch_size: int,
    every: str | None,
    at: time,
) -> int:
    def once() -> None:
        _harvest_once(query, since, full, max_records, batch_size)

    if every is None:
        once()
        return 0
    if since is not None:
        raise click.ClickException(
            "--since with --schedule would fetch the same days every time; leave it out (each run asks "
            "for what changed since the last successful one)."
        )
    schedule.log_to_stderr()
    return schedule.run_daily(lambda: _explained(once), at)


def _harvest_once(
    query: str | None, since: date | None, full: bool, max_records: int | None, batch_size: int
) -> None:
    from db.settings import load_settings
    from ingest.harvest import DEFAULT_QUERY, harvest
    from ingest.progress import ProgressBar

    bar = ProgressBar("harvest")
    try:
        run = harvest(
            load_settings(),
            query=DEFAULT_QUERY if query is None else query,
            since=since,
            full=full,
            max_records=max_records,
            batch_size=batch_size,
            progress=bar,
        )
    finally:
        bar.close()
    if run.records_new or run.records_updated or run.records_deleted:
        keep_summary_current(database_url())
    since_text = f" since {run.since.isoformat()}" if run.since else ""
    say(
        f"Harvest {run.id} {run.status}{since_text}: {run.count or 0:,} matching, {run.records_new:,} new, "
        f"{run.records_updated:,} updated, {run.records_unchanged:,} unchanged, {run.records_deleted:,} deleted, "
        f"{run.records_failed:,} missing from NCBI's answers; {run.requests_made:,} requests to E-utilities."
    )


def keep_summary_current(url: str) -> None:
    """Bring the verdict summary kept in the database up to date with the studies just stored, so the
    dashboard's next start does not read every claim; best effort: the import stands either way."""
    from sqlalchemy import text

    from db.engine import open_session

    try:
        with open_session(url) as session:
            # Nothing judged yet (a first import): nothing to keep, and the review modules stay unloaded.
            if session.execute(text("SELECT 1 FROM pair_state LIMIT 1")).first() is None:
                return
            from db.read.summary import keep_summary_current as refresh

            refresh(session)
    except Exception as exc:  # noqa: BLE001  (the studies are stored; only a cache is behind)
        warn(
            f"note: the verdict summary was not brought up to date ({str(exc).splitlines()[0]}); "
            "the dashboard reads it again when it first shows it."
        )


def _explained(job: Callable[[], None]) -> None:
    # The scheduler logs the first line of a failure: give it the line the command line would print.
    try:
        job()
    except Exception as exc:
        report = explain(exc)
        if report is None:
            raise
        raise RuntimeError(report.text.removeprefix("error: ")) from exc


@click.command(
    "import",
    short_help="Import PubMed XML, MEDLINE text, JSON records or JSON Lines files.",
    help="Import files of PubMed records. Accepted: PubMed XML (efetch output, baseline and update files, "
    ".xml.gz), MEDLINE text (.nbib or .txt as PubMed and PMC export it), JSON records (one object, an "
    'array, or an object holding them under "articles") and JSON Lines, one record per line, as '
    "`export articles --format jsonl` writes them: importing that export into a new database gives the "
    "same articles. The format is recognised from the content, not the name; gzip too. Each batch is one "
    "transaction and each file its own run: a file that fails is reported and the others are still "
    "imported (exit 1 if any failed). Importing the same file again changes nothing; a changed record is "
    "stored as a revision. A record older than the stored revision of its PMID (by DateRevised) is "
    "skipped and counted, unless --allow-older.",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="FILE...")
@click.option(
    "--batch-size",
    type=POSITIVE,
    default=DEFAULT_IMPORT_BATCH,
    help=f"records per commit (default {DEFAULT_IMPORT_BATCH})",
)
@click.option(
    "--allow-older",
    is_flag=True,
    help="store records even when they are older revisions than the stored ones",
)
def import_command(files: tuple[Path, ...], batch_size: int, allow_older: bool) -> int:
    from ingest.importer import import_file
    from ingest.progress import ProgressBar

    url = database_url()
    failed: list[tuple[Path, str]] = []
    changed = False
    for path in files:
        bar = ProgressBar(f"import {path.name}")
        try:
            run = import_file(url, path, batch_size=batch_size, progress=bar, allow_older=allow_older)
        except Exception as exc:
            report = explain(exc)
            if report is None or len(files) == 1:
                raise  # one file: its error is the command's; a bug keeps its traceback
            warn(report.text)
            failed.append((path, report.text.removeprefix("error: ")))
            continue
        finally:
            bar.close()
        changed = changed or bool(run.records_new or run.records_updated or run.records_deleted)
        older = f", {run.records_older:,} older than stored (skipped)" if run.records_older else ""
        say(
            f"{path}: {run.count or 0:,} records, {run.records_new:,} new, {run.records_updated:,} updated, "
            f"{run.records_unchanged:,} unchanged, {run.records_deleted:,} deleted{older} (run {run.id})."
        )
    if changed:
        keep_summary_current(url)
    if failed:
        names = ", ".join(str(path) for path, _ in failed)
        raise click.ClickException(
            f"{len(failed)} of {len(files)} files failed ({names}); the others were imported. Fix or "
            "replace the failed files and import them again."
        )
    return 0


@click.command(
    "articles",
    short_help="One row per article (jsonl or csv).",
    help="One row per article: pmid, title, abstract, journal, year, doi, pmcid, publication_types, "
    "mesh_terms, retracted, design, ... JSON Lines also carry the record as stored (journal_iso, "
    "abstract_sections, author_details, mesh_headings, notice_details), so `import` of the file rebuilds "
    "the same articles; CSV stays flat, for spreadsheets.",
)
@format_option("jsonl or csv (default jsonl)")
@output_option()
def export_articles(fmt: str | None, output_path: Path | None) -> int:
    from db.exports.articles import EXPORT_FORMATS, write_articles

    fmt = fmt or "jsonl"
    if fmt not in EXPORT_FORMATS:
        raise click.ClickException(
            f"Articles export as {' or '.join(EXPORT_FORMATS)}, not {fmt!r}; pass --format jsonl or --format csv."
        )
    with database_session() as session, output(output_path) as out:
        count = write_articles(session, out, fmt)
    if output_path:
        warn(f"Wrote {count:,} articles to {output_path}")
    return 0


@click.command("runs", help="List recent harvests and imports with their outcome.")
@click.option("--limit", type=POSITIVE, default=20, help="how many runs to show (default 20)")
def runs_command(limit: int) -> int:
    from db.corpus.runs import recent_runs

    with database_session() as session:
        runs = recent_runs(session, limit)
    if not runs:
        say("No harvests or imports yet; run `ketamine-evidence harvest` or `ketamine-evidence import FILE`.")
        return 0
    for run in runs:
        started = run["started_at"].strftime("%Y-%m-%d %H:%M")
        error = f"  error: {run['error']}" if run["error"] else ""
        say(
            f"#{run['id']:<4} {run['kind']:<7} {run['status']:<11} {started}  "
            f"new {run['records_new']:,} upd {run['records_updated']:,} same {run['records_unchanged']:,} "
            f"req {run['requests_made']:,}  {run['query'][:60]}{error}"
        )
    return 0


@click.command("info", help="Show which database is used and what it holds.")
def info_command() -> int:
    from db.corpus.articles import corpus_summary
    from db.engine import engine_for
    from db.review.audit_guard import audit_guard_problems
    from db.settings import load_settings

    settings = load_settings()
    with database_session() as session:
        summary = corpus_summary(session)
    years = f"{summary.oldest_year}-{summary.newest_year}" if summary.newest_year else "none"
    say(f"Database: {display_url(settings.database_url)}")
    say(
        f"Articles: {summary.articles:,} ({summary.with_abstract:,} with abstract, {summary.retracted:,} retracted or under concern; years {years})"
    )
    say(
        f"E-utilities: {settings.eutils_base_url} as {settings.ncbi_email or '(NCBI_EMAIL not set)'}{' with API key' if settings.ncbi_api_key else ''}"
    )
    problems = audit_guard_problems(engine_for(settings.database_url))
    say(
        f"Audit guard: {'; '.join(problems) if problems else 'on (audit_event and audit_chain refuse changes)'}"
    )
    return 0


@click.command("dashboard", help="Start the Streamlit dashboard.")
@click.option("--port", type=POSITIVE, default=8501, help="port to serve on (default 8501)")
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="address to listen on; 0.0.0.0 serves every interface (put it behind a proxy with sign-in)",
)
def dashboard_command(port: int, address: str) -> int:
    from db.engine import init_db

    if not APP.exists():
        raise click.ClickException(
            f"The dashboard's app.py is not beside the package ({APP}); run `streamlit run app.py` from a clone of the project."
        )
    init_db(database_url())
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port)]
    return subprocess.call([*command, "--server.address", address, "--server.headless", "true"])


@click.group("designs", help="The study designs prefilled by the classifier that ships with the package.")
def designs_group() -> None:
    pass


@designs_group.command(
    "reclassify",
    short_help="Prefill designs again with this release's classifier.",
    help="Prefill the design of every article classified by an older classifier (with --all: every "
    "article) with this release's classifier. Designs that reviewers confirmed or corrected are kept; "
    "the counts say how many prefills changed under them.",
)
@click.option("--all", "everything", is_flag=True, help="classify every article again, not only older ones")
def designs_reclassify(everything: bool) -> int:
    from db.corpus.design import reclassify

    with database_session() as session:
        counts = reclassify(session, everything=everything)
        session.commit()
    say(
        f"Checked {counts['checked']:,} articles: {counts['changed']:,} prefills changed "
        f"({counts['changed_under_correction']:,} under a reviewer's design, which stays), "
        f"{counts['notices']:,} publication notices, {counts['low_confidence']:,} to confirm (low confidence)."
    )
    return 0


COMMANDS = [
    designs_group,
    init_db_command,
    harvest_command,
    import_command,
    runs_command,
    info_command,
    dashboard_command,
]
EXPORTS = [export_articles]
