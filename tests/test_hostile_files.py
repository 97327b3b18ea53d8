"""Broken or hostile PubMed files: each ends in one line naming the problem, and nothing is stored.

A PMID out of range, a Latin-1 MEDLINE file, a record that never ends (a decompression bomb); and
MEDLINE text as PubMed Central writes it, which is not broken and must import.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import ingest.pubmed_blocks as pubmed_blocks
import ingest.pubmed_xml as pubmed_xml
from ingest.importer import iter_file_records
from ingest.medline_text import iter_medline_text
from ingest.pubmed_xml import PubmedFormatError, iter_pubmed_xml
from ingest.records import MAX_PMID, PubmedRecord

ARTICLE = (
    "<PubmedArticle><MedlineCitation Status='MEDLINE' Owner='NLM'><PMID Version='1'>{pmid}</PMID>"
    "<Article><Journal><Title>J</Title></Journal><ArticleTitle>Ketamine.</ArticleTitle></Article>"
    "</MedlineCitation></PubmedArticle>"
)


def article_set(*pmids: str) -> bytes:
    body = "".join(ARTICLE.format(pmid=pmid) for pmid in pmids)
    return f'<?xml version="1.0"?>\n<PubmedArticleSet>{body}</PubmedArticleSet>\n'.encode()


@pytest.mark.parametrize(
    ("pmid", "reason"),
    [
        ("0", "out of range"),
        (str(2**63 + 5), "out of range"),  # past SQLite's signed 64 bits: a raw OverflowError before
        ("9" * 70, "out of range"),
        ("-12", "not a number"),
        ("١٢٣", "not a number"),  # Arabic-Indic digits: str.isdigit() says yes, int() reads them
    ],
)
def test_a_pmid_out_of_range_is_damage_named_in_one_line(tmp_path: Path, pmid: str, reason: str) -> None:
    path = tmp_path / "odd.xml"
    path.write_bytes(article_set("31000001", pmid))

    with pytest.raises(PubmedFormatError, match=rf"odd\.xml: PMID .* {reason}"):
        list(iter_pubmed_xml(path))


def test_the_highest_pmid_allowed_is_read() -> None:
    [record] = pubmed_xml.parse_efetch_response(article_set(str(MAX_PMID)))
    assert isinstance(record, PubmedRecord) and record.pmid == MAX_PMID


def test_a_record_that_never_ends_is_refused_before_memory_runs_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A few kilobytes of gzip that unpack to megabytes of one unclosed record (a bomb, scaled down).
    monkeypatch.setattr(pubmed_blocks, "MAX_RECORD_BYTES", 1024 * 1024)
    path = tmp_path / "bomb.xml.gz"
    path.write_bytes(gzip.compress(b"<PubmedArticleSet><PubmedArticle>" + b"a" * (8 * 1024 * 1024)))

    with pytest.raises(
        PubmedFormatError, match=r"bomb\.xml\.gz: line 1: a record runs past 1 MB without ending"
    ):
        list(iter_file_records(path))


PMC_MEDLINE = """PMC - PMC6543210
PMID- 31000001
OWN - NLM
TI  - Ketamine for treatment-resistant depression: a trial.
AB  -
FAU - Doe, Jane
AU  - Doe J
DP  - 2019 May
JT  - Journal of Tests
PT  - Journal Article

PMC - PMC6543211
PMID- 31000002
TI  - Esketamine nasal spray: a second record.
AB  - {blank}
DP  - 2020
""".format(blank="")  # PMC writes an empty abstract as "AB  - ", trailing space kept


def test_medline_text_from_pmc_is_imported(tmp_path: Path) -> None:
    path = tmp_path / "pmc.txt"
    path.write_text(PMC_MEDLINE, encoding="utf-8")

    records = [r for r in iter_file_records(path) if isinstance(r, PubmedRecord)]

    assert [(r.pmid, r.pmcid, r.abstract) for r in records] == [
        (31000001, "PMC6543210", ""),
        (31000002, "PMC6543211", ""),
    ]


def test_a_pmc_record_without_a_pmid_is_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "pmc.txt"
    path.write_text(PMC_MEDLINE.replace("PMID- 31000002\n", ""), encoding="utf-8")

    with pytest.raises(PubmedFormatError, match=r"pmc\.txt: line 12: the record has no 'PMID- ' line"):
        list(iter_medline_text(path))


def test_a_latin1_medline_file_is_named_with_the_fix_not_mangled(tmp_path: Path) -> None:
    path = tmp_path / "latin1.nbib"
    path.write_bytes("PMID- 31000001\nTI  - Kétamine et dépression.\nDP  - 2019\n".encode("latin-1"))

    with pytest.raises(
        PubmedFormatError, match=r"latin1\.nbib: line 2 is not UTF-8 text \(byte 0xe9\).*iconv"
    ):
        list(iter_file_records(path))


def test_a_damaged_nbib_is_told_what_medline_text_looks_like(tmp_path: Path) -> None:
    path = tmp_path / "garbage.nbib"
    path.write_text("this is garbage\nnot medline\n")

    with pytest.raises(
        PubmedFormatError, match=r"garbage\.nbib: line 1: expected a 'PMID- ' line; this is not MEDLINE"
    ):
        list(iter_file_records(path))
