"""The patient page's figures, the SMR pack, the model client and the theme, as pure functions (no Dash app)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from test_queries_patient import AS_OF, patient_view

from app import theme
from app.components.figures import (
    FLAG_LANE,
    empty_figure,
    flag_hover_text,
    interaction_timeline_figure,
    risk_trajectory_figure,
    timeline_lanes,
    what_if_figure,
)
from app.components.smr_pack import clinician_pack_html, patient_sheet_html, smr_pack, sparkline_svg
from app.model_client import ModelUnavailable, Scenario, parse_what_if, run_what_if
from data_access.queries.patient import Trajectory
from data_access.settings import Settings

D = dt.date


def test_risk_bands_and_formats() -> None:
    assert [theme.risk_band(r) for r in (None, 0.05, 0.10, 0.199, 0.2)] == [
        None,
        "low",
        "moderate",
        "moderate",
        "high",
    ]
    assert theme.format_date(D(2026, 12, 1)) == "01 Dec 2026" and theme.format_date(None) == "—"
    assert theme.format_percent(0.237) == "24%" and theme.format_points(-0.075) == "−7.5 points"
    assert theme.with_alpha("#D55E00", 0.2) == "rgba(213,94,0,0.2)"


def test_every_colour_is_a_css_variable_defined_once() -> None:
    css = theme.css_variables()
    names = re.findall(r"--dx-([a-z-]+):", css)
    assert len(names) == len(set(names))
    assert f"--dx-risk-high:{theme.RISK_COLOURS['high']};" in css


def _traces(figure, kind: str | None = None) -> list:  # noqa: ANN001
    return [t for t in figure.data if kind is None or t.type == kind]


def test_trajectory_has_band_line_and_markers() -> None:
    view = patient_view()
    figure = risk_trajectory_figure(view.trajectory, view.medications, view.events, view.as_of)
    names = [t.name for t in figure.data]
    assert "Emergency admission" in names and "Emergency admission uncertainty" in names
    assert "Medicine started" in names and "Event" in names
    line = next(t for t in figure.data if t.name == "Emergency admission")
    assert line.y[-1] == pytest.approx(32.0)
    assert figure.layout.yaxis.title.text == "12-month risk (%)"


def test_trajectory_without_predictions_says_so() -> None:
    figure = risk_trajectory_figure(Trajectory(None, {"death": []}))
    assert "No cached model predictions" in figure.layout.annotations[0].text


def test_timeline_lanes_group_medicines_by_chapter() -> None:
    lanes = [lane.key for lane in timeline_lanes(patient_view())]
    assert lanes[:2] == [FLAG_LANE, "Events"]
    # medicines last, chapter 2 (cardiovascular) before 4 (CNS) before 10 (musculoskeletal)
    assert lanes[-4:] == ["furosemide", "ramipril", "diazepam", "ibuprofen"]


def test_timeline_draws_flags_across_the_drugs_involved() -> None:
    figure = interaction_timeline_figure(patient_view())
    flag_bars = [t for t in _traces(figure, "bar") if t.name == "High-severity flag"]
    assert len(flag_bars) == 1 and flag_bars[0].y == (FLAG_LANE,)
    assert "Recommendation: Stop the NSAID." in flag_bars[0].hovertext[0]
    shaded = [s for s in figure.layout.shapes if s.type == "rect" and s.xref == "x"]
    assert len(shaded) == 2  # the active flag and the past diazepam flag
    acute = next(t for t in _traces(figure, "bar") if "ibuprofen" in (t.y or ()))
    assert acute.marker.pattern.shape == ("/",)  # not on repeat: hatched


def test_flag_hover_text_is_wrapped() -> None:
    text = flag_hover_text(patient_view().flags[0])
    assert text.startswith("<b>STOPP-v3-B11</b> (high)") and "Drugs: ibuprofen, furosemide" in text


def test_empty_and_what_if_figures() -> None:
    assert empty_figure("Nothing here").layout.annotations[0].text == "Nothing here"
    current = {"emergency_admission": [(D(2026, 7, 1), 0.3), (D(2026, 8, 1), 0.31)]}
    scenario = {"emergency_admission": [(D(2026, 7, 1), 0.3), (D(2026, 8, 1), 0.25)]}
    figure = what_if_figure(current, scenario, "stop ibuprofen", "m1")
    assert [t.line.dash for t in figure.data] == ["solid", "dash"]
    assert "association from model m1, not advice" in figure.layout.title.text


def test_smr_pack_content() -> None:
    pack = smr_pack(patient_view(), prepared_on=D(2026, 7, 1))
    assert pack.summary == "81 years, female · Riverside Surgery"
    assert [m.name for m in pack.medicines] == ["Furosemide tablets", "Ramipril tablets", "Ibuprofen tablets"]
    assert pack.flags[0].rule_id == "STOPP-v3-B11" and pack.flags[0].drugs == "ibuprofen, furosemide"
    assert pack.risks[0].current == "32%" and pack.risks[0].change == "+6.0 points"
    assert "Whether ibuprofen and furosemide are still the best choice for you." in pack.patient_topics
    assert pack.last_review == "01 Sep 2025" and pack.prepared_on == "01 Jul 2026"


def test_pack_html_is_standalone_and_escaped() -> None:
    view = patient_view()
    view.medications[0] = type(view.medications[0])(
        **{**view.medications[0].__dict__, "name": "<script>x</script>"}
    )
    html = clinician_pack_html(smr_pack(view))
    assert html.startswith("<!DOCTYPE html>") and '<html lang="en-GB">' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "https://example.org/stopp" in html and "What matters to you" in html
    sheet = patient_sheet_html(smr_pack(view))
    assert "Your medicines review" in sheet and "Works on the heart, blood pressure and circulation" in sheet
    assert "%" not in re.sub(
        r"<style>.*?</style>", "", sheet, flags=re.S
    )  # no risk numbers on the patient's sheet


def test_sparkline() -> None:
    svg = sparkline_svg(((D(2026, 1, 1), 0.1), (D(2026, 2, 1), 0.2)), "#000000")
    assert svg.startswith("<svg") and "aria-label='Risk from 10% to 20%'" in svg
    assert "—" in sparkline_svg(((D(2026, 1, 1), 0.1),), "#000")


def test_scenario_from_controls() -> None:
    scenario = Scenario.from_controls(["ibuprofen", "naproxen", "*"], "naproxen", "paracetamol", "2026-07-01")
    assert scenario.stop == ("ibuprofen",) and scenario.switch == (("naproxen", "paracetamol"),)
    assert scenario.as_dict() == {
        "stop": ["ibuprofen"],
        "start": [],
        "switch": [["naproxen", "paracetamol"]],
        "from": "2026-07-01",
    }
    assert scenario.describe() == "stop ibuprofen; switch naproxen → paracetamol"
    assert Scenario.from_controls(None, "*", "paracetamol", "not a date").is_empty()


def test_parse_what_if_accepts_points_and_columns() -> None:
    result = parse_what_if(
        {
            "current": {"death": [{"as_of": "2026-07-01", "risk": 0.1}, ["2026-08-01", 0.12]]},
            "scenario": {"death": {"as_of": ["2026-07-01", "2026-08-01"], "risk": [0.1, 0.09]}},
            "model_version": "m1",
            "notes": ["ibuprofen was not active"],
        }
    )
    assert result.current["death"] == [(D(2026, 7, 1), 0.1), (D(2026, 8, 1), 0.12)]
    assert result.scenario["death"][-1] == (D(2026, 8, 1), 0.09)
    assert result.model_version == "m1" and result.notes == ("ibuprofen was not active",)
    with pytest.raises(ValueError):
        parse_what_if({"risk": 1})


def test_run_what_if_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings("sqlite://", None, None, None, "cpu", True)
    assert isinstance(run_what_if(None, settings, "P-1", Scenario()), ModelUnavailable)  # type: ignore[arg-type]

    def broken(*_args: object, **_kwargs: object) -> dict:
        raise RuntimeError("boom")

    monkeypatch.setattr("app.model_client._what_if_in_process", broken)
    answer = run_what_if(None, settings, "P-1", Scenario(stop=("ibuprofen",)))  # type: ignore[arg-type]
    assert isinstance(answer, ModelUnavailable) and "could not answer" in answer.message
    monkeypatch.setattr("app.model_client._what_if_in_process", lambda *a, **k: {"unexpected": True})
    answer = run_what_if(None, settings, "P-1", Scenario(stop=("ibuprofen",)))  # type: ignore[arg-type]
    assert isinstance(answer, ModelUnavailable) and "cannot read" in answer.message


def test_as_of_constant_matches_view() -> None:
    assert patient_view().as_of == AS_OF


def test_cascade_flag_draws_an_arrow_from_a_start_to_b_start() -> None:
    from test_queries_patient import flag, medication

    from app.components.figures import cascade_arrow_ends

    amlodipine = medication("amlodipine", "2.6.2", D(2025, 1, 10))
    furosemide = medication("furosemide", "2.2.2", D(2025, 2, 20))
    cascade = flag("CASCADE-TC-1", ("amlodipine", "furosemide"), D(2025, 2, 20), severity="moderate")
    view = patient_view(medications=[amlodipine, furosemide], flags=[cascade])
    assert cascade_arrow_ends(cascade, view.medications) == (amlodipine, furosemide)
    arrows = [a for a in interaction_timeline_figure(view).layout.annotations if a.showarrow and a.axref == "x"]
    assert len(arrows) == 1
    assert (arrows[0].ax, arrows[0].x) == ("2025-01-10", "2025-02-20")  # tail at A's start, head at B's start
    # Not a cascade, or B not running when the flag starts: no arrow.
    assert cascade_arrow_ends(flag("DDI-X", ("amlodipine", "furosemide"), D(2025, 2, 20)), view.medications) is None
    later = medication("furosemide", "2.2.2", D(2025, 3, 1))
    assert cascade_arrow_ends(cascade, [amlodipine, later]) is None
