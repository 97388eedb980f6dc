"""The audit trail on SQLite and Postgres: appends, searches, CSV export, concurrent writers, fail-closed views."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading

import pytest
from security_support import Browser, router_inputs, security_app, seed_practices, seed_users
from sqlalchemy import Engine, text

from data_access.queries.audit import (
    AuditFilter,
    append_audit_record,
    count_audit,
    iter_audit_csv,
    patient_view_count,
    search_audit,
)

T0 = dt.datetime(2026, 3, 1, 9, 0, 0)


def _fill(engine: Engine) -> None:
    for i in range(12):
        append_audit_record(
            engine,
            username="gp-a" if i % 2 else "pharm-ab",
            role="gp" if i % 2 else "pharmacist",
            action="view_patient",
            patient_id=f"pat-{i % 3}",
            outcome="denied" if i % 4 == 0 else "allowed",
            at=T0 + dt.timedelta(hours=i),
        )


def test_search_filters_and_orders_newest_first(db_engine: Engine) -> None:
    _fill(db_engine)
    everything = search_audit(db_engine, AuditFilter())
    assert len(everything) == 12 and everything[0].at > everything[-1].at
    gp = search_audit(db_engine, AuditFilter(username="gp-a", patient_id="pat-1"))
    assert gp and all(r.username == "gp-a" and r.patient_id == "pat-1" for r in gp)
    window = AuditFilter(since=T0 + dt.timedelta(hours=2), until=T0 + dt.timedelta(hours=5))
    assert count_audit(db_engine, window) == 4
    assert count_audit(db_engine, AuditFilter(outcome="denied")) == 3
    assert patient_view_count(db_engine) == 9
    assert search_audit(db_engine, AuditFilter(username="gp-a' OR '1'='1")) == []
    with pytest.raises(ValueError):
        append_audit_record(db_engine, username="x", role=None, action="a", outcome="maybe")


def test_csv_export_streams_every_match_in_order(db_engine: Engine) -> None:
    _fill(db_engine)
    chunks = list(iter_audit_csv(db_engine, AuditFilter(outcome="allowed"), batch_size=4))
    assert len(chunks) >= 3  # header + several batches: the export never loads the whole trail at once
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert len(rows) == 9 and [int(r["id"]) for r in rows] == sorted(int(r["id"]) for r in rows)
    assert set(rows[0]) == {"id", "at", "username", "role", "action", "patient_id", "outcome", "detail"}


def test_concurrent_writers_lose_nothing(db_engine: Engine) -> None:
    writers, each = 8, 25
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(each):
                append_audit_record(
                    db_engine, username=f"user-{n}", role="gp", action="view_patient", patient_id=f"p{i}"
                )
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert patient_view_count(db_engine) == writers * each


def test_a_patient_view_without_its_audit_record_is_not_served(db_engine: Engine) -> None:
    seed_practices(db_engine)
    seed_users(db_engine)
    with security_app(db_engine) as app:
        gp = Browser(app.server.test_client())
        assert gp.login("gp-a").status_code == 302
        router = next(
            s["output"] for s in gp.get("/_dash-dependencies").get_json() if "_pages_content" in s["output"]
        )
        with db_engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_log RENAME TO audit_log_away"))
        try:
            response = gp.callback(router, router_inputs("/sec-patient/pat-a1"))
            assert response.status_code == 500
            assert "sec-patient-id" not in response.get_data(as_text=True)
        finally:
            with db_engine.begin() as conn:
                conn.execute(text("ALTER TABLE audit_log_away RENAME TO audit_log"))
        assert gp.callback(router, router_inputs("/sec-patient/pat-a1")).status_code == 200
