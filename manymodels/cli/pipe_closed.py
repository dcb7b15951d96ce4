"""What the command does when the reader of its standard output leaves early.

``manymodels score data.csv -o - | head -1``: ``head`` exits after one line and every later
write raises ``BrokenPipeError``. Unix tools die of the ``SIGPIPE`` that write raises, quietly:
a plain shell shows nothing, and ``set -o pipefail`` sees 141 (128 + 13), which scripts already
know from ``seq 100000 | head -1``, ``yes | head``, ``cat big | head``. The command ended like
that: no traceback, no ``error:`` line, and the status of death by ``SIGPIPE``.

Why not the exit code 1 of the recipe in Python's ``signal`` documentation ("note on SIGPIPE"),
as typer's and rich's own handlers do: under ``pipefail`` a 1 is every other failure of ours
(a registry unreachable, a bad file), so a script could not tell "my reader had enough" from
"the command failed"; and why not 0: a reader that crashed would look like a whole, successful
write. The same documentation warns against ``SIGPIPE`` at ``SIG_DFL`` for the whole run (a
socket closed under a write would kill the process, and the router's or Ray's sockets are
many): the default is restored only here, at the very end, once the error has unwound every
``with`` and ``finally`` (Ray stopped, the registry closed). A Ray started embedded dies with
us even killed (``manymodels.reaper``).

typer answers ``EPIPE`` itself (exit 1) and rich's console too (``SystemExit(1)``), so the
typer app hands it on as ``ReaderLeft`` (``manymodels.cli.errors.Group``) and the console's
rich ``Console`` re-raises it (``manymodels.plaintable``): ``manymodels.cli.main`` alone ends
the process, through ``reader_left``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
from typing import NoReturn


class ReaderLeft(Exception):
    """The reader of standard output closed it: a ``BrokenPipeError`` carried past typer,
    which would otherwise exit 1 on it (it catches every ``OSError`` of ``EPIPE``)."""


def reader_left() -> NoReturn:
    """End the process as a Unix tool whose reader left does: killed by ``SIGPIPE``, silent.

    Standard output goes to /dev/null first, so that nothing buffered can raise again (where
    there is no ``SIGPIPE``, Windows, the process exits 1 and Python's final flush is quiet).
    The exit handlers run before the signal, as at any exit: a signal skips them, and with
    them every ``weakref.finalize`` of an object still alive (the traceback being handled
    holds the command's frames) — a Parquet dataset's shuffled copy of its rows
    (``manymodels.datasets``) was left in the temporary directory, the whole table's size."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sigpipe = getattr(signal, "SIGPIPE", None)
    if sigpipe is not None:
        atexit._run_exitfuncs()  # each runs once: none again at the exit
        with contextlib.suppress(OSError):  # stderr may be the closed pipe too (2>&1)
            sys.stderr.flush()  # a warning printed before the reader left is kept
        signal.signal(sigpipe, signal.SIG_DFL)
        signal.raise_signal(sigpipe)  # to this thread (os.kill may pick another on macOS)
    sys.exit(1)
