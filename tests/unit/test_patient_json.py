"""Patient JSON front end of `dynairx flags` (DESIGN.md): parsing, unknown names, errors, report shape."""

from __future__ import annotations

import json

import pytest

from clinical.patient_json import PatientJsonError, flags_report, main_flags, parse_patient_json

DESIGN_EXAMPLE = {
    "as_of": "2025-06-30",
    "age": 81,
    "sex": "F",
    "conditions": [
        {"name": "heart failure", "onset": "2019-03-01"},
        {"snomed": "44054006", "resolved": "2021-05-01"},
    ],
    "medications": [
        {"drug": "ibuprofen", "start": "2025-05-01", "stop": None},
        {"drug": "ramipril", "start": "2018-01-01"},
    ],
    "labs": [
        {"name": "egfr", "value": 38, "date": "2025-04-02"},
        {"name": "alt", "value": None, "date": "2025-03-01"},
    ],
    "events": [{"type": "fall", "date": "2025-01-10"}],
}
FLAG_FIELDS = {
    "rule_id",
    "source",
    "title",
    "severity",
    "drugs",
    "start",
    "end",
    "recommendation",
    "evidence",
}


def by_rule(report: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for flag in report["flags"]:
        out.setdefault(flag["rule_id"], []).append(flag)
    return out


def test_design_example_report():
    report = flags_report(DESIGN_EXAMPLE)
    assert set(report) == {"flags", "scores", "unknown"}
    assert report["unknown"] == []
    flags = by_rule(report)
    for rule_id in ("PINCER-GI_P3A", "PINCER-HF_P3I", "PINCER-KI_P3K"):
        [flag] = flags[rule_id]
        assert set(flag) == FLAG_FIELDS
        assert (flag["start"], flag["end"], flag["drugs"]) == ("2025-05-01", None, ["ibuprofen"])
    assert set(report["scores"]) == {"acb", "efi", "efi_category", "cms", "medicines", "long_term_conditions"}
    assert report["scores"]["medicines"] == 2
    json.dumps(report)  # serialisable as is


def test_conditions_by_synonym_and_snomed_with_resolution():
    parsed = parse_patient_json(DESIGN_EXAMPLE)
    keys = {(c.key, c.resolved and c.resolved.isoformat()) for c in parsed.record.conditions}
    assert keys == {("heart_failure", None), ("type2_diabetes", "2021-05-01")}
    ckd = parse_patient_json(
        {**DESIGN_EXAMPLE, "conditions": [{"name": "CKD"}, {"name": "chronic kidney disease"}]}
    )
    assert {c.key for c in ckd.record.conditions} == {"ckd"}


def test_medicines_by_product_description_and_codes():
    data = {
        **DESIGN_EXAMPLE,
        "medications": [
            {"drug": "lisinopril 10 MG Oral Tablet", "start": "2025-01-01"},
            {"rxnorm": "198014", "start": "2025-01-01"},
            {"dmd": "318857003", "start": "2025-01-01"},
            {"code": "198405", "system": "rxnorm", "start": "2025-01-01"},
            {"drug": "Co-codamol 30mg/500mg tablets", "start": "2025-01-01"},
        ],
    }
    ingredients = [rx.ingredients for rx in parse_patient_json(data).record.prescriptions]
    assert ingredients == [
        ("lisinopril",),
        ("naproxen",),
        ("lisinopril",),
        ("ibuprofen",),
        ("codeine", "paracetamol"),
    ]


def test_unknown_inputs_are_reported_as_given_and_not_dropped_silently():
    data = {
        **DESIGN_EXAMPLE,
        "conditions": [{"name": "frobnitis"}, {"snomed": "123"}],
        "medications": [{"drug": "Wonderpill 5mg tablets"}, {"drug": "ibuprofen", "start": "2025-05-01"}],
        "labs": [{"name": "troponin", "value": 3, "date": "2025-01-01"}],
        "events": [{"type": "abduction", "date": "2025-01-01"}],
    }
    report = flags_report(data)
    assert report["unknown"] == ["frobnitis", "123", "Wonderpill 5mg tablets", "troponin", "abduction"]
    assert "PINCER-GI_P3A" in by_rule(report)


def test_topical_products_do_not_count_for_systemic_rules():
    data = {
        "as_of": "2025-06-30",
        "age": 80,
        "medications": [{"drug": "Ibuprofen 5% gel", "start": "2025-05-01"}],
    }
    report = flags_report(data)
    assert "PINCER-GI_P3A" not in by_rule(report)
    assert report["unknown"] == []


def test_past_period_is_reported_with_an_end_date():
    data = {
        "as_of": "2025-06-30",
        "age": 70,
        "medications": [
            {"drug": "warfarin", "start": "2024-01-01", "stop": "2024-03-31"},
            {"drug": "naproxen", "start": "2024-03-01", "stop": "2024-04-30"},
        ],
    }
    [flag] = by_rule(flags_report(data))["DDI-WARFARIN_NSAID"]
    assert (flag["start"], flag["end"]) == ("2024-03-01", "2024-03-31")


def test_medication_without_start_is_taken_as_current_on_as_of():
    report = flags_report({"as_of": "2025-06-30", "age": 70, "medications": [{"drug": "naproxen"}]})
    [flag] = by_rule(report)["PINCER-GI_P3A"]
    assert (flag["start"], flag["end"]) == ("2025-06-30", None)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ('{"as_of": "2025-06-30", "age": 70,', "not valid JSON"),
        ({"as_of": "2025-13-01", "age": 70}, "as_of"),
        (
            {"as_of": "2025-06-30", "age": 70, "medications": [{"drug": "ibuprofen", "start": "01/05/2025"}]},
            "medications[0].start",
        ),
        (
            {
                "as_of": "2025-06-30",
                "age": 70,
                "medications": [{"drug": "ibuprofen", "start": "2025-05-01", "stop": "2025-04-01"}],
            },
            "medications[0].stop",
        ),
        ({"as_of": "2025-06-30"}, "age"),
        ({"as_of": "2025-06-30", "age": "old"}, "age"),
        (
            {
                "as_of": "2025-06-30",
                "age": 70,
                "labs": [{"name": "egfr", "value": "low", "date": "2025-01-01"}],
            },
            "labs[0].value",
        ),
        ({"as_of": "2025-06-30", "age": 70, "labs": [{"name": "egfr", "value": 50}]}, "labs[0].date"),
        ({"as_of": "2025-06-30", "age": 70, "conditions": [{"onset": "2020-01-01"}]}, "conditions[0]"),
        ({"as_of": "2025-06-30", "age": 70, "medications": {"drug": "x"}}, "medications"),
        ({"as_of": "2025-06-30", "age": 70, "sex": "X"}, "sex"),
        ({"as_of": "2025-06-30", "age": 70, "meds": []}, "meds"),
    ],
)
def test_malformed_input_names_the_field(data, field):
    with pytest.raises(PatientJsonError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_patient_json(data)


def test_main_flags_prints_json_and_returns_status(tmp_path, capsys):
    good = tmp_path / "patient.json"
    good.write_text(json.dumps(DESIGN_EXAMPLE), encoding="utf-8")
    assert main_flags(good) == 0
    printed = json.loads(capsys.readouterr().out)
    assert "PINCER-GI_P3A" in by_rule(printed)
    bad = tmp_path / "bad.json"
    bad.write_text('{"age": 70, "as_of": "yesterday"}', encoding="utf-8")
    assert main_flags(bad) == 2
    assert "as_of" in capsys.readouterr().err
    assert main_flags(tmp_path / "missing.json") == 2
