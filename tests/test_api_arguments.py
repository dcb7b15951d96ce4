"""The library's functions given their arguments as a notebook user first types them wrong:
swapped, of another type. Each is refused in one sentence saying which argument is which,
before anything is read or written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import manymodels as mm
from manymodels.exceptions import DataError, SpecError
from tests.factories import linear_frame, spec_dict


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("api_args") / "reg"
    df = linear_frame(3, 30)
    mm.train(spec_dict(), df, registry=root, backend="local")
    return root, df


@pytest.mark.parametrize("as_path", [str, Path])
def test_score_with_the_registry_first_says_the_arguments_are_swapped(
    trained: tuple[Path, pd.DataFrame], as_path: type
) -> None:
    """``mm.score(registry, frame)`` read the registry directory as a Parquet dataset: "cannot
    read table (ArrowInvalid: … Could not read schema from …/artifacts/…/<sha256>. Is this a
    'parquet' file?" — nothing about the order of the arguments."""
    root, df = trained
    with pytest.raises(ValueError) as caught:
        mm.score(as_path(root), df)
    message = str(caught.value)
    assert isinstance(caught.value, DataError)
    assert "is a manymodels registry, not a table of data" in message
    assert "score(frame, './mmregistry')" in message
    assert "\n" not in message and "schema" not in message


def test_score_with_a_home_registry_first_says_the_arguments_are_swapped(
    trained: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mm.score("~/mmregistry", frame)``: '~' is the home directory for the data and the
    registry alike, but the swap went unseen and the registry was read as a Parquet dataset
    ("Could not read schema from '…/artifacts/02/b3/…'. Is this a 'parquet' file?")."""
    root, df = trained
    monkeypatch.setenv("HOME", str(root.parent))
    with pytest.raises(DataError, match="is a manymodels registry, not a table of data"):
        mm.score(f"~/{root.name}", df)


def test_train_with_the_registry_as_the_data_says_so_and_writes_nothing(
    trained: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    root, df = trained
    with pytest.raises(DataError, match="is a manymodels registry, not a table of data"):
        mm.train(spec_dict(), root, tmp_path / "other")
    assert not (tmp_path / "other").exists()
    with pytest.raises(DataError, match="is a manymodels registry"):
        mm.train(spec_dict(), root, registry=df)  # type: ignore[arg-type]


def test_score_given_a_registry_object_as_the_data_names_its_place(
    trained: tuple[Path, pd.DataFrame],
) -> None:
    root, df = trained
    reg = mm.Registry.open(root)
    try:
        with pytest.raises(DataError, match=r"a Registry is the argument after the data"):
            mm.score(reg, df)  # type: ignore[arg-type]
        assert len(mm.score(df.drop(columns="y"), reg, backend="local")) == len(df)
    finally:
        reg.close()


def test_train_given_the_data_as_the_spec_says_so_in_one_line(tmp_path: Path) -> None:
    """``train(frame, spec)`` quoted the frame's repr, cut mid-row across lines ('      pid
    ...s x 5 columns]')."""
    with pytest.raises(SpecError) as caught:
        mm.train(linear_frame(2, 10), spec_dict(), registry=tmp_path / "r")  # type: ignore[arg-type]
    assert str(caught.value) == (
        "a spec is a Spec, a dict or the path of a TOML file, not DataFrame: "
        "the spec comes first, then the data"
    )
    assert not (tmp_path / "r").exists()


def test_columns_held_as_the_frames_index_are_named_so(
    trained: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """A frame keyed by its index (``set_index``, a ``groupby().agg()`` result) was refused as
    "missing column(s) 'pid' … (table has: t, x0, x1, y)", as if the data lacked them."""
    root, df = trained
    hint = "the frame's index: df.reset_index() makes columns of it"
    with pytest.raises(DataError, match=rf"; 'pid' is {re.escape(hint)}$"):
        mm.train(spec_dict(), df.set_index("pid"), registry=tmp_path / "r", backend="local")
    with pytest.raises(DataError, match=rf"; 'pid', 't' are {re.escape(hint)}$"):
        mm.train(spec_dict(), df.set_index(["pid", "t"]), registry=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    with pytest.raises(DataError, match=rf"missing key column.*; 'pid' is {re.escape(hint)}$"):
        mm.score(df.set_index("pid"), root, backend="local")
    with pytest.raises(DataError, match=rf"missing feature column.*; 'x0' is {re.escape(hint)}$"):
        mm.score(df.set_index("x0"), root, backend="local")
    future = pd.DataFrame({"pid": [0], "t": [30], "x0": [0.0], "x1": [0.0]}).set_index("t")
    with pytest.raises(DataError, match=rf"; 't' is {re.escape(hint)}$"):
        mm.forecast(root, ["pid=0"], horizon=1, future=future)
    # a frame whose index is no column the spec names is read as before
    assert len(mm.score(df.set_index(df.index * 3), root, backend="local")) == len(df)


def test_a_frame_of_keys_selects_its_rows_partitions(
    trained: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """``keys=df[["pid"]]`` (forecast) and ``only=`` (train) iterated the frame, that is its
    column names: "'pid' is not a partition key of the form col=value"."""
    root, df = trained
    frame = mm.forecast(root, df[["pid"]][df.pid.isin([0, 2])], horizon=2)
    assert sorted(set(frame.pid)) == [0, 2] and len(frame) == 4
    summary = mm.train(
        spec_dict(), df, registry=tmp_path / "r", only=df[df.pid == 1][["pid"]], backend="local"
    )
    assert summary.run.n_trained == 1 and summary.run.n_partitions == 1


def test_a_frames_row_is_a_key(trained: tuple[Path, pd.DataFrame]) -> None:
    """``reg.load_model(df.iloc[0][["pid"]])`` (a Series, the row of a frame) was refused as
    no key, its repr quoted across lines ("not Series pid    0\\ndtype: int64")."""
    root, df = trained
    row = df.iloc[40][["pid"]]
    reg = mm.Registry.open(root)
    try:
        assert reg.load_model(row).version.key == "pid=1"  # type: ignore[arg-type]
        assert reg.get_partition(row).key == "pid=1"  # type: ignore[arg-type]
        assert [v.version for v in reg.list_versions(row)] == [1]  # type: ignore[arg-type]
        with pytest.raises(DataError) as caught:
            reg.load_model(df)  # type: ignore[arg-type]
        assert "(a df.groupby key), not DataFrame; this registry's key columns are pid" in str(
            caught.value
        )
    finally:
        reg.close()


def test_levels_and_threshold_given_as_python_values(tmp_path: Path) -> None:
    """``levels=80`` raised "TypeError: 'float' object is not iterable", ``levels="80,95"``
    (the CLI's and router's form) "ValueError: Unknown format code 'g' for object of type
    'str'", ``threshold="0.5"`` "TypeError: '<=' not supported between instances of 'float'
    and 'str'". A number is one level, text is read as the CLI reads it, and what is neither
    is a DataError naming the argument."""
    df = linear_frame(2, 40)
    root = tmp_path / "reg"
    mm.train(spec_dict(intervals={"levels": [80, 95]}), df, registry=root, backend="local")
    rows = df.drop(columns="y")
    one = mm.score(rows, root, levels=80, backend="local")
    assert "lo-80" in one.columns and "lo-95" not in one.columns
    both = mm.score(rows, root, levels="80,95", backend="local")
    assert {"lo-80", "hi-95"} <= set(both.columns)
    assert "lo-95" in mm.forecast(root, ["pid=0"], horizon=2, levels=95).columns
    with pytest.raises(DataError, match=r"^levels: 0.8 is not a coverage in percent above 1"):
        mm.score(rows, root, levels=0.8, backend="local")
    with pytest.raises(DataError, match=r"^levels: give levels in percent as a list, not dict"):
        mm.forecast(root, horizon=1, levels={80: 1})  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"^threshold: input should be a number from 0 to 1"):
        mm.score(rows, root, threshold="0.5", backend="local")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"^threshold: input should be a number from 0 to 1"):
        mm.forecast(root, horizon=1, threshold="0.5")  # type: ignore[arg-type]


def test_max_failed_fraction_as_text_is_refused_by_name(tmp_path: Path) -> None:
    """``max_failed_fraction="0.5"`` was "TypeError: '<=' not supported between instances of
    'float' and 'str'", naming no argument."""
    with pytest.raises(ValueError, match=r"^max_failed_fraction must be a number, not '0.5'$"):
        mm.train(spec_dict(), linear_frame(2, 20), tmp_path / "r", max_failed_fraction="0.5")  # type: ignore[arg-type]
    assert not (tmp_path / "r").exists()
    summary = mm.train(
        spec_dict(), linear_frame(2, 20), tmp_path / "r", max_failed_fraction=np.float32(0.5),
        backend="local",
    )  # fmt: skip
    assert summary.run.n_trained == 2


def test_a_path_from_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``registry="~/mmregistry"`` from Python (no shell expands it) made a directory named
    '~' in the working directory, and ``Registry.open("~/mmregistry")`` / ``score("~/x.csv",
    …)`` found nothing there ("no registry at /work/~/mmregistry"); pandas reads '~' paths."""
    home, elsewhere = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    df = linear_frame(2, 20)
    df.to_csv(home / "rows.csv", index=False)
    (home / "spec.toml").write_text(
        'name = "test"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    )
    assert mm.Spec.coerce("~/spec.toml") == mm.Spec.coerce(spec_dict())
    mm.train(spec_dict(), "~/rows.csv", registry="~/reg", backend="local")
    assert (home / "reg" / "registry.db").is_file() and not (elsewhere / "~").exists()
    with mm.Registry.open("~/reg") as reg:
        assert reg.get_partition("pid=1").latest_version == 1
    assert len(mm.score("~/rows.csv", Path("~/reg"), backend="local")) == len(df)


def test_yes_no_arguments_take_only_true_or_false(
    trained: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """``probabilities="no"`` was taken as true (any non-empty text is), and so was
    ``create="no"``: ``Registry.open(path, create="no")`` made a registry where there was
    none. Each is refused in one sentence naming the argument, before any work."""
    root, df = trained
    rows = df.drop(columns="y")
    said = r"^{} must be True or False, not str 'no'$"
    with pytest.raises(DataError, match=said.format("probabilities")):
        mm.score(rows, root, probabilities="no", backend="local")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=said.format("skip_unknown")):
        mm.score(rows, root, skip_unknown="no", backend="local")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=said.format("probabilities")):
        mm.forecast(root, horizon=1, probabilities="no")  # type: ignore[arg-type]
    for flag in ("strict", "changed_only", "append"):
        with pytest.raises(DataError, match=said.format(flag)):
            mm.train(spec_dict(), df, registry=tmp_path / "r", **{flag: "no"})
    assert not (tmp_path / "r").exists()
    with pytest.raises(DataError, match=said.format("create")):
        mm.Registry.open(tmp_path / "none", create="no")
    assert not (tmp_path / "none").exists()
    # numpy's booleans (a comparison's result) are booleans
    assert len(mm.score(rows, root, probabilities=np.False_, backend="local")) == len(df)


def test_the_table_itself_selects_its_partitions(
    trained: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """``mm.forecast(reg, keys=df)`` — the table of partitions, features and all, as
    ``mm.score`` takes it — took each whole row for a key: "no partition {'pid': 0, 't': 0,
    'x0': …} in the registry"; ``df.pid`` and a row ``df.iloc[i]`` were read value by value
    ("not int 0"). The key columns are picked; a frame without them says which it lacks."""
    root, df = trained
    frame = mm.forecast(root, df[df.pid > 0], horizon=2)
    assert sorted(set(frame.pid)) == [1, 2] and len(frame) == 4
    assert sorted(set(mm.forecast(root, df.pid[df.pid == 1], horizon=1).pid)) == [1]
    assert list(mm.forecast(root, df.iloc[40], horizon=1).pid) == [1]
    with pytest.raises(DataError, match=r"^keys: the frame has no key column\(s\) 'pid'"):
        mm.forecast(root, df.drop(columns="pid"), horizon=1)
    summary = mm.train(
        spec_dict(), df, registry=tmp_path / "r", only=df[df.pid == 2], backend="local"
    )
    assert summary.run.n_trained == 1 and summary.run.n_partitions == 1


def test_a_whole_row_of_the_table_names_its_partition(trained: tuple[Path, pd.DataFrame]) -> None:
    """``reg.load_model(df.iloc[i])`` — the row, features and all — was "no partition {'pid':
    1, 't': 10, 'x0': …} in the registry: it names 'pid', 't', 'x0', 'x1', 'y'": its key
    columns name the partition, as a frame's do for ``forecast``; and ``predict`` scores the
    same row."""
    root, df = trained
    row = df.iloc[40]
    with mm.Registry.open(root) as reg:
        loaded = reg.load_model(row)  # type: ignore[arg-type]
        assert loaded.version.key == "pid=1"
        assert reg.get_partition(row).key == "pid=1"  # type: ignore[arg-type]
        np.testing.assert_array_equal(loaded.predict(row), loaded.predict(df.iloc[[40]]))


def test_a_groupby_key_tuple_names_its_partition(
    trained: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """``for key, rows in df.groupby(["pid"])`` gives tuples: ``reg.load_model(key)``,
    ``forecast(root, [key, …])`` and ``train(only=[key])`` refused them, "not tuple (1,)".
    A tuple holds the key columns' values in order; one of another length says so."""
    root, df = trained
    keys = [key for key, _ in df.groupby(["pid"])]
    assert keys[1] == (1,)
    with mm.Registry.open(root) as reg:
        assert reg.load_model(keys[1]).version.key == "pid=1"  # type: ignore[arg-type]
        with pytest.raises(
            DataError, match=r"\(a tuple holds the values of the key columns pid, in order\)$"
        ):
            reg.load_model((1, 2))  # type: ignore[arg-type]
    assert sorted(set(mm.forecast(root, keys[:2], horizon=1).pid)) == [0, 1]
    summary = mm.train(spec_dict(), df, registry=tmp_path / "r", only=[keys[2]], backend="local")
    assert summary.run.n_trained == 1 and "pid=2" in summary.versions


def test_one_groupby_key_tuple_alone_is_a_selection_of_one(
    trained: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """One text key or mapping alone is a selection of one, and so is one groupby key alone:
    ``forecast(root, (1,))`` and ``train(only=(2,))`` read the tuple value by value, "a
    partition key is text … not int 1". A tuple of keys' text is still a selection of them."""
    root, df = trained
    keys = [key for key, _ in df.groupby(["pid"])]
    assert set(mm.forecast(root, keys[1], horizon=1).pid) == {1}
    assert set(mm.forecast(root, ("pid=0", "pid=2"), horizon=1).pid) == {0, 2}
    summary = mm.train(spec_dict(), df, registry=tmp_path / "r", only=keys[2], backend="local")
    assert summary.run.n_trained == 1 and "pid=2" in summary.versions


def test_progress_notes_and_signer_of_the_wrong_type_are_refused_before_any_run(
    trained: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """``train(progress=True)`` recorded a run and failed it with "TypeError: 'bool' object
    is not callable"; ``notes=["a"]`` was "AttributeError: 'list' object has no attribute
    'get'", and ``score(…, signer="key text")`` "'str' object has no attribute …". Each is
    one sentence naming the argument, and no registry is written."""
    root, df = trained
    with pytest.raises(
        DataError, match=r"^progress must be a function called with .*not bool True$"
    ):
        mm.train(spec_dict(), df, tmp_path / "r", progress=True, backend="local")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"^notes must be a dict, or None, not list \['a'\]$"):
        mm.train(spec_dict(), df, tmp_path / "r", notes=["a"], backend="local")  # type: ignore[arg-type]
    assert not (tmp_path / "r").exists()
    with pytest.raises(DataError, match=r"^signer must be a manymodels.signing.Signer .*not str$"):
        mm.score(df.drop(columns="y"), root, signer="k" * 40, backend="local")  # type: ignore[arg-type]


def test_future_rows_of_the_wrong_type_name_the_future_argument(
    trained: tuple[Path, pd.DataFrame],
) -> None:
    """``forecast(…, future=[{…}])`` said "data must be a pandas DataFrame …", naming an
    argument forecast does not have."""
    root, _ = trained
    rows = [{"pid": 0, "t": 30, "x0": 1.0, "x1": 0.0}]
    with pytest.raises(DataError, match=r"^future must be a pandas DataFrame or the path of a"):
        mm.forecast(root, ["pid=0"], horizon=1, future=rows)  # type: ignore[arg-type]
    assert len(mm.forecast(root, ["pid=0"], horizon=1, future=pd.DataFrame(rows))) == 1
