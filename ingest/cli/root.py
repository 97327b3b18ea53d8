"""The `ketamine-evidence` group, its subcommands from each group module, `main`, and the console script `run`."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from typing import NoReturn

import click

from ingest.cli import corpus, ops, ranking, review, review_exports
from ingest.cli.errors import explain

PROG = "ketamine-evidence"


@click.group(
    PROG, help="Harvest PubMed on ketamine for depression, review claims against it, export the evidence."
)
@click.option("-v", "--verbose", is_flag=True, help="log each request and batch")
def cli(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@cli.group(
    "export",
    short_help="Export articles, claims, assessments, the audit trail or ClaimReview.",
    help="Export articles, or the review data: claims, assessments, the audit trail, ClaimReview. "
    "Each kind writes to standard output, or with -o FILE to that file, written whole.",
)
def export() -> None:
    pass


for command in [*corpus.COMMANDS, *review.COMMANDS, *ranking.COMMANDS, *ops.COMMANDS]:
    cli.add_command(command)
for command in [*corpus.EXPORTS, *review_exports.EXPORTS]:
    export.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run one command line (default: sys.argv); the exit code, with errors reported on stderr."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with cli.make_context(PROG, args) as ctx:
            return int(cli.invoke(ctx) or 0)
    except click.exceptions.Exit as exc:  # --help and the like
        return exc.exit_code
    except BrokenPipeError:
        # The reader went away (`| head`): not an error of ours; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        click.echo("interrupted: committed batches are kept; run the same command again to finish.", err=True)
        return 130
    except Exception as exc:
        report = explain(exc)
        if report is None:
            raise  # a bug: its traceback is the report
        click.echo(report.text, err=True)
        return report.exit_code


def run() -> NoReturn:
    """The console script: main(), then leave without tearing the interpreter down object by object.

    A command that imported SQLAlchemy, NumPy and the models leaves a few hundred thousand objects;
    freeing them one by one and the collector's last passes over them cost an import 0.2 to 0.35 s
    after its work was done (docs/performance.md). Everything that must happen at exit happens first:
    the database connections are closed, the exit handlers run (logging, worker pools, temporary
    folders), and both output streams are flushed; only then does the process end.
    """
    code = main()
    if threading.active_count() > 1:
        sys.exit(code)  # a thread still running: the normal exit waits for it
    _close_databases()
    atexit._run_exitfuncs()  # what a normal exit runs first; os._exit below does not
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # the reader went away: Python's own exit says 120 then
            code = code or 120
    os._exit(code)


def _close_databases() -> None:
    engine_module = sys.modules.get("db.engine")
    if engine_module is not None:  # only when the command opened a database at all
        engine_module.dispose_engines()
