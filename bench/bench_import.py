"""Benchmark of the Synthea CSV import (target: 1,000 patients in <= 10 s, 100,000 in <= 5 minutes on 2 cores).

The input is generated here by resampling the genuine 13-patient Synthea sample in tests/fixtures: patient i is a
copy of sample patient i mod 13 under a new id, with all of that patient's rows (conditions, medications,
encounters, observations) copied under the new id, and spread over one organisation per 2,000 patients so that
practices are realistic in number. Per-patient volumes are therefore those of the sample (about 40 conditions,
114 medication rows and 73 encounters per patient; observations.csv in the sample is truncated, so observation
volume is far below a full Synthea export). Never run on real or licensed data.

    python bench/bench_import.py --patients 1000 20000
    python bench/bench_import.py --patients 1000 --database postgresql+psycopg://postgres@127.0.0.1/bench

Prints one line per size: generation time, import time, rows loaded, rows per second and peak memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

from data_access.db import make_engine
from data_access.migrate import upgrade_database
from data_access.sources.importing import run_import

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "synthea_csv_sample"
FILES = ("patients.csv", "conditions.csv", "medications.csv", "encounters.csv", "observations.csv")
PATIENTS_PER_ORGANISATION = 2_000


def generate(patients: int, folder: Path) -> dict[str, int]:
    """Write a Synthea-shaped export of ``patients`` patients into ``folder``; returns rows per file."""
    folder.mkdir(parents=True, exist_ok=True)
    sample_ids = pl.read_csv(SAMPLE / "patients.csv", infer_schema=False)["Id"].to_list()
    clones = pl.DataFrame({"clone": range(patients)}).with_columns(
        pl.col("clone").mod(len(sample_ids)).replace_strict(dict(enumerate(sample_ids))).alias("source"),
        # A UUID-shaped id per clone (deterministic, so re-runs import the same patients).
        pl.format(
            "{}-0000-4000-8000-{}",
            pl.col("clone").cast(pl.String).str.zfill(8),
            pl.col("clone").cast(pl.String).str.zfill(12),
        ).alias("new_id"),
        (pl.col("clone") // PATIENTS_PER_ORGANISATION).cast(pl.String).alias("org_group"),
    )
    written: dict[str, int] = {}
    for name in FILES:
        frame = pl.read_csv(SAMPLE / name, infer_schema=False)
        key = "Id" if name == "patients.csv" else "PATIENT"
        out = frame.join(clones, left_on=key, right_on="source", how="inner").with_columns(
            pl.col("new_id").alias(key)
        )
        if "ORGANIZATION" in out.columns:
            out = out.with_columns(pl.concat_str([pl.col("ORGANIZATION"), pl.lit("-"), pl.col("org_group")]))
        out = out.drop("clone", "new_id", "org_group")
        if name == "patients.csv":
            out = out.sort(key)
        out.select(frame.columns).write_csv(folder / name)
        written[name] = out.height
    return written


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(patients: int, workdir: Path, database: str | None) -> None:
    folder = workdir / f"synthea_{patients}"
    started = time.perf_counter()
    files = generate(patients, folder)
    generated = time.perf_counter() - started
    url = database or f"sqlite:///{workdir / f'bench_{patients}.sqlite'}"
    engine = make_engine(url)
    upgrade_database(engine)
    started = time.perf_counter()
    cpu_started = time.process_time()
    summary = run_import("synthea", folder, engine, derive=False, rejects_path=workdir / "rejects.csv")
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    engine.dispose()
    rows = sum(summary.loaded.values())
    # Wall time depends on what else the machine runs; CPU time of this process (polars threads and in-process
    # SQLite included, a Postgres server's work not) and the load average say how much.
    load = os.getloadavg()[0]
    print(
        f"{patients:>8,} patients | input {sum(files.values()):>11,} rows, generated in {generated:6.1f} s | "
        f"import {elapsed:7.1f} s wall, {cpu:6.1f} s CPU ({'sqlite' if database is None else 'server'}) | "
        f"{rows:>11,} rows loaded, {rows / elapsed:>9,.0f} rows/s | peak RSS {peak_rss_mb():,.0f} MB | "
        f"load average {load:.1f}",
        flush=True,
    )
    shutil.rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, nargs="+", default=[1_000, 20_000])
    parser.add_argument(
        "--database", help="SQLAlchemy URL of an empty database (default: a temporary SQLite file)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where to write the generated exports (default: a temp dir)"
    )
    args = parser.parse_args()
    os.environ.setdefault("DYNAIRX_PSEUDONYM_KEY", "benchmark-only-key")
    print(f"Synthea import benchmark on {os.cpu_count()} CPU(s); sample: {SAMPLE}", flush=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        for patients in args.patients:
            run(patients, Path(scratch), args.database)


if __name__ == "__main__":
    main()
