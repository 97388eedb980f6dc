"""Per-application security state, kept on the Flask app (``server.extensions``), never in module globals,
so each test's app is isolated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dash
import flask
from sqlalchemy import Engine

from app.security.config import SecurityConfig

EXTENSION_KEY = "dynairx_security"


@dataclass
class SecurityState:
    engine: Engine
    config: SecurityConfig
    dash_app: dash.Dash | None = None
    oidc_client: Any = None
    dispatch_wrapped: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    def dash(self) -> dash.Dash | None:
        """The Dash app served by this Flask app (given to ``init_security``, else the one Dash registered last)."""
        if self.dash_app is not None:
            return self.dash_app
        try:
            return dash.get_app()
        except Exception:  # noqa: BLE001 - no Dash app at all: nothing Dash-specific to check
            return None


def security_state(app: flask.Flask | None = None) -> SecurityState:
    app = app or flask.current_app
    try:
        return app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "init_security(server, engine, settings) has not been called on this app"
        ) from None
