"""The rule of where a judged (claim, study) pair stands, in one place.

A resolution holds while the votes keep the signature it was made on; otherwise one verdict among
the votes is agreement and several are a conflict. db.review.pairs (one claim's pairs with their
votes), db.review.pair_index (the pair_state table every write keeps) and db.read.pairs (many
claims' pairs at once) all decide it here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from db.vocab import PairState

V = TypeVar("V")


def votes_signature(votes: Iterable[tuple[int, int]]) -> str:
    """Which votes, at which versions, from (assessment id, version) pairs: a resolution applies only
    while the votes stay the same."""
    return ",".join(f"{assessment_id}:{version}" for assessment_id, version in sorted(votes))


def pair_standing(
    verdicts: Iterable[V], signature: str | None, resolution: tuple[V, str] | None
) -> tuple[PairState, V | None]:
    """(state, resolved verdict) of a pair from its votes' verdicts, their signature and its latest
    resolution (verdict, the signature it was made on); the verdict is None while in conflict.

    Any disagreement is a conflict, including one reviewer screening a study out as not relevant
    while another judges it: whether it counts is an editor's call.
    """
    if resolution is not None and resolution[1] == signature:
        return PairState.RESOLVED, resolution[0]
    distinct = set(verdicts)
    if len(distinct) == 1:
        return PairState.AGREED, distinct.pop()
    return PairState.CONFLICT, None
