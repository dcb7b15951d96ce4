"""Processes under a process, read from ``/proc``: the tests that check Ray dies with us.

A process's descendants are collected while it lives (once it dies its children are adopted
by init and can no longer be told from anyone else's); ``wait_gone`` then polls those ids.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

TOKEN_NOTICE = "Token authentication is enabled"  # Ray's notice that embedded mode hides


def _parents() -> dict[int, int]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            out[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def alive(pids: set[int]) -> dict[int, str]:
    """The ones still running (zombies count as gone), with their command lines."""
    out = {}
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            out[pid] = command_line(pid)
    return out


def wait_gone(pids: set[int], timeout: float) -> dict[int, str]:
    """Poll until every one of ``pids`` is gone or ``timeout`` passes; what is left."""
    deadline = time.monotonic() + timeout
    left = alive(pids)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = alive(pids)
    return left


def ray_processes(pids: set[int]) -> dict[int, str]:
    """Those of ``pids`` that are Ray's (GCS, raylet, agents, workers, monitors)."""
    return {p: c for p, c in alive(pids).items() if "ray" in c and os.getpid() != p}
