"""Run the router in a background thread of this process: for tests, the demo and benchmarks.

    with running_server(Settings(registry=path)) as url:
        httpx.post(f"{url}/v1/partitions/store=2,brand=tropicana/predict", json={"rows": rows})

It binds 127.0.0.1 on an ephemeral port (so runs never collide), returns once the app has
started (registry open, alias table loaded), and shuts down gracefully on exit.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from serving.settings import Settings


@contextmanager
def running_server(
    settings: Settings, *, app: FastAPI | None = None, timeout: float = 30.0
) -> Iterator[str]:
    """Yield the base URL (``http://127.0.0.1:<port>``) of a router serving ``settings``
    (or the given ``app``); ``settings.host`` and ``settings.port`` are not used."""
    import uvicorn

    from serving.app import create_app

    application = app if app is not None else create_app(settings)
    failed: list[BaseException] = []  # what the app's startup raised: its real reason
    said: list[str] = []  # the traceback the app sent as it failed to start

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        """The app, with what its lifespan raises kept: uvicorn logs it and exits with
        ``SystemExit(3)``, which alone said "the router failed to start: SystemExit: 3" where
        the registry was missing (``NoRegistry``). The traceback the app sends with
        ``lifespan.startup.failed`` is kept here, not given to uvicorn to print: the caller
        gets that error raised, and printed as well it put a traceback on the terminal of a
        caller who caught it."""
        if scope.get("type") != "lifespan":
            return await application(scope, receive, send)

        async def quiet(message: Any) -> None:
            if message.get("type") == "lifespan.startup.failed":
                said.append(message.get("message") or "")
                message = {"type": message["type"]}
            await send(message)

        try:
            await application(scope, receive, quiet)
        except Exception as e:
            failed.append(e)
            raise

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        recording, log_level="warning", access_log=False, ws="none", lifespan="on"
    )
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as e:  # reported to the caller below, not lost in the thread
            errors.append(e)

    thread = threading.Thread(target=run, name=f"router-{port}", daemon=True)

    def unsaid(record: logging.LogRecord) -> bool:
        """uvicorn's "Application startup failed. Exiting." once the app has failed to start:
        the error is raised to the caller instead (this server's thread only)."""
        return not (said and record.thread == thread.ident)

    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(unsaid)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if failed:  # the app's own error (NoRegistry, …), as Registry.open raises it
                raise failed[0]
            if not thread.is_alive() or errors:
                reason = f": {type(errors[0]).__name__}: {errors[0]}" if errors else ""
                if said and said[0].strip():  # the app failed on a BaseException: its last line
                    reason = f": {said[0].strip().splitlines()[-1]}"
                raise RuntimeError("the router failed to start" + reason)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the router did not start within {timeout} s")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        uvicorn_log.removeFilter(unsaid)
        sock.close()
