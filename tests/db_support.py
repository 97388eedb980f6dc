"""Database settings shared by fixtures and tests (imported by name, not through conftest)."""

from __future__ import annotations

import os

# The throwaway test databases are created through this maintenance connection (CI: Postgres 15, trust auth).
POSTGRES_ADMIN_URL = os.environ.get(
    "DYNAIRX_TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
