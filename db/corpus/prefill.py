"""The design prefill stored with each article: the classifier's guess, or a publication notice's standing.

Needs neither SQLAlchemy nor the models (the import's worker processes run it before those load);
db.corpus.design holds the rest of the design rules and reclassifies stored articles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from db.corpus.classifier import CLASSIFIER_VERSION, DesignGuess, shipped_model
from db.corpus.notices import notice_kind, notice_target
from db.vocab import RetractionStatus, StudyDesign

PREFILL_COLUMNS = ("design", "design_confidence", "design_version", "is_notice", "notice_of")


def prefill_columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The design prefill of an article's column values (title, abstract, journal, types, MeSH, notices)."""
    return prefill_many([fields])[0]


def prefill_many(rows: Sequence[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    """prefill_columns for many articles at once: the classifier scores them in one array pass.

    A publication notice is not a study: it gets design "other" with full confidence, the link to the
    study it concerns and a standing the verdict rule excludes; the classifier is not asked.
    """
    kinds = [notice_kind(row.get("publication_types") or (), str(row.get("title") or "")) for row in rows]
    studies = [row for row, kind in zip(rows, kinds, strict=True) if kind is None]
    guesses = iter(
        shipped_model().classify_many(
            explain=False,  # the cues are worked out when a person looks (`explain_design`)
            records=[
                (
                    str(row.get("title") or ""),
                    str(row.get("abstract") or ""),
                    str(row.get("journal") or ""),
                    list(row.get("publication_types") or ()),
                    mesh_descriptors(row.get("mesh_headings") or ()),
                )
                for row in studies
            ],
        )
    )
    prefills = []
    for row, kind in zip(rows, kinds, strict=True):
        if kind is None:
            guess = next(guesses)
            prefills.append(_columns(guess, False, None))
            continue
        columns = _columns(
            DesignGuess(StudyDesign.OTHER, 1.0, (f"publication notice: {kind}",)),
            True,
            notice_target(row.get("notices") or ()),
        )
        # The verdict rule excludes a record by its standing (db.review.verdicts.EXCLUDING_STATUSES):
        # a notice is never counted as a study, whatever PubMed's types say of it.
        standing = row.get("retraction_status")
        if standing not in (RetractionStatus.RETRACTED, RetractionStatus.RETRACTION_NOTICE):
            standing = (
                RetractionStatus.RETRACTION_NOTICE if kind == "retraction notice" else RetractionStatus.NOTICE
            )
        columns["retraction_status"] = str(standing)
        prefills.append(columns)
    return prefills


def mesh_descriptors(mesh_headings: Iterable[dict[str, Any] | str]) -> list[str]:
    """Descriptor names from Article.mesh_headings (dicts) or a plain list of terms."""
    return [m if isinstance(m, str) else str(m.get("descriptor", "")) for m in mesh_headings]


def _columns(guess: DesignGuess, is_notice: bool, notice_of: int | None) -> dict[str, Any]:
    return {
        "design": guess.design.value,
        "design_confidence": guess.confidence,
        "design_version": CLASSIFIER_VERSION,
        "is_notice": is_notice,
        "notice_of": notice_of,
    }
