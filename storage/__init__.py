"""Persistence: SQLModel tables, engines, encrypted keys, migrations and workspace-scoped stores."""
