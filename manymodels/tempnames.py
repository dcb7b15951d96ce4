"""Who wrote a temp file: names that let a sweep tell a dead writer's leftover from live work.

The artifact store writes each artifact to a temp file, then renames it into place; a writer
killed in between leaves the temp file behind. Its name carries ``<pid>-<start>-<machine>``:

- ``start`` is when that pid's process started (``/proc/<pid>/stat``; ``x`` where unknown), so
  a pid that was reused by a later process is not taken for the writer;
- ``machine`` hashes what makes two pids comparable: the host name, this boot of its kernel
  and the pid namespace — two containers on one host see different processes under one pid.

A temp file of this machine whose writer no longer runs can never be finished and may go at
once; one whose writer runs is being written; another machine's can only be judged by age.
A run records the same tag of the process that runs it (``options["owner"]``,
``owner_alive``): one still marked running whose process is gone was killed.

    .tmp-<sha256>-<pid>-<start>-<machine>-<random>-<counter>        a put's temp file
    .tmp-gc-<sha256>-<pid>-<start>-<machine>-<random>-<counter>     an artifact gc moved aside

Releases before writers were named (before 2026-11-30) wrote ``.tmp-<sha256>-<pid>-<random>-
<counter>`` and ``.tmp-gc-<sha256>-<pid>-<random>-<counter>`` (and the first ones ``mkstemp``'s
``.tmp-<8 characters>``): their writers cannot be judged, so they wait for the grace period,
and an artifact such a gc moved aside is recognised by ``aside_digest`` all the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
from pathlib import Path

TEMP_NAME = re.compile(
    r"\.tmp-(?P<aside>gc-)?(?P<digest>[0-9a-f]{64})-(?P<pid>\d+)-(?P<start>\d+|x)"
    r"-(?P<machine>[0-9a-f]{12})-[0-9a-f]+-\d+"
)


OLD_ASIDE_NAME = re.compile(r"\.tmp-gc-(?P<digest>[0-9a-f]{64})-\d+-[0-9a-f]{12}-\d+")
"""An artifact a gc of a release before writer tags moved aside: ``<pid>-<random>-<counter>``."""


def aside_digest(name: str) -> str | None:
    """The digest of the artifact a temp file named ``name`` holds whole, because a gc moved
    it aside to judge it (in this release's name or an older one's); ``None`` for a put's
    temp file, which may be half-written."""
    match = TEMP_NAME.fullmatch(name)
    if match is not None:
        return match["digest"] if match["aside"] else None
    old = OLD_ASIDE_NAME.fullmatch(name)
    return old["digest"] if old is not None else None


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def host_boot() -> tuple[str, str]:
    """This host's name and the id of this boot of its kernel (``""`` where unknown): a
    process recorded under the same host name and another boot is gone — the host rebooted
    since (``registry.firings.under_way``)."""
    return os.uname().nodename, (_read("/proc/sys/kernel/random/boot_id") or "").strip()


def _machine() -> str:
    """Whose pids a writer's are: the host, this boot of its kernel, and the pid namespace."""
    parts = list(host_boot())
    with contextlib.suppress(OSError):
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


MACHINE = _machine()


def process(pid: int) -> tuple[str, str] | None:
    """``(state, start time)`` of process ``pid`` (Linux ``/proc``); ``None`` if none runs, or
    where there is no ``/proc`` to ask."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return fields[0], fields[19]  # fields 3 and 22 of proc(5): state, starttime


def writer_tag() -> str:
    """``<pid>-<start>-<machine>`` of the calling process (call it again after a fork)."""
    pid = os.getpid()
    found = process(pid)
    return f"{pid}-{found[1] if found is not None else 'x'}-{MACHINE}"


def writer_alive(name: str) -> bool | None:
    """Whether the process that named the temp file ``name`` still runs: ``False`` once it
    died (a zombie included) or its pid went to a later process; ``None`` when this machine
    cannot tell — another machine's file, or one named before writers were."""
    match = TEMP_NAME.fullmatch(name)
    if match is None:
        return None
    return _alive(match["pid"], match["start"], match["machine"])


OWNER = re.compile(r"(?P<pid>\d+)-(?P<start>\d+|x)-(?P<machine>[0-9a-f]{12})")


def owner_alive(tag: object) -> bool | None:
    """``writer_alive`` for a ``writer_tag`` recorded elsewhere (a run's ``owner``): ``None``
    for anything else, a missing tag included."""
    match = OWNER.fullmatch(tag) if isinstance(tag, str) else None
    if match is None:
        return None
    return _alive(match["pid"], match["start"], match["machine"])


_LEFTOVER = re.compile(OWNER.pattern + "-")
LEFTOVER_GRACE_SECONDS = 86_400.0
"""How old another machine's (or another container's) leftover must be before it goes: an
export or import takes minutes, not a day."""


def remove_dead_leftovers(directory: Path, prefix: str) -> int:
    """Remove the entries of ``directory`` named ``<prefix><writer_tag>-…`` whose writer
    died (a killed ``export-registry`` leaves a partial tar and a database copy; a killed
    ``import-registry`` a partial registry): nothing ever reclaimed them. One of this
    machine's goes when its writer is gone; one whose writer this machine cannot look up
    (another machine, another container's pid namespace) once a day old; a running writer's
    never. Returns how many went."""
    removed = 0
    try:
        entries = [p for p in directory.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return 0
    for path in entries:
        match = _LEFTOVER.match(path.name[len(prefix) :])
        if match is None:
            continue  # not <prefix><pid>-<start>-<machine>-…
        alive = _alive(match["pid"], match["start"], match["machine"])
        try:
            old = time.time() - path.lstat().st_mtime > LEFTOVER_GRACE_SECONDS
        except OSError:
            continue
        if alive or (alive is None and not old):
            continue
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed += 1
    return removed


def owner_here(tag: object) -> bool:
    """Whether a ``writer_tag`` (a run's ``owner``) names a process of this machine — this
    host, boot and pid namespace — whether or not its pid can be looked up: one ``/proc``
    hides from this process (``hidepid``) is here all the same, not on another machine."""
    match = OWNER.fullmatch(tag) if isinstance(tag, str) else None
    return match is not None and match["machine"] == MACHINE


def owner_pid(tag: object) -> int | None:
    """The pid in a ``writer_tag`` (a run's ``owner``), for messages; ``None`` for anything
    else."""
    match = OWNER.fullmatch(tag) if isinstance(tag, str) else None
    return int(match["pid"]) if match is not None else None


def _alive(pid_text: str, start: str, machine: str) -> bool | None:
    if machine != MACHINE or start == "x":
        return None
    pid = int(pid_text)
    now = process(pid)
    if now is None and _hidden(pid):
        return None  # it runs, but /proc hides it (``hidepid``): its start time is unknown
    return now is not None and now[0] not in ("Z", "X") and now[1] == start


def _hidden(pid: int) -> bool:
    """A process that runs though ``/proc`` does not show it: signal 0 is refused (EPERM)
    rather than finding no such process (ESRCH)."""
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except (ProcessLookupError, OverflowError, OSError):
        return False
    return True  # ours to signal, yet not in /proc: do not take it for dead
