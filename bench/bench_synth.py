"""Benchmark: generate the synthetic population and load it into SQLite and Postgres.

Prints generation time (wall and CPU), rows per table, peak RSS, the Parquet write time, and the time of
``data_access.loading.load_frames`` into a migrated temporary SQLite file and into a temporary Postgres database
(created on 127.0.0.1:5432 as user postgres and dropped afterwards), split into the source tables and the
``synthetic_truth`` table. For Postgres it also reports the CPU used by the server backends (read from /proc when
the server runs on this machine), since a COPY spends most of its time there. Targets (brief): 100,000 patients x
5 years generated in <= 2 minutes and loaded in <= 2 minutes on 2 cores, <= 4 GB RAM.

    .venv/bin/python bench/bench_synth.py --patients 100000 [--seed 1] [--enrich-smr] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, create_engine, text

from data_access.db import make_engine
from data_access.loading import load_frames
from data_access.migrate import upgrade_database
from data_access.sources.synthetic import generate_cohort, write_cohort

POSTGRES_ADMIN_URL = os.environ.get(
    "DYNAIRX_BENCH_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _server_cpu(engine: Engine) -> float | None:
    """CPU seconds of the Postgres backends serving this database (None if /proc cannot tell)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        pids = connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        total = 0.0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def _timed_load(
    url: str, frames: dict[str, pl.DataFrame]
) -> list[tuple[str, float, float, float | None, int]]:
    """Load the source tables, then the truth table: (step, wall s, client CPU s, server CPU s, rows) each."""
    engine = make_engine(url, pool_size=1) if not url.startswith("sqlite") else make_engine(url)
    steps = (
        ("source tables", {t: f for t, f in frames.items() if t != "synthetic_truth"}),
        ("synthetic_truth", {"synthetic_truth": frames["synthetic_truth"]}),
    )
    results = []
    try:
        upgrade_database(engine)
        for name, part in steps:
            server_before = _server_cpu(engine)
            cpu, began = _cpu(), time.perf_counter()
            counts = load_frames(engine, part)
            wall, client = time.perf_counter() - began, _cpu() - cpu
            server_after = _server_cpu(engine)
            server = None if server_before is None or server_after is None else server_after - server_before
            results.append((name, wall, client, server, sum(counts.values())))
        return results
    finally:
        engine.dispose()


def _report(backend: str, results: list[tuple[str, float, float, float | None, int]]) -> None:
    for name, wall, client, server, rows in results:
        server_text = "" if server is None else f", {server:.1f} s server CPU"
        print(
            f"load {backend} {name}: {wall:.1f} s wall, {client:.1f} s client CPU{server_text} ({rows:,d} rows)"
        )
    print(f"load {backend} total: {sum(r[1] for r in results):.1f} s wall")


def _postgres_load(frames: dict[str, pl.DataFrame]) -> list[tuple[str, float, float, float | None, int]]:
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
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
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
        f"generate: {args.patients:,d} patients in {wall:.1f} s wall, {_cpu() - cpu:.1f} s CPU; "
        f"peak RSS {_peak_rss_mb():.0f} MB"
    )
    for table, frame in frames.items():
        print(f"  {table:16s} {frame.height:>12,d} rows")

    with tempfile.TemporaryDirectory() as tmp:
        cpu, began = _cpu(), time.perf_counter()
        write_cohort(frames, Path(tmp) / "cohort")
        size = sum(p.stat().st_size for p in (Path(tmp) / "cohort").iterdir()) / 2**20
        print(
            f"parquet: written in {time.perf_counter() - began:.1f} s wall, {_cpu() - cpu:.1f} s CPU ({size:.0f} MB)"
        )
        _report("sqlite", _timed_load(f"sqlite:///{Path(tmp) / 'bench.sqlite'}", frames))
    if not args.no_postgres:
        _report("postgres", _postgres_load(frames))
    print(f"peak RSS {_peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
