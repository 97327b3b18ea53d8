"""A small, realistic dashboard database for page tests, the browser test and the README screenshots:
the seed article, a team, studies, and a few judged studies with quotes from their abstracts."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from db.engine import init_db, open_session
from db.models import Article, User
from db.review.assessments import record_assessment
from db.review.claims import get_claim
from db.review.roles import add_user, get_user
from db.review.sources import ensure_seed_content, split_sentences
from db.vocab import Role, StudyVerdict
from ingest.importer import import_file
from tests.conftest import TEST_DATA
from tests.review_builders import load_recorded_articles

TEAM = {
    "ada": Role.ADMIN,
    "eve": Role.EDITOR,
    "rita": Role.REVIEWER,
    "rob": Role.REVIEWER,
    "vic": Role.VIEWER,
}


def add_team(session: Session) -> dict[str, User]:
    users = {"ada": add_user(session, None, "ada", Role.ADMIN)}
    for name, role in TEAM.items():
        if name != "ada":
            users[name] = add_user(session, users["ada"], name, role)
    return users


def sentence_with(article: Article, pattern: str) -> str:
    """The first abstract sentence matching `pattern` (a regex), else the first sentence, else the title."""
    sentences = [s.text for s in split_sentences(article.abstract)]
    for sentence in sentences:
        if re.search(pattern, sentence, re.IGNORECASE):
            return sentence
    return sentences[0] if sentences else article.title


def build_demo(url: str, records: Path | None = None) -> dict[str, User]:
    """Seed article and claims, the team, studies (recorded ketamine records when given, else the
    six-record test sample) and judged studies for three claims, with one open conflict."""
    init_db(url)
    with open_session(url) as session:
        ensure_seed_content(session)
        users = add_team(session)
        if records is not None:
            load_recorded_articles(session, records)
        session.commit()
    if records is None:
        import_file(url, TEST_DATA / "pubmed_ketamine_sample.xml", workers=0)
    with open_session(url) as session:
        users = {name: session.merge(user) for name, user in users.items()}
        articles = list(session.scalars(select(Article).order_by(Article.pmid)))
        plan = [
            ("suicidal-ideation", r"suicid", StudyVerdict.SUPPORTED),
            ("rapid-onset", r"24 h|hours|rapid|day 1", StudyVerdict.SUPPORTED),
            ("treatment-resistant", r"treatment-resistant|TRD", StudyVerdict.SUPPORTED),
            ("long-lasting", r"relapse|maintenance|weeks|months", StudyVerdict.MIXED),
        ]
        for key, pattern, verdict in plan:
            claim = get_claim(session, key)
            matching = [a for a in articles if a.abstract and re.search(pattern, a.abstract, re.IGNORECASE)]
            for i, article in enumerate(matching[:8]):
                quote = sentence_with(article, pattern)
                mine = verdict if i % 4 != 3 else StudyVerdict.MIXED
                record_assessment(session, users["rita"], claim, article.pmid, mine, quote=quote)
                if i % 3 == 0:
                    theirs = mine if i % 2 == 0 else StudyVerdict.UNSUPPORTED  # one disagreement: a conflict
                    record_assessment(session, users["rob"], claim, article.pmid, theirs, quote=quote)
        session.commit()
    return users


def navigation_only_in_apptest(monkeypatch: object) -> None:
    """Make AppTest run app.py on every run, as the server does.

    AppTest resets PagesManager.uses_pages_directory before each run, and the flag then becomes True
    because a pages/ folder sits beside app.py: every run after the first executes the current
    page's file alone (the legacy pages-folder mode), skipping app.py, its sign-in and navigation.
    The server sets the flag to False at the first st.navigation call and keeps it; so do we.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self: PagesManager, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)  # type: ignore[attr-defined]


APP = Path(__file__).resolve().parent.parent / "app.py"
USER_KEY = "signed_in_user"


def world(url: str) -> str:
    """The seed article and claims, the team, and the six sample studies (two retracted or flagged)."""
    init_db(url)
    with open_session(url) as session:
        ensure_seed_content(session)
        add_team(session)
        session.commit()
    import_file(url, TEST_DATA / "pubmed_ketamine_sample.xml", workers=0)
    return url


def open_page(page: str | None, user: str | None, **state: object) -> AppTest:
    """Run the app as `user` (with extra session state) and switch to pages/`page`.py."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    if user is not None:
        at.session_state[USER_KEY] = user
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page is not None:
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def vote_as(
    url: str, reviewer: str, claim_key: str, pmid: int, verdict: StudyVerdict, quote: str | None = None
) -> None:
    """Record a vote through the data layer, quoting the start of the abstract (or title)."""
    with open_session(url) as session:
        article = session.get(Article, pmid)
        assert article is not None
        text = quote if quote is not None else (article.abstract or article.title)[:40]
        record_assessment(
            session, get_user(session, reviewer), get_claim(session, claim_key), pmid, verdict, quote=text
        )
        session.commit()
