#!/usr/bin/env python3
"""Take the README's screenshots of the Claims and Review pages.

usage: .venv/bin/python docs/screenshots/capture.py

Builds a demo database in a temporary folder (the seed article, a team, the 100 recorded ketamine
records of ../shared/data/pubmed/ketamine where present, else the six test records, and a few
judged studies), starts `streamlit run app.py` on a loopback port and drives Debian's chromium
through Playwright, as tests/test_e2e_browser.py does.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conftest import SHARED_DATA  # noqa: E402
from tests.dashboard_builders import build_demo  # noqa: E402
from tests.test_e2e_browser import browser_page, choose, go, settle, sign_in, streamlit_server  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    records = SHARED_DATA / "pubmed" / "ketamine" / "records.jsonl"
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'demo.sqlite3'}"
        build_demo(url, records if records.exists() else None)
        with streamlit_server(url, Path(folder)) as base, browser_page(1400, 1250) as page:
            sign_in(page, base, "eve")
            go(page, "Claims")
            choose(page, "Claim", "treatment-resistant")
            # Scroll the article (its own scrolling box) to the chosen claim, and the page back to the top.
            page.evaluate(
                "() => { document.querySelector('mark.ke-selected').scrollIntoView({block: 'center'});"
                " document.querySelector('[data-testid=\"stMain\"]').scrollTo(0, 0); }"
            )
            page.wait_for_timeout(300)
            page.screenshot(path=str(HERE / "claims.png"))
            page.get_by_role("button", name="Sign out").click()
            settle(page)
            sign_in(page, base, "rita")
            go(page, "Review")
            choose(page, "Claim", "rapid-onset")
            page.screenshot(path=str(HERE / "review.png"))
    print("wrote", HERE / "claims.png", "and", HERE / "review.png")  # noqa: T201


if __name__ == "__main__":
    main()
