"""User accounts: persistence only (who exists, their role, practices, password hash, lockout counters).

Hashing, password policy and role validation live in ``app.security``; this module stores what it is given, so it
stays free of web concerns and is shared by the CLI and the dashboard.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update

from data_access.schema import AppUser, Practice, UserPractice


class UserExistsError(ValueError):
    pass


class UnknownUserError(LookupError):
    pass


@dataclass(frozen=True)
class UserRecord:
    """An account as the CLI lists it: never includes the password hash."""

    username: str
    role: str
    active: bool
    practice_ids: tuple[str, ...]
    has_password: bool
    failed_attempts: int
    locked_until: dt.datetime | None
    created_at: dt.datetime


@dataclass(frozen=True)
class StoredCredentials:
    """What sign-in needs to check a password and decide about lockout."""

    user_id: int
    username: str
    role: str
    active: bool
    password_hash: str | None
    failed_attempts: int
    locked_until: dt.datetime | None
    practice_ids: tuple[str, ...]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _practices_of(conn, user_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:  # noqa: ANN001 - Connection
    ids = list(user_ids)
    if not ids:
        return {}
    rows = conn.execute(
        select(UserPractice.user_id, UserPractice.practice_id)
        .where(UserPractice.user_id.in_(ids))
        .order_by(UserPractice.practice_id)
    )
    found: dict[int, list[str]] = {}
    for user_id, practice_id in rows:
        found.setdefault(user_id, []).append(practice_id)
    return {user_id: tuple(practices) for user_id, practices in found.items()}


def get_credentials(engine: Engine, username: str) -> StoredCredentials | None:
    with engine.connect() as conn:
        row = conn.execute(select(AppUser.__table__).where(AppUser.username == username)).first()
        if row is None:
            return None
        practices = _practices_of(conn, [row.id]).get(row.id, ())
    return StoredCredentials(
        user_id=row.id,
        username=row.username,
        role=row.role,
        active=bool(row.active),
        password_hash=row.password_hash,
        failed_attempts=row.failed_attempts or 0,
        locked_until=row.locked_until,
        practice_ids=practices,
    )


def create_user(
    engine: Engine, username: str, role: str, practice_ids: Iterable[str], password_hash: str | None
) -> None:
    """Insert a new account; ``UserExistsError`` if the name is taken (accounts are never silently replaced)."""
    with engine.begin() as conn:
        if conn.execute(select(AppUser.id).where(AppUser.username == username)).first() is not None:
            raise UserExistsError(f"User {username!r} already exists")
        user_id = conn.execute(
            insert(AppUser)
            .values(
                username=username,
                password_hash=password_hash,
                role=role,
                active=True,
                failed_attempts=0,
                locked_until=None,
                created_at=_now(),
            )
            .returning(AppUser.id)
        ).scalar_one()
        _replace_practices(conn, user_id, practice_ids)


def upsert_user(
    engine: Engine,
    username: str,
    role: str,
    practice_ids: Iterable[str] | None,
    password_hash: str | None,
    *,
    keep_password: bool = False,
) -> None:
    """Create or update an account (demo accounts, single sign-on users), re-activating it and clearing lockout.

    ``practice_ids`` None keeps the practices already assigned; ``keep_password`` keeps the stored hash.
    """
    with engine.begin() as conn:
        user_id = conn.execute(select(AppUser.id).where(AppUser.username == username)).scalar()
        if user_id is None:
            user_id = conn.execute(
                insert(AppUser)
                .values(
                    username=username,
                    password_hash=password_hash,
                    role=role,
                    active=True,
                    failed_attempts=0,
                    locked_until=None,
                    created_at=_now(),
                )
                .returning(AppUser.id)
            ).scalar_one()
        else:
            values: dict[str, object] = {
                "role": role,
                "active": True,
                "failed_attempts": 0,
                "locked_until": None,
            }
            if not keep_password:
                values["password_hash"] = password_hash
            conn.execute(update(AppUser).where(AppUser.id == user_id).values(**values))
        if practice_ids is not None:
            _replace_practices(conn, user_id, practice_ids)


def _replace_practices(conn, user_id: int, practice_ids: Iterable[str]) -> None:  # noqa: ANN001 - Connection
    conn.execute(delete(UserPractice).where(UserPractice.user_id == user_id))
    unique = sorted(set(practice_ids))
    if unique:
        conn.execute(insert(UserPractice), [{"user_id": user_id, "practice_id": p} for p in unique])


def list_users(engine: Engine) -> list[UserRecord]:
    with engine.connect() as conn:
        rows = list(conn.execute(select(AppUser.__table__).order_by(AppUser.username)))
        practices = _practices_of(conn, [row.id for row in rows])
    return [
        UserRecord(
            username=row.username,
            role=row.role,
            active=bool(row.active),
            practice_ids=practices.get(row.id, ()),
            has_password=row.password_hash is not None,
            failed_attempts=row.failed_attempts or 0,
            locked_until=row.locked_until,
            created_at=row.created_at,
        )
        for row in rows
    ]


def disable_user(engine: Engine, username: str) -> None:
    """Mark the account inactive (kept, never deleted, so the audit trail's names stay meaningful)."""
    with engine.begin() as conn:
        result = conn.execute(update(AppUser).where(AppUser.username == username).values(active=False))
        if result.rowcount == 0:
            raise UnknownUserError(f"No user named {username!r}")


def set_password_hash(engine: Engine, username: str, password_hash: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(AppUser).where(AppUser.username == username).values(password_hash=password_hash))


def record_failed_attempt(engine: Engine, user_id: int, *, max_attempts: int, lockout: dt.timedelta) -> bool:
    """Count a failed password; lock the account once ``max_attempts`` is reached. True if it is now locked.

    The increment happens in SQL (``failed_attempts + 1``) so concurrent guesses from several workers are all
    counted.
    """
    with engine.begin() as conn:
        conn.execute(
            update(AppUser).where(AppUser.id == user_id).values(failed_attempts=AppUser.failed_attempts + 1)
        )
        attempts = conn.execute(select(AppUser.failed_attempts).where(AppUser.id == user_id)).scalar_one()
        if attempts >= max_attempts:
            conn.execute(
                update(AppUser)
                .where(AppUser.id == user_id)
                .values(locked_until=_now() + lockout, failed_attempts=0)
            )
            return True
    return False


def clear_failed_attempts(engine: Engine, user_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(AppUser).where(AppUser.id == user_id).values(failed_attempts=0, locked_until=None)
        )


def first_practice_ids(engine: Engine, count: int) -> list[str]:
    """The first ``count`` practices by id (the demo assigns its clinicians to these)."""
    with engine.connect() as conn:
        return list(conn.execute(select(Practice.id).order_by(Practice.id).limit(count)).scalars())
