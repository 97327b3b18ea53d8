#!/usr/bin/env python3
"""Scale benchmark: a large team instance on SQLite and PostgreSQL, and how fast its busiest reads are.

usage: python bench/scale.py [--studies 100000] [--assessments 1000000] [--reviewers 50]
                             [--engines sqlite,postgres] [--repeats 20] [--folder DIR]
                             [--postgres-admin-url URL] [--keep] [--write docs/performance.md]
                             [--reuse ENGINE=URL,...]
                             [--reads summary,verdict,queue,search,study,claim-studies,summary-after-write,queue-after-write]

For each engine, in a throwaway database (a SQLite file in --folder, or a new PostgreSQL database
created through --postgres-admin-url and dropped afterwards unless --keep):
- N real citations from ../shared/bench/make_corpus.py, imported with ingest.importer.import_file;
- the seed article and its 9 claims (db.review.sources.ensure_seed_content), an admin, an editor and R reviewers;
- M assessments (with one audit event each, as the data layer writes them) inserted in bulk with core
  inserts (executemany on SQLite, COPY on PostgreSQL), then pair_state rebuilt from them (db.review.pair_index): 85% of the (claim, study) pairs judged once, the
  rest of the budget second votes by another reviewer (a tenth disagreeing); verdicts 80% not relevant,
  12% supported, 5% mixed, 3% unsupported, as screening goes; a few design corrections and resolutions;
- ANALYZE, as a DBA would after a bulk load.
Then the review queues are warmed as the dashboard does at start (db.ranking.queue.prepare_queues), and each
read is called --repeats times in a fresh session (as a page's cached loader does), after one first call
that is reported on its own (it may fill process caches):
- verdict summary: db.read.cards.claim_cards (the Claims page: all claims, verdicts, meters);
- verdicts (issue 3 path): db.review.signoff.claim_verdict for each of the 9 claims;
- review queue page: db.ranking.queue.review_queue(limit=20) for a reviewer, cycling over the claims;
- full-text search: db.corpus.fulltext.search_articles_fulltext(limit=50) over five searches;
- study page: db.read.studies.study_detail (article, design history, every assessment of it);
- verdict summary after a write: each call follows one committed decision (record_assessment, or
  update_assessment of their own) by a random reviewer on a random claim and study;
- review queue page after a write: each call follows the reviewer's decision on the top study of that
  queue. Only the read is timed; the writes stay in the database (a kept one gains them).
Target (issue 18): p95 under 250 ms on both engines, and a new process's first call under 1 s. Also reported: build times and size on disk.
--keep prints each database's URL; --reuse measures such a kept database again without rebuilding it
(pending migrations are applied first, as the app does at start), and --reads picks which reads to time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine import describe_machine  # bench/machine.py: scripts run from bench/
from report import write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MAKE_CORPUS = ROOT.parent / "shared" / "bench" / "make_corpus.py"
MARK_START = "<!-- bench/scale.py:start -->"
MARK_END = "<!-- bench/scale.py:end -->"
TARGET_MS = 250.0  # p95 of every read (issue 18)
FIRST_TARGET_MS = 1_000.0  # a new process's first call
CHUNK = 50_000
SEARCHES = (
    "ketamine depression",
    "suicidal ideation",
    '"randomized controlled trial"',
    "treatment resistant",
    "anxiety OR insomnia",
)
VERDICT_WEIGHTS = {"not_relevant": 80, "supported": 12, "mixed": 5, "unsupported": 3}


# --- the instance ------------------------------------------------------------------------------------


def build(url: str, corpus: Path, assessments: int, reviewers: int) -> dict[str, Any]:
    """Fill an empty database; returns seconds per step and counts."""
    from sqlalchemy import insert, select

    from db.clock import utcnow
    from db.corpus.design import suggest_design
    from db.corpus.prefill import mesh_descriptors
    from db.engine import engine_for, init_db, open_session
    from db.models import Article, Claim
    from db.review.roles import add_user
    from db.review.sources import ensure_seed_content
    from db.vocab import Role
    from ingest.importer import import_file

    steps: dict[str, Any] = {}
    init_db(url)
    started = time.perf_counter()
    run = import_file(url, corpus)
    steps["import_s"] = time.perf_counter() - started
    steps["studies"] = run.records_new
    print(f"  imported {run.records_new:,} studies in {steps['import_s']:.0f} s", file=sys.stderr, flush=True)

    with open_session(url) as session:
        ensure_seed_content(session)
        admin = add_user(session, None, "ada", Role.ADMIN)
        editor = add_user(session, admin, "eve", Role.EDITOR)
        team = [add_user(session, admin, f"reviewer{i:02d}", Role.REVIEWER) for i in range(1, reviewers + 1)]
        session.commit()
        claims = [c.id for c in session.scalars(select(Claim).order_by(Claim.id))]
        designs, quotes = {}, {}
        for pmid, types, mesh, title, abstract in session.execute(
            select(
                Article.pmid,
                Article.publication_types,
                Article.mesh_headings,
                Article.title,
                Article.abstract,
            )
        ):
            designs[pmid] = suggest_design(types or [], mesh_descriptors(mesh or [])).value
            quotes[pmid] = (abstract or title)[:60]
    reviewer_ids = [user.id for user in team]
    names = {user.id: user.name for user in team}

    started = time.perf_counter()
    rows = _assessment_rows(claims, sorted(designs), reviewer_ids, assessments, designs, quotes)
    now = utcnow()
    engine = engine_for(url)
    written = 0
    from db.models import Assessment, AuditEvent

    for chunk in _chunks(rows, CHUNK):
        events = [_audit_row(row, names, now) for row in chunk]
        for row in chunk:
            row["created_at"] = row["updated_at"] = now
        if engine.dialect.name == "postgresql":
            _copy(engine, Assessment.__table__, chunk)
            _copy(engine, AuditEvent.__table__, events)
        else:
            with engine.begin() as connection:
                connection.execute(insert(Assessment.__table__), chunk)
                connection.execute(insert(AuditEvent.__table__), events)
        written += len(chunk)
        if written % 200_000 < CHUNK:
            print(f"  {written:,} assessments", file=sys.stderr, flush=True)
    steps["assessments"] = written
    steps["assessments_s"] = time.perf_counter() - started
    _extras(url, editor.id, claims, sorted(designs), designs)
    # The bulk load went around the data layer, which keeps pair_state as it writes; a restore or
    # the migration that added the table fill it the same way.
    from db.review.pair_index import rebuild_pair_state

    started = time.perf_counter()
    with engine.begin() as connection:
        steps["pairs"] = rebuild_pair_state(connection)
    steps["pair_state_s"] = time.perf_counter() - started
    print(
        f"  pair state of {steps['pairs']:,} pairs in {steps['pair_state_s']:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    if engine.dialect.name == "postgresql":
        _reset_sequences(engine)
    started = time.perf_counter()
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        else:
            connection.exec_driver_sql("ANALYZE")
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    steps["analyze_s"] = time.perf_counter() - started
    print(
        f"  {written:,} assessments in {steps['assessments_s']:.0f} s; analyzed", file=sys.stderr, flush=True
    )
    return steps


def _assessment_rows(
    claims: list[int],
    pmids: list[int],
    reviewers: list[int],
    budget: int,
    designs: dict[int, str],
    quotes: dict[int, str],
) -> Iterator[dict[str, Any]]:
    rng = random.Random(6)
    verdicts, weights = list(VERDICT_WEIGHTS), list(VERDICT_WEIGHTS.values())
    pairs = [(claim, pmid) for claim in claims for pmid in pmids]
    rng.shuffle(pairs)
    first = min(len(pairs), int(budget * 0.85))
    second = min(first, budget - first)
    next_id = 1

    def row(claim: int, pmid: int, reviewer: int, verdict: str) -> dict[str, Any]:
        nonlocal next_id
        next_id += 1
        return {
            "id": next_id - 1,
            "claim_id": claim,
            "pmid": pmid,
            "reviewer_id": reviewer,
            "verdict": verdict,
            "quote": "" if verdict == "not_relevant" else quotes[pmid],
            "note": "",
            "design": designs[pmid],
            "suggested_design": designs[pmid],
            "version": 1,
        }

    firsts: list[tuple[int, int, int, str]] = []
    for claim, pmid in pairs[:first]:
        reviewer = reviewers[rng.randrange(len(reviewers))]
        verdict = rng.choices(verdicts, weights)[0]
        firsts.append((claim, pmid, reviewer, verdict))
        yield row(claim, pmid, reviewer, verdict)
    for claim, pmid, reviewer, verdict in rng.sample(firsts, second):
        other = reviewers[
            (reviewers.index(reviewer) + 1 + rng.randrange(len(reviewers) - 1)) % len(reviewers)
        ]
        if rng.random() < 0.1:  # a disagreement: a conflict for an editor
            verdict = rng.choice([v for v in verdicts if v != verdict])
        yield row(claim, pmid, other, verdict)


def _audit_row(row: dict[str, Any], names: dict[int, str], now: datetime) -> dict[str, Any]:
    after = {k: row[k] for k in ("verdict", "quote", "note", "design", "version")}
    return {
        "at": now,
        "actor_id": row["reviewer_id"],
        "actor_name": names[row["reviewer_id"]],
        "action": "assessment_recorded",
        "entity": "assessment",
        "entity_id": str(row["id"]),
        "claim_id": row["claim_id"],
        "pmid": row["pmid"],
        "after": {"reviewer": names[row["reviewer_id"]], **after},
        "source": "bench/scale.py",
    }


def _chunks(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _copy(engine: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY: several times faster than multi-row INSERTs for a bulk load."""
    import orjson

    columns = list(rows[0])
    json_columns = {c.name for c in table.columns if c.type.__class__.__name__ == "JSON"}
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            names = ", ".join(columns)
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(
                        [orjson.dumps(row[c]).decode() if c in json_columns else row[c] for c in columns]
                    )
        raw.commit()
    finally:
        raw.close()


def _reset_sequences(engine: Any) -> None:
    from sqlmodel import SQLModel

    from db.ops.backup import _reset_sequences as reset

    with engine.begin() as connection:
        reset(connection, SQLModel.metadata.sorted_tables)


def _extras(url: str, editor_id: int, claims: list[int], pmids: list[int], designs: dict[int, str]) -> None:
    """Design corrections and conflict resolutions, as months of editing leave them."""
    from sqlalchemy import insert, select

    from db.clock import utcnow
    from db.engine import open_session
    from db.models import Assessment, ConflictResolution, DesignCorrection

    rng = random.Random(7)
    now = utcnow()
    with open_session(url) as session:
        corrected = rng.sample(pmids, 2_000)
        session.execute(
            insert(DesignCorrection.__table__),
            [
                {
                    "pmid": pmid,
                    "design": "observational",
                    "previous": designs[pmid],
                    "corrected_by_id": editor_id,
                    "corrected_at": now,
                    "reason": "benchmark",
                }
                for pmid in corrected
            ],
        )
        resolutions = []
        for claim in claims[:3]:
            votes: dict[int, list[tuple[int, str]]] = {}
            for pmid, assessment_id, verdict in session.execute(
                select(Assessment.pmid, Assessment.id, Assessment.verdict)
                .where(Assessment.claim_id == claim)
                .limit(200_000)
            ):
                votes.setdefault(pmid, []).append((assessment_id, str(verdict)))
            split = [(pmid, v) for pmid, v in votes.items() if len({verdict for _, verdict in v}) > 1][:100]
            for pmid, v in split:
                resolutions.append(
                    {
                        "claim_id": claim,
                        "pmid": pmid,
                        "verdict": "mixed",
                        "reason": "benchmark",
                        "votes_signature": ",".join(f"{i}:1" for i, _ in sorted(v)),
                        "resolved_by_id": editor_id,
                        "resolved_at": now,
                    }
                )
        session.execute(insert(ConflictResolution.__table__), resolutions)
        session.commit()


def database_size(url: str) -> int:
    from db.engine import engine_for

    engine = engine_for(url)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            return int(connection.exec_driver_sql("SELECT pg_database_size(current_database())").scalar())
    path = Path(engine.url.database or "")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if not p.name.endswith(".lock"))


# --- the reads -----------------------------------------------------------------------------------------


READ_KEYS = (
    "summary",
    "verdict",
    "queue",
    "search",
    "study",
    "claim-studies",
    "summary-after-write",
    "queue-after-write",
)


def measure(
    url: str, repeats: int, wanted: tuple[str, ...] = READ_KEYS
) -> tuple[dict[str, dict[str, float | str]], float]:
    """Time the reads; returns them and the seconds prepare_queues took first."""
    from sqlalchemy import select

    from db.engine import open_session
    from db.models import Article, Assessment
    from db.ranking.queue import prepare_queues
    from db.review.claims import list_claims
    from db.review.roles import get_user, list_users

    with open_session(url) as session:
        editor = get_user(session, "eve")
        claims = [claim.key for claim in list_claims(session)]
        team = [u.name for u in list_users(session) if u.name.startswith("reviewer")]
        reviewers = team[::7][:4]
        judged = list(session.scalars(select(Assessment.pmid).distinct().limit(5_000)))
        every_pmid = list(session.scalars(select(Article.pmid)))
    rng = random.Random(9)
    study_pmids = [rng.choice(judged) for _ in range(repeats + 1)]
    results: dict[str, dict[str, float | str]] = {}

    # As the dashboard does at start (pages/_ui.py): fill the caches every claim's queue reads.
    started = time.perf_counter()
    with open_session(url) as session:
        prepare_queues(session)
    prepared_s = time.perf_counter() - started
    print(f"  prepare_queues: {prepared_s:.1f} s", file=sys.stderr, flush=True)

    def verdict_summary(i: int) -> Any:
        from db.read.cards import claim_cards

        with open_session(url) as session:
            return claim_cards(session, editor)

    def verdict_issue3(i: int) -> Any:
        from db.review.claims import get_claim
        from db.review.signoff import claim_verdict

        with open_session(url) as session:
            return claim_verdict(session, get_claim(session, claims[i % len(claims)]))

    def review_queue_page(i: int) -> Any:
        from db.ranking.queue import review_queue

        with open_session(url) as session:
            return review_queue(session, claims[i % len(claims)], reviewers[i % len(reviewers)], limit=20)

    def fulltext_search(i: int) -> Any:
        from db.corpus.fulltext import search_articles_fulltext

        with open_session(url) as session:
            return search_articles_fulltext(session, SEARCHES[i % len(SEARCHES)], limit=50)

    def study_page(i: int) -> Any:
        from db.read.studies import study_detail

        with open_session(url) as session:
            return study_detail(session, editor, study_pmids[i])

    def claim_study_list(i: int) -> Any:
        from db.read.drilldown import claim_studies
        from db.review.claims import get_claim

        with open_session(url) as session:
            claim = get_claim(session, claims[i % len(claims)])
            assert claim.id is not None
            return claim_studies(session, editor, claim.id, limit=25)

    # Seeded by the instance's size, so a kept instance measured again gets other decisions.
    writes = random.Random(instance_counts(url)["assessments"])

    def decide(claim_key: str, reviewer_name: str, pmid: int) -> None:
        """One reviewer's decision on a pair, committed: a new assessment, or a change of theirs."""
        from db.review.assessments import find_assessment, record_assessment, update_assessment
        from db.review.claims import get_claim

        verdicts, weights = list(VERDICT_WEIGHTS), list(VERDICT_WEIGHTS.values())
        with open_session(url) as session:
            reviewer, claim = get_user(session, reviewer_name), get_claim(session, claim_key)
            article = session.get(Article, pmid)
            assert article is not None
            existing = find_assessment(session, claim.id, pmid, reviewer.id)
            verdict = writes.choices(verdicts, weights)[0]
            if existing is not None:  # a change of mind: another verdict, or the update would be a no-op
                verdict = writes.choice([v for v in verdicts if v != str(existing.verdict)])
            quote = "" if verdict == "not_relevant" else (article.abstract or article.title)[:60]
            if existing is None:
                record_assessment(session, reviewer, claim, pmid, verdict, quote=quote)
            else:
                assert existing.id is not None
                update_assessment(
                    session, reviewer, existing.id, existing.version, verdict=verdict, quote=quote
                )
            session.commit()

    def anyone_decides(i: int) -> None:
        # Any of the team, on any claim and study: what the summary sees between two looks.
        decide(writes.choice(claims), writes.choice(team), writes.choice(every_pmid))

    def reviewer_decides(i: int) -> None:
        # The reviewer tags the study at the top of their queue, then opens the next page.
        from db.ranking.queue import review_queue

        claim_key, reviewer = claims[i % len(claims)], reviewers[i % len(reviewers)]
        with open_session(url) as session:
            top = review_queue(session, claim_key, reviewer, limit=1)
        decide(claim_key, reviewer, top[0].pmid if top else writes.choice(every_pmid))

    # name -> (an untimed step before each call, the timed read)
    reads: dict[str, tuple[Callable[[int], None] | None, Callable[[int], Any]]] = {
        "verdict summary, all claims (db.read.cards.claim_cards)": (None, verdict_summary),
        "verdict of one claim, as sign-off computes it (db.review.signoff.claim_verdict)": (
            None,
            verdict_issue3,
        ),
        "Review queue page, 20 studies (db.ranking.queue.review_queue)": (None, review_queue_page),
        "full-text search, 50 hits (db.corpus.fulltext)": (None, fulltext_search),
        "study page (db.read.studies.study_detail)": (None, study_page),
        "Claims page: one claim's studies, first 25 (db.read.drilldown.claim_studies)": (
            None,
            claim_study_list,
        ),
        "verdict summary after a write (each call follows one reviewer's committed decision)": (
            anyone_decides,
            verdict_summary,
        ),
        "Review queue page after the reviewer's decision on its top study": (
            reviewer_decides,
            review_queue_page,
        ),
    }
    reads = {name: read for (name, read), key in zip(reads.items(), READ_KEYS, strict=True) if key in wanted}
    for name, (before, read) in reads.items():
        try:
            times = []
            for i in range(repeats + 1):
                if before is not None:
                    before(i)
                started = time.perf_counter()
                read(i)
                times.append((time.perf_counter() - started) * 1000)
        except Exception as exc:  # noqa: BLE001  (another module's API may have moved: report, go on)
            results[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:150]}"}
            print(f"  {name}: failed ({results[name]['error']})", file=sys.stderr, flush=True)
            continue
        first, times = times[0], sorted(times[1:])
        p95 = times[max(0, math.ceil(0.95 * len(times)) - 1)]
        results[name] = {"first_ms": first, "median_ms": statistics.median(times), "p95_ms": p95}
        print(
            f"  {name}: first {first:.0f} ms, median {statistics.median(times):.0f} ms, p95 {p95:.0f} ms",
            flush=True,
        )
    return results, prepared_s


def instance_counts(url: str) -> dict[str, int]:
    """How many studies and assessments the instance holds (a kept one may differ from the options)."""
    from sqlalchemy import func, select

    from db.engine import open_session
    from db.models import Article, Assessment

    with open_session(url) as session:
        return {
            "studies": int(session.scalar(select(func.count()).select_from(Article)) or 0),
            "assessments": int(session.scalar(select(func.count()).select_from(Assessment)) or 0),
        }


# --- orchestration -------------------------------------------------------------------------------------


def run_one(engine: str, url: str, corpus: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Build and measure in a child interpreter, so each engine starts with cold process caches."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        url,
        "--corpus",
        str(corpus),
        "--assessments",
        str(args.assessments),
        "--reviewers",
        str(args.reviewers),
        "--repeats",
        str(args.repeats),
        "--reads",
        args.reads,
    ]
    if args.reused:
        command.append("--reused")
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["engine"] = engine
    return result


def child(url: str, corpus: Path, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    if args.reused:
        from db.engine import init_db

        init_db(url)  # a kept instance from an older release: its pending migrations, as the app's start
        steps: dict[str, Any] = {"reused": True, "migrate_s": time.perf_counter() - started}
        print(f"  reused {url}; migrated in {steps['migrate_s']:.0f} s", file=sys.stderr, flush=True)
    else:
        steps = build(url, corpus, args.assessments, args.reviewers)
        steps["build_s"] = time.perf_counter() - started
    size = database_size(url)
    counts = instance_counts(url)
    reads, steps["prepare_queues_s"] = measure(url, args.repeats, tuple(args.reads.split(",")))
    sys.stdout.flush()
    print(
        json.dumps(
            {"steps": steps, "size_bytes": size, "counts": counts, "reads": reads, "versions": _versions(url)}
        )
    )


def _versions(url: str) -> str:
    from db.engine import engine_for

    engine = engine_for(url)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return "PostgreSQL " + str(connection.exec_driver_sql("SHOW server_version").scalar())
        return "SQLite " + str(connection.exec_driver_sql("SELECT sqlite_version()").scalar())


def throwaway_database(engine: str, folder: Path, admin_url: str) -> tuple[str, Callable[[], None]]:
    if engine == "sqlite":
        path = folder / f"scale-{uuid.uuid4().hex[:8]}.sqlite3"
        url = f"sqlite:///{path}"

        def drop_file() -> None:
            for p in folder.glob(path.name + "*"):
                p.unlink()

        return url, drop_file
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"ke_scale_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop_database() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop_database


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    # Rounded: a kept instance measured again holds the decisions earlier runs added.
    sizes = sorted(
        {
            (_rounded(r["counts"]["studies"]), _rounded(r["counts"]["assessments"]))
            for r in results
            if "counts" in r
        }
    )
    scale = " / ".join(f"{studies:,} studies, {assessments:,} assessments" for studies, assessments in sizes)
    command = (
        f"--reuse ... --repeats {args.repeats}"
        if args.reused
        else f"--studies {args.studies} --assessments {args.assessments} --reviewers {args.reviewers} "
        f"--repeats {args.repeats}"
    )
    lines = [
        f"## Scale: {scale or 'no instance measured'} (bench/scale.py)",
        "",
        f"Run on {date}, {describe_machine()}; `python bench/scale.py {command}`. The review queues are "
        "warmed first as the dashboard does at start (db.ranking.queue.prepare_queues). Each read is called "
        f"{args.repeats} times in a fresh session after one first call (shown apart: it may fill process "
        'caches). The rows "after a write" time only the read, each made right after one committed '
        "decision by a reviewer (db.review.assessments.record_assessment, or update_assessment of their own): what "
        "a team instance mostly sees, where reviewers write all day. Target: p95 under "
        f"{TARGET_MS:,.0f} ms and the first call under {FIRST_TARGET_MS:,.0f} ms.",
        "",
        "| read | engine | first | median | p95 | target |",
        "|---|---|---:|---:|---:|---|",
    ]
    names = list(results[0]["reads"]) if results else []
    for name in names:
        for result in results:
            read = result["reads"].get(name, {})
            if "error" in read:
                lines.append(f"| {name} | {result['engine']} | – | – | – | failed: {read['error']} |")
                continue
            missed = [
                what
                for what, late in (
                    ("p95", read["p95_ms"] >= TARGET_MS),
                    ("first call", read["first_ms"] >= FIRST_TARGET_MS),
                )
                if late
            ]
            ok = f"**missed: {', '.join(missed)}**" if missed else "met"
            lines.append(
                f"| {name} | {result['engine']} | {read['first_ms']:,.0f} ms | {read['median_ms']:,.0f} ms | "
                f"{read['p95_ms']:,.0f} ms | {ok} |"
            )
    lines += [
        "",
        "| engine | version | studies, assessments | import | assessments + audit (bulk) | build total | size on disk "
        "| per 100,000 studies |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        steps = result["steps"]
        size = result["size_bytes"]
        counts = result.get("counts", {})
        studies = counts.get("studies") or steps.get("studies", 0)
        held = f"{studies:,}, {counts.get('assessments', steps.get('assessments', 0)):,}"
        per = size * 100_000 / max(1, studies)
        if steps.get("reused"):
            lines.append(
                f"| {result['engine']} | {result['versions']} | {held} | (kept instance, reused) | | | "
                f"{size / 2**20:,.0f} MiB | {per / 2**20:,.0f} MiB |"
            )
            continue
        lines.append(
            f"| {result['engine']} | {result['versions']} | {held} | {steps['studies']:,} studies in {steps['import_s']:.0f} s | "
            f"{steps['assessments']:,} in {steps['assessments_s']:.0f} s | {steps['build_s'] / 60:.1f} min | "
            f"{size / 2**20:,.0f} MiB | {per / 2**20:,.0f} MiB |"
        )
    return "\n".join(lines) + "\n"


def _rounded(n: int) -> int:
    """n to three significant digits: 1,000,045 -> 1,000,000."""
    return round(n, 3 - len(str(abs(n)))) if n else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--assessments", type=int, default=1_000_000)
    parser.add_argument("--reviewers", type=int, default=50)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/ketamine-evidence-scale"))
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases (printed) for a look")
    parser.add_argument("--write", type=Path, help="put the results into this Markdown file's marked section")
    parser.add_argument(
        "--reuse",
        help="measure kept databases instead of building: ENGINE=URL[,ENGINE=URL] (URLs as --keep printed them)",
    )
    parser.add_argument(
        "--reads",
        default=",".join(READ_KEYS),
        help=f"which reads to time, comma-separated, of {','.join(READ_KEYS)} (default: all)",
    )
    parser.add_argument("--reused", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.corpus, args)
        return

    args.folder.mkdir(parents=True, exist_ok=True)
    corpus = args.folder / f"corpus-{args.studies}.xml"
    if not corpus.exists():
        print(f"building a {args.studies:,}-record corpus ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(MAKE_CORPUS), str(args.studies), str(corpus)], check=True)
    results = []
    if args.reuse:
        args.reused = True
        for pair in args.reuse.split(","):
            engine, url = pair.split("=", 1)
            print(f"{engine}: measuring the kept {url}", file=sys.stderr, flush=True)
            results.append(run_one(engine, url, corpus, args))
        body = report(results, args)
        print(body)
        if args.write:
            write_section(args.write, f"{MARK_START}\n{body}{MARK_END}", MARK_START, MARK_END)
            print(f"wrote the results into {args.write}")
        return
    for engine in args.engines.split(","):
        url, drop = throwaway_database(engine, args.folder, args.postgres_admin_url)
        print(f"{engine}: building in {url}", file=sys.stderr, flush=True)
        try:
            results.append(run_one(engine, url, corpus, args))
        finally:
            if args.keep:
                print(f"kept {url}")
            else:
                drop()
    body = report(results, args)
    print(body)
    if args.write:
        write_section(args.write, f"{MARK_START}\n{body}{MARK_END}", MARK_START, MARK_END)
        print(f"wrote the results into {args.write}")


if __name__ == "__main__":
    main()
