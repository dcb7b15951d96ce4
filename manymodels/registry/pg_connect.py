"""How a connection to a PostgreSQL registry is made: psycopg (3) as the driver of a URL that
names none, a bound on the wait for a connection (``PG_CONNECT_TIMEOUT_SECONDS``), and no
statement prepared on the server (for PgBouncer).

Apart from ``registry.engine`` (which builds the engine and its write transactions for every
database) because these are PostgreSQL's and its driver's rules alone; the waits on a
connection once made are ``registry.pg_silence``'s.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import make_url

PG_CONNECT_TIMEOUT_SECONDS = 10
"""A connection to PostgreSQL that is not made in this long fails (libpq waits for ever, or
for the operating system's TCP retries: a router's cold load took 130 s against a frozen
server before its 500). A URL's own ``connect_timeout`` wins."""


def with_psycopg(url: str) -> str:
    """``url`` with psycopg (3) as its driver when it names none — ``postgresql://`` or
    Heroku's and Render's ``postgres://``, the form a ``DATABASE_URL`` comes in — and psycopg
    is installed (``manymodels[postgres]``). SQLAlchemy refuses ``postgres://`` ('Can't load
    plugin: sqlalchemy.dialects:postgres'), and before 2.1 its driver for ``postgresql://``
    is psycopg2, which the extra does not install and whose waits for a server that stopped
    answering nothing bounds (``pg_silence`` watches psycopg's)."""
    if not url.startswith(("postgresql://", "postgres://")):
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is None:
        return url
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def pg_connect_arguments(url: str) -> dict[str, Any]:
    """psycopg's connection arguments: ``connect_timeout``, unless the URL sets one, and no
    statement prepared on the server (``prepare_threshold=None``). psycopg prepares a
    statement once a connection has run it five times, and a prepared statement lives in
    one server connection: behind PgBouncer's transaction pooling (how many routers share a
    database's few connections) the next transaction may run on another, where the name is
    unknown or another client's ("prepared statement "_pg3_0" already exists"), and every
    repeated read failed. Our statements are small; planning them again costs little
    (measured in the commit that made this)."""
    arguments: dict[str, Any] = {"prepare_threshold": None}
    if "connect_timeout" not in make_url(url).query:
        arguments["connect_timeout"] = PG_CONNECT_TIMEOUT_SECONDS
    return arguments


REFUSED_LOGIN = (
    "password authentication failed",
    "no password supplied",
    "no pg_hba.conf entry",
    "authentication failed for user",
)
"""libpq's words for a server that refused the login (SQLSTATE class 28, which a failed
connection does not always carry)."""


def authentication_failed(error: BaseException) -> bool:
    """Whether ``error`` (or what it was raised from) is the database server refusing the
    login: a wrong password, none given, no ``pg_hba.conf`` entry. Unlike a server down or
    restarting, waiting mends nothing: a caller that retries the transient ones
    (``manymodels scheduler`` at each firing) stops on this one and says it."""
    seen: set[int] = set()
    found: BaseException | None = error
    while found is not None and id(found) not in seen:
        seen.add(id(found))
        state = getattr(found, "sqlstate", None) or getattr(
            getattr(found, "orig", None), "sqlstate", None
        )
        if isinstance(state, str) and state.startswith("28"):
            return True
        if any(words in str(found) for words in REFUSED_LOGIN):
            return True
        found = found.__cause__ or found.__context__
    return False
