"""Settings read from the environment (and, in the dashboard, from Streamlit secrets)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

NCBI_EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
TOOL_NAME = "ketamine-evidence"


def default_database_path() -> Path:
    """Where the embedded SQLite database lives unless DATABASE_URL says otherwise.

    `$KETAMINE_EVIDENCE_HOME/evidence.sqlite3`, or the XDG data directory
    (`~/.local/share/ketamine-evidence/evidence.sqlite3`).
    """
    home = os.environ.get("KETAMINE_EVIDENCE_HOME")
    if home:
        return Path(home).expanduser() / "evidence.sqlite3"
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "ketamine-evidence" / "evidence.sqlite3"


@dataclass(frozen=True)
class Settings:
    database_url: str
    ncbi_email: str | None
    ncbi_api_key: str | None
    eutils_base_url: str
    tool: str = TOOL_NAME

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings() -> Settings:
    """Read settings from the environment; every field has a documented default."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        url = f"sqlite:///{default_database_path()}"
    base = os.environ.get("EUTILS_BASE_URL", "").strip() or NCBI_EUTILS_URL
    if not base.endswith("/"):
        base += "/"
    return Settings(
        database_url=url,
        ncbi_email=os.environ.get("NCBI_EMAIL", "").strip() or None,
        ncbi_api_key=os.environ.get("NCBI_API_KEY", "").strip() or None,
        eutils_base_url=base,
    )
