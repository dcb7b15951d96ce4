"""Artifacts in object storage, by fsspec URL (``s3://bucket/prefix``, ``gs://…``, ``memory://…``).

The same content-addressed layout as ``LocalArtifactStore`` (``<prefix>/ab/cd/<sha256>``) and
the same verification on read, so every node of a Ray cluster writes and reads artifacts
directly, without a shared directory. Object stores put an object atomically, so there is no
temp-file-and-rename here and nothing for ``sweep_temporaries`` to find. Credentials and the
endpoint come from the backend's own configuration (for S3: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``~/.aws``), never from the URL, so the URL
can be printed and logged. Needs the ``s3`` extra (``s3fs``) for ``s3://``, whose client
fails a request to a server that does not answer in seconds (``manymodels.s3_client``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from manymodels.artifact_digests import SHA256_HEX, check_digest, sha256
from manymodels.artifacts import OWNERS_DIR
from manymodels.exceptions import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactStoreUnavailable,
)
from manymodels.serialization import ALL_FORMATS

# Deferred puts (``durable=False``) are written together once this many objects or bytes wait
PENDING_OBJECTS = 256
PENDING_BYTES = 64 * 1024 * 1024


def _check_backend(url: str) -> None:
    """Refuse, at once and in one line, a scheme fsspec does not know or whose package is not
    installed: a typo in ``--artifacts`` must not surface as a traceback at the first write."""
    protocol = url.split("://", 1)[0]
    try:
        from fsspec.registry import get_filesystem_class

        get_filesystem_class(protocol)
    except ValueError:
        raise ArtifactError(f"artifact store URL '{url}': unknown scheme '{protocol}://'") from None
    except ImportError as e:
        raise ArtifactError(
            f"artifact store URL '{url}' needs a package that is missing: {e} "
            "(pip install 'manymodels[s3]' for s3://)"
        ) from None


class FsspecArtifactStore:
    """Artifacts under an fsspec URL; picklable (workers receive it): the filesystem object is
    rebuilt from the URL in each process, never pickled with its connections.

    ``put(data, durable=False)`` (a training chunk's puts) defers the PUT: ``sync()`` — which a
    chunk calls before it returns, so before the driver registers any of its versions — writes
    every deferred object at once with fsspec's concurrent ``pipe`` (s3fs: many requests in
    flight on one connection pool). One PUT per object each waiting its round trip made a
    worker spend most of its time waiting on the object store (``benchmarks/cluster.py``).
    """

    def __init__(self, url: str, *, formats: Iterable[str] = ALL_FORMATS) -> None:
        self._url = url.rstrip("/")
        self.formats = frozenset(formats)
        self._fs: Any = None
        self._root = ""
        self._pending: dict[str, bytes] = {}  # path → bytes of deferred puts
        self._pending_bytes = 0
        _check_backend(self._url)

    @property
    def url(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"FsspecArtifactStore({self._url!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"_url": self._url, "formats": self.formats, "_fs": None, "_root": "",
                "_pending": {}, "_pending_bytes": 0}  # fmt: skip

    @property
    def fs(self) -> Any:
        """The fsspec filesystem, made on first use in each process."""
        if self._fs is None:
            from fsspec.core import url_to_fs

            from manymodels.s3_client import configured, storage_options

            # the backend was checked at construction; S3's client waits seconds, not minutes
            try:
                fs, root = url_to_fs(self._url, **storage_options(self._url))
            except Exception as e:  # a client that connects as it is made (ftp://, sftp://)
                said = str(e) or type(e).__name__
                kind = ArtifactStoreUnavailable if unreachable(e) else ArtifactError
                raise kind(f"cannot open the artifact store {self._url}: {said}") from e
            self._fs, self._root = configured(fs), root.rstrip("/")
        return self._fs

    def path(self, digest: str) -> str:
        fs = self.fs
        del fs  # sets _root
        return f"{self._root}/{check_digest(digest)[:2]}/{digest[2:4]}/{digest}"

    def _error(self, doing: str, digest: str, e: Exception) -> ArtifactError:
        said = str(e) or type(e).__name__
        kind = ArtifactStoreUnavailable if unreachable(e) else ArtifactError
        return kind(f"cannot {doing} artifact {digest[:12]} in {self._url}: {said}")

    def put(self, data: bytes, *, durable: bool = True) -> tuple[str, int]:
        """One PUT of the whole object under its digest: atomic on object stores, so a reader
        sees all the bytes or none. An object already there is written again with the same
        bytes — content-addressed, so what readers get cannot change — because the write is
        also what renews its modification time, which is how ``gc`` knows a new version may
        reference it (the local store renews its mtime for the same reason). With ``durable``
        the PUT returns once the store holds the object; without, it waits for ``sync()`` (or
        for ``PENDING_OBJECTS`` / ``PENDING_BYTES`` to fill), which writes them concurrently."""
        digest = sha256(data)
        if not durable:
            path = self.path(digest)
            self._pending_bytes += 0 if path in self._pending else len(data)
            self._pending[path] = data
            if len(self._pending) >= PENDING_OBJECTS or self._pending_bytes >= PENDING_BYTES:
                self.sync()
            return digest, len(data)
        try:
            self.fs.pipe_file(self.path(digest), data)
        except Exception as e:  # OSError, or the client's own (botocore: no credentials)
            raise self._error("write", digest, e) from e
        return digest, len(data)

    def sync(self) -> None:
        """Write every deferred put, concurrently; each object is atomic, as with ``put``."""
        pending, self._pending, self._pending_bytes = self._pending, {}, 0
        if not pending:
            return
        try:
            from manymodels.s3_client import pipe

            pipe(self.fs, pending)
        except BaseException as e:
            # kept for the next sync, whatever went wrong (a botocore error, a KeyboardInterrupt):
            # a chunk's last sync must fail too, or versions put before a failed threshold
            # flush would be registered with their bytes never written
            self._pending = {**pending, **self._pending}
            self._pending_bytes = sum(map(len, self._pending.values()))
            if not isinstance(e, Exception):
                raise
            kind = ArtifactStoreUnavailable if unreachable(e) else ArtifactError
            raise kind(f"cannot write {len(pending)} artifact(s) to {self._url}: {e}") from e

    def get(self, digest: str) -> bytes:
        try:
            path = self.path(digest)
            data: bytes = self._pending.get(path) or self.fs.cat_file(path)
        except FileNotFoundError:
            raise ArtifactNotFound(
                f"artifact {digest} is missing from {self._url}", digest
            ) from None
        except ArtifactError:
            raise
        except Exception as e:  # OSError, or the client's own (botocore: no credentials)
            raise self._error("read", digest, e) from None
        actual = sha256(data)
        if actual != digest:
            raise ArtifactCorrupted(
                f"artifact {digest} in {self._url} is corrupted or tampered with "
                f"(its bytes hash to {actual[:12]}…); refusing to load it"
            )
        return data

    def exists(self, digest: str) -> bool:
        path = self.path(digest)
        if path in self._pending:
            return True
        try:
            self.fs.invalidate_cache(path)
            return bool(self.fs.exists(path))
        except Exception as e:  # the client's own (botocore: no credentials)
            raise self._error("look for", digest, e) from e

    def delete(self, digest: str) -> None:
        try:
            self.fs.rm_file(self.path(digest))
        except FileNotFoundError:
            pass
        except Exception as e:
            raise self._error("delete", digest, e) from e

    def delete_if_older(self, digest: str, older_than: float) -> int | None:
        """Object stores have no rename-aside to judge and delete atomically: the object is
        checked, then deleted. A put of identical bytes landing in the milliseconds between
        would be lost — only for bytes no version referenced when gc listed them and older
        than its grace period, which is what makes that overlap unlikely; ``verify`` reports
        any version whose artifact went missing."""
        try:
            size, mtime = self.stat(digest)
        except FileNotFoundError:
            return None
        if mtime >= older_than:
            return None
        self.delete(digest)
        return size

    def stat(self, digest: str) -> tuple[int, float]:
        path = self.path(digest)
        try:
            self.fs.invalidate_cache(path)
            info = self.fs.info(path)  # FileNotFoundError when gone, as Path.stat
            modified = self.fs.modified(path)
        except FileNotFoundError:
            raise
        except Exception as e:
            raise self._error("stat", digest, e) from e
        stamp = modified.timestamp() if isinstance(modified, datetime) else float(modified)
        return int(info["size"]), stamp

    def digests(self) -> Iterator[str]:
        fs = self.fs
        fs.invalidate_cache()
        try:
            found = fs.find(self._root)
        except FileNotFoundError:
            return
        except Exception as e:  # the client's own (botocore: no credentials)
            raise ArtifactError(f"cannot list the artifacts in {self._url}: {e}") from e
        root = self._root.rstrip("/")
        for path in found:
            # ``aa/bb/<sha256>`` right under the root: a store nested under this prefix (another
            # registry's ``s3://bucket/prod/eu`` inside ``s3://bucket/prod``) holds none of ours
            parts = path.rstrip("/")[len(root) :].strip("/").split("/")
            name = parts[-1]
            if (
                len(parts) == 3
                and SHA256_HEX.fullmatch(name)
                and parts[:2] == [name[:2], name[2:4]]
            ):
                yield name

    def claim(self, owner: str, note: str) -> None:
        """``ArtifactStore.claim``: an object ``owners/<owner>`` holding ``note``."""
        mark = f"{self._owners()}/{owner}"
        try:
            if not self.fs.exists(mark):
                self.fs.pipe_file(mark, note.encode())
        except Exception as e:
            raise ArtifactError(f"cannot mark {self._url} as this registry's: {e}") from e

    def owners(self) -> dict[str, str]:
        """``ArtifactStore.owners``: the objects under ``owners/``."""
        fs, where = self.fs, self._owners()
        fs.invalidate_cache()
        try:
            found = fs.find(where)
        except FileNotFoundError:
            return {}
        except Exception as e:  # the client's own (botocore: no credentials)
            raise ArtifactError(f"cannot read the owner marks of {self._url}: {e}") from e
        return {path.rstrip("/").rsplit("/", 1)[-1]: fs.cat_file(path).decode() for path in found}

    def _owners(self) -> str:
        fs = self.fs
        del fs  # sets _root
        return f"{self._root}/{OWNERS_DIR}"

    def sweep_temporaries(self, older_than: float, *, dry_run: bool = False) -> tuple[int, int]:
        """No temporaries: a PUT is atomic, so a killed writer leaves nothing behind."""
        return 0, 0


# The clients' names for "no answer from the store" (botocore, aiohttp under s3fs): their
# classes are not imported here, as the store's client is an optional extra.
_UNREACHABLE = frozenset({
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
    "ConnectionClosedError", "ClientConnectorError", "ServerDisconnectedError",
    "ServerTimeoutError", "ClientOSError",
})  # fmt: skip


def unreachable(e: BaseException) -> bool:
    """Whether ``e`` (or what it was raised from) says the store did not answer: a refused
    or dropped connection, a timeout — or answered that it cannot serve now, an HTTP 5xx
    (S3's ``InternalError`` "please try again", ``SlowDown``, ``ServiceUnavailable``, which
    botocore retries, still there after its tries). A router answered such an outage 409, as
    if the artifact were tampered with or gone (clients do not retry a 409); it is a 503. A
    SeaweedFS server answers 500 for a moment after it starts again, and a rollback took
    that for a version that cannot be loaded and skipped it (``model_access._servable``)."""
    seen: BaseException | None = e
    for _ in range(5):  # the client's error, and what it wraps
        if seen is None:
            return False
        if isinstance(seen, ConnectionError | TimeoutError):
            return True
        if any(c.__name__ in _UNREACHABLE for c in type(seen).__mro__):
            return True
        if _server_error(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _server_error(e: BaseException) -> bool:
    """A botocore ``ClientError`` (s3fs raises it as the cause of its ``OSError``) whose HTTP
    status is 5xx: the store's own failure, never the request's."""
    response = getattr(e, "response", None)
    if not isinstance(response, dict):
        return False
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return isinstance(status, int) and 500 <= status < 600
