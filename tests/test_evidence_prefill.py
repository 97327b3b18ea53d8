"""Evidence prefill from an abstract: each field with its sentence, directness against a claim, and the
quote preselected for a reviewer (never background or methods). Abstracts here are written for the tests."""

from __future__ import annotations

import json

import pytest

from db.models import Claim
from db.review.evidence_fields import checked_evidence
from db.review.evidence_prefill import conclusion_quote, suggest_evidence
from db.review.sources import split_sentences
from db.vocab import Directness, Intervention, Population, RiskOfBias
from tests.conftest import shared_file

# A structured abstract as ingest stores it: "LABEL: text" paragraphs.
TRIAL_TITLE = "Intravenous ketamine for treatment-resistant depression: a randomized, double-blind trial"
TRIAL = """BACKGROUND: About 30% of patients with major depression do not respond to two antidepressants.

METHODS: Of 112 patients screened, sixty-eight adults with treatment-resistant depression were randomized to a single intravenous infusion of ketamine (0.5 mg/kg) or saline placebo in a double-blind design. Depression was assessed using the MADRS at baseline, 24 hours and 7 days. The primary outcome was the change in MADRS score at 24 hours.

RESULTS: Response rates were 64% vs 28% at 24 hours (p = 0.003). Dissociation resolved within two hours.

CONCLUSIONS: A single ketamine infusion rapidly relieved treatment-resistant depression."""

OPEN_LABEL = """BACKGROUND: Oral ketamine is cheap and easy to give.

METHODS: In this open-label study, 24 outpatients with bipolar depression took oral ketamine twice weekly (n = 24). Symptoms were rated with the MADRS over four weeks.

RESULTS: MADRS scores fell by a reduction of 7.6 points from baseline (p < 0.01).

CONCLUSIONS: Oral ketamine may help bipolar depression."""

REVIEW = """BACKGROUND: Ketamine is used for suicidal ideation.

METHODS: We searched PubMed and Embase for randomized trials of ketamine or esketamine in people with suicidal ideation.

RESULTS: Seven trials (N = 1,120) met inclusion criteria. Suicidal ideation fell more with ketamine (SMD -0.48, 95% CI -0.70 to -0.26).

CONCLUSIONS: Ketamine reduces suicidal ideation for up to a week."""

RATS = """Chronic stress causes anhedonia. We gave ketamine (10 mg/kg, ip) to Wistar rats after 21 days of chronic stress. Sucrose preference was measured 24 hours after the injection. Ketamine significantly restored sucrose preference (p < 0.01)."""

# The claims' own time frames and scopes, as in db/seed/claims.json.
LONG_LASTING = Claim(
    key="long-lasting",
    statement="Ketamine's benefit lasts for weeks.",
    follow_up_min_days=28,
    populations=["mdd", "trd", "bipolar", "suicidal", "mixed"],
)
RAPID = Claim(
    key="rapid-onset",
    statement="Ketamine works within hours or days.",
    follow_up_max_days=7,
    populations=["mdd", "trd", "bipolar", "suicidal", "mixed"],
)
TRD_ONLY = Claim(key="treatment-resistant", statement="Ketamine relieves TRD.", populations=["trd"])
IV_ONLY = Claim(key="iv", statement="IV ketamine works.", interventions=["iv_racemic"])


def test_trial_fields_are_read_with_their_sentences() -> None:
    found = suggest_evidence(TRIAL_TITLE, TRIAL)

    assert found["participants"].value == 68  # randomized, not the 112 screened
    assert "sixty-eight adults" in found["participants"].sentence
    assert found["follow_up"].value == "24 hours"  # the primary outcome's time point, not the 7-day visit
    assert found["follow_up"].sentence.startswith("The primary outcome")
    assert found["effect"].value.startswith("Response rates were 64% vs 28%")
    assert found["effect"].sentence.startswith("RESULTS:")
    assert found["population"].value is Population.TRD
    assert found["intervention"].value is Intervention.IV_RACEMIC
    assert found["risk_of_bias"].value is RiskOfBias.LOW
    assert "double-blind" in found["risk_of_bias"].sentence
    assert "directness" not in found  # no claim, no directness


def test_suggestions_pass_the_evidence_check() -> None:
    found = suggest_evidence(TRIAL_TITLE, TRIAL, RAPID)
    evidence = checked_evidence({name: s.value for name, s in found.items()})
    assert evidence.follow_up_days == 1.0
    assert evidence.directness is Directness.DIRECT


def test_open_label_study_counts_n_and_rates_high_risk() -> None:
    found = suggest_evidence("Oral ketamine in bipolar depression", OPEN_LABEL)

    assert found["participants"].value == 24
    assert found["follow_up"].value == "four weeks"
    assert found["population"].value is Population.BIPOLAR
    assert found["intervention"].value is Intervention.ORAL
    assert found["risk_of_bias"].value is RiskOfBias.HIGH
    assert "open-label" in found["risk_of_bias"].sentence
    assert "7.6 points" in found["effect"].value


def test_review_pools_participants_and_names_no_risk_of_bias() -> None:
    found = suggest_evidence("Ketamine for suicidal ideation: a systematic review and meta-analysis", REVIEW)

    assert found["participants"].value == 1120  # pooled N, not the seven trials
    assert found["effect"].value.startswith("Suicidal ideation fell more with ketamine (SMD -0.48")
    assert found["population"].value is Population.SUICIDAL
    assert found["intervention"].value is Intervention.MIXED  # ketamine or esketamine
    assert "risk_of_bias" not in found  # "randomized trials" in a review says nothing of its own bias
    assert "follow_up" not in found


def test_review_that_found_no_trial_gives_zero_participants() -> None:
    abstract = (
        "METHODS: We searched three databases for trials of ketamine measuring suicide deaths.\n\n"
        "RESULTS: No randomized trials measured suicide deaths. Observational data were sparse."
    )
    found = suggest_evidence("Ketamine and suicide deaths: a systematic review", abstract)
    assert found["participants"].value == 0
    assert found["participants"].sentence == "RESULTS: No randomized trials measured suicide deaths."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A total of 1,234 participants were included in the analysis.", 1234),
        ("Patients were randomized to ketamine (n = 40) or midazolam (n = 41).", 81),
        ("Fifty-nine patients with bipolar depression received ketamine infusions.", 59),
        ("Forty patients were enrolled and 36 patients were randomized.", 36),
    ],
)
def test_participant_counts(text: str, expected: int) -> None:
    found = suggest_evidence("Ketamine trial", f"METHODS: {text}")
    assert found["participants"].value == expected


def test_animal_study_is_other_and_indirect() -> None:
    found = suggest_evidence("Ketamine in a rat model of chronic stress", RATS, RAPID)

    assert found["population"].value is Population.OTHER
    assert found["intervention"].value is Intervention.OTHER
    assert "participants" not in found
    assert "risk_of_bias" not in found
    assert found["directness"].value is Directness.INDIRECT
    assert "animal" in found["indirect_reason"].value


def test_follow_up_outside_the_claims_time_frame_is_indirect_with_the_reason() -> None:
    found = suggest_evidence(TRIAL_TITLE, TRIAL, LONG_LASTING)

    assert found["directness"].value is Directness.INDIRECT
    assert found["indirect_reason"].value == "follow-up 1 day, shorter than the claim's 28 days"
    assert found["directness"].sentence.startswith("The primary outcome")


def test_follow_up_longer_than_a_rapid_claim_is_indirect() -> None:
    found = suggest_evidence("Oral ketamine in bipolar depression", OPEN_LABEL, RAPID)
    assert found["indirect_reason"].value == "follow-up 28 days, longer than the claim's 7 days"


def test_population_outside_the_claim_is_indirect() -> None:
    found = suggest_evidence("Oral ketamine in bipolar depression", OPEN_LABEL, TRD_ONLY)

    assert found["directness"].value is Directness.INDIRECT
    assert "bipolar depression" in found["indirect_reason"].value


def test_intervention_outside_the_claim_is_indirect() -> None:
    found = suggest_evidence("Oral ketamine in bipolar depression", OPEN_LABEL, IV_ONLY)
    assert "oral ketamine" in found["indirect_reason"].value


def test_study_inside_the_claims_scope_is_direct() -> None:
    assert suggest_evidence(TRIAL_TITLE, TRIAL, TRD_ONLY)["directness"].value is Directness.DIRECT
    assert (
        suggest_evidence("Oral ketamine in bipolar depression", OPEN_LABEL, LONG_LASTING)["directness"].value
        is Directness.DIRECT
    )


def test_directness_is_left_out_when_the_follow_up_is_unknown() -> None:
    abstract = "METHODS: Twenty adults with treatment-resistant depression received ketamine infusions."
    found = suggest_evidence("Ketamine in TRD", abstract, RAPID)
    assert "directness" not in found


def test_abstract_without_figures_suggests_nothing_it_does_not_state() -> None:
    found = suggest_evidence(
        "Ketamine: a narrative review",
        "This review discusses the history of ketamine. We describe how it is used in clinics.",
    )
    assert set(found) <= {"effect"}


# --- the quote ---------------------------------------------------------------------------------------


def _sentences(abstract: str) -> list[str]:
    return [s.text for s in split_sentences(abstract)]


def test_quote_is_a_conclusion_by_default() -> None:
    quote = conclusion_quote(TRIAL_TITLE, _sentences(TRIAL))
    assert quote == "CONCLUSIONS: A single ketamine infusion rapidly relieved treatment-resistant depression."


def test_quote_prefers_the_results_sentence_with_the_claims_terms() -> None:
    quote = conclusion_quote(TRIAL_TITLE, _sentences(TRIAL), ["response rates"])
    assert quote.startswith("RESULTS: Response rates were 64% vs 28%")


def test_quote_never_picks_methods_or_background_even_with_more_terms() -> None:
    terms = ["suicidality", "Beck Scale", "suicidal ideation"]
    abstract = (
        "BACKGROUND: Suicidal ideation is common and suicidality is hard to treat.\n\n"
        "METHODS: Suicidality was assessed using the Beck Scale for Suicide Ideation at 24 h.\n\n"
        "RESULTS: Scores fell in both groups, without a difference between them.\n\n"
        "TRIAL REGISTRATION: IRCT2022 (suicidal ideation, Beck Scale)."
    )
    quote = conclusion_quote("Ketamine for suicidal ideation", _sentences(abstract), terms)
    assert quote == "RESULTS: Scores fell in both groups, without a difference between them."


def test_quote_in_unlabelled_abstract_skips_methods_sentences() -> None:
    abstract = (
        "Suicidal thoughts respond slowly to antidepressants. "
        "Suicidality was assessed using the Beck Scale before and 24 h after the infusion. "
        "Suicidal ideation decreased significantly with ketamine (p < 0.01). "
        "These findings suggest ketamine rapidly reduces suicidal ideation."
    )
    sentences = _sentences(abstract)
    assert conclusion_quote("t", sentences, ["suicidality", "Beck Scale"]) in sentences[2:]
    assert conclusion_quote("t", sentences) == sentences[3]


def test_quote_falls_back_to_the_title_without_results_or_conclusions() -> None:
    abstract = "BACKGROUND: Ketamine is an anaesthetic.\n\nMETHODS: We will recruit 40 patients."
    assert conclusion_quote("A protocol", _sentences(abstract)) == "A protocol"


# --- the real records (skipped where ../shared/data is absent) ---------------------------------------


def test_real_abstracts_never_quote_methods_and_keep_effects_short() -> None:
    path = shared_file("pubmed", "ketamine", "records.jsonl")
    for record in map(json.loads, path.read_text(encoding="utf-8").splitlines()):
        sentences = _sentences(record["abstract"] or "")
        quote = conclusion_quote(record["title"], sentences)
        assert quote == record["title"] or quote in sentences
        assert not quote.startswith(("METHODS:", "METHOD:", "BACKGROUND:", "OBJECTIVE:")), record["pmid"]
        found = suggest_evidence(record["title"], record["abstract"] or "")
        if "effect" in found:
            assert len(found["effect"].value) <= 200
        checked_evidence({name: s.value for name, s in found.items()}, where=f"PMID {record['pmid']}: ")
