"""Outcome labels at monthly landmarks (landmarking: Van Houwelingen, Scand J Stat 2007;34:70-85).

For a landmark ``L`` and outcome ``o``, the label is 1 when an event of ``o`` is dated in ``(L, L + 12 months]``.
A landmark is labelled when the patient is in the record at ``L`` (registered, alive, not deregistered) and:

- the data run to ``L + 12 months`` and the patient neither died nor left the practice before then; or
- the patient died within the window: death is then a positive for ``death``, and the other outcomes are labelled
  from what happened before the death (death is treated as a competing event that ends follow-up: a patient who
  died without an admission is a negative for admission, as in QAdmissions-style fixed-horizon risks).

A patient who deregisters within the window (without dying) is censored: the landmark is not labelled, for every
outcome, because the absence of an event after leaving is unknown. Landmarks whose window runs past the data end
are not labelled (except death before the data end, as above).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.cohort import Cohort, TimeGrid, day_number
from models.config import OUTCOME_EVENTS, OUTCOMES
from models.graph import NO_END


@dataclass
class Labels:
    """``y[p, m, o]`` (0/1) and ``labelled[p, m]`` over the patients (sorted ids) and months of a grid."""

    patient_ids: list[str]
    y: np.ndarray  # float32 [P, T, O]
    labelled: np.ndarray  # bool [P, T]


def landmark_labels(cohort: Cohort, grid: TimeGrid) -> Labels:
    patients = cohort.patient.sort("id")
    ids = patients["id"].to_list()
    P, T = len(ids), grid.months
    landmarks = grid.days
    horizon = grid.horizon_days
    extract = day_number(cohort.extract_date)
    index = pl.DataFrame({"patient_id": ids, "p": np.arange(P, dtype=np.int64)})

    death_event = (
        cohort.event.filter(pl.col("type") == "death")
        .group_by("patient_id")
        .agg(pl.col("date").min().alias("d"))
    )
    ends = patients.join(death_event, left_on="id", right_on="patient_id", how="left")
    died = np.minimum(_days(ends["died_on"]), _days(ends["d"]))
    deregistered = _days(ends["deregistered_on"])
    registered = _days(ends["registered_on"], fill=-NO_END)

    L = landmarks[None, :]
    in_record = (registered[:, None] <= L) & (L < died[:, None]) & (L < deregistered[:, None])
    dies_in_window = (died[:, None] <= horizon[None, :]) & (died[:, None] <= extract)
    followed = (horizon[None, :] <= extract) & (deregistered[:, None] > horizon[None, :])
    labelled = in_record & (followed | dies_in_window)
    # Follow-up of each landmark ends at the window's end or at death, whichever is first.
    follow_end = np.minimum(horizon[None, :], died[:, None])

    y = np.zeros((P, T, len(OUTCOMES)), dtype=np.float32)
    events = cohort.event.join(index, on="patient_id", how="inner").select(
        "p", "type", pl.col("date").cast(pl.Int64).alias("day")
    )
    for o, outcome in enumerate(OUTCOMES):
        rows = events.filter(pl.col("type").is_in(list(OUTCOME_EVENTS[outcome])))
        p = rows["p"].to_numpy()
        day = rows["day"].to_numpy()
        if outcome == "death":
            has_death = died < NO_END
            p = np.concatenate([p, np.nonzero(has_death)[0]])
            day = np.concatenate([day, died[has_death]])
        if p.size == 0:
            continue
        # Event on day d is in the window of landmark m when L_m < d <= min(L_m + 12 months, death).
        hit = (landmarks[None, :] < day[:, None]) & (day[:, None] <= follow_end[p])
        rows_hit, months_hit = np.nonzero(hit)
        y[p[rows_hit], months_hit, o] = 1.0
    y[~labelled] = 0.0
    return Labels(ids, y, labelled)


def _days(series: pl.Series, fill: int = NO_END) -> np.ndarray:
    return series.cast(pl.Int64).fill_null(fill).to_numpy().astype(np.int64)
