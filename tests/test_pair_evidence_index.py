"""The verdict summary's read of stated evidence fields (db.review.pair_evidence) is served from the
partial index on the assessments that state any (migration 0008), on both engines."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlmodel import Session

from db.engine import engine_for, init_db, open_session
from db.models.review import STATED_FINDINGS
from db.review.pair_evidence import pair_findings
from db.review.verdicts import FINDING_FIELDS


def _statement_of_pair_findings(session: Session) -> tuple[str, Any]:
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        seen.append((statement, parameters))

    engine = session.get_bind().engine
    event.listen(engine, "before_cursor_execute", keep)
    try:
        pair_findings(session, [1, 2, 3])
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    (found,) = [s for s in seen if "assessment" in s[0]]
    return found


def test_stated_findings_index_lists_every_finding_field(db_url: str) -> None:
    assert STATED_FINDINGS == FINDING_FIELDS
    init_db(db_url)
    indexes = {ix["name"]: ix for ix in inspect(engine_for(db_url)).get_indexes("assessment")}
    assert indexes["ix_assessment_stated_findings"]["column_names"] == ["claim_id", "pmid"]


def test_pair_findings_reads_the_partial_index(db_url: str) -> None:
    init_db(db_url)
    with open_session(db_url) as session:
        statement, parameters = _statement_of_pair_findings(session)
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            plan = " ".join(
                str(row) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
        else:
            # An empty table is scanned whatever the indexes: ask the planner as if scans cost more.
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = " ".join(
                str(row) for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            )
        assert "ix_assessment_stated_findings" in plan, plan
