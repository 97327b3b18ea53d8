"""One claim's evidence as the verdict summary keeps it: its listed pairs as two compact arrays.

A large review lists about 20,000 pairs a claim (170,000 in all at 100,000 studies). As objects they
took a second and a half to build at each start; as arrays (the PMIDs, and per pair an index into a
short legend of what it is: where its votes stand and its study's design and PubMed standing) they
are counted at C speed, patched in place after a write, and kept in the database between processes
(db.read.summary_copy). The counts are what the verdict rule reads (db.review.verdicts.EvidenceCounts);
tests/test_pair_state.py and tests/test_summary_copy.py check the cards and verdicts built from them
against a plain recomputation from the votes.

The study facts (design, standing) are copied in when a pair is read: a copy is only valid while
the facts it was read with are (db.corpus.study_facts.facts_signature), which db.read.summary checks.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from db.corpus.study_facts import StudyFacts
from db.review.pair_evidence import Findings, with_findings
from db.review.pair_index import PAIR_KINDS, EvidencePair
from db.review.verdicts import (
    EXCLUDING_STATUSES,
    ClaimScope,
    ClaimVerdictResult,
    DesignScope,
    EvidenceCounts,
    ExcludedStudy,
    StudyEvidence,
    Tally,
    evidence_snapshot,
    snapshot_fingerprint,
    verdict_of_counted,
)
from db.vocab import PairState, StudyDesign, StudyVerdict

_T = TypeVar("_T")
_NOT_RELEVANT = StudyVerdict.NOT_RELEVANT.value


class Entry(NamedTuple):
    """What one listed pair is, as far as the verdict rule reads it (a legend entry)."""

    state: PairState
    verdict: StudyVerdict | None  # None while in conflict
    reopened: bool
    design: StudyDesign | None  # None: no article row for the PMID (the rule skips the pair)
    retraction_status: str | None

    @property
    def role(self) -> str:
        """Where db.review.verdicts.derive_claim_verdict's first step puts such a pair: SKIPPED (no
        study), EXCLUDED (retracted, ...), UNRESOLVED, NOT_RELEVANT or RATED."""
        if self.design is None:
            return SKIPPED
        if self.retraction_status in EXCLUDING_STATUSES:
            return EXCLUDED
        if self.verdict is None:
            return UNRESOLVED
        return NOT_RELEVANT if self.verdict is StudyVerdict.NOT_RELEVANT else RATED


SKIPPED, EXCLUDED, UNRESOLVED, NOT_RELEVANT, RATED = (
    "skipped",
    "excluded",
    "unresolved",
    "not relevant",
    "rated",
)


@dataclass(eq=False)
class ClaimEvidence:
    """One claim's evidence pairs as everyone sees them (no blind mode), counted for the rule.

    `pmids` ascending, `codes[i]` the index in `legend` of pair i. `stored_at`: the audit event id
    this copy was last written to (or read from) the database at (db.read.summary_copy), else None.
    """

    claim_id: int
    pmids: array  # array("q")
    codes: array  # array("H")
    legend: list[Entry]
    screened_out: int
    findings: dict[int, Findings] = field(default_factory=dict)  # PMID -> the pair's stated evidence
    # Worked out from the pairs once and kept with them: the sealed evidence's fingerprint (see
    # `sealed`) and the open conflicts and single-vote pairs (db.read.standing.PairTally).
    fingerprint: str | None = None
    tally: tuple[int, int] | None = None
    stored_at: int | None = None
    stored_extras: tuple[bool, bool] = (False, False)  # whether the row holds the fingerprint, the tally
    counts: EvidenceCounts = field(init=False)
    progress: dict[str, int] = field(init=False)
    conflicts: int = field(init=False)
    # What is worked out from this copy once: the derived verdict per (design scope, claim scope),
    # the outlines and the excluded list as the cards show them (db.read.cards).
    verdicts: dict[Any, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts, self.progress, self.conflicts = _count(self, range(len(self.pmids)), self.screened_out)

    @property
    def listed(self) -> int:
        """How many pairs are listed (not only screened out)."""
        return len(self.pmids)

    def worked_out(self, key: Any, compute: Callable[[], _T]) -> _T:
        """`compute()` once per copy, kept under `key` among `verdicts`."""
        if key not in self.verdicts:
            self.verdicts[key] = compute()
        return self.verdicts[key]

    def visible_to(self, mine: Collection[int]) -> tuple[int, int, EvidenceCounts, dict[str, int], int]:
        """What a blinded reviewer who voted on the studies `mine` sees: (listed, screened out, counts,
        progress, conflicts). Each of their pairs is either listed or screened out
        (db.review.pair_index), so the ones not listed here are screened out."""
        positions = self._positions(mine)
        screened_out = len(mine) - len(positions)
        return len(positions), screened_out, *_count(self, positions, screened_out)

    def studies(self) -> list[StudyEvidence]:
        """The verdict rule's view of the listed pairs (db.read.pairs.study_evidence), by PMID."""
        legend, findings = self.legend, self.findings
        studies = []
        for pmid, code in zip(self.pmids, self.codes, strict=True):
            e = legend[code]
            if e.design is None:
                continue
            study = StudyEvidence(pmid, e.verdict, e.design, e.retraction_status)
            studies.append(with_findings(study, findings[pmid]) if pmid in findings else study)
        return studies

    def verdict(self, scope: DesignScope, claim: ClaimScope) -> ClaimVerdictResult:
        """db.review.verdicts.derive_claim_verdict over this copy's studies, from its counts: only the
        eligible studies are built, and nothing is sorted or counted again."""
        legend, findings = self.legend, self.findings
        roles = [entry.role for entry in legend]
        eligible, unresolved = [], []
        for pmid, code in zip(self.pmids, self.codes, strict=True):
            role = roles[code]
            if role == UNRESOLVED:
                unresolved.append(pmid)
            elif role == RATED:
                e = legend[code]
                study = StudyEvidence(pmid, e.verdict, e.design, e.retraction_status)
                eligible.append(with_findings(study, findings[pmid]) if pmid in findings else study)
        return verdict_of_counted(self.counts, eligible, tuple(unresolved), scope, claim)

    def sealed(self) -> tuple[str, Callable[[], list[dict[str, object]]]]:
        """The evidence as a sign-off seals it: its fingerprint, and a way to the snapshot itself
        (worked out only when a sign-off's evidence changed and the change is described)."""
        if self.fingerprint is None:
            self.fingerprint = snapshot_fingerprint(self.snapshot())
        return self.fingerprint, self.snapshot

    def snapshot(self) -> list[dict[str, object]]:
        return self.worked_out(_SNAPSHOT, lambda: evidence_snapshot(self.studies()))

    def patched(
        self,
        pairs: Iterable[EvidencePair],
        pmids: Collection[int],
        facts: Mapping[int, StudyFacts],
        screened_out: int,
        findings: dict[int, Findings],
    ) -> ClaimEvidence:
        """A new copy with the pairs of `pmids` replaced by `pairs` (read again after a write; a
        PMID among `pmids` without one is no longer listed); the findings of `pmids` replaced too."""
        legend = list(self.legend)
        index = {entry: i for i, entry in enumerate(legend)}
        changed = set(pmids)
        fresh = sorted((p.pmid, _code(p, facts.get(p.pmid), legend, index)) for p in pairs)
        kept = (
            (pmid, code) for pmid, code in zip(self.pmids, self.codes, strict=True) if pmid not in changed
        )
        merged = sorted([*kept, *fresh])  # two runs by PMID: timsort merges them in one pass, in C
        new_pmids = array("q", [pmid for pmid, _ in merged])
        new_codes = array("H", [code for _, code in merged])
        kept_findings = {pmid: f for pmid, f in self.findings.items() if pmid not in changed} | findings
        return ClaimEvidence(self.claim_id, new_pmids, new_codes, legend, screened_out, kept_findings)

    def _positions(self, mine: Collection[int]) -> list[int]:
        pmids, found = self.pmids, []
        for pmid in sorted(mine):
            i = bisect_left(pmids, pmid)
            if i < len(pmids) and pmids[i] == pmid:
                found.append(i)
        return found


_SNAPSHOT = "sealed snapshot"


def claim_evidence_of(
    claim_id: int,
    rows: Iterable[tuple[int, str, str | None, int]],
    facts: Mapping[int, StudyFacts],
    screened_out: int,
    findings: dict[int, Findings],
) -> ClaimEvidence:
    """A claim's copy from its listed pairs as plain rows by PMID (db.review.pair_index.PairRow:
    PMID, state, verdict, resolved once) and the studies' facts."""
    legend: list[Entry] = []
    index: dict[Entry, int] = {}
    by_row: dict[tuple[str, str | None, bool, StudyDesign | None, str | None], int] = {}
    pmids, codes = array("q"), array("H")
    for pmid, state, verdict, resolved_once in rows:
        fact = facts.get(pmid)
        design, status = (fact.design, fact.retraction_status) if fact is not None else (None, None)
        key = (state, verdict, bool(resolved_once), design, status)
        code = by_row.get(key)
        if code is None:
            kind = PAIR_KINDS[(state, verdict, bool(resolved_once))]
            code = _entry_code(Entry(*kind, design, status), legend, index)
            by_row[key] = code
        pmids.append(pmid)
        codes.append(code)
    return ClaimEvidence(claim_id, pmids, codes, legend, screened_out, findings)


def _code(pair: EvidencePair, fact: StudyFacts | None, legend: list[Entry], index: dict[Entry, int]) -> int:
    design, status = (fact.design, fact.retraction_status) if fact is not None else (None, None)
    return _entry_code(Entry(pair.state, pair.verdict, pair.reopened, design, status), legend, index)


def _entry_code(entry: Entry, legend: list[Entry], index: dict[Entry, int]) -> int:
    code = index.get(entry)
    if code is None:
        code = len(legend)
        legend.append(entry)
        index[entry] = code
    return code


def _count(
    claim: ClaimEvidence, positions: Iterable[int] | range, screened_out: int
) -> tuple[EvidenceCounts, dict[str, int], int]:
    """The rule's counts of these pairs (all of them, or the positions given), with `screened_out`
    more screened out; the pairs per verdict ("conflict" while unresolved); and the conflicts."""
    codes, legend = claim.codes, claim.legend
    per_code = Counter(codes) if isinstance(positions, range) else Counter(codes[i] for i in positions)
    rated: Tally = Counter()
    progress: Counter[str] = Counter()
    unresolved, not_relevant, conflicts = 0, screened_out, 0
    excluding: set[int] = set()
    for code, n in per_code.items():
        entry = legend[code]
        progress["conflict" if entry.verdict is None else entry.verdict.value] += n
        conflicts += n if entry.state is PairState.CONFLICT else 0
        role = entry.role
        if role == EXCLUDED:
            excluding.add(code)
        elif role == UNRESOLVED:
            unresolved += n
        elif role == NOT_RELEVANT:
            not_relevant += n
        elif role == RATED:
            rated[(entry.design, entry.verdict)] += n
    if screened_out:
        progress[_NOT_RELEVANT] += screened_out
    pmids = claim.pmids
    excluded: tuple[ExcludedStudy, ...] = ()
    if excluding:
        wanted = range(len(codes)) if isinstance(positions, range) else positions
        excluded = tuple(
            ExcludedStudy(pmids[i], EXCLUDING_STATUSES[legend[codes[i]].retraction_status])
            for i in wanted
            if codes[i] in excluding
        )
    detailed = []
    if claim.findings:
        allowed = None if isinstance(positions, range) else set(positions)
        for pmid in sorted(claim.findings):
            i = bisect_left(pmids, pmid)
            if i == len(pmids) or pmids[i] != pmid or (allowed is not None and i not in allowed):
                continue
            entry, stated = legend[codes[i]], claim.findings[pmid]
            if stated and entry.role == RATED:
                study = StudyEvidence(pmid, entry.verdict, entry.design, entry.retraction_status)
                detailed.append(with_findings(study, stated))
    counts = EvidenceCounts(rated, excluded, unresolved, not_relevant, tuple(detailed))
    return counts, dict(progress), conflicts
