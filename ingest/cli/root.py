"""The `ketamine-evidence` group, its subcommands from each group module, and `main`."""

from __future__ import annotations

import logging
import os
import sys

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
