"""A selection of keys (``forecast``'s ``keys=``, ``train``'s ``only=``) given as numpy arrays
and ``df.itertuples()`` rows, as pandas hands them out."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict

from manymodels.exceptions import DataError
from manymodels.forecasting import forecast
from manymodels.key_selection import key_list
from manymodels.pipeline import train


@pytest.fixture(scope="module")
def by_text(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A registry keyed by one text column (``pid`` = p0, p1, p2)."""
    root = tmp_path_factory.mktemp("keys") / "text"
    df = linear_frame(3).assign(pid=lambda d: "p" + d["pid"].astype(str))
    train(spec_dict(features=["x0", "x1"]), df, root, backend="local")
    return root, df


@pytest.fixture(scope="module")
def by_two(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A registry keyed by ``pid`` and ``g``."""
    root = tmp_path_factory.mktemp("keys") / "two"
    df = linear_frame(3).assign(g="a")
    train(spec_dict(features=["x0", "x1"], partition_by=["pid", "g"]), df, root, backend="local")
    return root, df


def test_a_1d_array_is_the_one_key_columns_values(by_text: tuple[Path, pd.DataFrame]) -> None:
    """``keys=df["pid"].values`` of text values read each as a key's text ("'p0' is not a
    partition key of the form col=value"); an array of keys' text still is keys' text."""
    root, df = by_text
    for keys in (df["pid"].values, df["pid"].to_numpy(dtype=str), np.array(["pid=p1"])):
        found = forecast(root, keys=keys, horizon=1)["pid"]
        assert sorted(found) == (["p1"] if len(keys) == 1 else ["p0", "p1", "p2"]), keys
    summary = train(
        spec_dict(features=["x0", "x1"]), df, root, backend="local", only=np.array(["p2"])
    )
    assert summary.run.n_trained == 1


def test_a_2d_array_is_a_key_per_row(by_two: tuple[Path, pd.DataFrame]) -> None:
    """``keys=df[["pid", "g"]].values`` was refused as "not ndarray"."""
    root, df = by_two
    assert sorted(forecast(root, keys=df[["pid", "g"]].values, horizon=1)["pid"]) == [0, 1, 2]
    with pytest.raises(DataError, match=r"an array of shape \(90, 3\) is no selection of keys"):
        forecast(root, keys=df[["pid", "g", "t"]].values, horizon=1)


def test_itertuples_rows_are_keys_by_field_name(by_two: tuple[Path, pd.DataFrame]) -> None:
    """``keys=df.itertuples()`` was refused ("not Pandas Pandas(Index=0, …)"), and
    ``df[["g", "pid"]].itertuples(index=False)`` read its values in the registry's column
    order, naming no partition ('pid=a,g=0'). The ``Index`` field is no key value; the
    other fields are matched by name."""
    root, df = by_two
    for keys in (
        df.itertuples(),
        list(df[["pid", "g"]].itertuples(index=True)),
        list(df[["g", "pid"]].itertuples(index=False)),
    ):
        assert sorted(forecast(root, keys=keys, horizon=1)["pid"]) == [0, 1, 2]
    one = next(df[df["pid"] == 1].itertuples())
    assert forecast(root, keys=one, horizon=1)["pid"].tolist() == [1]
    with pytest.raises(DataError, match=r"a row of df.itertuples\(\) has no field\(s\) 'g'"):
        forecast(root, keys=df[["pid"]].itertuples(), horizon=1)


def test_a_table_s_itertuples_reads_each_partition_once(by_two: tuple[Path, pd.DataFrame]) -> None:
    """``keys=df.itertuples()`` over the whole table gave a key per row (90 here; 200,000
    rows of 1,000 partitions took 2.1 s to read and canonicalise), each partition once now."""
    _root, df = by_two
    assert key_list(df.itertuples(), columns=["pid", "g"]) == [
        {"pid": 0, "g": "a"}, {"pid": 1, "g": "a"}, {"pid": 2, "g": "a"}
    ]  # fmt: skip
    assert key_list(["pid=1,g=a", "pid=1,g=a", {"pid": 2, "g": "a"}], columns=["pid", "g"]) == [
        "pid=1,g=a", {"pid": 2, "g": "a"}
    ]  # fmt: skip


_UNREAD = ("ray", "sqlalchemy", "alembic", "psycopg", "psycopg_binary", "rich", "pydantic")
"""Libraries behind our modules whose types no key form goes through: mypy skips them (``Any``)."""


@pytest.mark.slow
def test_the_api_type_hints_take_every_key_form(tmp_path: Path) -> None:
    """``load_model``, ``forecast(keys=)`` and ``train(only=)`` were typed ``str | Mapping``:
    mypy refused a user's ``reg.load_model(2)``, a groupby tuple, a list of values, all of
    which work. They take ``KeyLike`` / ``KeySelection`` now (mypy over this repository's
    source: the package ships no ``py.typed``)."""
    import subprocess
    import sys

    snippet = tmp_path / "uses_keys.py"
    snippet.write_text(
        "import numpy as np\n"
        "import manymodels as mm\n"
        "from manymodels.registry import Registry\n"
        "def use(reg: Registry) -> None:\n"
        "    reg.load_model(2)\n"
        "    reg.load_model(np.int64(2))\n"
        "    reg.load_model((2, 'tropicana'))\n"
        "    reg.get_version({'store': 2, 'brand': 'x'}, 1)\n"
        "    mm.forecast(reg, keys=[(2, 'tropicana'), {'store': 3, 'brand': 'x'}], horizon=1)\n"
        "    mm.forecast(reg, keys=np.array([1, 2]), horizon=1)\n"
        "    mm.train('spec.toml', 'data.csv', only=[1, 2])\n"
    )
    # Our modules and numpy's types (``np.int64``, ``np.array`` in the snippet) are read; the
    # libraries no key type names are not: following Ray (818 modules), SQLAlchemy, Alembic,
    # psycopg, rich and pydantic cost 13 s of mypy's 16 s of CPU (96 s on a loaded CI machine)
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\nignore_missing_imports = True\nfollow_imports = silent\n"
        f"[mypy-{','.join(f'{m}.*' for m in _UNREAD)}]\nfollow_imports = skip\n"
    )
    repo = Path(__file__).resolve().parents[1]  # cwd: mypy reads manymodels from this tree
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--no-incremental",
         "--cache-dir", os.devnull, str(snippet)],
        cwd=repo, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_mappings_of_the_same_values_under_other_columns_are_two_keys(tmp_path: Path) -> None:
    """``keys=[{"pid": 0, "g": 1}, {"g": 0, "pid": 1}]`` (mappings built in another column
    order) named two partitions and forecast one: the selection told keys apart by their
    values in the order given, (0, 1) both, and dropped the second as a repeat."""
    df = linear_frame(2).assign(g=lambda d: 1 - d["pid"])
    spec = spec_dict(features=["x0", "x1"], partition_by=["pid", "g"])
    train(spec, df, tmp_path, backend="local")
    keys = [{"pid": 0, "g": 1}, {"g": 0, "pid": 1}]
    assert sorted(forecast(tmp_path, keys=keys, horizon=1)["pid"]) == [0, 1]
    assert key_list([*keys, {"g": 1, "pid": 0}], columns=["pid", "g"]) == keys
