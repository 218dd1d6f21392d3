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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

HISTORY = 8  # periods before the current one
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
    p_value: float
    flagged: bool


def poisson_tail(observed: int, mean: float) -> float:
    """P(X ≥ observed) for X ~ Poisson(mean)."""
    return _tail(observed, lambda k: -mean + k * math.log(mean) - math.lgamma(k + 1))


def predictive_tail(observed: int, shape: float, rate: float) -> float:
    """P(X ≥ observed) when X is Poisson with a mean drawn from Gamma(shape, rate): the
    negative binomial, which widens the Poisson by what a short history leaves unknown
    about the mean."""
    p = rate / (rate + 1)
    return _tail(
        observed,
        lambda k: (
            math.lgamma(k + shape)
            - math.lgamma(shape)
            - math.lgamma(k + 1)
            + shape * math.log(p)
            + k * math.log(1 - p)
        ),
    )


def _tail(observed: int, log_pmf: Callable[[int], float]) -> float:
    """1 - P(X < observed), or the upper terms summed directly where that subtraction
    would lose the precision of a small tail."""
    if observed <= 0:
        return 1.0
    below = sum(math.exp(log_pmf(k)) for k in range(observed))
    if below < 0.5:
        return max(0.0, 1.0 - below)
    total, k = 0.0, observed
    while True:
        term = math.exp(log_pmf(k))
        total += term
        if term < 1e-18 * max(total, 1e-300) or k > observed + 100_000:
            return total
        k += 1


def assess(
    current: Mapping[str, int],
    history: Mapping[str, Sequence[int]],
    parents: Mapping[str, str],
) -> dict[str, Hotspot]:
    """``current``: each region's count this period; ``history``: its counts in the
    ``HISTORY`` periods before; ``parents``: each region's parent (siblings share one)."""
    sibling_sum: dict[str, float] = {}
    sibling_count: dict[str, int] = {}
    for region, parent in parents.items():
        sibling_sum[parent] = sibling_sum.get(parent, 0.0) + sum(history.get(region, ()))
        sibling_count[parent] = sibling_count.get(parent, 0) + 1
    found = {}
    for region, parent in parents.items():
        own = sum(history.get(region, ()))
        neighbours = sibling_sum[parent] - own
        others = sibling_count[parent] - 1
        prior = neighbours / (others * HISTORY) if others else own / HISTORY
        rate = HISTORY + PRIOR_WEIGHT
        shape = max(own + PRIOR_WEIGHT * prior, FLOOR * rate)
        expected = shape / rate
        observed = current.get(region, 0)
        p_value = predictive_tail(observed, shape, rate)
        found[region] = Hotspot(
            observed=observed,
            expected=round(expected, 3),
            excess=round(observed - expected, 3),
            p_value=p_value,
            flagged=observed >= MINIMUM and p_value < ALPHA,
        )
    return found
