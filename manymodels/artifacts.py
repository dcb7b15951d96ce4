"""Content-addressed model artifacts: bytes stored under their sha256, verified on every read.

Because the address *is* the hash, a write is idempotent (two partitions with identical models
share one file), a crash mid-write leaves at most an orphan that ``gc`` can remove, and a
tampered or truncated file is caught before it is ever loaded (``manymodels.serialization``
says how, and in which formats). Partition keys never reach this module: paths are built from
validated hex digests only.

``LocalArtifactStore`` writes to a directory (temp file + fsync + atomic rename, with the
system calls of ``manymodels.durable_files``); stores for object storage implement the same
``ArtifactStore`` protocol. What a killed writer or a killed ``gc`` leaves behind is swept,
put back or read by ``manymodels.artifact_leftovers``; the digests themselves are
``manymodels.artifact_digests``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from manymodels import artifact_leftovers as leftovers
from manymodels.artifact_digests import SHA256_HEX, check_digest, sha256
from manymodels.durable_files import (
    TMP_FLAGS,
    fsync_dir,
    holds,
    make_dirs,
    syncfs,
    temp_name,
    write_all,
)
from manymodels.exceptions import ArtifactCorrupted, ArtifactError, ArtifactNotFound
from manymodels.serialization import ALL_FORMATS, Format, dumps, loads
from manymodels.store_urls import store_url


def serialize(model: Any, format: Format = "pickle") -> bytes:
    """The artifact bytes of a fitted estimator: pickle protocol 5, or skops
    (``manymodels.serialization``)."""
    return dumps(model, format)


def deserialize(
    data: bytes, formats: Iterable[str] = ALL_FORMATS, *, what: str = "artifact"
) -> Any:
    """Only ever called on bytes whose sha256 has just been checked against the registry; a
    format outside ``formats`` (a store's ``formats``, its registry's policy) is refused
    before it is read."""
    return loads(data, formats, what=what)


class ArtifactStore(Protocol):
    """Where artifact bytes live. Implementations must be picklable: workers receive them.

    ``formats`` are the artifact formats readers of this store may load (its registry's
    policy, set when the registry opens, and carried to workers with the store); the store
    itself only moves bytes."""

    formats: frozenset[str]

    def put(self, data: bytes, *, durable: bool = True) -> tuple[str, int]:
        """Store bytes; return their (sha256, size). ``durable=False`` defers the flush to disk
        to the next ``sync()``, so a chunk of artifacts costs one flush rather than one each."""
        ...

    def sync(self) -> None:
        """Make every ``put`` so far durable."""
        ...

    def get(self, digest: str) -> bytes:
        """The bytes under ``digest``, verified: ArtifactNotFound / ArtifactCorrupted otherwise."""
        ...

    def exists(self, digest: str) -> bool: ...

    def delete(self, digest: str) -> None: ...

    def delete_if_older(self, digest: str, older_than: float) -> int | None:
        """Delete an artifact last written before ``older_than`` (epoch seconds); returns the
        bytes freed, or ``None`` if it is younger or gone. Atomic against a writer storing the
        same bytes at the same moment: that write survives."""
        ...

    def stat(self, digest: str) -> tuple[int, float]:
        """(size in bytes, modification time) of a stored artifact."""
        ...

    def digests(self) -> Iterator[str]:
        """Every digest held (for garbage collection)."""
        ...

    def sweep_temporaries(self, older_than: float, *, dry_run: bool = False) -> tuple[int, int]:
        """Remove half-written leftovers (a writer killed between create and rename) last
        modified before ``older_than`` (epoch seconds) — at once when their writer is known
        to have died, never while it is known to run; returns (files, bytes freed)."""
        ...

    def claim(self, owner: str, note: str) -> None:
        """Mark the store as holding registry ``owner``'s artifacts (``note``: where that
        registry is, for a person): ``gc`` of another registry refuses to run on it."""
        ...

    def owners(self) -> dict[str, str]:
        """The registries that claimed the store: ``{owner: note}``."""
        ...

    @property
    def url(self) -> str: ...


OWNERS_DIR = "owners"
"""Under a store's root, one small object per registry whose artifacts it holds (``claim``):
not an artifact name, so ``digests`` never lists them."""


class LocalArtifactStore:
    """Artifacts in a local (or shared network) directory, fanned out as ``ab/cd/<sha256>``."""

    def __init__(
        self, root: str | Path, *, fsync: bool = True, formats: Iterable[str] = ALL_FORMATS
    ) -> None:
        self.root = Path(root).absolute()  # the store opened, whatever directory a later
        self.fsync = fsync  # reader or worker runs in (see ``registry.location``)
        self.formats = frozenset(formats)

    @property
    def url(self) -> str:
        return str(self.root)

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    def path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes, *, durable: bool = True) -> tuple[str, int]:
        """Write ``data`` under its digest: a temp file of our own, then an atomic rename.

        Bytes already stored intact are kept, not rewritten: a registered version may
        reference them, and a rewrite with ``durable=False`` would put bytes that are not yet
        on disk in their place until ``sync()``. Their modification time is renewed instead,
        which is what tells ``gc`` they are wanted again. A same-named file whose bytes do
        not match (corrupted, truncated) is replaced: the new bytes repair it.
        A durable put returns once the bytes *and their name* are on disk: the file is
        fsynced before the rename and its directory after it (and, when the put made fan-out
        directories, each one's parent), since a rename lives in the directory, and a crash
        could otherwise lose a name a version is already registered under. A put with
        ``durable=False`` flushes nothing; ``sync()`` covers its bytes and names at once.
        Per artifact this is ``open`` + ``write`` + ``close`` + ``rename`` (+ ``fsync`` of
        the file and of its directory when durable), against 11 with ``Path.mkdir`` +
        ``mkstemp`` + ``fchmod`` + ``fdopen`` (strace): each call also slows the model fits
        around it (caches), which cost more than the calls themselves.
        The fan-out directory is made only when the open says it is missing, rather than
        checked per artifact or remembered per instance: workers get a fresh store per chunk,
        and 1,000 artifacts over 65,536 directories seldom meet the same one twice. Paths are
        plain strings: three ``Path`` objects per artifact showed up in profiles.
        """
        digest = sha256(data)
        parent = os.path.join(self.root, digest[:2], digest[2:4])
        flush = self.fsync and durable
        if holds(os.path.join(parent, digest), digest, flush=flush):
            return digest, len(data)
        tmp = temp_name(parent, digest)
        created = False
        made: list[str] = []
        try:
            try:
                fd = os.open(tmp, TMP_FLAGS, 0o666)
            except FileNotFoundError:  # its first artifact, or gc removed the directory: once
                made = make_dirs(parent)
                fd = os.open(tmp, TMP_FLAGS, 0o666)
            created = True
            try:
                write_all(fd, data)
                if flush:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, os.path.join(parent, digest))
            if flush:  # the new name, then the entries of the directories made for it
                fsync_dir(parent)
                for directory in reversed(made):
                    fsync_dir(os.path.dirname(directory))
        except OSError as e:
            if created:  # never unlink a name we did not create (O_EXCL refused it)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise ArtifactError(
                f"cannot write artifact {digest[:12]} under {self.root}: {e}"
            ) from e
        return digest, len(data)

    def get(self, digest: str) -> bytes:
        # A plain string path: this is every cold cache load of the router.
        path = os.path.join(self.root, check_digest(digest)[:2], digest[2:4], digest)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            aside = leftovers.read_aside(path, digest)
            if aside is None:
                raise ArtifactNotFound(
                    f"artifact {digest} is missing from {self.root}", digest
                ) from None
            return aside  # its sha256 checked already
        except OSError as e:  # PermissionError, EIO, a directory in the way…
            raise ArtifactError(
                f"cannot read artifact {digest} from {self.root}: {e.strerror or e} "
                f"({type(e).__name__}); check the file's permissions"
            ) from None
        actual = sha256(data)
        if actual != digest:
            raise ArtifactCorrupted(
                f"artifact {digest} in {self.root} is corrupted or tampered with "
                f"(its bytes hash to {actual[:12]}…); refusing to load it"
            )
        return data

    def sync(self) -> None:
        """One flush of everything written so far: fsync per file costs ~0.5 ms per artifact.

        ``syncfs`` (Linux) writes back every dirty inode of the filesystem and commits its
        journal — file data and the directory entries of renames and ``mkdir`` alike — so
        after it returns each ``put(durable=False)`` made so far is as durable as a durable
        one, names included: no per-directory fsync is needed. Where ``syncfs`` is missing,
        ``os.sync`` flushes every filesystem, directories included (POSIX lets ``sync``
        return before the writes end; Linux's waits for them).
        """
        if self.fsync and self.root.exists():
            syncfs(self.root)

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def delete_if_older(self, digest: str, older_than: float) -> int | None:
        # stat-then-unlink would race a put of identical bytes (a new version about to
        # reference them): the fresh file would be unlinked. Moving the file aside first
        # means whatever is judged is exactly what gets deleted; a young one goes back. The
        # aside name is a temp name, so a gc killed in between leaves a file the next
        # sweep_temporaries removes.
        path = str(self.path(digest))
        aside = temp_name(os.path.dirname(path), f"gc-{digest}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return None
        st = os.stat(aside)
        if st.st_mtime >= older_than:
            os.replace(aside, path)  # a put since then wrote the same bytes: either copy will do
            return None
        os.unlink(aside)
        return st.st_size

    def stat(self, digest: str) -> tuple[int, float]:
        st = self.path(digest).stat()
        return st.st_size, st.st_mtime

    def digests(self) -> Iterator[str]:
        if not self.root.exists():
            return
        for path in self.root.glob("??/??/*"):
            if SHA256_HEX.fullmatch(path.name):
                yield path.name

    def claim(self, owner: str, note: str) -> None:
        """``ArtifactStore.claim``: a small file ``owners/<owner>`` holding ``note``."""
        mark = self.root / OWNERS_DIR / owner
        try:
            if not mark.exists():
                mark.parent.mkdir(parents=True, exist_ok=True)
                mark.write_text(note)
        except OSError as e:
            raise ArtifactError(f"cannot mark {self.root} as this registry's: {e}") from e

    def owners(self) -> dict[str, str]:
        """``ArtifactStore.owners``: the files under ``owners/``."""
        try:
            return {p.name: p.read_text() for p in (self.root / OWNERS_DIR).iterdir()}
        except FileNotFoundError:
            return {}

    def sweep_temporaries(self, older_than: float, *, dry_run: bool = False) -> tuple[int, int]:
        """``ArtifactStore.sweep_temporaries``: a dead writer's temp files at once, a live
        one's never, and a killed gc's asides put back (``artifact_leftovers.sweep``)."""
        return leftovers.sweep(self.root, older_than, dry_run=dry_run)

    def moved_aside(self, older_than: float) -> list[str]:
        """The digests of the artifacts a killed gc left moved aside that ``sweep_temporaries``
        would put back now (``artifact_leftovers.moved_aside``)."""
        return leftovers.moved_aside(self.root, older_than)


def open_store(url: str | Path) -> ArtifactStore:
    """A store for a local path (or ``file://``), or for any other fsspec URL such as
    ``s3://bucket/prefix`` (``manymodels.artifact_stores``, imported only then)."""
    text = str(url)
    if not isinstance(url, Path):
        text = store_url(text)
    if "://" in text and not text.startswith("file://"):
        from manymodels.artifact_stores import FsspecArtifactStore

        return FsspecArtifactStore(text)
    return LocalArtifactStore(text.removeprefix("file://"))
