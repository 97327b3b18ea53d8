"""Ranked review queues: claim expansion, learning from tags, determinism, and no study ever dropped."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session

from db.errors import InvalidInputError, PermissionDenied
from db.models import AuditEvent, Claim, ClaimSearchTerms, User
from db.ranking.model import clear_corpus_cache, percentile, tokens
from db.ranking.queue import RankingOptions, claim_labels, rank_studies, rank_with_labels, review_queue
from db.ranking.terms import (
    claim_terms,
    default_terms,
    query_terms,
    reset_claim_terms,
    set_claim_terms,
    statement_words,
)
from db.review.assessments import correct_design
from db.review.audit import claim_history
from db.vocab import AuditAction, StudyDesign, StudyVerdict
from tests.review_builders import add_article, document_of, team, vote
from tests.review_builders import add_claim as add_new_claim

NO_TERMS = RankingOptions(learn=False, semantic=False)


def add_claim(session: Session, *args: Any, **kwargs: Any) -> Claim:
    """A claim whose term list an editor left empty: its search is its statement's words alone, so these
    tests of the queue's stages do not depend on the search a new claim builds (test_new_claim_search)."""
    claim = add_new_claim(session, *args, **kwargs)
    assert claim.id is not None
    session.add(ClaimSearchTerms(claim_id=claim.id, synonyms=[], outcomes=[]))
    session.flush()
    return claim


@pytest.fixture(autouse=True)
def _fresh_corpus_cache() -> None:
    # Each test has its own database file, but SQLite may reuse a path: never trust an old cache.
    clear_corpus_cache()


def microbiome(session: Session, pmid: int) -> None:
    add_article(
        session,
        pmid,
        title=f"Gut microbiome and bacteria after infusion, cohort {pmid}",
        abstract="RESULTS: Bacteria of the gut microbiome shifted; fecal samples were sequenced.",
        publication_types=["Journal Article"],
    )


def sleep(session: Session, pmid: int) -> None:
    add_article(
        session,
        pmid,
        title=f"Sleep architecture after infusion, cohort {pmid}",
        abstract="RESULTS: Polysomnography showed sleep architecture and slow waves changed overnight.",
        publication_types=["Journal Article"],
    )


def two_topics(session: Session, per_topic: int) -> None:
    """Studies 1..per_topic about the microbiome, the next per_topic about sleep, committed."""
    for pmid in range(1, 2 * per_topic + 1):
        (microbiome if pmid <= per_topic else sleep)(session, pmid)
    session.commit()


# --- expansion terms -------------------------------------------------------------------------------------


def test_every_seed_claim_has_default_terms() -> None:
    seed = json.loads(resources.files("db").joinpath("seed/claims.json").read_text(encoding="utf-8"))
    keys = {claim["key"] for claim in seed["claims"]}
    defaults = default_terms()
    assert keys <= set(defaults)
    assert all(defaults[key].synonyms and defaults[key].outcomes for key in keys)
    assert "TRD" in defaults["treatment-resistant"].synonyms
    assert "C-SSRS" in defaults["suicidal-ideation"].outcomes


def test_query_is_the_statement_plus_the_claims_terms(session: Session) -> None:
    users = team(session)
    claim = add_claim(session, statement="Ketamine relieves depression within hours.")
    assert statement_words(claim) == ("ketamine", "relieves", "depression", "hours")
    assert query_terms(session, claim) == statement_words(claim)  # an empty term list
    set_claim_terms(
        session, users["editor"], claim.key, synonyms=["rapid", "Rapid ", "24 h"], outcomes=["MADRS"]
    )
    assert claim_terms(session, claim).synonyms == ("rapid", "24 h")  # trimmed, duplicates dropped
    assert query_terms(session, claim) == (
        "ketamine",
        "relieves",
        "depression",
        "hours",
        "rapid",
        "24 h",
        "MADRS",
    )
    assert query_terms(session, claim, expand=False) == statement_words(claim)


def test_editing_terms_needs_an_editor_and_is_audited(session: Session) -> None:
    users = team(session)
    claim = add_new_claim(session)
    with pytest.raises(PermissionDenied, match="managing documents and claims needs the role"):
        set_claim_terms(session, users["reviewer"], claim.key, synonyms=["x"], outcomes=[])
    set_claim_terms(
        session, users["editor"], claim.key, synonyms=["TRD"], outcomes=["remission"], reason="scope"
    )
    event = claim_history(session, claim.id)[-1]  # type: ignore[arg-type]
    assert (event.action, event.actor_name, event.reason) == (AuditAction.CLAIM_EDITED, "eve", "scope")
    assert event.before == {"search_terms": {"synonyms": [], "outcomes": [], "source": "none"}}
    assert event.after == {
        "search_terms": {"synonyms": ["TRD"], "outcomes": ["remission"], "source": "editor"}
    }
    events = len(list(session.scalars(select(AuditEvent))))
    set_claim_terms(session, users["editor"], claim.key, synonyms=["TRD"], outcomes=["remission"])
    assert len(list(session.scalars(select(AuditEvent)))) == events  # no change, no event
    assert reset_claim_terms(session, users["editor"], claim.key).source == "none"
    assert claim_history(session, claim.id)[-1].after == {  # type: ignore[arg-type]
        "search_terms": {"synonyms": [], "outcomes": [], "source": "none"}
    }


def test_terms_must_be_short_phrases(session: Session) -> None:
    users = team(session)
    claim = add_claim(session)
    with pytest.raises(InvalidInputError, match="keep each term under"):
        set_claim_terms(session, users["editor"], claim.key, synonyms=["word " * 30], outcomes=[])
    with pytest.raises(InvalidInputError, match="must be text"):
        set_claim_terms(session, users["editor"], claim.key, synonyms=[3], outcomes=[])  # type: ignore[list-item]


def test_expansion_finds_studies_the_statement_alone_misses(session: Session) -> None:
    users = team(session)
    claim = add_claim(session)
    add_article(session, 1, title="Esketamine in TRD", abstract="Refractory cases responded.")
    add_article(session, 2, title="A survey of clinic costs", abstract="Billing and staffing.")
    session.commit()
    plain = rank_studies(
        session, claim.key, options=RankingOptions(expand=False, learn=False, semantic=False)
    )
    assert [(s.pmid, s.matched_terms) for s in plain] == [(1, ()), (2, ())]
    set_claim_terms(session, users["editor"], claim.key, synonyms=["TRD", "refractory"], outcomes=[])
    session.commit()
    expanded = rank_studies(session, claim.key, options=NO_TERMS)
    assert expanded[0].pmid == 1
    assert expanded[0].matched_terms == ("TRD", "refractory")
    assert expanded[0].lexical > 0 == expanded[1].lexical
    assert "matched TRD, refractory" in expanded[0].why


# --- the queue ------------------------------------------------------------------------------------------


def test_queue_returns_every_untagged_study(session: Session) -> None:
    users = team(session)
    claim = add_claim(session)
    for pmid in range(1, 31):
        (microbiome if pmid % 2 else sleep)(session, pmid)
    add_article(
        session, 31, title="Ketamine relieves depression within hours", abstract="Hours later, relief."
    )
    session.commit()
    vote(session, users["reviewer"], claim, 3, StudyVerdict.SUPPORTED)
    vote(session, users["reviewer"], claim, 4, StudyVerdict.NOT_RELEVANT)
    vote(session, users["reviewer2"], claim, 5, StudyVerdict.NOT_RELEVANT)
    session.commit()
    ranked = rank_studies(session, claim.key)
    assert sorted(s.pmid for s in ranked) == [p for p in range(1, 32) if p not in {3, 4, 5}]
    assert [s.rank for s in ranked] == list(range(1, 29))
    assert ranked[0].pmid == 31  # the only study that matches the claim's words
    # A reviewer's queue keeps what others tagged: each study gets each reviewer's vote.
    queue = review_queue(session, claim.key, "rita")
    assert sorted(s.pmid for s in queue) == [p for p in range(1, 32) if p not in {3, 4}]
    others = [s.pmid for s in review_queue(session, claim.key, users["reviewer2"])]
    assert sorted(others) == [p for p in range(1, 32) if p != 5]
    assert [s.pmid for s in review_queue(session, claim.key, users["reviewer2"], limit=3)] == others[:3]
    # An editor (never blinded) learns from the whole team's tags, as rank_studies does: the same order.
    # (A blinded reviewer learns from their own votes alone: tests/test_ranking.py's blind-mode tests.)
    editors = [s.pmid for s in review_queue(session, claim.key, users["editor"])]
    assert [p for p in editors if p not in {3, 4, 5}] == [s.pmid for s in ranked]
    assert len(rank_studies(session, claim.key, top=5)) == 5


def test_queue_sees_articles_added_after_it_was_first_ranked(session: Session) -> None:
    claim = add_claim(session)
    sleep(session, 1)
    session.commit()
    assert [s.pmid for s in rank_studies(session, claim.key)] == [1]
    sleep(session, 2)
    session.commit()
    assert [s.pmid for s in rank_studies(session, claim.key)] == [1, 2]


def test_ranking_is_reproducible_and_ties_break_by_pmid(session: Session) -> None:
    claim = add_claim(session)
    for pmid in (9, 2, 7, 4):
        sleep(session, pmid)
    session.commit()
    first = rank_studies(session, claim.key)
    clear_corpus_cache()
    second = rank_studies(session, claim.key)
    assert first == second
    assert [s.pmid for s in first] == [2, 4, 7, 9]  # identical relevance: PMID order


def test_stronger_designs_come_first_among_equals(session: Session) -> None:
    users = team(session)
    claim = add_claim(session)
    text = {"title": "Infusion study", "abstract": "RESULTS: Scores changed."}
    add_article(session, 1, publication_types=["Case Reports"], **text)
    add_article(session, 2, publication_types=["Observational Study"], **text)
    add_article(session, 3, publication_types=["Randomized Controlled Trial"], **text)
    session.commit()
    ranked = rank_studies(session, claim.key)
    assert [(s.pmid, s.design) for s in ranked] == [
        (3, StudyDesign.RCT),
        (2, StudyDesign.OBSERVATIONAL),
        (1, StudyDesign.CASE_REPORT),
    ]
    assert "design: RCT" in ranked[0].why
    # A reviewer's correction of the design is what the queue uses.
    correct_design(session, users["reviewer"], 1, StudyDesign.META_ANALYSIS, "pooled five trials")
    session.commit()
    assert [s.pmid for s in rank_studies(session, claim.key)] == [1, 3, 2]
    no_bonus = RankingOptions(design_bonus=False)
    assert [s.pmid for s in rank_studies(session, claim.key, options=no_bonus)] == [1, 2, 3]


# --- learning from tags ----------------------------------------------------------------------------------


def test_model_waits_for_a_relevant_and_a_not_relevant_tag(session: Session) -> None:
    users = team(session)
    claim = add_claim(session)
    for pmid in range(1, 7):
        (microbiome if pmid % 2 else sleep)(session, pmid)
    session.commit()
    vote(session, users["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
    session.commit()
    assert all(s.model is None and "model" not in s.why for s in rank_studies(session, claim.key))
    vote(session, users["reviewer"], claim, 2, StudyVerdict.NOT_RELEVANT)
    session.commit()
    ranked = rank_studies(session, claim.key)
    assert all(s.model is not None for s in ranked)
    assert "learnt from 1 relevant, 1 not" in ranked[0].why


def rita_tagged_two_topics(session: Session) -> tuple[dict[str, User], Claim]:
    """Two topics of ten studies each; rita judged three of the first relevant, three of the second not."""
    users = team(session)
    claim = add_claim(session)
    two_topics(session, per_topic=10)
    for pmid in (1, 2, 3):
        vote(session, users["reviewer"], claim, pmid, StudyVerdict.SUPPORTED)
    for pmid in (11, 12, 13):
        vote(session, users["reviewer"], claim, pmid, StudyVerdict.NOT_RELEVANT)
    session.commit()
    return users, claim


def test_queue_learns_from_tags_and_retrains_when_they_change(session: Session) -> None:
    users, claim = rita_tagged_two_topics(session)
    first = [s.pmid for s in rank_studies(session, claim.key)]
    assert set(first[:7]) == set(range(4, 11))  # the other microbiome studies lead
    # The team changes its mind: sleep studies are what the claim needs. The next ranking follows.
    for pmid in (4, 5, 6, 7):
        vote(session, users["reviewer2"], claim, pmid, StudyVerdict.NOT_RELEVANT)
    for pmid in (14, 15, 16, 17):
        vote(session, users["reviewer2"], claim, pmid, StudyVerdict.MIXED)
    session.commit()
    assert claim_labels(session, claim)[14] is True
    second = [s.pmid for s in rank_studies(session, claim.key)]
    assert set(second[:3]) == {18, 19, 20}


def test_simulated_labels_rank_like_real_tags(session: Session) -> None:
    users = team(session)
    claim = add_claim(session)
    two_topics(session, per_topic=5)
    labels = {1: True, 6: False}
    simulated = rank_with_labels(session, claim.key, labels)
    vote(session, users["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
    vote(session, users["reviewer"], claim, 6, StudyVerdict.NOT_RELEVANT)
    session.commit()
    assert [s.pmid for s in rank_studies(session, claim.key)] == [s.pmid for s in simulated]
    assert [s.pmid for s in simulated[:4]] == [2, 3, 4, 5]


def test_in_blind_mode_a_reviewers_queue_learns_only_from_their_own_votes(session: Session) -> None:
    users, claim = rita_tagged_two_topics(session)  # the test document has blind mode on
    untaught = [s.pmid for s in rank_with_labels(session, claim.key, {})]
    # rob has voted on nothing: rita's votes, hidden from him, must not order his queue either.
    queue = review_queue(session, claim.key, users["reviewer2"])
    assert all(s.model is None for s in queue)
    assert [s.pmid for s in queue] == untaught
    # His own votes teach his queue, and say so (1 relevant, 1 not: rita's six are not counted).
    vote(session, users["reviewer2"], claim, 20, StudyVerdict.SUPPORTED)
    vote(session, users["reviewer2"], claim, 4, StudyVerdict.NOT_RELEVANT)
    session.commit()
    own = review_queue(session, claim.key, users["reviewer2"])
    assert "learnt from 1 relevant, 1 not" in own[0].why
    assert [s.pmid for s in own] == [
        s.pmid for s in rank_with_labels(session, claim.key, {20: True, 4: False})
    ]
    # rita's queue learns from hers alone, rob's opposite votes left out.
    mine = review_queue(session, claim.key, users["reviewer"])
    assert "learnt from 3 relevant, 3 not" in mine[0].why
    # An editor sees every vote, so the editor's view (rank_studies, or an editor's queue) learns from all.
    assert "learnt from 4 relevant, 4 not" in review_queue(session, claim.key, users["editor"])[0].why
    assert "learnt from 4 relevant, 4 not" in rank_studies(session, claim.key)[0].why
    # His next vote moves his own model's counts; they rank as a model trained on his votes at once.
    vote(session, users["reviewer2"], claim, 19, StudyVerdict.SUPPORTED)
    session.commit()
    labels = {20: True, 4: False, 19: True}
    after = review_queue(session, claim.key, users["reviewer2"])
    assert [(s.pmid, s.score) for s in after] == [
        (s.pmid, s.score) for s in rank_with_labels(session, claim.key, labels)
    ]


def test_with_blind_mode_off_a_reviewers_queue_learns_from_the_team(session: Session) -> None:
    from db.review.sources import set_blind_mode

    users, claim = rita_tagged_two_topics(session)
    blind = review_queue(session, claim.key, users["reviewer2"])
    set_blind_mode(session, users["editor"], document_of(session, claim).slug, False)
    session.commit()
    open_queue = review_queue(session, claim.key, users["reviewer2"])
    assert all(s.model is None for s in blind)
    assert "learnt from 3 relevant, 3 not" in open_queue[0].why
    assert {s.pmid for s in open_queue[:10]} == set(range(1, 11))  # microbiome first, rita's too


# --- small pieces ----------------------------------------------------------------------------------------


def test_percentile_gives_equal_values_equal_standing() -> None:
    import numpy as np

    assert percentile(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [1.0, 0.25, 1.0, 0.5]


def test_tokens_drop_stopwords_and_plural_s() -> None:
    assert tokens("The relapses of patients with TRD, and 5-HT") == ["relapse", "patient", "trd", "ht"]


def test_warming_builds_the_features_in_the_background(db_url: str) -> None:
    from db.engine import open_session
    from db.ranking import corpus as ranking_corpus

    with open_session(db_url) as session:
        sleep(session, 1)
        session.commit()
    assert not ranking_corpus._stores
    thread = ranking_corpus.warm_corpus_cache(functools.partial(open_session, db_url))
    thread.join(timeout=30)
    assert not thread.is_alive()
    (store,) = ranking_corpus._stores.values()
    built = store.corpus
    assert built is not None and built._features  # the features too, not only titles and designs
    with open_session(db_url) as session:
        assert ranking_corpus.current_corpus(session) is built  # reused, not rebuilt
    assert built.pmids.tolist() == [1]


# --- what is kept between requests -----------------------------------------------------------------------


def _count_training(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often naive Bayes' counts are built from every tag, and how often brought up to date."""
    from db.ranking import queue as ranking

    calls = {"class_totals": 0, "update_totals": 0}
    for name in calls:
        real = getattr(ranking, name)

        def counted(*args: object, _name: str = name, _real: object = real) -> object:
            calls[_name] += 1
            return _real(*args)  # type: ignore[operator]

        monkeypatch.setattr(ranking, name, counted)
    return calls


def test_queue_reuses_the_model_until_a_decision_changes(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.review.assessments import update_assessment

    users = team(session)
    claim = add_claim(session)
    two_topics(session, per_topic=10)
    vote(session, users["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
    changed = vote(session, users["reviewer"], claim, 11, StudyVerdict.NOT_RELEVANT)
    session.commit()
    trainings = _count_training(monkeypatch)
    # The editor's queue and rank_studies learn from every vote (blind mode hides none from an editor).
    first = review_queue(session, claim.key, users["editor"])
    assert review_queue(session, claim.key, users["editor"]) == first
    ranked = [s.pmid for s in rank_studies(session, claim.key)]
    assert ranked == [s.pmid for s in first if s.pmid not in {1, 11}]  # the same model
    assert trainings == {"class_totals": 1, "update_totals": 0}
    assert {s.pmid for s in first[:10]} == set(range(1, 11))  # microbiome first
    # A new decision, even one not yet committed, retrains at the next request, from that study alone.
    vote(session, users["reviewer2"], claim, 12, StudyVerdict.SUPPORTED)
    assert "learnt from 2 relevant, 1 not" in review_queue(session, claim.key, users["editor"])[0].why
    session.commit()
    assert trainings == {"class_totals": 1, "update_totals": 1}
    # So does a changed vote: 11 (sleep) becomes relevant; with no study left to contrast, no model.
    update_assessment(
        session, users["reviewer"], changed.id, changed.version, verdict=StudyVerdict.MIXED, reason="re-read"
    )
    session.commit()
    assert claim_labels(session, claim)[11] is True
    assert all(s.model is None for s in review_queue(session, claim.key, users["editor"]))
    vote(session, users["reviewer2"], claim, 2, StudyVerdict.NOT_RELEVANT)
    session.commit()
    queue = rank_studies(session, claim.key)
    assert trainings == {"class_totals": 1, "update_totals": 3}
    assert {s.pmid for s in queue[:8]} == set(range(13, 21))  # 1, 2, 11 and 12 are tagged
    # Brought up to date decision by decision, the model ranks as one trained on every tag at once.
    clear_corpus_cache()
    fresh = rank_studies(session, claim.key)
    assert trainings["class_totals"] == 2
    assert [(s.pmid, s.score, s.why) for s in queue] == [(s.pmid, s.score, s.why) for s in fresh]


def test_a_rolled_back_decision_is_forgotten(session: Session) -> None:
    users = team(session)
    claim = add_claim(session)
    two_topics(session, per_topic=5)
    vote(session, users["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
    vote(session, users["reviewer"], claim, 6, StudyVerdict.NOT_RELEVANT)
    session.commit()
    before = rank_studies(session, claim.key)
    vote(session, users["reviewer"], claim, 7, StudyVerdict.SUPPORTED)
    assert 7 not in {s.pmid for s in rank_studies(session, claim.key)}
    session.rollback()
    assert rank_studies(session, claim.key) == before
    vote(session, users["reviewer"], claim, 2, StudyVerdict.SUPPORTED)  # may reuse the event's id
    session.commit()
    after = rank_studies(session, claim.key)
    assert 7 in {s.pmid for s in after} and 2 not in {s.pmid for s in after}
    assert "learnt from 2 relevant, 1 not" in after[0].why


def test_claim_labels_count_a_study_relevant_if_any_vote_judges_it(session: Session) -> None:
    users = team(session)
    claim = add_claim(session)
    for pmid in (1, 2):
        sleep(session, pmid)
    session.commit()
    vote(session, users["reviewer"], claim, 1, StudyVerdict.NOT_RELEVANT)
    vote(session, users["reviewer2"], claim, 1, StudyVerdict.UNSUPPORTED)
    vote(session, users["reviewer"], claim, 2, StudyVerdict.NOT_RELEVANT)
    session.commit()
    assert claim_labels(session, claim) == {1: True, 2: False}


def test_lexical_scores_follow_a_revised_article(session: Session) -> None:
    from db.corpus.articles import upsert_articles
    from db.models import Article

    claim = add_claim(session, statement="Ketamine relieves depression within hours.")
    sleep(session, 1)
    sleep(session, 2)
    session.commit()
    assert [(s.pmid, s.lexical) for s in rank_studies(session, claim.key, options=NO_TERMS)] == [
        (1, 0.0),
        (2, 0.0),
    ]
    article = session.get(Article, 2)
    assert article is not None
    revised = {column: getattr(article, column) for column in ("pmid", "abstract", "publication_types")}
    upsert_articles(session, [{**revised, "title": "Ketamine relieves depression", "content_hash": "v2"}])
    session.commit()
    ranked = rank_studies(session, claim.key, options=NO_TERMS)
    assert ranked[0].pmid == 2 and ranked[0].lexical > 0
    assert ranked[0].title == "Ketamine relieves depression"


def test_corpus_reads_only_new_articles_and_ranks_as_a_fresh_build(session: Session) -> None:
    from db.ranking.corpus import current_corpus

    users = team(session)
    claim = add_claim(session)
    for pmid in range(1, 11):
        (microbiome if pmid % 2 else sleep)(session, pmid)
    session.commit()
    vote(session, users["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
    vote(session, users["reviewer"], claim, 2, StudyVerdict.NOT_RELEVANT)
    session.commit()
    rank_studies(session, claim.key)
    before = current_corpus(session)
    assert before._features  # a model was trained, so the features exist
    for pmid in (11, 12):
        microbiome(session, pmid)
    session.commit()
    after = current_corpus(session)
    assert after is not before
    assert after.studies[:10] == before.studies[:10]  # the same objects: not read or tokenised again
    assert all(study.terms is not None for study in after.studies)  # new ones tokenised on arrival
    incremental = rank_studies(session, claim.key)
    clear_corpus_cache()
    fresh = rank_studies(session, claim.key)
    assert [(s.pmid, s.score, s.why) for s in incremental] == [(s.pmid, s.score, s.why) for s in fresh]


def test_features_wait_for_tags_to_learn_from(session: Session) -> None:
    from db.ranking.corpus import current_corpus

    users = team(session)
    claim = add_claim(session)
    for pmid in range(1, 5):
        sleep(session, pmid)
    session.commit()
    vote(session, users["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
    session.commit()
    rank_studies(session, claim.key)
    assert not current_corpus(session)._features
    vote(session, users["reviewer"], claim, 2, StudyVerdict.NOT_RELEVANT)
    session.commit()
    rank_studies(session, claim.key)
    assert current_corpus(session)._features


def test_preparing_the_queues_trains_every_claim_ahead(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.ranking.queue import prepare_queues

    users = team(session)
    first = add_claim(session)
    second = add_claim(
        session,
        document_of(session, first),
        key="stay-well",
        sentence="Some patients stay well for months.",
        statement="Patients stay well for months.",
    )
    claims = [first, second]
    two_topics(session, per_topic=5)
    for claim in claims:
        vote(session, users["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
        vote(session, users["reviewer"], claim, 6, StudyVerdict.NOT_RELEVANT)
    session.commit()
    prepare_queues(session)
    trainings = _count_training(monkeypatch)
    for claim in claims:
        # The team's model (an editor's queue) and, in blind mode, each voting reviewer's own.
        assert "learnt from 1 relevant, 1 not" in review_queue(session, claim.key, users["editor"])[0].why
        assert "learnt from 1 relevant, 1 not" in review_queue(session, claim.key, users["reviewer"])[0].why
        assert review_queue(session, claim.key, users["reviewer2"])[0].model is None  # no vote of his own
    assert trainings == {"class_totals": 0, "update_totals": 0}


def test_word_counts_are_stored_once_per_content_version(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.corpus.articles import upsert_articles
    from db.models import Article, ArticleTerms
    from db.ranking import corpus as ranking_corpus

    users = team(session)
    claim = add_claim(session)
    two_topics(session, per_topic=3)
    vote(session, users["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
    vote(session, users["reviewer"], claim, 4, StudyVerdict.NOT_RELEVANT)
    session.commit()
    first = rank_studies(session, claim.key)
    stored = {row.pmid: row.content_hash for row in session.scalars(select(ArticleTerms))}
    assert stored == {pmid: f"hash-{pmid}" for pmid in range(1, 7)}
    # A restart reads them instead of tokenising the articles again, and ranks the same.
    clear_corpus_cache()
    tokenised: list[int] = []
    real = ranking_corpus._Tokeniser.of

    def counted(self: object, *args: object) -> object:
        tokenised.append(1)
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ranking_corpus._Tokeniser, "of", counted)
    assert [(s.pmid, s.score) for s in rank_studies(session, claim.key)] == [(s.pmid, s.score) for s in first]
    assert not tokenised
    # A revised article is tokenised again, and its stored counts replaced.
    article = session.get(Article, 2)
    assert article is not None
    revised = {column: getattr(article, column) for column in ("pmid", "abstract", "publication_types")}
    upsert_articles(
        session, [{**revised, "title": "Sleep architecture and slow waves", "content_hash": "v2"}]
    )
    session.commit()
    assert "Sleep architecture" in next(s.title for s in rank_studies(session, claim.key) if s.pmid == 2)
    assert len(tokenised) == 1
    session.expire_all()
    assert session.get(ArticleTerms, 2).content_hash == "v2"  # type: ignore[union-attr]


def test_storing_word_counts_never_waits_for_the_callers_own_write(sqlite_url: str) -> None:
    import time

    from db.engine import SQLITE_BUSY_TIMEOUT_MS, engine_for, open_session
    from db.models import ArticleTerms

    with open_session(sqlite_url) as session:
        users = team(session)
        claim = add_claim(session)
        two_topics(session, per_topic=3)
        vote(session, users["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
        vote(session, users["reviewer"], claim, 4, StudyVerdict.NOT_RELEVANT)
        # Uncommitted: this session holds SQLite's write lock while the model is first trained.
        started = time.perf_counter()
        ranked = rank_studies(session, claim.key)
        assert time.perf_counter() - started < SQLITE_BUSY_TIMEOUT_MS / 1000
        assert ranked[0].model is not None
        session.commit()
        assert not list(session.scalars(select(ArticleTerms)))  # not stored this time
        clear_corpus_cache()
        assert rank_studies(session, claim.key) == ranked
        assert len(list(session.scalars(select(ArticleTerms)))) == 6  # stored at the next build
    with engine_for(sqlite_url).connect() as connection:  # pooled connections keep their timeout
        timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
        assert timeout == SQLITE_BUSY_TIMEOUT_MS


def test_designs_read_the_mesh_descriptors(session: Session) -> None:
    claim = add_claim(session)
    add_article(session, 1, publication_types=["Randomized Controlled Trial"], mesh=["Animals", "Rats"])
    add_article(session, 2, publication_types=["Randomized Controlled Trial"], mesh=["Animals", "Humans"])
    add_article(session, 3, publication_types=["Journal Article"], mesh=["Cohort Studies"])
    session.commit()
    designs = {s.pmid: s.design for s in rank_studies(session, claim.key)}
    assert designs == {1: StudyDesign.PRECLINICAL, 2: StudyDesign.RCT, 3: StudyDesign.OBSERVATIONAL}


def test_personal_models_never_push_out_the_claims_shared_values(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.ranking import corpus as ranking_corpus

    monkeypatch.setattr(ranking_corpus, "DERIVED_CACHE_SIZE", 2)
    monkeypatch.setattr(ranking_corpus, "PERSONAL_CACHE_SIZE", 3)
    clear_corpus_cache()
    ranking_corpus.keep(session, ("lexical", 1), "scores of claim 1")
    ranking_corpus.keep(session, ("learned", 1, None), "team model")
    for reviewer in range(10):  # a large team's blinded reviewers
        ranking_corpus.keep(session, ("learned", 1, reviewer), f"model of {reviewer}", personal=True)
    assert ranking_corpus.recall(session, ("lexical", 1)) == "scores of claim 1"
    assert ranking_corpus.recall(session, ("learned", 1, None)) == "team model"
    kept = [r for r in range(10) if ranking_corpus.recall(session, ("learned", 1, r)) is not None]
    assert kept == [7, 8, 9]  # the latest, as many as are kept
    ranking_corpus.keep(session, ("lexical", 2), "scores of claim 2")
    ranking_corpus.keep(session, ("lexical", 3), "scores of claim 3")
    assert ranking_corpus.recall(session, ("lexical", 1)) is None  # shared values age among themselves
