"""``manymodels.version_records``: a version's validation and evaluation documents, typed."""

from __future__ import annotations

from factories import imported_by

from manymodels.version_records import Decision, Selection


def test_a_recorded_verdict_reads_back_as_the_decision_that_wrote_it() -> None:
    kept = Decision(False, "kept champion", "if_better", 0.5, 3, 0.6, -0.1, "unseen")
    doc = {**kept.to_dict(), "compared_rows": 20, "metric": "neg_mean_absolute_error"}
    assert Decision.parse(doc) == kept and Decision.parse(doc).outcome == "kept"
    assert Decision.parse({**doc, "promote": True}).outcome == "promoted"
    assert Decision.parse({**doc, "champion_version": None}).outcome == "first"


def test_a_version_back_from_retirement_reads_returned_not_first() -> None:
    """The registry's ``record`` adds ``retired_from`` to the version that puts a retired
    partition back in production: it read ``first``, as a partition never trained. A verdict
    written by training carries no such key (its documents are as before)."""
    first = Decision(True, "first version", "if_better", 0.5)
    assert "retired_from" not in first.to_dict()
    back = {**first.to_dict(), "reason": "back in production after its retirement from v2"}
    assert Decision.parse({**back, "retired_from": 2}).outcome == "returned"
    assert Decision.parse({**back, "retired_from": 2}).retired_from == 2
    assert Decision.parse(first.to_dict()).outcome == "first"


def test_an_imported_versions_verdict_has_no_scores() -> None:
    imported = Decision.parse({"imported": "mlflow:/tmp/m", "champion_version": 2})
    assert (imported.promote, imported.reason, imported.policy) == (False, "", None)
    assert imported.challenger_score is None and imported.outcome == "kept"
    assert Decision.parse({"challenger_score": None, "improvement": 0.25}).improvement == 0.25


def test_how_a_version_was_chosen_reads_with_defaults_for_older_versions() -> None:
    chosen = Selection.parse(
        {"strategy": "kfold", "folds": 2, "rows": 10, "chosen": "global",
         "transforms": {"none": -1.0, "difference": None}, "dropped": {"missing_target": 3}}
    )  # fmt: skip
    assert chosen == Selection("kfold", 2, 10, "global", {"none": -1.0, "difference": None},
                               {"missing_target": 3})  # fmt: skip
    assert Selection.parse({}) == Selection()
    assert Selection.parse({}).chosen == "candidate" and Selection.parse({}).dropped == {}


def test_reading_them_imports_neither_numpy_nor_pandas_nor_pydantic() -> None:
    statement = "from manymodels.version_records import Decision\nDecision.parse({}).outcome"
    assert imported_by(statement, ["numpy", "pandas", "pydantic"]) == []
