"""Path rules, redirects, log redaction, audit filters and CSV export escaping."""

from __future__ import annotations

import logging

import pytest

from app.security.audit_search import BadAuditFilter, export_query, parse_audit_filter
from app.security.logs import PatientRedactingFilter, redact
from app.security.paths import is_dash_endpoint, is_public, safe_next
from data_access.queries.audit import _csv_safe


@pytest.mark.parametrize("path", ["/login", "/logout", "/assets/bootstrap.min.css", "/_favicon.ico"])
def test_public_paths(path: str) -> None:
    assert is_public(path)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/patient/x",
        "/_dash-layout",
        "/_dash-dependencies",
        "/_dash-update-component",
        "/_dash-component-suites/dash/dash.js",
        "/admin/audit",
        "/admin/audit/export.csv",
        "/loginx",
        "/assetsx",
    ],
)
def test_everything_else_needs_sign_in(path: str) -> None:
    assert not is_public(path)


def test_dash_endpoints_are_machine_endpoints() -> None:
    assert is_dash_endpoint("/_dash-update-component")
    assert not is_dash_endpoint("/patient/1")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/patient/abc?x=1", "/patient/abc?x=1"),
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/login?next=/", "/"),
        ("", "/"),
        (None, "/"),
        ("/ok\r\nSet-Cookie: x", "/"),
    ],
)
def test_post_sign_in_redirect_stays_on_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_patient_ids_are_redacted_from_log_lines() -> None:
    line = '127.0.0.1 - - "GET /patient/9f8e7d?tab=meds HTTP/1.1" 200 - patient_id=9f8e7d&x=1'
    cleaned = redact(line)
    assert "9f8e7d" not in cleaned
    assert "/patient/[redacted]" in cleaned


def test_redacting_filter_rewrites_formatted_records() -> None:
    record = logging.LogRecord(
        "werkzeug", logging.INFO, __file__, 1, '"%s %s"', ("GET", "/patient/abc123"), None
    )
    assert PatientRedactingFilter().filter(record)
    assert "abc123" not in record.getMessage()


def test_audit_filter_validation() -> None:
    criteria = parse_audit_filter({"username": "demo-gp", "action": "view_patient", "since": "2026-01-01"})
    assert criteria.username == "demo-gp" and criteria.since is not None and criteria.since.hour == 0
    with pytest.raises(BadAuditFilter):
        parse_audit_filter({"action": "view_patient' OR 1=1 --"})
    with pytest.raises(BadAuditFilter):
        parse_audit_filter({"outcome": "maybe"})
    with pytest.raises(BadAuditFilter):
        parse_audit_filter({"since": "2026-02-01", "until": "2026-01-01"})
    with pytest.raises(BadAuditFilter):
        parse_audit_filter({"since": "yesterday"})
    assert export_query({"username": "a b", "action": None}) == "username=a+b"


@pytest.mark.parametrize("cell", ['=HYPERLINK("x")', "+1", "-2", "@SUM(A1)"])
def test_csv_cells_cannot_become_formulas(cell: str) -> None:
    assert _csv_safe(cell).startswith("'")
