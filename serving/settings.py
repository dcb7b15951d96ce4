"""The router's configuration: built once at the edge (CLI, tests), frozen, passed down.

Nothing else under ``serving/`` reads the environment; ``Settings.from_env`` is the one place
that does, and only for what must not appear on a command line (the admin token) or is a
shared convention (``MANYMODELS_REGISTRY``); the signing key likewise::

    settings = Settings.from_env(registry=Path("mmregistry"), port=8080)
    app = create_app(settings)
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from manymodels.signing import Signer

RetrainBackend = Literal["auto", "ray", "local"]

ENV_REGISTRY = "MANYMODELS_REGISTRY"
ENV_ADMIN_TOKEN = "MANYMODELS_ADMIN_TOKEN"
ENV_ADMIN_TOKEN_FILE = "MANYMODELS_ADMIN_TOKEN_FILE"

MiB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the router needs to start. Invalid values fail here, not mid-request.

    ``admin_token`` of ``None`` disables the mutating endpoints (they answer 403); it is never
    shown in ``repr`` so settings can be logged. Retrain jobs run on ``retrain_backend``:
    ``"auto"`` (chosen per job by the pipeline; a one-partition retrain runs in this process),
    ``"ray"`` (an embedded Ray instance started on the first retrain and stopped with the app)
    or ``"local"`` (in this process), ``retrain_workers`` at a time; the newest
    ``retrain_history`` finished jobs are kept in memory. ``inline_loads=True`` loads a model
    missing from the cache on the event loop while loads stay quick (see
    ``ModelService.loads_inline``), ``False`` always in a worker thread; ``None`` (the
    default) is ``True`` for a SQLite file with a local artifact directory. ``signer``
    (from ``MANYMODELS_SIGNING_KEY`` or ``MANYMODELS_SIGNING_KEY_FILE``) makes the router
    refuse any version whose signature does not verify (``manymodels.signing``), and sign the
    versions its retrains register.
    """

    registry: Path
    host: str = "127.0.0.1"
    port: int = 8000
    cache_size: int = 1000
    preload: int = 0
    refresh_seconds: float = 2.0
    admin_token: str | None = field(default=None, repr=False)
    max_body_bytes: int = 10 * MiB
    max_batch_rows: int = 100_000
    retrain_backend: RetrainBackend = "auto"
    retrain_workers: int = 1
    retrain_history: int = 100
    inline_loads: bool | None = None
    signer: Signer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "registry", Path(self.registry))
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be within 0..65535, not {self.port}")
        if self.cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, not {self.cache_size}")
        if self.preload < 0:
            raise ValueError(f"preload must be 0 or more, not {self.preload}")
        if not (math.isfinite(self.refresh_seconds) and self.refresh_seconds > 0):
            raise ValueError(f"refresh_seconds must be > 0, not {self.refresh_seconds}")
        if self.admin_token is not None and not self.admin_token.strip():
            raise ValueError("admin_token is empty; leave it unset to disable admin endpoints")
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
        if self.retrain_history < 1:
            raise ValueError(f"retrain_history must be at least 1, not {self.retrain_history}")

    @property
    def admin_enabled(self) -> bool:
        return self.admin_token is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``MANYMODELS_*`` variables, then ``overrides`` (which win).

        The admin token comes from ``MANYMODELS_ADMIN_TOKEN`` or from the file named by
        ``MANYMODELS_ADMIN_TOKEN_FILE`` (a mounted secret); setting both is an error, since
        one of them would be silently ignored. Overrides given as ``None`` are ignored.
        """
        env = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        if env.get(ENV_REGISTRY):
            values["registry"] = Path(env[ENV_REGISTRY])
        token = _admin_token(env)
        if token is not None:
            values["admin_token"] = token
        signer = Signer.from_env(env)
        if signer is not None:
            values["signer"] = signer
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "registry" not in values:
            raise ValueError(f"no registry given (pass registry= or set {ENV_REGISTRY})")
        return cls(**values)


def _admin_token(env: Mapping[str, str]) -> str | None:
    direct = env.get(ENV_ADMIN_TOKEN, "").strip()
    path = env.get(ENV_ADMIN_TOKEN_FILE, "").strip()
    if direct and path:
        raise ValueError(f"set {ENV_ADMIN_TOKEN} or {ENV_ADMIN_TOKEN_FILE}, not both")
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ValueError(f"{ENV_ADMIN_TOKEN_FILE}={path}: cannot read it ({e})") from None
        if not token:
            raise ValueError(f"{ENV_ADMIN_TOKEN_FILE}={path}: the file is empty")
        return token
    return direct or None
