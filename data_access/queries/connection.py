"""Let every query accept either an engine or a connection the caller already holds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine


@contextmanager
def connected(conn: Connection | Engine) -> Iterator[Connection]:
    """Use a given connection as is (the caller owns its transaction), or open and close one from an engine."""
    if isinstance(conn, Engine):
        with conn.connect() as connection:
            yield connection
    else:
        yield conn
