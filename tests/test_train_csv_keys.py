"""A retrain from a CSV keyed by codes such as 007, into a registry trained from Parquet (keyed
'pid=007'): the CSV's codes are read as the registry holds them, as train --append, score,
actuals and a forecast's future table read them."""

from __future__ import annotations

from pathlib import Path

from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.pipeline import train
from manymodels.registry import Registry

runner = CliRunner()


def test_a_csv_retrain_of_padded_codes_trains_the_registrys_partitions(tmp_path: Path) -> None:
    """Before: the CSV's 007 and 008 were read as 7 and 8 and trained new partitions 'pid=7'
    and 'pid=8' beside 'pid=007' and 'pid=008', whose first versions went on serving (and the
    run warned that a request naming '007' is answered by the fallback)."""
    df = linear_frame(2, 30)
    df["pid"] = df["pid"].map(lambda p: f"00{p + 7}")
    df.to_parquet(tmp_path / "first.parquet")
    df.to_csv(tmp_path / "again.csv", index=False)
    root = tmp_path / "registry"
    spec = spec_dict(features=["x0", "x1"])
    train(spec, tmp_path / "first.parquet", root, backend="local")
    summary = train(spec, tmp_path / "again.csv", root, backend="local")
    assert sorted(summary.versions) == ["__fallback__", "pid=007", "pid=008"]
    assert not summary.run.options.get("warnings")
    with Registry.open(root) as reg:
        assert [p.key for p in reg.list_partitions()] == ["__fallback__", "pid=007", "pid=008"]

    (tmp_path / "spec.toml").write_text(
        'name = "test"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
        'features = ["x0", "x1"]\n[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    )
    result = runner.invoke(
        app,
        ["train", str(tmp_path / "spec.toml"), str(tmp_path / "again.csv"), "--registry",
         str(root), "--backend", "local"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with Registry.open(root) as reg:
        assert [p.key for p in reg.list_partitions()] == ["__fallback__", "pid=007", "pid=008"]


def test_a_first_csv_training_still_keys_by_the_numbers(tmp_path: Path) -> None:
    """No registry yet: nothing to read the codes as, none is created before the run, and the
    codes are numbers with the warning saying so, as before."""
    df = linear_frame(2, 30)
    df["pid"] = df["pid"].map(lambda p: f"00{p + 7}")
    df.to_csv(tmp_path / "first.csv", index=False)
    summary = train(spec_dict(features=["x0", "x1"]), tmp_path / "first.csv",
                    tmp_path / "registry", backend="local")  # fmt: skip
    assert sorted(summary.versions) == ["__fallback__", "pid=7", "pid=8"]
    assert "leading zeros" in summary.run.options["warnings"][0]
