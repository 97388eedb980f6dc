"""The simulation clock: calendar months of the observation window, with dates as integer epoch days.

Dates are carried as ``int32`` days since 1970-01-01 because that is exactly how polars stores ``pl.Date``:
arrays of day numbers become date columns without any per-row conversion.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

EPOCH = date(1970, 1, 1)
DAYS_PER_YEAR = 365.25
NO_DATE = np.int32(-(2**31) + 1)
"""Sentinel for "no date" in int32 day arrays (written as null)."""


def epoch_day(day: date) -> int:
    """Days since 1970-01-01."""
    return (day - EPOCH).days


@dataclass(frozen=True)
class MonthGrid:
    """The calendar months covering ``[start, end]``; the first and last month are clipped to the window."""

    starts: np.ndarray
    """First day (epoch day) of each month within the window."""
    ends: np.ndarray
    """Last day (epoch day) of each month within the window."""
    month_firsts: np.ndarray
    """First calendar day of each month (the ``month`` of ``synthetic_truth``), even when the window starts later."""

    @classmethod
    def spanning(cls, start: date, end: date) -> MonthGrid:
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        firsts: list[date] = []
        year, month = start.year, start.month
        while (year, month) <= (end.year, end.month):
            firsts.append(date(year, month, 1))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        month_firsts = np.array([epoch_day(d) for d in firsts], dtype=np.int32)
        next_firsts = np.append(month_firsts[1:], epoch_day(_next_month(firsts[-1])))
        starts = np.maximum(month_firsts, epoch_day(start)).astype(np.int32)
        ends = np.minimum(next_firsts - 1, epoch_day(end)).astype(np.int32)
        return cls(starts=starts, ends=ends, month_firsts=month_firsts)

    @property
    def count(self) -> int:
        return int(self.starts.size)

    @property
    def first_day(self) -> int:
        return int(self.starts[0])

    @property
    def last_day(self) -> int:
        return int(self.ends[-1])

    def length(self, t: int) -> int:
        return int(self.ends[t] - self.starts[t] + 1)

    def days_in(self, t: int, u: np.ndarray) -> np.ndarray:
        """Map uniforms in [0, 1) to days of month ``t`` (uniformly)."""
        return (self.starts[t] + np.floor(u * self.length(t))).astype(np.int32)

    def days_between(self, lo: np.ndarray, t: int, u: np.ndarray) -> np.ndarray:
        """Uniform days in ``[max(lo, month start), month end]`` of month ``t`` (for dates that must follow ``lo``)."""
        low = np.clip(lo, self.starts[t], self.ends[t])
        span = self.ends[t] - low + 1
        return (low + np.floor(u * span)).astype(np.int32)


def _next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
