"""Small, dependency-free statistics for the owner reports.

Rates come with Wilson 95% intervals because review counts are small and a
plain normal interval would go below 0 or above 1. Agreement uses Cohen's
kappa for two raters and Krippendorff's alpha (nominal) when the number of
raters varies from call to call; Fleiss' kappa is there for the fixed case.
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
