#!/usr/bin/env python3
"""Dashboard benchmark: every page's render time and the tag-a-study latency on a large database.

usage: python bench/dashboard.py [--studies 20000] [--assessments 200000] [--database-url URL]
                                 [--folder DIR] [--write docs/performance.md]

Builds (or reuses, in --folder) a database of N real citations from ../shared/bench/make_corpus.py,
imported with ingest.importer.import_file, plus the seed article and claims, 13 users and M
assessments inserted in bulk (with their audit events): every study judged for every claim by one
of ten reviewers, the rest second votes (a tenth of them disagreeing, so there are conflicts),
a few conflicts resolved and two claims signed off. Then it times, with Streamlit's AppTest (which
runs app.py and the page as the server does, minus the browser):
- each page, cold (Streamlit caches cleared) and warm (cached reads), as an editor;
- the Review page's first render, and saving a decision plus showing the next study, as a reviewer.
Targets (issue 4): every page within 2 s; a decision saved and the next study shown within 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from machine import describe_machine  # bench/machine.py: scripts run from bench/
from report import write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MAKE_CORPUS = ROOT.parent / "shared" / "bench" / "make_corpus.py"
MARK_START = "<!-- bench/dashboard.py:start -->"
MARK_END = "<!-- bench/dashboard.py:end -->"
PAGES = ("overview", "claims", "review", "studies", "editor", "harvest", "articles", "team")
REVIEWERS = [f"reviewer{i:02d}" for i in range(1, 11)]
DECISIONS = 30
CLAIM_EVIDENCE_NOTE = (
    "Sign-off, the claim report and ClaimReview read each claim's pairs from `pair_state`, which every write "
    "keeps (see the Scale section); the claim report also computes each claim's agreement (kappa) from all "
    "its votes, read as plain columns (as ORM objects the report took 8 s)."
)


def build(url: str, studies: int, assessments: int, folder: Path) -> dict[str, float]:
    """Fill an empty database; returns how long each step took."""
    import random

    from sqlalchemy import func, insert, select

    from db.clock import utcnow
    from db.corpus.study_facts import study_facts
    from db.engine import init_db, open_session
    from db.models import Article, Assessment, AuditEvent
    from db.review.claims import list_claims
    from db.review.pair_index import rebuild_pair_state
    from db.review.pairs import resolve_conflict
    from db.review.roles import add_user
    from db.review.signoff import sign_off
    from db.review.sources import ensure_seed_content
    from db.vocab import AuditAction, Rating, Role, SignOffDecision, StudyVerdict
    from ingest.importer import import_file

    timings: dict[str, float] = {}
    corpus = folder / f"corpus-{studies}.xml"
    if not corpus.exists():
        subprocess.run([sys.executable, str(MAKE_CORPUS), str(studies), str(corpus)], check=True)
    init_db(url)
    started = time.perf_counter()
    import_file(url, corpus)
    timings["import"] = time.perf_counter() - started

    started = time.perf_counter()
    with open_session(url) as session:
        ensure_seed_content(session)
        admin = add_user(session, None, "ada", Role.ADMIN)
        editor = add_user(session, admin, "eve", Role.EDITOR)
        add_user(session, admin, "vic", Role.VIEWER)
        reviewers = [add_user(session, admin, name, Role.REVIEWER) for name in REVIEWERS]
        session.commit()
        claims = list_claims(session)
        facts = study_facts(session)
        abstracts = dict(session.execute(select(Article.pmid, func.substr(Article.abstract, 1, 40))).all())
        pmids = sorted(facts)
        rng = random.Random(4)
        weights = {
            StudyVerdict.NOT_RELEVANT: 80,
            StudyVerdict.SUPPORTED: 12,
            StudyVerdict.MIXED: 5,
            StudyVerdict.UNSUPPORTED: 3,
        }
        population, cum = list(weights), list(weights.values())
        pairs = [(claim, pmid) for claim in claims for pmid in pmids]
        second = max(0, assessments - len(pairs))
        firsts = pairs[: min(len(pairs), assessments)]
        now = utcnow()
        rows, events, taken = [], [], set()

        def add(claim_id: int, pmid: int, reviewer_id: int, verdict: StudyVerdict) -> None:
            design = facts[pmid].design
            quote = "" if verdict is StudyVerdict.NOT_RELEVANT else (abstracts.get(pmid) or "")
            rows.append(
                {
                    "claim_id": claim_id,
                    "pmid": pmid,
                    "reviewer_id": reviewer_id,
                    "verdict": verdict,
                    "quote": quote,
                    "note": "",
                    "design": design,
                    "suggested_design": design,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            events.append(
                {
                    "at": now,
                    "actor_id": reviewer_id,
                    "actor_name": REVIEWERS[reviewer_id - reviewers[0].id],
                    "action": AuditAction.ASSESSMENT_RECORDED,
                    "entity": "assessment",
                    "entity_id": "bulk",
                    "claim_id": claim_id,
                    "pmid": pmid,
                    "after": {"verdict": verdict.value},
                    "source": "bench/dashboard.py",
                }
            )

        first_reviewer = {}
        for claim, pmid in firsts:
            reviewer = reviewers[rng.randrange(len(reviewers))]
            verdict = rng.choices(population, cum)[0]
            first_reviewer[(claim.id, pmid)] = (reviewer.id, verdict)
            add(claim.id, pmid, reviewer.id, verdict)
        for claim, pmid in rng.sample(firsts, min(second, len(firsts))):
            reviewer_id, verdict = first_reviewer[(claim.id, pmid)]
            other = reviewers[
                (reviewer_id - reviewers[0].id + 1 + rng.randrange(len(reviewers) - 1)) % len(reviewers)
            ]
            if rng.random() < 0.1:  # a disagreement: a conflict for an editor
                verdict = rng.choice([v for v in population if v is not verdict])
            add(claim.id, pmid, other.id, verdict)
            taken.add((claim.id, pmid))
        for start in range(0, len(rows), 20_000):
            session.execute(insert(Assessment.__table__), rows[start : start + 20_000])
            session.execute(insert(AuditEvent.__table__), events[start : start + 20_000])
        # Written without the data layer, so the pairs' kept state is rebuilt as a restore does.
        rebuild_pair_state(session.connection())
        session.commit()
        timings["assessments"] = time.perf_counter() - started

        # A few resolutions and two sign-offs, through the data layer as an editor would.
        started = time.perf_counter()
        from db.review.pairs import pair_statuses

        resolved = 0
        for claim in claims[:3]:
            for status in pair_statuses(session, claim.id):
                if status.verdict is None and resolved < 30:
                    resolve_conflict(session, editor, claim, status.pmid, StudyVerdict.MIXED, "benchmark")
                    resolved += 1
        session.commit()
        timings["resolutions"] = time.perf_counter() - started
        started = time.perf_counter()
        for claim in claims[:2]:
            sign_off(
                session,
                editor,
                claim,
                SignOffDecision.REVISE_WORDING,
                "benchmark sign-off, rated misleading",
                Rating.MISLEADING,
            )
        session.commit()
        timings["sign_off_2_claims"] = time.perf_counter() - started
    return timings


def time_pages(url: str) -> dict[str, dict[str, float]]:
    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    # As in the tests (tests/dashboard_builders.py): AppTest would otherwise run pages without app.py.
    original = PagesManager.__init__

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init  # type: ignore[method-assign]
    os.environ["DATABASE_URL"] = url
    results: dict[str, dict[str, float]] = {}
    results["warm-up"] = {"cold": warm_up(url), "warm": 0.0}
    for page in PAGES:
        user = "ada"
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.session_state["signed_in_user"] = user
        at.run()
        at.switch_page(f"pages/{page}.py")
        st.cache_data.clear()
        started = time.perf_counter()
        at.run()
        cold = time.perf_counter() - started
        assert not at.exception, [e.value for e in at.exception]
        warm = []
        for _ in range(3):
            started = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - started)
        results[page] = {"cold": cold, "warm": statistics.median(warm)}
        print(f"{page:9s} cold {cold:6.2f} s   warm {statistics.median(warm):6.2f} s", flush=True)
    return results


def warm_up(url: str) -> float:
    """What a server start does in background threads (pages/_ui.warm_caches): every study's
    design and every claim's evidence, and the ranking's corpus, features and each claim's queue
    state, kept per process until the data changes."""
    from db.corpus.study_facts import study_facts
    from db.engine import open_session
    from db.ranking.queue import prepare_queues
    from db.read.summary import warm_summary

    started = time.perf_counter()
    with open_session(url) as session:
        study_facts(session)
        warm_summary(session)
        prepare_queues(session)
    seconds = time.perf_counter() - started
    print(f"warm-up (at server start, in the background) {seconds:.2f} s", flush=True)
    return seconds


def time_editor_actions(url: str) -> dict[str, float]:
    """Resolving a conflict and signing a claim off on the Editor page, and building the exports."""
    import io

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from db.engine import open_session
    from db.exports.citations import bibtex, evidence_citations, ris
    from db.exports.claimreview import claimreview_jsonld
    from db.exports.claims import claim_reports, write_claims
    from db.exports.formats import ExportFormat

    timings: dict[str, float] = {}
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=900)
    at.session_state["signed_in_user"] = "eve"
    at.run()
    at.switch_page("pages/editor.py").run()
    next(w for w in at.selectbox if w.label == "Final verdict").set_value("mixed")  # none is preselected
    next(w for w in at.text_input if w.label == "Reason").input("benchmark")
    started = time.perf_counter()
    next(b for b in at.button if b.label == "Resolve").click().run()
    timings["resolve a conflict (save and show the page again)"] = time.perf_counter() - started
    assert at.success, [e.value for e in at.error]
    next(w for w in at.text_area if w.label == "Rationale").input("benchmark")
    next(r for r in at.radio if r.label == "Decision").set_value("revise_wording")
    started = time.perf_counter()
    next(b for b in at.button if b.label == "Sign off").click().run()
    timings["sign off a claim (save and show the page again)"] = time.perf_counter() - started
    assert at.success, [e.value for e in at.error]
    with open_session(url) as session:
        started = time.perf_counter()
        write_claims(claim_reports(session), ExportFormat.MARKDOWN, io.StringIO())
        timings["export: claim report (Markdown)"] = time.perf_counter() - started
        started = time.perf_counter()
        citations = evidence_citations(session)
        ris(citations), bibtex(citations)
        timings[f"export: RIS and BibTeX ({len(citations):,} studies)"] = time.perf_counter() - started
        started = time.perf_counter()
        claimreview_jsonld(session, "bench")
        timings["export: ClaimReview JSON-LD"] = time.perf_counter() - started
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.2f} s", flush=True)
    return timings


def time_decisions(url: str) -> dict[str, float]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.session_state["signed_in_user"] = REVIEWERS[0]
    at.run()
    at.switch_page("pages/review.py")
    started = time.perf_counter()
    at.run()
    first = time.perf_counter() - started
    latencies = []
    for i in range(DECISIONS):
        shown = at.session_state["review_shown"]
        verdict = "verdict-not_relevant" if i % 3 else "verdict-supported"
        started = time.perf_counter()
        at.button(key=verdict).click().run()
        latencies.append(time.perf_counter() - started)
        assert not at.exception, [e.value for e in at.exception]
        assert at.session_state["review_shown"] != shown, "the next study is shown"
        assert at.success, [e.value for e in at.error]
    latencies.sort()
    print(
        f"review first render {first:.2f} s; decision median {statistics.median(latencies) * 1000:.0f} ms",
        flush=True,
    )
    return {
        "first": first,
        "median": statistics.median(latencies),
        "p90": latencies[int(0.9 * (len(latencies) - 1))],
        "max": latencies[-1],
    }


def report(
    args: argparse.Namespace,
    backend: str,
    build_times: dict[str, float],
    pages: dict[str, dict[str, float]],
    decision: dict[str, float],
    actions: dict[str, float],
) -> str:
    ok = lambda seconds, target: "yes" if seconds <= target else "**no**"  # noqa: E731
    lines = [
        MARK_START,
        f"### Dashboard ({datetime.now(UTC):%Y-%m-%d}, `python bench/dashboard.py --studies {args.studies} "
        f"--assessments {args.assessments}`)",
        "",
        f"Machine: {describe_machine()}. Database: {backend}, {args.studies:,} studies (real citations from `make_corpus.py`) "
        f"and {args.assessments:,} assessments by 10 reviewers over the 9 seed claims (every study judged for every "
        "claim, the rest second votes, 10% of them disagreeing), 30 conflicts resolved, 2 claims signed off. "
        "Times are AppTest runs of `app.py` and the page (no browser), signed in as an admin; cold = Streamlit "
        "caches cleared first, warm = median of 3 reruns with cached reads. "
        f"Load average over the minute before the timings: {args.load:.1f} (on a shared machine, other "
        "sessions' work slows every figure here alike).",
        "",
        "| page | cold (s) | warm (s) | within 2 s |",
        "|---|---:|---:|---|",
    ]
    warm_up_seconds = pages.pop("warm-up")["cold"]
    for page, t in pages.items():
        lines.append(f"| {page} | {t['cold']:.2f} | {t['warm']:.2f} | {ok(max(t['cold'], t['warm']), 2.0)} |")
    lines += [
        "",
        f"Before the pages: the per-process caches a server start fills in background threads "
        f"(`pages/_ui.warm_caches`: every study's design and every claim's evidence; the review queues' corpus, "
        f"lexical scores and models) took "
        f"{warm_up_seconds:.2f} s; a page opened before they are ready waits for them once.",
    ]
    lines += [
        "",
        f"Review page as a reviewer: first render (ranks the queue) {decision['first']:.2f} s. "
        f"Saving a decision and showing the next study, over {DECISIONS} decisions: median "
        f"{decision['median'] * 1000:.0f} ms, 90th percentile {decision['p90'] * 1000:.0f} ms, slowest "
        f"{decision['max'] * 1000:.0f} ms (target 300 ms: {ok(decision['median'], 0.3)} for the median, "
        f"{ok(decision['p90'], 0.3)} for the 90th percentile).",
        "",
        "Editor actions and exports (exports are built when their download button is clicked, not with the page):",
        "",
        "| action | seconds |",
        "|---|---:|",
        *[f"| {name} | {seconds:.2f} |" for name, seconds in actions.items()],
        "",
        CLAIM_EVIDENCE_NOTE,
        "",
        "Building the database: "
        + ", ".join(f"{name.replace('_', ' ')} {seconds:.1f} s" for name, seconds in build_times.items())
        + ".",
        MARK_END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--studies", type=int, default=20_000, help="studies to import (default 20,000)")
    parser.add_argument(
        "--assessments", type=int, default=200_000, help="assessments to insert (default 200,000)"
    )
    parser.add_argument(
        "--database-url", help="an empty database to fill (default: a new SQLite file in --folder)"
    )
    parser.add_argument(
        "--folder", type=Path, help="keep the corpus and the SQLite database here and reuse them"
    )
    parser.add_argument("--write", type=Path, help="update this Markdown file (docs/performance.md)")
    args = parser.parse_args()
    if not MAKE_CORPUS.exists():
        sys.exit(f"error: {MAKE_CORPUS} is missing; the benchmark builds its corpus with it.")
    folder = args.folder or Path(tempfile.mkdtemp(prefix="ke-dashboard-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / f"dashboard-{args.studies}-{args.assessments}.sqlite3"
    url = args.database_url or f"sqlite:///{database}"
    build_times: dict[str, float] = {}
    times_file = database.with_suffix(".build.json")
    if args.database_url or not database.exists():
        build_times = build(url, args.studies, args.assessments, folder)
        print("built:", ", ".join(f"{k} {v:.1f} s" for k, v in build_times.items()), flush=True)
        if not args.database_url:
            times_file.write_text(json.dumps(build_times))
    elif times_file.exists():
        build_times = json.loads(times_file.read_text())
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    args.load = os.getloadavg()[0]
    pages = time_pages(url)
    decision = time_decisions(url)
    actions = time_editor_actions(url)
    text = report(args, backend, build_times, pages, decision, actions)
    print(text)
    if args.write:
        write_section(args.write, text, MARK_START, MARK_END)


if __name__ == "__main__":
    main()
