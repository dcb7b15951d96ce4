"""A full disk is the infrastructure's fault, not the partitions': they are ``lost``, the run
fails loudly with the count, and once there is room ``--resume`` finishes it.

The disk is real: a 96 KiB tmpfs mounted for the test (root only; a user's machine without
root skips, CI — which runs as root — never does).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import linear_frame, spec_dict
from tmpfs import mounted

from manymodels.exceptions import RunFailed
from manymodels.pipeline import train
from manymodels.registry import Registry

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with mounted(tmp_path / "disk", "96k") as mnt:
        yield mnt


def test_a_full_disk_loses_partitions_resumably_and_fails_the_run(
    small_disk: Path, tmp_path: Path
) -> None:
    df = linear_frame(60, 40)
    spec = spec_dict(fallback={"enabled": False})
    db = f"sqlite:///{tmp_path / 'registry.db'}"
    with Registry(db_url=db, artifacts=small_disk / "artifacts") as reg:
        with pytest.raises(RunFailed, match="lost to infrastructure faults") as caught:
            train(spec, df, reg, backend="local")
        run = caught.value.summary.run
        assert run.status == "failed" and 0 < run.n_trained < 60
        lost = reg.store.run_outcomes(run.run_id, status="lost", limit=100)
        assert lost and all("No space left on device" in o.message for o in lost)
        assert not reg.store.run_outcomes(run.run_id, status="failed", limit=100)
        for p in reg.list_partitions(limit=100):  # what committed is whole and verifiable
            reg.load_model(p.key)
            assert len(reg.training_rows(p.key)) == 40  # with its rows: never committed without

        subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
        resumed = train(spec, df, reg, backend="local", resume=run.run_id)
        assert (resumed.run.run_id, resumed.run.status) == (run.run_id, "completed")
        assert (resumed.run.n_trained, resumed.run.n_failed) == (60, 0)
        assert all(reg.load_model(f"pid={i}").version.version == 1 for i in range(60))


def test_a_forecast_larger_than_the_disk_is_one_line_and_leaves_no_file(
    small_disk: Path, tmp_path: Path
) -> None:
    """``manymodels forecast --out`` onto a disk that fills while its chunks are written: one
    line naming the file, exit 1 or 2, no file and no temporary file left on the disk."""
    from manymodels.samples import synthetic

    spec = {
        "name": "many", "partition_by": ["pid"], "target": "y", "time_column": "t",
        "features": ["x0"], "min_rows": 2, "validation": {"strategy": "last", "size": 4},
        "candidates": [{"estimator": "sklearn.linear_model.Ridge"}], "fallback": {"enabled": False},
    }  # fmt: skip
    root = tmp_path / "registry"
    train(spec, synthetic(60, 20), root, backend="local")
    out = small_disk / "forecast.csv"
    done = subprocess.run(
        [str(Path(sys.executable).with_name("manymodels")), "forecast", "--registry", str(root),
         "--horizon", "500", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {out}: cannot write the table"), lines
    assert "No space left on device" in lines[0]
    assert list(small_disk.iterdir()) == []


@pytest.mark.parametrize("name", ["out.csv", "out.csv.gz", "out.parquet"])
def test_frames_larger_than_the_disk_are_one_error_naming_the_file(
    small_disk: Path, name: str
) -> None:
    """``write_tables`` (``forecast --out``, ``score --out``) onto a disk that fills: the
    "cannot write the table" error, whatever the format, and nothing left on the disk. A gzip
    stream closed after the refused write flushes again and fails again: that second, raw
    OSError took the error's place (a traceback from the command)."""
    import numpy as np
    import pandas as pd

    from manymodels.exceptions import DataError
    from manymodels.tables import write_tables

    rng = np.random.default_rng(0)
    frames = (pd.DataFrame({"k": np.arange(8000) + i, "p": rng.random(8000)}) for i in range(5))
    out = small_disk / name
    with pytest.raises(DataError, match=rf"^{out}: cannot write the table \(.*No space left"):
        write_tables(frames, out)
    assert list(small_disk.iterdir()) == []
