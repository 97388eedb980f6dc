"""Figures and printable documents of the dashboard, as pure functions of query results (no Dash callbacks)."""
