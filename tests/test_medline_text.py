"""Parsing PubMed/MEDLINE text (.nbib) exports: our fixture, the real recorded ones, and bad input."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ingest.medline_text import iter_medline_text
from ingest.pubmed_xml import PubmedFormatError
from tests.conftest import TEST_DATA, shared_file

NBIB = TEST_DATA / "ketamine_sample.nbib"


def test_nbib_fields_and_wrapped_lines() -> None:
    first, second = iter_medline_text(NBIB)
    assert first.pmid == 90000101
    assert first.title == (
        "Ketamine versus electroconvulsive therapy for treatment-resistant major depression: "
        "an open-label noninferiority trial."
    )
    assert first.abstract.startswith("BACKGROUND: Electroconvulsive therapy (ECT) is effective")
    assert first.abstract.endswith("CONCLUSIONS: Ketamine was noninferior to ECT.")
    assert first.journal.startswith("Neuropsychopharmacology : official publication")
    assert (first.pub_date, first.pub_year) == ("2025 Feb", 2025)
    assert first.doi == "10.1038/s41386-025-0101-1"
    assert first.pmcid == "PMC9900101"
    assert first.date_revised == date(2025, 3, 4)
    assert first.publication_types == ("Journal Article", "Randomized Controlled Trial")
    assert first.keywords == ("ketamine", "ECT")


def test_nbib_authors_with_particles_and_collective_name() -> None:
    first, _ = iter_medline_text(NBIB)
    assert [(a.last_name, a.initials) for a in first.authors[:2]] == [("Moreau", "JL"), ("de Hoon", "MJ")]
    assert first.authors[2].collective_name == "ELEKT-D Study Group"


def test_nbib_mesh_stars_mark_major_topics() -> None:
    first, _ = iter_medline_text(NBIB)
    mesh = {m.descriptor: m for m in first.mesh_headings}
    assert mesh["Ketamine"].major and mesh["Ketamine"].qualifiers == (
        ("therapeutic use", False),
        ("adverse effects", False),
    )
    assert mesh["Electroconvulsive Therapy"].major and mesh["Electroconvulsive Therapy"].qualifiers == (
        ("methods", True),
    )
    assert not mesh["Humans"].major


def test_nbib_erratum_and_retraction_links() -> None:
    first, second = iter_medline_text(NBIB)
    assert first.retraction_status == "corrected"
    assert [(n.ref_type, n.pmid) for n in first.notices] == [("ErratumIn", 90000102)]
    assert second.retraction_status == "retracted"
    assert [(n.ref_type, n.pmid) for n in second.notices] == [("RetractionIn", 90000104)]
    assert [(a.last_name, a.initials) for a in second.authors] == [("Ortiz", "R")]


def test_real_medline_exports_parse_whole() -> None:
    records = list(
        iter_medline_text(shared_file("pubmed", "format", "biopython-medline", "pubmed_result2.txt"))
    )
    assert [r.pmid for r in records] == [16403221, 16377612, 14871861, 14630660]
    assert records[0].abstract.endswith("use in structural genomics easier and more principled.")
    assert records[0].pmcid == "PMC1373603"
    assert records[2].authors[0].last_name == "de Hoon"


def test_real_efetch_medline_text_starting_with_a_blank_line() -> None:
    (record,) = iter_medline_text(shared_file("pubmed", "format", "biopython-entrez", "efetch2_medline.txt"))
    assert record.pmid == 19304878
    assert record.title.startswith("Biopython: freely available Python tools")


def test_text_that_is_not_medline_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("\n\nThese are my notes about ketamine.\n")
    with pytest.raises(PubmedFormatError, match=r"notes\.txt: line 3: expected a 'PMID- ' line"):
        list(iter_medline_text(bad))


def test_damaged_line_inside_an_entry_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "damaged.nbib"
    bad.write_text("PMID- 1\nTI  - A title\n<<binary junk>>\n")
    with pytest.raises(PubmedFormatError, match=r"damaged\.nbib: line 3: .*neither a 'TAG - value' line"):
        list(iter_medline_text(bad))


def test_non_numeric_pmid_names_the_entry_line(tmp_path: Path) -> None:
    bad = tmp_path / "pmid.nbib"
    bad.write_text("PMID- 1\nTI  - fine\n\nPMID- 12x\nTI  - broken\n")
    with pytest.raises(PubmedFormatError, match=r"pmid\.nbib: line 4: PMID '12x' is not a number"):
        list(iter_medline_text(bad))
