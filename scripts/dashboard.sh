#!/usr/bin/env bash
# Quick start 1: set up and start the dashboard on the embedded SQLite database.
# Extra arguments go to `streamlit run` (e.g. --server.port 8600).
. "$(dirname "$0")/_venv.sh" ""
.venv/bin/ketamine-evidence init-db
exec .venv/bin/streamlit run app.py "$@"
