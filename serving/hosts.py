"""Browser requests from other sites: DNS rebinding and cross-site POSTs.

Reading is open by default because the router binds to 127.0.0.1, which only this machine can
reach. A browser on this machine reaches it too, on behalf of any page it shows: a page of
``attacker.example`` whose DNS name is switched to 127.0.0.1 after it loaded (DNS rebinding)
reads the router's answers as its own origin's, and a page of any site can POST a plain-text
body (no CORS preflight) that the router acts on. Two checks close both:

- a request that came in on a loopback socket must name a loopback host (``localhost``,
  ``*.localhost``), an IP address (``127.0.0.1``, ``[::1]``, ``0.0.0.0``: rebinding needs a
  name), this machine's name (short or fully qualified), or one of
  ``Settings.allowed_hosts`` (a reverse proxy's public name, ``*.example.com`` any name under
  example.com; ``*`` turns the check off) in its
  ``Host`` header: a rebinding page's requests carry its own name there;
- a request other than GET, HEAD or OPTIONS that a browser marks as sent on behalf of another
  site's page (``Sec-Fetch-Site: cross-site`` or ``same-site``) is refused. Clients that are
  not browsers send no such header, and the dashboard's own calls are ``same-origin`` (behind
  a proxy too: the browser judges by the URL it sees, whatever Host the proxy forwards).

Both are a JSON 403 saying what to do, before any route runs. And no page of another site
may frame the router's pages (/docs' "Try it out" under a decoy, clickjacking) or have a
browser read its JSON as another type: every answer carries ``X-Frame-Options: DENY``,
``frame-ancestors 'none'`` (unless it sets a policy of its own, as /ui does) and ``nosniff``.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.middleware import send_json

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CROSS_SITE = frozenset({b"cross-site", b"same-site"})
# sent with every answer that does not set them itself (see the module's docstring)
GUARDS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
)


def _loopback_address(text: str) -> bool:
    """127.0.0.0/8, ::1, and ::ffff:127.x.y.z (an IPv4 client of a dual-stack socket)."""
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _address(text: str) -> bool:
    """Whether ``text`` is an IP address, not a name: ``0.0.0.0`` (the URL ``serve --host
    0.0.0.0`` prints, which reaches this machine), this machine's own addresses. DNS rebinding
    needs a name the attacker's DNS points here; an address names no site but the one it is, so
    a page whose origin is an address reached on loopback is the router's own."""
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def host_name(header: str) -> str:
    """``"[::1]:8000"`` → ``"::1"``, ``"Localhost.:80"`` → ``"localhost"``."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    name = text.rpartition(":")[0] if text.count(":") == 1 else text
    return name.rstrip(".")


def _framed(send: Send) -> Send:
    """``send`` adding ``GUARDS`` a response's start does not carry."""

    async def guarded(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            present = {name.lower() for name, _ in headers}
            headers += [(name, value) for name, value in GUARDS if name not in present]
            message = {**message, "headers": headers}
        await send(message)

    return guarded


def _this_machine() -> set[str]:
    """This machine's name (Debian resolves it to 127.0.1.1); no DNS look-up at start."""
    return {socket.gethostname().lower()}


def _fully_qualified() -> str:
    """This machine's fully qualified name (``hostname -f``, ``socket.getfqdn()``: the name a
    user copies from a shell prompt or a certificate). ``getfqdn`` asks the resolver
    (``/etc/hosts`` first), which can take its timeout where DNS is unreachable: it runs on a
    thread of its own (``LocalHosts``), never on the event loop nor per request."""
    return host_name(socket.getfqdn())


class LocalHosts:
    """403 for a request on a loopback socket naming a foreign ``Host``, and for a cross-site
    browser request that would change something (see the module's docstring)."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str] = ()) -> None:
        self.app = app
        given = {host_name(h) for h in allowed}
        self.any_host = "*" in given
        # ``*.example.com``: any name under example.com (Starlette's TrustedHostMiddleware's
        # and Django's form); taken for one name, it never matched, and every request through
        # the proxy was a 403 saying to pass the option the user had passed
        self.suffixes = tuple(h[1:] for h in given if h.startswith("*."))
        self.allowed = {h for h in given if not h.startswith("*.")} | _this_machine()
        # what each (socket address, Host header) pair was judged: a client sends the same
        # few, and parsing them as addresses took ~10 µs of every request (bounded: cleared
        # when a client sends many names)
        self._judged: dict[tuple[object, bytes], bool] = {}
        # looked up off the event loop: on it, the first foreign Host (anyone can send one)
        # stalled every request for the resolver's timeout where DNS is unreachable; until
        # it is known, that name is not answered and no verdict is kept
        self._fqdn: str | None = None
        threading.Thread(target=self._look_up, name="manymodels-fqdn", daemon=True).start()

    def _look_up(self) -> None:
        self._fqdn = _fully_qualified()

    def answers_to(self, name: str) -> bool:
        return (
            self.any_host
            or name == "localhost"
            or name.endswith(".localhost")
            or _address(name)
            or name in self.allowed
            or (bool(self.suffixes) and name.endswith(self.suffixes))
            or name == self._fqdn
        )

    def _judge(self, server: object, raw: bytes) -> bool:
        """Whether a request on the socket ``server`` naming ``raw`` in its Host is answered:
        only one on a loopback socket is judged by its name (see the module)."""
        host = raw.decode("latin-1")
        on_loopback = isinstance(server, tuple) and _loopback_address(str(server[0]))
        answered = not (on_loopback and host and not self.answers_to(host_name(host)))
        if not answered and self._fqdn is None:
            return answered  # judged again once this machine's full name is known
        if len(self._judged) >= 1024:
            self._judged.clear()
        self._judged[(server, raw)] = answered
        return answered

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        raw = headers.get(b"host", b"")
        server = scope.get("server")
        if isinstance(server, list):  # a server's address as a list: a dict key as a tuple
            server = tuple(server)
        answered = self._judged.get((server, raw))
        if answered is None:
            answered = self._judge(server, raw)
        if not answered:
            host = raw.decode("latin-1")
            await send_json(send, 403, {"detail": (
                f"this router does not answer to the host '{host}': it is reached on a "
                "loopback address, where only localhost, IP addresses and this machine's name "
                "name it (a web page whose name was pointed at this machine would read it "
                "otherwise); behind a proxy that sends another Host, start it with "
                "--allowed-host NAME (or MANYMODELS_ALLOWED_HOSTS=NAME in its environment)"
            )})  # fmt: skip
            return
        site = headers.get(b"sec-fetch-site", b"").lower()
        if site in CROSS_SITE and scope["method"] not in SAFE_METHODS:
            origin = headers.get(b"origin", b"another site").decode("latin-1")
            await send_json(send, 403, {"detail": (
                f"a {scope['method']} sent by a browser on behalf of a page of {origin} is "
                f"refused (Sec-Fetch-Site: {site.decode()}): call the router from a program, or "
                "from its own dashboard at /ui"
            )})  # fmt: skip
            return
        await self.app(scope, receive, _framed(send))
