"""The SQL schema's versioned migrations (Alembic): ``env.py`` and ``versions/``.

Run them through :mod:`adapters.sql.migrate` (start-up does, under the schema lock;
``rag-backend db upgrade`` too); no ``alembic.ini`` is involved.
"""
