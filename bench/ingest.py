#!/usr/bin/env python3
"""Ingest benchmark: import throughput (parse + store) and peak memory on real-record corpora.

usage: python bench/ingest.py [--records 20000] [--write docs/performance.md]

Builds the corpora with ../shared/bench/make_corpus.py, then runs each measurement in a fresh
subprocess so that peak memory (max RSS, this process and its workers) belongs to it alone:
- our import (parse + store into a new SQLite database), at N and 2N records (memory must stay flat);
- the same with parsing in this process only (workers=0);
- for scale, in the same run: plain ElementTree iterparse that only extracts fields, and
  Biopython's Entrez.read in 500-record batches.
It also counts the HTTP requests a harvest of N records makes against a loopback E-utilities server.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from machine import describe_machine  # bench/machine.py: scripts run from bench/
from report import write_section

ROOT = Path(__file__).resolve().parent.parent
MAKE_CORPUS = ROOT.parent / "shared" / "bench" / "make_corpus.py"
MARK_START = "<!-- bench/ingest.py:start -->"
MARK_END = "<!-- bench/ingest.py:end -->"

# Each snippet runs in its own interpreter and prints one JSON line.
OUR_IMPORT = """
import json, resource, sys, time
from pathlib import Path
from ingest.importer import import_file
path, url, workers = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
started = time.perf_counter()
run = import_file(url, path, workers=None if workers == "auto" else int(workers))
elapsed = time.perf_counter() - started
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"records": run.records_new, "seconds": elapsed, "peak_mb": rss / 1024}))
"""

PLAIN_ITERPARSE = """
import json, resource, sys, time
import xml.etree.ElementTree as ET
started = time.perf_counter()
count = 0
for _, elem in ET.iterparse(sys.argv[1]):
    if elem.tag == "PubmedArticle":
        c = elem.find("MedlineCitation")
        fields = (c.findtext("PMID"), "".join(c.find("Article/ArticleTitle").itertext()),
                  " ".join("".join(a.itertext()) for a in c.iterfind("Article/Abstract/AbstractText")),
                  c.findtext("Article/Journal/Title"), [m.findtext("DescriptorName") for m in c.iterfind("MeshHeadingList/MeshHeading")],
                  [p.text for p in c.iterfind("Article/PublicationTypeList/PublicationType")])
        count += 1
        elem.clear()
elapsed = time.perf_counter() - started
print(json.dumps({"records": count, "seconds": elapsed, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

BIOPYTHON_READ = """
import io, json, re, resource, sys, time
from Bio import Entrez
data = open(sys.argv[1], "rb").read()
head, body = data.split(b"<PubmedArticleSet>", 1)
records = re.findall(rb"<PubmedArticle>.*?</PubmedArticle>", body, re.S)
started = time.perf_counter()
count = 0
for i in range(0, len(records), 500):
    batch = head + b"<PubmedArticleSet>" + b"".join(records[i:i + 500]) + b"</PubmedArticleSet>"
    count += len(Entrez.read(io.BytesIO(batch))["PubmedArticle"])
elapsed = time.perf_counter() - started
print(json.dumps({"records": count, "seconds": elapsed, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

HARVEST_REQUESTS = """
import json, math, sys
from datetime import date, timedelta
sys.path.insert(0, sys.argv[3])
from db.settings import Settings
from ingest.eutils import EutilsClient, RateLimiter
from ingest.harvest import harvest
from tests.eutils_server import FakeRecord, FakeEutils, make_records, running_server
n, batch, spread = int(sys.argv[1]), int(sys.argv[2]), sys.argv[6]

def growing(n, years=40, doubling=8):
    # Entry dates up to yesterday, the yearly count doubling every `doubling` years, as a literature grows.
    rate, span, last = math.log(2) / (doubling * 365.25), years * 365.25, date.today() - timedelta(days=1)
    whole = math.expm1(rate * span)
    days = [span - math.log1p(whole * (i + 0.5) / n) / rate for i in range(n)]
    return [FakeRecord(30_000_001 + i, f"Ketamine for depression: synthetic trial {i + 1}.",
                       last - timedelta(days=int(d)), last) for i, d in enumerate(days)]

with running_server() as server:
    # "even": 10 entry dates a day from 2020 on, none in the future; "growing": see growing().
    records = make_records(n, per_day=10) if spread == "even" else growing(n)
    fake = FakeEutils(server, records)
    settings = Settings(database_url=sys.argv[4], ncbi_email="bench@example.org", ncbi_api_key=None,
                        eutils_base_url=fake.base_url)
    # Unpaced: this counts requests, it does not time them.
    client = EutilsClient.from_settings(settings, rate_limiter=RateLimiter(sleep=lambda _s: None))
    run = harvest(settings, query="ketamine AND depression", batch_size=batch, client=client,
                  max_per_window=int(sys.argv[5]))
    print(json.dumps({"records": run.records_new, "requests": run.requests_made, "windows": len(run.windows) or 1,
                      "esearch": len(fake.requests_to("esearch")), "efetch": len(fake.requests_to("efetch")),
                      "window_counts": [w["count"] for w in run.windows] or [run.records_new]}))
"""


def run_snippet(code: str, *args: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def ensure_corpus(records: int, folder: Path) -> Path:
    path = folder / f"corpus-{records}.xml"
    if not path.exists():
        if not MAKE_CORPUS.exists():
            raise SystemExit(
                f"{MAKE_CORPUS} not found: the shared bench tools are needed to build the corpus."
            )
        subprocess.run([sys.executable, str(MAKE_CORPUS), str(records), str(path)], check=True)
    return path


def import_once(corpus: Path, workers: str, folder: Path) -> dict[str, float]:
    database = folder / f"bench-{time.monotonic_ns()}.sqlite3"
    try:
        return run_snippet(OUR_IMPORT, str(corpus), f"sqlite:///{database}", workers)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)


def best_of(repeats: int, measure) -> dict[str, float]:  # type: ignore[no-untyped-def]
    results = [measure() for _ in range(repeats)]
    return min(results, key=lambda r: r["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000, help="corpus size (default 20,000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the fastest is kept")
    parser.add_argument("--write", type=Path, help="update this Markdown file (docs/performance.md)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ke-bench-") as tmp:
        folder = Path(tmp)
        corpus = ensure_corpus(args.records, folder)
        double = ensure_corpus(args.records * 2, folder)
        size_mb = corpus.stat().st_size / 1e6
        ours = best_of(args.repeats, lambda: import_once(corpus, "auto", folder))
        ours_double = best_of(1, lambda: import_once(double, "auto", folder))
        serial = best_of(args.repeats, lambda: import_once(corpus, "0", folder))
        plain = best_of(args.repeats, lambda: run_snippet(PLAIN_ITERPARSE, str(corpus)))
        biopython = best_of(1, lambda: run_snippet(BIOPYTHON_READ, str(corpus)))
        requests = [
            run_snippet(
                HARVEST_REQUESTS,
                str(n),
                str(batch),
                str(ROOT),
                f"sqlite:///{folder / f'h{n}-{batch}-{limit}.sqlite3'}",
                str(limit),
                spread,
            )
            | {"n": n, "batch": batch, "limit": limit, "spread": spread}
            for n, batch, limit, spread in (
                (1_000, 500, 9_999, "even"),
                (1_234, 200, 9_999, "even"),
                (5_000, 500, 9_999, "even"),
                (5_000, 500, 2_000, "even"),
                (20_000, 500, 9_999, "even"),
                (5_000, 500, 2_000, "growing"),
                (20_000, 500, 9_999, "growing"),
            )
        ]

    rate = lambda r: r["records"] / r["seconds"]  # noqa: E731
    rows = [
        ("our import, parse + store, worker processes", ours),
        (f"our import, parse + store, {args.records * 2:,} records", ours_double),
        ("our import, parse + store, one process", serial),
        ("plain ElementTree iterparse, extract fields only (no store)", plain),
        ("Biopython Entrez.read, 500-record batches (no store)", biopython),
    ]
    lines = [
        MARK_START,
        f"### Ingest ({datetime.now(UTC):%Y-%m-%d}, `python bench/ingest.py --records {args.records}`)",
        "",
        f"Machine: {describe_machine()}. Corpus: {args.records:,} real citations from `make_corpus.py` ({size_mb:.0f} MB XML), "
        "imported into a new SQLite database; fastest of the repeats; peak memory is max RSS of the importing "
        "process plus its largest worker.",
        "",
        "| what | records | seconds | records/s | peak memory |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, result in rows:
        lines.append(
            f"| {label} | {result['records']:,.0f} | {result['seconds']:.2f} | {rate(result):,.0f} | {result['peak_mb']:.0f} MB |"
        )
    lines += [
        "",
        "HTTP requests of a harvest against a loopback E-utilities server. Entry dates: *even*, 10 records "
        "a day from 2020 (an abrupt start and end, the hard case for guessing windows); *growing*, up to "
        "yesterday over 40 years, the yearly count doubling every 8 years, as a literature grows. "
        "Past the paging limit the search is split into Entrez-date windows (`ingest/date_windows.py`): "
        "esearch counts the whole search once, then one search per window plus any guess that held too "
        "many or found nothing; efetch takes each window's whole batches from its history set and the "
        "windows' short last batches together by PMID. The rows with a 2,000 limit show the split at "
        "small scale:",
        "",
        "| records | entry dates | batch size | paging limit | date windows | esearch | efetch | total | "
        "target: 1 esearch per window + ceil(N / batch) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in requests:
        lines.append(
            f"| {r['n']:,} | {r['spread']} | {r['batch']} | {r['limit']:,} | {r['windows']} | {r['esearch']} | "
            f"{r['efetch']} | {r['requests']} | {r['windows']} + {-(-int(r['n']) // r['batch'])} |"
        )
    lines.append(MARK_END)
    report = "\n".join(lines)
    print(report)
    if args.write:
        write_section(args.write, report, MARK_START, MARK_END)


if __name__ == "__main__":
    main()
