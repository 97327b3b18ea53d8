"""A new claim's search: built from the claim itself (db.ranking.query), no term list written for it."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from db.ranking.model import clear_corpus_cache
from db.ranking.query import TIME_SCALES, automatic_terms, time_scale_terms
from db.ranking.queue import RankingOptions, claim_query_terms, rank_studies
from db.review.claims import edit_claim
from db.review.sources import ensure_seed_content
from tests.review_builders import add_article, add_claim, team

QUEUE_BEFORE_TAGS = RankingOptions(learn=False, semantic=False, design_bonus=False)


@pytest.fixture(autouse=True)
def _fresh_corpus_cache() -> None:
    clear_corpus_cache()


def test_automatic_terms_read_every_field_an_editor_wrote(session: Session) -> None:
    claim = add_claim(
        session,
        key="esketamine-nasal",
        statement="Esketamine spray works.",
        sentence="Studies show that ketamine relieves depression within hours.",
    )
    claim.outcome = "remission on the MADRS"
    claim.comparator = "placebo spray"

    terms = automatic_terms(claim)

    for word in ("esketamine", "spray", "relieves", "depression", "remission", "madrs", "placebo"):
        assert word in terms
    assert "the" not in terms and "on" not in terms
    # "within hours" names a short time scale: onset words join; nothing names a long one.
    assert set(TIME_SCALES["short"]) <= set(terms)
    assert not set(TIME_SCALES["long"]) & set(terms)


@pytest.mark.parametrize(
    ("text", "short", "long"),
    [
        ("Ketamine lifts mood.", False, False),
        ("Ketamine lifts mood within a day.", True, False),
        ("Ketamine works within hours.", True, False),
        ("Benefits last for months.", False, True),
        ("Rapid relief that is sustained.", True, True),
        ("The hourglass of depression.", False, False),  # whole words only
    ],
)
def test_time_scale_words_come_only_with_a_named_time_scale(text: str, short: bool, long: bool) -> None:
    found = set(time_scale_terms(text))
    assert (set(TIME_SCALES["short"]) <= found) is short
    assert (set(TIME_SCALES["long"]) <= found) is long


def test_seed_claims_keep_their_term_lists_and_new_claims_get_the_automatic_search(session: Session) -> None:
    ensure_seed_content(session)
    new = add_claim(session, key="new-glutamate", statement="Ketamine acts on the glutamate system.")
    session.commit()

    seed_terms = claim_query_terms(session, "glutamate-mechanism")
    new_terms = claim_query_terms(session, "new-glutamate")

    assert "NMDA" in seed_terms  # from db/seed/expansions.json
    assert "NMDA" not in new_terms and "glutamate" in new_terms
    assert new_terms == automatic_terms(new)


def test_editing_a_new_claims_outcome_changes_its_search(session: Session) -> None:
    people = team(session)
    add_claim(
        session,
        key="new-claim",
        statement="Ketamine helps.",
        sentence="Studies show that ketamine relieves depression within hours.",
    )
    session.commit()
    assert "relapse" not in claim_query_terms(session, "new-claim")

    edit_claim(session, people["editor"], "new-claim", outcome="relapse over six months")
    session.commit()

    terms = claim_query_terms(session, "new-claim")
    assert "relapse" in terms and set(TIME_SCALES["long"]) <= set(terms)


def _glutamate_corpus(session: Session) -> None:
    """12 studies naming glutamate and NMDA, 15 on surgical pain, and one (the highest PMID) on NMDA
    receptors and synaptic plasticity that never says "glutamate"."""
    for pmid in range(1, 13):
        add_article(
            session,
            pmid,
            title=f"Glutamate and NMDA receptor signalling after ketamine, cohort {pmid}",
            abstract="RESULTS: Glutamate rose; NMDA receptor blockade increased synaptic plasticity and BDNF.",
            publication_types=["Journal Article"],
        )
    for pmid in range(13, 28):
        add_article(
            session,
            pmid,
            title=f"Postoperative pain after knee surgery, cohort {pmid}",
            abstract="RESULTS: Opioid consumption and pain scores after surgery fell with infusion.",
            publication_types=["Journal Article"],
        )
    add_article(
        session,
        99,
        title="NMDA receptor blockade and synaptic plasticity",
        abstract="RESULTS: BDNF and synaptic plasticity rose after NMDA receptor blockade.",
        publication_types=["Journal Article"],
    )


def test_feedback_lifts_a_study_the_claims_words_miss_but_its_best_matches_resemble(session: Session) -> None:
    _glutamate_corpus(session)
    add_claim(session, key="new-glutamate", statement="Ketamine acts on the glutamate system.")
    session.commit()

    order = [s.pmid for s in rank_studies(session, "new-glutamate", options=QUEUE_BEFORE_TAGS)]
    plain = RankingOptions(expand=False, learn=False, semantic=False, design_bonus=False)
    plain_order = [s.pmid for s in rank_studies(session, "new-glutamate", options=plain)]

    assert set(order[:12]) == set(range(1, 13))
    assert order[12] == 99  # before every pain study, though it shares no word with the claim
    assert plain_order[-1] == 99  # the statement alone leaves it last (no match, highest PMID)


def test_feedback_is_skipped_on_a_corpus_too_small_to_learn_from(session: Session) -> None:
    add_article(session, 1, title="Glutamate after ketamine", abstract="Glutamate rose.")
    add_article(session, 2, title="NMDA receptor blockade", abstract="Synaptic plasticity rose.")
    add_claim(session, key="new-glutamate", statement="Ketamine acts on the glutamate system.")
    session.commit()

    ranked = rank_studies(session, "new-glutamate", options=QUEUE_BEFORE_TAGS)

    assert [s.pmid for s in ranked] == [1, 2]
    assert ranked[1].lexical == 0 and ranked[1].score == 0


def _two_topic_corpus(session: Session) -> None:
    """12 sleep studies (1-12) and 12 gut studies (13-24) that name ketamine, and one study of each topic
    that names neither ketamine nor the topic's word: 98 (gut bacteria) and 99 (slow waves)."""
    for pmid in range(1, 25):
        sleep = pmid <= 12
        add_article(
            session,
            pmid,
            title=f"Ketamine and {'sleep' if sleep else 'the gut'}, cohort {pmid}",
            abstract="RESULTS: Polysomnography showed slow waves changed."
            if sleep
            else "RESULTS: Fecal bacteria of the microbiome shifted.",
            publication_types=["Journal Article"],
        )
    add_article(session, 98, title="Fecal bacteria", abstract="The microbiome shifted.")
    add_article(session, 99, title="Polysomnography", abstract="Slow waves changed.")


def test_a_new_claims_feedback_learns_from_the_decisions_made(session: Session) -> None:
    from db.ranking.model import current_corpus, percentile
    from db.ranking.query import feedback_standing
    from db.ranking.signals import lexical_scores

    _two_topic_corpus(session)
    claim = add_claim(session, key="new-either", statement="Ketamine changes sleep or the gut.")
    session.commit()
    corpus = current_corpus(session)
    terms = claim_query_terms(session, claim.key)
    lexical = lexical_scores(session, corpus, terms)
    first = percentile(lexical)
    row = {int(pmid): i for i, pmid in enumerate(corpus.pmids)}

    guessed = feedback_standing(session, corpus, first, ("test", terms))
    # Reviewers judged gut studies relevant and sleep studies not: the feedback set follows them.
    labels = {**dict.fromkeys(range(13, 19), True), **dict.fromkeys(range(1, 7), False)}
    known = feedback_standing(session, corpus, first, ("test", terms), labels)

    assert guessed is not None and known is not None
    assert guessed[row[99]] > guessed[row[98]]  # the first search's best are sleep studies (lower PMIDs)
    assert known[row[98]] > known[row[99]]
    # Kept per set of decisions: asking again without them gives the first answer back.
    assert feedback_standing(session, corpus, first, ("test", terms)) is guessed


def test_a_new_claims_queue_passes_its_decisions_to_the_feedback(session: Session) -> None:
    from db.ranking.queue import rank_with_labels

    _two_topic_corpus(session)
    add_claim(session, key="new-either", statement="Ketamine changes sleep or the gut.")
    session.commit()
    labels = {**dict.fromkeys(range(13, 19), True), **dict.fromkeys(range(1, 7), False)}

    def lead_of_gut(options: RankingOptions) -> float:
        scores = {s.pmid: s.score for s in rank_with_labels(session, "new-either", labels, options=options)}
        return scores[98] - scores[99]

    # Naive Bayes learns the same in both; the feedback set is what differs.
    assert lead_of_gut(RankingOptions(semantic=False)) > lead_of_gut(
        RankingOptions(semantic=False, decisions=False)
    )
