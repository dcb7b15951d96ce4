"""Choosing classifiers by ``f1``, ``precision``, ``recall`` or ``average_precision`` where the
labels are two words: scikit-learn counts the class ``1`` as positive, which ``"churn"`` and
``"stay"`` lack, so every such run was refused. ``[decision] positive`` names the class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import churn_frame, churn_spec, train_cli

import manymodels as mm
from manymodels.exceptions import DataError, SpecError


def frame(users: int = 3, rows: int = 60) -> pd.DataFrame:
    return churn_frame(seed=0, noise=0.5, users=users, rows=rows, cut=0.3)


def spec(metric: str, **extra: Any) -> dict[str, Any]:
    held = {"validation": {"strategy": "holdout", "size": 0.5}, "selection": {"min_class_rows": 1}}
    return churn_spec(metric=metric, **held, **extra)


@pytest.mark.parametrize("metric", ["f1", "precision", "recall", "average_precision"])
def test_text_labels_train_by_a_positive_class_metric_when_positive_is_named(
    tmp_path: Path, metric: str
) -> None:
    """Before: ``SpecError: metric 'f1' cannot score this table's labels … pos_label=1 is not a
    valid label``, whatever the spec said. Now ``[decision] positive`` names the class, and the
    version records it with its threshold: its labels count the class its metric counted."""
    named = spec(metric, decision={"threshold": "f1", "positive": "churn"})
    summary = mm.train(named, frame(), registry=tmp_path / "reg", backend="local")
    assert (summary.run.n_trained, summary.run.n_failed) == (3, 0)
    with mm.Registry.open(tmp_path / "reg") as reg:
        loaded = reg.load_model({"user": "u0"})
        assert loaded.version.metric == metric
        decision = loaded.version.schema.decision
        assert decision is not None and decision["positive"] == "churn"


def test_the_score_counts_the_named_class_as_positive(tmp_path: Path) -> None:
    """The recorded validation score is scikit-learn's with ``pos_label`` the named class:
    ``positive = "stay"`` and ``positive = "churn"`` score the same fit differently."""
    df = frame(users=1, rows=80)
    scores = {}
    for positive in ("churn", "stay"):
        named = spec("f1", decision={"threshold": "f1", "positive": positive})
        mm.train(named, df, registry=tmp_path / positive, backend="local")
        with mm.Registry.open(tmp_path / positive) as reg:
            scores[positive] = reg.load_model({"user": "u0"}).version.score
    assert scores["churn"] != pytest.approx(scores["stay"])
    assert 0 < scores["churn"] < 1 and 0 < scores["stay"] < 1


def test_without_a_named_positive_the_error_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as e:
        mm.train(spec("f1"), frame(), registry=tmp_path / "reg", backend="local")
    message = str(e.value)
    assert "\n" not in message
    assert "[decision] positive = 'churn' (or 'stay') beside threshold = \"f1\"" in message
    assert not (tmp_path / "reg" / "registry.db").exists()


def test_a_named_positive_also_counts_for_number_labels(tmp_path: Path) -> None:
    """Labels 0/1 with ``positive = 0``: precision of the 0 class, not of the 1 class."""
    df = frame(users=1, rows=80)
    df["label"] = (df["label"] == "churn").astype(int)
    scores = {}
    for positive in (0, 1):
        named = spec("precision", decision={"threshold": "f1", "positive": positive})
        mm.train(named, df, registry=tmp_path / str(positive), backend="local")
        with mm.Registry.open(tmp_path / str(positive)) as reg:
            scores[positive] = reg.load_model({"user": "u0"}).version.score
    assert scores[0] != pytest.approx(scores[1])


def test_labels_1_and_2_count_the_decisions_positive_class(tmp_path: Path) -> None:
    """Labels 1 and 2 with ``[decision] threshold = "f1"`` and no ``positive``: the threshold
    is on 2 (the greater), but the ``f1`` that chose and scored the model counted 1
    (scikit-learn's ``pos_label``). Now the recorded score is the F1 of class 2, as with
    ``positive = 2`` named."""
    df = frame(users=1, rows=80)
    df["label"] = np.where(df["label"] == "churn", 2, 1)
    scores = {}
    for name, decision in {
        "default": {"threshold": "f1"},
        "two": {"threshold": "f1", "positive": 2},
        "one": {"threshold": "f1", "positive": 1},
    }.items():
        mm.train(spec("f1", decision=decision), df, registry=tmp_path / name, backend="local")
        with mm.Registry.open(tmp_path / name) as reg:
            version = reg.load_model({"user": "u0"}).version
            scores[name] = version.score
            assert version.schema.decision is not None
            assert version.schema.decision["positive"] == (1 if name == "one" else 2)
    assert scores["default"] == pytest.approx(scores["two"])
    assert scores["default"] != pytest.approx(scores["one"])


def test_a_named_positive_a_one_class_table_lacks_is_a_warning(tmp_path: Path) -> None:
    """``positive = "churn"`` on a table without a churner (every label ``"stay"``): the run
    was accepted without a word (with two classes it is refused), so a misspelt class went
    unnoticed. Now the run trains (a month without churners is plausible data) and warns,
    naming the spec key and the class."""
    df = frame(users=2, rows=60)
    df["label"] = "stay"
    named = spec("accuracy", decision={"threshold": "f1", "positive": "churn"})
    summary = mm.train(named, df, registry=tmp_path / "reg", backend="local")
    assert summary.run.n_failed == 0
    assert summary.run.options.get("warnings") == [
        "[decision] positive = 'churn' is not one of the table's classes ('stay'): no version "
        "of this run is labelled by a threshold"
    ]


def test_text_labels_without_a_named_positive_warn_which_is_taken(tmp_path: Path) -> None:
    """``[decision]`` without ``positive`` on "churn"/"stay": "stay" (the greater) was
    thresholded as the positive class without a word. Now the run says which, and how to
    choose; naming it says nothing more."""
    unnamed = spec("accuracy", decision={"threshold": "f1"})
    summary = mm.train(unnamed, frame(), registry=tmp_path / "reg", backend="local")
    assert summary.run.options.get("warnings") == [
        "[decision] names no positive class: 'stay' (the greater of 'churn', 'stay') is taken "
        "as positive, its probability thresholded; to choose, set [decision] positive = 'stay' "
        "(or 'churn')"
    ]
    named = spec("accuracy", decision={"threshold": "f1", "positive": "stay"})
    summary = mm.train(named, frame(), registry=tmp_path / "named", backend="local")
    assert "warnings" not in summary.run.options


@pytest.mark.parametrize(
    "labels",
    [(0, 1), (0.0, 1.0), (False, True), ("0", "1"), (-1, 1), (-1.0, 1.0)],
    ids=["ints", "floats", "bools", "text", "minus-one", "minus-one-floats"],
)
def test_labels_0_1_or_false_true_take_1_without_a_warning(
    tmp_path: Path, labels: tuple[Any, Any]
) -> None:
    df = frame()
    df["label"] = np.where(df["label"] == "churn", labels[1], labels[0]).astype(
        object if isinstance(labels[0], str) else type(labels[0])
    )
    unnamed = spec("accuracy", decision={"threshold": "f1"})
    summary = mm.train(unnamed, df, registry=tmp_path / "reg", backend="local")
    assert "warnings" not in summary.run.options


def test_text_labels_minus_1_and_plus_1_warn_that_minus_1_is_taken(tmp_path: Path) -> None:
    """Text "+1" sorts before "-1", so "-1" is the greater and is thresholded: no natural
    choice, unlike the numbers -1/1 (silent above), and said."""
    df = frame()
    df["label"] = np.where(df["label"] == "churn", "+1", "-1")
    unnamed = spec("accuracy", decision={"threshold": "f1"})
    summary = mm.train(unnamed, df, registry=tmp_path / "reg", backend="local")
    (warning,) = summary.run.options["warnings"]
    assert warning.startswith("[decision] names no positive class: '-1' (the greater of '+1'")


def test_the_taken_positive_is_printed_by_train(tmp_path: Path) -> None:
    """The warning reaches the user of the CLI, as the run's other warnings do."""
    toml = (
        'name = "churn"\ntask = "classification"\npartition_by = ["user"]\ntarget = "label"\n'
        'features = ["x1", "x2"]\nmetric = "accuracy"\nmin_rows = 20\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.LogisticRegression"\n'
        '[decision]\nthreshold = "f1"\n'
    )
    result, _ = train_cli(tmp_path, toml, frame())
    assert result.exit_code == 0, result.output
    assert "set [decision] positive = 'stay' (or 'churn')" in result.output


def test_three_classes_warn_once_that_the_decision_is_ignored(tmp_path: Path) -> None:
    """More than two classes already warn that no threshold applies: one line, not a second
    about the positive class."""
    df = frame(users=2, rows=60)
    df["label"] = np.array(["stay", "leave", "pause"])[np.arange(len(df)) % 3]
    named = spec("accuracy", decision={"threshold": "f1", "positive": "churn"})
    summary = mm.train(named, df, registry=tmp_path / "reg", backend="local")
    (warning,) = summary.run.options.get("warnings")
    assert warning.startswith("[decision] labels a binary classifier's rows by a threshold")


def test_a_threshold_on_a_one_class_version_says_1_class(tmp_path: Path) -> None:
    """A threshold asked of a version of one class said "has 1 classes"."""
    df = frame(users=1, rows=40)
    df["label"] = "stay"
    mm.train(spec("accuracy"), df, registry=tmp_path / "reg", backend="local")
    with pytest.raises(DataError) as e:
        mm.score(df.drop(columns="label"), tmp_path / "reg", backend="local", threshold=0.3)
    assert "has 1 class: a threshold labels a binary classifier's rows" in str(e.value)


def test_text_labels_train_by_neg_brier_score(tmp_path: Path) -> None:
    """Before: ``SpecError: metric 'neg_brier_score' cannot score this table's labels (2 text
    labels: 'churn', 'stay'): y_true takes value in {…} and pos_label is not specified …``,
    with or without ``[decision] positive``: the check before training tried scikit-learn's
    own scorer, where training scores the Brier score over the table's classes, which takes
    text labels. Now the check tries what training uses, and the run trains, its versions'
    scores those of the same labels as 0/1."""
    summary = mm.train(spec("neg_brier_score"), frame(), registry=tmp_path / "t")
    assert (summary.run.n_trained, summary.run.n_failed) == (3, 0)
    ones = frame().assign(label=lambda d: (d["label"] == "churn").astype(int))
    mm.train(spec("neg_brier_score"), ones, registry=tmp_path / "n")
    with mm.Registry.open(tmp_path / "t") as text, mm.Registry.open(tmp_path / "n") as numbers:
        got, expected = text.get_version("user=u0"), numbers.get_version("user=u0")
        assert got.score == pytest.approx(expected.score)
        assert got.score < 0


@pytest.mark.parametrize("metric", ["d2_brier_score", "d2_log_loss_score"])
def test_text_labels_train_by_a_d2_skill_score(tmp_path: Path, metric: str) -> None:
    """Before: ``metric 'd2_brier_score' cannot score this table's labels (2 text labels:
    'churn', 'stay'): … pos_label is not specified`` while ``neg_brier_score`` trained. Now
    the skill scores are scored over the table's classes as the losses are: the run trains,
    each version's score that of the same labels as 0/1, and positive (better than the
    class rates)."""
    summary = mm.train(spec(metric), frame(), registry=tmp_path / "t")
    assert (summary.run.n_trained, summary.run.n_failed) == (3, 0)
    ones = frame().assign(label=lambda d: (d["label"] == "churn").astype(int))
    mm.train(spec(metric), ones, registry=tmp_path / "n")
    with mm.Registry.open(tmp_path / "t") as text, mm.Registry.open(tmp_path / "n") as numbers:
        got, expected = text.get_version("user=u0"), numbers.get_version("user=u0")
        assert got.score == pytest.approx(expected.score)
        assert got.score > 0


@pytest.mark.parametrize(("given", "expected"), [(1, True), (1.0, True), (0, False)])
def test_bool_labels_take_a_positive_of_1_or_0(tmp_path: Path, given: Any, expected: bool) -> None:
    """Before: ``[decision] positive = 1`` on labels ``True``/``False`` was refused, "not one
    of the table's classes (False, True)", where ``1`` is ``1.0`` for number labels and numpy
    and pandas count ``True == 1``. Now 1 (or 1.0) is ``True`` and 0 ``False``, and the
    version records the class itself, as ``positive = true`` records it."""
    df = frame().assign(label=lambda d: d["label"] == "churn")
    named = spec("f1", decision={"threshold": "f1", "positive": given})
    summary = mm.train(named, df, registry=tmp_path / "reg", backend="local")
    assert (summary.run.n_trained, summary.run.n_failed) == (3, 0)
    with mm.Registry.open(tmp_path / "reg") as reg:
        recorded = reg.get_version("user=u0").schema.decision["positive"]
    assert recorded is expected


def test_a_bool_and_a_number_are_one_label_by_value() -> None:
    """``same_label`` (actuals, retrain labels, ``[decision] positive``): ``True`` is ``1``
    and ``1.0`` and the text ``"1"`` (JSON's form of 1, the class 1 by value), not ``2``;
    a word names it in any case (``"True"``)."""
    from manymodels.label_matching import KnownClasses, same_label

    assert same_label(True, 1) and same_label(np.float64(1.0), np.bool_(True))
    assert same_label(False, 0) and not same_label(True, 0) and not same_label(True, 2)
    assert same_label(True, "1") and same_label(True, "True") and not same_label(True, "2")
    assert KnownClasses([False, True]).matching(1) == [True]
