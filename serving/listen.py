"""Whether this host can listen on an address: checked before a router starts, so a port in
use is one line, not a server's own error lines (or, behind Ray Serve's proxy, nothing at
all: the proxy binds with ``SO_REUSEPORT``, and the kernel would split the clients between it
and whatever listened there first)."""

from __future__ import annotations

import socket


def unusable_address(host: str, port: int) -> str | None:
    """Why nothing could listen on ``host:port`` here (a port in use, a host that does not
    resolve), or ``None``. Every address of the host is tried as asyncio binds them for
    uvicorn (``SO_REUSEADDR``, IPv6 sockets IPv6-only, a family this kernel cannot open
    skipped), then let go; a process taking one in between still meets the server's error."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        return f"--host {host}: cannot resolve it ({e})"
    for family, kind, proto, _, address in found:
        try:
            probe = socket.socket(family, kind, proto)
        except OSError:  # IPv6 switched off, say: asyncio skips the family too
            continue
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as e:
                where = f"[{address[0]}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
                return f"cannot listen on {where}: {(e.strerror or str(e)).lower()}"
    return None


def base_url(host: str, port: int) -> str:
    """``http://host:port`` as a browser takes it: an IPv6 address in brackets (``--host ::1``
    printed ``http://::1:8000/docs``, which no client parses)."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"
