"""Checks on the form of clinical codes, shared by the vocabularies' tests and the importers.

SNOMED CT identifiers end in a Verhoeff check digit (SNOMED CT Technical Implementation Guide, "Check-digit"), so a
mistyped or truncated id is caught before it is looked up.
"""

from __future__ import annotations

_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_valid(digits: str) -> bool:
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(char)]]
    return check == 0


def is_snomed_concept_id(code: str | None) -> bool:
    """SNOMED CT concept identifier: 6-18 digits, no leading zero, a concept partition ("00" international, "10"
    extension) and a valid Verhoeff check digit (SNOMED CT Technical Implementation Guide, section on SCTIDs).
    dm+d codes are SNOMED identifiers from the UK extension, so they pass the same test."""
    if not code or not code.isdigit() or not 6 <= len(code) <= 18 or code[0] == "0":
        return False
    return code[-3:-1] in {"00", "10"} and verhoeff_valid(code)
