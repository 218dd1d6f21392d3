"""The hotspot rule: planted clusters are found, and a uniform corpus raises no more false
alarms than the documented rate."""

from __future__ import annotations

import math
import random

from exchange.statistics import hotspots
from tests.statistics.corpus import banten_villages

VILLAGES = banten_villages()
PARENTS = {code: code[:8] for code in VILLAGES}


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means here."""
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def uniform_history(rng: random.Random, mean: float) -> tuple[dict[str, int], dict[str, int]]:
    current = {code: poisson(rng, mean) for code in VILLAGES}
    history = {code: poisson(rng, mean * hotspots.HISTORY) for code in VILLAGES}
    return current, history


def test_a_uniform_corpus_stays_within_the_false_alarm_rate() -> None:
    rng = random.Random(7)
    flagged = 0
    rounds = 10
    for _ in range(rounds):
        current, history = uniform_history(rng, 0.4)
        found = hotspots.assess(current, history, PARENTS, periods=hotspots.HISTORY)
        flagged += sum(1 for spot in found.values() if spot.flagged)
    # At most ALPHA per village and period: 1,551 x 10 x 0.001 ≈ 15.5 on average.
    assert flagged <= len(VILLAGES) * rounds * hotspots.ALPHA


def test_planted_clusters_are_found_with_their_excess() -> None:
    rng = random.Random(11)
    current, history = uniform_history(rng, 0.4)
    planted = rng.sample(VILLAGES, 5)
    for code in planted:
        current[code] += 8
    found = hotspots.assess(current, history, PARENTS, periods=hotspots.HISTORY)
    assert {code for code, spot in found.items() if spot.flagged} >= set(planted)
    for code in planted:
        assert found[code].excess > 6
        assert found[code].expected < 1.5


def test_a_region_busy_all_along_is_not_a_hotspot() -> None:
    """Judged against its own history: many reports every period are not news."""
    current = {"36.01.01.2001": 20, "36.01.01.2002": 0}
    history = {"36.01.01.2001": 160, "36.01.01.2002": 0}
    found = hotspots.assess(
        current, history, {code: "36.01.01" for code in current}, periods=hotspots.HISTORY
    )
    assert not found["36.01.01.2001"].flagged
    # The quiet neighbour pulls the expectation down a little (weight 2 of 10 periods).
    assert 15 < found["36.01.01.2001"].expected < 21


def test_the_tail_is_exact() -> None:
    shape, rate = 3.0, 4.0  # negative binomial with r = 3, success probability 4/5
    p = rate / (rate + 1)

    def below(observed: int) -> float:
        return sum(math.comb(k + 2, k) * p**shape * (1 - p) ** k for k in range(observed))

    for observed in (1, 4, 9):
        assert math.isclose(
            hotspots.predictive_tail(observed, shape, rate), 1 - below(observed), rel_tol=1e-9
        )
    assert hotspots.predictive_tail(0, shape, rate) == 1.0
    assert 0 < hotspots.predictive_tail(200, shape, rate) < 1e-60  # far out, still a number
