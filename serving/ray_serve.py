"""``manymodels serve --ray-serve``: the router's FastAPI app as a Ray Serve deployment.

The same app ``serving.app.create_app`` builds runs in each of N replicas (``@serve.ingress``
with a builder, so each replica builds its own app, registry connection, alias table and
cache). Everything else is Ray Serve's: its HTTP proxy in front, its controller restarting a
replica that dies, its router choosing a replica per request. Starting, checking the cluster
and stopping are ``serving.serve_run``'s.

**Model multiplexing by partition key.** Serve routes a request that carries a multiplexed
model id (the ``serve_multiplexed_model_id`` header) to a replica that reported that id as
loaded (``@serve.multiplexed``: each replica pushes its loaded ids to the controller every
0.1 s, the controller broadcasts them to the proxies), and an id no replica has to the replica
with the fewest. The choice is made *in the proxy*, from the headers it received, before any
replica sees the request, so a middleware inside the replicas could not set it. Two pieces:

- ``PartitionAffinity`` runs in the proxy (Serve's ``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH``
  hook, read when the proxy starts: set by ``serve_run.run`` before an embedded Ray starts; on
  a cluster, set where ``ray start`` runs) and sets the model id of every route that loads a
  partition's model (``partition_of``: ``/v1/partitions/{key}/predict``, ``/forecast``,
  ``/explain`` and the V2 ``/v2/models/{key}…`` routes) to the key as it appears in the path.
  Clients need not know Serve exists, and a client cannot split one partition's affinity by
  sending another id.
- ``ReplicaTag`` runs in each replica: once a request was answered by the partition's own
  model (authorized, resolved; not the fallback: ``serving.resolution.served_partitions``)
  it passes the request's model id through a ``@serve.multiplexed`` loader, so the replica
  reports the key as loaded; and it names the replica in an ``x-manymodels-replica`` response
  header. The multiplexer holds only the key: the model itself lives in the router's own
  cache, keyed ``(partition, version)``, so a promotion needs no eviction here and in-flight
  requests finish on the version they started with. Its bound is the cache's size, so what a
  replica advertises is what its cache holds; keys no model of their own answers would only
  push hot ones out of it.

Without the proxy hook (a cluster started without it) every request still gets an answer:
Serve then routes by queue length only, and each replica's cache sees every key.

**Promotions reach every replica** because each replica runs the app's own lifespan: its alias
table is refreshed from the registry every ``--refresh-seconds``, and a promotion made through
one replica's admin API is applied there at once and by the others at their next refresh, as
between several ``manymodels serve`` processes.

**Logs and metrics of a replica.** Its ``manymodels.serving`` log lines ("router ready", the
access log with ``--access-log``, errors) go to Ray Serve's replica logger
(``serving.logs.start_in_replica``): the replica's log file under the node's Ray session,
``logs/serve/replica_<app>_router_<id>.log``, where Serve writes its own, formatted by the
deployment's ``logging_config``. ``/metrics`` labels every series with ``replica``, the id in
``x-manymodels-replica``: a scrape through the proxy reaches one replica, and series of two
replicas must not look like one counter that keeps resetting.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.settings import Settings

APP_NAME = "manymodels"
MODEL_ID_HEADER = b"serve_multiplexed_model_id"
REPLICA_HEADER = b"x-manymodels-replica"
PROXY_CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
PROXY_CALLBACK = "serving.ray_serve:proxy_middlewares"
MAX_ONGOING_REQUESTS = 64
"""Requests a replica takes at once (Serve's default is 5): the app is asynchronous, and a
replica at its limit makes Serve send a key to a replica that does not have it."""

_V1 = b"/v1/partitions/"
_V1_ACTIONS = (b"/predict", b"/forecast", b"/explain")
_V2 = b"/v2/models/"
_V2_ACTIONS = (b"/infer", b"/ready")
_V2_VERSION = re.compile(rb"/versions/[^/]*$")


def partition_of(raw_path: bytes) -> bytes | None:
    """The key (percent-encoded, as in the URL) of a route that loads a partition's model:
    ``/v1/partitions/{key}/predict`` (``/forecast``, ``/explain``) and the V2 model routes,
    ``/v2/models/{key}[/versions/{n}][/infer|/ready]``; ``…/predict/`` too, which the app
    answers as ``…/predict`` (``serving.keys.KeyPaths``)."""
    if raw_path.startswith(_V1):
        path = raw_path.rstrip(b"/")
        for suffix in _V1_ACTIONS:
            if path.endswith(suffix):
                return path[len(_V1) : -len(suffix)] or None
        return None
    if raw_path.startswith(_V2):
        path = raw_path.rstrip(b"/")
        for suffix in _V2_ACTIONS:
            if path.endswith(suffix):
                path = path[: -len(suffix)]
                break
        return _V2_VERSION.sub(b"", path[len(_V2) :]) or None
    return None


def _is_model_id(name: bytes) -> bool:
    # Serve accepts the header with '-' for '_' and in any case (what some proxies send)
    return name.lower().replace(b"-", b"_") == MODEL_ID_HEADER


class PartitionAffinity:
    """Proxy-side ASGI middleware: a scoring request's model id is its partition key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope["path"].encode()
            key = partition_of(raw.split(b"?", 1)[0])
            if key is not None:
                headers = [(k, v) for k, v in scope["headers"] if not _is_model_id(k)]
                scope = {**scope, "headers": [*headers, (MODEL_ID_HEADER, key)]}
        await self.app(scope, receive, send)


def proxy_middlewares() -> list[Middleware]:
    """What Serve's proxy calls (``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH``)."""
    return [Middleware(PartitionAffinity)]


class ReplicaTag:
    """Replica-side ASGI middleware: name this replica in the response, and report the
    request's key as loaded here (``remember``, a ``@serve.multiplexed`` function) when the
    partition's own model answered it: resolved to it, and answered with a success (a key
    resolved, then refused — no such version, a model that does not load, a bad body — took
    a place in the replica's set, so made-up keys could evict the ones it serves)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        replica: str,
        remember: Callable[[str], Awaitable[object]],
        model_id: Callable[[], str] | None = None,
    ) -> None:
        from serving.resolution import served_partitions  # not in the proxy, which imports us

        self.app = app
        self.replica = replica.encode()
        self.remember = remember
        self.model_id = model_id or _serve_model_id
        self.served = served_partitions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replica = self.replica
        status = [500]

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = [*message.get("headers", []), (REPLICA_HEADER, replica)]
                message = {**message, "headers": headers}
            await send(message)

        model_id = self.model_id()
        if not model_id:
            await self.app(scope, receive, tagged)
            return
        with self.served() as served:
            await self.app(scope, receive, tagged)
        if served and status[0] < 400:  # answered by a partition's model: its cache holds it
            await self.remember(model_id)


def _serve_model_id() -> str:
    from ray import serve

    return serve.get_multiplexed_model_id()


def application(
    settings: Settings,
    *,
    replicas: int,
    access_log: bool = False,
    env: dict[str, str] | None = None,
) -> Any:
    """The bound Serve application: ``replicas`` copies of the router over ``settings``,
    logging through Serve's replica logger (Serve's own access line too with
    ``access_log``); ``env``, environment variables of the replicas' own
    (``serve_run.password_kept_out``: the registry database's password, on a cluster whose
    replicas do not inherit the command's environment)."""
    from ray import serve
    from ray.serve.schema import LoggingConfig

    cache_size = settings.cache_size

    def build() -> ASGIApp:  # runs in each replica, when it starts
        from ray import serve

        from manymodels.registry.client import Registry
        from serving import logs
        from serving.app import create_app

        # The app's lifespan opens the registry again; its failure there would reach Serve
        # (and the command) only as "ASGI lifespan startup failed", so a registry this
        # replica cannot open fails here, as the replica's own error.
        Registry.open(
            settings.registry,
            db_url=settings.registry_db,
            artifacts=settings.artifacts,
            signer=settings.signer,
        ).close()

        @serve.multiplexed(max_num_models_per_replica=cache_size)
        async def remember(key: str) -> str:
            return key

        context = serve.get_replica_context()
        replica_id = getattr(context, "replica_id", None)
        name = str(getattr(replica_id, "unique_id", None) or getattr(context, "replica_tag", ""))
        logs.start_in_replica(access_log=access_log)
        app = create_app(settings)
        app.state.metrics.label(replica=name)
        app.add_middleware(ReplicaTag, replica=name, remember=remember)
        return app

    own_env: dict[str, Any] = (
        {"ray_actor_options": {"runtime_env": {"env_vars": env}}} if env else {}
    )
    router = serve.deployment(
        **own_env,
        name="router",
        num_replicas=replicas,
        max_ongoing_requests=MAX_ONGOING_REQUESTS,
        logging_config=LoggingConfig(log_level="INFO", enable_access_log=access_log),
    )(serve.ingress(build)())
    return router.bind()
