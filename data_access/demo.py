"""The demo pipeline behind ``dynairx demo``: synthetic cohort → database → flags and scores → model →
prediction cache → worklist. Each step is skipped when its result is already there, so re-runs are quick.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from data_access.schema import ImportBatch, ModelRun, Patient, Prediction

log = logging.getLogger(__name__)

DEMO_SOURCE = "synthetic-demo"


def build_demo_database(
    engine: Engine,
    *,
    patients: int,
    seed: int,
    epochs: int | None = None,
    model_dir: Path | None = None,
    progress: bool = False,
) -> str:
    """Build (or reuse) the demo; returns a one-paragraph summary of what was built or reused."""
    from data_access.derive import refresh_derived
    from data_access.loading import load_frames
    from data_access.settings import model_dir as default_model_dir
    from data_access.sources.synthetic import generate_cohort
    from data_access.worklist_build import refresh_worklist
    from models.scoring import score_population
    from models.training import train_model

    model_dir = model_dir or default_model_dir()
    lines: list[str] = []
    started = time.perf_counter()
    if _demo_build_matches(engine, patients, seed):
        lines.append(f"Reused the synthetic population ({patients:,} patients, seed {seed}).")
    else:
        _clear_database(engine)
        step = time.perf_counter()
        frames = generate_cohort(patients, seed, enrich_smr=True, progress=progress)
        counts = load_frames(engine, frames)
        derived = refresh_derived(engine, progress=progress)
        _record_demo_build(engine, patients, seed, {**counts, **derived})
        lines.append(
            f"Built a synthetic population of {counts['patient']:,} patients in {counts.get('practice', 0)} "
            f"practices ({counts.get('prescription', 0):,} prescriptions, {counts.get('condition', 0):,} conditions, "
            f"{counts.get('observation', 0):,} observations, {counts.get('event', 0):,} events) with "
            f"{derived['flag']:,} safety-flag periods, in {time.perf_counter() - step:.0f} s."
        )

    version = _active_model(engine)
    if version is None:
        step = time.perf_counter()
        version = train_model(engine, model_dir=model_dir, epochs=epochs, seed=seed, progress=progress)
        lines.append(f"Trained model {version} in {time.perf_counter() - step:.0f} s.")
    else:
        lines.append(f"Reused model {version}.")

    if not _has_predictions(engine, version):
        step = time.perf_counter()
        stats = score_population(engine, model_dir=model_dir, version=version, progress=progress)
        refresh_worklist(engine)
        lines.append(
            f"Scored {stats.get('patients', 0):,} patients in {time.perf_counter() - step:.0f} s "
            f"({stats.get('patients_per_second', 0):,.0f} patients/s)."
        )
    else:
        lines.append("Reused the prediction cache.")
    lines.append(f"Demo ready in {time.perf_counter() - started:.0f} s.")
    return " ".join(lines)


def _demo_build_matches(engine: Engine, patients: int, seed: int) -> bool:
    with engine.connect() as conn:
        row = conn.execute(
            select(ImportBatch.counts_json)
            .where(ImportBatch.source == DEMO_SOURCE, ImportBatch.finished_at.is_not(None))
            .order_by(ImportBatch.id.desc())
        ).first()
        present = conn.execute(select(func.count()).select_from(Patient)).scalar_one()
    if row is None or not row[0]:
        return False
    built = json.loads(row[0])
    return built.get("patients") == patients and built.get("seed") == seed and present == built.get("patient")


def _record_demo_build(engine: Engine, patients: int, seed: int, counts: dict[str, int]) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(
            ImportBatch.__table__.insert().values(
                source=DEMO_SOURCE,
                started_at=now,
                finished_at=now,
                counts_json=json.dumps({"patients": patients, "seed": seed, **counts}),
            )
        )


def _clear_database(engine: Engine) -> None:
    """Remove a previous demo build (different size or seed): data, derived rows and models trained on it."""
    tables = (
        "what_if_cache",
        "explanation",
        "prediction",
        "worklist_entry",
        "score",
        "flag",
        "review",
        "synthetic_truth",
        "event",
        "observation",
        "prescription",
        "condition",
        "social_care",
        "patient",
        "practice",
        "model_run",
        "import_batch",
    )
    with engine.begin() as conn:
        for table in tables:
            conn.execute(text(f'DELETE FROM "{table}"'))  # noqa: S608 - fixed table names


def _active_model(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            select(ModelRun.version).where(ModelRun.active.is_(True)).order_by(ModelRun.created_at.desc())
        ).scalar()


def _has_predictions(engine: Engine, version: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(Prediction.id).where(Prediction.model_version == version).limit(1)).first() is not None
