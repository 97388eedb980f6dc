"""Co-design workshop at ``/workshop``: researchers walk clinicians and patients through a few synthetic persona
patients, switch between alternative visualisations of the same data, and collect ratings and comments.

- Synthetic data only: the page and every callback refuse to run while any patient in the database was imported
  (``workshop_readiness``); the refusal says why.
- Identifiers hidden: the browser only ever holds the persona's key ('frailty-many-medicines') and the workshop
  session id; the patient behind a persona is resolved on the server (``workshop_personas``, cached per scope) and
  never shown. No patient data goes into a ``dcc.Store``.
- Participants join a session with ``/workshop?session=<id>`` (the presenter's page shows the link); each rating is
  stored with the session, view and variant (``data_access.queries.workshop``).
- Large type and large touch targets (``assets/workshop.css``), so the page works on a projector and a tablet.
"""

from __future__ import annotations

import logging
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from app.components.variants import render_variant
from app.runtime import app_context
from app.security import AuditAction, Permission, audit, current_user, requires, scope_for
from data_access.queries.patient import PatientNotFound, PatientRecordView, patient_record
from data_access.queries.workshop import (
    COMMENT_MAX_CHARS,
    MESSAGES,
    PARTICIPANT_CODE,
    RATING_MAX,
    RATING_MIN,
    RATING_WORDS,
    WORKSHOP_VIEWS,
    FeedbackInvalid,
    Persona,
    WorkshopView,
    condition_term,
    new_session_id,
    normalise_participant_code,
    record_feedback,
    step_persona,
    valid_session_id,
    validate_feedback,
    workshop_personas,
    workshop_readiness,
    workshop_view,
)

dash.register_page(__name__, path="/workshop", title="Workshop · DynAIRx", name="Workshop", order=60)

log = logging.getLogger(__name__)

SESSION_STORE_ID = "workshop-session"
REFUSAL_ID = "workshop-refusal"
PARTICIPANT_CODE_ID = "workshop-participant-code"
PARTICIPANT_CODE_FEEDBACK_ID = "workshop-participant-code-feedback"
PERSONA_ID = "workshop-persona"
PERSONA_PREVIOUS_ID = "workshop-persona-previous"
PERSONA_NEXT_ID = "workshop-persona-next"
PERSONA_CARD_ID = "workshop-persona-card"
PERSONA_PROGRESS_ID = "workshop-persona-progress"
ERROR_ID = "workshop-error"
# One of each per view: f"workshop-{view.key}-{suffix}" (see ``view_id``).
VARIANT = "variant"
VARIANT_DESCRIPTION = "variant-description"
VIEW_CONTENT = "content"
RATING = "rating"
COMMENT = "comment"
COMMENT_HELP = "comment-help"
SUBMIT = "submit"
FEEDBACK_MESSAGE = "feedback-message"

RECORD_CACHE_SECONDS = 120.0
LOAD_ERROR = "This view could not be loaded just now. Please try again."
SAVE_ERROR = "Your feedback could not be saved just now. Please try again."
NO_PERSONA = "Choose a persona above."
PRIVACY_NOTE = "Please do not write names or anything else that could identify someone."


def view_id(view: str, suffix: str) -> str:
    """The id of one control of one view's section, e.g. 'workshop-risk-variant'."""
    return f"workshop-{view}-{suffix}"


def _personas() -> list[Persona]:
    scope = scope_for(current_user())
    context = app_context()
    return context.cached(
        ("workshop-personas", scope.cache_key()), lambda: workshop_personas(context.engine, scope)
    )


def _persona(key: str | None) -> Persona | None:
    return next((p for p in _personas() if p.key == key), None)


def _ready_or_refusal() -> str | None:
    """None when the workshop may run, else the message saying why not (checked on every request: fail closed)."""
    readiness = workshop_readiness(app_context().engine)
    return None if readiness.ready else readiness.message


def _record(persona: Persona) -> PatientRecordView:
    scope = scope_for(current_user())
    context = app_context()
    return context.cached(
        ("workshop-record", scope.cache_key(), persona.patient_id),
        lambda: patient_record(context.engine, scope, persona.patient_id),
        seconds=RECORD_CACHE_SECONDS,
    )


# ---------------------------------------------------------------- layout


@requires(Permission.GIVE_FEEDBACK)
def layout(session: str | None = None, **_query: Any) -> html.Div:
    title = html.H1("Co-design workshop", className="dx-workshop-title")
    try:
        refusal = _ready_or_refusal()
        personas = _personas() if refusal is None else []
    except SQLAlchemyError as exc:
        log.error("workshop start failed: %s", type(exc).__name__)
        refusal = LOAD_ERROR
        personas = []
    if refusal is not None:
        return html.Div(
            [title, dbc.Alert(refusal, id=REFUSAL_ID, color="warning", className="dx-workshop-refusal")],
            className="dx-workshop",
        )
    if not personas:
        return html.Div(
            [
                title,
                dbc.Alert(
                    "No persona could be found in this population: the worklist may not have been built yet.",
                    id=REFUSAL_ID,
                    color="warning",
                ),
            ],
            className="dx-workshop",
        )
    session_id = session if valid_session_id(session) else new_session_id()
    user = current_user()
    return html.Div(
        [
            dcc.Store(id=SESSION_STORE_ID, data=session_id),
            title,
            html.P(
                "Every person shown here is synthetic: generated by computer, not a real patient. We show the "
                "same information in different ways; tell us which works best for you.",
                className="dx-workshop-lead",
            ),
            _session_panel(session_id, can_see_summary=bool(user and user.can(Permission.VIEW_AGGREGATE))),
            _persona_panel(personas),
            html.Div(id=ERROR_ID, role="alert"),
            *[_view_section(view) for view in WORKSHOP_VIEWS],
        ],
        className="dx-workshop",
    )


def _session_panel(session_id: str, *, can_see_summary: bool) -> dbc.Card:
    join = f"/workshop?session={session_id}"
    summary = (
        [" Results: ", dcc.Link("workshop feedback", href=f"/workshop/feedback?session={session_id}"), "."]
        if can_see_summary
        else []
    )
    return dbc.Card(
        dbc.CardBody(
            dbc.Row(
                [
                    dbc.Col(
                        [
                            html.P(
                                ["Session ", html.Strong(session_id, className="dx-session-id")],
                                className="mb-1",
                            ),
                            html.P(
                                ["Participants join at ", dcc.Link(join, href=join), ".", *summary],
                                className="mb-0 dx-workshop-small",
                            ),
                        ],
                        md=7,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Your participant code (optional)", html_for=PARTICIPANT_CODE_ID),
                            dbc.Input(
                                id=PARTICIPANT_CODE_ID,
                                type="text",
                                placeholder="e.g. P07",
                                maxLength=12,
                                autoComplete="off",
                                debounce=True,
                                size="lg",
                            ),
                            dbc.FormFeedback(id=PARTICIPANT_CODE_FEEDBACK_ID, type="invalid"),
                            dbc.FormText(
                                "The code your facilitator gave you. Leave it empty to stay anonymous."
                            ),
                        ],
                        md=5,
                    ),
                ],
                className="g-3 align-items-center",
            )
        ),
        className="mb-4",
    )


def _persona_panel(personas: list[Persona]) -> html.Section:
    options = [{"label": f"{p.number}. {p.title}", "value": p.key} for p in personas]
    return html.Section(
        [
            html.H2("Who we are looking at", id="workshop-persona-heading"),
            html.Fieldset(
                [
                    html.Legend("Persona", className="visually-hidden"),
                    dbc.RadioItems(
                        id=PERSONA_ID,
                        options=options,
                        value=personas[0].key,
                        className="dx-segmented",
                        inputClassName="btn-check",
                        labelClassName="btn btn-outline-primary btn-lg",
                        labelCheckedClassName="active",
                    ),
                ]
            ),
            html.Div(
                [
                    dbc.Button(
                        "← Previous person", id=PERSONA_PREVIOUS_ID, color="secondary", size="lg", n_clicks=0
                    ),
                    html.Span(
                        id=PERSONA_PROGRESS_ID, className="dx-workshop-progress", **{"aria-live": "polite"}
                    ),
                    dbc.Button("Next person →", id=PERSONA_NEXT_ID, color="primary", size="lg", n_clicks=0),
                ],
                className="dx-workshop-stepper",
            ),
            dcc.Loading(html.Div(id=PERSONA_CARD_ID, className="dx-persona-card"), delay_show=300),
        ],
        className="dx-workshop-section",
        **{"aria-labelledby": "workshop-persona-heading"},
    )


def _view_section(view: WorkshopView) -> html.Section:
    heading_id = f"workshop-{view.key}-heading"
    rating_legend = (
        f"How well does this picture work for you? ({RATING_MIN} = {RATING_WORDS[RATING_MIN].lower()}, "
    )
    rating_legend += f"{RATING_MAX} = {RATING_WORDS[RATING_MAX].lower()})"
    return html.Section(
        [
            html.H2(view.label, id=heading_id),
            html.P(view.question, className="dx-workshop-question"),
            html.Fieldset(
                [
                    html.Legend(f"Ways to show {view.label.lower()}", className="dx-legend"),
                    dbc.RadioItems(
                        id=view_id(view.key, VARIANT),
                        options=[{"label": v.label, "value": v.key} for v in view.variants],
                        value=view.variants[0].key,
                        className="dx-segmented",
                        inputClassName="btn-check",
                        labelClassName="btn btn-outline-primary btn-lg",
                        labelCheckedClassName="active",
                    ),
                ]
            ),
            html.P(id=view_id(view.key, VARIANT_DESCRIPTION), className="dx-workshop-small"),
            dcc.Loading(
                html.Div(id=view_id(view.key, VIEW_CONTENT), className="dx-workshop-view"), delay_show=300
            ),
            dbc.Card(
                dbc.CardBody(
                    [
                        html.Fieldset(
                            [
                                html.Legend(rating_legend, className="dx-legend"),
                                dbc.RadioItems(
                                    id=view_id(view.key, RATING),
                                    options=[
                                        {"label": f"{n} · {RATING_WORDS[n]}", "value": n}
                                        for n in range(RATING_MIN, RATING_MAX + 1)
                                    ],
                                    value=None,
                                    className="dx-segmented dx-rating",
                                    inputClassName="btn-check",
                                    labelClassName="btn btn-outline-primary btn-lg",
                                    labelCheckedClassName="active",
                                ),
                            ]
                        ),
                        dbc.Label(
                            "Comment (optional)", html_for=view_id(view.key, COMMENT), className="mt-3"
                        ),
                        dbc.Textarea(
                            id=view_id(view.key, COMMENT),
                            rows=3,
                            maxLength=COMMENT_MAX_CHARS,
                            placeholder="What works, what is confusing, what is missing?",
                            className="dx-workshop-comment",
                        ),
                        dbc.FormText(
                            f"Up to {COMMENT_MAX_CHARS:,} characters. {PRIVACY_NOTE}",
                            id=view_id(view.key, COMMENT_HELP),
                        ),
                        html.Div(
                            dbc.Button(
                                "Send feedback", id=view_id(view.key, SUBMIT), color="primary", size="lg"
                            ),
                            className="mt-3",
                        ),
                        html.Div(
                            id=view_id(view.key, FEEDBACK_MESSAGE),
                            className="mt-3",
                            **{"aria-live": "polite"},
                        ),
                    ]
                ),
                className="dx-feedback-card",
            ),
        ],
        className="dx-workshop-section",
        **{"aria-labelledby": heading_id},
    )


# ---------------------------------------------------------------- callbacks


@callback(
    Output(PERSONA_ID, "value"),
    Input(PERSONA_PREVIOUS_ID, "n_clicks"),
    Input(PERSONA_NEXT_ID, "n_clicks"),
    State(PERSONA_ID, "value"),
    State(PERSONA_ID, "options"),
    prevent_initial_call=True,
)
@requires(Permission.GIVE_FEEDBACK)
def move_persona(
    _previous: int | None, _next: int | None, current: str | None, options: list[dict] | None
) -> Any:
    keys = [str(option.get("value")) for option in options or [] if isinstance(option, dict)]
    step = -1 if ctx.triggered_id == PERSONA_PREVIOUS_ID else 1
    return step_persona(keys, current, step) or dash.no_update


@callback(
    Output(PERSONA_CARD_ID, "children"),
    Output(PERSONA_PROGRESS_ID, "children"),
    Output(ERROR_ID, "children"),
    Input(PERSONA_ID, "value"),
)
@requires(Permission.GIVE_FEEDBACK)
def show_persona(key: str | None) -> tuple[Any, Any, Any]:
    try:
        refusal = _ready_or_refusal()
        if refusal is not None:
            return None, None, dbc.Alert(refusal, color="warning")
        personas = _personas()
        persona = _persona(key)
    except SQLAlchemyError as exc:
        log.error("workshop persona failed: %s", type(exc).__name__)
        return None, None, dbc.Alert(LOAD_ERROR, color="danger")
    if persona is None:
        return html.P(NO_PERSONA), None, None
    audit(
        AuditAction.VIEW_PATIENT,
        patient_id=persona.patient_id,
        detail=f"workshop persona {persona.key} (synthetic)",
    )
    return persona_card(persona), f"Person {persona.number} of {len(personas)}", None


def persona_card(persona: Persona) -> dbc.Card:
    conditions = [condition_term(key) for key in persona.conditions]
    return dbc.Card(
        dbc.CardBody(
            [
                html.H3(f"{persona.number}. {persona.title}", className="dx-persona-title"),
                html.P(persona.summary(), className="dx-persona-summary"),
                html.P(persona.story),
                html.P(
                    [
                        html.Strong("Long-term conditions: "),
                        ", ".join(conditions) if conditions else "none recorded",
                    ],
                    className="mb-0",
                ),
            ]
        )
    )


def show_view(view_key: str, variant_key: str | None, persona_key: str | None) -> tuple[Any, Any]:
    """The chosen picture of one view for the chosen persona, and what the picture is."""
    view = workshop_view(view_key)
    if view is None:
        return dash.no_update, dash.no_update
    variant = view.variant(variant_key or "") or view.variants[0]
    try:
        refusal = _ready_or_refusal()
        if refusal is not None:
            return dbc.Alert(refusal, color="warning"), None
        persona = _persona(persona_key)
        if persona is None:
            return html.P(NO_PERSONA), variant.description
        content = render_variant(view.key, variant.key, _record(persona))
    except (SQLAlchemyError, PatientNotFound) as exc:
        log.error("workshop view failed: %s", type(exc).__name__)
        return dbc.Alert(LOAD_ERROR, color="danger"), variant.description
    return content, variant.description


def send_feedback(
    view_key: str,
    submitted: bool,
    variant_key: str | None,
    session_id: str | None,
    participant_code: str | None,
    rating: Any,
    comment: str | None,
) -> tuple[Any, Any, Any, Any]:
    """A new picture clears the form (a rating belongs to one picture); 'Send feedback' validates and stores.
    Returns (message, rating, comment, comment invalid)."""
    if not submitted:
        return None, None, "", False
    try:
        entry = validate_feedback(
            session_id=session_id,
            participant_code=participant_code,
            view=view_key,
            variant=variant_key,
            rating=rating,
            comment=comment,
        )
    except FeedbackInvalid as invalid:
        problems = html.Ul([html.Li(message) for message in invalid.errors.values()], className="mb-0")
        alert = dbc.Alert([html.P("Your feedback was not sent:", className="mb-1"), problems], color="danger")
        return alert, dash.no_update, dash.no_update, "comment" in invalid.errors
    try:
        refusal = _ready_or_refusal()
        if refusal is not None:
            return dbc.Alert(refusal, color="warning"), dash.no_update, dash.no_update, False
        record_feedback(app_context().engine, entry)
    except SQLAlchemyError as exc:
        log.error("workshop feedback not stored: %s", type(exc).__name__)
        return dbc.Alert(SAVE_ERROR, color="danger"), dash.no_update, dash.no_update, False
    view = workshop_view(entry.view)
    variant = view.variant(entry.variant) if view else None
    thanks = (
        f"Thank you: your rating of {entry.rating} ({RATING_WORDS[entry.rating].lower()}) for "
        f"'{variant.label if variant else entry.variant}' was saved."
    )
    return dbc.Alert(thanks, color="success", className="mb-0"), None, "", False


def _register_view_callbacks(view_key: str) -> None:
    """The two callbacks of one view's section (plain ids per view keep labels and guards simple)."""

    @callback(
        Output(view_id(view_key, VIEW_CONTENT), "children"),
        Output(view_id(view_key, VARIANT_DESCRIPTION), "children"),
        Input(view_id(view_key, VARIANT), "value"),
        Input(PERSONA_ID, "value"),
    )
    @requires(Permission.GIVE_FEEDBACK)
    def show_this_view(variant_key: str | None, persona_key: str | None) -> tuple[Any, Any]:
        return show_view(view_key, variant_key, persona_key)

    @callback(
        Output(view_id(view_key, FEEDBACK_MESSAGE), "children"),
        Output(view_id(view_key, RATING), "value"),
        Output(view_id(view_key, COMMENT), "value"),
        Output(view_id(view_key, COMMENT), "invalid"),
        Input(view_id(view_key, SUBMIT), "n_clicks"),
        Input(view_id(view_key, VARIANT), "value"),
        State(SESSION_STORE_ID, "data"),
        State(PARTICIPANT_CODE_ID, "value"),
        State(view_id(view_key, RATING), "value"),
        State(view_id(view_key, COMMENT), "value"),
        prevent_initial_call=True,
    )
    @requires(Permission.GIVE_FEEDBACK)
    def send_this_feedback(
        n_clicks: int | None,
        variant_key: str | None,
        session_id: str | None,
        participant_code: str | None,
        rating: Any,
        comment: str | None,
    ) -> tuple[Any, Any, Any, Any]:
        submitted = ctx.triggered_id == view_id(view_key, SUBMIT) and bool(n_clicks)
        return send_feedback(view_key, submitted, variant_key, session_id, participant_code, rating, comment)


for _view in WORKSHOP_VIEWS:
    _register_view_callbacks(_view.key)


@callback(
    Output(PARTICIPANT_CODE_ID, "invalid"),
    Output(PARTICIPANT_CODE_FEEDBACK_ID, "children"),
    Input(PARTICIPANT_CODE_ID, "value"),
    prevent_initial_call=True,
)
@requires(Permission.GIVE_FEEDBACK)
def check_participant_code(value: str | None) -> tuple[bool, str | None]:
    code = normalise_participant_code(value)
    if code is None or PARTICIPANT_CODE.fullmatch(code):
        return False, None
    return True, MESSAGES["participant_code"]
