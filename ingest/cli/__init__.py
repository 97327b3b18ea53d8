"""The `ketamine-evidence` console script, on Click: one module per command group.

`corpus` (harvest, import, export articles, runs, info, init-db, dashboard), `review` and
`review_exports` (users, claims, assessments, the editor's work, their exports), `ranking` (rank,
claim-terms, embed), `ops` (dump, restore, db). Shared options live in `options`, the atomic `-o`
writer in `output`, the error report in `errors`. Commands import db/ when they run, so `--help`
and usage errors stay quick.
"""

from ingest.cli.root import cli, main, run

__all__ = ["cli", "main", "run"]
