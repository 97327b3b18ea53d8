#!/usr/bin/env python3
"""What the design classifier costs the import: CPU with the classifier against the same import with it stubbed.

usage: python bench/design_import_cost.py [--records 20000] [--rounds 3] [--corpus FILE] [--write docs/performance.md]

Builds a corpus with ../shared/bench/make_corpus.py (or reads --corpus), then imports it into a new
SQLite database in a fresh interpreter per run, alternating *classifier* and *stubbed* runs so that
the shared machine's load falls on both alike. *Stubbed* replaces the classifier's scoring
(`DesignModel.classify_many`) by a constant guess; everything else (notices, the prefill columns,
parsing, storing) is the same. CPU is user + system seconds of the importing process and its worker
processes together (getrusage), steadier than wall time on a loaded machine; the load average is read
before each run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from machine import describe_machine  # bench/machine.py: scripts run from bench/
from report import write_section

ROOT = Path(__file__).resolve().parent.parent
MAKE_CORPUS = ROOT.parent / "shared" / "bench" / "make_corpus.py"
MARK_START = "<!-- bench/design_import_cost.py:start -->"
MARK_END = "<!-- bench/design_import_cost.py:end -->"

IMPORT = """
import json, resource, sys, time
from pathlib import Path
if sys.argv[3] == "stubbed":
    from db.corpus import classifier
    stub = classifier.DesignGuess(classifier.StudyDesign.OTHER, 1.0, ())
    classifier.DesignModel.classify_many = lambda self, records, explain=True: [stub] * len(records)
from ingest.importer import import_file
started = time.perf_counter()
run = import_file(sys.argv[2], Path(sys.argv[1]))
elapsed = time.perf_counter() - started
own = resource.getrusage(resource.RUSAGE_SELF)
workers = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"records": run.records_new, "seconds": elapsed,
                  "cpu_main": own.ru_utime + own.ru_stime, "cpu_workers": workers.ru_utime + workers.ru_stime}))
"""


def _import(corpus: Path, folder: Path, mode: str) -> dict[str, float]:
    database = folder / f"{mode}-{os.getpid()}-{len(list(folder.iterdir()))}.sqlite3"
    load = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, "-c", IMPORT, str(corpus), f"sqlite:///{database}", mode],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    database.unlink()
    return {**json.loads(out.strip().splitlines()[-1]), "load": load}


def _row(name: str, runs: list[dict[str, float]]) -> str:
    cpu = [r["cpu_main"] + r["cpu_workers"] for r in runs]
    return (
        f"| {name} | {statistics.median(cpu):.2f} ({', '.join(f'{c:.2f}' for c in cpu)}) "
        f"| {statistics.median(r['cpu_main'] for r in runs):.2f} "
        f"| {statistics.median(r['cpu_workers'] for r in runs):.2f} "
        f"| {', '.join(format(r['seconds'], '.2f') for r in runs)} "
        f"| {', '.join(format(r['load'], '.1f') for r in runs)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus", type=Path, help="an efetch-style XML file (default: make one)")
    parser.add_argument("--write", type=Path, help="update this Markdown file (docs/performance.md)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="design-cost-") as tmp:
        folder = Path(tmp)
        corpus = args.corpus
        if corpus is None:
            corpus = folder / "corpus.xml"
            subprocess.run([sys.executable, str(MAKE_CORPUS), str(args.records), str(corpus)], check=True)
        runs: dict[str, list[dict[str, float]]] = {"stubbed": [], "classifier": []}
        for _ in range(args.rounds):
            for mode in runs:
                runs[mode].append(_import(corpus, folder, mode))
                print(mode, runs[mode][-1], file=sys.stderr)
    base = statistics.median(r["cpu_main"] + r["cpu_workers"] for r in runs["stubbed"])
    with_model = statistics.median(r["cpu_main"] + r["cpu_workers"] for r in runs["classifier"])
    records = int(runs["classifier"][0]["records"])
    today = datetime.now(UTC).date().isoformat()
    report = "\n".join(
        [
            MARK_START,
            f"### What the design classifier costs the import ({today}, `python bench/design_import_cost.py`)",
            "",
            f"Machine: {describe_machine()}. {records:,} records ({corpus.name if args.corpus else 'make_corpus.py'}),"
            f" `import_file` into a new SQLite database with its default workers, {args.rounds} rounds,"
            " stubbed and classifier runs alternating; CPU = user + system seconds of the importing process"
            " and its workers.",
            "",
            "| import | CPU s, median (runs) | CPU s, storing process | CPU s, workers | wall s (runs) | load average before each run |",
            "|---|---|---:|---:|---|---|",
            _row("classifier stubbed (constant guess)", runs["stubbed"]),
            _row("with the classifier", runs["classifier"]),
            "",
            f"The classifier adds **{(with_model / base - 1) * 100:+.1f}%** CPU to the import"
            f" ({(with_model - base) / records * 1e6:.0f} µs per record); the goal is within 10%.",
            MARK_END,
        ]
    )
    print(report)
    if args.write:
        write_section(args.write, report, MARK_START, MARK_END)


if __name__ == "__main__":
    main()
