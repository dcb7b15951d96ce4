"""Run the router in a background thread of this process: for tests, the demo and benchmarks.

    with running_server(Settings(registry=path)) as url:
        httpx.post(f"{url}/v1/partitions/store=2,brand=tropicana/predict", json={"rows": rows})

It binds 127.0.0.1 on an ephemeral port (so runs never collide), returns once the app has
started (registry open, alias table loaded), and shuts down gracefully on exit.
"""

from __future__ import annotations

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

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        """The app, with what its lifespan raises kept: uvicorn logs it and exits with
        ``SystemExit(3)``, which alone said "the router failed to start: SystemExit: 3" where
        the registry was missing (``NoRegistry``)."""
        try:
            await application(scope, receive, send)
        except Exception as e:
            if scope.get("type") == "lifespan":
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
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if failed:  # the app's own error (NoRegistry, …), as Registry.open raises it
                raise failed[0]
            if not thread.is_alive() or errors:
                raise RuntimeError(
                    "the router failed to start"
                    + (f": {type(errors[0]).__name__}: {errors[0]}" if errors else "")
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"the router did not start within {timeout} s")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
