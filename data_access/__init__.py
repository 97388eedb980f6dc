"""Canonical data layer: schema, engine/session, bulk loading, queries, the prediction cache and data sources.

Imports flow one way (DESIGN.md): data_access may import clinical (vocabularies for mapping codes on import), never
app or models.
"""
