"""An abstract's sentences, each tagged with the part of the abstract it belongs to (background, methods,
results, conclusions): what the evidence prefill reads and where a reviewer's quote may come from.

Structured abstracts say it: PubMed's section labels reach us as "RESULTS: ..." at the start of a
sentence (ingest joins sections as "LABEL: text" paragraphs; some sources flatten them into one line).
Unstructured abstracts are tagged by cue phrases: "was assessed using" is methods, "p < 0.05" results,
"these findings suggest" conclusions; sentences before any of them are background.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from db.review.sources import split_sentences


class Part(StrEnum):
    BACKGROUND = "background"  # background, introduction, objective, aims
    METHODS = "methods"
    RESULTS = "results"
    CONCLUSIONS = "conclusions"  # conclusions, discussion, interpretation, relevance
    OTHER = "other"  # limitations, trial registration, funding: never evidence, never a quote


@dataclass(frozen=True)
class TaggedSentence:
    text: str  # as split, label included: the exact string a reviewer's quote list holds
    body: str  # without the section label
    part: Part
    labelled: bool  # the part comes from the abstract's own label, not from a guess


# "RESULTS:", "DESIGN, SETTING, AND PARTICIPANTS:", "Main Outcomes and Measures:": a run of capitalised
# words ending in a colon at the start of a sentence.
_LABEL = re.compile(r"^(?P<label>[A-Z][A-Za-z]*(?:[ ,&/-]+[A-Za-z]+){0,7})\s*:\s+")

# First word of a label that says which part it opens; checked in this order, so "CONCLUSIONS AND
# RELEVANCE" is conclusions and "RELEVANCE TO PATIENT CARE" too.
_LABEL_WORDS: tuple[tuple[Part, tuple[str, ...]], ...] = (
    (Part.RESULTS, ("result", "finding", "data synthesis", "outcome results")),
    (Part.CONCLUSIONS, ("conclusion", "discussion", "interpretation", "relevance", "implication", "summary")),
    (
        Part.METHODS,
        (
            "method",
            "design",
            "setting",
            "participant",
            "patient",
            "subject",
            "intervention",
            "main outcome",
            "outcome",
            "measure",
            "data source",
            "study selection",
            "data extraction",
            "material",
            "procedure",
            "eligibility",
            "search",
        ),
    ),
    (
        Part.BACKGROUND,
        (
            "background",
            "introduction",
            "importance",
            "objective",
            "aim",
            "purpose",
            "context",
            "rationale",
            "area",
            "hypothes",
            "question",
        ),
    ),
    (
        Part.OTHER,
        ("limitation", "trial registration", "registration", "funding", "clinical trial", "significance"),
    ),
)

# Cue phrases for unlabelled sentences.
_METHODS_CUES = re.compile(
    r"\b(?:(?:was|were) (?:assessed|measured|rated|evaluated|administered|collected|recorded|used|"
    r"randomi[sz]ed|assigned|allocated|included|enrolled|recruited|searched|conducted|performed|"
    r"genotyped|examined|analy[sz]ed|calculated|employed|applied)|"
    r"we (?:searched|conducted|performed|used|included|enrolled|recruited|analy[sz]ed|measured|adapted|applied|"
    r"investigated|examined|explored|compared|assessed|evaluated)|"
    r"(?:this|the present|our|in this|in the present) (?:study|trial|review|analysis)\b[^.]{0,40}?"
    r"\b(?:aim|aimed|aims|examine[sd]?|investigate[sd]?|explore[sd]?|evaluate[sd]?|compare[sd]?|assess(?:e[sd])?)|"
    r"assessed (?:using|with|via|by)|measured (?:using|with|by)|rated (?:using|with|on)|"
    r"literature search|databases? (?:were|was) searched|inclusion criteria)\b",
    re.IGNORECASE,
)
_RESULTS_CUES = re.compile(
    r"\b(?:p\s*[<=>≤]\s*0?\.\d|95\s*%\s*CI|confidence interval|odds ratio|"
    r"(?:OR|RR|HR|SMD|MD|AUC)\s*[:=]|"
    r"significant(?:ly)?|no (?:significant )?differences?|did not (?:differ|affect|improve|change)|"
    r"(?:we )?found|showed|revealed|demonstrated|(?:was|were) associated|correlated|"
    r"reduced|decreased|increased|improved|attenuated|predicted)\b",
    re.IGNORECASE,
)
_CONCLUSION_CUES = re.compile(
    r"^(?:in conclusion|to conclude|overall|taken together|together|collectively|in summary|thus|"
    r"these (?:findings|results|data|observations)|our (?:findings|results|data)|this (?:study|review|"
    r"analysis|meta-analysis) (?:demonstrates|shows|suggests|highlights|affirms|underscores))\b",
    re.IGNORECASE,
)


_FIGURE = re.compile(r"\bp\s*[<=>≤]\s*0?\.\d|\b95\s*%\s*CI\b|\bCI\s*[:=]", re.IGNORECASE)


def label_part(label: str) -> Part | None:
    """The part a section label opens ("RESULTS" -> results), None when it is no known label."""
    lowered = label.lower()
    for part, words in _LABEL_WORDS:
        if any(lowered.startswith(word) for word in words):
            return part
    return None


def tagged_sentences(abstract: str) -> list[TaggedSentence]:
    """The sentences of `abstract` (split as the review page splits them), each with its part."""
    return tag_sentences(s.text for s in split_sentences(abstract or "") if s.text)


def tag_sentences(sentences: Iterable[str]) -> list[TaggedSentence]:
    """Tag already split sentences: a label opens a part that runs until the next label; in an
    abstract without labels each sentence is tagged by its cues."""
    tagged: list[TaggedSentence] = []
    current: Part | None = None  # the part the last label opened
    previous = Part.BACKGROUND  # the part guessed for the last unlabelled sentence
    for text in sentences:
        body, part = normalised(text), None
        match = _LABEL.match(text)
        if match and (labelled := label_part(match.group("label"))) is not None:
            body, part = normalised(text[match.end() :]), labelled
            current = labelled
        elif current is not None:
            part = current
        if part is not None:
            tagged.append(TaggedSentence(text, body, part, labelled=True))
            continue
        guessed = _guessed_part(body, previous)
        previous = guessed
        tagged.append(TaggedSentence(text, body, guessed, labelled=False))
    return tagged


def normalised(text: str) -> str:
    """`text` with every run of whitespace (PubMed's no-break and thin spaces too) one plain space."""
    return re.sub(r"\s+", " ", text).strip()


def is_methods_sentence(body: str) -> bool:
    """Whether a sentence describes what was done rather than what was found."""
    return bool(_METHODS_CUES.search(body)) and not _states_a_result(body)


def _states_a_result(body: str) -> bool:
    # "X was assessed using Y" names no finding; "X was significantly reduced (p < 0.01)" does.
    return bool(re.search(r"\bp\s*[<=>≤]|\bsignificant|\bCI\b|\bno differences?\b", body, re.IGNORECASE))


def _guessed_part(body: str, previous: Part) -> Part:
    if _CONCLUSION_CUES.search(body):
        return Part.CONCLUSIONS
    if is_methods_sentence(body):
        return Part.METHODS
    # Background sentences say "ketamine significantly reduced ..." too: before any methods, only a
    # figure (a p value, a confidence interval) makes a sentence a result.
    if _RESULTS_CUES.search(body) and (previous is not Part.BACKGROUND or _FIGURE.search(body)):
        return Part.RESULTS
    if previous in (Part.RESULTS, Part.CONCLUSIONS):
        return previous  # "Adverse events were mild." goes on where the last sentence was
    return Part.BACKGROUND if previous is Part.BACKGROUND else Part.OTHER
