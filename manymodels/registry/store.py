"""SQL store: entities in, entities out; database errors translated at this boundary.

``SqlStore`` is composed of one mixin per job — ``runs`` (runs and their outcomes), ``writes``
(versions, aliases, pruning) and ``reads`` — on a shared ``base``; this module opens the
database (creating or checking its schema) and combines them.
"""

from __future__ import annotations

from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from manymodels.exceptions import RegistryError
from manymodels.registry import schema as t
from manymodels.registry.bulk import _bulk_insert as _bulk_insert
from manymodels.registry.bulk import _insert_rows as _insert_rows
from manymodels.registry.engine import WRITE_OPTION, make_engine, now
from manymodels.registry.migrations import upgrade
from manymodels.registry.reads import ProductionRef, ReadsMixin
from manymodels.registry.runs import RunsMixin
from manymodels.registry.writes import _PARTITION_COLUMNS as _PARTITION_COLUMNS
from manymodels.registry.writes import _RUN_PARTITION_COLUMNS as _RUN_PARTITION_COLUMNS
from manymodels.registry.writes import WritesMixin

# ``now`` and ``ProductionRef`` (and, for the tests of ``record()``'s fast path, the ``as``
# imports above) are re-exported: they were defined or imported here before the split, and
# the pipeline, serving, tests and benchmarks import them from here.
__all__ = ["ProductionRef", "SqlStore", "now"]


class SqlStore(RunsMixin, WritesMixin, ReadsMixin):
    """The registry's metadata in a SQL database."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = make_engine(url)
            found = self._schema_version()
            if found is None:  # a new registry: create it under the write lock
                conn = self.engine.connect().execution_options(**{WRITE_OPTION: True})
                with conn, conn.begin():
                    t.metadata.create_all(conn)
                    found = conn.execute(
                        select(t.meta.c.value).where(t.meta.c.name == "schema_version")
                    ).scalar()
                    if found is None:
                        found = t.SCHEMA_VERSION
                        conn.execute(insert(t.meta).values(name="schema_version", value=found))
            if found != t.SCHEMA_VERSION:
                conn = self.engine.connect().execution_options(**{WRITE_OPTION: True})
                with conn, conn.begin():
                    # read again under the write lock: another process may have upgraded it
                    now_found = conn.execute(
                        select(t.meta.c.value).where(t.meta.c.name == "schema_version")
                    ).scalar()
                    if now_found != t.SCHEMA_VERSION:
                        upgrade(conn, str(now_found), url)
        except SQLAlchemyError as e:
            raise RegistryError(
                f"cannot open registry database {url}: {e.__class__.__name__}: {e}"
            ) from e

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise ``RegistryError`` unless the database answers (a readiness check)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1)).scalar()
        except SQLAlchemyError as e:
            raise RegistryError(f"registry database unavailable: {e}") from e

    def _schema_version(self) -> str | None:
        """The recorded schema version, or ``None`` unless every table exists (a read only:
        opening an existing registry takes no write lock)."""
        with self.engine.connect() as conn:
            if not set(t.metadata.tables) <= set(inspect(conn).get_table_names()):
                return None
            return conn.execute(
                select(t.meta.c.value).where(t.meta.c.name == "schema_version")
            ).scalar()

    # ---------------------------------------------------------------------------- meta
    def get_meta(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.meta.c.value).where(t.meta.c.name == name)).scalar()
