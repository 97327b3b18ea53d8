"""The first hour of a new team: what got in the way, each with a check that can fail."""

from __future__ import annotations

import tomllib

import pytest

from pages._ui import md_escape
from tests.conftest import PROJECT_ROOT


def test_a_url_in_an_error_is_shown_as_written_without_backslashes() -> None:
    shown = md_escape("Cannot reach https://eutils.ncbi.nlm.nih.gov/entrez/eutils/ (host name not found).")
    assert "`https://eutils.ncbi.nlm.nih.gov/entrez/eutils/`" in shown and "eutils\\." not in shown
    assert shown.endswith(r"\(host name not found\)\.")  # the rest stays escaped


def test_a_url_cannot_smuggle_markdown_out_of_its_code_span() -> None:
    shown = md_escape("see http://x.org/`**bold**` now")
    assert shown == r"see `http://x.org/`\`\*\*bold\*\*\` now"  # the backticks after it are escaped


def test_the_dashboard_listens_on_this_machine_only_and_hides_developer_buttons() -> None:
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["client"]["toolbarMode"] == "viewer"  # no Deploy button for readers


def test_the_dashboard_command_defaults_to_loopback(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    import subprocess

    from ingest.cli import main

    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda command: calls.append(command) or 0)

    assert main(["dashboard", "--port", "8600"]) == 0

    [command] = calls
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
