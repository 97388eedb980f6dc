"""Roles, settings, passwords and identity-provider claim mapping: the security policy as pure logic."""

from __future__ import annotations

import pytest

from app.security import ROLE_PERMISSIONS, CurrentUser, Permission, Role, scope_for
from app.security.config import OIDCConfig, SecurityConfig, parse_role_map
from app.security.oidc import OIDCRefused, identity_from_claims
from app.security.passwords import WeakPasswordError, check_password_policy, hash_password, verify_password
from app.security.roles import parse_role
from data_access.settings import MissingSettingError, Settings

CLINICAL = {
    Permission.VIEW_WORKLIST,
    Permission.VIEW_PATIENT,
    Permission.RUN_WHAT_IF,
    Permission.EXPORT_PATIENT_LIST,
}


def _settings(*, demo: bool, secret: str | None) -> Settings:
    return Settings(
        database_url="sqlite://",
        model_service_url=None,
        model_service_token=None,
        secret_key=secret,
        device="cpu",
        demo=demo,
    )


def test_only_clinicians_reach_patient_level_data() -> None:
    for role in (Role.GP, Role.PHARMACIST):
        assert CLINICAL <= ROLE_PERMISSIONS[role]
    for role in (Role.RESEARCHER, Role.ADMIN):
        assert not CLINICAL & ROLE_PERMISSIONS[role], role


def test_only_admins_see_the_audit_trail_and_manage_users() -> None:
    admin_only = {Permission.VIEW_AUDIT, Permission.EXPORT_AUDIT, Permission.MANAGE_USERS}
    assert admin_only <= ROLE_PERMISSIONS[Role.ADMIN]
    for role in (Role.GP, Role.PHARMACIST, Role.RESEARCHER):
        assert not admin_only & ROLE_PERMISSIONS[role]


def test_every_permission_is_granted_to_some_role() -> None:
    granted = set().union(*ROLE_PERMISSIONS.values())
    assert granted == set(Permission)


def test_practice_scope_applies_to_clinicians_only() -> None:
    gp = CurrentUser.for_role("gp", Role.GP, ["P1"])
    researcher = CurrentUser.for_role("r", Role.RESEARCHER, ["P1"])
    assert scope_for(gp).practice_ids == frozenset({"P1"})
    assert scope_for(researcher).practice_ids is None
    assert scope_for(CurrentUser.for_role("gp2", Role.GP, [])).practice_ids == frozenset()


def test_no_user_means_no_patients() -> None:
    assert scope_for(None).practice_ids == frozenset()


def test_parse_role_is_strict() -> None:
    assert parse_role(" GP ") is Role.GP
    with pytest.raises(ValueError, match="expected one of"):
        parse_role("superuser")


def test_role_map_parsing() -> None:
    assert parse_role_map("gp-staff=gp, ICB Pharmacists=pharmacist") == {
        "gp-staff": Role.GP,
        "ICB Pharmacists": Role.PHARMACIST,
    }
    with pytest.raises(ValueError):
        parse_role_map("gp-staff")
    with pytest.raises(ValueError):
        parse_role_map("x=root")
    with pytest.raises(ValueError):
        parse_role_map(" , ")


def test_secret_key_required_outside_demo() -> None:
    with pytest.raises(MissingSettingError, match="SECRET_KEY"):
        SecurityConfig.from_settings(_settings(demo=False, secret=None))
    demo = SecurityConfig.from_settings(_settings(demo=True, secret=None))
    assert len(demo.secret_key) >= 32
    assert demo.secure_cookies is False
    assert SecurityConfig.from_settings(_settings(demo=False, secret="k" * 40)).secure_cookies is True


def test_dash_dev_tools_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASH_DEBUG", "true")
    with pytest.raises(RuntimeError, match="dev tools"):
        SecurityConfig.from_settings(_settings(demo=False, secret="k" * 40))


def test_half_configured_identity_provider_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNAIRX_OIDC_ISSUER", "https://idp.example.nhs.uk/")
    monkeypatch.setenv("DYNAIRX_OIDC_CLIENT_ID", "dynairx")
    with pytest.raises(MissingSettingError, match="DYNAIRX_OIDC_CLIENT_SECRET"):
        OIDCConfig.from_env()
    monkeypatch.setenv("DYNAIRX_OIDC_CLIENT_SECRET", "s3cret")
    with pytest.raises(MissingSettingError, match="DYNAIRX_OIDC_ROLE_MAP"):
        OIDCConfig.from_env()
    monkeypatch.setenv("DYNAIRX_OIDC_ROLE_MAP", "gps=gp")
    config = OIDCConfig.from_env()
    assert config is not None and config.issuer == "https://idp.example.nhs.uk"


def test_numeric_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNAIRX_SESSION_IDLE_MINUTES", "soon")
    with pytest.raises(ValueError, match="DYNAIRX_SESSION_IDLE_MINUTES"):
        SecurityConfig.from_settings(_settings(demo=True, secret=None))


@pytest.mark.parametrize("weak", ["short", "password1234", "aaaaaaaaaaaaaaaa", "x" * 300])
def test_weak_passwords_are_refused(weak: str) -> None:
    with pytest.raises(WeakPasswordError):
        check_password_policy(weak)


def test_argon2_hash_round_trip() -> None:
    stored = hash_password("a long enough passphrase")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "a long enough passphrase")
    assert not verify_password(stored, "a long enough passphrasE")
    assert not verify_password(None, "anything at all")
    assert not verify_password("not-a-hash", "anything at all")


OIDC = OIDCConfig(
    issuer="https://idp.test",
    client_id="c",
    client_secret="s",
    role_map={"gp-staff": Role.GP, "researchers": Role.RESEARCHER, "gp-leads": Role.GP},
    practices_claim="ods_codes",
)


def test_claims_map_to_one_role_and_practices() -> None:
    claims = {
        "sub": "123",
        "preferred_username": "jane.doe",
        "groups": ["gp-staff", "gp-leads", "other"],
        "ods_codes": ["A81001"],
    }
    assert identity_from_claims(claims, OIDC) == ("jane.doe", Role.GP, ["A81001"])


def test_claims_with_groups_as_text_and_sub_fallback() -> None:
    assert identity_from_claims({"sub": "u-1", "groups": "researchers"}, OIDC)[:2] == ("u-1", Role.RESEARCHER)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "u-1", "groups": ["other"]},
        {"sub": "u-1"},
        {"sub": "u-1", "groups": ["gp-staff", "researchers"]},
        {"sub": "bad name; drop", "groups": ["gp-staff"]},
    ],
)
def test_claims_without_exactly_one_role_are_refused(claims: dict) -> None:
    with pytest.raises(OIDCRefused):
        identity_from_claims(claims, OIDC)


def test_requires_passes_dashs_argument_free_layout_calls_and_refuses_the_rest() -> None:
    from werkzeug.exceptions import Forbidden

    from app.security import requires
    from app.security.identity import required_permission

    @requires(Permission.VIEW_AUDIT)
    def layout(**_query: str) -> str:
        return "shell"

    assert required_permission(layout) is Permission.VIEW_AUDIT
    assert layout() == "shell"  # Dash's validation-layout build: no arguments, no callback dispatch
    with pytest.raises(Forbidden):
        layout(search="x")  # anything else needs a signed-in user with the permission
