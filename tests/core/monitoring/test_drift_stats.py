"""The measures of ``modelyard.core.monitoring.drift.stats`` against SciPy and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from modelyard.core.monitoring.drift import stats as st
from modelyard.core.registry import reference as dref
from scipy import stats as ss
from scipy.spatial import distance


@pytest.mark.parametrize(("n", "m"), [(300, 300), (800, 1300), (30_000, 45_000), (400_000, 300_000)])
def test_wasserstein_and_ks_match_scipy(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    a, b = rng.normal(0, 1, n), rng.normal(0.2, 1.3, m)
    ref, cur = st.NumericSample(a), st.NumericSample(b)
    w, exact = st.wasserstein(ref, cur)
    assert w == pytest.approx(ss.wasserstein_distance(a, b), rel=1e-6 if exact else 1e-4)
    assert exact == (n == m or n + m <= st.EXACT_WASSERSTEIN_MAX)
    d, p, method = st.ks(ref, cur)
    expected = ss.ks_2samp(a, b)
    assert d == pytest.approx(expected.statistic, abs=1e-12 if n + m <= 2 * st.GRID else 2 / st.GRID)
    assert method == ("exact" if max(n, m) <= st.EXACT_KS_MAX else "asymptotic")
    if method == "exact":
        assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_missing_and_infinite_values_are_left_out() -> None:
    s = st.NumericSample(np.array([3.0, np.nan, 1.0, 2.0, np.nan]))
    assert s.values.tolist() == [1.0, 2.0, 3.0] and s.n_missing == 2 and s.missing_share == pytest.approx(0.4)
    assert s.summary()["median"] == 2.0 and s.summary()["std"] == pytest.approx(1.0)


def test_float32_only_when_its_rounding_is_harmless() -> None:
    rng = np.random.default_rng(0)
    assert st.float_dtype_for(rng.normal(50, 10, 1000)) is np.float32
    assert st.float_dtype_for(1.7e9 + rng.normal(0, 5, 1000)) is np.float64  # epoch seconds: float32 rounds by 128


def test_psi_js_and_chi_square() -> None:
    p, q = np.array([70.0, 30.0]), np.array([50.0, 50.0])
    assert st.js_distance(p, q) == pytest.approx(distance.jensenshannon(p / 100, q / 100))
    assert st.psi(p, q) == pytest.approx((0.5 - 0.7) * math.log(0.5 / 0.7) + (0.5 - 0.3) * math.log(0.5 / 0.3))
    assert st.psi(np.array([10.0, 0.0]), np.array([5.0, 5.0])) == pytest.approx(
        (0.5 - 1) * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4))
    chi2, pv, dof, v = st.chi_square(np.array([30, 50, 20]), np.array([25, 40, 40]))
    expected = ss.chi2_contingency(np.array([[30, 50, 20], [25, 40, 40]]), correction=False)
    assert chi2 == pytest.approx(expected.statistic) and pv == pytest.approx(expected.pvalue) and dof == 2
    assert v == pytest.approx(math.sqrt(expected.statistic / 205))
    # a category only one side has still counts; a side with nothing is no evidence
    assert st.chi_square(np.array([10, 0]), np.array([0, 10]))[1] < 0.001
    assert st.chi_square(np.array([0, 0]), np.array([3, 4])) == (0.0, 1.0, 0, 0.0)


def test_p_value_adjustment() -> None:
    p = [0.01, 0.04, 0.03, float("nan"), 0.2]
    assert st.adjust_p_values(p, "holm")[:3] == pytest.approx([0.04, 0.09, 0.09])
    assert st.adjust_p_values(p, "bh")[:3] == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3 * 1])
    assert math.isnan(st.adjust_p_values(p, "holm")[3])
    assert st.adjust_p_values(p, "none")[:3] == [0.01, 0.04, 0.03]


def test_binned_profile_answers_quantiles_and_cdf() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(10, 2, 200_000)
    bins = st.NumericBins(dref.numeric_profile(values))
    raw = st.NumericSample(values)
    u = np.linspace(0.01, 0.99, 99)
    assert np.max(np.abs(bins.quantile(u) - raw.quantile(u))) < 0.05
    x = np.linspace(4, 16, 50)
    assert np.max(np.abs(bins.cdf(x) - raw.cdf(x))) < 0.003
    assert bins.moments()[0] == pytest.approx(10, abs=0.02) and bins.n == 200_000
    edges = st.decile_edges(raw)
    assert np.allclose(bins.bin_counts(edges), raw.bin_counts(edges), atol=200)
    # discrete columns: exact per value
    disc = st.NumericBins(dref.numeric_profile(np.array([1.0, 1, 2, 5, 5, 5])))
    assert disc.discrete and disc.cdf(np.array([0.5, 1, 4.9, 5])).tolist() == pytest.approx([0, 2 / 6, 3 / 6, 1])
    assert disc.value_counts(np.array([1.0, 2, 3, 5])).tolist() == [2, 1, 0, 3]
    assert disc.distinct(5).tolist() == [1, 2, 5]


def test_histograms_share_bins_and_sum_to_one() -> None:
    rng = np.random.default_rng(4)
    ref, cur = st.NumericSample(rng.normal(0, 1, 5000)), st.NumericSample(rng.normal(1, 1, 4000))
    h = st.numeric_histogram(ref, cur)
    assert len(h["edges"]) == st.HISTOGRAM_BINS + 1 and h["edges"][0] < -2 and h["edges"][-1] > 3
    assert sum(h["reference"]) == pytest.approx(1) and sum(h["batch"]) == pytest.approx(1)
    assert np.argmax(h["batch"]) > np.argmax(h["reference"])
    c = st.categorical_histogram([f"k{i}" for i in range(30)], np.arange(30.0) + 1, np.ones(30))
    assert len(c["categories"]) == st.MAX_SHOWN_CATEGORIES + 1 and c["categories"][-1] == "(other)"
    assert sum(c["reference"]) == pytest.approx(1) and c["categories"][0] == "k29"
