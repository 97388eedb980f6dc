"""The databases the dashboard benchmarks run against: one synthetic cohort, loaded into SQLite and into a temporary
Postgres database, with flags, scores and a worklist built by the real code.

- The cohort is generated once (``data_access.sources.synthetic.generate_cohort``) and kept as Parquet in the work
  directory, with the SQLite database built from it, so later runs skip the minutes of generation and derivation.
- Postgres gets a fresh database for each run (created here, dropped by ``drop_postgres``), loaded from the same
  Parquet files with COPY and derived by the same code.
- No model is trained here (``bench_model.py`` does that): so that risk columns, trajectories and orderings run over
  realistic values, the generator's true 12-month risk (its ``synthetic_truth`` frame) for the last 24 months is
  loaded as the prediction cache under the model version ``bench-synthetic-truth``, with a fixed ±4-point band. That is
  benchmark data for timing only, never shown as a model's output anywhere but in these throwaway databases.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402
from sqlalchemy import Engine, create_engine, func, insert, select, text  # noqa: E402

from data_access.db import make_engine  # noqa: E402
from data_access.migrate import upgrade_database  # noqa: E402
from data_access.schema import ModelRun, WorklistEntry  # noqa: E402

BENCH_MODEL = "bench-synthetic-truth"
TRAJECTORY_MONTHS = 24
POSTGRES_ADMIN_URL = os.environ.get(
    "DYNAIRX_TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CANONICAL = (
    "practice",
    "patient",
    "social_care",
    "condition",
    "prescription",
    "observation",
    "event",
    "synthetic_truth",
)


def cohort_frames(workdir: Path, patients: int, seed: int) -> dict[str, pl.DataFrame]:
    """The generated cohort, from the Parquet cache in ``workdir`` when it matches, else generated and cached."""
    cache = workdir / f"cohort-{patients}-{seed}"
    if (cache / "done").exists():
        return {
            table: pl.read_parquet(cache / f"{table}.parquet")
            for table in CANONICAL
            if (cache / f"{table}.parquet").exists()
        }
    from data_access.sources.synthetic import generate_cohort

    step = time.perf_counter()
    frames = generate_cohort(patients, seed, enrich_smr=True, progress=True)
    print(f"generated {patients:,} patients in {time.perf_counter() - step:.0f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    for table, frame in frames.items():
        frame.write_parquet(cache / f"{table}.parquet")
    (cache / "done").write_text("ok\n")
    return frames


def build(engine: Engine, frames: dict[str, pl.DataFrame]) -> None:
    """Load, derive flags and scores, load the stand-in predictions, build the worklist (each step timed)."""
    from data_access.derive import refresh_derived
    from data_access.loading import bulk_insert, load_frames
    from data_access.worklist_build import refresh_worklist

    def load_predictions() -> int:
        predictions = truth_as_predictions(frames["synthetic_truth"])
        with engine.begin() as conn:
            written = bulk_insert(conn, "prediction", predictions)
            conn.execute(
                insert(ModelRun).values(
                    version=BENCH_MODEL, created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None), active=True
                )
            )
        return written

    upgrade_database(engine)
    canonical = {t: f for t, f in frames.items() if t in CANONICAL and t != "synthetic_truth"}
    for label, step_fn in (
        ("loaded", lambda: load_frames(engine, canonical)),
        ("derived flags and scores", lambda: refresh_derived(engine, progress=True)),
        ("loaded the stand-in predictions", load_predictions),
        ("built the worklist", lambda: refresh_worklist(engine)),
    ):
        step = time.perf_counter()
        result = step_fn()
        print(
            f"  {label} ({engine.dialect.name}) in {time.perf_counter() - step:.0f} s: {result}", flush=True
        )
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()


def truth_as_predictions(truth: pl.DataFrame) -> pl.DataFrame:
    """Monthly trajectories of the generator's true risk for the last 24 months (see the module docstring)."""
    last = truth["month"].max()
    year, month = divmod(last.year * 12 + last.month - 1 - TRAJECTORY_MONTHS, 12)
    first = dt.date(year, month + 1, 1)
    return truth.filter(pl.col("month") > first).select(
        "patient_id",
        pl.col("month").alias("as_of"),
        "outcome",
        pl.lit(12).alias("horizon_months"),
        "risk",
        (pl.col("risk") - 0.04).clip(lower_bound=0.0).alias("lower"),
        (pl.col("risk") + 0.04).clip(upper_bound=1.0).alias("upper"),
        pl.lit(BENCH_MODEL).alias("model_version"),
        pl.lit("current").alias("scenario"),
    )


def sqlite_engine(workdir: Path, frames: dict[str, pl.DataFrame], patients: int, seed: int) -> Engine:
    """The SQLite database of this cohort, built once and reused."""
    path = workdir / f"dashboard-{patients}-{seed}.sqlite"
    ready = workdir / f"dashboard-{patients}-{seed}.ready"
    engine = make_engine(f"sqlite:///{path}")
    if not ready.exists():
        if path.exists():
            engine.dispose()
            path.unlink()
            engine = make_engine(f"sqlite:///{path}")
        build(engine, frames)
        ready.write_text("ok\n")
    else:
        upgrade_database(engine)
    return engine


def postgres_engine(frames: dict[str, pl.DataFrame]) -> tuple[Engine, str]:
    """A fresh Postgres database loaded with the cohort; returns (engine, database name) for ``drop_postgres``."""
    name = f"dynairx_bench_dash_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = make_engine(POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        build(engine, frames)
    except BaseException:
        drop_postgres(engine, name)
        raise
    return engine, name


def drop_postgres(engine: Engine, name: str) -> None:
    engine.dispose()
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def largest_practice(engine: Engine) -> str:
    with engine.connect() as conn:
        return conn.execute(
            select(WorklistEntry.practice_id)
            .group_by(WorklistEntry.practice_id)
            .order_by(func.count().desc(), WorklistEntry.practice_id)
            .limit(1)
        ).scalar_one()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]
