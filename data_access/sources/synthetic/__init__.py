"""DynAIRx's seeded, deterministic synthetic primary-care population (see README.md in this package).

    from data_access.sources.synthetic import generate_cohort, write_cohort
    frames = generate_cohort(10_000, seed=1)
    write_cohort(frames, Path("cohort"))

``generate_cohort`` returns the canonical tables (``practice``, ``patient``, ``social_care``, ``condition``,
``prescription``, ``observation``, ``event``, ``synthetic_truth``) as polars frames with the columns of
``data_access.schema``; the same arguments always give identical frames.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from data_access.sources.synthetic.cascades import PLANTED_CASCADES, PlantedCascade
from data_access.sources.synthetic.engine import OUTCOMES, simulate
from data_access.sources.synthetic.frames import TABLES, build_frames

__all__ = ["OUTCOMES", "PLANTED_CASCADES", "PlantedCascade", "TABLES", "generate_cohort", "write_cohort"]

DEFAULT_START = date(2021, 1, 1)
DEFAULT_END = date(2025, 12, 31)
PARQUET_COMPRESSION = "zstd"
PARQUET_COMPRESSION_LEVEL = 3
PARQUET_ROW_GROUP_ROWS = 1_000_000


def generate_cohort(
    n_patients: int,
    seed: int,
    *,
    start: date = DEFAULT_START,
    end: date = DEFAULT_END,
    practices: int | None = None,
    enrich_smr: bool = False,
    progress: bool = False,
) -> dict[str, pl.DataFrame]:
    """Simulate ``n_patients`` registered patients from ``start`` to ``end`` (inclusive) and return the tables.

    ``practices`` defaults to one per 8,000 patients (at least 3). ``enrich_smr`` draws an older, more multimorbid
    population (the patients Structured Medication Reviews target). ``progress`` shows a bar on stderr.
    """
    if progress:
        from tqdm import tqdm

        months = (end.year - start.year) * 12 + end.month - start.month + 1
        bar = tqdm(total=max(months, 0), unit="month", desc=f"simulating {n_patients:,d} patients")

        def report(done: int, total: int) -> None:
            bar.update(done - bar.n)

        try:
            simulation = simulate(n_patients, seed, start, end, practices, enrich_smr, report)
        finally:
            bar.close()
    else:
        simulation = simulate(n_patients, seed, start, end, practices, enrich_smr)
    return build_frames(simulation)


def write_cohort(frames: dict[str, pl.DataFrame], out_dir: Path) -> None:
    """Write one Parquet file per table (``<table>.parquet``); identical frames give byte-identical files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for table, frame in frames.items():
        frame.write_parquet(
            out_dir / f"{table}.parquet",
            compression=PARQUET_COMPRESSION,
            compression_level=PARQUET_COMPRESSION_LEVEL,
            statistics=True,
            row_group_size=PARQUET_ROW_GROUP_ROWS,
        )
