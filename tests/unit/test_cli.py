"""The ``dynairx`` command line: the contract of DESIGN.md for ``flags`` and ``synth``, and clean errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dynairx_cli import main

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
FLAG_KEYS = {"rule_id", "source", "title", "severity", "drugs", "start", "end", "recommendation", "evidence"}


def _run_flags(tmp_path: Path, payload: object, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    path = tmp_path / "patient.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload), encoding="utf-8")
    code = main(["flags", "--patient-json", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_flags_prints_the_design_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run_flags(tmp_path, DESIGN_EXAMPLE, capsys)
    assert code == 0
    report = json.loads(out)
    assert set(report) == {"flags", "scores", "unknown"}
    assert report["unknown"] == []
    assert {"acb", "efi", "efi_category", "cms", "medicines", "long_term_conditions"} <= set(report["scores"])
    assert report["scores"]["medicines"] == 2
    by_rule = {flag["rule_id"]: flag for flag in report["flags"]}
    for flag in report["flags"]:
        assert FLAG_KEYS <= set(flag)
    # An NSAID in an 81-year-old without gastroprotection, active since its start and still active.
    assert by_rule["PINCER-GI_P3A"]["drugs"] == ["ibuprofen"]
    assert by_rule["PINCER-GI_P3A"]["start"] == "2025-05-01" and by_rule["PINCER-GI_P3A"]["end"] is None
    # NSAID with heart failure (PINCER HF_P3I).
    assert "PINCER-HF_P3I" in by_rule


def test_flags_reports_unknown_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = {**DESIGN_EXAMPLE, "medications": [{"drug": "notarealdrugamab", "start": "2025-01-01"}]}
    code, out, _ = _run_flags(tmp_path, payload, capsys)
    assert code == 0
    assert any("notarealdrugamab" in str(item) for item in json.loads(out)["unknown"])


def test_flags_rejects_malformed_json_with_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run_flags(tmp_path, '{"as_of": "2025-06-30",', capsys)
    assert code == 2 and out == ""
    assert "not valid JSON" in err and "line 1" in err


def test_flags_names_the_bad_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = {**DESIGN_EXAMPLE, "medications": [{"drug": "ibuprofen", "start": "01/05/2025"}]}
    code, _, err = _run_flags(tmp_path, payload, capsys)
    assert code == 2
    assert "start" in err


def test_flags_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["flags", "--patient-json", str(tmp_path / "nope.json")])
    assert code == 2 and "no such file" in capsys.readouterr().err


def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.glob("*.parquet"))}


def test_synth_is_byte_identical_for_the_same_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b"):
        assert main(["synth", "--patients", "60", "--seed", "5", "--out", str(tmp_path / name)]) == 0
    assert main(["synth", "--patients", "60", "--seed", "6", "--out", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    first, second, other = (_digest(tmp_path / n) for n in ("a", "b", "c"))
    assert "patient.parquet" in first and "synthetic_truth.parquet" in first
    assert first == second
    assert first["patient.parquet"] != other["patient.parquet"]


def test_load_puts_cohort_flags_and_scores_in_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from data_access.db import make_engine

    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["synth", "--patients", "120", "--seed", "9", "--out", str(tmp_path / "cohort")]) == 0
    assert main(["load", str(tmp_path / "cohort")]) == 0
    assert main(["load", str(tmp_path / "cohort")]) == 0  # re-loading replaces, never duplicates
    assert "Loaded" in capsys.readouterr().out
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM patient")).scalar_one() == 120
        assert conn.execute(text("SELECT COUNT(DISTINCT patient_id) FROM score")).scalar_one() == 120
        flagged = conn.execute(text("SELECT COUNT(*) FROM flag")).scalar_one()
        duplicates = conn.execute(
            text(
                "SELECT COUNT(*) FROM (SELECT patient_id, rule_id, start FROM flag GROUP BY 1, 2, 3 HAVING COUNT(*) > 1)"
            )
        ).scalar_one()
    engine.dispose()
    assert flagged > 0 and duplicates == 0


def test_evaluate_prints_undefined_auroc_instead_of_crashing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.evaluation

    report = {
        "model_version": "g-test",
        "outcomes": {
            "death": {
                "graph_model": {"auroc": [0.7, 0.8, 0.9], "auprc": [0.1, 0.2, 0.3], "brier": 0.04, "ece": 0.01},
                "oracle": {"auroc": [None, None, None], "auprc": [None, None, None], "brier": None, "ece": None},
            }
        },
    }
    monkeypatch.setattr(models.evaluation, "evaluate_model", lambda *a, **k: report)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'e.sqlite'}")
    assert main(["evaluate"]) == 0
    out = capsys.readouterr().out
    assert "graph_model            AUROC 0.800 (0.700-0.900)" in out
    assert "oracle                 AUROC not defined" in out
