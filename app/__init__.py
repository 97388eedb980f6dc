"""The DynAIRx dashboard: ``create_app(settings)`` builds Flask, Dash (pages under ``app/pages``), security and the
navigation shell inside one function, so every test gets an isolated app and nothing touches the database at import.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import dash
import flask
from sqlalchemy import Engine

from data_access.settings import Settings

APP_DIR = Path(__file__).resolve().parent
ASSETS_DIR = APP_DIR.parent / "assets"

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> dash.Dash:
    """Build the dashboard. ``engine`` defaults to one made from ``settings.database_url``."""
    from app.components.tour import register_tour_callbacks
    from app.layout import index_string, shell_layout
    from app.pages import import_pages
    from app.runtime import EXTENSION_KEY, AppContext
    from app.security import init_security
    from data_access.db import make_engine

    settings = settings or Settings.from_env()
    engine = engine or make_engine(settings.database_url)
    server = flask.Flask(__name__)
    server.extensions[EXTENSION_KEY] = AppContext(engine=engine, settings=settings)
    app = dash.Dash(
        __name__,
        server=server,
        use_pages=True,
        pages_folder="",  # pages are imported by app.pages.import_pages (see its docstring)
        assets_folder=str(ASSETS_DIR),
        serve_locally=True,
        title="DynAIRx",
        update_title=None,
        suppress_callback_exceptions=True,
        index_string=index_string(),
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    import_pages()
    app.layout = shell_layout
    register_tour_callbacks(app)
    init_security(server, engine, settings, dash_app=app)
    threading.Thread(target=_warm_caches, name="dynairx-warm-up", daemon=True).start()
    return app


def _warm_caches() -> None:
    """Parse the rule set and vocabularies once in the background, so the first patient page does not wait seconds
    for YAML parsing (both are cached per process; nothing patient-related is read here)."""
    try:
        from clinical.knowledge import load_knowledge
        from data_access.queries.patient import rule_catalogue

        rule_catalogue()
        load_knowledge()
    except Exception as exc:  # noqa: BLE001 - a failed warm-up only means the first page parses them itself
        log.warning("warm-up of the rule set and vocabularies failed: %s", type(exc).__name__)
