"""A minimal Dash app protected by ``init_security``, for the security tests (independent of the real pages).

Pages and callbacks mirror the real dashboard's shapes: a static help page, a worklist listing the user's
patients, a patient page with a data callback, an admin-only page, and one callback that forgot its ``requires``.
Page paths start with /sec- and the pages are removed from Dash's global registry afterwards, so they never meet
the real dashboard's pages in the same test process.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dash
import flask
from argon2 import PasswordHasher, profiles
from dash import Input, Output, dcc, html
from flask.testing import FlaskClient
from sqlalchemy import Engine, insert

from app.security import (
    Permission,
    add_user,
    authorize_patient,
    current_user,
    init_security,
    requires,
    scope_for,
)
from app.security.passwords import use_hasher
from data_access.schema import Patient, Practice
from data_access.settings import Settings

# Argon2's cheapest profile keeps the suite fast; the production parameters are covered by the unit tests.
use_hasher(PasswordHasher.from_parameters(profiles.CHEAPEST))

PASSWORD = "correct horse battery staple"
PAGE_MODULES = ("sec_help", "sec_worklist", "sec_patient", "sec_audit")
USERS = {
    "gp-a": ("gp", ["PA"]),
    "gp-b": ("gp", ["PB"]),
    "pharm-ab": ("pharmacist", ["PA", "PB"]),
    "researcher": ("researcher", []),
    "admin": ("admin", []),
}
PATIENTS = {"pat-a1": "PA", "pat-a2": "PA", "pat-b1": "PB"}


def seed_practices(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(Practice), [{"id": p, "name": f"Practice {p}", "icb": "Test ICB"} for p in ("PA", "PB")]
        )
        conn.execute(
            insert(Patient),
            [
                {
                    "id": pid,
                    "practice_id": practice,
                    "birth_year": 1940,
                    "birth_month": 1,
                    "sex": "F",
                    "registered_on": dt.date(2000, 1, 1),
                    "source": "synthetic",
                }
                for pid, practice in PATIENTS.items()
            ],
        )


def seed_users(engine: Engine) -> None:
    for username, (role, practices) in USERS.items():
        add_user(engine, username, role, practices, PASSWORD)


def _patients_in_scope(engine: Engine) -> list[str]:
    from sqlalchemy import select

    scope = scope_for(current_user())
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(Patient.id).where(scope.clause(Patient.practice_id)).order_by(Patient.id)
            ).scalars()
        )


def build_app(
    engine: Engine,
    *,
    demo: bool = True,
    secret: str | None = "test-secret-key-0123456789",
    validation_layout: bool = False,
) -> dash.Dash:
    server = flask.Flask("security_test_app")
    app = dash.Dash(
        "security_test_app",
        server=server,
        use_pages=True,
        pages_folder="",
        # False makes Dash call every page layout with no arguments to build (and publish) a validation layout.
        suppress_callback_exceptions=not validation_layout,
        assets_folder="/nonexistent-assets",
    )
    dash.register_page("sec_help", path="/sec-help", layout=html.Div("Help text", id="sec-help"))

    @requires(Permission.VIEW_WORKLIST)
    def worklist_layout(**_query: str) -> html.Div:
        return html.Div([dcc.Input(id="sec-filter", value=""), html.Ul(id="sec-list")])

    @requires(Permission.VIEW_PATIENT, patient_arg="patient_id")
    def patient_layout(patient_id: str | None = None, **_query: str) -> html.Div:
        return html.Div([dcc.Store(id="sec-patient-id", data=patient_id), html.Div(id="sec-patient-detail")])

    @requires(Permission.VIEW_AUDIT)
    def audit_layout(**_query: str) -> html.Div:
        return html.Div("Audit", id="sec-audit")

    dash.register_page("sec_worklist", path="/sec-worklist", layout=worklist_layout)
    dash.register_page("sec_patient", path_template="/sec-patient/<patient_id>", layout=patient_layout)
    dash.register_page("sec_audit", path="/sec-audit", layout=audit_layout)
    app.layout = html.Div([dcc.Location(id="sec-url"), html.Div(id="sec-naked"), dash.page_container])

    @app.callback(Output("sec-list", "children"), Input("sec-filter", "value"))
    @requires(Permission.VIEW_WORKLIST)
    def list_patients(text: str | None) -> list:
        return [html.Li(pid) for pid in _patients_in_scope(engine) if (text or "") in pid]

    @app.callback(Output("sec-patient-detail", "children"), Input("sec-patient-id", "data"))
    @requires(Permission.VIEW_PATIENT)
    def patient_detail(patient_id: str | None) -> str:
        if not patient_id:
            return ""
        authorize_patient(patient_id)
        return f"Record of {patient_id}"

    @app.callback(Output("sec-naked", "children"), Input("sec-url", "pathname"))
    def forgot_requires(pathname: str | None) -> str:
        return "this callback declared no permission"

    app.clientside_callback(
        "function(v) { return v; }", Output("sec-audit", "title"), Input("sec-audit", "children")
    )
    settings = Settings(
        database_url=str(engine.url),
        model_service_url=None,
        model_service_token=None,
        secret_key=secret,
        device="cpu",
        demo=demo,
    )
    init_security(server, engine, settings, dash_app=app)
    return app


def remove_test_pages() -> None:
    for module in PAGE_MODULES:
        dash.page_registry.pop(module, None)


@contextmanager
def security_app(engine: Engine, **kwargs: object) -> Iterator[dash.Dash]:
    # Dash keeps registered pages in a module-global registry; set aside the real dashboard's pages (registered by
    # other tests in the same session) so this minimal app builds only its own layouts, then put them back.
    saved = dict(dash.page_registry)
    dash.page_registry.clear()
    try:
        yield build_app(engine, **kwargs)
    finally:
        remove_test_pages()
        dash.page_registry.clear()
        dash.page_registry.update(saved)


_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Browser:
    """A Flask test client that behaves like the Dash renderer: it echoes the CSRF cookie as X-CSRFToken."""

    client: FlaskClient
    base_url: str = "http://localhost"

    def get(self, path: str, **kwargs: object):  # noqa: ANN201
        return self.client.get(path, base_url=self.base_url, **kwargs)

    def csrf_cookie(self) -> str | None:
        cookie = self.client.get_cookie("_csrf_token")
        return cookie.value if cookie else None

    def login(self, username: str, password: str = PASSWORD, *, next_url: str = "/sec-help"):  # noqa: ANN201
        page = self.get("/login")
        token = _CSRF_INPUT.search(page.get_data(as_text=True)).group(1)
        return self.client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": token, "next": next_url},
            base_url=self.base_url,
            headers={"Referer": f"{self.base_url}/login"},  # what a browser sends; checked on https
        )

    def callback(self, output: str, inputs: list[dict], *, csrf: bool = True, state: list | None = None):  # noqa: ANN201
        if csrf and self.csrf_cookie() is None:
            self.get("/sec-help")
        headers = {"X-CSRFToken": self.csrf_cookie() or ""} if csrf else {}
        headers["Referer"] = f"{self.base_url}/"
        body = {
            "output": output,
            "outputs": _outputs_of(output),
            "inputs": inputs,
            "state": state or [],
            "changedPropIds": [f"{i['id']}.{i['property']}" for i in inputs],
        }
        return self.client.post("/_dash-update-component", json=body, headers=headers, base_url=self.base_url)


def _outputs_of(output: str) -> dict | list[dict]:
    if output.startswith(".."):
        parts = [p for p in output.strip(".").split("...") if p]
        return [dict(zip(("id", "property"), p.rsplit(".", 1), strict=True)) for p in parts]
    component, prop = output.rsplit(".", 1)
    return {"id": component, "property": prop}


def router_inputs(pathname: str) -> list[dict]:
    """The inputs the Dash pages router callback receives when the browser navigates to ``pathname``."""
    return [
        {"id": "_pages_location", "property": "pathname", "value": pathname},
        {"id": "_pages_location", "property": "search", "value": ""},
    ]
