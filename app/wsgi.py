"""WSGI entry point for gunicorn (Procfile ``web``): ``gunicorn -c gunicorn.conf.py app.wsgi:server``.

This is the one module that builds the app at import, because that is what a WSGI server imports; everything else
goes through ``create_app``. Settings come from the environment and fail loudly when SECRET_KEY is missing.
"""

from __future__ import annotations

from app import create_app
from data_access.settings import Settings

dash_app = create_app(Settings.from_env())
server = dash_app.server
