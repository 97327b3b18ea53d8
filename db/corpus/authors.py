"""An author of a PubMed record as a name: the one formatter the pages and every export use."""

from __future__ import annotations

from typing import Any, Literal


def author_name(author: dict[str, Any], style: Literal["citation", "medline"] = "citation") -> str:
    """A stored author (last_name, fore_name, initials or collective_name) as people read it.

    "citation": "Last, Fore" (initials when there is no fore name), as RIS, BibTeX and the study
    page write it. "medline": "Last Initials" (fore name when there are no initials), as PubMed's
    own author lists and the article exports write it. A collective name is written as it is.
    """
    if author.get("collective_name"):
        return str(author["collective_name"])
    last = author.get("last_name") or ""
    if style == "medline":
        given = author.get("initials") or author.get("fore_name") or ""
        return " ".join(part for part in (last, given) if part)
    given = author.get("fore_name") or author.get("initials") or ""
    return f"{last}, {given}" if last and given else last or given
