"""Tests for manymodels.spec: loading, every error path, hashing, factory candidates."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import RIDGE, spec_dict

from manymodels.exceptions import SpecError
from manymodels.spec import Selection, Spec

VALID = """\
name = "s"
partition_by = ["store"]
target = "units"
time_column = "week"
{top}
[validation]
strategy = "last"
size = 8
{validation}
[[candidates]]
estimator = "{estimator}"
params = {params}
{candidate}
"""


def write_spec(tmp_path: Path, name: str = "spec.toml", **parts: str) -> Path:
    fields = {
        "top": "",
        "validation": "",
        "candidate": "",
        "estimator": RIDGE,
        "params": "{ alpha = [0.1, 1.0] }",
    }
    fields.update(parts)
    path = tmp_path / name
    path.write_text(VALID.format(**fields), encoding="utf-8")
    return path


def spec_error(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        Spec.from_toml(path)
    return str(info.value)


@pytest.mark.parametrize("sample", ["store_sales", "sensor_readings", "user_activity"])
def test_sample_specs_load(samples_dir: Path, sample: str) -> None:
    spec = Spec.from_toml(samples_dir / f"{sample}.toml")
    assert spec.name == sample.replace("_", "-")
    assert spec.candidates
    assert spec.validation_strategy == "last"
    assert spec.time_column is not None


def test_template_is_valid(tmp_path: Path) -> None:
    spec = Spec.from_toml(write_spec(tmp_path))
    assert spec.partition_by == ["store"]
    assert spec.candidates[0].params == {"alpha": [0.1, 1.0]}


@pytest.mark.parametrize(
    ("parts", "dotted", "detail"),
    [
        ({"top": 'colour = "red"'}, "colour", "unknown key"),
        ({"validation": "sise = 3"}, "validation.sise", "unknown key"),
        ({"candidate": "scael = true"}, "candidates[0].scael", "unknown key"),
        ({"estimator": "sklearn.linear_model.Rige"}, "candidates[0]", "Rige"),
        ({"estimator": "sklearn.linear_modl.Ridge"}, "candidates[0]", "sklearn.linear_modl"),
        ({"estimator": "no_such_pkg.models:make"}, "candidates[0]", "no_such_pkg"),
        ({"estimator": "os.path"}, "candidates[0]", "not an estimator class"),
        ({"params": "{ alhpa = [1.0] }"}, "candidates[0]", "alhpa"),
        ({"params": "{ alpha = [] }"}, "candidates[0].params", "empty list"),
        ({"top": 'metric = "mae"'}, "metric", "'mae' is not a scikit-learn scorer"),
    ],
)
def test_errors_name_file_and_key(
    tmp_path: Path, parts: dict[str, str], dotted: str, detail: str
) -> None:
    path = write_spec(tmp_path, **parts)
    message = spec_error(path)
    assert message.startswith(f"{path}: ")
    assert dotted in message
    assert detail in message


@pytest.mark.parametrize(
    ("text", "dotted", "detail"),
    [
        (
            'name = "s"\npartition_by = ["a"]\n[[candidates]]\nestimator = "' + RIDGE + '"\n',
            "target",
            "required key is missing",
        ),
        (
            'name = "s"\npartition_by = ["a"]\ntarget = "y"\n[validation]\nstrategy = "last"\n'
            '[[candidates]]\nestimator = "' + RIDGE + '"\n',
            "validation.strategy",
            "needs a time_column",
        ),
        (
            'name = "s"\npartition_by = ["a", "y"]\ntarget = "y"\n'
            '[[candidates]]\nestimator = "' + RIDGE + '"\n',
            "target",
            "also a partition_by column",
        ),
        (
            'name = "s"\npartition_by = ["a"]\ntarget = "y"\ncandidates = []\n',
            "candidates",
            "at least 1 item",
        ),
        (
            'name = "s"\npartition_by = ["a"]\ntarget = "y"\n[validation]\nsize = 2.5\n'
            '[[candidates]]\nestimator = "' + RIDGE + '"\n',
            "validation.size",
            "whole number",
        ),
    ],
    ids=["missing-target", "last-without-time", "target-in-keys", "no-candidates", "size"],
)
def test_consistency_errors_name_file_and_key(
    tmp_path: Path, text: str, dotted: str, detail: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    message = spec_error(path)
    assert message.startswith(f"{path}: ")
    assert dotted in message
    assert detail in message


@pytest.mark.parametrize(
    ("top", "said"),
    [
        (
            'target_transform = "log"',
            "target_transform: 'log' is not one of 'none', 'difference', 'scale', "
            "'auto_difference' (or a list of 'none', 'difference', 'scale')",
        ),
        (
            'target_transform = ["difference", "log"]',
            "target_transform[1]: 'log' is not one of 'none', 'difference', 'scale'",
        ),
        ('task = "regresion"', "task: 'regresion' is not one of 'regression', 'classification'"),
        (
            "[selection]\nprior_rows = -1",
            "selection.prior_rows: must be a number ≥ 0 or 'auto', not -1",
        ),
        (
            "target_transform = {}",
            "target_transform: {} is not one of 'none', 'difference', 'scale', "
            "'auto_difference' (or a list of 'none', 'difference', 'scale')",
        ),
    ],
    ids=["union-word", "union-list-item", "literal", "union-number", "union-table"],
)
def test_a_value_outside_a_choice_is_one_line_in_the_specs_words(
    tmp_path: Path, top: str, said: str
) -> None:
    """A value no member of a union takes is one problem under its key, not one per member
    under pydantic's names for them (``target_transform.literal['none',…]``); a word outside
    a choice is named as written."""
    path = write_spec(tmp_path, top=top)
    assert spec_error(path) == f"{path}: {said}"


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            {"target_transform": {}},
            "target_transform: {} is not one of 'none', 'difference', 'scale', "
            "'auto_difference' (or a list of 'none', 'difference', 'scale')",
        ),
        (
            {"target_transform": 5},
            "target_transform: 5 is not one of 'none', 'difference', 'scale', "
            "'auto_difference' (or a list of 'none', 'difference', 'scale')",
        ),
        (
            {"selection": {"prior_rows": -1}},
            "selection.prior_rows: must be a number ≥ 0 or 'auto', not -1",
        ),
        (
            {"selection": {"prior_rows": [2]}},
            "selection.prior_rows: [2] is not a number (or 'auto')",
        ),
    ],
    ids=["table", "number", "below-minimum", "list"],
)
def test_a_value_of_no_members_kind_says_what_it_is_and_what_the_key_takes(
    change: dict[str, object], said: str
) -> None:
    """``target_transform = {}`` said "{} is not one of 'none', …, or Input should be a valid
    list", ``prior_rows = -1`` "Input should be greater than or equal to 0, or -1 is not
    'auto'": pydantic's words for each member, where neither member was meant."""
    with pytest.raises(SpecError) as caught:
        Spec.from_dict(spec_dict(lags=[1], **change))
    assert str(caught.value) == f"<spec>: {said}"


def test_bad_toml_syntax_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('name = "s\npartition_by = ["a"]\n', encoding="utf-8")
    message = spec_error(path)
    assert message.startswith(f"{path}: not valid TOML")
    assert "line 1" in message


def test_a_byte_order_mark_before_the_spec_is_read_past(tmp_path: Path) -> None:
    """A spec saved as "UTF-8 with BOM" (Windows Notepad's UTF-8) failed as "not valid TOML:
    Invalid statement (at line 1, column 1)", on a line that looks right in any editor."""
    plain = write_spec(tmp_path)
    marked = tmp_path / "marked.toml"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert Spec.from_toml(marked) == Spec.from_toml(plain)


def test_a_spec_that_is_not_utf8_names_the_line_and_column(tmp_path: Path) -> None:
    """A Latin-1 "é" in a comment said "'utf-8' codec can't decode byte 0xe9 in position
    NNN": a byte offset to count by hand, where TOML's own errors give a line and column."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(write_spec(tmp_path).read_bytes() + "# naïve ".encode() + b"caf\xe9\n")
    lines = path.read_bytes().count(b"\n")
    assert spec_error(path) == (
        f"{path}: cannot read spec file (not UTF-8: byte 0xe9 at line {lines}, column 12; "
        "save the file as UTF-8)"
    )


def test_a_data_file_given_as_the_spec_says_the_arguments_are_swapped(tmp_path: Path) -> None:
    """``manymodels train sales.csv spec.toml`` said "sales.csv: not valid TOML: Expected '='
    after a key …" (a Parquet file: "cannot read spec file (… codec can't decode …)"), which
    read as a broken file, not as the two arguments swapped."""
    from factories import linear_frame

    csv, parquet = tmp_path / "sales.csv", tmp_path / "sales.parquet"
    linear_frame(1, 3).to_csv(csv, index=False)
    linear_frame(1, 3).to_parquet(parquet)
    hint = "; it looks like a data file: the spec (TOML) comes first, then the data"
    assert spec_error(csv).startswith(f"{csv}: not valid TOML: ")
    assert spec_error(csv).endswith(hint)
    assert spec_error(parquet).startswith(f"{parquet}: cannot read spec file (")
    assert spec_error(parquet).endswith(hint)
    broken = tmp_path / "broken.toml"  # a spec's own syntax error gets no such hint
    broken.write_text('name = "s\n', encoding="utf-8")
    assert "data file" not in spec_error(broken)


def test_missing_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert spec_error(path) == f"{path}: spec file not found"


def test_spec_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="colour"):
        Spec.from_toml(write_spec(tmp_path, top='colour = "red"'))


def test_from_dict_names_its_source() -> None:
    with pytest.raises(SpecError, match=r"^<spec>: features is empty"):
        Spec.from_dict(spec_dict(features=[]))


def test_a_spec_built_directly_says_what_from_dict_says() -> None:
    """``Spec(...)`` raised pydantic's ``ValidationError``, a message over several lines with a
    link per problem, where ``from_dict`` and ``train`` said the same in one line."""
    bad = spec_dict(min_rows=1, selection={"prior_rows": "x"})
    with pytest.raises(SpecError) as direct:
        Spec(**bad)
    with pytest.raises(SpecError) as read:
        Spec.from_dict(bad)
    assert str(direct.value) == str(read.value)
    assert str(direct.value).startswith("<spec>: min_rows: ") and "\n" not in str(direct.value)
    with pytest.raises(ValueError, match=r"^<spec>: features is empty"):  # still a ValueError
        Spec(**spec_dict(features=[]))
    with pytest.raises(SpecError, match=r"^<Selection>: naive_margin: "):  # a section alone
        Selection(naive_margin=2)


def test_a_spec_is_still_validated_copied_and_pickled_as_pydantic_does() -> None:
    """Direct construction's ``SpecError`` leaves pydantic's own paths alone: ``model_validate``
    keeps its ``ValidationError`` and its context (a stored spec's fractions of levels), a
    section inside a spec is named by its key, and copies need no validation."""
    import copy
    import pickle

    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Spec.model_validate(spec_dict(min_rows=1))
    stored = spec_dict(intervals={"levels": [0.8]})
    assert Spec.model_validate(stored, context={"stored": True}).intervals is not None
    with pytest.raises(SpecError, match=r"^<spec>: selection\.naive_margin: "):
        Spec.from_dict(spec_dict(selection={"naive_margin": 2}))
    spec = Spec(**spec_dict(selection=Selection(naive_margin=0.2)), min_rows=12)
    assert spec == Spec.from_dict(spec.to_dict())
    assert spec.model_copy(update={"min_rows": 20}).min_rows == 20
    assert pickle.loads(pickle.dumps(spec)) == spec == copy.deepcopy(spec) == copy.copy(spec)


def test_several_problems_are_all_reported_on_one_line(tmp_path: Path) -> None:
    path = write_spec(tmp_path, top='colour = "red"', validation="sise = 3")
    message = spec_error(path)
    assert "\n" not in message
    assert "colour" in message
    assert "validation.sise" in message


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        ({"min_rows": "20"}, "min_rows", "must be a number, not the text '20'"),
        ({"seed": "7"}, "seed", "must be a number, not the text '7'"),
        ({"min_rows": True}, "min_rows", "must be a number, not true"),
        ({"fallback": {"enabled": "yes"}}, "fallback.enabled", "must be true or false, not the"),
        (
            {"intervals": {"levels": ["80"]}},
            "intervals.levels",
            "must be a number, not the text '80'",
        ),
        ({"promotion": {"min_improvement": "0.02"}}, "promotion.min_improvement", "must be a"),
    ],
)
def test_text_or_a_boolean_where_a_number_is_meant_is_refused(
    change: dict[str, object], where: str, says: str
) -> None:
    """Read as 20, true and 0.02 before, while ``lags = ["8"]`` was refused."""
    with pytest.raises(SpecError) as caught:
        Spec.from_dict(spec_dict(**change))
    assert f"<spec>: {where}: {says}" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        ({"min_rows": b"20"}, "min_rows", "must be a number, not the bytes b'20'"),
        ({"seed": bytearray(b"7")}, "seed", "must be a number, not the bytes b'7'"),
        ({"fallback": {"enabled": b"yes"}}, "fallback.enabled", "must be true or false, not"),
        (
            {"intervals": {"levels": [80, b"95"]}},
            "intervals.levels",
            "must be a number, not the bytes b'95'",
        ),
        (
            {"selection": {"prior_rows": b"3"}},
            "selection.prior_rows",
            "must be a number or 'auto', not the bytes b'3'",
        ),
    ],
)
def test_bytes_where_a_number_is_meant_are_refused_as_text_is(
    change: dict[str, object], where: str, says: str
) -> None:
    """A Python dict's ``b"20"`` was read as 20 (and ``b"yes"`` as true) where ``"20"`` was
    refused."""
    with pytest.raises(SpecError) as caught:
        Spec.from_dict(spec_dict(**change))
    assert f"<spec>: {where}: {says}" in str(caught.value)


def test_text_beside_a_fields_own_words_is_refused_and_its_words_are_not() -> None:
    """``prior_rows`` takes a number or "auto": "20" was read as 20.0, true as 1.0."""
    with pytest.raises(SpecError, match="prior_rows: must be a number or 'auto', not the text"):
        Spec.from_dict(spec_dict(selection={"prior_rows": "20"}))
    with pytest.raises(SpecError, match="prior_rows: must be a number or 'auto', not true"):
        Spec.from_dict(spec_dict(selection={"prior_rows": True}))
    assert (
        Spec.from_dict(spec_dict(selection={"prior_rows": "auto"})).selection.prior_rows == "auto"
    )


def test_two_unknown_keys_are_each_named_however_they_are_spelt() -> None:
    """``time-column`` and ``min-rows`` (a TOML habit) were read as two members of one union,
    and the message named neither: "unknown key (…), or unknown key (…)"."""
    with pytest.raises(SpecError) as caught:
        Spec.from_dict(spec_dict(**{"time-column": "t", "min-rows": 10}))
    assert str(caught.value) == (
        "<spec>: time-column: unknown key (not part of the spec format); "
        "<spec>: min-rows: unknown key (not part of the spec format)"
    )
    with pytest.raises(
        SpecError, match=r"fallback\.max-rows: unknown key .*fallback\.int: unknown"
    ):
        Spec.from_dict(spec_dict(fallback={"max-rows": 5, "int": 3}))


def test_text_for_a_list_is_not_said_to_be_a_number_it_should_be() -> None:
    """``levels = "80"`` read "must be a number, not the text '80'": written as one, it is
    still refused, for it is a list the key takes, and the list meant is shown."""
    with pytest.raises(SpecError, match=r"intervals\.levels: '80' is not a list: write \[80\]$"):
        Spec.from_dict(spec_dict(intervals={"levels": "80"}))


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("partition_by", "store", """partition_by: 'store' is not a list: write ["store"]"""),
        ("features", "x0", """features: 'x0' is not a list: write ["x0"]"""),
        # a command line's comma-separated list: was told to write ["store,brand"]
        (
            "partition_by",
            "store, brand",
            """partition_by: 'store, brand' is not a list: write ["store", "brand"]""",
        ),
        (
            "intervals",
            {"levels": "80,95"},
            "intervals.levels: '80,95' is not a list: write [80, 95]",
        ),
    ],
)
def test_one_column_written_without_brackets_shows_the_list_meant(
    key: str, value: object, said: str
) -> None:
    """``partition_by = "store"``, as pandas' ``groupby("store")`` takes it, read
    "partition_by: Input should be a valid list": pydantic's words, and no fix shown."""
    with pytest.raises(SpecError) as caught:
        Spec.from_dict(spec_dict(**{key: value}))
    assert str(caught.value) == f"<spec>: {said}"


def test_a_notebooks_numbers_and_tuples_are_welcome() -> None:
    import numpy as np

    spec = Spec.from_dict(
        spec_dict(min_rows=np.int64(12), partition_by=("pid",), seed=3.0,
                  intervals={"levels": (80, np.float64(95))})
    )  # fmt: skip
    assert (spec.min_rows, spec.partition_by, spec.seed) == (12, ["pid"], 3)
    assert spec.intervals is not None and list(spec.intervals.levels) == [80, 95]


# ------------------------------------------------------------------------------ spec_hash
def test_hash_ignores_key_order_formatting_and_comments(tmp_path: Path) -> None:
    a = tmp_path / "a.toml"
    a.write_text(
        'name = "s"\npartition_by = ["store"]\ntarget = "units"\ntime_column = "week"\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
        "params = { alpha = [0.1, 1.0], fit_intercept = true }\n",
        encoding="utf-8",
    )
    b = tmp_path / "b.toml"
    b.write_text(
        "# same spec, written differently\n"
        'target    = "units"\n'
        "time_column = 'week'\n"
        'partition_by = [ "store", ]\n'
        'name = "s"   # trailing comment\n\n'
        "[[candidates]]\n"
        "params.fit_intercept = true\n"
        "params.alpha = [\n  0.1,\n  1.0,\n]\n"
        'estimator = "sklearn.linear_model.Ridge"\n',
        encoding="utf-8",
    )
    assert Spec.from_toml(a).spec_hash == Spec.from_toml(b).spec_hash
    assert Spec.from_toml(a).spec_hash == Spec.from_dict(Spec.from_toml(b).to_dict()).spec_hash


def test_scalar_param_is_a_grid_of_one() -> None:
    one = Spec.from_dict(spec_dict(candidates=[{"estimator": RIDGE, "params": {"alpha": 1.0}}]))
    grid = Spec.from_dict(spec_dict(candidates=[{"estimator": RIDGE, "params": {"alpha": [1.0]}}]))
    assert one.spec_hash == grid.spec_hash


@pytest.mark.parametrize(
    "change",
    [
        {"candidates": [{"estimator": RIDGE, "params": {"alpha": [2.0]}}]},
        {"min_rows": 11},
        {"seed": 1},
        {"validation": {"strategy": "last", "size": 5}},
        {"metric": "neg_mean_squared_error"},
        {"partition_by": ["pid", "group"]},
    ],
)
def test_hash_changes_with_content(change: dict[str, object]) -> None:
    base = Spec.from_dict(spec_dict(candidates=[{"estimator": RIDGE, "params": {"alpha": [1.0]}}]))
    assert Spec.from_dict(spec_dict(**change)).spec_hash != base.spec_hash
    assert len(base.spec_hash) == 64


def test_spec_is_frozen() -> None:
    spec = Spec.from_dict(spec_dict())
    with pytest.raises(ValueError, match="frozen"):
        spec.min_rows = 3  # type: ignore[misc]


def test_derived_defaults() -> None:
    spec = Spec.from_dict(spec_dict(time_column=None))
    assert spec.metric_name == "neg_mean_absolute_error"
    assert spec.validation_strategy == "holdout"
    timed = Spec.from_dict(spec_dict(task="classification", candidates=[
        {"estimator": "sklearn.linear_model.LogisticRegression"}
    ]))  # fmt: skip
    assert timed.metric_name == "accuracy"
    assert timed.validation_strategy == "last"


def test_coerce_accepts_spec_dict_and_path(tmp_path: Path) -> None:
    path = write_spec(tmp_path)
    spec = Spec.from_toml(path)
    assert Spec.coerce(spec) is spec
    assert Spec.coerce(str(path)) == spec
    assert Spec.coerce(spec.to_dict()) == spec


@pytest.mark.parametrize(("value", "named"), [(None, "NoneType None"), (5, "int 5")])
def test_coerce_says_what_a_spec_is(value: object, named: str) -> None:
    # mm.train(None, …) raised a bare TypeError from pathlib
    with pytest.raises(
        SpecError, match=rf"^a spec is a Spec, a dict or the path of a TOML file, not {named}$"
    ):
        Spec.coerce(value)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ factories
def test_factory_candidate_is_accepted(tmp_path: Path) -> None:
    path = write_spec(tmp_path, estimator="factories:scaled_ridge")
    spec = Spec.from_toml(path)
    cand = spec.candidates[0]
    assert cand.is_factory
    assert cand.label == "scaled_ridge"


def test_factory_with_unknown_param_is_rejected(tmp_path: Path) -> None:
    path = write_spec(tmp_path, estimator="factories:scaled_ridge", params="{ depth = [3] }")
    message = spec_error(path)
    assert "candidates[0]" in message
    assert "does not accept params" in message


def test_factory_must_exist(tmp_path: Path) -> None:
    path = write_spec(tmp_path, estimator="factories:no_such_factory", params="{}")
    message = spec_error(path)
    assert "candidates[0]" in message
    assert "no_such_factory" in message


@pytest.mark.parametrize(
    ("sample", "digest"),
    [
        ("store_sales", "ae1031af9f963b1d6fd69cb8919082f0b010fc961e9e75eab16ff76056a496e2"),
        ("user_activity", "9c7f8500ef3eb194ff2d63c357e4c83501da6cffabfe9da90b384347acd1207e"),
        (
            "store_sales_forecast",
            "2296610e20f4c8e7791aeb329e41e6490f7e1eedd6269de1b3db0088be8582a9",
        ),
    ],
)
def test_options_added_later_keep_the_hash_of_specs_without_them(
    samples_dir: Path, sample: str, digest: str
) -> None:
    """Hashes computed by manymodels before missing_target, bad_rows and [selection] existed:
    a registry's interrupted runs must stay resumable after an upgrade."""
    spec = Spec.from_toml(samples_dir / f"{sample}.toml")
    assert spec.spec_hash == digest
    changed = spec.model_copy(update={"missing_target": "error"})
    assert changed.spec_hash != digest


CLICKS = {
    "name": "clicks",
    "task": "classification",
    "partition_by": ["user"],
    "target": "clicked",
    "metric": "roc_auc",
    "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression"}],
    "selection": {"naive_candidate": False},
}


def test_selection_options_added_later_keep_the_hash_of_a_selection_table() -> None:
    """Computed before [selection] fallback_metric and prior_rows, and [decision], existed."""
    digest = "6681b3c95ef213e9f0ed1360d1bab551e4ef95941c5004183499ad1b08f030c2"
    spec = Spec.from_dict(CLICKS)
    assert spec.spec_hash == digest
    for change in (
        {"selection": {"naive_candidate": False, "fallback_metric": "brier"}},
        {"selection": {"naive_candidate": False, "prior_rows": 5}},
        {"decision": {"threshold": "f1"}},
    ):
        assert Spec.from_dict({**CLICKS, **change}).spec_hash != digest


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"decision": {"threshold": "youden"}}, "decision.threshold"),
        ({"decision": {"threshold": "cost", "cost": {"fp": 0}}}, "decision.cost.fp"),
        ({"selection": {"fallback_metric": "roc_auc"}}, "selection.fallback_metric"),
        ({"selection": {"prior_rows": -1}}, "selection.prior_rows"),
        ({"task": "regression", "metric": None, "decision": {"threshold": "f1"}}, "decision"),
    ],
)
def test_classification_options_are_checked(change: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        Spec.from_dict({**CLICKS, **change})


KFOLD = {"strategy": "kfold", "size": 2, "folds": 3}


def test_global_refit_left_out_of_the_hash_at_its_default() -> None:
    base = Spec.from_dict(spec_dict(validation=KFOLD))
    for same in (True, 1):  # 1 is a fit every fold: the default, and its hash
        one = Spec.from_dict(spec_dict(validation={**KFOLD, "global_refit": same}))
        assert one.spec_hash == base.spec_hash and one.validation.global_refit is True
    last = Spec.from_dict(spec_dict(validation={"strategy": "last", "global_refit": 1}))
    assert last.validation.global_refit is True
    for refit in (False, 2):
        changed = Spec.from_dict(spec_dict(validation={**KFOLD, "global_refit": refit}))
        assert changed.validation.global_refit == refit
        assert changed.spec_hash != base.spec_hash
    zero = Spec.from_dict(spec_dict(validation={**KFOLD, "global_refit_last": 0}))
    assert zero.spec_hash == base.spec_hash  # a spec of before global_refit_last keeps its hash
    spaced = {**KFOLD, "global_refit": False}
    last = Spec.from_dict(spec_dict(validation={**spaced, "global_refit_last": 1}))
    assert last.spec_hash != Spec.from_dict(spec_dict(validation=spaced)).spec_hash


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"validation": {"strategy": "last", "size": 2, "global_refit": False}}, "kfold"),
        ({"validation": {**KFOLD, "global_refit": 2}, "time_column": None}, "time_column"),
        ({"validation": {**KFOLD, "global_refit": 0}}, "validation.global_refit"),
        ({"validation": {**KFOLD, "global_refit": "no"}}, "validation.global_refit"),
        ({"validation": {**KFOLD, "global_refit": 1.5}}, "validation.global_refit"),
        ({"validation": {**KFOLD, "global_refit_last": 1}}, "every fold is refitted already"),
        (
            {"validation": {**KFOLD, "global_refit": False, "global_refit_last": 4}},
            "global_refit_last = 4 is more than the 3 folds",
        ),
        (
            {"validation": {**KFOLD, "global_refit": False, "global_refit_last": True}},
            "global_refit_last: must be a number of folds",
        ),
        (
            {"validation": {**KFOLD, "global_refit": False, "global_refit_last": -1}},
            "validation.global_refit_last",
        ),
    ],
)
def test_global_refit_needs_expanding_folds(change: dict[str, object], message: str) -> None:
    """Without a time order a fold's fit would hold the rows a later fold validates on."""
    with pytest.raises(SpecError, match=message):
        Spec.from_dict(spec_dict(**change))


def test_a_fraction_for_expanding_kfold_folds_is_refused() -> None:
    """With ``kfold`` and a time column, ``size`` is each fold's rows: a fraction (0.05) was
    silently ignored and the folds split the rows evenly. The default fraction, which every
    stored spec writes out, still means "split evenly"."""
    kfold = {"strategy": "kfold", "folds": 2}
    with pytest.raises(SpecError, match=r"validation.size 0.05 is a fraction, and expanding"):
        Spec.from_dict(spec_dict(validation={**kfold, "size": 0.05}))
    stored = Spec.from_dict(spec_dict(validation=kfold)).to_dict()
    assert Spec.from_dict(stored).validation.size == 0.2
    assert Spec.from_dict(spec_dict(validation={**kfold, "size": 4})).validation.size == 4
    assert Spec.from_dict(spec_dict(time_column=None, validation={**kfold, "size": 0.3}))


def test_step_size_left_out_of_the_hash_at_its_default() -> None:
    """A spec written before ``step_size`` keeps its hash; a step is a change of folds."""
    base = Spec.from_dict(spec_dict(validation=KFOLD))
    assert Spec.from_dict(spec_dict(validation={**KFOLD, "step_size": None})).spec_hash == (
        base.spec_hash
    )
    stepped = Spec.from_dict(spec_dict(validation={**KFOLD, "step_size": 1}))
    assert stepped.validation.step_size == 1
    assert stepped.spec_hash != base.spec_hash


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"validation": {"strategy": "last", "size": 2, "step_size": 1}}, "needs strategy 'kfold'"),
        ({"validation": {"strategy": "kfold", "folds": 3, "step_size": 1}}, "a row count"),
        ({"validation": {**KFOLD, "step_size": 1}, "time_column": None}, "a time_column"),
        ({"validation": {**KFOLD, "step_size": 0}}, "validation.step_size"),
        ({"validation": {**KFOLD, "step_size": "one"}}, "validation.step_size"),
    ],
)
def test_step_size_needs_folds_of_a_row_count_in_time_order(
    change: dict[str, object], message: str
) -> None:
    """Only folds of ``size`` rows over a time column have origins to step; the error is one
    line naming the option."""
    with pytest.raises(SpecError, match=message) as err:
        Spec.from_dict(spec_dict(**change))
    assert "\n" not in str(err.value).strip()
