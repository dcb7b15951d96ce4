"""Upgrading a registry's schema in place, one recorded version at a time.

Each step is plain, portable DDL (SQLite and PostgreSQL alike) run in the write transaction
that opens the registry, so a registry is either wholly upgraded or not at all. Steps only ever
add: a registry written by an older manymodels keeps every row it had.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.engine import Connection

from manymodels.exceptions import RegistryError
from manymodels.registry import schema as t


def _add_data_sha256(conn: Connection) -> None:
    conn.exec_driver_sql("ALTER TABLE model_versions ADD COLUMN data_sha256 VARCHAR(64)")


def _add_signature(conn: Connection) -> None:
    """Versions registered before signing have none: ``manymodels sign`` signs them."""
    conn.exec_driver_sql("ALTER TABLE model_versions ADD COLUMN signature VARCHAR(128)")


def _add_monitoring(conn: Connection) -> None:
    """The monitoring tables start empty: drift and live accuracy accrue from now on."""
    for table in (t.monitor_drift, t.monitor_actuals):
        table.create(conn, checkfirst=True)


# recorded version → (the step that upgrades it, the version it leaves)
STEPS: dict[str, tuple[Callable[[Connection], None], str]] = {
    "1": (_add_data_sha256, "2"),
    "2": (_add_signature, "3"),
    "3": (_add_monitoring, "4"),
}


def upgrade(conn: Connection, found: str, url: str) -> None:
    """Run every step from ``found`` to ``schema.SCHEMA_VERSION`` inside ``conn``'s
    transaction; a version this manymodels does not know is an error, never guessed at."""
    version = found
    while version != t.SCHEMA_VERSION:
        if version not in STEPS:
            raise RegistryError(
                f"registry {url} has schema version {found}; this manymodels reads version "
                f"{t.SCHEMA_VERSION} and can upgrade from {', '.join(sorted(STEPS))}"
            )
        step, version = STEPS[version]
        step(conn)
    conn.execute(update(t.meta).where(t.meta.c.name == "schema_version").values(value=version))
