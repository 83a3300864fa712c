"""Alembic environment and revisions; driven from code by ``storage.migrate``."""
