"""The signed-in session: what is kept in the (signed, HttpOnly) cookie and how it expires.

Flask's session is a signed cookie, so nothing in it can be altered by the browser; what it holds is only who
signed in and when. Role and practices are re-read from the database at most every ``reverify_s`` seconds, so
disabling an account or changing its practices takes effect within a minute, not at the next sign-in.
"""

from __future__ import annotations

import time

import flask

from app.security.config import SecurityConfig
from app.security.identity import CurrentUser
from app.security.roles import parse_role
from data_access import users as store
from data_access.queries.audit import append_audit_record

KEY_USER = "uid"
KEY_ROLE = "role"
KEY_PRACTICES = "practices"
KEY_METHOD = "via"
KEY_SIGNED_IN = "t0"
KEY_SEEN = "seen"
KEY_VERIFIED = "ver"
# Refresh the last-activity stamp at most this often, so the cookie is not rewritten on every callback.
SEEN_RESOLUTION_S = 15


def clock() -> float:
    """Seconds since the epoch (a seam so tests can move time forward)."""
    return time.time()


def start_session(user: CurrentUser, *, method: str) -> None:
    """Begin a fresh session (clearing whatever the browser had, against session fixation)."""
    flask.session.clear()
    now = int(clock())
    flask.session.update(
        {
            KEY_USER: user.username,
            KEY_ROLE: user.role.value,
            KEY_PRACTICES: sorted(user.practice_ids) if user.practice_ids is not None else None,
            KEY_METHOD: method,
            KEY_SIGNED_IN: now,
            KEY_SEEN: now,
            KEY_VERIFIED: now,
        }
    )


def end_session() -> None:
    flask.session.clear()


class SessionEnded(Exception):
    """The session existed but expired or its account can no longer sign in."""

    def __init__(self, username: str, reason: str) -> None:
        super().__init__(reason)
        self.username = username
        self.reason = reason


def user_from_session(config: SecurityConfig, engine) -> CurrentUser | None:  # noqa: ANN001 - Engine
    """The user of a valid session; None if nobody signed in; ``SessionEnded`` if it expired or was revoked."""
    session = flask.session
    username = session.get(KEY_USER)
    if not username:
        return None
    now = int(clock())
    try:
        signed_in = int(session[KEY_SIGNED_IN])
        seen = int(session[KEY_SEEN])
        verified = int(session[KEY_VERIFIED])
        role = parse_role(session[KEY_ROLE])
    except (KeyError, TypeError, ValueError):
        end_session()
        raise SessionEnded(str(username), "malformed session") from None
    if now - seen > config.idle_timeout_s:
        end_session()
        raise SessionEnded(username, "idle timeout")
    if now - signed_in > config.max_session_s:
        end_session()
        raise SessionEnded(username, "maximum session length")
    practices = session.get(KEY_PRACTICES)
    if now - verified >= config.reverify_s:
        credentials = store.get_credentials(engine, username)
        if credentials is None or not credentials.active:
            end_session()
            raise SessionEnded(username, "account disabled")
        try:
            role = parse_role(credentials.role)
        except ValueError:
            end_session()
            raise SessionEnded(username, "account has an unknown role") from None
        practices = sorted(credentials.practice_ids)
        session[KEY_ROLE] = role.value
        session[KEY_PRACTICES] = practices
        session[KEY_VERIFIED] = now
    if now - seen >= SEEN_RESOLUTION_S:
        session[KEY_SEEN] = now
    return CurrentUser.for_role(username, role, practices or [])


def record_session_end(engine, ended: SessionEnded) -> None:  # noqa: ANN001 - Engine
    append_audit_record(
        engine, username=ended.username, role=None, action="session_expired", detail=ended.reason
    )
