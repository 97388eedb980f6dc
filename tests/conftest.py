"""Database fixtures shared by the whole suite.

Integration tests run the same checks on SQLite and on a real Postgres: each test session creates its own
Postgres database (a random name) on 127.0.0.1:5432 and drops it at the end, never touching others.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from db_support import POSTGRES_ADMIN_URL
from sqlalchemy import Engine, create_engine, text

from data_access.db import make_engine
from data_access.migrate import upgrade_database

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty SQLite database in a temporary file."""
    engine = make_engine(f"sqlite:///{tmp_path / 'test.sqlite'}")
    upgrade_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """Create a throwaway Postgres database for this test session and drop it afterwards."""
    name = f"dynairx_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - turn any connection problem into one clear failure
        admin.dispose()
        pytest.fail(
            f"Postgres is required for integration tests (CI starts it; locally run "
            f"'pg_ctlcluster --skip-systemctl-redirect 15 main start'): {exc}"
        )
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture
def pg_engine(pg_database_url: str) -> Iterator[Engine]:
    """A migrated Postgres database, emptied before each test (schema dropped and recreated)."""
    engine = make_engine(pg_database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def db_engine(request: pytest.FixtureRequest) -> Engine:
    """The same test on both back ends."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_engine")
    return request.getfixturevalue("pg_engine")


DEMO_TEST_PATIENTS = 300
DEMO_TEST_SEED = 11


@pytest.fixture(scope="session")
def built_demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A small demo database built once per test session with the real pipeline.

    Synthetic cohort → load → flags and scores → one-epoch model → prediction cache → worklist. Tests that only
    read from it share it; tests that write must build their own.
    """
    from data_access.demo import build_demo_database

    root = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{root / 'demo.sqlite'}"
    model_dir = root / "models"
    engine = make_engine(url)
    upgrade_database(engine)
    summary = build_demo_database(
        engine, patients=DEMO_TEST_PATIENTS, seed=DEMO_TEST_SEED, epochs=1, model_dir=model_dir
    )
    engine.dispose()
    return {"url": url, "model_dir": model_dir, "summary": summary}
