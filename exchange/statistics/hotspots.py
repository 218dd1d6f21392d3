"""Which regions had unusually many reports in a period: the ones to visit this week.

Each region's count is compared with what its own history and its neighbours' predict.
The expected count is a weighted mean per period of

- the region's own counts over the ``HISTORY`` periods before this one, and
- the mean count per region of its siblings (the other regions under the same parent: the
  villages of a district, the districts of a regency) over the same periods, which stands
  in for ``PRIOR_WEIGHT`` periods of history: a village with little history of its own is
  judged against its neighbours, one with a long history mostly against itself.

Counts are Poisson; what is not known is the mean, which the history estimates (the
weighted counts are a Gamma posterior: shape = own + weight x neighbours' mean, rate =
periods + weight). The region is flagged when the count predicted from that posterior (a
negative binomial: Poisson-gamma) would reach the observed count or more with probability
below ``ALPHA`` (one-sided, exact), and the count is at least ``MINIMUM``. A plain Poisson
test with the estimate as its mean ignores how little eight periods say about a village's
rate and flags too often; the EWMA of a control chart needs a steady, long history that a
new village's reports do not have. A region's false-alarm rate under the null is then
about ``ALPHA`` per period: across Banten's 1,552 villages about 1.6 false flags a period
at most, fewer where counts are small (the discrete tail stays below ``ALPHA``). The excess
(observed - expected) says how many more reports than usual arrived."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

HISTORY = 8  # periods before the current one (whole months of them: see the service)
PRIOR_WEIGHT = 2.0  # how many periods of history the neighbours' mean stands for
ALPHA = 0.001
MINIMUM = 3
# A region and neighbourhood with no reports at all still expect a little: as if one
# report had arrived over the history and the prior together.
FLOOR = 1.0 / (HISTORY + PRIOR_WEIGHT)


@dataclass(frozen=True)
class Hotspot:
    observed: int
    expected: float
    excess: float
    p_value: float | None  # None at or below the expected count: nothing to test
    flagged: bool


def predictive_tail(observed: int, shape: float, rate: float) -> float:
    """P(X ≥ observed) when X is Poisson with a mean drawn from Gamma(shape, rate): the
    negative binomial, which widens the Poisson by what a short history leaves unknown
    about the mean."""
    if observed <= 0:
        return 1.0
    p = rate / (rate + 1)
    log_at = (
        math.lgamma(observed + shape)
        - math.lgamma(shape)
        - math.lgamma(observed + 1)
        + shape * math.log(p)
        + observed * math.log1p(-p)
    )
    return _upper_tail(observed, log_at, lambda k: (k + shape) / (k + 1) * (1 - p))


def _upper_tail(observed: int, log_at: float, ratio: Callable[[int], float]) -> float:
    """The terms from P(X = observed) up, each from the one before by ``ratio``, until
    they no longer count. Only called above the mean, where they fall from the start."""
    term, total, k = math.exp(log_at), 0.0, observed
    while term > 1e-17 * total or total == 0.0:
        total += term
        term *= ratio(k)
        k += 1
        if term == 0.0:
            break
    return min(total, 1.0)


def assess(
    current: Mapping[str, int],
    history: Mapping[str, int],
    parents: Mapping[str, str],
    *,
    periods: float,
) -> dict[str, Hotspot]:
    """``current``: each region's count this period; ``history``: its count over the
    history, which lasted ``periods`` periods of this one's length; ``parents``: each
    region's parent (siblings share one)."""
    periods = max(periods, 1e-9)
    sibling_sum: dict[str, float] = {}
    sibling_count: dict[str, int] = {}
    for region, parent in parents.items():
        sibling_sum[parent] = sibling_sum.get(parent, 0.0) + history.get(region, 0)
        sibling_count[parent] = sibling_count.get(parent, 0) + 1
    found = {}
    rate = periods + PRIOR_WEIGHT
    for region, parent in parents.items():
        own = history.get(region, 0)
        others = sibling_count[parent] - 1
        neighbours = (sibling_sum[parent] - own) / others if others else own
        shape = max(own + PRIOR_WEIGHT * neighbours / periods, FLOOR * rate)
        expected = shape / rate
        observed = current.get(region, 0)
        # At or below what was expected there is nothing to test (and summing a tail
        # from below the mean would cost hundreds of terms a village).
        p_value = predictive_tail(observed, shape, rate) if observed > expected else None
        found[region] = Hotspot(
            observed=observed,
            expected=round(expected, 3),
            excess=round(observed - expected, 3),
            p_value=p_value,
            flagged=observed >= MINIMUM and p_value is not None and p_value < ALPHA,
        )
    return found
