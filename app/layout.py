"""The navigation shell around every page: header with the product name and the signed-in user, the navigation
(only the pages that exist and that the user may open), the page container, and a footer on intended use.

Navigation is declared once in ``NAV_ITEMS`` for every page the product plans (DESIGN.md "Web paths"); an item shows
only when its page is registered, so pages built later (combinations, population, patterns, model, workshop, audit)
appear without touching this file.
"""

from __future__ import annotations

from dataclasses import dataclass

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from app import theme
from app.components.tour import tour_dialog, tour_invite, tour_launcher, tour_steps
from app.security import Permission, current_user

MAIN_ID = "main-content"
NAV_ID = "site-nav"
USER_ID = "signed-in-user"


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str
    permission: Permission


NAV_ITEMS = (
    NavItem("/", "Worklist", Permission.VIEW_WORKLIST),
    NavItem("/combinations", "Combinations", Permission.VIEW_AGGREGATE),
    NavItem("/population", "Population", Permission.VIEW_AGGREGATE),
    NavItem("/patterns", "Patterns", Permission.VIEW_AGGREGATE),
    NavItem("/model", "Model", Permission.VIEW_MODEL),
    NavItem("/workshop", "Workshop", Permission.GIVE_FEEDBACK),
    NavItem("/admin/audit", "Audit log", Permission.VIEW_AUDIT),
    NavItem("/help", "Help", Permission.VIEW_HELP),
)


def index_string() -> str:
    """Dash's page template with ``lang="en-GB"``, the palette as CSS variables and a skip link."""
    return f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
{{%metas%}}
<title>{{%title%}}</title>
{{%favicon%}}
{{%css%}}
<style>{theme.css_variables()}</style>
</head>
<body>
<a class="skip-link" href="#{MAIN_ID}">Skip to main content</a>
{{%app_entry%}}
<footer>
{{%config%}}
{{%scripts%}}
{{%renderer%}}
</footer>
</body>
</html>"""


def visible_nav_items(permissions: frozenset[Permission] | None) -> list[NavItem]:
    """The items whose page exists and which the user may open (none for no user)."""
    registered = {page.get("path") for page in dash.page_registry.values()}
    if permissions is None:
        return []
    return [item for item in NAV_ITEMS if item.path in registered and item.permission in permissions]


def shell_layout() -> html.Div:
    """The app layout (a function, so the header reflects the signed-in user of each page load)."""
    user = current_user()
    items = visible_nav_items(user.permissions if user else None)
    nav = dbc.Nav(
        [dbc.NavItem(dbc.NavLink(item.label, href=item.path, active="exact")) for item in items],
        id=NAV_ID,
        className="dx-nav",
        navbar=True,
    )
    account = (
        html.Div(
            [
                tour_launcher(),
                html.Span(f"Signed in as {user.username} ({user.role.value})", id=USER_ID, className="me-3"),
                html.A("Sign out", href="/logout", className="dx-header-link"),
            ],
            className="dx-account",
        )
        if user
        else html.Div()
    )
    header = html.Header(
        className="dx-header",
        children=html.Div(
            className="dx-header-inner",
            children=[
                html.A(
                    [
                        html.Span("DynAIRx", className="dx-brand"),
                        html.Span("Structured Medication Review support", className="dx-tagline"),
                    ],
                    href="/",
                    className="dx-brand-link",
                ),
                html.Nav(nav, **{"aria-label": "Main"}),
                account,
            ],
        ),
    )
    footer = html.Footer(
        className="dx-footer",
        children=html.P(
            [
                "DynAIRx is decision support for Structured Medication Reviews. It does not replace clinical "
                "judgement; flags cite their published sources and risks are model estimates. ",
                dcc.Link("Intended use and limitations", href="/help#limitations"),
                ".",
            ]
        ),
    )
    return html.Div(
        [
            header,
            tour_invite(),
            html.Main(dash.page_container, id=MAIN_ID, className="dx-main", tabIndex="-1"),
            footer,
            *tour_dialog(tour_steps(items)),
        ],
        className="dx-app",
    )
