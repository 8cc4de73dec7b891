"""What changed between two periods or groups: published worked values, SciPy cross-checks, the
plain words a support lead reads, and the t distribution the CES figures stand on."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from bot.survey.change import compare, newcombe, sample_size, two_proportion_p, welch, word
from bot.survey.distributions import t_cdf, t_quantile, two_sided_p_t
from bot.survey.scoring import ces, csat_from_counts, nps

# --- CSAT: Newcombe's hybrid score interval and the two-proportion test ---------------------


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2", "low", "high"),
    [
        # Newcombe (1998), "Interval estimation for the difference between independent
        # proportions", Stat Med 17:873-890, Table II, method 10 (score, no correction).
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0000),
    ],
)
def test_newcombe_published_values(
    k1: int, n1: int, k2: int, n2: int, low: float, high: float
) -> None:
    got = newcombe(k1, n1, k2, n2)
    assert got[0] == pytest.approx(low, abs=5e-5)
    assert got[1] == pytest.approx(high, abs=5e-5)


def test_csat_up_twenty_points_is_significant() -> None:
    # 56 of 70 satisfied this period (80%), 48 of 80 before (60%): +20 points, Newcombe's
    # 5.2 to 33.4; the pooled z-test's p = 0.0080 equals scipy's chi-square (no correction).
    change = compare(csat_from_counts(56, 70), csat_from_counts(48, 80), "previous period")
    assert change is not None
    assert change.difference == pytest.approx(20.0)
    assert (round(change.low or 0, 1), round(change.high or 0, 1)) == (5.2, 33.4)
    chi2 = stats.chi2_contingency([[56, 14], [48, 32]], correction=False)
    assert change.p_value == pytest.approx(chi2.pvalue, rel=1e-9)
    assert change.word == "up, significant"
    assert change.label() == "+20.0 pts (95% CI 5.2 to 33.4), up, significant"


@settings(max_examples=200)
@given(st.integers(1, 400), st.integers(1, 400), st.data())
def test_two_proportion_p_matches_scipy(n1: int, n2: int, data: st.DataObject) -> None:
    k1, k2 = data.draw(st.integers(0, n1)), data.draw(st.integers(0, n2))
    table = [[k1, n1 - k1], [k2, n2 - k2]]
    if 0 in (k1 + k2, n1 + n2 - k1 - k2):
        assert two_proportion_p(k1, n1, k2, n2) == 1.0  # nobody (or everybody) satisfied
        return
    expected = stats.chi2_contingency(table, correction=False).pvalue
    assert two_proportion_p(k1, n1, k2, n2) == pytest.approx(expected, rel=1e-7, abs=1e-12)


# --- NPS: MeasuringU's adjusted-Wald difference test ------------------------------------------


def test_nps_difference_worked_example() -> None:
    # This period 40 promoters, 40 passives, 20 detractors (NPS 20); before 30, 35, 35 (NPS
    # -5). Adjusted: n' = 103; NPS'1 = (40.75 - 20.75)/103 = 0.194175, NPS'2 = (30.75 -
    # 35.75)/103 = -0.048544; Var'1 = (0.597087 - 0.037703)/103 = 0.00543091, Var'2 =
    # (0.645631 - 0.002357)/103 = 0.00624538; se = sqrt(0.0116763) = 0.108057;
    # z = 0.242718/0.108057 = 2.2462, p = 0.0247; interval 100 * (0.242718 -/+ 1.959964 *
    # 0.108057) = 3.09 to 45.45. To show a 25-point change with 80% power:
    # (1.959964 + 0.841621)^2 * (0.559384 + 0.643274) / 0.25^2 = 151.03 -> 152 per group.
    change = compare(nps(40, 40, 20), nps(30, 35, 35), "previous period")
    assert change is not None
    assert change.difference == pytest.approx(25.0)
    assert (round(change.low or 0, 2), round(change.high or 0, 2)) == (3.09, 45.45)
    assert change.p_value == pytest.approx(0.0247, abs=1e-4)
    assert change.word == "up, significant"
    assert change.needed == 152 and change.more == 2 * (152 - 100)


def test_nps_one_answer_each_is_not_significant_and_says_why() -> None:
    change = compare(nps(1, 0, 0), nps(0, 0, 1), "everyone else")
    assert change is not None and change.difference == 200.0
    assert change.low is not None and change.low < 0 < (change.high or 0)
    assert change.word == "up, not significant (n too small)"
    assert change.more is not None and change.more > 0


# --- CES: Welch's t ---------------------------------------------------------------------------


def test_ces_welch_matches_scipy_on_a_worked_example() -> None:
    # This period 7,7,7,6,6 (mean 6.6), everyone else 3,3,2,2,2 (mean 2.4): scipy's
    # ttest_ind(equal_var=False) gives t = 12.124, df = 8.0, p = 1.98e-6 and the interval.
    this, others = [7, 7, 7, 6, 6], [3, 3, 2, 2, 2]
    change = compare(ces({7: 3, 6: 2}), ces({3: 2, 2: 3}), "everyone else")
    assert change is not None
    ref = stats.ttest_ind(this, others, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert change.difference == pytest.approx(4.2)
    assert change.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert change.low == pytest.approx(ci.low, rel=1e-9)
    assert change.high == pytest.approx(ci.high, rel=1e-9)
    assert change.word == "up, significant"


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy, on equal answers
@settings(max_examples=200)
@given(
    st.lists(st.integers(1, 7), min_size=2, max_size=40),
    st.lists(st.integers(1, 7), min_size=2, max_size=40),
)
def test_welch_matches_scipy(a: list[int], b: list[int]) -> None:
    sa, sb = ces({v: a.count(v) for v in set(a)}), ces({v: b.count(v) for v in set(b)})
    assert sa.value is not None and sb.value is not None and sa.sd is not None
    assert sb.sd is not None
    found = welch(sa.value, sa.sd, sa.n, sb.value, sb.sd, sb.n)
    if sa.sd == 0 and sb.sd == 0:
        assert found is None
        return
    assert found is not None
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert found[0] == pytest.approx(ref.statistic, rel=1e-7, abs=1e-9)
    assert found[2] == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-12)
    assert found[1] == pytest.approx(ref.df, rel=1e-9)


def test_ces_with_one_answer_is_not_tested() -> None:
    change = compare(ces({7: 1}), ces({2: 3, 3: 2}), "everyone else")
    assert change is not None and change.low is None and change.p_value is None
    assert change.word == "up, not tested (n too small)"


# --- the words and the sample size ----------------------------------------------------------


def test_words() -> None:
    assert word(0.0, False, True, None) == "no change"
    assert word(-3.0, True, True, 0) == "down, significant"
    assert word(-3.0, False, True, 40) == "down, not significant (n too small)"
    assert word(2.0, False, True, 0) == "up, not significant"
    assert compare(csat_from_counts(0, 0), csat_from_counts(3, 4), "previous period") is None


def test_sample_size_for_a_five_point_csat_change() -> None:
    # 80% vs 75% satisfied: (1.959964 + 0.841621)^2 * (0.8*0.2 + 0.75*0.25) / 0.05^2 =
    # 7.848879 * 0.3475 / 0.0025 = 1090.99 -> 1091 per group.
    assert sample_size(0.05, (0.16, 0.1875)) == 1091
    change = compare(csat_from_counts(80, 100), csat_from_counts(75, 100), "previous period")
    assert change is not None and change.needed == 1091 and change.more == 2 * 991
    assert change.word == "up, not significant (n too small)"
    assert sample_size(0.0, (0.2, 0.2)) is None


# --- Student's t without SciPy -----------------------------------------------------------------


@pytest.mark.parametrize("df", [1, 2, 3, 4.5, 9, 29, 30, 120, 999, 10_000])
def test_t_quantile_matches_scipy(df: float) -> None:
    # Table values: t(0.975, 1) = 12.706, t(0.975, 9) = 2.262, t(0.975, 29) = 2.045.
    for p in (0.6, 0.9, 0.975, 0.995, 0.025):
        assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9)


@settings(max_examples=300)
@given(st.floats(-50, 50), st.floats(0.5, 5000))
def test_t_cdf_matches_scipy(t: float, df: float) -> None:
    assert t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), rel=1e-9, abs=1e-13)
    assert two_sided_p_t(t, df) == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9,
                                                 abs=1e-13)  # fmt: skip
    assert math.isfinite(t_quantile(0.975, df))
