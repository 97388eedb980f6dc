"""Benchmark: the pharmacist and researcher views (combinations, population, SMR planning, review workflow) at
100,000 patients: query latency of each ``data_access.queries`` function and callback latency of each page through
the real dashboard (Flask test client, signed in, CSRF and audit included), cold (cache miss) and warm.

The database: ``--database-url`` (or ``DATABASE_URL``) reuses a built one; otherwise a synthetic cohort is
generated (``data_access.sources.synthetic.generate_cohort``), loaded, derived (flags and scores) and its worklist
built in ``--workdir`` (kept, so later runs reuse it). No model is trained here (that is ``bench_model.py``): so that
the risk histogram and the risk ordering run over realistic values, the generator's own true 12-month risks
(``synthetic_truth``) are copied into the prediction cache under the model version ``bench-synthetic-truth``.
That is benchmark data for timing only; it is never shown as a model's output outside this script's database.

    .venv/bin/python bench/bench_pharmacist_researcher.py [--patients 100000] [--workdir var/bench-pr]
        [--database-url URL] [--repeats 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from sqlalchemy import Engine, func, insert, literal, select, text  # noqa: E402

from data_access.db import make_engine  # noqa: E402
from data_access.migrate import upgrade_database  # noqa: E402
from data_access.schema import ModelRun, Patient, Prediction, Review, SyntheticTruth, WorklistEntry  # noqa: E402

BENCH_MODEL = "bench-synthetic-truth"
PASSWORD = "bench pharmacist researcher password"
REVIEWS = 2_000


# -- building the database ------------------------------------------------------------------------------------------


def build(engine: Engine, patients: int, seed: int) -> None:
    from data_access.derive import refresh_derived
    from data_access.loading import load_frames
    from data_access.sources.synthetic import generate_cohort

    step = time.perf_counter()
    frames = generate_cohort(patients, seed, enrich_smr=True, progress=True)
    print(f"generated {patients:,} patients in {time.perf_counter() - step:.0f} s")
    step = time.perf_counter()
    counts = load_frames(engine, frames)
    print(f"loaded {counts} in {time.perf_counter() - step:.0f} s")
    step = time.perf_counter()
    derived = refresh_derived(engine, progress=True)
    print(f"derived {derived} in {time.perf_counter() - step:.0f} s")


def copy_truth_as_predictions(engine: Engine) -> None:
    """The generator's true risks at the last month and six months before, as a labelled stand-in model."""
    with engine.begin() as conn:
        if conn.execute(select(func.count()).where(Prediction.model_version == BENCH_MODEL)).scalar_one():
            return
        last = conn.execute(select(func.max(SyntheticTruth.month))).scalar_one()
        if last is None:
            raise SystemExit("no synthetic_truth rows: the benchmark needs a synthetic cohort")
        year, month = divmod(last.year * 12 + last.month - 1 - 6, 12)
        earlier = dt.date(year, month + 1, 1)
        for on in (earlier, last):
            conn.execute(
                insert(Prediction).from_select(
                    [
                        "patient_id",
                        "as_of",
                        "outcome",
                        "horizon_months",
                        "risk",
                        "lower",
                        "upper",
                        "model_version",
                        "scenario",
                    ],
                    select(
                        SyntheticTruth.patient_id,
                        SyntheticTruth.month,
                        SyntheticTruth.outcome,
                        literal(12),
                        SyntheticTruth.risk,
                        SyntheticTruth.risk,
                        SyntheticTruth.risk,
                        literal(BENCH_MODEL),
                        literal("current"),
                    ).where(SyntheticTruth.month == on),
                )
            )
        conn.execute(
            insert(ModelRun).values(
                version=BENCH_MODEL,
                created_at=dt.datetime.now(),
                checkpoint_path=None,
                active=True,
                metrics_json=None,
                card_json=None,
            )
        )


def prepare(engine: Engine, patients: int, seed: int) -> None:
    from data_access.worklist_build import refresh_worklist

    upgrade_database(engine)
    with engine.connect() as conn:
        present = conn.execute(select(func.count()).select_from(Patient)).scalar_one()
        listed = conn.execute(select(func.count()).select_from(WorklistEntry)).scalar_one()
    if present == 0:
        build(engine, patients, seed)
    copy_truth_as_predictions(engine)
    if listed == 0:
        step = time.perf_counter()
        refresh_worklist(engine)
        print(f"worklist built in {time.perf_counter() - step:.0f} s")
    seed_reviews(engine)


def seed_reviews(engine: Engine) -> None:
    """Workflow history at a realistic scale (thousands of actions), so the worklist's hiding is measured."""
    with engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(Review)).scalar_one():
            return
        ids = conn.execute(
            select(WorklistEntry.patient_id).order_by(WorklistEntry.patient_id).limit(REVIEWS)
        ).scalars()
        now = dt.datetime.now().replace(microsecond=0)
        rows = [
            {
                "patient_id": pid,
                "status": ("reviewed", "snoozed", "booked", "declined")[i % 4],
                "reviewer": "bench",
                "outcome": None,
                "at": now - dt.timedelta(days=i % 300),
                "snooze_until": dt.date.today() + dt.timedelta(days=30) if i % 4 == 1 else None,
                "next_due": None,
            }
            for i, pid in enumerate(ids)
        ]
        conn.execute(insert(Review), rows)


# -- timing ---------------------------------------------------------------------------------------------------------


def timed(label: str, call: Callable[[], Any], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    report(label, samples)
    return samples


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    print(
        f"  {label:<58} first {samples[0]:8.1f} ms  p50 {statistics.median(samples):8.1f} ms  p95 {p95:8.1f} ms"
    )


def bench_queries(engine: Engine, repeats: int) -> None:
    from data_access.derive import data_cut_date
    from data_access.queries import capacity, combinations, population
    from data_access.queries.scope import Scope
    from data_access.queries.worklist import GridRequest, WorklistFilters, worklist_page
    from data_access.worklist_build import ConditionGroups

    cut = data_cut_date(engine)
    with engine.connect() as conn:
        practices = list(
            conn.execute(select(Patient.practice_id).distinct().order_by(Patient.practice_id)).scalars()
        )
    everything, two = Scope.everything(), Scope(frozenset(practices[:2]))
    catalogue, members = combinations.rule_catalogue(), combinations.class_members()
    long_term = ConditionGroups.from_knowledge().ltc
    print(
        f"queries (data cut {cut}, {len(practices)} practices; 'two practices' = a PCN pharmacist's scope):"
    )
    timed("data_cut_date", lambda: data_cut_date(engine), 3)
    by_practice = combinations.combination_counts_by_practice(engine, everything, cut)
    timed(
        "combination_counts_by_practice, every practice (cached per scope)",
        lambda: combinations.combination_counts_by_practice(engine, everything, cut),
        3,
    )
    timed(
        "combination_counts_by_practice, two practices",
        lambda: combinations.combination_counts_by_practice(engine, two, cut),
        3,
    )
    counts = combinations.counts_for_practice(by_practice)
    timed(
        "counts_for_practice (all, in memory)", lambda: combinations.counts_for_practice(by_practice), repeats
    )
    timed(
        "counts_for_practice (one practice, in memory)",
        lambda: combinations.counts_for_practice(by_practice, practices[0]),
        repeats,
    )
    filters = combinations.CombinationFilters(groups=("ddi",), drug_class="nsaid")
    timed(
        "combination_rows (filter in memory)",
        lambda: combinations.combination_rows(counts, filters, catalogue, members),
        repeats,
    )
    rows = combinations.combination_rows(counts, combinations.CombinationFilters(), catalogue, members)
    key = combinations.parse_combination_key(rows[0]["key"])
    print(f"  (drill-down combination: {key[0]}, {rows[0]['active_now']:,} patients active now)")
    request = combinations.DrillRequest(0, 100, ({"colId": "risk_emergency_admission", "sort": "desc"},))
    timed(
        "combination_patients, 100 rows sorted, two practices",
        lambda: combinations.combination_patients(engine, two, key, cut, request=request),
        repeats,
    )
    timed(
        "combination_patients, block 5 (rows 400-500)",
        lambda: combinations.combination_patients(
            engine, two, key, cut, request=combinations.DrillRequest(400, 500)
        ),
        repeats,
    )
    drugs = combinations.active_drugs(engine, everything)
    timed(
        "active_drugs (co-prescription input), every practice",
        lambda: combinations.active_drugs(engine, everything),
        3,
    )
    classes = combinations.patient_classes(drugs, members)
    timed("patient_classes", lambda: combinations.patient_classes(drugs, members), 3)
    chosen = combinations.default_heatmap_classes(
        combinations.class_prevalence(classes), combinations.rule_class_ranking()
    )
    timed("co_prescription (20 classes)", lambda: combinations.co_prescription(classes, chosen), 3)
    risks = population.current_risks(engine, everything)
    timed("current_risks", lambda: population.current_risks(engine, everything), 3)
    timed("risk_distribution", lambda: population.risk_distribution(risks, "emergency_admission"), repeats)
    timed("prevalence_table", lambda: population.prevalence_table(engine, everything), 3)
    sets = population.condition_sets(engine, everything)
    timed("condition_sets", lambda: population.condition_sets(engine, everything), 3)
    timed(
        "condition_clusters (pairs and triples)",
        lambda: (
            population.condition_clusters(sets, long_term, 2),
            population.condition_clusters(sets, long_term, 3),
        ),
        3,
    )
    timed("practice_flag_rates", lambda: population.practice_flag_rates(engine, everything, cut), 3)
    timed(
        "plan_reviews (one practice, 20 slots)",
        lambda: capacity.plan_reviews(engine, two, practices[0], 20, cut=cut, today=dt.date.today()),
        5,
    )
    grid = GridRequest(0, 100, ({"colId": "risk_emergency_admission", "sort": "desc"},))
    timed(
        "worklist_page, reviewed hidden (default)",
        lambda: worklist_page(engine, Scope(frozenset(practices[:1])), WorklistFilters(), grid),
        repeats,
    )
    timed(
        "worklist_page, show reviewed",
        lambda: worklist_page(
            engine, Scope(frozenset(practices[:1])), WorklistFilters(show_reviewed=True), grid
        ),
        repeats,
    )


def bench_callbacks(engine: Engine, repeats: int) -> None:
    from dataclasses import replace

    from security_support import Browser  # noqa: F401 - the cheap password hasher for the bench accounts

    from app import create_app
    from app.security import ensure_demo_accounts
    from data_access.settings import Settings

    ensure_demo_accounts(engine, PASSWORD)
    settings = Settings(
        database_url=str(engine.url),
        model_service_url=None,
        model_service_token=None,
        secret_key="bench-pharmacist-researcher-secret-0123456789",
        device="cpu",
        demo=True,
    )
    app = create_app(replace(settings), engine=engine)
    sessions = {}
    for user in ("demo-pharmacist", "demo-researcher"):
        browser = Browser(app.server.test_client())
        assert browser.login(user, PASSWORD, next_url="/help").status_code == 302
        sessions[user] = browser
    specs = sessions["demo-pharmacist"].get("/_dash-dependencies").get_json()

    def output(fragment: str) -> str:
        return next(s["output"] for s in specs if fragment in s["output"])

    def call(
        user: str, fragment: str, inputs: list[dict], state: list[dict] | None = None
    ) -> Callable[[], None]:
        def run() -> None:
            response = sessions[user].callback(output(fragment), inputs, state=state)
            assert response.status_code in (200, 204), (fragment, response.status_code)

        return run

    with engine.connect() as conn:
        patient = conn.execute(
            select(WorklistEntry.patient_id)
            .where(
                WorklistEntry.practice_id.in_(
                    select(Patient.practice_id).distinct().order_by(Patient.practice_id).limit(1)
                )
            )
            .order_by(WorklistEntry.why_now_score.desc())
            .limit(1)
        ).scalar_one()
    from data_access.derive import data_cut_date
    from data_access.queries.combinations import (
        CombinationFilters,
        class_members,
        combination_counts,
        combination_rows,
        rule_catalogue,
    )
    from data_access.queries.scope import Scope

    cut = data_cut_date(engine)
    first = combination_rows(
        combination_counts(engine, Scope.everything(), cut),
        CombinationFilters(),
        rule_catalogue(),
        class_members(),
    )[0]["key"]
    filters = [
        {"id": "combinations-group", "property": "value", "value": ["ddi"]},
        {"id": "combinations-severity", "property": "value", "value": []},
        {"id": "combinations-drug", "property": "value", "value": None},
        {"id": "combinations-class", "property": "value", "value": None},
        {"id": "combinations-practice", "property": "value", "value": "*"},
    ]
    drill_state = [
        {"id": "combinations-selected", "property": "data", "value": first},
        {"id": "combinations-drill-status", "property": "value", "value": "active"},
        {"id": "combinations-practice", "property": "value", "value": "*"},
    ]
    cases = [
        ("combinations: table (pharmacist)", call("demo-pharmacist", "combinations-grid.rowData", filters)),
        (
            "combinations: table (researcher, suppressed)",
            call("demo-researcher", "combinations-grid.rowData", filters),
        ),
        (
            "combinations: heat map",
            call(
                "demo-pharmacist",
                "combinations-heatmap.figure",
                [
                    {"id": "combinations-heatmap-classes", "property": "value", "value": []},
                    {"id": "combinations-practice", "property": "value", "value": "*"},
                    {"id": "combinations-class", "property": "value", "value": None},
                ],
            ),
        ),
        (
            "combinations: drill-down block",
            call(
                "demo-pharmacist",
                "combinations-drill-grid.getRowsResponse",
                [
                    {
                        "id": "combinations-drill-grid",
                        "property": "getRowsRequest",
                        "value": {"startRow": 0, "endRow": 100, "sortModel": []},
                    }
                ],
                drill_state,
            ),
        ),
        (
            "population: risk histogram",
            call(
                "demo-researcher",
                "population-histogram.figure",
                [{"id": "population-outcome", "property": "value", "value": "fall_fracture"}],
            ),
        ),
        (
            "population: prevalence and clusters",
            call(
                "demo-researcher",
                "population-prevalence.children",
                [{"id": "population-outcome", "property": "id", "value": "population-outcome"}],
            ),
        ),
        (
            "population: funnel plot",
            call(
                "demo-researcher",
                "population-funnel.figure",
                [
                    {"id": "population-funnel-group", "property": "value", "value": "*"},
                    {"id": "population-funnel-severity", "property": "value", "value": "*"},
                ],
            ),
        ),
        (
            "model card: one outcome",
            call(
                "demo-researcher",
                "model-auroc.figure",
                [{"id": "model-outcome", "property": "value", "value": "death"}],
            ),
        ),
        (
            "plan: propose 20 slots",
            call(
                "demo-pharmacist",
                "plan-summary.children",
                [{"id": "plan-run", "property": "n_clicks", "value": 1}],
                [
                    {"id": "plan-practice", "property": "value", "value": sorted(_practices(engine))[0]},
                    {"id": "plan-slots", "property": "value", "value": 20},
                ],
            ),
        ),
        (
            "patient: review panel",
            call(
                "demo-pharmacist",
                "review-state.children...review-history",
                [{"id": "review-patient-id", "property": "data", "value": patient}],
            ),
        ),
        (
            "patient: record a review (booked)",
            call(
                "demo-pharmacist",
                "review-message.children",
                [{"id": "review-submit", "property": "n_clicks", "value": 1}],
                [
                    {"id": "review-patient-id", "property": "data", "value": patient},
                    {"id": "review-status", "property": "value", "value": "booked"},
                    {"id": "review-date", "property": "value", "value": None},
                    {"id": "review-outcome", "property": "value", "value": "bench"},
                ],
            ),
        ),
    ]
    print("callbacks through the dashboard (first call is cold: caches empty):")
    for label, run in cases:
        timed(label, run, repeats)


def _practices(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(Patient.practice_id).distinct()).scalars())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where to build and keep the SQLite database"
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if args.database_url:
        url = args.database_url
    else:
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-pr-"))
        workdir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{workdir / f'bench-{args.patients}.sqlite'}"
    engine = make_engine(url)
    print(f"database: {engine.url.render_as_string(hide_password=True)}")
    prepare(engine, args.patients, args.seed)
    with engine.connect() as conn:
        listed = conn.execute(select(func.count()).select_from(WorklistEntry)).scalar_one()
        flags = conn.execute(text("SELECT count(*) FROM flag")).scalar_one()
    print(f"{listed:,} patients on the worklist, {flags:,} flag periods, {REVIEWS:,} review actions")
    bench_queries(engine, args.repeats)
    bench_callbacks(engine, args.repeats)
    engine.dispose()


if __name__ == "__main__":
    main()
