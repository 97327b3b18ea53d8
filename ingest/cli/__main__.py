"""`python -m ingest.cli`: the console script without its installed wrapper."""

import os

from ingest.cli import run

# Children (the dashboard's Streamlit) print as they go rather than in blocks.
os.environ.setdefault("PYTHONUNBUFFERED", "1")
run()
