"""Read canonical tables back into polars frames (the inverse of ``loading.load_frames``).

The clinical engine's population path and the model's graph builder both work on polars frames in the canonical
layout; this is the one place that turns database rows into those frames, with proper ``Date`` dtypes on both back
ends (SQLite stores dates as ISO text).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from sqlalchemy import Date, Engine, select

from data_access.schema import Base

READ_CHUNK_IDS = 20_000


def _select(table: str, patient_ids: Sequence[str] | None):  # noqa: ANN202 - SQLAlchemy Select
    sa_table = Base.metadata.tables[table]
    columns = [c for c in sa_table.columns if c.name != "id" or table in ("patient", "practice")]
    query = select(*columns)
    if patient_ids is not None:
        key = sa_table.c.id if table == "patient" else sa_table.c.patient_id
        query = query.where(key.in_(list(patient_ids)))
    return query, columns


def read_table(engine: Engine, table: str, patient_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """All rows of ``table`` (for ``patient_ids`` only, when given) as a polars frame with schema dtypes."""
    query, columns = _select(table, None)
    schema = {c.name: _polars_dtype(c.type) for c in columns}
    if patient_ids is None:
        return _read(engine, query, schema)
    ids = list(patient_ids)
    parts = []
    for start in range(0, len(ids), READ_CHUNK_IDS):
        chunk_query, _ = _select(table, ids[start : start + READ_CHUNK_IDS])
        parts.append(_read(engine, chunk_query, schema))
    return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


def read_canonical_frames(
    engine: Engine,
    patient_ids: Sequence[str] | None = None,
    tables: Sequence[str] = ("patient", "social_care", "condition", "prescription", "observation", "event"),
) -> dict[str, pl.DataFrame]:
    return {table: read_table(engine, table, patient_ids) for table in tables}


def _read(engine: Engine, query, schema: dict[str, pl.DataType]) -> pl.DataFrame:  # noqa: ANN001
    with engine.connect() as connection:
        result = connection.execute(query)
        rows = result.fetchall()
    frame = pl.DataFrame(rows, schema=list(schema), orient="row", infer_schema_length=None) if rows else None
    if frame is None:
        return pl.DataFrame(schema=schema)
    casts = []
    for name, dtype in schema.items():
        if dtype == pl.Date and frame.schema[name] == pl.Utf8:
            casts.append(pl.col(name).str.to_date("%Y-%m-%d", strict=True))
        elif frame.schema[name] != dtype:
            casts.append(pl.col(name).cast(dtype))
    return frame.with_columns(casts) if casts else frame


def _polars_dtype(sa_type) -> pl.DataType:  # noqa: ANN001
    if isinstance(sa_type, Date):
        return pl.Date
    python_type = sa_type.python_type
    return {int: pl.Int64, float: pl.Float64, bool: pl.Boolean, str: pl.Utf8}.get(python_type, pl.Utf8)
