"""Agreement statistics against hand-worked examples, and from stored votes."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from db.review.agreement import (
    claim_agreement,
    cohen_kappa,
    fleiss_kappa,
    mean_pairwise_agreement,
    percent_agreement,
    reviewer_agreement,
)
from db.vocab import Role, StudyVerdict
from tests.review_builders import add_article, add_claim, add_user, document_of, team, vote

S, M, U = "supported", "mixed", "unsupported"

# Two raters, ten studies.
RATER_A = [S, S, S, S, S, S, M, M, U, U]
RATER_B = [S, S, S, S, S, M, M, U, U, U]

# Three raters, four studies (one list per study).
THREE_RATERS = [[S, S, S], [S, S, M], [M, M, U], [U, U, U]]


def test_percent_agreement_by_hand() -> None:
    # Same label on studies 1-5, 7, 9, 10: 8 of 10.
    assert percent_agreement(RATER_A, RATER_B) == pytest.approx(0.8)


def test_cohen_kappa_by_hand() -> None:
    # po = 8/10 = 0.8.
    # A: S 6, M 2, U 2; B: S 5, M 2, U 3.
    # pe = (6*5 + 2*2 + 2*3) / 10^2 = 40/100 = 0.4.
    # kappa = (0.8 - 0.4) / (1 - 0.4) = 0.4 / 0.6 = 2/3.
    assert cohen_kappa(RATER_A, RATER_B) == pytest.approx(2 / 3)


def test_cohen_kappa_of_chance_level_and_perfect_agreement() -> None:
    # A: S S M M, B: S M S M -> po = 2/4; pe = (2*2 + 2*2)/16 = 1/2; kappa = 0.
    assert cohen_kappa([S, S, M, M], [S, M, S, M]) == pytest.approx(0.0)
    assert cohen_kappa([S, M, U], [S, M, U]) == pytest.approx(1.0)


def test_cohen_kappa_is_undefined_when_everyone_used_one_label() -> None:
    # pe = (3*3)/9 = 1: no agreement beyond chance can be measured.
    assert cohen_kappa([S, S, S], [S, S, S]) is None


def test_fleiss_kappa_by_hand() -> None:
    # n = 3 raters, N = 4 studies.
    # P_i = (sum n_ij^2 - n) / (n(n-1)):
    #   [S,S,S] (9-3)/6 = 1; [S,S,M] (4+1-3)/6 = 1/3; [M,M,U] 1/3; [U,U,U] 1.
    # P = (1 + 1/3 + 1/3 + 1) / 4 = 2/3.
    # Category shares over 12 ratings: S 5/12, M 3/12, U 4/12 -> Pe = (25 + 9 + 16)/144 = 50/144.
    # kappa = (96/144 - 50/144) / (94/144) = 46/94.
    assert fleiss_kappa(THREE_RATERS) == pytest.approx(46 / 94)
    assert mean_pairwise_agreement(THREE_RATERS) == pytest.approx(2 / 3)


def test_fleiss_kappa_needs_equal_rating_counts() -> None:
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[S, S], [S, S, M]])
    assert fleiss_kappa([[S, S], [S, S]]) is None


def test_claim_agreement_from_stored_votes(session: Session) -> None:
    people = team(session)
    third = add_user(session, "rae", Role.REVIEWER)
    claim = add_claim(session)
    raters = [people["reviewer"], people["reviewer2"], third]
    for pmid, labels in enumerate(THREE_RATERS, start=1):
        add_article(session, pmid)
        for reviewer, label in zip(raters, labels, strict=True):
            vote(session, reviewer, claim, pmid, StudyVerdict(label))

    agreement = claim_agreement(session, claim)

    pairs = {(p.reviewer_a, p.reviewer_b): p for p in agreement.pairs}
    # rita and rob agree on all four: kappa 1.
    assert pairs[("rita", "rob")].kappa == pytest.approx(1.0)
    # rae vs rita: [S,S,M,U] vs [S,M,U,U]: po = 2/4; pe = (2*1 + 1*1 + 1*2)/16 = 5/16;
    # kappa = (8/16 - 5/16) / (11/16) = 3/11.
    assert pairs[("rae", "rita")].kappa == pytest.approx(3 / 11)
    assert pairs[("rae", "rob")].percent == pytest.approx(0.5)
    # The claim's kappa with three reviewers: the mean of the pairs, (1 + 3/11 + 3/11) / 3 = 17/33.
    assert agreement.kappa == pytest.approx(17 / 33)
    assert agreement.percent == pytest.approx(2 / 3)
    assert agreement.fleiss == pytest.approx(46 / 94)
    assert (agreement.items, agreement.fleiss_items, agreement.fleiss_raters) == (4, 4, 3)


def test_agreement_across_claims_per_reviewer_pair(session: Session) -> None:
    people = team(session)
    first = add_claim(session)
    second = add_claim(
        session, document_of(session, first), key="stays-well", sentence="Some patients stay well for months."
    )
    add_article(session, 1)
    vote(session, people["reviewer"], first, 1, StudyVerdict.SUPPORTED)
    vote(session, people["reviewer2"], first, 1, StudyVerdict.SUPPORTED)
    vote(session, people["reviewer"], second, 1, StudyVerdict.MIXED)
    vote(session, people["reviewer2"], second, 1, StudyVerdict.UNSUPPORTED)

    [pair] = reviewer_agreement(session)
    single = claim_agreement(session, first)

    assert (pair.reviewer_a, pair.reviewer_b, pair.items, pair.percent) == ("rita", "rob", 2, 0.5)
    # One study, same label: kappa undefined, percent 1; no Fleiss with two raters.
    assert (single.kappa, single.percent, single.fleiss) == (None, 1.0, None)


def test_relevance_and_verdict_agreement_split_what_kappa_mixes(session: Session) -> None:
    # A claim few studies bear on: both reviewers screen ten studies out, then disagree on the
    # verdict of each of the three they both found relevant. One kappa over all of it looks good.
    people = team(session)
    claim = add_claim(session)
    first, second = people["reviewer"], people["reviewer2"]
    for pmid in range(1, 11):
        add_article(session, pmid)
        vote(session, first, claim, pmid, StudyVerdict.NOT_RELEVANT)
        vote(session, second, claim, pmid, StudyVerdict.NOT_RELEVANT)
    for pmid, (a, b) in zip(
        (11, 12, 13),
        [
            (StudyVerdict.SUPPORTED, StudyVerdict.MIXED),
            (StudyVerdict.MIXED, StudyVerdict.UNSUPPORTED),
            (StudyVerdict.UNSUPPORTED, StudyVerdict.SUPPORTED),
        ],
        strict=True,
    ):
        add_article(session, pmid)
        vote(session, first, claim, pmid, a)
        vote(session, second, claim, pmid, b)
    add_article(session, 14)  # relevant to one reviewer only: counts for relevance, not for the verdict
    vote(session, first, claim, 14, StudyVerdict.SUPPORTED)
    vote(session, second, claim, 14, StudyVerdict.NOT_RELEVANT)

    agreement = claim_agreement(session, claim)

    # The one kappa is positive although the reviewers never agreed on a single verdict.
    assert agreement.kappa is not None and agreement.kappa > 0
    assert agreement.verdict_items == 3
    assert agreement.verdict_kappa is not None and agreement.verdict_kappa < 0  # worse than chance
    assert agreement.relevance_kappa is not None and agreement.relevance_kappa > agreement.kappa
    # Relevance: 13 of 14 agree; chance agreement (10/14 and 11/14 "no") is about 0.63.
    assert agreement.relevance_kappa == pytest.approx(
        cohen_kappa(["no"] * 10 + ["yes"] * 4, ["no"] * 11 + ["yes"] * 3)
    )
