"""The spec's cross-field rules: what no single option can check alone (a feature that is also
the target, lags without a time column, a metric the task cannot score).

``Spec`` holds the fields and what they derive; its one model validator calls ``check`` here,
so the rules read as one list, in the order their errors are raised, apart from the fields.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from manymodels.written_columns import reserved

if TYPE_CHECKING:
    from manymodels.spec import Spec

TIME_OPTIONS = ("calendar", "lags", "rolling", "changes", "holidays")  # these need a time_column

DEFAULT_METRIC: dict[str, str] = {
    "regression": "neg_mean_absolute_error",
    "classification": "accuracy",
}


def iso_date(value: Any) -> str:
    """A holiday as ISO text (``2024-12-25``): from such text or a TOML date, or either at
    midnight (``2024-12-25 00:00:00``: a database's or a spreadsheet's export of a date
    column writes its cells so, and a holidays CSV is such an export); not another time of
    day (which day would it close?), a number or a misspelt date (``ValueError`` naming it)."""
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time(0):
            return value.date().isoformat()
    elif isinstance(value, datetime.date):
        return value.isoformat()
    elif isinstance(value, str):
        text = value.strip()
        try:
            return datetime.date.fromisoformat(text).isoformat()
        except ValueError:
            pass
        try:
            stamp = datetime.datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if stamp.time() == datetime.time(0):  # its zone, if any, is its own clock
                return stamp.date().isoformat()
    raise ValueError(f'{value!r} is not a date; write YYYY-MM-DD, e.g. "2024-12-25"')


def check(spec: Spec) -> None:
    """Raise ``ValueError`` for the first rule ``spec`` breaks. A spec read back from the
    registry (``spec.stored``) trained under the rules of its day: the rule on written
    column names, added since, does not stop its retrain."""
    _check_roles(spec)
    _check_validation(spec)
    for option in TIME_OPTIONS:
        if getattr(spec, option) and spec.time_column is None:
            raise ValueError(f"{option} needs a time_column")
    _check_derived(spec)
    _check_changes(spec)
    if not spec.stored:
        _check_written(spec)
    check_metric(spec.metric_name, spec.task)
    _check_task_options(spec)


def _check_roles(spec: Spec) -> None:
    """A column plays one role: key, target, time, or feature."""
    roles = set(spec.partition_by)
    if spec.target in roles:
        raise ValueError(f"target '{spec.target}' is also a partition_by column")
    if spec.time_column is not None and spec.time_column in (*roles, spec.target):
        raise ValueError(f"time_column '{spec.time_column}' is also a key or the target")
    for col in spec.features or []:
        if col in roles or col == spec.target:
            raise ValueError(f"feature '{col}' is also a key column or the target")
    for col in (*(spec.features or []), *(spec.categorical or [])):
        if col == spec.time_column:
            raise ValueError(
                f"time_column '{col}' cannot also be a feature; calendar derives features from it"
            )
    if spec.features is not None and not spec.features:
        raise ValueError("features is empty; omit it to use all other columns")
    for col in spec.categorical or []:
        if spec.features is not None and col not in spec.features:
            raise ValueError(f"categorical column '{col}' is not one of the features")


def _check_validation(spec: Spec) -> None:
    """``[validation]`` options that depend on the time column and on each other."""
    v = spec.validation
    if v.strategy == "last" and spec.time_column is None:
        raise ValueError("validation.strategy 'last' needs a time_column to order rows by")
    # the default fraction (0.2) is no choice, and every stored spec writes it out
    default = type(v).model_fields["size"].default
    if v.strategy == "kfold" and spec.time_column is not None and v.size < 1 and v.size != default:
        raise ValueError(
            f"validation.size {v.size:g} is a fraction, and expanding kfold "
            "folds (kfold with a time_column) take a row count per fold, the forecast "
            "horizon say: give one, or leave size out (then the rows are split evenly)"
        )
    if v.global_refit is not True and (v.strategy != "kfold" or spec.time_column is None):
        raise ValueError(
            "validation.global_refit needs strategy 'kfold' and a time_column: only "
            "expanding folds leave a later fold's rows out of an earlier fold's fit"
        )
    _check_refit_last(spec)
    _check_step_size(spec)


def _check_step_size(spec: Spec) -> None:
    """Folds whose origins step by ``step_size`` rows are folds of a row count over rows in
    time order: nothing else has an origin to step."""
    v = spec.validation
    if v.step_size is None:
        return
    if v.strategy != "kfold" or spec.time_column is None or v.size < 1:
        raise ValueError(
            f"validation.step_size = {v.step_size} needs strategy 'kfold', a time_column and "
            "a row count as size (the rows of each fold, the forecast horizon say): only "
            "such folds have origins to step"
        )


def _check_refit_last(spec: Spec) -> None:
    last, v = spec.validation.global_refit_last, spec.validation
    if last and v.global_refit is True:
        raise ValueError(
            f"validation.global_refit_last = {last} refits the last folds of a "
            "global_refit that spaces its fits: with global_refit = true every fold is "
            "refitted already (set global_refit = false or a number of folds)"
        )
    if last > v.folds:
        raise ValueError(f"validation.global_refit_last = {last} is more than the {v.folds} folds")


def _check_derived(spec: Spec) -> None:
    """A derived feature's name is taken by no column the spec names."""
    taken = {*spec.partition_by, spec.target, *(spec.features or []), *(spec.categorical or [])}
    if spec.time_column:
        taken.add(spec.time_column)
    for col in spec.derived_columns:
        if col in taken:
            raise ValueError(
                f"'{col}' is derived from calendar / lags / rolling / changes; it cannot "
                "also be a key, the target, the time column or a listed feature"
            )


def _check_written(spec: Spec) -> None:
    """No column a model reads (key, time, feature) is named as one ``score`` or
    ``forecast`` writes (``written_columns``): no table of its rows could be scored."""
    named = [*spec.partition_by, spec.time_column or "", *(spec.features or [])]
    named += [*(spec.categorical or []), *(spec.changes or []), *spec.derived_columns]
    for col in dict.fromkeys(named):
        why = reserved(col)
        if why is not None:
            raise ValueError(f"column '{col}' is {why}: rename it")


def _check_changes(spec: Spec) -> None:
    """Each column of ``changes`` is a numeric feature (its type is checked with the
    table): not a key, the target, the time column or a categorical one."""
    for col in spec.changes or []:
        if col in (*spec.partition_by, spec.target, spec.time_column):
            raise ValueError(
                f"changes: '{col}' is a key, the target or the time column; changes are of "
                "features (lags give the target's past)"
            )
        if col in (spec.categorical or []):
            raise ValueError(f"changes: '{col}' is categorical; a change needs numbers")
        if col in spec.derived_columns:
            raise ValueError(
                f"changes: '{col}' is derived (calendar / lags / rolling / changes); a "
                "change is of a column of the table"
            )
        if spec.features is not None and col not in spec.features:
            raise ValueError(f"changes: '{col}' is not one of the features")


def _check_task_options(spec: Spec) -> None:
    """Options that only one task (or only a forecasting spec) can use."""
    if len(set(spec.transforms)) != len(spec.transforms):
        raise ValueError("target_transform lists a transform twice")
    if spec.transforms != ("none",) and (
        spec.task != "regression" or not (spec.lags or spec.rolling)
    ):
        raise ValueError("target_transform needs a regression task with lags or rolling features")
    if spec.decision is not None and spec.task != "classification":
        raise ValueError('[decision] thresholds need task = "classification"')
    if spec.calibration is not None and spec.task != "classification":
        raise ValueError('[calibration] needs task = "classification"')
    if spec.selection.too_few_rows == "constant" and spec.task != "classification":
        raise ValueError('[selection] too_few_rows = "constant" needs task = "classification"')
    if spec.intervals is not None and spec.task != "regression":
        raise ValueError("[intervals] are for regression: a class label has no interval")


def check_metric(name: str, task: str) -> None:
    """``name`` is a scikit-learn scorer that can score ``task``'s models."""
    from sklearn.metrics import get_scorer, get_scorer_names

    if name not in get_scorer_names():
        raise ValueError(
            f"metric '{name}' is not a scikit-learn scorer name "
            f"(e.g. {DEFAULT_METRIC[task]!r}; see sklearn.metrics.get_scorer_names())"
        )
    if task == "regression":
        # Regressors only predict: a scorer needing probabilities or decision values
        # (roc_auc, neg_log_loss…) would fail in every partition.
        method = getattr(get_scorer(name), "_response_method", "predict")
        if method != "predict":
            raise ValueError(
                f"metric '{name}' scores classifiers' probabilities or decision values; a "
                f"regression needs a metric on predictions (e.g. {DEFAULT_METRIC[task]!r})"
            )
