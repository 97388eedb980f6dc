"""User guides at ``/help/guides/<role>`` (gp, pharmacist, researcher, admin): the Markdown guides of ``docs/``
with the screenshots the end-to-end tests produce (see ``app.components.guides``)."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from app.components.guides import guide_components, guide_for, guide_links
from app.security import Permission, requires

dash.register_page(
    __name__, path_template="/help/guides/<role>", title="User guide · DynAIRx", name="User guide", order=91
)


@requires(Permission.VIEW_HELP)
def layout(role: str | None = None, **_query: Any) -> html.Div:
    back = html.Nav(
        dcc.Link("← Back to Help", href="/help"), className="mb-2", **{"aria-label": "Breadcrumb"}
    )
    guide = guide_for(role)
    if guide is None:
        return html.Div(
            [back, html.H1("User guides", className="h3"), html.P("Choose a guide:"), guide_links()],
            className="dx-guide",
        )
    return html.Div([back, *guide_components(guide)], className="dx-guide")
