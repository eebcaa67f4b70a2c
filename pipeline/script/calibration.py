"""Off-script confidence brought to one script's level by its listeners' verdicts.

The off-script confidence (``AlignParams.off_conf``) was fitted on the dev
dialogues of other scripts, where 43% of the flags were right; on a new script
that share differs (62% on aligneval's test kinds), and no fit on other scripts
can know it. The verdicts on this script's own flags can: a shift of the
logit makes the mean stated confidence match the share listeners confirmed,
pulled towards the model's own mean by ``PRIOR`` pseudo-flags so that the
first few reviews move it little. Chosen on the dev kinds (docs/benchmarks.md,
Calibration).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

PRIOR = 5.0  # pseudo-flags at the model's own mean (dev kinds, mean ECE per kind after 1-5 reviewed calls: none 0.247, 2 -> 0.173, 5 -> 0.184, 10 -> 0.201)
_BOUND = 6.0  # the shift never goes beyond this: 0.5 becomes 0.0025 or 0.9975


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(p / (1.0 - p))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def shifted(confidence: float, shift: float) -> float:
    return sigmoid(logit(confidence) + shift) if shift else confidence


def off_script_shift(flags: Sequence[tuple[float, bool]], prior: float = PRIOR) -> float:
    """The shift of the off-script logit that makes ``flags`` (confidence as the
    model stated it before any shift, confirmed by the listener) read true on
    average: 0 with no flags."""
    if not flags:
        return 0.0
    mean = sum(c for c, _ in flags) / len(flags)
    target = (sum(ok for _, ok in flags) + prior * mean) / (len(flags) + prior)
    lo, hi = -_BOUND, _BOUND
    for _ in range(40):  # the mean shifted confidence grows with the shift: bisection
        mid = (lo + hi) / 2
        if sum(shifted(c, mid) for c, _ in flags) / len(flags) < target:
            lo = mid
        else:
            hi = mid
    return round((lo + hi) / 2, 3)
