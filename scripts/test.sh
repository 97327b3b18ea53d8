#!/usr/bin/env bash
# Quick start 2: set up and run the whole test suite (lint, format check, tests on SQLite and PostgreSQL).
# PostgreSQL tests use TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test)
# and skip cleanly when no server answers there. Extra arguments go to pytest.
. "$(dirname "$0")/_venv.sh" "[test]"
# The browser test drives Debian's chromium through Playwright (installed above with the test extra;
# never `playwright install`). As root without chromium, install it; if that fails, the test skips.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 ||
    echo "note: could not install chromium; tests/test_e2e_browser.py will skip" >&2
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Types of db/ and ingest/ ([tool.mypy] in pyproject.toml).
.venv/bin/mypy
# One worker per core (pytest-xdist); `-n 0` after it runs everything in this process, for debugging.
exec .venv/bin/pytest -n auto "$@"
