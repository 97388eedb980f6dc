"""Which patients a query may see: the practices of the signed-in user.

``Scope(practice_ids=None)`` means every practice (administrators and researchers working on aggregates); an empty
frozenset means none at all, which is what a user with no practice assigned gets, so a missing assignment fails
closed rather than open.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Engine, false, select, true

from data_access.schema import Patient


@dataclass(frozen=True)
class Scope:
    """The practices whose patients a query may return (``None`` = every practice)."""

    practice_ids: frozenset[str] | None

    @classmethod
    def everything(cls) -> Scope:
        return cls(practice_ids=None)

    @classmethod
    def practices(cls, *practice_ids: str) -> Scope:
        return cls(practice_ids=frozenset(practice_ids))

    def clause(self, practice_column: ColumnElement) -> ColumnElement[bool]:
        """A WHERE condition restricting ``practice_column`` to this scope."""
        if self.practice_ids is None:
            return true()
        if not self.practice_ids:
            return false()
        return practice_column.in_(sorted(self.practice_ids))

    def cache_key(self) -> str:
        """A stable text form, so that anything cached per scope never leaks across users."""
        if self.practice_ids is None:
            return "*"
        return ",".join(sorted(self.practice_ids))


def patient_in_scope(conn: Connection | Engine, scope: Scope, patient_id: str) -> bool:
    """Whether ``patient_id`` exists and belongs to one of the scope's practices."""
    query = select(Patient.id).where(Patient.id == patient_id, scope.clause(Patient.practice_id))
    if isinstance(conn, Engine):
        with conn.connect() as connection:
            return connection.execute(query).first() is not None
    return conn.execute(query).first() is not None
