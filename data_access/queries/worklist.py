"""The GP worklist: one page of ``worklist_entry`` rows, filtered and sorted on the server.

Why it is built this way:
- The worklist is the hottest query of the product and must stay fast at 100,000 patients, so it reads only the
  materialised ``worklist_entry`` table (one row per patient, rebuilt by ``data_access.worklist_build``) and never
  joins the clinical tables.
- Sort and filter column ids come from the browser (AG Grid's ``sortModel`` and ``filterModel``); they are looked
  up in ``COLUMNS``, a whitelist of schema columns. Anything not in it is ignored, never turned into SQL.
- Every ORDER BY ends with ``patient_id`` (unique), so the blocks the infinite row model requests never overlap
  or skip rows when many patients share a value.
- Percentages travel to the browser as percent (0-100) because that is what people type into a filter; they are
  stored as fractions (0-1), so ``Column.scale`` converts both ways.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlencode

from sqlalchemy import ColumnElement, Connection, Engine, Select, and_, exists, func, literal, or_, select

from data_access.queries.connection import connected
from data_access.queries.csv_safety import spreadsheet_safe_text as _csv_safe
from data_access.queries.reviews import hidden_patients_select, hidden_review_condition, review_cells
from data_access.queries.scope import Scope
from data_access.schema import Review, WorklistEntry

OUTCOMES = ("emergency_admission", "fall_fracture", "medication_harm", "death")
OUTCOME_LABELS = {
    "emergency_admission": "Emergency admission",
    "fall_fracture": "Fall or fracture",
    "medication_harm": "Medication harm",
    "death": "Death",
}

# A rise of at least 5 percentage points in 12-month risk over 6 months marks a patient as "rising risk". The
# threshold is a product choice (about the size of the model's typical uncertainty band), not a published cut-off.
RISING_RISK_CHANGE = 0.05

# The three multimorbidity groups the DynAIRx protocol targets for Structured Medication Reviews:
# Walker LE et al. The DynAIRx Project Protocol. J Multimorb Comorb 2022;12:26335565221145493.
COHORTS = {
    "mental_physical": "Mental and physical health conditions",
    "complex_polypharmacy": "4 or more long-term conditions and 10 or more medicines",
    "frailty": "Moderate or severe frailty (eFI)",
}
ORDERS = {"why_now": "Why now (changes since last review)", "risk": "Highest risk first"}

MAX_BLOCK_ROWS = 500
EXPORT_MAX_ROWS = 200_000


@dataclass(frozen=True)
class Column:
    """One whitelisted worklist column: how the browser names it, where it lives, how to filter it."""

    id: str
    label: str
    expression: ColumnElement[Any]
    kind: str  # "number" | "text" | "date"
    scale: float = 1.0  # stored value × scale = value shown (fraction → percent)
    sortable: bool = True


def _risk_column(outcome: str) -> Column:
    return Column(
        id=f"risk_{outcome}",
        label=f"12-month risk: {OUTCOME_LABELS[outcome].lower()} (%)",
        expression=WorklistEntry.__table__.c[f"risk_{outcome}"],
        kind="number",
        scale=100.0,
    )


# Core columns, not the ORM attributes: building expressions from them costs a fraction of the ORM's per-operation
# overhead, which matters on the hottest query of the product (a few ms per block request).
_WL = WorklistEntry.__table__.c
COLUMNS: dict[str, Column] = {
    c.id: c
    for c in (
        Column("patient_id", "Patient", _WL.patient_id, "text"),
        Column("age", "Age (years)", _WL.age, "number"),
        Column("sex", "Sex", _WL.sex, "text"),
        Column("ltc_count", "Long-term conditions", _WL.ltc_count, "number"),
        Column("medicines_count", "Medicines", _WL.medicines_count, "number"),
        Column("efi", "eFI", _WL.efi, "number"),
        Column("efi_category", "Frailty (eFI category)", _WL.efi_category, "text"),
        Column("acb", "ACB score", _WL.acb, "number"),
        Column("cms", "CMS", _WL.cms, "number"),
        *(_risk_column(outcome) for outcome in OUTCOMES),
        Column(
            "risk_change_6m", "Change in risk over 6 months (points)", _WL.risk_change_6m, "number", 100.0
        ),
        Column("flags_high", "High-severity flags", _WL.flags_high, "number"),
        Column("flags_moderate", "Moderate flags", _WL.flags_moderate, "number"),
        Column("flags_low", "Low flags", _WL.flags_low, "number"),
        Column("last_review", "Last medication review", _WL.last_review, "date"),
        Column("last_discharge", "Last emergency admission", _WL.last_discharge, "date"),
        Column("why", "Why on the list", _WL.why, "text", sortable=False),
        Column("why_now_score", "Why-now score", _WL.why_now_score, "number"),
    )
}

# Columns written to the CSV export, in order (every one is in COLUMNS).
EXPORT_COLUMNS = (
    "patient_id",
    "age",
    "sex",
    "ltc_count",
    "medicines_count",
    "efi_category",
    "efi",
    "acb",
    "cms",
    *(f"risk_{o}" for o in OUTCOMES),
    "risk_change_6m",
    "flags_high",
    "flags_moderate",
    "flags_low",
    "last_review",
    "why",
)

_KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_\- ]{0,63}$")


@dataclass(frozen=True)
class WorklistFilters:
    """The quick filters and ordering of the worklist page; also its URL query-string state."""

    cohorts: tuple[str, ...] = ()
    high_severity_flag: bool = False
    rising_only: bool = False
    risk_outcome: str = "emergency_admission"
    risk_min_percent: float | None = None
    condition: str | None = None
    drug: str | None = None
    order: str = "why_now"
    # Patients reviewed (not yet due again) or snoozed through the SMR workflow are hidden unless this is set
    # (data_access.queries.reviews explains the states).
    show_reviewed: bool = False

    def normalised(self) -> WorklistFilters:
        """Drop anything not on the whitelist (values arrive from the URL and the browser)."""
        risk_min = self.risk_min_percent
        if risk_min is not None and not 0 <= risk_min <= 100:
            risk_min = None
        return replace(
            self,
            cohorts=tuple(c for c in dict.fromkeys(self.cohorts) if c in COHORTS),
            risk_outcome=self.risk_outcome if self.risk_outcome in OUTCOMES else "emergency_admission",
            risk_min_percent=risk_min,
            condition=self.condition if self.condition and _KEY_PATTERN.match(self.condition) else None,
            drug=self.drug if self.drug and _KEY_PATTERN.match(self.drug) else None,
            order=self.order if self.order in ORDERS else "why_now",
        )

    def to_query_string(self) -> str:
        """The filter state as a URL query string ('' when everything is at its default), for deep links."""
        params: list[tuple[str, str]] = [("cohort", c) for c in self.cohorts]
        if self.high_severity_flag:
            params.append(("high_flag", "1"))
        if self.rising_only:
            params.append(("rising", "1"))
        if self.risk_min_percent is not None:
            params.append(("risk_outcome", self.risk_outcome))
            params.append(("risk_min", f"{self.risk_min_percent:g}"))
        if self.condition:
            params.append(("condition", self.condition))
        if self.drug:
            params.append(("drug", self.drug))
        if self.order != "why_now":
            params.append(("order", self.order))
        if self.show_reviewed:
            params.append(("show_reviewed", "1"))
        return "?" + urlencode(params) if params else ""

    @classmethod
    def from_controls(
        cls,
        cohorts: Sequence[str] | None,
        high_flag: bool | None,
        rising: bool | None,
        risk_outcome: str | None,
        risk_min: float | str | None,
        condition: str | None,
        drug: str | None,
        order: str | None,
        show_reviewed: bool | None = False,
    ) -> WorklistFilters:
        """The filters the page's controls describe (empty or malformed values mean 'no filter')."""
        try:
            risk_min_value = float(risk_min) if risk_min not in (None, "") else None
        except (TypeError, ValueError):
            risk_min_value = None
        return cls(
            cohorts=tuple(cohorts or ()),
            high_severity_flag=bool(high_flag),
            rising_only=bool(rising),
            risk_outcome=risk_outcome or "emergency_admission",
            risk_min_percent=risk_min_value,
            condition=condition or None,
            drug=drug or None,
            order=order or "why_now",
            show_reviewed=bool(show_reviewed),
        ).normalised()

    @classmethod
    def from_query_string(cls, query: str | Mapping[str, Any] | None) -> WorklistFilters:
        """Parse a query string (or Dash's page kwargs) leniently: unknown or malformed values are ignored."""
        if query is None:
            return cls()
        if isinstance(query, str):
            values: dict[str, list[str]] = parse_qs(query.lstrip("?"))
        else:
            values = {k: (list(v) if isinstance(v, list | tuple) else [str(v)]) for k, v in query.items()}

        def first(name: str) -> str | None:
            items = values.get(name) or []
            return items[0] if items else None

        risk_min: float | None
        try:
            risk_min = float(first("risk_min")) if first("risk_min") is not None else None
        except ValueError:
            risk_min = None
        return cls(
            cohorts=tuple(values.get("cohort", [])),
            high_severity_flag=first("high_flag") == "1",
            rising_only=first("rising") == "1",
            risk_outcome=first("risk_outcome") or "emergency_admission",
            risk_min_percent=risk_min,
            condition=first("condition"),
            drug=first("drug"),
            order=first("order") or "why_now",
            show_reviewed=first("show_reviewed") == "1",
        ).normalised()


@dataclass(frozen=True)
class GridRequest:
    """AG Grid's infinite-row-model block request (startRow, endRow, sortModel, filterModel)."""

    start_row: int = 0
    end_row: int = 100
    sort_model: tuple[Mapping[str, Any], ...] = ()
    filter_model: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_ag_grid(cls, request: Mapping[str, Any] | None) -> GridRequest:
        request = request if isinstance(request, Mapping) else {}
        start = max(0, _row_number(request.get("startRow"), 0))
        end = _row_number(request.get("endRow"), start + 100)
        end = min(max(end, start + 1), start + MAX_BLOCK_ROWS)
        sort_model = request.get("sortModel")
        filter_model = request.get("filterModel")
        return cls(
            start_row=start,
            end_row=end,
            sort_model=tuple(m for m in sort_model if isinstance(m, Mapping))
            if isinstance(sort_model, list)
            else (),
            filter_model=dict(filter_model) if isinstance(filter_model, Mapping) else {},
        )


MAX_ROW_NUMBER = 10_000_000


def _row_number(value: Any, default: int) -> int:
    """A row index from the browser: whole numbers only, clamped; anything else (a forged string, a dict, 1e9 as a
    float) falls back to ``default`` rather than reaching the database or raising."""
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return min(max(value, 0), MAX_ROW_NUMBER)


@dataclass(frozen=True)
class WorklistPage:
    rows: list[dict[str, Any]]
    total: int


def filter_conditions(
    filters: WorklistFilters, filter_model: Mapping[str, Any] | None = None, today: date | None = None
) -> list[ColumnElement[bool]]:
    """WHERE conditions for the quick filters and AG Grid's column filters (unknown columns are ignored).

    ``today`` (default: the wall clock) judges the SMR workflow's states, which are real actions in real time.
    """
    f = filters.normalised()
    conditions: list[ColumnElement[bool]] = []
    if not f.show_reviewed:
        conditions.append(_WL.patient_id.not_in(_hidden_patients(today or date.today())))
    for cohort in f.cohorts:
        conditions.append(_cohort_condition(cohort))
    if f.high_severity_flag:
        conditions.append(_WL.flags_high > 0)
    if f.rising_only:
        conditions.append(_WL.risk_change_6m >= RISING_RISK_CHANGE)
    if f.risk_min_percent is not None:
        conditions.append(COLUMNS[f"risk_{f.risk_outcome}"].expression >= f.risk_min_percent / 100.0)
    if f.condition:
        conditions.append(_in_joined_list(_WL.condition_keys, f.condition))
    if f.drug:
        conditions.append(_in_joined_list(_WL.active_drugs, f.drug))
    for column_id, model in (filter_model or {}).items():
        column = COLUMNS.get(column_id)
        if column is None or not isinstance(model, Mapping):
            continue
        condition = _column_filter(column, model)
        if condition is not None:
            conditions.append(condition)
    return conditions


@lru_cache(maxsize=4)
def _hidden_patients(today: date) -> Select:
    # The statement depends only on the day; building it is the slowest part of a block request, so reuse it.
    return hidden_patients_select(today)


def _cohort_condition(cohort: str) -> ColumnElement[bool]:
    if cohort == "mental_physical":
        return _WL.mental_and_physical.is_(True)
    if cohort == "complex_polypharmacy":
        return and_(_WL.ltc_count >= 4, _WL.medicines_count >= 10)
    return _WL.efi_category.in_(("moderate", "severe"))


def _in_joined_list(column: ColumnElement[str], key: str) -> ColumnElement[bool]:
    # Lists are stored ';'-joined; wrapping both sides in ';' matches whole keys only ("ace" never matches "aceclofenac").
    return (literal(";") + column + literal(";")).contains(f";{key};", autoescape=True)


_NUMBER_OPS = {
    "equals": lambda c, v: c == v,
    "notEqual": lambda c, v: c != v,
    "greaterThan": lambda c, v: c > v,
    "greaterThanOrEqual": lambda c, v: c >= v,
    "lessThan": lambda c, v: c < v,
    "lessThanOrEqual": lambda c, v: c <= v,
}


def _column_filter(column: Column, model: Mapping[str, Any]) -> ColumnElement[bool] | None:
    if "conditions" in model and isinstance(model.get("conditions"), list):
        parts = [
            p
            for p in (_column_filter(column, m) for m in model["conditions"] if isinstance(m, Mapping))
            if p is not None
        ]
        if not parts:
            return None
        return or_(*parts) if str(model.get("operator", "AND")).upper() == "OR" else and_(*parts)
    kind = model.get("type")
    expression = column.expression
    if kind == "blank":
        return expression.is_(None)
    if kind == "notBlank":
        return expression.is_not(None)
    if column.kind == "number":
        return _number_filter(column, kind, model)
    if column.kind == "text":
        return _text_filter(expression, kind, model.get("filter"))
    return _date_filter(expression, kind, model)


def _number_filter(column: Column, kind: Any, model: Mapping[str, Any]) -> ColumnElement[bool] | None:
    value = _as_float(model.get("filter"))
    if value is None:
        return None
    value /= column.scale
    if kind == "inRange":
        upper = _as_float(model.get("filterTo"))
        if upper is None:
            return None
        return column.expression.between(value, upper / column.scale)
    op = _NUMBER_OPS.get(str(kind))
    return op(column.expression, value) if op else None


def _text_filter(expression: ColumnElement[Any], kind: Any, value: Any) -> ColumnElement[bool] | None:
    if not isinstance(value, str) or not value:
        return None
    value = value[:100]
    lowered = func.lower(expression)
    needle = value.lower()
    if kind == "equals":
        return lowered == needle
    if kind == "notEqual":
        return lowered != needle
    if kind == "startsWith":
        return lowered.startswith(needle, autoescape=True)
    if kind == "endsWith":
        return lowered.endswith(needle, autoescape=True)
    if kind == "notContains":
        return ~lowered.contains(needle, autoescape=True)
    return lowered.contains(needle, autoescape=True)


def _date_filter(
    expression: ColumnElement[Any], kind: Any, model: Mapping[str, Any]
) -> ColumnElement[bool] | None:
    start = _as_date(model.get("dateFrom"))
    if start is None:
        return None
    if kind == "inRange":
        end = _as_date(model.get("dateTo"))
        return expression.between(start, end) if end else None
    op = _NUMBER_OPS.get(str(kind))
    return op(expression, start) if op else None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _as_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def order_by(
    filters: WorklistFilters, sort_model: Sequence[Mapping[str, Any]] = ()
) -> list[ColumnElement[Any]]:
    """ORDER BY terms: the grid's sort model when given (whitelisted), else the page's ordering; NULLs last;
    always ending with the unique patient id."""
    terms: list[ColumnElement[Any]] = []
    for item in sort_model:
        column = COLUMNS.get(str(item.get("colId")))
        if column is None or not column.sortable or column.id == "patient_id":
            continue
        direction = item.get("sort")
        if direction == "asc":
            terms.append(column.expression.asc().nulls_last())
        elif direction == "desc":
            terms.append(column.expression.desc().nulls_last())
    if not terms:
        f = filters.normalised()
        if f.order == "risk":
            terms.append(COLUMNS[f"risk_{f.risk_outcome}"].expression.desc().nulls_last())
        else:
            terms.append(_WL.why_now_score.desc())
    terms.append(_WL.patient_id.asc())
    return terms


# The columns a grid row is made of (row_for_grid): fetching only these keeps result processing, the largest cost
# of a block request after the SQL itself, proportionate.
GRID_COLUMNS = tuple(
    _WL[name]
    for name in (
        "patient_id",
        "age",
        "sex",
        "ltc_count",
        "medicines_count",
        "efi",
        "efi_category",
        "acb",
        "cms",
        *(f"risk_{o}" for o in OUTCOMES),
        "risk_change_6m",
        "flags_high",
        "flags_moderate",
        "flags_low",
        "last_review",
        "why",
        "why_now_score",
    )
)


def worklist_select(
    scope: Scope,
    filters: WorklistFilters,
    grid: GridRequest | None = None,
    columns: Sequence[ColumnElement[Any]] | None = None,
) -> Select:
    """The SELECT of one worklist block (also used by the benchmark to time the bare SQL)."""
    grid = grid or GridRequest()
    query = select(*(columns or GRID_COLUMNS)).where(
        scope.clause(_WL.practice_id), *filter_conditions(filters, grid.filter_model)
    )
    return (
        query.order_by(*order_by(filters, grid.sort_model))
        .limit(grid.end_row - grid.start_row)
        .offset(grid.start_row)
    )


def worklist_count_select(scope: Scope, filters: WorklistFilters, grid: GridRequest | None = None) -> Select:
    grid = grid or GridRequest()
    return (
        select(func.count())
        .select_from(WorklistEntry.__table__)
        .where(scope.clause(_WL.practice_id), *filter_conditions(filters, grid.filter_model))
    )


def hidden_count_select(
    scope: Scope, filters: WorklistFilters, grid: GridRequest | None = None, today: date | None = None
) -> Select:
    """How many of the patients that ``filters`` select in ``scope`` the SMR workflow hides (reviewed, snoozed)."""
    grid = grid or GridRequest()
    shown = replace(filters, show_reviewed=True)
    in_view = exists().where(
        _WL.patient_id == Review.patient_id,
        scope.clause(_WL.practice_id),
        *filter_conditions(shown, grid.filter_model),
    )
    return (
        select(func.count())
        .select_from(Review)
        .where(hidden_review_condition(today or date.today()), in_view)
    )


def worklist_page(
    conn: Connection | Engine, scope: Scope, filters: WorklistFilters, grid: GridRequest | None = None
) -> WorklistPage:
    """One block of the worklist (rows shaped for the grid) and the total number of matching patients."""
    grid = grid or GridRequest()
    with connected(conn) as connection:
        if filters.show_reviewed:
            total = connection.execute(worklist_count_select(scope, filters, grid)).scalar_one()
        else:
            # All minus the hidden: the database counts a practice from its index alone and looks up only the few
            # hidden patients, where a NOT IN would read every row (at 100,000 patients ~5 ms instead of ~40 ms).
            shown = replace(filters, show_reviewed=True)
            total = connection.execute(worklist_count_select(scope, shown, grid)).scalar_one()
            total -= connection.execute(hidden_count_select(scope, filters, grid)).scalar_one()
        entries = [r._mapping for r in connection.execute(worklist_select(scope, filters, grid))]
        reviews = review_cells(connection, scope, {e["patient_id"]: e["last_review"] for e in entries})
    rows = [row_for_grid(e) | reviews.get(e["patient_id"], {}) for e in entries]
    return WorklistPage(rows=rows, total=int(total))


def row_for_grid(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A worklist_entry row as the grid shows it: percentages, UK dates, a rising-risk marker."""
    row: dict[str, Any] = {
        "patient_id": entry["patient_id"],
        "age": entry["age"],
        "sex": entry["sex"],
        "ltc_count": entry["ltc_count"],
        "medicines_count": entry["medicines_count"],
        "efi": _round(entry["efi"], 2),
        "efi_category": (entry["efi_category"] or "").capitalize() or None,
        "acb": _round(entry["acb"], 0),
        "cms": _round(entry["cms"], 2),
        "flags_high": entry["flags_high"],
        "flags_moderate": entry["flags_moderate"],
        "flags_low": entry["flags_low"],
        "flags_summary": flags_summary(entry["flags_high"], entry["flags_moderate"], entry["flags_low"]),
        "last_review": format_uk_date(entry["last_review"]) if entry["last_review"] else "None recorded",
        "why": entry["why"] or "",
        "why_now_score": _round(entry["why_now_score"], 2),
    }
    for outcome in OUTCOMES:
        row[f"risk_{outcome}"] = _percent(entry[f"risk_{outcome}"])
    change = entry["risk_change_6m"]
    row["risk_change_6m"] = _percent(change)
    row["rising"] = bool(change is not None and change >= RISING_RISK_CHANGE)
    return row


def flags_summary(high: int, moderate: int, low: int) -> str:
    """'2 high · 1 moderate' (empty when there are no active flags)."""
    parts = [f"{n} {label}" for n, label in ((high, "high"), (moderate, "moderate"), (low, "low")) if n]
    return " · ".join(parts)


def format_uk_date(value: date | str | None) -> str:
    """A date in the UK style used across the product, e.g. '01 Dec 2026' ('' for none)."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return value.strftime("%d %b %Y")


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100.0, 1)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def sort_model_from_column_state(
    column_state: Sequence[Mapping[str, Any]] | None,
) -> tuple[dict[str, Any], ...]:
    """AG Grid's column state → its sortModel (by sortIndex), so an export keeps the on-screen order."""
    sorted_columns = [c for c in column_state or [] if c.get("sort") in ("asc", "desc")]
    sorted_columns.sort(key=lambda c: c.get("sortIndex") or 0)
    return tuple({"colId": c.get("colId"), "sort": c.get("sort")} for c in sorted_columns)


def worklist_csv(
    conn: Connection | Engine,
    scope: Scope,
    filters: WorklistFilters,
    grid: GridRequest | None = None,
    max_rows: int = EXPORT_MAX_ROWS,
) -> tuple[str, int]:
    """The filtered, sorted worklist as CSV text (plain-English headers, percent risks); returns (csv, rows)."""
    grid = grid or GridRequest()
    export_grid = replace(grid, start_row=0, end_row=max_rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([COLUMNS[c].label for c in EXPORT_COLUMNS])
    count = 0
    with connected(conn) as connection:
        for record in connection.execute(worklist_select(scope, filters, export_grid)):
            entry = record._mapping
            values = []
            for column_id in EXPORT_COLUMNS:
                value = entry[column_id]
                if value is None:
                    values.append("")
                elif column_id.startswith("risk_"):
                    values.append(f"{value * 100:.1f}")
                elif column_id == "last_review":
                    values.append(format_uk_date(value))
                else:
                    values.append(_csv_safe(value))
            writer.writerow(values)
            count += 1
    return buffer.getvalue(), count


def filter_choices(conn: Connection | Engine, scope: Scope) -> dict[str, list[str]]:
    """The condition and drug keys present on the scope's worklist (for the quick-filter dropdowns)."""
    query = select(_WL.condition_keys, _WL.active_drugs).where(scope.clause(_WL.practice_id))
    conditions: set[str] = set()
    drugs: set[str] = set()
    with connected(conn) as connection:
        for condition_keys, active_drugs in connection.execute(query):
            conditions.update(k for k in (condition_keys or "").split(";") if k)
            drugs.update(k for k in (active_drugs or "").split(";") if k)
    return {"conditions": sorted(conditions), "drugs": sorted(drugs)}
