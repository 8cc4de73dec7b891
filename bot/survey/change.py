"""What changed: one score against another (the previous period, or everyone else), with a
test suited to the metric, the difference's 95% interval and a plain word. Pure functions.

- CSAT: the difference of two proportions with Newcombe's hybrid score interval (Newcombe
  1998, method 10: built from the two Wilson intervals); the p-value is the pooled
  two-proportion z-test's. The word follows the interval.
- NPS: MeasuringU's adjusted-Wald difference test (Lewis & Sauro, "How to statistically
  compare two Net Promoter Scores"): each group gets n' = n + 3, p' = (P + ¾)/n',
  d' = (D + ¾)/n', NPS' = p' − d', Var' = (p' + d' − NPS'²)/n'; z = (NPS'₁ − NPS'₂) /
  sqrt(Var'₁ + Var'₂), interval (NPS'₁ − NPS'₂) ± Z95·sqrt(Var'₁ + Var'₂).
- CES: Welch's t (unequal variances, Welch–Satterthwaite degrees of freedom) on the means.

``difference`` is always the raw one (this − other) in the score's units (percentage points
for CSAT, NPS points, CES answer units); higher is better for all three ("up" is good news).
Intervals are clipped to the possible range (±100 points, ±200 NPS points, ±6 on CES).

How many answers would show the observed difference (two-sided 5%, 80% power): per group
n = (z₀.₉₇₅ + z₀.₈₀)²·(v₁ + v₂)/Δ² (the sample-size formula of Sauro & Lewis, *Quantifying
the User Experience*, for comparing two groups), v the per-answer variance of each group:
p(1 − p) for CSAT, p' + d' − (p' − d')² for NPS, s² for CES. ``more`` is what the two groups
lack of that n together.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.survey.distributions import normal_quantile, t_quantile, two_sided_p_normal, two_sided_p_t
from bot.survey.scoring import Z95, Metric, Score, nps_variance, wilson

Against = Literal["previous period", "everyone else"]
POWER = 0.80
Z_POWER = normal_quantile(POWER)
UNITS = {"csat": 100.0, "nps": 100.0, "ces": 1.0}
LIMIT = {"csat": 100.0, "nps": 200.0, "ces": 6.0}  # the largest possible difference


class Change(BaseModel):
    """One score compared with another. ``low``/``high``/``p_value`` are None when the test
    cannot run (a CES group with fewer than 2 answers, or no spread in either)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    against: Against
    metric: Metric
    difference: float
    low: float | None = None
    high: float | None = None
    p_value: float | None = Field(default=None, ge=0, le=1)
    significant: bool = False
    method: str
    needed: int | None = Field(default=None, ge=1)  # answers per group to show the difference
    more: int | None = Field(default=None, ge=0)  # how many more answers that takes
    word: str

    def label(self) -> str:
        """E.g. ``+4.2 pts (95% CI −3.1 to 11.5), up, not significant (n too small)``."""
        places, unit = (2, "") if self.metric == "ces" else (1, " pts")
        text = f"{self.difference:+.{places}f}{unit}"
        if self.low is not None and self.high is not None:
            text += f" (95% CI {self.low:.{places}f} to {self.high:.{places}f})"
        return f"{text}, {self.word}"


def compare(this: Score, other: Score, against: Against) -> Change | None:
    """This score against the other; None when either has no answers."""
    if this.value is None or other.value is None or this.metric != other.metric:
        return None
    difference = this.value - other.value
    if this.metric == "csat":
        found = _csat(this, other)
    elif this.metric == "nps":
        found = _nps(this, other)
    else:
        found = _ces(this, other)
    low, high, p_value, variances, method = found
    bound = LIMIT[this.metric]
    low = None if low is None else max(-bound, low)
    high = None if high is None else min(bound, high)
    needed = sample_size(difference / UNITS[this.metric], variances)
    more = None if needed is None else max(0, needed - this.n) + max(0, needed - other.n)
    significant = low is not None and high is not None and (low > 0 or high < 0)
    return Change(
        against=against,
        metric=this.metric,
        difference=difference,
        low=low,
        high=high,
        p_value=p_value,
        significant=significant,
        method=method,
        needed=needed,
        more=more,
        word=word(difference, significant, low is not None, more),
    )


def word(difference: float, significant: bool, tested: bool, more: int | None) -> str:
    """ "up, significant", "down, not significant (n too small)", "no change"..."""
    if difference == 0:
        return "no change"
    direction = "up" if difference > 0 else "down"
    if not tested:
        return f"{direction}, not tested (n too small)"
    if significant:
        return f"{direction}, significant"
    return f"{direction}, not significant" + (" (n too small)" if more else "")


def sample_size(delta: float, variances: tuple[float, float]) -> int | None:
    """Answers per group for a two-sided 5% test to detect ``delta`` with 80% power."""
    total = variances[0] + variances[1]
    if delta == 0 or total <= 0:
        return None
    return max(2, math.ceil((Z95 + Z_POWER) ** 2 * total / (delta * delta)))


Found = tuple[float | None, float | None, float | None, tuple[float, float], str]


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p₁ − p₂ (method 10), as proportions."""
    ci1, ci2 = wilson(k1, n1), wilson(k2, n2)
    if ci1 is None or ci2 is None:
        raise ValueError("both groups need answers")
    p1, p2 = k1 / n1, k2 / n2
    delta = p1 - p2
    low = delta - math.sqrt((p1 - ci1[0]) ** 2 + (ci2[1] - p2) ** 2)
    high = delta + math.sqrt((ci1[1] - p1) ** 2 + (p2 - ci2[0]) ** 2)
    return low, high


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """The pooled two-proportion z-test's two-sided p-value."""
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 1.0 if se == 0 else two_sided_p_normal((k1 / n1 - k2 / n2) / se)


def _csat(a: Score, b: Score) -> Found:
    k1, k2 = _top(a), _top(b)
    low, high = newcombe(k1, a.n, k2, b.n)
    p1, p2 = k1 / a.n, k2 / b.n
    variances = (p1 * (1 - p1), p2 * (1 - p2))
    method = "Newcombe hybrid score interval; pooled two-proportion z-test"
    return 100 * low, 100 * high, two_proportion_p(k1, a.n, k2, b.n), variances, method


def _top(score: Score) -> int:
    if score.top is not None:
        return score.top
    return round((score.value or 0) * score.n / 100)


def nps_difference(p1: int, d1: int, n1: int, p2: int, d2: int, n2: int) -> tuple[float, float]:
    """MeasuringU's adjusted-Wald difference NPS'₁ − NPS'₂ and its standard error, as
    proportions (multiply by 100 for points)."""
    adjusted = [(p + 0.75, d + 0.75, n + 3.0) for p, d, n in ((p1, d1, n1), (p2, d2, n2))]
    nps1, nps2 = ((p - d) / n for p, d, n in adjusted)
    se = math.sqrt(sum(nps_variance(p, d, n) / n for p, d, n in adjusted))
    return nps1 - nps2, se


def _nps(a: Score, b: Score) -> Found:
    groups = [(s.promoters or 0, s.detractors or 0, s.n) for s in (a, b)]
    diff, se = nps_difference(*groups[0], *groups[1])
    p_value = two_sided_p_normal(diff / se)
    v1, v2 = (nps_variance(p + 0.75, d + 0.75, n + 3) for p, d, n in groups)
    method = "adjusted-Wald difference test (MeasuringU)"
    return 100 * (diff - Z95 * se), 100 * (diff + Z95 * se), p_value, (v1, v2), method


def welch(
    mean1: float, sd1: float, n1: int, mean2: float, sd2: float, n2: int
) -> tuple[float, float, float, float] | None:
    """Welch's t: (t, degrees of freedom, two-sided p, half-width of the 95% interval of the
    difference); None without a spread to measure."""
    v1, v2 = sd1 * sd1 / n1, sd2 * sd2 / n2
    if v1 + v2 == 0:
        return None
    df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    t = (mean1 - mean2) / math.sqrt(v1 + v2)
    return t, df, two_sided_p_t(t, df), t_quantile(0.975, df) * math.sqrt(v1 + v2)


def _ces(a: Score, b: Score) -> Found:
    method = "Welch's t-test"
    if a.sd is None or b.sd is None or a.value is None or b.value is None:
        return None, None, None, (0.0, 0.0), method
    variances = (a.sd * a.sd, b.sd * b.sd)
    found = welch(a.value, a.sd, a.n, b.value, b.sd, b.n)
    if found is None:
        return None, None, None, variances, method
    _, _, p_value, half = found
    difference = a.value - b.value
    return difference - half, difference + half, p_value, variances, method
