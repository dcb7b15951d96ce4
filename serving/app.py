"""The router application: ``create_app(settings)`` returns a FastAPI app.

    from serving.app import create_app
    from serving.settings import Settings

    app = create_app(Settings(registry=Path("mmregistry")))   # then: uvicorn, or TestClient

Start-up (the lifespan) opens the registry, reads the production alias table, optionally warms
the cache with ``preload`` models, freezes what it made out of the collector's walk, and starts
the thread that refreshes the alias table every ``refresh_seconds``. Once ready, a daemon
thread imports the model libraries start-up left out (scikit-learn, SciPy: ``serving.warm_up``)
and freezes them too, so the first model load or retrain does not pay for them; ``/readyz``
does not wait for it. Shutdown flushes the monitor's drift sample, then waits for a running
retrain job (queued ones are dropped), stops Ray if a retrain started it, stops the refresher
and closes the registry. Each app has its own
metrics registry and state, so several can run in one process.
"""

from __future__ import annotations

import gc
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from prometheus_client import Counter

from manymodels import __version__
from manymodels.registry.client import Registry
from serving.aliases import Refresher
from serving.auth import read_dependencies
from serving.deletions import DeletedVersions
from serving.docs_pages import install_docs
from serving.errors import install_handlers
from serving.head import Head
from serving.hosts import LocalHosts
from serving.jobs import Job, JobManager
from serving.keys import KeyPaths
from serving.metrics import Metrics
from serving.middleware import BodyLimit, Observe
from serving.monitor import start_monitor, stop_monitor
from serving.readiness import RegistryPing
from serving.replaced import RegistryFileWatch, only_the_opened_file
from serving.retrain import Retrainer
from serving.routes import (
    admin,
    failures,
    forecast,
    ops,
    partitions,
    predict,
    retrain,
    runs,
    ui,
    v2,
)
from serving.routes import monitor as monitor_routes
from serving.service import ModelService
from serving.settings import Settings
from serving.warm_up import WarmUp

logger = logging.getLogger("manymodels.serving")

DESCRIPTION = """
One scikit-learn model per partition, served from a manymodels registry.

* **predict** — score rows with a partition's production model (`/v1/partitions/{key}/predict`)
  or rows of many partitions at once (`/v1/predict`). Unknown partitions are answered by the
  registry's fallback model, flagged `fallback: true`.
* **partitions** — browse partitions, versions, metrics and lineage.
* **admin** — retrain a partition on new rows (a job: poll `/v1/jobs/{job_id}`), promote /
  roll back production (bearer token).
* **ops** — `/healthz`, `/readyz`, `/metrics` (Prometheus).

When the router has read tokens (`MANYMODELS_READ_TOKEN`), every endpoint needs
`Authorization: Bearer <read or admin token>` but the health checks (`/healthz`, `/readyz`,
`/v2/health/live`, `/v2/health/ready`), the API's description (`/docs`, `/redoc`,
`/openapi.json`) and the dashboard's page and files (`/ui`; each fetch it makes is checked);
without read tokens reading is open.

Keys use the canonical form `col=value,col=value` with percent-encoded values, e.g.
`store=2,brand=tropicana`.
"""


def create_app(settings: Settings, *, jobs: JobManager | None = None) -> FastAPI:
    """A router over ``settings.registry``; nothing is opened until the app starts.

    Retrain jobs run on ``jobs`` (by default a ``JobManager`` sized by the settings); the app
    closes it on shutdown.
    """
    metrics = Metrics()
    jobs = jobs or JobManager(workers=settings.retrain_workers, history=settings.retrain_history)
    retrains = Counter(
        "manymodels_retrain_jobs",
        "Finished retrain jobs by outcome: promoted, kept, first (no production before), "
        "returned (back after a retirement), failed.",
        ["outcome"],
        registry=metrics.registry,
    )

    def count(job: Job) -> None:
        retrains.labels(job.outcome or "failed").inc()

    jobs.add_listener(count)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = time.perf_counter()
        registry = await run_in_threadpool(
            Registry.open,
            settings.registry,
            db_url=settings.registry_db,
            artifacts=settings.artifacts,
            signer=settings.signer,
        )
        watch = RegistryFileWatch(registry.db_url, registry.root)  # serving.replaced
        only_the_opened_file(registry.store.engine, registry.db_url)  # no mix of two files
        refresher: Refresher | None = None
        retrainer: Retrainer | None = None
        warm_up: WarmUp | None = None
        try:
            service = ModelService(
                registry,
                cache_size=settings.cache_size,
                on_load=metrics.observe_load,
                inline_loads=settings.inline_loads,
            )
            await run_in_threadpool(service.start)
            if settings.preload:
                n = await run_in_threadpool(service.preload, settings.preload)
                logger.info("preloaded %d model(s)", n)
            # Everything start-up made (modules, the alias table, preloaded models) lives as long
            # as the router: out of the collector's sight, full collections under cold load
            # walk only what requests allocate (they took 136–140 ms every few seconds). Twice:
            # a tuple is left untracked only once its items are, and a layout's inner tuples
            # are untracked by the first pass; frozen while tracked, a shared layout would keep
            # every later model's ``ServedModel.plain`` tuple in the collector's walk.
            gc.collect()
            gc.collect()
            gc.freeze()
            # at the same pace: the trusted formats, and versions gc deleted (serving.deletions)
            deleted = DeletedVersions(service)
            refresher = Refresher(
                service.aliases,
                settings.refresh_seconds,
                also=[service.follow_trust, deleted.follow, watch.follow],
            )
            refresher.start()
            metrics.watch(service)
            start_monitor(app, service, settings, metrics.registry)
            await run_in_threadpool(jobs.attach, registry)  # jobs live in its database
            retrainer = Retrainer(service, backend=settings.retrain_backend)
            app.state.registry_ping = RegistryPing(registry.store.ping, replaced=watch.follow)
            app.state.service = service
            app.state.retrainer = retrainer
            logger.info(
                json.dumps(
                    {
                        "event": "router ready",
                        "registry": registry.location,
                        "partitions": len(service.aliases),
                        "fallback": service.aliases.get("__fallback__") is not None,
                        "admin": settings.admin_enabled,
                        "reads_need_token": settings.reads_need_token,
                        "retrain_backend": settings.retrain_backend,
                        "inline_loads": service.inline_loads,
                        "monitor": settings.monitor,  # --no-monitor: no row sampling
                        # which key checks signatures (its id: the key itself is never logged)
                        "signing_key_id": settings.signer.key_id if settings.signer else None,
                        "startup_ms": round((time.perf_counter() - started) * 1000, 1),
                    }
                )
            )
            # scikit-learn and SciPy, which start-up left out (~2 s), imported and frozen on a
            # daemon thread: not inside the first request that loads a model, and not walked by
            # every full collection; /readyz does not wait for them
            # skops.io too when the registry trusts skops artifacts alone (and skops is installed):
            # the thread reads that policy itself, not the start (a read, and a failure, of its own)
            warm_up = WarmUp(lambda: registry.trusted_formats)
            warm_up.start()
            yield
        finally:
            app.state.retrainer = None
            # the sample first: requests are over, and the wait for a running retrain job (a
            # fit of minutes) must not hold it — a supervisor's SIGKILL after its grace lost it
            await run_in_threadpool(stop_monitor, app, metrics.registry)  # flushes its sample
            await run_in_threadpool(jobs.close)  # before the registry it writes to closes
            if retrainer is not None:
                await run_in_threadpool(retrainer.close)
            app.state.service = None
            metrics.unwatch()
            if refresher is not None:
                refresher.stop()
            if warm_up is not None:  # before the registry closes: it reads the trust policy
                warm_up.stop()  # a warm-up still importing must not freeze after the unfreeze
            registry.close()
            gc.unfreeze()  # an app embedded in a longer process (tests) gives its objects back

    app = FastAPI(
        title="manymodels router",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,  # KeyPaths routes them instead: clients do not all follow a 307
        docs_url=None,  # serving.docs_pages: FastAPI's pages, saying so when offline
        redoc_url=None,
    )
    install_docs(app)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.service = None
    app.state.jobs = jobs
    app.state.retrainer = None
    install_handlers(app)
    # GET /v1/partitions/{key:path} also matches ".../promote", ".../retrain" and the like, and
    # a 405 carries the Allow header of the first route whose path matches: every action under
    # a partition is included before it, so OPTIONS .../promote answers "Allow: POST".
    # Every router gets the read-token check here (``serving.auth``: probes stay open), so a
    # router added to this tuple is covered; one included elsewhere takes the same list.
    reads = read_dependencies(settings)
    # monitor before partitions' GET {key:path}, so a 405 on .../actuals allows POST (see above)
    modules = (
        monitor_routes,
        failures,
        predict,
        forecast,
        admin,
        retrain,
        partitions,
        runs,
        v2,
        ops,
    )
    for module in modules:
        app.include_router(module.router, dependencies=reads)
    # The dashboard's page and files hold no data: open, and each fetch it makes is checked.
    app.include_router(ui.router)
    routes = [*app.routes, *(r for m in (*modules, ui) for r in m.router.routes)]
    paths = [path for r in routes if isinstance(path := getattr(r, "path", None), str)]
    # routes a key's %2F as one segment, and …/predict/ or /v1/partitions/ as without the
    # slash, where Starlette redirected or took the "/" into a key (serving.keys)
    app.add_middleware(KeyPaths, paths=paths)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    # a foreign Host on loopback (DNS rebinding), a cross-site POST: refused first (hosts.py)
    app.add_middleware(LocalHosts, allowed=settings.allowed_hosts)
    app.add_middleware(Head)  # HEAD as GET without its body, where FastAPI's routes 405ed
    static = frozenset(
        path for r in app.routes if "{" not in (path := str(getattr(r, "path", "{")))
    )
    app.add_middleware(Observe, metrics=metrics, static_paths=static)  # outermost
    return app
