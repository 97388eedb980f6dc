"""The canonical schema (DESIGN.md, "Canonical data model"): one schema for every source.

Source tables (practice, patient, social_care, condition, prescription, observation, event) hold pseudonymised
records; derived tables (flag, score, prediction, explanation, worklist_entry) are rebuilt from them; operational
tables (app_user, audit_log, feedback, review, model_run) belong to the running service.

Why some choices:
- Child rows reference patient with ON DELETE CASCADE so that re-importing a patient replaces its history in one
  statement inside the import transaction.
- ``audit_log`` has no foreign keys so that an audit write can never be blocked by, or block, a clinical write.
- ``worklist_entry`` is a per-patient summary materialised after scoring: the worklist is the hottest query and must
  filter and sort 100,000 patients in milliseconds without joining six tables.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

PATIENT_FK = "patient.id"


class Base(DeclarativeBase):
    pass


def _patient_fk() -> Mapped[str]:
    return mapped_column(String(64), ForeignKey(PATIENT_FK, ondelete="CASCADE"), nullable=False)


class Practice(Base):
    __tablename__ = "practice"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    icb: Mapped[str | None] = mapped_column(String(200))


class Patient(Base):
    __tablename__ = "patient"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    practice_id: Mapped[str] = mapped_column(String(64), ForeignKey("practice.id"), index=True)
    birth_year: Mapped[int] = mapped_column(Integer)
    birth_month: Mapped[int] = mapped_column(Integer)
    sex: Mapped[str] = mapped_column(String(1))
    deprivation_quintile: Mapped[int | None] = mapped_column(Integer)
    ethnicity_group: Mapped[str | None] = mapped_column(String(32))
    registered_on: Mapped[dt.date | None] = mapped_column(Date)
    deregistered_on: Mapped[dt.date | None] = mapped_column(Date)
    died_on: Mapped[dt.date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(32), default="synthetic")


class SocialCare(Base):
    __tablename__ = "social_care"
    __table_args__ = (Index("ix_social_care_patient", "patient_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = _patient_fk()
    kind: Mapped[str] = mapped_column(String(32))
    start: Mapped[dt.date] = mapped_column(Date)
    end: Mapped[dt.date | None] = mapped_column(Date)


class Condition(Base):
    __tablename__ = "condition"
    __table_args__ = (
        Index("ix_condition_patient", "patient_id"),
        Index("ix_condition_key", "condition_key"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = _patient_fk()
    code_system: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(64))
    term: Mapped[str] = mapped_column(String(300))
    condition_key: Mapped[str | None] = mapped_column(String(64))
    onset: Mapped[dt.date] = mapped_column(Date)
    resolved: Mapped[dt.date | None] = mapped_column(Date)


class Prescription(Base):
    __tablename__ = "prescription"
    __table_args__ = (
        Index("ix_prescription_patient", "patient_id"),
        Index("ix_prescription_drug", "drug_key"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = _patient_fk()
    code_system: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    drug_key: Mapped[str | None] = mapped_column(String(64))
    ingredients: Mapped[str] = mapped_column(String(300), default="")
    bnf_section: Mapped[str | None] = mapped_column(String(16))
    atc: Mapped[str | None] = mapped_column(String(16))
    start: Mapped[dt.date] = mapped_column(Date)
    stop: Mapped[dt.date | None] = mapped_column(Date)
    dose_text: Mapped[str | None] = mapped_column(String(200))
    repeat: Mapped[bool] = mapped_column(Boolean, default=True)


class Observation(Base):
    __tablename__ = "observation"
    __table_args__ = (Index("ix_observation_patient_type_date", "patient_id", "type", "date"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = _patient_fk()
    type: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(32))
    date: Mapped[dt.date] = mapped_column(Date)


class Event(Base):
    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_patient_date", "patient_id", "date"),
        Index("ix_event_type_date", "type", "date"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = _patient_fk()
    type: Mapped[str] = mapped_column(String(32))
    date: Mapped[dt.date] = mapped_column(Date)


class Flag(Base):
    """A period during which a safety rule held for a patient (end NULL = still active)."""

    __tablename__ = "flag"
    __table_args__ = (
        Index("ix_flag_patient", "patient_id"),
        Index("ix_flag_rule_end", "rule_id", "end"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = _patient_fk()
    rule_id: Mapped[str] = mapped_column(String(64))
    start: Mapped[dt.date] = mapped_column(Date)
    end: Mapped[dt.date | None] = mapped_column(Date)
    drugs: Mapped[str] = mapped_column(String(300), default="")
    severity: Mapped[str] = mapped_column(String(16))


class Score(Base):
    __tablename__ = "score"
    __table_args__ = (Index("ix_score_patient_kind_asof", "patient_id", "kind", "as_of"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = _patient_fk()
    kind: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[dt.date] = mapped_column(Date)
    value: Mapped[float] = mapped_column(Float)


class Prediction(Base):
    """Cached model output: one trajectory point (patient, month, outcome) per model version and scenario."""

    __tablename__ = "prediction"
    __table_args__ = (
        Index("ix_prediction_patient", "patient_id", "model_version", "scenario", "outcome", "as_of"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = _patient_fk()
    as_of: Mapped[dt.date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(32))
    horizon_months: Mapped[int] = mapped_column(Integer, default=12)
    risk: Mapped[float] = mapped_column(Float)
    lower: Mapped[float] = mapped_column(Float)
    upper: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(64))
    scenario: Mapped[str] = mapped_column(String(64), default="current")


class Explanation(Base):
    """Signed contribution of one factor (drug, condition, interaction, event) to a cached prediction."""

    __tablename__ = "explanation"
    __table_args__ = (Index("ix_explanation_patient", "patient_id", "model_version", "outcome", "as_of"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = _patient_fk()
    as_of: Mapped[dt.date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(32))
    factor: Mapped[str] = mapped_column(String(200))
    contribution: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(64))


class SyntheticTruth(Base):
    """The generator's true 12-month risk per patient-month (synthetic data only): the oracle for evaluation.

    No foreign key on purpose: at 100,000 patients this is ~21 million rows, and checking each against ``patient``
    made loading it four times slower on Postgres. ``loading.delete_patients`` removes a patient's rows explicitly.
    """

    __tablename__ = "synthetic_truth"
    __table_args__ = (Index("ix_truth_patient", "patient_id", "outcome", "month"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    month: Mapped[dt.date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(32))
    risk: Mapped[float] = mapped_column(Float)


class WorklistEntry(Base):
    """Per-patient summary for the worklist, rebuilt after flags, scores and predictions change."""

    __tablename__ = "worklist_entry"
    __table_args__ = (
        Index("ix_worklist_practice_risk", "practice_id", "risk_emergency_admission"),
        Index("ix_worklist_practice_whynow", "practice_id", "why_now_score"),
    )
    patient_id: Mapped[str] = mapped_column(
        String(64), ForeignKey(PATIENT_FK, ondelete="CASCADE"), primary_key=True
    )
    practice_id: Mapped[str] = mapped_column(String(64))
    age: Mapped[int] = mapped_column(Integer)
    sex: Mapped[str] = mapped_column(String(1))
    ltc_count: Mapped[int] = mapped_column(Integer, default=0)
    medicines_count: Mapped[int] = mapped_column(Integer, default=0)
    mental_and_physical: Mapped[bool] = mapped_column(Boolean, default=False)
    efi: Mapped[float | None] = mapped_column(Float)
    efi_category: Mapped[str | None] = mapped_column(String(16))
    acb: Mapped[float | None] = mapped_column(Float)
    cms: Mapped[float | None] = mapped_column(Float)
    risk_emergency_admission: Mapped[float | None] = mapped_column(Float)
    risk_fall_fracture: Mapped[float | None] = mapped_column(Float)
    risk_medication_harm: Mapped[float | None] = mapped_column(Float)
    risk_death: Mapped[float | None] = mapped_column(Float)
    risk_change_6m: Mapped[float | None] = mapped_column(Float)
    flags_high: Mapped[int] = mapped_column(Integer, default=0)
    flags_moderate: Mapped[int] = mapped_column(Integer, default=0)
    flags_low: Mapped[int] = mapped_column(Integer, default=0)
    active_rules: Mapped[str] = mapped_column(Text, default="")
    active_drugs: Mapped[str] = mapped_column(Text, default="")
    condition_keys: Mapped[str] = mapped_column(Text, default="")
    last_review: Mapped[dt.date | None] = mapped_column(Date)
    last_discharge: Mapped[dt.date | None] = mapped_column(Date)
    why: Mapped[str] = mapped_column(Text, default="")
    why_now_score: Mapped[float] = mapped_column(Float, default=0.0)
    model_version: Mapped[str | None] = mapped_column(String(64))


class AppUser(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class UserPractice(Base):
    __tablename__ = "user_practice"
    __table_args__ = (UniqueConstraint("user_id", "practice_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("app_user.id", ondelete="CASCADE"))
    practice_id: Mapped[str] = mapped_column(String(64))


class AuditLog(Base):
    """Append-only record of who looked at or did what. No foreign keys on purpose (see module docstring)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_user", "username"),
        Index("ix_audit_patient", "patient_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    username: Mapped[str] = mapped_column(String(100))
    role: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16), default="allowed")


class Review(Base):
    """SMR workflow state: reviewed, booked, declined or snoozed, with who and when."""

    __tablename__ = "review"
    __table_args__ = (Index("ix_review_patient_at", "patient_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = _patient_fk()
    status: Mapped[str] = mapped_column(String(16))
    reviewer: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    snooze_until: Mapped[dt.date | None] = mapped_column(Date)
    next_due: Mapped[dt.date | None] = mapped_column(Date)


class Feedback(Base):
    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    session_id: Mapped[str] = mapped_column(String(64))
    participant_code: Mapped[str | None] = mapped_column(String(32))
    view: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(64))
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)


class ModelRun(Base):
    """A trained model version with its metrics report and model card (JSON text)."""

    __tablename__ = "model_run"
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    checkpoint_path: Mapped[str | None] = mapped_column(String(500))
    metrics_json: Mapped[str | None] = mapped_column(Text)
    card_json: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=False)


class ImportBatch(Base):
    __tablename__ = "import_batch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    counts_json: Mapped[str | None] = mapped_column(Text)


SOURCE_TABLES = ("practice", "patient", "social_care", "condition", "prescription", "observation", "event")
DERIVED_TABLES = ("flag", "score", "prediction", "explanation", "worklist_entry")


class WhatIfCache(Base):
    """Model-service cache of what-if answers, keyed by (patient or input hash, model version, scenario hash)."""

    __tablename__ = "what_if_cache"
    cache_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    model_version: Mapped[str] = mapped_column(String(64))
    scenario_hash: Mapped[str] = mapped_column(String(64))
    result_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
