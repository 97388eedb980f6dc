"""The model's view of the canonical tables: frames read from the database and the monthly landmark grid.

Everything downstream (graph, labels, baseline features) works on the same ``Cohort`` so that the model and the
baselines see exactly the same records, and so that the same code runs on synthetic and on imported data.

Time conventions
- A landmark is the first day of a calendar month. The snapshot at landmark ``L`` uses only what was recorded on
  or before ``L`` (a prescription is active at ``L`` when ``start <= L <= stop``; a stop date after the landmark
  means the drug is still active). The outcome window of ``L`` is ``(L, L + 12 months]``.
- The data end (``extract_date``) is the last date recorded anywhere in the cohort; a landmark has full
  follow-up when ``L + 12 months <= extract_date``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from sqlalchemy import Engine

from data_access.canonical_read import read_canonical_frames

COHORT_TABLES = ("patient", "social_care", "condition", "prescription", "observation", "event")
EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class Cohort:
    """Canonical frames of a set of patients (polars, schema dtypes) and the date the data runs to."""

    patient: pl.DataFrame
    social_care: pl.DataFrame
    condition: pl.DataFrame
    prescription: pl.DataFrame
    observation: pl.DataFrame
    event: pl.DataFrame
    extract_date: dt.date

    @property
    def patient_ids(self) -> list[str]:
        return self.patient["id"].to_list()

    def subset(self, patient_ids: Sequence[str]) -> Cohort:
        """The same cohort restricted to ``patient_ids`` (keeps the cohort's extract date)."""
        ids = pl.Series("id", list(patient_ids), dtype=pl.Utf8)
        return Cohort(
            patient=self.patient.filter(pl.col("id").is_in(ids)),
            social_care=self.social_care.filter(pl.col("patient_id").is_in(ids)),
            condition=self.condition.filter(pl.col("patient_id").is_in(ids)),
            prescription=self.prescription.filter(pl.col("patient_id").is_in(ids)),
            observation=self.observation.filter(pl.col("patient_id").is_in(ids)),
            event=self.event.filter(pl.col("patient_id").is_in(ids)),
            extract_date=self.extract_date,
        )


def load_cohort(
    engine: Engine, patient_ids: Sequence[str] | None = None, extract_date: dt.date | None = None
) -> Cohort:
    """Read the canonical tables (all patients, or ``patient_ids``) into a ``Cohort``.

    ``extract_date`` defaults to the last date recorded in the whole database (not only in the selected patients),
    so that scoring a subset uses the same landmarks as scoring everyone.
    """
    frames = read_canonical_frames(engine, patient_ids, tables=COHORT_TABLES)
    if extract_date is None:
        extract_date = database_extract_date(engine) or frames_extract_date(frames)
    return cohort_from_frames(frames, extract_date)


def cohort_from_frames(frames: dict[str, pl.DataFrame], extract_date: dt.date | None = None) -> Cohort:
    """A ``Cohort`` from canonical frames (e.g. the synthetic generator's output or one Patient JSON)."""
    patient = frames["patient"].sort("id")
    return Cohort(
        patient=patient,
        social_care=frames.get("social_care", _empty("social_care")),
        condition=frames.get("condition", _empty("condition")),
        prescription=frames.get("prescription", _empty("prescription")),
        observation=frames.get("observation", _empty("observation")),
        event=frames.get("event", _empty("event")),
        extract_date=extract_date or frames_extract_date(frames),
    )


def _empty(table: str) -> pl.DataFrame:
    from sqlalchemy import Date

    from data_access.schema import Base

    def dtype(column) -> pl.DataType:  # noqa: ANN001 - SQLAlchemy column
        if isinstance(column.type, Date):
            return pl.Date
        python_type = column.type.python_type
        return {int: pl.Int64, float: pl.Float64, bool: pl.Boolean}.get(python_type, pl.Utf8)

    columns = [c for c in Base.metadata.tables[table].columns if c.name != "id"]
    return pl.DataFrame(schema={c.name: dtype(c) for c in columns})


_DATE_COLUMNS = {
    "event": ("date",),
    "observation": ("date",),
    "prescription": ("start",),
    "condition": ("onset",),
    "patient": ("registered_on", "deregistered_on", "died_on"),
}


def frames_extract_date(frames: dict[str, pl.DataFrame]) -> dt.date:
    """The last date recorded in the frames (today when they hold no dates at all)."""
    latest: list[dt.date] = []
    for table, columns in _DATE_COLUMNS.items():
        frame = frames.get(table)
        if frame is None or frame.height == 0:
            continue
        for column in columns:
            value = frame[column].max()
            if value is not None:
                latest.append(value)
    return max(latest) if latest else dt.date.today()


def database_extract_date(engine: Engine) -> dt.date | None:
    """The last date recorded in the database's canonical tables (``None`` for an empty database)."""
    from sqlalchemy import func, select

    from data_access.schema import Base

    latest: list[dt.date] = []
    with engine.connect() as connection:
        for table, columns in _DATE_COLUMNS.items():
            sa_table = Base.metadata.tables[table]
            for column in columns:
                value = connection.execute(select(func.max(sa_table.c[column]))).scalar()
                if isinstance(value, str):
                    value = dt.date.fromisoformat(value[:10])
                if value is not None:
                    latest.append(value)
    return max(latest) if latest else None


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole calendar months (the day of month is clamped to the target month's length)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError(f"cannot move {day} by {months} months")


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01 (the integer behind a polars ``Date``)."""
    return (day - EPOCH).days


@dataclass(frozen=True)
class TimeGrid:
    """Consecutive monthly landmarks (first days of months), oldest first."""

    dates: tuple[dt.date, ...]

    @classmethod
    def ending_at(cls, last: dt.date, months: int) -> TimeGrid:
        last = month_start(last)
        return cls(tuple(add_months(last, -k) for k in range(months - 1, -1, -1)))

    @property
    def months(self) -> int:
        return len(self.dates)

    @property
    def days(self) -> np.ndarray:
        """Landmarks as day numbers (int64), for vectorised interval arithmetic."""
        return np.array([day_number(d) for d in self.dates], dtype=np.int64)

    @property
    def horizon_days(self) -> np.ndarray:
        """``L + 12 months`` for each landmark, as day numbers (the last day of each outcome window)."""
        from models.config import HORIZON_MONTHS

        return np.array([day_number(add_months(d, HORIZON_MONTHS)) for d in self.dates], dtype=np.int64)


def last_followed_landmark(extract_date: dt.date) -> dt.date:
    """The latest landmark whose 12-month outcome window ends on or before ``extract_date``."""
    from models.config import HORIZON_MONTHS

    candidate = month_start(add_months(extract_date, -HORIZON_MONTHS))
    while add_months(candidate, HORIZON_MONTHS) > extract_date:
        candidate = add_months(candidate, -1)
    return candidate


def training_grid(extract_date: dt.date, months: int) -> TimeGrid:
    """``months`` landmarks with full follow-up, ending at the last one the data allows."""
    return TimeGrid.ending_at(last_followed_landmark(extract_date), months)


def scoring_grid(extract_date: dt.date, months: int) -> TimeGrid:
    """The trajectory's landmarks: ``months`` month starts ending at the data's last month."""
    return TimeGrid.ending_at(month_start(extract_date), months)
