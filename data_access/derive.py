"""Derived clinical data: safety-flag periods and clinical scores for patients in the database.

The clinical engine (``clinical.population``) works on polars frames and knows nothing of databases; this module
reads the canonical tables, runs it in chunks (bounded memory at 100,000 patients), and swaps the patients'
derived rows in one transaction per chunk, so a reader never sees a patient with half of its flags.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence

from sqlalchemy import Engine, func, select, text

from data_access.canonical_read import read_canonical_frames
from data_access.loading import bulk_insert
from data_access.schema import Condition, Event, Observation, Patient, Prescription

log = logging.getLogger(__name__)

DERIVE_CHUNK_PATIENTS = 25_000


def data_cut_date(engine: Engine) -> dt.date:
    """The date the data run up to: the latest recorded date, never later than today.

    "Active now" on the worklist means active at the data cut, not at the wall clock: a synthetic cohort that ends
    in December 2025 must not show every prescription as stopped in 2026.
    """
    with engine.connect() as conn:
        candidates = [
            conn.execute(select(func.max(Observation.date))).scalar(),
            conn.execute(select(func.max(Event.date))).scalar(),
            conn.execute(select(func.max(Prescription.start))).scalar(),
            conn.execute(select(func.max(Condition.onset))).scalar(),
        ]
    dates = [_as_date(c) for c in candidates if c is not None]
    today = dt.date.today()
    return min(max(dates), today) if dates else today


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def refresh_derived(
    engine: Engine,
    patient_ids: Sequence[str] | None = None,
    *,
    as_of: dt.date | None = None,
    progress: bool = False,
) -> dict[str, int]:
    """Recompute flags and scores for ``patient_ids`` (default: everyone) as of ``as_of`` (default: data cut)."""
    from clinical.population import evaluate_population

    as_of = as_of or data_cut_date(engine)
    if patient_ids is None:
        with engine.connect() as conn:
            patient_ids = [r[0] for r in conn.execute(select(Patient.id).order_by(Patient.id))]
    ids = list(patient_ids)
    counts = {"patients": len(ids), "flag": 0, "score": 0}
    started = time.perf_counter()
    bar = _progress_bar(len(ids), "flags and scores") if progress else None
    for start in range(0, len(ids), DERIVE_CHUNK_PATIENTS):
        chunk = ids[start : start + DERIVE_CHUNK_PATIENTS]
        frames = read_canonical_frames(engine, chunk)
        flags, scores = evaluate_population(frames, as_of=as_of)
        with engine.begin() as conn:
            _delete_derived(conn, chunk)
            counts["flag"] += bulk_insert(conn, "flag", flags)
            counts["score"] += bulk_insert(conn, "score", scores)
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    log.info(
        "derived %d flag periods and %d scores for %d patients in %.1f s",
        counts["flag"],
        counts["score"],
        len(ids),
        time.perf_counter() - started,
    )
    return counts


def _delete_derived(conn, patient_ids: Sequence[str]) -> None:  # noqa: ANN001 - SQLAlchemy connection
    conn.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS derive_ids (id VARCHAR(64) PRIMARY KEY)"))
    conn.execute(text("DELETE FROM derive_ids"))
    bulk_insert_ids(conn, patient_ids)
    for table in ("flag", "score"):
        conn.execute(text(f'DELETE FROM "{table}" WHERE patient_id IN (SELECT id FROM derive_ids)'))  # noqa: S608


def bulk_insert_ids(conn, patient_ids: Sequence[str]) -> None:  # noqa: ANN001
    conn.execute(text("INSERT INTO derive_ids (id) VALUES (:id)"), [{"id": pid} for pid in patient_ids])


def _progress_bar(total: int, what: str):  # noqa: ANN202
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit="patients", unit_scale=True)

