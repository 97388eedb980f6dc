"""Integration fixtures of the dashboard's queries.

``demo_engine``: one small demo database per test session, built with the real pipeline (synthetic cohort → flags
and scores → model, 1 epoch → predictions → worklist; ``tests/dashboard_factory.build_demo_cohort``), on SQLite. It
is built only when a test asks for it (it takes minutes), so the tests that need it are marked ``slow``; most query
tests use small hand-made cohorts from ``tests/dashboard_factory.py`` instead, on both back ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dashboard_factory import build_demo_cohort
from sqlalchemy import Engine

from data_access.db import make_engine
from data_access.migrate import upgrade_database


@pytest.fixture(scope="session")
def demo_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    workdir = tmp_path_factory.mktemp("demo-cohort")
    engine = make_engine(f"sqlite:///{workdir / 'demo.sqlite'}")
    upgrade_database(engine)
    build_demo_cohort(engine, workdir / "models")
    yield engine
    engine.dispose()
