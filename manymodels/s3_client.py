"""How long the S3 artifact store's client waits for a server that does not answer.

With s3fs's defaults a read from a frozen server (SIGSTOP, a hung store, a network dropping
packets) waited 15 s, botocore tried it 5 times and s3fs's own loop tried that 5 times: a
router's cold load took ~7 minutes to fail. A write waited for ever: botocore asks for a
``100 Continue`` before sending a body, and aiohttp bounds that wait by nothing. Here:

- every request takes at most 3 attempts (botocore's; s3fs's loop on top is turned off), each
  connecting within 3 s and failing after 5 s without a byte from the server (not 5 s in all:
  large artifacts still stream), so a store that does not answer fails a request in ~15-20 s,
  and one that refuses connections in ~3 s;
- a PUT sends its body at once, never waiting for a ``100 Continue`` (the AWS Go and Kotlin
  SDKs ask for one only from 2 MB; a PUT refused sends its body for nothing): the read timeout
  then covers the wait for its answer;
- a batch of writes keeps at most one request per pooled connection in flight, so the first to
  fail ends the batch instead of queueing its retries behind hundreds of others.

Overridden the way s3fs is configured anywhere: fsspec's configuration for ``s3`` —
``FSSPEC_S3_CONFIG_KWARGS='{"read_timeout": 60}'``, or ``config_kwargs`` in a JSON file in
``~/.config/fsspec/`` — whose keys (botocore ``Config`` options: ``connect_timeout``,
``read_timeout``, ``retries``, ``max_pool_connections``) each replace the default here; and
botocore's own ``AWS_MAX_ATTEMPTS`` (``max_attempts`` in ``~/.aws/config``), which replaces
the 3 attempts.
"""

from __future__ import annotations

from typing import Any

CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 5.0
ATTEMPTS = 3
_POOL = 10  # botocore's max_pool_connections
_PROTOCOLS = ("s3", "s3a")  # s3fs's


def storage_options(url: str) -> dict[str, Any]:
    """fsspec storage options for ``url``: the client's timeouts and attempts for ``s3://``
    (the user's fsspec configuration winning key by key), nothing for other schemes."""
    if url.split("://", 1)[0] not in _PROTOCOLS:
        return {}
    from fsspec.config import conf

    user: dict[str, Any] = {}
    for protocol in _PROTOCOLS:
        user.update(conf.get(protocol, {}))
    given = user.get("config_kwargs") or {}
    if not isinstance(given, dict):
        # fsspec keeps a FSSPEC_S3_CONFIG_KWARGS that is not JSON (a missing brace, single
        # quotes) as text, and s3fs then failed at the first request with "'str' object has
        # no attribute 'copy'": no word of which setting, nor what it should be
        raise ValueError(
            f"fsspec's s3 config_kwargs (FSSPEC_S3_CONFIG_KWARGS, or a file in "
            f"~/.config/fsspec/) is {given!r}, not a JSON object of botocore Config options "
            "(such as '{\"read_timeout\": 60}')"
        )
    defaults: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "read_timeout": READ_TIMEOUT_SECONDS,
    }
    if _aws_attempts(user.get("profile")) is None:  # a Config's retries override the profile's
        defaults["retries"] = {"total_max_attempts": ATTEMPTS}
    return {"config_kwargs": {**defaults, **given}}


def configured(fs: Any) -> Any:
    """``fs`` with s3fs's own retry loop off (it retried each timeout botocore had already
    retried, 5 x 5 times) and PUTs sent without ``Expect: 100-continue``: its session is made
    here, as s3fs would make it on first use, with a handler that drops the header.
    Other filesystems are returned as they are."""
    if not is_s3(fs):
        return fs
    fs.retries = 1
    if fs.session is None:  # not yet used: fsspec made it for these options
        from aiobotocore.session import AioSession

        fs.session = AioSession(**fs.kwargs)
        fs.session.register("before-call.s3", _send_body_at_once, unique_id="manymodels-expect")
        fs._session_is_owned = False  # s3fs remakes a client from it, not from a new session
    return fs


def pipe(fs: Any, objects: dict[str, bytes]) -> None:
    """``fs.pipe(objects)``; on S3 with as many writes in flight as the client has connections
    (fsspec's own batch made every coroutine up front, and warned of those never awaited once
    one failed), the first failure cancelling the rest."""
    if not is_s3(fs):
        fs.pipe(objects)
        return
    from fsspec.asyn import sync

    width = int(fs.config_kwargs.get("max_pool_connections", _POOL))
    sync(fs.loop, _pipe_bounded, fs, objects, width)


async def _pipe_bounded(fs: Any, objects: dict[str, bytes], width: int) -> None:
    import asyncio

    todo = iter(objects.items())

    async def writer() -> None:
        for path, data in todo:  # shared: each object is taken by one writer
            await fs._pipe_file(path, data)

    tasks = [asyncio.ensure_future(writer()) for _ in range(min(width, len(objects)))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def is_s3(fs: Any) -> bool:
    return type(fs).__name__ == "S3FileSystem" and hasattr(fs, "config_kwargs")


def _send_body_at_once(params: dict[str, Any], **_: Any) -> None:
    """Drop the ``Expect: 100-continue`` botocore's own ``before-call`` handler adds."""
    params.get("headers", {}).pop("Expect", None)


def _aws_attempts(profile: str | None) -> int | None:
    """``AWS_MAX_ATTEMPTS`` or the profile's ``max_attempts``, as botocore reads them."""
    from botocore.session import Session

    found = Session(profile=profile).get_config_variable("max_attempts")
    return None if found is None else int(found)
