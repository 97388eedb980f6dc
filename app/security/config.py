"""Security settings read from the environment; a half-configured identity provider refuses to start.

| variable | meaning (default) |
|---|---|
| `DYNAIRX_SESSION_IDLE_MINUTES` | sign out after this much inactivity (30) |
| `DYNAIRX_SESSION_MAX_HOURS` | sign out this long after sign-in, whatever the activity (12) |
| `DYNAIRX_LOCKOUT_ATTEMPTS` / `DYNAIRX_LOCKOUT_MINUTES` | failed passwords before an account locks, and for how long (5, 15) |
| `DYNAIRX_IP_FAILURE_LIMIT` | failed sign-ins from one address per lockout window before it is refused (20) |
| `DYNAIRX_TRUSTED_PROXIES` | reverse proxies in front of the app whose X-Forwarded-For/-Proto to trust (0) |
| `DYNAIRX_OIDC_ISSUER` | OpenID Connect issuer URL; setting it turns single sign-on on |
| `DYNAIRX_OIDC_CLIENT_ID`, `DYNAIRX_OIDC_CLIENT_SECRET` | the client registered with the identity provider |
| `DYNAIRX_OIDC_ROLE_MAP` | `group=role,group=role`: identity-provider groups that grant each role |
| `DYNAIRX_OIDC_GROUPS_CLAIM` | claim listing the user's groups (`groups`) |
| `DYNAIRX_OIDC_PRACTICES_CLAIM` | claim listing the user's practice (ODS) codes; unset: practices assigned locally |
| `DYNAIRX_OIDC_USERNAME_CLAIM` | claim used as the user name (`preferred_username`, falling back to `sub`) |
| `DYNAIRX_OIDC_SCOPES` | scopes requested (`openid profile email`) |
| `DYNAIRX_OIDC_LABEL` | text of the sign-in button (`Sign in with your organisation account`) |
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from app.security.roles import Role, parse_role
from data_access.settings import MissingSettingError, Settings


def _int_env(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}")
    return value


def parse_role_map(text: str) -> dict[str, Role]:
    """``"gp-staff=gp, pharmacists=pharmacist"`` → {group: Role}; any malformed entry is an error."""
    mapping: dict[str, Role] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        group, sep, role = entry.rpartition("=")
        if not sep or not group.strip():
            raise ValueError(f"DYNAIRX_OIDC_ROLE_MAP entry {entry!r} is not group=role")
        mapping[group.strip()] = parse_role(role)
    if not mapping:
        raise ValueError("DYNAIRX_OIDC_ROLE_MAP maps no group to a role")
    return mapping


@dataclass(frozen=True)
class OIDCConfig:
    issuer: str
    client_id: str
    client_secret: str
    role_map: dict[str, Role]
    groups_claim: str = "groups"
    practices_claim: str | None = None
    username_claim: str = "preferred_username"
    scopes: str = "openid profile email"
    label: str = "Sign in with your organisation account"

    @classmethod
    def from_env(cls) -> OIDCConfig | None:
        issuer = os.environ.get("DYNAIRX_OIDC_ISSUER", "").strip()
        if not issuer:
            return None

        def required(name: str, why: str) -> str:
            value = os.environ.get(name, "").strip()
            if not value:
                raise MissingSettingError(name, why)
            return value

        return cls(
            issuer=issuer.rstrip("/"),
            client_id=required(
                "DYNAIRX_OIDC_CLIENT_ID", "DYNAIRX_OIDC_ISSUER is set, so single sign-on needs it"
            ),
            client_secret=required(
                "DYNAIRX_OIDC_CLIENT_SECRET", "DYNAIRX_OIDC_ISSUER is set, so single sign-on needs it"
            ),
            role_map=parse_role_map(
                required(
                    "DYNAIRX_OIDC_ROLE_MAP", "identity-provider groups must map to roles (group=role,...)"
                )
            ),
            groups_claim=os.environ.get("DYNAIRX_OIDC_GROUPS_CLAIM", "").strip() or "groups",
            practices_claim=os.environ.get("DYNAIRX_OIDC_PRACTICES_CLAIM", "").strip() or None,
            username_claim=os.environ.get("DYNAIRX_OIDC_USERNAME_CLAIM", "").strip() or "preferred_username",
            scopes=os.environ.get("DYNAIRX_OIDC_SCOPES", "").strip() or "openid profile email",
            label=os.environ.get("DYNAIRX_OIDC_LABEL", "").strip()
            or "Sign in with your organisation account",
        )


@dataclass(frozen=True)
class SecurityConfig:
    demo: bool
    secret_key: str
    idle_timeout_s: int = 30 * 60
    max_session_s: int = 12 * 3600
    lockout_attempts: int = 5
    lockout_s: int = 15 * 60
    ip_failure_limit: int = 20
    trusted_proxies: int = 0
    oidc: OIDCConfig | None = None
    # Re-read the account (disabled? role or practices changed?) at most this often per session.
    reverify_s: int = 60

    @property
    def secure_cookies(self) -> bool:
        """Outside demo mode the service is only ever served over HTTPS, so cookies never travel in clear."""
        return not self.demo

    @classmethod
    def from_settings(cls, settings: Settings) -> SecurityConfig:
        secret = settings.secret_key
        if not secret:
            if not settings.demo:
                raise MissingSettingError("SECRET_KEY", "it signs session cookies outside demo mode")
            # Demo only: a per-process key. Sessions end when the demo restarts, which is what a demo wants.
            secret = secrets.token_urlsafe(48)
        if not settings.demo and _truthy(os.environ.get("DASH_DEBUG")):
            raise RuntimeError("DASH_DEBUG is set: Dash dev tools must be off outside demo mode")
        return cls(
            demo=settings.demo,
            secret_key=secret,
            idle_timeout_s=_int_env("DYNAIRX_SESSION_IDLE_MINUTES", 30, 1) * 60,
            max_session_s=_int_env("DYNAIRX_SESSION_MAX_HOURS", 12, 1) * 3600,
            lockout_attempts=_int_env("DYNAIRX_LOCKOUT_ATTEMPTS", 5, 1),
            lockout_s=_int_env("DYNAIRX_LOCKOUT_MINUTES", 15, 1) * 60,
            ip_failure_limit=_int_env("DYNAIRX_IP_FAILURE_LIMIT", 20, 1),
            trusted_proxies=_int_env("DYNAIRX_TRUSTED_PROXIES", 0, 0),
            oidc=OIDCConfig.from_env(),
        )


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}
