"""16 reviewer processes at once on overlapping pairs: no lost or doubled write, conflicts said in words."""

from __future__ import annotations

import json
import multiprocessing
import random
import sys
import time
import types
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.engine import engine_for, open_session
from db.errors import ConflictError
from db.models import Article, Assessment, AuditEvent
from db.review.assessments import find_assessment, record_assessment, update_assessment
from db.review.audit_chain import verify_audit_chain
from db.review.claims import get_claim
from db.review.roles import get_user
from db.vocab import Role, StudyVerdict
from tests.review_builders import add_article, add_claim, add_document, add_user
from tests.test_pair_state import expected_pairs, stored_pairs

PROCESSES = 16
OPERATIONS = 25  # per process
REVIEWERS = 8  # two processes per reviewer: the same person in two browser tabs
PMIDS = (7001, 7002)
CLAIM_KEYS = ("fast-relief", "lasting")
VERDICTS = (StudyVerdict.SUPPORTED, StudyVerdict.MIXED, StudyVerdict.UNSUPPORTED)
CONFLICT_MESSAGES = (
    "since you read it",  # update_assessment on a stale version
    "has already judged",  # record_assessment when the other tab recorded first
    "has just recorded",  # ... and lost the race on the unique constraint
)


def _reviewer_process(url: str, index: int, ready: Any, go: Any, out: str) -> None:
    """One reviewer tab: read an assessment, think briefly, then record or change it."""
    rng = random.Random(index)
    name = f"reviewer{index % REVIEWERS}"
    outcomes = []
    ready.release()
    go.wait(timeout=600)  # start together, so the operations really overlap
    for op in range(OPERATIONS):
        key, pmid, verdict = rng.choice(CLAIM_KEYS), rng.choice(PMIDS), rng.choice(VERDICTS)
        token = f"p{index}-op{op}"
        try:
            outcomes.append(_operation(url, name, key, pmid, verdict, token, rng))
        except ConflictError as exc:
            outcomes.append({"outcome": "conflict", "token": token, "message": str(exc)})
        except Exception as exc:  # noqa: BLE001  (anything else is what the test looks for)
            outcomes.append({"outcome": "error", "token": token, "message": f"{type(exc).__name__}: {exc}"})
    engine_for(url).dispose()
    Path(out).write_text(json.dumps(outcomes))


def _operation(
    url: str, name: str, key: str, pmid: int, verdict: StudyVerdict, token: str, rng: random.Random
) -> dict[str, Any]:
    with open_session(url) as session:  # what the page showed: the assessment as it was read
        me, claim = get_user(session, name), get_claim(session, key)
        seen = find_assessment(session, claim.id, pmid, me.id)
        read = (seen.id, seen.version) if seen is not None else None
    time.sleep(rng.uniform(0, 0.004))  # the reviewer clicks: someone else may save first
    with open_session(url) as session:
        me, claim = get_user(session, name), get_claim(session, key)
        if read is None:
            article = session.get(Article, pmid)
            assert article is not None
            assessment = record_assessment(
                session, me, claim, pmid, verdict, quote=article.title[:20], note=token
            )
            kind = "record"
        else:
            assessment = update_assessment(session, me, read[0], read[1], verdict=verdict, note=token)
            kind = "update"
        session.commit()
        return {
            "outcome": "ack",
            "kind": kind,
            "token": token,
            "id": assessment.id,
            "version": assessment.version,
        }


def _prepare(url: str) -> None:
    with open_session(url) as session:
        document = add_document(session)
        add_claim(session, document)
        add_claim(
            session,
            document,
            key="lasting",
            sentence="Some patients stay well for months.",
            statement="Benefits last months.",
        )
        for pmid in PMIDS:
            add_article(session, pmid, title=f"Ketamine trial {pmid}: rapid and lasting relief")
        for number in range(REVIEWERS):
            add_user(session, f"reviewer{number}", Role.REVIEWER)
        session.commit()


@pytest.mark.slow
def test_sixteen_reviewer_processes_lose_nothing_and_double_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new process may re-import the parent's __main__; after an AppTest in this process that is
    # app.py itself, which would run the dashboard in every reviewer process.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    _prepare(db_url)
    engine_for(db_url).dispose()  # the children open their own connections
    # A fork server that has imported this module once: each reviewer process is forked from it, with
    # none of the test process's threads or connections, and without importing the package again
    # (16 imports took about 8 s of CPU a database).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    ready, go = context.Semaphore(0), context.Event()
    files = [tmp_path / f"outcomes-{index}.json" for index in range(PROCESSES)]
    workers = [
        context.Process(target=_reviewer_process, args=(db_url, index, ready, go, str(files[index])))
        for index in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    try:
        # Start them together once all are up (imports take a while on a busy machine); a worker that
        # dies while starting fails the test instead of leaving the others waiting for it.
        for _ in range(PROCESSES):
            while not ready.acquire(timeout=1):
                assert all(worker.exitcode is None for worker in workers), "a reviewer process died starting"
        go.set()
        for worker in workers:
            worker.join(timeout=600)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
    assert all(worker.exitcode == 0 for worker in workers), [worker.exitcode for worker in workers]
    outcomes = [item for path in files for item in json.loads(path.read_text())]

    errors = [item["message"] for item in outcomes if item["outcome"] == "error"]
    assert errors == []  # in particular no "database is locked"
    assert len(outcomes) == PROCESSES * OPERATIONS
    acks = [item for item in outcomes if item["outcome"] == "ack"]
    conflicts = [item for item in outcomes if item["outcome"] == "conflict"]
    assert acks and conflicts, "the run should have produced both saves and conflicts"
    for conflict in conflicts:
        assert any(phrase in conflict["message"] for phrase in CONFLICT_MESSAGES), conflict["message"]
        assert "reload" in conflict["message"] or "change that" in conflict["message"]

    with open_session(db_url) as session:
        assessments = {a.id: a for a in session.scalars(select(Assessment))}
        events = [e for e in session.scalars(select(AuditEvent)) if e.entity == "assessment"]

    # Every acknowledged write is there exactly once: one assessment per recorded pair, versions
    # 1..n with no gap or repeat, the last acknowledged note in place, one audit event per write.
    assert sorted(a["id"] for a in acks if a["kind"] == "record") == sorted(assessments)
    versions: dict[int, list[int]] = defaultdict(list)
    for ack in acks:
        versions[ack["id"]].append(ack["version"])
    for assessment_id, seen in versions.items():
        assessment = assessments[assessment_id]
        assert sorted(seen) == list(range(1, assessment.version + 1))
        last = max((a for a in acks if a["id"] == assessment_id), key=lambda a: a["version"])
        assert assessment.note == last["token"]
    assert len(events) == len(acks)
    by_token = defaultdict(list)
    for event in events:
        by_token[(event.after or {}).get("note")].append(event)
    assert all(len(by_token[ack["token"]]) == 1 for ack in acks)
    assert not set(by_token) - {ack["token"] for ack in acks}  # nothing rejected left a trace
    with open_session(db_url) as session:  # sixteen writers sealing at once never forked the audit chain
        chain = verify_audit_chain(session)
    assert chain.intact and chain.links == chain.events, chain.problems

    # Where each pair stands, kept by every write in its own transaction, equals a recomputation
    # from the votes: concurrent votes on one pair never overwrote each other's pair state.
    with open_session(db_url) as session:
        assert stored_pairs(session) == expected_pairs(session)
