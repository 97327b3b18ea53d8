"""Study designs: the vocabulary, how much each weighs, explaining and redoing the prefill (db.corpus.prefill)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from db.clock import utcnow
from db.corpus.classifier import CLASSIFIER_VERSION, LOW_CONFIDENCE, shipped_model
from db.corpus.notices import notice_kind
from db.corpus.prefill import PREFILL_COLUMNS, mesh_descriptors, prefill_many
from db.models import Article, DesignCorrection
from db.vocab import EvidenceTier, StudyDesign

DESIGN_TIER: dict[StudyDesign, EvidenceTier] = {
    StudyDesign.META_ANALYSIS: EvidenceTier.DECISIVE,
    StudyDesign.SYSTEMATIC_REVIEW: EvidenceTier.DECISIVE,
    StudyDesign.RCT: EvidenceTier.DECISIVE,
    StudyDesign.CONTROLLED_TRIAL: EvidenceTier.SUPPORTING,
    StudyDesign.OBSERVATIONAL: EvidenceTier.SUPPORTING,
    StudyDesign.CASE_REPORT: EvidenceTier.NOT_COUNTED,
    StudyDesign.REVIEW: EvidenceTier.NOT_COUNTED,
    StudyDesign.PRECLINICAL: EvidenceTier.NOT_COUNTED,
    StudyDesign.OTHER: EvidenceTier.NOT_COUNTED,
}

# (singular, plural) as they read in a verdict's reasoning.
DESIGN_NOUNS: dict[StudyDesign, tuple[str, str]] = {
    design: (design.label, plural)
    for design, plural in {
        StudyDesign.META_ANALYSIS: "meta-analyses",
        StudyDesign.SYSTEMATIC_REVIEW: "systematic reviews",
        StudyDesign.RCT: "RCTs",
        StudyDesign.CONTROLLED_TRIAL: "non-randomised trials",
        StudyDesign.OBSERVATIONAL: "observational studies",
        StudyDesign.CASE_REPORT: "case reports or series",
        StudyDesign.REVIEW: "narrative reviews",
        StudyDesign.PRECLINICAL: "preclinical studies",
        StudyDesign.OTHER: "other publications",
    }.items()
}

_VETERINARY_TYPES = frozenset(
    {
        "Randomized Controlled Trial, Veterinary",
        "Clinical Trial, Veterinary",
        "Observational Study, Veterinary",
    }
)
_META_ANALYSIS_TYPES = frozenset({"Meta-Analysis", "Network Meta-Analysis"})
_RCT_TYPES = frozenset({"Randomized Controlled Trial"})
_TRIAL_TYPES = frozenset(
    {
        "Controlled Clinical Trial",
        "Clinical Trial",
        "Clinical Trial, Phase I",
        "Clinical Trial, Phase II",
        "Clinical Trial, Phase III",
        "Clinical Trial, Phase IV",
        "Adaptive Clinical Trial",
        "Equivalence Trial",
        "Pragmatic Clinical Trial",  # often randomised, but PubMed does not say so: the reviewer confirms
    }
)
_OBSERVATIONAL_TYPES = frozenset({"Observational Study"})
# MeSH descriptors that indexers add for observational designs (there is no "Cohort" publication type).
_OBSERVATIONAL_MESH = frozenset(
    {
        "Cohort Studies",
        "Case-Control Studies",
        "Cross-Sectional Studies",
        "Retrospective Studies",
        "Prospective Studies",
        "Longitudinal Studies",
    }
)
_REVIEW_TYPES = frozenset({"Review", "Scoping Review"})


def suggest_design(publication_types: Iterable[str], mesh_terms: Iterable[str] = ()) -> StudyDesign:
    """The design PubMed's publication types (and MeSH) alone suggest: the prefill before the classifier.

    Kept as the baseline bench/design_classifier.py compares with; records get db.corpus.prefill.

    Preclinical wins first: a "meta-analysis" of rat studies is still preclinical evidence. MeSH
    "Animals" (or "In Vitro Techniques") without "Humans" marks animal / in vitro work; a record
    without MeSH yet (recent records) is never called preclinical on that ground.
    """
    types = set(publication_types)
    mesh = set(mesh_terms)
    if types & _VETERINARY_TYPES:
        return StudyDesign.PRECLINICAL
    if mesh & {"Animals", "In Vitro Techniques"} and "Humans" not in mesh:
        return StudyDesign.PRECLINICAL
    if types & _META_ANALYSIS_TYPES:
        return StudyDesign.META_ANALYSIS
    if "Systematic Review" in types:
        return StudyDesign.SYSTEMATIC_REVIEW
    if types & _RCT_TYPES:
        return StudyDesign.RCT
    if types & _TRIAL_TYPES:
        return StudyDesign.CONTROLLED_TRIAL
    if types & _OBSERVATIONAL_TYPES or mesh & _OBSERVATIONAL_MESH:
        return StudyDesign.OBSERVATIONAL
    if "Case Reports" in types:
        return StudyDesign.CASE_REPORT
    if types & _REVIEW_TYPES:
        return StudyDesign.REVIEW
    return StudyDesign.OTHER


_ALIASES: dict[str, StudyDesign] = {
    "meta-analysis": StudyDesign.META_ANALYSIS,
    "metaanalysis": StudyDesign.META_ANALYSIS,
    "ma": StudyDesign.META_ANALYSIS,
    "systematic review": StudyDesign.SYSTEMATIC_REVIEW,
    "sr": StudyDesign.SYSTEMATIC_REVIEW,
    "randomized controlled trial": StudyDesign.RCT,
    "randomised controlled trial": StudyDesign.RCT,
    "controlled trial": StudyDesign.CONTROLLED_TRIAL,
    "clinical trial": StudyDesign.CONTROLLED_TRIAL,
    "non-randomised trial": StudyDesign.CONTROLLED_TRIAL,
    "non-randomized trial": StudyDesign.CONTROLLED_TRIAL,
    "cohort": StudyDesign.OBSERVATIONAL,
    "case-control": StudyDesign.OBSERVATIONAL,
    "cross-sectional": StudyDesign.OBSERVATIONAL,
    "case report": StudyDesign.CASE_REPORT,
    "case reports": StudyDesign.CASE_REPORT,
    "case series": StudyDesign.CASE_REPORT,
    "narrative review": StudyDesign.REVIEW,
    "animal": StudyDesign.PRECLINICAL,
    "in vitro": StudyDesign.PRECLINICAL,
}


def parse_design(text: str) -> StudyDesign:
    """A design from a spreadsheet cell: an enum value ("rct") or a common name ("case series")."""
    cleaned = " ".join(text.strip().lower().split())
    for candidate in (cleaned, cleaned.replace(" ", "_"), cleaned.replace("-", "_")):
        try:
            return StudyDesign(candidate)
        except ValueError:
            pass
    if cleaned in _ALIASES:
        return _ALIASES[cleaned]
    known = ", ".join(d.value for d in StudyDesign)
    raise ValueError(f"unknown design {text!r}; use one of {known}")


def explain_design(article: Any) -> tuple[str, ...]:
    """The cues that decided an article's prefilled design, as a reviewer reads them.

    Worked out on demand (milliseconds) rather than stored: the import stays cheap, and the cues
    are those of the classifier that made the stored prefill (see reclassify).
    """
    if article.is_notice:
        kind = notice_kind(article.publication_types or (), article.title or "")
        return (f"publication notice: {kind}",)
    guess = shipped_model().classify(
        article.title or "",
        article.abstract or "",
        article.journal or "",
        list(article.publication_types or ()),
        mesh_descriptors(article.mesh_headings or ()),
    )
    return guess.cues


def reclassify(session: Session, *, everything: bool = False, chunk: int = 1000) -> dict[str, int]:
    """Redo the design prefill of articles made by an older classifier (all of them with `everything`).

    Reviewers' designs are DesignCorrection rows, which always win over the prefill, so they are never
    touched; the counts say how many changed prefills lie under one. Does not commit.
    """
    table = Article.__table__
    corrected = set(session.scalars(select(col(DesignCorrection.pmid)).distinct()))
    counts = {"checked": 0, "changed": 0, "changed_under_correction": 0, "notices": 0, "low_confidence": 0}
    last = -1
    now = utcnow()
    columns = (
        table.c.pmid, table.c.title, table.c.abstract, table.c.journal, table.c.publication_types,
        table.c.mesh_headings, table.c.notices, table.c.retraction_status,
        *(table.c[name] for name in PREFILL_COLUMNS),
    )  # fmt: skip
    while True:
        query = select(*columns).where(table.c.pmid > last).order_by(table.c.pmid).limit(chunk)
        if not everything:
            query = query.where(table.c.design_version < CLASSIFIER_VERSION)
        rows = session.execute(query).mappings().all()
        if not rows:
            return counts
        for row, values in zip(rows, prefill_many(rows), strict=True):
            counts["checked"] += 1
            counts["notices"] += values["is_notice"]
            counts["low_confidence"] += values["design_confidence"] < LOW_CONFIDENCE
            changed = any(row[name] != values[name] for name in values)
            if values["design"] != row["design"] and row["design_version"]:
                counts["changed"] += 1
                counts["changed_under_correction"] += row["pmid"] in corrected
            if changed:
                # updated_at moves so per-process caches of study facts see the change.
                session.execute(
                    update(table).where(table.c.pmid == row["pmid"]).values(**values, updated_at=now)
                )
        last = rows[-1]["pmid"]


def prefill_summary(session: Session) -> dict[str, int]:
    """How many articles have each prefilled design (notices counted apart)."""
    table = Article.__table__
    query = select(table.c.design, func.count()).where(~table.c.is_notice).group_by(table.c.design)
    summary = {str(design): int(n) for design, n in session.execute(query)}
    summary["notice"] = int(session.scalar(select(func.count()).where(table.c.is_notice)) or 0)
    return summary
