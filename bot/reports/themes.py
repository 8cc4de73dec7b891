"""Comment themes, offline: the words and two-word phrases that set unhappy customers'
comments apart from happy ones', per flow.

1. Each comment takes the side of its survey's first score (:func:`side_of`): NPS detractors
   (0–6) against promoters (9–10), CSAT "no" against "yes" (a rating: the bottom two boxes
   against the top two), CES 1–3 against 5–7. Passives and middle answers only feed the prior.
2. Each comment is split into words, lower-cased and lemmatized in its own locale with
   simplemma (its dictionaries ship in the wheel: nothing is downloaded), so "waited" and
   "waiting" count together; stop words (:mod:`bot.reports.stopwords`) are dropped. Terms
   are the lemmas and the two-word phrases of neighbouring kept words; a negation counts only
   as the first word of a phrase ("not helpful"). A comment counts a term once.
3. Terms are ranked by the weighted log-odds ratio with an informative Dirichlet prior
   (Monroe, Colaresi & Quinn 2008, "Fightin' Words", §3.5): with y₁, y₂ a term's counts on
   the two sides, n₁, n₂ the sides' totals, and a prior α_w = α₀·(the term's share of all
   the flow's comments, passives included), α₀ = a tenth of that total (a prior worth a
   tenth of the data: it shrinks rare terms without drowning the common ones):
   δ = log((y₁ + α_w)/(n₁ + α₀ − y₁ − α_w)) − log((y₂ + α_w)/(n₂ + α₀ − y₂ − α_w)),
   σ² ≈ 1/(y₁ + α_w) + 1/(y₂ + α_w), z = δ/σ. A theme needs |z| >= 1.96 and 2 comments;
   a term only one side uses reaches that from about 7 comments.

Each theme keeps its count on its side and on the other, its z-score, the form customers
used most ("waited", though the lemma is "wait") and the two newest comments using it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import simplemma
from pydantic import BaseModel, ConfigDict

from bot.reports.stopwords import NEGATIONS, STOP_WORDS

Side = Literal["negative", "positive"]
LEMMATIZED = ("en", "el", "lt")
PRIOR_SHARE = 0.1
MIN_Z = 1.959963984540054
MIN_COMMENTS = 2
TOP = 10
EXAMPLES = 2
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_CLAUSE = re.compile(r"[.,;:!?()\[\]\"“”«»…\n/]+")  # a phrase never spans these
SIDE_NAMES = {
    "nps": ("detractors (0–6)", "promoters (9–10)"),
    "csat": ("unsatisfied", "satisfied"),
    "ces": ("found it hard (1–3)", "found it easy (5–7)"),
}


class Theme(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    term: str  # the lemma(s), e.g. "wait" or "not helpful"
    label: str  # the form customers wrote most, e.g. "waited"
    count: int  # comments on its side using it
    other_count: int  # comments on the other side using it
    z: float  # positive: typical of this side
    examples: list[str]


class FlowThemes(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    flow_id: str
    metric: str
    negative_name: str
    positive_name: str
    negative_comments: int
    positive_comments: int
    negative: list[Theme]
    positive: list[Theme]


@dataclass(frozen=True)
class CommentIn:
    """One comment with its survey's first score (what :func:`side_of` reads)."""

    flow_id: str
    text: str
    locale: str
    metric: str | None
    value: int | None
    scale_min: int | None
    scale_max: int | None


def side_of(c: CommentIn) -> Side | None:
    """Which side a comment speaks for, from its survey's first score; None for the middle."""
    if c.metric is None or c.value is None:
        return None
    lo, hi = c.scale_min, c.scale_max
    if c.metric == "nps":
        return "negative" if c.value <= 6 else "positive" if c.value >= 9 else None
    if c.metric == "ces":
        return "negative" if c.value <= 3 else "positive" if c.value >= 5 else None
    if lo is None or hi is None:
        return None
    if hi - lo <= 1:  # yes / no
        return "positive" if c.value == hi else "negative"
    return "positive" if c.value >= hi - 1 else "negative" if c.value <= lo + 1 else None


@dataclass
class _Lemmatizer:
    """Lemmas per (language, word), cached: a support inbox reuses few thousand words."""

    cache: dict[tuple[str, str], str | None] = field(default_factory=dict)

    def lemma(self, lang: str, word: str) -> str | None:
        """The word's lemma; "" for a negation; None for a stop word (or a lone letter)."""
        key = (lang, word)
        if key in self.cache:
            return self.cache[key]
        found: str | None
        if word in NEGATIONS:
            found = ""
        else:
            lemma = simplemma.lemmatize(word, lang=lang).lower() if lang in LEMMATIZED else word
            stop = STOP_WORDS.get(lang, frozenset())
            found = None if len(word) < 2 or word in stop or lemma in stop else lemma
        self.cache[key] = found
        return found


def terms_of(text: str, lang: str, lemmatizer: _Lemmatizer) -> dict[str, str]:
    """A comment's terms (lemma or lemma pair) -> the form it used."""
    found: dict[str, str] = {}
    for clause in _CLAUSE.split(text.lower()):
        previous: tuple[str, str] | None = None  # (lemma, word) of the kept word before
        for word in _WORD.findall(clause):
            lemma = lemmatizer.lemma(lang, word)
            if lemma is None:
                previous = None
                continue
            if lemma:
                found.setdefault(lemma, word)
                if previous is not None:
                    pair = f"{previous[0] or previous[1]} {lemma}"
                    found.setdefault(pair, f"{previous[1]} {word}")
            previous = (lemma, word)
    return found


def themes(comments: Iterable[CommentIn]) -> list[FlowThemes]:
    """The themes of each flow's comments (newest first, for the examples)."""
    by_flow: dict[str, list[CommentIn]] = {}
    for c in comments:
        by_flow.setdefault(c.flow_id, []).append(c)
    lemmatizer = _Lemmatizer()
    return [_flow_themes(f, cs, lemmatizer) for f, cs in sorted(by_flow.items())]


def _flow_themes(flow_id: str, comments: list[CommentIn], lemmatizer: _Lemmatizer) -> FlowThemes:
    counts: dict[Side | None, Counter[str]] = {"negative": Counter(), "positive": Counter(),
                                               None: Counter()}  # fmt: skip
    forms: Counter[tuple[str, str]] = Counter()  # (term, the form used) -> comments
    parsed: list[tuple[Side | None, dict[str, str], str]] = []
    sides: Counter[Side | None] = Counter()
    for c in comments:
        side = side_of(c)
        terms = terms_of(c.text, c.locale.split("-")[0].lower(), lemmatizer)
        counts[side].update(terms.keys())
        forms.update(terms.items())
        parsed.append((side, terms, c.text))
        sides[side] += 1
    metric = Counter(c.metric for c in comments if c.metric).most_common(1)
    name = metric[0][0] if metric else "csat"
    negative_name, positive_name = SIDE_NAMES.get(name, SIDE_NAMES["csat"])
    ranked = {"negative": [], "positive": []} if not (sides["negative"] and sides["positive"]) \
        else log_odds(counts["negative"], counts["positive"], counts[None])  # fmt: skip
    picked: dict[Side, list[tuple[str, float]]] = {
        side: [(t, z) for t, z in ranked[side] if counts[side][t] >= MIN_COMMENTS][:TOP]
        for side in ("negative", "positive")
    }
    examples = _examples(parsed, picked)
    wanted = {t for side in picked.values() for t, _ in side}
    label: dict[str, tuple[int, str]] = {}  # term -> (comments, form) of its commonest form
    for (term, form), used in forms.items():
        if term in wanted and (used, form) > label.get(term, (0, "")):
            label[term] = (used, form)
    other: dict[Side, Side] = {"negative": "positive", "positive": "negative"}
    out = {
        side: [
            Theme(
                term=t,
                label=label[t][1],
                count=counts[side][t],
                other_count=counts[other[side]][t],
                z=z,
                examples=examples[side][t],
            )
            for t, z in picked[side]
        ]
        for side in picked
    }
    return FlowThemes(flow_id=flow_id, metric=name, negative_name=negative_name,
                      positive_name=positive_name, negative_comments=sides["negative"],
                      positive_comments=sides["positive"], negative=out["negative"],
                      positive=out["positive"])  # fmt: skip


def log_odds(
    first: Counter[str], second: Counter[str], rest: Counter[str]
) -> dict[Side, list[tuple[str, float]]]:
    """Terms typical of ``first`` (negative) and of ``second`` (positive), strongest first,
    each with its z-score (positive, on its own side), by Monroe et al.'s weighted log-odds
    with the informative Dirichlet prior of the pooled counts."""
    pooled = first + second + rest
    total = sum(pooled.values())
    n1, n2 = sum(first.values()), sum(second.values())
    if not total or not n1 or not n2:
        return {"negative": [], "positive": []}
    a0 = PRIOR_SHARE * total
    scale = PRIOR_SHARE
    ranked: dict[Side, list[tuple[str, float]]] = {"negative": [], "positive": []}
    for term, count in pooled.items():
        y1, y2, a = first[term], second[term], count * scale
        rest1, rest2 = n1 + a0 - y1 - a, n2 + a0 - y2 - a  # everything but the term
        if not (y1 or y2) or rest1 <= 0 or rest2 <= 0:  # nothing to set it against
            continue
        delta = math.log((y1 + a) / rest1) - math.log((y2 + a) / rest2)
        z = delta / math.sqrt(1 / (y1 + a) + 1 / (y2 + a))
        if z >= MIN_Z:
            ranked["negative"].append((term, z))
        elif z <= -MIN_Z:
            ranked["positive"].append((term, -z))
    for side in ranked:
        ranked[side].sort(key=lambda tz: (-tz[1], tz[0]))
    return ranked


def _examples(
    parsed: list[tuple[Side | None, dict[str, str], str]],
    picked: dict[Side, list[tuple[str, float]]],
) -> dict[Side, dict[str, list[str]]]:
    """The first (newest) comments of each side that use each picked term, two at most."""
    out: dict[Side, dict[str, list[str]]] = {s: {t: [] for t, _ in picked[s]} for s in picked}
    missing = sum(len(v) for v in out.values()) * EXAMPLES
    for side, terms, text in parsed:
        if missing == 0:
            break
        if side is None:
            continue
        wanted = out[side]
        for term in terms.keys() & wanted.keys():
            if len(wanted[term]) < EXAMPLES and text not in wanted[term]:
                wanted[term].append(text)
                missing -= 1
    return out
