"""The claim-verdict rule, in GRADE's terms: each claim's studies, weighed by design and by
participants, into a verdict, a certainty and the named reasons it was rated down.

Pure: no database, no clock. The rule in words is `derive_claim_verdict`'s docstring; README
"How a verdict is derived" says the same for editors.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from operator import attrgetter
from typing import Any

from db.corpus.design import DESIGN_NOUNS, DESIGN_TIER
from db.models.review import STATED_FINDINGS
from db.vocab import (
    DESIGN_BY_VALUE,
    VERDICT_BY_VALUE,
    ClaimVerdict,
    Directness,
    DowngradeDomain,
    EvidenceTier,
    RetractionStatus,
    RiskOfBias,
    Strength,
    StudyDesign,
    StudyVerdict,
)

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

# GRADE's optimal information size (handbook 5.2.6.2): a body of evidence smaller than one adequately
# powered trial is imprecise. Depression outcomes are continuous scales (MADRS, HAM-D), for which
# the handbook's rule of thumb is 400 participants; under 100 we rate down twice.
OPTIMAL_INFORMATION_SIZE = 400
VERY_IMPRECISE_BELOW = 100
# Shares of the deciding studies' weight that rate down (see derive_claim_verdict).
SERIOUS_RISK_OF_BIAS = 0.5  # high risk (some concerns count half) carries more than half the weight
VERY_SERIOUS_RISK_OF_BIAS = 0.75  # studies at high risk carry three quarters of it: twice
SERIOUS_INCONSISTENCY = 0.2  # studies against the verdict's direction carry a fifth of the weight
SERIOUS_INDIRECTNESS = 0.5  # indirect studies carry half of the weight


class DesignScope(StrEnum):
    """Which designs a verdict is computed from: the graded rule, or one of the sensitivity views."""

    GRADED = "graded"  # the rule itself: the strongest tier with a direct study decides
    HIGH_CERTAINTY = "high_certainty"  # only systematic reviews, meta-analyses and RCTs
    ALL_DESIGNS = "all_designs"  # every rated study counts, whatever its design


@dataclass(frozen=True)
class ClaimScope:
    """What the rule reads of the claim itself: its time frame in days, and the populations and
    interventions (db.vocab codes) it is about. An empty scope makes every study direct."""

    follow_up_min_days: float | None = None
    follow_up_max_days: float | None = None
    populations: frozenset[str] = frozenset()
    interventions: frozenset[str] = frozenset()

    @classmethod
    def of(cls, claim: Any) -> ClaimScope:
        """The scope of a db.models.Claim (or anything with its four fields)."""
        return cls(
            claim.follow_up_min_days,
            claim.follow_up_max_days,
            frozenset(claim.populations or ()),
            frozenset(claim.interventions or ()),
        )

    def time_frame(self) -> str | None:
        """The time frame in words: "at least 28 days", "up to 7 days", "1 to 7 days"."""
        low, high = self.follow_up_min_days, self.follow_up_max_days
        if low is not None and high is not None:
            return f"{days_text(low)} to {days_text(high)}"
        if low is not None:
            return f"at least {days_text(low)}"
        if high is not None:
            return f"up to {days_text(high)}"
        return None


def days_text(days: float) -> str:
    """A follow-up for people: 0.0833 -> "2 hours", 1 -> "1 day", 84 -> "12 weeks", 182.64 ->
    "6 months", 730.5 -> "2 years" (months and years as db.review.evidence_fields counts them)."""
    if days < 1:
        return _plural(round(days * 24), "hour")
    if days >= 365 and _whole(days / 365.25):
        return _plural(round(days / 365.25), "year")
    if days >= 60 and _whole(days / 30.44, 0.05):
        return _plural(round(days / 30.44), "month")
    if days >= 14 and days % 7 == 0:
        return _plural(int(days // 7), "week")
    return _plural(round(days), "day")


def _whole(value: float, tolerance: float = 0.02) -> bool:
    return abs(value - round(value)) <= tolerance


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}{'s' if n != 1 else ''}"


# The evidence fields the rule reads of a study (db.review.evidence_fields, merged per pair), as the
# assessment's columns are named: one list, which a partial index on them says too.
FINDING_FIELDS = STATED_FINDINGS


@dataclass(frozen=True)
class StudyEvidence:
    """One study's resolved standing for one claim, and what its reviewers recorded of its evidence."""

    pmid: int
    verdict: StudyVerdict | None  # None: reviewers disagree and no editor has resolved it yet
    design: StudyDesign
    retraction_status: str | None = None
    # db.review.evidence_fields, merged over the pair's votes (None: not stated).
    participants: int | None = None
    follow_up_days: float | None = None
    population: str | None = None
    intervention: str | None = None
    directness: str | None = None
    indirect_reason: str | None = None
    risk_of_bias: str | None = None

    @property
    def has_findings(self) -> bool:
        """Whether any evidence field is stated: a study without them weighs as an unknown."""
        return _FINDINGS_OF(self).count(None) < len(FINDING_FIELDS)


_FINDINGS_OF = attrgetter(*FINDING_FIELDS)  # a study's evidence fields as one tuple, read at C speed


def indirectness(study: StudyEvidence, claim: ClaimScope) -> str | None:
    """Why `study` is indirect evidence for the claim, or None when it is direct (as far as known).

    Indirect when its reviewers said so, when it supports the claim (or is mixed) with an outcome
    measured outside the claim's time frame (a 24-hour result cannot show "long-lasting"), or when
    its population or intervention is not one the claim is about. A study that found the effect
    gone, or not yet there, within its follow-up ("unsupported") is direct evidence against the
    claim whatever its time point. Unknown values never make a study indirect.
    """
    reasons = []
    if study.directness == Directness.INDIRECT:
        reasons.append(study.indirect_reason or "judged indirect by its reviewers")
    days = study.follow_up_days if study.verdict != StudyVerdict.UNSUPPORTED else None
    if days is not None and claim.follow_up_min_days is not None and days < claim.follow_up_min_days:
        reasons.append(
            f"follow-up {days_text(days)}, shorter than the claim's time frame ({claim.time_frame()})"
        )
    if days is not None and claim.follow_up_max_days is not None and days > claim.follow_up_max_days:
        reasons.append(f"follow-up {days_text(days)}, beyond the claim's time frame ({claim.time_frame()})")
    if study.population and claim.populations and study.population not in claim.populations:
        reasons.append(f"population {study.population}, not the claim's")
    if study.intervention and claim.interventions and study.intervention not in claim.interventions | _VAGUE:
        reasons.append(f"intervention {study.intervention}, not the claim's")
    return "; ".join(reasons) or None


_VAGUE = frozenset({"mixed", "unclear"})


def partly_indirect(study: StudyEvidence, claim: ClaimScope) -> str | None:
    """Why a direct study is only partly the claim's question, or None: a mixed population where
    the claim names its populations, or a mixed or unclear intervention where it names its
    interventions (a review pooling several routes for an intravenous claim)."""
    if study.population == "mixed" and claim.populations and "mixed" not in claim.populations:
        return "a mixed population"
    if study.intervention in _VAGUE and claim.interventions:
        return f"intervention {study.intervention}"
    return None


@dataclass(frozen=True)
class ExcludedStudy:
    pmid: int
    reason: str


@dataclass(frozen=True)
class Downgrade:
    """One of GRADE's reasons the certainty was rated down, and by how many levels."""

    domain: DowngradeDomain
    reason: str
    levels: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"domain": self.domain.value, "reason": self.reason, "levels": self.levels}


@dataclass(frozen=True)
class ClaimVerdictResult:
    verdict: ClaimVerdict
    strength: Strength  # the certainty of the evidence, GRADE's four levels
    reasoning: str
    scope: DesignScope
    counted: tuple[StudyEvidence, ...]  # the studies that decided
    considered: tuple[StudyEvidence, ...]  # rated, eligible studies listed with a verdict (incl. counted)
    not_counted: tuple[StudyEvidence, ...]  # rated but of designs that never decide in this scope
    excluded: tuple[ExcludedStudy, ...]  # retracted, under an expression of concern, notices
    unresolved: tuple[int, ...]  # PMIDs awaiting an editor's conflict resolution
    not_relevant: int
    downgrades: tuple[Downgrade, ...] = ()
    participants: int = 0  # stated participants of the deciding studies
    follow_up_days: tuple[float, float] | None = None  # their shortest and longest follow-up
    indirect: dict[int, str] = field(default_factory=dict)  # PMID -> why it is indirect

    @property
    def certainty(self) -> Strength:
        return self.strength

    def counts_by_verdict(self) -> dict[StudyVerdict, int]:
        return dict(Counter(StudyVerdict(e.verdict) for e in self.considered + self.not_counted if e.verdict))

    def counts_by_design(self) -> dict[StudyDesign, int]:
        return dict(Counter(e.design for e in self.considered + self.not_counted))


def derive_claim_verdict(
    evidence: Iterable[StudyEvidence],
    scope: DesignScope = DesignScope.GRADED,
    *,
    screened_out: int = 0,
    claim: ClaimScope | None = None,
) -> ClaimVerdictResult:
    """Derive a claim's verdict and the certainty of its evidence, and say why in words.

    The rule, written from the GRADE handbook (chapter 5, "Quality of evidence"):

    1. Which studies. Retracted studies, studies under an expression of concern and publication
       notices are excluded and listed. Pairs whose reviewers disagree without an editor's
       resolution await resolution and are left out; studies screened as not relevant too.
    2. Which decide. Designs fall in three tiers (db.corpus.design.DESIGN_TIER): systematic reviews,
       meta-analyses and RCTs; then non-randomised trials and observational studies; then case
       reports, narrative reviews, preclinical studies and other publications, which never decide.
       The direct studies of the strongest tier that holds a direct study with participants decide
       (`indirectness`: another population, intervention or time frame than the claim's; a
       review that pools no participants has none). Indirect studies are listed, never weighed.
       No such study: "insufficient evidence", whatever the rest say.
    3. The verdict. The deciding studies weigh by participants (a study that states none weighs
       the mean of those that do; when none does, each weighs one). Supported when studies that
       support carry two thirds of the weight, unsupported when studies that do not support carry
       two thirds (tested, and contradicted), otherwise mixed.
    4. The certainty starts high when randomised evidence decides and low when non-randomised
       does (very low when a never-deciding design is counted, in the all-designs view), then is
       rated down, each with its reason:
       - risk of bias: studies at high risk (some concerns count half) carry more than half the
         weight: once; studies at high risk carry three quarters: twice (a body wholly of "some
         concerns" is not rated down: that is most trials' standing);
       - inconsistency: the verdict is mixed, or studies against its direction carry a fifth of
         the weight;
       - indirectness: studies only partly about the claim (`partly_indirect`) carry half of the
         weight;
       - imprecision: fewer than OPTIMAL_INFORMATION_SIZE (400) participants in the deciding
         studies: once; fewer than 100: twice (once while a deciding study states none: it may
         hold many); none stated at all: once, as precision cannot be judged.
       Publication bias is left to the editor: a funnel plot needs more than abstracts.
       High, moderate, low, very low; never below very low.

    `scope`: the graded rule, or a sensitivity view (randomised evidence only; every design alike).
    `screened_out`: more studies screened out as not relevant, counted as if in `evidence`.
    `claim`: the claim's time frame, populations and interventions (none: every study is direct).
    """
    claim = claim or ClaimScope()
    studies = sorted(evidence, key=lambda s: s.pmid)
    excluded, unresolved, eligible, not_relevant = [], [], [], screened_out
    rated: Tally = Counter()
    for study in studies:
        reason = EXCLUDING_STATUSES.get(study.retraction_status or "")
        if reason is not None:
            excluded.append(ExcludedStudy(study.pmid, reason))
        elif study.verdict is None:
            unresolved.append(study.pmid)
        elif study.verdict == StudyVerdict.NOT_RELEVANT:
            not_relevant += 1
        else:
            eligible.append(study)
            rated[(DESIGN_BY_VALUE[study.design], VERDICT_BY_VALUE[study.verdict])] += 1

    detailed = tuple(s for s in eligible if s.has_findings)
    counts = EvidenceCounts(rated, tuple(excluded), len(unresolved), not_relevant, detailed)
    return verdict_of_counted(counts, eligible, tuple(unresolved), scope, claim)


def verdict_of_counted(
    counts: EvidenceCounts,
    eligible: list[StudyEvidence],
    unresolved: tuple[int, ...],
    scope: DesignScope = DesignScope.GRADED,
    claim: ClaimScope | None = None,
) -> ClaimVerdictResult:
    """derive_claim_verdict from evidence already sorted into `counts` (step 1 of its rule), with the
    eligible studies themselves by PMID and the PMIDs awaiting resolution: for a caller that keeps
    its evidence counted (db.read.claim_evidence), so that the studies are not sorted again."""
    claim = claim or ClaimScope()
    detailed = counts.detailed
    outline = outline_verdict(counts, scope, claim)
    considered = [s for s in eligible if (s.design, s.verdict) in outline.considered]
    not_counted = [s for s in eligible if (s.design, s.verdict) in outline.not_counted]
    # Only a study that states evidence fields can be indirect (`indirectness` reads nothing else).
    indirect = {s.pmid: why for s in detailed if (why := indirectness(s, claim)) is not None}
    counted = [s for s in considered if s.design in outline.counted_designs and s.pmid not in indirect]
    return ClaimVerdictResult(
        verdict=outline.verdict,
        strength=outline.strength,
        reasoning=outline.reasoning,
        scope=scope,
        counted=tuple(counted),
        considered=tuple(considered),
        not_counted=tuple(not_counted),
        excluded=counts.excluded,
        unresolved=unresolved,
        not_relevant=counts.not_relevant,
        downgrades=outline.downgrades,
        participants=outline.participants,
        follow_up_days=outline.follow_up_days,
        indirect=indirect,
    )


# (design, verdict) -> how many rated studies: all the rule reads of the studies it weighs.
Tally = Counter[tuple[StudyDesign, StudyVerdict]]


@dataclass(frozen=True)
class EvidenceCounts:
    """A claim's evidence as the rule reads it: rated studies counted by design and verdict, those
    of them with stated evidence fields listed (`detailed`), the excluded ones by PMID, and how many
    await resolution or are screened out. A large review's studies are mostly counted, not listed."""

    rated: Tally  # eligible studies: not excluded, resolved, relevant
    excluded: tuple[ExcludedStudy, ...]  # by PMID
    unresolved: int
    not_relevant: int
    detailed: tuple[StudyEvidence, ...] = ()  # the rated studies with any evidence field stated


@dataclass(frozen=True)
class VerdictOutline:
    """derive_claim_verdict's decision without the studies themselves: from EvidenceCounts."""

    verdict: ClaimVerdict
    strength: Strength
    reasoning: str
    considered: Tally  # rated, eligible studies listed with a verdict (incl. counted)
    not_counted: Tally  # rated but of designs that never decide in this scope
    counted_designs: frozenset[StudyDesign]  # the designs (of `considered`) that decided
    downgrades: tuple[Downgrade, ...] = ()
    participants: int = 0
    follow_up_days: tuple[float, float] | None = None


@dataclass(frozen=True)
class _Group:
    """Studies alike for the rule: one study with its findings, or many without any."""

    design: StudyDesign
    verdict: StudyVerdict
    studies: int
    participants: int | None  # each study's; None: not stated
    indirect: str | None  # why indirect, or None
    partial: str | None  # why only partly direct (db.review.verdicts.partly_indirect), or None
    risk_of_bias: str | None
    follow_up_days: float | None


def _groups(counts: EvidenceCounts, claim: ClaimScope) -> list[_Group]:
    groups = []
    listed: Counter[tuple[StudyDesign, StudyVerdict]] = Counter()
    for study in counts.detailed:
        assert study.verdict is not None
        key = (StudyDesign(study.design), StudyVerdict(study.verdict))
        listed[key] += 1
        groups.append(
            _Group(
                *key,
                1,
                study.participants,
                indirectness(study, claim),
                partly_indirect(study, claim),
                study.risk_of_bias,
                study.follow_up_days,
            )
        )
    for (design, verdict), n in counts.rated.items():
        if n - listed[(design, verdict)] > 0:
            groups.append(
                _Group(design, verdict, n - listed[(design, verdict)], None, None, None, None, None)
            )
    return groups


def outline_verdict(
    counts: EvidenceCounts, scope: DesignScope = DesignScope.GRADED, claim: ClaimScope | None = None
) -> VerdictOutline:
    """The rule of derive_claim_verdict on counts: the same verdict, certainty and reasoning.

    For pages that show many claims' verdicts: counting a large review's studies is cheap,
    building and sorting them per claim and scope is not.
    """
    claim = claim or ClaimScope()
    rated = Counter({key: n for key, n in counts.rated.items() if n > 0})
    if scope is DesignScope.ALL_DESIGNS:
        considered, not_counted = rated, Tally()
    else:
        lowest = EvidenceTier.DECISIVE if scope is DesignScope.HIGH_CERTAINTY else EvidenceTier.SUPPORTING
        considered = Counter({key: n for key, n in rated.items() if DESIGN_TIER[key[0]] >= lowest})
        not_counted = Counter({key: n for key, n in rated.items() if DESIGN_TIER[key[0]] < lowest})
    groups = [g for g in _groups(counts, claim) if (g.design, g.verdict) in considered]
    deciding = _deciding_groups(groups, scope)
    decision = _decide(deciding, groups, scope, claim)

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
        verdict=decision.verdict,
        strength=decision.strength,
        reasoning=f"{summary}. {decision.conclusion}",
        considered=considered,
        not_counted=not_counted,
        counted_designs=frozenset(g.design for g in deciding),
        downgrades=decision.downgrades,
        participants=decision.participants,
        follow_up_days=decision.follow_up_days,
    )


def _weighs(group: _Group) -> bool:
    """Whether a group can decide: direct, and not a review that pools no participants."""
    return group.indirect is None and group.participants != 0


def _deciding_groups(groups: list[_Group], scope: DesignScope) -> list[_Group]:
    """The body of evidence that decides: the direct studies of the strongest tier holding one (in
    the all-designs view, every direct study). Indirect studies are listed, never weighed: their
    participants would carry a verdict on a question they did not ask."""
    weighable = [g for g in groups if g.indirect is None]
    if not any(_weighs(g) for g in weighable):
        return []
    if scope is DesignScope.ALL_DESIGNS:
        return weighable
    tier = max(DESIGN_TIER[g.design] for g in weighable if _weighs(g))
    return [g for g in weighable if DESIGN_TIER[g.design] == tier]


@dataclass(frozen=True)
class _Decision:
    verdict: ClaimVerdict
    strength: Strength
    conclusion: str
    downgrades: tuple[Downgrade, ...] = ()
    participants: int = 0
    follow_up_days: tuple[float, float] | None = None


def _decide(
    deciding: list[_Group], considered: list[_Group], scope: DesignScope, claim: ClaimScope
) -> _Decision:
    if not deciding:
        return _Decision(
            ClaimVerdict.INSUFFICIENT_EVIDENCE, Strength.VERY_LOW, _why_insufficient(considered, scope, claim)
        )
    stated = [g.participants for g in deciding if g.participants]
    mean = sum(stated) / len(stated) if stated else 1.0
    weights = [g.studies * (g.participants if g.participants is not None else mean) for g in deciding]
    total = sum(weights) or 1.0
    share = dict.fromkeys(StudyVerdict, 0.0)
    heads: Counter[StudyVerdict] = Counter()
    for group, weight in zip(deciding, weights, strict=True):
        share[group.verdict] += weight / total
        heads[group.verdict] += group.studies
    n = sum(heads.values())
    if share[StudyVerdict.SUPPORTED] >= 2 / 3 - 1e-9:
        verdict = ClaimVerdict.SUPPORTED
    elif share[StudyVerdict.UNSUPPORTED] >= 2 / 3 - 1e-9:
        verdict = ClaimVerdict.UNSUPPORTED
    else:
        verdict = ClaimVerdict.MIXED

    participants = sum(g.studies * g.participants for g in deciding if g.participants is not None)
    unstated = sum(g.studies for g in deciding if g.participants is None)
    downgrades = _downgrades(deciding, weights, total, share, verdict, participants, unstated, n)
    start = _START_STRENGTH[min(DESIGN_TIER[g.design] for g in deciding)]
    level = _STRENGTH_ORDER.index(start) - sum(d.levels for d in downgrades)
    strength = _STRENGTH_ORDER[max(level, 0)]

    follow_ups = [g.follow_up_days for g in deciding if g.follow_up_days is not None]
    span = (min(follow_ups), max(follow_ups)) if follow_ups else None
    if scope is DesignScope.ALL_DESIGNS:
        basis = "all designs counted alike"
    elif DESIGN_TIER[deciding[0].design] is EvidenceTier.DECISIVE:
        basis = "systematic reviews, meta-analyses and RCTs"
    else:
        basis = "non-randomised trials and observational studies (no direct SR, MA or RCT rated)"
    tally = (
        f"{heads[StudyVerdict.SUPPORTED]} of {n} support, {heads[StudyVerdict.MIXED]} mixed, "
        f"{heads[StudyVerdict.UNSUPPORTED]} do not"
    )
    if stated:
        tally += (
            f"; weighed by participants, {round(100 * share[StudyVerdict.SUPPORTED])}% of the weight supports"
        )
    facts = [f"{participants:,} participants stated" if stated or participants else "no participants stated"]
    if span is not None:
        facts.append(f"follow-up {_span_text(span)}")
    if claim.time_frame():
        facts.append(f"the claim's time frame: {claim.time_frame()}")
    lowered = (
        " Rated down for " + "; ".join(f"{d.domain.label}: {d.reason}" for d in downgrades) + "."
        if downgrades
        else ""
    )
    aside = [g for g in considered if g.indirect is not None]
    if aside:
        reasons = sorted({g.indirect for g in aside if g.indirect})
        more = f" and {len(reasons) - 2} more" if len(reasons) > 2 else ""
        n_aside = sum(g.studies for g in aside)
        lowered += f" Not weighed, as indirect: {_count(n_aside, 'study', 'studies')} ({'; '.join(reasons[:2])}{more})."
    conclusion = (
        f"{verdict.label.capitalize()}, {strength.label} certainty, decided by {basis}: {tally} "
        f"({', '.join(facts)}).{lowered}"
    )
    return _Decision(verdict, strength, conclusion, tuple(downgrades), participants, span)


def _downgrades(
    deciding: list[_Group],
    weights: list[float],
    total: float,
    share: dict[StudyVerdict, float],
    verdict: ClaimVerdict,
    participants: int,
    unstated: int,
    n: int,
) -> list[Downgrade]:
    found = []
    high = sum(w for g, w in zip(deciding, weights, strict=True) if g.risk_of_bias == RiskOfBias.HIGH) / total
    some = (
        sum(w for g, w in zip(deciding, weights, strict=True) if g.risk_of_bias == RiskOfBias.SOME_CONCERNS)
        / total
    )
    if high >= VERY_SERIOUS_RISK_OF_BIAS:
        found.append(
            Downgrade(
                DowngradeDomain.RISK_OF_BIAS,
                f"studies at high risk of bias carry {_pct(high)} of the weight (rated down twice)",
                2,
            )
        )
    elif high + some / 2 > SERIOUS_RISK_OF_BIAS:
        parts = [
            f"{_pct(share)} {who}"
            for share, who in ((high, "at high risk"), (some, "with some concerns"))
            if share
        ]
        found.append(
            Downgrade(
                DowngradeDomain.RISK_OF_BIAS,
                f"studies {' and '.join(parts)} carry the weight (some concerns count half: more than half in all)",
            )
        )

    if verdict is ClaimVerdict.MIXED and len([v for v in share if share[v] > 0]) > 1:
        found.append(Downgrade(DowngradeDomain.INCONSISTENCY, "the deciding studies point different ways"))
    elif verdict is not ClaimVerdict.MIXED:
        own = StudyVerdict.SUPPORTED if verdict is ClaimVerdict.SUPPORTED else StudyVerdict.UNSUPPORTED
        against = 1 - share[own]
        if against >= SERIOUS_INCONSISTENCY:
            found.append(
                Downgrade(
                    DowngradeDomain.INCONSISTENCY, f"studies carrying {_pct(against)} of the weight disagree"
                )
            )

    partial = [(g, w) for g, w in zip(deciding, weights, strict=True) if g.partial is not None]
    partial_share = sum(w for _, w in partial) / total
    if partial and partial_share >= SERIOUS_INDIRECTNESS:
        reasons = sorted({g.partial for g, _ in partial if g.partial})
        found.append(
            Downgrade(
                DowngradeDomain.INDIRECTNESS,
                f"studies only partly about the claim ({'; '.join(reasons)}) carry {_pct(partial_share)} "
                "of the weight",
            )
        )

    if participants == 0 and unstated == n:
        found.append(
            Downgrade(
                DowngradeDomain.IMPRECISION,
                "no deciding study states its participants: precision cannot be judged",
            )
        )
    elif participants < OPTIMAL_INFORMATION_SIZE:
        # A study that states no participants may hold many: rated down once at most then.
        levels = 2 if participants < VERY_IMPRECISE_BELOW and not unstated else 1
        missing = f"; {_count(unstated, 'study states', 'studies state')} none" if unstated else ""
        twice = " (rated down twice)" if levels == 2 else ""
        found.append(
            Downgrade(
                DowngradeDomain.IMPRECISION,
                f"{participants:,} participants, under the optimal information size of "
                f"{OPTIMAL_INFORMATION_SIZE}{missing}{twice}",
                levels,
            )
        )
    return found


def _why_insufficient(considered: list[_Group], scope: DesignScope, claim: ClaimScope) -> str:
    if not considered:
        needed = {
            DesignScope.GRADED: "no systematic review, meta-analysis, trial or observational study rated",
            DesignScope.HIGH_CERTAINTY: "no systematic review, meta-analysis or RCT rated",
            DesignScope.ALL_DESIGNS: "no study rated",
        }[scope]
        return f"Insufficient evidence: {needed}."
    reasons = sorted({g.indirect for g in considered if g.indirect})
    pooled_none = sum(g.studies for g in considered if g.indirect is None and g.participants == 0)
    why = []
    if reasons:
        why.append(f"indirect: {'; '.join(reasons[:3])}{' and more' if len(reasons) > 3 else ''}")
    if pooled_none:
        why.append(f"{_count(pooled_none, 'review pools', 'reviews pool')} no participants")
    frame = f" The claim's time frame: {claim.time_frame()}." if claim.time_frame() else ""
    return (
        f"Insufficient evidence: no direct study with participants tests the claim ({'; '.join(why)}).{frame}"
    )


def _span_text(span: tuple[float, float]) -> str:
    low, high = span
    return days_text(low) if low == high else f"{days_text(low)} to {days_text(high)}"


def _pct(share: float) -> str:
    return f"{round(100 * share)}%"


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


def sensitivity(evidence: Iterable[StudyEvidence], claim: ClaimScope | None = None) -> Sensitivity:
    """The verdict three ways, so an editor sees when it rests on weak studies."""
    studies = list(evidence)
    return Sensitivity(
        graded=derive_claim_verdict(studies, DesignScope.GRADED, claim=claim),
        high_certainty=derive_claim_verdict(studies, DesignScope.HIGH_CERTAINTY, claim=claim),
        all_designs=derive_claim_verdict(studies, DesignScope.ALL_DESIGNS, claim=claim),
    )


def evidence_snapshot(evidence: Iterable[StudyEvidence]) -> list[dict[str, object]]:
    """What a sign-off rests on, as sortable plain data; studies screened out are not evidence."""
    rows: list[dict[str, object]] = [
        {
            "pmid": s.pmid,
            "verdict": StudyVerdict(s.verdict).value if s.verdict is not None else "unresolved",
            "design": StudyDesign(s.design).value,
            "retraction_status": s.retraction_status,
            # The evidence fields the rule reads, where stated (a sign-off made before they were
            # recorded keeps its fingerprint).
            **{name: getattr(s, name) for name in FINDING_FIELDS if getattr(s, name) is not None},
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
