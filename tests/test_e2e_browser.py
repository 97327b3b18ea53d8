"""End to end in a real browser: `streamlit run app.py` on a loopback port, driven by headless Chromium.

Tags a study with the keyboard, checks the claim's meter, checks that markup in the data is shown
as text, and saves a screenshot of every page in test-artifacts/. Uses Debian's chromium through
Playwright's executable_path (no browser download); skips cleanly when either is missing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from db.engine import open_session
from db.models import Article
from tests.dashboard_builders import world

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XSS_TITLE = "<script>window.__xss = 1</script> Ketamine clinics and the evidence gap."
XSS_ABSTRACT = (
    'Clinics sell infusions. <img src=x onerror="window.__xss = 2"> *Not emphasis* [not a link](javascript:x)'
)

pytestmark = pytest.mark.slow


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright); scripts/test.sh installs it")
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM} (apt-get install chromium); scripts/test.sh installs it as root"
        )
    return sync_playwright


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def streamlit_server(database_url: str, home: Path) -> Iterator[str]:
    """`streamlit run app.py` against `database_url`; yields its base URL and stops it afterwards."""
    port = free_port()
    env = dict(
        os.environ, DATABASE_URL=database_url, KETAMINE_EVIDENCE_HOME=str(home), DASHBOARD_AUTH="local"
    )
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.headless=true", f"--server.port={port}", "--server.address=127.0.0.1",
        "--browser.gatherUsageStats=false", "--server.fileWatcherType=none",
    ]  # fmt: skip
    log = (home / "streamlit.log").open("wb")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail("streamlit did not start:\n" + (home / "streamlit.log").read_text()[-3000:])
            time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@contextmanager
def browser_page(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    with _playwright()() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def settle(page: Any) -> None:
    """Wait until Streamlit has finished running the script (its status widget disappears)."""
    page.wait_for_timeout(250)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
    page.wait_for_timeout(400)


def choose(page: Any, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label`."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.click()
    page.get_by_role("option", name=option).first.click()
    settle(page)


def sign_in(page: Any, base: str, name: str) -> None:
    page.goto(base)
    page.get_by_text("Pick who you are").wait_for()
    choose(page, "Reviewer", name)
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("Signed in as").wait_for()
    settle(page)


def go(page: Any, title: str) -> None:
    page.get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=title, exact=True).first.wait_for()
    settle(page)


def test_tag_with_the_keyboard_see_the_meter_and_every_page(tmp_path: Path) -> None:
    _playwright()  # skip before building anything when the browser is missing
    url = f"sqlite:///{tmp_path / 'e2e.sqlite3'}"
    world(url)
    with open_session(url) as session:
        article = session.get(Article, 90000003)
        assert article is not None
        article.title, article.abstract = XSS_TITLE, XSS_ABSTRACT
        session.commit()
    ARTIFACTS.mkdir(exist_ok=True)

    with streamlit_server(url, tmp_path) as base, browser_page(height=2000) as page:
        sign_in(page, base, "rita")
        go(page, "Review")
        choose(page, "Claim", "suicidal-ideation")
        shown = page.get_by_text("PMID 900000").first.inner_text()
        page.get_by_role("heading", name="Review", exact=True).click()  # focus outside any text field
        page.keyboard.press("s")
        page.get_by_text("Saved PMID 90000002 as supported").wait_for()
        settle(page)
        assert page.get_by_text("PMID 900000").first.inner_text() != shown  # the next study at once
        page.screenshot(path=str(ARTIFACTS / "e2e-review.png"), full_page=True)

        go(page, "Claims")
        choose(page, "Claim", "suicidal-ideation")
        page.get_by_text("1 meta-analysis supports").first.wait_for()
        assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 1  # the evidence meter
        page.screenshot(path=str(ARTIFACTS / "e2e-claims.png"), full_page=True)

        go(page, "Studies")
        choose(page, "Open a study", "PMID 90000003")
        heading = page.locator("h3", has_text="window.__xss").first
        assert heading.inner_text().startswith("<script>window.__xss = 1</script>")
        assert page.get_by_text("*Not emphasis* [not a link](javascript:x)").count() == 1
        assert page.evaluate("window.__xss") is None  # neither the script nor the onerror ran
        page.screenshot(path=str(ARTIFACTS / "e2e-studies.png"), full_page=True)

        page.get_by_role("button", name="Sign out").click()
        settle(page)
        sign_in(page, base, "ada")
        go(page, "Claims")  # an admin sees the evidence profile blind mode hides from rita
        choose(page, "Claim", "suicidal-ideation")
        page.get_by_role("tab", name="Included studies").click()
        page.get_by_role("tab", name="How they were found").click()
        diagram = page.locator('[data-testid="stGraphVizChart"] svg').first
        diagram.wait_for()
        assert "Included in the verdict" in diagram.text_content()
        page.get_by_role("tab", name="Summary of findings").click()
        settle(page)
        page.screenshot(path=str(ARTIFACTS / "e2e-claims-profile.png"), full_page=True)
        page.get_by_role("tab", name="How they were found").click()
        settle(page)
        diagram.screenshot(path=str(ARTIFACTS / "e2e-claims-flow.png"))
        for title in ("Overview", "Editor", "Harvest", "Articles", "Team"):
            go(page, title)
            page.screenshot(path=str(ARTIFACTS / f"e2e-{title.lower()}.png"), full_page=True)
        assert page.evaluate("window.__xss") is None

    shots = sorted(p.name for p in ARTIFACTS.glob("e2e-*.png"))
    assert shots == sorted(
        f"e2e-{name}.png"
        for name in (
            "review",
            "claims",
            "claims-profile",
            "claims-flow",
            "studies",
            "overview",
            "editor",
            "harvest",
            "articles",
            "team",
        )
    )
