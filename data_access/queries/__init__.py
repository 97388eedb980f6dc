"""Read-only queries behind the dashboard: plain functions of ``(engine_or_connection, scope, ...)``.

Every patient-level query filters by a ``Scope`` (the practices the signed-in user may see), so a page can never
show a patient outside the user's practices even if a callback is POSTed directly with another patient's id.
The functions return plain dataclasses and lists, never Dash components, so they are unit-tested without Dash
and reused by the benchmarks.
"""
