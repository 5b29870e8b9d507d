"""The SQL store: engine and sessions, tables, and Alembic migrations applied at start."""
