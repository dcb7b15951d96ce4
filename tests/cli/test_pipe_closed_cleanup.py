"""A command whose reader left dies of ``SIGPIPE`` (``manymodels.cli.pipe_closed``), but only
after Python's exit handlers have run: the signal skips them, and with them the
``weakref.finalize`` that deletes a Parquet dataset's shuffled copy of its rows
(``manymodels.datasets``) while the copy is still referenced — as it is from the frames of the
traceback being handled. The copy was left in the temporary directory, the table's size."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# a shuffled copy held as training holds it (its finalizer removes it), then a command whose
# stdout's reader is gone: ``version`` writes one line to it
HELD_COPY = """
import sys, weakref
from manymodels import shuffle
from manymodels.cli import main

class Copy:
    pass

copy = Copy()
weakref.finalize(copy, shuffle.remove, shuffle.new_root(sys.argv[1]))
sys.argv = ["manymodels", "version"]
main()
"""


@pytest.mark.slow  # a Python that imports the typer app: 1-4 s on a shared machine
def test_a_reader_that_left_leaves_no_shuffled_copy_behind(tmp_path: Path) -> None:
    base = tmp_path / "shuffles"
    base.mkdir()
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first write
    try:
        done = subprocess.run(
            [sys.executable, "-c", HELD_COPY, str(base)],
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write)
    assert done.stderr == "" and done.returncode == -signal.SIGPIPE, done.stderr
    assert list(base.iterdir()) == []  # the copy's finalizer ran before the signal
