"""``holidays = "holidays.csv"``: a spec's holidays read from a CSV (relative to the spec
file, or absolute) where only an inline list was taken (``holidays: is not a list of
dates``). Read once at spec load: the run records the dates, and a missing file or a bad
date is one line naming the file (and the row)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from factories import SHOPS_EXPECTED, SHOPS_HOLIDAYS, shops_panel, shops_spec
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import SpecError
from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.spec import Spec

SPEC = (
    'name = "shops"\npartition_by = ["shop"]\ntarget = "y"\ntime_column = "t"\nlags = [1, 2]\n'
    "holidays = {holidays}\n"
    '[validation]\nstrategy = "last"\nsize = 4\n'
    '[[candidates]]\nestimator = "sklearn.linear_model.LinearRegression"\n'
    "[fallback]\nenabled = false\n"
)
CSV = "date,name\n2024-12-25,Christmas Day\n\n2025-01-01,New Year's Day\n"


def spec_file(folder: Path, holidays: str, csv: str | None = CSV) -> Path:
    """A spec in ``folder`` whose ``holidays`` is ``holidays`` (TOML), and ``closed.csv``
    beside it holding ``csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    if csv is not None:
        (folder / "closed.csv").write_text(csv, encoding="utf-8")
    path = folder / "shops.toml"
    path.write_text(SPEC.format(holidays=holidays), encoding="utf-8")
    return path


def cli(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output.strip().splitlines()


def test_cli_trains_with_a_csv_beside_the_spec_and_forecasts_past_its_dates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = spec_file(tmp_path / "specs", '"closed.csv"')
    data = tmp_path / "shops.csv"
    shops_panel(pd.bdate_range("2024-01-02", "2024-12-20")).to_csv(data, index=False)
    monkeypatch.chdir(tmp_path)  # elsewhere than the spec: the path is the spec file's
    code, lines = cli("train", str(path), str(data), "--registry", "r")
    assert code == 0, lines
    out = tmp_path / "next.csv"
    code, lines = cli("forecast", "--registry", "r", "--horizon", "10", "--out", str(out))
    assert code == 0, lines
    table = pd.read_csv(out, parse_dates=["t"])
    for _, rows in table.groupby("shop"):
        assert list(rows["t"]) == list(SHOPS_EXPECTED)
    with Registry.open(tmp_path / "r") as reg:
        plan = reg.get_version("shop=s0").schema.forecast
        run = reg.list_runs()[0]
    assert plan is not None and plan.holidays == SHOPS_HOLIDAYS
    assert run.spec["holidays"] == SHOPS_HOLIDAYS  # the dates, not the path: read once


def test_library_train_and_forecast_read_it_too(tmp_path: Path) -> None:
    path = spec_file(tmp_path, '"closed.csv"', "2025-01-01\n2024-12-25\n")  # no header
    summary = train(path, shops_panel(pd.bdate_range("2024-01-02", "2024-12-20")), tmp_path / "r")
    assert summary.run.n_trained == 3, summary.failures
    got = forecast(tmp_path / "r", ["shop=s1"], horizon=10)
    assert list(got["t"]) == list(SHOPS_EXPECTED)


def test_the_file_lists_what_the_inline_list_does(tmp_path: Path) -> None:
    """Same dates, same spec: the same hash, so a run resumes whichever way they are written."""
    by_file = Spec.from_toml(spec_file(tmp_path / "a", '"closed.csv"'))
    absolute = Spec.from_toml(spec_file(tmp_path / "b", f'"{tmp_path / "a" / "closed.csv"}"'))
    inline = Spec.from_toml(spec_file(tmp_path / "c", '["2024-12-25", 2025-01-01]', None))
    assert by_file.holidays == absolute.holidays == inline.holidays == SHOPS_HOLIDAYS
    assert by_file.spec_hash == inline.spec_hash


@pytest.mark.parametrize(
    "csv",
    [
        "\n" + CSV,  # a leading blank line
        " \r\n\r\n" + CSV.replace("\n", "\r\n"),  # blank lines, as a spreadsheet writes them
        "sep=,\r\n" + CSV.replace("\n", "\r\n"),  # Excel's first line naming the delimiter
        "\ufeffsep=;\nDate;Name\n2024-12-25;Christmas Day\n2025-01-01\n",  # ';', a BOM
        "sep=,,\n" + CSV,  # saved again by a spreadsheet: padded with the table's empty cells
        '"sep=,"\r\n' + CSV.replace("\n", "\r\n"),  # … or quoted, a cell holding a ','
        '"SEP=;";\nDate;Name\n2024-12-25;Christmas Day\n2025-01-01\n',
    ],
)
def test_a_header_under_blank_lines_or_a_sep_line_is_the_header(tmp_path: Path, csv: str) -> None:
    """A header not on line 1 (a blank line before it, or Excel's `sep=,` line) failed
    the spec: "closed.csv row 2: 'date' is not a date". The header is the first row holding
    anything; a `sep=` first line names the delimiter and is no row of dates, as it reads
    saved again by a spreadsheet (`sep=,,`, `"sep=,"`), which failed as `sep=` once did."""
    path = spec_file(tmp_path, '"closed.csv"', None)
    (tmp_path / "closed.csv").write_text(csv, encoding="utf-8", newline="")
    assert Spec.from_toml(path).holidays == SHOPS_HOLIDAYS


def test_a_bad_date_under_leading_lines_is_said_at_its_line(tmp_path: Path) -> None:
    """A bad row's number counts the blank and `sep=` lines above it, as the editor does;
    a second header-like row is a bad date, not a header."""
    path = spec_file(tmp_path, '"closed.csv"', "\nsep=,\ndate\n2024-12-25\nholiday\n")
    with pytest.raises(SpecError, match=r"closed.csv row 5: 'holiday' is not a date"):
        Spec.from_toml(path)


def test_a_file_url_is_its_local_path_and_another_host_one_line(tmp_path: Path) -> None:
    """`holidays = "file:///x/closed.csv"` was joined to the spec's folder as
    `<folder>/file:/x/closed.csv` ("no such file"), `FILE://localhost/…` likewise: each is
    the local file, as a data path; another host is one line naming it."""
    closed = tmp_path / "a" / "closed.csv"
    spec_file(tmp_path / "a", '"closed.csv"')
    for i, url in enumerate([f"file://{closed}", f"FILE://localhost{closed}"]):
        assert (
            Spec.from_toml(spec_file(tmp_path / f"{i}", f'"{url}"', None)).holidays
            == SHOPS_HOLIDAYS
        )
        assert Spec.from_dict(shops_spec(holidays=url)).holidays == SHOPS_HOLIDAYS
    path = spec_file(tmp_path / "b", f'"file://otherhost{closed}"', None)
    with pytest.raises(SpecError) as caught:
        Spec.from_toml(path)
    said = str(caught.value)
    assert said.startswith(f"{path}: holidays: ") and "names the host 'otherhost'" in said
    assert len(said.splitlines()) == 1
    with pytest.raises(SpecError, match="is a URL: a holidays file is read from a local path"):
        Spec.from_toml(spec_file(tmp_path / "c", '"S3://bucket/closed.csv"', None))


def test_a_dict_spec_reads_a_path_from_where_one_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "closed.csv").write_text("\ufeffDate\n2024-12-25\n2025-01-01\n", "utf-8")
    monkeypatch.chdir(tmp_path)
    assert Spec.from_dict(shops_spec(holidays="closed.csv")).holidays == SHOPS_HOLIDAYS


@pytest.mark.parametrize(
    ("csv", "shown"),
    [
        (None, "closed.csv: no such file"),
        ("date\n2024-12-25\n2025-13-01\n", "closed.csv row 3: '2025-13-01' is not a date"),
        ("2024-12-25T10:00,x\n", "closed.csv row 1: '2024-12-25T10:00' is not a date"),
        ("date,name\n,Boxing Day\n", "closed.csv row 2: no date in its first column"),
        ("date\n\n", "closed.csv holds no dates"),
        (
            "sep=\ndate\n2024-12-25\n",
            "closed.csv row 1: Excel's separator line 'sep=' names "
            "no delimiter: write the one the file uses (sep=, or sep=;), or drop the line",
        ),
        (
            "\nsep=;,\ndate\n2024-12-25\n",
            "closed.csv row 2: Excel's separator line 'sep=;,' names more than one delimiter",
        ),
    ],
)
def test_a_missing_file_or_bad_date_fails_the_cli_in_one_line(
    tmp_path: Path, csv: str | None, shown: str
) -> None:
    path = spec_file(tmp_path, '"closed.csv"', csv)
    data = tmp_path / "d.csv"
    shops_panel(pd.bdate_range("2024-01-02", periods=30)).to_csv(data, index=False)
    code, lines = cli("train", str(path), str(data), "--registry", str(tmp_path / "r"))
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: holidays: "), lines
    assert f"{tmp_path / shown}" in lines[0], lines
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_one_date_as_text_is_told_to_be_a_list(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"""'2024-12-25' is one date.*write \["2024-12-25"\]"""):
        Spec.from_toml(spec_file(tmp_path, '"2024-12-25"', None))


def test_dates_exported_with_a_midnight_time_read_as_those_dates(tmp_path: Path) -> None:
    """A database's or a spreadsheet's export of a date column writes ``2024-12-25 00:00:00``:
    such a file was refused row by row ("is not a date"); it names the dates it means, in a
    file as inline. Another time of day names no one day and is still refused (above)."""
    csv = "date,name\n2024-12-25 00:00:00,Christmas Day\n2025-01-01T00:00+01:00,New Year\n"
    by_file = Spec.from_toml(spec_file(tmp_path / "a", '"closed.csv"', csv))
    inline = '[2024-12-25T00:00:00, "2025-01-01 00:00"]'  # a TOML datetime, and text
    listed = Spec.from_toml(spec_file(tmp_path / "b", inline, None))
    assert by_file.holidays == listed.holidays == SHOPS_HOLIDAYS
    assert by_file.spec_hash == Spec.from_toml(spec_file(tmp_path / "c", '"closed.csv"')).spec_hash


@pytest.mark.parametrize(
    ("holidays", "shown"),
    [
        ('""', "holidays: is empty: write a list of dates"),
        ('"  "', "holidays: is empty: write a list of dates"),
        ('"."', "is a folder, not a CSV file of dates"),
    ],
)
def test_an_empty_path_or_a_folder_is_said_as_such(
    tmp_path: Path, holidays: str, shown: str
) -> None:
    """``holidays = ""`` was read as the spec's own folder: "holidays: .: cannot read it
    (IsADirectoryError: [Errno 21] Is a directory: '.')", naming neither the empty text nor
    what to write."""
    with pytest.raises(SpecError) as refused:
        Spec.from_toml(spec_file(tmp_path, holidays, None))
    said = str(refused.value)
    assert shown in said and "Errno" not in said and "\n" not in said, said


def test_changed_only_retrains_after_the_csv_is_edited_not_after_it_is_reordered(
    tmp_path: Path,
) -> None:
    """The holidays are the business days' calendar: a date added to the CSV retrains every
    partition under ``--changed-only`` (its data unchanged), the same dates in another order
    and with a header retrain nothing."""
    path = spec_file(tmp_path, '"closed.csv"', "2024-12-25\n2025-01-01\n")
    data = tmp_path / "shops.csv"
    shops_panel(pd.bdate_range("2024-01-02", "2024-12-20")).to_csv(data, index=False)
    registry = str(tmp_path / "r")
    assert cli("train", str(path), str(data), "--registry", registry)[0] == 0
    (tmp_path / "closed.csv").write_text("date\n2025-01-01\n2024-12-25\n", encoding="utf-8")
    code, lines = cli("train", str(path), str(data), "--registry", registry, "--changed-only")
    assert code == 0 and any("nothing to train" in line for line in lines), lines
    (tmp_path / "closed.csv").write_text("2024-12-25\n2024-12-26\n2025-01-01\n", "utf-8")
    code, lines = cli("train", str(path), str(data), "--registry", registry, "--changed-only")
    assert code == 0, lines
    with Registry.open(tmp_path / "r") as reg:
        run = reg.list_runs()[0]
        plan = reg.get_version("shop=s0", 2).schema.forecast
    assert run.n_trained == 3 and run.options["holidays_changed"] == 3, run.options
    assert plan is not None and "2024-12-26" in plan.holidays
    code, lines = cli("train", str(path), str(data), "--registry", registry, "--changed-only")
    assert code == 0 and any("nothing to train" in line for line in lines), lines
