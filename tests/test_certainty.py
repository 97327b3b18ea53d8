"""GRADE's certainty, worked by hand: each case below is computed in its comment, then checked.

The rule is db.review.verdicts.derive_claim_verdict: studies weigh by participants, the strongest
tier holding a direct study with participants decides, and the certainty is rated down for risk of
bias, inconsistency, indirectness and imprecision, each with its reason.
"""

from __future__ import annotations

from itertools import count

from db.review.verdicts import (
    OPTIMAL_INFORMATION_SIZE,
    ClaimScope,
    StudyEvidence,
    derive_claim_verdict,
    indirectness,
)
from db.vocab import ClaimVerdict, DowngradeDomain, Strength
from db.vocab import StudyDesign as D
from db.vocab import StudyVerdict as V

_pmids = count(1_000)
LONG_LASTING = ClaimScope(follow_up_min_days=28, populations=frozenset({"mdd", "trd", "mixed"}))
RAPID = ClaimScope(follow_up_max_days=7)


def study(design: D, verdict: V, n: int | None = None, **findings: object) -> StudyEvidence:
    return StudyEvidence(next(_pmids), verdict, design, participants=n, **findings)  # type: ignore[arg-type]


def domains(result: object) -> dict[DowngradeDomain, int]:
    return {d.domain: d.levels for d in result.downgrades}  # type: ignore[attr-defined]


def test_a_large_negative_trial_outweighs_small_positive_ones() -> None:
    # 400 do not support against 3 x 30 = 90 that do: 400 / 490 = 82% against, over 2/3: unsupported.
    # Against the verdict: 90 / 490 = 18%, under a fifth: consistent. 490 >= 400: precise. High.
    evidence = [study(D.RCT, V.UNSUPPORTED, 400)] + [study(D.RCT, V.SUPPORTED, 30) for _ in range(3)]

    result = derive_claim_verdict(evidence)

    assert result.verdict is ClaimVerdict.UNSUPPORTED
    assert result.strength is Strength.HIGH
    assert result.downgrades == ()
    assert result.participants == 490


def test_three_small_trials_make_low_certainty_not_high() -> None:
    # 12 + 20 + 15 = 47 participants, under 100: imprecision twice. High - 2 = low.
    evidence = [study(D.RCT, V.SUPPORTED, n) for n in (12, 20, 15)]

    result = derive_claim_verdict(evidence)

    assert result.verdict is ClaimVerdict.SUPPORTED
    assert result.strength is Strength.LOW
    assert domains(result) == {DowngradeDomain.IMPRECISION: 2}
    assert "47 participants" in result.downgrades[0].reason
    assert "(rated down twice)" in result.downgrades[0].reason
    assert result.downgrades[0].as_dict()["levels"] == 2


def test_a_review_that_pools_no_participants_is_no_evidence_of_no_effect() -> None:
    # The systematic review found no trial measuring suicidal behaviour: 0 participants, so it
    # cannot decide; nothing else is rated: insufficient evidence, never "unsupported, high".
    result = derive_claim_verdict([study(D.SYSTEMATIC_REVIEW, V.UNSUPPORTED, 0)])

    assert result.verdict is ClaimVerdict.INSUFFICIENT_EVIDENCE
    assert result.strength is Strength.VERY_LOW
    assert "1 review pools no participants" in result.reasoning


def test_short_follow_up_is_indirect_for_a_long_lasting_claim() -> None:
    # Every trial measured at 1 or 7 days; the claim needs at least 28: none is direct: insufficient.
    evidence = [
        study(D.RCT, V.SUPPORTED, 200, follow_up_days=1.0),
        study(D.RCT, V.SUPPORTED, 300, follow_up_days=7.0),
        study(D.META_ANALYSIS, V.MIXED, 900, follow_up_days=7.0),
    ]

    result = derive_claim_verdict(evidence, claim=LONG_LASTING)

    assert result.verdict is ClaimVerdict.INSUFFICIENT_EVIDENCE
    assert "follow-up 1 day, shorter than the claim's time frame (at least 4 weeks)" in result.reasoning
    assert "The claim's time frame: at least 4 weeks." in result.reasoning
    assert set(result.indirect) == {s.pmid for s in evidence}
    # Without the claim's time frame the same trials decide.
    assert derive_claim_verdict(evidence).verdict is not ClaimVerdict.INSUFFICIENT_EVIDENCE


def test_indirect_studies_are_listed_but_never_weighed() -> None:
    # Direct: 100 at 12 weeks. Indirect: 300 at 1 day (before the claim's 28 days): listed, not
    # weighed, so it neither carries the verdict nor lifts the participants past 400.
    # 100 participants: imprecision once (100 is not under 100). High - 1 = moderate.
    evidence = [
        study(D.RCT, V.SUPPORTED, 100, follow_up_days=84.0),
        study(D.RCT, V.SUPPORTED, 300, follow_up_days=1.0),
    ]

    result = derive_claim_verdict(evidence, claim=LONG_LASTING)

    assert result.verdict is ClaimVerdict.SUPPORTED
    assert result.strength is Strength.MODERATE
    assert domains(result) == {DowngradeDomain.IMPRECISION: 1}
    assert result.participants == 100
    assert result.follow_up_days == (84.0, 84.0)
    assert [s.pmid for s in result.counted] == [evidence[0].pmid]
    assert "Not weighed, as indirect: 1 study (follow-up 1 day" in result.reasoning


def test_a_large_indirect_study_cannot_outvote_a_direct_one() -> None:
    # A 1,181-patient review of ketamine as the anaesthetic for ECT is indirect for a depression
    # claim; the direct 30-patient trial that does not support decides alone.
    evidence = [
        study(
            D.META_ANALYSIS,
            V.SUPPORTED,
            1_181,
            directness="indirect",
            indirect_reason="ketamine for ECT anaesthesia",
        ),
        study(D.RCT, V.UNSUPPORTED, 30),
    ]

    result = derive_claim_verdict(evidence)

    assert result.verdict is ClaimVerdict.UNSUPPORTED
    assert result.participants == 30
    assert domains(result) == {DowngradeDomain.IMPRECISION: 2}


def test_a_study_that_saw_the_effect_end_early_is_evidence_against_a_lasting_claim() -> None:
    # "Effects lasted up to 1 week": unsupported at 7 days is direct evidence against "long-lasting";
    # the same study supporting at 7 days would only be indirect.
    against = study(D.SYSTEMATIC_REVIEW, V.UNSUPPORTED, 500, follow_up_days=7.0)
    for_it = study(D.SYSTEMATIC_REVIEW, V.SUPPORTED, 500, follow_up_days=7.0)

    assert indirectness(against, LONG_LASTING) is None
    assert derive_claim_verdict([against], claim=LONG_LASTING).verdict is ClaimVerdict.UNSUPPORTED
    assert derive_claim_verdict([for_it], claim=LONG_LASTING).verdict is ClaimVerdict.INSUFFICIENT_EVIDENCE


def test_partly_direct_studies_rate_down_for_indirectness() -> None:
    # An intravenous claim; the review pools several routes ("mixed") and carries 600 of 800: 75%,
    # over half: indirectness once. 800 participants: precise. High - 1 = moderate.
    scope = ClaimScope(interventions=frozenset({"iv_racemic"}))
    evidence = [
        study(D.META_ANALYSIS, V.SUPPORTED, 600, intervention="mixed"),
        study(D.RCT, V.SUPPORTED, 200, intervention="iv_racemic"),
    ]

    result = derive_claim_verdict(evidence, claim=scope)

    assert result.strength is Strength.MODERATE
    assert domains(result) == {DowngradeDomain.INDIRECTNESS: 1}
    assert "intervention mixed" in result.downgrades[0].reason


def test_unstated_participants_rate_imprecision_down_once_at_most() -> None:
    # 96 stated, but a 44-study review states none: it may hold many, so once, not twice.
    evidence = [
        study(D.RCT, V.SUPPORTED, 40),
        study(D.RCT, V.SUPPORTED, 56),
        study(D.SYSTEMATIC_REVIEW, V.SUPPORTED),
    ]

    result = derive_claim_verdict(evidence)

    assert domains(result) == {DowngradeDomain.IMPRECISION: 1}
    assert result.strength is Strength.MODERATE


def test_population_and_intervention_outside_the_claim_are_indirect() -> None:
    scope = ClaimScope(populations=frozenset({"trd"}), interventions=frozenset({"iv_racemic"}))

    assert (
        indirectness(study(D.RCT, V.SUPPORTED, 50, population="trd", intervention="iv_racemic"), scope)
        is None
    )
    assert "population mdd" in (indirectness(study(D.RCT, V.SUPPORTED, 50, population="mdd"), scope) or "")
    assert "intervention oral" in (
        indirectness(study(D.RCT, V.SUPPORTED, 50, intervention="oral"), scope) or ""
    )
    # A review mixing routes is not made indirect by it; unknown values never are.
    assert indirectness(study(D.META_ANALYSIS, V.SUPPORTED, 50, intervention="mixed"), scope) is None
    assert indirectness(study(D.RCT, V.SUPPORTED), scope) is None
    said = study(D.RCT, V.SUPPORTED, 50, directness="indirect", indirect_reason="healthy volunteers")
    assert indirectness(said, ClaimScope()) == "healthy volunteers"


def test_the_strongest_tier_with_a_direct_study_decides() -> None:
    # The RCT is indirect (bipolar, not the claim's), so the direct cohort decides, starting low.
    scope = ClaimScope(populations=frozenset({"trd"}))
    evidence = [
        study(D.RCT, V.UNSUPPORTED, 500, population="bipolar"),
        study(D.OBSERVATIONAL, V.SUPPORTED, 800, population="trd"),
    ]

    result = derive_claim_verdict(evidence, claim=scope)

    assert result.verdict is ClaimVerdict.SUPPORTED
    assert result.strength is Strength.LOW
    assert [s.design for s in result.counted] == [D.OBSERVATIONAL]


def test_disagreeing_trials_give_mixed_rated_down_for_inconsistency() -> None:
    # 400 support, 400 do not: 50% each, neither 2/3: mixed; inconsistency once. 800: precise.
    evidence = [study(D.RCT, V.SUPPORTED, 200) for _ in range(2)] + [
        study(D.RCT, V.UNSUPPORTED, 200) for _ in range(2)
    ]

    result = derive_claim_verdict(evidence)

    assert result.verdict is ClaimVerdict.MIXED
    assert result.strength is Strength.MODERATE
    assert domains(result) == {DowngradeDomain.INCONSISTENCY: 1}


def test_risk_of_bias_by_the_weight_of_high_risk_studies() -> None:
    # 300 high-risk of 500: 60%, over half but under three quarters: once. Moderate.
    serious = [
        study(D.RCT, V.SUPPORTED, 300, risk_of_bias="high"),
        study(D.RCT, V.SUPPORTED, 200, risk_of_bias="low"),
    ]
    # 450 high-risk of 500: 90%: twice. Low.
    very_serious = [
        study(D.RCT, V.SUPPORTED, 450, risk_of_bias="high"),
        study(D.RCT, V.SUPPORTED, 50, risk_of_bias="low"),
    ]
    # 100 high-risk of 500 (20%) and 100 with some concerns (counting half: 10%): 30%: not rated down.
    minor = [
        study(D.RCT, V.SUPPORTED, 100, risk_of_bias="high"),
        study(D.RCT, V.SUPPORTED, 100, risk_of_bias="some_concerns"),
        study(D.RCT, V.SUPPORTED, 300, risk_of_bias="low"),
    ]

    assert derive_claim_verdict(serious).strength is Strength.MODERATE
    assert domains(derive_claim_verdict(serious)) == {DowngradeDomain.RISK_OF_BIAS: 1}
    assert derive_claim_verdict(very_serious).strength is Strength.LOW
    assert domains(derive_claim_verdict(very_serious)) == {DowngradeDomain.RISK_OF_BIAS: 2}
    assert derive_claim_verdict(minor).downgrades == ()


def test_a_study_without_participants_weighs_the_mean_of_those_that_state_them() -> None:
    # 300 support; the other states none and weighs the mean, 300: 50% each: mixed.
    evidence = [study(D.RCT, V.SUPPORTED, 300), study(D.RCT, V.UNSUPPORTED, None, follow_up_days=7.0)]

    result = derive_claim_verdict(evidence)

    assert result.verdict is ClaimVerdict.MIXED
    # Only stated participants count for precision: 300 < 400, and the reason says one states none.
    assert result.participants == 300
    imprecision = next(d for d in result.downgrades if d.domain is DowngradeDomain.IMPRECISION)
    assert "1 study states none" in imprecision.reason


def test_downgrades_add_up_and_stop_at_very_low() -> None:
    # Observational (low), 60 participants (imprecision twice), high risk of bias (twice): very low.
    result = derive_claim_verdict([study(D.OBSERVATIONAL, V.SUPPORTED, 60, risk_of_bias="high")])

    assert result.strength is Strength.VERY_LOW
    assert domains(result) == {DowngradeDomain.RISK_OF_BIAS: 2, DowngradeDomain.IMPRECISION: 2}


def test_the_optimal_information_size_is_the_threshold() -> None:
    at = derive_claim_verdict([study(D.RCT, V.SUPPORTED, OPTIMAL_INFORMATION_SIZE)])
    below = derive_claim_verdict([study(D.RCT, V.SUPPORTED, OPTIMAL_INFORMATION_SIZE - 1)])

    assert at.strength is Strength.HIGH
    assert below.strength is Strength.MODERATE


def test_rapid_claim_finds_a_twelve_week_trial_indirect() -> None:
    result = derive_claim_verdict([study(D.RCT, V.SUPPORTED, 500, follow_up_days=84.0)], claim=RAPID)

    assert result.verdict is ClaimVerdict.INSUFFICIENT_EVIDENCE
    assert "beyond the claim's time frame (up to 7 days)" in result.reasoning


def test_follow_ups_read_as_people_write_them() -> None:
    from db.review.verdicts import days_text

    assert [days_text(d) for d in (0.1667, 1, 7, 28, 84, 91.32, 182.64, 730.5, 30)] == [
        "4 hours",
        "1 day",
        "7 days",
        "4 weeks",
        "12 weeks",
        "3 months",
        "6 months",
        "2 years",
        "30 days",
    ]
