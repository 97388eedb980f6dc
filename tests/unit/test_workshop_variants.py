"""The workshop's alternative visualisations: fan-chart bands, icon-array counts and sentences, the drug-by-month
matrix, the medicines table, and one component for every view and variant (the same record each time)."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import pytest
from dash import dcc, html

from app.components.variants import (
    IconCount,
    fan_bounds,
    gantt_figure,
    heatmap_figure,
    icon_counts,
    medicine_month_matrix,
    medicine_rows,
    month_starts,
    people_in_100,
    render_variant,
    risk_fan_figure,
)
from data_access.queries.patient import (
    FlagView,
    MedicationPeriod,
    PatientHeader,
    PatientRecordView,
    RiskPoint,
    Scores,
    Trajectory,
)
from data_access.queries.workshop import WORKSHOP_VIEWS

D = dt.date
AS_OF = D(2025, 12, 1)


def medication(drug: str, start: dt.date, stop: dt.date | None, *, repeat: bool = True) -> MedicationPeriod:
    return MedicationPeriod(
        drug=drug,
        name=f"{drug.capitalize()} tablets",
        ingredients=(drug,),
        bnf_section="2.6.2" if drug != "ibuprofen" else "10.1.1",
        chapter="2" if drug != "ibuprofen" else "10",
        chapter_title="Cardiovascular system"
        if drug != "ibuprofen"
        else "Musculoskeletal and joint diseases",
        plain_words="the heart" if drug != "ibuprofen" else "joints",
        start=start,
        stop=stop,
        repeat=repeat,
        dose_text="one a day",
    )


def flag(rule: str, start: dt.date, end: dt.date | None, drugs: tuple[str, ...], *, active: bool) -> FlagView:
    return FlagView(
        rule_id=rule,
        severity="high",
        start=start,
        end=end,
        drugs=drugs,
        title="NSAID with an ACE inhibitor",
        family="STOPP",
        source="STOPP/START v3",
        rationale="",
        recommendation="",
        evidence="",
        evidence_url="",
        active=active,
    )


def trajectory() -> Trajectory:
    points = {
        "emergency_admission": [
            RiskPoint(D(2025, m, 1), 0.10 + 0.005 * m, 0.06 + 0.005 * m, 0.16 + 0.005 * m)
            for m in range(1, 13)
        ],
        "death": [RiskPoint(D(2025, 12, 1), 0.004, 0.001, 0.011)],
        "fall_fracture": [],
    }
    return Trajectory(model_version="test-model", points=points)


@pytest.fixture
def record() -> PatientRecordView:
    return PatientRecordView(
        header=PatientHeader("SECRET-ID", "P001", "Practice", 80, "F", D(2000, 1, 1), None, None, ()),
        as_of=AS_OF,
        scores=Scores(AS_OF, 0.3, "moderate", 2, 1.0, 4, 3),
        trajectory=trajectory(),
        medications=[
            medication("ramipril", D(2015, 3, 1), None),
            medication("ibuprofen", D(2025, 10, 15), D(2025, 11, 14), repeat=False),
            medication("amlodipine", D(2020, 1, 1), D(2022, 1, 1)),  # stopped before the window
            medication("ramipril", D(2025, 11, 20), None),  # an overlapping second course
        ],
        flags=[
            flag("STOPP-v3-X1", D(2025, 10, 15), D(2025, 11, 14), ("ibuprofen", "ramipril"), active=False)
        ],
        conditions=[],
        labs=[],
        events=[],
        drivers=[],
        last_review=None,
    )


def test_fan_bands_reproduce_the_stored_interval_and_nest_inside_it() -> None:
    point = RiskPoint(AS_OF, 0.2, 0.1, 0.35)
    lower, upper = fan_bounds(point, 0.9, 0.9)
    assert lower == pytest.approx(0.1) and upper == pytest.approx(0.35)
    inner = fan_bounds(point, 0.5, 0.9)
    middle = fan_bounds(point, 0.75, 0.9)
    assert 0.1 < middle[0] < inner[0] < 0.2 < inner[1] < middle[1] < 0.35
    assert fan_bounds(RiskPoint(AS_OF, 0.2, 0.2, 0.2), 0.5, 0.9) == pytest.approx((0.2, 0.2))


def test_fan_chart_has_one_panel_per_outcome_with_predictions() -> None:
    figure = risk_fan_figure(trajectory(), reference_level=0.9)
    titles = [a.text for a in figure.layout.annotations]
    assert titles == ["Emergency admission", "Death"]
    estimates = [t for t in figure.data if t.name == "Model estimate"]
    assert len(estimates) == 2 and sum(1 for t in estimates if t.showlegend) == 1


@pytest.mark.parametrize(
    ("risk", "people"), [(0.124, 12), (0.125, 13), (0.126, 13), (0.004, 0), (1.0, 100), (0.0, 0)]
)
def test_people_in_100(risk: float, people: int) -> None:
    assert people_in_100(risk) == people


def test_icon_counts_and_their_sentences() -> None:
    counts = {c.outcome: c for c in icon_counts(trajectory())}
    admission = counts["emergency_admission"]
    assert (admission.affected, admission.lower, admission.upper) == (16, 12, 22)
    assert admission.sentence() == (
        "About 16 in 100 people like this would have an emergency admission in the next 12 months "
        "(the model's range: 12 to 22 in 100)."
    )
    assert counts["death"].sentence().startswith("Fewer than 1 in 100 people like this would die")
    assert "fall_fracture" not in counts
    harm = IconCount("medication_harm", 3, 3, 3, 0.03, AS_OF)
    assert (
        harm.sentence() == "About 3 in 100 people like this would have medication harm in the next 12 months."
    )


def test_icon_array_colours_exactly_the_affected_people(record: PatientRecordView) -> None:
    arrays = render_variant("risk", "icons", record)
    grids = [c for c in _walk(arrays) if getattr(c, "className", None) == "dx-icon-grid"]
    assert len(grids) == 2
    affected = [sum(1 for p in g.children if "dx-person-affected" in p.className) for g in grids]
    assert affected == [16, 0]
    assert all(len(g.children) == 100 for g in grids)


def test_month_starts() -> None:
    assert month_starts(D(2025, 2, 17), 3) == (D(2024, 12, 1), D(2025, 1, 1), D(2025, 2, 1))


def test_month_matrix_counts_each_day_once_and_marks_flag_months(record: PatientRecordView) -> None:
    matrix = medicine_month_matrix(record, months=3)  # Oct, Nov, Dec 2025
    assert matrix.months == (D(2025, 10, 1), D(2025, 11, 1), D(2025, 12, 1))
    assert matrix.medicines == (
        "ramipril",
        "ibuprofen",
    )  # chapter 2 before chapter 10; amlodipine ended in 2022
    ramipril, ibuprofen = matrix.days
    assert ramipril == (31, 30, 1)  # overlapping courses count once; the as-of date ends open courses
    assert ibuprofen == (17, 14, 0)  # 15-31 Oct, 1-14 Nov inclusive
    assert matrix.flagged[0] == (("STOPP-v3-X1",), ("STOPP-v3-X1",), ())
    figure = heatmap_figure(matrix)
    assert isinstance(figure, go.Figure)
    assert [t.name for t in figure.data] == ["Days on the medicine", "Safety flag involved it"]


def test_medicine_rows_cover_the_window_with_their_flags(record: PatientRecordView) -> None:
    rows = {row.medicine: row for row in medicine_rows(record)}
    assert set(rows) == {"ramipril", "ibuprofen"}
    assert rows["ramipril"].stopped is None and rows["ramipril"].courses == 2
    assert rows["ramipril"].started == D(2015, 3, 1)
    assert rows["ibuprofen"].stopped == D(2025, 11, 14) and not rows["ibuprofen"].on_repeat
    assert rows["ibuprofen"].flags == ("STOPP-v3-X1 NSAID with an ACE inhibitor (in the past)",)


def test_gantt_is_zoomed_to_the_same_window(record: PatientRecordView) -> None:
    figure = gantt_figure(record)
    start, _end = figure.layout.xaxis.range
    assert str(start).startswith("2024-01-01")


@pytest.mark.parametrize(
    ("view", "variant"), [(view.key, variant.key) for view in WORKSHOP_VIEWS for variant in view.variants]
)
def test_every_variant_renders_without_identifiers(
    record: PatientRecordView, view: str, variant: str
) -> None:
    component = render_variant(view, variant, record)
    assert isinstance(component, (html.Div, dcc.Graph, html.Table)) or hasattr(component, "children")
    assert "SECRET-ID" not in str(component.to_plotly_json())


def test_unknown_view_is_an_error(record: PatientRecordView) -> None:
    with pytest.raises(ValueError, match="unknown workshop view"):
        render_variant("worklist", "table", record)


def _walk(component: object):  # noqa: ANN202 - generator of Dash components
    yield component
    children = getattr(component, "children", None)
    if isinstance(children, (list, tuple)):
        for child in children:
            yield from _walk(child)
    elif children is not None and not isinstance(children, (str, int, float)):
        yield from _walk(children)
