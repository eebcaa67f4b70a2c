"""Exact numbers worked out by hand (formulas in the comments)."""

import math

import pytest

from pipeline.reports import stats


def test_wilson_8_of_10():
    # z = 1.959964, z^2/n = 0.384146; centre = (0.8 + 0.192073) / 1.384146 = 0.716738
    # half = z * sqrt(0.016 + 0.0096036) / 1.384146 = 0.226575
    r = stats.wilson(8, 10)
    assert r.p == 0.8
    assert r.low == pytest.approx(0.490162, abs=1e-5)
    assert r.high == pytest.approx(0.943313, abs=1e-5)


def test_wilson_edges():
    assert stats.wilson(0, 0).p is None
    zero = stats.wilson(0, 10)
    assert zero.low == 0.0 and zero.high == pytest.approx(0.277533, abs=1e-5)  # z^2/(n+z^2) = 3.8415/13.8415
    with pytest.raises(ValueError):
        stats.wilson(3, 2)


def test_cochran_1000_at_95_5():
    # n0 = 1.959964^2 * 0.25 / 0.0025 = 384.146; n = 384.146 / (1 + 383.146/1000) = 277.74 -> 278
    assert stats.cochran(1000, 0.95, 0.05) == 278
    assert stats.cochran(None, 0.95, 0.05) == 385
    assert stats.cochran(100, 0.95, 0.05) == 80  # 384.146 / 4.83146 = 79.51
    assert stats.cochran(10, 0.95, 0.05) == 10
    # 99% +-3%: n0 = 2.575829^2 * 0.25 / 0.0009 = 1843.03; / (1 + 1842.03/5000) = 1346.85 -> 1347
    assert stats.cochran(5000, 0.99, 0.03) == 1347


def test_margin_of_error_inverts_cochran():
    # 1.959964 * 0.5 / sqrt(278) = 0.058776; * sqrt(722/999) = 0.049968
    assert stats.margin_of_error(278, 1000) == pytest.approx(0.049968, abs=1e-5)
    assert stats.margin_of_error(100) == pytest.approx(0.0979982, abs=1e-6)
    assert stats.margin_of_error(0) is None
    assert stats.margin_of_error(50, 50) == 0.0


def test_cohen_kappa_2x2():
    # yes/yes 20, yes/no 5, no/yes 10, no/no 15: po = 0.7, pe = 0.5*0.6 + 0.5*0.4 = 0.5 -> 0.4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert stats.cohen_kappa(a, b) == pytest.approx(0.4)
    assert stats.percent_agreement(a, b) == pytest.approx(0.7)
    assert stats.cohen_kappa(["y", "n"], ["y", "n"]) == 1.0
    assert stats.cohen_kappa(["y", "y"], ["y", "y"]) is None  # no variation: undefined
    assert stats.cohen_kappa([], []) is None


def test_fleiss_kappa_wikipedia_example():
    # The textbook table: 10 items, 14 raters, 5 categories; P_bar = 0.378, Pe = 0.213 -> 0.210
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]
    assert stats.fleiss_kappa(table) == pytest.approx(0.20993, abs=1e-4)
    with pytest.raises(ValueError):
        stats.fleiss_kappa([[1, 1], [3, 0]])


def test_krippendorff_alpha_nominal():
    # units (a,a) (a,b) (b,b) (b,b): o_ab = o_ba = 1, n_a = 3, n_b = 5, n = 8
    # alpha = 1 - (n-1) * 2 / (2 * 3 * 5) = 1 - 14/30 = 0.5333
    alpha = stats.krippendorff_alpha([["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"]])
    assert alpha == pytest.approx(8 / 15)
    # a unit with one value carries no pairs and changes nothing
    assert stats.krippendorff_alpha([["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"], ["a"]]) == pytest.approx(8 / 15)
    # two raters, no missing: alpha is close to (not equal to) Cohen's kappa
    assert stats.krippendorff_alpha([["x", "x"], ["y", "y"]]) == 1.0
    assert stats.krippendorff_alpha([["x", "x"], ["x", "x"]]) is None


def test_z_for():
    assert stats.z_for(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert math.isclose(stats.z_for(0.9), 1.644854, abs_tol=1e-6)


def test_corrected_rate_by_hand():
    # N = 10 calls, machine says done on 5: mean 0.5, var(f) = 2.5 / 9 = 0.277778.
    # 4 reviewed (listener, machine): (1,1) (0,1) (1,1) (0,0); c = 1 - 4/10 = 0.6.
    # cov(y, f) on them = (0.125 - 0.125 + 0.125 + 0.375) / 3 = 0.166667;
    # lam = 0.6 * 0.166667 / 4 / (0.277778 * (6/100 + 0.36/4)) = 0.025 / 0.041667 = 0.6.
    # p = 0.6 * 0.5 + mean(y - 0.6 f) = 0.3 + (0.5 - 0.45) = 0.35.
    # y - lam c f = y - 0.36 f = 0.64, -0.36, 0.64, 0: var = 0.7372 / 3 = 0.245733.
    # Var = 0.36 * 6 * 0.277778 / 100 + 0.245733 / 4 = 0.006 + 0.061433 = 0.067433;
    # half = 1.959964 * 0.259679 = 0.508962.
    est = stats.corrected_rate([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [(1, 1), (0, 1), (1, 1), (0, 0)], min_reviews=2)
    assert est.p == pytest.approx(0.35)
    assert est.low == 0.0
    assert est.high == pytest.approx(0.858962, abs=1e-5)
    assert (est.n_calls, est.n_reviewed) == (10, 4)


def test_corrected_rate_with_every_call_reviewed_is_the_listeners_mean():
    # n = N: lambda = 0, the machine drops out; y = 1,1,0,1: mean 0.75, var = 0.75 / 3 = 0.25,
    # half = 1.959964 * sqrt(0.25 / 4) = 0.489991.
    est = stats.corrected_rate([0, 1, 1, 0], [(1, 0), (1, 1), (0, 1), (1, 0)], min_reviews=2)
    assert est.p == pytest.approx(0.75)
    assert est.low == pytest.approx(0.260009, abs=1e-5) and est.high == 1.0


def test_corrected_rate_edges():
    assert stats.corrected_rate([], []) is None
    machine_only = stats.corrected_rate([1, 0, 1, 1], [])
    assert machine_only.p == 0.75 and machine_only.low is None
    # One review: the plain shift is applied, but there is no spread to build an interval on.
    one = stats.corrected_rate([1, 1, 1, 1], [(0, 1)])
    assert one.p == 0.0 and one.high is None
    # Below ten random reviews, by default, no interval: the by-hand case above has four.
    few = stats.corrected_rate([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [(1, 1), (0, 1), (1, 1), (0, 0)])
    assert few.p == pytest.approx(0.25) and few.low is None  # the plain shift: 0.5 - 0.25
    with pytest.raises(ValueError):
        stats.corrected_rate([1], [(1, 1), (0, 0)])


def test_corrected_rate_when_every_listener_agrees_is_the_listeners_wilson_interval():
    # 10 of 10 reviews "done": a normal interval would have no width; Wilson 10/10 is 0.722467 .. 1.
    est = stats.corrected_rate([1] * 15 + [0] * 5, [(1, 1)] * 8 + [(1, 0)] * 2)
    assert est.p == 1.0 and est.high == 1.0
    assert est.low == pytest.approx(0.722467, abs=1e-5)


def _simulate(machine_accuracy: float, trials: int = 1500, n_calls: int = 1000, n_reviewed: int = 100):
    """Coverage and mean widths of the corrected and the listeners-only (Wilson)
    intervals over random months of calls with a known true rate."""
    import random

    rng = random.Random(20261206)
    covered = 0
    widths, wilson_widths = [], []
    for _ in range(trials):
        truth = rng.uniform(0.2, 0.8)
        done = [rng.random() < truth for _ in range(n_calls)]
        machine = [d if rng.random() < machine_accuracy else not d for d in done]
        sample = rng.sample(range(n_calls), n_reviewed)
        est = stats.corrected_rate(machine, [(done[i], machine[i]) for i in sample])
        covered += est.low <= truth <= est.high
        widths.append(est.high - est.low)
        w = stats.wilson(sum(done[i] for i in sample), n_reviewed)
        wilson_widths.append(w.high - w.low)
    return covered / trials, sum(widths) / trials, sum(wilson_widths) / trials


def test_corrected_rate_covers_the_truth_95_percent_of_the_time_and_a_good_machine_narrows_it():
    coverage, width, wilson_width = _simulate(machine_accuracy=0.9)
    assert 0.93 <= coverage <= 0.97  # 0.944 over 6000 months: a normal interval from 100 reviews
    assert width < 0.75 * wilson_width  # about sqrt(0.1 / 0.23): a third narrower


def test_corrected_rate_stays_honest_with_a_useless_machine():
    # A machine right half the time is noise: the estimate still covers the
    # truth, and the tuning all but drops the machine, so the interval is about
    # the listeners' own rather than wider.
    coverage, width, wilson_width = _simulate(machine_accuracy=0.5)
    assert 0.93 <= coverage <= 0.97
    assert 0.9 * wilson_width < width < 1.05 * wilson_width


def test_corrected_rate_counts_purposely_chosen_reviews_as_themselves():
    # The by-hand case above (p = 0.35, half = 0.508962 over 10 calls) plus 10
    # calls reviewed on purpose, 8 of them done: w = 10/20,
    # p = 0.5 * 0.35 + 0.5 * 0.8 = 0.575, half = 0.5 * 0.508962 = 0.254481.
    est = stats.corrected_rate([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [(1, 1), (0, 1), (1, 1), (0, 0)], known=[1] * 8 + [0] * 2,
                               min_reviews=2)
    assert est.p == pytest.approx(0.575)
    assert est.low == pytest.approx(0.320519, abs=1e-5) and est.high == pytest.approx(0.829481, abs=1e-5)
    assert (est.n_calls, est.n_reviewed, est.n_known) == (20, 4, 10)
    # Every call known: the exact share, nothing left to estimate.
    every = stats.corrected_rate([], [], known=[1, 0, 0, 1])
    assert (every.p, every.low, every.high) == (0.5, 0.5, 0.5)
