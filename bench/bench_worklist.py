"""Benchmark: worklist page latency at 100,000 patients on SQLite and Postgres, against the bare SQL.

For each scenario (a GP's practice scope unless stated; 100-row blocks, filtered and sorted on the server) it times
``data_access.queries.worklist.worklist_page`` (count + block + row shaping, what the grid callback runs) and the
bare SQL of the same two statements executed on the raw DB-API connection, and reports p50/p95 and their ratio.
Targets (DESIGN.md): p95 ≤ 50 ms and within 2× the bare SQL.

The cohort is built by ``bench/dashboard_cohort.py`` (generated once and cached in ``--workdir``; a temporary Postgres
database is created and dropped on every run).

    .venv/bin/python bench/bench_worklist.py [--patients 100000] [--seed 7] [--workdir var/bench-dashboard]
        [--backends sqlite,postgres] [--repeats 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dashboard_cohort import (  # noqa: E402
    cohort_frames,
    drop_postgres,
    largest_practice,
    percentile,
    postgres_engine,
    sqlite_engine,
)
from sqlalchemy import Engine  # noqa: E402

from data_access.queries.scope import Scope  # noqa: E402
from data_access.queries.worklist import (  # noqa: E402
    GridRequest,
    WorklistFilters,
    worklist_count_select,
    worklist_page,
    worklist_select,
)

TARGET_P95_MS = 50.0
TARGET_RATIO = 2.0
RISK_DESC = ({"colId": "risk_emergency_admission", "sort": "desc"},)


def scenarios(practice: str) -> list[tuple[str, Scope, WorklistFilters, GridRequest]]:
    gp = Scope.practices(practice)
    return [
        ("why-now order, first block", gp, WorklistFilters(), GridRequest(0, 100)),
        ("sorted by risk, block 5 (rows 401-500)", gp, WorklistFilters(), GridRequest(400, 500, RISK_DESC)),
        (
            "frailty cohort + high-severity flag, by risk",
            gp,
            WorklistFilters(cohorts=("frailty",), high_severity_flag=True, order="risk"),
            GridRequest(0, 100),
        ),
        (
            "≥4 LTCs & ≥10 medicines, condition + drug",
            gp,
            WorklistFilters(cohorts=("complex_polypharmacy",), condition="hypertension", drug="amlodipine"),
            GridRequest(0, 100),
        ),
        (
            "column filters: age > 75, 'why' contains STOPP",
            gp,
            WorklistFilters(),
            GridRequest(
                0,
                100,
                ({"colId": "age", "sort": "desc"},),
                {
                    "age": {"filterType": "number", "type": "greaterThan", "filter": 75},
                    "why": {"filterType": "text", "type": "contains", "filter": "STOPP"},
                },
            ),
        ),
        (
            "all practices (admin scope), by risk",
            Scope.everything(),
            WorklistFilters(order="risk"),
            GridRequest(0, 100),
        ),
    ]


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    for _ in range(2):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000.0)
    return out


def bare_sql(
    engine: Engine, scope: Scope, filters: WorklistFilters, grid: GridRequest
) -> Callable[[], object]:
    """The same count and block statements as literal SQL on the raw DB-API connection (no SQLAlchemy, no shaping)."""
    kwargs = {"dialect": engine.dialect, "compile_kwargs": {"literal_binds": True}}
    count_sql = str(worklist_count_select(scope, filters, grid).compile(**kwargs))
    block_sql = str(worklist_select(scope, filters, grid).compile(**kwargs))
    raw = engine.raw_connection()

    def run() -> object:
        cursor = raw.cursor()
        cursor.execute(count_sql)
        cursor.fetchall()
        cursor.execute(block_sql)
        rows = cursor.fetchall()
        cursor.close()
        return rows

    return run


def bench_backend(engine: Engine, repeats: int) -> list[dict]:
    practice = largest_practice(engine)
    results = []
    for name, scope, filters, grid in scenarios(practice):
        page = worklist_page(engine, scope, filters, grid)
        with engine.connect() as conn:
            fn_times = timed(lambda c=conn, s=scope, f=filters, g=grid: worklist_page(c, s, f, g), repeats)
        bare_times = timed(bare_sql(engine, scope, filters, grid), repeats)
        row = {
            "backend": engine.dialect.name,
            "scenario": name,
            "matching": page.total,
            "rows": len(page.rows),
            "p50_ms": statistics.median(fn_times),
            "p95_ms": percentile(fn_times, 0.95),
            "bare_p50_ms": statistics.median(bare_times),
            "bare_p95_ms": percentile(bare_times, 0.95),
        }
        row["ratio_p50"] = row["p50_ms"] / row["bare_p50_ms"]
        row["ratio_p95"] = row["p95_ms"] / row["bare_p95_ms"]
        row["meets_targets"] = row["p95_ms"] <= TARGET_P95_MS and row["ratio_p95"] <= TARGET_RATIO
        results.append(row)
        print(
            f"{row['backend']:<10} {name:<48} {page.total:>7,} match  p50 {row['p50_ms']:6.1f} ms  "
            f"p95 {row['p95_ms']:6.1f} ms  bare p50 {row['bare_p50_ms']:6.1f} / p95 {row['bare_p95_ms']:6.1f} ms  "
            f"ratio p50 {row['ratio_p50']:.2f} p95 {row['ratio_p95']:.2f}  {'ok' if row['meets_targets'] else 'MISS'}",
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("var/bench-dashboard"))
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    frames = cohort_frames(args.workdir, args.patients, args.seed)
    results: list[dict] = []
    for backend in args.backends.split(","):
        if backend == "sqlite":
            engine = sqlite_engine(args.workdir, frames, args.patients, args.seed)
            results += bench_backend(engine, args.repeats)
            engine.dispose()
        elif backend == "postgres":
            engine, name = postgres_engine(frames)
            try:
                results += bench_backend(engine, args.repeats)
            finally:
                drop_postgres(engine, name)
        else:
            parser.error(f"unknown backend {backend!r}")
    missed = [r for r in results if not r["meets_targets"]]
    print(
        f"worklist at {args.patients:,} patients: {len(results) - len(missed)}/{len(results)} scenarios within "
        f"p95 ≤ {TARGET_P95_MS:.0f} ms and ≤ {TARGET_RATIO:.0f}× bare SQL"
    )
    if args.json:
        args.json.write_text(json.dumps({"patients": args.patients, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
