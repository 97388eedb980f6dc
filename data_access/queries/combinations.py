"""Flagged combinations across a population (pharmacists): which rules hold, with which medicines, for how many.

A *combination* is one safety rule with the medicines it named (a flag's ``rule_id`` and ``drugs``): "DDI warfarin
with naproxen" and "DDI warfarin with ibuprofen" are two combinations of one rule, because a pharmacist acts on the
medicines. For START omissions ``drugs`` is the class to start, as the engine reports it.

Why it is built this way:
- Counts are read once per scope, per practice (``combination_counts_by_practice``: distinct patients add up
  across practices, since a patient belongs to one); the page's filters (rule family, severity, drug, drug class,
  practice) are applied in memory to that small table, so changing a filter never re-reads the flags. The page
  caches it per scope.
- "Now" is the data cut (``data_access.derive.data_cut_date``), never the wall clock: a flag is active now when its
  period covers the cut and the patient is alive and registered then; new = a period that started in the 30 days
  up to and including the cut.
- Rule metadata (title, source, severity, family) comes from ``clinical.rules.load_rules()``, the one home of the
  published criteria; the families map onto the page's rule groups in ``RULE_GROUPS``.
- Drill-down rows (patients with a combination) are paged on the server with whitelisted sort columns, like the
  worklist, and end every ORDER BY with the unique patient id.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import polars as pl
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    case,
    func,
    or_,
    select,
)

from data_access.queries.connection import connected
from data_access.queries.csv_safety import spreadsheet_safe_text as _csv_safe
from data_access.queries.scope import Scope
from data_access.schema import Flag, Patient, Practice, WorklistEntry

NEW_DAYS = 30
MAX_BLOCK_ROWS = 500
EXPORT_MAX_ROWS = 100_000
HEATMAP_DEFAULT_CLASSES = 20

# The page's rule groups (the families). STOPPFrail is STOPP for people near the end of life, so it sits
# with STOPP/START. "Monitoring overdue" is a cross-cutting group: every rule that fires on a *missing* laboratory
# test (``lab_missing``), which includes the PINCER monitoring indicators (MO_P13 to MO_P18); such a rule is in
# both its family's group and this one.
RULE_GROUPS: dict[str, str] = {
    "stopp_start": "STOPP/START (including STOPPFrail)",
    "pincer": "PINCER",
    "ddi": "Drug–drug interaction (DDI)",
    "acb": "Anticholinergic burden (ACB)",
    "monitoring": "Monitoring overdue",
    "cascade": "Prescribing cascade",
    "aki": "Acute kidney injury (sick-day rules)",
}
FAMILY_GROUPS: dict[str, str] = {
    "STOPP": "stopp_start",
    "START": "stopp_start",
    "STOPPFrail": "stopp_start",
    "PINCER": "pincer",
    "DDI": "ddi",
    "ACB": "acb",
    "CASCADE": "cascade",
    "AKI": "aki",
}
SEVERITIES = ("high", "moderate", "low")
SEVERITY_ORDER = {"high": 0, "moderate": 1, "low": 2}
STATUSES = {"active": "Active now", "new": f"New in the last {NEW_DAYS} days", "ever": "Ever"}
_KEY = re.compile(r"^[a-z0-9][a-z0-9_\- ]{0,63}$")
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.+]{0,63}$")


# -- rule metadata ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleInfo:
    """What the page shows about a rule, from the installed rule files."""

    id: str
    family: str
    groups: tuple[str, ...]
    source: str
    title: str
    severity: str
    evidence: str
    recommendation: str


def _names_missing_lab(when: Any) -> bool:
    """Whether a rule's criteria (at any depth) fire on a missing laboratory test."""
    if when.lab_missing:
        return True
    return any(_names_missing_lab(child) for child in (*when.any_of, *when.all_of))


def _class_refs(when: Any) -> Iterable[str]:
    for requirement in when.drugs:
        yield from (r.removeprefix("class:") for r in requirement.refs if r.startswith("class:"))
    if when.cascade is not None:
        refs = (*when.cascade.index, *when.cascade.marker)
        yield from (r.removeprefix("class:") for r in refs if r.startswith("class:"))
    for child in (*when.any_of, *when.all_of):
        yield from _class_refs(child)


def rule_catalogue_from(rules: Iterable[Any]) -> dict[str, RuleInfo]:
    """Rule id → ``RuleInfo`` for rules of ``clinical.rules`` (separate from loading, for tests)."""
    out: dict[str, RuleInfo] = {}
    for rule in rules:
        groups = [FAMILY_GROUPS.get(rule.family, rule.family.lower())]
        if _names_missing_lab(rule.when):
            groups.append("monitoring")
        out[rule.id] = RuleInfo(
            id=rule.id,
            family=rule.family,
            groups=tuple(groups),
            source=rule.source,
            title=rule.title,
            severity=rule.severity,
            evidence=rule.evidence,
            recommendation=rule.recommendation,
        )
    return out


@lru_cache(maxsize=1)
def rule_catalogue() -> dict[str, RuleInfo]:
    """The installed rules' metadata (``clinical.rules.load_rules()``)."""
    from clinical.rules import load_rules

    return rule_catalogue_from(load_rules().rules)


@lru_cache(maxsize=1)
def rule_class_ranking() -> tuple[str, ...]:
    """Drug classes ordered by how many safety rules name them (most first): the heat map's default rows, so it
    opens on the classes the published criteria care about rather than on the commonest prescriptions."""
    from collections import Counter

    from clinical.rules import load_rules

    counts: Counter[str] = Counter()
    for rule in load_rules().rules:
        counts.update(set(_class_refs(rule.when)))
    return tuple(key for key, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@lru_cache(maxsize=1)
def class_members() -> dict[str, frozenset[str]]:
    """Drug class key → member drug keys (``clinical/data/drug_classes.yaml`` via ``clinical.knowledge``)."""
    from clinical.knowledge import load_knowledge

    return {key: frozenset(members) for key, members in load_knowledge().class_members.items()}


# -- the combination table ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CombinationFilters:
    """The page's filters; every value is checked against a whitelist before use (values come from the browser)."""

    groups: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    drug: str | None = None
    drug_class: str | None = None
    practice_id: str | None = None

    def normalised(self) -> CombinationFilters:
        return CombinationFilters(
            groups=tuple(g for g in dict.fromkeys(self.groups) if g in RULE_GROUPS),
            severities=tuple(s for s in dict.fromkeys(self.severities) if s in SEVERITIES),
            drug=self.drug if self.drug and _KEY.match(self.drug) else None,
            drug_class=self.drug_class if self.drug_class and _KEY.match(self.drug_class) else None,
            practice_id=self.practice_id if self.practice_id and len(self.practice_id) <= 64 else None,
        )


def active_flag_condition(cut: dt.date) -> ColumnElement[bool]:
    """A flag period that covers ``cut``, of a patient alive and registered then (needs ``patient`` joined)."""
    return and_(
        Flag.start <= cut,
        or_(Flag.end.is_(None), Flag.end >= cut),
        registered_on(cut),
    )


def registered_on(cut: dt.date) -> ColumnElement[bool]:
    """The patient has neither died nor left the practice by ``cut``."""
    return and_(
        or_(Patient.died_on.is_(None), Patient.died_on > cut),
        or_(Patient.deregistered_on.is_(None), Patient.deregistered_on > cut),
    )


def _is_new(cut: dt.date) -> ColumnElement[bool]:
    return and_(Flag.start > cut - dt.timedelta(days=NEW_DAYS), Flag.start <= cut)


_COUNT_SCHEMA = {
    "rule_id": pl.String,
    "drugs": pl.String,
    "practice_id": pl.String,
    "flag_severity": pl.String,
    "ever": pl.Int64,
    "active_now": pl.Int64,
    "new_30d": pl.Int64,
}


def combination_counts_by_practice(conn: Connection | Engine, scope: Scope, cut: dt.date) -> pl.DataFrame:
    """Patients per (rule, drugs, practice) in ``scope``: ever, active now and new (columns of ``_COUNT_SCHEMA``).

    Why by practice and in polars: a patient belongs to one practice, so these distinct-patient counts add up
    across practices, and one table per scope serves every practice filter from memory. Grouping 600,000 flag
    periods by rule and drug list in SQLite takes 5 to 10 s (a temporary B-tree over text keys, and a patient lookup
    per row); reading the flags with their status worked out in SQL (no dates to convert) and the patients
    separately, then joining and counting in polars, takes about a third of that and is the same on Postgres.
    """
    flags = select(
        Flag.patient_id,
        Flag.rule_id,
        Flag.drugs,
        Flag.severity,
        case((or_(Flag.end.is_(None), Flag.end >= cut), 1), else_=0),
        case((_is_new(cut), 1), else_=0),
    ).where(Flag.start <= cut)
    if scope.practice_ids is not None:
        flags = flags.where(Flag.patient_id.in_(select(Patient.id).where(scope.clause(Patient.practice_id))))
    patients = select(Patient.id, Patient.practice_id, case((registered_on(cut), 1), else_=0)).where(
        scope.clause(Patient.practice_id)
    )
    with connected(conn) as connection:
        flag_rows = connection.execute(flags).all()
        patient_rows = connection.execute(patients).all()
    periods = pl.DataFrame(
        [tuple(r) for r in flag_rows],
        schema={
            "patient_id": pl.String,
            "rule_id": pl.String,
            "drugs": pl.String,
            "severity": pl.String,
            "open": pl.Int8,
            "new": pl.Int8,
        },
        orient="row",
    )
    people = pl.DataFrame(
        [tuple(r) for r in patient_rows],
        schema={"patient_id": pl.String, "practice_id": pl.String, "registered": pl.Int8},
        orient="row",
    )
    active = (pl.col("open") == 1) & (pl.col("registered") == 1)
    return (
        periods.join(people, on="patient_id", how="inner")
        .group_by("rule_id", "drugs", "practice_id")
        .agg(
            pl.col("severity").min().alias("flag_severity"),
            pl.col("patient_id").n_unique().alias("ever"),
            pl.col("patient_id").filter(active).n_unique().alias("active_now"),
            pl.col("patient_id").filter(pl.col("new") == 1).n_unique().alias("new_30d"),
        )
        .select(list(_COUNT_SCHEMA))
        .cast(_COUNT_SCHEMA)
    )


def counts_for_practice(by_practice: pl.DataFrame, practice_id: str | None = None) -> pl.DataFrame:
    """The combination table of one practice, or of every practice in the frame (counts summed: each patient
    belongs to one practice)."""
    chosen = by_practice.filter(pl.col("practice_id") == practice_id) if practice_id else by_practice
    return (
        chosen.group_by("rule_id", "drugs")
        .agg(
            pl.col("flag_severity").min(),
            pl.col("ever").sum(),
            pl.col("active_now").sum(),
            pl.col("new_30d").sum(),
        )
        .sort("rule_id", "drugs")
    )


def combination_counts(
    conn: Connection | Engine, scope: Scope, cut: dt.date, practice_id: str | None = None
) -> pl.DataFrame:
    """Every (rule, drugs) combination flagged in ``scope`` (and ``practice_id``) with patients active now, ever
    and new. Columns: rule_id, drugs, flag_severity, ever, active_now, new_30d (patients, each counted once)."""
    if practice_id is not None and scope.practice_ids is not None and practice_id not in scope.practice_ids:
        practice_scope = Scope(frozenset())
    else:
        practice_scope = Scope.practices(practice_id) if practice_id else scope
    return counts_for_practice(combination_counts_by_practice(conn, practice_scope, cut), practice_id)


def combination_key(rule_id: str, drugs: str) -> str:
    """One text key per combination (ids and drug keys never contain '|')."""
    return f"{rule_id}|{drugs}"


def parse_combination_key(key: Any) -> tuple[str, str] | None:
    """The (rule_id, drugs) of a key from the browser, or None when it is not a well-formed key."""
    if not isinstance(key, str) or "|" not in key or len(key) > 400:
        return None
    rule_id, drugs = key.split("|", 1)
    if not _RULE_ID.match(rule_id):
        return None
    if drugs and not all(_KEY.match(d) for d in drugs.split(";")):
        return None
    return rule_id, drugs


def combination_rows(
    counts: pl.DataFrame,
    filters: CombinationFilters,
    catalogue: Mapping[str, RuleInfo],
    members: Mapping[str, frozenset[str]],
) -> list[dict[str, Any]]:
    """The combination table as the page shows it: filtered, with rule metadata, most patients active first."""
    f = filters.normalised()
    class_drugs = members.get(f.drug_class, frozenset()) if f.drug_class else frozenset()
    rows: list[dict[str, Any]] = []
    for record in counts.iter_rows(named=True):
        info = catalogue.get(record["rule_id"])
        family = info.family if info else record["rule_id"].split("-", 1)[0]
        groups = info.groups if info else (FAMILY_GROUPS.get(family, family.lower()),)
        severity = info.severity if info else (record["flag_severity"] or "")
        drugs = [d for d in (record["drugs"] or "").split(";") if d]
        if f.groups and not set(groups) & set(f.groups):
            continue
        if f.severities and severity not in f.severities:
            continue
        if f.drug and f.drug not in drugs:
            continue
        if f.drug_class and not (f.drug_class in drugs or class_drugs.intersection(drugs)):
            continue
        rows.append(
            {
                "key": combination_key(record["rule_id"], record["drugs"] or ""),
                "rule_id": record["rule_id"],
                "family": family,
                "group": ", ".join(RULE_GROUPS.get(g, g) for g in groups),
                "title": info.title if info else "",
                "source": info.source if info else "",
                "severity": severity,
                "drugs": ", ".join(d.replace("_", " ") for d in drugs),
                "active_now": record["active_now"],
                "ever": record["ever"],
                "new_30d": record["new_30d"],
            }
        )
    rows.sort(
        key=lambda r: (
            -r["active_now"],
            SEVERITY_ORDER.get(r["severity"], 3),
            -r["ever"],
            r["rule_id"],
            r["key"],
        )
    )
    return rows


def combination_totals(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many combinations, and how many of them are active now (for the summary line)."""
    return {
        "combinations": len(rows),
        "active_combinations": sum(1 for r in rows if r["active_now"]),
    }


def drug_choices(counts: pl.DataFrame) -> list[str]:
    """The drug keys named by any combination (the drug filter's options)."""
    keys: set[str] = set()
    for drugs in counts["drugs"].to_list():
        keys.update(d for d in (drugs or "").split(";") if d)
    return sorted(keys)


def practice_choices(conn: Connection | Engine, scope: Scope) -> list[tuple[str, str]]:
    """(id, name) of the practices in ``scope`` that have patients."""
    query = (
        select(Practice.id, Practice.name)
        .where(scope.clause(Practice.id), Practice.id.in_(select(Patient.practice_id).distinct()))
        .order_by(Practice.name, Practice.id)
    )
    with connected(conn) as connection:
        return [(pid, name or pid) for pid, name in connection.execute(query)]


# -- co-prescription heat map ---------------------------------------------------------------------------------------


def active_drugs(conn: Connection | Engine, scope: Scope, practice_id: str | None = None) -> pl.DataFrame:
    """(patient_id, drug) for every active ingredient of every patient on the worklist in ``scope``.

    The worklist (``worklist_entry.active_drugs``) is the one materialised home of "what each patient takes now":
    ingredients of prescriptions active on its as-of date (the derived data's date, i.e. the data cut), for patients
    alive and registered then. Reading it is about thirty times faster at 100,000 patients than re-deriving it from
    the prescriptions (a million rows), and it matches the worklist's medicine filter exactly.
    """
    query = select(WorklistEntry.patient_id, WorklistEntry.active_drugs).where(
        scope.clause(WorklistEntry.practice_id), WorklistEntry.active_drugs != ""
    )
    if practice_id:
        query = query.where(WorklistEntry.practice_id == practice_id)
    with connected(conn) as connection:
        rows = connection.execute(query).all()
    frame = pl.DataFrame(
        [tuple(r) for r in rows], schema={"patient_id": pl.String, "joined": pl.String}, orient="row"
    )
    return (
        frame.select("patient_id", pl.col("joined").str.split(";").alias("drug"))
        .explode("drug")
        .filter(pl.col("drug").is_not_null() & (pl.col("drug") != ""))
        .unique()
    )


@dataclass(frozen=True)
class CoPrescription:
    """Patients with at least one active medicine of class ``row`` and one of class ``column``; the diagonal is the
    number of patients on the class at all."""

    classes: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    patients: int = 0
    on_any: dict[str, int] = field(default_factory=dict)


def patient_classes(drugs: pl.DataFrame, members: Mapping[str, frozenset[str]]) -> pl.DataFrame:
    """(patient_id, drug_class) for each class any of a patient's active drugs belongs to."""
    pairs = [(drug, key) for key, keys in members.items() for drug in keys]
    mapping = pl.DataFrame(pairs, schema={"drug": pl.String, "drug_class": pl.String}, orient="row")
    return drugs.join(mapping, on="drug", how="inner").select("patient_id", "drug_class").unique()


def class_prevalence(classes: pl.DataFrame) -> dict[str, int]:
    """Patients per class."""
    counted = classes.group_by("drug_class").agg(pl.len().alias("n"))
    return {k: int(n) for k, n in counted.iter_rows()}


def default_heatmap_classes(
    prevalence: Mapping[str, int], ranking: Sequence[str], limit: int = HEATMAP_DEFAULT_CLASSES
) -> list[str]:
    """The first ``limit`` classes of ``ranking`` (named most often by the rules) that anyone is on."""
    return [key for key in ranking if prevalence.get(key, 0) > 0][:limit]


def co_prescription(classes: pl.DataFrame, chosen: Sequence[str]) -> CoPrescription:
    """The co-prescription matrix of ``chosen`` classes from (patient_id, drug_class) rows."""
    order = list(dict.fromkeys(chosen))
    index = {key: i for i, key in enumerate(order)}
    counts = [[0] * len(order) for _ in order]
    subset = classes.filter(pl.col("drug_class").is_in(order))
    per_patient = subset.group_by("patient_id").agg(pl.col("drug_class").sort().alias("classes"))
    for patient_set in per_patient["classes"].to_list():
        positions = sorted(index[k] for k in patient_set)
        for i in positions:
            counts[i][i] += 1
        for i, j in itertools.combinations(positions, 2):
            counts[i][j] += 1
            counts[j][i] += 1
    return CoPrescription(
        classes=tuple(order),
        counts=tuple(tuple(row) for row in counts),
        patients=int(classes["patient_id"].n_unique()) if classes.height else 0,
        on_any={key: counts[i][i] for key, i in index.items()},
    )


# -- drill-down: the patients with one combination ------------------------------------------------------------------


@dataclass(frozen=True)
class DrillColumn:
    id: str
    label: str
    expression: Any
    sortable: bool = True


@dataclass(frozen=True)
class DrillRequest:
    """An AG Grid infinite-row-model block request, coerced defensively (it arrives from the browser)."""

    start_row: int = 0
    end_row: int = 100
    sort_model: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_ag_grid(cls, request: Mapping[str, Any] | None) -> DrillRequest:
        request = request if isinstance(request, Mapping) else {}
        start = max(0, _as_int(request.get("startRow"), 0))
        end = _as_int(request.get("endRow"), start + 100)
        end = min(max(end, start + 1), start + MAX_BLOCK_ROWS)
        sort = request.get("sortModel")
        sort_model = tuple(s for s in sort if isinstance(s, Mapping)) if isinstance(sort, list) else ()
        return cls(start_row=start, end_row=end, sort_model=sort_model)


def _as_int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e9:
        return int(value)
    if isinstance(value, str) and value.isdigit() and len(value) < 10:
        return int(value)
    return default


def _periods(scope: Scope, rule_id: str, drugs: str, status: str, cut: dt.date, practice_id: str | None):  # noqa: ANN202 - a SQLAlchemy subquery
    """One row per patient with the combination in ``status``: first and latest start, whether active now."""
    condition = {"active": active_flag_condition(cut), "new": _is_new(cut)}.get(status, Flag.start <= cut)
    query = (
        select(
            Flag.patient_id.label("patient_id"),
            func.min(Flag.start).label("first_start"),
            func.max(Flag.start).label("latest_start"),
            func.max(Flag.end).label("latest_end"),
            func.max(case((active_flag_condition(cut), 1), else_=0)).label("active_now"),
        )
        .join(Patient, Patient.id == Flag.patient_id)
        .where(
            Flag.rule_id == rule_id,
            Flag.drugs == drugs,
            Flag.start <= cut,
            scope.clause(Patient.practice_id),
            condition,
        )
        .group_by(Flag.patient_id)
    )
    if practice_id:
        query = query.where(Patient.practice_id == practice_id)
    return query.subquery()


_WL = WorklistEntry


DRILL_LABELS = {
    "patient_id": "Patient",
    "practice": "Practice",
    "age": "Age (years)",
    "sex": "Sex",
    "first_start": "First flagged",
    "latest_start": "Latest period started",
    "active_now": "Active now",
    "medicines_count": "Medicines",
    "flags_high": "High-severity flags",
    "risk_emergency_admission": "12-month risk: emergency admission (%)",
    "risk_medication_harm": "12-month risk: medication harm (%)",
}


def _drill_columns(periods: Any) -> dict[str, DrillColumn]:
    """The drill-down's whitelisted columns (browser column ids map only onto these expressions)."""
    expressions = {
        "patient_id": periods.c.patient_id,
        "practice": Practice.name,
        "age": _WL.age,
        "sex": _WL.sex,
        "first_start": periods.c.first_start,
        "latest_start": periods.c.latest_start,
        "active_now": periods.c.active_now,
        "medicines_count": _WL.medicines_count,
        "flags_high": _WL.flags_high,
        "risk_emergency_admission": _WL.risk_emergency_admission,
        "risk_medication_harm": _WL.risk_medication_harm,
    }
    return {key: DrillColumn(key, DRILL_LABELS[key], expression) for key, expression in expressions.items()}


def _drill_select(periods: Any) -> Select:
    return (
        select(*(c.expression.label(c.id) for c in _drill_columns(periods).values()), periods.c.latest_end)
        .select_from(periods)
        .join(Patient, Patient.id == periods.c.patient_id)
        .join(Practice, Practice.id == Patient.practice_id)
        .outerjoin(_WL, _WL.patient_id == periods.c.patient_id)
    )


def _drill_order(periods: Any, sort_model: Sequence[Mapping[str, Any]]) -> list[Any]:
    columns = _drill_columns(periods)
    terms: list[Any] = []
    for item in sort_model:
        column = columns.get(str(item.get("colId")))
        if column is None or not column.sortable or column.id == "patient_id":
            continue
        if item.get("sort") == "asc":
            terms.append(column.expression.asc().nulls_last())
        elif item.get("sort") == "desc":
            terms.append(column.expression.desc().nulls_last())
    if not terms:
        terms = [periods.c.active_now.desc(), _WL.risk_emergency_admission.desc().nulls_last()]
    terms.append(periods.c.patient_id.asc())
    return terms


@dataclass(frozen=True)
class DrillPage:
    rows: list[dict[str, Any]]
    total: int


def combination_patients(
    conn: Connection | Engine,
    scope: Scope,
    combination: tuple[str, str],
    cut: dt.date,
    *,
    status: str = "active",
    practice_id: str | None = None,
    request: DrillRequest | None = None,
) -> DrillPage:
    """One block of the patients with ``combination`` (rule_id, drugs) in ``status``, within ``scope``."""
    request = request or DrillRequest()
    status = status if status in STATUSES else "active"
    periods = _periods(scope, combination[0], combination[1], status, cut, practice_id)
    query = (
        _drill_select(periods)
        .order_by(*_drill_order(periods, request.sort_model))
        .limit(request.end_row - request.start_row)
        .offset(request.start_row)
    )
    with connected(conn) as connection:
        total = connection.execute(select(func.count()).select_from(periods)).scalar_one()
        rows = [drill_row(r._mapping) for r in connection.execute(query)]
    return DrillPage(rows=rows, total=int(total))


def drill_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A drill-down row as the grid shows it (percent risks, UK dates)."""
    active = bool(record["active_now"])
    return {
        "patient_id": record["patient_id"],
        "practice": record["practice"],
        "age": record["age"],
        "sex": record["sex"],
        "first_start": _uk(record["first_start"]),
        "latest_start": _uk(record["latest_start"]),
        "active_now": "Yes" if active else f"No (ended {_uk(record['latest_end'])})",
        "medicines_count": record["medicines_count"],
        "flags_high": record["flags_high"],
        "risk_emergency_admission": _percent(record["risk_emergency_admission"]),
        "risk_medication_harm": _percent(record["risk_medication_harm"]),
    }


def _uk(value: dt.date | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return value.strftime("%d %b %Y")


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100.0, 1)


EXPORT_COLUMNS = (
    "patient_id",
    "practice",
    "age",
    "sex",
    "first_start",
    "latest_start",
    "active_now",
    "medicines_count",
    "flags_high",
    "risk_emergency_admission",
    "risk_medication_harm",
)


def combination_patients_csv(
    conn: Connection | Engine,
    scope: Scope,
    combination: tuple[str, str],
    cut: dt.date,
    *,
    status: str = "active",
    practice_id: str | None = None,
    sort_model: Sequence[Mapping[str, Any]] = (),
    max_rows: int = EXPORT_MAX_ROWS,
) -> tuple[str, int]:
    """The drill-down list as CSV (plain-English headers, a first line naming the combination); (csv, rows)."""
    page = combination_patients(
        conn,
        scope,
        combination,
        cut,
        status=status,
        practice_id=practice_id,
        request=DrillRequest(0, max_rows, tuple(sort_model)),
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([DRILL_LABELS[c] for c in EXPORT_COLUMNS])
    for row in page.rows:
        writer.writerow(["" if row[c] is None else _csv_safe(row[c]) for c in EXPORT_COLUMNS])
    return buffer.getvalue(), len(page.rows)


def describe_combination(combination: tuple[str, str], catalogue: Mapping[str, RuleInfo]) -> str:
    """'STOPP-v3-B11 NSAID with heart failure — ibuprofen' (no patient details: safe for the audit log)."""
    rule_id, drugs = combination
    info = catalogue.get(rule_id)
    title = f" {info.title}" if info else ""
    named = ", ".join(d for d in drugs.split(";") if d) or "no medicines named"
    return f"{rule_id}{title} — {named}"
