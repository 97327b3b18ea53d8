"""Study designs: the vocabulary, how much each weighs, and the prefill from PubMed metadata."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
    """The design PubMed's publication types (and MeSH) suggest; a reviewer confirms or corrects it.

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


def mesh_descriptors(mesh_headings: Iterable[dict[str, Any] | str]) -> list[str]:
    """Descriptor names from Article.mesh_headings (dicts) or a plain list of terms."""
    return [m if isinstance(m, str) else str(m.get("descriptor", "")) for m in mesh_headings]


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
