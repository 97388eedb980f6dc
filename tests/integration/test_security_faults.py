"""Faults: the database drops every connection mid-session (as a Postgres restart does) and the next requests
succeed, with their audit records, because the pool pings connections before use (``pool_pre_ping``).

The restart is simulated with ``pg_terminate_backend`` on this test session's own database, never by restarting
the shared server.
"""

from __future__ import annotations

import pytest
from security_support import Browser, router_inputs, security_app, seed_practices, seed_users
from sqlalchemy import Engine, create_engine, text

from data_access.queries.audit import AuditFilter, count_audit

pytestmark = pytest.mark.integration


def _terminate_connections(engine: Engine) -> int:
    """Kill every server process serving ``engine``'s database; returns how many were killed."""
    from db_support import POSTGRES_ADMIN_URL

    database = engine.url.database
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            ).scalar_one()
    finally:
        admin.dispose()
    return int(killed)


def test_requests_succeed_after_the_database_drops_every_connection(pg_engine: Engine) -> None:
    seed_practices(pg_engine)
    seed_users(pg_engine)
    with security_app(pg_engine) as app:
        gp = Browser(app.server.test_client())
        assert gp.login("gp-a").status_code == 302
        router = next(
            s["output"] for s in gp.get("/_dash-dependencies").get_json() if "_pages_content" in s["output"]
        )
        listing = [{"id": "sec-filter", "property": "value", "value": ""}]
        assert gp.callback("sec-list.children", listing).status_code == 200
        assert gp.callback(router, router_inputs("/sec-patient/pat-a1")).status_code == 200

        assert _terminate_connections(pg_engine) >= 1

        # The same browser session carries on: a page, a data callback and a recorded patient view.
        assert gp.get("/sec-help").status_code == 200
        answer = gp.callback("sec-list.children", listing)
        assert answer.status_code == 200 and "pat-a1" in answer.get_data(as_text=True)
        assert gp.callback(router, router_inputs("/sec-patient/pat-a1")).status_code == 200
        views = count_audit(pg_engine, AuditFilter(username="gp-a", action="view_patient", outcome="allowed"))
        assert views == 2
        # and a new sign-in works too
        assert _terminate_connections(pg_engine) >= 1
        assert Browser(app.server.test_client()).login("gp-b").status_code == 302
