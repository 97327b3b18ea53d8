"""A claim's evidence profile on the Claims page: summary of findings, included studies, PRISMA flow."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from db.read.evidence_profile import EvidenceProfile, Flow
from db.review.verdicts import days_text
from pages._ui import escape, html_block


def show_profile(profile: EvidenceProfile) -> None:
    """Three tabs under the verdict: the summary of findings, every included study, and the flow."""
    findings, studies, flow = st.tabs(["Summary of findings", "Included studies", "How they were found"])
    with findings:
        _summary_of_findings(profile)
    with studies:
        _included_studies(profile)
    with flow:
        _flow(profile)


def _summary_of_findings(profile: EvidenceProfile) -> None:
    result = profile.result
    if profile.absolute_words:
        words = ", ".join(f"“{w}”" for w in profile.absolute_words)
        st.warning(
            f"The claim says {words}. Studies can show an effect, how large and for how long, never that it "
            "is beyond doubt: the editor's rating should say how far the evidence goes.",
            icon=":material/format_quote:",
        )
    span = result.follow_up_days
    follow_up = "not stated" if span is None else _span(span)
    rows = [
        ("Certainty", result.strength.label),
        ("Studies included", f"{len(profile.studies):,} ({len(result.counted):,} deciding)"),
        (
            "Participants in the deciding studies",
            f"{result.participants:,}" if result.participants else "not stated",
        ),
        ("Follow-up of the deciding studies", follow_up),
    ]
    html_block(
        '<table class="ke-sof">'
        + "".join(f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in rows)
        + "</table>"
    )
    if result.downgrades:
        html_block(
            "<p><b>Rated down for</b></p><ul>"
            + "".join(
                f"<li>{escape(d.domain.label)}{' (twice)' if d.levels == 2 else ''}: {escape(d.reason)}</li>"
                for d in result.downgrades
            )
            + "</ul>"
        )
    else:
        st.caption("Not rated down for risk of bias, inconsistency, indirectness or imprecision.")


def _included_studies(profile: EvidenceProfile) -> None:
    if not profile.studies:
        st.caption("No study is included yet.")
    else:
        table = pd.DataFrame(
            [
                {
                    "PMID": s.url,
                    "Year": s.year,
                    "Design": s.design.label + (" (does not decide)" if s.direct and not s.decides else ""),
                    "Participants": s.participants,
                    "Follow-up": days_text(s.follow_up_days) if s.follow_up_days is not None else None,
                    "Verdict": s.verdict.label,
                    "Direct": "yes" if s.direct else f"no: {s.indirect_reason}",
                    "Effect": s.effect,
                    "Quote": s.quote,
                }
                for s in profile.studies
            ]
        )
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={
                "PMID": st.column_config.LinkColumn(
                    "PMID", display_text=r"https://pubmed\.ncbi\.nlm\.nih\.gov/(\d+)/"
                ),
                "Year": st.column_config.NumberColumn(format="%d"),
                "Participants": st.column_config.NumberColumn(format="%d"),
            },
        )
    if profile.left_out:
        st.markdown("**Left out**")
        html_block(
            "<ul>"
            + "".join(f"<li>PMID {item.pmid}: {escape(item.reason)}</li>" for item in profile.left_out)
            + "</ul>"
        )
    if profile.screened_out:
        with st.expander(f"Judged not relevant ({profile.flow.screened - profile.flow.relevant:,})"):
            html_block(
                "<ul>"
                + "".join(
                    f"<li>PMID {item.pmid} {escape(item.title)}"
                    + (f": <i>{escape(item.note)}</i>" if item.note else "")
                    + "</li>"
                    for item in profile.screened_out
                )
                + "</ul>"
            )


def _flow(profile: EvidenceProfile) -> None:
    st.graphviz_chart(prisma_dot(profile.flow), width="content")
    source = profile.provenance
    searched = "; ".join(source.queries) or "no PubMed search run yet"
    last = f" (last run {source.last_harvest})" if source.last_harvest else ""
    imports = f"; {source.imports} file(s) imported" if source.imports else ""
    st.caption(f"PubMed search: {searched}{last}{imports}.")


def prisma_dot(flow: Flow) -> str:
    """A PRISMA 2020-style flow diagram in Graphviz's language (numbers and our own words only)."""
    screened_out = flow.screened - flow.relevant
    reasons = "\\n".join(f"{reason}: {n}" for reason, n in flow.excluded_reasons.items())
    nodes = {
        "identified": f"Records identified\\n(searches and imports)\\nn = {flow.identified:,}",
        "screened": f"Screened for this claim\\nn = {flow.screened:,}",
        "relevant": f"Judged relevant\\nn = {flow.relevant:,}",
        "included": f"Included in the verdict\\nn = {flow.included:,}",
        "not_screened": f"Not yet screened\\nn = {max(flow.identified - flow.screened, 0):,}",
        "not_relevant": f"Not relevant\\nn = {screened_out:,}",
        "excluded": f"Excluded\\nn = {flow.excluded:,}" + (f"\\n{reasons}" if reasons else ""),
    }
    lines = ["digraph prisma {", '  rankdir=TB; node [shape=box, fontname="sans-serif", fontsize=11];']
    lines += [f'  {name} [label="{label}"];' for name, label in nodes.items()]
    lines += [
        "  identified -> screened; screened -> relevant; relevant -> included;",
        "  identified -> not_screened; screened -> not_relevant; relevant -> excluded;",
        "  { rank=same; screened; not_screened } { rank=same; relevant; not_relevant }",
        "  { rank=same; included; excluded }",
        "}",
    ]
    return "\n".join(lines)


def _span(span: tuple[float, float]) -> str:
    low, high = span
    return days_text(low) if low == high else f"{days_text(low)} to {days_text(high)}"
