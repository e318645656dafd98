"""The schema's versioned migrations (Alembic), run by path from this package.

``migrations/`` beside this module holds Alembic's ``env.py`` and ``versions/``; it is
found through :func:`alembic_config`, with no ``alembic.ini``. :func:`upgrade` works on
a connection whose transaction already holds the schema lock
(:func:`adapters.sql.engine.prepare_schema` takes it), so two instances starting at
once migrate once.

A database that ``metadata.create_all`` made before migrations existed has the
baseline's tables and no ``alembic_version``: it is stamped as the baseline (no DDL),
then upgraded. A database at a revision this release does not know (a newer release
migrated it) is left alone.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import attrs
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, inspect

from adapters.sql.schema import UtcDateTime

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
VERSIONS = MIGRATIONS / "versions"
BASELINE = "0001"
# The tables of BASELINE, as create_all made them: frozen, like the revision itself.
BASELINE_TABLES = frozenset(
    {
        "auth_profiles",
        "auth_revoked_tokens",
        "auth_users",
        "chat_messages",
        "chat_sessions",
        "content_cache",
    }
)
VERSION_TABLE = "alembic_version"
# Alembic's ``context`` and ``op`` are module-level proxies: one run per process at a
# time, whichever database it is for (the schema lock only orders runs on one database).
_ALEMBIC = threading.Lock()


@attrs.frozen
class SchemaChange:
    """What :func:`upgrade` did: the revision before (``None``: no ``alembic_version``)
    and after, the revisions it ran in order, and whether it stamped a ``create_all``
    schema as the baseline."""

    before: str | None
    after: str | None
    applied: tuple[str, ...] = ()
    stamped: bool = False
    unknown: bool = False  # ``before`` is newer than this release: left alone

    @property
    def changed(self) -> bool:
        return self.stamped or bool(self.applied)

    def describe(self) -> str:
        if self.unknown:
            return (
                f"database schema at revision {self.before}, which this release does not "
                f"know (its head is {head()}): left as it is"
            )
        if not self.changed:
            return f"database schema at revision {self.after} (head)"
        parts = []
        if self.stamped:
            parts.append(f"found a schema made before migrations: stamped as {BASELINE}")
        if self.applied:
            parts.append(f"ran {', '.join(self.applied)}")
        return f"database schema: {'; '.join(parts)}; now at {self.after}"


def alembic_config(
    connection: Connection | None = None,
    *,
    on_version_apply: Callable[..., None] | None = None,
) -> Config:
    """Alembic's configuration for the migrations shipped in this package
    (``connection``: the one ``env.py`` runs them on)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # New revisions are v0002_<slug>.py: a module name may not start with a digit.
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    config.attributes["on_version_apply"] = on_version_apply
    return config


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision this release ships."""
    revision = script_directory().get_current_head()
    if revision is None:  # pragma: no cover - the baseline always exists
        raise RuntimeError("no migrations found")
    return revision


def current(connection: Connection) -> str | None:
    """The database's revision; ``None`` when it has no ``alembic_version`` (empty, or
    made by ``create_all`` before migrations)."""
    revision: str | None = MigrationContext.configure(connection).get_current_revision()
    return revision


def is_unmigrated_schema(connection: Connection) -> bool:
    """Whether the database holds tables of the baseline but no ``alembic_version``:
    ``create_all`` of a release before migrations made it."""
    tables = set(inspect(connection).get_table_names())
    return VERSION_TABLE not in tables and bool(tables & BASELINE_TABLES)


def upgrade(connection: Connection, target: str = "head") -> SchemaChange:
    """Bring the database to ``target`` on ``connection``, in its transaction.

    The caller holds the schema lock. A schema made by ``create_all`` (every baseline
    table present, no ``alembic_version``) is stamped as the baseline first, without
    any DDL; one made by an older release (some of those tables) runs the baseline,
    which creates only the missing tables. A revision unknown to this release is left
    alone (``SchemaChange.unknown``)."""
    with _ALEMBIC:
        return _upgrade(connection, target)


def _upgrade(connection: Connection, target: str) -> SchemaChange:
    before = current(connection)
    if before is not None and before not in _known_revisions():
        return SchemaChange(before=before, after=before, unknown=True)
    applied: list[str] = []

    def record(*, step: MigrationInfo, **_: Any) -> None:
        if not step.is_stamp and step.is_upgrade:
            applied.extend(step.up_revision_ids)

    config = alembic_config(connection, on_version_apply=record)
    stamped = False
    if before is None:
        tables = set(inspect(connection).get_table_names())
        if tables >= BASELINE_TABLES:
            command.stamp(config, BASELINE)
            stamped = True
    command.upgrade(config, target)
    return SchemaChange(
        before=before, after=current(connection), applied=tuple(applied), stamped=stamped
    )


def differences(connection: Connection, metadata: MetaData) -> list[Any]:
    """What autogenerate finds between the database's schema and ``metadata`` (empty:
    they agree). The version table is not compared."""
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "target_metadata": metadata}
    )
    found: list[Any] = compare_metadata(context, metadata)
    return found


def next_revision_id() -> str:
    """``0002`` after ``0001``: revisions are numbered, newest highest."""
    numbers = [int(r) for r in _known_revisions() if re.fullmatch(r"\d{4}", r)]
    return f"{max(numbers, default=0) + 1:04d}"


def new_revision(message: str, connection: Connection) -> Path:
    """Write a new migration into ``versions/`` from what autogenerate finds between
    ``connection``'s database (at head) and the models; returns its path. For a
    source checkout: the file is to be reviewed and committed."""
    config = alembic_config(connection)
    if importlib.util.find_spec("ruff") is not None:  # the dev extra: format it as the tests check
        config.set_section_option("post_write_hooks", "hooks", "ruff")
        config.set_section_option("post_write_hooks", "ruff.type", "exec")
        config.set_section_option("post_write_hooks", "ruff.executable", sys.executable)
        config.set_section_option(
            "post_write_hooks", "ruff.options", "-m ruff format REVISION_SCRIPT_FILENAME"
        )
    with _ALEMBIC:
        script = command.revision(
            config, message=message, autogenerate=True, rev_id=next_revision_id()
        )
    scripts = script if isinstance(script, list) else [script]
    if not scripts or scripts[0] is None:  # pragma: no cover - alembic always writes one
        raise RuntimeError("alembic wrote no revision")
    return Path(scripts[0].path)


def render_item(kind: str, item: Any, autogen_context: Any) -> str | Literal[False]:
    """How autogenerate writes our column types: ``UtcDateTime`` as what it is in the
    database, ``sa.DateTime(timezone=True)`` (a migration must not import the models;
    it wrote ``adapters.sql.schema.UtcDateTime(...)`` with no import)."""
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _known_revisions() -> set[str]:
    return {script.revision for script in script_directory().walk_revisions()}
