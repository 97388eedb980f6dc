"""The worklist query's pure parts: URL filter state, the sort/filter whitelist, row shaping and CSV safety."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from data_access.queries.scope import Scope
from data_access.queries.worklist import (
    MAX_BLOCK_ROWS,
    GridRequest,
    WorklistFilters,
    _csv_safe,
    filter_conditions,
    flags_summary,
    format_uk_date,
    order_by,
    row_for_grid,
    sort_model_from_column_state,
    worklist_select,
)

SQLITE = sqlite.dialect()


def _sql(statement, dialect=SQLITE) -> str:  # noqa: ANN001
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def test_filters_round_trip_through_the_query_string() -> None:
    filters = WorklistFilters(
        cohorts=("frailty", "mental_physical"),
        high_severity_flag=True,
        rising_only=True,
        risk_outcome="fall_fracture",
        risk_min_percent=20,
        condition="heart_failure",
        drug="alendronic acid",
        order="risk",
    )
    text = filters.to_query_string()
    assert text.startswith("?cohort=frailty&cohort=mental_physical")
    assert WorklistFilters.from_query_string(text) == filters
    assert WorklistFilters().to_query_string() == ""


def test_dash_page_kwargs_are_accepted() -> None:
    # Dash passes one value as a string and repeated values as a list.
    parsed = WorklistFilters.from_query_string({"cohort": ["frailty", "mental_physical"], "high_flag": "1"})
    assert parsed.cohorts == ("frailty", "mental_physical") and parsed.high_severity_flag


@pytest.mark.parametrize(
    "query",
    [
        "?cohort=everyone&cohort=frailty",
        "?risk_min=500",
        "?risk_min=abc",
        "?risk_outcome=lottery",
        "?order=random()",
        "?condition=x%27%20OR%201%3D1",
        "?drug=" + "a" * 200,
    ],
)
def test_malformed_values_are_dropped_not_trusted(query: str) -> None:
    filters = WorklistFilters.from_query_string(query)
    assert set(filters.cohorts) <= {"frailty"}
    assert filters.risk_min_percent is None
    assert filters.risk_outcome == "emergency_admission"
    assert filters.order == "why_now"
    assert filters.condition is None and filters.drug is None


def test_from_controls_reads_the_page_controls() -> None:
    filters = WorklistFilters.from_controls(["frailty"], True, None, "death", "15", "*", "ibuprofen", None)
    assert filters.cohorts == ("frailty",) and filters.high_severity_flag and not filters.rising_only
    assert filters.risk_outcome == "death" and filters.risk_min_percent == 15.0
    assert filters.condition is None  # '*' is the select's "any"
    assert filters.drug == "ibuprofen" and filters.order == "why_now"
    assert (
        WorklistFilters.from_controls(None, None, None, None, "nonsense", None, None, None).risk_min_percent
        is None
    )


def test_grid_request_caps_the_block_size() -> None:
    request = GridRequest.from_ag_grid({"startRow": 100, "endRow": 1_000_000})
    assert request.end_row - request.start_row == MAX_BLOCK_ROWS
    assert GridRequest.from_ag_grid(None) == GridRequest(0, 100)
    assert GridRequest.from_ag_grid({"startRow": -5, "endRow": -1}).start_row == 0


def test_order_by_uses_the_whitelist_and_ends_with_the_patient_id() -> None:
    terms = order_by(
        WorklistFilters(),
        [
            {"colId": "age", "sort": "asc"},
            {"colId": "id; DROP TABLE patient", "sort": "desc"},
            {"colId": "why"},
        ],
    )
    rendered = [_sql(t) for t in terms]
    assert rendered[0].startswith("worklist_entry.age ASC")
    assert rendered[-1] == "worklist_entry.patient_id ASC"
    assert len(rendered) == 2  # the unknown column and the unsortable 'why' are ignored
    default = [_sql(t) for t in order_by(WorklistFilters(order="risk", risk_outcome="death"))]
    assert default[0].startswith("worklist_entry.risk_death DESC")


def test_filter_model_maps_percent_and_ignores_unknown_columns() -> None:
    conditions = filter_conditions(
        WorklistFilters(show_reviewed=True),
        {
            "risk_death": {"filterType": "number", "type": "greaterThan", "filter": 20},
            "age": {
                "filterType": "number",
                "operator": "OR",
                "conditions": [{"type": "lessThan", "filter": 30}, {"type": "greaterThan", "filter": 90}],
            },
            "why": {"filterType": "text", "type": "contains", "filter": "50%_off"},
            "last_review": {"filterType": "date", "type": "lessThan", "dateFrom": "2025-01-01 00:00:00"},
            "password_hash": {"filterType": "text", "type": "contains", "filter": "x"},
            "age_bad": "not a model",
        },
    )
    text = " AND ".join(_sql(c) for c in conditions)
    assert "worklist_entry.risk_death > 0.2" in text
    assert "worklist_entry.age < 30.0 OR worklist_entry.age > 90.0" in text
    assert "ESCAPE" in text and "50/%/_off" in text  # LIKE wildcards from the browser are escaped
    assert "worklist_entry.last_review < '2025-01-01'" in text
    assert "password" not in text


def test_quick_filters_compile_on_both_back_ends() -> None:
    filters = WorklistFilters(
        cohorts=("mental_physical", "complex_polypharmacy", "frailty"),
        high_severity_flag=True,
        rising_only=True,
        risk_min_percent=30,
        condition="ckd",
        drug="ibuprofen",
    )
    statement = worklist_select(Scope.practices("P1"), filters, GridRequest(0, 50))
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        text = _sql(statement, dialect)
        assert "worklist_entry.ltc_count >= 4 AND worklist_entry.medicines_count >= 10" in text
        assert "worklist_entry.efi_category IN ('moderate', 'severe')" in text
        assert "';ckd;'" in text and "';ibuprofen;'" in text
        assert "worklist_entry.practice_id IN ('P1')" in text
        assert "LIMIT 50" in text


def test_row_for_grid_formats_for_people() -> None:
    entry = {
        "patient_id": "P-1",
        "age": 80,
        "sex": "F",
        "ltc_count": 5,
        "medicines_count": 11,
        "efi": 0.3123,
        "efi_category": "moderate",
        "acb": 3.0,
        "cms": 2.456,
        "flags_high": 1,
        "flags_moderate": 2,
        "flags_low": 0,
        "last_review": dt.date(2026, 12, 1),
        "why": "New: STOPP",
        "why_now_score": 5.12345,
        "risk_emergency_admission": 0.2349,
        "risk_fall_fracture": None,
        "risk_medication_harm": 0.01,
        "risk_death": 0.0,
        "risk_change_6m": 0.06,
    }
    row = row_for_grid(entry)
    assert row["risk_emergency_admission"] == 23.5 and row["risk_fall_fracture"] is None
    assert row["risk_change_6m"] == 6.0 and row["rising"] is True
    assert row["last_review"] == "01 Dec 2026" and row["efi_category"] == "Moderate"
    assert row["flags_summary"] == "1 high · 2 moderate"


def test_small_formatters() -> None:
    assert format_uk_date("2026-12-01") == "01 Dec 2026" and format_uk_date(None) == ""
    assert flags_summary(0, 0, 0) == "" and flags_summary(0, 0, 3) == "3 low"
    assert _csv_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)" and _csv_safe("-2") == "'-2" and _csv_safe(5) == 5


def test_sort_model_from_column_state_keeps_the_sort_order() -> None:
    state = [
        {"colId": "age", "sort": "asc", "sortIndex": 1},
        {"colId": "risk_death", "sort": "desc", "sortIndex": 0},
        {"colId": "sex", "sort": None},
    ]
    assert sort_model_from_column_state(state) == (
        {"colId": "risk_death", "sort": "desc"},
        {"colId": "age", "sort": "asc"},
    )
    assert sort_model_from_column_state(None) == ()


def test_scope_clause_fails_closed() -> None:
    from data_access.schema import WorklistEntry

    assert _sql(Scope(frozenset()).clause(WorklistEntry.practice_id)) in ("0", "0 = 1", "false")
    assert _sql(Scope.everything().clause(WorklistEntry.practice_id)) in ("1", "1 = 1", "true")
    assert Scope.practices("B", "A").cache_key() == "A,B" and Scope.everything().cache_key() == "*"
