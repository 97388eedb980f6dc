"""Small pieces shared by the combinations, population, model and planning pages."""

from __future__ import annotations

import datetime as dt

from dash import html

from app.runtime import app_context
from data_access.queries.population import SMALL_CELL, SUPPRESSED

GRAPH_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
DATA_CUT_SECONDS = 600.0
# Aggregates change only when the data are re-derived, so they are kept longer than the worklist's lookups.
AGGREGATE_CACHE_SECONDS = 900.0


def data_cut() -> dt.date:
    """The date the data run up to (``data_access.derive.data_cut_date``): "now" for every count on these pages.
    Cached per app: it changes only when new data are loaded."""
    from data_access.derive import data_cut_date

    context = app_context()
    return context.cached(("data-cut",), lambda: data_cut_date(context.engine), seconds=DATA_CUT_SECONDS)


def uk_date(day: dt.date) -> str:
    return day.strftime("%d %b %Y")


def suppression_note() -> html.P:
    """What "<5" means wherever it appears."""
    return html.P(
        [
            html.Strong(f"{SUPPRESSED}: "),
            f"a count from 1 to {SMALL_CELL - 1} (or one that would reveal such a count) is not shown, and nor is any "
            "percentage or rate computed from it, so that no individual can be recognised (standard NHS "
            "small-number suppression).",
        ],
        className="small text-secondary",
    )
