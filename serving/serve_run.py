"""Start ``manymodels serve --ray-serve``, check the Ray Serve it joins, and stop it.

``serving.ray_serve`` is what runs in the replicas and in Serve's proxy; this is the command's
side. Ray Serve has one HTTP address per Ray cluster, fixed by whoever starts Serve there
(``serve.start``'s ``http_options`` are ignored once it runs), and ``serve.run`` replaces an
application of the same name without a word. So before deploying:

- Serve already runs (a cluster): it must listen where ``--host``/``--port`` say, or the
  command would print an address nobody serves; no application named ``manymodels`` may run
  there (a second command took over the first one's clients, and stopping it deleted the
  first's application), and none may hold the route ``/`` the router needs. Each is one
  ``error:`` line, and nothing on the cluster is touched.
- Serve does not run yet: its proxy will bind ``--host``/``--port`` on this machine (an
  embedded Ray, or a cluster's head node this command runs on), with ``SO_REUSEPORT``, so a
  port in use would be shared with its owner, the kernel splitting clients between two
  unrelated servers. It is refused as the plain router refuses it (``serving.listen``).

``serve.run`` itself calls ``serve.start`` again, whose "Connecting to existing Serve app …
New http_options will not be applied" opened every start; the checks above say what matters,
so that line is muted while the application deploys.

Replicas that cannot start (the registry unreachable from them) make Serve give up after
three tries with a ``RuntimeError`` over a page of traceback: the command says the replica's
own error in one line, deletes what it deployed, and exits 1. So does a Serve that cannot start
(its proxy dead as it starts, or not up in Serve's own 60 s): its error and Serve's logs.

**Shutdown.** SIGTERM and Ctrl-C delete the application (``serve.shutdown`` on an embedded
Ray, only this application on a cluster others share), then stop the embedded Ray through
``RayBackend.close``, whose reaper kills whatever Ray leaves behind, even after a SIGKILL.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from serving.listen import base_url, unusable_address
from serving.ray_serve import APP_NAME, PROXY_CALLBACK, PROXY_CALLBACK_ENV, application
from serving.serve_errors import logs_dir, replica_error, start_error
from serving.settings import Settings

logger = logging.getLogger("manymodels.serving.ray_serve")

SERVE_LOGGER = "ray.serve"
DEPLOYMENT = "router"
WORKER_NICENESS_ENV = "RAY_worker_niceness"  # read by the raylet an embedded ray.init starts


class ServeRefused(RuntimeError):
    """What the command says in one ``error:`` line: Serve on the cluster is not where this
    command may deploy, or the replicas could not start."""


class _QuietReconnect(logging.Filter):
    """Mutes Serve's "Connecting to existing Serve app" (``serve.run`` re-enters
    ``serve.start``, which says it even for the Serve this command just started)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Connecting to existing Serve app")


def _running_serve() -> Any:
    """The cluster's Serve (``ServeInstanceDetails``, what ``serve.status`` reads), or
    ``None`` where no Serve controller runs."""
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeInstanceDetails

    client = _get_global_client(raise_if_no_controller_running=False)
    return None if client is None else ServeInstanceDetails(**client.get_serve_details())


def _on_head_node() -> bool:
    """Whether this driver runs on the cluster's head node, where Serve's first proxy binds."""
    import ray

    here = ray.get_runtime_context().get_node_id()
    return any(
        node.get("NodeID") == here and "node:__internal_head__" in node.get("Resources", {})
        for node in ray.nodes()
    )


def check_serve(settings: Settings, ray_address: str | None) -> bool:
    """Refuse (``ServeRefused``) to deploy where it would take over or mislead (see the module
    docstring); True when Serve already runs, so ``serve.start`` is not to be called."""
    where = f"the Ray cluster at {ray_address}" if ray_address else "the embedded Ray"
    details = _running_serve()
    if details is None:
        here = ray_address is None or (not ray_address.startswith("ray://") and _on_head_node())
        why = unusable_address(settings.host, settings.port) if here else None
        if why is not None:
            raise ServeRefused(why)
        return False
    http = details.http_options
    if (http.host, http.port) != (settings.host, settings.port):
        raise ServeRefused(
            f"Ray Serve already runs on {where} and listens on http://{http.host}:{http.port}, "
            f"not {settings.host}:{settings.port} (Serve's address is set when it starts): "
            f"pass --host {http.host} --port {http.port}, or shut Serve down there first"
        )
    app = details.applications.get(APP_NAME)
    if app is not None:
        status = getattr(app.status, "value", app.status)  # an Enum: "RUNNING", not its repr
        raise ServeRefused(
            f"a Ray Serve application named '{APP_NAME}' already runs on {where} "
            f"({status}; another `manymodels serve --ray-serve`?): one router per Ray "
            "cluster, as its routes take the whole of Serve's address; stop that one first "
            "(its command gone, a Ray driver on the cluster deletes it: "
            f"serve.delete('{APP_NAME}'))"
        )
    for name, other in details.applications.items():
        if other.route_prefix == "/":
            raise ServeRefused(
                f"the Ray Serve application '{name}' on {where} holds the route prefix / "
                "that the router needs: delete it, or give it another prefix"
            )
    return True


def _failure() -> str:
    """Why the deployment failed, read from Serve (one line)."""
    try:
        details = _running_serve()
        app = details.applications.get(APP_NAME) if details is not None else None
    except Exception as e:  # Serve going down under us: say what is known
        return f"could not read why from Ray Serve ({e})"
    if app is None:
        return "the application disappeared while it deployed"
    for deployment in app.deployments.values():
        if deployment.message:
            return replica_error(deployment.message)
    return replica_error(app.message) if app.message else str(getattr(app.status, "value", ""))


SHUTDOWN_SECONDS = 15.0
"""How long the replicas get to finish their requests and run the app's shutdown (a running
retrain job, the monitor's last flush) before Ray is stopped under them. A Ctrl-C in a
terminal reaches Ray's own processes too, and Serve's controller may then never answer."""


def _bounded(stop: Callable[[], object], seconds: float = SHUTDOWN_SECONDS) -> None:
    """Run ``stop`` for at most ``seconds``: Serve's own shutdown waits 30 s on a controller
    that no longer answers."""

    def attempt() -> None:
        try:
            stop()
        except Exception as e:  # Ray going down under it: what is left is stopped next
            logger.warning("Ray Serve did not shut down cleanly: %s", e)

    thread = threading.Thread(target=attempt, name="serve-shutdown", daemon=True)
    thread.start()
    thread.join(seconds)


class _Signals:
    """SIGTERM and SIGINT while starting: ``KeyboardInterrupt`` (a start can hang, say on a
    replica that cannot be placed); once serving: the ``stop`` event, so the clean-up runs
    outside a signal handler. While cleaning up, further ones are ignored (the reaper covers
    a SIGKILL)."""

    handled = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.serving = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        self.stop.set()
        if not self.serving:
            raise KeyboardInterrupt

    def __enter__(self) -> _Signals:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.handled}
        return self

    def ignore(self) -> None:
        for sig in self.handled:
            signal.signal(sig, signal.SIG_IGN)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def for_replicas(settings: Settings) -> Settings:
    """``settings`` with the registry's path made absolute: replicas do not share the
    command's working directory. Absolute, not resolved: a registry named by a symlink
    (``--registry cur``, ``cur -> reg-a``) stays named by it, so a replica's router watches
    ``cur/registry.db`` and says a swap of the symlink (``serving.replaced``); resolved, each
    replica watched ``reg-a/registry.db`` and answered "ready" from reg-a after the swap.

    So too a SQLite ``--registry-db`` and a local ``--artifacts`` given relative: a replica
    opened ``sqlite:///db/registry.db`` and ``store/`` from its own directory (another
    registry's, or none: "unable to open database file"). ``~`` is expanded as
    ``Registry.open`` does: made absolute first, ``~/reg`` became ``<cwd>/~/reg``."""
    return replace(
        settings,
        registry=settings.registry.expanduser().absolute(),
        registry_db=_absolute_db(settings.registry_db),
        artifacts=_absolute_store(settings.artifacts),
    )


PASSWORD_ENV = "PGPASSWORD"
"""Where a replica finds the registry database's password: libpq's own variable, which
psycopg reads when the URL names none (as ``~/.pgpass``, which the docs advise instead)."""


def password_kept_out(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """``settings`` for the replicas with the registry database URL's password left out, and
    the environment that carries it to them (``PASSWORD_ENV``; empty when the URL names
    none). The settings are pickled into the deployment Serve stores on the cluster, where
    ``ray`` commands, the dashboard and the GCS's storage read it, and a replica's failure
    prints them: a password in the URL was shown to anyone who can see the cluster."""
    from sqlalchemy import make_url

    url = settings.registry_db
    if url is None or url.count("@") > 1:
        return settings, {}
    try:
        parsed = make_url(url)
    except Exception:  # not a URL: the registry says so, as it does for the plain router
        return settings, {}
    query = [v for k, v in parsed.query.items() if k.lower() == "password"]
    password = parsed.password or next((str(v) for v in query if isinstance(v, str)), None)
    if not password:
        return settings, {}
    # only what PGPASSWORD carries: ``url_without_password`` (a command to print) drops every
    # key naming a password, ``sslpassword`` too (the client key's), and no replica connected
    kept = {k: v for k, v in parsed.query.items() if k.lower() != "password"}
    bare = parsed._replace(password=None).set(query=kept)  # set(password=None) keeps it
    shipped = replace(settings, registry_db=bare.render_as_string(hide_password=False))
    return shipped, {PASSWORD_ENV: str(password)}


def _absolute_db(url: str | None) -> str | None:
    """A SQLite URL's file made absolute (its query kept); any other URL as it is."""
    from sqlalchemy import make_url

    from manymodels.registry.engine import sqlite_file

    path = sqlite_file(url) if url is not None else None
    if url is None or path is None:
        return url
    return make_url(url).set(database=path).render_as_string(hide_password=False)


def _absolute_store(store: str | None) -> str | None:
    """A local artifact directory made absolute; a URL (``s3://…``, ``file://…``) as it is."""
    return store if store is None or "://" in store else str(Path(store).absolute())


def run(
    settings: Settings,
    *,
    replicas: int,
    ray_address: str | None,
    access_log: bool = False,
    echo: Callable[[str], None],
) -> None:
    """Deploy ``replicas`` routers on Ray Serve and serve until SIGTERM or Ctrl-C."""
    from manymodels.execution import RayBackend

    # read by processes Ray starts from here (an embedded cluster's proxy); a user's wins
    os.environ.setdefault(PROXY_CALLBACK_ENV, PROXY_CALLBACK)
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    # Serve's controller kills a proxy not ready 5 s after it starts (its ready check), and
    # serve.start then fails with "ActorDiedError … killed by ray.kill": on a loaded machine a
    # proxy's worker takes longer to import and start (seen in CI at load 16). A minute, as
    # the proxies' own start timeout (HTTP_PROXY_TIMEOUT) is.
    os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")
    # An embedded Ray starts its workers at nice 15 (its ``worker_niceness``, made for batch
    # tasks), Serve's controller, proxy and router replicas among them: beside any process of
    # the host's own priority they got a sliver of its CPU, so requests waited behind a busy
    # host, and at load ~16 on 2 cores the proxy missed Serve's own 60 s start bound
    # (``HTTP_PROXY_TIMEOUT``: a traceback). A router answers requests: the host's priority.
    os.environ.setdefault(WORKER_NICENESS_ENV, "0")
    settings, secrets = password_kept_out(for_replicas(settings))
    # an embedded Ray's replicas inherit this process's environment: the password reaches
    # them shown nowhere; a cluster's replicas get it in their runtime environment
    os.environ.update(secrets if ray_address is None else {})
    # A replica asks Ray for one CPU (Serve's default, what a cluster's autoscaler plans by):
    # an embedded Ray counts them on top of the machine's, so that every replica is placed
    # and a retrain job on Ray (--retrain-backend ray) still finds the cores to run on.
    cpus = None if ray_address else (os.cpu_count() or 1) + replicas
    where = f"the Ray cluster at {ray_address}" if ray_address else "the embedded Ray"
    with _Signals() as signals:
        backend = RayBackend(ray_address, num_cpus=cpus)
        deployed = False  # ours to delete on a cluster, should the start fail
        try:
            from ray import serve
            from ray.serve.exceptions import RayServeException

            # a guard: ray.init from the main thread replaces it (sys.exit); RayBackend starts
            # Ray in a thread of its own and keeps the process's handlers
            signal.signal(signal.SIGTERM, signals._handle)
            try:
                if not check_serve(settings, ray_address):
                    serve.start(http_options={"host": settings.host, "port": settings.port})
            except ServeRefused:
                raise
            except Exception as e:  # Ray's, Serve's: a page of traceback, one line here
                why = start_error(e, logs_dir())
                raise ServeRefused(f"Ray Serve could not start on {where}: {why}") from e
            quiet, serve_logger = _QuietReconnect(), logging.getLogger(SERVE_LOGGER)
            serve_logger.addFilter(quiet)
            try:
                deployed = True
                serve.run(
                    application(
                        settings,
                        replicas=replicas,
                        access_log=access_log,
                        env=secrets if ray_address is not None else None,
                    ),
                    name=APP_NAME,
                    route_prefix="/",
                    blocking=False,
                )
            except (RuntimeError, RayServeException) as e:
                why = _failure() if str(e).startswith("Deploying application") else str(e)
                if "replica logs" in why and (logs := logs_dir()) is not None:
                    why += f" ({logs}/serve/)"
                raise ServeRefused(f"the router replicas could not start on {where}: {why}") from e
            except Exception as e:  # Serve's controller or Ray failing under the deploy
                why = start_error(e, logs_dir())
                raise ServeRefused(f"the router replicas could not start on {where}: {why}") from e
            finally:
                serve_logger.removeFilter(quiet)
            signals.serving = True
            url = base_url(settings.host, settings.port)
            # the dashboard too, as the plain router's start-up lines name it (README: /ui)
            echo(
                f"ray serve: {replicas} router replica(s) at {url} "
                f"(docs: {url}/docs, dashboard: {url}/ui)"
            )
            logs = logs_dir()
            if logs is not None:
                nodes = " on each node" if ray_address else ""
                echo(f"ray serve: replica logs in {logs}/serve/replica_{APP_NAME}_*.log{nodes}")
            while not signals.stop.wait(0.5):
                pass
            signals.ignore()
            echo("stopping Ray Serve")
            _bounded(serve.shutdown if ray_address is None else lambda: serve.delete(APP_NAME))
            deployed = False
        finally:
            signals.ignore()
            if deployed and ray_address is not None:  # a failed or interrupted start
                _bounded(lambda: serve.delete(APP_NAME))
            backend.close()
