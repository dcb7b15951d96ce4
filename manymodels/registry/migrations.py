"""Upgrading a registry's schema in place with alembic, inside the transaction that opens it.

The revisions live in the package (``manymodels/registry/alembic/versions``: a wheel carries
them) and run programmatically: users need no alembic.ini. Revision ids are the schema
versions ("1", "2", …). ``meta.schema_version`` stays the registry's recorded version (backups,
restores and older manymodels read it); alembic's ``alembic_version`` follows it. A registry
made before alembic (schema 1–4) has only the former, so it is stamped at that version and
upgraded from there.

Opening a registry that is up to date reads ``meta`` and never imports alembic (~0.4 s), so
read-only commands stay cheap; only an upgrade does. A new registry is made with
``create_all`` and recorded at the head revision by ``record_new`` (no alembic either).
Each step only adds, and every step runs in the caller's write transaction: a registry is
either wholly upgraded or not at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, insert, update
from sqlalchemy.engine import Connection

from manymodels.exceptions import RegistryError
from manymodels.registry import schema as t

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPTS = Path(__file__).with_name("alembic")
HEAD = t.SCHEMA_VERSION
VERSIONS = tuple(str(n) for n in range(1, int(HEAD) + 1))
"""Every schema version this manymodels can open: older ones are upgraded."""

# alembic's own table, as alembic makes it, so a new registry is recorded without importing it
alembic_version = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def check_version(found: str, where: str) -> None:
    """Raise ``RegistryError`` unless this manymodels reads or can upgrade schema ``found``
    (checked before anything is written: a newer registry is never touched)."""
    if found in VERSIONS:
        return
    if found.isascii() and found.isdigit() and int(found) > int(HEAD):
        raise RegistryError(
            f"registry {where} has schema version {found}, newer than this manymodels reads "
            f"(version {HEAD}): it was written by a newer manymodels — upgrade manymodels to "
            "open it (nothing was written)"
        )
    raise RegistryError(
        f"registry {where} has schema version {found}; this manymodels reads version {HEAD} "
        f"and can upgrade from {', '.join(VERSIONS[:-1])}"
    )


def record_new(conn: Connection) -> None:
    """Record a registry just made by ``create_all`` at the head revision."""
    alembic_version.create(conn, checkfirst=True)
    conn.execute(alembic_version.delete())
    conn.execute(insert(alembic_version).values(version_num=HEAD))


def upgrade(conn: Connection, found: str, where: str, *, to: str = HEAD) -> None:
    """Run every revision from ``found`` to ``to`` inside ``conn``'s transaction, and record
    ``to`` in ``meta``. ``found`` is ``meta``'s version: alembic is first stamped there (a
    registry from before alembic has no ``alembic_version``; a copied or hand-edited one may
    disagree), so ``meta`` always decides where the upgrade starts."""
    check_version(found, where)
    from alembic import command

    config = alembic_config(conn)
    command.stamp(config, found, purge=True)
    command.upgrade(config, to)
    conn.execute(update(t.meta).where(t.meta.c.name == "schema_version").values(value=to))


def alembic_config(conn: Connection) -> Config:
    """An alembic ``Config`` over the package's revisions, running on ``conn`` (env.py reads it
    from ``attributes``); no file."""
    from alembic.config import Config

    config = Config(attributes={"connection": conn})
    config.set_main_option("script_location", str(SCRIPTS))
    config.set_main_option("path_separator", "os")
    return config
