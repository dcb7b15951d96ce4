"""What ``manymodels serve --ray-serve`` says when Ray Serve or its replicas cannot start:
one line from Ray's page of traceback (``serving.serve_run`` prints it as an ``error:``).

Serve reports a replica's failure as its explanation followed by the replica's traceback, and a
proxy that died as it started as a ``RayError`` whose text nests the original exception; the
user needs the exception that ended it and where Serve's logs are, not the page.
"""

from __future__ import annotations

import re
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def replica_error(message: str) -> str:
    """The exception that ended a replica's last try, from the deployment's status message
    (Serve's explanation, then the replica's traceback): its last line not indented after the
    last ``Traceback`` line, e.g. ``NoRegistry: no registry at /srv/reg``."""
    lines = [line for line in _ANSI.sub("", message).splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line]
    tail = lines[starts[-1] + 1 :] if starts else lines
    raised = [line for line in tail if not line[:1].isspace()]
    last = (raised or tail or ["(no message)"])[0 if raised else -1].strip()
    name, sep, text = last.partition(": ")
    return f"{name.rsplit('.', 1)[-1]}: {text}" if sep and " " not in name else last


_RAISED = re.compile(r"[A-Za-z_][\w.]*: \S")  # "ValueError: …", not "ray::Actor.f()"


def start_error(error: BaseException, logs: str | None) -> str:
    """Why ``serve.start`` failed, in one line, and what to try: a Ray error's last exception
    (a proxy that died as it started: ``ValueError: The import path … cannot be imported``),
    else the error's first line (Serve's 60 s bound: "HTTP proxies not available after 60s.",
    then the hint for a loaded host)."""
    import ray.exceptions

    text = _ANSI.sub("", str(error))
    raised = [line for line in text.splitlines() if _RAISED.match(line)]
    name, _, why = (raised[-1] if raised else "").partition(": ")
    if not raised or not isinstance(error, ray.exceptions.RayError):
        name, why = type(error).__name__, (text.strip() or "(no message)").splitlines()[0]
    slow = isinstance(error, TimeoutError | ray.exceptions.GetTimeoutError)
    hint = "on a loaded host Serve's processes start slowly: try again when it is quieter; "
    seen = f"Serve's logs: {logs}/serve/" if logs is not None else "Serve's logs: in Ray's"
    return f"{name.rsplit('.', 1)[-1]}: {why} ({hint if slow else ''}{seen})"


def logs_dir() -> str | None:
    """This node's Ray log directory: the replicas' log files are under ``serve/`` in it."""
    try:
        import ray._private.worker as worker

        node: Any = worker._global_node
        return str(node.get_logs_dir_path())
    except Exception:  # not Ray's public API: the message just leaves the path out
        return None
