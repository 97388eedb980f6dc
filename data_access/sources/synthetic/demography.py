"""Who is on the practice lists: practices, and patients' age, sex, deprivation, ethnicity and registration.

Sources (approximations, documented in README.md):
- Age and sex: ONS Census 2021, England, usual residents by five-year age band (18.4% aged 65 and over; women
  51% overall and a growing majority at older ages).
- Ethnicity: ONS Census 2021, England, five high-level groups (White 81.0%, Asian 9.6%, Black 4.2%, Mixed 3.0%,
  Other 2.2%); older age groups are mostly White, which we represent with three age strata.
- Deprivation: English Indices of Deprivation 2019 quintiles hold roughly a fifth of the population each by
  construction; practices serve areas with different deprivation, so each practice gets its own profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_access.sources.synthetic.calendar import DAYS_PER_YEAR, NO_DATE

# (lower age, upper age exclusive, % of the England population) - ONS Census 2021, England.
AGE_BANDS: tuple[tuple[int, int, float], ...] = (
    (0, 5, 5.4),
    (5, 10, 6.0),
    (10, 15, 6.0),
    (15, 20, 5.6),
    (20, 25, 6.0),
    (25, 30, 6.6),
    (30, 35, 6.9),
    (35, 40, 6.7),
    (40, 45, 6.3),
    (45, 50, 6.4),
    (50, 55, 6.9),
    (55, 60, 6.7),
    (60, 65, 5.8),
    (65, 70, 5.0),
    (70, 75, 5.0),
    (75, 80, 3.6),
    (80, 85, 2.5),
    (85, 90, 1.5),
    (90, 100, 0.8),
)
# Share of men by age (Census 2021: about half below 65, falling to under 40% at 85+).
MALE_SHARE_BY_AGE: tuple[tuple[int, float], ...] = ((0, 0.505), (65, 0.48), (75, 0.45), (85, 0.38))

ETHNIC_GROUPS: tuple[str, ...] = ("White", "Asian", "Black", "Mixed", "Other")
ETHNICITY_SHARE: tuple[float, ...] = (81.0, 9.6, 4.2, 3.0, 2.2)  # ONS Census 2021, England
# White share by age stratum, chosen so that the population average is 81% (Census 2021 shows older groups
# are mostly White); the non-White remainder keeps the national split between groups.
WHITE_SHARE_BY_AGE: tuple[tuple[int, float], ...] = ((0, 0.74), (40, 0.85), (65, 0.93))

# The SMR-enriched population (enrich_smr=True): target shares of broad age groups, filled within each group in
# proportion to the Census bands; older, multimorbid patients are who Structured Medication Reviews target
# (NHS England, Network Contract DES: SMR eligibility - care homes, complex polypharmacy, frailty).
ENRICHED_AGE_GROUPS: tuple[tuple[int, int, float], ...] = (
    (0, 18, 0.02),
    (18, 50, 0.08),
    (50, 65, 0.20),
    (65, 75, 0.30),
    (75, 85, 0.27),
    (85, 100, 0.13),
)
ENRICHED_MULTIMORBIDITY_SHIFT = 0.5
"""Shift of the general multimorbidity factor (in SD units) for the enriched population."""

PATIENTS_PER_PRACTICE = 8000
MIN_PRACTICES = 3

# Registration turnover: a practice list loses roughly 4-5% a year to moves (NHS Digital, patients registered at a
# GP practice); new registrations during the window are represented as patients whose registration date falls in it.
NEW_REGISTRATION_SHARE = 0.06
DEREGISTRATION_PER_YEAR_UNDER_65 = 0.035
DEREGISTRATION_PER_YEAR_65_PLUS = 0.012

PRACTICE_NAME_STEMS: tuple[str, ...] = (
    "Riverside",
    "Oakwood",
    "Elm Tree",
    "Park View",
    "Mersey Vale",
    "Beechwood",
    "Hillside",
    "Abbey Road",
    "Greenbank",
    "Station Road",
    "Church Street",
    "Meadowside",
    "Woodlands",
    "Brookfield",
    "Kingsway",
    "Old Mill",
    "Westgate",
    "Heathfield",
    "Orchard",
    "Lakeside",
)
PRACTICE_NAME_SUFFIXES: tuple[str, ...] = (
    "Medical Centre",
    "Surgery",
    "Health Centre",
    "Medical Practice",
    "Family Practice",
)
ICB_NAME = "NHS Cheshire and Merseyside ICB"


@dataclass(frozen=True)
class Practices:
    ids: list[str]
    names: list[str]
    icb: str
    deprivation_centre: np.ndarray
    """The deprivation quintile each practice's list is centred on (1 = most deprived)."""


@dataclass
class Demography:
    """Per-patient demographic arrays (index = patient number)."""

    age_at_start: np.ndarray  # float years at the first day of the window
    birth_day: np.ndarray  # int32 epoch day (mid-month of the month of birth)
    birth_year: np.ndarray
    birth_month: np.ndarray
    male: np.ndarray  # bool
    deprivation: np.ndarray  # int8, 1 = most deprived
    ethnicity: np.ndarray  # int8 index into ETHNIC_GROUPS
    practice: np.ndarray  # int16 index into Practices
    registered_day: np.ndarray  # int32
    deregistered_day: np.ndarray  # int32, NO_DATE if still registered at the end

    @property
    def size(self) -> int:
        return int(self.age_at_start.size)


def practice_count(n_patients: int, practices: int | None) -> int:
    """Default: about one practice per 8,000 patients, and at least three."""
    if practices is not None:
        if practices < 1:
            raise ValueError("practices must be at least 1")
        return practices
    return max(MIN_PRACTICES, round(n_patients / PATIENTS_PER_PRACTICE))


def make_practices(count: int, rng: np.random.Generator) -> Practices:
    ids = [f"P{i + 1:03d}" for i in range(count)]
    stems = rng.permutation(len(PRACTICE_NAME_STEMS))
    names = []
    for i in range(count):
        stem = PRACTICE_NAME_STEMS[stems[i % len(stems)]]
        suffix = PRACTICE_NAME_SUFFIXES[int(rng.integers(len(PRACTICE_NAME_SUFFIXES)))]
        repeat = i // len(stems)
        names.append(f"{stem} {suffix}" + (f" {repeat + 1}" if repeat else ""))
    centres = rng.permutation(np.linspace(1.3, 4.7, count)) if count > 1 else np.array([3.0])
    return Practices(ids=ids, names=names, icb=ICB_NAME, deprivation_centre=centres)


def sample_demography(
    n: int,
    practices: Practices,
    window_first_day: int,
    window_last_day: int,
    enrich_smr: bool,
    rng: np.random.Generator,
) -> Demography:
    age = _sample_ages(n, enrich_smr, rng)
    male = rng.random(n) < _step_lookup(MALE_SHARE_BY_AGE, age)
    ethnicity = _sample_ethnicity(age, rng)
    practice = _assign_practices(n, len(practices.ids), rng)
    deprivation = _sample_deprivation(practice, age, practices.deprivation_centre, rng)

    birth_day = np.round(window_first_day - age * DAYS_PER_YEAR).astype(np.int32)
    birth_dates = birth_day.astype("datetime64[D]")
    birth_year = birth_dates.astype("datetime64[Y]").astype(np.int32) + 1970
    birth_month = (birth_dates.astype("datetime64[M]").astype(np.int32) % 12 + 1).astype(np.int32)
    # Store the birth day as mid-month of the month of birth: what the canonical year+month imply.
    month_first = birth_dates.astype("datetime64[M]").astype("datetime64[D]").astype(np.int32)
    birth_day = (month_first + 14).astype(np.int32)

    registered = _registration_days(age, birth_day, window_first_day, window_last_day, rng)
    deregistered = _deregistration_days(age, registered, window_first_day, window_last_day, rng)
    return Demography(
        age_at_start=((window_first_day - birth_day) / DAYS_PER_YEAR).astype(np.float64),
        birth_day=birth_day,
        birth_year=birth_year.astype(np.int32),
        birth_month=birth_month,
        male=male,
        deprivation=deprivation.astype(np.int8),
        ethnicity=ethnicity.astype(np.int8),
        practice=practice.astype(np.int16),
        registered_day=registered,
        deregistered_day=deregistered,
    )


def _sample_ages(n: int, enrich_smr: bool, rng: np.random.Generator) -> np.ndarray:
    lows = np.array([b[0] for b in AGE_BANDS], dtype=float)
    highs = np.array([b[1] for b in AGE_BANDS], dtype=float)
    weights = np.array([b[2] for b in AGE_BANDS], dtype=float)
    if enrich_smr:
        weights = _enriched_weights(lows, weights)
    weights = weights / weights.sum()
    band = rng.choice(len(weights), size=n, p=weights)
    u = rng.random(n)
    top = band == len(weights) - 1
    # Within the open top band the density falls steeply with age (survival): use u**1.8.
    u = np.where(top, u**1.8, u)
    return lows[band] + u * (highs[band] - lows[band])


def _enriched_weights(lows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    out = np.zeros_like(weights)
    for low, high, share in ENRICHED_AGE_GROUPS:
        members = (lows >= low) & (lows < high)
        out[members] = weights[members] / weights[members].sum() * share
    return out


def _step_lookup(table: tuple[tuple[int, float], ...], age: np.ndarray) -> np.ndarray:
    thresholds = np.array([t for t, _ in table], dtype=float)
    values = np.array([v for _, v in table], dtype=float)
    return values[np.searchsorted(thresholds, age, side="right") - 1]


def _sample_ethnicity(age: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    white = _step_lookup(WHITE_SHARE_BY_AGE, age)
    others = np.array(ETHNICITY_SHARE[1:], dtype=float)
    others = others / others.sum()
    u = rng.random(age.size)
    is_white = u < white
    # Among the non-White, split by the national shares of the other four groups.
    v = rng.random(age.size)
    other_group = 1 + np.searchsorted(np.cumsum(others), v, side="right").clip(0, others.size - 1)
    return np.where(is_white, 0, other_group)


def _assign_practices(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    # Practice list sizes vary (NHS Digital: median about 9,000, wide spread); lognormal weights, sd 0.3.
    weights = rng.lognormal(0.0, 0.3, size=count)
    return rng.choice(count, size=n, p=weights / weights.sum())


def _sample_deprivation(
    practice: np.ndarray, age: np.ndarray, centres: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    # Each practice's patients cluster around its deprivation centre; older people live slightly more often in less
    # deprived areas (IoD 2019 supplementary indices: IDAOPI differs from IMD), hence +0.3 quintile at 65+.
    centre = centres[practice] + np.where(age >= 65, 0.3, 0.0)
    quintiles = np.arange(1, 6, dtype=float)
    logits = -0.9 * np.abs(quintiles[None, :] - centre[:, None])
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    u = rng.random(practice.size)
    return 1 + (u[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)


def _registration_days(
    age: np.ndarray, birth_day: np.ndarray, first_day: int, last_day: int, rng: np.random.Generator
) -> np.ndarray:
    n = age.size
    # Time registered before the window: exponential with a 12-year mean, never before birth.
    before = first_day - np.round(rng.exponential(12.0 * DAYS_PER_YEAR, size=n)).astype(np.int64)
    registered = np.maximum(before, birth_day).astype(np.int64)
    new = rng.random(n) < NEW_REGISTRATION_SHARE
    in_window = first_day + np.floor(rng.random(n) * (last_day - first_day + 1)).astype(np.int64)
    registered = np.where(new, np.maximum(in_window, birth_day), registered)
    return np.minimum(registered, last_day).astype(np.int32)


def _deregistration_days(
    age: np.ndarray, registered: np.ndarray, first_day: int, last_day: int, rng: np.random.Generator
) -> np.ndarray:
    rate = (
        np.where(age >= 65, DEREGISTRATION_PER_YEAR_65_PLUS, DEREGISTRATION_PER_YEAR_UNDER_65) / DAYS_PER_YEAR
    )
    wait = rng.exponential(1.0, size=age.size) / rate
    day = np.maximum(registered, first_day) + np.round(wait).astype(np.int64)
    return np.where(day <= last_day, day, NO_DATE).astype(np.int32)
