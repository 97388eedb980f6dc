"""What callbacks need from the running app (engine, settings), kept on the Flask app, never in module globals,
so that each app built by ``create_app`` (one per test) has its own database."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flask
from sqlalchemy import Engine

from data_access.settings import Settings

EXTENSION_KEY = "dynairx_app"


CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class AppContext:
    engine: Engine
    settings: Settings
    cache: dict[tuple[Any, ...], tuple[float, Any]] = field(default_factory=dict)

    def cached(self, key: tuple[Any, ...], compute: Callable[[], Any], seconds: float = CACHE_SECONDS) -> Any:
        """A small per-app, per-process cache for lookups that change only when the worklist is rebuilt.
        Callers put the user's scope in ``key`` so one user's answer never reaches another."""
        now = time.monotonic()
        hit = self.cache.get(key)
        if hit is not None and now - hit[0] < seconds:
            return hit[1]
        value = compute()
        if len(self.cache) > 1000:
            self.cache.clear()
        self.cache[key] = (now, value)
        return value


def app_context(app: flask.Flask | None = None) -> AppContext:
    return (app or flask.current_app).extensions[EXTENSION_KEY]


def app_engine() -> Engine:
    return app_context().engine


def app_settings() -> Settings:
    return app_context().settings
