"""The worklist and patient queries over a cohort built by the real demo pipeline (slow: builds and trains)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from data_access.queries.patient import patient_record
from data_access.queries.scope import Scope
from data_access.queries.worklist import GridRequest, WorklistFilters, worklist_page
from data_access.schema import Patient, WorklistEntry

pytestmark = pytest.mark.slow


def test_every_registered_patient_has_a_worklist_row(demo_engine: Engine) -> None:
    with demo_engine.connect() as conn:
        registered = conn.execute(
            select(func.count())
            .select_from(Patient)
            .where(Patient.died_on.is_(None), Patient.deregistered_on.is_(None))
        ).scalar_one()
        rows = conn.execute(select(func.count()).select_from(WorklistEntry)).scalar_one()
        with_risk = conn.execute(
            select(func.count()).where(WorklistEntry.risk_emergency_admission.is_not(None))
        ).scalar_one()
    assert rows >= registered > 0
    assert with_risk > 0


def test_pages_of_the_built_worklist_and_a_patient_record(demo_engine: Engine) -> None:
    page = worklist_page(
        demo_engine, Scope.everything(), WorklistFilters(order="risk"), GridRequest(0, 50, (), {})
    )
    assert page.total > 0 and page.rows
    risks = [r["risk_emergency_admission"] for r in page.rows if r["risk_emergency_admission"] is not None]
    assert risks == sorted(risks, reverse=True)
    view = patient_record(demo_engine, Scope.everything(), page.rows[0]["patient_id"])
    assert view.trajectory.model_version is not None
    assert any(view.trajectory.points.values())
