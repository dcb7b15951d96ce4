"""A real PostgreSQL server for the tests: ``initdb`` into a temporary directory, started with
``pg_ctl``, reachable only through a unix socket in that directory (no TCP port to collide with
another test run), stopped and deleted at the end of the session.

The server binaries come from the ``pgserver`` wheel (in the ``dev`` extra, so the README's
test command installs them) or else from Debian's ``postgresql`` package. PostgreSQL refuses to
run as root, so under root (containers, CI) the server runs as ``nobody``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

PORT = 5432  # names the socket file only: the socket lives in this server's own directory
START_TIMEOUT_SECONDS = 60
# the bounds the tests that freeze a server or outlast its silence shorten the registry's to
# (the ``short_bounds`` fixture), so that they take seconds
SILENCE = 1.0  # PG_SILENCE_SECONDS
CONNECT = 2  # pg_connect.PG_CONNECT_TIMEOUT_SECONDS: libpq's least
CLOCK_AHEAD = 20 * 60.0
"""How far ahead of this host the ``clock_ahead`` registry's server clock reads
(``skewed_database``): past a run's heartbeat silence (120 s) and a scheduler's mark's
(600 s), so that judged by either clock a beat reads otherwise."""


def find_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: the ``pgserver`` wheel's, else Debian's newest."""
    return next((d for d in _bin_dirs() if (d / "initdb").is_file()), None)


def _bin_dirs() -> list[Path]:
    spec = importlib.util.find_spec("pgserver")  # found, not imported: it sets up more than we need
    candidates: list[Path] = []
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "pginstall" / "bin" for p in spec.submodule_search_locations]
    return candidates + sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def find_icu_bin_dir() -> Path | None:
    """Where the binaries of a server built with ICU are (Debian's ``postgresql`` is; the
    ``pgserver`` wheel's is not), for a database of a linguistic collation: the glibc locales
    that would give one without ICU (``en_US.UTF-8``) are often not installed, ICU's are.
    PostgreSQL 15 or later: ``CREATE DATABASE … LOCALE_PROVIDER icu`` is 15's."""
    for bin_dir in _bin_dirs():
        if not (bin_dir / "initdb").is_file() or not (bin_dir / "pg_config").is_file():
            continue
        config = [str(bin_dir / "pg_config")]
        built = subprocess.run([*config, "--configure"], capture_output=True, text=True)
        version = subprocess.run([*config, "--version"], capture_output=True, text=True)
        major = version.stdout.split()[1].split(".")[0] if version.stdout.split()[1:] else ""
        if "--with-icu" in built.stdout and major.isdigit() and int(major) >= 15:
            return bin_dir
    return None


def _in_memory() -> str | None:
    """Where a server's directory goes: ``/dev/shm`` (memory) where it is writable and has
    room, else the temporary directory (``None``). Its data dies with it, and durability is
    not under test (fsync is off): deleting a stopped server's files from a disk took 1-4 s
    on a loaded host at every module's end, 0.2 s from memory, and a new database is quicker
    too."""
    shm = "/dev/shm"
    try:
        room = os.statvfs(shm)
    except OSError:
        return None
    if not os.access(shm, os.W_OK) or room.f_bavail * room.f_frsize < SHM_ROOM_BYTES:
        return None
    return shm


SHM_ROOM_BYTES = 4 << 30  # the slow upgrade tests' copies of a million versions fit


def unavailable(reason: str) -> NoReturn:
    """Skip the test, saying ``reason``, on a user's machine; fail it in CI (``CI=true``),
    where a missing server is a broken set-up, not a reason to pass."""
    import pytest

    reason += " — pip install -e '.[dev]' installs both"
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(reason)


def own_server() -> PostgresServer:
    """A server of a test's own, not yet started (one it stops, freezes or fills without
    another test meeting it so); ``unavailable`` where PostgreSQL or its driver is missing."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        unavailable("no PostgreSQL server binaries (the pgserver wheel, or Debian's postgresql)")
    if importlib.util.find_spec("psycopg") is None:
        unavailable("no PostgreSQL driver (psycopg)")
    return PostgresServer(bin_dir, in_memory=True)


def running(server: PostgresServer) -> Iterator[PostgresServer]:
    """``server`` started for a fixture's ``yield from``, stopped after it (thawed first); a
    start that fails is stopped too, so its directory goes."""
    try:
        server.start()
        yield server
    finally:
        server.stop()


def running_own_server() -> Iterator[PostgresServer]:
    """``own_server()`` started for a fixture's ``yield from``, stopped after it."""
    yield from running(own_server())


class PostgresServer:
    """One throw-away PostgreSQL cluster; ``database()`` makes a fresh database in it."""

    def __init__(self, bin_dir: Path, *, in_memory: bool = False) -> None:
        """``in_memory``: the directory in ``/dev/shm`` where it has room (``_in_memory``),
        as the tests' servers are; the benchmarks' stay on disk, as a user's server is."""
        self.bin_dir = bin_dir
        # short on purpose: a unix socket's path must stay under ~100 bytes
        where = _in_memory() if in_memory else None
        self.root = Path(tempfile.mkdtemp(prefix="mmpg-", dir=where))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._names = itertools.count(1)
        self._stopped: list[int] = []  # processes ``freeze`` stopped, for ``thaw``
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
            self._as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_SECONDS,
            **self._as,
        )
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()}\n{log[-2000:]}")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--no-locale", "--no-sync")  # fmt: skip
        options = (
            f"-c listen_addresses='' -k {self.root} -p {PORT} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )  # durability is not under test here: the tests' data dies with the directory
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t",
                  str(START_TIMEOUT_SECONDS), "-o", options, "start")  # fmt: skip

    def stop(self) -> None:
        self.thaw()  # a frozen server would not stop
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def freeze(self) -> None:
        """Stop (SIGSTOP) the postmaster, then its children: the server of a hung host or
        behind a network partition. Its kernel still accepts connections and acknowledges
        what is sent, so nothing tells a client but silence. Always ``thaw`` after, in a
        ``finally``: a stopped server outlives the test (and ``stop`` waits for it)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGSTOP)  # first: a stopped postmaster forks no new backend
        self._stopped.append(postmaster)
        for pid in _children(postmaster):
            os.kill(pid, signal.SIGSTOP)
            self._stopped.append(pid)

    def thaw(self) -> None:
        """Continue (SIGCONT) every process ``freeze`` stopped; harmless when none was."""
        while self._stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._stopped.pop(), signal.SIGCONT)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.root}&port={PORT}"

    def database(self, icu_locale: str | None = None, copy_of: str | None = None) -> str:
        """A new, empty database; its SQLAlchemy URL. With ``icu_locale`` (``en-US``), the
        database's collation is that locale's, as a server initialised under a locale has (the
        cluster's own is bytewise: ``--no-locale``). With ``copy_of`` (a database of this
        server that nobody is connected to), a copy of it: seconds where building a big one
        again takes tens of them."""
        import psycopg

        name = f"mm_{next(self._names)}"
        dsn = f"dbname=postgres user=postgres host={self.root} port={PORT}"
        collated = (
            f" LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}' TEMPLATE template0"
            if icu_locale
            else f" TEMPLATE {copy_of}"
            if copy_of
            else ""
        )
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}{collated}")
        return self.url(name)

    def password_database(self, user: str, password: str) -> str:
        """A new, empty database owned by ``user``, who logs in with ``password`` only (SCRAM,
        as a server reached over a network asks): its URL, the password in it. The other
        roles (``postgres``) log in as before. For a server of a test's own: it changes how
        the whole server takes logins."""
        import psycopg

        url = self.database()
        name = url.split("@/", 1)[1].split("?", 1)[0]
        dsn = f"dbname=postgres user=postgres host={self.root} port={PORT}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
            conn.execute(f"ALTER DATABASE {name} OWNER TO {user}")
            conn.execute(f"GRANT ALL ON SCHEMA public TO {user}")
        (self.data / "pg_hba.conf").write_text(
            "local all postgres trust\nlocal all all scram-sha-256\n"
        )
        self._run("pg_ctl", "-D", str(self.data), "-w", "reload")
        return f"postgresql+psycopg://{user}:{password}@/{name}?host={self.root}&port={PORT}"

    def skewed_database(self, seconds: float) -> str:
        """A new, empty database whose server clock reads ``seconds`` ahead of this host's
        (behind, negative): what a registry on a PostgreSQL server of another machine sees
        when the clocks of the two machines are apart. Its sessions find ``clock_timestamp()``
        in a schema searched before ``pg_catalog`` (``search_path``), the server's own clock
        moved by ``seconds``; tables go to ``public`` as on any database."""
        import psycopg

        url = self.database()
        name = url.split("@/", 1)[1].split("?", 1)[0]
        dsn = f"dbname={name} user=postgres host={self.root} port={PORT}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA skewed_clock")
            conn.execute(
                "CREATE FUNCTION skewed_clock.clock_timestamp() RETURNS timestamptz "
                "LANGUAGE sql AS $$ SELECT pg_catalog.clock_timestamp() + "
                f"make_interval(secs => {float(seconds)!r}) $$"
            )
            conn.execute(
                f"ALTER DATABASE {name} SET search_path = public, skewed_clock, pg_catalog"
            )
        return url


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux's ``/proc``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


@contextlib.contextmanager
def pgbouncer(server: PostgresServer, pool_mode: str = "transaction", pool_size: int = 20) -> Any:
    """A real PgBouncer in front of ``server`` (Debian's ``pgbouncer``; the test skips
    without it), listening on a unix socket of its own; yields its directory (the ``host``
    of a URL, port ``PGBOUNCER_PORT``). It hands its clients a process id of its own making
    (the cancel key it keeps), not the server's."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).is_file():
        import pytest

        reason = "no pgbouncer binary (apt-get install pgbouncer)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"PgBouncer is required in CI: {reason}")
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="mmpgb-"))
    (root / "users.txt").write_text('"postgres" ""\n')
    (root / "pgbouncer.ini").write_text(
        f"[databases]\n* = host={server.root} port={PORT}\n[pgbouncer]\nlisten_addr =\n"
        f"unix_socket_dir = {root}\nlisten_port = {PGBOUNCER_PORT}\nauth_type = trust\n"
        f"auth_file = {root}/users.txt\npool_mode = {pool_mode}\n"
        f"default_pool_size = {pool_size}\n"
        f"logfile = {root}/pgbouncer.log\n"
    )
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    process = subprocess.Popen([binary, "-q", str(root / "pgbouncer.ini")], **as_user)
    try:
        socket_file = root / f".s.PGSQL.{PGBOUNCER_PORT}"
        for _ in range(200):
            if socket_file.exists() or process.poll() is not None:
                break
            import time

            time.sleep(0.05)
        if not socket_file.exists():
            raise RuntimeError(f"pgbouncer did not start (exit {process.poll()})")
        yield root
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


PGBOUNCER_PORT = 6432
