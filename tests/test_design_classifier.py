"""The study-design classifier, publication notices, the stored prefill and what sign-off makes of it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update
from sqlmodel import Session, col

from db.corpus.articles import upsert_articles
from db.corpus.classifier import (
    CLASSIFIER_VERSION,
    LOW_CONFIDENCE,
    MODEL_CLASSES,
    DesignModel,
    RecordText,
    classify_design,
    describe_feature,
    shipped_model,
    text_features,
)
from db.corpus.design import reclassify
from db.corpus.notices import notice_kind, notice_target
from db.corpus.prefill import prefill_columns
from db.errors import InvalidInputError
from db.exports.articles import write_articles
from db.models import Article
from db.ranking.queue import rank_studies
from db.review.assessments import confirm_design, correct_design, effective_design
from db.review.signoff import claim_verdict, sign_off
from db.vocab import StudyDesign
from ingest.records import AbstractSection, Notice, PubmedRecord
from tests.conftest import TEST_DATA
from tests.review_builders import add_article, add_claim, team, vote

STUDYTYPETELLER = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmed" / "labeled" / "studytypeteller"
)

RCT_ABSTRACT = (
    "METHODS: In this double-blind, placebo-controlled trial, 120 patients with treatment-resistant "
    "depression were randomized to intravenous ketamine or midazolam. The trial was registered "
    "(NCT01234567). RESULTS: Ketamine reduced depressive symptoms at 24 hours."
)
MOUSE_ABSTRACT = (
    "Male C57BL/6 mice received ketamine (10 mg/kg) and were tested in the forced swim test. "
    "Ketamine reduced immobility in mice and increased synaptic proteins in the prefrontal cortex of rats."
)
CASE_ABSTRACT = (
    "We report a case of a 34-year-old woman with ketamine-induced uropathy. "
    "She presented with dysuria and haematuria after years of recreational use."
)
SR_ABSTRACT = (
    "We systematically searched MEDLINE, Embase and the Cochrane Library for randomised trials of "
    "ketamine in depression, following PRISMA. Twelve trials were included and pooled in a meta-analysis."
)


# --- the model, on hand-written records -------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "abstract", "expected"),
    [
        (
            "Ketamine for treatment-resistant depression: a randomized controlled trial",
            RCT_ABSTRACT,
            StudyDesign.RCT,
        ),
        ("Ketamine's antidepressant-like effects in mice", MOUSE_ABSTRACT, StudyDesign.PRECLINICAL),
        ("Ketamine uropathy: a case report", CASE_ABSTRACT, StudyDesign.CASE_REPORT),
        (
            "Ketamine for depression: a systematic review and meta-analysis",
            SR_ABSTRACT,
            StudyDesign.META_ANALYSIS,
        ),
    ],
)
def test_classifier_reads_designs_from_text_alone(title: str, abstract: str, expected: StudyDesign) -> None:
    guess = classify_design(title, abstract)

    assert guess.design is expected
    assert 0.0 <= guess.confidence <= 1.0
    assert guess.cues, "a guess says what decided it"


def test_systematic_review_title_is_not_a_narrative_review_despite_review_type() -> None:
    guess = classify_design(
        "A systematic review of efficacy and safety of ketamine",
        "We searched PubMed and Embase for studies following PRISMA guidelines and summarised them.",
        publication_types=["Journal Article", "Review"],
    )

    assert guess.design in {StudyDesign.SYSTEMATIC_REVIEW, StudyDesign.META_ANALYSIS}


def test_publication_types_weigh_in_when_the_text_says_little() -> None:
    assert (
        classify_design("Ketamine", publication_types=["Randomized Controlled Trial"]).design
        is StudyDesign.RCT
    )
    assert (
        classify_design("Ketamine", publication_types=["Meta-Analysis"]).design is StudyDesign.META_ANALYSIS
    )
    guess = classify_design("Ketamine", publication_types=["Case Reports"])
    assert guess.design is StudyDesign.CASE_REPORT
    assert "publication type: Case Reports" in guess.cues


def test_correspondence_without_an_abstract_is_no_study_unless_a_type_names_a_design() -> None:
    letter = classify_design("Ketamine clinics and the evidence gap.", "", "Psychiatric letters", ["Letter"])
    assert (letter.design, letter.cues) == (StudyDesign.OTHER, ("publication type: Letter, no abstract",))
    assert letter.confidence >= 0.6  # not flagged for a person: PubMed typed it and no text says otherwise
    reply = classify_design("A reply", publication_types=["Journal Article", "Comment"])
    assert reply.design is StudyDesign.OTHER
    research_letter = ["Letter", "Randomized Controlled Trial"]
    assert classify_design("Ketamine", publication_types=research_letter).design is StudyDesign.RCT
    with_abstract = classify_design("Ketamine", "We randomized 40 patients.", "", ["Letter"])
    assert with_abstract.cues[:1] != ("publication type: Letter, no abstract",)


def test_a_tiny_model_scores_and_explains_by_its_weights() -> None:
    # Independent of the shipped weights: one feature that votes for RCT, one for preclinical.
    weights = np.zeros((2, len(MODEL_CLASSES)), dtype=np.float32)
    weights[0, MODEL_CLASSES.index(StudyDesign.RCT)] = 3.0
    weights[1, MODEL_CLASSES.index(StudyDesign.PRECLINICAL)] = 3.0
    model = DesignModel.from_arrays(
        ["t:randomized", "c:animal"], weights, np.zeros(len(MODEL_CLASSES)), MODEL_CLASSES
    )

    trial = model.classify("A randomized trial", "in patients")
    animal = model.classify("Behaviour", "in rats")
    unsure = model.classify("Nothing to go on")

    assert trial.design is StudyDesign.RCT and trial.cues == ('title: "randomized"',)
    assert animal.design is StudyDesign.PRECLINICAL and animal.cues == ("cue: animal terms",)
    assert unsure.confidence == pytest.approx(1 / len(MODEL_CLASSES), abs=1e-3)
    assert unsure.needs_confirmation


def test_features_mark_title_words_cues_and_registration_numbers() -> None:
    features = text_features("Randomized trial", "Registered as NCT01234567. A 45-year-old man.", "Lancet")

    assert {
        "t:randomized",
        "t:randomized_trial",
        "c:randomized",
        "c:trial_registration",
        "j:lancet",
    } <= features
    assert "c:case_report" in features  # "a 45-year-old man"
    assert (
        describe_feature("pt:randomized controlled trial") == "publication type: Randomized Controlled Trial"
    )


EDGE_RECORDS = [
    ("", "", ""),
    (
        "RANDOMIZED Trial",
        "Registered as NCT01234567 and ISRCTN123; 45-year-old and 7-YEAR-OLDS.",
        "THE LANCET",
    ),
    ("Meta analysis", "A pooled analysis, a random-effects model; we report a case series.", "J. Psychiatr."),
    ("Ketamine: will", "be given. Café, naïve Ärzte, ÉTUDE; in vitro cell-line work", "Rev Méd Suisse"),
    ("A case", "control study - - in mice; web of science, phase i and phase ii; open label.", ""),
]


def _labelled_records(limit: int) -> list[tuple[str, str, str]]:
    import gzip

    with gzip.open(STUDYTYPETELLER / "val.csv.gz", "rt", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:limit]
    return [(row["title"], row["abstract"], row["journal_name"]) for row in rows]


@pytest.mark.skipif(not (STUDYTYPETELLER / "val.csv.gz").exists(), reason="../shared/data is absent")
def test_the_fast_rows_are_the_known_features_of_text_features() -> None:
    # The import's path (word -> row tables) must score exactly what the model was trained on.
    model = shipped_model()
    for title, abstract, journal in [*EDGE_RECORDS, *_labelled_records(300)]:
        names = {model.tables.names[row] for row in model.rows_of(title, abstract, journal)}

        assert names == text_features(title, abstract, journal) & model.vocabulary, title


def test_a_model_without_cue_words_still_finds_its_cues_and_ignores_the_words() -> None:
    # Cue words, phrase guards and pooling words get rows of their own (zero weight) when not trained.
    weights = np.zeros((2, len(MODEL_CLASSES)), dtype=np.float32)
    weights[0, MODEL_CLASSES.index(StudyDesign.CASE_REPORT)] = 3.0
    weights[1, MODEL_CLASSES.index(StudyDesign.SYSTEMATIC_REVIEW)] = 3.0
    model = DesignModel.from_arrays(
        ["c:case_report", "c:meta_analysis"], weights, np.zeros(len(MODEL_CLASSES)), MODEL_CLASSES
    )

    case = model.classify("Uropathy", "We report a 34-year-old woman.")
    pooled = model.classify("Depression", "A meta-analysis with pooled estimates.")
    named_only = model.classify("Depression", "We excluded any meta-analysis.")

    assert case.design is StudyDesign.CASE_REPORT and case.cues == ('cue: "case report"',)
    assert pooled.design is StudyDesign.META_ANALYSIS  # the refinement sees "pooled" without a weight
    assert named_only.design is StudyDesign.SYSTEMATIC_REVIEW
    assert model.rows_of("Nothing", "mice") == {model.features["c:animal"], model.features["mice"]}
    assert not model.weights[model.features["mice"]].any()


def test_many_records_score_as_each_alone() -> None:
    model = shipped_model()
    records: list[RecordText] = [(t, a, j, (), ()) for t, a, j in EDGE_RECORDS]
    records.append(("Ketamine", RCT_ABSTRACT, "", (), ()))
    records.append(("Ketamine", "", "", ["Randomized Controlled Trial"], ["Humans"]))

    together = model.classify_many(records)

    assert together == [model.classify(*record) for record in records]
    assert [g.design for g in model.classify_many(records, explain=False)] == [g.design for g in together]


# --- publication notices ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("types", "title", "kind"),
    [
        (["Expression of Concern"], "Ketamine and depression", "expression of concern"),
        (["Retraction of Publication"], "Ketamine and depression", "retraction notice"),
        (["Published Erratum"], "Ketamine and depression", "erratum"),
        (["Journal Article"], "Retraction notice to: Ketamine in rats", "retraction notice"),
        (["Journal Article"], "Correction to: Ketamine for depression", "erratum"),
        (["Journal Article"], "Expression of Concern: ketamine", "expression of concern"),
        (["Journal Article"], "Correction of scoliosis under ketamine anaesthesia", None),
        (["Journal Article"], "RETRACTED: Ketamine for depression", None),  # the retracted study itself
        ([], "Ketamine for depression: a randomized trial", None),
    ],
)
def test_notices_are_recognised_by_type_or_title(types: list[str], title: str, kind: str | None) -> None:
    assert notice_kind(types, title) == kind


def test_a_notice_links_the_study_it_concerns_and_is_not_a_study() -> None:
    record = PubmedRecord(
        pmid=900,
        title="Expression of Concern: Ketamine for depression",
        abstract_sections=(AbstractSection("The journal has concerns about the data."),),
        publication_types=("Expression of Concern",),
        notices=(Notice("ExpressionOfConcernFor", 901), Notice("CommentOn", 902)),
    )

    columns = prefill_columns(record.article_fields())

    assert record.retraction_status is None  # the notice is not itself under concern
    assert columns["is_notice"] and columns["notice_of"] == 901
    assert columns["retraction_status"] == "notice"  # excluded by the verdict rule as not a study
    assert columns["design"] == StudyDesign.OTHER.value and columns["design_confidence"] == 1.0
    assert notice_target([{"ref_type": "ErratumFor", "pmid": 5}]) == 5


# --- stored, reclassified, exported --------------------------------------------------------------------


def test_import_stores_the_prefill_and_reclassify_spares_reviewers(session: Session) -> None:
    people = team(session)
    rows = [
        PubmedRecord(
            pmid=pmid,
            title="Ketamine for depression: a randomized controlled trial",
            abstract_sections=(AbstractSection(RCT_ABSTRACT),),
        ).article_fields()
        for pmid in (1, 2)
    ]
    upsert_articles(session, rows)
    correct_design(session, people["reviewer"], 2, StudyDesign.OBSERVATIONAL, "open-label extension")
    stored = session.get(Article, 1)
    assert stored is not None and stored.design == "rct" and stored.design_version >= 1
    # As a database before this release had it: no prefill yet.
    session.execute(update(Article.__table__).values(design="other", design_version=0, design_confidence=0))
    session.expire_all()

    counts = reclassify(session)

    assert counts["checked"] == 2
    article_1, article_2 = session.get(Article, 1), session.get(Article, 2)
    assert article_1 is not None and article_1.design == "rct"
    assert article_2 is not None and effective_design(session, article_2) is StudyDesign.OBSERVATIONAL
    assert reclassify(session)["checked"] == 0  # nothing older than the shipped classifier is left


def test_reclassify_redoes_an_older_classifiers_rows_and_keeps_confirmed_designs(session: Session) -> None:
    people = team(session)
    add_article(session, 1, title="Ketamine in depression: a randomized trial", abstract=RCT_ABSTRACT)
    add_article(session, 2, title="Ketamine in depression: a randomized trial", abstract=RCT_ABSTRACT)
    add_article(session, 3, title="Ketamine in depression: a randomized trial", abstract=RCT_ABSTRACT)
    # As the previous classifier left them: a wrong, unsure prefill on all three.
    session.execute(
        update(Article.__table__).values(
            design="review", design_confidence=0.4, design_version=CLASSIFIER_VERSION - 1
        )
    )
    session.execute(
        update(Article.__table__).where(col(Article.pmid) == 3).values(design_version=CLASSIFIER_VERSION)
    )
    session.expire_all()
    confirmed = confirm_design(session, people["reviewer"], 2)
    assert confirmed is not None and confirmed.design is StudyDesign.REVIEW

    counts = reclassify(session)

    assert counts["checked"] == 2 and counts["changed"] == 2 and counts["changed_under_correction"] == 1
    first, second, third = (session.get(Article, pmid) for pmid in (1, 2, 3))
    assert first is not None and first.design == "rct" and first.design_version == CLASSIFIER_VERSION
    assert first.design_confidence >= LOW_CONFIDENCE
    # The prefill under the confirmation moves; what the reviewer confirmed stays the study's design.
    assert second is not None and second.design == "rct"
    assert effective_design(session, second) is StudyDesign.REVIEW
    assert third is not None and third.design == "review"  # already the shipped version: not redone


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_carries_design_confidence_and_notice_flag(session: Session, fmt: str) -> None:
    add_article(session, 1)
    add_article(session, 2, title="Erratum", abstract="", publication_types=["Published Erratum"])
    out = io.StringIO()

    write_articles(session, out, fmt)

    out.seek(0)
    rows = [json.loads(line) for line in out] if fmt == "jsonl" else list(csv.DictReader(out))
    by_pmid = {int(row["pmid"]): row for row in rows}
    assert by_pmid[1]["design"] == "rct" and by_pmid[2]["design"] == "other"
    assert 0.0 <= float(by_pmid[1]["design_confidence"]) <= 1.0
    assert by_pmid[2]["is_notice"] in (True, "True")
    assert by_pmid[1]["is_notice"] in (False, "False")


def test_export_gives_a_reviewers_design_over_the_prefill(session: Session) -> None:
    people = team(session)
    add_article(session, 1)
    correct_design(session, people["reviewer"], 1, StudyDesign.OBSERVATIONAL, "open-label extension")
    out = io.StringIO()

    write_articles(session, out, "jsonl")

    (row,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (row["design"], row["design_confidence"], row["is_notice"]) == ("observational", 1.0, False)


# --- sign-off and evidence ------------------------------------------------------------------------------


def test_signoff_refuses_unconfirmed_low_confidence_designs_until_confirmed(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    article = add_article(session, 1)
    vote(session, people["reviewer"], claim, 1)
    session.execute(
        update(Article.__table__).where(col(Article.pmid) == 1).values(design_confidence=LOW_CONFIDENCE / 2)
    )
    session.expire(article)

    with pytest.raises(InvalidInputError, match=r"PMID 1 \(rct, confidence 0\.30\); confirm or correct"):
        sign_off(session, people["editor"], claim, "ok-to-publish", "One good RCT.", "accurate")
    sign_off(
        session, people["editor"], claim, "revise-wording", "Say more carefully.", "mostly-accurate"
    )  # other decisions pass

    confirmation = confirm_design(session, people["reviewer"], 1)

    assert confirmation is not None and confirmation.design == confirmation.previous == StudyDesign.RCT
    assert sign_off(session, people["editor"], claim, "ok-to-publish", "One good RCT.", "accurate").verdict
    assert confirm_design(session, people["reviewer"], 1) is None  # nothing left to confirm


def test_a_notice_is_excluded_from_a_claims_evidence_as_not_a_study(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)
    add_article(session, 2, title="Expression of concern", publication_types=["Expression of Concern"])
    vote(session, people["reviewer"], claim, 1)
    vote(session, people["reviewer"], claim, 2)

    result = claim_verdict(session, claim)

    assert [(e.pmid, e.reason) for e in result.excluded] == [(2, "a publication notice, not a study")]
    assert "1 RCT" in result.reasoning


# --- the real labelled abstracts: a sane floor only (quality targets live in bench/) --------------------


@pytest.mark.skipif(not (STUDYTYPETELLER / "val.csv.gz").exists(), reason="../shared/data is absent")
def test_shipped_model_beats_a_sane_floor_on_labelled_abstracts() -> None:
    import gzip

    from bench.train_design_classifier import LABEL_MAP

    with gzip.open(STUDYTYPETELLER / "val.csv.gz", "rt", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:150]
    right = 0
    for row in rows:
        design = classify_design(row["title"], row["abstract"], row["journal_name"]).design
        design = StudyDesign.SYSTEMATIC_REVIEW if design is StudyDesign.META_ANALYSIS else design
        right += design is LABEL_MAP[row["accepted_label"]]

    assert right / len(rows) > 0.5


def test_the_review_queue_never_offers_a_notice(session: Session) -> None:
    claim = add_claim(session)
    add_article(session, 1)
    add_article(session, 2, title="Erratum: Ketamine for depression", publication_types=["Published Erratum"])
    session.commit()

    assert [s.pmid for s in rank_studies(session, claim.key)] == [1]


def test_designs_reclassify_on_the_command_line_keeps_reviewers_designs(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingest.cli import main

    assert main(["import", str(TEST_DATA / "pubmed_ketamine_sample.xml")]) == 0
    capsys.readouterr()

    assert main(["designs", "reclassify", "--all"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("Checked 6 articles: ") and "to confirm (low confidence)." in out
