"""A bound on how long a PostgreSQL connection waits for its server to say something.

A server that stops answering — a hung host, a network partition, its processes frozen —
leaves the connections open to it open: its kernel still accepts and acknowledges what is sent,
so a query on a connection already made waits for ever (a router's ``/readyz`` and cold loads
waited out a whole 150 s freeze; found by the outage attack). Nothing in libpq bounds that
wait: ``tcp_user_timeout`` counts data left *unacknowledged* and TCP keepalives are answered
by the kernel (and both are ignored on a unix socket), a cancel request goes to the frozen
postmaster, and a server-side ``statement_timeout`` is kept by the server that is not running.
``connect_timeout`` bounds only the making of a connection
(``pg_connect.PG_CONNECT_TIMEOUT_SECONDS``).

So the client keeps the bound. Every wait of a psycopg connection for its server — a statement
and its rows, a commit or rollback, SQLAlchemy's pre-ping and its rollback when a connection
goes back to the pool, ``model_ref``'s raw cursor — passes through ``Connection.wait``, which
``BoundedConnection`` watches: after ``PG_SILENCE_SECONDS`` in which the server sent nothing,
a watchdog thread shuts the socket down. The blocked wait wakes to a closed connection, and the
caller gets one ``OperationalError`` saying the server did not answer, which SQLAlchemy takes
for a disconnect (the connection is dropped, not pooled again; the next checkout reconnects).

Silence, not duration: each byte that arrives (or each write the socket takes) restarts the
count, so a long transfer is never cut. A write transaction's waits for locks get their
``lock_timeout`` on top (``lock_waits``). A caller with a deadline of its own (a router's last
flush as it stops, a readiness ping) sets it with ``answered_by``: its waits, and the
connections it makes, end by then too.

A statement the server computes silently for longer than the bound — a migration rebuilding
the indexes of a big table (schema 9's ``COLLATE "C"``: 22 s for 6 million versions) — would be
cut although the server is well, and rolled back every time the registry is opened. Work
that may take such statements runs under ``long_statements``: when its silence runs out, the
server is asked on a second connection whether the statement's backend is still at work
(``pg_stat_activity``); each answer that says so starts the silence again, and a server that
cannot answer that (frozen, unreachable) is given up on as before, a proof's bound later. A
server-side ``statement_timeout`` would not do: it is kept by the server that may be frozen.
Under it: upgrades, ``gc``, ``doctor``, ``monitor`` and ``retrain --when``'s health reads, and
a router's background monitor flush (not a request: nobody waits on it, and its last flush at
``stop`` keeps its deadline through ``answered_by``). A router's requests are not: a client
waits on them, so they keep the bound and answer 503.

The statement is found by its backend's process id, and by a tag: under ``long_statements``
each statement sent through SQLAlchemy begins with a comment naming its connection
(``/* manymodels <random> */``, ``tag``), which ``pg_stat_activity.query`` shows as sent.
Behind a pooler (PgBouncer's transaction pooling) the process id the client knows is the
pooler's own, absent from ``pg_stat_activity``, and which server backend runs the statement
changes from one transaction to the next; the comment travels with the statement whatever the
pooler (PgBouncer 1.18 forwards ``application_name`` too, but a user may set that one, and
``application_name_add_host`` rewrites it). The proof goes through the pooler as well: with
every server connection of its pool busy, it waits for one, goes unanswered, and the
statement is cut at the bound as before.

Shutting the socket down from another thread, rather than closing it, leaves the descriptor to
its owner, so it is never reused under the watchdog: the watchdog acts only on a wait still
registered, under the lock its owner takes to unregister it before the wait returns.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

PG_SILENCE_SECONDS = 15.0
"""How long a wait for PostgreSQL's answer may go without a byte from the server before the
connection is closed: a frozen or unreachable server fails a router's read with a 503 in
about this long, plus the ``connect_timeout`` of the reconnect its pre-ping then tries. A
write transaction's waits are allowed its lock timeout on top (``lock_waits``: 45 s in all),
as the server says nothing while a lock it waits for is held."""

_by: contextvars.ContextVar[float] = contextvars.ContextVar("pg_answered_by", default=math.inf)
_long: contextvars.ContextVar[bool] = contextvars.ContextVar("pg_long_statements", default=False)


@contextlib.contextmanager
def long_statements() -> Iterator[None]:
    """Let this thread's (or task's) statements run silently for as long as their server,
    asked on another connection each ``PG_SILENCE_SECONDS``, says they are still running
    (``pg_stat_activity``): for work whose single statements may outlast the silence bound
    on a big registry, such as a schema migration. A frozen or unreachable server still ends
    the wait, when its proof goes unanswered (``PG_SILENCE_SECONDS`` more at most)."""
    token = _long.set(True)
    try:
        yield
    finally:
        _long.reset(token)


@contextlib.contextmanager
def answered_by(deadline: float) -> Iterator[None]:
    """End every wait of this thread (or task) for PostgreSQL by ``deadline`` (a
    ``time.monotonic()``), whatever the server says, and make each connection it opens give up
    by then too (``connect_timeout``, which libpq will not take under 2 s): work that is worth
    only so much time, and must not be left running after it (a thread left behind would use
    a registry already closed)."""
    token = _by.set(min(_by.get(), deadline))
    try:
        yield
    finally:
        _by.reset(token)


class _Watch:
    """One wait in progress: its socket, and when its silence runs out (``by`` at the latest).
    Once the watchdog has shut the socket, ``fired`` says why. ``prove``, under
    ``long_statements``, asks the server whether the statement is still running."""

    __slots__ = ("by", "deadline", "fd", "fired", "heard_at", "prove", "proving", "seconds")

    def __init__(
        self, fd: int, seconds: float, by: float, prove: Callable[[], bool] | None = None
    ) -> None:
        self.fd = fd
        self.seconds = seconds
        self.by = by
        self.fired = ""
        self.prove = prove
        self.proving = False
        self.heard()

    def heard(self) -> None:
        """The server sent something (or took what was sent): the silence starts again. Plain
        assignments, no lock: deadlines only move later, and the watchdog reads them again
        before it acts."""
        self.heard_at = time.monotonic()
        self.deadline = min(self.heard_at + self.seconds, self.by)

    def fire(self, now: float) -> None:
        """Say why the socket is being shut down (under the watchdog's lock)."""
        why = (
            "its caller's time was up"
            if self.deadline >= self.by
            else "the server or the network to it is down, or frozen"
        )
        silent = round(now - self.heard_at, 1)
        self.fired = (
            f"the PostgreSQL server sent nothing for {silent:g} s: connection closed ({why})"
        )


class _Watchdog:
    """One daemon thread for the process, sleeping until the earliest deadline of the waits
    registered; it shuts down the socket of each wait whose silence ran out."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a child has no watchdog thread

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._watches: set[_Watch] = set()
        self._wake_at = float("inf")  # when the thread will look next
        self._thread: threading.Thread | None = None

    def watch(
        self, fd: int, seconds: float, by: float, prove: Callable[[], bool] | None = None
    ) -> _Watch:
        w = _Watch(fd, seconds, by, prove)
        with self._cond:
            self._watches.add(w)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="manymodels-pg-silence", daemon=True
                )
                self._thread.start()
            if w.deadline < self._wake_at:
                self._cond.notify()
        return w

    def unwatch(self, w: _Watch) -> str:
        """Stop watching ``w``; why its socket was shut down, or ``""``."""
        with self._cond:
            self._watches.discard(w)
            return w.fired

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for w in [w for w in self._watches if w.deadline <= now]:
                    if w.prove is not None and not w.proving and now < w.by:
                        self._ask(w, now)  # the server may be computing: ask it
                        continue
                    self._watches.discard(w)
                    w.fire(now)
                    _shut_down(w.fd)
                self._wake_at = min((w.deadline for w in self._watches), default=float("inf"))
                self._cond.wait(None if self._wake_at == float("inf") else self._wake_at - now)

    def _ask(self, w: _Watch, now: float) -> None:
        """Ask, on a thread of its own, whether ``w``'s statement is still running; the wait
        gets the question's bound meanwhile (under the lock)."""
        assert w.prove is not None
        w.proving = True
        w.deadline = min(now + PG_SILENCE_SECONDS, w.by)
        threading.Thread(
            target=self._answered,
            args=(w, w.prove, now),
            name="manymodels-pg-proof",
            daemon=True,
        ).start()

    def _answered(self, w: _Watch, prove: Callable[[], bool], asked_at: float) -> None:
        try:
            running = prove()
        except Exception:  # not answered (frozen, unreachable) or not allowed: no proof
            running = False
        with self._cond:
            w.proving = False
            if running:
                w.heard()  # the server is at work on it: its silence starts again
            elif w.heard_at <= asked_at:  # no proof, nor a byte since: given up on
                w.prove = None
                w.deadline = time.monotonic()
            self._cond.notify()


def _shut_down(fd: int) -> None:
    """Shut the socket down (its blocked reader wakes to end-of-file) without closing ``fd``,
    which stays its owner's to close."""
    try:
        s = socket.socket(fileno=fd)
    except OSError:  # not a socket any more: nothing waits on it
        return
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:  # already shut down by the server's end: its reader is awake
        pass
    finally:
        s.detach()


_WATCHDOG = _Watchdog()


def _heard(gen: Generator[Any, Any, Any], w: _Watch) -> Generator[Any, Any, Any]:
    """``gen`` (a psycopg generator the wait drives), telling ``w`` whenever the socket was
    ready: the wait sends each readiness in, and "none" when only its polling interval passed."""
    try:
        wanted = next(gen)
        while True:
            ready = yield wanted
            if ready:
                w.heard()
            wanted = gen.send(ready)
    except StopIteration as done:
        return done.value


@functools.cache
def bounded_connection() -> type[Any]:
    """``BoundedConnection``: a ``psycopg.Connection`` whose waits for its server are bounded
    (made on first use: psycopg is imported only by a process that uses PostgreSQL)."""
    import psycopg

    class BoundedConnection(psycopg.Connection[Any]):
        """A connection whose every wait ends after ``PG_SILENCE_SECONDS`` of silence, and
        ``lock_waits`` more while it is in a write transaction (``lock_waits``)."""

        longer = 0.0
        tag: str | None = None  # the comment its statements begin with (``tag_statement``)

        def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                fd = self.pgconn.socket
            except psycopg.OperationalError:  # closed: the wait itself says so
                return super().wait(gen, *args, **kwargs)
            prove = None
            made = getattr(self, "made_with", None)
            if _long.get() and made is not None and self.tag is not None:
                prove = functools.partial(_still_running, made, self.info.backend_pid, self.tag)
            w = _WATCHDOG.watch(fd, PG_SILENCE_SECONDS + self.longer, _by.get(), prove)
            try:
                result = super().wait(_heard(gen, w), *args, **kwargs)
            except Exception as e:
                if fired := _WATCHDOG.unwatch(w):
                    raise psycopg.OperationalError(fired) from e
                raise
            except BaseException:
                _WATCHDOG.unwatch(w)
                raise
            _WATCHDOG.unwatch(w)  # had it fired as the answer came, the answer is still whole
            return result

    return BoundedConnection


def _still_running(made: tuple[Any, Any], pid: int, tag: str) -> bool:
    """Whether the server says backend ``pid``, or the backend running a statement that
    begins with ``tag`` (a pooler's: ``tag_statement``), is running a statement, asked on a
    new connection made as the watched one was (``made``: its arguments) within
    ``PG_SILENCE_SECONDS``: a frozen or unreachable server answers nothing in that time."""
    with answered_by(time.monotonic() + PG_SILENCE_SECONDS):
        conn = connect(None, None, *made)
        try:
            row = conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE state = 'active' "
                "AND (pid = %s OR left(query, %s) = %s) LIMIT 1",
                (pid, len(tag), tag),
            ).fetchone()
        finally:
            conn.close()
    return row is not None


def tag_statement(
    _conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
) -> tuple[str, Any]:
    """SQLAlchemy's ``before_cursor_execute`` hook (``retval=True``): under
    ``long_statements``, begin the statement with its connection's ``tag``, by which
    ``_still_running`` finds it in ``pg_stat_activity`` behind a pooler too."""
    if _long.get() and (tag := getattr(cursor.connection, "tag", None)) is not None:
        statement = f"{tag} {statement}"
    return statement, parameters


def lock_waits(conn: Any, seconds: float) -> None:
    """Allow the waits of SQLAlchemy connection ``conn`` ``seconds`` more silence until this is
    called again with 0: a write transaction's statements (its advisory lock first, then any
    row or table lock another session holds: ``LOCK TABLE``, a migration) are answered only
    once the lock is free, up to the transaction's ``lock_timeout``. Cut at the silence bound
    instead, a wait for a lock read as a frozen server. A connection that cannot be reached
    (invalidated) has no waits left to bound."""
    try:
        dbapi = conn.connection.dbapi_connection
    except Exception:
        return
    if hasattr(type(dbapi), "longer"):
        dbapi.longer = seconds


def connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """SQLAlchemy's ``do_connect`` hook: the connection its psycopg dialect would make
    (``psycopg.connect`` is ``Connection.connect``), as a ``BoundedConnection``; made by
    ``answered_by``'s deadline when one is set."""
    left = _by.get() - time.monotonic()
    if left <= 0:
        import psycopg

        raise psycopg.OperationalError(
            "no time left to connect to PostgreSQL (its caller's deadline has passed)"
        )
    if left < math.inf:
        given = float(cparams.get("connect_timeout") or 0)  # libpq: 0 (or none) waits for ever
        left = min(left, given) if given > 0 else left
        cparams = {**cparams, "connect_timeout": max(2, math.ceil(left))}
    conn = bounded_connection().connect(*cargs, **cparams)
    conn.made_with = (cargs, cparams)  # for a proof that its statement is still running
    conn.tag = f"/* manymodels {secrets.token_hex(8)} */"  # and to find that statement by
    return conn
