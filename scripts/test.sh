#!/usr/bin/env bash
# Quick start 2: set up and run the whole test suite (lint, format check, tests on SQLite and PostgreSQL).
# PostgreSQL tests use TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test)
# and skip cleanly when no server answers there. Extra arguments go to pytest.
. "$(dirname "$0")/_venv.sh" "[test]"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest "$@"
