"""Sources of canonical data: importers of real-world formats and the seeded synthetic population.

Every source produces the same thing, a ``{table: polars.DataFrame}`` mapping in the canonical layout of
``data_access.schema`` (no surrogate ``id`` columns except ``practice.id`` and ``patient.id``), which
``data_access.loading.load_frames`` writes to the database in one transaction.
"""
