"""A short in-app tour for first-time users: an invitation below the header, a step-by-step dialog, and a
"Take the tour" button in the header to replay it.

Why it is built this way:
- The tour runs entirely in the browser (clientside callbacks in ``assets/tour.js``, registered per app by
  ``register_tour_callbacks``), so it costs no server round trip and needs no permission of its own.
- Dismissal is remembered in the browser's localStorage through a ``dcc.Store(storage_type="local")`` that only
  ever holds the boolean ``true``: no patient data and nothing about the user.
- The invitation is inline rather than a modal that opens by itself, so a first visit is never blocked (and
  keyboard and screen-reader users are not dropped into a dialog they did not ask for).
- The steps describe only the pages this user can open (the shell's navigation items), so a researcher is never
  shown the worklist they cannot see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import dash
import dash_bootstrap_components as dbc
from dash import ALL, ClientsideFunction, Input, Output, State, dcc, html

TOUR_DISMISSED_ID = "tour-dismissed"
TOUR_INVITE_ID = "tour-invite"
TOUR_INVITE_START_ID = "tour-invite-start"
TOUR_INVITE_DISMISS_ID = "tour-invite-dismiss"
TOUR_LAUNCH_ID = "tour-launch"
TOUR_DIALOG_ID = "tour-dialog"
TOUR_TITLE_ID = "tour-title"
TOUR_STEP_ID = "tour-step"
TOUR_STEP_PANEL = "tour-step-panel"
TOUR_PROGRESS_ID = "tour-progress"
TOUR_BACK_ID = "tour-back"
TOUR_NEXT_ID = "tour-next"
CLIENTSIDE_NAMESPACE = "dynairx_tour"


class NavEntry(Protocol):
    path: str
    label: str


@dataclass(frozen=True)
class TourStep:
    title: str
    text: str
    path: str | None = None


PAGE_STEPS: dict[str, str] = {
    "/": (
        "Your practice's patients for a Structured Medication Review. 'Why now' puts first the people whose picture "
        "changed since their last review; filter by SMR cohort, safety flags or rising risk, and export the list."
    ),
    "/plan": (
        "Plan this month's SMRs: enter the practice's review slots and DynAIRx proposes whom to offer them to, "
        "with a check that the proposal reflects the eligible population."
    ),
    "/combinations": "Which combinations of medicines are common across the population, and which carry safety flags.",
    "/population": "The population at a glance: SMR cohorts, risks and safety flags across practices.",
    "/patterns": (
        "Patterns of care: prescribing cascades, found where one medicine is started after another more often "
        "than chance (prescription sequence symmetry)."
    ),
    "/model": "How the risk model was built and how well it performs, with its model card and limitations.",
    "/workshop": (
        "Co-design workshop mode: walk through synthetic persona patients, compare different ways of showing the "
        "same data, and collect participants' ratings and comments."
    ),
    "/admin/audit": "The audit log: who opened which record and every export. Search it and export it.",
    "/help": (
        "What every score, flag and chart means, intended use and limitations, and the user guide for your role."
    ),
}
PATIENT_STEP = TourStep(
    "A patient's page",
    "Open a patient from the worklist: current risks with their uncertainty, safety flags with their published "
    "source, the medicines timeline, a what-if for stopping or switching a medicine, and a printable SMR pack.",
)
WELCOME_STEP = TourStep(
    "Welcome to DynAIRx",
    "DynAIRx supports Structured Medication Reviews in general practice. This short tour shows the pages you can "
    "use. You can leave it at any time.",
)
CLOSING_STEP = TourStep(
    "Decision support, not a decision",
    "Every safety flag cites its published source, and every risk is a model estimate with its uncertainty. "
    "Replay this tour any time with 'Take the tour' at the top of the page.",
)


def tour_steps(items: Sequence[NavEntry]) -> list[TourStep]:
    """Welcome, one step per page in ``items`` (the user's navigation) and a closing step."""
    steps = [WELCOME_STEP]
    for item in items:
        text = PAGE_STEPS.get(item.path, f"Open '{item.label}' from the menu at the top of every page.")
        steps.append(TourStep(item.label, text, item.path))
        if item.path == "/":
            steps.append(PATIENT_STEP)
    steps.append(CLOSING_STEP)
    return steps


def tour_launcher() -> dbc.Button:
    """The header button that (re)plays the tour."""
    return dbc.Button(
        "Take the tour",
        id=TOUR_LAUNCH_ID,
        color="light",
        outline=True,
        size="sm",
        className="dx-tour-launch me-3",
        n_clicks=0,
    )


def tour_invite() -> html.Div:
    """The first-visit invitation (hidden until the browser has checked the dismissal flag)."""
    return html.Div(
        [
            html.P("New to DynAIRx? A one-minute tour shows the pages you can use."),
            dbc.Button("Start the tour", id=TOUR_INVITE_START_ID, color="primary", size="sm", n_clicks=0),
            dbc.Button(
                "No thanks", id=TOUR_INVITE_DISMISS_ID, color="secondary", outline=True, size="sm", n_clicks=0
            ),
        ],
        id=TOUR_INVITE_ID,
        className="dx-tour-invite",
        hidden=True,
        role="region",
        **{"aria-label": "Tour invitation"},
    )


def tour_dialog(steps: Sequence[TourStep]) -> list:
    """The dialog with one panel per step, and the stores the clientside callbacks use."""
    panels = [
        html.Section(
            [
                html.H3(step.title),
                html.P(step.text),
                *([dcc.Link(f"Go to {step.title}", href=step.path)] if step.path else []),
            ],
            id={"type": TOUR_STEP_PANEL, "index": index},
            className="dx-tour-step",
            hidden=index != 0,
        )
        for index, step in enumerate(steps)
    ]
    return [
        dcc.Store(id=TOUR_DISMISSED_ID, storage_type="local"),
        dcc.Store(id=TOUR_STEP_ID, data=0),
        dbc.Modal(
            [
                dbc.ModalHeader(dbc.ModalTitle("Tour of DynAIRx", id=TOUR_TITLE_ID)),
                dbc.ModalBody(panels),
                dbc.ModalFooter(
                    [
                        html.Span(
                            id=TOUR_PROGRESS_ID, className="dx-tour-progress", **{"aria-live": "polite"}
                        ),
                        dbc.Button("Back", id=TOUR_BACK_ID, color="secondary", outline=True, n_clicks=0),
                        dbc.Button("Next", id=TOUR_NEXT_ID, color="primary", n_clicks=0),
                    ]
                ),
            ],
            id=TOUR_DIALOG_ID,
            is_open=False,
            centered=True,
            size="lg",
            labelledby=TOUR_TITLE_ID,
        ),
    ]


def register_tour_callbacks(app: dash.Dash) -> None:
    """Register the tour's clientside callbacks on ``app`` (once per app: Dash keeps callbacks per app)."""
    panels = {"type": TOUR_STEP_PANEL, "index": ALL}
    app.clientside_callback(
        ClientsideFunction(namespace=CLIENTSIDE_NAMESPACE, function_name="showInvite"),
        Output(TOUR_INVITE_ID, "hidden"),
        Input(TOUR_DISMISSED_ID, "data"),
    )
    app.clientside_callback(
        ClientsideFunction(namespace=CLIENTSIDE_NAMESPACE, function_name="navigate"),
        Output(TOUR_DIALOG_ID, "is_open"),
        Output(TOUR_STEP_ID, "data"),
        Input(TOUR_LAUNCH_ID, "n_clicks"),
        Input(TOUR_INVITE_START_ID, "n_clicks"),
        Input(TOUR_BACK_ID, "n_clicks"),
        Input(TOUR_NEXT_ID, "n_clicks"),
        State(TOUR_STEP_ID, "data"),
        State(panels, "id"),
        State(TOUR_BACK_ID, "id"),
        State(TOUR_NEXT_ID, "id"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction(namespace=CLIENTSIDE_NAMESPACE, function_name="showStep"),
        Output(panels, "hidden"),
        Output(TOUR_PROGRESS_ID, "children"),
        Output(TOUR_BACK_ID, "disabled"),
        Output(TOUR_NEXT_ID, "children"),
        Input(TOUR_STEP_ID, "data"),
        State(panels, "id"),
    )
    app.clientside_callback(
        ClientsideFunction(namespace=CLIENTSIDE_NAMESPACE, function_name="remember"),
        Output(TOUR_DISMISSED_ID, "data"),
        Input(TOUR_DIALOG_ID, "is_open"),
        Input(TOUR_INVITE_DISMISS_ID, "n_clicks"),
        State(TOUR_INVITE_DISMISS_ID, "id"),
        prevent_initial_call=True,
    )
