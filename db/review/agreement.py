"""Inter-rater agreement from the stored votes: percent agreement, Cohen's and Fleiss' kappa."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from itertools import combinations

from sqlalchemy import select
from sqlmodel import Session, col

from db.models import Assessment, Claim, User
from db.vocab import StudyVerdict

# --- the arithmetic (pure) -------------------------------------------------------------------------


def percent_agreement(first: Sequence[Hashable], second: Sequence[Hashable]) -> float:
    """Share of items two raters labelled the same (0..1)."""
    _same_length(first, second)
    return sum(a == b for a, b in zip(first, second, strict=True)) / len(first)


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters over the same items; None when undefined.

    kappa = (po - pe) / (1 - pe), po the observed agreement, pe the agreement expected from each
    rater's label frequencies. Undefined (None) when pe = 1: both raters used one and the same
    label for everything, so agreement beyond chance cannot be measured.
    """
    _same_length(first, second)
    n = len(first)
    observed = percent_agreement(first, second)
    count_a, count_b = Counter(first), Counter(second)
    expected = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def fleiss_kappa(items: Sequence[Sequence[Hashable]]) -> float | None:
    """Fleiss' kappa: each item is the list of labels its raters gave; every item has the same
    number (>= 2) of ratings. None when undefined (all ratings in one category).

    P_i = (sum_j n_ij^2 - n) / (n (n - 1)) per item, P = mean P_i; p_j = share of all ratings in
    category j, Pe = sum p_j^2; kappa = (P - Pe) / (1 - Pe).
    """
    if not items:
        raise ValueError("Fleiss' kappa needs at least one rated item.")
    n = len(items[0])
    if n < 2 or any(len(item) != n for item in items):
        raise ValueError("Fleiss' kappa needs the same number (at least 2) of ratings for every item.")
    totals: Counter[Hashable] = Counter()
    per_item = []
    for item in items:
        counts = Counter(item)
        totals.update(counts)
        per_item.append((sum(c * c for c in counts.values()) - n) / (n * (n - 1)))
    observed = sum(per_item) / len(items)
    expected = sum((count / (len(items) * n)) ** 2 for count in totals.values())
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def mean_pairwise_agreement(items: Sequence[Sequence[Hashable]]) -> float:
    """Share of agreeing rater pairs per item, averaged over items (items may differ in raters)."""
    shares = []
    for item in items:
        pairs = list(combinations(item, 2))
        if pairs:
            shares.append(sum(a == b for a, b in pairs) / len(pairs))
    if not shares:
        raise ValueError("Agreement needs at least one item rated twice.")
    return sum(shares) / len(shares)


def _same_length(first: Sequence[Hashable], second: Sequence[Hashable]) -> None:
    if len(first) != len(second) or not first:
        raise ValueError(
            f"Both raters must rate the same, non-empty list of items (got {len(first)} and {len(second)})."
        )


# --- from the stored votes -------------------------------------------------------------------------


_NOT_RELEVANT = StudyVerdict.NOT_RELEVANT.value


@dataclass(frozen=True)
class PairAgreement:
    reviewer_a: str
    reviewer_b: str
    items: int  # studies both judged
    percent: float
    kappa: float | None


@dataclass(frozen=True)
class ClaimAgreement:
    claim_key: str
    items: int  # studies judged by at least two reviewers
    percent: float | None  # mean share of agreeing reviewer pairs per study
    kappa: float | None  # Cohen's kappa with two reviewers; the mean over reviewer pairs with more
    pairs: list[PairAgreement]
    fleiss: float | None = None  # where three or more reviewers judged the same studies
    fleiss_items: int = 0
    fleiss_raters: int = 0
    # Today's kappa counts "not relevant" as a verdict like the others, so a claim most studies do
    # not bear on scores high while reviewers disagree on the few that matter. These two split it:
    relevance_kappa: float | None = None  # relevant or not, over every study both judged
    verdict_kappa: float | None = None  # supported, mixed or unsupported, over studies both found relevant
    verdict_items: int = 0


def _votes(session: Session, claim_id: int | None = None) -> dict[tuple[int, int], dict[str, str]]:
    """(claim id, pmid) -> {reviewer name: verdict}, from every stored vote."""
    names = {user.id: user.name for user in session.scalars(select(User))}
    # Columns, not Assessment objects: building 200,000 ORM objects took a claim report 6 s.
    query = select(
        col(Assessment.claim_id), col(Assessment.pmid), col(Assessment.reviewer_id), col(Assessment.verdict)
    )
    if claim_id is not None:
        query = query.where(col(Assessment.claim_id) == claim_id)
    votes: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
    for claim, pmid, reviewer, verdict in session.execute(query):
        votes[(claim, pmid)][names[reviewer]] = str(verdict)
    return votes


def _pairwise(
    votes: dict[tuple[int, int], dict[str, str]], both_relevant: bool = False
) -> list[PairAgreement]:
    # Each ballot adds to the reviewer pairs on it: one pass over the votes, not one per pair.
    shared: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for ballot in votes.values():
        if len(ballot) < 2:
            continue
        for a, b in combinations(sorted(ballot), 2):
            if both_relevant and _NOT_RELEVANT in (ballot[a], ballot[b]):
                continue
            first, second = shared.setdefault((a, b), ([], []))
            first.append(ballot[a])
            second.append(ballot[b])
    return [
        PairAgreement(a, b, len(first), percent_agreement(first, second), cohen_kappa(first, second))
        for (a, b), (first, second) in sorted(shared.items())
    ]


def claim_agreement(session: Session, claim: Claim) -> ClaimAgreement:
    """Agreement among the reviewers of one claim, from their original votes (not resolutions)."""
    votes = _votes(session, claim.id)
    multi = [list(ballot.values()) for ballot in votes.values() if len(ballot) >= 2]
    pairs = _pairwise(votes)
    kappas = [p.kappa for p in pairs if p.kappa is not None]
    fleiss, fleiss_items, fleiss_raters = _fleiss_for(multi)
    relevance = {
        key: {name: "no" if verdict == _NOT_RELEVANT else "yes" for name, verdict in ballot.items()}
        for key, ballot in votes.items()
    }
    verdict_pairs = _pairwise(votes, both_relevant=True)
    return ClaimAgreement(
        relevance_kappa=_mean_kappa(_pairwise(relevance)),
        verdict_kappa=_mean_kappa(verdict_pairs),
        verdict_items=max((p.items for p in verdict_pairs), default=0),
        claim_key=claim.key,
        items=len(multi),
        percent=mean_pairwise_agreement(multi) if multi else None,
        # Several reviewer pairs: their mean kappa (Light's kappa).
        kappa=sum(kappas) / len(kappas) if kappas else None,
        pairs=pairs,
        fleiss=fleiss,
        fleiss_items=fleiss_items,
        fleiss_raters=fleiss_raters,
    )


def _mean_kappa(pairs: list[PairAgreement]) -> float | None:
    kappas = [p.kappa for p in pairs if p.kappa is not None]
    return sum(kappas) / len(kappas) if kappas else None


def _fleiss_for(items: list[list[str]]) -> tuple[float | None, int, int]:
    # Fleiss' kappa needs the same number of ratings per study: take the studies rated by the
    # rater count (>= 3) that covers most of them, preferring more raters on a tie.
    by_count = Counter(len(item) for item in items if len(item) >= 3)
    if not by_count:
        return None, 0, 0
    raters = max(by_count, key=lambda count: (by_count[count], count))
    chosen = [item for item in items if len(item) == raters]
    return fleiss_kappa(chosen), len(chosen), raters


def reviewer_agreement(session: Session) -> list[PairAgreement]:
    """Agreement of every reviewer pair over all the (claim, study) pairs both judged."""
    return _pairwise(_votes(session))
