"""Tests for bot.survey.scoring: published worked values, independent cross-checks, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats

from bot.survey.scoring import (
    Z95,
    Score,
    ces,
    ces_from_sums,
    csat_binary,
    csat_from_counts,
    csat_rating,
    nps,
    nps_from_counts,
    nps_from_totals,
    wilson,
)

CES_EXAMPLE = dict(zip(range(1, 8), [80, 210, 140, 110, 160, 180, 120], strict=True))
counts_1_7 = st.lists(st.integers(0, 60), min_size=7, max_size=7)
counts_0_10 = st.lists(st.integers(0, 40), min_size=11, max_size=11)


# --- worked values ------------------------------------------------------------------------


def test_csat_rating_worked_example() -> None:
    # Top-2-box: (32 + 42) / 107 = 69.16%. Wilson bounds 0.59872 / 0.77118 recomputed
    # independently with scipy.stats.binomtest(74, 107).proportion_ci(method="wilson").
    s = csat_rating({1: 14, 2: 9, 3: 10, 4: 32, 5: 42})
    assert s.n == 107
    assert s.value == pytest.approx(100 * 74 / 107)
    assert s.low == pytest.approx(59.87, abs=0.01)
    assert s.high == pytest.approx(77.12, abs=0.01)
    assert s.label() == "69.2% (95% CI 59.9–77.1, n=107)"


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # From the brief, recomputed with scipy binomtest(...).proportion_ci("wilson"):
        # 25/100 -> 0.175452, 0.343045; 0/100 -> 0, 0.036993.
        (25, 100, 0.1755, 0.3430),
        (0, 100, 0.0, 0.0370),
        # Newcombe (1998), Stat Med 17:857-872, Table II, method 3 (Wilson score, no
        # continuity correction) worked examples.
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_published_values(k: int, n: int, low: float, high: float) -> None:
    ci = wilson(k, n)
    assert ci is not None
    assert ci[0] == pytest.approx(low, abs=5e-5)
    assert ci[1] == pytest.approx(high, abs=5e-5)


def test_wilson_edges_exact() -> None:
    # At k = 0 the lower bound is 0 and at k = n the upper is 1 (Wilson 1927; the closed
    # form gives these up to rounding, which the implementation removes).
    ci = wilson(0, 7)
    assert ci is not None and ci[0] == 0.0
    assert ci[1] == pytest.approx(Z95**2 / (7 + Z95**2))
    ci = wilson(7, 7)
    assert ci is not None and ci[1] == 1.0
    assert wilson(0, 0) is None  # documented: no data, no interval


def test_nps_worked_example() -> None:
    # 250 promoters, 675 passives, 75 detractors: NPS 17.5.
    # Plain Wald (kept for comparison): p = 0.25, d = 0.075, variance p + d - (p - d)^2 =
    # 0.294375, half-width 1.96 * 100 * sqrt(0.294375 / 1000) = 3.363 -> 14.137 to 20.863.
    # Adjusted Wald (Rocks 2016; MeasuringU): n' = 1003, p' = 250.75 / 1003 = 0.250000,
    # d' = 75.75 / 1003 = 0.075523, NPS' = 17.4477; variance 0.325523 - 0.174477^2 = 0.295081,
    # half-width 1.96 * 100 * sqrt(0.295081 / 1003) = 3.3618 -> 14.086 to 20.809. By hand.
    s = nps(250, 675, 75)
    assert s.value == pytest.approx(17.5)
    assert s.wald_low == pytest.approx(14.137, abs=1e-3)
    assert s.wald_high == pytest.approx(20.863, abs=1e-3)
    assert s.low == pytest.approx(14.086, abs=1e-3)
    assert s.high == pytest.approx(20.809, abs=1e-3)
    assert (s.promoters, s.passives, s.detractors) == (250, 675, 75)
    assert (s.share("promoters"), s.share("passives"), s.share("detractors")) == (25.0, 67.5, 7.5)
    assert s.label() == "17.5 (95% CI 14.1–20.8, n=1000)"


def test_nps_adjusted_wald_small_sample_worked_example() -> None:
    # A small sample, where the adjustment matters: 6 promoters, 3 passives, 1 detractor
    # (NPS 50). n' = 13, p' = 6.75/13 = 0.519231, d' = 1.75/13 = 0.134615, NPS' = 0.384615;
    # variance 0.653846 - 0.147929 = 0.505917; se = sqrt(0.505917/13) = 0.197272;
    # 100 * (0.384615 -/+ 1.959964 * 0.197272) = -0.20 to 77.13. By hand from the formula.
    # The plain Wald interval is 100 * (0.5 -/+ 1.959964 * sqrt((0.7 - 0.25)/10)) =
    # 8.42 to 91.58: centred on the raw score and narrower than it should be at n = 10.
    s = nps(6, 3, 1)
    assert s.value == pytest.approx(50.0)
    assert s.low == pytest.approx(-0.20, abs=0.01)
    assert s.high == pytest.approx(77.13, abs=0.01)
    assert (round(s.wald_low or 0, 2), round(s.wald_high or 0, 2)) == (8.42, 91.58)


def test_ces_worked_example() -> None:
    # Computed by hand: n = 1000, sum = 80+420+420+440+800+1080+840 = 4080, mean 4.08;
    # agree (5-7) = 160+180+120 = 460 -> 46%. s = 1.912396 (numpy std ddof=1 of the expanded
    # answers), half-width t(0.975, 999) * s / sqrt(1000) = 1.962341 * 0.060475 = 0.1187
    # (scipy.stats.t.ppf). Agree Wilson 42.93-49.10% by scipy
    # binomtest(460, 1000).proportion_ci("wilson"). The brief's 4.08 and 46% are both right.
    s = ces(CES_EXAMPLE)
    assert s.n == 1000
    assert s.value == pytest.approx(4.08)
    assert s.low == pytest.approx(3.9613, abs=1e-4)
    assert s.high == pytest.approx(4.1987, abs=1e-4)
    assert s.sd == pytest.approx(1.912396, abs=1e-6)
    assert s.agree_pct == pytest.approx(46.0)
    assert s.agree_low == pytest.approx(42.93, abs=0.01)
    assert s.agree_high == pytest.approx(49.10, abs=0.01)
    assert s.label() == "4.08 (95% CI 3.96–4.20, n=1000); 46.0% agree (95% CI 42.9–49.1)"


# --- independent cross-checks -------------------------------------------------------------


@settings(max_examples=300)
@given(st.integers(1, 10**6).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_matches_scipy(kn: tuple[int, int]) -> None:
    # Independent implementation: scipy.stats.binomtest(k, n).proportion_ci(method="wilson").
    k, n = kn
    ref = stats.binomtest(k, n).proportion_ci(method="wilson")
    ci = wilson(k, n)
    assert ci is not None
    assert ci[0] == pytest.approx(ref.low, rel=1e-9, abs=1e-12)
    assert ci[1] == pytest.approx(ref.high, rel=1e-9, abs=1e-12)


@settings(max_examples=200)
@given(counts_1_7)
def test_ces_matches_numpy_and_scipy(raw: list[int]) -> None:
    # Independent: expand the answers, numpy mean / std(ddof=1), and
    # scipy.stats.t.interval(0.95, n - 1, mean, s/sqrt(n)), clipped to the 1-7 scale; with no
    # spread to measure (n = 1, or all alike), scipy's Wilson interval of the rescaled mean.
    answers = np.repeat(np.arange(1, 8), raw)
    s = ces(dict(enumerate(raw, start=1)))
    assert s.n == answers.size
    if answers.size == 0:
        assert s.value is None
        return
    assert s.value == pytest.approx(float(answers.mean()), rel=1e-12)
    assert s.agree_pct == pytest.approx(100 * float((answers >= 5).mean()))
    sd = float(answers.std(ddof=1)) if answers.size > 1 else 0.0
    if sd == 0:
        # Wilson's score interval (Wilson 1927) of the share p = (mean - 1)/6 over n answers
        p, n, z = (answers.mean() - 1) / 6, answers.size, stats.norm.ppf(0.975)
        centre, denom = p + z * z / (2 * n), 1 + z * z / n
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        lo, hi = 1 + 6 * (centre - half) / denom, 1 + 6 * (centre + half) / denom
        assert s.sd in (None, 0.0)
    else:
        lo, hi = stats.t.interval(
            0.95, answers.size - 1, loc=answers.mean(), scale=sd / math.sqrt(answers.size)
        )
    assert s.low == pytest.approx(max(1.0, lo), abs=1e-9)
    assert s.high == pytest.approx(min(7.0, hi), abs=1e-9)
    assert s.low < s.high  # never zero width


@settings(max_examples=200)
@given(counts_0_10)
def test_nps_wald_matches_per_answer_variance(raw: list[int]) -> None:
    # Independent: score each answer +100 (9-10) / 0 (7-8) / -100 (0-6); NPS is their mean
    # and the plain Wald standard error sqrt(var/n) with the population variance (ddof=0).
    # The adjusted-Wald interval is the same computation on the answers plus 3 pseudo-answers
    # (3/4 promoter, 3/4 detractor, 3/2 passive), weighted.
    answers = np.repeat(np.arange(11), raw)
    s = nps_from_counts(dict(enumerate(raw)))
    assert s.n == answers.size
    if answers.size == 0:
        assert s.value is None
        return
    scores = np.where(answers >= 9, 100.0, np.where(answers <= 6, -100.0, 0.0))
    half = stats.norm.ppf(0.975) * math.sqrt(float(scores.var(ddof=0)) / answers.size)
    assert s.value == pytest.approx(float(scores.mean()), abs=1e-9)
    assert s.wald_low == pytest.approx(max(-100.0, scores.mean() - half), abs=1e-9)
    assert s.wald_high == pytest.approx(min(100.0, scores.mean() + half), abs=1e-9)
    weights = np.concatenate([np.ones(answers.size), [0.75, 0.75, 1.5]])
    padded = np.concatenate([scores, [100.0, -100.0, 0.0]])
    mean = float(np.average(padded, weights=weights))
    var = float(np.average((padded - mean) ** 2, weights=weights))
    adjusted = stats.norm.ppf(0.975) * math.sqrt(var / weights.sum())
    assert s.low == pytest.approx(max(-100.0, mean - adjusted), abs=1e-9)
    assert s.high == pytest.approx(min(100.0, mean + adjusted), abs=1e-9)
    assert s.low < s.high


def test_counts_functions_use_the_summary_functions() -> None:
    # One formula per metric: the counts-based entry points equal the SQL-summary ones.
    assert csat_binary(30, 10) == csat_from_counts(30, 40)
    assert csat_rating({1: 2, 4: 3, 5: 5}) == csat_from_counts(8, 10)
    assert csat_rating({1: 1, 6: 2, 7: 3}, scale_max=7) == csat_from_counts(5, 6)
    assert nps(5, 3, 2) == nps_from_totals(5, 2, 10)
    assert nps_from_counts({0: 1, 6: 1, 7: 2, 8: 1, 9: 3, 10: 2}) == nps(5, 3, 2)
    assert ces({1: 1, 5: 2, 7: 1}) == ces_from_sums(4, 1 + 10 + 7, 1 + 50 + 49, 3)
    # Float sums (as some SQL drivers return) give the same score.
    assert ces_from_sums(4, 18.0, 100.0, 3).value == pytest.approx(4.5)


# --- no data and small n ------------------------------------------------------------------


@pytest.mark.parametrize(
    "score",
    [
        csat_binary(0, 0),
        csat_rating({}),
        csat_from_counts(0, 0),
        nps(0, 0, 0),
        nps_from_counts({}),
        nps_from_totals(0, 0, 0),
        ces({}),
        ces_from_sums(0, 0, 0, 0),
    ],
)
def test_no_data(score: Score) -> None:
    assert score.n == 0
    assert score.value is None and score.low is None and score.high is None
    assert score.agree_pct is None
    assert score.label() == "no data (n=0)"


def test_one_answer_never_gives_a_zero_width_interval() -> None:
    # n = 1 promoter: plain Wald has variance 0 (the old zero-width -100..-100 / 100..100);
    # adjusted Wald: n' = 4, p' = 1.75/4, d' = 0.75/4, NPS' = 0.25, variance 0.625 - 0.0625 =
    # 0.5625, se = 0.375 -> 100 * (0.25 -/+ 1.96 * 0.375) = -48.50 to 98.50 (by hand).
    one = nps(1, 0, 0)
    assert (one.value, one.wald_low, one.wald_high) == (100.0, 100.0, 100.0)
    assert (round(one.low or 0, 2), round(one.high or 0, 2)) == (-48.50, 98.50)
    lone_detractor = nps(0, 0, 1)
    assert (round(lone_detractor.low or 0, 2), round(lone_detractor.high or 0, 2)) == (
        -98.50, 48.50
    )  # fmt: skip
    assert csat_binary(1, 0).low == pytest.approx(100 * Z95**-2 / (1 + Z95**-2), abs=0.05)
    # CES with n = 1 (or no spread): Wilson of (6 - 1)/6 over 1 answer, rescaled to 1-7.
    c = ces({6: 1})
    assert c.value == 6.0 and c.sd is None
    assert (round(c.low or 0, 3), round(c.high or 0, 3)) == (1.866, 6.960)
    assert c.agree_pct == 100.0 and c.agree_low is not None
    assert c.label().startswith("6.00 (95% CI 1.87–6.96, n=1); 100.0% agree (95% CI ")
    all_sevens = ces({7: 3})
    assert all_sevens.sd == 0.0 and all_sevens.high == 7.0 and (all_sevens.low or 7) < 7.0
    for score in (one, lone_detractor, csat_binary(0, 1), c, all_sevens, ces({1: 1})):
        assert score.low is not None and score.high is not None and score.low < score.high


def test_label_with_negative_bounds() -> None:
    assert nps(10, 20, 70).label() == "-60.0 (95% CI -71.2 to -45.3, n=100)"


def test_score_is_frozen_and_strict() -> None:
    s = csat_binary(1, 1)
    with pytest.raises(ValidationError):
        s.n = 5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Score(metric="csat", value=50.0, n=2, low=0.1, high=0.9, extra=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="n == 0"):
        Score(metric="nps", value=0.0, n=0)  # a score of 0 is not "no data"
    with pytest.raises(ValidationError, match="does not contain"):
        Score(metric="csat", value=50.0, n=2, low=60.0, high=70.0)
    with pytest.raises(ValidationError, match="only defined for CES"):
        Score(metric="nps", value=1.0, n=1, agree_pct=1.0)
    with pytest.raises(ValidationError, match="no width"):
        Score(metric="nps", value=100.0, n=1, low=100.0, high=100.0)


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: wilson(-1, 10), "successes must not be negative"),
        (lambda: wilson(11, 10), "exceed n"),
        (lambda: wilson(1, 10, z=0), "z must be positive"),
        (lambda: csat_binary(-1, 3), "yes must not be negative"),
        (lambda: csat_rating({6: 1}), "outside the 1–5 scale"),
        (lambda: csat_rating({0: 1}), "outside the 1–5 scale"),
        (lambda: csat_rating({3: -2}), "must not be negative"),
        (lambda: csat_rating({1: 1}, scale_max=2), "at least 3"),
        (lambda: csat_from_counts(5, 4), "exceed n"),
        (lambda: nps(1, -1, 0), "passives must not be negative"),
        (lambda: nps_from_counts({11: 1}), "outside the 0–10 scale"),
        (lambda: nps_from_counts({-1: 1}), "outside the 0–10 scale"),
        (lambda: nps_from_totals(6, 5, 10), "exceed n"),
        (lambda: ces({8: 1}), "outside the 1–7 scale"),
        (lambda: ces({0: 1}), "outside the 1–7 scale"),
        (lambda: ces({2: -1}), "must not be negative"),
        (lambda: ces_from_sums(2, 15, 100, 1), "impossible"),
        (lambda: ces_from_sums(2, 8, 32, 3), "agree"),
        (lambda: ces_from_sums(2, 8, 31, 1), "negative variance"),
    ],
)
def test_invalid_input_raises(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match=message):
        call()


# --- properties ---------------------------------------------------------------------------


def _check_bounds(s: Score, lo: float, hi: float) -> None:
    assert s.value is not None and lo <= s.value <= hi
    assert s.low is not None and s.high is not None and lo <= s.low < s.high <= hi
    if s.metric != "nps":  # the adjusted-Wald NPS interval is centred on the adjusted NPS
        assert s.low <= s.value <= s.high
    if s.agree_pct is not None:
        assert s.agree_low is not None and s.agree_high is not None
        assert 0 <= s.agree_low <= s.agree_pct <= s.agree_high <= 100


@given(st.integers(0, 5000), st.integers(0, 5000))
def test_csat_bounds_property(yes: int, no: int) -> None:
    s = csat_binary(yes, no)
    if yes + no:
        _check_bounds(s, 0, 100)


@given(counts_0_10)
def test_nps_bounds_property(raw: list[int]) -> None:
    s = nps_from_counts(dict(enumerate(raw)))
    if s.n:
        _check_bounds(s, -100, 100)


@given(counts_1_7)
def test_ces_bounds_property(raw: list[int]) -> None:
    s = ces(dict(enumerate(raw, start=1)))
    if s.n:
        _check_bounds(s, 1, 7)


def _width(s: Score) -> float:
    assert s.low is not None and s.high is not None
    return s.high - s.low


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_narrows_with_n(kn: tuple[int, int]) -> None:
    # Same proportion k/n, more answers: strictly narrower (for n >= 1 the Wilson width
    # 2z·sqrt(p(1-p)n + z²/4)/(n + z²) is decreasing in n).
    k, n = kn
    widths = [_width(csat_from_counts(k * m, n * m)) for m in (1, 2, 10)]
    assert widths[0] > widths[1] > widths[2]


@given(counts_0_10.filter(lambda r: sum(r) > 0))
def test_nps_narrows_with_n(raw: list[int]) -> None:
    small = nps_from_counts(dict(enumerate(raw)))
    big = nps_from_counts({a: 4 * c for a, c in enumerate(raw)})
    assert big.value == pytest.approx(small.value)
    assert _width(big) <= _width(small)
    clipped = small.low == -100 or small.high == 100
    if _width(small) > 0 and not clipped:
        assert _width(big) < _width(small)


@given(counts_1_7.filter(lambda r: sum(r) >= 2))
def test_ces_narrows_with_n(raw: list[int]) -> None:
    small = ces(dict(enumerate(raw, start=1)))
    big = ces({a: 4 * c for a, c in enumerate(raw, start=1)})
    assert big.value == pytest.approx(small.value)
    assert _width(big) <= _width(small)
    clipped = small.low == 1 or small.high == 7
    if _width(small) > 0 and not clipped:
        assert _width(big) < _width(small)
    assert small.agree_pct is not None and big.agree_pct == pytest.approx(small.agree_pct)
    assert big.agree_high - big.agree_low < small.agree_high - small.agree_low  # type: ignore[operator]
