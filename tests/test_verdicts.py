"""The claim-verdict rule (pure): design weighing, thresholds, strength, exclusions, sensitivity."""

from __future__ import annotations

from itertools import count

from db.review.verdicts import (
    DesignScope,
    StudyEvidence,
    derive_claim_verdict,
    evidence_fingerprint,
    sensitivity,
)
from db.vocab import ClaimVerdict, DowngradeDomain, Strength
from db.vocab import StudyDesign as D
from db.vocab import StudyVerdict as V

_pmids = count(1)


def studies(
    n: int,
    design: D,
    verdict: V | None,
    retraction_status: str | None = None,
    *,
    participants: int | None = None,
) -> list[StudyEvidence]:
    return [
        StudyEvidence(next(_pmids), verdict, design, retraction_status, participants=participants)
        for _ in range(n)
    ]


def test_issue_example_reads_as_the_issue_says() -> None:
    evidence = (
        studies(3, D.META_ANALYSIS, V.SUPPORTED, participants=500)
        + studies(9, D.RCT, V.SUPPORTED, participants=60)
        + studies(2, D.RCT, V.MIXED, participants=400)
        + studies(4, D.CASE_REPORT, V.UNSUPPORTED, participants=1)
    )

    result = derive_claim_verdict(evidence)

    # Weights: 3 x 500 + 9 x 60 = 2,040 support, 2 x 400 = 800 mixed: 72% support, over 2/3.
    # Certainty: high, minus one for inconsistency (28% of the weight is mixed, over a fifth).
    assert result.verdict is ClaimVerdict.SUPPORTED
    assert result.strength is Strength.MODERATE
    assert result.reasoning.startswith(
        "3 meta-analyses and 9 RCTs support; 2 RCTs mixed; 4 case reports or series not counted."
    )
    assert "12 of 14 support" in result.reasoning
    assert "72% of the weight supports" in result.reasoning
    assert [d.domain for d in result.downgrades] == [DowngradeDomain.INCONSISTENCY]
    assert result.participants == 2_840


def test_case_reports_never_outvote_rcts() -> None:
    evidence = studies(1, D.RCT, V.UNSUPPORTED) + studies(20, D.CASE_REPORT, V.SUPPORTED)

    result = derive_claim_verdict(evidence)

    assert result.verdict is ClaimVerdict.UNSUPPORTED
    assert len(result.counted) == 1


def test_observational_studies_do_not_overturn_rcts() -> None:
    evidence = studies(2, D.RCT, V.UNSUPPORTED, participants=250) + studies(
        10, D.OBSERVATIONAL, V.SUPPORTED, participants=1_000
    )

    result = derive_claim_verdict(evidence)

    assert result.verdict is ClaimVerdict.UNSUPPORTED
    assert result.strength is Strength.HIGH  # two consistent RCTs, 500 participants
    assert "10 observational studies support" in result.reasoning


def test_observational_studies_decide_alone_with_low_strength() -> None:
    result = derive_claim_verdict(studies(3, D.OBSERVATIONAL, V.SUPPORTED, participants=200))

    assert result.verdict is ClaimVerdict.SUPPORTED
    assert result.strength is Strength.LOW
    assert "no direct SR, MA or RCT rated" in result.reasoning


def test_only_weak_designs_give_insufficient_evidence() -> None:
    evidence = studies(2, D.CASE_REPORT, V.SUPPORTED) + studies(1, D.PRECLINICAL, V.SUPPORTED)

    result = derive_claim_verdict(evidence)

    assert result.verdict is ClaimVerdict.INSUFFICIENT_EVIDENCE
    assert result.strength is Strength.VERY_LOW
    assert "2 case reports or series and 1 preclinical study not counted" in result.reasoning


def test_no_studies_is_insufficient_evidence() -> None:
    result = derive_claim_verdict([])

    assert result.verdict is ClaimVerdict.INSUFFICIENT_EVIDENCE
    assert result.reasoning.startswith("No studies rated yet.")


def test_two_thirds_threshold() -> None:
    # 2 of 3 support: 3 * 2 = 6 >= 2 * 3 = 6 -> supported.
    two_of_three = studies(2, D.RCT, V.SUPPORTED) + studies(1, D.RCT, V.UNSUPPORTED)
    # 1 of 2 support, 1 of 2 against: neither reaches 2/3 -> mixed.
    split = studies(1, D.RCT, V.SUPPORTED) + studies(1, D.RCT, V.UNSUPPORTED)
    # 3 of 4 do not support: 9 >= 8 -> unsupported.
    against = studies(3, D.RCT, V.UNSUPPORTED) + studies(1, D.RCT, V.MIXED)

    assert derive_claim_verdict(two_of_three).verdict is ClaimVerdict.SUPPORTED
    assert derive_claim_verdict(split).verdict is ClaimVerdict.MIXED
    assert derive_claim_verdict(against).verdict is ClaimVerdict.UNSUPPORTED


def test_imprecision_follows_participants_not_the_number_of_studies() -> None:
    lone_small_rct = derive_claim_verdict(studies(1, D.RCT, V.SUPPORTED, participants=120))
    lone_large_ma = derive_claim_verdict(studies(1, D.META_ANALYSIS, V.SUPPORTED, participants=2_400))
    unstated = derive_claim_verdict(studies(3, D.RCT, V.SUPPORTED))

    assert lone_small_rct.strength is Strength.MODERATE  # 120 < 400: once
    assert "120 participants, under the optimal information size of 400" in lone_small_rct.reasoning
    assert lone_large_ma.strength is Strength.HIGH
    # Nothing stated: precision cannot be judged, and that rates down once (never "high" by head count).
    assert unstated.strength is Strength.MODERATE
    assert "precision cannot be judged" in unstated.reasoning


def test_weak_evidence_bottoms_out_at_very_low() -> None:
    # Observational studies start low; one without participants stated loses a level: very low.
    assert derive_claim_verdict(studies(1, D.OBSERVATIONAL, V.SUPPORTED)).strength is Strength.VERY_LOW
    # Two disagreeing ones lose a level for inconsistency: very low as well, and no lower.
    split = studies(1, D.OBSERVATIONAL, V.SUPPORTED) + studies(1, D.OBSERVATIONAL, V.UNSUPPORTED)
    assert derive_claim_verdict(split).strength is Strength.VERY_LOW


def test_retracted_and_concern_studies_are_excluded_and_listed() -> None:
    retracted = StudyEvidence(900, V.SUPPORTED, D.META_ANALYSIS, "retracted")
    concern = StudyEvidence(901, V.SUPPORTED, D.RCT, "expression_of_concern")
    corrected = StudyEvidence(902, V.UNSUPPORTED, D.RCT, "corrected")

    result = derive_claim_verdict([retracted, concern, corrected])

    # Only the corrected RCT counts: it does not support.
    assert result.verdict is ClaimVerdict.UNSUPPORTED
    assert [(e.pmid, e.reason) for e in result.excluded] == [
        (900, "retracted"),
        (901, "expression of concern"),
    ]
    assert "excluded: PMID 900 (retracted), PMID 901 (expression of concern)" in result.reasoning


def test_unresolved_and_not_relevant_studies_do_not_count() -> None:
    evidence = (
        studies(1, D.RCT, None) + studies(2, D.RCT, V.NOT_RELEVANT) + studies(1, D.SYSTEMATIC_REVIEW, V.MIXED)
    )

    result = derive_claim_verdict(evidence)

    assert result.verdict is ClaimVerdict.MIXED
    assert len(result.unresolved) == 1
    assert result.not_relevant == 2
    assert "1 study awaiting conflict resolution" in result.reasoning
    assert "2 studies screened out as not relevant" in result.reasoning


def test_sensitivity_shows_a_verdict_resting_on_weak_studies() -> None:
    evidence = studies(3, D.OBSERVATIONAL, V.SUPPORTED) + studies(5, D.CASE_REPORT, V.SUPPORTED)

    views = sensitivity(evidence)

    assert views.graded.verdict is ClaimVerdict.SUPPORTED
    assert views.high_certainty.verdict is ClaimVerdict.INSUFFICIENT_EVIDENCE
    assert views.all_designs.verdict is ClaimVerdict.SUPPORTED
    assert views.all_designs.strength is Strength.VERY_LOW  # the weakest counted design sets the start
    assert views.rests_on_weak_studies


def test_high_certainty_scope_ignores_observational_studies() -> None:
    evidence = studies(1, D.RCT, V.MIXED) + studies(4, D.OBSERVATIONAL, V.SUPPORTED)

    result = derive_claim_verdict(evidence, DesignScope.HIGH_CERTAINTY)

    assert result.verdict is ClaimVerdict.MIXED
    assert "4 observational studies not counted" in result.reasoning
    assert not sensitivity(evidence).rests_on_weak_studies


def test_fingerprint_changes_with_verdict_design_or_retraction_but_not_order() -> None:
    a = StudyEvidence(1, V.SUPPORTED, D.RCT)
    b = StudyEvidence(2, V.MIXED, D.OBSERVATIONAL)
    base = evidence_fingerprint([a, b])

    assert evidence_fingerprint([b, a]) == base
    assert evidence_fingerprint([a, StudyEvidence(2, V.SUPPORTED, D.OBSERVATIONAL)]) != base
    assert evidence_fingerprint([a, StudyEvidence(2, V.MIXED, D.RCT)]) != base
    assert evidence_fingerprint([a, StudyEvidence(2, V.MIXED, D.OBSERVATIONAL, "retracted")]) != base
    assert evidence_fingerprint([a, b, StudyEvidence(3, V.SUPPORTED, D.RCT)]) != base
    # A study screened out is not evidence: tagging one as not relevant changes nothing.
    assert evidence_fingerprint([a, b, StudyEvidence(3, V.NOT_RELEVANT, D.RCT)]) == base
