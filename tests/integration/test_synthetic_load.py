"""A synthetic cohort loads into the canonical database (SQLite and Postgres) and re-loading replaces it."""

from __future__ import annotations

import polars as pl
import pytest
from sqlalchemy import Engine, text

from data_access.loading import load_frames, read_canonical_dir
from data_access.sources.synthetic import TABLES, generate_cohort, write_cohort


@pytest.fixture(scope="module")
def cohort() -> dict[str, pl.DataFrame]:
    return generate_cohort(250, 61)


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {t: connection.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in TABLES}  # noqa: S608


def test_cohort_loads_with_every_row(db_engine: Engine, cohort: dict[str, pl.DataFrame]) -> None:
    counts = load_frames(db_engine, cohort)
    expected = {t: cohort[t].height for t in TABLES}
    assert counts == expected
    assert _counts(db_engine) == expected
    with db_engine.connect() as connection:
        open_repeats = connection.execute(
            text('SELECT COUNT(*) FROM prescription WHERE "stop" IS NULL AND "repeat"')
        ).scalar_one()
        died = connection.execute(text("SELECT COUNT(*) FROM patient WHERE died_on IS NOT NULL")).scalar_one()
    assert open_repeats == cohort["prescription"].filter(pl.col("stop").is_null() & pl.col("repeat")).height
    assert died == cohort["patient"]["died_on"].is_not_null().sum()


def test_reloading_from_parquet_replaces_instead_of_duplicating(
    db_engine: Engine, cohort: dict[str, pl.DataFrame], tmp_path
) -> None:  # noqa: ANN001
    write_cohort(cohort, tmp_path)
    frames = read_canonical_dir(tmp_path)
    load_frames(db_engine, frames)
    load_frames(db_engine, frames)
    assert _counts(db_engine) == {t: cohort[t].height for t in TABLES}
