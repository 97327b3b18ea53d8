#!/usr/bin/env python3
"""Ingest benchmark: the import as a user runs it, the in-process loop, and plain iterparse, in one run.

usage: python bench/ingest.py [--records 20000] [--engines sqlite,postgres]
                              [--postgres-admin-url URL] [--write docs/performance.md]

Builds the corpora with ../shared/bench/make_corpus.py, then, in rounds that alternate the measurements
so the shared machine's load falls on all of them alike:
- the whole command, `ketamine-evidence import FILE` on a new database, timed from start to exit as a
  user runs it (a subprocess; its CPU seconds include its workers), on SQLite and PostgreSQL;
- the in-process loop, import_file() alone in a fresh interpreter, with peak memory (max RSS, the
  process and its largest worker), at N records and once at 2N (memory must stay flat);
- plain ElementTree iterparse that only extracts fields, over the same file: the ratio to it is the goal.
One more run of the command, instrumented, says where the time outside the loop goes: interpreter and
imports, migrating the new database, the loop, and the exit (the fast exit against a normal one).
It also counts the HTTP requests a harvest of N records makes against a loopback E-utilities server.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from math import nan
from pathlib import Path

from machine import describe_machine  # bench/machine.py: scripts run from bench/
from report import write_section

ROOT = Path(__file__).resolve().parent.parent
COMMAND = Path(sys.executable).with_name("ketamine-evidence")
DEFAULT_POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
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
cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))
print(json.dumps({"records": run.records_new, "seconds": elapsed, "cpu": cpu, "peak_mb": rss / 1024}))
"""

PLAIN_ITERPARSE = """
import json, resource, sys, time
import xml.etree.ElementTree as ET
started, cpu_started = time.perf_counter(), time.process_time()
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
print(json.dumps({"records": count, "seconds": elapsed, "cpu": time.process_time() - cpu_started, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# The command as root.run() runs it, with marks: when the interpreter was up, the imports done, how
# long migrating and the loop took, and when main() returned; then the fast exit or, with "normal",
# Python's own exit. The parent times the process from start to exit.
PHASES = """
import time
up = time.time()
import contextlib, gc, json, os, sys
path, url, exit_kind = sys.argv[1], sys.argv[2], sys.argv[3]
os.environ["DATABASE_URL"] = url
collect = [0.0]
def on_gc(phase, info, _t=[0.0]):
    if phase == "start":
        _t[0] = time.perf_counter()
    else:
        collect[0] += time.perf_counter() - _t[0]
gc.callbacks.append(on_gc)
from ingest.cli import root
from ingest.cli import corpus  # noqa: F401  (the command's modules, as the import command loads them)
import ingest.importer as importer
from ingest.progress import ProgressBar  # noqa: F401
imported = time.time()
marks = {}
def timed(name, function):
    def wrapper(*args, **kwargs):
        started, collected = time.time(), collect[0]
        try:
            return function(*args, **kwargs)
        finally:
            marks[name] = time.time() - started
            marks[f"gc_in_{name}"] = collect[0] - collected
    return wrapper
# The database modules load once the workers are forked (import_file): timed apart, as "db imports".
parsed_batches = importer.parsed_batches
@contextlib.contextmanager
def parsed_then_database(*args, **kwargs):
    with parsed_batches(*args, **kwargs) as batches:
        started = time.time()
        import ingest.import_run as import_run
        marks["db_imports"] = time.time() - started
        import_run.init_db = timed("migrate", import_run.init_db)
        import_run._store_all = timed("loop", import_run._store_all)
        yield batches
importer.parsed_batches = parsed_then_database
code = root.main(["import", path])
done = time.time()
out = {"up": up, "imported": imported, "done": done, "gc_in_main": collect[0], **marks}
print(json.dumps(out), flush=True)
if exit_kind == "normal":
    sys.exit(code)
root.__dict__["main"] = lambda: code
root.run()
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


class Postgres:
    """New, uniquely named databases on a PostgreSQL server, dropped after use."""

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self._url = make_url(admin_url)
        self._admin = create_engine(self._url, isolation_level="AUTOCOMMIT")

    def new(self) -> str:
        name = f"ke_bench_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        return self._url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        with self._admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


class Databases:
    def __init__(self, folder: Path, postgres: Postgres | None) -> None:
        self.folder, self.postgres = folder, postgres

    def new(self, engine: str) -> str:
        if engine == "postgres":
            assert self.postgres is not None
            return self.postgres.new()
        return f"sqlite:///{self.folder / f'bench-{time.monotonic_ns()}.sqlite3'}"

    def drop(self, url: str) -> None:
        if url.startswith("postgresql"):
            assert self.postgres is not None
            self.postgres.drop(url)
            return
        database = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm", "-harvest.lock"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)


def command_once(corpus: Path, url: str, sample_memory: bool = False) -> dict[str, float]:
    """`ketamine-evidence import FILE` as a user runs it: wall seconds from start to exit, CPU seconds
    (the command and its workers), and with `sample_memory` peak memory: the most that the command and
    its workers held together at any sampling (every 0.2 s), counting pages they share once (PSS).
    Sampling reads the processes' page tables, which slows them: the timed runs do not sample."""
    env = dict(os.environ, DATABASE_URL=url)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([str(COMMAND), "import", str(corpus)], stdout=out, stderr=err, env=env)
        peak_kib = 0
        while sample_memory and child.poll() is None:
            peak_kib = max(peak_kib, tree_pss_kib(child.pid))
            time.sleep(0.2)
        child.wait()
        elapsed = time.perf_counter() - started
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode != 0:
        raise SystemExit(f"ketamine-evidence import failed:\n{stderr}")
    records = int(stdout.split(" records,")[0].rsplit(" ", 1)[1].replace(",", ""))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "records": records,
        "seconds": elapsed,
        "cpu": cpu,
        "peak_mb": peak_kib / 1024 if sample_memory else nan,
    }


def tree_pss_kib(pid: int) -> int:
    """The proportional set size of a process and all its descendants (Linux), in KiB; 0 if gone."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue  # ended meanwhile
    return total


def in_process_once(corpus: Path, url: str) -> dict[str, float]:
    return run_snippet(OUR_IMPORT, str(corpus), url, "auto")


def phases_once(corpus: Path, url: str, exit_kind: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-c", PHASES, str(corpus), url, exit_kind],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    ended = time.time()
    if result.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{result.stderr}")
    marks = json.loads(result.stdout.strip().splitlines()[-1])
    return {
        "total": ended - started,
        "interpreter": marks["up"] - started,
        "imports": marks["imported"] - marks["up"],
        "db_imports": marks["db_imports"],
        "migrate": marks["migrate"],
        "loop": marks["loop"],
        "rest_of_main": marks["done"]
        - marks["imported"]
        - marks["db_imports"]
        - marks["migrate"]
        - marks["loop"],
        "exit": ended - marks["done"],
        "gc_in_main": marks["gc_in_main"],
        "gc_in_loop": marks["gc_in_loop"],
    }


def best_of(repeats: int, measure) -> dict[str, float]:  # type: ignore[no-untyped-def]
    results = [measure() for _ in range(repeats)]
    return min(results, key=lambda r: r["seconds"])


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000, help="corpus size (default 20,000)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the fastest of each is kept")
    parser.add_argument(
        "--engines", default="sqlite,postgres", help="comma-separated: sqlite, postgres (default both)"
    )
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN),
        help="a PostgreSQL URL allowed to create databases (each run gets a new one, dropped after)",
    )
    parser.add_argument("--biopython", action="store_true", help="also time Biopython's Entrez.read")
    parser.add_argument("--no-harvest", action="store_true", help="skip counting a harvest's requests")
    parser.add_argument("--write", type=Path, help="update this Markdown file (docs/performance.md)")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if unknown := set(engines) - {"sqlite", "postgres"}:
        parser.error(f"unknown engines: {', '.join(sorted(unknown))}")
    sys.path.insert(0, str(ROOT))
    loads = [load()]

    with tempfile.TemporaryDirectory(prefix="ke-bench-") as tmp:
        folder = Path(tmp)
        corpus = ensure_corpus(args.records, folder)
        double = ensure_corpus(args.records * 2, folder)
        size_mb = corpus.stat().st_size / 1e6
        databases = Databases(folder, Postgres(args.postgres_admin_url) if "postgres" in engines else None)

        def on_new(engine: str, measure) -> dict[str, float]:  # type: ignore[no-untyped-def]
            url = databases.new(engine)
            try:
                return measure(url)  # type: ignore[no-any-return]
            finally:
                databases.drop(url)

        runs: dict[str, list[dict[str, float]]] = {}
        for _ in range(args.repeats):  # rounds: each measurement once a round, in the same order
            runs.setdefault("iterparse", []).append(run_snippet(PLAIN_ITERPARSE, str(corpus)))
            for engine in engines:
                runs.setdefault(f"command {engine}", []).append(
                    on_new(engine, lambda url: command_once(corpus, url))
                )
                runs.setdefault(f"loop {engine}", []).append(
                    on_new(engine, lambda url: in_process_once(corpus, url))
                )
            loads.append(load())
        memory = {
            (engine, size): on_new(engine, lambda url, c=c: command_once(c, url, sample_memory=True))
            for engine in engines
            for size, c in ((args.records, corpus), (args.records * 2, double))
        }
        phases = {
            (engine, kind): on_new(engine, lambda url, kind=kind: phases_once(corpus, url, kind))
            for engine in engines
            for kind in ("fast", "normal")
        }
        loads.append(load())
        biopython = run_snippet(BIOPYTHON_READ, str(corpus)) if args.biopython else None
        requests = [] if args.no_harvest else harvest_requests(folder)

    report = render(args, engines, size_mb, runs, memory, phases, biopython, requests, loads)
    print(report)
    if args.write:
        write_section(args.write, report, MARK_START, MARK_END)


def harvest_requests(folder: Path) -> list[dict[str, object]]:
    return [
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


def render(  # type: ignore[no-untyped-def]
    args, engines, size_mb, runs, memory, phases, biopython, requests, loads
) -> str:
    rate = lambda r: r["records"] / r["seconds"]  # noqa: E731
    best = {name: min(results, key=lambda r: r["seconds"]) for name, results in runs.items()}
    plain = best["iterparse"]
    # The ratio in each round (the same load for both), and their median.
    per_round = {
        name: sorted(i["seconds"] / r["seconds"] for i, r in zip(runs["iterparse"], results, strict=True))
        for name, results in runs.items()
        if name != "iterparse"
    }
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    lines = [
        MARK_START,
        f"### Ingest ({datetime.now(UTC):%Y-%m-%d}, `python bench/ingest.py --records {args.records} "
        f"--engines {','.join(engines)}`)",
        "",
        f"Machine: {describe_machine()}. Load average (1, 5, 15 min) at the start, after each round and at "
        f"the end: {'; '.join(loads)}. Corpus: {args.records:,} real citations from `make_corpus.py` "
        f"({size_mb:.0f} MB XML), each run on a new database. {args.repeats} rounds, each measurement "
        "once a round in turn; the table keeps each one's fastest. *Ratio* is plain iterparse's time over "
        "the measurement's, in the same round (median, then the range over the rounds). *CPU s*: the "
        "process's and its workers' CPU seconds (not the PostgreSQL server's); on two free cores a "
        "run cannot take less wall time than half of them, so iterparse's CPU seconds over half the "
        "import's are the most its ratio could be here (*ceiling*, below the table). Peak memory: in the "
        "*memory sampled* runs (one each, at N and 2N records; sampling slows them, so their times are "
        "not the ones to compare), the most the command's processes held together, sampled every "
        "0.2 s (PSS: pages the forked workers share with it counted once); in process, max RSS of the "
        "process plus that of its largest worker, which counts those shared pages twice.",
        "",
        "| what | records | seconds | records/s | ratio to iterparse | CPU s | peak memory |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]

    def row(label: str, result: dict[str, float], ratios: list[float] | None) -> str:
        ratio = f"{statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})" if ratios else ""
        cpu = f"{result['cpu']:.1f}" if "cpu" in result else ""
        peak = "" if result["peak_mb"] != result["peak_mb"] else f"{result['peak_mb']:.0f} MB"
        return (
            f"| {label} | {result['records']:,.0f} | {result['seconds']:.2f} | {rate(result):,.0f} | "
            f"{ratio} | {cpu} | {peak} |"
        )

    for engine in engines:
        lines.append(
            row(
                f"`ketamine-evidence import FILE`, {names[engine]}, start to exit",
                best[f"command {engine}"],
                per_round[f"command {engine}"],
            )
        )
    for engine in engines:
        lines.append(
            row(
                f"import_file() in process, {names[engine]}",
                best[f"loop {engine}"],
                per_round[f"loop {engine}"],
            )
        )
    for (engine, size), result in memory.items():
        lines.append(row(f"the command, {names[engine]}, {size:,} records, memory sampled", result, None))
    lines.append(
        row("plain ElementTree iterparse, extract fields only (no store)", plain, None).replace(
            "|  |", "| 1 |", 1
        )
    )
    if biopython:
        lines.append(row("Biopython Entrez.read, 500-record batches (no store)", biopython, None))
    ceiling = {
        name: plain["cpu"] / (best[name]["cpu"] / 2)
        for name in best
        if name != "iterparse" and "cpu" in best[name]
    }
    lines += [
        "",
        "Ceiling on two free cores (iterparse's CPU seconds over half the import's): "
        + "; ".join(
            f"{'the command' if name.startswith('command') else 'in process'}, {names[name.split()[1]]}: {value:.2f}"
            for name, value in ceiling.items()
        )
        + ".",
    ]
    lines += [
        "",
        "Where the command's time goes (one instrumented run each, seconds of wall time): *interpreter*, "
        "from start until Python runs the first line; *imports*, the command's modules up to the workers' "
        "start; *db imports*, the database modules, loaded after it (overlapping the workers' first "
        "blocks); *migrate*, creating the schema of the new database (overlapping them too); *loop*, "
        "storing every batch; *rest*, the run log and output; *exit*, from main()'s return to the "
        "process's end, with the console script's fast exit and with Python's normal one. *GC* is the "
        "storing process's cyclic garbage collection, within the other phases: all of it, and in the loop.",
        "",
        "| engine | exit | total | interpreter | imports | db imports | migrate | loop | rest | exit | GC | GC in loop |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (engine, kind), p in phases.items():
        lines.append(
            f"| {names[engine]} | {kind} | {p['total']:.2f} | {p['interpreter']:.2f} | {p['imports']:.2f} | "
            f"{p['db_imports']:.2f} | {p['migrate']:.2f} | {p['loop']:.2f} | {p['rest_of_main']:.2f} | {p['exit']:.2f} | "
            f"{p['gc_in_main']:.2f} | {p['gc_in_loop']:.2f} |"
        )
    if requests:
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
                f"| {r['n']:,} | {r['spread']} | {r['batch']} | {r['limit']:,} | {r['windows']} | "
                f"{r['esearch']} | {r['efetch']} | {r['requests']} | {r['windows']} + "
                f"{-(-int(r['n']) // int(r['batch']))} |"  # type: ignore[call-overload]
            )
    lines.append(MARK_END)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
