"""Harvest: the last harvests and imports with their logs, an incremental harvest with live progress,
and importing a PubMed XML, .nbib, JSON or JSON Lines file by upload. Errors are shown in words."""

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from db.errors import DatabaseError
from db.review.roles import Action
from db.settings import load_settings
from ingest.eutils import ConfigurationError
from ingest.eutils_answers import EutilsError
from ingest.harvest import DEFAULT_QUERY, harvest
from ingest.importer import import_file
from ingest.pubmed_xml import PubmedFormatError
from pages import _data as data
from pages._ui import db_url, md_escape, require_user, warm_caches

UPLOAD_TYPES = ["xml", "gz", "nbib", "txt", "medline", "json", "jsonl"]
# Errors a harvest or import reports in words; anything else is a bug and shows as one.
EXPECTED_ERRORS = (ConfigurationError, EutilsError, DatabaseError, PubmedFormatError, ValueError, OSError)

user = require_user()
url = db_url()
may_ingest = user.can(Action.MANAGE_CLAIMS)  # bringing literature in is corpus management: editors, admins
st.title("Harvest")


def _progress(bar: "st.delta_generator.DeltaGenerator", noun: str):  # noqa: ANN202
    def report(done: int, total: int | None) -> None:
        if total:
            bar.progress(min(done / total, 1.0), text=f"{done:,} of about {total:,} {noun}")
        else:
            bar.progress(0.0, text=f"{done:,} {noun}")

    return report


def _outcome(run: object) -> str:
    r = run.__dict__ if hasattr(run, "__dict__") else dict(run)  # type: ignore[call-overload]
    return (
        f"{r.get('records_new', 0):,} new, {r.get('records_updated', 0):,} updated, "
        f"{r.get('records_unchanged', 0):,} unchanged"
    )


if may_ingest:
    harvest_column, import_column = st.columns(2, gap="large")
    with harvest_column:
        st.subheader("Harvest PubMed")
        settings = load_settings()
        st.caption(
            "Incremental: asks PubMed only for records added or revised since the last successful harvest "
            "of the default ketamine/depression query (the first harvest fetches everything)."
        )
        if not settings.ncbi_email:
            st.warning(
                "NCBI_EMAIL is not set. NCBI asks every E-utilities client for a contact address: set NCBI_EMAIL "
                "in the environment or in .streamlit/secrets.toml and restart the dashboard."
            )
        limit = st.number_input("At most this many records (0 = no limit)", min_value=0, value=0, step=500)
        if st.button("Start incremental harvest", type="primary", disabled=not settings.ncbi_email):
            with st.status("Harvesting PubMed…", expanded=True) as status:
                bar = st.progress(0.0, text="Searching PubMed…")
                try:
                    run = harvest(
                        settings, max_records=int(limit) or None, progress=_progress(bar, "records")
                    )
                except EXPECTED_ERRORS as exc:
                    status.update(label="The harvest failed", state="error")
                    st.error(md_escape(str(exc)))
                else:
                    status.update(label=f"Harvest finished: {_outcome(run)}", state="complete")
                finally:
                    data.after_corpus_change()
                    warm_caches(url)
    with import_column:
        st.subheader("Import a PubMed file")
        st.caption(
            "PubMed XML (.xml, .xml.gz, baseline and update files), MEDLINE text (.nbib, .txt), JSON records "
            "(.json) or JSON Lines (.jsonl, as the articles export writes them)."
        )
        upload = st.file_uploader("PubMed file", type=UPLOAD_TYPES, key="harvest_upload")
        if upload is not None and st.button("Import the file", type="primary"):
            with st.status(f"Importing {upload.name}…", expanded=True) as status:
                bar = st.progress(0.0, text="Reading…")
                # import_file reads a path; the upload lives in memory. Keep the suffix: .gz tells gzip.
                suffix = "".join(Path(upload.name).suffixes[-2:]) or ".xml"
                with tempfile.TemporaryDirectory() as folder:
                    path = Path(folder) / f"upload{suffix}"
                    path.write_bytes(upload.getvalue())
                    try:
                        # workers=0: parse in this process. Forking the Streamlit server, which runs
                        # threads, for worker processes is unsafe; uploads are small anyway.
                        run = import_file(url, path, progress=_progress(bar, "records"), workers=0)
                    except EXPECTED_ERRORS as exc:
                        status.update(label="The import failed", state="error")
                        st.error(md_escape(str(exc).replace(str(path), upload.name)))
                    else:
                        status.update(label=f"Imported {upload.name}: {_outcome(run)}", state="complete")
                        st.success(f"Imported {md_escape(upload.name)}: {_outcome(run)}.")
                    finally:
                        data.after_corpus_change()
                        warm_caches(url)
else:
    st.caption("Editors and admins start harvests and imports; here you can follow what they brought in.")

st.subheader("Recent harvests and imports")
runs = data.runs(url)
if not runs:
    st.info(
        "Nothing harvested or imported yet."
        + (
            " Start a harvest or upload a PubMed file above."
            if may_ingest
            else " Ask an editor to start a harvest."
        )
    )
    st.stop()
table = pd.DataFrame(
    {
        "id": r["id"],
        "kind": r["kind"],
        "status": r["status"],
        "started (UTC)": r["started_at"],
        "took": (r["finished_at"] - r["started_at"]).total_seconds() if r["finished_at"] else None,
        "new": r["records_new"],
        "updated": r["records_updated"],
        "unchanged": r["records_unchanged"],
        "failed": r["records_failed"],
        "deleted": r["records_deleted"],
        "requests": r["requests_made"],
        "query or file": r["query"]
        if r["kind"] != "harvest" or r["query"] != DEFAULT_QUERY
        else "default query",
    }
    for r in runs
)
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config={
        "started (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        "took": st.column_config.NumberColumn("took (s)", format="%.1f"),
    },
)
by_id = {r["id"]: r for r in runs}
chosen = st.selectbox(
    "Log of run",
    list(by_id),
    format_func=lambda i: f"#{i} {by_id[i]['kind']} · {by_id[i]['status']}",
    key="harvest_run",
)
run = by_id[chosen]
with st.container(border=True):
    if run["error"]:
        st.error(md_escape(run["error"]))
    lines = [
        f"Status: {run['status']}; started {run['started_at']:%Y-%m-%d %H:%M:%S} UTC"
        + (f", finished {run['finished_at']:%H:%M:%S}" if run["finished_at"] else ", not finished"),
        f"Records: {_outcome(run)}, {run['records_failed']:,} failed, {run['records_deleted']:,} deleted"
        + (f" (PubMed reported {run['count']:,})" if run["count"] is not None else ""),
        f"Requests to NCBI: {run['requests_made']:,}",
    ]
    if run["since"]:
        lines.append(f"Incremental since {run['since']:%Y-%m-%d}")
    if run["host"]:
        lines.append(f"Ran on {run['host']} (process {run['pid']})")
    for line in lines:
        st.caption(md_escape(line))
    st.code(run["query"], language=None, wrap_lines=True)
    if run["query_translation"]:
        st.caption("PubMed's translation of the query:")
        st.code(run["query_translation"], language=None, wrap_lines=True)
    if run["windows"]:
        st.caption("Date windows (searches past 9,999 results are split by Entrez date):")
        st.dataframe(pd.DataFrame(run["windows"]), hide_index=True)
