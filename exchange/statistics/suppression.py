"""Small-cell suppression for publication (the CTDC rule): a count of reports or of people
between 1 and ``THRESHOLD - 1`` is withheld, and so are enough other cells that no withheld
value follows from the published ones by subtraction.

A published table is a set of cells tied by sums: a region's total is the sum of its
children's (and of the reports placed no deeper than the region itself), a row's total the
sum of its groups when each report falls in exactly one group. For every such relation,
once the rule has run:

- no relation holds exactly one withheld cell (else the cell is its total minus the
  others), and
- where the relation's total is published, the withheld members add up to 0 or to at
  least ``THRESHOLD`` reports and people, so that even their sum is not a small count.

Kept libraries for statistical disclosure control (sdcMicro, tau-Argus) are R and Java
programs for microdata and offline tables; this is the rule above, applied per answer in
the request. The choice of complements is greedy (smallest non-zero cells first), so
fewer cells are lost than by withholding whole rows, though not provably the fewest."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

THRESHOLD = 11

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class Count:
    reports: int
    people: int

    @property
    def small(self) -> bool:
        return 0 < self.reports < THRESHOLD or 0 < self.people < THRESHOLD

    @property
    def empty(self) -> bool:
        return self.reports == 0 and self.people == 0


@dataclass(frozen=True)
class Relation(Generic[Key]):
    """``total`` is the sum of ``members``."""

    total: Key
    members: Sequence[Key]


def _unsafe(withheld: int, total_shown: bool, reports: int, people: int) -> bool:
    """Whether a relation with ``withheld`` cells gives one away, or (its total published)
    the small sum of the withheld members'."""
    if withheld == 1:
        return True
    return total_shown and (0 < reports < THRESHOLD or 0 < people < THRESHOLD)


def suppress(
    cells: Mapping[Key, Count],
    relations: Sequence[Relation[Key]],
    *,
    fixed_hidden: frozenset[Key] = frozenset(),
    fixed_shown: frozenset[Key] = frozenset(),
) -> set[Key]:
    """The cells to withhold. ``fixed_hidden`` and ``fixed_shown`` are decisions already
    published elsewhere (a grouped table's region totals are the ungrouped table's), which
    this table must keep; a cell missing from ``cells`` counts as empty."""
    hidden = {key for key, count in cells.items() if count.small} | set(fixed_hidden)
    if hidden & fixed_shown:  # the other table already withheld what this one must
        raise ValueError("a published cell is small")
    empty = Count(0, 0)

    def count(key: Key) -> Count:
        return cells.get(key, empty)

    changed = True
    while changed:
        changed = False
        for relation in relations:
            group = [relation.total, *relation.members]
            withheld = [key for key in group if key in hidden]
            if not withheld:
                continue
            members_withheld = [key for key in relation.members if key in hidden]
            reports = sum(count(key).reports for key in members_withheld)
            people = sum(count(key).people for key in members_withheld)
            total_shown = relation.total not in hidden

            if not _unsafe(len(withheld), total_shown, reports, people):
                continue
            # The smallest cells with something in them first; an empty cell last, as it
            # only hides which of the withheld cells holds the count.
            candidates = sorted(
                (key for key in relation.members if key not in hidden and key not in fixed_shown),
                key=lambda key: (
                    count(key).empty,
                    count(key).reports + count(key).people,
                    repr(key),
                ),
            )
            for key in candidates:
                hidden.add(key)
                withheld.append(key)
                reports += count(key).reports
                people += count(key).people
                if not _unsafe(len(withheld), total_shown, reports, people):
                    break
            if _unsafe(len(withheld), total_shown, reports, people):
                if relation.total in fixed_shown:
                    # Every member is withheld: their sum is the published total, at
                    # least THRESHOLD since it was not small.
                    continue
                hidden.add(relation.total)
            changed = True
    return hidden
