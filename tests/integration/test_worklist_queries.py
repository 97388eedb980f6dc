"""Worklist paging, filtering, sorting, scope and CSV export against a real database (SQLite and Postgres)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from dashboard_factory import AS_OF, TEST_GROUPS, TEST_RULE_TITLES, CohortBuilder, add_varied_patients
from sqlalchemy import Engine, func, select

from data_access.queries.scope import Scope, patient_in_scope
from data_access.queries.worklist import (
    GridRequest,
    WorklistFilters,
    filter_choices,
    worklist_csv,
    worklist_page,
)
from data_access.schema import WorklistEntry
from data_access.worklist_build import refresh_worklist

D = dt.date
P001 = Scope.practices("P001")


@pytest.fixture
def worklist(db_engine: Engine) -> Engine:
    b = CohortBuilder().model_run()
    b.patient("A", birth=(1940, 3))
    for key in ("depression", "heart_failure", "hypertension", "ckd", "type2_diabetes"):
        b.condition("A", key, D(2015, 1, 1))
    for drug in (
        "ibuprofen",
        "ramipril",
        "amlodipine",
        "furosemide",
        "bisoprolol",
        "atorvastatin",
        "metformin",
        "omeprazole",
        "sertraline",
        "paracetamol",
    ):
        b.prescription("A", drug, D(2024, 1, 1))
    b.score("A", "efi", 0.30)
    b.flag("A", "STOPP-v3-B11", D(2026, 5, 1), drugs="ibuprofen", severity="high")
    b.trajectory("A", "emergency_admission", [0.20 + 0.0125 * m for m in range(13)])
    b.patient("B", birth=(1990, 7), sex="M")
    b.patient("D", practice_id="P002", birth=(1950, 12), sex="M")
    b.score("D", "efi", 0.05)
    add_varied_patients(b, 60, seed=3)
    b.load(db_engine)
    refresh_worklist(db_engine, as_of=AS_OF, groups=TEST_GROUPS, rule_titles=TEST_RULE_TITLES)
    return db_engine


def _ids(
    engine: Engine, scope: Scope, filters: WorklistFilters, grid: GridRequest | None = None
) -> list[str]:
    return [r["patient_id"] for r in worklist_page(engine, scope, filters, grid or GridRequest(0, 500)).rows]


def test_scope_limits_rows_and_total(worklist: Engine) -> None:
    with worklist.connect() as conn:
        p001 = conn.execute(select(func.count()).where(WorklistEntry.practice_id == "P001")).scalar_one()
    page = worklist_page(worklist, P001, WorklistFilters(), GridRequest(0, 10))
    assert page.total == p001 and len(page.rows) == 10
    assert "D" not in _ids(worklist, P001, WorklistFilters())
    assert worklist_page(worklist, Scope(frozenset()), WorklistFilters()).total == 0
    assert worklist_page(worklist, Scope.everything(), WorklistFilters()).total == p001 + 31  # D + 30 varied
    assert patient_in_scope(worklist, P001, "A") and not patient_in_scope(worklist, P001, "D")
    assert not patient_in_scope(worklist, P001, "nobody")


def test_cohort_and_quick_filters(worklist: Engine) -> None:
    for cohort in ("mental_physical", "complex_polypharmacy", "frailty"):
        assert "A" in _ids(worklist, P001, WorklistFilters(cohorts=(cohort,)))
        assert "B" not in _ids(worklist, P001, WorklistFilters(cohorts=(cohort,)))
    assert "A" in _ids(worklist, P001, WorklistFilters(high_severity_flag=True))
    assert "A" in _ids(worklist, P001, WorklistFilters(condition="ckd", drug="ibuprofen"))
    assert "A" not in _ids(worklist, P001, WorklistFilters(condition="copd"))
    assert "A" not in _ids(worklist, P001, WorklistFilters(drug="ibu"))  # whole keys only
    strict = _ids(worklist, P001, WorklistFilters(risk_outcome="emergency_admission", risk_min_percent=34.9))
    assert "A" in strict and "B" not in strict
    assert "A" in _ids(worklist, P001, WorklistFilters(rising_only=True))


def test_sort_by_risk_is_descending_with_nulls_last(worklist: Engine) -> None:
    rows = worklist_page(
        worklist,
        P001,
        WorklistFilters(),
        GridRequest(0, 500, ({"colId": "risk_emergency_admission", "sort": "desc"},)),
    ).rows
    risks = [r["risk_emergency_admission"] for r in rows]
    known = [r for r in risks if r is not None]
    assert known == sorted(known, reverse=True)
    assert risks[-1] is None  # B has no prediction: last, not first
    by_order = worklist_page(worklist, P001, WorklistFilters(order="risk"), GridRequest(0, 500)).rows
    assert [r["patient_id"] for r in by_order] == [r["patient_id"] for r in rows]


def test_blocks_never_overlap_when_values_tie(worklist: Engine) -> None:
    sort = ({"colId": "sex", "sort": "asc"},)
    total = worklist_page(worklist, P001, WorklistFilters(), GridRequest(0, 1)).total
    seen: list[str] = []
    for start in range(0, total, 7):
        seen += _ids(worklist, P001, WorklistFilters(), GridRequest(start, start + 7, sort))
    assert len(seen) == total == len(set(seen))


def test_grid_filter_model_and_unknown_columns(worklist: Engine) -> None:
    grid = GridRequest(
        0,
        500,
        ({"colId": "age; DROP TABLE patient", "sort": "asc"},),
        {
            "age": {"filterType": "number", "type": "greaterThan", "filter": 80},
            "not_a_column": {"filterType": "text", "type": "contains", "filter": "x"},
        },
    )
    rows = worklist_page(worklist, P001, WorklistFilters(), grid).rows
    assert rows and all(r["age"] > 80 for r in rows) and "A" in [r["patient_id"] for r in rows]
    percent = GridRequest(
        0,
        500,
        (),
        {"risk_emergency_admission": {"filterType": "number", "type": "greaterThanOrEqual", "filter": 35}},
    )
    assert "A" in _ids(worklist, P001, WorklistFilters(), percent)
    text = GridRequest(
        0, 500, (), {"why": {"filterType": "text", "type": "contains", "filter": "nsaid with HEART"}}
    )
    matched = worklist_page(worklist, P001, WorklistFilters(), text).rows
    assert "A" in [r["patient_id"] for r in matched]
    assert all("nsaid with heart" in r["why"].lower() for r in matched)


def test_rows_are_shaped_for_the_grid(worklist: Engine) -> None:
    row = next(
        r
        for r in worklist_page(worklist, P001, WorklistFilters(), GridRequest(0, 500)).rows
        if r["patient_id"] == "A"
    )
    assert row["risk_emergency_admission"] == 35.0
    assert row["risk_change_6m"] == 7.5 and row["rising"] is True
    assert row["efi_category"] == "Moderate"
    assert row["flags_summary"] == "1 high"
    assert row["last_review"] == "None recorded"


def test_csv_export_matches_filters(worklist: Engine) -> None:
    text, count = worklist_csv(worklist, P001, WorklistFilters(cohorts=("frailty",)))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "Patient" and "Why on the list" in rows[0]
    assert count == len(rows) - 1 >= 1
    ids = [r[0] for r in rows[1:]]
    assert "A" in ids and "B" not in ids and "D" not in ids
    a = rows[1 + ids.index("A")]
    assert a[rows[0].index("12-month risk: emergency admission (%)")] == "35.0"


def test_filter_choices_come_from_scope(worklist: Engine) -> None:
    choices = filter_choices(worklist, P001)
    assert "ckd" in choices["conditions"] and "ibuprofen" in choices["drugs"]
    assert filter_choices(worklist, Scope(frozenset())) == {"conditions": [], "drugs": []}
