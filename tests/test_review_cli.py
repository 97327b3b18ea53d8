"""The review CLI end to end on real harvested records: import-assessments -> export claims, and errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlmodel import Session

from db.corpus.articles import upsert_articles
from db.engine import engine_for
from db.models import Article
from db.review.audit import claim_history
from db.review.claims import get_claim
from db.review.signoff import flag_changed_evidence
from db.vocab import AuditAction
from ingest.assessment_csv import read_assessment_csv
from ingest.cli import main
from tests.conftest import shared_file
from tests.review_builders import load_recorded_articles

HEADER = ["reviewer", "claim_key", "pmid", "verdict", "quote", "note", "design"]

# (reviewer, claim, PMID, verdict, quote from the record's title or abstract, note, design)
TEAM_SHEET = [
    # suicidal-ideation: an RCT both support, an RCT they disagree on, a systematic review, and an
    # expression of concern that must be excluded.
    (
        "ana",
        "suicidal-ideation",
        40015180,
        "supported",
        "MSSI scores were significantly lower in the ketamine group at all assessment points",
        "",
        "",
    ),
    (
        "ben",
        "suicidal-ideation",
        40015180,
        "supported",
        "Oral ketamine for rapid reduction of suicidal ideation",
        "title",
        "",
    ),
    (
        "ana",
        "suicidal-ideation",
        39940002,
        "unsupported",
        "no statistically significant differences were found between the groups",
        "",
        "",
    ),
    (
        "ben",
        "suicidal-ideation",
        39940002,
        "mixed",
        "Mean BSSI and S-VAS scores at 12 and 24 h after the treatment decreased significantly",
        "pilot",
        "",
    ),
    (
        "ana",
        "suicidal-ideation",
        39915491,
        "supported",
        "Multiple doses of IV ketamine/S-ketamine produced reductions in SI",
        "",
        "",
    ),
    (
        "ana",
        "suicidal-ideation",
        40044086,
        "supported",
        "Intravenous ketamine versus electroconvulsive therapy",
        "the concern notice itself",
        "",
    ),
    # treatment-resistant: MA and SR (a design correction) support, an RCT is mixed; weaker designs aside.
    (
        "ana",
        "treatment-resistant",
        39912430,
        "supported",
        "Patients receiving ECT experienced greater clinical remission",
        "",
        "",
    ),
    (
        "ana",
        "treatment-resistant",
        40237571,
        "supported",
        "ketamine significantly reduced depressive symptoms and suicidal ideation within hours, "
        "particularly in treatment-resistant cases",
        "searched RCTs and CCTs",
        "systematic review",
    ),
    (
        "ben",
        "treatment-resistant",
        40049091,
        "mixed",
        "Ketamine was preferred by more trial participants than ECT",
        "",
        "",
    ),
    (
        "ben",
        "treatment-resistant",
        40223914,
        "supported",
        "patients with TRD with complex representations may benefit from ketamine treatment",
        "",
        "",
    ),
    (
        "ana",
        "treatment-resistant",
        40305000,
        "mixed",
        "30 patients (75%) were classified as non-responders",
        "",
        "cohort",
    ),
    (
        "ana",
        "treatment-resistant",
        39955416,
        "supported",
        "TRD participants with higher baseline RD1 were more likely to respond to ketamine",
        "",
        "",
    ),
    # long-lasting: only a rat study and a case report.
    (
        "ana",
        "long-lasting",
        40081264,
        "unsupported",
        "We found no persistent changes due to ketamine treatments.",
        "",
        "",
    ),
    (
        "ana",
        "long-lasting",
        40223914,
        "supported",
        "She has been relatively stable without hospitalization or suicide attempt with ESK",
        "",
        "",
    ),
    # rapid-onset: two RCTs support; an observational study agrees.
    (
        "ana",
        "rapid-onset",
        40247293,
        "supported",
        "ketamine demonstrating rapid and substantial reduction in anxiety symptom severity within hours",
        "",
        "",
    ),
    ("ben", "rapid-onset", 40247293, "supported", "rapid and substantial reduction", "", ""),
    (
        "ana",
        "rapid-onset",
        40015180,
        "supported",
        "HAM-D scores were significantly lower in the ketamine group at 4 h and on Day 3",
        "",
        "",
    ),
    (
        "ben",
        "rapid-onset",
        40203964,
        "supported",
        "similar patterns of rapid initial decline followed by stabilization",
        "",
        "observational",
    ),
]


def _write_csv(path: Path, rows: list[tuple[object, ...]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def _claims(path: Path) -> dict[str, dict[str, object]]:
    return {r["key"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


@pytest.fixture
def records(db_url: str) -> dict[int, dict[str, object]]:
    """The 46 recorded ketamine-depression records, stored as harvested articles."""
    path = shared_file("pubmed", "ketamine", "records.jsonl")
    with Session(engine_for(db_url)) as session:
        loaded = load_recorded_articles(session, path)
        session.commit()
    return loaded


@pytest.fixture
def users() -> None:
    assert main(["users", "add", "ada", "--role", "admin"]) == 0
    for name, role in (("eve", "editor"), ("ana", "reviewer"), ("ben", "reviewer")):
        assert main(["users", "add", name, "--role", role, "--as", "ada"]) == 0


def test_round_trip_import_then_export_claims(
    records: dict[int, dict[str, object]], users: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert len(records) == 46
    sheet = _write_csv(tmp_path / "team.csv", TEAM_SHEET)

    assert main(["import-assessments", str(sheet), "--as", "eve"]) == 0
    assert "18 new, 0 changed, 0 unchanged" in capsys.readouterr().out
    assert (
        main(["export", "claims", "--format", "jsonl", "-o", str(tmp_path / "claims.jsonl"), "--as", "eve"])
        == 0
    )
    claims = _claims(tmp_path / "claims.jsonl")

    suicidal = claims["suicidal-ideation"]
    # No participants in the CSV: precision cannot be judged, high rated down once.
    assert (suicidal["verdict"], suicidal["strength"]) == ("supported", "moderate")
    assert suicidal["reasoning"].startswith(
        "1 systematic review and 1 RCT support; excluded: PMID 40044086 (a publication notice, not a study); "
        "1 study awaiting conflict resolution."
    )
    assert suicidal["unresolved"] == [39940002]
    # ana and ben both judged two studies: (S,S) and (U,M): po 1/2, pe 1/4, kappa = (1/2 - 1/4) / (3/4).
    assert suicidal["kappa"] == pytest.approx(1 / 3, abs=1e-3)

    resistant = claims["treatment-resistant"]
    # High, down for inconsistency (the mixed RCT carries a third of the weight) and for imprecision
    # (no participants stated): low.
    assert (resistant["verdict"], resistant["strength"]) == ("supported", "low")
    assert resistant["reasoning"].startswith(
        "1 meta-analysis, 1 systematic review and 1 non-randomised trial support; "
        "1 RCT and 1 observational study mixed; 1 case report or series not counted."
    )

    lasting = claims["long-lasting"]
    assert lasting["verdict"] == "insufficient_evidence"
    assert (
        lasting["all_designs_verdict"] == "mixed"
        and lasting["high_certainty_verdict"] == "insufficient_evidence"
    )

    # No participants stated: high rated down once for imprecision.
    assert (claims["rapid-onset"]["verdict"], claims["rapid-onset"]["strength"]) == ("supported", "moderate")
    assert claims["undeniable-benefits"]["verdict"] == "insufficient_evidence"


def test_bad_rows_are_all_reported_and_nothing_is_written(
    records: dict[int, dict[str, object]], users: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = TEAM_SHEET[0]
    sheet = _write_csv(
        tmp_path / "bad.csv",
        [
            good,
            ("ana", "cures-cancer", 40015180, "supported", "MSSI scores", "", ""),
            ("ana", "rapid-onset", 12345, "supported", "MSSI scores", "", ""),
            ("ana", "rapid-onset", 40015180, "true", "MSSI scores", "", ""),
            ("ben", "rapid-onset", 40015180, "supported", "ketamine cures depression", "", ""),
            ("zoe", "rapid-onset", 40015180, "supported", "MSSI scores", "", ""),
        ],
    )

    assert main(["import-assessments", str(sheet), "--as", "eve"]) == 1
    err = capsys.readouterr().err
    assert main(["export", "assessments", "--format", "jsonl", "--as", "eve"]) == 0

    assert "bad.csv: 5 bad row(s), nothing was imported" in err
    assert "line 3: unknown claim 'cures-cancer'" in err
    assert "line 4: unknown PMID 12345" in err
    assert "line 5: bad verdict: Unknown verdict 'true'" in err
    assert "line 6: quote not in the abstract" in err
    assert "line 7: unknown reviewer 'zoe'" in err
    assert capsys.readouterr().out == ""  # not even line 2 was written


def test_signoff_resolve_claimreview_and_a_later_retraction(
    records: dict[int, dict[str, object]],
    users: None,
    tmp_path: Path,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        main(["import-assessments", str(_write_csv(tmp_path / "team.csv", TEAM_SHEET)), "--as", "eve"]) == 0
    )
    signoff = [
        "signoff",
        "suicidal-ideation",
        "--decision",
        "ok-to-publish",
        "--rating",
        "mostly-accurate",
        "--rationale",
        "RCT and SR agree.",
    ]

    assert main([*signoff, "--as", "ana"]) == 1
    assert "signing claims off needs the role editor or admin" in capsys.readouterr().err
    assert main([*signoff, "--as", "eve"]) == 1
    assert "unresolved conflicts on PMID 39940002" in capsys.readouterr().err
    assert main(["conflicts", "--as", "eve"]) == 0
    assert "suicidal-ideation\t39940002\tana=unsupported, ben=mixed" in capsys.readouterr().out
    assert (
        main(
            [
                "resolve",
                "suicidal-ideation",
                "39940002",
                "--verdict",
                "unsupported",
                "--reason",
                "No difference between groups at 12 or 24 h.",
                "--as",
                "eve",
            ]
        )
        == 0
    )
    assert main([*signoff, "--as", "eve"]) == 0
    assert "rated mostly accurate (derived verdict supported, certainty low)" in capsys.readouterr().out
    assert (
        main(["export", "claimreview", "-o", str(tmp_path / "review.json"), "--publisher", "Health Desk"])
        == 0
    )

    [review] = json.loads((tmp_path / "review.json").read_text(encoding="utf-8"))["@graph"]
    assert review["claimReviewed"] == "Ketamine rapidly reduces suicidal thoughts."
    assert review["reviewRating"] == {
        "@type": "Rating",
        "ratingValue": 5,
        "bestRating": 6,
        "worstRating": 1,
        "alternateName": "Mostly accurate",
    }
    assert review["author"]["name"] == "Health Desk"

    # A later harvest brings PMID 40015180 back retracted.
    with Session(engine_for(db_url)) as session:
        article = session.get(Article, 40015180)
        assert article is not None
        row = {
            name: getattr(article, name)
            for name in Article.model_fields
            if name not in {"updated_at", "first_seen_at", "deleted_in_pubmed"}
        }
        upsert_articles(session, [row | {"retraction_status": "retracted", "content_hash": "changed"}])
        assert flag_changed_evidence(session, [40015180]) == ["suicidal-ideation"]
        session.commit()
    assert (
        main(["export", "claims", "--format", "jsonl", "-o", str(tmp_path / "after.jsonl"), "--as", "eve"])
        == 0
    )
    assert main(["queue", "--as", "eve"]) == 0
    assert main(["export", "claimreview", "-o", str(tmp_path / "review2.json")]) == 0

    after = _claims(tmp_path / "after.jsonl")["suicidal-ideation"]
    assert after["evidence_changed_since_signoff"] is True
    assert after["evidence_changes"] == ["PMID 40015180: retraction_status none -> retracted"]
    assert {"pmid": 40015180, "reason": "retracted"} in after["excluded"]
    out, err = capsys.readouterr()
    assert "evidence_changed\tEvidence changed since sign-off of 'suicidal-ideation'" in out
    assert "Left out 1 claim(s) whose evidence changed since sign-off (suicidal-ideation)" in err
    assert json.loads((tmp_path / "review2.json").read_text(encoding="utf-8"))["@graph"] == []
    assert "No claim to publish: ClaimReview holds only claims whose latest sign-off is OK to publish" in err


def test_exports_of_assessments_and_audit(
    records: dict[int, dict[str, object]], users: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["import-assessments", str(_write_csv(tmp_path / "team.csv", TEAM_SHEET[:2])), "--as", "eve"])
        == 0
    )
    capsys.readouterr()

    assert main(["export", "assessments", "--as", "eve"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert main(["export", "audit", "--format", "csv", "-o", str(tmp_path / "audit.csv"), "--as", "eve"]) == 0
    audit = list(csv.DictReader((tmp_path / "audit.csv").open(encoding="utf-8")))
    assert main(["export", "assessments", "--format", "markdown", "--as", "eve"]) == 1

    assert [(r["reviewer"], r["pmid"], r["design"]) for r in rows] == [
        ("ana", "40015180", "rct"),
        ("ben", "40015180", "rct"),
    ]
    actions = [r["action"] for r in audit]
    assert actions.count("user_added") == 4 and actions.count("assessment_recorded") == 2
    assert {r["source"] for r in audit if r["action"] == "assessment_recorded"} == {
        "team.csv line 2",
        "team.csv line 3",
    }
    assert "use --format csv|jsonl" in capsys.readouterr().err


def test_users_commands_and_acting_user_errors(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "add", "eve", "--role", "editor"]) == 1
    assert "The first user must be an admin" in capsys.readouterr().err
    assert main(["users", "add", "ada", "--role", "admin"]) == 0
    assert main(["users", "add", "rita", "--role", "reviewer", "--as", "nobody"]) == 1
    assert "No user named 'nobody'" in capsys.readouterr().err
    assert main(["users", "add", "rita", "--role", "reviewer", "--as", "ada"]) == 0
    assert main(["users", "set-role", "rita", "--role", "editor", "--as", "ada"]) == 0
    assert main(["queue"]) == 1
    assert "pass --as NAME or set KETAMINE_EVIDENCE_USER" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["users", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ada\tadmin", "rita\teditor"]
    assert main(["claims", "list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 9  # the seed's claims


def test_csv_rows_report_the_line_they_start_on(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text(
        "\ufeffreviewer,claim_key,pmid,verdict,quote,note\n"
        'ana,rapid-onset,1,supported,"a quote\nover two lines",\n'
        "\n"
        "ben,rapid-onset,2,mixed,q,n\n",
        encoding="utf-8",
    )

    rows = read_assessment_csv(path)

    assert [(r.line, r.reviewer, r.design) for r in rows] == [(2, "ana", ""), (5, "ben", "")]
    (tmp_path / "bad.csv").write_text("who,claim\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lacks the column"):
        read_assessment_csv(tmp_path / "bad.csv")


def test_claims_edit_sets_the_time_frame_and_scope_the_rule_reads(
    db_url: str, users: None, capsys: pytest.CaptureFixture[str]
) -> None:
    edit = ["claims", "edit", "long-lasting"]
    assert (
        main(
            [*edit, "--follow-up-min-days", "56", "--population", "trd", "--population", "mdd", "--as", "eve"]
        )
        == 0
    )
    assert "time frame at least 8 weeks; mdd, trd; any intervention" in capsys.readouterr().out
    with Session(engine_for(db_url)) as session:
        claim = get_claim(session, "long-lasting")
        assert (claim.follow_up_min_days, claim.populations) == (56.0, ["mdd", "trd"])
        history = [e.after for e in claim_history(session, claim.id) if e.action == AuditAction.CLAIM_EDITED]
        assert history[-1] == {"follow_up_min_days": 56.0, "populations": ["mdd", "trd"]}

    assert main([*edit, "--population", "any", "--as", "eve"]) == 0
    assert main([*edit, "--population", "teens", "--as", "eve"]) == 1
    assert "Unknown populations ['teens']; use any of mdd, trd" in capsys.readouterr().err
    assert main([*edit, "--follow-up-max-days", "3", "--as", "eve"]) == 1
    assert "is after follow_up_max_days (3); swap them" in capsys.readouterr().err
    assert main([*edit, "--follow-up-min-days", "7", "--as", "ana"]) == 1  # a reviewer
    assert main([*edit, "--as", "eve"]) == 2
    with Session(engine_for(db_url)) as session:
        claim = get_claim(session, "long-lasting")
        assert (claim.follow_up_min_days, claim.populations) == (
            56.0,
            [],
        )  # the refused edits changed nothing


def test_signoff_needs_a_rating_and_a_reason_to_depart_from_the_verdict(
    db_url: str, users: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No study judged for the seeded claim: its derived verdict is insufficient evidence.
    base = ["signoff", "long-lasting", "--as", "eve"]
    allowed = "use one of accurate, mostly-accurate, mixed, unproven, misleading, inaccurate."

    assert main([*base, "--decision", "ok-to-publish", "--rationale", "Nothing tested it."]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line == f"error: A sign-off needs a rating; {allowed}"
    assert main([*base, "--decision", "ok-to-publish", "--rating", "true", "--rationale", "Tested."]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line == f"error: Unknown rating 'true'; {allowed}"
    publish_accurate = [*base, "--decision", "ok-to-publish", "--rating", "accurate"]
    assert main([*publish_accurate, "--rationale", "Readers should know the studies are short."]) == 1
    assert "only rated unproven or misleading, not accurate" in capsys.readouterr().err
    assert main([*base, "--decision", "revise-wording", "--rating", "accurate", "--rationale", "Fine."]) == 1
    assert "departs from the derived verdict" in capsys.readouterr().err

    assert (
        main([*base, "--decision", "ok-to-publish", "--rating", "unproven", "--rationale", "Untested."]) == 0
    )
    assert "rated unproven (derived verdict insufficient evidence" in capsys.readouterr().out
    assert main(["export", "claimreview", "-o", str(tmp_path / "review.json")]) == 0
    [review] = json.loads((tmp_path / "review.json").read_text(encoding="utf-8"))["@graph"]
    assert review["reviewRating"]["alternateName"] == "Unproven"
    assert review["reviewRating"]["ratingValue"] == 3
