"""One clock for leases: the database server's. Routers (and schedulers, runs) on several hosts
share one PostgreSQL; when each stamped its heartbeats with its own clock and judged others'
against its own, a host 3 minutes behind saw a live router's lease as expired and ended its
job — and a second retrain of that partition started beside the first. Stamped and judged by
the server's clock (as Airflow's scheduler heartbeats, Postgres-backed job queues and
Kubernetes leases are), no process's skew can end a live lease. SQLite is a file on this host:
its clock is this host's, so Python's serves it without a query."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from manymodels.exceptions import RegistryError
from manymodels.registry.engine import now


def db_now(conn: Connection) -> str:
    """The database server's time now, as the registry stamps time (ISO-8601 UTC text with
    microseconds, compared as text): PostgreSQL's ``clock_timestamp()`` — the time of the
    statement, not of its transaction's start, which a wait for the write lock may have left
    behind — or, on SQLite, this host's clock. One single-row statement, no table read."""
    if conn.dialect.name != "postgresql":
        return now()
    at = conn.execute(select(func.clock_timestamp())).scalar_one()
    if not isinstance(at, datetime):  # not an assert: ``python -O`` strips those
        raise RegistryError(f"the database's clock_timestamp() answered {at!r}, not a time")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def db_time(conn: Connection) -> datetime:
    """``db_now`` as a timezone-aware ``datetime``: what a heartbeat is judged against."""
    return datetime.fromisoformat(db_now(conn))
