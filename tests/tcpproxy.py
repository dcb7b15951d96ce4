"""A TCP proxy in front of a test's server (``tests/s3server.py``'s SeaweedFS) that passes
every byte both ways, except the requests a test names: their connection is closed as each
arrives, unanswered, as a store that drops one request while it answers the others. A double
of the network, nothing of ours: a SIGSTOPped SeaweedFS still answered a request it was sent
(it runs more than one process), so a test of one failed read was flaky; this one fails it
every time.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading

_REQUEST = re.compile(rb"^[A-Z]+ \S+ HTTP/1\.[01]\r\n")


class DroppingProxy:
    """``endpoint`` reaches ``port`` on loopback; requests whose first line matches ``drop``
    (a regex, none by default) are dropped. ``requests`` holds the first line of each request,
    in order, and ``dropped`` those of the dropped ones."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.drop: re.Pattern[bytes] | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.dropped: list[bytes] = []
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.port))
            except OSError:  # the server stopped: the client's connection dropped too
                self._close(client)
                continue
            self._open |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        """Copy ``src`` to ``dst`` until either closes; a request's head arrives in one read
        (a client writes it in one go), so its first line is checked whole."""
        try:
            while data := src.recv(65536):
                if (line := _REQUEST.match(data)) is not None:
                    first = line.group().rstrip()
                    self.requests.append(first)
                    if self.drop is not None and self.drop.search(first):
                        self.dropped.append(first)
                        return
                dst.sendall(data)
        except OSError:  # the other direction closed them
            pass
        finally:
            for s in (src, dst):
                self._close(s)

    def _close(self, s: socket.socket) -> None:
        """Shut down first: a thread blocked in ``recv`` on ``s`` wakes (a close alone may not)."""
        self._open.discard(s)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def close(self) -> None:
        for s in [self._listener, *self._open]:  # ``accept`` woken too, and its thread ends
            self._close(s)
