"""``manymodels serve``: run the router over a registry with uvicorn.

Only typer is imported at module level: the CLI imports this module to register the command,
and ``manymodels --help`` must not pay for FastAPI, uvicorn or scikit-learn.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from manymodels.cli.lines import echo, echo_error

# one declaration of the options every command shares (manymodels.cli imports no command
# module, so importing its options from here is no cycle)
from manymodels.cli.options import (
    DEFAULT_REGISTRY,
    ArtifactsOpt,
    RegistryDbOpt,
    RegistryOpt,
    finite,
    refuse_moot_registry,
)
from serving.settings import (
    ENV_ADMIN_TOKEN,
    ENV_ADMIN_TOKEN_FILE,
    ENV_READ_TOKEN,
    ENV_READ_TOKEN_FILE,
    RetrainBackend,
    Settings,
    host_names,
)
from serving.threads import limit_native_threads


def serve(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    host: Annotated[
        str,
        typer.Option(help="Interface to bind. The default keeps the router local to this host."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="A Host name the router answers to on a loopback address besides localhost, "
            "*.localhost, any IP address and this machine's name (repeatable; or "
            "MANYMODELS_ALLOWED_HOSTS, comma-separated): a reverse proxy's public name when it "
            "forwards the client's Host. Other names are refused (403), so that a web page "
            "whose DNS name was pointed at 127.0.0.1 cannot read the router. '*.example.com' "
            "accepts any name under example.com, '*' any.",
            show_default=False,
        ),
    ] = None,
    cache_size: Annotated[
        int, typer.Option(min=1, help="Models kept in memory (least recently used evicted).")
    ] = 1000,
    preload: Annotated[
        int, typer.Option(min=0, help="Production models to load before accepting requests.")
    ] = 0,
    refresh_seconds: Annotated[
        float,
        typer.Option(
            min=0.05,
            callback=finite,
            help="How often to pick up promotions made elsewhere (CLI, other routers).",
        ),
    ] = 2.0,
    retrain_backend: Annotated[
        RetrainBackend,
        typer.Option(
            help="Where retrain jobs run: 'auto' (chosen per job as `train --backend auto` "
            "does: a one-partition retrain runs in the router process), 'ray' (embedded Ray, "
            "started on the first retrain, stopped with the router) or 'local'."
        ),
    ] = "auto",
    retrain_workers: Annotated[
        int, typer.Option(min=1, help="Retrain jobs run at a time (others queue).")
    ] = 1,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="One JSON line per request on stderr (with --ray-serve: in each replica's "
            "log file, docs/deployment.md), written by a background thread. Off by "
            "default: even off the event loop it cost ~20 % of hot throughput on 2 cores "
            "(benchmarks/serve.py); /metrics counts requests by route and status either way.",
        ),
    ] = False,
    inline_loads: Annotated[
        bool | None,
        typer.Option(
            "--inline-loads/--thread-loads",
            help="Where a model missing from the cache loads. --inline-loads: on the event "
            "loop while loads stay quick (< 2 ms on average; after a slow one, in worker "
            "threads until they are quick again). --thread-loads: always in a worker thread. "
            "Default: --inline-loads for a SQLite file with a local artifact directory.",
            show_default=False,
        ),
    ] = None,
    registry_db: RegistryDbOpt = None,
    monitor: Annotated[
        bool,
        typer.Option(
            "--monitor/--no-monitor",
            help="Sample scored rows for drift and flush them to the registry "
            "(docs/monitoring.md). --no-monitor turns sampling off; posted actuals are "
            "still recorded.",
        ),
    ] = True,
    artifacts: ArtifactsOpt = None,
    ray_serve: Annotated[
        bool,
        typer.Option(
            "--ray-serve",
            help="Run the router as a Ray Serve deployment of --replicas copies behind "
            "Serve's proxy, each partition's requests kept on a replica that has its model "
            "(docs/deployment.md). Needs the serve extra: pip install 'manymodels[serve]'.",
        ),
    ] = False,
    replicas: Annotated[
        int | None,
        typer.Option(min=1, help="Router replicas with --ray-serve.  [default: 2]"),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            envvar="RAY_ADDRESS",
            help="With --ray-serve: an existing Ray cluster (default: embedded Ray).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve predictions over HTTP, one model per partition.

    Keys without a model of their own are answered by the fallback model.

    Admin endpoints (retrain, promote, rollback, retire) need a token in
    MANYMODELS_ADMIN_TOKEN or in the file named by MANYMODELS_ADMIN_TOKEN_FILE; without one
    they are disabled. With MANYMODELS_READ_TOKEN (or _FILE) set, every other endpoint needs a
    read or admin token too, except the health checks (/healthz, /readyz, /v2/health/live,
    /v2/health/ready) and the API's description (/docs, /redoc, /openapi.json). Several
    tokens, comma-separated (one per line in a file), let one be rotated; a file is re-read
    when it changes. API docs: /docs.
    """
    # the refusals below come before the registry's and the app's imports (SQLAlchemy;
    # FastAPI, scikit-learn): a mistyped flag is told in a fraction of a second, not ~3 s
    if replicas is not None and not ray_serve:  # one plain router ran, saying nothing
        echo_error(
            f"--replicas {replicas} needs --ray-serve (Ray Serve runs the replicas); "
            "without it serve runs one router: add --ray-serve, or drop --replicas"
        )
        raise typer.Exit(2)
    try:
        settings = Settings.from_env(
            registry=registry,
            registry_db=registry_db,
            artifacts=artifacts,
            host=host,
            port=port,
            # none given: MANYMODELS_ALLOWED_HOSTS's (an empty tuple would override it)
            # ``--allowed-host a.example.com,b.example.com``, as the variable takes them
            allowed_hosts=host_names(allowed_host) if allowed_host else None,
            cache_size=cache_size,
            preload=preload,
            refresh_seconds=refresh_seconds,
            retrain_backend=retrain_backend,
            retrain_workers=retrain_workers,
            inline_loads=inline_loads,
            monitor=monitor,
        )
    except ValueError as e:
        echo_error(as_flags(str(e)))  # it quotes the value: 100,000 characters of one
        raise typer.Exit(2) from None
    refuse_moot_registry(settings.registry, settings.registry_db, settings.artifacts)
    if not ray_serve or ray_address is None:  # an embedded Ray's Serve proxy binds here too
        _refuse_unusable_address(settings.host, settings.port)
    # before anything loads numpy or scikit-learn: their runtimes read it when they load
    limit_native_threads()
    # a wrong path, or an artifact store that holds none of the registry's models (a misspelt
    # --artifacts: every model would answer 500 "missing"): one clear line, no traceback
    from manymodels.registry.client import Registry
    from manymodels.registry.ownership import check_store
    from manymodels.signing import unverified_warning

    with Registry.open(
        settings.registry, db_url=settings.registry_db, artifacts=settings.artifacts
    ) as reg:
        check_store(reg)
        unverified = unverified_warning(reg.signed_by, settings.signer, reg.location)
    if unverified is not None:
        echo(f"warning: {unverified}", err=True)

    from serving import logs

    listener = logs.start(access_log=access_log)

    if not settings.admin_enabled:
        echo(
            f"note: admin endpoints are disabled (set {ENV_ADMIN_TOKEN} or "
            f"{ENV_ADMIN_TOKEN_FILE} to enable retrain / promote / rollback / retire)",
            err=True,
        )
    if not settings.reads_need_token:
        echo(
            "note: scoring, partitions, forecasts and /metrics are open to any client that can "
            f"reach the router (set {ENV_READ_TOKEN} or {ENV_READ_TOKEN_FILE} to require a token)",
            err=True,
        )
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        echo(f"note: listening on {settings.host}, reachable from other hosts", err=True)
    if ray_serve:
        try:
            _ray_serve(
                settings, replicas=replicas or 2, ray_address=ray_address, access_log=access_log
            )
        finally:
            listener.stop()
        return
    from serving.listen import base_url

    url = base_url(settings.host, settings.port)
    echo(f"docs: {url}/docs", err=True)
    # the dashboard the README points a new user at: the docs line alone never named it
    echo(f"dashboard: {url}/ui", err=True)
    # Ray's core worker (started by the first retrain on Ray) installs a C-level SIGTERM
    # handler that dumps a stack and kills the process, so uvicorn's graceful shutdown (the
    # one that stops Ray) never ran. Read when Ray is imported; RayBackend also keeps it out
    # of any Ray it starts (ray_lifetime.host_signal_handlers).
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    import uvicorn

    from serving.app import create_app

    app = create_app(settings)
    try:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            access_log=False,  # the router logs one structured line per request itself
            log_level="info",
            ws="none",
        )
    finally:
        listener.stop()  # writes what is still queued
    if app.state.jobs.left_running:  # a fit its stop did not wait for: exit without joining it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


# the ``Settings`` fields this command sets from a flag of its own: a refusal of one names the
# flag typed (``--port: must be within 0..65535, not 70000``), not the Python parameter
_FLAGS = {
    "port": "--port",
    "cache_size": "--cache-size",
    "preload": "--preload",
    "refresh_seconds": "--refresh-seconds",
    "retrain_backend": "--retrain-backend",
    "retrain_workers": "--retrain-workers",
}


def as_flags(message: str) -> str:
    """``Settings``' refusal of a field as the user of ``manymodels serve`` typed it: "port
    must be within …" said a name no flag has; a message about anything else (a token from
    the environment) is kept as it is."""
    field, _, rest = message.partition(" must ")
    flag = _FLAGS.get(field)
    return f"{flag}: must {rest}" if flag and rest else message


def _refuse_unusable_address(host: str, port: int) -> None:
    """One ``error:`` line for an address the router could not listen on, before anything
    starts (``serving.listen``): uvicorn logged "router ready", then its own error lines, and
    exited 3; Ray Serve's proxy bound a port in use beside its owner (``SO_REUSEPORT``)."""
    from serving.listen import unusable_address

    why = unusable_address(host, port)
    if why is not None:
        echo_error(why)
        raise typer.Exit(1)


def _ray_serve(
    settings: Settings, *, replicas: int, ray_address: str | None, access_log: bool
) -> None:
    """``--ray-serve``: a missing extra, an unreachable cluster, a Serve there this command
    must not deploy to, replicas that cannot start: each is one ``error:`` line."""
    from manymodels.exceptions import ManyModelsError

    try:
        import ray.serve  # noqa: F401
    except ImportError:
        echo_error("--ray-serve needs Ray Serve: pip install 'manymodels[serve]'")
        raise typer.Exit(1) from None
    from serving.serve_run import ServeRefused, run

    try:
        run(
            settings,
            replicas=replicas,
            ray_address=ray_address,
            access_log=access_log,
            echo=lambda line: echo(line, err=True),
        )
    except (ManyModelsError, ServeRefused) as e:
        echo_error(str(e))
        raise typer.Exit(1) from None
