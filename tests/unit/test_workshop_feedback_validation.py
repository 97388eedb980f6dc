"""Validation of workshop feedback: rating range, comment length and characters, participant code format, known
views and variants, session ids; and the CSV cell guard against spreadsheet formulas."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from data_access.queries.workshop import (
    COMMENT_MAX_CHARS,
    MESSAGES,
    WORKSHOP_VIEWS,
    FeedbackInvalid,
    new_session_id,
    spreadsheet_safe,
    valid_session_id,
    validate_feedback,
)

GOOD = {
    "session_id": "ws-20261201-abc123",
    "participant_code": "p07",
    "view": "risk",
    "variant": "fan",
    "rating": 4,
    "comment": "  Clear, but the bands need a legend.  ",
}


def errors_for(**changes: object) -> dict[str, str]:
    with pytest.raises(FeedbackInvalid) as caught:
        validate_feedback(**{**GOOD, **changes})
    return caught.value.errors


def test_a_good_submission_is_normalised() -> None:
    entry = validate_feedback(**GOOD)
    assert entry.participant_code == "P07"
    assert entry.comment == "Clear, but the bands need a legend."
    assert (entry.view, entry.variant, entry.rating) == ("risk", "fan", 4)


def test_optional_fields_may_be_empty() -> None:
    entry = validate_feedback(**{**GOOD, "participant_code": "  ", "comment": "\n "})
    assert entry.participant_code is None and entry.comment is None


@pytest.mark.parametrize("rating", [0, 6, -1, None, "", "4.5", "four", True, 3.0, [4]])
def test_rating_must_be_a_whole_number_from_1_to_5(rating: object) -> None:
    assert errors_for(rating=rating) == {"rating": MESSAGES["rating"]}


@pytest.mark.parametrize("rating", [1, 5, "3", " 2 "])
def test_ratings_in_range_pass(rating: object) -> None:
    assert 1 <= validate_feedback(**{**GOOD, "rating": rating}).rating <= 5


def test_comment_length_is_limited_and_the_message_says_how_long_it_was() -> None:
    assert (
        validate_feedback(**{**GOOD, "comment": "x" * COMMENT_MAX_CHARS}).comment == "x" * COMMENT_MAX_CHARS
    )
    errors = errors_for(comment="y" * (COMMENT_MAX_CHARS + 1))
    assert "1,001" in errors["comment"] and "1,000" in errors["comment"]


def test_comment_keeps_markup_as_text_and_drops_invisible_control_characters() -> None:
    entry = validate_feedback(**{**GOOD, "comment": "<script>alert(1)</script>\x00\x07 ok\r\nnext"})
    assert entry.comment == "<script>alert(1)</script> ok\nnext"


@pytest.mark.parametrize("code", ["1234567890", "07", "P", "P 07", "P07!", "ABCDEFGHIJKLM", "Ä07", "-P07"])
def test_participant_codes_that_are_refused(code: str) -> None:
    # Starting with a letter refuses an NHS number, a date of birth or a phone number typed by mistake.
    assert errors_for(participant_code=code) == {"participant_code": MESSAGES["participant_code"]}


@pytest.mark.parametrize("code", ["P07", "t3-a", "GROUP2-12", "AB"])
def test_participant_codes_that_pass(code: str) -> None:
    assert validate_feedback(**{**GOOD, "participant_code": code}).participant_code == code.upper()


def test_unknown_views_and_variants_are_refused() -> None:
    assert errors_for(view="worklist") == {"view": MESSAGES["view"]}
    assert errors_for(variant="pie") == {"variant": MESSAGES["variant"]}
    assert errors_for(view="timeline", variant="fan") == {"variant": MESSAGES["variant"]}


def test_every_problem_is_reported_at_once() -> None:
    errors = errors_for(session_id="../etc", rating=9, participant_code="12", comment="z" * 2000)
    assert set(errors) == {"session_id", "rating", "participant_code", "comment"}
    assert str(FeedbackInvalid(errors)).count(".") >= 4


def test_session_ids() -> None:
    made = new_session_id(dt.date(2026, 12, 1))
    assert re.fullmatch(r"ws-20261201-[0-9a-f]{6}", made) and valid_session_id(made)
    assert new_session_id(dt.date(2026, 12, 1)) != made
    for bad in (None, "", "ab", "WS-UPPER", "ws 1", "x" * 65, "ws-1;drop"):
        assert not valid_session_id(bad)


def test_every_view_has_distinct_variants() -> None:
    for view in WORKSHOP_VIEWS:
        keys = [v.key for v in view.variants]
        assert len(keys) == len(set(keys)) == 3
    assert [v.key for v in WORKSHOP_VIEWS] == ["risk", "timeline"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("fine", "fine"),
        (None, ""),
        (4, "4"),
        (dt.datetime(2026, 12, 1, 9, 30, 15, 123), "2026-12-01 09:30:15"),
    ],
)
def test_spreadsheet_safe_cells(value: object, expected: str) -> None:
    assert spreadsheet_safe(value) == expected
