"""Sets of whole days as sorted, disjoint, inclusive intervals.

The safety engine reasons about *when* a rule held, not just whether it holds today, so every criterion is turned
into the set of days on which it is true and rules are combined with set algebra. Days are integers (proleptic
Gregorian ordinals, ``date.toordinal()``) and intervals are inclusive at both ends, matching the project-wide
convention that a prescription with ``stop = d`` is active on ``d`` and not on ``d + 1``.

An ``IntervalSet`` is a tuple of ``(start, end)`` pairs, sorted, with no overlaps and no adjacency (``(1, 3), (4, 5)``
is normalised to ``(1, 5)``), so equality of sets is equality of tuples. Tuples of tuples keep these values cheap to
build and hashable; the population path evaluates millions of them.
"""

from __future__ import annotations

from collections.abc import Iterable

Interval = tuple[int, int]
IntervalSet = tuple[Interval, ...]

EMPTY: IntervalSet = ()


def normalise(intervals: Iterable[Interval]) -> IntervalSet:
    """Sort and merge overlapping or adjacent intervals; drop empty ones (start > end)."""
    items = [(a, b) for a, b in intervals if a <= b]
    if len(items) <= 1:
        return tuple(items)
    items.sort()
    merged: list[list[int]] = [list(items[0])]
    for a, b in items[1:]:
        last = merged[-1]
        if a <= last[1] + 1:
            if b > last[1]:
                last[1] = b
        else:
            merged.append([a, b])
    return tuple((a, b) for a, b in merged)


def union(*sets: IntervalSet) -> IntervalSet:
    """Days in any of the sets."""
    non_empty = [s for s in sets if s]
    if not non_empty:
        return EMPTY
    if len(non_empty) == 1:
        return non_empty[0]
    return normalise(iv for s in non_empty for iv in s)


def intersect(left: IntervalSet, right: IntervalSet) -> IntervalSet:
    """Days in both sets (a linear merge of two sorted lists)."""
    if not left or not right:
        return EMPTY
    out: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        a1, b1 = left[i]
        a2, b2 = right[j]
        lo = a1 if a1 > a2 else a2
        hi = b1 if b1 < b2 else b2
        if lo <= hi:
            out.append((lo, hi))
        if b1 < b2:
            i += 1
        else:
            j += 1
    return tuple(out)


def intersect_all(sets: Iterable[IntervalSet]) -> IntervalSet:
    """Days in every set; an empty iterable is an error because 'all of nothing' has no sensible universe."""
    iterator = iter(sets)
    try:
        result = next(iterator)
    except StopIteration as exc:
        raise ValueError("intersect_all needs at least one set") from exc
    for s in iterator:
        if not result:
            return EMPTY
        result = intersect(result, s)
    return result


def complement(s: IntervalSet, lo: int, hi: int) -> IntervalSet:
    """Days in ``[lo, hi]`` that are not in ``s``."""
    if lo > hi:
        return EMPTY
    out: list[Interval] = []
    cursor = lo
    for a, b in s:
        if b < cursor:
            continue
        if a > hi:
            break
        if a > cursor:
            out.append((cursor, a - 1))
        cursor = b + 1
        if cursor > hi:
            break
    if cursor <= hi:
        out.append((cursor, hi))
    return tuple(out)


def clip(s: IntervalSet, lo: int, hi: int) -> IntervalSet:
    """Restrict ``s`` to ``[lo, hi]``."""
    return intersect(s, ((lo, hi),)) if lo <= hi else EMPTY


def after_run_of(s: IntervalSet, days: int) -> IntervalSet:
    """Days ``d`` such that every day of ``[d - days + 1, d]`` is in ``s`` ('held for at least N days')."""
    if days <= 1:
        return s
    shift = days - 1
    return tuple((a + shift, b) for a, b in s if a + shift <= b)


def contains(s: IntervalSet, day: int) -> bool:
    """Whether ``day`` is in ``s``."""
    for a, b in s:
        if a > day:
            return False
        if day <= b:
            return True
    return False


def total_days(s: IntervalSet) -> int:
    """Number of days in ``s``."""
    return sum(b - a + 1 for a, b in s)
