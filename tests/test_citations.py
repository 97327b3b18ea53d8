"""RIS and BibTeX citations of the studies behind the claims (db/exports/citations.py)."""

from __future__ import annotations

import re

from db.engine import open_session
from db.exports.citations import Citation, bibtex, bibtex_escape, bibtex_key, evidence_citations, ris
from db.vocab import StudyVerdict
from tests.dashboard_builders import vote_as, world

CITATION = Citation(
    pmid=90000002,
    title="Ketamine & suicidal ideation: a 100% {pooled}\nanalysis_of #trials",
    authors=("Müller, Anna", "Smith, J"),
    journal="J Affect Disord",
    journal_abbreviation="J Affect Disord",
    year=2023,
    pub_date="2023 Mar",
    doi="10.1000/xyz_1",
    pmcid="PMC123",
    abstract="Line one.\nLine two.",
    keywords=("ketamine", "suicide"),
    retraction_status="retracted",
    claims=("suicidal-ideation",),
)


def test_ris_has_one_tag_per_line_and_ends_each_record() -> None:
    text = ris([CITATION, CITATION])
    lines = text.splitlines()
    assert lines[0] == "TY  - JOUR"
    assert "AU  - Müller, Anna" in lines and "AU  - Smith, J" in lines
    assert "TI  - Ketamine & suicidal ideation: a 100% {pooled} analysis_of #trials" in lines
    assert "AB  - Line one. Line two." in lines  # no line break inside a value
    assert "UR  - https://pubmed.ncbi.nlm.nih.gov/90000002/" in lines
    assert "N1  - Excluded from verdicts: retracted. Evidence for claims: suicidal-ideation" in lines
    assert lines.count("ER  - ") == 2
    assert all(re.fullmatch(r"[A-Z][A-Z0-9]  - .*", line) for line in lines if line)


def test_bibtex_escapes_latex_and_keeps_the_title_case() -> None:
    entry = bibtex([CITATION])
    assert entry.startswith("@article{muller2023pmid90000002,\n")
    assert r"title = {{Ketamine \& suicidal ideation: a 100\% \{pooled\} analysis\_of \#trials}}" in entry
    assert "author = {Müller, Anna and Smith, J}" in entry
    assert r"doi = {10.1000/xyz\_1}" in entry
    assert "pmid = {90000002}" in entry
    assert entry.count("{") == entry.count("}") + 0  # braces balance (escaped ones are \{ \})


def test_bibtex_escape_and_key_edge_cases() -> None:
    assert bibtex_escape("a\\b~c^d$e") == r"a\textbackslash{}b\textasciitilde{}c\textasciicircum{}d\$e"
    anonymous = Citation(1, "T", (), "J", None, None, None, None, None, "", (), None, ())
    assert bibtex_key(anonymous) == "pmid1"
    assert "author" not in bibtex([anonymous])


def test_evidence_citations_are_the_relevant_judged_studies(sqlite_url: str) -> None:
    world(sqlite_url)
    vote_as(sqlite_url, "rita", "suicidal-ideation", 90000002, StudyVerdict.SUPPORTED)
    vote_as(sqlite_url, "rita", "rapid-onset", 90000002, StudyVerdict.MIXED)
    vote_as(sqlite_url, "rita", "rapid-onset", 90000001, StudyVerdict.NOT_RELEVANT, quote="")
    with open_session(sqlite_url) as session:
        citations = evidence_citations(session)
    assert [(c.pmid, sorted(c.claims)) for c in citations] == [
        (90000002, ["rapid-onset", "suicidal-ideation"])
    ]
    assert citations[0].authors  # from the stored PubMed authors
    assert "TY  - JOUR" in ris(citations)
