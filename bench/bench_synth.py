"""Benchmark: generate the synthetic population and load it into SQLite and Postgres.

Prints generation time (wall and CPU), rows per table, peak RSS, the Parquet write time, and the time of
``data_access.loading.load_frames`` into a migrated temporary SQLite file and into a temporary Postgres database
(created on 127.0.0.1:5432 as user postgres and dropped afterwards). Targets (brief): 100,000 patients x 5 years
generated in <= 2 minutes and loaded in <= 2 minutes on 2 cores, <= 4 GB RAM.

    .venv/bin/python bench/bench_synth.py --patients 100000 [--seed 1] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from data_access.db import make_engine
from data_access.loading import load_frames
from data_access.migrate import upgrade_database
from data_access.sources.synthetic import generate_cohort, write_cohort

POSTGRES_ADMIN_URL = os.environ.get(
    "DYNAIRX_BENCH_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed_load(url: str, frames: dict) -> tuple[float, float, dict[str, int]]:
    engine = make_engine(url)
    try:
        upgrade_database(engine)
        cpu, began = _cpu(), time.perf_counter()
        counts = load_frames(engine, frames)
        return time.perf_counter() - began, _cpu() - cpu, counts
    finally:
        engine.dispose()


def _postgres_load(frames: dict) -> tuple[float, float, dict[str, int]]:
    name = f"dynairx_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        return _timed_load(POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", frames)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--enrich-smr", action="store_true")
    parser.add_argument("--no-postgres", action="store_true", help="skip the Postgres load")
    args = parser.parse_args()

    cpu, began = _cpu(), time.perf_counter()
    frames = generate_cohort(args.patients, args.seed, enrich_smr=args.enrich_smr)
    wall = time.perf_counter() - began
    print(
        f"generate: {args.patients} patients in {wall:.1f} s wall, {_cpu() - cpu:.1f} s CPU; peak RSS {_peak_rss_mb():.0f} MB"
    )
    for table, frame in frames.items():
        print(f"  {table:16s} {frame.height:>12,d} rows")

    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        write_cohort(frames, Path(tmp) / "cohort")
        size = sum(p.stat().st_size for p in (Path(tmp) / "cohort").iterdir()) / 2**20
        print(f"parquet: written in {time.perf_counter() - began:.1f} s ({size:.0f} MB)")

        wall, cpu_used, counts = _timed_load(f"sqlite:///{Path(tmp) / 'bench.sqlite'}", frames)
        print(f"load sqlite: {wall:.1f} s wall, {cpu_used:.1f} s CPU ({sum(counts.values()):,d} rows)")
    if not args.no_postgres:
        wall, cpu_used, counts = _postgres_load(frames)
        print(
            f"load postgres: {wall:.1f} s wall, {cpu_used:.1f} s CPU in this process ({sum(counts.values()):,d} rows)"
        )
    print(f"peak RSS {_peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
