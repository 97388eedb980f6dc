"""Benchmark: patient page latency at 100,000 patients on SQLite and Postgres, against the bare SQL.

For a sample of patients of one practice it times
- ``patient_record`` (every query of the page: record, trajectory, prescriptions, flags with rule metadata, scores,
  events, labs, drivers, data notes);
- the page's data callback work: ``patient_record`` plus the risk trajectory, the interaction timeline, the panels,
  the SMR pack, and the JSON encoding Dash sends to the browser;
- the bare SQL: the same statements with the same parameters, captured from SQLAlchemy and replayed on the raw
  DB-API connection.
Target (DESIGN.md): patient page callbacks from the cache p95 ≤ 150 ms.

    .venv/bin/python bench/bench_patient_page.py [--patients 100000] [--seed 7] [--workdir var/bench-dashboard]
        [--backends sqlite,postgres] [--sample 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
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
from plotly.io.json import to_json_plotly  # noqa: E402
from sqlalchemy import Engine, event, select  # noqa: E402

from app.components.figures import interaction_timeline_figure, risk_trajectory_figure  # noqa: E402
from app.components.patient_panels import (  # noqa: E402
    current_risk_panel,
    drivers_panel,
    flags_panel,
    header_panel,
    notes_panel,
    scores_panel,
)
from app.components.smr_pack import pack_components, smr_pack  # noqa: E402
from data_access.queries.patient import patient_record, rule_catalogue  # noqa: E402
from data_access.queries.scope import Scope  # noqa: E402
from data_access.schema import WorklistEntry  # noqa: E402

TARGET_P95_MS = 150.0


def sample_patients(engine: Engine, practice: str, size: int, seed: int) -> list[str]:
    with engine.connect() as conn:
        ids = list(
            conn.execute(
                select(WorklistEntry.patient_id)
                .where(WorklistEntry.practice_id == practice)
                .order_by(WorklistEntry.patient_id)
            ).scalars()
        )
    return random.Random(seed).sample(ids, min(size, len(ids)))


def callback_work(engine: Engine, scope: Scope, patient_id: str) -> int:
    """What the page's data callback does server-side, including the JSON encoding of its outputs."""
    view = patient_record(engine, scope, patient_id)
    outputs = [
        header_panel(view),
        scores_panel(view),
        current_risk_panel(view),
        risk_trajectory_figure(view.trajectory, view.medications, view.events, view.as_of),
        flags_panel(view.flags),
        drivers_panel(view.drivers),
        notes_panel(view.data_notes),
        interaction_timeline_figure(view),
        pack_components(smr_pack(view)),
    ]
    return len(to_json_plotly(outputs))


def captured_statements(engine: Engine, scope: Scope, patient_id: str) -> list[tuple[str, object]]:
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:  # noqa: ANN001
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        patient_record(engine, scope, patient_id)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return statements


def bench_backend(engine: Engine, sample: int, repeats: int, seed: int) -> dict:
    rule_catalogue()  # parsed once per process (the app warms it at start-up)
    practice = largest_practice(engine)
    scope = Scope.practices(practice)
    patients = sample_patients(engine, practice, sample, seed)
    for patient_id in patients[:3]:
        callback_work(engine, scope, patient_id)
    query_ms, callback_ms, bare_ms, payload = [], [], [], []
    raw = engine.raw_connection()
    for _ in range(repeats):
        for patient_id in patients:
            start = time.perf_counter()
            patient_record(engine, scope, patient_id)
            query_ms.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            payload.append(callback_work(engine, scope, patient_id))
            callback_ms.append((time.perf_counter() - start) * 1000)
            statements = captured_statements(engine, scope, patient_id)
            start = time.perf_counter()
            cursor = raw.cursor()
            for statement, parameters in statements:
                cursor.execute(statement, parameters)
                cursor.fetchall()
            cursor.close()
            bare_ms.append((time.perf_counter() - start) * 1000)
    raw.close()
    result = {
        "backend": engine.dialect.name,
        "patients_sampled": len(patients),
        "query_p50_ms": statistics.median(query_ms),
        "query_p95_ms": percentile(query_ms, 0.95),
        "callback_p50_ms": statistics.median(callback_ms),
        "callback_p95_ms": percentile(callback_ms, 0.95),
        "bare_p50_ms": statistics.median(bare_ms),
        "bare_p95_ms": percentile(bare_ms, 0.95),
        "payload_kb_p50": statistics.median(payload) / 1024,
    }
    result["query_ratio_p50"] = result["query_p50_ms"] / result["bare_p50_ms"]
    result["meets_target"] = result["callback_p95_ms"] <= TARGET_P95_MS
    print(
        f"{result['backend']:<10} {len(patients)} patients × {repeats}: queries p50 {result['query_p50_ms']:.1f} / "
        f"p95 {result['query_p95_ms']:.1f} ms (bare SQL p50 {result['bare_p50_ms']:.1f} / p95 "
        f"{result['bare_p95_ms']:.1f} ms, ratio {result['query_ratio_p50']:.2f}); whole callback p50 "
        f"{result['callback_p50_ms']:.1f} / p95 {result['callback_p95_ms']:.1f} ms, payload "
        f"{result['payload_kb_p50']:.0f} KB  {'ok' if result['meets_target'] else 'MISS'}",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("var/bench-dashboard"))
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--sample", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    frames = cohort_frames(args.workdir, args.patients, args.seed)
    results = []
    for backend in args.backends.split(","):
        if backend == "sqlite":
            engine = sqlite_engine(args.workdir, frames, args.patients, args.seed)
            results.append(bench_backend(engine, args.sample, args.repeats, args.seed))
            engine.dispose()
        elif backend == "postgres":
            engine, name = postgres_engine(frames)
            try:
                results.append(bench_backend(engine, args.sample, args.repeats, args.seed))
            finally:
                drop_postgres(engine, name)
        else:
            parser.error(f"unknown backend {backend!r}")
    print(
        f"patient page at {args.patients:,} patients: "
        + "; ".join(f"{r['backend']} callback p95 {r['callback_p95_ms']:.0f} ms" for r in results)
        + f" (target ≤ {TARGET_P95_MS:.0f} ms)"
    )
    if args.json:
        args.json.write_text(json.dumps({"patients": args.patients, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
