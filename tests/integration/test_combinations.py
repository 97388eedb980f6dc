"""Flagged combinations against a real database (SQLite and Postgres): counts now, ever and new relative to the
data cut, scope and practice, the paged drill-down, the CSV, the co-prescription matrix against direct SQL, and
the page's callbacks per role in the real dashboard."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator

import pytest
from dashboard_factory import AS_OF, TEST_GROUPS, TEST_RULE_TITLES, CohortBuilder, add_varied_patients
from sqlalchemy import Engine, text

from data_access.queries.combinations import (
    DrillRequest,
    active_drugs,
    class_members,
    co_prescription,
    combination_counts,
    combination_patients,
    combination_patients_csv,
    patient_classes,
)
from data_access.queries.scope import Scope
from data_access.worklist_build import refresh_worklist

D = dt.date
CUT = AS_OF  # 30 Jun 2026: "now" of the factory's world
DDI = ("DDI-warfarin-nsaid", "naproxen;warfarin")
CROWD = 23


def _flagged(
    b: CohortBuilder, pid: str, start: dt.date, end: dt.date | None = None, **patient: object
) -> None:
    b.patient(pid, **patient)  # type: ignore[arg-type]
    b.prescription(pid, "warfarin", D(2020, 1, 1)).prescription(pid, "naproxen", start)
    b.flag(pid, DDI[0], start, end, drugs=DDI[1], severity="high")


@pytest.fixture
def flagged(db_engine: Engine) -> Engine:
    b = CohortBuilder().model_run()
    _flagged(b, "C-NEW", D(2026, 6, 10))  # started 20 days before the cut: active and new
    _flagged(b, "C-ACTIVE", D(2025, 1, 1), birth=(1930, 1))  # active, not new
    _flagged(b, "C-ENDED", D(2025, 1, 1), D(2025, 6, 1), practice_id="P002")  # ever only
    _flagged(b, "C-DIED", D(2025, 1, 1), died_on=D(2026, 3, 1))  # still "open" but died: ever only
    _flagged(b, "C-FUTURE", D(2026, 8, 1))  # after the cut: not counted at all
    b.patient("C-OTHER-DRUGS").flag("C-OTHER-DRUGS", DDI[0], D(2025, 1, 1), drugs="ibuprofen;warfarin")
    for i in range(CROWD):  # a crowd in P001 for paging
        _flagged(b, f"C-CROWD{i:02d}", D(2024, 1 + i % 12, 1), birth=(1930 + i, 1))
    b.load(db_engine)
    refresh_worklist(db_engine, as_of=CUT, groups=TEST_GROUPS, rule_titles=TEST_RULE_TITLES)
    return db_engine


def _row(engine: Engine, scope: Scope, practice: str | None = None) -> dict:
    counts = combination_counts(engine, scope, CUT, practice)
    matches = counts.filter((counts["rule_id"] == DDI[0]) & (counts["drugs"] == DDI[1])).to_dicts()
    return matches[0] if matches else {"ever": 0, "active_now": 0, "new_30d": 0}


def test_counts_and_drill_down_relative_to_the_data_cut(flagged: Engine) -> None:
    """One cohort per back end, several checks: counts, paging, sorting and the CSV (keeps the suite fast)."""
    everything = _row(flagged, Scope.everything())
    assert (everything["active_now"], everything["ever"], everything["new_30d"]) == (2 + CROWD, 4 + CROWD, 1)
    p001 = _row(flagged, Scope.practices("P001"))
    assert (p001["active_now"], p001["ever"]) == (2 + CROWD, 3 + CROWD)
    assert _row(flagged, Scope.everything(), "P002")["ever"] == 1
    assert (
        _row(flagged, Scope.practices("P001"), "P002")["ever"] == 0
    )  # a practice outside scope shows nothing
    assert _row(flagged, Scope(frozenset()))["ever"] == 0
    counts = combination_counts(flagged, Scope.everything(), CUT)
    assert set(counts.filter(counts["rule_id"] == DDI[0])["drugs"]) == {DDI[1], "ibuprofen;warfarin"}
    _drill_down_pages_without_overlap_within_scope(flagged)
    _drill_down_sorting_is_whitelisted(flagged)
    _csv_export_lists_the_same_patients(flagged)


def _drill_down_pages_without_overlap_within_scope(flagged: Engine) -> None:
    scope = Scope.practices("P001")
    seen: list[str] = []
    for start in range(0, 40, 10):
        page = combination_patients(flagged, scope, DDI, CUT, request=DrillRequest(start, start + 10))
        assert page.total == 2 + CROWD
        seen += [r["patient_id"] for r in page.rows]
    assert len(seen) == len(set(seen)) == 2 + CROWD
    assert "C-ENDED" not in seen and "C-DIED" not in seen and "C-FUTURE" not in seen
    ever = combination_patients(
        flagged, Scope.everything(), DDI, CUT, status="ever", request=DrillRequest(0, 100)
    )
    assert {"C-ENDED", "C-DIED"} <= {r["patient_id"] for r in ever.rows}
    ended = next(r for r in ever.rows if r["patient_id"] == "C-ENDED")
    assert ended["active_now"] == "No (ended 01 Jun 2025)" and ended["practice"] == "Practice P002"
    new = combination_patients(flagged, scope, DDI, CUT, status="new")
    assert [r["patient_id"] for r in new.rows] == ["C-NEW"]


def _drill_down_sorting_is_whitelisted(flagged: Engine) -> None:
    scope = Scope.practices("P001")
    by_age = combination_patients(
        flagged, scope, DDI, CUT, request=DrillRequest(0, 100, ({"colId": "age", "sort": "desc"},))
    )
    ages = [r["age"] for r in by_age.rows]
    assert ages == sorted(ages, reverse=True)
    hostile = DrillRequest(
        0, 100, ({"colId": "age; DROP TABLE patient", "sort": "asc"}, {"colId": "age", "sort": "x"})
    )
    assert combination_patients(flagged, scope, DDI, CUT, request=hostile).total == 2 + CROWD


def _csv_export_lists_the_same_patients(flagged: Engine) -> None:
    text_, rows = combination_patients_csv(flagged, Scope.practices("P001"), DDI, CUT)
    table = list(csv.reader(io.StringIO(text_)))
    assert table[0][:3] == ["Patient", "Practice", "Age (years)"]
    assert rows == len(table) - 1 == 2 + CROWD


def test_co_prescription_matches_direct_sql(db_engine: Engine) -> None:
    b = CohortBuilder().model_run()
    add_varied_patients(b, 60, seed=5, practices=("P001", "P002"))
    b.load(db_engine)
    refresh_worklist(db_engine, as_of=CUT, groups=TEST_GROUPS, rule_titles=TEST_RULE_TITLES)
    drugs = active_drugs(db_engine, Scope.everything())
    assert set(active_drugs(db_engine, Scope.practices("P001"))["patient_id"]) < set(drugs["patient_id"])
    matrix = co_prescription(patient_classes(drugs, class_members()), ["nsaid", "anticoagulant"])
    sql = text(
        """
        SELECT count(DISTINCT a.patient_id) FROM prescription a
        JOIN prescription w ON w.patient_id = a.patient_id
        JOIN patient p ON p.id = a.patient_id
        WHERE a.drug_key IN ('ibuprofen', 'naproxen') AND w.drug_key = 'warfarin'
          AND a.start <= :cut AND (a.stop IS NULL OR a.stop >= :cut)
          AND w.start <= :cut AND (w.stop IS NULL OR w.stop >= :cut)
          AND (p.died_on IS NULL OR p.died_on > :cut) AND (p.deregistered_on IS NULL OR p.deregistered_on > :cut)
          AND (p.registered_on IS NULL OR p.registered_on <= :cut)
        """
    )
    on_nsaid = text(
        """
        SELECT count(DISTINCT a.patient_id) FROM prescription a JOIN patient p ON p.id = a.patient_id
        WHERE a.drug_key IN ('ibuprofen', 'naproxen') AND a.start <= :cut AND (a.stop IS NULL OR a.stop >= :cut)
          AND (p.registered_on IS NULL OR p.registered_on <= :cut)
        """
    )
    with db_engine.connect() as conn:
        both = conn.execute(sql, {"cut": CUT}).scalar_one()
        nsaid = conn.execute(on_nsaid, {"cut": CUT}).scalar_one()
    assert both > 0
    assert matrix.counts[0][1] == matrix.counts[1][0] == both
    assert matrix.on_any["nsaid"] == nsaid


# -- the page in the real dashboard ---------------------------------------------------------------------------------

PASSWORD = "combinations test password"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Engine]]:
    from app import create_app
    from app.security import ensure_demo_accounts
    from data_access.db import make_engine
    from data_access.migrate import upgrade_database
    from data_access.settings import Settings

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('combinations') / 'c.sqlite'}")
    upgrade_database(engine)
    b = CohortBuilder().model_run()
    for i in range(6):  # P001 has 6, P003 has 3 (a small number, suppressed for researchers)
        _flagged(b, f"C-A{i}", D(2025, 1, 1))
    for i in range(3):
        _flagged(b, f"C-C{i}", D(2025, 1, 1), practice_id="P003")
    b.practice("P002")
    b.load(engine)
    refresh_worklist(engine, as_of=CUT, groups=TEST_GROUPS, rule_titles=TEST_RULE_TITLES)
    ensure_demo_accounts(engine, PASSWORD)
    settings = Settings(
        database_url=str(engine.url),
        model_service_url=None,
        model_service_token=None,
        secret_key="combinations-test-secret-0123456789abcdef",
        device="cpu",
        demo=True,
    )
    yield create_app(settings, engine=engine), engine
    engine.dispose()


def _session(app: object, username: str):  # noqa: ANN202 - security_support.Browser
    from security_support import Browser

    browser = Browser(app.server.test_client())  # type: ignore[attr-defined]
    assert browser.login(username, PASSWORD, next_url="/help").status_code == 302
    return browser


def _output(browser: object, fragment: str) -> str:
    specs = browser.get("/_dash-dependencies").get_json()  # type: ignore[attr-defined]
    return next(s["output"] for s in specs if fragment in s["output"])


def _filters(groups: list[str]) -> list[dict]:
    return [
        {"id": "combinations-group", "property": "value", "value": groups},
        {"id": "combinations-severity", "property": "value", "value": []},
        {"id": "combinations-drug", "property": "value", "value": None},
        {"id": "combinations-class", "property": "value", "value": None},
        {"id": "combinations-practice", "property": "value", "value": "*"},
    ]


def test_researchers_see_suppressed_counts_and_no_patients(dashboard: tuple) -> None:
    app, _engine = dashboard
    researcher = _session(app, "demo-researcher")
    response = researcher.callback(_output(researcher, "combinations-grid.rowData"), _filters(["ddi"]))
    assert response.status_code == 200
    rows = response.get_json()["response"]["combinations-grid"]["rowData"]
    assert [(r["rule_id"], r["active_now"]) for r in rows] == [(DDI[0], 9)]
    p003 = researcher.callback(
        _output(researcher, "combinations-grid.rowData"),
        [*_filters([])[:4], {"id": "combinations-practice", "property": "value", "value": "P003"}],
    )
    assert p003.get_json()["response"]["combinations-grid"]["rowData"][0]["active_now"] == "<5"
    drill = _output(researcher, "combinations-drill-grid.getRowsResponse")
    state = [
        {"id": "combinations-selected", "property": "data", "value": "|".join(DDI)},
        {"id": "combinations-drill-status", "property": "value", "value": "active"},
        {"id": "combinations-practice", "property": "value", "value": "*"},
    ]
    request = [
        {
            "id": "combinations-drill-grid",
            "property": "getRowsRequest",
            "value": {"startRow": 0, "endRow": 100},
        }
    ]
    assert researcher.callback(drill, request, state=state).status_code == 403
    body = researcher.callback(_output(researcher, "combinations-grid.rowData"), _filters(["ddi"])).get_data(
        as_text=True
    )
    assert "C-A0" not in body


def test_gp_drills_down_within_their_practice_and_the_export_is_audited(dashboard: tuple) -> None:
    from data_access.queries.audit import AuditFilter, search_audit

    app, engine = dashboard
    gp = _session(app, "demo-gp")
    state = [
        {"id": "combinations-selected", "property": "data", "value": "|".join(DDI)},
        {"id": "combinations-drill-status", "property": "value", "value": "active"},
        {
            "id": "combinations-practice",
            "property": "value",
            "value": "P003",
        },  # forged: not the GP's practice
    ]
    request = [
        {
            "id": "combinations-drill-grid",
            "property": "getRowsRequest",
            "value": {"startRow": 0, "endRow": 100},
        }
    ]
    forged = gp.callback(_output(gp, "combinations-drill-grid.getRowsResponse"), request, state=state)
    assert forged.get_json()["response"]["combinations-drill-grid"]["getRowsResponse"]["rowCount"] == 0
    state[2]["value"] = "*"
    response = gp.callback(_output(gp, "combinations-drill-grid.getRowsResponse"), request, state=state)
    ids = [
        r["patient_id"]
        for r in response.get_json()["response"]["combinations-drill-grid"]["getRowsResponse"]["rowData"]
    ]
    assert sorted(ids) == [f"C-A{i}" for i in range(6)]
    export = gp.callback(
        _output(gp, "combinations-download.data"),
        [{"id": "combinations-export", "property": "n_clicks", "value": 1}],
        state=state,
    )
    assert export.status_code == 200
    records = search_audit(engine, AuditFilter(username="demo-gp", action="export"))
    assert any("combination patients CSV, 6 rows" in (r.detail or "") for r in records)
