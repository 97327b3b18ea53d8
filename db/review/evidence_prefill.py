"""Suggestions for an assessment's evidence fields, read from the study's title and abstract, each with
the sentence it came from; and the sentence to preselect as the reviewer's quote.

A pure function of the text: regular expressions and small word lists, no database, no model. A
suggestion is a starting point the reviewer confirms or corrects; a field the abstract does not state
is left out rather than guessed. The rules, field by field:

- participants: the number analysed. A count of people ("Sixty-eight patients", "a total of 1,234
  participants", "n = 24"; a pooled "(N = 1,120)") in a methods or results sentence; a sentence that
  says randomised or analysed beats one that says included, which beats enrolled or recruited;
  screened counts are never taken. Per-arm "n = 40 ... n = 40" in a randomisation sentence add up.
  A review that states no trial measured the outcome gives 0.
- follow_up: the primary outcome's time point as written ("24 hours", "Day 7", "four weeks"): from a
  sentence naming the primary outcome, else the last time point of the assessment schedule; ages,
  dosing periods and search dates are not time points. Its days come from evidence_fields.follow_up_days.
- effect: from a results sentence, the clause carrying an effect figure (OR, RR, SMD, d, "64% vs 28%",
  "from 21.2 to 10.3", ...), else the first results sentence that states a finding; at most 200 characters.
- population / intervention: word lists over the title and the methods and results (background talks
  about everyone). Animals, surgical, obstetric and pain patients, healthy volunteers: other. Several
  conditions studied together: mixed; several routes or ketamine and esketamine: mixed; ketamine given
  as an anaesthetic for ECT or in animals: other; a study of ketamine whose route is not stated: unclear.
  Narrative reviews get neither.
- risk_of_bias (cautious, primary studies only; reviews and animal studies get none): high when the
  abstract says open-label, single-arm, uncontrolled, retrospective, naturalistic, observational or
  case report; low when it says randomised AND double- (or triple-) blind AND placebo-, saline-,
  midazolam- or otherwise controlled; omitted when it says neither, or both. "Some concerns" is a
  reviewer's judgement and never suggested.
- directness (and indirect_reason), only with a claim: indirect when the study is in animals, its
  population or intervention is not among the claim's codes (when the claim lists any), or its
  follow-up lies outside the claim's [follow_up_min_days, follow_up_max_days]; direct when none of
  these holds and the population is known (and the follow-up, when the claim has a time frame);
  omitted otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from db.models import Claim
from db.review.abstract_parts import (
    Part,
    TaggedSentence,
    is_methods_sentence,
    normalised,
    tag_sentences,
    tagged_sentences,
)
from db.review.evidence_fields import follow_up_days
from db.text import term_spans
from db.vocab import Directness, Intervention, Population, RiskOfBias

MAX_EFFECT = 200


@dataclass(frozen=True)
class Suggestion:
    """A suggested value for one evidence field and the abstract's sentence it came from."""

    value: Any
    sentence: str


def suggest_evidence(title: str, abstract: str, claim: Claim | None = None) -> dict[str, Suggestion]:
    """Evidence field name (db.review.evidence_fields.EVIDENCE_FIELDS) -> a suggestion, for the
    fields the abstract states; `claim` (its time frame, populations, interventions) decides
    directness. The rules are in this module's docstring."""
    sentences = tagged_sentences(abstract)
    title_sentence = TaggedSentence(title, normalised(title), Part.BACKGROUND, labelled=False)
    animals = _animal_sentence(title, sentences)
    review = _review_kind(title, abstract)
    found: dict[str, Suggestion | None] = {
        "participants": None if animals else _participants(sentences, is_review=review is not None),
        "follow_up": None if review else _follow_up(sentences),
        "effect": _effect(sentences),
        "population": None if review == "narrative" else _population(title_sentence, sentences, animals),
        "intervention": None if review == "narrative" else _intervention(title_sentence, sentences, animals),
        "risk_of_bias": None if review or animals else _risk_of_bias(title_sentence, sentences),
    }
    suggestions = {name: s for name, s in found.items() if s is not None}
    if claim is not None:
        suggestions.update(_directness(claim, suggestions, animals))
    return suggestions


def conclusion_quote(title: str, sentences: Sequence[str], terms: Sequence[str] = ()) -> str:
    """The sentence to preselect as a reviewer's quote: one of `sentences` from the results or the
    conclusions, never background or methods; the one with most of the claim's `terms`, ties to the
    conclusions' first sentence, then the results' first. `title` when no sentence qualifies."""
    candidates = [
        (index, s)
        for index, s in enumerate(tag_sentences(sentences))
        if s.part in (Part.RESULTS, Part.CONCLUSIONS) and not is_methods_sentence(s.body)
    ]
    if not candidates:
        return title

    def rank(item: tuple[int, TaggedSentence]) -> tuple[int, int, int]:
        index, s = item
        return (len(term_spans(s.body, list(terms))) if terms else 0, s.part is Part.CONCLUSIONS, -index)

    return max(candidates, key=rank)[1].text


# --- participants ------------------------------------------------------------------------------------

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_WORD_NUMBER = (
    r"(?:(?:" + "|".join(_TENS) + r")(?:[\s-]?(?:" + "|".join(u for u in _UNITS if _UNITS[u] < 10) + r"))?"
    r"|" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")"
)
_COUNT = r"(?P<count>\d{1,3}(?:,\d{3})+|\d+|" + _WORD_NUMBER + r")"
_PEOPLE = (
    r"(?:patients?|participants?|individuals?|adults?|subjects?|veterans?|women|men|inpatients?|"
    r"outpatients?|volunteers?|people|persons?|children|adolescents?|youths?|respondents?|cases?|mothers?)"
)
# "59 patients", "1181 total patients", "40 drug-free individuals", "346 and 94 participants" (the first
# figure), "Sixty-eight adult outpatients": a count, up to three describing words, a word for people.
_PEOPLE_COUNT = re.compile(
    r"\b" + _COUNT + r"(?:\s*(?:and|or|,)\s*\d[\d,]*)*\s+"
    r"(?:(?!(?:studies|trials|RCTs|articles|papers|records)\b)[A-Za-z][\w-]*\s+){0,3}?"
    + _PEOPLE
    + r"\b(?!\s*%)",
    re.IGNORECASE,
)
# "n = 24", "(N = 1,120)"; "n = 196 per treatment" is one arm and skipped.
_N_EQUALS = re.compile(r"\b[Nn]\s*=\s*(?P<count>\d{1,3}(?:,\d{3})+|\d+)(?!\s*(?:per|in each|each)\b)")
_NONE_POOLED = re.compile(
    r"\bno (?:eligible |included )?(?:studies|trials|RCTs|randomi[sz]ed (?:controlled )?trials)\b"
    r"[^.]{0,40}?\b(?:measured|reported|assessed|examined|evaluated|met|were (?:found|identified|eligible))\b",
    re.IGNORECASE,
)
# A case report is about one person: "we present a patient with ...", "this case study describes".
_ONE_CASE = re.compile(
    r"\b(?:we (?:present|describe|report) (?:the case of )?an? (?:\d+-year-old )?(?:patient|woman|man|girl|boy|child)|"
    r"(?:this|in this|the present) case (?:report|study) (?:describes|presents|reports|,? we present))\b",
    re.IGNORECASE,
)
_PRIORITY_CUES = (
    (3, re.compile(r"\brandomi[sz]|\banaly[sz]ed\b|\bevaluable\b|\bcompleted\b", re.IGNORECASE)),
    (
        2,
        re.compile(
            r"\bincluded\b|\binclusion\b|\btotal\b|\bencompassing\b|\binvolving\b|\bcomprised\b", re.I
        ),
    ),
    (1, re.compile(r"\benrolled\b|\brecruited\b|\bparticipated\b", re.IGNORECASE)),
)
_SCREENED = re.compile(r"\bscreened\b|\bassessed for eligibility\b|\bapproached\b", re.IGNORECASE)


def _participants(sentences: list[TaggedSentence], *, is_review: bool) -> Suggestion | None:
    if is_review:
        for s in sentences:
            if _NONE_POOLED.search(s.body):
                return Suggestion(0, s.text)
    for s in sentences:
        if _ONE_CASE.search(s.body):
            return Suggestion(1, s.text)
    best: tuple[int, int] | None = None  # (priority, -position)
    chosen: Suggestion | None = None
    for position, s in enumerate(sentences):
        if s.part in (Part.BACKGROUND, Part.CONCLUSIONS, Part.OTHER):
            continue
        for count, clause in _counts_in(s.body):
            if count == 0 or _SCREENED.search(clause):
                continue
            # The clause's own verb decides ("40 were enrolled and 36 randomized"), else the sentence's.
            priority = _priority(clause) or _priority(s.body)
            if best is None or (priority, -position) > best:
                best, chosen = (priority, -position), Suggestion(count, s.text)
    return chosen


def _priority(text: str) -> int:
    return next((p for p, cue in _PRIORITY_CUES if cue.search(text)), 0)


def _counts_in(body: str) -> list[tuple[int, str]]:
    """The sentence's counts of people, each with its clause (up to the next ',', ';' or 'and'):
    counted nouns first, else "n =" (per-arm counts of a randomisation add up)."""
    counted = [
        (_number(m.group("count")), _clause_from(body, m.start(), m.end()))
        for m in _PEOPLE_COUNT.finditer(body)
    ]
    if counted:
        return counted
    arms = [_number(m.group("count")) for m in _N_EQUALS.finditer(body)]
    if not arms:
        return []
    if len(arms) > 1 and re.search(r"\brandomi[sz]", body, re.IGNORECASE):
        return [(sum(arms), body)]
    return [(max(arms), body)]


_CLAUSE_END = re.compile(r"[;,]|\band\b")


def _clause_from(body: str, start: int, end: int) -> str:
    stop = _CLAUSE_END.search(body, end)
    return body[start : stop.start() if stop else len(body)]


def _number(text: str) -> int:
    text = text.lower().replace(",", "")
    if text.isdigit():
        return int(text)
    if text in _UNITS:
        return _UNITS[text]
    for tens, value in _TENS.items():
        if text.startswith(tens):
            rest = text[len(tens) :].strip(" -")
            return value + _UNITS.get(rest, 0)
    return 0


# --- follow-up ---------------------------------------------------------------------------------------

_DURATION_UNIT = r"(?:minutes?|mins?|hours?|hrs?|h|days?|weeks?|wks?|months?|years?)"
_SMALL_WORDS = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve)"
# "24 hours", "24 h", "4-6 weeks", "6 to 9 h", "four-week", "30-day", "Day 7", "week 4".
_TIME_POINT = re.compile(
    r"\b(?:(?:\d+(?:\.\d+)?|" + _SMALL_WORDS + r")(?:\s*(?:-|–|to)\s*\d+(?:\.\d+)?)?[\s-]*" + _DURATION_UNIT
    + r"|(?:day|week|month)s?\s+\d+(?:\s*(?:,|and|or)\s*\d+)*)\b",
    re.IGNORECASE,
)  # fmt: skip
# Durations that are not outcome time points: ages, dosing, history, search dates, "per day".
_NOT_A_TIME_POINT = re.compile(
    r"^(?:\s*(?:old|of age|ago|per|/|after (?:giving )?birth|history|prior|before))|"
    r"(?:aged?|age of|mean age|±|over the (?:past|last)|per|every|each|/)\s*$",
    re.IGNORECASE,
)
_PRIMARY = re.compile(r"\bprimary (?:outcome|end\s?point|efficacy)", re.IGNORECASE)
_SCHEDULE = re.compile(
    r"\b(?:assess\w*|measur\w*|rated|evaluat\w*|follow(?:ed)?[\s-]?up|observ\w*|post[\s-]?(?:infusion|"
    r"treatment|dose|administration)|after (?:the )?(?:infusion|treatment|dose|administration|ketamine)|"
    r"(?:at|over|through|until|during)\b)",
    re.IGNORECASE,
)


def _follow_up(sentences: list[TaggedSentence]) -> Suggestion | None:
    scored: list[tuple[int, int, str, TaggedSentence]] = []  # (priority, -position, phrase, sentence)
    for position, s in enumerate(sentences):
        if s.part in (Part.BACKGROUND, Part.OTHER):
            continue
        points = _time_points(s.body)
        if not points:
            continue
        if _PRIMARY.search(s.body):
            priority = 3
        elif s.part is Part.METHODS and _SCHEDULE.search(s.body):
            priority = 2
        elif _SCHEDULE.search(s.body):
            priority = 1
        else:
            continue
        longest = max(points, key=lambda p: follow_up_days(p) or 0)
        scored.append((priority, -position, longest, s))
    if not scored:
        return None
    _, _, phrase, sentence = max(scored, key=lambda item: item[:2])
    return Suggestion(phrase, sentence.text)


def _time_points(body: str) -> list[str]:
    points = []
    for match in _TIME_POINT.finditer(body):
        before, after = body[max(0, match.start() - 14) : match.start()], body[match.end() : match.end() + 16]
        if _NOT_A_TIME_POINT.search(after) or _NOT_A_TIME_POINT.search(before):
            continue
        if re.search(r"\b(?:19|20)\d\d\b", body[max(0, match.start() - 30) : match.end() + 30]) and re.search(
            r"\b(?:search|database|published|from|between|inception)\b", body, re.IGNORECASE
        ):
            continue  # "searched from 2000 to May 2024": dates of a search, not a follow-up
        point = _last_of_list(match.group())
        if follow_up_days(point) is not None:
            points.append(point)
    return points


def _last_of_list(point: str) -> str:
    """ "Days 3 and 7" -> "Day 7": a list of time points stands for its last."""
    listed = re.fullmatch(r"(?P<unit>day|week|month)s?\s+(?:\d+\s*(?:,|and|or)\s*)+(?P<n>\d+)", point, re.I)
    return f"{listed.group('unit')} {listed.group('n')}" if listed else point


# --- effect ------------------------------------------------------------------------------------------

# An effect figure: a named statistic with a value, a percentage comparison, a change "from X to Y",
# a difference "of 7.6 points".
_EFFECT_FIGURE = re.compile(
    r"(?:\b(?:OR|aOR|RR|HR|IRR|SMD|WMD|MD|Hedges'?\s?g|Cohen'?s\s?d|d's|d|g|AUC|β|beta|Rho|r|"
    r"mean difference|odds ratio|risk ratio|hazard ratio|effect size)\s*(?:\(|\[)?\s*[:=]\s*-?\d)"
    r"|\b(?:OR|aOR|RR|HR|IRR|SMD|WMD|AUC)\s+-?\d+(?:\.\d+)?\b"  # "SMD -0.48", "OR 2.1 (95% CI ...)"
    r"|\b\d+(?:\.\d+)?\s*%\s*(?:vs\.?|versus|and|compared with)\s*\d+(?:\.\d+)?\s*%"
    r"|\bfrom\s+\d+(?:\.\d+)?\b[^.;]{0,30}?\bto\s+\d+(?:\.\d+)?"
    r"|\b(?:reduction|decrease|improvement|difference|change)s?\s+(?:of|in)\s+[^.;]{0,30}?\d+(?:\.\d+)?\s*points?",
    re.IGNORECASE,
)
_FINDING = re.compile(
    r"\b(?:significant(?:ly)?|no (?:significant )?differences?|reduc\w+|decreas\w+|improv\w+|"
    r"associated|correlated|predicted|effective|superior|inferior|respon\w+|remission)\b",
    re.IGNORECASE,
)


def _effect(sentences: list[TaggedSentence]) -> Suggestion | None:
    results = [s for s in sentences if s.part is Part.RESULTS and not is_methods_sentence(s.body)]
    for s in results:
        match = _EFFECT_FIGURE.search(s.body)
        if match:
            return Suggestion(_clause_around(s.body, match.start(), match.end()), s.text)
    for s in results:
        if _FINDING.search(s.body):
            return Suggestion(_shortened(s.body), s.text)
    return None


def _clause_around(body: str, start: int, end: int) -> str:
    """The clause holding body[start:end]: back to the previous ';' (at most 120 characters), on to
    the next ';' or ', ' outside brackets, or the bracket that closes around it."""
    left = body.rfind(";", 0, start) + 1
    if start - left > 120:
        left = body.find(" ", start - 120) + 1
    depth = sum(body[left:end].count(c) for c in "([") - sum(body[left:end].count(c) for c in ")]")
    right = end
    while right < len(body):
        char = body[right]
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
            if depth < 0:
                break
        elif depth == 0 and (char == ";" or body.startswith(", ", right)):
            break
        right += 1
    return _shortened(body[left:right].strip(" ,;"))


def _shortened(text: str) -> str:
    text = text.strip().rstrip(".")
    if len(text) <= MAX_EFFECT:
        return text
    return text[: MAX_EFFECT - 1].rsplit(" ", 1)[0] + "…"


# --- population and intervention --------------------------------------------------------------------

_ANIMALS = re.compile(
    r"\b(?:rats?|mice|mouse|murine|rodents?|wistar|sprague[\s-]dawley|zebrafish|primates?|"
    r"animal models?|preclinical model)\b",
    re.IGNORECASE,
)
_OTHER_POPULATIONS = re.compile(
    r"\b(?:undergoing (?:\w+\s){0,2}surgery|"
    r"surgical patients|postoperative|post-operative|caesarean|cesarean|postpartum|after giving birth|"
    r"chronic pain|cancer pain|(?:rapid sequence )?induction of an(?:a)?esthesia|emergency (?:RSI|intubation))\b",
    re.IGNORECASE,
)
# Conditions, most specific first; each with its pattern.
_CONDITIONS: tuple[tuple[Population, re.Pattern[str]], ...] = (
    (Population.BIPOLAR, re.compile(r"\bbipolar\b|\bTR-?BD\b", re.IGNORECASE)),
    (Population.PTSD, re.compile(r"\bPTSD\b|\bpost-?traumatic stress", re.IGNORECASE)),
    (Population.TRD, re.compile(r"\btreatment[\s-]resistant\b|\bTRD\b|\brefractory depress", re.IGNORECASE)),
    (
        Population.MDD,
        re.compile(
            r"\bmajor depress\w*|\bMDD\b|\bunipolar\b|\bdepressi(?:on|ve disorder)\b|\bdepressed\b", re.I
        ),
    ),
)
# Healthy volunteers are the population only when no patients are named (else they are the controls).
_HEALTHY = re.compile(r"\bhealthy (?:volunteers|subjects|participants|adults|individuals)\b", re.IGNORECASE)
_SUICIDAL_PEOPLE = re.compile(
    r"\b(?:suicidal (?:ideation|thoughts|patients)|suicidality|anti-?suicidal|suicide risk)\b", re.IGNORECASE
)
_OTHER_DISORDERS = re.compile(
    r"\b(?:generali[sz]ed anxiety disorder|GAD|borderline personality|BPD|OCD|"
    r"obsessive|eating disorder|schizophrenia)\b",
    re.IGNORECASE,
)


def _animal_sentence(title: str, sentences: list[TaggedSentence]) -> str | None:
    """The first sentence (or the title) saying the study was in animals; None for human studies.
    A passing mention ("preclinical studies suggest") in background does not count."""
    for text in [title, *(s.text for s in sentences if s.part is not Part.BACKGROUND or s.labelled)]:
        if _ANIMALS.search(text):
            return text
    return None


def _review_kind(title: str, abstract: str) -> str | None:
    """ "systematic" for systematic, scoping and meta-analytic reviews, "narrative" for other reviews,
    None for primary studies (and case reports)."""
    text = f"{title} {abstract}"
    # A review's own kind is in its title or its methods; "three meta-analyses support ..." is not one.
    if re.search(
        r"\b(?:systematic review|meta-?analysis|scoping review|umbrella review)\b", title, re.I
    ) or re.search(
        r"\b(?:we (?:systematically )?searched|literature search|(?:databases|were) searched|"
        r"(?:this|the present|our) (?:systematic review|meta-?analysis|scoping review)|PRISMA)\b",
        abstract,
        re.IGNORECASE,
    ):
        return "systematic"
    narrative = re.search(
        r"\b(?:this|the present|our|a) (?:narrative |brief |mini-?)?review\b|\bwe review\b|\breview:|"
        r"\bwe provide (?:a|an) (?:synthesis|overview)\b|\bthe authors (?:discuss|review|examine)\b",
        text,
        re.IGNORECASE,
    )
    # "Patients were randomised" makes it a study that also reviews, not a review.
    if narrative and not re.search(
        r"\b(?:patients|participants|individuals) (?:were|received)\b", text, re.I
    ):
        return "narrative"
    return None


def _population(
    title: TaggedSentence, sentences: list[TaggedSentence], animals: str | None
) -> Suggestion | None:
    if animals:
        return Suggestion(Population.OTHER, animals)
    where = [title, *(s for s in sentences if s.part in (Part.METHODS, Part.RESULTS) or not s.labelled)]
    for s in where:
        if _OTHER_POPULATIONS.search(s.body):
            return Suggestion(Population.OTHER, s.text)
    # The title names the population when it names one, else the methods and results do; a title's
    # plain "major depressive disorder" is refined by a body that says treatment-resistant.
    found, body = _conditions_in([title]), _conditions_in(where[1:])
    if found.keys() == {Population.MDD} and Population.TRD in body:
        found = {Population.TRD: body[Population.TRD]}
    found = found or body
    if found:
        return _population_of(found)
    healthy = next((s for s in where if _HEALTHY.search(s.body)), None)
    return Suggestion(Population.OTHER, healthy.text) if healthy else None


def _conditions_in(sentences: list[TaggedSentence]) -> dict[Population, str]:
    """Condition -> the first sentence naming it (mixed groups are recorded as Population.MIXED)."""
    found: dict[Population, str] = {}
    for s in sentences:
        if s.part is Part.BACKGROUND and s.labelled:
            continue
        if _SUICIDAL_PEOPLE.search(s.body):
            found.setdefault(Population.SUICIDAL, s.text)
        for population, pattern in _CONDITIONS:
            if pattern.search(s.body):
                found.setdefault(population, s.text)
        if _OTHER_DISORDERS.search(s.body):
            found.setdefault(Population.MIXED, s.text)
    return found


def _population_of(found: dict[Population, str]) -> Suggestion:
    # Depression of one kind, stated more or less precisely, is the most precise kind: "treatment-
    # resistant major depressive disorder" is TRD, "treatment-resistant bipolar depression" bipolar,
    # "MDD with suicidal ideation" suicidal. Another disorder besides depression is mixed.
    if Population.MIXED in found or (Population.PTSD in found and len(found) > 1):
        return Suggestion(Population.MIXED, found.get(Population.MIXED) or found[Population.PTSD])
    for population in (
        Population.SUICIDAL,
        Population.BIPOLAR,
        Population.PTSD,
        Population.TRD,
        Population.MDD,
    ):
        if population in found:
            return Suggestion(population, found[population])
    raise AssertionError("found is never empty here")


_ROUTES: tuple[tuple[Intervention, re.Pattern[str]], ...] = (
    (Intervention.INTRANASAL_ESKETAMINE, re.compile(r"\b(?i:intranasal\w*|nasal spray)|\bIN\b")),
    (Intervention.IV_RACEMIC, re.compile(r"\b(?i:intravenous\w*|i\.v\.|infusions?)\b|\bIV\b")),
    (
        Intervention.ORAL,
        re.compile(r"\b(?:oral(?:ly)?|sublingual|lozenges?|tablets?|troches?)\b", re.IGNORECASE),
    ),
    (Intervention.IM, re.compile(r"\b(?i:intramuscular\w*)|\bIM\b")),
)
_ANAESTHETIC_USE = re.compile(
    r"\bketamine[\s-](?:based )?(?:an(?:a)?esthesia|an(?:a)?esthetic)|\b(?:an(?:a)?esthesia|an(?:a)?esthetic) "
    r"(?:with|of) ketamine|ketamine (?:as (?:an? )?)?(?:induction|an(?:a)?esthetic)",
    re.IGNORECASE,
)
_ESKETAMINE = re.compile(r"\besketamine\b|\bS-ketamine\b|\(S\)-ketamine", re.IGNORECASE)
_RACEMIC = re.compile(r"\b(?:racemic )?ketamine\b", re.IGNORECASE)


def _intervention(
    title: TaggedSentence, sentences: list[TaggedSentence], animals: str | None
) -> Suggestion | None:
    where = [title, *(s for s in sentences if s.part in (Part.METHODS, Part.RESULTS) or not s.labelled)]
    where = [s for s in where if s.part is not Part.BACKGROUND or s is title or not s.labelled]
    if animals:
        return Suggestion(Intervention.OTHER, animals)
    for s in where:
        if _ANAESTHETIC_USE.search(s.body):
            return Suggestion(Intervention.OTHER, s.text)
    routes: dict[Intervention, str] = {}
    for s in where:
        for route, pattern in _ROUTES:
            if pattern.search(s.body):
                routes.setdefault(route, s.text)
    # Intranasal is esketamine's route; an infusion of esketamine is still "other" than racemic IV.
    drugs = [s for s in where if _ESKETAMINE.search(s.body)]
    racemic = [s for s in where if _RACEMIC.search(_ESKETAMINE.sub("", s.body))]
    if len(routes) > 1 or (drugs and racemic and not routes):
        first = min(list(routes.values()) + [s.text for s in drugs], key=_order(sentences, title))
        return Suggestion(Intervention.MIXED, first)
    if len(routes) == 1:
        route, text = next(iter(routes.items()))
        return Suggestion(route, text)
    if drugs or racemic:
        return Suggestion(Intervention.UNCLEAR, (drugs or racemic)[0].text)
    return None


def _order(sentences: list[TaggedSentence], title: TaggedSentence) -> Any:
    texts = [title.text, *(s.text for s in sentences)]
    return lambda text: texts.index(text) if text in texts else len(texts)


# --- risk of bias ------------------------------------------------------------------------------------

_HIGH_RISK = re.compile(
    r"\b(?:open[\s-]label|single[\s-]arm|uncontrolled|non-?controlled|no control group|without (?:a )?control|"
    r"retrospective(?:ly analy[sz]ed)?|naturalistic|observational|chart review|case (?:report|study|series)|"
    r"historical cohort)\b",
    re.IGNORECASE,
)
_RANDOMISED = re.compile(r"\brandomi[sz]", re.IGNORECASE)
_BLINDED = re.compile(r"\b(?:double|triple|quadruple)[\s-]blind", re.IGNORECASE)
# A blinded randomised trial compares with something: a placebo, an active control, another treatment.
_CONTROLLED = re.compile(
    r"\b(?:placebo|saline|midazolam|sham|active[\s-]control\w*|controlled|versus|vs\.?|compared? with)(?!\w)",
    re.IGNORECASE,
)


def _risk_of_bias(title: TaggedSentence, sentences: list[TaggedSentence]) -> Suggestion | None:
    where = [title, *(s for s in sentences if s.part is not Part.OTHER)]
    # "retrospectively registered" is about the registry, not the design.
    high = next(
        (s for s in where if _HIGH_RISK.search(s.body.replace("retrospectively registered", ""))), None
    )
    text = " ".join(s.body for s in where)
    low = None
    if _RANDOMISED.search(text) and _BLINDED.search(text) and _CONTROLLED.search(text):
        low = next(s for s in where if _BLINDED.search(s.body))
    if high and low:
        return (
            None  # "double-blind ... open-label extension": which part is the evidence is the reviewer's call
        )
    if high:
        return Suggestion(RiskOfBias.HIGH, high.text)
    if low:
        return Suggestion(RiskOfBias.LOW, low.text)
    return None


# --- directness --------------------------------------------------------------------------------------


def _directness(claim: Claim, found: dict[str, Suggestion], animals: str | None) -> dict[str, Suggestion]:
    reasons: list[tuple[str, str]] = []  # (reason, sentence)
    if animals:
        reasons.append(("an animal study", animals))
    population, intervention = found.get("population"), found.get("intervention")
    if population and not animals and claim.populations and population.value.value not in claim.populations:
        reasons.append(
            (f"population {population.value.label}, not one the claim is about", population.sentence)
        )
    if (
        intervention
        and not animals
        and intervention.value is not Intervention.UNCLEAR
        and claim.interventions
        and intervention.value.value not in claim.interventions
    ):
        reasons.append(
            (f"intervention {intervention.value.label}, not one the claim is about", intervention.sentence)
        )
    follow_up = found.get("follow_up")
    days = follow_up_days(follow_up.value) if follow_up else None
    if follow_up and days is not None:
        reason = _time_frame_reason(claim, days)
        if reason:
            reasons.append((reason, follow_up.sentence))
    if reasons:
        return {
            "directness": Suggestion(Directness.INDIRECT, reasons[0][1]),
            "indirect_reason": Suggestion("; ".join(r for r, _ in reasons), reasons[0][1]),
        }
    has_time_frame = claim.follow_up_min_days is not None or claim.follow_up_max_days is not None
    known = (population or not claim.populations) and (days is not None or not has_time_frame)
    if not known:
        return {}
    basis = follow_up if (follow_up and has_time_frame) else population
    return {"directness": Suggestion(Directness.DIRECT, basis.sentence if basis else "")}


def _time_frame_reason(claim: Claim, days: float) -> str | None:
    low, high = claim.follow_up_min_days, claim.follow_up_max_days
    if low is not None and days < low:
        return f"follow-up {_days_text(days)}, shorter than the claim's {_days_text(low)}"
    if high is not None and days > high:
        return f"follow-up {_days_text(days)}, longer than the claim's {_days_text(high)}"
    return None


def _days_text(days: float) -> str:
    if days < 1:
        hours = round(days * 24)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    whole = round(days) if abs(days - round(days)) < 0.05 else round(days, 1)
    return f"{whole} day{'s' if whole != 1 else ''}"
