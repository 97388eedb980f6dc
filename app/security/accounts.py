"""Account management (the ``dynairx users`` commands and the demo accounts) and password sign-in decisions."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Engine

from app.security.passwords import hash_password, needs_rehash, rehash, verify_password
from app.security.roles import PRACTICE_SCOPED_ROLES, Role, parse_role
from data_access import users as store
from data_access.queries.audit import append_audit_record
from data_access.users import UserRecord

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,99}$")
DEMO_ACCOUNTS: dict[str, Role] = {
    "demo-gp": Role.GP,
    "demo-pharmacist": Role.PHARMACIST,
    "demo-researcher": Role.RESEARCHER,
    "demo-admin": Role.ADMIN,
}
# The demo GP works at one practice and the demo pharmacist covers two (a PCN pharmacist serves several), so the
# demo shows practice scoping rather than a user who sees everyone.
DEMO_PRACTICE_COUNT = {"demo-gp": 1, "demo-pharmacist": 2}
CLI_ACTOR = "(cli)"


def validate_username(username: str) -> str:
    username = username.strip()
    if not USERNAME_PATTERN.fullmatch(username):
        raise ValueError(
            "User names are 2-100 characters: letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    return username


def _practice_list(role: Role, practices: Iterable[str] | str | None) -> list[str]:
    if isinstance(practices, str):
        practices = [p for p in (part.strip() for part in practices.split(",")) if p]
    chosen = sorted(set(practices or []))
    if role in PRACTICE_SCOPED_ROLES and not chosen:
        raise ValueError(f"A {role.value} must be assigned at least one practice")
    return chosen


def add_user(
    engine: Engine,
    username: str,
    role: Role | str,
    practices: Iterable[str] | str | None,
    password: str | None,
) -> None:
    """Create an account. ``password`` None makes a single-sign-on-only account (no local password).

    GPs and pharmacists need at least one practice; ``practices`` may be a list or a comma-separated string.
    """
    username = validate_username(username)
    role = parse_role(role) if isinstance(role, str) else role
    chosen = _practice_list(role, practices)
    password_hash = hash_password(password) if password is not None else None
    store.create_user(engine, username, role.value, chosen, password_hash)
    append_audit_record(
        engine, username=CLI_ACTOR, role=None, action="user_added", detail=f"{username} as {role.value}"
    )


def list_users(engine: Engine) -> list[dict[str, object]]:
    """Every account as a dict: username, role, active, practices (list), has_password, locked_until, created_at.

    Password hashes never leave ``data_access.users``.
    """
    return [_as_listing(record) for record in store.list_users(engine)]


def _as_listing(record: UserRecord) -> dict[str, object]:
    return {
        "username": record.username,
        "role": record.role,
        "active": record.active,
        "practices": list(record.practice_ids),
        "has_password": record.has_password,
        "locked_until": record.locked_until,
        "created_at": record.created_at,
    }


def disable_user(engine: Engine, username: str) -> None:
    """Disable the account; any session it holds ends at its next request (see the guard's re-verification)."""
    store.disable_user(engine, username)
    append_audit_record(engine, username=CLI_ACTOR, role=None, action="user_disabled", detail=username)


def ensure_demo_accounts(engine: Engine, password: str) -> dict[str, tuple[str, ...]]:
    """Create or refresh the four demo accounts with ``password``; returns each account's practices.

    Re-running the demo with a new password updates the accounts, so the password the CLI prints always works.
    """
    password_hash = hash_password(password)
    assigned: dict[str, tuple[str, ...]] = {}
    for username, role in DEMO_ACCOUNTS.items():
        practices = (
            store.first_practice_ids(engine, DEMO_PRACTICE_COUNT[username])
            if username in DEMO_PRACTICE_COUNT
            else []
        )
        store.upsert_user(engine, username, role.value, practices, password_hash)
        assigned[username] = tuple(practices)
    return assigned


class SignInFailure(StrEnum):
    UNKNOWN_ACCOUNT = "unknown_account"
    BAD_PASSWORD = "bad_password"
    LOCKED = "locked"
    DISABLED = "disabled"
    NO_PASSWORD = "no_local_password"
    BAD_ROLE = "bad_role"


@dataclass(frozen=True)
class SignInResult:
    username: str | None
    role: Role | None = None
    practice_ids: tuple[str, ...] = ()
    failure: SignInFailure | None = None
    locked_now: bool = False

    @property
    def ok(self) -> bool:
        return self.failure is None


def check_password_sign_in(
    engine: Engine, username: str, password: str, *, max_attempts: int, lockout: dt.timedelta
) -> SignInResult:
    """Decide a password sign-in. Every path costs one Argon2 verification, so timing reveals nothing.

    A locked account is refused even with the right password until the lock expires (OWASP Authentication Cheat
    Sheet, "Account lockout"); each wrong password counts towards the lock.
    """
    credentials = store.get_credentials(engine, username) if USERNAME_PATTERN.fullmatch(username) else None
    password_ok = verify_password(credentials.password_hash if credentials else None, password)
    if credentials is None:
        return SignInResult(username=None, failure=SignInFailure.UNKNOWN_ACCOUNT)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if credentials.locked_until is not None and credentials.locked_until > now:
        return SignInResult(username=credentials.username, failure=SignInFailure.LOCKED)
    if not credentials.active:
        return SignInResult(username=credentials.username, failure=SignInFailure.DISABLED)
    if credentials.password_hash is None:
        return SignInResult(username=credentials.username, failure=SignInFailure.NO_PASSWORD)
    if not password_ok:
        locked = store.record_failed_attempt(
            engine, credentials.user_id, max_attempts=max_attempts, lockout=lockout
        )
        return SignInResult(
            username=credentials.username, failure=SignInFailure.BAD_PASSWORD, locked_now=locked
        )
    try:
        role = parse_role(credentials.role)
    except ValueError:
        return SignInResult(username=credentials.username, failure=SignInFailure.BAD_ROLE)
    if credentials.failed_attempts or credentials.locked_until is not None:
        store.clear_failed_attempts(engine, credentials.user_id)
    if needs_rehash(credentials.password_hash):
        store.set_password_hash(engine, credentials.username, rehash(password))
    return SignInResult(username=credentials.username, role=role, practice_ids=credentials.practice_ids)
