"""Secrets read at the edge: one value from ``NAME`` or from the file ``NAME_FILE`` names, and
sets of bearer tokens matched in constant time.

Every secret the project takes (the signing key, the router's admin and read tokens) comes from
an environment variable or from a file a secret manager mounts; setting both is an error, since
one of them would be silently ignored. Only the CLI and the settings objects call
``secret_from_env``: library code never reads the environment.

A ``Tokens`` set keeps only the sha256 of each token, and ``matches`` compares the sha256 of what
a client sent with *every* one of them (``hmac.compare_digest`` on equal-length digests, no early
exit), so neither which token matched nor how long any token is shows in the answer's timing.
Several tokens at once are what makes rotation possible without downtime: add the new one,
move the clients over, remove the old one. Tokens read from a file follow the file: it is
looked at (one ``stat``) at most once a second on use, and re-read when it changed, so a
rotation needs no restart. A re-read that finds the file unreadable or without a token keeps
the tokens it had (an editor that truncates before writing, a secret being replaced) and logs
a warning once per change — it never opens what was closed, nor locks every client out.

    secret = secret_from_env(os.environ, "MANYMODELS_SIGNING_KEY", "MANYMODELS_SIGNING_KEY_FILE")
    readers = Tokens.from_text("new-token,old-token")
    readers.matches("old-token")   # True
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("manymodels.secrets")

RECHECK_SECONDS = 1.0  # how often a file of tokens is looked at (one stat) while in use

SECRET_VARIABLES = ("MANYMODELS_SIGNING_KEY", "MANYMODELS_ADMIN_TOKEN", "MANYMODELS_READ_TOKEN")
"""The variables that hold a secret itself (their ``_FILE`` twins hold a path)."""


@contextmanager
def secrets_withheld() -> Iterator[None]:
    """The process's environment without ``SECRET_VARIABLES`` for the duration: every process
    an embedded ``ray.init`` starts (GCS, raylet, workers) inherits the environment it sees,
    and the signing key is checked in the driver precisely so that it never reaches a worker.
    Restored after; another thread reading one of them meanwhile (seconds) finds it unset,
    which is why only the edge reads them, once, before any Ray starts."""
    held = {name: os.environ.pop(name) for name in SECRET_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        for name, value in held.items():
            os.environ.setdefault(name, value)


@dataclass(frozen=True)
class Secret:
    """A secret's text (stripped; never in ``repr``) and the file it came from, if any."""

    text: str = field(repr=False)
    path: Path | None = None


def secret_from_env(env: Mapping[str, str], name: str, file_name: str) -> Secret | None:
    """The secret in the variable ``name``, or in the file the variable ``file_name`` names;
    ``None`` when neither is set (a blank variable counts as unset).

    A ``ValueError`` says what is wrong — both set, the file unreadable or empty — naming the
    variable and the path, never the content.
    """
    direct = env.get(name, "").strip()
    path = env.get(file_name, "").strip()
    if direct and path:
        raise ValueError(f"set {name} or {file_name}, not both")
    if path:
        return Secret(read_secret_file(Path(path), file_name), Path(path))
    return Secret(direct) if direct else None


def read_secret_file(path: Path, file_name: str) -> str:
    """The stripped text of a secret file; a ``ValueError`` naming ``file_name=path`` if it
    cannot be read or holds nothing."""
    try:
        text = path.read_text(encoding="utf-8-sig").strip()  # a BOM (Notepad) is no token
    except OSError as e:
        raise ValueError(f"{file_name}={path}: cannot read it ({e})") from None
    except UnicodeDecodeError:  # its message would quote a byte of the secret
        raise ValueError(f"{file_name}={path}: cannot read it (not UTF-8 text)") from None
    if not text:
        raise ValueError(f"{file_name}={path}: the file is empty")
    return text


def parse_tokens(text: str) -> tuple[str, ...]:
    """Tokens separated by commas or line breaks; blank entries and lines starting with ``#``
    are skipped, so a file can hold one token per line with comments."""
    tokens: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        tokens.extend(t.strip() for t in line.split(",") if t.strip())
    return tuple(tokens)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    """What tells a changed file: inode (a secret swapped by rename or symlink), size and
    times. ``None`` when it cannot be looked at."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Tokens:
    """Bearer tokens of one scope (the router's readers, its admins): several at once, so one
    can be rotated without downtime; only their sha256 digests are kept.

    ``from_file`` follows its file: ``matches`` re-reads it when it changed, looking at most
    once every ``recheck_seconds``.
    """

    def __init__(
        self,
        tokens: Iterable[str],
        *,
        path: Path | None = None,
        file_name: str = "",
        recheck_seconds: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger = logger,
    ) -> None:
        digests = tuple(_digest(t) for t in tokens)
        if not digests:
            raise ValueError("no token given (tokens are separated by commas or line breaks)")
        self._digests = digests
        self.path = path
        self.file_name = file_name or "token file"
        self.recheck_seconds = recheck_seconds
        self._clock = clock
        self._log = log
        self._checked = clock()
        self._seen = _signature(path) if path is not None else None

    @classmethod
    def from_text(cls, text: str) -> Tokens:
        """Tokens as an environment variable holds them: ``"new-token,old-token"``."""
        return cls(parse_tokens(text))

    @classmethod
    def from_file(
        cls,
        path: Path,
        file_name: str = "",
        *,
        recheck_seconds: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger = logger,
    ) -> Tokens:
        """Tokens from a file, one per line (``#`` comments and blank lines skipped), re-read
        when it changes; a ``ValueError`` now if it cannot be read or holds no token."""
        seen = _signature(path)
        text = read_secret_file(path, file_name or "token file")
        tokens = parse_tokens(text)
        if not tokens:
            raise ValueError(f"{file_name or 'token file'}={path}: the file holds no token")
        made = cls(
            tokens,
            path=path,
            file_name=file_name,
            recheck_seconds=recheck_seconds,
            clock=clock,
            log=log,
        )
        made._seen = seen  # as it was before the read: a change during it is seen next look
        return made

    def __len__(self) -> int:
        self._follow()
        return len(self._digests)

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path is not None else ""
        return f"Tokens(<{len(self._digests)} hidden>{where})"

    def matches(self, given: str) -> bool:
        """Whether ``given`` is one of the tokens: compared with every one, in constant time
        (digests of equal length, no early exit). An empty string matches nothing."""
        self._follow()
        wanted = _digest(given)
        found = False
        for digest in self._digests:
            found |= hmac.compare_digest(wanted, digest)
        return found and bool(given)

    def _follow(self) -> None:
        """Re-read the file if it changed, at most once every ``recheck_seconds``."""
        if self.path is None:
            return
        now = self._clock()
        if now - self._checked < self.recheck_seconds:
            return
        self._checked = now
        seen = _signature(self.path)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            tokens = parse_tokens(read_secret_file(self.path, self.file_name))
        except ValueError as e:
            self._keep(str(e))
            return
        if not tokens:
            self._keep(f"{self.file_name}={self.path}: the file holds no token")
            return
        self._digests = tuple(_digest(t) for t in tokens)  # one assignment: readers see old or new
        self._log.info("%s=%s re-read: %d token(s)", self.file_name, self.path, len(tokens))

    def _keep(self, why: str) -> None:
        self._log.warning("%s; keeping the %d token(s) read before", why, len(self._digests))
