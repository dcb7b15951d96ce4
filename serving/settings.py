"""The router's configuration: built once at the edge (CLI, tests), frozen, passed down.

Nothing else under ``serving/`` reads the environment; ``Settings.from_env`` is the one place
that does, and only for what must not appear on a command line (the admin and read tokens, the
signing key: ``manymodels.secrets``) or is a shared convention (``MANYMODELS_REGISTRY``,
``MANYMODELS_ALLOWED_HOSTS``: a container's proxy name, set beside its other variables)::

    settings = Settings.from_env(registry=Path("mmregistry"), port=8080)
    app = create_app(settings)
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from manymodels.secrets import Tokens, parse_tokens, secret_from_env
from manymodels.signing import Signer

RetrainBackend = Literal["auto", "ray", "local"]

ENV_REGISTRY = "MANYMODELS_REGISTRY"
ENV_REGISTRY_DB = "MANYMODELS_REGISTRY_DB"
ENV_ARTIFACTS = "MANYMODELS_ARTIFACTS"
ENV_ADMIN_TOKEN = "MANYMODELS_ADMIN_TOKEN"
ENV_ADMIN_TOKEN_FILE = "MANYMODELS_ADMIN_TOKEN_FILE"
ENV_READ_TOKEN = "MANYMODELS_READ_TOKEN"
ENV_READ_TOKEN_FILE = "MANYMODELS_READ_TOKEN_FILE"
ENV_ALLOWED_HOSTS = "MANYMODELS_ALLOWED_HOSTS"

MiB = 1024 * 1024

_log = logging.getLogger("manymodels.serving.auth")  # a token file's re-reads, in the router's log


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the router needs to start. Invalid values fail here, not mid-request.

    ``admin_token`` holds one or more tokens separated by commas (several at once let one be
    rotated without downtime); ``admin_token_file`` names a file of them instead, one per line,
    re-read when it changes (``manymodels.secrets.Tokens``); with neither, the mutating
    endpoints are disabled (they answer 403). ``read_token`` / ``read_token_file`` likewise:
    when set, every data endpoint needs a read or an admin token (``serving.auth.Reader``);
    unset, reading is open. Tokens are never shown in ``repr``, so settings can be logged.
    Retrain jobs run on ``retrain_backend``: ``"auto"`` (chosen per job by the pipeline; a
    one-partition retrain runs in this process), ``"ray"`` (an embedded Ray instance started
    on the first retrain and stopped with the app) or ``"local"`` (in this process),
    ``retrain_workers`` at a time; the newest ``retrain_history`` finished jobs are kept in
    the registry database (``serving.jobs``). ``inline_loads=True`` loads a model
    missing from the cache on the event loop while loads stay quick (see
    ``ModelService.loads_inline``), ``False`` always in a worker thread; ``None`` (the
    default) is ``True`` for a SQLite file with a local artifact directory. ``signer``
    (from ``MANYMODELS_SIGNING_KEY`` or ``MANYMODELS_SIGNING_KEY_FILE``) makes the router
    refuse any version whose signature does not verify (``manymodels.signing``), and sign the
    versions its retrains register. ``monitor`` samples scored rows for drift, flushed to the
    registry every ``monitor_flush_seconds`` (``serving.monitor``).
    """

    registry: Path
    # the registry's database by URL (``MANYMODELS_REGISTRY_DB``), instead of the SQLite file in
    # ``registry``; its artifacts stay there. Not in repr: the URL may hold a password.
    registry_db: str | None = field(default=None, repr=False)
    # the artifact store by URL (``MANYMODELS_ARTIFACTS``, e.g. ``s3://bucket/prefix``),
    # instead of ``registry``'s artifacts/ directory (``manymodels.artifact_stores``)
    artifacts: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    cache_size: int = 1000
    preload: int = 0
    refresh_seconds: float = 2.0
    admin_token: str | None = field(default=None, repr=False)
    admin_token_file: Path | None = None
    read_token: str | None = field(default=None, repr=False)
    read_token_file: Path | None = None
    max_body_bytes: int = 10 * MiB
    max_batch_rows: int = 100_000
    retrain_backend: RetrainBackend = "auto"
    retrain_workers: int = 1
    retrain_history: int = 100
    inline_loads: bool | None = None
    signer: Signer | None = field(default=None, repr=False)
    monitor: bool = True
    monitor_flush_seconds: float = 60.0
    # Host names a request on a loopback socket may name besides localhost and loopback
    # addresses (a same-machine reverse proxy's public name; "*": any), ``serving.hosts``
    allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "registry", Path(self.registry))
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be within 0..65535, not {self.port}")
        if self.cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, not {self.cache_size}")
        if self.preload < 0:
            raise ValueError(f"preload must be 0 or more, not {self.preload}")
        if not (math.isfinite(self.refresh_seconds) and self.refresh_seconds > 0):
            raise ValueError(
                f"refresh_seconds must be a finite number above 0, not {self.refresh_seconds}"
            )
        admins = _tokens(
            "admin_token", self.admin_token, self.admin_token_file, ENV_ADMIN_TOKEN_FILE
        )
        readers = _tokens("read_token", self.read_token, self.read_token_file, ENV_READ_TOKEN_FILE)
        object.__setattr__(self, "_admin_tokens", admins)  # built once: a file is followed
        object.__setattr__(self, "_read_tokens", readers)
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, not {self.max_body_bytes}")
        if self.max_batch_rows < 1:
            raise ValueError(f"max_batch_rows must be at least 1, not {self.max_batch_rows}")
        if self.retrain_backend not in get_args(RetrainBackend):
            raise ValueError(
                f"retrain_backend must be 'auto', 'ray' or 'local', not {self.retrain_backend!r}"
            )
        if self.retrain_workers < 1:
            raise ValueError(f"retrain_workers must be at least 1, not {self.retrain_workers}")
        if not (math.isfinite(self.monitor_flush_seconds) and self.monitor_flush_seconds > 0):
            raise ValueError(
                "monitor_flush_seconds must be a finite number above 0, "
                f"not {self.monitor_flush_seconds}"
            )
        if self.retrain_history < 1:
            raise ValueError(f"retrain_history must be at least 1, not {self.retrain_history}")
        for name in self.allowed_hosts:
            _check_host_name(name)

    @property
    def admin_tokens(self) -> Tokens | None:
        """The admin tokens; ``None`` disables the mutating endpoints."""
        tokens: Tokens | None = self.__dict__["_admin_tokens"]
        return tokens

    @property
    def read_tokens(self) -> Tokens | None:
        """The read tokens; ``None`` leaves the data endpoints open."""
        tokens: Tokens | None = self.__dict__["_read_tokens"]
        return tokens

    @property
    def admin_enabled(self) -> bool:
        return self.admin_tokens is not None

    @property
    def reads_need_token(self) -> bool:
        return self.read_tokens is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``MANYMODELS_*`` variables, then ``overrides`` (which win).

        Admin tokens come from ``MANYMODELS_ADMIN_TOKEN`` (comma-separated) or from the file
        named by ``MANYMODELS_ADMIN_TOKEN_FILE`` (a mounted secret, one per line), read tokens
        from ``MANYMODELS_READ_TOKEN`` or ``MANYMODELS_READ_TOKEN_FILE``; setting both of a
        pair is an error, since one of them would be silently ignored. ``allowed_hosts`` from
        ``MANYMODELS_ALLOWED_HOSTS`` (comma-separated). Overrides given as ``None`` are
        ignored.
        """
        env = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        if env.get(ENV_REGISTRY):
            values["registry"] = Path(env[ENV_REGISTRY])
        if env.get(ENV_REGISTRY_DB):
            values["registry_db"] = env[ENV_REGISTRY_DB]
        if env.get(ENV_ARTIFACTS):
            values["artifacts"] = env[ENV_ARTIFACTS]
        for scope, name, file_name in (
            ("admin_token", ENV_ADMIN_TOKEN, ENV_ADMIN_TOKEN_FILE),
            ("read_token", ENV_READ_TOKEN, ENV_READ_TOKEN_FILE),
        ):
            secret = secret_from_env(env, name, file_name)
            if secret is not None and secret.path is not None:
                values[f"{scope}_file"] = secret.path
            elif secret is not None:
                values[scope] = secret.text
        hosts = host_names([env.get(ENV_ALLOWED_HOSTS, "")])
        if hosts:
            values["allowed_hosts"] = hosts
        signer = Signer.from_env(env)
        if signer is not None:
            values["signer"] = signer
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "registry" not in values:
            raise ValueError(f"no registry given (pass registry= or set {ENV_REGISTRY})")
        return cls(**values)


def host_names(values: Iterable[str]) -> tuple[str, ...]:
    """The names of ``values``, each comma-separated (``MANYMODELS_ALLOWED_HOSTS``, and
    ``serve --allowed-host a.example.com,b.example.com``, which was taken for one name that no
    Host carries: every request through the proxy was a 403 saying to pass the option)."""
    return tuple(h.strip() for value in values for h in value.split(",") if h.strip())


def _check_host_name(name: str) -> None:
    """An allowed host is compared with the name in a request's ``Host`` header: a URL, a path
    or a blank entry can never match, and every request through the proxy would be refused
    with a 403 telling the user to pass the option they had passed. ``*`` alone answers any
    name, ``*.example.com`` any under example.com; a ``*`` elsewhere (``api*.example.com``)
    matches no name."""
    text = name.strip()
    if text == "*":
        return
    wildcard = text.startswith("*.") and "*" not in text[2:] and len(text) > 2
    if not text or any(c in text for c in "/@?#,; \t") or ("*" in text and not wildcard):
        raise ValueError(
            f"allowed host {name!r} (--allowed-host / {ENV_ALLOWED_HOSTS}) is not a host name: "
            "give the name alone, as a client's Host header carries it, e.g. "
            "'models.example.com' ('*.example.com' for every name under example.com, '*' "
            "for any)"
        )


def _tokens(name: str, text: str | None, path: Path | None, file_name: str) -> Tokens | None:
    """One scope's tokens from its setting or its file (both is an error); ``None`` for
    neither. Re-reads of the file log through the router's logger."""
    if text is not None and path is not None:
        raise ValueError(f"set {name} or {name}_file, not both")
    if path is not None:
        return Tokens.from_file(Path(path), file_name, log=_log)
    if text is None:
        return None
    tokens = parse_tokens(text)
    if not tokens:
        raise ValueError(f"{name} holds no token; leave it unset instead")
    return Tokens(tokens)
