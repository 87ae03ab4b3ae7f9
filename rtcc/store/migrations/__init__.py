"""Alembic migration scripts (configured in code by :mod:`rtcc.store.migrate`)."""
