"""Customer-satisfaction scores with 95% intervals. Pure functions, no I/O.

Every score carries ``n``, the number of answers it is computed from (answers, not surveys
sent); with ``n == 0`` the value is ``None`` ("no data"), never 0. Each metric has exactly one
formula, in a function that takes the aggregates SQL can produce (``csat_from_counts``,
``nps_from_totals``, ``ces_from_sums``); the functions taking per-answer counts reduce to
those. A score also keeps what a comparison needs (CSAT ``top``, NPS ``promoters`` and
``detractors``, CES ``sd``): :mod:`bot.survey.change` compares two scores.

Intervals (95%): Wilson for CSAT; adjusted-Wald for NPS (Rocks 2016; MeasuringU), with the
plain Wald interval kept in ``wald_low``/``wald_high`` for comparison; Student's t for the CES
mean. ``Z95`` = Φ⁻¹(0.975) (the "1.96" of the design doc). With ``n >= 1`` no interval has
zero width: the validator refuses one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.survey.distributions import t_quantile

Metric = Literal["csat", "nps", "ces"]
Z95 = 1.959963984540054
CES_MIN, CES_MAX, CES_AGREE = 1, 7, 5


class Score(BaseModel):
    """One score with its interval. Units: CSAT and ``agree_pct`` in percent (0–100),
    NPS in points (−100–100), CES as the mean answer (1–7). Bounds are in the value's units;
    they are None only when there is no data. The NPS interval is the adjusted-Wald one, centred
    on the adjusted NPS: for a tiny n it need not contain the raw value (1 promoter of 1: NPS
    100, interval −48.5 to 98.5)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric
    value: float | None
    n: int = Field(ge=0)
    low: float | None = None
    high: float | None = None
    agree_pct: float | None = None  # CES only: % answering 5–7
    agree_low: float | None = None
    agree_high: float | None = None
    wald_low: float | None = None  # NPS only: the plain Wald interval, for comparison
    wald_high: float | None = None
    top: int | None = Field(default=None, ge=0)  # CSAT: the satisfied answers of n
    promoters: int | None = Field(default=None, ge=0)  # NPS: answers 9–10
    detractors: int | None = Field(default=None, ge=0)  # NPS: answers 0–6
    sd: float | None = Field(default=None, ge=0)  # CES: sample standard deviation (n >= 2)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.value is None) != (self.n == 0):
            raise ValueError("value must be None exactly when n == 0")
        if self.metric != "ces" and self.agree_pct is not None:
            raise ValueError("agree_pct is only defined for CES")
        if self.metric != "nps" and (self.wald_low, self.promoters) != (None, None):
            raise ValueError("wald bounds and promoters are only defined for NPS")
        for v, lo, hi, contains in (
            (self.value, self.low, self.high, self.metric != "nps"),
            (self.agree_pct, self.agree_low, self.agree_high, True),
        ):
            if (lo is None) != (hi is None) or (v is None and lo is not None):
                raise ValueError("interval bounds must come in pairs, and only with a value")
            if v is not None and lo is not None and hi is not None:
                if contains and not lo <= v <= hi:
                    raise ValueError(f"interval {lo}–{hi} does not contain {v}")
                if not lo < hi:
                    raise ValueError(f"interval {lo}–{hi} has no width")
        return self

    @property
    def passives(self) -> int | None:
        if self.promoters is None or self.detractors is None:
            return None
        return self.n - self.promoters - self.detractors

    def share(self, group: Literal["promoters", "passives", "detractors"]) -> float | None:
        """An NPS group's share of the answers, in percent."""
        count = getattr(self, group)
        return None if count is None or not self.n else 100 * count / self.n

    def label(self) -> str:
        """E.g. ``69.2% (95% CI 59.9–77.1, n=107)``; ``no data (n=0)`` when empty."""
        if self.value is None:
            return f"no data (n={self.n})"
        unit, places = {"csat": ("%", 1), "nps": ("", 1), "ces": ("", 2)}[self.metric]
        text = _with_ci(self.value, self.low, self.high, unit, places, self.n)
        if self.agree_pct is not None:
            text += "; " + _with_ci(
                self.agree_pct, self.agree_low, self.agree_high, "% agree", 1, None
            )
        return text


def _with_ci(
    v: float, lo: float | None, hi: float | None, unit: str, places: int, n: int | None
) -> str:
    parts = []
    if lo is not None and hi is not None:
        sep = " to " if lo < 0 or hi < 0 else "–"  # "-5.0–3.0" would read badly
        parts.append(f"95% CI {lo:.{places}f}{sep}{hi:.{places}f}")
    if n is not None:
        parts.append(f"n={n}")
    return f"{v:.{places}f}{unit}" + (f" ({', '.join(parts)})" if parts else "")


def _check_count(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


def _tally(counts: Mapping[int, int], lo: int, hi: int, what: str) -> dict[int, int]:
    """Validate answer -> count pairs against the scale ``lo..hi`` (inclusive)."""
    for answer, count in counts.items():
        if isinstance(answer, bool) or not isinstance(answer, int) or not lo <= answer <= hi:
            raise ValueError(f"{what} answer {answer!r} is outside the {lo}–{hi} scale")
        _check_count(f"count for {what} answer {answer}", count)
    return {a: counts.get(a, 0) for a in range(lo, hi + 1)}


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval (Wilson 1927) for ``successes`` out of ``n`` trials, as
    proportions in [0, 1]: (p̂ + z²/2n ± z·sqrt(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n).

    Returns None when ``n == 0`` (no data, no interval) instead of raising, so callers can pass
    the result straight through. The bound at 0 successes is exactly 0, and at n exactly 1.
    """
    _check_count("n", n)
    _check_count("successes", successes)
    if successes > n:
        raise ValueError(f"successes ({successes}) exceed n ({n})")
    if z <= 0:
        raise ValueError(f"z must be positive, got {z}")
    if n == 0:
        return None
    low, high = _wilson_mean(successes / n, n, z)
    return 0.0 if successes == 0 else low, 1.0 if successes == n else high


def _pct(ci: tuple[float, float] | None) -> tuple[float, float]:
    if ci is None:  # callers handle n == 0 first
        raise ValueError("no interval without data")
    return 100 * ci[0], 100 * ci[1]


def csat_from_counts(top: int, n: int) -> Score:
    """CSAT = ``top`` / ``n`` in percent, with the Wilson interval. ``n`` counts every answer
    to the question; ``top`` those counted as satisfied ("yes", or the top two boxes)."""
    ci = wilson(top, n)
    if ci is None:
        return Score(metric="csat", value=None, n=0)
    low, high = _pct(ci)
    return Score(metric="csat", value=100 * top / n, n=n, low=low, high=high, top=top)


def csat_binary(yes: int, no: int) -> Score:
    """CSAT of a yes/no question: yes / (yes + no)."""
    _check_count("yes", yes)
    _check_count("no", no)
    return csat_from_counts(yes, yes + no)


def csat_rating(counts: Mapping[int, int], scale_max: int = 5) -> Score:
    """Top-2-box CSAT of a 1..``scale_max`` rating: share of answers >= scale_max − 1."""
    if scale_max < 3:
        raise ValueError(f"scale_max must be at least 3 for a top-2-box score, got {scale_max}")
    tally = _tally(counts, 1, scale_max, "CSAT")
    return csat_from_counts(tally[scale_max - 1] + tally[scale_max], sum(tally.values()))


def nps_from_totals(promoters: int, detractors: int, n: int) -> Score:
    """NPS = 100·(p − d) with p, d the promoter and detractor shares of ``n`` answers
    (passives count in n only).

    Interval: adjusted Wald (Rocks 2016, *The American Statistician* 70(4); MeasuringU): with
    n' = n + 3, p' = (promoters + ¾)/n', d' = (detractors + ¾)/n',
    100·[(p' − d') ± Z95·sqrt((p' + d' − (p' − d')²)/n')], clipped to [−100, 100]. Never of
    zero width, also for n = 1. The plain Wald interval, 100·[(p − d) ± Z95·sqrt((p + d −
    (p − d)²)/n)] (zero width when all answers are alike), goes in ``wald_low``/``wald_high``.
    """
    for name, count in (("promoters", promoters), ("detractors", detractors), ("n", n)):
        _check_count(name, count)
    if promoters + detractors > n:
        raise ValueError(f"promoters + detractors ({promoters + detractors}) exceed n ({n})")
    if n == 0:
        return Score(metric="nps", value=None, n=0, promoters=0, detractors=0)
    value = 100 * (promoters - detractors) / n
    wald = _nps_interval(promoters, detractors, n)
    low, high = _nps_interval(promoters + 0.75, detractors + 0.75, n + 3)
    return Score(
        metric="nps",
        value=value,
        n=n,
        low=low,
        high=high,
        wald_low=wald[0],
        wald_high=wald[1],
        promoters=promoters,
        detractors=detractors,
    )


def nps_variance(promoters: float, detractors: float, n: float) -> float:
    """The variance of one answer scored +1 / 0 / −1: p + d − (p − d)²."""
    p, d = promoters / n, detractors / n
    return max(0.0, p + d - (p - d) ** 2)


def _nps_interval(promoters: float, detractors: float, n: float) -> tuple[float, float]:
    centre = 100 * (promoters - detractors) / n
    half = Z95 * 100 * math.sqrt(nps_variance(promoters, detractors, n) / n)
    return max(-100.0, centre - half), min(100.0, centre + half)


def nps(promoters: int, passives: int, detractors: int) -> Score:
    """NPS from the three group sizes; n = promoters + passives + detractors."""
    _check_count("passives", passives)
    return nps_from_totals(promoters, detractors, promoters + passives + detractors)


def nps_from_counts(counts: Mapping[int, int]) -> Score:
    """NPS from answer -> count on 0–10: 9–10 promoters, 7–8 passives, 0–6 detractors."""
    tally = _tally(counts, 0, 10, "NPS")
    return nps_from_totals(
        tally[9] + tally[10], sum(tally[a] for a in range(7)), sum(tally.values())
    )


def ces_from_sums(n: int, total: float, total_sq: float, agree: int) -> Score:
    """CES from SQL-style aggregates of 1–7 answers: ``n`` = COUNT, ``total`` = SUM(x),
    ``total_sq`` = SUM(x*x), ``agree`` = COUNT of answers 5–7.

    Value: the mean. Interval: Student's t, mean ± t(0.975, n − 1)·s/sqrt(n), s the sample
    standard deviation (divisor n − 1), clipped to [1, 7]. Where t cannot measure a spread
    (n = 1, or every answer the same) the interval is the Wilson interval of the mean rescaled
    to [0, 1], (mean − 1)/6 — the widest spread a 1–7 answer can have — so it never has zero
    width. ``agree_pct`` is the percent agreeing, with its Wilson interval. Integer sums keep
    the variance exact.
    """
    _check_count("n", n)
    _check_count("agree", agree)
    if agree > n:
        raise ValueError(f"agree ({agree}) exceeds n ({n})")
    if not (CES_MIN * n <= total <= CES_MAX * n and CES_MIN**2 * n <= total_sq <= CES_MAX**2 * n):
        raise ValueError(f"sums {total}, {total_sq} impossible for {n} answers on 1–7")
    if n == 0:
        return Score(metric="ces", value=None, n=0)
    spread = n * total_sq - total * total  # n·Σx² − (Σx)² = n(n−1)·s², exact for ints
    if spread < -1e-9 * n * total_sq:  # tolerance for float sums
        raise ValueError(f"sums {total}, {total_sq} are inconsistent (negative variance)")
    mean = total / n
    sd = math.sqrt(max(0.0, spread) / (n * (n - 1))) if n >= 2 else None
    if sd:
        half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
        low, high = max(float(CES_MIN), mean - half), min(float(CES_MAX), mean + half)
    else:
        span = CES_MAX - CES_MIN
        low, high = (CES_MIN + span * b for b in _wilson_mean((mean - CES_MIN) / span, n))
    agree_low, agree_high = _pct(wilson(agree, n))
    return Score(
        metric="ces",
        value=mean,
        n=n,
        low=min(low, mean),
        high=max(high, mean),
        agree_pct=100 * agree / n,
        agree_low=agree_low,
        agree_high=agree_high,
        sd=sd,
    )


def _wilson_mean(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """:func:`wilson` for a share ``p`` in [0, 1] that need not be a whole count over n."""
    z2 = z * z
    centre = p + z2 / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, (centre - half) / (1 + z2 / n)), min(1.0, (centre + half) / (1 + z2 / n))


def ces(counts: Mapping[int, int]) -> Score:
    """CES from answer -> count on 1–7 (1 = strongly disagree it was easy, 7 = strongly agree)."""
    tally = _tally(counts, CES_MIN, CES_MAX, "CES")
    return ces_from_sums(
        sum(tally.values()),
        sum(a * c for a, c in tally.items()),
        sum(a * a * c for a, c in tally.items()),
        sum(c for a, c in tally.items() if a >= CES_AGREE),
    )
