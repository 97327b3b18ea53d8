"""The review workflow: users, claims, import-assessments, conflicts, resolve, signoff, queue."""

from __future__ import annotations

from pathlib import Path

import click

from db.vocab import Intervention, Population, Rating, Role, SignOffDecision
from ingest.cli.options import actor_option
from ingest.cli.output import say
from ingest.cli.session import acting_user, database_session

ROLES = click.Choice([role.value for role in Role])


@click.command(
    "import-assessments",
    short_help="Import reviewers' assessments from a CSV, all or nothing.",
    help="Import reviewers' assessments from FILE.csv (UTF-8, header row). Columns: reviewer, claim_key, "
    "pmid, verdict, quote, note; optional: design and the evidence fields participants, follow_up, effect, "
    "population, intervention, directness, indirect_reason, risk_of_bias (a missing column leaves that field "
    "of an existing assessment as it is; a blank cell clears it). `export assessments --format csv` writes "
    "the same columns. Every bad row is reported with its line number; nothing is written if any row is bad.",
)
@click.argument("file", metavar="FILE.csv", type=click.Path(path_type=Path))
@actor_option("the user importing: an editor for a team's file, or the reviewer of every row")
@click.option(
    "--create-reviewers",
    is_flag=True,
    help="add unknown reviewers as users with the reviewer role (needs an admin)",
)
@click.option("--dry-run", is_flag=True, help="check and count, write nothing")
def import_assessments_command(file: Path, actor: str | None, create_reviewers: bool, dry_run: bool) -> int:
    from db.review.assessment_import import import_assessments
    from ingest.assessment_csv import read_assessment_csv

    rows = read_assessment_csv(file)
    with database_session(seed=True) as session:
        outcome = import_assessments(
            session,
            acting_user(session, actor),
            rows,
            source=file.name,
            create_reviewers=create_reviewers,
        )
        if dry_run:
            session.rollback()
        else:
            session.commit()
    verb = "Would import" if dry_run else "Imported"
    created = f"; new reviewers: {', '.join(outcome.reviewers_created)}" if outcome.reviewers_created else ""
    say(
        f"{verb} {len(rows)} row(s) from {file.name}: {outcome.created} new, {outcome.updated} changed, "
        f"{outcome.unchanged} unchanged{created}."
    )
    return 0


# --- users -----------------------------------------------------------------------------------------


@click.group("users", help="Manage users and their roles.")
def users() -> None:
    pass


@users.command(
    "add",
    short_help="Add a user (the first one must be an admin and needs no --as).",
    help="Add the user NAME, spelt as reviewers' CSV rows spell it. The first user must be an admin and "
    "needs no --as.",
)
@click.argument("name")
@click.option("--role", required=True, type=ROLES, help="what the user may do")
@actor_option("the admin adding the user; the first user needs none")
def users_add(name: str, role: str, actor: str | None) -> int:
    from db.review.roles import add_user

    with database_session(seed=True) as session:
        user = add_user(session, acting_user(session, actor) if actor else None, name, Role(role))
        session.commit()
        say(f"Added {user.name} as {Role(user.role).value}.")
        if actor is None:  # the first user: the next ones need an admin to add them
            say(
                f"Add the team as {user.name}: `ketamine-evidence users add NAME --role reviewer --as {user.name}`."
            )
    return 0


@users.command("list", help="List users and roles.")
def users_list() -> int:
    from db.review.roles import list_users

    with database_session(seed=True) as session:
        for user in list_users(session):
            state = "" if user.active else " (deactivated)"
            say(f"{user.name}\t{Role(user.role).value}{state}")
    return 0


@users.command("set-role", help="Change the role of the user NAME.")
@click.argument("name")
@click.option("--role", required=True, type=ROLES, help="the new role")
@click.option("--reason", help="why, for the audit trail")
@actor_option("the admin changing the role")
def users_set_role(name: str, role: str, reason: str | None, actor: str | None) -> int:
    from db.review.roles import set_role

    with database_session(seed=True) as session:
        user = set_role(session, acting_user(session, actor), name, Role(role), reason)
        session.commit()
        say(f"{user.name} is now {Role(user.role).value}.")
    return 0


@users.command("deactivate", help="Stop the user NAME from acting; their work stays attributed.")
@click.argument("name")
@click.option("--reason", help="why, for the audit trail")
@actor_option("the admin deactivating the user")
def users_deactivate(name: str, reason: str | None, actor: str | None) -> int:
    from db.review.roles import deactivate_user

    with database_session(seed=True) as session:
        user = deactivate_user(session, acting_user(session, actor), name, reason)
        session.commit()
        say(f"Deactivated {user.name}.")
    return 0


# --- claims ----------------------------------------------------------------------------------------


@click.group("claims", help="Add, propose, list, edit or retire claims.")
def claims() -> None:
    pass


@claims.command("list", help="List claim keys and statements.")
@click.option("--all", "include_retired", is_flag=True, help="include retired and merged claims")
def claims_list(include_retired: bool) -> int:
    from db.review.claims import list_claims

    with database_session(seed=True) as session:
        for claim in list_claims(session, include_retired=include_retired):
            say(f"{claim.key}\t{claim.status}\t{claim.statement}")
    return 0


@claims.command(
    "edit",
    short_help="Change a claim's wording, PICO, time frame or scope (editors).",
    help="Change the claim KEY. The verdict rule reads its time frame in days (a study measured outside "
    "it is indirect evidence) and the populations and interventions it is about (others are indirect). "
    "Give --population or --intervention once per code; --population any (or --intervention any) "
    "clears the list. Every change is kept in the claim's history.",
)
@click.argument("key")
@click.option("--statement", help="the words an editor checks")
@click.option("--time-frame", help='the time frame in words, e.g. "weeks to months"')
@click.option("--follow-up-min-days", type=float, help="outcomes measured earlier are indirect evidence")
@click.option("--follow-up-max-days", type=float, help="outcomes measured later are indirect evidence")
@click.option(
    "--population",
    "populations",
    multiple=True,
    help=f"a population the claim is about: {', '.join(p.value for p in Population)}, or any",
)
@click.option(
    "--intervention",
    "interventions",
    multiple=True,
    help=f"an intervention the claim is about: {', '.join(i.value for i in Intervention)}, or any",
)
@click.option("--reason", help="why, kept in the claim's history")
@actor_option("the editor changing it")
def claims_edit(
    key: str,
    statement: str | None,
    time_frame: str | None,
    follow_up_min_days: float | None,
    follow_up_max_days: float | None,
    populations: tuple[str, ...],
    interventions: tuple[str, ...],
    reason: str | None,
    actor: str | None,
) -> int:
    from db.review.claims import edit_claim
    from db.review.verdicts import ClaimScope

    changes: dict[str, object] = {
        name: value
        for name, value in {
            "statement": statement,
            "time_frame": time_frame,
            "follow_up_min_days": follow_up_min_days,
            "follow_up_max_days": follow_up_max_days,
        }.items()
        if value is not None
    }
    for name, codes in (("populations", populations), ("interventions", interventions)):
        if codes:
            changes[name] = [] if codes == ("any",) else list(codes)
    if not changes:
        raise click.UsageError("Nothing to change; give at least one option.")
    with database_session(seed=True) as session:
        claim = edit_claim(session, acting_user(session, actor), key, reason=reason, **changes)
        session.commit()
        frame = ClaimScope.of(claim).time_frame() or "any"
        scope = ", ".join(claim.populations) or "any population"
        say(
            f"Claim {key}: time frame {frame}; {scope}; {', '.join(claim.interventions) or 'any intervention'}."
        )
    return 0


@claims.command(
    "add",
    short_help="Add a claim of a document (editors).",
    help="Add the claim KEY of a source document: --statement is the wording editors check, --sentence the "
    "sentence of the document it comes from, copied exactly (it must occur once in the document). Without "
    "--sentence the statement itself must be a sentence of the document, word for word. Without --document "
    "the only document is used (the seed article on a new database). The claim's search is built from its "
    "statement, sentence, PICO and time frame (README: how a new claim gets its search).",
)
@click.argument("key")
@click.option("--statement", required=True, help="the words an editor checks")
@click.option("--sentence", help="the document's sentence the claim comes from, copied exactly")
@click.option("--time-frame", help='the time frame in words, e.g. "hours to days"')
@click.option("--document", "slug", metavar="SLUG", help="the document's slug (default: the only one)")
@click.option("--reason", help="why, kept in the claim's history")
@actor_option("the editor adding it")
def claims_add(
    key: str,
    statement: str,
    sentence: str | None,
    time_frame: str | None,
    slug: str | None,
    reason: str | None,
    actor: str | None,
) -> int:
    from db.review.claims import add_claim
    from db.review.sources import get_document, list_documents

    with database_session(seed=True) as session:
        editor = acting_user(session, actor)
        if slug:
            document = get_document(session, slug)
        else:
            documents = list_documents(session)
            if len(documents) != 1:
                slugs = ", ".join(d.slug for d in documents) or "none"
                raise click.ClickException(
                    f"{len(documents)} documents ({slugs}); name the claim's with --document SLUG."
                )
            document = documents[0]
        if sentence is None and statement.strip() not in document.text:
            raise click.ClickException(
                f"The statement is not a sentence of document {document.slug!r}; give --sentence with the "
                "sentence the claim comes from, copied exactly from the document."
            )
        claim = add_claim(
            session,
            editor,
            document,
            key=key,
            statement=statement,
            sentence=sentence if sentence is not None else statement.strip(),
            reason=reason,
            time_frame=time_frame,
        )
        session.commit()
        say(f"Added claim {claim.key} of {document.slug}; rank its studies with `rank --claim {claim.key}`.")
    return 0


@claims.command(
    "propose",
    short_help="Add an article from a text file and list its claim-like sentences (editors).",
    help="Add the article in FILE (plain text or Markdown, UTF-8) as a source document and list its "
    "claim-like sentences, as the Articles page proposes them: one line each, proposal id, cues and "
    "sentence. If a document with the same slug and the same text is there already, its pending proposals "
    "are listed again (with any new ones). Accept one with `claims accept ID --key KEY`, or reject it.",
)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--title", help="the article's title (default: its first line)")
@click.option("--slug", help="a stable name for the document (default: from the title)")
@click.option("--author", help="who wrote the article")
@click.option("--url", help="where it was published")
@actor_option("the editor adding it")
def claims_propose(
    file: Path, title: str | None, slug: str | None, author: str | None, url: str | None, actor: str | None
) -> int:
    from db.review.sources import add_document, find_document, pending_proposals, slugify, store_proposals

    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise click.ClickException(f"No file {str(file)!r}; give the path of the article's text.") from None
    except UnicodeDecodeError:
        raise click.ClickException(
            f"{file.name} is not UTF-8 text; save the article as plain text or Markdown in UTF-8."
        ) from None
    except OSError as exc:
        raise click.ClickException(f"Cannot read {file}: {exc.strerror}; check the path.") from None
    first_line = next((line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip()), "")
    title = (title or first_line or file.stem)[:300]
    with database_session(seed=True) as session:
        editor = acting_user(session, actor)
        same = find_document(session, slug or slugify(title))
        normalised = text.replace("\r\n", "\n").replace("\r", "\n")
        if same is not None and same.text == normalised:
            document = same
        else:
            document = add_document(
                session, editor, title=title, text=text, slug=slug, author=author, url=url
            )
        store_proposals(session, editor, document)
        session.commit()
        pending = pending_proposals(session, document.id)
        say(f"{document.slug}: {len(pending)} proposed claim(s).")
        for proposal in pending:
            say(f"{proposal.id}\t{', '.join(proposal.cues)}\t{proposal.sentence}")
        if pending:
            say(
                "Accept one with `claims accept ID --key KEY [--statement TEXT]`; reject with `claims reject ID`."
            )
    return 0


@claims.command(
    "accept",
    short_help="Turn a proposed sentence into a claim (editors).",
    help="Accept the claim proposal ID (from `claims propose`) as the claim KEY; --statement rewords it "
    "(default: the sentence itself).",
)
@click.argument("proposal_id", metavar="ID", type=int)
@click.option("--key", required=True, help="the claim's stable key, lowercase words joined by hyphens")
@click.option("--statement", help="the claim as editors check it (default: the proposed sentence)")
@click.option("--time-frame", help='the time frame in words, e.g. "weeks to months"')
@actor_option("the editor accepting it")
def claims_accept(
    proposal_id: int, key: str, statement: str | None, time_frame: str | None, actor: str | None
) -> int:
    from db.review.sources import accept_proposal

    with database_session(seed=True) as session:
        claim = accept_proposal(
            session,
            acting_user(session, actor),
            proposal_id,
            key=key,
            statement=statement,
            time_frame=time_frame,
        )
        session.commit()
        say(f"Added claim {claim.key}; rank its studies with `rank --claim {claim.key}`.")
    return 0


@claims.command("reject", help="Reject the claim proposal ID (from `claims propose`).")
@click.argument("proposal_id", metavar="ID", type=int)
@click.option("--reason", help="why, kept in the audit trail")
@actor_option("the editor rejecting it")
def claims_reject(proposal_id: int, reason: str | None, actor: str | None) -> int:
    from db.review.sources import reject_proposal

    with database_session(seed=True) as session:
        reject_proposal(session, acting_user(session, actor), proposal_id, reason)
        session.commit()
        say(f"Rejected proposal {proposal_id}.")
    return 0


@claims.command("retire", help="Retire the claim KEY; its history stays.")
@click.argument("key")
@click.option("--reason", required=True, help="why the claim is retired")
@actor_option("the editor retiring it")
def claims_retire(key: str, reason: str, actor: str | None) -> int:
    from db.review.claims import retire_claim

    with database_session(seed=True) as session:
        retire_claim(session, acting_user(session, actor), key, reason)
        session.commit()
        say(f"Retired claim {key}.")
    return 0


# --- the editor's work -----------------------------------------------------------------------------


@click.command("conflicts", help="List pairs whose reviewers disagree (editors).")
@click.option("--claim", "claim_key", metavar="KEY", help="only this claim")
@actor_option("the editor asking")
def conflicts_command(claim_key: str | None, actor: str | None) -> int:
    from db.review.claims import get_claim
    from db.review.pairs import open_conflicts

    with database_session(seed=True) as session:
        editor = acting_user(session, actor)
        conflicts = open_conflicts(session, editor, get_claim(session, claim_key) if claim_key else None)
        if not conflicts:
            say("No open conflicts.")
        for c in conflicts:
            votes = ", ".join(f"{name}={verdict.value}" for name, verdict in sorted(c.votes.items()))
            say(f"{c.claim_key}\t{c.pmid}\t{votes}\t{c.title}")
    return 0


@click.command(
    "resolve",
    short_help="Settle a conflict with a final verdict and a reason (editors).",
    help="Settle the conflict on the study PMID for the claim CLAIM_KEY with a final verdict and a reason "
    "(editors).",
)
@click.argument("claim_key")
@click.argument("pmid", type=int)
@click.option("--verdict", required=True, help="supported | mixed | unsupported | not_relevant")
@click.option("--reason", required=True, help="why this verdict; kept beside the original votes")
@actor_option("the editor resolving")
def resolve_command(claim_key: str, pmid: int, verdict: str, reason: str, actor: str | None) -> int:
    from db.review.claims import get_claim
    from db.review.pairs import resolve_conflict

    with database_session(seed=True) as session:
        editor = acting_user(session, actor)
        resolve_conflict(session, editor, get_claim(session, claim_key), pmid, verdict, reason)
        session.commit()
        say(f"PMID {pmid} is {verdict} for {claim_key}.")
    return 0


@click.command(
    "signoff",
    short_help="Sign a claim off with a decision, a rating and a rationale (editors).",
    help="Sign the claim CLAIM_KEY off with a decision, the rating to publish and a rationale (editors). "
    "A rating that departs from the derived verdict needs a rationale of a sentence saying why.",
)
@click.argument("claim_key")
@click.option(
    "--decision",
    required=True,
    type=click.Choice([d.value.replace("_", "-") for d in SignOffDecision]),
    help="ok-to-publish, revise-wording or remove-claim",
)
@click.option(
    "--rating",
    metavar="RATING",
    help="the rating to publish (ClaimReview), one of: "
    + ", ".join(r.value.replace("_", "-") for r in Rating),
)
@click.option("--rationale", required=True, help="why, in a sentence or two")
@actor_option("the editor signing off")
def signoff_command(
    claim_key: str, decision: str, rating: str | None, rationale: str, actor: str | None
) -> int:
    from db.review.claims import get_claim
    from db.review.rating import parse_rating
    from db.review.signoff import sign_off

    chosen = parse_rating(rating)  # a missing or unknown rating: one line naming the allowed ones
    with database_session(seed=True) as session:
        editor = acting_user(session, actor)
        signoff = sign_off(session, editor, get_claim(session, claim_key), decision, rationale, chosen)
        session.commit()
        say(
            f"Signed off {claim_key}: {SignOffDecision(signoff.decision).label}, rated {chosen.label} "
            f"(derived verdict {signoff.verdict.label}, certainty {signoff.strength.label})."
        )
    return 0


@click.command(
    "queue",
    short_help="What waits for an editor: conflicts, changed evidence, sign-offs.",
    help="What waits for an editor: conflicts, changed evidence, sign-offs.",
)
@actor_option("the editor asking")
def queue_command(actor: str | None) -> int:
    from db.review.signoff import editor_queue

    with database_session(seed=True) as session:
        items = editor_queue(session, acting_user(session, actor))
        if not items:
            say("Nothing waits for an editor.")
        for item in items:
            say(f"{item.kind.value}\t{item.summary}")
    return 0


@click.group(help="The articles under review (source documents).")
def documents() -> None:
    pass


@documents.command("list", help="List the documents: slug, status, claims, title, author, outlet, URL.")
def documents_list() -> int:
    from db.review.claims import list_claims
    from db.review.sources import list_documents

    with database_session(seed=True) as session:
        claims_of: dict[int, int] = {}
        for claim in list_claims(session):
            claims_of[claim.document_id] = claims_of.get(claim.document_id, 0) + 1
        for document in list_documents(session):
            assert document.id is not None
            fields = (document.author, document.outlet, document.url)
            say(
                f"{document.slug}\t{document.status.value}\t{claims_of.get(document.id, 0)} claim(s)\t"
                f"{document.title}\t" + "\t".join(value or "-" for value in fields)
            )
    return 0


@documents.command(
    "edit",
    help="Change how the document SLUG is described where it was published (editors). ClaimReview "
    "publishes these: the claim's author (the article's author, else its outlet) and the article's URL. "
    "An empty value (--author '') clears a field.",
)
@click.argument("slug")
@click.option("--title", help="the article's title")
@click.option("--author", help="who wrote the article (a person)")
@click.option("--outlet", help="where it appeared (a site or publication), used when no author is named")
@click.option("--url", help="the article's web address (https://...)")
@click.option("--reason", help="why, for the audit trail")
@actor_option("the editor making the change")
def documents_edit(
    slug: str,
    title: str | None,
    author: str | None,
    outlet: str | None,
    url: str | None,
    reason: str | None,
    actor: str | None,
) -> int:
    from db.review.sources import describe_document

    given = {"title": title, "author": author, "outlet": outlet, "url": url}
    changes = {name: value for name, value in given.items() if value is not None}
    if not changes:
        raise click.UsageError("Nothing to change; give --title, --author, --outlet or --url.")
    with database_session(seed=True) as session:
        document = describe_document(session, acting_user(session, actor), slug, reason=reason, **changes)
        session.commit()
        say(
            f"{document.slug}: {document.title} · author {document.author or '-'} · outlet "
            f"{document.outlet or '-'} · {document.url or 'no URL'}"
        )
    return 0


COMMANDS = [
    import_assessments_command,
    users,
    claims,
    documents,
    conflicts_command,
    resolve_command,
    signoff_command,
    queue_command,
]
