"""What a killed writer or a killed ``gc`` leaves in a local artifact store, swept or read.

A ``put`` writes a temp file and renames it; ``gc`` moves an artifact aside before it judges
it (``LocalArtifactStore.delete_if_older``). A process killed in between leaves a temp file
no one will finish, or an artifact under a temp name with its own name missing. Kept apart
from the store's reads and writes because this is recovery, with rules of its own: whose
leftover may go (a temp name says who writes it, ``manymodels.tempnames``), what comes back
(a gc's aside copy, unless its name was taken since), and how a reader finds a copy aside
meanwhile without writing to the store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from manymodels.artifact_digests import sha256
from manymodels.durable_files import TMP_PREFIX
from manymodels.tempnames import aside_digest, writer_alive


def sweep(root: Path, older_than: float, *, dry_run: bool = False) -> tuple[int, int]:
    """``LocalArtifactStore.sweep_temporaries`` of the store at ``root``: (files, bytes freed).

    A temp file's name says who writes it. One whose writer died on this machine can never
    be finished, so it goes at once; one whose writer still runs is left alone, however old.
    Others (another machine's) go once older than ``older_than``: a live writer's temp file
    exists for the milliseconds between open and rename, so a grace period of minutes never
    catches one in flight.

    An artifact ``gc`` moved aside (``delete_if_older``) and did not get to judge — gc was
    killed in between — is put back under its name if nothing took that name meanwhile: it
    may be a young artifact gc was about to return, and the next gc judges it again. Older
    releases' names (``manymodels.tempnames``) are recognised too: their writers cannot be
    judged, so they wait for ``older_than``, and their gc's asides come back.
    """
    files = freed = 0
    for path, st in _leftovers(root, older_than):
        try:
            digest = aside_digest(path.name)
            if digest is not None and _put_back(path, path.parent / digest, dry_run=dry_run):
                files += 1
                continue
            if not dry_run:
                path.unlink()
        except FileNotFoundError:  # renamed or removed meanwhile
            continue
        files += 1
        freed += st.st_size
    return files, freed


def moved_aside(root: Path, older_than: float) -> list[str]:
    """The digests of the artifacts a killed gc left moved aside that ``sweep`` would put
    back now (their names free): whole artifacts, not half-written files, which ``get`` reads
    where they are meanwhile (``read_aside``)."""
    found = []
    for path, _ in _leftovers(root, older_than):
        digest = aside_digest(path.name)
        if digest is not None and not (path.parent / digest).exists():
            found.append(digest)
    return found


def read_aside(path: str, digest: str) -> bytes | None:
    """The bytes of ``digest`` from a copy a gc moved aside (``delete_if_older``), if one is
    intact beside ``path``: a gc killed before it moved the artifact back left the name
    missing, and a version referencing it would not load until the next gc or ``doctor
    --repair``. Reading it in place keeps that state a read-only one (a router may not write
    to the store); a running gc deletes it only if it is old, and an open file stays readable.
    Only a missing artifact pays for this listing of its directory."""
    parent = os.path.dirname(path)
    try:
        names = [n for n in os.listdir(parent) if n.startswith(f"{TMP_PREFIX}gc-{digest}-")]
    except OSError:
        return None
    for name in names:
        if aside_digest(name) != digest:
            continue
        try:
            with open(os.path.join(parent, name), "rb") as f:
                data = f.read()
        except OSError:
            continue
        if sha256(data) == digest:
            return data
    return None


def _leftovers(root: Path, older_than: float) -> Iterator[tuple[Path, os.stat_result]]:
    """Temp files no writer will finish: a dead writer's, or one older than
    ``older_than`` whose writer cannot be judged (another machine's, an older release's)."""
    if not root.exists():
        return
    for path in root.glob(f"??/??/{TMP_PREFIX}*"):
        try:
            st = path.stat()
        except FileNotFoundError:  # renamed or removed meanwhile
            continue
        alive = writer_alive(path.name)
        if not (alive or (alive is None and st.st_mtime >= older_than)):
            yield path, st


def _put_back(aside: Path, path: Path, *, dry_run: bool) -> bool:
    """Return an artifact gc moved aside to its name, unless the name is taken (then the
    caller deletes the aside copy). ``link`` never replaces an existing name."""
    if dry_run:
        return not path.exists()
    try:
        os.link(aside, path)
    except FileExistsError:
        return False
    aside.unlink()
    return True
