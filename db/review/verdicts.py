"""The claim-verdict rule: resolved study verdicts, weighed by design, into one verdict with reasons."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from db.corpus.design import DESIGN_NOUNS, DESIGN_TIER
from db.vocab import ClaimVerdict, EvidenceTier, RetractionStatus, Strength, StudyDesign, StudyVerdict

# Standings that take a study out of the evidence; each is listed with the verdict, never silently dropped.
EXCLUDING_STATUSES: dict[str, str] = {
    RetractionStatus.RETRACTED: "retracted",
    RetractionStatus.EXPRESSION_OF_CONCERN: "expression of concern",
    RetractionStatus.RETRACTION_NOTICE: "a retraction notice, not a study",
    RetractionStatus.NOTICE: "a publication notice, not a study",
}
_STRENGTH_ORDER = (Strength.VERY_LOW, Strength.LOW, Strength.MODERATE, Strength.HIGH)
_START_STRENGTH = {
    EvidenceTier.DECISIVE: Strength.HIGH,
    EvidenceTier.SUPPORTING: Strength.LOW,  # GRADE: non-randomised evidence starts low
    EvidenceTier.NOT_COUNTED: Strength.VERY_LOW,
}
_VERBS = {  # (one study, several studies)
    StudyVerdict.SUPPORTED: ("supports", "support"),
    StudyVerdict.MIXED: ("mixed", "mixed"),
    StudyVerdict.UNSUPPORTED: ("does not support", "do not support"),
}


class DesignScope(StrEnum):
    """Which designs a verdict is computed from: the graded rule, or one of the sensitivity views."""

    GRADED = "graded"  # the rule itself: the strongest tier present decides
    HIGH_CERTAINTY = "high_certainty"  # only systematic reviews, meta-analyses and RCTs
    ALL_DESIGNS = "all_designs"  # every rated study counts once, whatever its design


@dataclass(frozen=True)
class StudyEvidence:
    """One study's resolved standing for one claim."""

    pmid: int
    verdict: StudyVerdict | None  # None: reviewers disagree and no editor has resolved it yet
    design: StudyDesign
    retraction_status: str | None = None


@dataclass(frozen=True)
class ExcludedStudy:
    pmid: int
    reason: str


@dataclass(frozen=True)
class ClaimVerdictResult:
    verdict: ClaimVerdict
    strength: Strength
    reasoning: str
    scope: DesignScope
    counted: tuple[StudyEvidence, ...]  # the studies that decided
    considered: tuple[StudyEvidence, ...]  # rated, eligible studies listed with a verdict (incl. counted)
    not_counted: tuple[StudyEvidence, ...]  # rated but of designs that never decide in this scope
    excluded: tuple[ExcludedStudy, ...]  # retracted, under an expression of concern, notices
    unresolved: tuple[int, ...]  # PMIDs awaiting an editor's conflict resolution
    not_relevant: int

    def counts_by_verdict(self) -> dict[StudyVerdict, int]:
        return dict(Counter(StudyVerdict(e.verdict) for e in self.considered + self.not_counted if e.verdict))

    def counts_by_design(self) -> dict[StudyDesign, int]:
        return dict(Counter(e.design for e in self.considered + self.not_counted))


def derive_claim_verdict(
    evidence: Iterable[StudyEvidence], scope: DesignScope = DesignScope.GRADED, *, screened_out: int = 0
) -> ClaimVerdictResult:
    """Derive a claim's verdict and strength from its studies, and say why in words.

    The rule, in the spirit of GRADE:

    1. Retracted studies, studies under an expression of concern and retraction notices are
       excluded and listed. Corrected studies (an erratum) still count. Studies screened as
       not relevant are left out; pairs whose reviewers disagree without an editor's resolution
       are listed as awaiting resolution and left out until resolved.
    2. Designs fall in three tiers (db.corpus.design.DESIGN_TIER). Systematic reviews, meta-analyses and
       RCTs carry the decision. Non-randomised trials and observational studies count less: they
       decide only when no study of the first tier addresses the claim. Case reports, narrative
       reviews, preclinical studies and other publications never decide; alone they give
       "insufficient evidence". (`scope` recomputes with only the first tier, or with every
       design counted alike, for the sensitivity view.)
    3. Within the deciding studies, a verdict needs two thirds of them: supported when at least
       2/3 support, unsupported when at least 2/3 do not, otherwise mixed.
    4. Strength starts high when the first tier decides, low when the second does (very low when
       the weakest counted design is of the third tier, possible only with ALL_DESIGNS), and
       drops one level each for inconsistency (the deciding studies do not all agree) and for
       imprecision (a single primary study decides; a lone systematic review or meta-analysis
       pools several and is not downgraded).

    `screened_out`: more studies screened out as not relevant, counted as if they were in
    `evidence` (a large review's screened-out studies are most of it and change nothing else).

    Pure: no database, no clock; the reasoning reads like
    "3 meta-analyses and 9 RCTs support; 2 RCTs mixed; 4 case reports or series not counted. ...".
    """
    studies = list(evidence)
    excluded, unresolved, eligible, not_relevant = [], [], [], screened_out
    rated: Tally = Counter()
    for study in sorted(studies, key=lambda s: s.pmid):
        reason = EXCLUDING_STATUSES.get(study.retraction_status or "")
        if reason is not None:
            excluded.append(ExcludedStudy(study.pmid, reason))
        elif study.verdict is None:
            unresolved.append(study.pmid)
        elif study.verdict == StudyVerdict.NOT_RELEVANT:
            not_relevant += 1
        else:
            eligible.append(study)
            rated[(StudyDesign(study.design), StudyVerdict(study.verdict))] += 1

    counts = EvidenceCounts(
        rated,
        tuple(excluded),
        len(unresolved),
        not_relevant,
    )
    outline = outline_verdict(counts, scope)
    considered = [s for s in eligible if (s.design, s.verdict) in outline.considered]
    not_counted = [s for s in eligible if (s.design, s.verdict) in outline.not_counted]
    counted = [s for s in considered if s.design in outline.counted_designs]
    return ClaimVerdictResult(
        verdict=outline.verdict,
        strength=outline.strength,
        reasoning=outline.reasoning,
        scope=scope,
        counted=tuple(counted),
        considered=tuple(considered),
        not_counted=tuple(not_counted),
        excluded=tuple(excluded),
        unresolved=tuple(unresolved),
        not_relevant=not_relevant,
    )


# (design, verdict) -> how many rated studies: all the rule reads of the studies it weighs.
Tally = Counter[tuple[StudyDesign, StudyVerdict]]


@dataclass(frozen=True)
class EvidenceCounts:
    """A claim's evidence as the rule reads it: rated studies counted by design and verdict, the
    excluded ones by PMID (they are listed), and how many await resolution or are screened out."""

    rated: Tally  # eligible studies: not excluded, resolved, relevant
    excluded: tuple[ExcludedStudy, ...]  # by PMID
    unresolved: int
    not_relevant: int


@dataclass(frozen=True)
class VerdictOutline:
    """derive_claim_verdict's decision without the studies themselves: from EvidenceCounts."""

    verdict: ClaimVerdict
    strength: Strength
    reasoning: str
    considered: Tally  # rated, eligible studies listed with a verdict (incl. counted)
    not_counted: Tally  # rated but of designs that never decide in this scope
    counted_designs: frozenset[StudyDesign]  # the designs (of `considered`) that decided


def outline_verdict(counts: EvidenceCounts, scope: DesignScope = DesignScope.GRADED) -> VerdictOutline:
    """The rule of derive_claim_verdict on counts: the same verdict, strength and reasoning.

    For pages that show many claims' verdicts: counting a large review's studies is cheap,
    building and sorting them per claim and scope is not.
    """
    rated = Counter({key: n for key, n in counts.rated.items() if n > 0})
    if scope is DesignScope.ALL_DESIGNS:
        considered, not_counted = rated, Tally()
    else:
        lowest = EvidenceTier.DECISIVE if scope is DesignScope.HIGH_CERTAINTY else EvidenceTier.SUPPORTING
        considered = Counter({key: n for key, n in rated.items() if DESIGN_TIER[key[0]] >= lowest})
        not_counted = Counter({key: n for key, n in rated.items() if DESIGN_TIER[key[0]] < lowest})
    deciding_tier = max((DESIGN_TIER[design] for design, _ in considered), default=None)
    if scope is DesignScope.ALL_DESIGNS:
        counted = considered
    else:
        counted = Counter({key: n for key, n in considered.items() if DESIGN_TIER[key[0]] == deciding_tier})

    verdict, strength, conclusion = _decide(counted, scope)
    parts = _verdict_phrases(considered)
    if not_counted:
        parts.append(f"{_design_list(not_counted)} not counted")
    if counts.excluded:
        listed = ", ".join(f"PMID {e.pmid} ({e.reason})" for e in counts.excluded)
        parts.append(f"excluded: {listed}")
    if counts.unresolved:
        parts.append(f"{_count(counts.unresolved, 'study', 'studies')} awaiting conflict resolution")
    if counts.not_relevant:
        parts.append(f"{_count(counts.not_relevant, 'study', 'studies')} screened out as not relevant")
    summary = "; ".join(parts) if parts else "No studies rated yet"
    return VerdictOutline(
        verdict=verdict,
        strength=strength,
        reasoning=f"{summary}. {conclusion}",
        considered=considered,
        not_counted=not_counted,
        counted_designs=frozenset(design for design, _ in counted),
    )


def _decide(counted: Tally, scope: DesignScope) -> tuple[ClaimVerdict, Strength, str]:
    if not counted:
        needed = {
            DesignScope.GRADED: "no systematic review, meta-analysis, trial or observational study rated",
            DesignScope.HIGH_CERTAINTY: "no systematic review, meta-analysis or RCT rated",
            DesignScope.ALL_DESIGNS: "no study rated",
        }[scope]
        return ClaimVerdict.INSUFFICIENT_EVIDENCE, Strength.VERY_LOW, f"Insufficient evidence: {needed}."
    tally: Counter[StudyVerdict] = Counter()
    for (_, study_verdict), n in counted.items():
        tally[study_verdict] += n
    n = sum(tally.values())
    supported, unsupported = tally[StudyVerdict.SUPPORTED], tally[StudyVerdict.UNSUPPORTED]
    # Two thirds, in integers: 3 * share >= 2 * n.
    if 3 * supported >= 2 * n:
        verdict = ClaimVerdict.SUPPORTED
    elif 3 * unsupported >= 2 * n:
        verdict = ClaimVerdict.UNSUPPORTED
    else:
        verdict = ClaimVerdict.MIXED

    designs = {design for design, _ in counted}
    weakest = min(DESIGN_TIER[design] for design in designs)
    level = _STRENGTH_ORDER.index(_START_STRENGTH[weakest])
    reasons = []
    if len(tally) > 1:
        level -= 1
        reasons.append("inconsistency")
    lone_primary = n == 1 and not designs & {StudyDesign.META_ANALYSIS, StudyDesign.SYSTEMATIC_REVIEW}
    if lone_primary:
        level -= 1
        reasons.append("imprecision (a single study)")
    strength = _STRENGTH_ORDER[max(level, 0)]

    # Outside ALL_DESIGNS the deciding studies are all of one tier.
    if scope is DesignScope.ALL_DESIGNS:
        basis = "all designs counted alike"
    elif DESIGN_TIER[next(iter(designs))] is EvidenceTier.DECISIVE:
        basis = "systematic reviews, meta-analyses and RCTs"
    else:
        basis = "non-randomised trials and observational studies (no SR, MA or RCT rated)"
    counts = f"{supported} of {n} support, {tally[StudyVerdict.MIXED]} mixed, {unsupported} do not"
    lowered = f"; lowered for {' and '.join(reasons)}" if reasons else ""
    name = verdict.label.capitalize()
    return (
        verdict,
        strength,
        f"{name}, {strength.label} strength, decided by {basis}: {counts}{lowered}.",
    )


def _verdict_phrases(studies: Tally) -> list[str]:
    phrases = []
    for verdict, (one, several) in _VERBS.items():
        group = Counter({design: n for (design, v), n in studies.items() if v == verdict})
        if group:
            phrases.append(f"{_design_list(group)} {one if sum(group.values()) == 1 else several}")
    return phrases


def _design_list(studies: Tally | Counter[StudyDesign]) -> str:
    counts: Counter[StudyDesign] = Counter()
    for key, n in studies.items():
        counts[key[0] if isinstance(key, tuple) else key] += n
    items = [_count(counts[design], *DESIGN_NOUNS[design]) for design in StudyDesign if counts[design]]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


@dataclass(frozen=True)
class Sensitivity:
    graded: ClaimVerdictResult
    high_certainty: ClaimVerdictResult
    all_designs: ClaimVerdictResult

    @property
    def rests_on_weak_studies(self) -> bool:
        """True when the graded verdict is not what the high-certainty designs alone say."""
        return self.graded.verdict is not self.high_certainty.verdict


def sensitivity(evidence: Iterable[StudyEvidence]) -> Sensitivity:
    """The verdict three ways, so an editor sees when it rests on weak studies."""
    studies = list(evidence)
    return Sensitivity(
        graded=derive_claim_verdict(studies, DesignScope.GRADED),
        high_certainty=derive_claim_verdict(studies, DesignScope.HIGH_CERTAINTY),
        all_designs=derive_claim_verdict(studies, DesignScope.ALL_DESIGNS),
    )


def evidence_snapshot(evidence: Iterable[StudyEvidence]) -> list[dict[str, object]]:
    """What a sign-off rests on, as sortable plain data; studies screened out are not evidence."""
    rows: list[dict[str, object]] = [
        {
            "pmid": s.pmid,
            "verdict": StudyVerdict(s.verdict).value if s.verdict is not None else "unresolved",
            "design": StudyDesign(s.design).value,
            "retraction_status": s.retraction_status,
        }
        for s in evidence
        if s.verdict != StudyVerdict.NOT_RELEVANT
    ]
    return sorted(rows, key=lambda row: int(str(row["pmid"])))


def evidence_fingerprint(evidence: Iterable[StudyEvidence]) -> str:
    """SHA-256 of the snapshot: changes when a study is tagged, re-judged, re-designed or retracted."""
    return snapshot_fingerprint(evidence_snapshot(evidence))


def snapshot_fingerprint(snapshot: list[dict[str, object]]) -> str:
    """evidence_fingerprint of an evidence_snapshot already made."""
    text = json.dumps(snapshot, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
