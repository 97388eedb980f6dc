"""Browser tests of the dashboard: one small demo cohort and one live server shared by every e2e test.

- The browser is the system Chromium (never ``playwright install``: no downloads on these machines).
- The app is served in-process by werkzeug on a free port (port 0) in a daemon thread.
- The cohort is built once per session with the real demo pipeline (synthetic cohort → flags and scores → model,
  1 epoch → predictions → worklist). While the model pipeline is not installed, the seeded test factory
  (``tests/dashboard_factory.py``) stands in, so the pages can still be driven end to end.
- Every test fails on a browser console error or an uncaught page error; screenshots go to
  ``test-artifacts/screenshots/`` (gitignored).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dashboard_factory import build_demo_cohort
from e2e_support import (
    CHROMIUM,
    DEMO_PASSWORD,
    E2E_PATIENTS,
    E2E_SEED,
    LiveDashboard,
    sign_in,
)
from playwright.sync_api import expect
from sqlalchemy import Engine
from werkzeug.serving import make_server

from data_access.db import make_engine
from data_access.migrate import upgrade_database
from data_access.settings import Settings

log = logging.getLogger(__name__)


# Patient pages build several figures on first load; allow more than playwright's 5 s default for assertions.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
        ],
    }


def build_e2e_cohort(engine: Engine, model_dir: Path) -> str:
    """Build the shared cohort; returns which builder was used ('pipeline' or 'factory')."""
    return build_demo_cohort(engine, model_dir, patients=E2E_PATIENTS, seed=E2E_SEED)


def _cache_dir() -> Path | None:
    """``DYNAIRX_E2E_CACHE_DIR``: keep the built cohort between local runs (the build takes minutes)."""
    value = os.environ.get("DYNAIRX_E2E_CACHE_DIR")
    return Path(value) / f"e2e-{E2E_PATIENTS}-{E2E_SEED}" if value else None


def _restore_cached_cohort(workdir: Path) -> str | None:
    cache = _cache_dir()
    if cache is None or not (cache / "builder.txt").exists():
        return None
    shutil.copy(cache / "e2e.sqlite", workdir / "e2e.sqlite")
    if (cache / "models").exists():
        shutil.copytree(cache / "models", workdir / "models")
    return (cache / "builder.txt").read_text().strip()


def _save_cached_cohort(engine: Engine, workdir: Path, builder: str) -> None:
    cache = _cache_dir()
    if cache is None:
        return
    cache.mkdir(parents=True, exist_ok=True)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(workdir / "e2e.sqlite", cache / "e2e.sqlite")
    if (workdir / "models").exists():
        shutil.copytree(workdir / "models", cache / "models", dirs_exist_ok=True)
    (cache / "builder.txt").write_text(builder)


@pytest.fixture(scope="session")
def live_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDashboard]:
    from argon2 import PasswordHasher, profiles

    from app import create_app
    from app.security import ensure_demo_accounts
    from app.security.passwords import use_hasher

    # Argon2's cheapest profile keeps sign-in fast in tests; production parameters are tested by the security suite.
    use_hasher(PasswordHasher.from_parameters(profiles.CHEAPEST))
    workdir = tmp_path_factory.mktemp("e2e")
    builder = _restore_cached_cohort(workdir)
    engine = make_engine(f"sqlite:///{workdir / 'e2e.sqlite'}")
    upgrade_database(engine)
    if builder is None:
        builder = build_e2e_cohort(engine, workdir / "models")
        _save_cached_cohort(engine, workdir, builder)
    elif builder == "pipeline":
        from data_access.worklist_build import refresh_worklist

        refresh_worklist(engine)  # a cached cohort still gets the worklist of the code under test
    practices = ensure_demo_accounts(engine, DEMO_PASSWORD)
    settings = Settings(
        database_url=str(engine.url),
        model_service_url=None,
        model_service_token=None,
        secret_key="e2e-secret-key-not-for-production-0123456789",
        device="cpu",
        demo=True,
    )
    # The in-process what-if loads the model trained for this cohort.
    previous_model_dir = os.environ.get("DYNAIRX_MODEL_DIR")
    os.environ["DYNAIRX_MODEL_DIR"] = str(workdir / "models")
    app = create_app(settings, engine=engine)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveDashboard(
            base_url=f"http://127.0.0.1:{server.server_port}",
            engine=engine,
            builder=builder,
            practices=practices,
        )
    finally:
        server.shutdown()
        thread.join(timeout=10)
        engine.dispose()
        if previous_model_dir is None:
            os.environ.pop("DYNAIRX_MODEL_DIR", None)
        else:
            os.environ["DYNAIRX_MODEL_DIR"] = previous_model_dir


@pytest.fixture(scope="session")
def base_url(live_dashboard: LiveDashboard) -> str:
    """pytest-playwright resolves relative ``page.goto`` paths against this."""
    return live_dashboard.base_url


@dataclass
class ConsoleWatch:
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def console(page) -> Iterator[ConsoleWatch]:  # noqa: ANN001 - playwright Page
    """Collect console errors and uncaught exceptions of ``page``; the test fails if any was unexpected."""
    watch = ConsoleWatch()
    page.on("console", lambda message: watch.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: watch.errors.append(f"uncaught: {error}"))
    yield watch
    problems = watch.unexpected()
    assert not problems, f"browser console errors: {problems}"


@pytest.fixture
def gp_page(page, console: ConsoleWatch, live_dashboard: LiveDashboard):  # noqa: ANN001, ANN201
    """A page signed in as demo-gp (console errors fail the test)."""
    page.set_default_timeout(30_000)
    sign_in(page, "demo-gp")
    return page
