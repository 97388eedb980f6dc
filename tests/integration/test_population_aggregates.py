"""The population page's aggregate numbers checked against direct SQL (SQLite and Postgres): multimorbidity and
polypharmacy by age band, sex and deprivation, the risk histogram, condition clusters and practice flag rates; and
the page's callbacks for a researcher (aggregates only, small numbers suppressed)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import pytest
from dashboard_factory import AS_OF, TEST_GROUPS, TEST_RULE_TITLES, CohortBuilder, add_varied_patients
from sqlalchemy import Engine, text

from data_access.queries.population import (
    AGE_BANDS,
    condition_clusters,
    condition_sets,
    current_risks,
    practice_flag_rates,
    prevalence_table,
    risk_distribution,
)
from data_access.queries.scope import Scope
from data_access.worklist_build import refresh_worklist

CUT = AS_OF
ETHNICITIES = ("White", "Asian", "Black", "Mixed", "Other")


def _varied(builder: CohortBuilder, count: int, seed: int, practices: tuple[str, ...]) -> None:
    add_varied_patients(builder, count, seed=seed, practices=practices)
    rng = random.Random(seed)
    for row in builder.rows["patient"]:
        row["deprivation_quintile"] = rng.choice((1, 2, 3, 4, 5, None))
        row["ethnicity_group"] = rng.choice(ETHNICITIES)
    builder.patient("DEAD", died_on=CUT - dt.timedelta(days=10))  # not on the list, not in any denominator
    builder.flag("DEAD", "STOPP-v3-B11", dt.date(2026, 1, 1))


@pytest.fixture
def population(db_engine: Engine) -> Engine:
    b = CohortBuilder().model_run()
    _varied(b, 90, seed=11, practices=("P001", "P002", "P003"))
    b.load(db_engine)
    refresh_worklist(db_engine, as_of=CUT, groups=TEST_GROUPS, rule_titles=TEST_RULE_TITLES)
    return db_engine


MEASURES = """count(*) AS n,
    sum(CASE WHEN w.ltc_count >= 2 THEN 1 ELSE 0 END) AS mm,
    sum(CASE WHEN w.medicines_count >= 5 THEN 1 ELSE 0 END) AS pp5,
    sum(CASE WHEN w.medicines_count >= 10 THEN 1 ELSE 0 END) AS pp10"""


def _sql(engine: Engine, where: str, params: dict | None = None) -> tuple[int, int, int, int]:
    query = text(
        f"SELECT {MEASURES} FROM worklist_entry w JOIN patient p ON p.id = w.patient_id WHERE {where}"  # noqa: S608
    )
    with engine.connect() as conn:
        row = conn.execute(query, params or {}).one()
    return tuple(int(v or 0) for v in row)  # type: ignore[return-value]


def test_aggregates_equal_direct_sql(population: Engine) -> None:
    """One cohort per back end; each aggregate of the page is recomputed with plain SQL."""
    rows = {(r.dimension, r.group): r for r in prevalence_table(population, Scope.everything())}

    def measured(key: tuple[str, str]) -> tuple[int, int, int, int]:
        r = rows[key]
        return r.patients, r.multimorbidity, r.polypharmacy, r.complex_polypharmacy

    assert measured(("All", "All patients")) == _sql(population, "1 = 1")
    for lower, upper, label in AGE_BANDS:
        where = f"w.age >= {lower}" + (f" AND w.age <= {upper}" if upper is not None else "")
        expected = _sql(population, where)
        assert (measured(("Age band", label)) if expected[0] else (0, 0, 0, 0)) == expected, label
    assert measured(("Sex", "Female")) == _sql(population, "w.sex = 'F'")
    assert measured(("Sex", "Male")) == _sql(population, "w.sex = 'M'")
    for quintile in range(1, 6):
        label = {1: "1 (most deprived)", 5: "5 (least deprived)"}.get(quintile, str(quintile))
        assert measured(("Deprivation quintile", label)) == _sql(
            population, f"p.deprivation_quintile = {quintile}"
        )
    assert measured(("Deprivation quintile", "Unknown")) == _sql(population, "p.deprivation_quintile IS NULL")

    # Scope: one practice's table is that practice's SQL.
    p002 = {(r.dimension, r.group): r for r in prevalence_table(population, Scope.practices("P002"))}
    assert p002[("All", "All patients")].patients == _sql(population, "w.practice_id = 'P002'")[0]

    # Risk histogram: every bin's count is a range count in SQL.
    dist = risk_distribution(current_risks(population, Scope.everything()), "fall_fracture")
    with population.connect() as conn:
        for b in dist.bins:
            upper = "" if b is dist.bins[-1] else "AND risk_fall_fracture < :hi"
            count = conn.execute(
                text(f"SELECT count(*) FROM worklist_entry WHERE risk_fall_fracture >= :lo {upper}"),  # noqa: S608
                {"lo": b.lower, "hi": b.upper},
            ).scalar_one()
            assert b.count == count, (b.lower, b.upper)
        with_risk = conn.execute(
            text("SELECT count(*) FROM worklist_entry WHERE risk_fall_fracture IS NOT NULL")
        ).scalar_one()
    assert dist.patients == with_risk

    # Condition clusters: the commonest pair's count is the number of patients holding both keys.
    pairs, _ = condition_clusters(condition_sets(population, Scope.everything()), TEST_GROUPS.ltc, 2, 3)
    first, second = pairs[0].conditions
    holding = text(
        "SELECT count(*) FROM worklist_entry WHERE (';' || condition_keys || ';') LIKE :a "
        "AND (';' || condition_keys || ';') LIKE :b"
    )
    with population.connect() as conn:
        assert (
            pairs[0].patients
            == conn.execute(holding, {"a": f"%;{first};%", "b": f"%;{second};%"}).scalar_one()
        )

    # Practice flag rates: registered patients at the cut, and those with a flag period covering it.
    rates = {r.practice_id: r for r in practice_flag_rates(population, Scope.everything(), CUT)}
    registered = text(
        "SELECT practice_id, count(*) FROM patient WHERE (died_on IS NULL OR died_on > :cut) "
        "AND (deregistered_on IS NULL OR deregistered_on > :cut) AND (registered_on IS NULL OR registered_on <= :cut) "
        "GROUP BY practice_id"
    )
    flagged = text(
        "SELECT p.practice_id, count(DISTINCT f.patient_id) FROM flag f JOIN patient p ON p.id = f.patient_id "
        'WHERE f.start <= :cut AND (f."end" IS NULL OR f."end" >= :cut) AND (p.died_on IS NULL OR p.died_on > :cut) '
        "AND (p.deregistered_on IS NULL OR p.deregistered_on > :cut) GROUP BY p.practice_id"
    )
    with population.connect() as conn:
        expected_n = dict(conn.execute(registered, {"cut": CUT}).all())
        expected_x = dict(conn.execute(flagged, {"cut": CUT}).all())
    assert {k: r.patients for k, r in rates.items()} == expected_n
    assert {k: r.flagged for k, r in rates.items()} == {k: expected_x.get(k, 0) for k in expected_n}
    high = practice_flag_rates(population, Scope.everything(), CUT, severities=["high"])
    assert sum(r.flagged for r in high) <= sum(r.flagged for r in rates.values())
    assert practice_flag_rates(population, Scope.everything(), CUT, rule_ids=[]) and all(
        r.flagged == 0 for r in practice_flag_rates(population, Scope.everything(), CUT, rule_ids=[])
    )


# -- the page in the real dashboard, as a researcher ----------------------------------------------------------------

PASSWORD = "population test password"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from security_support import Browser  # noqa: F401 - sets the cheap password hasher before accounts are made

    from app import create_app
    from app.security import ensure_demo_accounts
    from data_access.db import make_engine
    from data_access.migrate import upgrade_database
    from data_access.settings import Settings

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('population') / 'p.sqlite'}")
    upgrade_database(engine)
    b = CohortBuilder().model_run()
    _varied(b, 40, seed=4, practices=("P001", "P002"))
    b.patient("TINY1", practice_id="P003").patient("TINY2", practice_id="P003")  # a tiny practice
    b.flag("TINY1", "STOPP-v3-B11", dt.date(2026, 1, 1))
    b.load(engine)
    refresh_worklist(engine, as_of=CUT, groups=TEST_GROUPS, rule_titles=TEST_RULE_TITLES)
    ensure_demo_accounts(engine, PASSWORD)
    settings = Settings(
        database_url=str(engine.url),
        model_service_url=None,
        model_service_token=None,
        secret_key="population-test-secret-0123456789abcdef",
        device="cpu",
        demo=True,
    )
    yield create_app(settings, engine=engine)
    engine.dispose()


def test_researcher_sees_aggregates_with_small_numbers_suppressed(dashboard: object) -> None:
    from security_support import Browser

    researcher = Browser(dashboard.server.test_client())  # type: ignore[attr-defined]
    assert researcher.login("demo-researcher", PASSWORD, next_url="/help").status_code == 302
    assert researcher.get("/population").status_code == 200
    specs = researcher.get("/_dash-dependencies").get_json()
    funnel = next(s["output"] for s in specs if "population-funnel.figure" in s["output"])
    inputs = [
        {"id": "population-funnel-group", "property": "value", "value": "*"},
        {"id": "population-funnel-severity", "property": "value", "value": "*"},
    ]
    response = researcher.callback(funnel, inputs)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Practice P003" in body and "Not shown (small numbers)" in body
    assert "TINY1" not in body and "V04" not in body  # no patient identifier reaches the browser
    figure = response.get_json()["response"]["population-funnel"]["figure"]
    points = next(t for t in figure["data"] if t.get("name") == "Practice")
    assert "Practice P003" not in points["text"]  # its rate would reveal its count
    tables = next(s["output"] for s in specs if "population-prevalence.children" in s["output"])
    tables_body = researcher.callback(tables, [{"id": "population-outcome", "property": "id", "value": "x"}])
    assert tables_body.status_code == 200 and "'<5'" in str(tables_body.get_json())
