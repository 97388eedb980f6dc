"""The one home of the dashboard's colours, risk bands, number and date formats, and the plotly theme.

Colours follow the NHS identity palette for the frame (NHS Blue, dark text on white, pale grey backgrounds) and the
Okabe-Ito palette for data, which stays distinguishable with the common forms of colour-vision deficiency
(Okabe M, Ito K. Color Universal Design, 2008; recommended by Wong B. Nature Methods 2011;8:441). Every colour is
defined here once: CSS reads them as custom properties (``css_variables()`` is injected into the page head by
``create_app``) and plotly figures read them from the constants below. Colour is never the only signal: risk bands
and severities always come with a word.

Risk bands (12-month risk): under 10 % low, 10 % to under 20 % moderate, 20 % or more high. These are display
conventions to help scanning, not clinical thresholds; the Help page says so.
"""

from __future__ import annotations

import datetime as dt
import math

# NHS identity colours (NHS England, "NHS identity guidelines: colours").
NHS_BLUE = "#005EB8"
NHS_DARK_BLUE = "#003087"
NHS_TEXT = "#212B32"
NHS_SECONDARY_TEXT = "#4C6272"
NHS_PALE_GREY = "#F0F4F5"
NHS_MID_GREY = "#D8DDE0"
NHS_WHITE = "#FFFFFF"
NHS_FOCUS = "#FFEB3B"

# Okabe-Ito palette.
OI_ORANGE = "#E69F00"
OI_SKY_BLUE = "#56B4E9"
OI_GREEN = "#009E73"
OI_YELLOW = "#F0E442"
OI_BLUE = "#0072B2"
OI_VERMILLION = "#D55E00"
OI_PURPLE = "#CC79A7"
OI_BLACK = "#000000"

RISK_BANDS = (("low", 0.10), ("moderate", 0.20))  # upper bounds (exclusive); above → "high"
RISK_COLOURS = {"low": OI_BLUE, "moderate": OI_ORANGE, "high": OI_VERMILLION}
# Text drawn on a band colour: chosen for ≥ 4.5:1 contrast (WCAG 2.2 AA) against that colour.
RISK_TEXT_COLOURS = {"low": NHS_WHITE, "moderate": OI_BLACK, "high": OI_BLACK}
SEVERITY_COLOURS = {"high": OI_VERMILLION, "moderate": OI_ORANGE, "low": OI_SKY_BLUE}
SEVERITY_TEXT_COLOURS = {"high": OI_BLACK, "moderate": OI_BLACK, "low": OI_BLACK}

OUTCOME_COLOURS = {
    "emergency_admission": OI_BLUE,
    "fall_fracture": OI_VERMILLION,
    "medication_harm": OI_PURPLE,
    "death": OI_BLACK,
}
OUTCOME_DASHES = {
    "emergency_admission": "solid",
    "fall_fracture": "dash",
    "medication_harm": "dot",
    "death": "dashdot",
}
OUTCOME_LABELS = {
    "emergency_admission": "Emergency admission",
    "fall_fracture": "Fall or fracture",
    "medication_harm": "Medication harm",
    "death": "Death",
}
EFI_COLOURS = {"fit": OI_GREEN, "mild": OI_SKY_BLUE, "moderate": OI_ORANGE, "severe": OI_VERMILLION}

# BNF chapters cycle through these for the interaction timeline's swim lanes.
CHAPTER_COLOURS = (OI_BLUE, OI_GREEN, OI_PURPLE, OI_SKY_BLUE, OI_ORANGE, "#6B4C9A", "#117733", "#882255")
EVENT_SYMBOLS = {
    "emergency_admission": "square",
    "ae_attendance": "square-open",
    "fall": "triangle-down",
    "fracture": "x",
    "gi_bleed": "diamond",
    "aki": "diamond-open",
    "hypoglycaemia": "circle-open",
    "death": "cross",
    "medication_review": "star",
}

FONT_FAMILY = 'Arial, "Helvetica Neue", Helvetica, sans-serif'


def risk_band(risk: float | None) -> str | None:
    """'low', 'moderate' or 'high' for a 12-month risk given as a fraction (None when unknown)."""
    if risk is None or (isinstance(risk, float) and math.isnan(risk)):
        return None
    for name, upper in RISK_BANDS:
        if risk < upper:
            return name
    return "high"


def css_variables() -> str:
    """The palette as CSS custom properties, so stylesheets never repeat a colour."""
    variables = {
        "nhs-blue": NHS_BLUE,
        "nhs-dark-blue": NHS_DARK_BLUE,
        "nhs-text": NHS_TEXT,
        "nhs-secondary-text": NHS_SECONDARY_TEXT,
        "nhs-pale-grey": NHS_PALE_GREY,
        "nhs-mid-grey": NHS_MID_GREY,
        "nhs-focus": NHS_FOCUS,
        **{f"risk-{band}": colour for band, colour in RISK_COLOURS.items()},
        **{f"risk-{band}-text": colour for band, colour in RISK_TEXT_COLOURS.items()},
        **{f"severity-{name}": colour for name, colour in SEVERITY_COLOURS.items()},
        **{f"severity-{name}-text": colour for name, colour in SEVERITY_TEXT_COLOURS.items()},
        **{f"efi-{name}": colour for name, colour in EFI_COLOURS.items()},
    }
    body = "".join(f"--dx-{name}:{value};" for name, value in variables.items())
    return f":root{{{body}}}"


def format_date(value: dt.date | dt.datetime | str | None, missing: str = "—") -> str:
    """UK style with an abbreviated month, e.g. '01 Dec 2026'."""
    if value is None or value == "":
        return missing
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return value.strftime("%d %b %Y")


def format_percent(risk: float | None, digits: int = 0, missing: str = "—") -> str:
    """A fraction as a percentage with its unit: 0.237 → '24%'."""
    if risk is None:
        return missing
    return f"{risk * 100:.{digits}f}%"


def format_points(change: float | None, missing: str = "—") -> str:
    """A change in risk in percentage points, signed: 0.075 → '+7.5 points'."""
    if change is None:
        return missing
    sign = "+" if change > 0 else ("−" if change < 0 else "±")
    return f"{sign}{abs(change) * 100:.1f} points"


def format_number(value: float | None, digits: int = 0, missing: str = "—") -> str:
    if value is None:
        return missing
    return f"{value:,.{digits}f}"


def base_layout(title: str | None = None, height: int | None = None) -> dict:
    """The shared plotly layout (a plain dict, usable as ``go.Figure(layout=...)`` or ``update_layout(...)``):
    readable axes, calm gridlines, hover labels in the page font."""
    layout = {
        "font": {"family": FONT_FAMILY, "size": 13, "color": NHS_TEXT},
        "paper_bgcolor": NHS_WHITE,
        "plot_bgcolor": NHS_WHITE,
        "margin": {"l": 60, "r": 20, "t": 50 if title else 20, "b": 50},
        "hoverlabel": {"font": {"family": FONT_FAMILY, "size": 13}, "bgcolor": NHS_WHITE},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
        "xaxis": {
            "gridcolor": NHS_MID_GREY,
            "linecolor": NHS_SECONDARY_TEXT,
            "tickformat": "%b %Y",
            "ticks": "outside",
        },
        "yaxis": {
            "gridcolor": NHS_MID_GREY,
            "linecolor": NHS_SECONDARY_TEXT,
            "ticks": "outside",
            "zeroline": False,
        },
    }
    if title:
        layout["title"] = {"text": title, "x": 0, "xanchor": "left", "font": {"size": 16, "color": NHS_TEXT}}
    if height is not None:
        layout["height"] = height
    return layout


def with_alpha(hex_colour: str, alpha: float) -> str:
    """'#D55E00', 0.2 → 'rgba(213,94,0,0.2)' (for bands and shaded periods)."""
    value = hex_colour.lstrip("#")
    red, green, blue = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red},{green},{blue},{alpha})"
