"""Small, dependency-free statistics for the owner reports.

Rates come with Wilson 95% intervals because review counts are small and a
plain normal interval would go below 0 or above 1. Agreement uses Cohen's
kappa for two raters and Krippendorff's alpha (nominal) when the number of
raters varies from call to call; Fleiss' kappa is there for the fixed case.
``corrected_rate`` joins the machine's answers on every call with the
listeners' answers on a random sample of them (a prediction-powered estimate).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from statistics import NormalDist
from typing import Hashable, Sequence


def z_for(confidence: float) -> float:
    """Two-sided normal quantile: 0.95 -> 1.95996."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


@dataclass(frozen=True)
class Rate:
    """k out of n with its Wilson interval; ``p`` is None when n is 0."""

    k: int
    n: int
    p: float | None
    low: float | None
    high: float | None

    def __str__(self) -> str:
        if self.p is None:
            return "n/a"
        return f"{self.p:.0%} ({self.low:.0%}-{self.high:.0%}, n={self.n})"


def wilson(k: int, n: int, confidence: float = 0.95) -> Rate:
    """Wilson score interval for a proportion k/n."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return Rate(k, n, None, None, None)
    z = z_for(confidence)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At k = 0 and k = n the bound is exactly 0 or 1; rounding would leave 1e-17.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return Rate(k, n, p, low, high)


def margin_of_error(n: int, population: int | None = None, confidence: float = 0.95, p: float = 0.5) -> float | None:
    """Half-width of a proportion's interval from n reviewed calls out of a
    population (finite-population corrected); None when n is 0."""
    if n <= 0:
        return None
    e = z_for(confidence) * math.sqrt(p * (1 - p) / n)
    if population is not None and population > 1:
        if n >= population:
            return 0.0
        e *= math.sqrt((population - n) / (population - 1))
    return e


@dataclass(frozen=True)
class Corrected:
    """A rate over all processed calls: the machine's rate, corrected by what the
    listeners found on the reviewed sample, with its normal 95% interval."""

    p: float
    low: float | None
    high: float | None
    n_calls: int
    n_reviewed: int  # drawn at random and reviewed
    n_known: int = 0  # reviewed but chosen on purpose: they stand only for themselves


def _cov(xs: Sequence[float], ys: Sequence[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / (len(xs) - 1)


MIN_RANDOM_REVIEWS = 10  # below this, a normal interval for the correction is not to be trusted


def corrected_rate(machine: Sequence[float], reviewed: Sequence[tuple[float, float]], known: Sequence[float] = (),
                   confidence: float = 0.95, min_reviews: int = MIN_RANDOM_REVIEWS) -> Corrected | None:
    """Prediction-powered estimate of a rate (Angelopoulos et al., Science 2023,
    with the power tuning of PPI++): lam * mean_all(f) + mean_L(y - lam * f),
    f the machine's answer on each of the N calls, y the listener's on the n
    reviewed ones, which must be a random sample of those N calls.

    With lam = 1 it is the machine's rate plus the mean of (listener - machine):
    the machine's errors cancel on average, so it is unbiased however poor the
    machine, and a good machine gives an interval narrower than the listeners'
    sample alone. lam is chosen from the data to minimise the variance, and
    kept in [0, 1]: a useless machine gets lam near 0 and the interval of the
    listeners alone. As the reviewed calls are among the N, the estimate is
    lam (N-n)/N mean_U(f) + mean_L(y - lam c f) with c = 1 - n/N, U the
    unreviewed calls, so Var = lam^2 (N-n) var(f) / N^2 + var(y - lam c f) / n.
    The interval is normal, so it needs ``min_reviews`` random reviews (below,
    the plain lam = 1 estimate is given without an interval); and
    when the reviews do not vary at all (every listener said "done") a normal
    interval would have no width, so the listeners' own Wilson interval
    stands, without the machine.

    ``known`` are the listeners' answers on calls reviewed but not drawn at
    random (priority, gold, hand-picked): counted as they are, weighted by
    their share of all calls, never used to correct the machine on the others.
    Point and interval are clipped to [0, 1]; None without any call."""
    n_all, n, k = len(machine), len(reviewed), len(known)
    if n > n_all:
        raise ValueError(f"the reviewed calls ({n}) must be among the machine's ({n_all})")
    if n_all + k == 0:
        return None
    p, low, high = _ppi(machine, reviewed, confidence, max(2, min_reviews)) if n_all else (0.0, 0.0, 0.0)
    w = n_all / (n_all + k)
    rest = (1 - w) * (sum(known) / k if k else 0.0)
    if low is None or high is None:
        return Corrected(_unit(w * p + rest), None, None, n_all + k, n, k)
    return Corrected(_unit(w * p + rest), _unit(w * low + rest), _unit(w * high + rest), n_all + k, n, k)


def _ppi(machine: Sequence[float], reviewed: Sequence[tuple[float, float]], confidence: float,
         min_reviews: int) -> tuple[float, float | None, float | None]:
    """The estimate over the machine's calls and its interval (None below ``min_reviews``)."""
    n_all, n = len(machine), len(reviewed)
    if n < min_reviews:
        shift = sum(y - f for y, f in reviewed) / n if n else 0.0
        return sum(machine) / n_all + shift, None, None
    ys, fs = [y for y, _ in reviewed], [f for _, f in reviewed]
    if _cov(ys, ys) == 0:
        r = wilson(round(sum(ys)), n, confidence)
        return r.p, r.low, r.high
    c = 1 - n / n_all
    var_f = _cov(machine, machine) if n_all > 1 else 0.0
    denom = var_f * ((n_all - n) / n_all**2 + c * c / n)
    lam = _unit(c * _cov(ys, fs) / n / denom) if denom > 0 else 0.0
    p = lam * sum(machine) / n_all + sum(y - lam * f for y, f in reviewed) / n
    rest = [y - lam * c * f for y, f in reviewed]
    half = z_for(confidence) * math.sqrt(lam * lam * (n_all - n) * var_f / n_all**2 + _cov(rest, rest) / n)
    return p, p - half, p + half


def _unit(x: float) -> float:
    return min(1.0, max(0.0, x))


def cochran(population: int | None, confidence: float = 0.95, margin: float = 0.05, p: float = 0.5) -> int:
    """Sample size for a proportion (Cochran), with the finite-population
    correction when the population is known: 1000 calls at 95% +-5% -> 278."""
    if not 0 < margin < 1:
        raise ValueError(f"margin must be between 0 and 1 (0.05 means +-5%), got {margin}")
    n0 = z_for(confidence) ** 2 * p * (1 - p) / margin**2
    if population is None:
        return math.ceil(n0)
    if population <= 0:
        return 0
    n = n0 / (1 + (n0 - 1) / population)
    return min(population, math.ceil(n - 1e-9))


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters over the same items; None with no items or
    when both raters use one and the same category throughout (undefined)."""
    if len(a) != len(b):
        raise ValueError("both raters must rate the same items")
    n = len(a)
    if n == 0:
        return None
    po = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[c] * cb[c] for c in ca) / (n * n)
    if pe == 1:
        return None
    return (po - pe) / (1 - pe)


def percent_agreement(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    if not a:
        return None
    return sum(x == y for x, y in zip(a, b)) / len(a)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa from an items x categories table of rating counts; every
    item must have the same number of ratings (at least two)."""
    rows = [list(r) for r in counts if sum(r) > 0]
    if not rows:
        return None
    m = sum(rows[0])
    if m < 2 or any(sum(r) != m for r in rows):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings for every item")
    n_items = len(rows)
    p_items = [(sum(c * c for c in r) - m) / (m * (m - 1)) for r in rows]
    p_bar = sum(p_items) / n_items
    totals = [sum(col) for col in zip(*rows)]
    p_cat = [t / (n_items * m) for t in totals]
    pe = sum(p * p for p in p_cat)
    if pe == 1:
        return None
    return (p_bar - pe) / (1 - pe)


def krippendorff_alpha(units: Sequence[Sequence[Hashable]]) -> float | None:
    """Krippendorff's alpha for nominal data; each unit is the list of values
    its raters gave (any number; units with fewer than two are ignored).
    None when there is nothing to compare or only one category is used."""
    coincid: Counter = Counter()
    for values in units:
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, nc in counts.items():
            for k, nk in counts.items():
                pairs = nc * (nc - 1) if c == k else nc * nk
                coincid[(c, k)] += pairs / (m - 1)
    n_c: Counter = Counter()
    for (c, _k), v in coincid.items():
        n_c[c] += v
    n = sum(n_c.values())
    if n <= 1:
        return None
    observed = sum(v for (c, k), v in coincid.items() if c != k)
    expected = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k)
    if expected == 0:  # a single category: no variation, agreement undefined
        return None
    return 1 - (n - 1) * observed / expected
