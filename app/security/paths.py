"""Which URL paths are public, which are Dash's JSON endpoints, and how a page path maps to its layout."""

from __future__ import annotations

import re
from typing import Any

import dash

# Served without sign-in: the sign-in flow itself and static files (CSS, fonts, images, favicon). Everything else,
# including Dash's layout, dependency and callback endpoints and its JavaScript bundles, needs a session.
PUBLIC_PATHS = frozenset(
    {"/login", "/logout", "/login/oidc", "/login/oidc/callback", "/_favicon.ico", "/favicon.ico"}
)
PUBLIC_PREFIXES = ("/assets/", "/static/")
STATIC_PREFIXES = ("/assets/", "/static/", "/_dash-component-suites/")
DISPATCH_SUFFIX = "/_dash-update-component"
_TEMPLATE_VARIABLE = re.compile(r"^<([A-Za-z_][A-Za-z0-9_]*)>$")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def is_static(path: str) -> bool:
    return path.startswith(STATIC_PREFIXES) or path in {"/_favicon.ico", "/favicon.ico"}


def is_dash_endpoint(path: str) -> bool:
    """Dash's machine endpoints (layout, dependencies, callbacks, reload hash), answered with 401, not a redirect."""
    return path.startswith("/_") and not path.startswith("/_favicon")


def is_dispatch(path: str) -> bool:
    return path.endswith(DISPATCH_SUFFIX)


def match_page(path: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The registered Dash page serving ``path`` and its path variables, or None.

    Mirrors Dash's own matching (exact ``path`` first, then ``path_template`` segment by segment) using only the
    public ``dash.page_registry``.
    """
    wanted = path.rstrip("/") or "/"
    pages = list(dash.page_registry.values())
    for page in pages:
        page_path = (page.get("path") or "").rstrip("/") or "/"
        if page_path == wanted and not page.get("path_template"):
            return page, {}
    wanted_parts = wanted.strip("/").split("/")
    for page in pages:
        template = page.get("path_template")
        if not template:
            continue
        parts = template.strip("/").split("/")
        if len(parts) != len(wanted_parts):
            continue
        variables: dict[str, str] = {}
        for expected, actual in zip(parts, wanted_parts, strict=True):
            variable = _TEMPLATE_VARIABLE.match(expected)
            if variable:
                variables[variable.group(1)] = actual
            elif expected != actual:
                break
        else:
            return page, variables
    return None


def safe_next(target: str | None) -> str:
    """A post-sign-in destination that can only be a path on this site (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(ch) < 32 for ch in target) or target.startswith(("/login", "/logout")):
        return "/"
    return target
